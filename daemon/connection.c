/* SPDX-License-Identifier: MIT */
/* Client connections: non-blocking reads of whole frames, buffered writes, timeouts, limits,
 * and the order requests are served in. The protocol is strictly request/reply: a client that
 * sends before its reply is out is in error. See connection.h and docs/architecture.md
 * ("Connections", "Serving order"). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sodium.h>

#include "connection.h"
#include "io.h"
#include "log.h"

#define CONN_OUT_MAX (64u * 1024u * 1024u) /* a listing larger than this is cut short */
#define SWEEP_ACCURACY_USEC 10000u           /* timeouts may end up to 10 ms late */
/* Serving order: a request that will only be refused waits while others are served, but
 * never behind more than this many in a row, nor (under a storm of new connections, which
 * are taken before any queued request) longer than SERVE_WAIT_MAX_USEC. */
#define SERVE_FIRST_RUN_MAX 8u
#define SERVE_WAIT_MAX_USEC 50000u

enum { Q_FIRST, Q_LAST, Q_N }; /* the two serving queues: others, then refusal-only requests */

struct Conn {
        ConnSet *set;
        Conn *prev, *next; /* set->conns */
        Conn *gc_next;     /* set->gc, when gc_queued */
        bool gc_queued;
        int fd;
        sd_event_source *io;
        uint64_t deadline; /* CLOCK_MONOTONIC usec; 0: none (the owner keeps time) */
        struct conn_peer peer;
        void *data; /* the owner's, from ops->opened */

        uint8_t *in; /* SG_FRAME_MAX */
        size_t in_len;
        size_t frame_len; /* of the whole frame at the start of in, once read; bytes past it
                           * were sent after it (conn_after_request) */
        /* Read but not served yet (set->queue[q_which]); the socket is not listened to while
         * io_paused, so what follows the request is read once it is served. */
        bool queued, io_paused;
        unsigned q_which;
        Conn *q_next;
        uint64_t queued_at; /* CLOCK_MONOTONIC usec */
        uint8_t *out;
        size_t out_len, out_off, out_cap;
        uint64_t sent; /* bytes the kernel took */

        bool busy;    /* a request is being answered */
        bool closing; /* close once out is flushed */
        bool held;    /* out past held_mark waits for conn_release() */
        size_t held_mark;
};

struct ConnSet {
        sd_event *event;
        const struct conn_ops *ops;
        void *owner;
        struct conn_limits limits;
        Conn *conns;
        size_t n_conns;
        Conn *gc;
        sd_event_source *gc_source;
        /* One timer for all connections (conn_arm_timer): armed at sweep_at, UINT64_MAX when
         * off. A deadline that moves later (every request does) costs no system call; the
         * sweep finds the new earliest when it fires. */
        sd_event_source *sweep;
        uint64_t sweep_at;
        void (*drained)(void *userdata);
        void *drained_userdata;
        /* Requests read ahead and waiting (FIFO each), served by a defer source at a lower
         * priority than the sockets: the frames of every connection ready now are read and
         * sorted before the next one is served. */
        Conn *queue[Q_N], *queue_tail[Q_N];
        unsigned first_run; /* Q_FIRST served in a row while Q_LAST waited */
        sd_event_source *serve;
};

static int conn_on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata);
static int on_sweep(sd_event_source *s, uint64_t usec, void *userdata);
static void conn_read(Conn *c);
static void conn_after_request(Conn *c);

static bool out_pending(const Conn *c) {
        return c->out_off < c->out_len;
}

/* Queued for the deferred free once nothing is left to send. */
static void conn_maybe_gc(Conn *c) {
        if (c->gc_queued || !c->closing || out_pending(c) || c->held)
                return;
        c->gc_queued = true;
        c->gc_next = c->set->gc;
        c->set->gc = c;
        (void) sd_event_source_set_enabled(c->set->gc_source, SD_EVENT_ONESHOT);
}

