/*
 * pb-execd: Patchbay's exec server, the container's main process (under docker-init).
 *
 * The worker attaches to the container once and speaks a framed protocol over the attached
 * stdin/stdout, running many commands at once over that one stream. Doing the work here, rather
 * than a `docker exec` per command, saves the engine round trips (tens of milliseconds) and lets
 * the container itself enforce what must not depend on the worker: timeouts kill the whole
 * process tree inside the container, and output is capped (head + tail) before it ever leaves.
 *
 * Frame: u32le payload length, u8 type, u32le command id, payload.
 *
 * worker -> execd
 *   PING   (1)  empty                         -> PONG with the same id
 *   START  (2)  u32 flags, u32 timeout_ms (0: none), u32 max_output, u32 credit, u32 argc,
 *               u32 envc, then NUL-terminated: cwd (empty: /workspace), argv[argc], env[envc]
 *               ("K=V", added to execd's own environment)
 *   STDIN  (3)  bytes for the command's stdin; an empty payload closes it
 *   KILL   (4)  kill the command's process tree (cancellation)
 *   CREDIT (5)  u32: more output bytes a RAW command may send
 *   QUIESCE (6) empty: kill every process of the sandbox but execd and init (every command's
 *               tree, and whatever the commands left running) -> QUIESCED with the same id
 * execd -> worker
 *   PONG   (129)
 *   OUT    (130) u8 stream (1 stdout, 2 stderr; | 0x80 for the tail part), bytes
 *   ACK    (131) u32: stdin bytes handed to the command (the worker's send window)
 *   EXIT   (132) i32 exit code (-1: signalled), i32 signal, u64 dropped bytes, u32 wall ms,
 *                u32 flags (1 timed out, 2 killed on request, 4 OOM kill during the command)
 *   ERROR  (133) message (a malformed START)
 *   QUIESCED (134) u32 processes killed, u32 processes still there (0 unless they would not die)
 *
 * A timeout or a KILL kills the command's whole process tree. A command is over when its own
 * process has exited and its output pipes have closed, or EXIT_GRACE_MS after it exited:
 * processes it left running in the background (a dev server) go on, their later output
 * discarded, like `docker exec`.
 *
 * Capped commands (the default) send the head of their output as it comes, keep the tail in a
 * ring and send it at the end, so neither side ever holds more than max_output bytes. RAW
 * commands (file transfer) send everything, but only as far as the worker has granted credit,
 * so a slow reader blocks the command instead of filling memory.
 *
 * `pb-execd relay [PORT]` is the other mode of the same binary (relay.c): a loopback listener
 * whose connections the worker carries to its own services over the exec channel.
 *
 * Written for a read-only root, no capabilities and a pids limit: it allocates little, opens no
 * files but /dev/null and /proc, and is built static so it needs nothing from the image.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum {
  C_PING = 1,
  C_START = 2,
  C_STDIN = 3,
  C_KILL = 4,
  C_CREDIT = 5,
  C_QUIESCE = 6,
  S_PONG = 129,
  S_OUT = 130,
  S_ACK = 131,
  S_EXIT = 132,
  S_ERROR = 133,
  S_QUIESCED = 134,
};

#define F_RAW 1u
#define F_STDIN 2u
#define X_TIMED_OUT 1u
#define X_KILLED 2u
#define X_OOM 4u

#define HDR 9
#define MAX_IN_FRAME (8u << 20)
#define OUT_CHUNK (64u << 10)
#define READ_BUF (256u << 10)
#define PIPE_SIZE (1u << 20)
#define BLK 16384
/* After the command's own process exits, how long to wait for background processes that
 * still hold its output pipes open before reporting the exit anyway. */
#define EXIT_GRACE_MS 200

struct buf {
  uint8_t *p;
  size_t off, len, cap;
};

struct blk {
  struct blk *next;
  uint32_t start, len;
  uint8_t stream;
  uint8_t data[BLK];
};

struct cmd {
  struct cmd *next;
  uint32_t id, flags;
  pid_t pid;
  int fd_out, fd_err, fd_in;
  int reaped, status, timed_out, killed, oom_known;
  uint64_t oom_before, start_ms, deadline_ms, exit_ms, grace_ms;
  uint64_t head_cap, tail_cap, head_sent, tail_len, dropped;
  struct blk *tail_first, *tail_last;
  int64_t credit;
  struct buf inq;
  int in_eof, in_dead;
};

