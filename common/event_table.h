/* SPDX-License-Identifier: MIT */
/* The audit event kinds: name, journald MESSAGE_ID, priority and summary of each, and the
 * reasons an auth_failure may carry. One table, read by the daemon (to emit), by secguardctl
 * (to check --event) and by the tests (against etc/secguard.catalog). Pure data, no I/O.
 * What each event means: docs/state.md and the catalog. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct sg_event_kind {
        const char *name;       /* "auth_success"; the audit table's event column */
        const char *message_id; /* 32 lower-case hex digits, the catalog entry's id */
        int priority;           /* syslog priority (LOG_INFO ...) of the journald entry */
        const char *summary;    /* start of the journald MESSAGE, the catalog's Subject */
};

/* The whole table, in a fixed order; *ret_n gets its length. Never NULL. The session_* and
 * token_* kinds are reserved names: sessions and tokens are not built yet, so nothing emits
 * them today, but their ids are fixed and --event accepts them. */
const struct sg_event_kind *sg_event_kinds(size_t *ret_n);

/* The kind named name, or NULL when name is NULL or not in the table. */
const struct sg_event_kind *sg_event_kind_find(const char *name);

/* The reasons a refused login may carry (auth_failure, and "locked" for auth_blocked),
 * NULL-terminated. A REPORT with any other reason is recorded as bad_password. */
extern const char *const sg_event_failure_reasons[];

/* true when reason (not NULL) is one of sg_event_failure_reasons. */
bool sg_event_reason_valid(const char *reason);