/* Brings the sweep forward to t if it is armed later (or not at all). */
static void sweep_by(ConnSet *s, uint64_t t) {
        if (t >= s->sweep_at)
                return;
        if (sd_event_source_set_time(s->sweep, t) < 0 ||
            sd_event_source_set_enabled(s->sweep, SD_EVENT_ONESHOT) < 0)
                return;
        s->sweep_at = t;
}

static void conn_arm_timer(Conn *c) {
        uint64_t usec;

        if (c->busy && !out_pending(c)) {
                /* The owner is working on an answer and owns its deadline (a permit wait). */
                c->deadline = 0;
                return;
        }
        if (c->in_len > 0 || out_pending(c) || c->closing)
                usec = (uint64_t) c->set->limits.request_timeout_ms * 1000;
        else
                usec = c->peer.is_root ? c->set->limits.idle_usec : c->set->limits.nonroot_idle_usec;
        /* From the clock, not sd_event_now(): the loop's cached time can be seconds old after a
         * slow commit or a SIGSTOP, and a fresh request would then time out at once. */
        c->deadline = sg_now_mono_usec() + usec;
        sweep_by(c->set, c->deadline);
}

/* Re-derives the epoll mask and the timer from the state. */
static void conn_update(Conn *c) {
        uint32_t ev = 0;

        /* EPOLLIN stays on while a request is answered: the mask then changes for no request
         * (two epoll_ctl calls each before), and a client that sends before its reply is cut
         * off at once (conn_on_io), as this protocol wants. */
        if (!c->closing)
                ev |= EPOLLIN;
        if (out_pending(c) && !c->held)
                ev |= EPOLLOUT;
        /* epoll reports EPOLLHUP whatever we ask for: a closing connection that has nothing to
         * send now (its reply waits for the group commit) would wake the loop again and again
         * and starve that commit, which runs at idle priority. Listen to nothing until then. */
        if ((ev == 0 && c->closing) || c->io_paused)
                (void) sd_event_source_set_enabled(c->io, SD_EVENT_OFF);
        else {
                (void) sd_event_source_set_io_events(c->io, ev);
                (void) sd_event_source_set_enabled(c->io, SD_EVENT_ON);
        }
        conn_arm_timer(c);
        conn_maybe_gc(c);
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

/* Connections that hold a slot: not those refused or ended and only waiting for the deferred
 * free (several may be accepted in one batch before it runs). */
struct slot_counts {
        size_t all, nonroot, of_uid;
};

static struct slot_counts count_slots(const ConnSet *s, uid_t uid) {
        struct slot_counts n = { 0 };

        for (const Conn *c = s->conns; c; c = c->next) {
                if (c->gc_queued)
                        continue;
                n.all++;
                n.nonroot += !c->peer.is_root;
                n.of_uid += c->peer.uid == uid;
        }
        return n;
}

static void queue_push(ConnSet *s, Conn *c, unsigned q) {
        c->queued = true;
        c->q_which = q;
        c->q_next = NULL;
        c->queued_at = sg_now_mono_usec();
        if (s->queue_tail[q])
                s->queue_tail[q]->q_next = c;
        else
                s->queue[q] = c;
        s->queue_tail[q] = c;
        (void) sd_event_source_set_enabled(s->serve, SD_EVENT_ON);
}

static void queue_remove(ConnSet *s, Conn *c) {
        unsigned q = c->q_which;
        Conn *prev = NULL;

        for (Conn *i = s->queue[q]; i; prev = i, i = i->q_next)
                if (i == c) {
                        if (prev)
                                prev->q_next = c->q_next;
                        else
                                s->queue[q] = c->q_next;
                        if (s->queue_tail[q] == c)
                                s->queue_tail[q] = prev;
                        break;
                }
        c->queued = false;
        c->q_next = NULL;
        if (!s->queue[Q_FIRST] && !s->queue[Q_LAST])
                (void) sd_event_source_set_enabled(s->serve, SD_EVENT_OFF);
}

/* Hands the read-ahead request of c up. */
static void conn_serve(Conn *c) {
        bool paused = c->io_paused;

        if (c->closing) /* broken meanwhile (a send failed): nobody to answer */
                return;
        c->io_paused = false;
        c->set->ops->request(c->data, c, c->in, c->frame_len);
        if (paused && !c->gc_queued)
                conn_update(c); /* listen again: what came after the request is read now */
        conn_after_request(c);
}

/* Whether the refusal-only request at the head of its queue must go before any other. */
static bool last_is_due(const ConnSet *s) {
        return s->queue[Q_LAST] && (s->first_run >= SERVE_FIRST_RUN_MAX ||
                                    sg_now_mono_usec() - s->queue[Q_LAST]->queued_at >= SERVE_WAIT_MAX_USEC);
}

static void serve_one(ConnSet *s) {
        Conn *c = s->queue[Q_FIRST] && !last_is_due(s) ? s->queue[Q_FIRST] : s->queue[Q_LAST];

        if (!c)
                return;
        if (c->q_which == Q_LAST)
                s->first_run = 0;
        else if (s->queue[Q_LAST])
                s->first_run++;
        queue_remove(s, c);
        conn_serve(c);
}

static int on_serve(sd_event_source *src, void *userdata) {
        (void) src;
        serve_one(userdata);
        return 0;
}

static void conn_free(Conn *c) {
        ConnSet *s = c->set;

        if (c->data)
                s->ops->closed(c->data, c);
        if (c->queued)
                queue_remove(s, c);
        if (c->gc_queued) {
                Conn **p = &s->gc;

                while (*p && *p != c)
                        p = &(*p)->gc_next;
                if (*p)
                        *p = c->gc_next;
        }
        if (c->prev)
                c->prev->next = c->next;
        else
                s->conns = c->next;
        if (c->next)
                c->next->prev = c->prev;
        s->n_conns--;

        c->io = sd_event_source_disable_unref(c->io);
        close(c->fd);
        /* A user field may hold a password typed in the wrong place: wipe the frame and the
         * replies (the owner wipes what it decoded and kept). Each request's frame was wiped
         * when it was answered (conn_request_done): only a frame still open is left. */
        sodium_memzero(c->in, c->in_len);
        free(c->in);
        if (c->out)
                sodium_memzero(c->out, c->out_cap);
        free(c->out);
        sodium_memzero(c, sizeof *c);
        free(c);
        if (s->n_conns == 0 && s->drained)
                s->drained(s->drained_userdata);
}

static int on_gc(sd_event_source *src, void *userdata) {
        ConnSet *s = userdata;

        (void) src;
        while (s->gc) {
                Conn *c = s->gc;

                s->gc = c->gc_next;
                c->gc_queued = false;
                conn_free(c); /* may queue others */
        }
        return 0;
}

int conn_set_new(sd_event *event, const struct conn_ops *ops, void *owner, ConnSet **ret) {
        ConnSet *s;
        int r;

        s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        s->event = sd_event_ref(event);
        s->ops = ops;
        s->owner = owner;
        r = sd_event_add_defer(event, &s->gc_source, on_gc, s);
        if (r < 0) {
                conn_set_free(s);
                return r;
        }
        (void) sd_event_source_set_enabled(s->gc_source, SD_EVENT_OFF);
        r = sd_event_add_defer(event, &s->serve, on_serve, s);
        if (r < 0) {
                conn_set_free(s);
                return r;
        }
        /* After the sockets: every frame ready now is read (and sorted) before one is served. */
        (void) sd_event_source_set_priority(s->serve, SD_EVENT_PRIORITY_NORMAL + 1);
        (void) sd_event_source_set_enabled(s->serve, SD_EVENT_OFF);
        r = sd_event_add_time(event, &s->sweep, CLOCK_MONOTONIC, 0, SWEEP_ACCURACY_USEC, on_sweep, s);
        if (r < 0) {
                conn_set_free(s);
                return r;
        }
        (void) sd_event_source_set_enabled(s->sweep, SD_EVENT_OFF);
        s->sweep_at = UINT64_MAX;
        *ret = s;
        return 0;
}

ConnSet *conn_set_free(ConnSet *s) {
        if (!s)
                return NULL;
        while (s->conns)
                conn_free(s->conns);
        s->gc_source = sd_event_source_disable_unref(s->gc_source);
        s->serve = sd_event_source_disable_unref(s->serve);
        s->sweep = sd_event_source_disable_unref(s->sweep);
        sd_event_unref(s->event);
        free(s);
        return NULL;
}

void conn_set_set_limits(ConnSet *s, const struct conn_limits *l) {
        s->limits = *l;
}

void conn_set_on_drained(ConnSet *s, void (*drained)(void *userdata), void *userdata) {
        s->drained = drained;
        s->drained_userdata = userdata;
}

size_t conn_set_count(const ConnSet *s) {
        return s->n_conns;
}

bool conn_set_refusals_waiting(const ConnSet *s) {
        return s->queue[Q_LAST] != NULL;
}

void conn_set_close_idle(ConnSet *s, bool (*busy)(void *data)) {
        for (Conn *c = s->conns; c; c = c->next)
                if (!c->busy && c->in_len == 0 && !out_pending(c) && !c->held && !(c->data && busy(c->data)))
                        conn_close_after_flush(c);
}

/* Limits on what a client controls: connections in all, a reserve only root may use (the
 * logins sshd and su make are root's: no crowd of other users can lock them out), and a
 * share for each non-root uid. The connection is counted already. */
static const char *over_limits(const ConnSet *s, const Conn *c) {
        size_t max = s->limits.max_connections, reserve = max / 4;
        struct slot_counts n = count_slots(s, c->peer.uid);

        if (n.all > max)
                return "all connection slots taken";
        if (c->peer.is_root)
                return NULL;
        if (n.nonroot > max - reserve)
                return "only the slots reserved for root are left";
        if (n.of_uid > s->limits.max_connections_per_uid)
                return "too many connections from this uid";
        return NULL;
}

int conn_set_add(ConnSet *s, int fd) {
        const char *why;
        Conn *c;
        int r;

        c = calloc(1, sizeof *c);
        if (!c) {
                close(fd);
                return -ENOMEM;
        }
        c->set = s;
        c->fd = fd;
        r = sg_peer_cred(fd, &c->peer.pid, &c->peer.uid, &c->peer.gid);
        if (r < 0) {
                close(fd);
                free(c);
                return r;
        }
        c->peer.is_root = c->peer.uid == 0;
        c->peer.is_admin = c->peer.is_root ||
                           (s->limits.have_admin_gid && peer_in_group(fd, s->limits.admin_gid, c->peer.gid));
        c->peer.is_fleet = !c->peer.is_root && s->limits.have_fleet_uid && c->peer.uid == s->limits.fleet_uid;
        c->in = malloc(SG_FRAME_MAX);
        if (!c->in) {
                r = -ENOMEM;
                goto fail;
        }
        r = sd_event_add_io(s->event, &c->io, fd, EPOLLIN, conn_on_io, c);
        if (r < 0)
                goto fail;

        c->next = s->conns;
        if (s->conns)
                s->conns->prev = c;
        s->conns = c;
        s->n_conns++;

        why = over_limits(s, c);
        if (why) {
                log_debug("refusing connection from uid %u pid %d: %s", (unsigned) c->peer.uid, (int) c->peer.pid, why);
                (void) conn_send_error(c, SG_ERR_BUSY, "too many connections");
                conn_close_after_flush(c);
                if (s->ops->refused)
                        s->ops->refused(s->owner, &c->peer, why);
                return 0;
        }
        c->data = s->ops->opened(s->owner, c);
        if (!c->data) {
                conn_close_after_flush(c);
                return -ENOMEM;
        }
        conn_update(c);
        /* No read here before epoll says so, though a client sends right after connect: that
         * served a request inside the accept batch, ahead of the batch's own sockets, and
         * moved which commit its reply waited for (docs/performance.md). New connections are
         * taken before queued requests: under a storm of them, a refusal-only request that
         * waited too long goes now. */
        if (last_is_due(s))
                serve_one(s);
        return 0;
fail:
        c->io = sd_event_source_disable_unref(c->io);
        free(c->in);
        free(c);
        close(fd);
        return r;
}

const struct conn_peer *conn_peer(const Conn *c) {
        return &c->peer;
}

/* The first number after "key" in /proc/PID/NAME, or -1. */
static long long proc_number(pid_t pid, const char *name, const char *key) {
        char path[64], buf[4096], *p;
        long long v = -1;
        ssize_t n;
        int fd;

        snprintf(path, sizeof path, "/proc/%d/%s", (int) pid, name);
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return -1;
        n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n <= 0)
                return -1;
        buf[n] = '\0';
        p = key ? strstr(buf, key) : buf;
        if (p && sscanf(p + (key ? strlen(key) : 0), "%lld", &v) != 1)
                v = -1;
        return v;
}

