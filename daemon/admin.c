/* SPDX-License-Identifier: MIT */
/* Administrator requests: status, lock listing and unlock, audit review and verification. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "admin.h"
#include "fleet.h"
#include "io.h"
#include "lock-row.h"
#include "log.h"
#include "validate.h"
#include "worker.h"

/* Audit queries up to this many rows are answered on the loop (indexed: milliseconds). */
#define ADMIN_QUERY_INLINE_MAX 1000


int admin_status(Client *cl, const struct sg_msg *msg) {
        const Context *x = client_ctx(cl);
        struct sg_writer w;
        uint64_t rows = 0;
        char *dump;
        int r;

        (void) msg;
        r = sg_store_audit_count(x->store, &rows);
        if (r < 0)
                return r;
        dump = malloc(16384);
        if (!dump)
                return -ENOMEM;
        r = sg_config_dump(x->config, dump, 16384);
        if (r < 0) {
                free(dump);
                return r;
        }
        sg_writer_init(&w, SG_MSG_OK);
        sg_writer_str(&w, SG_F_VERSION, SECGUARD_VERSION);
        sg_writer_u64(&w, SG_F_UPTIME, (sg_now_mono_usec() - x->start_mono_usec) / 1000000);
        sg_writer_u64(&w, SG_F_LOCKS, sg_policy_lock_count(x->policy, sg_now_real_usec()) +
                                              sg_policy_fleet_lock_count(x->policy, sg_now_real_usec()));
        sg_writer_u64(&w, SG_F_SESSIONS, sessions_count(x->sessions));
        sg_writer_u64(&w, SG_F_AUDIT_ROWS, rows);
        sg_writer_u64(&w, SG_F_PERMITS, permits_in_use(x->permits));
        sg_writer_u64(&w, SG_F_PERMITS_MAX, permits_max(x->permits));
        sg_writer_str(&w, SG_F_CONFIG, dump);
        free(dump);
        return client_send(cl, &w);
}

static int send_lock_row(void *userdata, const struct sg_lock_info *l) {
        Client *cl = userdata;
        struct sg_writer w;

        sg_writer_init(&w, SG_MSG_ROW);
        sg_writer_str(&w, SG_F_KIND, sg_lock_kind_name(l->kind));
        sg_writer_str(&w, SG_F_KEY, l->key);
        sg_writer_u64(&w, SG_F_FAILURES, l->failures);
        sg_writer_u64(&w, SG_F_UNTIL, l->until_usec);
        sg_writer_u64(&w, SG_F_COUNT, l->level);
        return client_send(cl, &w);
}

/* A fleet lock: its kind and key as a local one, no failures or level of its own, and the
 * decision's origin host (SG_F_HOST) and id (SG_F_ID), which mark the row as a fleet lock. */
static int send_fleet_lock_row(void *userdata, const struct sg_fleet_lock *l) {
        Client *cl = userdata;
        struct sg_writer w;

        sg_writer_init(&w, SG_MSG_ROW);
        sg_writer_str(&w, SG_F_KIND, sg_lock_kind_name(l->kind));
        sg_writer_str(&w, SG_F_KEY, l->key);
        sg_writer_u64(&w, SG_F_UNTIL, l->until_usec);
        sg_writer_str(&w, SG_F_HOST, l->origin_host);
        sg_writer_u64(&w, SG_F_ID, l->decision_id);
        sg_writer_u64(&w, SG_F_FLEET, 1);
        return client_send(cl, &w);
}

int admin_locks(Client *cl, const struct sg_msg *msg) {
        const Context *x = client_ctx(cl);
        struct sg_writer w;
        uint64_t now = sg_now_real_usec();
        int r;

        (void) msg;
        r = sg_policy_foreach_lock(x->policy, now, send_lock_row, cl);
        if (r >= 0)
                r = sg_policy_foreach_fleet_lock(x->policy, now, send_fleet_lock_row, cl);
        if (r < 0)
                return r;
        sg_writer_init(&w, SG_MSG_OK);
        sg_writer_u64(&w, SG_F_COUNT, sg_policy_lock_count(x->policy, now) + sg_policy_fleet_lock_count(x->policy, now));
        return client_send(cl, &w);
}

