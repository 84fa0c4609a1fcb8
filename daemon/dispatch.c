/* SPDX-License-Identifier: MIT */
/*
 * The dispatch table and the connection ops. Who may ask what is decided here, from the
 * kernel's SO_PEERCRED, never from a request field: root for everything, the admin group for
 * read-only views, the [fleet] user for the fleet helper's requests. Anything not permitted is refused and audited (peer_denied).
 * A new request type is one handler file and one row in the table below.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

#include "admin.h"
#include "dispatch.h"
#include "events.h"
#include "fleet.h"
#include "io.h"
#include "log.h"
#include "login.h"
#include "session.h"
#include "token.h"

static const struct {
        unsigned perm;
        request_handler_fn fn;
} handlers[SG_MSG_REQUEST_MAX] = {
        [SG_MSG_PRECHECK] = { PERM_ROOT, login_precheck },
        [SG_MSG_REPORT] = { PERM_ROOT, login_report },
        [SG_MSG_EVENT] = { PERM_ROOT, login_event },
        [SG_MSG_ACCOUNT] = { PERM_ROOT, login_account },
        [SG_MSG_STATUS] = { PERM_ROOT | PERM_ADMIN, admin_status },
        [SG_MSG_LOCKS] = { PERM_ROOT | PERM_ADMIN, admin_locks },
        [SG_MSG_UNLOCK] = { PERM_ROOT, admin_unlock },
        [SG_MSG_AUDIT_QUERY] = { PERM_ROOT | PERM_ADMIN, admin_audit_query },
        [SG_MSG_AUDIT_VERIFY] = { PERM_ROOT | PERM_ADMIN, admin_audit_verify },
        [SG_MSG_SESSION_OPEN] = { PERM_ROOT, session_open },
        [SG_MSG_SESSION_CLOSE] = { PERM_ROOT, session_close },
        [SG_MSG_SESSIONS] = { PERM_ROOT | PERM_ADMIN, session_list },
        [SG_MSG_SESSION_KILL] = { PERM_ROOT, session_kill },
        [SG_MSG_TOKEN_ISSUE] = { PERM_ROOT, token_issue },
        [SG_MSG_TOKEN_REVOKE] = { PERM_ROOT, token_revoke },
        [SG_MSG_TOKENS] = { PERM_ROOT | PERM_ADMIN, token_list },
        [SG_MSG_FLEET_EXPORT] = { PERM_ROOT | PERM_FLEET, fleet_export },
        [SG_MSG_FLEET_LOCK] = { PERM_ROOT | PERM_FLEET, fleet_lock },
        [SG_MSG_FLEET_UNLOCK] = { PERM_ROOT | PERM_FLEET, fleet_unlock },
};

unsigned dispatch_permission(unsigned type) {
        if (type >= SG_MSG_REQUEST_MAX || !handlers[type].fn)
                return 0;
        return handlers[type].perm;
}

bool dispatch_permitted(unsigned type, const struct conn_peer *peer) {
        unsigned perm = dispatch_permission(type);

        return ((perm & PERM_ROOT) && peer->is_root) || ((perm & PERM_ADMIN) && peer->is_admin) ||
               ((perm & PERM_FLEET) && peer->is_fleet);
}

/* ---- events any local user can cause: limited per uid (peers.h) ---- */

static void emit_peer_summaries(const Context *x, const struct sg_peer_summary *s, size_t n) {
        context_emit_summaries(x, s, n);
}

void dispatch_flush_suppressed(const Context *x, bool force) {
        struct sg_peer_summary s[16];
        size_t n;

        do {
                n = sg_peers_flush(x->peers, sg_now_mono_usec(), force, s, sizeof s / sizeof s[0]);
                emit_peer_summaries(x, s, n);
        } while (n == sizeof s / sizeof s[0]);
}

static void emit_peer_event(const Context *x, const struct conn_peer *p, enum sg_peer_event kind,
                            const char *detail) {
        struct sg_peer_summary s[SG_PEER_SUMMARY_MAX];
        enum sg_peer_verdict v;
        size_t n = 0;

        v = sg_peers_event(x->peers, (uint32_t) p->uid, kind, sg_now_mono_usec(), s, &n);
        emit_peer_summaries(x, s, n);
        if (v == SG_PEER_SUPPRESS_FIRST)
                log_warning("uid %u causes more than %u refused or malformed requests at once (then 1/s): "
                            "its further ones are counted, not written, and summarized in one audit row",
                            (unsigned) p->uid, SG_PEER_BURST);
        if (v == SG_PEER_WRITE) {
                struct sg_audit_event ev = {
                        .time_usec = sg_now_real_usec(),
                        .event = sg_peer_event_name(kind),
                        .pid = p->pid,
                        .uid = p->uid,
                        .detail = detail,
                };

                (void) context_emit(x, &ev, false);
        }
}

