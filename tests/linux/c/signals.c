/* Signals: handlers, masks and pending sets, siginfo, the alternate
 * stack, kill/tgkill to self, sigtimedwait, sigsuspend, and synchronous
 * faults delivered to the faulting thread. */
#include "harness.h"

#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t hits, last_sig, last_code, on_alt;
static char *alt_base;
static size_t alt_size;

static void handler(int sig, siginfo_t *info, void *ctx) {
    (void)ctx;
    hits++;
    last_sig = sig;
    last_code = info->si_code;
    char local;
    on_alt = alt_base && &local >= alt_base && &local < alt_base + alt_size;
}

static void install(int sig, int flags) {
    struct sigaction sa = {0};
    sa.sa_sigaction = handler;
    sa.sa_flags = SA_SIGINFO | flags;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, 0);
}

static const char *handlers_and_masks(void) {
    hits = 0;
    install(SIGUSR1, 0);
    CHECK_EQ(raise(SIGUSR1), 0);
    CHECK_EQ(hits, 1);
    CHECK_EQ(last_sig, SIGUSR1);
    CHECK_EQ(last_code, SI_TKILL);
    sigset_t block, pending, old;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    CHECK_EQ(sigprocmask(SIG_BLOCK, &block, &old), 0);
    CHECK_EQ(raise(SIGUSR1), 0);
    CHECK_EQ(hits, 1); /* blocked: pending */
    CHECK_EQ(sigpending(&pending), 0);
    CHECK(sigismember(&pending, SIGUSR1));
    CHECK_EQ(sigprocmask(SIG_SETMASK, &old, 0), 0);
    CHECK_EQ(hits, 2); /* delivered on unblocking */
    CHECK_EQ(kill(getpid(), SIGUSR1), 0);
    CHECK_EQ(hits, 3);
    CHECK_EQ(last_code, SI_USER);
    CHECK_EQ(kill(12345, SIGUSR1), -1);
    CHECK_EQ(errno, ESRCH);
    struct sigaction sa = {0};
    sa.sa_handler = SIG_IGN;
    sigaction(SIGUSR1, &sa, 0);
    CHECK_EQ(raise(SIGUSR1), 0);
    CHECK_EQ(hits, 3);
    CHECK_EQ(sigaction(SIGKILL, &sa, 0), -1);
    CHECK_EQ(errno, EINVAL);
    sa.sa_handler = SIG_DFL;
    sigaction(SIGUSR1, &sa, 0);
    /* Default action "ignore" (SIGCHLD, SIGWINCH) must not end us. */
    CHECK_EQ(raise(SIGWINCH), 0);
    return NULL;
}

static const char *alternate_stack(void) {
    alt_size = 64 * 1024;
    alt_base = malloc(alt_size);
    stack_t ss = {.ss_sp = alt_base, .ss_size = alt_size, .ss_flags = 0}, old;
    CHECK_EQ(sigaltstack(&ss, &old), 0);
    install(SIGUSR2, SA_ONSTACK);
    on_alt = 0;
    CHECK_EQ(raise(SIGUSR2), 0);
    CHECK_EQ(last_sig, SIGUSR2);
    CHECK(on_alt);
    install(SIGUSR2, 0);
    CHECK_EQ(raise(SIGUSR2), 0);
    CHECK(!on_alt);
    stack_t tiny = {.ss_sp = alt_base, .ss_size = 512, .ss_flags = 0};
    CHECK_EQ(sigaltstack(&tiny, 0), -1);
    CHECK_EQ(errno, ENOMEM);
    ss.ss_flags = SS_DISABLE;
    CHECK_EQ(sigaltstack(&ss, 0), 0);
    CHECK_EQ(sigaltstack(0, &old), 0);
    CHECK(old.ss_flags & SS_DISABLE);
    free(alt_base);
    alt_base = 0;
    return NULL;
}

static const char *timed_wait(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    CHECK_EQ(sigprocmask(SIG_BLOCK, &set, 0), 0);
    struct timespec ts = {0, 10 * 1000 * 1000};
    CHECK_EQ(sigtimedwait(&set, 0, &ts), -1);
    CHECK_EQ(errno, EAGAIN);
    CHECK_EQ(raise(SIGUSR1), 0);
    siginfo_t info;
    CHECK_EQ(sigtimedwait(&set, &info, &ts), SIGUSR1);
    CHECK_EQ(info.si_signo, SIGUSR1);
    CHECK_EQ(sigprocmask(SIG_UNBLOCK, &set, 0), 0);
    return NULL;
}

static pthread_t main_thread;

static void *poke_later(void *arg) {
    (void)arg;
    usleep(30000);
    pthread_kill(main_thread, SIGUSR1);
    return 0;
}

static const char *suspend_and_interrupt(void) {
    install(SIGUSR1, 0);
    hits = 0;
    sigset_t block, wait_mask;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    sigprocmask(SIG_BLOCK, &block, 0);
    main_thread = pthread_self();
    pthread_t t;
    CHECK_EQ(pthread_create(&t, 0, poke_later, 0), 0);
    sigemptyset(&wait_mask);
    CHECK_EQ(sigsuspend(&wait_mask), -1);
    CHECK_EQ(errno, EINTR);
    CHECK_EQ(hits, 1);
    sigset_t now;
    sigprocmask(SIG_SETMASK, 0, &now);
    CHECK(sigismember(&now, SIGUSR1)); /* the old mask is back */
    pthread_join(t, 0);
    sigprocmask(SIG_UNBLOCK, &block, 0);
    /* A signal interrupts a blocking read with EINTR (no SA_RESTART). */
    int p[2];
    CHECK_EQ(pipe(p), 0);
    CHECK_EQ(pthread_create(&t, 0, poke_later, 0), 0);
    char c;
    CHECK_EQ(read(p[0], &c, 1), -1);
    CHECK_EQ(errno, EINTR);
    pthread_join(t, 0);
    /* ...and a sleep, which reports the time left. */
    CHECK_EQ(pthread_create(&t, 0, poke_later, 0), 0);
    struct timespec req = {5, 0}, rem = {0, 0};
    CHECK_EQ(nanosleep(&req, &rem), -1);
    CHECK_EQ(errno, EINTR);
    CHECK(rem.tv_sec >= 3);
    pthread_join(t, 0);
    close(p[0]);
    close(p[1]);
    return NULL;
}

