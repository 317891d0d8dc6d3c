/* Sockets: AF_UNIX pairs and names (stream and datagram, end of file,
 * EPIPE and SIGPIPE), TCP over 127.0.0.1 and ::1 (threaded and epoll echo
 * servers checked byte for byte, half close, non-blocking connect,
 * backlog refusal, resets), UDP echo, options and readiness. */
#include "harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* ---- helpers ---- */

/* An address of family `v6` on loopback with `port`. */
static socklen_t loop_addr(int v6, int port, struct sockaddr_storage *ss) {
    memset(ss, 0, sizeof *ss);
    if (v6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(port);
        a->sin6_addr = in6addr_loopback;
        return sizeof *a;
    }
    struct sockaddr_in *a = (struct sockaddr_in *)ss;
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return sizeof *a;
}

static int port_of(int fd) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    return ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                          : ((struct sockaddr_in *)&ss)->sin_port);
}

/* A listening socket on loopback with an ephemeral port; returns the fd. */
static int listener(int v6, int backlog, int *port) {
    int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_storage ss;
    socklen_t len = loop_addr(v6, 0, &ss);
    if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, backlog) != 0)
        return -1;
    *port = port_of(fd);
    return fd;
}

static int connect_to(int v6, int port) {
    int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_storage ss;
    socklen_t len = loop_addr(v6, port, &ss);
    if (connect(fd, (struct sockaddr *)&ss, len) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static int write_all(int fd, const unsigned char *p, size_t n) {
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int read_all(int fd, unsigned char *p, size_t n) {
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static volatile sig_atomic_t sigpipes;
static void on_sigpipe(int sig) {
    (void)sig;
    sigpipes++;
}

/* ---- AF_UNIX ---- */

static const char *unix_stream_pair(void) {
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    CHECK_EQ(write(sv[0], "hello", 5), 5);
    int avail = -1;
    CHECK_EQ(ioctl(sv[1], FIONREAD, &avail), 0);
    CHECK_EQ(avail, 5);
    char buf[16];
    CHECK_EQ(recv(sv[1], buf, sizeof buf, MSG_PEEK), 5);
    CHECK_EQ(read(sv[1], buf, sizeof buf), 5);
    CHECK(memcmp(buf, "hello", 5) == 0);
    CHECK_EQ(recv(sv[1], buf, sizeof buf, MSG_DONTWAIT), -1);
    CHECK_EQ(errno, EAGAIN);
    struct pollfd p = {.fd = sv[1], .events = POLLIN | POLLOUT | POLLRDHUP};
    CHECK_EQ(poll(&p, 1, 0), 1);
    CHECK_EQ(p.revents, POLLOUT);
    /* Half close: the other side reads end of file, can still answer. */
    CHECK_EQ(shutdown(sv[0], SHUT_WR), 0);
    CHECK_EQ(poll(&p, 1, 0), 1);
    CHECK(p.revents & POLLRDHUP);
    CHECK_EQ(read(sv[1], buf, sizeof buf), 0);
    CHECK_EQ(write(sv[1], "back", 4), 4);
    CHECK_EQ(read(sv[0], buf, sizeof buf), 4);
    /* Peer gone: EPIPE, with SIGPIPE unless MSG_NOSIGNAL. */
    close(sv[0]);
    CHECK_EQ(send(sv[1], "x", 1, MSG_NOSIGNAL), -1);
    CHECK_EQ(errno, EPIPE);
    struct sigaction sa = {.sa_handler = on_sigpipe}, old;
    sigemptyset(&sa.sa_mask);
    CHECK_EQ(sigaction(SIGPIPE, &sa, &old), 0);
    sigpipes = 0;
    CHECK_EQ(write(sv[1], "x", 1), -1);
    CHECK_EQ(errno, EPIPE);
    CHECK_EQ(sigpipes, 1);
    sigaction(SIGPIPE, &old, 0);
    close(sv[1]);
    return NULL;
}

static const char *unix_dgram_pair_and_names(void) {
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv), 0);
    CHECK_EQ(send(sv[0], "one", 3, 0), 3);
    CHECK_EQ(send(sv[0], "second", 6, 0), 6);
    char buf[4];
    CHECK_EQ(recv(sv[1], buf, sizeof buf, MSG_TRUNC | MSG_PEEK), 3);
    CHECK_EQ(recv(sv[1], buf, sizeof buf, 0), 3);
    /* A long datagram is cut to the buffer; MSG_TRUNC reports its length. */
    CHECK_EQ(recv(sv[1], buf, sizeof buf, MSG_TRUNC), 6);
    CHECK_EQ(recv(sv[1], buf, sizeof buf, MSG_DONTWAIT), -1);
    CHECK_EQ(errno, EAGAIN);
    close(sv[0]);
    close(sv[1]);

    /* Abstract names, with the sender's address reported. */
    int srv = socket(AF_UNIX, SOCK_DGRAM, 0), cli = socket(AF_UNIX, SOCK_DGRAM, 0);
    CHECK(srv >= 0 && cli >= 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, "\0keel-dgram-srv", 15);
    socklen_t salen = offsetof(struct sockaddr_un, sun_path) + 15;
    CHECK_EQ(bind(srv, (struct sockaddr *)&sa, salen), 0);
    struct sockaddr_un ca = {.sun_family = AF_UNIX};
    memcpy(ca.sun_path, "\0keel-dgram-cli", 15);
    CHECK_EQ(bind(cli, (struct sockaddr *)&ca, salen), 0);
    CHECK_EQ(sendto(cli, "ping", 4, 0, (struct sockaddr *)&sa, salen), 4);
    struct sockaddr_un from;
    socklen_t fromlen = sizeof from;
    char b2[16];
    CHECK_EQ(recvfrom(srv, b2, sizeof b2, 0, (struct sockaddr *)&from, &fromlen), 4);
    CHECK_EQ(fromlen, salen);
    CHECK(memcmp(from.sun_path, ca.sun_path, 15) == 0);
    CHECK_EQ(sendto(srv, "pong", 4, 0, (struct sockaddr *)&from, fromlen), 4);
    CHECK_EQ(recv(cli, b2, sizeof b2, 0), 4);
    CHECK(memcmp(b2, "pong", 4) == 0);
    close(srv);
    CHECK_EQ(sendto(cli, "x", 1, 0, (struct sockaddr *)&sa, salen), -1);
    CHECK_EQ(errno, ECONNREFUSED);
    close(cli);
    return NULL;
}

static const char *unix_stream_filesystem_names(void) {
    const char *path = SCRATCH "/sock";
    unlink(path);
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(l >= 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, path);
    CHECK_EQ(bind(l, (struct sockaddr *)&sa, sizeof sa), 0);
    struct stat st;
    CHECK_EQ(stat(path, &st), 0);
    CHECK(S_ISSOCK(st.st_mode));
    int again = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK_EQ(bind(again, (struct sockaddr *)&sa, sizeof sa), -1);
    CHECK_EQ(errno, EADDRINUSE);
    close(again);
    /* Not listening yet: refused. */
    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK_EQ(connect(c, (struct sockaddr *)&sa, sizeof sa), -1);
    CHECK_EQ(errno, ECONNREFUSED);
    CHECK_EQ(listen(l, 4), 0);
    CHECK_EQ(connect(c, (struct sockaddr *)&sa, sizeof sa), 0);
    struct sockaddr_un peer;
    socklen_t plen = sizeof peer;
    CHECK_EQ(getpeername(c, (struct sockaddr *)&peer, &plen), 0);
    CHECK(strcmp(peer.sun_path, path) == 0);
    int s = accept4(l, 0, 0, SOCK_CLOEXEC);
    CHECK(s >= 0);
    CHECK_EQ(write(c, "via the filesystem", 18), 18);
    char buf[32];
    CHECK_EQ(read(s, buf, sizeof buf), 18);
    int type = 0;
    socklen_t tlen = sizeof type;
    CHECK_EQ(getsockopt(s, SOL_SOCKET, SO_TYPE, &type, &tlen), 0);
    CHECK_EQ(type, SOCK_STREAM);
    close(s);
    CHECK_EQ(read(c, buf, sizeof buf), 0);
    close(c);
    close(l);
    CHECK_EQ(unlink(path), 0);
    return NULL;
}

/* ---- TCP ---- */

struct echo_conn {
    int fd;
};

static void *echo_conn_thread(void *arg) {
    int fd = ((struct echo_conn *)arg)->fd;
    free(arg);
    unsigned char buf[8192];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || write_all(fd, buf, (size_t)n) != 0)
            break;
    }
    close(fd);
    return NULL;
}

