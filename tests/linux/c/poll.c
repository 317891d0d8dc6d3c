/* Waiting for descriptors: poll, select and epoll (level and edge
 * triggered, one-shot) over pipes, eventfd and timerfd. */
#include "harness.h"

#include <poll.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/select.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static const char *poll_and_select(void) {
    int p[2];
    CHECK_EQ(pipe(p), 0);
    struct pollfd fds[2] = {{.fd = p[0], .events = POLLIN}, {.fd = p[1], .events = POLLOUT}};
    CHECK_EQ(poll(fds, 2, 0), 1);
    CHECK_EQ(fds[0].revents, 0);
    CHECK_EQ(fds[1].revents, POLLOUT);
    long long t0 = now_ms();
    CHECK_EQ(poll(fds, 1, 30), 0);
    CHECK(now_ms() - t0 >= 29);
    CHECK_EQ(write(p[1], "x", 1), 1);
    CHECK_EQ(poll(fds, 1, -1), 1);
    CHECK_EQ(fds[0].revents, POLLIN);
    fd_set r;
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    struct timeval tv = {0, 0};
    CHECK_EQ(select(p[0] + 1, &r, 0, 0, &tv), 1);
    CHECK(FD_ISSET(p[0], &r));
    char c;
    CHECK_EQ(read(p[0], &c, 1), 1);
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    tv.tv_usec = 10000;
    CHECK_EQ(select(p[0] + 1, &r, 0, 0, &tv), 0);
    close(p[1]);
    CHECK_EQ(poll(fds, 1, 0), 1);
    CHECK(fds[0].revents & POLLHUP);
    struct pollfd bad = {.fd = 999, .events = POLLIN};
    CHECK_EQ(poll(&bad, 1, 0), 1);
    CHECK_EQ(bad.revents, POLLNVAL);
    close(p[0]);
    return NULL;
}

static const char *epoll_levels_and_edges(void) {
    int ep = epoll_create1(EPOLL_CLOEXEC);
    CHECK(ep >= 0);
    int p[2];
    CHECK_EQ(pipe(p), 0);
    int ev = eventfd(0, EFD_NONBLOCK);
    CHECK(ev >= 0);
    struct epoll_event e = {.events = EPOLLIN, .data.u64 = 1};
    CHECK_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &e), 0);
    CHECK_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &e), -1);
    CHECK_EQ(errno, EEXIST);
    e.events = EPOLLIN | EPOLLET;
    e.data.u64 = 2;
    CHECK_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, ev, &e), 0);
    struct epoll_event out[4];
    CHECK_EQ(epoll_wait(ep, out, 4, 0), 0);
    CHECK_EQ(write(p[1], "ab", 2), 2);
    uint64_t one = 1;
    CHECK_EQ(write(ev, &one, 8), 8);
    CHECK_EQ(epoll_wait(ep, out, 4, 100), 2);
    /* Level-triggered: the pipe is still readable, so it is reported again;
       edge-triggered: the eventfd is not, until it changes. */
    CHECK_EQ(epoll_wait(ep, out, 4, 0), 1);
    CHECK_EQ(out[0].data.u64, 1);
    CHECK_EQ(write(ev, &one, 8), 8);
    int n = epoll_wait(ep, out, 4, 0);
    CHECK_EQ(n, 2);
    uint64_t v;
    CHECK_EQ(read(ev, &v, 8), 8);
    CHECK_EQ(v, 2);
    CHECK_EQ(read(ev, &v, 8), -1);
    CHECK_EQ(errno, EAGAIN);
    char buf[4];
    CHECK_EQ(read(p[0], buf, 4), 2);
    CHECK_EQ(epoll_wait(ep, out, 4, 0), 0);
    /* One-shot: reported once, then disarmed until modified. */
    e.events = EPOLLIN | EPOLLONESHOT;
    e.data.u64 = 3;
    CHECK_EQ(epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &e), 0);
    CHECK_EQ(write(p[1], "c", 1), 1);
    CHECK_EQ(epoll_wait(ep, out, 4, 0), 1);
    CHECK_EQ(out[0].data.u64, 3);
    CHECK_EQ(epoll_wait(ep, out, 4, 0), 0);
    CHECK_EQ(epoll_ctl(ep, EPOLL_CTL_DEL, p[0], 0), 0);
    CHECK_EQ(epoll_ctl(ep, EPOLL_CTL_DEL, p[0], 0), -1);
    CHECK_EQ(errno, ENOENT);
    close(p[0]);
    close(p[1]);
    close(ev);
    close(ep);
    return NULL;
}

static const char *timers(void) {
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
    CHECK(tfd >= 0);
    int ep = epoll_create1(0);
    struct epoll_event e = {.events = EPOLLIN, .data.u64 = 9}, out;
    CHECK_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &e), 0);
    struct itimerspec its = {.it_value = {0, 20 * 1000 * 1000}, .it_interval = {0, 10 * 1000 * 1000}};
    long long t0 = now_ms();
    CHECK_EQ(timerfd_settime(tfd, 0, &its, 0), 0);
    CHECK_EQ(epoll_wait(ep, &out, 1, 1000), 1);
    long long waited = now_ms() - t0;
    CHECK(waited >= 19);
    CHECK(waited < 900);
    uint64_t expirations;
    usleep(35000);
    CHECK_EQ(read(tfd, &expirations, 8), 8);
    CHECK(expirations >= 3);
    struct itimerspec cur;
    CHECK_EQ(timerfd_gettime(tfd, &cur), 0);
    CHECK_EQ(cur.it_interval.tv_nsec, 10 * 1000 * 1000);
    struct itimerspec off = {0};
    CHECK_EQ(timerfd_settime(tfd, 0, &off, 0), 0);
    CHECK_EQ(epoll_wait(ep, &out, 1, 30), 0);
    /* An absolute realtime deadline in the past fires at once. */
    int rt = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK);
    struct itimerspec past = {.it_value = {1, 0}};
    CHECK_EQ(timerfd_settime(rt, TFD_TIMER_ABSTIME, &past, 0), 0);
    CHECK_EQ(read(rt, &expirations, 8), 8);
    CHECK_EQ(expirations, 1);
    close(rt);
    close(tfd);
    close(ep);
    return NULL;
}

const struct test poll_tests[] = {
    {"c::poll_and_select_on_a_pipe", poll_and_select},
    {"c::epoll_level_edge_oneshot_on_pipe_and_eventfd", epoll_levels_and_edges},
    {"c::timerfd_with_epoll", timers},
    {0, 0},
};
