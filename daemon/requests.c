/* SPDX-License-Identifier: MIT */
/*
 * The dispatch table and the request handlers. Who may ask what is decided here, from the
 * kernel's SO_PEERCRED, never from a request field: root for everything, the admin group for
 * read-only views. Anything not permitted is refused and audited (peer_denied).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "events.h"
#include "io.h"
#include "manager-internal.h"
#include "requests.h"
#include "timefmt.h"

enum {
        PERM_ROOT = 1 << 0,  /* uid 0 */
        PERM_ADMIN = 1 << 1, /* members of [daemon] admin_group */
};

typedef int (*handler_fn)(Conn *c, const struct sg_msg *msg);

static int on_precheck(Conn *c, const struct sg_msg *msg);
static int on_report(Conn *c, const struct sg_msg *msg);
static int on_event(Conn *c, const struct sg_msg *msg);
static int on_status(Conn *c, const struct sg_msg *msg);
static int on_locks(Conn *c, const struct sg_msg *msg);
static int on_unlock(Conn *c, const struct sg_msg *msg);
static int on_audit_query(Conn *c, const struct sg_msg *msg);
static int on_audit_verify(Conn *c, const struct sg_msg *msg);
static int on_account(Conn *c, const struct sg_msg *msg);

static const struct {
        unsigned perm;
        handler_fn fn;
} handlers[SG_MSG_REQUEST_MAX] = {
        [SG_MSG_PRECHECK] = { PERM_ROOT, on_precheck },
        [SG_MSG_REPORT] = { PERM_ROOT, on_report },
        [SG_MSG_EVENT] = { PERM_ROOT, on_event },
        [SG_MSG_STATUS] = { PERM_ROOT | PERM_ADMIN, on_status },
        [SG_MSG_LOCKS] = { PERM_ROOT | PERM_ADMIN, on_locks },
        [SG_MSG_UNLOCK] = { PERM_ROOT, on_unlock },
        [SG_MSG_AUDIT_QUERY] = { PERM_ROOT | PERM_ADMIN, on_audit_query },
        [SG_MSG_AUDIT_VERIFY] = { PERM_ROOT | PERM_ADMIN, on_audit_verify },
        [SG_MSG_ACCOUNT] = { PERM_ROOT, on_account },
};

static struct sg_audit_event peer_event(const Conn *c, const char *event) {
        return (struct sg_audit_event) {
                .time_usec = sg_now_real_usec(),
                .event = event,
                .pid = c->pid,
                .uid = c->uid,
        };
}

/* ---- events any local user can cause: limited per uid (peers.h) ---- */

static void emit_peer_summaries(Manager *m, const struct sg_peer_summary *s, size_t n) {
        for (size_t i = 0; i < n; i++) {
                struct sg_audit_event ev = {
                        .time_usec = sg_now_real_usec(),
                        .event = sg_peer_event_name(s[i].kind),
                        .pid = -1, /* many connections */
                        .uid = s[i].uid,
                };
                char detail[96];
                int r;

                snprintf(detail, sizeof detail, "%" PRIu64 " similar events from uid %" PRIu32 " suppressed",
                         s[i].suppressed, s[i].uid);
                ev.detail = detail;
                r = manager_emit(m, &ev, false);
                if (r < 0) /* the count must not vanish silently: the journal keeps it */
                        log_error_errno(r, "cannot record a %s summary (%s)", ev.event, detail);
        }
}

void request_flush_suppressed(Manager *m, bool force) {
        struct sg_peer_summary s[16];
        size_t n;

        do {
                n = sg_peers_flush(m->peers, sg_now_mono_usec(), force, s, sizeof s / sizeof s[0]);
                emit_peer_summaries(m, s, n);
        } while (n == sizeof s / sizeof s[0]);
}

