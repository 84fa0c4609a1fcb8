/* SPDX-License-Identifier: MIT */
/*
 * Fleet requests. Every field of a decision is checked before anything changes: the kind,
 * the key (normalised exactly as a local lock of that kind keys it), the end of the lock (in
 * the future, at most [fleet] max_lock_time ahead), the origin host id and the decision id.
 * A decision that fails is refused (SG_ERR_INVALID), logged and audited fleet_rejected, and
 * changes nothing: the fleet database is another machine, so what it says is input.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "admin.h"
#include "fleet.h"
#include "io.h"
#include "log.h"
#include "lock-row.h"
#include "timefmt.h"
#include "validate.h"

#define USEC_PER_SEC UINT64_C(1000000)

/* ---- FLEET_EXPORT ---- */

struct export_ctx {
        Client *cl;
        uint64_t sent;
};

static int send_export_row(void *userdata, const struct sg_audit_row *row) {
        struct export_ctx *e = userdata;
        struct sg_writer w;
        int r;

        sg_writer_init(&w, SG_MSG_ROW);
        admin_audit_row_fields(&w, row);
        if (row->has_epoch)
                sg_writer_u64(&w, SG_F_EPOCH, row->epoch);
        /* The MAC column is NOT NULL and 32 bytes; a longer one would not be ours: send none
         * rather than a cut one, and let the helper's checks refuse the row. */
        if (row->mac && row->mac_len <= 64)
                sg_writer_bytes(&w, SG_F_MAC, row->mac, row->mac_len);
        else
                sg_writer_bytes(&w, SG_F_MAC, "", 0);
        r = client_send(e->cl, &w);
        if (r >= 0)
                e->sent++;
        return r;
}

int fleet_export(Client *cl, const struct sg_msg *msg) {
        const Context *x = client_ctx(cl);
        struct export_ctx e = { .cl = cl };
        uint64_t after = sg_msg_u64(msg, SG_F_ID, 0), limit, max_id = 0;
        struct sg_writer w;
        int r;

        limit = sg_msg_u64(msg, SG_F_LIMIT, FLEET_EXPORT_DEFAULT_LIMIT);
        if (limit == 0 || limit > FLEET_EXPORT_MAX_LIMIT)
                return client_send_error(cl, SG_ERR_INVALID, "limit must be 1..1000");
        if (after >= (uint64_t) INT64_MAX)
                return client_send_error(cl, SG_ERR_INVALID, "id out of range");
        r = sg_store_audit_export(x->store, after, limit, send_export_row, &e, &max_id);
        if (r < 0)
                return r;
        sg_writer_init(&w, SG_MSG_OK);
        sg_writer_u64(&w, SG_F_COUNT, e.sent);
        sg_writer_u64(&w, SG_F_ID, max_id);
        return client_send(cl, &w);
}

/* ---- decisions: validation shared by FLEET_LOCK and FLEET_UNLOCK ---- */

struct decision {
        enum sg_lock_kind kind;
        const char *kind_name;
        char key[SG_POLICY_KEY_MAX];
        const char *host;
        uint64_t id;
        uint64_t until_usec; /* FLEET_LOCK */
        const char *reason;  /* FLEET_LOCK, may be NULL */
        bool lifted;         /* FLEET_UNLOCK with STATE "lifted": only host's own fleet lock */
};

/* Refuses a decision: log line, fleet_rejected row, SG_ERR_INVALID with the same sentence.
 * Row and log line are limited per peer uid like peer_denied (peers.h): a fleet database
 * full of hostile decisions must not bury the trail; the rest are counted and summarized. */
