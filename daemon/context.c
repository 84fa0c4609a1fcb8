/* SPDX-License-Identifier: MIT */
#include "context.h"
#include "events.h"

int context_emit(const Context *x, const struct sg_audit_event *ev, bool user_unknown) {
        int r = txn_begin(x->txn);

        if (r < 0)
                return r;
        return sg_event_emit(x->store, ev, user_unknown, x->seal_pk, NULL);
}
