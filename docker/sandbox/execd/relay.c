/*
 * `pb-execd relay`: how a sandbox reaches a service of the worker's (the model gateway, the
 * egress proxy) on any engine, with no network of its own.
 *
 * The worker runs it as a RAW command over the exec channel. It listens on a loopback port
 * inside the sandbox and carries each connection accepted there over its own stdin/stdout,
 * multiplexed; the worker joins each one to the service. Nothing is routed: the sandbox keeps
 * only its loopback, the connection's only way out is this process's pipes to the worker, and
 * the worker knows which sandbox (so which task) every byte came from.
 *
 * Frame: u32le payload length, u8 type, u32le connection id, payload (the exec protocol's).
 * relay -> worker: READY (1) u32 port; OPEN (2); DATA (3) bytes; EOF (4): the sandbox side
 *                  sent all it will; CLOSE (5): the connection is gone.
 * worker -> relay: DATA (3); EOF (4); CLOSE (5).
 * The relay ends when its stdin ends (the worker released it), or when it is killed.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum { R_READY = 1, R_OPEN = 2, R_DATA = 3, R_EOF = 4, R_CLOSE = 5 };

#define R_HDR 9
#define R_MAX_CONNS 256
#define R_CHUNK (64u << 10)
/* Bytes waiting to be written to one connection before the relay stops reading its stdin:
 * a client that does not read its answers slows its own relay, and holds no more than this. */
#define R_BACKLOG (1u << 20)
#define R_MAX_FRAME (8u << 20)

struct rconn {
  uint32_t id;
  int fd;
  int rd_done; /* the sandbox side sent EOF */
  int wr_done; /* the worker sent EOF: shut down once the backlog is written */
  uint8_t *q;
  size_t qoff, qlen, qcap;
};

static struct rconn rconns[R_MAX_CONNS];
static size_t nrconns;
static uint32_t next_rid = 1;

static void r_die(const char *what) {
  dprintf(2, "pb-execd relay: %s: %s\n", what, strerror(errno));
  exit(111);
}

static void r_put32(uint8_t *p, uint32_t v) {
  p[0] = v & 0xff;
  p[1] = (v >> 8) & 0xff;
  p[2] = (v >> 16) & 0xff;
  p[3] = (v >> 24) & 0xff;
}

static uint32_t r_get32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void write_all(int fd, const uint8_t *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w > 0) {
      p += w;
      n -= (size_t)w;
    } else if (w < 0 && errno == EINTR) {
      continue;
    } else {
      /* The worker is gone. */
      exit(0);
    }
  }
}

/* stdout is blocking: when the worker grants no more credit, the whole relay waits. */
static void r_frame(uint8_t type, uint32_t id, const void *d, size_t n) {
  uint8_t h[R_HDR];
  r_put32(h, (uint32_t)n);
  h[4] = type;
  r_put32(h + 5, id);
  write_all(1, h, R_HDR);
  if (n) write_all(1, d, n);
}

static struct rconn *r_find(uint32_t id) {
  for (size_t i = 0; i < nrconns; i++)
    if (rconns[i].id == id) return &rconns[i];
  return NULL;
}

static void r_drop(struct rconn *c, int tell) {
  if (tell) r_frame(R_CLOSE, c->id, NULL, 0);
  close(c->fd);
  free(c->q);
  *c = rconns[--nrconns];
}

static void r_queue(struct rconn *c, const uint8_t *d, size_t n) {
  if (c->qoff + c->qlen + n > c->qcap) {
    if (c->qoff) {
      memmove(c->q, c->q + c->qoff, c->qlen);
      c->qoff = 0;
    }
    if (c->qlen + n > c->qcap) {
      size_t cap = c->qcap ? c->qcap : 16384;
      while (cap < c->qlen + n) cap *= 2;
      uint8_t *q = realloc(c->q, cap);
      if (!q) r_die("realloc");
      c->q = q;
      c->qcap = cap;
    }
  }
  memcpy(c->q + c->qoff + c->qlen, d, n);
  c->qlen += n;
}

/* Writes what is queued for a connection; returns 0 when the connection was dropped. */
static int r_flush(struct rconn *c) {
  while (c->qlen > 0) {
    ssize_t w = send(c->fd, c->q + c->qoff, c->qlen, MSG_NOSIGNAL);
    if (w > 0) {
      c->qoff += (size_t)w;
      c->qlen -= (size_t)w;
    } else if (w < 0 && errno == EINTR) {
      continue;
    } else if (w < 0 && errno == EAGAIN) {
      return 1;
    } else {
      r_drop(c, 1);
      return 0;
    }
  }
  c->qoff = 0;
  if (c->wr_done) {
    shutdown(c->fd, SHUT_WR);
    if (c->rd_done) {
      r_drop(c, 1);
      return 0;
    }
  }
  return 1;
}