uid_t conn_peer_invoker(const Conn *c) {
        long long ruid, loginuid;

        if (!c->peer.is_root)
                return c->peer.uid;
        ruid = proc_number(c->peer.pid, "status", "\nUid:");
        if (ruid > 0)
                return (uid_t) ruid;
        loginuid = proc_number(c->peer.pid, "loginuid", NULL);
        if (loginuid > 0 && loginuid < 4294967295LL) /* (uid_t) -1: not set */
                return (uid_t) loginuid;
        return 0;
}

uint64_t conn_sent_bytes(const Conn *c) {
        return c->sent;
}

uint64_t conn_queued_bytes(const Conn *c) {
        return c->sent + (c->out_len - c->out_off);
}

static int conn_append(Conn *c, const uint8_t *p, size_t len) {
        if (c->out_off == c->out_len && !c->held)
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

/* Peer gone or broken: drop pending output and close. */
static void conn_abort(Conn *c) {
        c->out_off = c->out_len;
        c->closing = true;
        conn_update(c);
}

/* Writes what the socket takes now. */
static void conn_flush(Conn *c) {
        while (out_pending(c) && !c->held) {
                ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno != EAGAIN)
                                conn_abort(c);
                        break;
                }
                c->out_off += (size_t) n;
                c->sent += (uint64_t) n;
        }
        conn_update(c);
}