static struct buf inbuf, outq;
static struct cmd *cmds;
static uint8_t rbuf[READ_BUF];
static int sigfd = -1;

static void die(const char *what) {
  dprintf(2, "pb-execd: %s: %s\n", what, strerror(errno));
  exit(111);
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void buf_reserve(struct buf *b, size_t n) {
  if (b->off > 0 && b->off + b->len + n > b->cap) {
    memmove(b->p, b->p + b->off, b->len);
    b->off = 0;
  }
  if (b->len + n > b->cap) {
    size_t c = b->cap ? b->cap : 4096;
    while (c < b->len + n) c *= 2;
    uint8_t *p = realloc(b->p, c);
    if (!p) die("realloc");
    b->p = p;
    b->cap = c;
  }
}

static void buf_put(struct buf *b, const void *d, size_t n) {
  buf_reserve(b, n);
  memcpy(b->p + b->off + b->len, d, n);
  b->len += n;
}

static void buf_consume(struct buf *b, size_t n) {
  b->off += n;
  b->len -= n;
  if (b->len == 0) {
    b->off = 0;
    /* Give a burst's memory back: it counts against the container's limit. */
    if (b->cap > (1u << 20)) {
      free(b->p);
      b->p = NULL;
      b->cap = 0;
    }
  }
}

static void buf_free(struct buf *b) {
  free(b->p);
  memset(b, 0, sizeof *b);
}

static void put_u32(uint8_t *p, uint32_t v) {
  p[0] = v & 0xff;
  p[1] = (v >> 8) & 0xff;
  p[2] = (v >> 16) & 0xff;
  p[3] = (v >> 24) & 0xff;
}

static uint32_t get_u32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void frame(uint8_t type, uint32_t id, const void *a, size_t alen, const void *b,
                  size_t blen) {
  uint8_t h[HDR];
  put_u32(h, (uint32_t)(alen + blen));
  h[4] = type;
  put_u32(h + 5, id);
  buf_put(&outq, h, HDR);
  if (alen) buf_put(&outq, a, alen);
  if (blen) buf_put(&outq, b, blen);
}

static void send_out(uint32_t id, uint8_t stream, const uint8_t *d, size_t n) {
  while (n > 0) {
    size_t k = n > OUT_CHUNK ? OUT_CHUNK : n;
    frame(S_OUT, id, &stream, 1, d, k);
    d += k;
    n -= k;
  }
}

static void send_error(uint32_t id, const char *msg) { frame(S_ERROR, id, msg, strlen(msg), 0, 0); }

static void flush_out(void) {
  while (outq.len > 0) {
    ssize_t w = write(1, outq.p + outq.off, outq.len);
    if (w > 0) {
      buf_consume(&outq, (size_t)w);
    } else if (w < 0 && errno == EINTR) {
      continue;
    } else if (w < 0 && errno == EAGAIN) {
      return;
    } else {
      /* The worker is gone: nothing can be reported any more. */
      exit(0);
    }
  }
}

/* ---- OOM kills, counted by the container's memory cgroup (v1, then v2) ---- */

static int read_oom_kills(uint64_t *out) {
  static const char *files[] = {"/sys/fs/cgroup/memory/memory.oom_control",
                                "/sys/fs/cgroup/memory.events"};
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    FILE *f = fopen(files[i], "re");
    if (!f) continue;
    char line[128];
    unsigned long long v;
    while (fgets(line, sizeof line, f)) {
      if (sscanf(line, "oom_kill %llu", &v) == 1) {
        fclose(f);
        *out = v;
        return 1;
      }
    }
    fclose(f);
  }
  return 0;
}

/* ---- killing a whole process tree ---- */

struct pinfo {
  pid_t pid, ppid, pgrp, sid;
  char state;
  int mark;
};