static void r_on_frame(uint8_t type, uint32_t id, const uint8_t *p, uint32_t len) {
  struct rconn *c = r_find(id);
  if (!c) return; /* closed here already */
  switch (type) {
    case R_DATA:
      r_queue(c, p, len);
      r_flush(c);
      break;
    case R_EOF:
      c->wr_done = 1;
      r_flush(c);
      break;
    case R_CLOSE:
      r_drop(c, 0);
      break;
    default:
      errno = EPROTO;
      r_die("unknown frame from the worker");
  }
}

static size_t r_backlog(void) {
  size_t most = 0;
  for (size_t i = 0; i < nrconns; i++)
    if (rconns[i].qlen > most) most = rconns[i].qlen;
  return most;
}

int relay_main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  int port = argc > 2 ? atoi(argv[2]) : 0;
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (lfd < 0) r_die("socket");
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0) r_die("bind");
  if (listen(lfd, 64) < 0) r_die("listen");
  socklen_t alen = sizeof addr;
  if (getsockname(lfd, (struct sockaddr *)&addr, &alen) < 0) r_die("getsockname");
  fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
  fcntl(1, F_SETFL, fcntl(1, F_GETFL) & ~O_NONBLOCK);
  uint8_t portbuf[4];
  r_put32(portbuf, ntohs(addr.sin_port));
  r_frame(R_READY, 0, portbuf, 4);

  static uint8_t rd[R_CHUNK];
  uint8_t *in = NULL;
  size_t inlen = 0, incap = 0;
  struct pollfd pfds[2 + R_MAX_CONNS];
  for (;;) {
    size_t n = 0;
    int room = r_backlog() < R_BACKLOG;
    pfds[n++] = (struct pollfd){.fd = room ? 0 : -1, .events = POLLIN};
    pfds[n++] = (struct pollfd){.fd = nrconns < R_MAX_CONNS ? lfd : -1, .events = POLLIN};
    for (size_t i = 0; i < nrconns; i++) {
      short ev = (rconns[i].rd_done ? 0 : POLLIN) | (rconns[i].qlen ? POLLOUT : 0);
      pfds[n++] = (struct pollfd){.fd = ev ? rconns[i].fd : -1, .events = ev};
    }
    if (poll(pfds, n, -1) < 0) {
      if (errno == EINTR) continue;
      r_die("poll");
    }
    /* Connections first, from the last: dropping one moves the last into its slot. */
    for (size_t i = n; i-- > 2;) {
      struct rconn *c = &rconns[i - 2];
      short re = pfds[i].revents;
      if (!re || pfds[i].fd != c->fd) continue;
      if ((re & POLLOUT) && !r_flush(c)) continue;
      if (re & (POLLIN | POLLHUP | POLLERR)) {
        if (c->rd_done) continue;
        ssize_t r = recv(c->fd, rd, sizeof rd, 0);
        if (r > 0) {
          r_frame(R_DATA, c->id, rd, (size_t)r);
        } else if (r == 0) {
          c->rd_done = 1;
          r_frame(R_EOF, c->id, NULL, 0);
          if (c->wr_done && c->qlen == 0) r_drop(c, 1);
        } else if (errno != EAGAIN && errno != EINTR) {
          r_drop(c, 1);
        }
      }
    }
    if (pfds[1].revents & POLLIN) {
      int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (fd >= 0) {
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct rconn *c = &rconns[nrconns++];
        *c = (struct rconn){.id = next_rid, .fd = fd};
        next_rid = next_rid >= 0xfffffff0u ? 1 : next_rid + 1;
        r_frame(R_OPEN, c->id, NULL, 0);
      }
    }
    if (pfds[0].revents) {
      if (inlen + R_CHUNK > incap) {
        incap = incap ? incap * 2 : 2 * R_CHUNK;
        in = realloc(in, incap);
        if (!in) r_die("realloc");
      }
      ssize_t r = read(0, in + inlen, R_CHUNK);
      if (r == 0) exit(0);
      if (r < 0 && errno != EAGAIN && errno != EINTR) exit(0);
      if (r > 0) inlen += (size_t)r;
      size_t pos = 0;
      while (inlen - pos >= R_HDR) {
        uint32_t len = r_get32(in + pos);
        if (len > R_MAX_FRAME) {
          errno = EMSGSIZE;
          r_die("frame from the worker");
        }
        if (inlen - pos < R_HDR + len) break;
        r_on_frame(in[pos + 4], r_get32(in + pos + 5), in + pos + R_HDR, len);
        pos += R_HDR + len;
      }
      memmove(in, in + pos, inlen - pos);
      inlen -= pos;
      /* Give a burst's memory back: it counts against the sandbox's limit. */
      if (incap > (4u << 20) && inlen == 0) {
        free(in);
        in = NULL;
        incap = 0;
      }
    }
  }
}
