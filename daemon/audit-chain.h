/* SPDX-License-Identifier: MIT */
/*
 * The audit trail's HMAC chain on the store's database: the audit and audit_anchor tables,
 * their statements, the audit key and the chain's tail. Owned by the store (store.c creates
 * it on its handle and frees it before closing); the rest of the daemon uses the
 * sg_store_audit_* functions in store.h, which check the transaction and call these.
 * Every function returns 0 or -errno like the store's, unless it says otherwise.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "audit.h"
#include "fss.h"

typedef struct sg_audit_chain sg_audit_chain;

/* Absorbs the static key (into sodium_malloc'ed memory; NULL: none, so rows written without
 * an epoch are not checked and cannot be written) and prepares the statements on db, which
 * must stay open until sg_audit_chain_free(). -ENOMEM; a statement that does not prepare:
 * -EBADMSG (a schema not ours) or the SQLite error as -errno, sqlite3_errmsg(db) saying why.
 * The tail is zeros until sg_audit_chain_load(). */
int sg_audit_chain_new(sqlite3 *db, const uint8_t key[SG_AUDIT_KEY_BYTES], sg_audit_chain **ret);

/* Forward-secure keys (common/fss.h, docs/threat-model.md). Rows appended after this carry
 * epoch and are MACed under mac_key(key); verify takes it as the current epoch's key (every
 * earlier epoch must be sealed, and rows of earlier epochs cannot be MAC-checked). The key
 * is copied. -EINVAL. */
int sg_audit_chain_set_epoch(sg_audit_chain *c, uint64_t epoch, const uint8_t key[SG_FSS_KEY_BYTES]);
/* The key verify starts from: key(0) from the seed (current false), or the writer's current
 * key. Epochs from it on are checked, stepping the key forward. */
int sg_audit_chain_set_verify_key(sg_audit_chain *c, uint64_t epoch, const uint8_t key[SG_FSS_KEY_BYTES],
                                  bool current);
/* Wipes verify's epoch keys (base and cursor), so a reader keeps no epoch key between jobs:
 * the key of an epoch that has ended must not outlive it in memory. */
void sg_audit_chain_forget_verify_key(sg_audit_chain *c);
bool sg_audit_chain_forward_secure(const sg_audit_chain *c);
/* Copies the writer's epoch and key into ret (ret->set false without one). */
void sg_audit_chain_epoch_key(const sg_audit_chain *c, struct sg_audit_epoch_key *ret);
/* Ends the writer's epoch: a seal (epoch, tail id, tail mac, time) MACed under its key; a
 * seal already there for that epoch is kept. -ENOKEY without an epoch. */
int sg_audit_chain_seal(sg_audit_chain *c, uint64_t time_usec);
/* Seals the rows written with the static key (epoch -1) unless some seal exists already. */
int sg_audit_chain_seal_static(sg_audit_chain *c, uint64_t time_usec);
/* The newest epoch the database knows (a row's or a seal's), -1 for none. */
int sg_audit_chain_last_epoch(sg_audit_chain *c, int64_t *ret);
/* After a verify: what it could not check, in words ("" when it checked everything). */
int sg_audit_chain_verify_note(const sg_audit_chain *c, char *buf, size_t size);
/* NULL-safe; finalizes the statements, wipes key and tail; returns NULL. */
sg_audit_chain *sg_audit_chain_free(sg_audit_chain *c);
/* Reads the tail the next row chains to: the newest row, else the prune anchor, else zeros. */
int sg_audit_chain_load(sg_audit_chain *c);

/* The store's transaction began: remember the tail. */
void sg_audit_chain_checkpoint(sg_audit_chain *c);
/* The store's transaction is gone (rolled back by us or by SQLite): the rows appended since
 * the checkpoint no longer exist, and the tail goes back to it. */
void sg_audit_chain_rewind(sg_audit_chain *c);

/* The MAC the chain stores for row id after a row whose MAC is prev (zeros before the first
 * row): the canonical encoding above, as a pure function for checking rows away from this
 * database (secguardctl fleet verify checks the central copy). epoch NULL: a row written with
 * the static audit.key, which key is; else a forward-secure row of *epoch, and key is
 * mac_key(key(*epoch)) (sg_fss_mac_key). Text fields are hashed as given (strlen). */
void sg_audit_row_mac(const uint8_t key[SG_AUDIT_KEY_BYTES], const uint64_t *epoch, const uint8_t prev[SG_MAC_BYTES],
                      uint64_t id, const struct sg_audit_event *ev, uint8_t out[SG_MAC_BYTES]);

/* What sg_audit_chain_append() accepts: an event keyword, a sealed user that fits a blob. */
bool sg_audit_event_valid(const struct sg_audit_event *ev);

/* As sg_store_audit_append(), _query(), _count(), _tail(), _verify() and _resume_after() in
 * store.h. The caller holds the transaction append writes in, and after a failed append
 * checks whether SQLite dropped it. */
int sg_audit_chain_append(sg_audit_chain *c, const struct sg_audit_event *ev, uint64_t *ret_id);
int sg_audit_chain_query(sg_audit_chain *c, const struct sg_audit_filter *f, sg_audit_cb cb, void *userdata);
/* Rows with after_id < id <= upto_id, oldest first, at most limit; *ret_max_id (may be NULL)
 * = min(upto_id, the highest id in the table), 0 when the table is empty. */
int sg_audit_chain_export(sg_audit_chain *c, uint64_t after_id, uint64_t upto_id, uint64_t limit,
                          sg_audit_cb cb, void *userdata, uint64_t *ret_max_id);
int sg_audit_chain_count(sg_audit_chain *c, uint64_t *ret);
void sg_audit_chain_tail(const sg_audit_chain *c, uint64_t *ret_id, uint8_t ret_mac[SG_MAC_BYTES]);
int sg_audit_chain_verify(sg_audit_chain *c, uint64_t *ret_bad_id, char *detail, size_t detailsize);
/* The walk of sg_audit_chain_verify() on c's database, which need not be the writer's (a
 * read-only connection in another thread): the chain must reach expect, the writer's
 * committed tail taken before the walk's read transaction began; rows after it were
 * committed since and are checked like the others. c's own tail is not used. */
int sg_audit_chain_verify_upto(sg_audit_chain *c, const struct sg_audit_tail *expect, uint64_t *ret_bad_id,
                               char *detail, size_t detailsize);
/* The tail as committed: the checkpoint while a transaction is open, else the tail. */
void sg_audit_chain_committed_tail(const sg_audit_chain *c, bool in_transaction, struct sg_audit_tail *ret);
int sg_audit_chain_resume_after(sg_audit_chain *c, uint64_t last_id);
/* The deletion of sg_store_audit_prune(): anchor and rows, no transaction of its own. The
 * caller wraps it in one (or a savepoint) and rolls back on error; the tail never moves.
 * *ret_deleted is set on success only. */
int sg_audit_chain_prune(sg_audit_chain *c, uint64_t before_usec, uint64_t max_rows, uint64_t *ret_deleted);
/* The same, deleting at most limit rows from the head (0 = no limit); *ret_more (may be NULL)
 * says rows past retention remain. Each step leaves an authenticated anchor. */
int sg_audit_chain_prune_some(sg_audit_chain *c, uint64_t before_usec, uint64_t max_rows, uint64_t limit,
                              uint64_t *ret_deleted, bool *ret_more);
/* The same for every row with an id up to cut (cheap: no count, no offset scan). */
int sg_audit_chain_prune_upto(sg_audit_chain *c, uint64_t cut, uint64_t *ret_deleted);