static size_t scan_procs(struct pinfo **out, size_t *cap) {
  DIR *d = opendir("/proc");
  if (!d) return 0;
  size_t n = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
    char path[300], text[512];
    snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    ssize_t r = read(fd, text, sizeof text - 1);
    close(fd);
    if (r <= 0) continue;
    text[r] = 0;
    /* The command name may hold spaces and parentheses: parse after the last ')'. */
    char *p = strrchr(text, ')');
    if (!p) continue;
    struct pinfo pi = {0};
    pi.pid = atoi(e->d_name);
    if (sscanf(p + 1, " %c %d %d %d", &pi.state, &pi.ppid, &pi.pgrp, &pi.sid) != 4) continue;
    if (n == *cap) {
      *cap = *cap ? *cap * 2 : 256;
      struct pinfo *q = realloc(*out, *cap * sizeof **out);
      if (!q) die("realloc");
      *out = q;
    }
    (*out)[n++] = pi;
  }
  closedir(d);
  return n;
}

static int has_pid(const pid_t *v, size_t n, pid_t p) {
  for (size_t i = 0; i < n; i++)
    if (v[i] == p) return 1;
  return 0;
}

/*
 * Kills the command led by `leader` and everything it started. The leader is a child subreaper
 * (set before exec), so while it lives, orphans of its tree (double forks, `setsid` daemons)
 * are reparented to it rather than escaping to PID 1; its session and process group catch the
 * rest. Each round stops (SIGSTOP) every member not yet stopped, so nothing can fork while it
 * is being counted; when a round finds nothing new, all of them get SIGKILL.
 */
static void kill_tree(pid_t leader) {
  static struct pinfo *procs;
  static size_t procs_cap;
  pid_t *stopped = NULL;
  size_t nstopped = 0, stopped_cap = 0;
  /* The command's own process group first, in one call: a fork bomb in it stops spreading at
   * once, and the rounds below only have to find what left the group. (Under gVisor, where
   * each /proc read is slow, the rounds alone could take longer than the worker waits.) */
  kill(-leader, SIGSTOP);
  for (int round = 0; round < 64; round++) {
    size_t n = scan_procs(&procs, &procs_cap);
    for (size_t i = 0; i < n; i++)
      procs[i].mark = procs[i].pid == leader || procs[i].sid == leader || procs[i].pgrp == leader;
    for (int changed = 1; changed;) {
      changed = 0;
      for (size_t i = 0; i < n; i++) {
        if (procs[i].mark) continue;
        for (size_t j = 0; j < n; j++) {
          if (procs[j].mark && procs[j].pid == procs[i].ppid) {
            procs[i].mark = 1;
            changed = 1;
            break;
          }
        }
      }
    }
    int found = 0;
    for (size_t i = 0; i < n; i++) {
      if (!procs[i].mark || procs[i].state == 'Z' || has_pid(stopped, nstopped, procs[i].pid))
        continue;
      kill(procs[i].pid, SIGSTOP);
      if (nstopped == stopped_cap) {
        stopped_cap = stopped_cap ? stopped_cap * 2 : 64;
        pid_t *q = realloc(stopped, stopped_cap * sizeof *q);
        if (!q) die("realloc");
        stopped = q;
      }
      stopped[nstopped++] = procs[i].pid;
      found = 1;
    }
    if (!found) break;
  }
  for (size_t i = 0; i < nstopped; i++) kill(stopped[i], SIGKILL);
  kill(-leader, SIGKILL);
  kill(leader, SIGKILL);
  free(stopped);
}

/* ---- output capping ---- */

static void tail_clear(struct cmd *c) {
  while (c->tail_first) {
    struct blk *b = c->tail_first;
    c->tail_first = b->next;
    free(b);
  }
  c->tail_last = NULL;
  c->tail_len = 0;
}

static void tail_append(struct cmd *c, uint8_t stream, const uint8_t *d, size_t n) {
  if (n >= c->tail_cap) {
    /* The new bytes alone fill the tail: whatever was kept before is dropped. */
    c->dropped += c->tail_len + (n - c->tail_cap);
    tail_clear(c);
    d += n - c->tail_cap;
    n = c->tail_cap;
  }
  c->tail_len += n;
  while (n > 0) {
    struct blk *b = c->tail_last;
    if (!b || b->stream != stream || b->start + b->len == BLK) {
      b = malloc(sizeof *b);
      if (!b) die("malloc");
      b->next = NULL;
      b->start = b->len = 0;
      b->stream = stream;
      if (c->tail_last)
        c->tail_last->next = b;
      else
        c->tail_first = b;
      c->tail_last = b;
    }
    size_t room = BLK - (b->start + b->len);
    size_t k = n < room ? n : room;
    memcpy(b->data + b->start + b->len, d, k);
    b->len += (uint32_t)k;
    d += k;
    n -= k;
  }
  while (c->tail_len > c->tail_cap) {
    struct blk *b = c->tail_first;
    uint64_t over = c->tail_len - c->tail_cap;
    uint32_t k = over < b->len ? (uint32_t)over : b->len;
    b->start += k;
    b->len -= k;
    c->tail_len -= k;
    c->dropped += k;
    if (b->len == 0) {
      c->tail_first = b->next;
      if (!c->tail_first) c->tail_last = NULL;
      free(b);
    }
  }
}