struct unlock_count {
        const Context *x;
        unsigned locks, keys; /* locks in force lifted; keys cleared (locks or counters) */
};

static int unlock_persist(void *userdata, const struct sg_lock_info *info, bool was_locked) {
        struct unlock_count *u = userdata;
        struct sg_lock_row row;
        int r;

        r = sg_lock_row_from_info(info, &row);
        if (r < 0)
                return r;
        u->keys++;
        u->locks += was_locked;
        return sg_store_lock_put(u->x->store, &row);
}

static int unlock_one(struct unlock_count *u, enum sg_lock_kind kind, const char *key) {
        struct sg_lock_info info;
        int r;

        r = sg_policy_unlock(u->x->policy, kind, key, sg_now_real_usec(), &info);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        return unlock_persist(u, &info, r > 0);
}

/* `unlock USER` means the user everywhere: the user's own key and every (user, source);
 * `unlock --rhost` the source everywhere: its own keys and every (user, that source), and
 * the fleet locks on those keys (this host's administrator wants the address in). With
 * SG_F_FLEET=1 (--rhost only) the audit row says reason "fleet": the fleet helper ships it
 * and the fleet turns it into an unlock on every host; it is written even when nothing was
 * locked here. */
int admin_unlock(Client *cl, const struct sg_msg *msg) {
        const Context *x = client_ctx(cl);
        const char *kind = sg_msg_str(msg, SG_F_KIND), *key = sg_msg_str(msg, SG_F_KEY);
        struct sg_audit_event ev = {
                .time_usec = sg_now_real_usec(), .event = "unlock",
                .pid = client_peer(cl)->pid, .uid = client_peer(cl)->uid,
        };
        struct unlock_count u = { .x = x };
        struct sg_writer w;
        char source[320], detail[160], wide[SG_POLICY_KEY_MAX], widest[SG_POLICY_KEY_MAX];
        uint64_t fleet = sg_msg_u64(msg, SG_F_FLEET, 0);
        int r, fleet_cleared = 0;

        if (fleet > 1)
                return client_send_error(cl, SG_ERR_INVALID, "fleet must be 0 or 1");
        if (fleet && strcmp(kind, "source") != 0)
                return client_send_error(cl, SG_ERR_INVALID, "a fleet-wide unlock names a source address (--rhost)");
        if (fleet)
                ev.reason = "fleet";
        r = txn_begin(x->txn);
        if (r < 0)
                return r;
        if (strcmp(kind, "user") == 0) {
                if (!sg_valid_user(key))
                        return client_send_error(cl, SG_ERR_INVALID, "invalid user name");
                r = unlock_one(&u, SG_LOCK_USER, key);
                if (r >= 0)
                        r = sg_policy_unlock_pairs(x->policy, key, NULL, sg_now_real_usec(),
                                                   unlock_persist, &u);
                ev.user = key;
        } else if (strcmp(kind, "source") == 0) {
                /* An address, or a host name as sshd with UseDNS yes reports it. */
                if (!*key || !sg_valid_rhost(key) ||
                    sg_source_key(key, x->config->ipv6_prefix, source, sizeof source) < 0)
                        return client_send_error(cl, SG_ERR_INVALID, "invalid address or host name");
                r = sg_policy_wider_keys(x->policy, key, wide, widest);
                if (r >= 0)
                        r = unlock_one(&u, SG_LOCK_SOURCE, source);
                /* A lock on the address's network (IPv6 /48, /32; a host name's domain) blocks
                 * it as well: the administrator asked for this address to get in. */
                if (r >= 0 && wide[0])
                        r = unlock_one(&u, SG_LOCK_SOURCE, wide);
                if (r >= 0 && widest[0])
                        r = unlock_one(&u, SG_LOCK_SOURCE, widest);
                if (r >= 0)
                        r = unlock_one(&u, SG_LOCK_SPRAY, source);
                if (r >= 0)
                        r = sg_policy_unlock_pairs(x->policy, NULL, source, sg_now_real_usec(),
                                                   unlock_persist, &u);
                if (r >= 0) {
                        fleet_cleared = fleet_clear_for_unlock(x, source, wide, widest);
                        r = fleet_cleared;
                }
                ev.rhost = key;
        } else
                return client_send_error(cl, SG_ERR_INVALID, "kind must be user or source");
        if (r < 0)
                return r;
        if (u.keys == 0 && fleet_cleared == 0 && !fleet)
                return client_send_error(cl, SG_ERR_NOT_FOUND, "no lock or failures recorded");
        if (fleet_cleared > 0)
                snprintf(detail, sizeof detail, "%u locks cleared, failures reset on %u keys, %d fleet locks cleared%s",
                         u.locks, u.keys, fleet_cleared, fleet ? "; fleet-wide unlock requested" : "");
        else
                snprintf(detail, sizeof detail, "%u locks cleared, failures reset on %u keys%s", u.locks, u.keys,
                         fleet ? "; fleet-wide unlock requested" : "");
        ev.detail = detail;
        r = context_emit(x, &ev, false);
        if (r < 0)
                return r;
        sg_writer_init(&w, SG_MSG_OK);
        sg_writer_u64(&w, SG_F_COUNT, u.locks + (unsigned) fleet_cleared);
        sg_writer_str(&w, SG_F_DETAIL, detail);
        return client_send(cl, &w);
}

