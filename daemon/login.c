/* SPDX-License-Identifier: MIT */
/* Login requests: PRECHECK, REPORT, EVENT, ACCOUNT, and the attempt they share. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "events.h"
#include "io.h"
#include "lock-row.h"
#include "log.h"
#include "login.h"
#include "timefmt.h"
#include "tokenfmt.h"
#include "tokens.h"
#include "validate.h"

/* Local logins one user may have in progress at once (secguard.conf(5), permit_lease_ms). */
#define LOCAL_LOGINS_PER_UID 2

struct login_attempt {
        Client *cl;
        bool open;       /* reserved by PRECHECK, not yet settled */
        bool user_known; /* the module found the name in the shadow file */
        bool charged;    /* counted in the context's charges under invoker */
        uid_t invoker;   /* a local login's invoking user (0: root, or a remote login) */
        bool overloaded; /* answered OVERLOAD: the daemon could not serve it, it counts nowhere */
        uint64_t attempt_id, reservation;
        uint32_t delay_ms;
        /* After a successful REPORT: the bytes queued up to its answer. The module accepts
         * the login only once that answer arrives; if the connection ends before the kernel
         * took them, the user was refused after all. 0 = nothing to check. */
        uint64_t success_mark;
        /* After the go-ahead (ALLOW): the bytes queued up to it. Until the kernel has taken
         * them the module cannot have tried the password: an attempt that ends before that
         * (the module gave up waiting for a late daemon) counts nowhere. */
        uint64_t allow_mark;
        struct permit_req permit;
        char user[SG_FIELD_WIRE_MAX + 1], rhost[SG_FIELD_WIRE_MAX + 1];
        /* The name counters, locks and the attempts table use: the user name, or for a name
         * that matches no account while sealing is on, a keyed pseudonym ("~" + hex), so a
         * password typed into the user field is never stored or listed in clear. */
        char counted_user[SG_FIELD_WIRE_MAX + 1];
        char tty[SG_FIELD_WIRE_MAX + 1], service[SG_FIELD_WIRE_MAX + 1];
};

static void copy_field(char *dst, const struct sg_msg *msg, uint8_t tag) {
        const char *s = sg_msg_str(msg, tag);

        snprintf(dst, SG_FIELD_WIRE_MAX + 1, "%s", s ? s : "");
}

static struct sg_audit_event client_event(const Client *cl, const char *event) {
        const struct conn_peer *p = client_peer(cl);

        return (struct sg_audit_event) {
                .time_usec = sg_now_real_usec(),
                .event = event,
                .pid = p->pid,
                .uid = p->uid,
        };
}

static struct sg_audit_event attempt_event(const struct login_attempt *a, const char *event, const char *reason) {
        struct sg_audit_event ev = client_event(a->cl, event);

        ev.reason = reason;
        ev.user = a->user;
        ev.service = a->service[0] ? a->service : NULL;
        ev.rhost = a->rhost[0] ? a->rhost : NULL; /* NULL = local */
        ev.tty = a->tty[0] ? a->tty : NULL;
        return ev;
}

bool login_in_flight(const Client *cl) {
        const struct login_attempt *a = client_login(cl);

        return a && a->open;
}

bool login_store_error_tolerated(Client *cl, int r) {
        const struct login_attempt *a = client_login(cl);

        if (!a || a->rhost[0] != '\0' || client_ctx(cl)->config->disk_full != SG_DISKFULL_FAIL_REMOTE)
                return false;
        log_error_errno(r, "the store cannot record a local login of pid %d (see its events above); "
                        "letting it proceed ([daemon] disk_full = fail_remote)", (int) client_peer(cl)->pid);
        return true;
}

