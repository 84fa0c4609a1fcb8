/* SPDX-License-Identifier: MIT */
/* Shared between manager.c (lifecycle), connection.c (I/O) and requests.c (dispatch). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <systemd/sd-event.h>

#include "cidr.h"
#include "config.h"
#include "manager.h"
#include "peers.h"
#include "policy.h"
#include "protocol.h"
#include "store.h"
#include "validate.h"

#define CONN_OUT_MAX (64u * 1024u * 1024u) /* a listing larger than this is cut short */
#define CONN_IDLE_USEC (60ull * 1000000ull) /* between requests */
#define GROUP_COMMIT_MAX_OPS 512           /* commit at least this often under load */

typedef struct Conn Conn;

struct Conn {
        Manager *m;
        Conn *prev, *next;           /* m->conns */
        int fd;
        sd_event_source *io, *timer;
        pid_t pid;
        uid_t uid;
        gid_t gid;
        bool is_root, is_admin;

        uint8_t *in;                 /* SG_FRAME_MAX */
        size_t in_len;
        uint8_t *out;
        size_t out_len, out_off, out_cap;
        struct sg_msg *msg;

        bool busy;                   /* a request is being answered (permit wait) */
        bool closing;                /* close once out is flushed */

        /* The attempt PRECHECK reserved on this connection. */
        bool login;                  /* a PRECHECK came in on this connection */
        bool attempt_open, has_permit, user_known;
        bool success_unacked;        /* REPORT success answered, answer not yet sent */
        uint64_t attempt_id, reservation;
        char user[SG_FIELD_WIRE_MAX + 1], rhost[SG_FIELD_WIRE_MAX + 1];
        /* The name counters, locks and the attempts table use: the user name, or for a name
         * that matches no account while sealing is on, a keyed pseudonym ("~" + hex), so a
         * password typed into the user field is never stored or listed in clear. */
        char counted_user[SG_FIELD_WIRE_MAX + 1];
        char tty[SG_FIELD_WIRE_MAX + 1], service[SG_FIELD_WIRE_MAX + 1];
        uint32_t delay_ms;

        /* Waiting for a hash permit (FIFO). */
        bool waiting;
        Conn *wait_next;

        /* Replies held until the group commit that makes them true. */
        bool held;
        size_t held_mark;
        Conn *held_next;
};

struct Manager {
        struct manager_args args;
        struct sg_config config;
        sd_event *event;
        sd_event_source *listen_source, *commit_source, *maintenance_timer, *drain_timer;
        int listen_fd;
        bool listen_from_systemd, socket_bound, stopping;

        sg_store *store;
        sg_policy *policy;
        sg_peers *peers;             /* noisy-peer buckets: live as long as the manager */
        struct sg_cidr_list allowlist;
        uint8_t *audit_key;          /* sodium_malloc'ed */
        uint8_t seal_pk[32];
        bool have_seal_pk;
        gid_t admin_gid;
        bool have_admin_gid;

        Conn *conns;
        size_t n_conns;
        Conn *dispatching;           /* the connection whose request is being handled */
        uint32_t permits_max, permits_used;
        Conn *wait_head, *wait_tail;

        uint64_t head_id;            /* last audit tail written to audit.head */
        char missing_tail[256];      /* start-up note on audit.head for the daemon_start row
                                      * (gaps themselves stay in the id sequence: verify) */

        bool tx_open;
        unsigned tx_ops;
        Conn *held_head;

        uint64_t start_mono_usec;
};

/* connection.c */
int conn_new(Manager *m, int fd);
Conn *conn_free(Conn *c);
/* Finishes w and queues it (held until commit when a transaction is open). */
int conn_send(Conn *c, struct sg_writer *w);
int conn_send_error(Conn *c, enum sg_err err, const char *detail);
void conn_flush(Conn *c);
/* Re-derives the epoll mask from the state (busy, closing, held, pending output). */
void conn_update_events(Conn *c);
void conn_request_done(Conn *c);
void conn_close_after_flush(Conn *c);
bool conn_settle(Conn *c);

/* requests.c */
void request_dispatch(Conn *c);
void request_abandon(Conn *c);          /* connection lost with an open attempt */
void permits_release(Manager *m, Conn *c);
int request_permit_timeout(Conn *c);

/* The [daemon] disk_full policy: true when a login may go on although the store could not
 * record it (a local login under fail_remote). The event already went to journald. */
bool store_error_tolerated(Conn *c, int r);

/* manager.c */
/* Opens the group-commit transaction if needed; the commit runs when the loop is idle. */
int manager_tx(Manager *m);
void manager_hold(Manager *m, Conn *c);
int manager_emit(Manager *m, const struct sg_audit_event *ev, bool user_unknown);
int manager_policy_config(const struct sg_config *c, const struct sg_cidr_list *allow,
                          struct sg_policy_config *ret);