static void emit_peer_event(Conn *c, enum sg_peer_event kind, const char *detail) {
        struct sg_peer_summary s[SG_PEER_SUMMARY_MAX];
        struct sg_audit_event ev;
        enum sg_peer_verdict v;
        size_t n = 0;

        v = sg_peers_event(c->m->peers, (uint32_t) c->uid, kind, sg_now_mono_usec(), s, &n);
        emit_peer_summaries(c->m, s, n);
        if (v == SG_PEER_SUPPRESS_FIRST)
                log_warning("uid %u causes more than %u refused or malformed requests at once (then 1/s): "
                            "its further ones are counted, not written, and summarized in one audit row",
                            (unsigned) c->uid, SG_PEER_BURST);
        if (v != SG_PEER_WRITE)
                return;
        ev = peer_event(c, sg_peer_event_name(kind));
        ev.detail = detail;
        (void) manager_emit(c->m, &ev, false);
}

void request_dispatch(Conn *c) {
        unsigned perm;
        int r;

        request_flush_suppressed(c->m, false);
        r = sg_msg_decode(c->in, c->in_len, c->msg);
        if (r < 0) {
                emit_peer_event(c, SG_PEER_PROTOCOL_ERROR, sg_proto_strerror(r));
                (void) conn_send_error(c, SG_ERR_PROTOCOL, sg_proto_strerror(r));
                conn_close_after_flush(c);
                return;
        }
        if (c->msg->type >= SG_MSG_REQUEST_MAX || !handlers[c->msg->type].fn) {
                emit_peer_event(c, SG_PEER_PROTOCOL_ERROR, "not a request");
                (void) conn_send_error(c, SG_ERR_PROTOCOL, "not a request");
                conn_close_after_flush(c);
                return;
        }
        perm = handlers[c->msg->type].perm;
        if (!((perm & PERM_ROOT) && c->is_root) && !((perm & PERM_ADMIN) && c->is_admin)) {
                emit_peer_event(c, SG_PEER_DENIED, sg_msg_type_name(c->msg->type));
                (void) conn_send_error(c, SG_ERR_PERMISSION, "permission denied");
                conn_close_after_flush(c);
                return;
        }
        r = handlers[c->msg->type].fn(c, c->msg);
        if (r < 0) {
                log_warning_errno(r, "%s from pid %d failed", sg_msg_type_name(c->msg->type),
                                  (int) c->pid);
                request_store_failed(c, r);
                (void) conn_send_error(c, SG_ERR_INTERNAL, "internal error");
                conn_close_after_flush(c);
                return;
        }
        if (c->waiting)
                conn_update_events(c);
        else
                conn_request_done(c);
}

/* ---- hash permits ---- */

static void permit_grant(Conn *c) {
        struct sg_writer w;

        c->m->permits_used++;
        c->has_permit = true;
        sg_writer_init(&w, SG_MSG_OK);
        sg_writer_u64(&w, SG_F_DECISION, SG_DECISION_ALLOW);
        sg_writer_u64(&w, SG_F_DELAY_MS, c->delay_ms);
        (void) conn_send(c, &w);
}

void permits_release(Manager *m, Conn *c) {
        if (!c->has_permit)
                return;
        c->has_permit = false;
        m->permits_used--;
        while (m->wait_head && m->permits_used < m->permits_max) {
                Conn *w = m->wait_head;

                m->wait_head = w->wait_next;
                if (!m->wait_head)
                        m->wait_tail = NULL;
                w->waiting = false;
                w->wait_next = NULL;
                permit_grant(w);
                conn_request_done(w);
        }
}

int request_permit_timeout(Conn *c) {
        Manager *m = c->m;
        struct sg_writer w;
        Conn **p = &m->wait_head;

        while (*p && *p != c)
                p = &(*p)->wait_next;
        if (*p)
                *p = c->wait_next;
        m->wait_tail = NULL;
        for (Conn *x = m->wait_head; x; x = x->wait_next)
                m->wait_tail = x;
        c->waiting = false;
        c->wait_next = NULL;
        /* The attempt stays reserved: the module reports it as an `overload` failure. It waits
         * the delay the attempt was given, as a wrong password would: overload is no signal. */
        sg_writer_init(&w, SG_MSG_OK);
        sg_writer_u64(&w, SG_F_DECISION, SG_DECISION_OVERLOAD);
        sg_writer_u64(&w, SG_F_DELAY_MS, c->delay_ms);
        (void) conn_send(c, &w);
        conn_request_done(c);
        return 0;
}