struct echo_server {
    int fd;
    int clients;
};

static void *echo_accept_thread(void *arg) {
    struct echo_server *srv = arg;
    for (int i = 0; i < srv->clients; i++) {
        int c = accept(srv->fd, 0, 0);
        if (c < 0)
            return (void *)"accept failed";
        struct echo_conn *ec = malloc(sizeof *ec);
        ec->fd = c;
        pthread_t t;
        pthread_create(&t, 0, echo_conn_thread, ec);
        pthread_detach(t);
    }
    return NULL;
}

struct client_job {
    int v6, port;
    unsigned seed;
    size_t total;
    const char *error;
};

/* Send random chunks, read each echo back, compare byte for byte. */
static void *echo_client_thread(void *arg) {
    struct client_job *j = arg;
    int fd = connect_to(j->v6, j->port);
    if (fd < 0) {
        j->error = "connect failed";
        return NULL;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    unsigned char out[6000], in[6000];
    size_t done = 0;
    while (done < j->total) {
        size_t n = 1 + (size_t)(rand_r(&j->seed) % sizeof out);
        for (size_t i = 0; i < n; i++)
            out[i] = (unsigned char)rand_r(&j->seed);
        if (write_all(fd, out, n) != 0) {
            j->error = "write failed";
            break;
        }
        if (read_all(fd, in, n) != 0) {
            j->error = "echo short";
            break;
        }
        if (memcmp(in, out, n) != 0) {
            j->error = "echo differs";
            break;
        }
        done += n;
    }
    close(fd);
    return NULL;
}

static const char *run_clients(int v6, int port, int clients, size_t each) {
    pthread_t t[8];
    struct client_job jobs[8];
    for (int i = 0; i < clients; i++) {
        jobs[i] = (struct client_job){.v6 = v6, .port = port, .seed = 1234u + (unsigned)i * 77u, .total = each};
        CHECK_EQ(pthread_create(&t[i], 0, echo_client_thread, &jobs[i]), 0);
    }
    for (int i = 0; i < clients; i++) {
        pthread_join(t[i], 0);
        if (jobs[i].error)
            return failf("client %d: %s", i, jobs[i].error);
    }
    return NULL;
}

static const char *tcp_threaded_echo(int v6) {
    int port;
    int l = listener(v6, 8, &port);
    CHECK(l >= 0);
    CHECK(port > 0);
    struct echo_server srv = {.fd = l, .clients = 4};
    pthread_t acc;
    CHECK_EQ(pthread_create(&acc, 0, echo_accept_thread, &srv), 0);
    const char *why = run_clients(v6, port, 4, 48 * 1024);
    void *ret;
    pthread_join(acc, &ret);
    close(l);
    if (why)
        return why;
    if (ret)
        return ret;
    return NULL;
}

static const char *tcp_echo_v4(void) { return tcp_threaded_echo(0); }
static const char *tcp_echo_v6(void) { return tcp_threaded_echo(1); }

struct epoll_server {
    int listen_fd, clients;
    unsigned conn_events; /* EPOLLET or 0 */
    const char *error;
};

static void *epoll_server_thread(void *arg) {
    struct epoll_server *s = arg;
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = s->listen_fd};
    epoll_ctl(ep, EPOLL_CTL_ADD, s->listen_fd, &ev);
    int accepted = 0, closed = 0;
    unsigned char buf[8192];
    while (closed < s->clients) {
        struct epoll_event evs[8];
        int n = epoll_wait(ep, evs, 8, 10000);
        if (n <= 0) {
            s->error = n == 0 ? "epoll_wait timed out" : "epoll_wait failed";
            break;
        }
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == s->listen_fd) {
                int c = accept4(s->listen_fd, 0, 0, SOCK_NONBLOCK);
                if (c < 0)
                    continue;
                accepted++;
                struct epoll_event cev = {.events = EPOLLIN | EPOLLRDHUP | s->conn_events, .data.fd = c};
                epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
                continue;
            }
            for (;;) {
                ssize_t r = read(fd, buf, sizeof buf);
                if (r > 0) {
                    /* The client waits for each echo, so this fits. */
                    size_t off = 0;
                    while (off < (size_t)r) {
                        ssize_t w = write(fd, buf + off, (size_t)r - off);
                        if (w > 0)
                            off += (size_t)w;
                        else if (w < 0 && errno == EAGAIN) {
                            struct pollfd p = {.fd = fd, .events = POLLOUT};
                            poll(&p, 1, 1000);
                        } else
                            break;
                    }
                    continue;
                }
                if (r == 0 || (r < 0 && errno != EAGAIN)) {
                    epoll_ctl(ep, EPOLL_CTL_DEL, fd, 0);
                    close(fd);
                    closed++;
                }
                break;
            }
        }
    }
    close(ep);
    (void)accepted;
    return NULL;
}

