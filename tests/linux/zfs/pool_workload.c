/* A Linux program that works a filesystem the way applications do, for
 * the ZFS tests: it runs unmodified under Keel on a ZFS root, and the host
 * then checks the pool with OpenZFS's zdb and compares every file with
 * what this program must have written (tools/src/zfs_guest.rs computes
 * the same contents).
 *
 *   pool_workload write      create, append, overwrite, rename, delete,
 *                            1000 small files, one 8 MiB file; sync; exit 0
 *   pool_workload sum F...   print each file's size and FNV-1a hash, then
 *                            whether creating a file beside the first
 *                            fails with EROFS (read-only mounts)
 *   pool_workload churn N    N generations of 8 files, each replaced by
 *                            write-to-temporary + fsync + rename, with a
 *                            sync after each generation ("gen G" printed);
 *                            the host kills the VM at random moments
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void die(const char *what, const char *path)
{
    printf("pool_workload: %s %s: %s\n", what, path, strerror(errno));
    exit(1);
}

static void write_all(int fd, const unsigned char *p, size_t n, const char *path)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            die("write", path);
        }
        p += w;
        n -= (size_t)w;
    }
}

static void put(const char *path, int flags, const unsigned char *p, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | flags, 0644);
    if (fd < 0)
        die("open", path);
    write_all(fd, p, n, path);
    if (close(fd) != 0)
        die("close", path);
}

/* Byte k of the large file: the host computes the same. */
static unsigned char large_byte(uint64_t k)
{
    uint32_t x = (uint32_t)k * 2654435761u;
    return (unsigned char)((x >> 13) ^ (k >> 12));
}

/* Length and byte k of churn file i in generation g. */
static size_t churn_len(unsigned g, unsigned i)
{
    return 1 + (size_t)((g * 7919u + i * 104729u) % 65536u);
}

static unsigned char churn_byte(unsigned g, unsigned i, size_t k)
{
    return (unsigned char)(k * 31u + g * 17u + i * 101u);
}

static int workload_write(void)
{
    static unsigned char buf[1 << 16];
    char path[64];

    if (mkdir("/data", 0755) != 0 && errno != EEXIST)
        die("mkdir", "/data");
    if (mkdir("/data/small", 0755) != 0 && errno != EEXIST)
        die("mkdir", "/data/small");

    for (int i = 0; i < 3; i++) {
        snprintf((char *)buf, sizeof buf, "append %d\n", i);
        put("/data/log", O_APPEND, buf, strlen((char *)buf));
    }
    put("/data/over", O_TRUNC, (const unsigned char *)"first version, longer than the second\n", 38);
    put("/data/over", O_TRUNC, (const unsigned char *)"second\n", 7);
    put("/data/a", O_TRUNC, (const unsigned char *)"renamed\n", 8);
    if (rename("/data/a", "/data/b") != 0)
        die("rename", "/data/a");
    put("/data/gone", O_TRUNC, (const unsigned char *)"deleted\n", 8);
    if (unlink("/data/gone") != 0)
        die("unlink", "/data/gone");

    for (int i = 0; i < 1000; i++) {
        snprintf(path, sizeof path, "/data/small/f%04d", i);
        int n = snprintf((char *)buf, sizeof buf, "small file %d\n", i);
        put(path, O_TRUNC, buf, (size_t)n);
    }

    int fd = open("/data/large", O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        die("open", "/data/large");
    for (uint64_t off = 0; off < (8u << 20); off += sizeof buf) {
        for (size_t k = 0; k < sizeof buf; k++)
            buf[k] = large_byte(off + k);
        write_all(fd, buf, sizeof buf, "/data/large");
    }
    if (fsync(fd) != 0)
        die("fsync", "/data/large");
    close(fd);

    struct stat st;
    if (stat("/data/large", &st) != 0 || st.st_size != (8 << 20))
        die("stat", "/data/large");
    sync();
    printf("pool_workload: write done\n");
    return 0;
}

static int workload_churn(unsigned generations)
{
    static unsigned char buf[65536];
    char tmp[64], final[64];

    if (mkdir("/data", 0755) != 0 && errno != EEXIST)
        die("mkdir", "/data");
    for (unsigned g = 1; g <= generations; g++) {
        for (unsigned i = 0; i < 8; i++) {
            size_t n = churn_len(g, i);
            for (size_t k = 0; k < n; k++)
                buf[k] = churn_byte(g, i, k);
            snprintf(tmp, sizeof tmp, "/data/c%u.tmp", i);
            snprintf(final, sizeof final, "/data/c%u", i);
            int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd < 0)
                die("open", tmp);
            write_all(fd, buf, n, tmp);
            if (fsync(fd) != 0)
                die("fsync", tmp);
            close(fd);
            if (rename(tmp, final) != 0)
                die("rename", tmp);
        }
        sync();
        printf("gen %u\n", g);
        fflush(stdout);
    }
    printf("pool_workload: churn done\n");
    return 0;
}

static int workload_sum(int n, char **paths)
{
    static unsigned char buf[1 << 16];
    for (int i = 0; i < n; i++) {
        int fd = open(paths[i], O_RDONLY);
        if (fd < 0)
            die("open", paths[i]);
        uint64_t h = 0xcbf29ce484222325ull, size = 0;
        ssize_t r;
        while ((r = read(fd, buf, sizeof buf)) > 0) {
            for (ssize_t k = 0; k < r; k++)
                h = (h ^ buf[k]) * 0x100000001b3ull;
            size += (uint64_t)r;
        }
        if (r < 0)
            die("read", paths[i]);
        close(fd);
        printf("sum %s %llu %016llx\n", paths[i], (unsigned long long)size, (unsigned long long)h);
    }
    char probe[512];
    snprintf(probe, sizeof probe, "%s.new", paths[0]);
    int fd = open(probe, O_WRONLY | O_CREAT, 0644);
    printf("create %s\n", fd < 0 && errno == EROFS ? "EROFS" : "allowed");
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc >= 2 && strcmp(argv[1], "write") == 0)
        return workload_write();
    if (argc >= 3 && strcmp(argv[1], "sum") == 0)
        return workload_sum(argc - 2, argv + 2);
    if (argc >= 3 && strcmp(argv[1], "churn") == 0)
        return workload_churn((unsigned)strtoul(argv[2], NULL, 10));
    fprintf(stderr, "usage: pool_workload write | sum FILE... | churn GENERATIONS\n");
    return 2;
}