static void permit_wait(Conn *c) {
        Manager *m = c->m;

        c->waiting = true;
        c->wait_next = NULL;
        if (m->wait_tail)
                m->wait_tail->wait_next = c;
        else
                m->wait_head = c;
        m->wait_tail = c;
        (void) sd_event_source_set_time(c->timer, sg_now_mono_usec() + (uint64_t) m->config.permit_wait_ms * 1000);
        (void) sd_event_source_set_enabled(c->timer, SD_EVENT_ONESHOT);
}

/* ---- login attempts ---- */

bool store_error_tolerated(Conn *c, int r) {
        if (!c->login || c->rhost[0] != '\0' || c->m->config.disk_full != SG_DISKFULL_FAIL_REMOTE)
                return false;
        log_error_errno(r, "the store cannot record a local login of pid %d (see its events above); "
                        "letting it proceed ([daemon] disk_full = fail_remote)", (int) c->pid);
        return true;
}

/* r from a store write during a login: 0 to go on, r to fail the request. */
static int login_store_result(Conn *c, int r) {
        if (r >= 0 || store_error_tolerated(c, r))
                return 0;
        return r;
}

static void copy_field(char *dst, const struct sg_msg *msg, uint8_t tag) {
        const char *s = sg_msg_str(msg, tag);

        snprintf(dst, SG_FIELD_WIRE_MAX + 1, "%s", s ? s : "");
}

static struct sg_audit_event attempt_event(const Conn *c, const char *event, const char *reason) {
        struct sg_audit_event ev = peer_event(c, event);

        ev.reason = reason;
        ev.user = c->user;
        ev.service = c->service[0] ? c->service : NULL;
        ev.rhost = c->rhost[0] ? c->rhost : NULL; /* NULL = local */
        ev.tty = c->tty[0] ? c->tty : NULL;
        return ev;
}

void request_store_failed(Conn *c, int r) {
        struct sg_audit_event ev;
        char detail[160];

        if (!c->login)
                return;
        /* The store could not take it, journald still must: a login refused for a store
         * error is an event (disk_full = fail_remote refuses remote logins closed). */
        ev = attempt_event(c, "auth_failure", "daemon_error");
        snprintf(detail, sizeof detail, "the store failed (%s): login refused", strerror(-r));
        ev.detail = detail;
        sg_event_journal_only(&ev, !c->user_known && c->m->have_seal_pk);
}

static int reply_decision(Conn *c, enum sg_decision d, uint32_t delay_ms) {
        struct sg_writer w;

        sg_writer_init(&w, SG_MSG_OK);
        sg_writer_u64(&w, SG_F_DECISION, d);
        sg_writer_u64(&w, SG_F_DELAY_MS, delay_ms);
        return conn_send(c, &w);
}

static int emit_new_locks(Conn *c, const struct sg_lock_info *locks, size_t n) {
        for (size_t i = 0; i < n; i++) {
                struct sg_lock_row row = {
                        .kind = sg_lock_kind_name(locks[i].kind),
                        .key = locks[i].key,
                        .until_usec = locks[i].until_usec,
                        .level = locks[i].level,
                        .last_lock_usec = locks[i].last_lock_usec,
                        .cleared_usec = locks[i].cleared_usec,
                        .failures = locks[i].failures,
                };
                struct sg_audit_event ev = attempt_event(c, "lockout", row.kind);
                char detail[512];
                int r;

                r = sg_store_lock_put(c->m->store, &row);
                if (r < 0)
                        return r;
                /* The key names a pseudonym, never a sealed name (see counted_user). */
                snprintf(detail, sizeof detail, "%s %s locked for %" PRIu64 " s after %u failures (level %u)",
                         row.kind, row.key, (row.until_usec - row.last_lock_usec) / 1000000,
                         row.failures, row.level);
                ev.detail = detail;
                r = manager_emit(c->m, &ev, !c->user_known);
                if (r < 0)
                        return r;
        }
        return 0;
}