static const char *tcp_epoll_echo(unsigned conn_events) {
    int port;
    int l = listener(0, 8, &port);
    CHECK(l >= 0);
    fcntl(l, F_SETFL, O_NONBLOCK);
    struct epoll_server s = {.listen_fd = l, .clients = 3, .conn_events = conn_events};
    pthread_t t;
    CHECK_EQ(pthread_create(&t, 0, epoll_server_thread, &s), 0);
    const char *why = run_clients(0, port, 3, 32 * 1024);
    pthread_join(t, 0);
    close(l);
    if (why)
        return why;
    if (s.error)
        return s.error;
    return NULL;
}

static const char *tcp_epoll_echo_level(void) { return tcp_epoll_echo(0); }
/* Edge-triggered: the server drains each connection until EAGAIN. */
static const char *tcp_epoll_echo_edge(void) { return tcp_epoll_echo(EPOLLET); }

static const char *tcp_half_close(void) {
    int port;
    int l = listener(1, 2, &port);
    CHECK(l >= 0);
    int c = connect_to(1, port);
    CHECK(c >= 0);
    struct sockaddr_in6 peer;
    socklen_t plen = sizeof peer;
    int s = accept(l, (struct sockaddr *)&peer, &plen);
    CHECK(s >= 0);
    CHECK_EQ(plen, sizeof peer);
    CHECK(IN6_IS_ADDR_LOOPBACK(&peer.sin6_addr));
    CHECK_EQ(ntohs(peer.sin6_port), port_of(c));
    CHECK_EQ(write(c, "request", 7), 7);
    CHECK_EQ(shutdown(c, SHUT_WR), 0);
    char buf[32];
    size_t got = 0;
    for (;;) {
        ssize_t r = read(s, buf + got, sizeof buf - got);
        CHECK(r >= 0);
        if (r == 0)
            break;
        got += (size_t)r;
    }
    CHECK_EQ(got, 7);
    CHECK_EQ(write(s, "response", 8), 8);
    close(s);
    got = 0;
    for (;;) {
        ssize_t r = read(c, buf + got, sizeof buf - got);
        CHECK(r >= 0);
        if (r == 0)
            break;
        got += (size_t)r;
    }
    CHECK_EQ(got, 8);
    CHECK(memcmp(buf, "response", 8) == 0);
    close(c);
    close(l);
    return NULL;
}

