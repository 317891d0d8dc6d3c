/* TCP and UDP echo servers for the host-driven network tests: unmodified
 * Linux code that runs under Keel behind QEMU user networking, while the
 * host (tools/src/net_phase.rs) connects through forwarded ports.
 *
 *   echo_server PORT          thread per TCP connection on PORT, an epoll
 *                             server on PORT+1, UDP echo on PORT+2
 *
 * Each TCP server echoes every byte until the peer half-closes, then
 * closes its side. "ready" is printed once all three listen.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

static int listen_on(int type, int port)
{
    int fd = socket(AF_INET6, type, 0);
    if (fd < 0) {
        perror("socket");
        exit(1);
    }
    int one = 1, zero = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons((unsigned short)port)};
    a.sin6_addr = in6addr_any;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        perror("bind");
        exit(1);
    }
    if (type == SOCK_STREAM && listen(fd, 64) != 0) {
        perror("listen");
        exit(1);
    }
    return fd;
}

static void *serve_one(void *arg)
{
    int fd = (int)(long)arg;
    char buf[16384];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0)
            break; /* EOF (half-close) or reset */
        for (ssize_t off = 0; off < n;) {
            ssize_t w = send(fd, buf + off, (size_t)(n - off), MSG_NOSIGNAL);
            if (w <= 0)
                goto out;
            off += w;
        }
    }
out:
    close(fd);
    return NULL;
}

static void *threaded_server(void *arg)
{
    int lfd = (int)(long)arg;
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            perror("accept");
            exit(1);
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        pthread_t t;
        if (pthread_create(&t, NULL, serve_one, (void *)(long)fd) != 0) {
            close(fd);
            continue;
        }
        pthread_detach(t);
    }
    return NULL;
}

/* Per-connection state of the epoll server: bytes read but not yet echoed. */
struct conn {
    int fd;
    char buf[16384];
    size_t len, off;
    int eof;
};

static void *epoll_server(void *arg)
{
    int lfd = (int)(long)arg;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    fcntl(lfd, F_SETFL, O_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    struct epoll_event events[64];
    for (;;) {
        int n = epoll_wait(ep, events, 64, -1);
        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;
            if (!c) {
                for (;;) {
                    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
                    if (fd < 0)
                        break;
                    c = calloc(1, sizeof *c);
                    if (!c) {
                        close(fd);
                        continue;
                    }
                    c->fd = fd;
                    struct epoll_event cev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
                }
                continue;
            }
            int dead = 0;
            if (c->len == 0 && !c->eof) {
                ssize_t r = read(c->fd, c->buf, sizeof c->buf);
                if (r > 0) {
                    c->len = (size_t)r;
                    c->off = 0;
                } else if (r == 0) {
                    c->eof = 1;
                } else if (errno != EAGAIN) {
                    dead = 1;
                }
            }
            while (!dead && c->off < c->len) {
                ssize_t w = send(c->fd, c->buf + c->off, c->len - c->off, MSG_NOSIGNAL);
                if (w > 0) {
                    c->off += (size_t)w;
                } else if (w < 0 && errno == EAGAIN) {
                    break;
                } else {
                    dead = 1;
                }
            }
            if (c->off == c->len)
                c->len = c->off = 0;
            if (dead || (c->eof && c->len == 0)) {
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                close(c->fd);
                free(c);
                continue;
            }
            /* Wait for room to send when output is pending, else for input. */
            struct epoll_event cev = {
                .events = (c->len ? EPOLLOUT : EPOLLIN | EPOLLRDHUP), .data.ptr = c};
            epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &cev);
        }
    }
    return NULL;
}

static void *udp_server(void *arg)
{
    int fd = (int)(long)arg;
    char buf[65536];
    for (;;) {
        struct sockaddr_in6 from;
        socklen_t len = sizeof from;
        ssize_t n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &len);
        if (n < 0)
            continue;
        sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&from, len);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    int port = argc > 1 ? atoi(argv[1]) : 7000;
    pthread_t t1, t2, t3;
    pthread_create(&t1, NULL, threaded_server, (void *)(long)listen_on(SOCK_STREAM, port));
    pthread_create(&t2, NULL, epoll_server, (void *)(long)listen_on(SOCK_STREAM, port + 1));
    pthread_create(&t3, NULL, udp_server, (void *)(long)listen_on(SOCK_DGRAM, port + 2));
    printf("ready\n");
    pthread_join(t1, NULL);
    return 0;
}