static void set_counted_user(Conn *c) {
        Manager *m = c->m;
        crypto_auth_hmacsha256_state st;
        uint8_t mac[crypto_auth_hmacsha256_BYTES];
        static const char context[] = "secguard pseudonym v1";

        if (c->user_known || !m->have_seal_pk) {
                snprintf(c->counted_user, sizeof c->counted_user, "%s", c->user);
                return;
        }
        crypto_auth_hmacsha256_init(&st, m->audit_key, SG_AUDIT_KEY_BYTES);
        crypto_auth_hmacsha256_update(&st, (const unsigned char *) context, sizeof context);
        crypto_auth_hmacsha256_update(&st, (const unsigned char *) c->user, strlen(c->user));
        crypto_auth_hmacsha256_final(&st, mac);
        c->counted_user[0] = '~';
        sodium_bin2hex(c->counted_user + 1, sizeof c->counted_user - 1, mac, 12);
        sodium_memzero(&st, sizeof st);
        sodium_memzero(mac, sizeof mac);
}

static bool attempt_fields_valid(const Conn *c) {
        return sg_valid_user(c->user) && sg_valid_service(c->service) &&
               (c->rhost[0] == '\0' || sg_valid_rhost(c->rhost)) && sg_valid_tty(c->tty);
}

static int on_precheck(Conn *c, const struct sg_msg *msg) {
        Manager *m = c->m;
        struct sg_lock_info locks[SG_LOCK_KIND_MAX];
        struct sg_verdict v;
        struct sg_audit_event ev;
        char source[320];
        size_t n_locks = 0;
        uint64_t now = sg_now_real_usec();
        int r;

        if (c->attempt_open)
                return conn_send_error(c, SG_ERR_STATE, "attempt already open");
        c->login = true;
        copy_field(c->user, msg, SG_F_USER);
        copy_field(c->rhost, msg, SG_F_RHOST);
        copy_field(c->tty, msg, SG_F_TTY);
        copy_field(c->service, msg, SG_F_SERVICE);
        c->user_known = sg_msg_u64(msg, SG_F_USER_KNOWN, 0) == 1;

        r = login_store_result(c, manager_tx(m));
        if (r < 0)
                return r;

        /* Validated again here: the module is trusted to be root, not to be bug-free. */
        if (!attempt_fields_valid(c) ||
            sg_source_key(c->rhost, m->config.ipv6_prefix, source, sizeof source) < 0) {
                ev = attempt_event(c, "auth_failure", "invalid_input");
                r = login_store_result(c, manager_emit(m, &ev, true));
                if (r < 0)
                        return r;
                return reply_decision(c, SG_DECISION_DENY, 0);
        }

        set_counted_user(c);
        sg_policy_reserve(m->policy, c->counted_user, c->rhost, now, &v, locks, SG_LOCK_KIND_MAX, &n_locks);
        if (!v.allowed) {
                char detail[128], until[40];

                ev = attempt_event(c, "auth_blocked", "locked");
                sg_format_time(v.until_usec, until, sizeof until);
                snprintf(detail, sizeof detail, "%s lock until %s", sg_lock_kind_name(v.kind), until);
                ev.detail = detail;
                r = login_store_result(c, manager_emit(m, &ev, !c->user_known));
                if (r < 0)
                        return r;
                /* The delay a wrong password would get now: a lock must not show by timing. */
                return reply_decision(c, SG_DECISION_DENY, v.delay_ms);
        }

        c->attempt_id = 0;
        r = login_store_result(c, sg_store_attempt_add(m->store, now, c->counted_user, source,
                                                       SG_ATTEMPT_PENDING, &c->attempt_id));
        if (r < 0)
                return r;
        c->attempt_open = true;
        c->reservation = v.reservation;
        c->delay_ms = v.delay_ms;
        r = login_store_result(c, emit_new_locks(c, locks, n_locks));
        if (r < 0)
                return r;

        if (m->permits_used < m->permits_max && !m->wait_head) {
                permit_grant(c);
                return 0;
        }
        permit_wait(c);
        return 0;
}

