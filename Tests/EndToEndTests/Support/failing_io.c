/*
 * failing_io.c: an LD_PRELOAD library for DiskFullStressTests that makes one
 * write (or every write from one on) to the files under a directory fail,
 * as a full disk or a failing device would.
 *
 * Interposes write, pwrite, pwrite64, writev, fsync, fdatasync, ftruncate
 * and ftruncate64 (dlsym(RTLD_NEXT)). A call counts only when its descriptor
 * is a regular file whose path (/proc/self/fd/N) lies under FAILIO_DIR, so
 * stdout, stderr, pipes, sockets and /dev are never touched.
 *
 *   FAILIO_DIR      the directory whose files are watched (absolute, no
 *                   trailing slash); unset: the library does nothing
 *   FAILIO_AT       fail the Nth counted call (1-based); 0 or unset: count only
 *   FAILIO_ERRNO    the errno of the failure, as a number (28 ENOSPC, 5 EIO)
 *   FAILIO_MODE     once: only the Nth call fails;
 *                   sticky: the Nth and every later counted call fail;
 *                   short: the Nth call, when it writes more than one byte,
 *                   writes half and returns the short count (a disk that
 *                   fills mid-write), then every later counted call fails
 *   FAILIO_MATCH    optional: count only files whose path contains this text
 *   FAILIO_OPS      optional: count only these calls, e.g. "fsync,fdatasync"
 *   FAILIO_REPORT   a file (outside FAILIO_DIR) rewritten after each counted
 *                   call: "calls=C failed=F op=OP path=PATH", where OP and
 *                   PATH name the first call that failed (or "-"); no file:
 *                   no counted call. (Not written at exit: setsid(1) and
 *                   other wrappers load the library too, and their exit
 *                   would overwrite the count of the process they ran.)
 *
 * Built by the test: cc -shared -fPIC -O1 -o libfailio.so failing_io.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);
typedef ssize_t (*pwrite64_fn)(int, const void *, size_t, off64_t);
typedef ssize_t (*writev_fn)(int, const struct iovec *, int);
typedef int (*sync_fn)(int);
typedef int (*truncate_fn)(int, off_t);
typedef int (*truncate64_fn)(int, off64_t);

static write_fn real_write;
static pwrite_fn real_pwrite;
static pwrite64_fn real_pwrite64;
static writev_fn real_writev;
static sync_fn real_fsync;
static sync_fn real_fdatasync;
static truncate_fn real_ftruncate;
static truncate64_fn real_ftruncate64;

enum mode { MODE_ONCE, MODE_STICKY, MODE_SHORT };

static int enabled;
static char watched[PATH_MAX];
static size_t watched_length;
static long fail_at;
static int fail_errno = ENOSPC;
static enum mode fail_mode = MODE_ONCE;
static char report_path[PATH_MAX];
static char match[PATH_MAX];
static char ops[256];

static long calls;
static long failures;
static char failed_op[32] = "-";
static char failed_path[PATH_MAX] = "-";

__attribute__((constructor)) static void failio_init(void) {
    real_write = (write_fn)dlsym(RTLD_NEXT, "write");
    real_pwrite = (pwrite_fn)dlsym(RTLD_NEXT, "pwrite");
    real_pwrite64 = (pwrite64_fn)dlsym(RTLD_NEXT, "pwrite64");
    real_writev = (writev_fn)dlsym(RTLD_NEXT, "writev");
    real_fsync = (sync_fn)dlsym(RTLD_NEXT, "fsync");
    real_fdatasync = (sync_fn)dlsym(RTLD_NEXT, "fdatasync");
    real_ftruncate = (truncate_fn)dlsym(RTLD_NEXT, "ftruncate");
    real_ftruncate64 = (truncate64_fn)dlsym(RTLD_NEXT, "ftruncate64");

    const char *dir = getenv("FAILIO_DIR");
    if (dir == NULL || dir[0] != '/' || strlen(dir) + 2 > sizeof watched) return;
    snprintf(watched, sizeof watched, "%s/", dir);
    watched_length = strlen(watched);
    const char *at = getenv("FAILIO_AT");
    fail_at = at ? strtol(at, NULL, 10) : 0;
    const char *number = getenv("FAILIO_ERRNO");
    if (number) fail_errno = (int)strtol(number, NULL, 10);
    const char *mode = getenv("FAILIO_MODE");
    if (mode && strcmp(mode, "sticky") == 0) fail_mode = MODE_STICKY;
    if (mode && strcmp(mode, "short") == 0) fail_mode = MODE_SHORT;
    const char *text = getenv("FAILIO_MATCH");
    if (text) snprintf(match, sizeof match, "%s", text);
    const char *list = getenv("FAILIO_OPS");
    if (list) snprintf(ops, sizeof ops, ",%s,", list);
    const char *report = getenv("FAILIO_REPORT");
    if (report) snprintf(report_path, sizeof report_path, "%s", report);
    enabled = 1;
}

/* True when fd is a regular file under the watched directory; `path` gets its name. */
static int watched_fd(int fd, char *path, size_t size) {
    if (!enabled || fd < 0) return 0;
    struct stat info;
    if (fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) return 0;
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t length = readlink(link, path, size - 1);
    if (length <= 0) return 0;
    path[length] = 0;
    return strncmp(path, watched, watched_length) == 0;
}

