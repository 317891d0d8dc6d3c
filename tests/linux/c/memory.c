/* Memory: anonymous and file mappings, MAP_FIXED variants, protection
 * enforced by the page tables (faults caught by a SIGSEGV handler),
 * mremap, madvise, mincore, brk. */
#include "harness.h"

#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE 4096

static sigjmp_buf fault_jump;
static volatile void *fault_addr;
static volatile int fault_code;

static void on_segv(int sig, siginfo_t *info, void *ctx) {
    (void)sig, (void)ctx;
    fault_addr = info->si_addr;
    fault_code = info->si_code;
    siglongjmp(fault_jump, 1);
}

/* Whether writing (or reading) *p faults; records the fault. */
static int faults(volatile char *p, int write) {
    struct sigaction sa = {0}, old;
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, &old);
    fault_addr = 0;
    int hit = 0;
    if (sigsetjmp(fault_jump, 1) == 0) {
        if (write)
            *p = 1;
        else
            (void)*p;
    } else {
        hit = 1;
    }
    sigaction(SIGSEGV, &old, 0);
    return hit;
}

static const char *anonymous(void) {
    char *p = mmap(0, 16 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED);
    CHECK_EQ((uintptr_t)p % PAGE, 0);
    for (int i = 0; i < 16 * PAGE; i++)
        CHECK_EQ(p[i], 0);
    memset(p, 0xab, 16 * PAGE);
    unsigned char vec[16];
    CHECK_EQ(mincore(p, 16 * PAGE, vec), 0);
    CHECK_EQ(vec[3] & 1, 1);
    CHECK_EQ(madvise(p, 4 * PAGE, MADV_DONTNEED), 0);
    CHECK_EQ(p[0], 0); /* dropped pages read as zero again */
    CHECK_EQ((unsigned char)p[4 * PAGE], 0xab);
    char *fixed = mmap(p + 8 * PAGE, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    CHECK(fixed == p + 8 * PAGE);
    CHECK_EQ(fixed[0], 0); /* replaced */
    CHECK(mmap(p, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0) == MAP_FAILED);
    CHECK_EQ(errno, EEXIST);
    char *grown = mremap(p, 16 * PAGE, 64 * PAGE, MREMAP_MAYMOVE);
    CHECK(grown != MAP_FAILED);
    CHECK_EQ((unsigned char)grown[5 * PAGE], 0xab);
    CHECK_EQ(grown[40 * PAGE], 0);
    CHECK_EQ(munmap(grown, 64 * PAGE), 0);
    CHECK(faults(grown, 0));
    CHECK(fault_addr == grown);
    CHECK_EQ(fault_code, SEGV_MAPERR);
    return NULL;
}

static const char *protection(void) {
    char *p = mmap(0, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED);
    p[0] = 5;
    CHECK_EQ(mprotect(p, PAGE, PROT_READ), 0);
    CHECK(faults(p + 10, 1));
    CHECK(fault_addr == p + 10);
    CHECK_EQ(fault_code, SEGV_ACCERR);
    CHECK_EQ(p[0], 5);
    CHECK(!faults(p + PAGE, 1)); /* the second page is still writable */
    CHECK_EQ(mprotect(p, PAGE, PROT_READ | PROT_WRITE), 0);
    CHECK(!faults(p, 1));
    /* A PROT_NONE reservation becomes usable once opened up. */
    char *r = mmap(0, 32 * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    CHECK(r != MAP_FAILED);
    CHECK(faults(r + 3 * PAGE, 0));
    CHECK_EQ(mprotect(r + 2 * PAGE, 4 * PAGE, PROT_READ | PROT_WRITE), 0);
    r[3 * PAGE] = 9;
    CHECK_EQ(r[3 * PAGE], 9);
    CHECK(faults(r + 8 * PAGE, 1));
    munmap(r, 32 * PAGE);
    munmap(p, 2 * PAGE);
    return NULL;
}

static const char *file_mappings(void) {
    const char *path = SCRATCH "/mapped";
    int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0644);
    CHECK(fd >= 0);
    char page[PAGE];
    for (int i = 0; i < 3; i++) {
        memset(page, 'a' + i, PAGE);
        CHECK_EQ(write(fd, page, PAGE), PAGE);
    }
    char *priv = mmap(0, 3 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    CHECK(priv != MAP_FAILED);
    CHECK_EQ(priv[PAGE], 'b');
    priv[PAGE] = 'Z'; /* copy on write: the file keeps 'b' */
    char c;
    CHECK_EQ(pread(fd, &c, 1, PAGE), 1);
    CHECK_EQ(c, 'b');
    char *shared = mmap(0, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, PAGE);
    CHECK(shared != MAP_FAILED);
    CHECK_EQ(shared[0], 'b');
    shared[1] = 'S'; /* reaches the file */
    CHECK_EQ(msync(shared, 2 * PAGE, MS_SYNC), 0);
    CHECK_EQ(pread(fd, &c, 1, PAGE + 1), 1);
    CHECK_EQ(c, 'S');
    CHECK_EQ(pwrite(fd, "W", 1, 2 * PAGE), 1); /* and the file reaches it */
    CHECK_EQ(shared[PAGE], 'W');
    CHECK(mmap(0, PAGE, PROT_READ, MAP_PRIVATE, fd, 100) == MAP_FAILED); /* unaligned offset */
    CHECK_EQ(errno, EINVAL);
    munmap(priv, 3 * PAGE);
    munmap(shared, 2 * PAGE);
    close(fd);
    unlink(path);
    return NULL;
}

static const char *program_break(void) {
    char *start = sbrk(0);
    CHECK(start != (char *)-1);
    CHECK(sbrk(3 * PAGE) == start);
    memset(start, 7, 3 * PAGE);
    CHECK(sbrk(0) == start + 3 * PAGE);
    CHECK(sbrk(-(3 * PAGE)) != (char *)-1);
    char *big = malloc(50 << 20); /* 50 MiB: mmap'd, demand paged */
    CHECK(big);
    big[0] = 1;
    big[(50 << 20) - 1] = 2;
    free(big);
    return NULL;
}

const struct test memory_tests[] = {
    {"c::mmap_anonymous_fixed_mremap_madvise", anonymous},
    {"c::mprotect_faults_are_caught_by_sigsegv_handler", protection},
    {"c::mmap_file_private_and_shared", file_mappings},
    {"c::brk_and_large_malloc", program_break},
    {0, 0},
};
