/* SPDX-License-Identifier: MIT */
/*
 * The daemon's SQLite store: the durable copy of attempts, locks and the audit trail.
 * Only secguardd opens it. WAL, busy_timeout, foreign keys, defensive mode, migrations by
 * PRAGMA user_version on open, every statement prepared once (SQLITE_PREPARE_PERSISTENT) and
 * bound. SQLite result codes never leave the store (store.c, and audit-chain.c for the audit
 * trail): every function returns 0 or -errno.
 *
 * Writes are grouped: the manager calls sg_store_begin() before the first write of an event
 * loop iteration and sg_store_commit() once after it (group commit); replies that depend on
 * those writes are sent only after the commit returns 0.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "audit.h"
#include "fss.h"

#define SG_STORE_SCHEMA_VERSION 7

typedef struct sg_store sg_store;

struct sg_store_options {
        const char *state_dir;    /* must exist, owned by euid, not group/world writable */
        bool sync_full;           /* PRAGMA synchronous=FULL, else NORMAL */
        const uint8_t *audit_key; /* SG_AUDIT_KEY_BYTES, copied into sodium_malloc'ed memory */
};

/* Opens (creating if absent) <state_dir>/secguard.db. Refuses, with a message in err naming
 * the path and the fix: a state dir or db with unsafe owner/mode (-EPERM), a db that is not
 * SQLite or corrupt (-EBADMSG), a schema newer than this build (-EPROTO). Never recreates
 * an existing file. */
int sg_store_open(const struct sg_store_options *o, sg_store **ret, char *err, size_t errsize);
sg_store *sg_store_free(sg_store *s); /* NULL-safe; finalizes all statements; returns NULL */

int sg_store_begin(sg_store *s);
int sg_store_commit(sg_store *s);
int sg_store_rollback(sg_store *s);
bool sg_store_in_transaction(const sg_store *s);

/* ---- attempts: the durable log the rate limiter is rebuilt from ---- */
enum sg_attempt_state {
        SG_ATTEMPT_PENDING = 0, /* reserved by PRECHECK, not yet reported */
        SG_ATTEMPT_FAILURE = 1,
        SG_ATTEMPT_SUCCESS = 2,
        SG_ATTEMPT_VOID = 3,    /* the daemon could not serve it (overload): counts nowhere */
};

int sg_store_attempt_add(sg_store *s, uint64_t time_usec, const char *user, const char *source,
                         enum sg_attempt_state state, uint64_t *ret_id);
int sg_store_attempt_settle(sg_store *s, uint64_t id, enum sg_attempt_state state); /* -ENOENT: no such id */
/* On start: every PENDING row becomes FAILURE (the connection was lost: "abandoned").
 * *ret_count = rows changed. */
int sg_store_attempt_abandon_pending(sg_store *s, uint64_t *ret_count);
typedef int (*sg_attempt_cb)(void *userdata, uint64_t id, uint64_t time_usec, const char *user,
                             const char *source, enum sg_attempt_state state);
/* Rows with time_usec >= since_usec, oldest first. A callback returning < 0 stops the walk
 * and that value is returned. */
int sg_store_attempt_foreach(sg_store *s, uint64_t since_usec, sg_attempt_cb cb, void *userdata);
int sg_store_attempt_prune(sg_store *s, uint64_t before_usec); /* settled rows only; PENDING stay */

/* ---- locks and their history (backoff level survives the lock itself) ---- */
struct sg_lock_row {
        const char *kind;      /* "user", "source", "user_source", "spray" */
        const char *key;
        uint64_t until_usec;   /* 0 = not locked now */
        uint32_t level;        /* how many locks so far (backoff exponent) */
        uint64_t last_lock_usec;
        uint64_t cleared_usec; /* failures at or before this time are ignored (unlock/success) */
        uint32_t failures;     /* failures that led to the last lock */
};
int sg_store_lock_put(sg_store *s, const struct sg_lock_row *l); /* insert or replace */
typedef int (*sg_lock_cb)(void *userdata, const struct sg_lock_row *l);
int sg_store_lock_foreach(sg_store *s, sg_lock_cb cb, void *userdata);
/* Deletes history whose last lock and clear are both older than before_usec. */
int sg_store_lock_prune(sg_store *s, uint64_t before_usec);

/* ---- fleet locks: decisions of the fleet helper (docs/state.md), one per kind and key ---- */
struct sg_fleet_lock_row {
        const char *kind;        /* "source" or "spray" */
        const char *key;         /* as a local lock of that kind keys it */
        uint64_t until_usec;
        const char *origin_host; /* the host id the decision came from (32 hex) */
        uint64_t decision_id;    /* the central decision's id */
        uint64_t applied_usec;   /* when this host applied it */
};
int sg_store_fleet_lock_put(sg_store *s, const struct sg_fleet_lock_row *l); /* insert or replace */
int sg_store_fleet_lock_delete(sg_store *s, const char *kind, const char *key); /* none is not an error */
typedef int (*sg_fleet_lock_cb)(void *userdata, const struct sg_fleet_lock_row *l);
int sg_store_fleet_lock_foreach(sg_store *s, sg_fleet_lock_cb cb, void *userdata);
/* Deletes fleet locks that ended before before_usec. */
int sg_store_fleet_lock_prune(sg_store *s, uint64_t before_usec);

