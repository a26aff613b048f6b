/*
 * gvisor-statx.so: preloaded into every command of a sandbox that runs under gVisor (`runsc`),
 * and only there. Debian 12's runsc (release 20221219) refuses statx() with AT_NO_AUTOMOUNT
 * (EINVAL), which coreutils passes on every call: `ls` and `stat` fail on every path. Nothing
 * automounts in a sandbox, so the flag changes nothing there; this drops it and asks again.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

int statx(int dirfd, const char *path, int flags, unsigned int mask, struct statx *buf) {
  return (int)syscall(SYS_statx, dirfd, path, flags & ~AT_NO_AUTOMOUNT, mask, buf);
}
