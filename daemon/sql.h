/* SPDX-License-Identifier: MIT */
/*
 * SQLite helpers for the two files that share the store's handle: store.c (open, schema,
 * transactions, attempts, locks) and audit-chain.c (the audit trail), and the one function
 * that turns SQLite result codes into -errno (sql.c). Nothing else in the daemon includes
 * this: outside those files no SQLite type or code is seen.
 */
#pragma once

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>


/* Maps a SQLite result code to -errno (the only place that knows SQLite codes). */
int sg_store_errno(int sqlite_rc);

/* Values above INT64_MAX cannot be stored; clamping keeps range filters meaningful. */
static inline sqlite3_int64 to_i64(uint64_t v) {
        return v > (uint64_t) INT64_MAX ? INT64_MAX : (sqlite3_int64) v;
}

static inline uint64_t col_u64(sqlite3_stmt *st, int col) {
        sqlite3_int64 v = sqlite3_column_int64(st, col);

        return v < 0 ? 0 : (uint64_t) v;
}

/* Reset and drop the bindings, so no statement keeps pointing at caller memory. */
static inline void stmt_done(sqlite3_stmt *st) {
        (void) sqlite3_reset(st);
        (void) sqlite3_clear_bindings(st);
}

static inline int bind_text(sqlite3_stmt *st, int idx, const char *s) {
        if (!s)
                return sqlite3_bind_null(st, idx);
        return sqlite3_bind_text(st, idx, s, -1, SQLITE_STATIC);
}

/* Runs a statement that returns no rows. */
static inline int step_done(sqlite3_stmt *st) {
        int rc = sqlite3_step(st);

        stmt_done(st);
        return rc == SQLITE_DONE ? 0 : sg_store_errno(rc);
}

/* Runs a statement returning at most one integer; *ret stays untouched when there is no row
 * or the value is NULL (then 0 is returned, and 1 when a value was read). */
static inline int step_int(sqlite3_stmt *st, sqlite3_int64 *ret) {
        int rc = sqlite3_step(st), r = 0;

        if (rc == SQLITE_ROW) {
                if (sqlite3_column_type(st, 0) != SQLITE_NULL) {
                        *ret = sqlite3_column_int64(st, 0);
                        r = 1;
                }
        } else if (rc != SQLITE_DONE)
                r = sg_store_errno(rc);
        stmt_done(st);
        return r;
}

/* Ends a walk over a statement's rows (rc: the last sqlite3_step(), r: the callback's last
 * return): the callback's error, else the step's, else 0. */
static inline int walk_end(sqlite3_stmt *st, int rc, int r) {
        if (r >= 0 && rc != SQLITE_DONE)
                r = sg_store_errno(rc);
        stmt_done(st);
        return r < 0 ? r : 0;
}

/* Prepares n statements once for the life of the handle. Our tables exist at our version by
 * now, so a statement that does not prepare means a schema that is not ours: -EBADMSG (or
 * -ENOMEM and the like), and sqlite3_errmsg(db) says which. Statements already prepared stay
 * in st[] for the caller to finalize. */
static inline int prepare_persistent(sqlite3 *db, const char *const sql[], sqlite3_stmt *st[], size_t n) {
        for (size_t i = 0; i < n; i++) {
                int rc = sqlite3_prepare_v3(db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &st[i], NULL);

                if (rc != SQLITE_OK)
                        return sg_store_errno(rc) == -EIO ? -EBADMSG : sg_store_errno(rc);
        }
        return 0;
}