static void feed_output(struct cmd *c, uint8_t stream, const uint8_t *d, size_t n) {
  if (c->flags & F_RAW) {
    send_out(c->id, stream, d, n);
    return;
  }
  if (c->head_sent < c->head_cap) {
    uint64_t room = c->head_cap - c->head_sent;
    size_t k = n < room ? n : (size_t)room;
    send_out(c->id, stream, d, k);
    c->head_sent += k;
    d += k;
    n -= k;
  }
  if (n > 0) tail_append(c, stream, d, n);
}

/* ---- commands ---- */

static struct cmd *find_cmd(uint32_t id) {
  for (struct cmd *c = cmds; c; c = c->next)
    if (c->id == id) return c;
  return NULL;
}

static void close_fd(int *fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

static void finish(struct cmd *c) {
  close_fd(&c->fd_out);
  close_fd(&c->fd_err);
  close_fd(&c->fd_in);
  buf_free(&c->inq);
  for (struct blk *b = c->tail_first; b; b = b->next) {
    uint8_t s = b->stream | 0x80;
    frame(S_OUT, c->id, &s, 1, b->data + b->start, b->len);
  }
  tail_clear(c);
  uint32_t flags = 0;
  if (c->timed_out) flags |= X_TIMED_OUT;
  if (c->killed) flags |= X_KILLED;
  uint64_t oom_after;
  if (c->oom_known && read_oom_kills(&oom_after) && oom_after > c->oom_before) flags |= X_OOM;
  int32_t code = -1, sig = 0;
  if (WIFEXITED(c->status))
    code = WEXITSTATUS(c->status);
  else if (WIFSIGNALED(c->status))
    sig = WTERMSIG(c->status);
  uint8_t p[24];
  put_u32(p, (uint32_t)code);
  put_u32(p + 4, (uint32_t)sig);
  put_u32(p + 8, (uint32_t)(c->dropped & 0xffffffffu));
  put_u32(p + 12, (uint32_t)(c->dropped >> 32));
  uint64_t wall = c->exit_ms - c->start_ms;
  put_u32(p + 16, wall > 0xffffffffu ? 0xffffffffu : (uint32_t)wall);
  put_u32(p + 20, flags);
  frame(S_EXIT, c->id, p, sizeof p, 0, 0);
  struct cmd **pp = &cmds;
  while (*pp != c) pp = &(*pp)->next;
  *pp = c->next;
  free(c);
}

/* A command that could not be started is reported like a shell would: a message, then 126. */
static void fail_start(uint32_t id, const char *what, int err) {
  char msg[256];
  int n = snprintf(msg, sizeof msg, "pb-execd: cannot start command: %s: %s\n", what,
                   strerror(err));
  send_out(id, 2, (const uint8_t *)msg, (size_t)n);
  uint8_t p[24] = {0};
  put_u32(p, 126);
  frame(S_EXIT, id, p, sizeof p, 0, 0);
}

static int make_pipe(int fds[2]) {
  if (pipe2(fds, O_CLOEXEC) < 0) return -1;
  return 0;
}

static void start_cmd(uint32_t id, const uint8_t *p, uint32_t len) {
  if (find_cmd(id)) {
    send_error(id, "duplicate command id");
    return;
  }
  if (len < 24) {
    send_error(id, "short START frame");
    return;
  }
  uint32_t flags = get_u32(p), timeout_ms = get_u32(p + 4), max_output = get_u32(p + 8);
  uint32_t credit = get_u32(p + 12), argc = get_u32(p + 16), envc = get_u32(p + 20);
  if (argc == 0 || argc > 65536 || envc > 65536) {
    send_error(id, "bad argument count");
    return;
  }
  /* Strings are NUL-terminated inside the frame; point at them in place. */
  char **strs = calloc((size_t)argc + envc + 2, sizeof *strs);
  if (!strs) die("calloc");
  const char *s = (const char *)p + 24, *end = (const char *)p + len;
  for (uint32_t i = 0; i < 1 + argc + envc; i++) {
    const char *z = memchr(s, 0, (size_t)(end - s));
    if (!z) {
      free(strs);
      send_error(id, "unterminated string in START frame");
      return;
    }
    strs[i] = (char *)s;
    s = z + 1;
  }
  const char *cwd = strs[0];
  char **argv = strs + 1;
  char **env = strs + 1 + argc;
  /* argv must end with NULL for execvp: move env one slot on. */
  memmove(env + 1, env, envc * sizeof *env);
  argv[argc] = NULL;
  env++;

  int out[2] = {-1, -1}, err[2] = {-1, -1}, in[2] = {-1, -1};
  int devnull = -1;
  if (make_pipe(out) < 0 || make_pipe(err) < 0 ||
      ((flags & F_STDIN) ? make_pipe(in) : (devnull = open("/dev/null", O_RDONLY | O_CLOEXEC))) <
          0) {
    int e = errno;
    close_fd(&out[0]), close_fd(&out[1]), close_fd(&err[0]), close_fd(&err[1]);
    close_fd(&in[0]), close_fd(&in[1]), close_fd(&devnull);
    free(strs);
    fail_start(id, "pipe", e);
    return;
  }
  fcntl(out[1], F_SETPIPE_SZ, PIPE_SIZE);
  if (flags & F_STDIN) fcntl(in[1], F_SETPIPE_SZ, PIPE_SIZE);

  uint64_t oom_before = 0;
  int oom_known = read_oom_kills(&oom_before);
  uint64_t t0 = now_ms();
  pid_t pid = fork();
  if (pid == 0) {
    /* Its own session and process group, and a subreaper, so kill_tree finds everything. */
    setsid();
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    /* Under memory pressure the kernel should kill the command, not the server. */
    int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
      if (write(fd, "1000", 4) < 0) { /* best effort */
      }
      close(fd);
    }
    dup2((flags & F_STDIN) ? in[0] : devnull, 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    for (uint32_t i = 0; i < envc; i++) putenv(env[i]);
    if (cwd[0] && chdir(cwd) < 0) {
      dprintf(2, "pb-execd: cannot change directory to %s: %s\n", cwd, strerror(errno));
      _exit(126);
    }
    execvp(argv[0], argv);
    int e = errno;
    dprintf(2, "pb-execd: %s: %s\n", argv[0], strerror(e));
    _exit(e == ENOENT ? 127 : 126);
  }
  int fork_errno = errno;
  free(strs);
  close_fd(&out[1]);
  close_fd(&err[1]);
  close_fd(&in[0]);
  close_fd(&devnull);
  if (pid < 0) {
    close_fd(&out[0]), close_fd(&err[0]), close_fd(&in[1]);
    fail_start(id, "fork", fork_errno);
    return;
  }
  struct cmd *c = calloc(1, sizeof *c);
  if (!c) die("calloc");
  c->id = id;
  c->flags = flags;
  c->pid = pid;
  c->fd_out = out[0];
  c->fd_err = err[0];
  c->fd_in = in[1];
  fcntl(c->fd_out, F_SETFL, O_NONBLOCK);
  fcntl(c->fd_err, F_SETFL, O_NONBLOCK);
  if (c->fd_in >= 0) fcntl(c->fd_in, F_SETFL, O_NONBLOCK);
  c->start_ms = t0;
  c->deadline_ms = timeout_ms ? t0 + timeout_ms : 0;
  c->oom_known = oom_known;
  c->oom_before = oom_before;
  c->head_cap = max_output / 2;
  c->tail_cap = max_output - c->head_cap;
  c->credit = credit;
  c->next = cmds;
  cmds = c;
}

static void write_stdin(struct cmd *c) {
  while (c->inq.len > 0 && c->fd_in >= 0) {
    ssize_t w = write(c->fd_in, c->inq.p + c->inq.off, c->inq.len);
    if (w > 0) {
      uint8_t a[4];
      put_u32(a, (uint32_t)w);
      frame(S_ACK, c->id, a, 4, 0, 0);
      buf_consume(&c->inq, (size_t)w);
    } else if (w < 0 && errno == EINTR) {
      continue;
    } else if (w < 0 && errno == EAGAIN) {
      return;
    } else {
      /* The command closed its stdin: acknowledge the rest so the sender is never stuck. */
      uint8_t a[4];
      put_u32(a, (uint32_t)c->inq.len);
      frame(S_ACK, c->id, a, 4, 0, 0);
      buf_free(&c->inq);
      close_fd(&c->fd_in);
      c->in_dead = 1;
    }
  }
  if (c->inq.len == 0 && c->in_eof) close_fd(&c->fd_in);
}

static void on_stdin_frame(struct cmd *c, const uint8_t *p, uint32_t len) {
  if (len == 0) {
    c->in_eof = 1;
  } else if (c->in_dead || c->fd_in < 0) {
    uint8_t a[4];
    put_u32(a, len);
    frame(S_ACK, c->id, a, 4, 0, 0);
    return;
  } else {
    buf_put(&c->inq, p, len);
  }
  write_stdin(c);
}

static void kill_all(void) {
  for (struct cmd *c = cmds; c; c = c->next)
    if (!c->reaped) kill_tree(c->pid);
}

/*
 * Empties the sandbox of everything but execd and init: what the agent left running (a dev
 * server, a runaway job, a fork bomb filling the pids limit) must not stop the worker from
 * collecting the agent's work. kill(-1) reaches every process this user may signal, which in the
 * sandbox is all of them but init and execd itself; the kernel delivers it under the task list
 * lock, so nothing forks past it. Rounds repeat until /proc holds nothing else (zombies
 * included, since they still count against the pids limit), for at most about two seconds.
 */
static void reap(void);

static void quiesce(uint32_t id) {
  static struct pinfo *procs;
  static size_t procs_cap;
  pid_t self = getpid();
  uint32_t killed = 0, left = 0;
  for (struct cmd *c = cmds; c; c = c->next)
    if (!c->reaped) c->killed = 1;
  for (int round = 0; round < 400; round++) {
    size_t n = scan_procs(&procs, &procs_cap);
    left = 0;
    uint32_t alive = 0;
    for (size_t i = 0; i < n; i++) {
      if (procs[i].pid == self || procs[i].pid == 1) continue;
      left++;
      if (procs[i].state != 'Z' && procs[i].state != 'X') alive++;
    }
    if (round == 0) killed = alive;
    if (left == 0) break;
    if (alive > 0) kill(-1, SIGKILL);
    reap();
    struct timespec pause = {0, 5 * 1000 * 1000};
    nanosleep(&pause, NULL);
  }
  uint8_t p[8];
  put_u32(p, killed);
  put_u32(p + 4, left);
  frame(S_QUIESCED, id, p, sizeof p, 0, 0);
}

static void handle_frames(void) {
  size_t pos = 0;
  while (inbuf.len - pos >= HDR) {
    const uint8_t *h = inbuf.p + inbuf.off + pos;
    uint32_t len = get_u32(h);
    if (len > MAX_IN_FRAME) {
      dprintf(2, "pb-execd: frame of %u bytes: protocol error\n", len);
      kill_all();
      exit(2);
    }
    if (inbuf.len - pos < HDR + (size_t)len) break;
    uint8_t type = h[4];
    uint32_t id = get_u32(h + 5);
    const uint8_t *p = h + HDR;
    struct cmd *c;
    switch (type) {
    case C_PING:
      frame(S_PONG, id, 0, 0, 0, 0);
      break;
    case C_START:
      start_cmd(id, p, len);
      break;
    case C_STDIN:
      if ((c = find_cmd(id))) on_stdin_frame(c, p, len);
      break;
    case C_KILL:
      if ((c = find_cmd(id))) {
        c->killed = 1;
        if (!c->reaped) kill_tree(c->pid);
      }
      break;
    case C_CREDIT:
      if ((c = find_cmd(id)) && len >= 4) c->credit += get_u32(p);
      break;
    case C_QUIESCE:
      quiesce(id);
      break;
    default:
      send_error(id, "unknown frame type");
    }
    pos += HDR + len;
  }
  buf_consume(&inbuf, pos);
}

static void read_input(void) {
  for (;;) {
    buf_reserve(&inbuf, 65536);
    ssize_t r = read(0, inbuf.p + inbuf.off + inbuf.len, inbuf.cap - inbuf.off - inbuf.len);
    if (r > 0) {
      inbuf.len += (size_t)r;
      handle_frames();
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && errno == EAGAIN) return;
    /* The worker detached (or died): nobody can collect results, so stop everything. The
     * container's init then exits and the engine stops the container. */
    kill_all();
    exit(0);
  }
}

static void read_pipe(struct cmd *c, int *fd, uint8_t stream) {
  size_t want = READ_BUF;
  if (c->flags & F_RAW) {
    if (c->credit <= 0) return;
    if ((int64_t)want > c->credit) want = (size_t)c->credit;
  }
  ssize_t r = read(*fd, rbuf, want);
  if (r > 0) {
    if (c->flags & F_RAW) c->credit -= r;
    feed_output(c, stream, rbuf, (size_t)r);
  } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
    close_fd(fd);
  }
}

