/* SPDX-License-Identifier: MIT */
/*
 * Client connections: the transport and nothing else. This file owns each connection's
 * socket, input and output buffers, timers, epoll mask and the connection limits. It knows
 * frames (common/protocol.h), not what they mean: a whole frame goes up through the ops
 * table the owner installed, and the owner answers with conn_send() and conn_request_done().
 * See docs/architecture.md.
 *
 * A connection is freed only from the set's own deferred callback, never inside a caller:
 * code above may keep using a Conn it was handed until it returns to the event loop.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <systemd/sd-event.h>

#include "protocol.h"

typedef struct Conn Conn;
typedef struct ConnSet ConnSet;

/* Who is on the other end, from the kernel (SO_PEERCRED, SO_PEERGROUPS). */
struct conn_peer {
        pid_t pid;
        uid_t uid;
        gid_t gid;
        bool is_root;
        bool is_admin; /* root or a member of the admin group */
        bool is_fleet; /* the [fleet] user's uid (the fleet helper) */
};

struct conn_limits {
        uint32_t max_connections;         /* in all; a quarter of them only root may use */
        uint32_t max_connections_per_uid; /* for each non-root uid */
        uint32_t request_timeout_ms;      /* to finish reading a frame or sending a reply */
        uint64_t idle_usec;               /* between requests, root */
        uint64_t nonroot_idle_usec;       /* between requests, other peers */
        bool have_admin_gid;
        gid_t admin_gid;
        bool have_fleet_uid;
        uid_t fleet_uid;
};

struct conn_ops {
        /* A new connection within the limits. Returns the owner's per-connection data
         * (given back to every other op), or NULL to refuse it (out of memory). */
        void *(*opened)(void *owner, Conn *c);
        /* Called once for every frame, before request() gets the same frame: true
         * when the request will only be refused (malformed, not permitted, from a locked
         * source). Those are served after the others that are waiting (see "Serving order"
         * in docs/architecture.md). It decides the order only, never the answer; the owner
         * may keep what it decoded here for request(). */
        bool (*refusal_only)(void *data, Conn *c, const uint8_t *frame, size_t len);
        /* One frame (or, when its header is bad, the header alone: the decoder names the
         * error). The connection reads nothing more until conn_request_done(). */
        void (*request)(void *data, Conn *c, const uint8_t *frame, size_t len);
        /* The connection is about to be freed (conn_sent_bytes() still answers). */
        void (*closed)(void *data, Conn *c);
        /* A connection over the limits was refused (answered SG_ERR_BUSY and closed). */
        void (*refused)(void *owner, const struct conn_peer *peer, const char *why);
};

int conn_set_new(sd_event *event, const struct conn_ops *ops, void *owner, ConnSet **ret);
/* Closes every connection (ops->closed runs for each) and frees the set. NULL-safe. */
ConnSet *conn_set_free(ConnSet *s);
void conn_set_set_limits(ConnSet *s, const struct conn_limits *l);
/* drained(userdata) runs each time the last connection is freed. */
void conn_set_on_drained(ConnSet *s, void (*drained)(void *userdata), void *userdata);
/* Takes a freshly accepted fd (non-blocking, close-on-exec). Over the limits (all slots
 * taken; a non-root peer with the root-only reserve left, or with its uid's share taken) the
 * peer gets an SG_ERR_BUSY error and is closed. Returns 0 or -errno (the fd is closed
 * either way). */
int conn_set_add(ConnSet *s, int fd);
size_t conn_set_count(const ConnSet *s);
/* Requests read and classed refusal-only (conn_ops.refusal_only) wait to be served. */
bool conn_set_refusals_waiting(const ConnSet *s);
/* For shutdown: closes every connection with no request, reply or held output in flight
 * for which busy(data) is false. */
void conn_set_close_idle(ConnSet *s, bool (*busy)(void *data));

const struct conn_peer *conn_peer(const Conn *c);
/* The user a root peer acts for: the real uid of its process when that is not root (a
 * setuid su or sudo), else its login uid (pam_loginuid's, when set), else 0. Read from
 * /proc at each call. */
uid_t conn_peer_invoker(const Conn *c);

/* Queues a finished frame. Returns 0, -EINVAL (w overflowed) or -ENOBUFS/-ENOMEM. */
int conn_send(Conn *c, struct sg_writer *w);
int conn_send_error(Conn *c, enum sg_err err, const char *detail);
/* Holding: replies queued from now on stay in the buffer until conn_release(). With
 * keep false they are taken back (a commit that would have made them true failed). */
void conn_hold(Conn *c);
void conn_release(Conn *c, bool keep);
/* The answer to the current request is complete: read the next one. */
void conn_request_done(Conn *c);
/* Close once the queued (and released) output is sent. */
void conn_close_after_flush(Conn *c);
/* Bytes queued for this connection so far (released or not), and how many the kernel took:
 * an answer is delivered once conn_sent_bytes() reaches the queued count taken after it. */
uint64_t conn_queued_bytes(const Conn *c);
uint64_t conn_sent_bytes(const Conn *c);