static int reject(Client *cl, const char *what, const char *keyword, const char *rhost, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));
static int reject(Client *cl, const char *what, const char *keyword, const char *rhost, const char *fmt, ...) {
        const Context *x = client_ctx(cl);
        const struct conn_peer *peer = client_peer(cl);
        struct sg_peer_summary sums[SG_PEER_SUMMARY_MAX];
        char why[600], detail[800];
        struct sg_audit_event ev = {
                .time_usec = sg_now_real_usec(), .event = "fleet_rejected", .reason = keyword,
                .rhost = rhost, .pid = peer->pid, .uid = peer->uid,
        };
        enum sg_peer_verdict v;
        size_t n = 0;
        va_list ap;
        int r;

        va_start(ap, fmt);
        vsnprintf(why, sizeof why, fmt, ap);
        va_end(ap);
        snprintf(detail, sizeof detail, "%s rejected: %s", what, why);
        r = txn_begin(x->txn);
        if (r < 0)
                return r;
        v = sg_peers_event(x->peers, (uint32_t) peer->uid, SG_PEER_FLEET_REJECTED, sg_now_mono_usec(), sums, &n);
        context_emit_summaries(x, sums, n);
        if (v == SG_PEER_WRITE) {
                log_warning("fleet decision from uid %u rejected: %s", (unsigned) peer->uid, detail);
                ev.detail = detail;
                r = context_emit(x, &ev, false);
                if (r < 0)
                        return r;
        } else if (v == SG_PEER_SUPPRESS_FIRST)
                log_warning("uid %u sends more than %u invalid fleet decisions at once (then 1/s): further ones "
                            "are refused, counted and summarized in one audit row",
                            (unsigned) peer->uid, SG_PEER_BURST);
        return client_send_error(cl, SG_ERR_INVALID, detail);
}

/* Checks kind, key, host and id (and until and reason for a lock). 0 when valid; otherwise
 * the request has been refused (reject()) and its result is returned with 1 added to tell
 * the two apart: callers return (r - 1). */
static int decision_parse(Client *cl, const struct sg_msg *msg, bool lock, struct decision *d) {
        const Context *x = client_ctx(cl);
        const char *what = lock ? "FLEET_LOCK" : "FLEET_UNLOCK";
        const char *kind = sg_msg_str(msg, SG_F_KIND), *key = sg_msg_str(msg, SG_F_KEY);
        char shown[4 * 64 + 8], until_s[64], max_s[64];
        uint64_t now = sg_now_real_usec();
        uint64_t max_ahead = x->config->fleet_max_lock_time_sec * USEC_PER_SEC;
        int r;

        *d = (struct decision) { .host = sg_msg_str(msg, SG_F_HOST), .id = sg_msg_u64(msg, SG_F_ID, 0) };
        if (strcmp(kind, "source") == 0)
                d->kind = SG_LOCK_SOURCE;
        else if (strcmp(kind, "spray") == 0)
                d->kind = SG_LOCK_SPRAY;
        else {
                sg_escape(kind, strlen(kind), shown, sizeof shown);
                r = reject(cl, what, "bad_kind", NULL, "kind \"%s\" is neither source nor spray", shown);
                return r < 0 ? r : r + 1;
        }
        d->kind_name = sg_lock_kind_name(d->kind);
        if (!sg_valid_rhost(key) || sg_policy_fleet_key(x->policy, d->kind, key, d->key) < 0) {
                sg_escape(key, strnlen(key, 64), shown, sizeof shown);
                r = reject(cl, what, "bad_key", NULL,
                           "\"%s%s\" is not an address, nor an IPv6 network this host keys %s locks on",
                           shown, strlen(key) > 64 ? "..." : "", d->kind_name);
                return r < 0 ? r : r + 1;
        }
        if (!sg_fleet_host_id_valid(d->host)) {
                sg_escape(d->host, strnlen(d->host, 64), shown, sizeof shown);
                r = reject(cl, what, "bad_host", d->key, "origin host id \"%s\" is not 32 lowercase hex digits", shown);
                return r < 0 ? r : r + 1;
        }
        if (d->id == 0 || d->id >= (uint64_t) INT64_MAX) {
                r = reject(cl, what, "bad_id", d->key, "decision id %" PRIu64 " is out of range (1..2^63-2)", d->id);
                return r < 0 ? r : r + 1;
        }
        if (!lock) {
                const char *state = sg_msg_str(msg, SG_F_STATE);

                if (state && strcmp(state, "lifted") != 0) {
                        sg_escape(state, strlen(state), shown, sizeof shown);
                        r = reject(cl, what, "bad_state", d->key, "state \"%s\" is not lifted", shown);
                        return r < 0 ? r : r + 1;
                }
                d->lifted = state != NULL;
                return 0;
        }
        d->until_usec = sg_msg_u64(msg, SG_F_UNTIL, 0);
        sg_format_time(d->until_usec, until_s, sizeof until_s);
        if (d->until_usec <= now) {
                r = reject(cl, what, "bad_until", d->key, "%s %s: the lock would end at %s, which is not in the future",
                           d->kind_name, d->key, until_s);
                return r < 0 ? r : r + 1;
        }
        if (d->until_usec - now > max_ahead) {
                sg_format_time(now + max_ahead, max_s, sizeof max_s);
                r = reject(cl, what, "bad_until", d->key,
                           "%s %s: the lock would end at %s, more than [fleet] max_lock_time (%" PRIu64
                           " s) ahead (latest accepted %s)",
                           d->kind_name, d->key, until_s, x->config->fleet_max_lock_time_sec, max_s);
                return r < 0 ? r : r + 1;
        }
        d->reason = sg_msg_str(msg, SG_F_REASON);
        if (d->reason && strcmp(d->reason, "lockout") != 0 && strcmp(d->reason, "fleet_failures") != 0) {
                sg_escape(d->reason, strlen(d->reason), shown, sizeof shown);
                r = reject(cl, what, "bad_reason", d->key, "reason \"%s\" is neither lockout nor fleet_failures", shown);
                return r < 0 ? r : r + 1;
        }
        return 0;
}