static void reap(void) {
  struct signalfd_siginfo ssi;
  while (read(sigfd, &ssi, sizeof ssi) > 0) {
  }
  int st;
  pid_t pid;
  while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
    for (struct cmd *c = cmds; c; c = c->next) {
      if (c->pid != pid) continue;
      c->reaped = 1;
      c->status = st;
      c->exit_ms = now_ms();
      c->grace_ms = c->exit_ms + EXIT_GRACE_MS;
      /* Nobody reads stdin any more. */
      buf_free(&c->inq);
      close_fd(&c->fd_in);
      c->in_dead = 1;
      break;
    }
  }
}

/* Output pipes of finished commands still held open by processes they left running. They are
 * drained and the bytes thrown away: closing them instead would kill a background server with
 * SIGPIPE at its next log line, and leaving them unread would block it. */
#define MAX_ORPHANS 1024
static int orphans[MAX_ORPHANS];
static size_t norphans;

static void adopt_pipe(int *fd) {
  if (*fd < 0) return;
  if (norphans == MAX_ORPHANS) {
    close(orphans[0]);
    memmove(orphans, orphans + 1, (MAX_ORPHANS - 1) * sizeof *orphans);
    norphans--;
  }
  orphans[norphans++] = *fd;
  *fd = -1;
}

