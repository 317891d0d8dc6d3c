/* Threads: 16 threads on a mutex and a condvar, raw futex operations
 * (wait/wake, requeue, timeouts), thread-local storage, and honest
 * failure of process creation. */
#include "harness.h"

#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define THREADS 16
#define ROUNDS 20000

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static long counter;

static void *hammer(void *arg) {
    (void)arg;
    for (int i = 0; i < ROUNDS; i++) {
        pthread_mutex_lock(&lock);
        counter++;
        pthread_mutex_unlock(&lock);
    }
    return (void *)gettid_value();
}

static const char *mutex_hammer(void) {
    pthread_t t[THREADS];
    counter = 0;
    for (int i = 0; i < THREADS; i++)
        CHECK_EQ(pthread_create(&t[i], 0, hammer, 0), 0);
    long tids[THREADS];
    for (int i = 0; i < THREADS; i++) {
        void *r;
        CHECK_EQ(pthread_join(t[i], &r), 0);
        tids[i] = (long)r;
    }
    CHECK_EQ(counter, (long)THREADS * ROUNDS);
    for (int i = 0; i < THREADS; i++)
        for (int j = i + 1; j < THREADS; j++)
            CHECK(tids[i] != tids[j]);
    return NULL;
}

#define ITEMS 20000
static pthread_cond_t not_empty = PTHREAD_COND_INITIALIZER, not_full = PTHREAD_COND_INITIALIZER;
static int queue[64], head, tail, count;
static long consumed_sum;

static void *producer(void *arg) {
    long base = (long)arg;
    for (int i = 0; i < ITEMS / 8; i++) {
        pthread_mutex_lock(&lock);
        while (count == 64)
            pthread_cond_wait(&not_full, &lock);
        queue[tail] = (int)(base + i);
        tail = (tail + 1) % 64;
        count++;
        pthread_cond_signal(&not_empty);
        pthread_mutex_unlock(&lock);
    }
    return 0;
}

static void *consumer(void *arg) {
    (void)arg;
    for (int i = 0; i < ITEMS / 8; i++) {
        pthread_mutex_lock(&lock);
        while (count == 0)
            pthread_cond_wait(&not_empty, &lock);
        consumed_sum += queue[head];
        head = (head + 1) % 64;
        count--;
        pthread_cond_signal(&not_full);
        pthread_mutex_unlock(&lock);
    }
    return 0;
}

static const char *condvar_queue(void) {
    pthread_t t[16];
    long expected = 0;
    consumed_sum = 0;
    for (long p = 0; p < 8; p++) {
        CHECK_EQ(pthread_create(&t[p], 0, producer, (void *)(p * 100000)), 0);
        for (int i = 0; i < ITEMS / 8; i++)
            expected += p * 100000 + i;
    }
    for (int c = 8; c < 16; c++)
        CHECK_EQ(pthread_create(&t[c], 0, consumer, 0), 0);
    for (int i = 0; i < 16; i++)
        CHECK_EQ(pthread_join(t[i], 0), 0);
    CHECK_EQ(consumed_sum, expected);
    CHECK_EQ(count, 0);
    return NULL;
}

static long futex(atomic_int *addr, int op, int val, const struct timespec *ts, atomic_int *addr2, int val3) {
    return syscall(SYS_futex, addr, op, val, ts, addr2, val3);
}

static atomic_int word_a, word_b, arrived, woken;

static void *futex_waiter(void *arg) {
    (void)arg;
    atomic_fetch_add(&arrived, 1);
    while (atomic_load(&word_a) == 0)
        futex(&word_a, FUTEX_WAIT_PRIVATE, 0, 0, 0, 0);
    atomic_fetch_add(&woken, 1);
    return 0;
}