static void write_report(void) {
    if (report_path[0] == 0 || real_write == NULL) return;
    int saved = errno;
    int fd = open(report_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd >= 0) {
        char line[PATH_MAX + 128];
        int length = snprintf(line, sizeof line, "calls=%ld failed=%ld op=%s path=%s\n", calls, failures, failed_op, failed_path);
        if (length > 0) real_write(fd, line, (size_t)length);
        close(fd);
    }
    errno = saved;
}

enum verdict { PASS, FAIL, SHORTEN };

/* Counts one call on fd and decides its fate. */
static enum verdict judge(int fd, const char *op) {
    char path[PATH_MAX];
    if (!watched_fd(fd, path, sizeof path)) return PASS;
    if (match[0] && strstr(path, match) == NULL) return PASS;
    if (ops[0]) {
        char item[40];
        snprintf(item, sizeof item, ",%s,", op);
        if (strstr(ops, item) == NULL) return PASS;
    }
    long index = __atomic_add_fetch(&calls, 1, __ATOMIC_SEQ_CST);
    enum verdict verdict = PASS;
    if (fail_at > 0 && index == fail_at) {
        verdict = fail_mode == MODE_SHORT ? SHORTEN : FAIL;
    } else if (fail_at > 0 && index > fail_at && fail_mode != MODE_ONCE) {
        verdict = FAIL;
    }
    if (verdict != PASS) {
        if (failures++ == 0) {
            snprintf(failed_op, sizeof failed_op, "%s", op);
            snprintf(failed_path, sizeof failed_path, "%s", path);
        }
    }
    write_report();
    return verdict;
}

ssize_t write(int fd, const void *buffer, size_t count) {
    switch (judge(fd, "write")) {
    case FAIL: errno = fail_errno; return -1;
    case SHORTEN: if (count > 1) return real_write(fd, buffer, count / 2);
                  errno = fail_errno; return -1;
    case PASS: break;
    }
    return real_write(fd, buffer, count);
}

ssize_t pwrite(int fd, const void *buffer, size_t count, off_t offset) {
    switch (judge(fd, "pwrite")) {
    case FAIL: errno = fail_errno; return -1;
    case SHORTEN: if (count > 1) return real_pwrite(fd, buffer, count / 2, offset);
                  errno = fail_errno; return -1;
    case PASS: break;
    }
    return real_pwrite(fd, buffer, count, offset);
}

ssize_t pwrite64(int fd, const void *buffer, size_t count, off64_t offset) {
    switch (judge(fd, "pwrite64")) {
    case FAIL: errno = fail_errno; return -1;
    case SHORTEN: if (count > 1) return real_pwrite64(fd, buffer, count / 2, offset);
                  errno = fail_errno; return -1;
    case PASS: break;
    }
    return real_pwrite64(fd, buffer, count, offset);
}

ssize_t writev(int fd, const struct iovec *vector, int count) {
    switch (judge(fd, "writev")) {
    case FAIL: errno = fail_errno; return -1;
    case SHORTEN:
        /* Half of the first buffer: short, as a filling disk makes it. */
        if (count > 0 && vector[0].iov_len > 1) return real_write(fd, vector[0].iov_base, vector[0].iov_len / 2);
        errno = fail_errno; return -1;
    case PASS: break;
    }
    return real_writev(fd, vector, count);
}

int fsync(int fd) {
    if (judge(fd, "fsync") != PASS) { errno = fail_errno; return -1; }
    return real_fsync(fd);
}

int fdatasync(int fd) {
    if (judge(fd, "fdatasync") != PASS) { errno = fail_errno; return -1; }
    return real_fdatasync(fd);
}

int ftruncate(int fd, off_t length) {
    if (judge(fd, "ftruncate") != PASS) { errno = fail_errno; return -1; }
    return real_ftruncate(fd, length);
}

int ftruncate64(int fd, off64_t length) {
    if (judge(fd, "ftruncate64") != PASS) { errno = fail_errno; return -1; }
    return real_ftruncate64(fd, length);
}