/* ---- open login sessions (daemon/sessions.c keeps them in memory) ---- */
struct sg_session_row {
        const char *id;          /* public id, SG_SESSION_ID_LEN hex digits */
        const char *user, *service, *tty, *rhost, *logind_id; /* "" when absent */
        uint32_t uid;
        int32_t pid;             /* the leader */
        uint64_t pid_start;      /* the leader's start time (/proc/PID/stat, clock ticks since boot) */
        const char *boot_id;     /* the boot the leader ran in */
        uint64_t started_usec;   /* UTC */
};
int sg_store_session_put(sg_store *s, const struct sg_session_row *row); /* insert or replace */
int sg_store_session_delete(sg_store *s, const char *id); /* no row is not an error */
typedef int (*sg_session_cb)(void *userdata, const struct sg_session_row *row);
int sg_store_session_foreach(sg_store *s, sg_session_cb cb, void *userdata);

/* ---- one-time login tokens (daemon/tokens.c decides; docs/state.md) ---- */
#define SG_TOKEN_HASH_BYTES 32
struct sg_token_row {
        uint64_t id;               /* 1 .. 2^40-1 (common/tokenfmt.h) */
        const char *user;
        const uint8_t *hash;       /* SG_TOKEN_HASH_BYTES: keyed hash of the secret, never the secret */
        uint64_t issued_usec, expires_usec;
        uint64_t used_usec, revoked_usec; /* 0 = not (yet) */
        uint32_t issuer_uid;
};
/* Inserts a new token; -EEXIST when the id is taken. */
int sg_store_token_add(sg_store *s, const struct sg_token_row *row);
typedef int (*sg_token_cb)(void *userdata, const struct sg_token_row *row);
/* Calls cb with the row of id; -ENOENT when there is none. */
int sg_store_token_get(sg_store *s, uint64_t id, sg_token_cb cb, void *userdata);
/* Marks the token used at now_usec, only if it is still unused, unrevoked and unexpired
 * then: 0, or -ENOENT when it was not (the single write that decides a race). */
int sg_store_token_use(sg_store *s, uint64_t id, uint64_t now_usec);
/* Marks an unused, unrevoked token revoked: 0, or -ENOENT when there is no such token. */
int sg_store_token_revoke(sg_store *s, uint64_t id, uint64_t now_usec);
/* Every row, oldest first. */
int sg_store_token_foreach(sg_store *s, sg_token_cb cb, void *userdata);
int sg_store_token_count(sg_store *s, uint64_t *ret);
/* Deletes tokens that expired, were used or were revoked before before_usec. */
int sg_store_token_prune(sg_store *s, uint64_t before_usec);

/* ---- audit trail with an HMAC-SHA256 chain (types in audit.h) ---- */
/* Appends one row; mac = HMAC-SHA256(key, prev_mac || canonical(fields)). The canonical form
 * length-prefixes every field so no two different rows encode alike. */
int sg_store_audit_append(sg_store *s, const struct sg_audit_event *ev, uint64_t *ret_id);
int sg_store_audit_query(sg_store *s, const struct sg_audit_filter *f, sg_audit_cb cb, void *userdata);
/* Committed rows with after_id < id, oldest first, at most limit (1..), with their MAC and
 * epoch (struct sg_audit_row): the fleet helper's feed. *ret_max_id (may be NULL) = the
 * highest committed id in the table, 0 when it is empty. Rows of the open transaction are
 * never shown: they may yet be rolled back and their ids reused. */
int sg_store_audit_export(sg_store *s, uint64_t after_id, uint64_t limit, sg_audit_cb cb, void *userdata,
                          uint64_t *ret_max_id);
int sg_store_audit_count(sg_store *s, uint64_t *ret);
/* The chain's tail: id and MAC of the newest row (including appends not yet committed). The
 * manager copies it out of the database after each commit (audit.head), because the chain
 * alone cannot show that its newest rows were deleted while the daemon was down. */
void sg_store_audit_tail(const sg_store *s, uint64_t *ret_id, uint8_t ret_mac[SG_MAC_BYTES]);
/* Checks the prune anchor's own MAC first, then walks the chain from it. 0 = intact; 1 =
 * broken, *ret_bad_id = the first problem (the anchor: the last row id it stands for; a
 * deletion: the row after the gap; else the bad row) and a sentence in detail, which also
 * counts any later problems (the walk goes on past the first). -errno on I/O error.
 * Every id gap is a deletion. Newest rows deleted with no row after them are caught while
 * the store that wrote them is open, or after sg_store_audit_resume_after(). */
int sg_store_audit_verify(sg_store *s, uint64_t *ret_bad_id, char *detail, size_t detailsize);
/* Rows up to last_id existed (the manager's audit.head says so) but the chain ends before it:
 * the next row gets id last_id + 1, chained to the newest row still there, so verify reports
 * the missing ids on every run from now on. 0 also when nothing is missing; -EINVAL when
 * last_id is below the chain's tail. In memory until that next row commits. */