static const char *futex_ops(void) {
    atomic_int w = 1;
    CHECK_EQ(futex(&w, FUTEX_WAIT_PRIVATE, 2, 0, 0, 0), -1); /* value differs */
    CHECK_EQ(errno, EAGAIN);
    struct timespec ts = {0, 20 * 1000 * 1000};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK_EQ(futex(&w, FUTEX_WAIT_PRIVATE, 1, &ts, 0, 0), -1);
    CHECK_EQ(errno, ETIMEDOUT);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    CHECK(ms >= 19);
    CHECK_EQ(futex(&w, FUTEX_WAKE_PRIVATE, 1, 0, 0, 0), 0); /* nobody waits */
    CHECK_EQ(futex((atomic_int *)((char *)&w + 1), FUTEX_WAIT_PRIVATE, 0, 0, 0, 0), -1);
    CHECK_EQ(errno, EINVAL); /* misaligned */
    CHECK_EQ(futex((atomic_int *)8, FUTEX_WAIT_PRIVATE, 0, 0, 0, 0), -1);
    CHECK_EQ(errno, EFAULT);

    /* Requeue: 6 waiters on A; wake 1 and move the other 5 to B; wake B. */
    atomic_store(&word_a, 0);
    atomic_store(&arrived, 0);
    atomic_store(&woken, 0);
    pthread_t t[6];
    for (int i = 0; i < 6; i++)
        CHECK_EQ(pthread_create(&t[i], 0, futex_waiter, 0), 0);
    while (atomic_load(&arrived) < 6)
        usleep(1000);
    usleep(100000); /* from "arrived" to asleep in FUTEX_WAIT */
    CHECK_EQ(futex(&word_a, FUTEX_CMP_REQUEUE_PRIVATE, 1, (void *)(long)INT32_MAX, &word_b, 1), -1);
    CHECK_EQ(errno, EAGAIN); /* word_a is 0, not the 1 we said */
    atomic_store(&word_a, 1);
    CHECK_EQ(futex(&word_a, FUTEX_CMP_REQUEUE_PRIVATE, 1, (void *)(long)INT32_MAX, &word_b, 1), 6);
    usleep(20000);
    CHECK_EQ(atomic_load(&woken), 1); /* the other five sleep on B now */
    CHECK_EQ(futex(&word_b, FUTEX_WAKE_PRIVATE, INT32_MAX, 0, 0, 0), 5);
    for (int i = 0; i < 6; i++)
        CHECK_EQ(pthread_join(t[i], 0), 0);
    CHECK_EQ(atomic_load(&woken), 6);
    return NULL;
}

static __thread int tls_value = 42;
static __thread char tls_buf[100];

static void *tls_thread(void *arg) {
    long id = (long)arg;
    if (tls_value != 42)
        return (void *)1;
    tls_value = (int)id;
    snprintf(tls_buf, sizeof tls_buf, "thread %ld", id);
    usleep(10000);
    char want[100];
    snprintf(want, sizeof want, "thread %ld", id);
    return (void *)(long)(tls_value != id || strcmp(tls_buf, want) != 0);
}

static const char *thread_local_storage(void) {
    pthread_t t[8];
    tls_value = 7;
    for (long i = 0; i < 8; i++)
        CHECK_EQ(pthread_create(&t[i], 0, tls_thread, (void *)(i + 100)), 0);
    for (int i = 0; i < 8; i++) {
        void *bad;
        CHECK_EQ(pthread_join(t[i], &bad), 0);
        CHECK_EQ((long)bad, 0);
    }
    CHECK_EQ(tls_value, 7);
    pthread_key_t key;
    CHECK_EQ(pthread_key_create(&key, 0), 0);
    CHECK_EQ(pthread_setspecific(key, &key), 0);
    CHECK(pthread_getspecific(key) == &key);
    return NULL;
}

static const char *no_processes(void) {
    pid_t pid = fork();
    if (pid == 0)
        _exit(0); /* would be the child: never reached on Keel */
    CHECK_EQ(pid, -1);
    CHECK(errno == ENOSYS || errno == EINVAL);
    CHECK_EQ(waitpid(-1, 0, WNOHANG), -1);
    CHECK_EQ(errno, ECHILD);
    CHECK_EQ(getpid(), 1);
    CHECK_EQ(gettid_value(), 1);
    return NULL;
}

const struct test thread_tests[] = {
    {"c::threads_16_hammer_a_mutex", mutex_hammer},
    {"c::threads_condvar_producer_consumer", condvar_queue},
    {"c::futex_wait_wake_requeue_timeout", futex_ops},
    {"c::thread_local_storage", thread_local_storage},
    {"c::fork_fails_honestly", no_processes},
    {0, 0},
};
