/* SPDX-License-Identifier: MIT */
#include "events.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>

#include <sodium.h>

#include "log.h"
#include "validate.h"

static const struct sg_event_kind kinds[] = {
        { "auth_success",     "973db29d3eac4c60aa119cc6bf45d38d", LOG_INFO,    "Password login accepted" },
        { "auth_failure",     "7d83522bc15e482fb99cb8a983d6d48d", LOG_NOTICE,  "Password login failed" },
        { "auth_blocked",     "9efb99913c604602bdd08db2b074b4e3", LOG_WARNING, "Login attempt blocked by a lock" },
        { "lockout",          "6c043ffc13a24eaab37fb8e0df4e07d9", LOG_WARNING, "Lock imposed" },
        { "unlock",           "71f11c47c1f04beb8efd58b85fcef243", LOG_NOTICE,  "Lock cleared by an administrator" },
        { "session_open",     "297cd2073b504ddd83d11f3e93a11803", LOG_INFO,    "Session opened" },
        { "session_close",    "ce07912fc4a74f6884961a4792eda096", LOG_INFO,    "Session closed" },
        { "session_expired",  "96c1ac2fd7f54e98bc3489af99cb92aa", LOG_NOTICE,  "Session expired" },
        { "session_killed",   "19ffe93d2a4a4973af4fe75ff9296189", LOG_NOTICE,  "Session ended by an administrator" },
        { "token_issued",     "6dc1786cb7f44cc8bc9db29a4a29dd6a", LOG_NOTICE,  "One-time token issued" },
        { "token_used",       "037e3a94097141ac943afc76cde00f08", LOG_NOTICE,  "One-time token used" },
        { "password_changed", "c2d23907c5d84d969048e3354bef8572", LOG_NOTICE,  "Password changed" },
        { "hash_upgraded",    "224b3bd0710e42a1a776ae3d5497592f", LOG_INFO,    "Password hash upgraded" },
        { "peer_denied",      "f4b0c60b1845494b829b26dcb76c68cd", LOG_WARNING, "Request refused for this peer" },
        { "protocol_error",   "290221131b5745908d9714f7f32aad29", LOG_WARNING, "Malformed request" },
        { "daemon_start",     "bed7a44c82e24bf18dc9c06e3e4ce714", LOG_INFO,    "secguardd started" },
        { "daemon_stop",      "2634df0c47eb4bd0853a282f2a8d84d6", LOG_INFO,    "secguardd stopped" },
};

static const char *const reasons[] = {
        "unknown_user", "bad_password", "invalid_input", "locked_hash", "unsupported_hash",
        "hash_cost", "overload", "abandoned", "locked", "daemon_error", "password_too_long",
        "expired", "quality", "store_error",
};

const struct sg_event_kind *sg_event_kinds(size_t *ret_n) {
        *ret_n = sizeof kinds / sizeof kinds[0];
        return kinds;
}

const struct sg_event_kind *sg_event_kind_find(const char *name) {
        if (!name)
                return NULL;
        for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
                if (strcmp(kinds[i].name, name) == 0)
                        return &kinds[i];
        return NULL;
}

bool sg_event_reason_valid(const char *reason) {
        for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
                if (strcmp(reasons[i], reason) == 0)
                        return true;
        return false;
}

/* One "KEY=escaped value" journald field in buf; skipped when value is NULL. */
static void add_field(struct iovec *iov, int *n, char *buf, size_t size, const char *key,
                      const char *value) {
        size_t k;

        if (!value)
                return;
        k = (size_t) snprintf(buf, size, "%s=", key);
        if (k >= size)
                return;
        sg_escape(value, strlen(value), buf + k, size - k);
        iov[*n].iov_base = buf;
        iov[*n].iov_len = strlen(buf);
        (*n)++;
}

