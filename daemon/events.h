/* SPDX-License-Identifier: MIT */
/* Audit events: the table of kinds (INTERFACE.md), and emission to the SQLite trail and
 * journald. Every event goes to both; the store write is what makes it durable. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <syslog.h>

#include "store.h"

struct sg_event_kind {
        const char *name;       /* "auth_success" */
        const char *message_id; /* 32 hex digits, also in etc/secguard.catalog */
        int priority;
        const char *summary;    /* start of the journald MESSAGE */
};

const struct sg_event_kind *sg_event_kind_find(const char *name);
const struct sg_event_kind *sg_event_kinds(size_t *ret_n);

/* Reasons the module may report with an auth_failure (INTERFACE.md). */
bool sg_event_reason_valid(const char *reason);

/* Writes ev to the store (inside the caller's transaction when one is open) and to journald
 * (or stderr). seal_pk, when not NULL and user_unknown, seals ev->user to the admin's public
 * key: the store keeps only the sealed box, the journal shows "<sealed>". Returns the store's
 * result; journald failures are not fatal (the store is the evidence). */
int sg_event_emit(sg_store *store, const struct sg_audit_event *ev, bool user_unknown,
                  const uint8_t *seal_pk, uint64_t *ret_id);

/* The journal half of sg_event_emit, for an event the store cannot take (disk full, I/O
 * error): the refusal is still told to journald, with the user shown as "<sealed>" when
 * sealed is set. */
void sg_event_journal_only(const struct sg_audit_event *ev, bool sealed);
