/* SPDX-License-Identifier: MIT */
/*
 * A lock as the policy holds it (struct sg_lock_info, policy.h) and as the store keeps it
 * (struct sg_lock_row, store.h): the one conversion between them, so neither of those two
 * headers needs the other. Pure; no I/O.
 */
#pragma once

#include "policy.h"
#include "store.h"

/* The row to store for a lock the policy created or changed. The row borrows: its key points
 * into info and its kind at a static name, so info must outlive the row. 0, or -EINVAL (a
 * NULL argument, a kind outside enum sg_lock_kind); ret untouched on failure. */
int sg_lock_row_from_info(const struct sg_lock_info *info, struct sg_lock_row *ret);

/* The lock to load into the policy from a stored row (the key is copied). 0; -EINVAL for a
 * NULL argument, a row without kind or key, or a kind name the policy does not know (a row
 * from a newer build: skip it); -ENAMETOOLONG for a key that does not fit SG_POLICY_KEY_MAX
 * (the policy never writes one, and a cut key could name another lock: skip it). ret
 * untouched on failure. */
int sg_lock_info_from_row(const struct sg_lock_row *row, struct sg_lock_info *ret);