static void drain_orphan(size_t i) {
  ssize_t r = read(orphans[i], rbuf, READ_BUF);
  if (r > 0 || (r < 0 && (errno == EAGAIN || errno == EINTR))) return;
  close(orphans[i]);
  orphans[i] = orphans[--norphans];
}

/* Takes what is already in a capped command's pipe (a bounded amount: a background writer
 * may never stop), then lets it go. */
static void drain_close(struct cmd *c, int *fd, uint8_t stream) {
  for (int i = 0; i < 16 && *fd >= 0 && !(c->flags & F_RAW); i++) {
    ssize_t r = read(*fd, rbuf, READ_BUF);
    if (r == 0 || (r < 0 && errno != EINTR)) {
      if (r == 0) close_fd(fd);
      break;
    }
    if (r > 0) feed_output(c, stream, rbuf, (size_t)r);
  }
  adopt_pipe(fd);
}

static int pipe_empty(int fd) {
  int n = 0;
  return ioctl(fd, FIONREAD, &n) < 0 || n == 0;
}

/* Finishes what is done; returns the poll timeout until the next deadline. */
static int check_cmds(void) {
  uint64_t now = now_ms();
  int64_t wait = -1;
  for (struct cmd *c = cmds, *next; c; c = next) {
    next = c->next;
    if (!c->reaped) {
      if (c->deadline_ms && !c->timed_out) {
        if (now >= c->deadline_ms) {
          c->timed_out = 1;
          kill_tree(c->pid);
        } else if (wait < 0 || (int64_t)(c->deadline_ms - now) < wait) {
          wait = (int64_t)(c->deadline_ms - now);
        }
      }
      continue;
    }
    int stopped = c->killed || c->timed_out;
    if (stopped || now >= c->grace_ms) {
      /* Background processes still hold the pipes: stop reading. A RAW transfer keeps
       * whatever is still buffered, waiting for credit as long as it takes, unless it was
       * cancelled or timed out. */
      int keep = (c->flags & F_RAW) && !stopped;
      if (!keep || pipe_empty(c->fd_out)) drain_close(c, &c->fd_out, 1);
      if (!keep || pipe_empty(c->fd_err)) drain_close(c, &c->fd_err, 2);
    } else if (wait < 0 || (int64_t)(c->grace_ms - now) < wait) {
      wait = (int64_t)(c->grace_ms - now);
    }
    if (c->fd_out < 0 && c->fd_err < 0) finish(c);
  }
  return (int)wait;
}