/* Refuses the request: audited (rate-limited per uid), answered, closed. */
static void refuse(Client *cl, enum sg_peer_event kind, enum sg_err err, const char *what) {
        emit_peer_event(client_ctx(cl), client_peer(cl), kind, what);
        (void) client_send_error(cl, err, err == SG_ERR_PERMISSION ? "permission denied" : what);
        client_close(cl);
}

/* Returns false when the handler answers later (REQUEST_PENDING). The frame was decoded when
 * it was read (on_refusal_only). */
static bool handle(Client *cl) {
        struct sg_msg *msg = client_msg(cl);
        int r = client_decoded(cl);

        dispatch_flush_suppressed(client_ctx(cl), false);
        if (r < 0)
                refuse(cl, SG_PEER_PROTOCOL_ERROR, SG_ERR_PROTOCOL, sg_proto_strerror(r));
        else if (dispatch_permission(msg->type) == 0)
                refuse(cl, SG_PEER_PROTOCOL_ERROR, SG_ERR_PROTOCOL, "not a request");
        else if (!dispatch_permitted(msg->type, client_peer(cl)))
                refuse(cl, SG_PEER_DENIED, SG_ERR_PERMISSION, sg_msg_type_name(msg->type));
        else {
                r = handlers[msg->type].fn(cl, msg);
                if (r == REQUEST_PENDING)
                        return false;
                if (r < 0) {
                        log_warning_errno(r, "%s from pid %d failed", sg_msg_type_name(msg->type),
                                          (int) client_peer(cl)->pid);
                        login_store_failed(cl, r);
                        (void) client_send_error(cl, SG_ERR_INTERNAL, "internal error");
                        client_close(cl);
                }
        }
        return true;
}

/* Decodes the request as soon as it is read, and says whether it will only be refused: a
 * malformed frame, a request this peer may not make, a PRECHECK for a locked user or source.
 * The connections serve those after the others (docs/architecture.md, "Serving order").
 * This only orders: handle() decides the answer as it always did, from the same decode. */
static bool on_refusal_only(void *data, Conn *c, const uint8_t *frame, size_t len) {
        Client *cl = data;
        struct sg_msg *msg = client_msg(cl);
        bool refused;
        int r;

        (void) c;
        r = sg_msg_decode(frame, len, msg);
        client_msg_decoded(cl);
        refused = r < 0 || !dispatch_permitted(msg->type, client_peer(cl)) ||
                  (msg->type == SG_MSG_PRECHECK && login_precheck_refused(cl, msg));
        client_set_decoded(cl, r, refused);
        return refused;
}

static void on_request(void *data, Conn *c, const uint8_t *frame, size_t len) {
        Client *cl = data;
        Txn *txn = client_ctx(cl)->txn;

        (void) c;
        (void) frame;
        (void) len;
        /* A reply that lets a login go on (urgent, txn.h) does not wait behind a request
         * that will only be refused: its commit runs first. */
        if (client_refusal_only(cl) && txn_urgent_waiting(txn))
                (void) txn_commit(txn);
        if (handle(cl))
                client_finish(cl);
        /* Only here, after the handler: a commit never runs inside one. When only requests
         * that will be refused wait, an urgent reply just queued need not wait for them. */
        if (!client_refusal_only(cl) && txn_urgent_waiting(txn) &&
            conn_set_refusals_waiting(client_ctx(cl)->conns))
                (void) txn_commit(txn);
        else
                txn_after_request(txn);
}

/* The commit a reply waited for failed: nothing the replies promised is durable. */
static void on_commit_failed(Client *cl, int r) {
        if (login_store_error_tolerated(cl, r)) {
                conn_release(client_conn(cl), true);
                return;
        }
        login_store_failed(cl, r);
        client_take_back_replies(cl);
}

/* Whether peer may make any request at all. */
static bool may_ask_anything(const struct conn_peer *peer) {
        for (unsigned t = 0; t < SG_MSG_REQUEST_MAX; t++)
                if (dispatch_permitted(t, peer))
                        return true;
        return false;
}

static void *on_opened(void *owner, Conn *c) {
        const Context *x = owner;
        const struct conn_peer *peer = conn_peer(c);

        /* A peer that may ask nothing is answered and closed at once: it holds no slot. */
        if (!may_ask_anything(peer)) {
                emit_peer_event(x, peer, SG_PEER_DENIED, "no request is open to this peer");
                (void) conn_send_error(c, SG_ERR_PERMISSION, "permission denied");
                conn_close_after_flush(c);
        }
        return client_new(c, x, on_commit_failed);
}

static void on_refused(void *owner, const struct conn_peer *peer, const char *why) {
        emit_peer_event(owner, peer, SG_PEER_DENIED, why);
}

static void on_closed(void *data, Conn *c) {
        Client *cl = data;

        (void) c;
        login_closed(cl);
        admin_closed(cl);
        client_free(cl);
}

bool dispatch_busy(void *data) {
        return login_in_flight(data);
}

const struct conn_ops dispatch_conn_ops = {
        .opened = on_opened,
        .refusal_only = on_refusal_only,
        .request = on_request,
        .closed = on_closed,
        .refused = on_refused,
};