/* Many short connections one after another: closed connections and
 * their ports must be recycled, not pile up. */
static const char *tcp_many_short_connections(void) {
    int port;
    int l = listener(0, 4, &port);
    CHECK(l >= 0);
    for (int i = 0; i < 300; i++) {
        int c = connect_to(0, port);
        if (c < 0)
            return failf("connection %d: %s", i, strerror(errno));
        int s = accept(l, 0, 0);
        CHECK(s >= 0);
        CHECK_EQ(write(c, "q", 1), 1);
        char b;
        CHECK_EQ(read(s, &b, 1), 1);
        /* Alternate who closes first. */
        if (i % 2) {
            close(c);
            CHECK_EQ(read(s, &b, 1), 0);
            close(s);
        } else {
            close(s);
            CHECK_EQ(read(c, &b, 1), 0);
            close(c);
        }
    }
    close(l);
    return NULL;
}

static const char *tcp_nonblocking_connect(void) {
    int port;
    int l = listener(0, 2, &port);
    CHECK(l >= 0);
    int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_storage ss;
    socklen_t len = loop_addr(0, port, &ss);
    int r = connect(c, (struct sockaddr *)&ss, len);
    CHECK(r == 0 || errno == EINPROGRESS);
    struct pollfd p = {.fd = c, .events = POLLOUT};
    CHECK_EQ(poll(&p, 1, 5000), 1);
    CHECK(p.revents & POLLOUT);
    int err = -1;
    socklen_t elen = sizeof err;
    CHECK_EQ(getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &elen), 0);
    CHECK_EQ(err, 0);
    char buf[4];
    CHECK_EQ(read(c, buf, sizeof buf), -1);
    CHECK_EQ(errno, EAGAIN);
    close(c);
    close(l);

    /* Nobody listening: the error arrives through SO_ERROR. */
    int d = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    r = connect(d, (struct sockaddr *)&ss, len);
    CHECK(r == -1 && (errno == EINPROGRESS || errno == ECONNREFUSED));
    if (errno == EINPROGRESS) {
        p.fd = d;
        CHECK_EQ(poll(&p, 1, 5000), 1);
        CHECK_EQ(getsockopt(d, SOL_SOCKET, SO_ERROR, &err, &elen), 0);
        CHECK_EQ(err, ECONNREFUSED);
    }
    close(d);
    /* And a blocking connect reports it directly. */
    CHECK_EQ(connect_to(0, port), -1);
    CHECK_EQ(errno, ECONNREFUSED);
    return NULL;
}

