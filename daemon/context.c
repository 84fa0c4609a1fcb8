/* SPDX-License-Identifier: MIT */
#include <inttypes.h>
#include <stdio.h>

#include "context.h"
#include "events.h"
#include "io.h"
#include "log.h"

int context_emit(const Context *x, const struct sg_audit_event *ev, bool user_unknown) {
        int r = txn_begin(x->txn);

        if (r < 0)
                return r;
        return sg_event_emit(x->store, ev, user_unknown, x->seal_pk, NULL);
}

static const char *const summary_reasons[SG_PEER_EVENT_MAX] = {
        [SG_PEER_AUTH_BLOCKED] = "locked",
        [SG_PEER_AUTH_INVALID] = "invalid_input",
        [SG_PEER_AUTH_PACED] = "paced",
};

void context_emit_summaries(const Context *x, const struct sg_peer_summary *s, size_t n) {
        for (size_t i = 0; i < n; i++) {
                struct sg_audit_event ev = {
                        .time_usec = sg_now_real_usec(),
                        .event = sg_peer_event_name(s[i].kind),
                        .pid = -1, /* many connections */
                        .uid = s[i].by_source ? 0 : s[i].uid,
                };
                char detail[SG_PEER_SOURCE_MAX + 64];
                int r;

                if (s[i].by_source) {
                        ev.reason = (unsigned) s[i].kind < SG_PEER_EVENT_MAX ? summary_reasons[s[i].kind] : NULL;
                        ev.rhost = s[i].source[0] ? s[i].source : NULL;
                        snprintf(detail, sizeof detail, "%" PRIu64 " similar events from %s suppressed",
                                 s[i].suppressed, s[i].source[0] ? s[i].source : "local logins");
                } else
                        snprintf(detail, sizeof detail, "%" PRIu64 " similar events from uid %" PRIu32 " suppressed",
                                 s[i].suppressed, s[i].uid);
                ev.detail = detail;
                r = context_emit(x, &ev, false);
                if (r < 0) /* the count must not vanish silently: the journal keeps it */
                        log_error_errno(r, "cannot record a %s summary (%s)", ev.event, detail);
        }
}