static void journal_emit(const struct sg_event_kind *kind, const struct sg_audit_event *ev,
                         const char *shown_user) {
        char f[12][600], msg[1400], esc_user[300], esc_rhost[300], esc_reason[80];
        struct iovec iov[16];
        char prio[16], pid[32], uid[32];
        int n = 0;

        sg_escape(shown_user ? shown_user : "-", strlen(shown_user ? shown_user : "-"),
                  esc_user, sizeof esc_user);
        sg_escape(ev->rhost && *ev->rhost ? ev->rhost : "local",
                  strlen(ev->rhost && *ev->rhost ? ev->rhost : "local"), esc_rhost, sizeof esc_rhost);
        sg_escape(ev->reason ? ev->reason : "", strlen(ev->reason ? ev->reason : ""),
                  esc_reason, sizeof esc_reason);
        snprintf(msg, sizeof msg, "MESSAGE=%s: user=%s from=%s%s%s", kind->summary, esc_user,
                 esc_rhost, ev->reason ? " reason=" : "", esc_reason);
        iov[n].iov_base = msg;
        iov[n++].iov_len = strlen(msg);
        snprintf(prio, sizeof prio, "PRIORITY=%d", kind->priority);
        iov[n].iov_base = prio;
        iov[n++].iov_len = strlen(prio);
        iov[n].iov_base = (char *) "SYSLOG_IDENTIFIER=secguardd";
        iov[n++].iov_len = strlen("SYSLOG_IDENTIFIER=secguardd");
        add_field(iov, &n, f[0], sizeof f[0], "MESSAGE_ID", kind->message_id);
        add_field(iov, &n, f[1], sizeof f[1], "SECGUARD_EVENT", kind->name);
        add_field(iov, &n, f[2], sizeof f[2], "SECGUARD_USER", shown_user);
        add_field(iov, &n, f[3], sizeof f[3], "SECGUARD_RHOST", ev->rhost);
        add_field(iov, &n, f[4], sizeof f[4], "SECGUARD_SERVICE", ev->service);
        add_field(iov, &n, f[5], sizeof f[5], "SECGUARD_TTY", ev->tty);
        add_field(iov, &n, f[6], sizeof f[6], "SECGUARD_REASON", ev->reason);
        add_field(iov, &n, f[7], sizeof f[7], "SECGUARD_SESSION", ev->session_id);
        add_field(iov, &n, f[8], sizeof f[8], "SECGUARD_DETAIL", ev->detail);
        if (ev->pid >= 0) {
                snprintf(pid, sizeof pid, "%lld", (long long) ev->pid);
                add_field(iov, &n, f[9], sizeof f[9], "SECGUARD_PEER_PID", pid);
        }
        if (ev->uid >= 0) {
                snprintf(uid, sizeof uid, "%lld", (long long) ev->uid);
                add_field(iov, &n, f[10], sizeof f[10], "SECGUARD_PEER_UID", uid);
        }
        sg_log_structured(kind->priority, iov, n);
}

int sg_event_emit(sg_store *store, const struct sg_audit_event *ev, bool user_unknown,
                  const uint8_t *seal_pk, uint64_t *ret_id) {
        const struct sg_event_kind *kind = sg_event_kind_find(ev->event);
        struct sg_audit_event copy = *ev;
        uint8_t sealed[SG_FIELD_WIRE_MAX + crypto_box_SEALBYTES];
        const char *shown_user = ev->user;
        int r;

        if (!kind)
                return -EINVAL;
        if (ev->user && user_unknown && seal_pk) {
                size_t len = strnlen(ev->user, SG_FIELD_WIRE_MAX);

                if (crypto_box_seal(sealed, (const unsigned char *) ev->user, len, seal_pk) != 0)
                        return -EIO;
                copy.user = NULL;
                copy.user_sealed = sealed;
                copy.user_sealed_len = len + crypto_box_SEALBYTES;
                shown_user = "<sealed>";
        }
        r = sg_store_audit_append(store, &copy, ret_id);
        journal_emit(kind, ev, shown_user);
        sodium_memzero(sealed, sizeof sealed);
        return r;
}

void sg_event_journal_only(const struct sg_audit_event *ev, bool sealed) {
        const struct sg_event_kind *kind = sg_event_kind_find(ev->event);

        if (kind)
                journal_emit(kind, ev, sealed ? "<sealed>" : ev->user);
}