static const char *tcp_backlog_refusal_and_reset(void) {
    int port;
    int l = listener(0, 1, &port);
    CHECK(l >= 0);
    int a = connect_to(0, port);
    CHECK(a >= 0);
    /* The one pending slot is taken: the next attempt is refused. */
    CHECK_EQ(connect_to(0, port), -1);
    CHECK_EQ(errno, ECONNREFUSED);
    int s = accept(l, 0, 0);
    CHECK(s >= 0);
    int b = connect_to(0, port);
    CHECK(b >= 0);
    /* SO_LINGER 0: close resets; the peer sees ECONNRESET once. */
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    CHECK_EQ(setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
    close(s);
    char buf[4];
    struct pollfd p = {.fd = a, .events = POLLIN};
    CHECK_EQ(poll(&p, 1, 5000), 1);
    CHECK_EQ(read(a, buf, sizeof buf), -1);
    CHECK_EQ(errno, ECONNRESET);
    close(a);
    close(b);
    close(l);
    return NULL;
}

static const char *tcp_options_and_names(void) {
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    int v = 1;
    socklen_t len = sizeof v;
    CHECK_EQ(setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, sizeof v), 0);
    v = 0;
    CHECK_EQ(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &len), 0);
    CHECK_EQ(v, 1);
    v = 1;
    CHECK_EQ(setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v, sizeof v), 0);
    CHECK_EQ(setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &v, sizeof v), 0);
    v = 60;
    CHECK_EQ(setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &v, sizeof v), 0);
    CHECK_EQ(getsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &v, &len), 0);
    CHECK_EQ(v, 60);
    v = 0;
    CHECK_EQ(setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &v, sizeof v), -1);
    CHECK_EQ(errno, EINVAL);
    v = 17;
    CHECK_EQ(setsockopt(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &v, sizeof v), 0);
    CHECK_EQ(getsockopt(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &v, &len), 0);
    CHECK_EQ(v, 17);
    v = 32768;
    CHECK_EQ(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof v), 0);
    CHECK_EQ(getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, &len), 0);
    CHECK(v >= 32768);
    CHECK_EQ(getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v, &len), 0);
    CHECK_EQ(v, AF_INET6);
    CHECK_EQ(setsockopt(fd, SOL_SOCKET, 9999, &v, sizeof v), -1);
    CHECK_EQ(errno, ENOPROTOOPT);
    struct timeval tv = {0, 50000};
    CHECK_EQ(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = in6addr_any};
    CHECK_EQ(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    CHECK(port_of(fd) >= 1024);
    CHECK_EQ(listen(fd, 2), 0);
    CHECK_EQ(getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len), 0);
    CHECK_EQ(v, 1);
    /* SO_RCVTIMEO bounds accept too. */
    CHECK_EQ(accept(fd, 0, 0), -1);
    CHECK(errno == EAGAIN || errno == EWOULDBLOCK);
    struct sockaddr_in6 peer;
    len = sizeof peer;
    CHECK_EQ(getpeername(fd, (struct sockaddr *)&peer, &len), -1);
    CHECK_EQ(errno, ENOTCONN);
    CHECK_EQ(socket(AF_INET, SOCK_STREAM, IPPROTO_UDP), -1);
    CHECK_EQ(errno, EPROTONOSUPPORT);
    CHECK_EQ(socket(AF_INET, SOCK_STREAM | 0x10000000, 0), -1);
    CHECK_EQ(errno, EINVAL);
    close(fd);
    /* Broadcasts need SO_BROADCAST. */
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in bc = {.sin_family = AF_INET, .sin_port = htons(9), .sin_addr.s_addr = INADDR_BROADCAST};
    CHECK_EQ(sendto(u, "x", 1, 0, (struct sockaddr *)&bc, sizeof bc), -1);
    CHECK_EQ(errno, EACCES);
    v = 1;
    CHECK_EQ(setsockopt(u, SOL_SOCKET, SO_BROADCAST, &v, sizeof v), 0);
    CHECK_EQ(getsockopt(u, SOL_SOCKET, SO_BROADCAST, &v, &len), 0);
    CHECK_EQ(v, 1);
    close(u);
    return NULL;
}