/* Settles the open attempt: policy, store, audit, permit. */
static int attempt_settle(Conn *c, bool success, const char *reason) {
        Manager *m = c->m;
        struct sg_audit_event ev;
        int r;

        c->attempt_open = false;
        sg_policy_settle(m->policy, c->counted_user, c->rhost, c->reservation, success, sg_now_real_usec());
        permits_release(m, c);
        r = login_store_result(c, manager_tx(m));
        if (r < 0)
                return r;
        if (c->attempt_id > 0) {
                r = login_store_result(c, sg_store_attempt_settle(m->store, c->attempt_id,
                                       success ? SG_ATTEMPT_SUCCESS : SG_ATTEMPT_FAILURE));
                if (r < 0)
                        return r;
        }
        ev = attempt_event(c, success ? "auth_success" : "auth_failure", success ? NULL : reason);
        return login_store_result(c, manager_emit(m, &ev, !success && !c->user_known));
}

void request_abandon(Conn *c) {
        int r = attempt_settle(c, false, "abandoned");

        if (r < 0)
                log_error_errno(r, "recording an abandoned attempt failed");
}

static int on_report(Conn *c, const struct sg_msg *msg) {
        uint64_t result = sg_msg_u64(msg, SG_F_RESULT, 0);
        const char *reason = sg_msg_str(msg, SG_F_REASON);
        struct sg_writer w;
        int r;

        if (!c->attempt_open)
                return conn_send_error(c, SG_ERR_STATE, "no attempt open");
        if (result != SG_RESULT_SUCCESS && result != SG_RESULT_FAILURE)
                return conn_send_error(c, SG_ERR_INVALID, "bad result");
        if (result == SG_RESULT_FAILURE && (!reason || !sg_event_reason_valid(reason)))
                reason = "bad_password";
        r = attempt_settle(c, result == SG_RESULT_SUCCESS, reason);
        if (r < 0)
                return r;
        sg_writer_init(&w, SG_MSG_OK);
        r = conn_send(c, &w);
        /* The module accepts the login only once this answer arrives: until it is handed to
         * the kernel, a hang-up means the user was refused after all (request_ack_lost). */
        if (r >= 0 && result == SG_RESULT_SUCCESS && c->out_off < c->out_len)
                c->success_unacked = true;
        return r;
}

void request_ack_lost(Conn *c) {
        struct sg_audit_event ev;
        int r;

        c->success_unacked = false;
        ev = attempt_event(c, "auth_failure", "abandoned");
        ev.detail = "the success above was never delivered: the module had given up waiting "
                    "(timeout_ms) and refused the login";
        r = manager_emit(c->m, &ev, false);
        if (r < 0)
                log_error_errno(r, "recording an undelivered success failed");
}

