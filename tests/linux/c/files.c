/* Files and directories: round trips through every read/write flavour,
 * metadata, descriptors, and the namespace operations. */
#include "harness.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

static const char *round_trip(void) {
    const char *path = SCRATCH "/data";
    int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0640);
    CHECK(fd >= 0);
    static char out[100000], in[100000];
    for (size_t i = 0; i < sizeof out; i++)
        out[i] = (char)(i * 7 + 3);
    CHECK_EQ(write(fd, out, sizeof out), sizeof out);
    CHECK_EQ(lseek(fd, 0, SEEK_CUR), sizeof out);
    CHECK_EQ(lseek(fd, 0, SEEK_SET), 0);
    CHECK_EQ(read(fd, in, sizeof in), sizeof in);
    CHECK(memcmp(in, out, sizeof in) == 0);
    CHECK_EQ(read(fd, in, 10), 0); /* end of file */
    char small[5];
    CHECK_EQ(pread(fd, small, 5, 1000), 5);
    CHECK(memcmp(small, out + 1000, 5) == 0);
    CHECK_EQ(pwrite(fd, "XYZ", 3, 50), 3);
    CHECK_EQ(lseek(fd, 0, SEEK_CUR), sizeof out); /* pwrite leaves the offset */
    char a[4], b[6];
    struct iovec iov[2] = {{a, sizeof a}, {b, sizeof b}};
    CHECK_EQ(preadv(fd, iov, 2, 48), 10);
    CHECK(a[2] == 'X' && a[3] == 'Y' && b[0] == 'Z');
    struct iovec wv[2] = {{"hello ", 6}, {"world", 5}};
    CHECK_EQ(lseek(fd, 0, SEEK_SET), 0);
    CHECK_EQ(writev(fd, wv, 2), 11);
    CHECK_EQ(pread(fd, in, 11, 0), 11);
    CHECK(memcmp(in, "hello world", 11) == 0);
    struct stat st;
    CHECK_EQ(fstat(fd, &st), 0);
    CHECK_EQ(st.st_size, sizeof out);
    CHECK(S_ISREG(st.st_mode));
    CHECK_EQ(st.st_mode & 0777, 0640 & ~022);
    CHECK_EQ(ftruncate(fd, 10), 0);
    CHECK_EQ(stat(path, &st), 0);
    CHECK_EQ(st.st_size, 10);
    CHECK_EQ(lseek(fd, 0, SEEK_END), 10);
    CHECK_EQ(fsync(fd), 0);
    CHECK_EQ(fdatasync(fd), 0);
    CHECK_EQ(close(fd), 0);
    CHECK_EQ(close(fd), -1);
    CHECK_EQ(errno, EBADF);
    CHECK_EQ(unlink(path), 0);
    CHECK_EQ(open(path, O_RDONLY), -1);
    CHECK_EQ(errno, ENOENT);
    return NULL;
}

static const char *append_excl_and_truncate(void) {
    const char *path = SCRATCH "/append";
    int fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0600);
    CHECK(fd >= 0);
    CHECK_EQ(open(path, O_CREAT | O_EXCL | O_WRONLY, 0600), -1);
    CHECK_EQ(errno, EEXIST);
    CHECK_EQ(write(fd, "abc", 3), 3);
    close(fd);
    fd = open(path, O_WRONLY | O_APPEND);
    CHECK(fd >= 0);
    CHECK_EQ(lseek(fd, 0, SEEK_SET), 0);
    CHECK_EQ(write(fd, "def", 3), 3); /* still at the end */
    close(fd);
    char buf[16] = {0};
    fd = open(path, O_RDONLY);
    CHECK_EQ(read(fd, buf, sizeof buf), 6);
    CHECK(strcmp(buf, "abcdef") == 0);
    CHECK_EQ(write(fd, "x", 1), -1); /* read-only descriptor */
    CHECK_EQ(errno, EBADF);
    close(fd);
    fd = open(path, O_WRONLY | O_TRUNC);
    struct stat st;
    CHECK_EQ(fstat(fd, &st), 0);
    CHECK_EQ(st.st_size, 0);
    close(fd);
    CHECK_EQ(open(path, O_RDONLY | O_DIRECTORY), -1);
    CHECK_EQ(errno, ENOTDIR);
    CHECK_EQ(unlink(path), 0);
    return NULL;
}

