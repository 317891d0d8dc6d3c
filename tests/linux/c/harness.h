/* Keel guest test harness for C programs: each test is a function that
 * returns NULL when it passes or a message saying what went wrong. The
 * runner prints the console protocol the host tools parse:
 *   ~ NAME
 *   test NAME ... ok (N ms) | FAILED: why | skipped: why
 */
#ifndef KEEL_HARNESS_H
#define KEEL_HARNESS_H

#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>

typedef const char *(*test_fn)(void);

struct test {
    const char *name;
    test_fn fn;
};

/* A failure message with printf formatting (one buffer per thread). */
const char *failf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define CHECK(cond) \
    do { \
        if (!(cond)) \
            return failf("%s:%d: %s (errno %d %s)", __FILE__, __LINE__, #cond, errno, strerror(errno)); \
    } while (0)

#define CHECK_EQ(a, b) \
    do { \
        long long _a = (long long)(a), _b = (long long)(b); \
        if (_a != _b) \
            return failf("%s:%d: %s == %lld, expected %lld (errno %d)", __FILE__, __LINE__, #a, _a, _b, errno); \
    } while (0)

/* Skip: the test does not apply here. */
#define SKIP(why) return failf("\001%s", why)

extern const struct test file_tests[], memory_tests[], thread_tests[], signal_tests[], poll_tests[],
    misc_tests[], socket_tests[];

/* The scratch directory every test may use. */
#define SCRATCH "/tmp/keel-test"

#include <sys/syscall.h>
#include <unistd.h>
/* The calling thread's id (gettid() is missing from older glibc headers). */
static inline long gettid_value(void) { return syscall(SYS_gettid); }

#endif
