/* SPDX-License-Identifier: MIT */
/* One client connection: non-blocking reads of whole frames, buffered writes, timeouts.
 * The protocol is strictly request/reply: a client that sends before its reply is out is
 * in error. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sodium.h>

#include "io.h"
#include "manager-internal.h"
#include "requests.h"

static int conn_on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata);
static int conn_on_timer(sd_event_source *s, uint64_t usec, void *userdata);

static void conn_arm_timer(Conn *c) {
        uint64_t usec;

        if (c->waiting)
                return; /* the permit deadline owns the timer */
        if (c->in_len > 0 || c->out_len > c->out_off)
                usec = (uint64_t) c->m->config.request_timeout_ms * 1000;
        else
                usec = CONN_IDLE_USEC;
        /* From the clock, not sd_event_now(): the loop's cached time can be seconds old after a
         * slow commit or a SIGSTOP, and a fresh request would then time out at once. */
        (void) sd_event_source_set_time(c->timer, sg_now_mono_usec() + usec);
        (void) sd_event_source_set_enabled(c->timer, SD_EVENT_ONESHOT);
}

void conn_update_events(Conn *c) {
        uint32_t ev = 0;

        if (!c->closing && !c->busy)
                ev |= EPOLLIN;
        if (c->out_len > c->out_off && !c->held)
                ev |= EPOLLOUT;
        /* epoll reports EPOLLHUP whatever we ask for: a closing connection that has nothing to
         * send now (its reply waits for the group commit) would wake the loop again and again
         * and starve that commit, which runs at idle priority. Listen to nothing until then. */
        if (ev == 0 && c->closing) {
                (void) sd_event_source_set_enabled(c->io, SD_EVENT_OFF);
                return;
        }
        (void) sd_event_source_set_io_events(c->io, ev);
        (void) sd_event_source_set_enabled(c->io, SD_EVENT_ON);
}

static bool peer_in_group(int fd, gid_t gid, gid_t primary) {
        gid_t groups[256];
        socklen_t len = sizeof groups;

        if (primary == gid)
                return true;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0)
                return false;
        for (size_t i = 0; i < len / sizeof(gid_t); i++)
                if (groups[i] == gid)
                        return true;
        return false;
}

static size_t conns_of_uid(Manager *m, uid_t uid) {
        size_t n = 0;

        for (Conn *c = m->conns; c; c = c->next)
                n += c->uid == uid;
        return n;
}

int conn_new(Manager *m, int fd) {
        Conn *c;
        int r;

        c = calloc(1, sizeof *c);
        if (!c) {
                close(fd);
                return -ENOMEM;
        }
        c->m = m;
        c->fd = fd;
        r = sg_peer_cred(fd, &c->pid, &c->uid, &c->gid);
        if (r < 0) {
                close(fd);
                free(c);
                return r;
        }
        c->is_root = c->uid == 0;
        c->is_admin = c->is_root || (m->have_admin_gid && peer_in_group(fd, m->admin_gid, c->gid));
        c->in = malloc(SG_FRAME_MAX);
        c->msg = malloc(sizeof *c->msg);
        if (!c->in || !c->msg) {
                r = -ENOMEM;
                goto fail;
        }
        r = sd_event_add_io(m->event, &c->io, fd, EPOLLIN, conn_on_io, c);
        if (r < 0)
                goto fail;
        r = sd_event_add_time(m->event, &c->timer, CLOCK_MONOTONIC, sg_now_mono_usec() + CONN_IDLE_USEC, 0,
                              conn_on_timer, c);
        if (r < 0)
                goto fail;

        c->next = m->conns;
        if (m->conns)
                m->conns->prev = c;
        m->conns = c;
        m->n_conns++;

        /* Limits on what a client controls: connection counts, total and per non-root uid. */
        if (m->n_conns > m->config.max_connections ||
            (!c->is_root && conns_of_uid(m, c->uid) > m->config.max_connections_per_uid)) {
                log_warning("refusing connection from uid %u pid %d: too many connections",
                            (unsigned) c->uid, (int) c->pid);
                (void) conn_send_error(c, SG_ERR_BUSY, "too many connections");
                conn_close_after_flush(c);
                (void) conn_settle(c);
                return 0;
        }
        conn_arm_timer(c);
        return 0;
fail:
        c->io = sd_event_source_disable_unref(c->io);
        c->timer = sd_event_source_disable_unref(c->timer);
        free(c->in);
        free(c->msg);
        free(c);
        close(fd);
        return r;
}

Conn *conn_free(Conn *c) {
        Manager *m;

        if (!c)
                return NULL;
        m = c->m;
        if (c->attempt_open)
                request_abandon(c);
        if (c->waiting) {
                Conn **p = &m->wait_head;

                while (*p && *p != c)
                        p = &(*p)->wait_next;
                if (*p)
                        *p = c->wait_next;
                if (m->wait_tail == c) {
                        m->wait_tail = NULL;
                        for (Conn *w = m->wait_head; w; w = w->wait_next)
                                m->wait_tail = w;
                }
        }
        if (c->has_permit)
                permits_release(m, c);
        if (c->held) {
                Conn **p = &m->held_head;

                while (*p && *p != c)
                        p = &(*p)->held_next;
                if (*p)
                        *p = c->held_next;
        }
        if (c->prev)
                c->prev->next = c->next;
        else
                m->conns = c->next;
        if (c->next)
                c->next->prev = c->prev;
        m->n_conns--;

        c->io = sd_event_source_disable_unref(c->io);
        c->timer = sd_event_source_disable_unref(c->timer);
        close(c->fd);
        /* A user field may hold a password typed in the wrong place: wipe every copy of it
         * (the frame, its decoded form, the replies and the names kept on the connection). */
        sodium_memzero(c->in, SG_FRAME_MAX);
        free(c->in);
        sodium_memzero(c->msg, sizeof *c->msg);
        free(c->msg);
        if (c->out)
                sodium_memzero(c->out, c->out_cap);
        free(c->out);
        sodium_memzero(c, sizeof *c);
        free(c);

        if (m->stopping && !m->conns)
                (void) sd_event_exit(m->event, 0);
        return NULL;
}

