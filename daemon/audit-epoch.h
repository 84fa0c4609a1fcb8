/* SPDX-License-Identifier: MIT */
/*
 * audit.fss: the current forward-secure epoch and its key (common/fss.h), the only key of the
 * evolving chain this host ever holds. Made once by `secguardctl audit setup-keys`; the
 * daemon moves it on at every start and every [audit] seal_interval, replacing the file
 * (temp file, fsync, rename, directory fsync) so the old key is gone from it before a row of
 * the new epoch is acknowledged. See docs/threat-model.md and docs/state.md.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

typedef struct AuditEpoch AuditEpoch;

#define AUDIT_EPOCH_FILE "audit.fss"

/* Reads <state_dir>/audit.fss (owner and mode checked as for every key file). 0 with *ret
 * NULL when there is none (forward-secure keys not set up), 0 with it, or -errno with err
 * naming the file and the fix. */
int audit_epoch_load(const char *state_dir, AuditEpoch **ret, char *err, size_t errsize);
AuditEpoch *audit_epoch_free(AuditEpoch *e); /* NULL-safe; wipes the key; returns NULL */

uint64_t audit_epoch_current(const AuditEpoch *e);
const uint8_t *audit_epoch_key(const AuditEpoch *e); /* SG_FSS_KEY_BYTES, sodium_malloc'ed */

/* Moves the key on in memory to epoch (> the current one), wiping each one it leaves. */
void audit_epoch_skip_to(AuditEpoch *e, uint64_t epoch);
/* Writes the current epoch and key over audit.fss. 0 or -errno (logged by the caller). */
int audit_epoch_save(AuditEpoch *e);
