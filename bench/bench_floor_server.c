/* SPDX-License-Identifier: MIT */
/*
 * bench_floor_server: the transport floor for bench/run. It listens on a Unix socket and
 * answers every frame the way secguardd answers a login (PRECHECK: OK with decision ALLOW;
 * anything else: OK), with nothing behind it: no state, no database, no audit row, no
 * commit. bench_client drives it with exactly the load it puts on secguardd, so the table
 * shows, in the same run, what a server that does no work at all reaches on this machine.
 * Frames are checked with the same codec (common/protocol.h); a bad one closes the
 * connection. One thread, one epoll loop, a new connection accepted whenever the listening
 * socket is readable. Runs until SIGTERM or SIGINT.
 *
 *   bench_floor_server SOCKET
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "protocol.h"

#define IN_MAX 4096 /* the module's frames are a few hundred bytes */

struct conn {
        int fd;
        size_t len;
        uint8_t in[IN_MAX];
};

static volatile sig_atomic_t stop;

static void on_signal(int sig) {
        (void) sig;
        stop = 1;
}

static void conn_drop(int ep, struct conn *c) {
        (void) epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        free(c);
}

/* Answers every whole frame in c->in. Returns false when the connection must go. */
static bool conn_serve(struct conn *c, struct sg_writer *w, struct sg_msg *m) {
        for (;;) {
                size_t payload, whole, out;

                if (c->len < SG_FRAME_HEADER)
                        return true;
                if (sg_frame_header(c->in, &payload) < 0 || SG_FRAME_HEADER + payload > IN_MAX)
                        return false;
                whole = SG_FRAME_HEADER + payload;
                if (c->len < whole)
                        return true;
                if (sg_msg_decode(c->in, whole, m) < 0)
                        return false;
                sg_writer_init(w, SG_MSG_OK);
                if (m->type == SG_MSG_PRECHECK)
                        sg_writer_u64(w, SG_F_DECISION, SG_DECISION_ALLOW);
                if (sg_writer_finish(w, &out) < 0 || send(c->fd, w->buf, out, MSG_NOSIGNAL) != (ssize_t) out)
                        return false;
                memmove(c->in, c->in + whole, c->len - whole);
                c->len -= whole;
        }
}

int main(int argc, char **argv) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        struct sg_writer *w = malloc(sizeof *w);
        struct sg_msg *m = malloc(sizeof *m);
        struct sigaction act = { .sa_handler = on_signal };
        struct epoll_event ev = { .events = EPOLLIN };
        int lfd, ep;

        if (argc != 2 || strlen(argv[1]) >= sizeof sa.sun_path) {
                fprintf(stderr, "usage: bench_floor_server SOCKET\n");
                return 2;
        }
        if (!w || !m)
                return 1;
        (void) sigaction(SIGTERM, &act, NULL);
        (void) sigaction(SIGINT, &act, NULL);
        memcpy(sa.sun_path, argv[1], strlen(argv[1]) + 1);
        (void) unlink(argv[1]);
        lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        ep = epoll_create1(EPOLL_CLOEXEC);
        if (lfd < 0 || ep < 0 || bind(lfd, (struct sockaddr *) &sa, sizeof sa) < 0 || listen(lfd, SOMAXCONN) < 0) {
                perror("bench_floor_server");
                return 1;
        }
        ev.data.ptr = NULL; /* NULL: the listening socket */
        if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0) {
                perror("epoll_ctl");
                return 1;
        }
        while (!stop) {
                struct epoll_event evs[64];
                int n = epoll_wait(ep, evs, 64, -1);

                if (n < 0 && errno != EINTR) {
                        perror("epoll_wait");
                        return 1;
                }
                for (int i = 0; i < n; i++) {
                        struct conn *c = evs[i].data.ptr;
                        ssize_t got;

                        if (!c) {
                                int fd;

                                while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                                        struct epoll_event cev = { .events = EPOLLIN };

                                        c = calloc(1, sizeof *c);
                                        if (!c) {
                                                close(fd);
                                                continue;
                                        }
                                        c->fd = fd;
                                        cev.data.ptr = c;
                                        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev) < 0) {
                                                close(fd);
                                                free(c);
                                        }
                                }
                                continue;
                        }
                        got = recv(c->fd, c->in + c->len, IN_MAX - c->len, MSG_DONTWAIT);
                        if (got < 0 && (errno == EAGAIN || errno == EINTR))
                                continue;
                        if (got <= 0) {
                                conn_drop(ep, c);
                                continue;
                        }
                        c->len += (size_t) got;
                        if (!conn_serve(c, w, m))
                                conn_drop(ep, c);
                }
        }
        (void) unlink(argv[1]);
        return 0;
}