/* ---- FLEET_LOCK ---- */

int fleet_lock(Client *cl, const struct sg_msg *msg) {
        const Context *x = client_ctx(cl);
        struct decision d;
        struct sg_fleet_lock l, have;
        struct sg_audit_event ev = {
                .event = "fleet_lock", .pid = client_peer(cl)->pid, .uid = client_peer(cl)->uid,
        };
        char detail[512], until_s[64];
        struct sg_writer w;
        bool allowlisted;
        int r;

        r = decision_parse(cl, msg, true, &d);
        if (r != 0)
                return r < 0 ? r : r - 1;
        allowlisted = sg_policy_key_allowlisted(x->policy, d.key);
        /* The helper may hand the same decision over again (a restart, a resync): that is
         * no new event. */
        if (sg_policy_fleet_get(x->policy, d.kind, d.key, &have) == 0 && have.decision_id == d.id &&
            have.until_usec == d.until_usec && strcmp(have.origin_host, d.host) == 0)
                goto reply;

        l = (struct sg_fleet_lock) {
                .kind = d.kind, .until_usec = d.until_usec, .decision_id = d.id,
                .applied_usec = sg_now_real_usec(),
        };
        memcpy(l.key, d.key, sizeof l.key);
        snprintf(l.origin_host, sizeof l.origin_host, "%s", d.host);

        r = txn_begin(x->txn);
        if (r < 0)
                return r;
        r = sg_policy_fleet_lock(x->policy, &l);
        if (r == -ENOSPC)
                return client_send_error(cl, SG_ERR_BUSY, "the lock table is full of locks in force");
        if (r < 0)
                return r;
        r = sg_store_fleet_lock_put(x->store, &(struct sg_fleet_lock_row) {
                .kind = d.kind_name, .key = l.key, .until_usec = l.until_usec, .origin_host = l.origin_host,
                .decision_id = l.decision_id, .applied_usec = l.applied_usec,
        });
        if (r < 0)
                return r;
        sg_format_time(d.until_usec, until_s, sizeof until_s);
        snprintf(detail, sizeof detail, "%s %s locked fleet-wide until %s (decision %" PRIu64 " from host %s%s%s)%s",
                 d.kind_name, d.key, until_s, d.id, d.host, d.reason ? ", " : "", d.reason ? d.reason : "",
                 allowlisted ? "; allowlisted on this host: not enforced" : "");
        ev.time_usec = l.applied_usec;
        ev.reason = d.kind_name;
        ev.rhost = d.key;
        ev.detail = detail;
        r = context_emit(x, &ev, false);
        if (r < 0)
                return r;
reply:
        sg_writer_init(&w, SG_MSG_OK);
        if (allowlisted)
                sg_writer_str(&w, SG_F_DETAIL, "allowlisted");
        return client_send(cl, &w);
}

/* ---- FLEET_UNLOCK ---- */

/* Clears the fleet lock of kind/key in policy and store: 1 when one was in force. */
static int clear_fleet(const Context *x, enum sg_lock_kind kind, const char *key, uint64_t now) {
        int was, r;

        /* the row goes even when the policy no longer holds the lock (expired, collected) */
        was = sg_policy_fleet_unlock(x->policy, kind, key, now);
        r = sg_store_fleet_lock_delete(x->store, sg_lock_kind_name(kind), key);
        return r < 0 ? r : was;
}