int sg_store_audit_resume_after(sg_store *s, uint64_t last_id);
/* After a verify: what it could not check, in words ("" when everything was checked). */
int sg_store_audit_verify_note(const sg_store *s, char *buf, size_t size);

/* ---- forward-secure keys (docs/threat-model.md) ----
 * From sg_store_audit_set_epoch() on, appended rows carry the epoch and its MAC key; the
 * seals go in the caller's transaction. See audit-chain.h. */
int sg_store_audit_set_epoch(sg_store *s, uint64_t epoch, const uint8_t key[SG_FSS_KEY_BYTES]);
int sg_store_audit_seal(sg_store *s, uint64_t time_usec);        /* ends the current epoch */
int sg_store_audit_seal_static(sg_store *s, uint64_t time_usec); /* ends the static-key rows, once */
int sg_store_audit_last_epoch(sg_store *s, int64_t *ret);        /* -1 when none */
/* A copy of the current epoch's key for a verification elsewhere (ret->set false: none);
 * the caller wipes it. */
void sg_store_audit_epoch_key(const sg_store *s, struct sg_audit_epoch_key *ret);
/* Deletes from the head: rows older than before_usec (0 = no age limit) and beyond max_rows
 * (0 = no row limit), recording the last deleted row's id and mac as the anchor, with the
 * anchor's own MAC (HMAC under the audit key, domain separated from the row MACs). */
int sg_store_audit_prune(sg_store *s, uint64_t before_usec, uint64_t max_rows, uint64_t *ret_deleted);
/* Deletes every audit row with an id up to cut, as sg_store_audit_prune() does (the anchor
 * stands for them); cheap, for pruning on every commit. */
int sg_store_audit_prune_upto(sg_store *s, uint64_t cut, uint64_t *ret_deleted);
/* Bytes the daemon may still use on the database's file system. */
int sg_store_free_bytes(sg_store *s, uint64_t *ret);
/* The same in bounded steps: at most limit rows (0 = no limit); *ret_more (may be NULL) says
 * rows past retention remain for the next call. Each step leaves a valid anchor. */
int sg_store_audit_prune_some(sg_store *s, uint64_t before_usec, uint64_t max_rows, uint64_t limit,
                              uint64_t *ret_deleted, bool *ret_more);
/* The tail verify must reach, as committed (appends of the open transaction left out): what
 * a verification on another connection is given (sg_store_reader_audit_verify). */
void sg_store_audit_committed_tail(const sg_store *s, struct sg_audit_tail *ret);

/* ---- a read-only connection for another thread (daemon/worker.c) ----
 * Its own SQLite handle on <state_dir>/secguard.db, opened read-only (no symbolic link
 * followed; the writer's sg_store_open() has checked the files). Each call below reads one
 * WAL snapshot, so the writer goes on committing meanwhile. One thread at a time may use it;
 * only sg_store_reader_free() closes it. */
typedef struct sg_store_reader sg_store_reader;

/* Same errors as sg_store_open(); the audit key is absorbed as by the store. */
int sg_store_reader_open(const char *state_dir, const uint8_t *audit_key, sg_store_reader **ret, char *err,
                         size_t errsize);
/* The same on a database file named directly (secguardctl audit verify --db); audit_key may
 * be NULL (rows written with the static key are then not MAC-checked). */
int sg_store_reader_open_file(const char *path, const uint8_t *audit_key, sg_store_reader **ret, char *err,
                              size_t errsize);
sg_store_reader *sg_store_reader_free(sg_store_reader *r); /* NULL-safe; returns NULL */
/* The key the next verify starts from (sg_audit_chain_set_verify_key()). */
int sg_store_reader_set_epoch_key(sg_store_reader *r, uint64_t epoch, const uint8_t key[SG_FSS_KEY_BYTES],
                                  bool current);
/* Wipes the key sg_store_reader_set_epoch_key() gave (and any derived from it). */
void sg_store_reader_forget_epoch_key(sg_store_reader *r);
/* sg_store_audit_last_epoch() on this connection. */
int sg_store_reader_audit_last_epoch(sg_store_reader *r, int64_t *ret);
/* After sg_store_reader_audit_verify(): what it could not check ("" when nothing). */
int sg_store_reader_audit_note(const sg_store_reader *r, char *buf, size_t size);
/* stop(userdata) is polled during long statements; true ends them with -ECANCELED. */
void sg_store_reader_set_stop(sg_store_reader *r, bool (*stop)(void *userdata), void *userdata);
/* sg_store_audit_verify() on this connection, against expect (sg_store_audit_committed_tail()
 * taken before the call); *ret_rows = rows in the same snapshot. */
int sg_store_reader_audit_verify(sg_store_reader *r, const struct sg_audit_tail *expect, uint64_t *ret_bad_id,
                                 uint64_t *ret_rows, char *detail, size_t detailsize);
int sg_store_reader_audit_query(sg_store_reader *r, const struct sg_audit_filter *f, sg_audit_cb cb, void *userdata);