static volatile sig_atomic_t alarms;
static void on_usr1(int sig) {
    (void)sig;
    alarms++;
}

static void *poke(void *arg) {
    usleep(30000);
    pthread_kill(*(pthread_t *)arg, SIGUSR1);
    return NULL;
}

static const char *blocking_accept_is_interrupted(void) {
    int port;
    int l = listener(0, 1, &port);
    CHECK(l >= 0);
    struct sigaction sa = {.sa_handler = on_usr1}, old;
    sigemptyset(&sa.sa_mask);
    CHECK_EQ(sigaction(SIGUSR1, &sa, &old), 0); /* no SA_RESTART */
    pthread_t me = pthread_self(), t;
    alarms = 0;
    CHECK_EQ(pthread_create(&t, 0, poke, &me), 0);
    CHECK_EQ(accept(l, 0, 0), -1);
    CHECK_EQ(errno, EINTR);
    CHECK_EQ(alarms, 1);
    pthread_join(t, 0);
    sigaction(SIGUSR1, &old, 0);
    close(l);
    return NULL;
}

struct bulk_sink {
    int fd;
    size_t bytes;
    uint64_t hash;
};

static uint64_t fnv1a(uint64_t h, const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

static void *bulk_reader(void *arg) {
    struct bulk_sink *s = arg;
    unsigned char buf[16384];
    s->hash = 0xcbf29ce484222325ull;
    for (;;) {
        ssize_t r = read(s->fd, buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        s->hash = fnv1a(s->hash, buf, (size_t)r);
        s->bytes += (size_t)r;
    }
    /* Answer with what arrived, then close. */
    write_all(s->fd, (const unsigned char *)&s->hash, sizeof s->hash);
    close(s->fd);
    return NULL;
}

/* 2 MiB through a small send buffer: blocking sends wait for the window,
 * nothing is lost or reordered. */
static const char *tcp_bulk_transfer(void) {
    int port;
    int l = listener(0, 2, &port);
    CHECK(l >= 0);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(c >= 0);
    int small = 8192;
    CHECK_EQ(setsockopt(c, SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
    struct sockaddr_storage ss;
    socklen_t len = loop_addr(0, port, &ss);
    CHECK_EQ(connect(c, (struct sockaddr *)&ss, len), 0);
    struct bulk_sink sink = {.fd = accept(l, 0, 0)};
    CHECK(sink.fd >= 0);
    pthread_t t;
    CHECK_EQ(pthread_create(&t, 0, bulk_reader, &sink), 0);
    static unsigned char chunk[65536];
    unsigned seed = 7;
    uint64_t hash = 0xcbf29ce484222325ull;
    size_t total = 2u << 20;
    for (size_t sent = 0; sent < total; sent += sizeof chunk) {
        for (size_t i = 0; i < sizeof chunk; i++)
            chunk[i] = (unsigned char)rand_r(&seed);
        hash = fnv1a(hash, chunk, sizeof chunk);
        /* One blocking send queues it all. */
        CHECK_EQ(send(c, chunk, sizeof chunk, MSG_NOSIGNAL), sizeof chunk);
    }
    CHECK_EQ(shutdown(c, SHUT_WR), 0);
    uint64_t echoed = 0;
    CHECK_EQ(read_all(c, (unsigned char *)&echoed, sizeof echoed), 0);
    pthread_join(t, 0);
    CHECK_EQ(sink.bytes, total);
    CHECK(echoed == hash);
    char b;
    CHECK_EQ(read(c, &b, 1), 0);
    close(c);
    close(l);
    return NULL;
}

/* ---- UDP ---- */

static const char *udp_echo(int v6) {
    int srv = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM, 0);
    CHECK(srv >= 0);
    struct sockaddr_storage ss;
    socklen_t len = loop_addr(v6, 0, &ss);
    CHECK_EQ(bind(srv, (struct sockaddr *)&ss, len), 0);
    int port = port_of(srv);
    CHECK(port > 0);
    int cli = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM, 0);
    len = loop_addr(v6, port, &ss);
    unsigned seed = 99;
    for (int round = 0; round < 20; round++) {
        unsigned char out[1400], in[1500];
        size_t n = 1 + (size_t)(rand_r(&seed) % sizeof out);
        for (size_t i = 0; i < n; i++)
            out[i] = (unsigned char)rand_r(&seed);
        CHECK_EQ(sendto(cli, out, n, 0, (struct sockaddr *)&ss, len), n);
        struct sockaddr_storage from;
        socklen_t flen = sizeof from;
        ssize_t r = recvfrom(srv, in, sizeof in, 0, (struct sockaddr *)&from, &flen);
        CHECK_EQ(r, n);
        CHECK_EQ(from.ss_family, v6 ? AF_INET6 : AF_INET);
        CHECK_EQ(sendto(srv, in, (size_t)r, 0, (struct sockaddr *)&from, flen), r);
        CHECK_EQ(recv(cli, in, sizeof in, 0), n);
        CHECK(memcmp(in, out, n) == 0);
    }
    /* Connected UDP: send/recv without addresses; FIONREAD sees the datagram. */
    CHECK_EQ(connect(cli, (struct sockaddr *)&ss, len), 0);
    CHECK_EQ(send(cli, "hello", 5, 0), 5);
    struct pollfd p = {.fd = srv, .events = POLLIN};
    CHECK_EQ(poll(&p, 1, 5000), 1);
    int avail = 0;
    CHECK_EQ(ioctl(srv, FIONREAD, &avail), 0);
    CHECK_EQ(avail, 5);
    char small[2];
    CHECK_EQ(recv(srv, small, sizeof small, MSG_TRUNC), 5);
    CHECK_EQ(recv(srv, small, sizeof small, MSG_DONTWAIT), -1);
    CHECK_EQ(errno, EAGAIN);
    close(cli);
    close(srv);
    return NULL;
}

static const char *udp_mmsg(void) {
    int srv = socket(AF_INET, SOCK_DGRAM, 0), cli = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK(srv >= 0 && cli >= 0);
    struct sockaddr_storage ss;
    socklen_t len = loop_addr(0, 0, &ss);
    CHECK_EQ(bind(srv, (struct sockaddr *)&ss, len), 0);
    len = loop_addr(0, port_of(srv), &ss);
    CHECK_EQ(connect(cli, (struct sockaddr *)&ss, len), 0);
    char *words[3] = {"alpha", "be", "gamma!"};
    struct iovec iov[3];
    struct mmsghdr out[3];
    memset(out, 0, sizeof out);
    for (int i = 0; i < 3; i++) {
        iov[i] = (struct iovec){.iov_base = words[i], .iov_len = strlen(words[i])};
        out[i].msg_hdr.msg_iov = &iov[i];
        out[i].msg_hdr.msg_iovlen = 1;
    }
    CHECK_EQ(sendmmsg(cli, out, 3, 0), 3);
    CHECK_EQ(out[2].msg_len, 6);
    char bufs[4][16];
    struct iovec riov[4];
    struct mmsghdr in[4];
    memset(in, 0, sizeof in);
    for (int i = 0; i < 4; i++) {
        riov[i] = (struct iovec){.iov_base = bufs[i], .iov_len = sizeof bufs[i]};
        in[i].msg_hdr.msg_iov = &riov[i];
        in[i].msg_hdr.msg_iovlen = 1;
    }
    struct pollfd p = {.fd = srv, .events = POLLIN};
    CHECK_EQ(poll(&p, 1, 5000), 1);
    usleep(20000); /* let all three arrive */
    /* MSG_WAITFORONE: waits for the first, takes what is there, returns. */
    CHECK_EQ(recvmmsg(srv, in, 4, MSG_WAITFORONE, 0), 3);
    CHECK_EQ(in[0].msg_len, 5);
    CHECK_EQ(in[1].msg_len, 2);
    CHECK(memcmp(bufs[2], "gamma!", 6) == 0);
    close(srv);
    close(cli);
    return NULL;
}

static const char *udp_echo_v4(void) { return udp_echo(0); }
static const char *udp_echo_v6(void) { return udp_echo(1); }

const struct test socket_tests[] = {
    {"c::unix_stream_pair_eof_epipe_sigpipe", unix_stream_pair},
    {"c::unix_dgram_pair_and_abstract_names", unix_dgram_pair_and_names},
    {"c::unix_stream_filesystem_names", unix_stream_filesystem_names},
    {"c::tcp_threaded_echo_v4", tcp_echo_v4},
    {"c::tcp_threaded_echo_v6", tcp_echo_v6},
    {"c::tcp_epoll_echo_level_triggered", tcp_epoll_echo_level},
    {"c::tcp_epoll_echo_edge_triggered", tcp_epoll_echo_edge},
    {"c::tcp_half_close", tcp_half_close},
    {"c::tcp_bulk_transfer_small_send_buffer", tcp_bulk_transfer},
    {"c::tcp_many_short_connections", tcp_many_short_connections},
    {"c::tcp_nonblocking_connect", tcp_nonblocking_connect},
    {"c::tcp_backlog_refusal_and_reset", tcp_backlog_refusal_and_reset},
    {"c::tcp_options_and_names", tcp_options_and_names},
    {"c::tcp_blocking_accept_interrupted", blocking_accept_is_interrupted},
    {"c::udp_echo_v4", udp_echo_v4},
    {"c::udp_echo_v6", udp_echo_v6},
    {"c::udp_sendmmsg_recvmmsg", udp_mmsg},
    {0, 0},
};