int conn_send(Conn *c, struct sg_writer *w) {
        size_t len;
        int r;

        r = sg_writer_finish(w, &len);
        if (r < 0)
                return -EINVAL;
        r = conn_append(c, w->buf, len);
        if (r < 0)
                return r;
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

void conn_hold(Conn *c) {
        if (c->held)
                return;
        c->held = true;
        c->held_mark = c->out_len;
}

void conn_release(Conn *c, bool keep) {
        if (!c->held)
                return;
        c->held = false;
        if (!keep) {
                c->out_len = c->held_mark;
                if (c->out_off > c->out_len)
                        c->out_off = c->out_len;
        }
        conn_flush(c);
}

void conn_close_after_flush(Conn *c) {
        c->closing = true;
        conn_update(c);
}

void conn_request_done(Conn *c) {
        size_t next = c->in_len - c->frame_len; /* read past the frame (conn_after_request) */

        c->busy = false;
        /* The frame may have carried a one-time token: it goes now, not with the connection. */
        memmove(c->in, c->in + c->frame_len, next);
        sodium_memzero(c->in + next, c->in_len - next);
        c->in_len = next;
        c->frame_len = 0;
        conn_update(c);
}

/* The length of the frame at the start of c->in once it is whole, else 0. A bad header is
 * handed up alone (*ret_bad): the decoder reports the exact error. */
static size_t frame_length(const Conn *c, bool *ret_bad) {
        size_t payload;

        *ret_bad = false;
        if (c->in_len < SG_FRAME_HEADER)
                return 0;
        if (sg_frame_header(c->in, &payload) < 0) {
                *ret_bad = true;
                return SG_FRAME_HEADER;
        }
        return c->in_len >= SG_FRAME_HEADER + payload ? SG_FRAME_HEADER + payload : 0;
}

/* A whole frame is read: served now when nothing of its rank waits (returns true), else
 * queued (false). */
static bool conn_got_frame(Conn *c) {
        ConnSet *s = c->set;
        bool last;

        c->busy = true;
        conn_update(c);
        last = s->ops->refusal_only(c->data, c, c->in, c->frame_len);
        if (!last && !s->queue[Q_FIRST] && !last_is_due(s)) {
                if (s->queue[Q_LAST])
                        s->first_run++;
                s->ops->request(c->data, c, c->in, c->frame_len);
                return true;
        }
        queue_push(s, c, last ? Q_LAST : Q_FIRST);
        return false;
}

/* Whether c->in holds a whole frame: then frame_len is set. */
static bool frame_buffered(Conn *c) {
        bool bad;

        c->frame_len = frame_length(c, &bad);
        return c->frame_len > 0;
}

/* After request() returned: what the same read brought past the frame is the next request,
 * as on a stream; before that one's reply is out (it is still open) it is an error, as if
 * it had arrived while the request was open. Each further frame goes through the queues. */
static void conn_after_request(Conn *c) {
        while (!c->gc_queued && !c->closing && c->in_len > 0) {
                if (c->busy) {
                        if (c->in_len > c->frame_len)
                                conn_abort(c); /* data before our reply: not this protocol */
                        return;
                }
                if (!frame_buffered(c)) {
                        conn_arm_timer(c); /* the rest comes with the next read */
                        return;
                }
                if (!conn_got_frame(c))
                        return; /* queued: conn_serve() comes back here */
        }
}

/* Reads what the socket holds, as much as the buffer takes in one recv() (a frame's header
 * and payload together), until one whole frame is buffered; then hands it on. */
static void conn_read(Conn *c) {
        size_t frame = 0;
        bool bad = false;

        while (frame == 0) {
                ssize_t n;

                if (c->in_len == SG_FRAME_MAX) { /* cannot happen: a good header caps the payload */
                        conn_abort(c);
                        return;
                }
                n = recv(c->fd, c->in + c->in_len, SG_FRAME_MAX - c->in_len, MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                conn_arm_timer(c);
                        else
                                conn_abort(c);
                        return;
                }
                if (n == 0) {
                        conn_abort(c); /* peer gone; the owner settles what it had open */
                        return;
                }
                c->in_len += (size_t) n;
                frame = frame_length(c, &bad);
        }
        c->frame_len = frame; /* bytes past it: conn_after_request() */
        if (conn_got_frame(c))
                conn_after_request(c);
}

static int conn_on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Conn *c = userdata;

        (void) s;
        (void) fd;
        if (c->gc_queued)
                return 0;
        if (c->queued) {
                /* Read ahead, not served yet: what follows it (data, a hang-up) is looked at
                 * once it is, as if it had been served at once (conn_serve). */
                if (revents & EPOLLOUT)
                        conn_flush(c);
                if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                        c->io_paused = true;
                        conn_update(c);
                }
                return 0;
        }
        if (revents & EPOLLOUT)
                conn_flush(c);
        else if (revents & EPOLLIN) {
                if (c->busy)
                        conn_abort(c); /* data before our reply: not this protocol */
                else
                        conn_read(c);
        } else if (revents & (EPOLLHUP | EPOLLERR))
                conn_abort(c);
        return 0;
}

/* Ends the connections past their deadline and arms itself for the earliest one left. */
static int on_sweep(sd_event_source *src, uint64_t usec, void *userdata) {
        ConnSet *s = userdata;
        uint64_t now = sg_now_mono_usec();

        (void) src;
        (void) usec;
        s->sweep_at = UINT64_MAX; /* a oneshot: off now */
        for (Conn *c = s->conns; c; c = c->next)
                if (!c->gc_queued && c->deadline && c->deadline <= now) {
                        c->deadline = 0;
                        log_debug("closing connection of pid %d: timed out", (int) c->peer.pid);
                        conn_abort(c); /* frees nothing now: the free is deferred (on_gc) */
                }
        for (const Conn *c = s->conns; c; c = c->next)
                if (!c->gc_queued && c->deadline)
                        sweep_by(s, c->deadline);
        return 0;
}