void login_store_failed(Client *cl, int r) {
        struct login_attempt *a = client_login(cl);
        const Context *x = client_ctx(cl);
        struct sg_audit_event ev;
        char detail[160];

        if (!a)
                return;
        a->success_mark = 0; /* a success not made durable is taken back */
        /* The store could not take it, journald still must: a login refused for a store
         * error is an event (disk_full = fail_remote refuses remote logins closed). */
        ev = attempt_event(a, "auth_failure", "daemon_error");
        snprintf(detail, sizeof detail, "the store failed (%s): login refused", strerror(-r));
        ev.detail = detail;
        sg_event_journal_only(&ev, !a->user_known && x->seal_pk);
}

/* r from a store write during a login: 0 to go on, r to fail the request. */
static int login_store_result(Client *cl, int r) {
        if (r >= 0 || login_store_error_tolerated(cl, r))
                return 0;
        return r;
}

/* Writes a lock the policy set or lifted to the store, in the group commit's transaction. */
static int put_lock_row(const Context *x, const struct sg_lock_info *info, struct sg_lock_row *row) {
        int r = sg_lock_row_from_info(info, row);

        if (r >= 0)
                r = txn_begin(x->txn);
        if (r >= 0)
                r = sg_store_lock_put(x->store, row);
        return r;
}

