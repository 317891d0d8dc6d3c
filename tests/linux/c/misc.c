/* The process's view of itself and the machine: argv, environment and
 * auxiliary vector, clocks, identity, limits, /proc, /sys and /etc. */
#include "harness.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/auxv.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static const char *args_env_auxv(void) {
    CHECK(getenv("PATH") != NULL);
    const char *marker = getenv("KEEL_TEST");
    CHECK(marker && strcmp(marker, "1") == 0);
    CHECK_EQ(getauxval(AT_PAGESZ), 4096);
    CHECK(getauxval(AT_RANDOM) != 0);
    CHECK(getauxval(AT_PHDR) != 0);
    CHECK(getauxval(AT_PHNUM) > 0);
    CHECK(getauxval(AT_ENTRY) != 0);
    CHECK_EQ(getauxval(AT_SECURE), 0);
    CHECK_EQ(getauxval(AT_UID), 0);
    const char *platform = (const char *)getauxval(AT_PLATFORM);
    CHECK(platform && platform[0]);
    const char *execfn = (const char *)getauxval(AT_EXECFN);
    CHECK(execfn && execfn[0] == '/');
#if defined(__x86_64__) || defined(__aarch64__)
    CHECK(getauxval(AT_MINSIGSTKSZ) >= 2048);
#endif
#if defined(__powerpc64__)
    /* The POWER generation by name, VSX (glibc's string functions pick
     * VSX code from it), cache blocks for memset, and no scv: Keel takes
     * system calls through sc only, and glibc uses scv when told of it. */
    CHECK(strncmp(platform, "power", 5) == 0);
    CHECK(getauxval(AT_HWCAP) & PPC_FEATURE_HAS_VSX);
    CHECK((getauxval(AT_HWCAP2) & PPC_FEATURE2_SCV) == 0);
    CHECK_EQ(getauxval(AT_DCACHEBSIZE), 128);
#endif
    char exe[256] = {0};
    CHECK(readlink("/proc/self/exe", exe, sizeof exe - 1) > 0);
    CHECK(strcmp(exe, execfn) == 0);
    return NULL;
}

static const char *clocks(void) {
    struct timespec prev, now;
    clock_gettime(CLOCK_MONOTONIC, &prev);
    for (int i = 0; i < 100000; i++) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        CHECK(now.tv_sec > prev.tv_sec || (now.tv_sec == prev.tv_sec && now.tv_nsec >= prev.tv_nsec));
        prev = now;
    }
    struct timespec rt;
    CHECK_EQ(clock_gettime(CLOCK_REALTIME, &rt), 0);
    CHECK(rt.tv_sec > 1700000000); /* after 2023 */
    for (clockid_t c = 0; c <= 7; c++) {
        struct timespec res;
        CHECK_EQ(clock_getres(c, &res), 0);
        CHECK_EQ(clock_gettime(c, &now), 0);
    }
    CHECK_EQ(clock_gettime(99, &now), -1);
    CHECK_EQ(errno, EINVAL);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    struct timespec req = {0, 20 * 1000 * 1000};
    CHECK_EQ(nanosleep(&req, 0), 0);
    clock_gettime(CLOCK_MONOTONIC, &b);
    long ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
    CHECK(ms >= 20);
    CHECK(ms < 2000);
    struct timespec c0, c1;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
    volatile long spin = 0;
    for (long i = 0; i < 20000000; i++)
        spin += i;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
    CHECK(c1.tv_sec > c0.tv_sec || c1.tv_nsec > c0.tv_nsec);
    struct timespec abs;
    clock_gettime(CLOCK_MONOTONIC, &abs);
    abs.tv_nsec += 10 * 1000 * 1000;
    if (abs.tv_nsec >= 1000000000)
        abs.tv_sec++, abs.tv_nsec -= 1000000000;
    CHECK_EQ(clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &abs, 0), 0);
    clock_gettime(CLOCK_MONOTONIC, &now);
    CHECK(now.tv_sec > abs.tv_sec || (now.tv_sec == abs.tv_sec && now.tv_nsec >= abs.tv_nsec));
    return NULL;
}