void admin_audit_row_fields(struct sg_writer *w, const struct sg_audit_row *row) {
        const struct sg_audit_event *e = &row->ev;

        sg_writer_u64(w, SG_F_ID, row->id);
        sg_writer_u64(w, SG_F_TIME, e->time_usec);
        sg_writer_str(w, SG_F_EVENT, e->event);
        if (e->reason)
                sg_writer_str(w, SG_F_REASON, e->reason);
        if (e->user)
                sg_writer_strn(w, SG_F_USER, e->user, strnlen(e->user, SG_FIELD_WIRE_MAX));
        if (e->user_sealed)
                sg_writer_bytes(w, SG_F_SEALED, e->user_sealed, e->user_sealed_len);
        if (e->service)
                sg_writer_strn(w, SG_F_SERVICE, e->service, strnlen(e->service, SG_FIELD_WIRE_MAX));
        if (e->rhost)
                sg_writer_strn(w, SG_F_RHOST, e->rhost, strnlen(e->rhost, SG_FIELD_WIRE_MAX));
        if (e->tty)
                sg_writer_strn(w, SG_F_TTY, e->tty, strnlen(e->tty, SG_FIELD_WIRE_MAX));
        if (e->pid >= 0)
                sg_writer_u64(w, SG_F_PID, (uint64_t) e->pid);
        if (e->uid >= 0)
                sg_writer_u64(w, SG_F_UID, (uint64_t) e->uid);
        if (e->session_id)
                sg_writer_strn(w, SG_F_SESSION_ID, e->session_id, strnlen(e->session_id, 64));
        if (e->detail)
                sg_writer_strn(w, SG_F_DETAIL, e->detail, strnlen(e->detail, 1024));
}

static int send_audit_row(void *userdata, const struct sg_audit_row *row) {
        Client *cl = userdata;
        struct sg_writer w;

        sg_writer_init(&w, SG_MSG_ROW);
        admin_audit_row_fields(&w, row);
        return client_send(cl, &w);
}

static void query_done(void *owner, int r) {
        Client *cl = owner;
        struct sg_writer w;

        if (r == -ENOBUFS)
                r = client_send_error(cl, SG_ERR_INVALID, "result too large; lower --limit");
        else if (r >= 0) {
                sg_writer_init(&w, SG_MSG_OK);
                r = client_send(cl, &w);
        }
        if (r < 0) {
                log_warning_errno(r, "AUDIT_QUERY from pid %d failed", (int) client_peer(cl)->pid);
                (void) client_send_error(cl, SG_ERR_INTERNAL, "internal error");
                client_close(cl);
        }
        client_finish(cl);
}

