/* SPDX-License-Identifier: MIT */
/* Emission of audit events to the SQLite trail and to journald. Every event goes to both; the
 * store write is what makes it durable. The kinds themselves (names, MESSAGE_IDs, priorities,
 * failure reasons) are the table in common/event_table.h; docs/state.md has the audit chain. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "event_table.h"
#include "store.h"

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