static const char *identity_and_limits(void) {
    struct utsname u;
    CHECK_EQ(uname(&u), 0);
    CHECK(strcmp(u.sysname, "Linux") == 0);
#if defined(__x86_64__)
    CHECK(strcmp(u.machine, "x86_64") == 0);
#elif defined(__aarch64__)
    CHECK(strcmp(u.machine, "aarch64") == 0);
#else
    CHECK(strcmp(u.machine, "ppc64le") == 0);
#endif
    CHECK_EQ(getuid(), 0);
    CHECK_EQ(geteuid(), 0);
    CHECK_EQ(getppid(), 0);
    unsigned char r1[64] = {0}, r2[64] = {0};
    CHECK_EQ(getrandom(r1, sizeof r1, 0), sizeof r1);
    CHECK_EQ(getrandom(r2, sizeof r2, GRND_NONBLOCK), sizeof r2);
    CHECK(memcmp(r1, r2, sizeof r1) != 0);
    CHECK_EQ(getrandom(r1, 8, 0x100), -1);
    CHECK_EQ(errno, EINVAL);
    struct sysinfo si;
    CHECK_EQ(sysinfo(&si), 0);
    CHECK(si.totalram > 32 << 20);
    CHECK(si.freeram > 0 && si.freeram <= si.totalram);
    struct rlimit rl;
    CHECK_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
    CHECK(rl.rlim_cur >= 256);
    struct rlimit lower = {.rlim_cur = 200, .rlim_max = rl.rlim_max};
    CHECK_EQ(setrlimit(RLIMIT_NOFILE, &lower), 0);
    int fds[300], opened = 0;
    for (; opened < 300; opened++) {
        fds[opened] = open("/dev/null", O_RDONLY);
        if (fds[opened] < 0)
            break;
    }
    CHECK(opened < 200);
    CHECK_EQ(errno, EMFILE);
    for (int i = 0; i < opened; i++)
        close(fds[i]);
    CHECK_EQ(setrlimit(RLIMIT_NOFILE, &rl), 0);
    char name[16] = {0};
    CHECK_EQ(prctl(PR_SET_NAME, "keel-worker"), 0);
    CHECK_EQ(prctl(PR_GET_NAME, name), 0);
    CHECK(strcmp(name, "keel-worker") == 0);
    CHECK_EQ(prctl(0x7fffffff), -1);
    CHECK_EQ(errno, EINVAL);
    return NULL;
}

static char *slurp(const char *path) {
    static char buf[65536];
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return NULL;
    ssize_t n, total = 0;
    while ((n = read(fd, buf + total, sizeof buf - 1 - total)) > 0)
        total += n;
    close(fd);
    buf[total] = 0;
    return buf;
}

static const char *proc_sys_etc(void) {
    char *s;
    CHECK((s = slurp("/proc/self/maps")) && strstr(s, "[stack]"));
    CHECK((s = slurp("/proc/self/status")) && strstr(s, "Pid:\t1\n"));
    CHECK((s = slurp("/proc/meminfo")) && strstr(s, "MemTotal:"));
    CHECK((s = slurp("/proc/cpuinfo")) && strstr(s, "processor"));
    CHECK((s = slurp("/proc/stat")) && strncmp(s, "cpu ", 4) == 0);
    CHECK((s = slurp("/proc/uptime")) && s[0] >= '0' && s[0] <= '9');
    CHECK((s = slurp("/proc/mounts")) && strstr(s, " /proc proc "));
    CHECK((s = slurp("/proc/self/cmdline")) && s[0] == '/');
    CHECK((s = slurp("/proc/self/auxv")));
    CHECK((s = slurp("/sys/devices/system/cpu/online")) && s[0] == '0');
    CHECK((s = slurp("/sys/devices/system/cpu/possible")) && s[0] == '0');
    CHECK((s = slurp("/etc/passwd")) && strncmp(s, "root:", 5) == 0);
    CHECK((s = slurp("/etc/hostname")));
    CHECK((s = slurp("/etc/hosts")) && strstr(s, "localhost"));
    CHECK(slurp("/etc/group") && slurp("/etc/resolv.conf"));
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    CHECK(cpus >= 1);
    CHECK_EQ(sysconf(_SC_NPROCESSORS_CONF), cpus);
    char link[64] = {0};
    int fd = open("/etc/hosts", O_RDONLY);
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    CHECK(readlink(path, link, sizeof link - 1) > 0);
    CHECK(strcmp(link, "/etc/hosts") == 0);
    close(fd);
    CHECK_EQ(open("/proc/self/status", O_WRONLY), -1);
    CHECK_EQ(errno, EACCES);
    return NULL;
}

const struct test misc_tests[] = {
    {"c::args_env_auxv", args_env_auxv},
    {"c::clocks_monotonic_realtime_cputime_sleep", clocks},
    {"c::identity_random_sysinfo_limits_prctl", identity_and_limits},
    {"c::proc_sys_etc_files", proc_sys_etc},
    {0, 0},
};