int admin_audit_query(Client *cl, const struct sg_msg *msg) {
        const Context *x = client_ctx(cl);
        struct sg_audit_filter f = {
                .user = sg_msg_str(msg, SG_F_USER),
                .event = sg_msg_str(msg, SG_F_EVENT),
                .rhost = sg_msg_str(msg, SG_F_RHOST),
                .since_usec = sg_msg_u64(msg, SG_F_SINCE, 0),
                .until_usec = sg_msg_u64(msg, SG_F_UNTIL, 0),
                .limit = sg_msg_u64(msg, SG_F_LIMIT, 100),
        };
        struct sg_writer w;
        int r;

        if (f.limit == 0 || f.limit > 100000)
                return client_send_error(cl, SG_ERR_INVALID, "limit must be 1..100000");
        /* A large listing is read on the worker's connection and sent in slices; a small one
         * (indexed, a few milliseconds) is answered at once, also while a verify runs. */
        if (x->worker && f.limit > ADMIN_QUERY_INLINE_MAX) {
                r = worker_query(x->worker, &f, cl, send_audit_row, query_done);
                if (r == -EBUSY)
                        return client_send_error(cl, SG_ERR_BUSY, "the audit worker is busy; try again later");
                return r < 0 ? r : REQUEST_PENDING;
        }
        r = sg_store_audit_query(x->store, &f, send_audit_row, cl);
        if (r == -ENOBUFS)
                return client_send_error(cl, SG_ERR_INVALID, "result too large; lower --limit");
        if (r < 0)
                return r;
        sg_writer_init(&w, SG_MSG_OK);
        return client_send(cl, &w);
}

/* The answer to AUDIT_VERIFY: r as sg_store_audit_verify(). */
static int send_verify_result(Client *cl, int r, uint64_t bad, uint64_t rows, const char *detail,
                              const char *note) {
        struct sg_writer w;

        if (r == -EBADMSG) {
                /* SQLite itself found the file damaged: that is a failed verification too. */
                detail = "the database file is damaged (SQLite reports corruption); restore it from a backup and compare";
                r = 1;
        }
        if (r < 0)
                return r;
        sg_writer_init(&w, SG_MSG_OK);
        sg_writer_u64(&w, SG_F_RESULT, r == 0 ? SG_RESULT_SUCCESS : SG_RESULT_FAILURE);
        sg_writer_u64(&w, SG_F_AUDIT_ROWS, rows);
        if (r == 1) {
                sg_writer_u64(&w, SG_F_ID, bad);
                sg_writer_str(&w, SG_F_DETAIL, detail);
        } else if (note && note[0])
                sg_writer_str(&w, SG_F_DETAIL, note); /* intact, but this much was not checked */
        return client_send(cl, &w);
}

static void verify_done(void *owner, const struct worker_verify_result *res) {
        Client *cl = owner;
        int r;

        r = send_verify_result(cl, res->r, res->bad_id, res->rows, res->detail, res->note);
        if (r < 0) {
                log_warning_errno(r, "AUDIT_VERIFY from pid %d failed", (int) client_peer(cl)->pid);
                (void) client_send_error(cl, SG_ERR_INTERNAL, "internal error");
                client_close(cl);
        }
        client_finish(cl);
}

/* On the worker: the loop goes on serving logins while the chain is walked. One verification
 * at a time; a second one meanwhile is refused with SG_ERR_BUSY (docs/protocol.md). */
int admin_audit_verify(Client *cl, const struct sg_msg *msg) {
        const Context *x = client_ctx(cl);
        struct sg_audit_epoch_key ek;
        struct sg_audit_tail tail;
        uint64_t bad = 0, rows = 0;
        char detail[1024] = "", note[512] = "";
        int r;

        (void) msg;
        if (!x->worker) {
                r = sg_store_audit_verify(x->store, &bad, detail, sizeof detail);
                if (r >= 0 || r == -EBADMSG)
                        (void) sg_store_audit_count(x->store, &rows);
                if (r >= 0)
                        (void) sg_store_audit_verify_note(x->store, note, sizeof note);
                return send_verify_result(cl, r, bad, rows, detail, note);
        }
        sg_store_audit_committed_tail(x->store, &tail);
        sg_store_audit_epoch_key(x->store, &ek);
        r = worker_verify(x->worker, &tail, &ek, cl, verify_done);
        sodium_memzero(&tail, sizeof tail);
        sodium_memzero(&ek, sizeof ek);
        if (r == -EBUSY)
                return client_send_error(cl, SG_ERR_BUSY,
                                         worker_verifying(x->worker) ? "a verification is already running; try again when it ends"
                                                                     : "the audit worker is busy; try again later");
        return r < 0 ? r : REQUEST_PENDING;
}

void admin_closed(Client *cl) {
        worker_cancel(client_ctx(cl)->worker, cl);
}
