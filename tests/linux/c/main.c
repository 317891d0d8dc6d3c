/* Keel's Linux ABI tests in C, built static and dynamic for every arch.
 * Usage: abi [all | NAME-FRAGMENT | abort | segv]. Exit status 1 if a test failed. */
#include "harness.h"

#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

const char *failf(const char *fmt, ...) {
    static __thread char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return buf;
}

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv) {
    const char *filter = argc > 1 ? argv[1] : "all";
    if (strcmp(filter, "abort") == 0) {
        printf("about to abort\n");
        fflush(stdout);
        abort();
    }
    if (strcmp(filter, "segv") == 0) {
        printf("about to fault\n");
        fflush(stdout);
        volatile int *bad = (volatile int *)(unsigned long)argc; /* a small, unmapped address */
        *bad = 1;
        return 0;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    mkdir(SCRATCH, 0755);
    const struct test *groups[] = {file_tests, memory_tests, thread_tests, signal_tests, poll_tests, misc_tests,
                                   socket_tests};
    int passed = 0, failed = 0, skipped = 0;
    for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++) {
        for (const struct test *t = groups[g]; t->name; t++) {
            if (strcmp(filter, "all") != 0 && !strstr(t->name, filter))
                continue;
            printf("~ %s\n", t->name);
            long long start = now_ms();
            errno = 0;
            const char *why = t->fn();
            if (!why) {
                printf("test %s ... ok (%lld ms)\n", t->name, now_ms() - start);
                passed++;
            } else if (why[0] == '\001') {
                printf("test %s ... skipped: %s\n", t->name, why + 1);
                skipped++;
            } else {
                printf("test %s ... FAILED: %s\n", t->name, why);
                failed++;
            }
        }
    }
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    return failed > 0;
}