static int on_event(Conn *c, const struct sg_msg *msg) {
        const char *event = sg_msg_str(msg, SG_F_EVENT);
        const char *reason = sg_msg_str(msg, SG_F_REASON);
        struct sg_audit_event ev = peer_event(c, event);
        struct sg_writer w;
        char user[SG_FIELD_WIRE_MAX + 1], service[SG_FIELD_WIRE_MAX + 1];
        char rhost[SG_FIELD_WIRE_MAX + 1], tty[SG_FIELD_WIRE_MAX + 1];
        int r;

        /* Only the events the module witnesses; the daemon's own are never forged. */
        if (strcmp(event, "password_changed") != 0 && strcmp(event, "hash_upgraded") != 0)
                return conn_send_error(c, SG_ERR_INVALID, "event not accepted from clients");
        copy_field(user, msg, SG_F_USER);
        copy_field(service, msg, SG_F_SERVICE);
        copy_field(rhost, msg, SG_F_RHOST);
        copy_field(tty, msg, SG_F_TTY);
        if (!sg_valid_user(user) || (service[0] && !sg_valid_service(service)) ||
            (rhost[0] && !sg_valid_rhost(rhost)) || !sg_valid_tty(tty) ||
            (reason && !sg_event_reason_valid(reason)))
                return conn_send_error(c, SG_ERR_INVALID, "invalid field");
        ev.user = user;
        ev.service = service[0] ? service : NULL;
        ev.rhost = rhost[0] ? rhost : NULL;
        ev.tty = tty[0] ? tty : NULL;
        ev.reason = reason;
        ev.detail = sg_msg_str(msg, SG_F_DETAIL);
        if (ev.detail && !sg_no_control(ev.detail, strlen(ev.detail)))
                return conn_send_error(c, SG_ERR_INVALID, "invalid field");
        r = manager_tx(c->m);
        if (r < 0)
                return r;
        r = manager_emit(c->m, &ev, false);
        if (r < 0)
                return r;
        sg_writer_init(&w, SG_MSG_OK);
        return conn_send(c, &w);
}

static int on_account(Conn *c, const struct sg_msg *msg) {
        struct sg_verdict v = { .allowed = true };
        struct sg_writer w;
        char user[SG_FIELD_WIRE_MAX + 1], rhost[SG_FIELD_WIRE_MAX + 1];

        copy_field(user, msg, SG_F_USER);
        copy_field(rhost, msg, SG_F_RHOST);
        if (!sg_valid_user(user) || (rhost[0] && !sg_valid_rhost(rhost)))
                return reply_decision(c, SG_DECISION_DENY, 0);
        if (c->m->config.account_locks &&
            sg_policy_is_locked(c->m->policy, user, rhost, sg_now_real_usec(), &v))
                return reply_decision(c, SG_DECISION_DENY, 0);
        sg_writer_init(&w, SG_MSG_OK);
        sg_writer_u64(&w, SG_F_DECISION, SG_DECISION_ALLOW);
        return conn_send(c, &w);
}

/* ---- admin views ---- */

static int on_status(Conn *c, const struct sg_msg *msg) {
        Manager *m = c->m;
        struct sg_writer w;
        uint64_t rows = 0;
        char *dump;
        int r;

        (void) msg;
        r = sg_store_audit_count(m->store, &rows);
        if (r < 0)
                return r;
        dump = malloc(16384);
        if (!dump)
                return -ENOMEM;
        r = sg_config_dump(&m->config, dump, 16384);
        if (r < 0) {
                free(dump);
                return r;
        }
        sg_writer_init(&w, SG_MSG_OK);
        sg_writer_str(&w, SG_F_VERSION, SECGUARD_VERSION);
        sg_writer_u64(&w, SG_F_UPTIME, (sg_now_mono_usec() - m->start_mono_usec) / 1000000);
        sg_writer_u64(&w, SG_F_LOCKS, sg_policy_lock_count(m->policy, sg_now_real_usec()));
        sg_writer_u64(&w, SG_F_SESSIONS, 0);
        sg_writer_u64(&w, SG_F_AUDIT_ROWS, rows);
        sg_writer_u64(&w, SG_F_PERMITS, m->permits_used);
        sg_writer_u64(&w, SG_F_PERMITS_MAX, m->permits_max);
        sg_writer_str(&w, SG_F_CONFIG, dump);
        free(dump);
        return conn_send(c, &w);
}

