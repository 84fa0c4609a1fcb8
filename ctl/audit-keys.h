/* SPDX-License-Identifier: MIT */
/*
 * Forward-secure audit keys, the admin's side (docs/threat-model.md): make the seed once,
 * read it back, and verify a database offline with it (no daemon: a read-only SQLite
 * connection on the file), with the same chain code the daemon writes with.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fss.h"

/* Creates <state_dir>/audit.fss (epoch 0, 0600, exclusive, synced) from a new seed and writes
 * the seed's text form into seed_text (SG_FSS_SEED_TEXT_SIZE). -EEXIST when keys are set up
 * already; err names the path. Nothing of the seed stays on the host. */
int audit_setup_keys(const char *state_dir, char *seed_text, size_t seed_textsize, char *err, size_t errsize);

/* The seed from --seed TEXT ("-": a line from stdin) or --seed-file F (its first line, the
 * file checked like a key file: owner, mode 0600, no symlink). */
int audit_seed_read(const char *text, const char *file, uint8_t seed[SG_FSS_SEED_BYTES], char *err, size_t errsize);

struct audit_offline_result {
        int r;               /* 0 intact, 1 broken */
        uint64_t bad_id, rows;
        char detail[1024];   /* the problem, when broken */
        char note[512];      /* what was not checked */
};

/* Walks db_path read-only. legacy_key_path: the static audit.key (may be NULL or unreadable:
 * those rows are then not MAC-checked, and the note says so); seed: NULL for structure only.
 * 0 with res filled, or -errno with err saying why. */
int audit_verify_offline(const char *db_path, const char *legacy_key_path, const uint8_t *seed,
                         struct audit_offline_result *res, char *err, size_t errsize);
