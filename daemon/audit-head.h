/* SPDX-License-Identifier: MIT */
/*
 * audit.head: the audit chain's committed tail ("ID HEXMAC"), kept in the state directory
 * outside the database, so rows cut from the end of the log while the daemon was down are
 * noticed at the next start. See docs/state.md.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "store.h"

typedef struct AuditHead AuditHead;

int audit_head_new(const char *state_dir, bool sync_full, AuditHead **ret);
AuditHead *audit_head_free(AuditHead *h); /* NULL-safe */
/* At start, before the first append: compares audit.head with the store's tail. When rows
 * are missing at the end, the chain goes on after them (the gap stays for every later
 * verify). Writes a one-line note for the daemon_start row into note ("" when all is well). */
void audit_head_check(AuditHead *h, sg_store *store, char *note, size_t notesize);
/* After a commit: records the store's tail (never moves back). Failures are logged. */
void audit_head_update(AuditHead *h, sg_store *store);