static int send_lock_row(void *userdata, const struct sg_lock_info *l) {
        Conn *c = userdata;
        struct sg_writer w;

        sg_writer_init(&w, SG_MSG_ROW);
        sg_writer_str(&w, SG_F_KIND, sg_lock_kind_name(l->kind));
        sg_writer_str(&w, SG_F_KEY, l->key);
        sg_writer_u64(&w, SG_F_FAILURES, l->failures);
        sg_writer_u64(&w, SG_F_UNTIL, l->until_usec);
        sg_writer_u64(&w, SG_F_COUNT, l->level);
        return conn_send(c, &w);
}

static int on_locks(Conn *c, const struct sg_msg *msg) {
        struct sg_writer w;
        uint64_t now = sg_now_real_usec();
        int r;

        (void) msg;
        r = sg_policy_foreach_lock(c->m->policy, now, send_lock_row, c);
        if (r < 0)
                return r;
        sg_writer_init(&w, SG_MSG_OK);
        sg_writer_u64(&w, SG_F_COUNT, sg_policy_lock_count(c->m->policy, now));
        return conn_send(c, &w);
}

struct unlock_count {
        Conn *c;
        unsigned locks, keys; /* locks in force lifted; keys cleared (locks or counters) */
};

static int unlock_persist(void *userdata, const struct sg_lock_info *info, bool was_locked) {
        struct unlock_count *u = userdata;
        struct sg_lock_row row = {
                .kind = sg_lock_kind_name(info->kind), .key = info->key, .until_usec = info->until_usec,
                .level = info->level, .last_lock_usec = info->last_lock_usec,
                .cleared_usec = info->cleared_usec, .failures = info->failures,
        };

        u->keys++;
        u->locks += was_locked;
        return sg_store_lock_put(u->c->m->store, &row);
}

static int unlock_one(struct unlock_count *u, enum sg_lock_kind kind, const char *key) {
        struct sg_lock_info info;
        int r;

        r = sg_policy_unlock(u->c->m->policy, kind, key, sg_now_real_usec(), &info);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        return unlock_persist(u, &info, r > 0);
}

/* `unlock USER` means the user everywhere: the user's own key and every (user, source);
 * `unlock --rhost` the source everywhere: its own keys and every (user, that source). */
static int on_unlock(Conn *c, const struct sg_msg *msg) {
        const char *kind = sg_msg_str(msg, SG_F_KIND), *key = sg_msg_str(msg, SG_F_KEY);
        struct sg_audit_event ev = peer_event(c, "unlock");
        struct unlock_count u = { .c = c };
        struct sg_writer w;
        char source[320], detail[128];
        int r;

        r = manager_tx(c->m);
        if (r < 0)
                return r;
        if (strcmp(kind, "user") == 0) {
                if (!sg_valid_user(key))
                        return conn_send_error(c, SG_ERR_INVALID, "invalid user name");
                r = unlock_one(&u, SG_LOCK_USER, key);
                if (r >= 0)
                        r = sg_policy_unlock_pairs(c->m->policy, key, NULL, sg_now_real_usec(),
                                                   unlock_persist, &u);
                ev.user = key;
        } else if (strcmp(kind, "source") == 0) {
                /* An address, or a host name as sshd with UseDNS yes reports it. */
                if (!*key || !sg_valid_rhost(key) ||
                    sg_source_key(key, c->m->config.ipv6_prefix, source, sizeof source) < 0)
                        return conn_send_error(c, SG_ERR_INVALID, "invalid address or host name");
                r = unlock_one(&u, SG_LOCK_SOURCE, source);
                if (r >= 0)
                        r = unlock_one(&u, SG_LOCK_SPRAY, source);
                if (r >= 0)
                        r = sg_policy_unlock_pairs(c->m->policy, NULL, source, sg_now_real_usec(),
                                                   unlock_persist, &u);
                ev.rhost = key;
        } else
                return conn_send_error(c, SG_ERR_INVALID, "kind must be user or source");
        if (r < 0)
                return r;
        if (u.keys == 0)
                return conn_send_error(c, SG_ERR_NOT_FOUND, "no lock or failures recorded");
        snprintf(detail, sizeof detail, "%u locks cleared, failures reset on %u keys", u.locks, u.keys);
        ev.detail = detail;
        r = manager_emit(c->m, &ev, false);
        if (r < 0)
                return r;
        sg_writer_init(&w, SG_MSG_OK);
        sg_writer_u64(&w, SG_F_COUNT, u.locks);
        sg_writer_str(&w, SG_F_DETAIL, detail);
        return conn_send(c, &w);
}