static sigjmp_buf fpe_jump;
static void on_fpe(int sig, siginfo_t *info, void *ctx) {
    (void)ctx;
    last_sig = sig;
    last_code = info->si_code;
    siglongjmp(fpe_jump, 1);
}

static const char *synchronous_faults(void) {
#if defined(__x86_64__)
    struct sigaction sa = {0};
    sa.sa_sigaction = on_fpe;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGFPE, &sa, 0);
    sigaction(SIGILL, &sa, 0);
    volatile int zero = 0;
    last_sig = 0;
    if (sigsetjmp(fpe_jump, 1) == 0)
        zero = 10 / zero;
    CHECK_EQ(last_sig, SIGFPE);
    CHECK_EQ(last_code, FPE_INTDIV);
    last_sig = 0;
    if (sigsetjmp(fpe_jump, 1) == 0)
        __asm__ volatile("ud2");
    CHECK_EQ(last_sig, SIGILL);
    return NULL;
#elif defined(__powerpc64__)
    /* Division by zero does not trap on POWER; an illegal instruction and
     * a trap instruction do, and reach the handler the same way. */
    struct sigaction sa = {0};
    sa.sa_sigaction = on_fpe;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGILL, &sa, 0);
    sigaction(SIGTRAP, &sa, 0);
    last_sig = 0;
    if (sigsetjmp(fpe_jump, 1) == 0)
        __asm__ volatile(".long 0");
    CHECK_EQ(last_sig, SIGILL);
    last_sig = 0;
    if (sigsetjmp(fpe_jump, 1) == 0)
        __asm__ volatile("trap");
    CHECK_EQ(last_sig, SIGTRAP);
    CHECK_EQ(last_code, TRAP_BRKPT);
    return NULL;
#else
    (void)on_fpe;
    (void)fpe_jump;
    SKIP("integer division by zero does not trap on this arch");
#endif
}

#if defined(__powerpc64__)
static volatile sig_atomic_t clobbered;
/* Clobbers volatile vector registers the interrupted code was using: the
 * compiler saves none of them around a handler. */
static void clobber_vectors(int sig) {
    (void)sig;
    __asm__ volatile("xxlxor 0, 0, 0\n\txxlxor 40, 40, 40" ::: "vs0", "vs40");
    clobbered = 1;
}
#endif

static const char *vector_state_survives_a_handler(void) {
#if defined(__powerpc64__)
    /* vs0 spans f0 (fp_regs) and the VSX low half; vs40 is v8 (v_regs):
     * all three parts of the signal frame's vector state. The signal
     * arrives on return from the tgkill system call inside the asm, between
     * the loads and the stores. */
    struct sigaction sa = {0};
    sa.sa_handler = clobber_vectors;
    sigaction(SIGUSR2, &sa, 0);
    uint64_t in[4] = {0x1111222233334444, 0x5555666677778888, 0x99990000aaaabbbb,
                      0xccccddddeeeeffff};
    uint64_t out[4] = {0};
    sigset_t usr2;
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    sigprocmask(SIG_UNBLOCK, &usr2, 0);
    clobbered = 0;
    /* tgkill to this thread: a process-wide kill may pick another. The
     * ids are fetched before the register variables are set, since a
     * call would overwrite them. */
    long pid = getpid(), tid = gettid();
    register long r0 __asm__("r0") = SYS_tgkill;
    register long r3 __asm__("r3") = pid;
    register long r4 __asm__("r4") = tid;
    register long r5 __asm__("r5") = SIGUSR2;
    __asm__ volatile("lxvd2x 0, 0, %[in]\n\t"
                     "lxvd2x 40, %[sixteen], %[in]\n\t"
                     "sc\n\t"
                     "stxvd2x 0, 0, %[out]\n\t"
                     "stxvd2x 40, %[sixteen], %[out]"
                     : "+r"(r0), "+r"(r3), "+r"(r4), "+r"(r5)
                     : [in] "r"(in), [out] "r"(out), [sixteen] "b"(16L)
                     : "memory", "vs0", "vs40", "r6", "r7", "r8", "r9", "r10", "r11",
                       "r12", "cr0", "ctr", "xer");
    CHECK_EQ(r3, 0);
    CHECK_EQ(clobbered, 1);
    for (int i = 0; i < 4; i++)
        CHECK_EQ(out[i], in[i]);
    return NULL;
#else
    SKIP("written for ppc64's vector registers");
#endif
}

const struct test signal_tests[] = {
    {"c::signal_handlers_masks_pending_kill", handlers_and_masks},
    {"c::signal_alternate_stack", alternate_stack},
    {"c::signal_sigtimedwait", timed_wait},
    {"c::signal_sigsuspend_and_eintr", suspend_and_interrupt},
    {"c::signal_sigfpe_sigill_to_the_faulting_thread", synchronous_faults},
    {"c::signal_handler_leaves_vector_registers_intact", vector_state_survives_a_handler},
    {0, 0},
};