/* A lifted lockout (docs/state.md, "Lifted locks"): the fleet lock of kind/key goes only when
 * origin_host published it, the row with it; 1 when one was in force, 0 when none went. */
static int clear_fleet_lifted(const Context *x, enum sg_lock_kind kind, const char *key, const char *origin_host,
                              uint64_t now) {
        int was, r;

        was = sg_policy_fleet_unlock_origin(x->policy, kind, key, origin_host, now);
        if (was == -ESRCH || was == -ENOENT)
                return 0; /* none, or another host's decision: not this one's to lift (nor its row) */
        if (was < 0)
                return was;
        r = sg_store_fleet_lock_delete(x->store, sg_lock_kind_name(kind), key);
        return r < 0 ? r : was;
}

/* Clears the local lock of kind/key (counters too, as an administrator's unlock does), the
 * row written back: 1 when one was in force. */
static int clear_local(const Context *x, enum sg_lock_kind kind, const char *key, uint64_t now) {
        struct sg_lock_info info;
        struct sg_lock_row row;
        int was, r;

        was = sg_policy_unlock(x->policy, kind, key, now, &info);
        if (was == -ENOENT)
                return 0;
        if (was < 0)
                return was;
        r = sg_lock_row_from_info(&info, &row);
        if (r >= 0)
                r = sg_store_lock_put(x->store, &row);
        return r < 0 ? r : was;
}

int fleet_unlock(Client *cl, const struct sg_msg *msg) {
        const Context *x = client_ctx(cl);
        uint64_t now = sg_now_real_usec();
        struct decision d;
        struct sg_audit_event ev = {
                .time_usec = now, .event = "fleet_unlock", .pid = client_peer(cl)->pid, .uid = client_peer(cl)->uid,
        };
        char detail[512];
        struct sg_writer w;
        int r, fleet, local;

        r = decision_parse(cl, msg, false, &d);
        if (r != 0)
                return r < 0 ? r : r - 1;
        r = txn_begin(x->txn);
        if (r < 0)
                return r;
        if (d.lifted) {
                /* Host d.host's own lockout was lifted there (the attempt that set it
                 * succeeded): only the fleet lock that lockout made goes; this host's own
                 * lock and other hosts' decisions stay. */
                local = 0;
                fleet = clear_fleet_lifted(x, d.kind, d.key, d.host, now);
                if (fleet < 0)
                        return fleet;
                snprintf(detail, sizeof detail,
                         "%s %s lifted on host %s (decision %" PRIu64 "): %s fleet lock from that host cleared here; "
                         "local locks untouched",
                         d.kind_name, d.key, d.host, d.id, fleet ? "its" : "no");
        } else {
                fleet = clear_fleet(x, d.kind, d.key, now);
                if (fleet < 0)
                        return fleet;
                local = clear_local(x, d.kind, d.key, now);
                if (local < 0)
                        return local;
                snprintf(detail, sizeof detail,
                         "%s %s unlocked fleet-wide (decision %" PRIu64 " from host %s): %s fleet lock, %s local lock "
                         "cleared here",
                         d.kind_name, d.key, d.id, d.host, fleet ? "a" : "no", local ? "a" : "no");
        }
        ev.reason = d.kind_name;
        ev.rhost = d.key;
        ev.detail = detail;
        /* A lifted lockout that found nothing here is no event on this host. */
        if (!d.lifted || fleet > 0) {
                r = context_emit(x, &ev, false);
                if (r < 0)
                        return r;
        }
        sg_writer_init(&w, SG_MSG_OK);
        sg_writer_u64(&w, SG_F_COUNT, (uint64_t) (fleet + local));
        sg_writer_str(&w, SG_F_DETAIL, detail);
        return client_send(cl, &w);
}

int fleet_clear_for_unlock(const Context *x, const char *source, const char *wide, const char *widest) {
        const char *keys[] = { source, wide, widest };
        uint64_t now = sg_now_real_usec();
        int n = 0, r;

        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
                if (!keys[i] || !keys[i][0])
                        continue;
                r = clear_fleet(x, SG_LOCK_SOURCE, keys[i], now);
                if (r < 0)
                        return r;
                n += r;
        }
        if (source && source[0]) {
                r = clear_fleet(x, SG_LOCK_SPRAY, source, now);
                if (r < 0)
                        return r;
                n += r;
        }
        return n;
}