static int send_audit_row(void *userdata, const struct sg_audit_row *row) {
        Conn *c = userdata;
        const struct sg_audit_event *e = &row->ev;
        struct sg_writer w;

        sg_writer_init(&w, SG_MSG_ROW);
        sg_writer_u64(&w, SG_F_ID, row->id);
        sg_writer_u64(&w, SG_F_TIME, e->time_usec);
        sg_writer_str(&w, SG_F_EVENT, e->event);
        if (e->reason)
                sg_writer_str(&w, SG_F_REASON, e->reason);
        if (e->user)
                sg_writer_strn(&w, SG_F_USER, e->user, strnlen(e->user, SG_FIELD_WIRE_MAX));
        if (e->user_sealed)
                sg_writer_bytes(&w, SG_F_SEALED, e->user_sealed, e->user_sealed_len);
        if (e->service)
                sg_writer_strn(&w, SG_F_SERVICE, e->service, strnlen(e->service, SG_FIELD_WIRE_MAX));
        if (e->rhost)
                sg_writer_strn(&w, SG_F_RHOST, e->rhost, strnlen(e->rhost, SG_FIELD_WIRE_MAX));
        if (e->tty)
                sg_writer_strn(&w, SG_F_TTY, e->tty, strnlen(e->tty, SG_FIELD_WIRE_MAX));
        if (e->pid >= 0)
                sg_writer_u64(&w, SG_F_PID, (uint64_t) e->pid);
        if (e->uid >= 0)
                sg_writer_u64(&w, SG_F_UID, (uint64_t) e->uid);
        if (e->session_id)
                sg_writer_strn(&w, SG_F_SESSION_ID, e->session_id, strnlen(e->session_id, 64));
        if (e->detail)
                sg_writer_strn(&w, SG_F_DETAIL, e->detail, strnlen(e->detail, 1024));
        return conn_send(c, &w);
}

static int on_audit_query(Conn *c, const struct sg_msg *msg) {
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
                return conn_send_error(c, SG_ERR_INVALID, "limit must be 1..100000");
        r = sg_store_audit_query(c->m->store, &f, send_audit_row, c);
        if (r == -ENOBUFS)
                return conn_send_error(c, SG_ERR_INVALID, "result too large; lower --limit");
        if (r < 0)
                return r;
        sg_writer_init(&w, SG_MSG_OK);
        return conn_send(c, &w);
}

static int on_audit_verify(Conn *c, const struct sg_msg *msg) {
        struct sg_writer w;
        uint64_t bad = 0, rows = 0;
        char detail[512] = "";
        int r;

        (void) msg;
        r = sg_store_audit_verify(c->m->store, &bad, detail, sizeof detail);
        if (r == -EBADMSG) {
                /* SQLite itself found the file damaged: that is a failed verification too. */
                snprintf(detail, sizeof detail, "the database file is damaged (SQLite reports corruption); "
                         "restore it from a backup and compare");
                r = 1;
        }
        if (r < 0)
                return r;
        (void) sg_store_audit_count(c->m->store, &rows);
        sg_writer_init(&w, SG_MSG_OK);
        sg_writer_u64(&w, SG_F_RESULT, r == 0 ? SG_RESULT_SUCCESS : SG_RESULT_FAILURE);
        sg_writer_u64(&w, SG_F_AUDIT_ROWS, rows);
        if (r == 1) {
                sg_writer_u64(&w, SG_F_ID, bad);
                sg_writer_str(&w, SG_F_DETAIL, detail);
        }
        return conn_send(c, &w);
}