static int emit_new_locks(struct login_attempt *a, const struct sg_lock_info *locks, size_t n) {
        const Context *x = client_ctx(a->cl);

        for (size_t i = 0; i < n; i++) {
                struct sg_lock_row row;
                struct sg_audit_event ev;
                char detail[512];
                int r;

                r = put_lock_row(x, &locks[i], &row);
                if (r < 0)
                        return r;
                ev = attempt_event(a, "lockout", row.kind);
                /* The key names a pseudonym, never a sealed name (see counted_user). */
                snprintf(detail, sizeof detail, "%s %s locked for %" PRIu64 " s after %u failures (level %u)",
                         row.kind, row.key, (row.until_usec - row.last_lock_usec) / 1000000,
                         row.failures, row.level);
                ev.detail = detail;
                r = context_emit(x, &ev, !a->user_known);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* The locks this attempt had created and its end lifted (docs/state.md, "Lifted locks"): the
 * row written back, and an `unlock` row with reason `lifted` each, so the trail (and the
 * fleet, which published the `lockout`) learns the lock is gone. Replay writes neither: the
 * row written back holds until 0, so replay finds nothing left to lift. */
static int emit_lifted_locks(struct login_attempt *a, const struct sg_lock_info *locks, size_t n) {
        const Context *x = client_ctx(a->cl);

        for (size_t i = 0; i < n; i++) {
                struct sg_lock_row row;
                struct sg_audit_event ev;
                char detail[512];
                int r;

                r = put_lock_row(x, &locks[i], &row);
                if (r < 0)
                        return r;
                ev = attempt_event(a, "unlock", "lifted");
                /* A source or spray key is the source itself: the fleet helper reads it here. */
                if (locks[i].kind == SG_LOCK_SOURCE || locks[i].kind == SG_LOCK_SPRAY)
                        ev.rhost = row.key;
                /* fleet/fleet-util.c (fleet_parse_lifted) reads "KIND KEY lock lifted". */
                snprintf(detail, sizeof detail, "%s %s lock lifted: the attempt that set it %s", row.kind, row.key,
                         a->overloaded ? "was void (the daemon could not serve it)" : "succeeded");
                ev.detail = detail;
                r = context_emit(x, &ev, !a->user_known);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* The name attempts of user are counted under: the user itself when known (or with no sealing
 * key), else a keyed pseudonym, so a password typed as a user name is never a key. */
static void counted_user_of(const Context *x, const char *user, bool known, char out[static SG_FIELD_WIRE_MAX + 1]) {
        crypto_auth_hmacsha256_state st;
        uint8_t mac[crypto_auth_hmacsha256_BYTES];
        static const char context[] = "secguard pseudonym v1";

        if (known || !x->seal_pk) {
                snprintf(out, SG_FIELD_WIRE_MAX + 1, "%s", user);
                return;
        }
        crypto_auth_hmacsha256_init(&st, x->audit_key, SG_AUDIT_KEY_BYTES);
        crypto_auth_hmacsha256_update(&st, (const unsigned char *) context, sizeof context);
        crypto_auth_hmacsha256_update(&st, (const unsigned char *) user, strlen(user));
        crypto_auth_hmacsha256_final(&st, mac);
        out[0] = '~';
        sodium_bin2hex(out + 1, SG_FIELD_WIRE_MAX, mac, 12);
        sodium_memzero(&st, sizeof st);
        sodium_memzero(mac, sizeof mac);
}

static void set_counted_user(struct login_attempt *a) {
        counted_user_of(client_ctx(a->cl), a->user, a->user_known, a->counted_user);
}

static bool attempt_fields_valid(const struct login_attempt *a) {
        return sg_valid_user(a->user) && sg_valid_service(a->service) &&
               (a->rhost[0] == '\0' || sg_valid_rhost(a->rhost)) && sg_valid_tty(a->tty);
}

static int attempt_settle(struct login_attempt *a, bool success, const char *reason, const char *detail);

static struct login_attempt *attempt_of(struct permit_req *p) {
        return (struct login_attempt *) ((char *) p - offsetof(struct login_attempt, permit));
}

/* The go-ahead: the module may hash now. */
static int send_allow(struct login_attempt *a) {
        int r = client_send_decision(a->cl, SG_DECISION_ALLOW, a->delay_ms);

        if (r >= 0) {
                a->allow_mark = conn_queued_bytes(client_conn(a->cl));
                client_mark_urgent(a->cl);
        }
        return r;
}

static void on_permit_granted(struct permit_req *p) {
        struct login_attempt *a = attempt_of(p);

        (void) send_allow(a);
        client_finish(a->cl);
}

/* The attempt stays reserved until the module reports it as an `overload` failure, which
 * settles it void (see attempt_outcome). It waits the delay the attempt was given, as a wrong
 * password would: overload is no signal. */
static void on_permit_expired(struct permit_req *p) {
        struct login_attempt *a = attempt_of(p);

        a->overloaded = true;
        (void) client_send_decision(a->cl, SG_DECISION_OVERLOAD, a->delay_ms);
        client_finish(a->cl);
}

/* The client held its permit past the lease (stopped, or hung): the permit went to the next
 * login; the attempt ends as abandoned and the connection is closed. */
static void on_lease_expired(struct permit_req *p) {
        struct login_attempt *a = attempt_of(p);
        char detail[128];
        int r;

        snprintf(detail, sizeof detail, "pid %d held a hash permit past permit_lease_ms (%u ms): taken back",
                 (int) client_peer(a->cl)->pid, client_ctx(a->cl)->config->permit_lease_ms);
        log_notice("%s", detail);
        r = attempt_settle(a, false, "abandoned", detail);
        if (r < 0)
                log_error_errno(r, "recording an attempt whose lease ran out failed");
        client_close(a->cl);
}

static struct login_attempt *attempt_get(Client *cl) {
        struct login_attempt *a = client_login(cl);

        if (a)
                return a;
        a = calloc(1, sizeof *a);
        if (!a)
                return NULL;
        a->cl = cl;
        a->permit.granted = on_permit_granted;
        a->permit.expired = on_permit_expired;
        a->permit.lease_expired = on_lease_expired;
        client_set_login(cl, a);
        return a;
}

/* Writes a row any guesser gets for free (blocked, invalid) unless its source's bucket
 * (peers.h) is empty: then it is counted and summarised later. source NULL: an rhost that
 * cannot be grouped, limited with the peer's uid instead. */
static int emit_free_row(struct login_attempt *a, const char *source, enum sg_peer_event kind,
                         const struct sg_audit_event *ev, bool user_unknown) {
        const Context *x = client_ctx(a->cl);
        struct sg_peer_summary s[SG_PEER_SUMMARY_MAX];
        enum sg_peer_verdict v;
        size_t n = 0;

        if (source)
                v = sg_peers_source_event(x->peers, source, kind, sg_now_mono_usec(), s, &n);
        else
                v = sg_peers_event(x->peers, (uint32_t) client_peer(a->cl)->uid, kind, sg_now_mono_usec(), s, &n);
        context_emit_summaries(x, s, n);
        if (v == SG_PEER_SUPPRESS_FIRST)
                log_warning("%s causes more than %u %s rows at once (then 1/s): the rest are counted and "
                            "summarized", source ? (source[0] ? source : "local logins") : "an ungroupable rhost",
                            SG_PEER_BURST, sg_peer_event_name(kind));
        if (v != SG_PEER_WRITE)
                return 0;
        return login_store_result(a->cl, context_emit(x, ev, user_unknown));
}

/* Locked or paced: no hash, the same DENY and delay a wrong password would get now. */
static int attempt_blocked(struct login_attempt *a, const char *source, const struct sg_verdict *v) {
        struct sg_audit_event ev = attempt_event(a, "auth_blocked", v->paced ? "paced" : "locked");
        char detail[128], until[40];
        int r;

        sg_format_time(v->until_usec, until, sizeof until);
        if (v->paced)
                snprintf(detail, sizeof detail, "user paced: next attempt admitted at %s", until);
        else
                snprintf(detail, sizeof detail, "%s lock until %s", sg_lock_kind_name(v->kind), until);
        ev.detail = detail;
        r = emit_free_row(a, source, v->paced ? SG_PEER_AUTH_PACED : SG_PEER_AUTH_BLOCKED, &ev, !a->user_known);
        if (r < 0)
                return r;
        return client_send_decision(a->cl, SG_DECISION_DENY, v->delay_ms);
}

/* Invalid input costs what a wrong password costs its source (policy.h,
 * SG_POLICY_INVALID_USER), without a hash: otherwise garbage names would be free rows in the
 * audit table. */
static int attempt_invalid(struct login_attempt *a, const char *source, uint64_t now) {
        const Context *x = client_ctx(a->cl);
        struct sg_lock_info locks[SG_POLICY_NEW_LOCKS_MAX];
        struct sg_audit_event ev;
        struct sg_verdict v = { .allowed = true };
        size_t n_locks = 0;
        int r;

        if (source) {
                snprintf(a->counted_user, sizeof a->counted_user, "%s", SG_POLICY_INVALID_USER);
                sg_policy_reserve(x->policy, a->counted_user, a->rhost, now, &v, locks, SG_POLICY_NEW_LOCKS_MAX, &n_locks);
                if (!v.allowed)
                        return attempt_blocked(a, source, &v);
                sg_policy_settle(x->policy, a->counted_user, a->rhost, v.reservation, SG_OUTCOME_FAILURE, now,
                                 NULL, 0, NULL);
                r = login_store_result(a->cl, sg_store_attempt_add(x->store, now, a->counted_user, source,
                                                                   SG_ATTEMPT_FAILURE, NULL));
                if (r < 0)
                        return r;
                a->user_known = false;
                r = login_store_result(a->cl, emit_new_locks(a, locks, n_locks));
                if (r < 0)
                        return r;
        }
        ev = attempt_event(a, "auth_failure", "invalid_input");
        r = emit_free_row(a, source, SG_PEER_AUTH_INVALID, &ev, true);
        if (r < 0)
                return r;
        return client_send_decision(a->cl, SG_DECISION_DENY, v.delay_ms);
}

int login_precheck(Client *cl, const struct sg_msg *msg) {
        const Context *x = client_ctx(cl);
        struct sg_lock_info locks[SG_POLICY_NEW_LOCKS_MAX];
        struct login_attempt *a;
        struct sg_verdict v;
        char source[320];
        size_t n_locks = 0;
        uint64_t now = sg_now_real_usec();
        int r;

        a = attempt_get(cl);
        if (!a)
                return -ENOMEM;
        if (a->open)
                return client_send_error(cl, SG_ERR_STATE, "attempt already open");
        copy_field(a->user, msg, SG_F_USER);
        copy_field(a->rhost, msg, SG_F_RHOST);
        copy_field(a->tty, msg, SG_F_TTY);
        copy_field(a->service, msg, SG_F_SERVICE);
        a->user_known = sg_msg_u64(msg, SG_F_USER_KNOWN, 0) == 1;
        a->success_mark = a->allow_mark = 0;
        a->overloaded = false;

        r = login_store_result(cl, txn_begin(x->txn));
        if (r < 0)
                return r;

        /* Validated again here: the module is trusted to be root, not to be bug-free. */
        if ((a->rhost[0] != '\0' && !sg_valid_rhost(a->rhost)) ||
            sg_source_key(a->rhost, x->config->ipv6_prefix, source, sizeof source) < 0)
                return attempt_invalid(a, NULL, now); /* nothing to count it toward */
        if (!attempt_fields_valid(a))
                return attempt_invalid(a, source, now);

        set_counted_user(a);
        /* A local login is charged to the user who started su or sudo: a few at a time, and
         * such logins share only part of the hash permits. */
        a->invoker = a->rhost[0] ? 0 : conn_peer_invoker(client_conn(cl));
        a->permit.limited = a->invoker != 0;
        if (a->invoker != 0 && charges_count(x->charges, a->invoker) >= LOCAL_LOGINS_PER_UID) {
                struct sg_audit_event ev;
                char detail[128];

                ev = attempt_event(a, "auth_failure", "overload");
                snprintf(detail, sizeof detail, "uid %u has %u local logins in progress already",
                         (unsigned) a->invoker, LOCAL_LOGINS_PER_UID);
                ev.detail = detail;
                r = login_store_result(cl, context_emit(x, &ev, !a->user_known));
                if (r < 0)
                        return r;
                return client_send_decision(cl, SG_DECISION_DENY, 0);
        }
        sg_policy_reserve(x->policy, a->counted_user, a->rhost, now, &v, locks, SG_POLICY_NEW_LOCKS_MAX, &n_locks);
        if (!v.allowed)
                return attempt_blocked(a, source, &v);

        a->attempt_id = 0;
        r = login_store_result(cl, sg_store_attempt_add(x->store, now, a->counted_user, source,
                                                        SG_ATTEMPT_PENDING, &a->attempt_id));
        if (r < 0)
                return r;
        a->open = true;
        a->charged = a->invoker != 0 && charges_take(x->charges, a->invoker, UINT_MAX);
        a->reservation = v.reservation;
        a->delay_ms = v.delay_ms;
        r = login_store_result(cl, emit_new_locks(a, locks, n_locks));
        if (r < 0)
                return r;

        if (permits_acquire(x->permits, &a->permit, sg_now_mono_usec()))
                return send_allow(a);
        return REQUEST_PENDING;
}

bool login_precheck_refused(Client *cl, const struct sg_msg *msg) {
        const Context *x = client_ctx(cl);
        char user[SG_FIELD_WIRE_MAX + 1], rhost[SG_FIELD_WIRE_MAX + 1], counted[SG_FIELD_WIRE_MAX + 1];
        bool locked;

        copy_field(user, msg, SG_F_USER);
        copy_field(rhost, msg, SG_F_RHOST);
        counted_user_of(x, user, sg_msg_u64(msg, SG_F_USER_KNOWN, 0) == 1, counted);
        /* An rhost the policy cannot key is refused too: sg_policy_is_locked() says locked. */
        locked = sg_policy_is_locked(x->policy, counted, rhost, sg_now_real_usec(), NULL);
        sodium_memzero(user, sizeof user); /* may hold a password typed as a user name */
        sodium_memzero(counted, sizeof counted);
        return locked;
}

static enum sg_attempt_state attempt_state(enum sg_outcome outcome) {
        switch (outcome) {
        case SG_OUTCOME_SUCCESS:
                return SG_ATTEMPT_SUCCESS;
        case SG_OUTCOME_VOID:
                return SG_ATTEMPT_VOID;
        default:
                return SG_ATTEMPT_FAILURE;
        }
}

/* A failure the daemon caused counts toward no lock: only an attempt this daemon answered
 * OVERLOAD is void, whatever reason the module gives (it is trusted to be root, not to be
 * bug-free). Otherwise a victim retrying during a flood would lock himself out. */
static enum sg_outcome attempt_outcome(const struct login_attempt *a, bool success) {
        if (success)
                return SG_OUTCOME_SUCCESS;
        return a->overloaded ? SG_OUTCOME_VOID : SG_OUTCOME_FAILURE;
}

/* Settles the open attempt: policy, permit, charge, store, audit. */
static int attempt_settle(struct login_attempt *a, bool success, const char *reason, const char *detail) {
        Client *cl = a->cl;
        const Context *x = client_ctx(cl);
        enum sg_outcome outcome = attempt_outcome(a, success);
        struct sg_lock_info lifted[SG_POLICY_NEW_LOCKS_MAX];
        struct sg_audit_event ev;
        size_t n_lifted = 0;
        int r;

        a->open = false;
        sg_policy_settle(x->policy, a->counted_user, a->rhost, a->reservation, outcome, sg_now_real_usec(),
                         lifted, SG_POLICY_NEW_LOCKS_MAX, &n_lifted);
        permits_release(x->permits, &a->permit);
        if (a->charged)
                charges_drop(x->charges, a->invoker);
        a->charged = false;
        r = login_store_result(cl, txn_begin(x->txn));
        if (r < 0)
                return r;
        if (a->attempt_id > 0) {
                r = login_store_result(cl, sg_store_attempt_settle(x->store, a->attempt_id,
                                                                   attempt_state(outcome)));
                if (r < 0)
                        return r;
        }
        ev = attempt_event(a, success ? "auth_success" : "auth_failure", success ? NULL : reason);
        ev.detail = detail;
        r = login_store_result(cl, context_emit(x, &ev, !success && !a->user_known));
        if (r < 0)
                return r;
        return login_store_result(cl, emit_lifted_locks(a, lifted, n_lifted));
}

/* Failures a token may turn into a success: the name is in the shadow file and the typed
 * text did not verify against its hash, or the account has no password yet ("!" or "*" alone:
 * a new account), or the text was longer than [auth] password_max_len allows a password. Not
 * a hash locked by passwd -l ("!" before it, reason locked_hash): a lock stays a lock. */
static bool token_may_redeem(const char *reason) {
        return strcmp(reason, "bad_password") == 0 || strcmp(reason, "no_password") == 0 ||
               strcmp(reason, "password_too_long") == 0;
}

/* A one-time token typed at the password prompt: the module checked the password as usual
 * (same work, same timing) and reports the failure with what was typed; the daemon, which
 * holds the key, decides, for a name the module found (token_may_redeem) on an attempt the
 * daemon served. On success *ret_id is the token's id and the attempt becomes a success;
 * otherwise the failure counts like any wrong password, reason bad_token, the detail saying
 * why. */
static int attempt_redeem(struct login_attempt *a, const char *token, const char *reason, uint64_t *ret_id,
                          const char **ret_reason, char *detail, size_t detailsize) {
        const Context *x = client_ctx(a->cl);
        enum token_verdict v;
        char idt[SG_TOKEN_ID_TEXT_LEN + 1];
        uint64_t id = 0;
        int r;

        *ret_id = 0;
        if (!a->user_known || a->overloaded || !token_may_redeem(reason)) {
                snprintf(detail, detailsize, "a token was typed; not checked (%s)", reason);
                return 0;
        }
        r = login_store_result(a->cl, txn_begin(x->txn));
        if (r >= 0)
                r = tokens_redeem(x->store, x->token_key, a->user, token, sg_now_real_usec(), &v, &id);
        if (r < 0)
                return r;
        sg_token_id_format(id, idt);
        if (v == TOKEN_OK) {
                *ret_id = id;
                snprintf(detail, detailsize, "with one-time token %s", idt);
                return 0;
        }
        *ret_reason = "bad_token";
        if (id)
                snprintf(detail, detailsize, "one-time token %s: %s", idt, token_verdict_str(v));
        else
                snprintf(detail, detailsize, "one-time token refused: %s", token_verdict_str(v));
        return 0;
}

/* token_used: after the success row, so the trail reads in order. */
static int emit_token_used(struct login_attempt *a, uint64_t id) {
        struct sg_audit_event ev = attempt_event(a, "token_used", NULL);
        char idt[SG_TOKEN_ID_TEXT_LEN + 1], detail[96];

        sg_token_id_format(id, idt);
        snprintf(detail, sizeof detail, "token %s: used; a new password is required", idt);
        ev.detail = detail;
        return login_store_result(a->cl, context_emit(client_ctx(a->cl), &ev, false));
}

int login_report(Client *cl, const struct sg_msg *msg) {
        struct login_attempt *a = client_login(cl);
        uint64_t result = sg_msg_u64(msg, SG_F_RESULT, 0), token_id = 0;
        const char *reason = sg_msg_str(msg, SG_F_REASON);
        /* The decoded request is ours to wipe: the token must not outlive this call. */
        char *token = (char *) sg_msg_str(msg, SG_F_TOKEN);
        char detail[128] = "";
        struct sg_writer w;
        int r;

        if (!a || !a->open)
                r = client_send_error(cl, SG_ERR_STATE, "no attempt open");
        else if (result != SG_RESULT_SUCCESS && result != SG_RESULT_FAILURE)
                r = client_send_error(cl, SG_ERR_INVALID, "bad result");
        else {
                if (result == SG_RESULT_FAILURE && (!reason || !sg_event_reason_valid(reason)))
                        reason = "bad_password";
                r = 0;
                if (token && result == SG_RESULT_FAILURE)
                        r = attempt_redeem(a, token, reason, &token_id, &reason, detail, sizeof detail);
                if (r >= 0)
                        r = attempt_settle(a, result == SG_RESULT_SUCCESS || token_id, reason,
                                           detail[0] ? detail : NULL);
                if (r >= 0 && token_id)
                        r = emit_token_used(a, token_id);
                if (r >= 0) {
                        sg_writer_init(&w, SG_MSG_OK);
                        if (token_id) /* the module's check failed; this says the token did not */
                                sg_writer_u64(&w, SG_F_RESULT, SG_RESULT_SUCCESS);
                        r = client_send(cl, &w);
                        if (r >= 0 && (result == SG_RESULT_SUCCESS || token_id))
                                a->success_mark = conn_queued_bytes(client_conn(cl));
                        if (r >= 0) /* the login's last wait: urgent as its ALLOW was */
                                client_mark_urgent(cl);
                }
        }
        if (token)
                sodium_memzero(token, strlen(token));
        return r;
}

/* The answer to a successful REPORT never reached the module (it hung up first, having given
 * up waiting): the user was refused after all. */
static void ack_lost(struct login_attempt *a) {
        struct sg_audit_event ev = attempt_event(a, "auth_failure", "abandoned");
        int r;

        ev.detail = "the success above was never delivered: the module had given up waiting "
                    "(timeout_ms) and refused the login";
        r = context_emit(client_ctx(a->cl), &ev, false);
        if (r < 0)
                log_error_errno(r, "recording an undelivered success failed");
}

void login_closed(Client *cl) {
        struct login_attempt *a = client_login(cl);
        int r;

        if (!a)
                return;
        if (a->open) {
                const char *detail = NULL;

                /* No go-ahead reached the module (it gave up waiting for the daemon, or for a
                 * permit): no password was tried, and the daemon's lateness is nobody's
                 * failure. */
                if (!a->allow_mark || conn_sent_bytes(client_conn(cl)) < a->allow_mark) {
                        a->overloaded = true;
                        detail = "the module gave up before the go-ahead reached it: no password was tried; "
                                 "counted toward no lock";
                }
                r = attempt_settle(a, false, "abandoned", detail);
                if (r < 0)
                        log_error_errno(r, "recording an abandoned attempt failed");
        }
        if (a->success_mark && conn_sent_bytes(client_conn(cl)) < a->success_mark)
                ack_lost(a);
        permits_release(client_ctx(cl)->permits, &a->permit);
        client_set_login(cl, NULL);
        sodium_memzero(a, sizeof *a);
        free(a);
}

int login_event(Client *cl, const struct sg_msg *msg) {
        const char *event = sg_msg_str(msg, SG_F_EVENT);
        const char *reason = sg_msg_str(msg, SG_F_REASON);
        struct sg_audit_event ev = client_event(cl, event);
        struct sg_writer w;
        char user[SG_FIELD_WIRE_MAX + 1], service[SG_FIELD_WIRE_MAX + 1];
        char rhost[SG_FIELD_WIRE_MAX + 1], tty[SG_FIELD_WIRE_MAX + 1];
        int r;

        /* Only the events the module witnesses; the daemon's own are never forged. */
        if (strcmp(event, "password_changed") != 0 && strcmp(event, "hash_upgraded") != 0)
                return client_send_error(cl, SG_ERR_INVALID, "event not accepted from clients");
        copy_field(user, msg, SG_F_USER);
        copy_field(service, msg, SG_F_SERVICE);
        copy_field(rhost, msg, SG_F_RHOST);
        copy_field(tty, msg, SG_F_TTY);
        if (!sg_valid_user(user) || (service[0] && !sg_valid_service(service)) ||
            (rhost[0] && !sg_valid_rhost(rhost)) || !sg_valid_tty(tty) ||
            (reason && !sg_event_reason_valid(reason)))
                return client_send_error(cl, SG_ERR_INVALID, "invalid field");
        ev.user = user;
        ev.service = service[0] ? service : NULL;
        ev.rhost = rhost[0] ? rhost : NULL;
        ev.tty = tty[0] ? tty : NULL;
        ev.reason = reason;
        ev.detail = sg_msg_str(msg, SG_F_DETAIL);
        if (ev.detail && !sg_no_control(ev.detail, strlen(ev.detail)))
                return client_send_error(cl, SG_ERR_INVALID, "invalid field");
        r = context_emit(client_ctx(cl), &ev, false);
        if (r < 0)
                return r;
        sg_writer_init(&w, SG_MSG_OK);
        return client_send(cl, &w);
}

int login_account(Client *cl, const struct sg_msg *msg) {
        const Context *x = client_ctx(cl);
        struct sg_verdict v = { .allowed = true };
        struct sg_writer w;
        char user[SG_FIELD_WIRE_MAX + 1], rhost[SG_FIELD_WIRE_MAX + 1];

        copy_field(user, msg, SG_F_USER);
        copy_field(rhost, msg, SG_F_RHOST);
        if (!sg_valid_user(user) || (rhost[0] && !sg_valid_rhost(rhost)))
                return client_send_decision(cl, SG_DECISION_DENY, 0);
        if (x->config->account_locks && sg_policy_is_locked(x->policy, user, rhost, sg_now_real_usec(), &v))
                return client_send_decision(cl, SG_DECISION_DENY, 0);
        sg_writer_init(&w, SG_MSG_OK);
        sg_writer_u64(&w, SG_F_DECISION, SG_DECISION_ALLOW);
        return client_send(cl, &w);
}