int relay_main(int argc, char **argv);

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "relay") == 0) return relay_main(argc, argv);
  /* Commands run as the same user: without this they could open /proc/<execd>/fd/N and read
   * or write the worker's stream. (The init process holds the same pipes; the worker does not
   * trust what comes out beyond the limits it asked for.) */
  prctl(PR_SET_DUMPABLE, 0);
  signal(SIGPIPE, SIG_IGN);
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, NULL);
  sigfd = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
  if (sigfd < 0) die("signalfd");
  fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
  fcntl(1, F_SETFL, fcntl(1, F_GETFL) | O_NONBLOCK);

  struct pollfd *pfds = NULL;
  struct cmd **owners = NULL;
  size_t pcap = 0;
  for (;;) {
    int timeout = check_cmds();
    flush_out();
    size_t n = 0, need = 3 + norphans;
    for (struct cmd *c = cmds; c; c = c->next) need += 3;
    if (need > pcap) {
      pcap = need * 2;
      pfds = realloc(pfds, pcap * sizeof *pfds);
      owners = realloc(owners, pcap * sizeof *owners);
      if (!pfds || !owners) die("realloc");
    }
    pfds[n] = (struct pollfd){.fd = 0, .events = POLLIN};
    owners[n++] = NULL;
    pfds[n] = (struct pollfd){.fd = outq.len ? 1 : -1, .events = POLLOUT};
    owners[n++] = NULL;
    pfds[n] = (struct pollfd){.fd = sigfd, .events = POLLIN};
    owners[n++] = NULL;
    for (struct cmd *c = cmds; c; c = c->next) {
      int want_out = !(c->flags & F_RAW) || c->credit > 0;
      pfds[n] = (struct pollfd){.fd = want_out ? c->fd_out : -1, .events = POLLIN};
      owners[n++] = c;
      pfds[n] = (struct pollfd){.fd = want_out ? c->fd_err : -1, .events = POLLIN};
      owners[n++] = c;
      pfds[n] = (struct pollfd){.fd = c->inq.len ? c->fd_in : -1, .events = POLLOUT};
      owners[n++] = c;
    }
    size_t first_orphan = n;
    for (size_t i = 0; i < norphans; i++) {
      pfds[n] = (struct pollfd){.fd = orphans[i], .events = POLLIN};
      owners[n++] = NULL;
    }
    int r = poll(pfds, n, timeout);
    if (r < 0) {
      if (errno == EINTR) continue;
      die("poll");
    }
    if (pfds[2].revents) reap();
    /* Commands first: a frame read below may finish or free one of them. */
    /* Backwards: drain_orphan moves the last orphan into the slot it frees. */
    for (size_t i = n; i-- > first_orphan;)
      if (pfds[i].revents) drain_orphan(i - first_orphan);
    for (size_t i = 3; i < first_orphan; i++) {
      struct cmd *c = owners[i];
      if (!pfds[i].revents || pfds[i].fd < 0) continue;
      if ((i - 3) % 3 == 0 && pfds[i].fd == c->fd_out)
        read_pipe(c, &c->fd_out, 1);
      else if ((i - 3) % 3 == 1 && pfds[i].fd == c->fd_err)
        read_pipe(c, &c->fd_err, 2);
      else if ((i - 3) % 3 == 2 && pfds[i].fd == c->fd_in)
        write_stdin(c);
    }
    if (pfds[1].revents & (POLLERR | POLLHUP)) exit(0);
    if (pfds[0].revents) read_input();
  }
}