static const char *descriptors(void) {
    int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    CHECK(fd >= 0);
    CHECK_EQ(fcntl(fd, F_GETFD), FD_CLOEXEC);
    int d = dup(fd);
    CHECK(d > fd);
    CHECK_EQ(fcntl(d, F_GETFD), 0); /* dup clears close-on-exec */
    CHECK_EQ(dup2(fd, 50), 50);
    CHECK_EQ(fcntl(50, F_SETFD, FD_CLOEXEC), 0);
    CHECK_EQ(fcntl(50, F_GETFD), FD_CLOEXEC);
    CHECK_EQ(dup3(fd, 51, O_CLOEXEC), 51);
    CHECK_EQ(fcntl(51, F_GETFD), FD_CLOEXEC);
    CHECK_EQ(dup3(fd, fd, 0), -1);
    CHECK_EQ(errno, EINVAL);
    int high = fcntl(fd, F_DUPFD, 100);
    CHECK(high >= 100);
    CHECK_EQ(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDWR);
    CHECK_EQ(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
    CHECK(fcntl(fd, F_GETFL) & O_NONBLOCK);
    struct flock lk = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    CHECK_EQ(fcntl(fd, F_SETLK, &lk), 0);
    CHECK_EQ(fcntl(fd, F_GETLK, &lk), 0);
    CHECK_EQ(lk.l_type, F_UNLCK);
    int all[] = {d, 50, 51, high, fd};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        CHECK_EQ(close(all[i]), 0);
    return NULL;
}

static const char *sendfile_and_utimes(void) {
    int src = open(SCRATCH "/src", O_CREAT | O_RDWR | O_TRUNC, 0644);
    int dst = open(SCRATCH "/dst", O_CREAT | O_RDWR | O_TRUNC, 0644);
    CHECK(src >= 0 && dst >= 0);
    char buf[8192];
    memset(buf, 'q', sizeof buf);
    CHECK_EQ(write(src, buf, sizeof buf), sizeof buf);
    off_t off = 100;
    CHECK_EQ(sendfile(dst, src, &off, 5000), 5000);
    CHECK_EQ(off, 5100);
    struct stat st;
    CHECK_EQ(fstat(dst, &st), 0);
    CHECK_EQ(st.st_size, 5000);
    struct timespec times[2] = {{.tv_sec = 1000000000, .tv_nsec = 5}, {.tv_sec = 1200000000, .tv_nsec = 7}};
    CHECK_EQ(futimens(dst, times), 0);
    CHECK_EQ(fstat(dst, &st), 0);
    CHECK_EQ(st.st_mtim.tv_sec, 1200000000);
    CHECK_EQ(st.st_mtim.tv_nsec, 7);
    CHECK_EQ(st.st_atim.tv_sec, 1000000000);
    CHECK_EQ(fchmod(dst, 0600), 0);
    CHECK_EQ(fstat(dst, &st), 0);
    CHECK_EQ(st.st_mode & 0777, 0600);
    struct statx sx;
    CHECK_EQ(statx(AT_FDCWD, SCRATCH "/dst", 0, STATX_BASIC_STATS, &sx), 0);
    CHECK_EQ(sx.stx_size, 5000);
    CHECK_EQ(sx.stx_ino, st.st_ino);
    close(src);
    close(dst);
    unlink(SCRATCH "/src");
    unlink(SCRATCH "/dst");
    return NULL;
}

static const char *directories(void) {
    CHECK_EQ(mkdir(SCRATCH "/d", 0755), 0);
    CHECK_EQ(mkdir(SCRATCH "/d", 0755), -1);
    CHECK_EQ(errno, EEXIST);
    CHECK_EQ(mkdir(SCRATCH "/d/sub", 0700), 0);
    int fd = open(SCRATCH "/d/f1", O_CREAT | O_WRONLY, 0644);
    CHECK(fd >= 0);
    close(fd);
    CHECK_EQ(symlink("f1", SCRATCH "/d/link"), 0);
    char target[64] = {0};
    CHECK_EQ(readlink(SCRATCH "/d/link", target, sizeof target), 2);
    CHECK(strcmp(target, "f1") == 0);
    struct stat st;
    CHECK_EQ(lstat(SCRATCH "/d/link", &st), 0);
    CHECK(S_ISLNK(st.st_mode));
    CHECK_EQ(stat(SCRATCH "/d/link", &st), 0);
    CHECK(S_ISREG(st.st_mode));
    CHECK_EQ(link(SCRATCH "/d/f1", SCRATCH "/d/hard"), 0);
    CHECK_EQ(stat(SCRATCH "/d/f1", &st), 0);
    CHECK_EQ(st.st_nlink, 2);
    DIR *dir = opendir(SCRATCH "/d");
    CHECK(dir);
    int seen = 0;
    struct dirent *e;
    while ((e = readdir(dir))) {
        if (!strcmp(e->d_name, "sub"))
            { seen |= 1; CHECK_EQ(e->d_type, DT_DIR); }
        if (!strcmp(e->d_name, "f1"))
            { seen |= 2; CHECK_EQ(e->d_type, DT_REG); }
        if (!strcmp(e->d_name, "link"))
            { seen |= 4; CHECK_EQ(e->d_type, DT_LNK); }
        if (!strcmp(e->d_name, "hard"))
            seen |= 8;
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            seen |= 16;
    }
    closedir(dir);
    CHECK_EQ(seen, 31);
    CHECK_EQ(rmdir(SCRATCH "/d"), -1);
    CHECK_EQ(errno, ENOTEMPTY);
    int dfd = open(SCRATCH "/d", O_RDONLY | O_DIRECTORY);
    CHECK(dfd >= 0);
    CHECK_EQ(renameat(dfd, "f1", dfd, "f2"), 0);
    CHECK_EQ(faccessat(dfd, "f2", R_OK | W_OK, 0), 0);
    CHECK_EQ(faccessat(dfd, "f1", F_OK, 0), -1);
    CHECK_EQ(errno, ENOENT);
    CHECK_EQ(syscall(SYS_renameat2, dfd, "f2", dfd, "hard", 1 /* RENAME_NOREPLACE */), -1);
    CHECK_EQ(errno, EEXIST);
    char cwd[256];
    CHECK_EQ(fchdir(dfd), 0);
    CHECK(getcwd(cwd, sizeof cwd));
    CHECK(strcmp(cwd, SCRATCH "/d") == 0);
    CHECK_EQ(chdir("sub"), 0);
    CHECK(getcwd(cwd, sizeof cwd));
    CHECK(strcmp(cwd, SCRATCH "/d/sub") == 0);
    CHECK_EQ(chdir("../.."), 0);
    CHECK(getcwd(cwd, sizeof cwd));
    CHECK(strcmp(cwd, SCRATCH) == 0);
    CHECK_EQ(chdir("/"), 0);
    CHECK_EQ(unlinkat(dfd, "sub", 0), -1);
    CHECK_EQ(errno, EISDIR);
    CHECK_EQ(unlinkat(dfd, "sub", AT_REMOVEDIR), 0);
    const char *names[] = {"f2", "link", "hard"};
    for (size_t i = 0; i < 3; i++)
        CHECK_EQ(unlinkat(dfd, names[i], 0), 0);
    close(dfd);
    CHECK_EQ(rmdir(SCRATCH "/d"), 0);
    return NULL;
}

static const char *special_files(void) {
    char buf[64];
    int fd = open("/dev/zero", O_RDONLY);
    CHECK_EQ(read(fd, buf, sizeof buf), sizeof buf);
    for (size_t i = 0; i < sizeof buf; i++)
        CHECK_EQ(buf[i], 0);
    close(fd);
    fd = open("/dev/null", O_RDWR);
    CHECK_EQ(read(fd, buf, sizeof buf), 0);
    CHECK_EQ(write(fd, buf, sizeof buf), sizeof buf);
    close(fd);
    fd = open("/dev/full", O_WRONLY);
    CHECK_EQ(write(fd, buf, 1), -1);
    CHECK_EQ(errno, ENOSPC);
    close(fd);
    fd = open("/dev/urandom", O_RDONLY);
    CHECK_EQ(read(fd, buf, sizeof buf), sizeof buf);
    int nonzero = 0;
    for (size_t i = 0; i < sizeof buf; i++)
        nonzero += buf[i] != 0;
    CHECK(nonzero > 32);
    close(fd);
    CHECK(isatty(1));
    CHECK(!isatty(fd = open("/dev/null", O_RDONLY)));
    close(fd);
    return NULL;
}

const struct test file_tests[] = {
    {"c::file_round_trip", round_trip},
    {"c::file_append_excl_truncate", append_excl_and_truncate},
    {"c::file_descriptors", descriptors},
    {"c::file_sendfile_utimes_statx", sendfile_and_utimes},
    {"c::file_directories_and_links", directories},
    {"c::file_dev_nodes", special_files},
    {0, 0},
};