static int conn_append(Conn *c, const uint8_t *p, size_t len) {
        if (c->out_off == c->out_len)
                c->out_off = c->out_len = 0;
        if (c->out_len + len > c->out_cap) {
                size_t cap = c->out_cap ? c->out_cap : 4096;
                uint8_t *n;

                while (cap < c->out_len + len)
                        cap *= 2;
                if (cap > CONN_OUT_MAX)
                        return -ENOBUFS;
                n = malloc(cap); /* not realloc: the old buffer is wiped, not left behind */
                if (!n)
                        return -ENOMEM;
                if (c->out) {
                        memcpy(n, c->out, c->out_len);
                        sodium_memzero(c->out, c->out_cap);
                        free(c->out);
                }
                c->out = n;
                c->out_cap = cap;
        }
        memcpy(c->out + c->out_len, p, len);
        c->out_len += len;
        return 0;
}

int conn_send(Conn *c, struct sg_writer *w) {
        size_t len;
        int r;

        r = sg_writer_finish(w, &len);
        if (r < 0)
                return -EINVAL;
        if (c->m->tx_open && !c->held) {
                c->held_mark = c->out_len;
                manager_hold(c->m, c);
        }
        r = conn_append(c, w->buf, len);
        if (r < 0)
                return r;
        if (!c->held)
                conn_flush(c);
        return 0;
}

int conn_send_error(Conn *c, enum sg_err err, const char *detail) {
        struct sg_writer w;

        sg_writer_init(&w, SG_MSG_ERROR);
        sg_writer_u64(&w, SG_F_ERROR, err);
        if (detail)
                sg_writer_str(&w, SG_F_DETAIL, detail);
        return conn_send(c, &w);
}

void conn_close_after_flush(Conn *c) {
        c->closing = true;
        conn_update_events(c);
}

/* The one place a connection is freed outside conn_on_*: at the end of an entry point, so no
 * caller below it ever touches freed memory. Returns true when c is gone. */
bool conn_settle(Conn *c) {
        /* A group commit forced from inside a handler must not free that handler's own
         * connection; conn_on_io settles it when the handler returns. */
        if (c == c->m->dispatching)
                return false;
        if (c->closing && c->out_off == c->out_len && !c->held) {
                conn_free(c);
                return true;
        }
        return false;
}

/* Peer gone or broken: drop pending output and close at the next settle. */
static void conn_abort(Conn *c) {
        if (c->success_unacked)
                request_ack_lost(c);
        c->out_off = c->out_len;
        c->closing = true;
        conn_update_events(c);
}

/* Writes what the socket takes now. Never frees c (see conn_settle). */
void conn_flush(Conn *c) {
        while (c->out_off < c->out_len) {
                ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
                                 MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                break;
                        conn_abort(c);
                        break;
                }
                c->out_off += (size_t) n;
        }
        if (c->out_off == c->out_len)
                c->success_unacked = false; /* handed to the kernel: the module reads it */
        conn_update_events(c);
        conn_arm_timer(c);
}

void conn_request_done(Conn *c) {
        c->busy = false;
        c->in_len = 0;
        conn_update_events(c);
        conn_arm_timer(c);
}

/* Reads until one whole frame is buffered, then dispatches it. */
static void conn_read(Conn *c) {
        for (;;) {
                size_t want = SG_FRAME_HEADER, payload;
                ssize_t n;

                if (c->in_len >= SG_FRAME_HEADER) {
                        if (sg_frame_header(c->in, &payload) < 0) {
                                c->m->dispatching = c;
                                request_dispatch(c); /* decode reports the exact error */
                                c->m->dispatching = NULL;
                                return;
                        }
                        want = SG_FRAME_HEADER + payload;
                }
                if (c->in_len == want && c->in_len >= SG_FRAME_HEADER) {
                        c->busy = true;
                        c->m->dispatching = c;
                        request_dispatch(c);
                        c->m->dispatching = NULL;
                        return;
                }
                n = recv(c->fd, c->in + c->in_len, want - c->in_len, MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                break;
                        conn_abort(c);
                        return;
                }
                if (n == 0) {
                        conn_abort(c); /* peer gone; an open attempt is abandoned at free */
                        return;
                }
                c->in_len += (size_t) n;
        }
        conn_arm_timer(c);
}

static int conn_on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Conn *c = userdata;

        (void) s;
        (void) fd;
        if (revents & EPOLLOUT)
                conn_flush(c);
        else if (revents & EPOLLIN) {
                if (c->busy)
                        conn_abort(c); /* data before our reply: not this protocol */
                else
                        conn_read(c);
        } else if (revents & (EPOLLHUP | EPOLLERR))
                conn_abort(c);
        (void) conn_settle(c);
        return 0;
}

static int conn_on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Conn *c = userdata;

        (void) s;
        (void) usec;
        if (c->waiting) {
                (void) request_permit_timeout(c);
                (void) conn_settle(c);
                return 0;
        }
        log_debug("closing connection of pid %d: timed out", (int) c->pid);
        if (c->success_unacked)
                request_ack_lost(c);
        conn_free(c);
        return 0;
}
