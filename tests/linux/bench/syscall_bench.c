/* System call benchmarks, run unchanged on Keel and on a Linux guest:
 *   null_syscall   getppid() round trip
 *   futex_pingpong two threads handing a token back and forth through
 *                  FUTEX_WAKE/FUTEX_WAIT (one round trip = two handoffs)
 * Prints "bench NAME ns=N" per repetition (the host takes medians).
 * As a Linux guest's /init (pid 1) it powers the machine off at the end. */
#define _GNU_SOURCE
#include <linux/futex.h>
#include <linux/reboot.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/reboot.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static atomic_int token;

static void futex_wait(atomic_int *w, int v) {
    while (atomic_load(w) == v)
        syscall(SYS_futex, w, FUTEX_WAIT_PRIVATE, v, 0, 0, 0);
}

static void futex_wake(atomic_int *w) {
    syscall(SYS_futex, w, FUTEX_WAKE_PRIVATE, 1, 0, 0, 0);
}

static long rounds;

/* The partner: waits for an odd token, answers with the next even one. */
static void *partner(void *arg) {
    (void)arg;
    for (long i = 0; i < rounds; i++) {
        futex_wait(&token, 2 * (int)i);
        atomic_store(&token, 2 * (int)i + 2);
        futex_wake(&token);
    }
    return 0;
}

static double futex_pingpong(long n) {
    rounds = n;
    atomic_store(&token, 0);
    pthread_t t;
    pthread_create(&t, 0, partner, 0);
    long long start = now_ns();
    for (long i = 0; i < n; i++) {
        atomic_store(&token, 2 * (int)i + 1);
        futex_wake(&token);
        futex_wait(&token, 2 * (int)i + 1);
    }
    long long elapsed = now_ns() - start;
    pthread_join(t, 0);
    return (double)elapsed / n;
}

static double null_syscall(long n) {
    long long start = now_ns();
    for (long i = 0; i < n; i++)
        syscall(SYS_getppid);
    return (double)(now_ns() - start) / n;
}

int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 7;
    long calls = argc > 2 ? atol(argv[2]) : 200000;
    long trips = argc > 3 ? atol(argv[3]) : 20000;
    struct utsname u;
    uname(&u);
    printf("bench kernel %s %s\n", u.sysname, u.release);
    null_syscall(calls / 10); /* warm up: fault in pages, fill caches */
    futex_pingpong(trips / 10);
    for (int r = 0; r < reps; r++) {
        printf("bench null_syscall ns=%.1f\n", null_syscall(calls));
        printf("bench futex_pingpong ns=%.1f\n", futex_pingpong(trips));
        fflush(stdout);
    }
    printf("bench done\n");
    fflush(stdout);
    if (getpid() == 1 && !strstr(u.release, "keel")) {
        sync();
        reboot(LINUX_REBOOT_CMD_POWER_OFF);
    }
    return 0;
}
