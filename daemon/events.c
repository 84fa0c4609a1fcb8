/* SPDX-License-Identifier: MIT */
#include "events.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>

#include <sodium.h>

#include "log.h"
#include "validate.h"

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
