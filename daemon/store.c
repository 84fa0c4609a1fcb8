/* SPDX-License-Identifier: MIT */
/*
 * The daemon's SQLite store (see store.h). SQLite result codes stay in this file: every
 * public function returns 0 or -errno, and sg_store_errno() is the one place mapping them.
 *
 * The audit trail is an HMAC-SHA256 chain: each row's mac covers the previous row's mac and a
 * length-prefixed encoding of the row, its id included, so an edit, an insertion, a reordering
 * or a deletion in the middle breaks the chain at a row verify can name. When old rows are
 * pruned, the last deleted row's (id, mac) is kept as the anchor the walk starts from; the
 * anchor has a MAC of its own (domain separated from the row MACs), so it cannot be moved
 * forward over rows deleted from the head. An anchor without one (schema 1, or planted) is
 * reported as unauthenticated until the next prune replaces it.
 *
 * Deleting the newest rows (the tail) leaves a shorter chain that is still consistent. While
 * the store is open, verify compares the tail with the (id, mac) it keeps in memory. Across a
 * restart the manager keeps the tail outside the database (audit.head) and, when rows it
 * names are gone, calls sg_store_audit_resume_after(): the next row then gets the id after
 * the missing ones, and the gap stays in the chain for every later verify to report.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>
#include <sqlite3.h>

#include "store.h"

#define DB_NAME "secguard.db"
#define BUSY_TIMEOUT_MS 5000

enum stmt_id {
        ST_BEGIN,
        ST_COMMIT,
        ST_ROLLBACK,
        ST_SAVEPOINT,
        ST_RELEASE,
        ST_ROLLBACK_TO,
        ST_ATTEMPT_ADD,
        ST_ATTEMPT_SETTLE,
        ST_ATTEMPT_ABANDON,
        ST_ATTEMPT_FOREACH,
        ST_ATTEMPT_PRUNE,
        ST_LOCK_PUT,
        ST_LOCK_FOREACH,
        ST_LOCK_PRUNE,
        ST_AUDIT_INSERT,
        ST_AUDIT_COUNT,
        ST_AUDIT_LAST,
        ST_AUDIT_WALK,
        ST_AUDIT_CUT_ROWS,
        ST_AUDIT_CUT_AGE,
        ST_AUDIT_MAX_ID,
        ST_AUDIT_MAC_OF,
        ST_AUDIT_DELETE_UPTO,
        ST_ANCHOR_GET,
        ST_ANCHOR_PUT,
        ST_QUERY_ALL,
        ST_QUERY_TIME,
        ST_QUERY_USER,
        ST_QUERY_EVENT,
        ST_QUERY_RHOST,
        _ST_MAX,
};

/* Column order shared by the walk and the queries; read_audit_row() depends on it. */
#define AUDIT_COLS "id, time_usec, event, reason, user, user_sealed, service, rhost, tty, pid, uid, session_id, detail, mac"

/* Audit queries: ?1 user, ?2 event, ?3 rhost, ?4 since, ?5 until (inclusive), ?6 limit. Every
 * statement carries every filter, so a result never depends on which one was picked; the
 * choice only decides the index. Unary + keeps the planner off the indexes we do not want
 * for a given statement (checked with EXPLAIN QUERY PLAN). The inner select takes the newest
 * rows, the outer one returns them oldest first. */
#define QUERY_ORDERED(from, where, order)                                                       \
        "SELECT " AUDIT_COLS " FROM (SELECT " AUDIT_COLS " FROM " from " WHERE " where          \
        " ORDER BY " order " LIMIT ?6) ORDER BY id ASC"
#define QUERY(from, where) QUERY_ORDERED(from, where, "id DESC")
#define Q_USER "(?1 IS NULL OR +user = ?1)"
#define Q_EVENT "(?2 IS NULL OR +event = ?2)"
#define Q_RHOST "(?3 IS NULL OR +rhost = ?3)"
#define Q_TIME "+time_usec >= ?4 AND +time_usec <= ?5"

static const char *const stmt_sql[_ST_MAX] = {
        [ST_BEGIN] = "BEGIN IMMEDIATE",
        [ST_COMMIT] = "COMMIT",
        [ST_ROLLBACK] = "ROLLBACK",
        [ST_SAVEPOINT] = "SAVEPOINT sg_op",
        [ST_RELEASE] = "RELEASE sg_op",
        [ST_ROLLBACK_TO] = "ROLLBACK TO sg_op",
        [ST_ATTEMPT_ADD] = "INSERT INTO attempts(time_usec, user, source, state) VALUES(?1, ?2, ?3, ?4)",
        [ST_ATTEMPT_SETTLE] = "UPDATE attempts SET state = ?2 WHERE id = ?1",
        [ST_ATTEMPT_ABANDON] = "UPDATE attempts SET state = 1 WHERE state = 0",
        [ST_ATTEMPT_FOREACH] = "SELECT id, time_usec, user, source, state FROM attempts "
                               "WHERE time_usec >= ?1 ORDER BY time_usec, id",
        /* Pending rows stay: their connection still has to settle them. */
        [ST_ATTEMPT_PRUNE] = "DELETE FROM attempts WHERE time_usec < ?1 AND state != 0",
        [ST_LOCK_PUT] = "INSERT OR REPLACE INTO locks(kind, key, until_usec, level, last_lock_usec, "
                        "cleared_usec, failures) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        [ST_LOCK_FOREACH] = "SELECT kind, key, until_usec, level, last_lock_usec, cleared_usec, failures "
                            "FROM locks ORDER BY kind, key",
        [ST_LOCK_PRUNE] = "DELETE FROM locks WHERE until_usec < ?1 AND last_lock_usec < ?1 "
                          "AND cleared_usec < ?1",
        [ST_AUDIT_INSERT] = "INSERT INTO audit(id, time_usec, event, reason, user, user_sealed, service, "
                            "rhost, tty, pid, uid, session_id, detail, mac) "
                            "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        [ST_AUDIT_COUNT] = "SELECT count(*) FROM audit",
        [ST_AUDIT_LAST] = "SELECT id, mac FROM audit ORDER BY id DESC LIMIT 1",
        [ST_AUDIT_WALK] = "SELECT " AUDIT_COLS " FROM audit ORDER BY id ASC",
        [ST_AUDIT_CUT_ROWS] = "SELECT id FROM audit ORDER BY id DESC LIMIT 1 OFFSET ?1",
        [ST_AUDIT_CUT_AGE] = "SELECT min(id) FROM audit WHERE time_usec >= ?1",
        [ST_AUDIT_MAX_ID] = "SELECT max(id) FROM audit",
        [ST_AUDIT_MAC_OF] = "SELECT id, mac FROM audit WHERE id <= ?1 ORDER BY id DESC LIMIT 1",
        [ST_AUDIT_DELETE_UPTO] = "DELETE FROM audit WHERE id <= ?1",
        [ST_ANCHOR_GET] = "SELECT last_id, last_mac, mac FROM audit_anchor WHERE singleton = 1",
        [ST_ANCHOR_PUT] = "INSERT INTO audit_anchor(singleton, last_id, last_mac, mac) VALUES(1, ?1, ?2, ?3) "
                          "ON CONFLICT(singleton) DO UPDATE SET last_id = excluded.last_id, "
                          "last_mac = excluded.last_mac, mac = excluded.mac",
        [ST_QUERY_ALL] = QUERY("audit", Q_USER " AND " Q_EVENT " AND " Q_RHOST " AND " Q_TIME),
        /* Newest by time here, so the index yields them in order and the walk stops after
         * ?6 rows (ordering by id would sort the whole range: 1.6 s on 1M rows). Rows are
         * appended in time order, so this differs only across a clock step. */
        [ST_QUERY_TIME] = QUERY_ORDERED("audit INDEXED BY audit_time",
                                        "time_usec >= ?4 AND time_usec <= ?5 AND " Q_USER " AND " Q_EVENT
                                        " AND " Q_RHOST,
                                        "time_usec DESC, id DESC"),
        [ST_QUERY_USER] = QUERY("audit", "user = ?1 AND " Q_EVENT " AND " Q_RHOST " AND " Q_TIME),
        [ST_QUERY_EVENT] = QUERY("audit", "event = ?2 AND " Q_USER " AND " Q_RHOST " AND " Q_TIME),
        [ST_QUERY_RHOST] = QUERY("audit", "rhost = ?3 AND " Q_USER " AND " Q_EVENT " AND " Q_TIME),
};

/* Migration i brings the schema from user_version i to i + 1. Append only; never edit one
 * that has shipped. Later tables (sessions, tokens) come as new entries. */
static const char *const migrations[] = {
        "CREATE TABLE attempts("
        "  id INTEGER PRIMARY KEY,"
        "  time_usec INTEGER NOT NULL,"
        "  user TEXT NOT NULL,"
        "  source TEXT NOT NULL,"
        "  state INTEGER NOT NULL);"
        "CREATE INDEX attempts_time ON attempts(time_usec);"
        "CREATE INDEX attempts_pending ON attempts(state) WHERE state = 0;"
        "CREATE TABLE locks("
        "  kind TEXT NOT NULL,"
        "  key TEXT NOT NULL,"
        "  until_usec INTEGER NOT NULL,"
        "  level INTEGER NOT NULL,"
        "  last_lock_usec INTEGER NOT NULL,"
        "  cleared_usec INTEGER NOT NULL,"
        "  failures INTEGER NOT NULL,"
        "  PRIMARY KEY(kind, key)) WITHOUT ROWID;"
        "CREATE TABLE audit("
        "  id INTEGER PRIMARY KEY,"
        "  time_usec INTEGER NOT NULL,"
        "  event TEXT NOT NULL,"
        "  reason TEXT,"
        "  user TEXT,"
        "  user_sealed BLOB,"
        "  service TEXT,"
        "  rhost TEXT,"
        "  tty TEXT,"
        "  pid INTEGER,"
        "  uid INTEGER,"
        "  session_id TEXT,"
        "  detail TEXT,"
        "  mac BLOB NOT NULL);"
        "CREATE INDEX audit_user ON audit(user, id);"
        "CREATE INDEX audit_event ON audit(event, id);"
        "CREATE INDEX audit_rhost ON audit(rhost, id);"
        "CREATE INDEX audit_time ON audit(time_usec);"
        "CREATE TABLE audit_anchor("
        "  singleton INTEGER PRIMARY KEY CHECK(singleton = 1),"
        "  last_id INTEGER NOT NULL,"
        "  last_mac BLOB NOT NULL);",
        /* 2: the anchor's own MAC. Left NULL for an anchor already there: it was never
         * authenticated, and MACing it now would vouch for whatever the file holds. */
        "ALTER TABLE audit_anchor ADD COLUMN mac BLOB;",
};
_Static_assert(sizeof migrations / sizeof migrations[0] == SG_STORE_SCHEMA_VERSION,
               "one migration per schema version");

struct chain {
        uint64_t last_id;
        uint8_t last_mac[SG_MAC_BYTES];
};

struct sg_store {
        sqlite3 *db;
        sqlite3_stmt *st[_ST_MAX];
        /* HMAC state with the audit key already absorbed: as secret as the key, so it lives in
         * sodium_malloc'ed, read-only memory; copying it saves two SHA-256 blocks per row. */
        crypto_auth_hmacsha256_state *keyed;
        struct chain chain;    /* tail of the audit chain, including uncommitted appends */
        struct chain chain_at_begin; /* restored when the transaction does not commit */
        bool in_tx;
};

int sg_store_errno(int sqlite_rc) {
        switch (sqlite_rc & 0xff) {
        case SQLITE_OK:
        case SQLITE_ROW:
        case SQLITE_DONE:
                return 0;
        case SQLITE_FULL:
                return -ENOSPC;
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
                return -EBUSY;
        case SQLITE_NOMEM:
                return -ENOMEM;
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB:
                return -EBADMSG;
        case SQLITE_READONLY:
                return -EROFS;
        case SQLITE_IOERR:
                return -EIO;
        case SQLITE_CONSTRAINT:
                return -EEXIST;
        case SQLITE_PERM:
        case SQLITE_AUTH:
                return -EPERM;
        case SQLITE_TOOBIG:
                return -E2BIG;
        case SQLITE_RANGE:
        case SQLITE_MISMATCH:
                return -EINVAL;
        default:
                return -EIO;
        }
}

static void set_err(char *err, size_t errsize, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errsize, const char *fmt, ...) {
        va_list ap;

        if (!err || errsize == 0)
                return;
        va_start(ap, fmt);
        (void) vsnprintf(err, errsize, fmt, ap);
        va_end(ap);
}

/* Values above INT64_MAX cannot be stored; clamping keeps range filters meaningful. */
static sqlite3_int64 to_i64(uint64_t v) {
        return v > (uint64_t) INT64_MAX ? INT64_MAX : (sqlite3_int64) v;
}

static uint64_t col_u64(sqlite3_stmt *st, int col) {
        sqlite3_int64 v = sqlite3_column_int64(st, col);

        return v < 0 ? 0 : (uint64_t) v;
}

/* Reset and drop the bindings, so no statement keeps pointing at caller memory. */
static void stmt_done(sqlite3_stmt *st) {
        (void) sqlite3_reset(st);
        (void) sqlite3_clear_bindings(st);
}

static int bind_text(sqlite3_stmt *st, int idx, const char *s) {
        if (!s)
                return sqlite3_bind_null(st, idx);
        return sqlite3_bind_text(st, idx, s, -1, SQLITE_STATIC);
}

/* Runs a statement that returns no rows. */
static int step_done(sqlite3_stmt *st) {
        int rc = sqlite3_step(st);

        stmt_done(st);
        return rc == SQLITE_DONE ? 0 : sg_store_errno(rc);
}

/* Runs a statement returning at most one integer; *ret stays untouched when there is no row
 * or the value is NULL (then 0 is returned, and 1 when a value was read). */
static int step_int(sqlite3_stmt *st, sqlite3_int64 *ret) {
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

/* ---- transactions ---- */

/* SQLite rolls a whole transaction back by itself after some errors (disk full, I/O, out of
 * memory). Then our in-memory chain tail describes rows that no longer exist. */
static bool tx_lost(sg_store *s) {
        if (!s->in_tx || !sqlite3_get_autocommit(s->db))
                return false;
        s->chain = s->chain_at_begin;
        return true;
}

/* Every write starts here: after a lost transaction, nothing more is written until the caller
 * has seen the failure through commit or rollback (no write may silently go to autocommit). */
static int write_check(sg_store *s) {
        if (!s)
                return -EINVAL;
        return tx_lost(s) ? -EIO : 0;
}

int sg_store_begin(sg_store *s) {
        int r;

        if (!s)
                return -EINVAL;
        if (s->in_tx)
                return -EBUSY;
        r = step_done(s->st[ST_BEGIN]);
        if (r < 0)
                return r;
        s->chain_at_begin = s->chain;
        s->in_tx = true;
        return 0;
}

int sg_store_commit(sg_store *s) {
        int r;

        if (!s || !s->in_tx)
                return -EINVAL;
        if (tx_lost(s)) {
                s->in_tx = false;
                return -EIO;
        }
        r = step_done(s->st[ST_COMMIT]);
        if (r < 0) {
                /* Busy: still open, the caller may retry or roll back. Otherwise gone. */
                if (tx_lost(s))
                        s->in_tx = false;
                return r;
        }
        s->in_tx = false;
        return 0;
}

int sg_store_rollback(sg_store *s) {
        int r = 0;

        if (!s)
                return -EINVAL;
        if (!s->in_tx)
                return 0;
        if (!sqlite3_get_autocommit(s->db))
                r = step_done(s->st[ST_ROLLBACK]);
        s->chain = s->chain_at_begin;
        s->in_tx = false;
        return r;
}

bool sg_store_in_transaction(const sg_store *s) {
        return s && s->in_tx;
}

/* Groups several statements atomically, inside the caller's transaction (a savepoint) or on
 * its own (BEGIN IMMEDIATE). These never touch the audit chain tail, so there is nothing to
 * restore. */
static int op_begin(sg_store *s) {
        return step_done(s->st[s->in_tx ? ST_SAVEPOINT : ST_BEGIN]);
}

static int op_end(sg_store *s, int r) {
        int q;

        if (r >= 0) {
                q = step_done(s->st[s->in_tx ? ST_RELEASE : ST_COMMIT]);
                if (q >= 0)
                        return r;
                r = q;
        }
        if (sqlite3_get_autocommit(s->db)) {
                (void) tx_lost(s);
                return r;
        }
        if (s->in_tx) {
                (void) step_done(s->st[ST_ROLLBACK_TO]);
                (void) step_done(s->st[ST_RELEASE]);
        } else
                (void) step_done(s->st[ST_ROLLBACK]);
        return r;
}

/* ---- opening ---- */

static int check_state_dir(const char *dir, char *err, size_t errsize) {
        struct stat st;
        int fd, r = 0;

        fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
                r = -errno;
                /* O_DIRECTORY|O_NOFOLLOW reports a symlink as ENOTDIR: say which it is. */
                if ((r == -ENOTDIR || r == -ELOOP) && lstat(dir, &st) == 0 && S_ISLNK(st.st_mode))
                        set_err(err, errsize, "state directory %s is a symbolic link; refusing to follow it; "
                                "fix: point state_dir at the real directory", dir);
                else
                        set_err(err, errsize, "cannot open state directory %s: %s", dir, strerror(-r));
                return r;
        }
        if (fstat(fd, &st) < 0) {
                r = -errno;
                set_err(err, errsize, "cannot stat state directory %s: %s", dir, strerror(-r));
        } else if (st.st_uid != geteuid()) {
                r = -EPERM;
                set_err(err, errsize, "state directory %s is owned by uid %u, not by uid %u running secguardd; fix: chown %u %s",
                        dir, (unsigned) st.st_uid, (unsigned) geteuid(), (unsigned) geteuid(), dir);
        } else if (st.st_mode & 022) {
                r = -EPERM;
                set_err(err, errsize, "state directory %s is group/world writable (mode %04o); fix: chmod 0700 %s",
                        dir, (unsigned) (st.st_mode & 07777), dir);
        }
        close(fd);
        return r;
}

/* Checks an existing file without following a symlink. 0 when safe or absent. */
static int check_db_file(const char *path, char *err, size_t errsize) {
        struct stat st;

        if (lstat(path, &st) < 0) {
                if (errno == ENOENT)
                        return 0;
                set_err(err, errsize, "cannot stat %s: %s", path, strerror(errno));
                return -errno;
        }
        if (S_ISLNK(st.st_mode)) {
                set_err(err, errsize, "%s is a symbolic link; refusing to follow it; fix: replace it with the real file (mode 0600)",
                        path);
                return -EPERM;
        }
        if (!S_ISREG(st.st_mode)) {
                set_err(err, errsize, "%s is not a regular file; fix: move it aside", path);
                return -EPERM;
        }
        if (st.st_uid != geteuid()) {
                set_err(err, errsize, "%s is owned by uid %u, not by uid %u running secguardd; fix: chown %u %s",
                        path, (unsigned) st.st_uid, (unsigned) geteuid(), (unsigned) geteuid(), path);
                return -EPERM;
        }
        if (st.st_mode & 077) {
                set_err(err, errsize, "%s is readable or writable by group/others (mode %04o); fix: chmod 0600 %s",
                        path, (unsigned) (st.st_mode & 07777), path);
                return -EPERM;
        }
        return 0;
}

static int check_db_files(const char *path, char *err, size_t errsize) {
        static const char *const suffixes[] = { "", "-wal", "-shm", "-journal" };
        char p[PATH_MAX];

        for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
                int r;

                if ((size_t) snprintf(p, sizeof p, "%s%s", path, suffixes[i]) >= sizeof p)
                        return -ENAMETOOLONG;
                r = check_db_file(p, err, errsize);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int bad_db(const char *path, int rc, char *err, size_t errsize) {
        int r = sg_store_errno(rc);

        if (r == -EBADMSG)
                set_err(err, errsize,
                        "%s is not a secguard database or is corrupt; move it aside and restart (it is never recreated automatically)",
                        path);
        else
                set_err(err, errsize, "cannot read %s: %s", path, strerror(-r));
        return r;
}

/* One setup statement (PRAGMAs and the like); an optional single text or integer answer. */
static int exec_setup(sqlite3 *db, const char *sql, char *ret_text, size_t textsize, sqlite3_int64 *ret_int) {
        sqlite3_stmt *st = NULL;
        int rc;

        rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
        if (rc != SQLITE_OK)
                return rc;
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                if (ret_text) {
                        const unsigned char *t = sqlite3_column_text(st, 0);

                        snprintf(ret_text, textsize, "%s", t ? (const char *) t : "");
                }
                if (ret_int)
                        *ret_int = sqlite3_column_int64(st, 0);
                while ((rc = sqlite3_step(st)) == SQLITE_ROW)
                        ;
        }
        if (rc == SQLITE_DONE)
                rc = SQLITE_OK;
        (void) sqlite3_finalize(st);
        return rc;
}

/* Databases up to this size get PRAGMA quick_check at open (a few ms per MiB); larger ones
 * rely on SQLite reporting damage when a statement reaches it, so start-up stays fast. */
#define QUICK_CHECK_MAX_BYTES (64ll * 1024 * 1024)

static int check_integrity(sqlite3 *db, const char *path, char *err, size_t errsize) {
        sqlite3_int64 pages = 0, page_size = 0;
        char answer[256] = "";
        int rc;

        rc = exec_setup(db, "PRAGMA page_count", NULL, 0, &pages);
        if (rc == SQLITE_OK)
                rc = exec_setup(db, "PRAGMA page_size", NULL, 0, &page_size);
        if (rc != SQLITE_OK)
                return bad_db(path, rc, err, errsize);
        if (pages * page_size > QUICK_CHECK_MAX_BYTES)
                return 0;
        rc = exec_setup(db, "PRAGMA quick_check(1)", answer, sizeof answer, NULL);
        if (rc != SQLITE_OK)
                return bad_db(path, rc, err, errsize);
        if (strcmp(answer, "ok") != 0)
                return bad_db(path, SQLITE_CORRUPT, err, errsize);
        return 0;
}

static int migrate(sqlite3 *db, const char *path, char *err, size_t errsize) {
        for (int target = 1; target <= SG_STORE_SCHEMA_VERSION; target++) {
                sqlite3_int64 version = 0;
                char sql[64], *msg = NULL;
                int rc;

                rc = exec_setup(db, "BEGIN IMMEDIATE", NULL, 0, NULL);
                if (rc != SQLITE_OK)
                        return bad_db(path, rc, err, errsize);
                /* Read again under the write lock: never run a migration twice. */
                rc = exec_setup(db, "PRAGMA user_version", NULL, 0, &version);
                if (rc == SQLITE_OK && version < target) {
                        rc = sqlite3_exec(db, migrations[target - 1], NULL, NULL, &msg);
                        if (rc == SQLITE_OK) {
                                snprintf(sql, sizeof sql, "PRAGMA user_version = %d", target);
                                rc = exec_setup(db, sql, NULL, 0, NULL);
                        }
                }
                if (rc == SQLITE_OK)
                        rc = exec_setup(db, "COMMIT", NULL, 0, NULL);
                if (rc != SQLITE_OK) {
                        int r = sg_store_errno(rc);

                        if (!sqlite3_get_autocommit(db))
                                (void) exec_setup(db, "ROLLBACK", NULL, 0, NULL);
                        set_err(err, errsize, "cannot migrate %s to schema version %d: %s", path, target,
                                msg ? msg : sqlite3_errstr(rc));
                        sqlite3_free(msg);
                        return r;
                }
        }
        return 0;
}

/* Everything that must hold before we write anything: a database that is ours and not newer
 * than this build. A foreign or garbage file is left exactly as it is. */
static int check_schema(sqlite3 *db, const char *path, char *err, size_t errsize) {
        sqlite3_int64 version = 0, objects = 0;
        int rc;

        rc = exec_setup(db, "PRAGMA user_version", NULL, 0, &version);
        if (rc == SQLITE_OK)
                rc = exec_setup(db, "SELECT count(*) FROM sqlite_schema", NULL, 0, &objects);
        if (rc != SQLITE_OK)
                return bad_db(path, rc, err, errsize);
        if (version > SG_STORE_SCHEMA_VERSION) {
                set_err(err, errsize,
                        "%s has schema version %lld, newer than version %d this secguardd understands; "
                        "run a newer secguardd or restore a backup",
                        path, (long long) version, SG_STORE_SCHEMA_VERSION);
                return -EPROTO;
        }
        if (version < 0 || (version == 0 && objects > 0))
                return bad_db(path, SQLITE_NOTADB, err, errsize);
        return 0;
}

static int configure(sqlite3 *db, bool sync_full, const char *path, char *err, size_t errsize) {
        char mode[16] = "";
        int rc;

        (void) sqlite3_extended_result_codes(db, 1);
        if (sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL) != SQLITE_OK ||
            sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL) != SQLITE_OK ||
            sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, NULL) != SQLITE_OK ||
            sqlite3_db_config(db, SQLITE_DBCONFIG_DQS_DML, 0, NULL) != SQLITE_OK ||
            sqlite3_db_config(db, SQLITE_DBCONFIG_DQS_DDL, 0, NULL) != SQLITE_OK) {
                set_err(err, errsize, "cannot configure SQLite for %s", path);
                return -EIO;
        }
        (void) sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);

        /* No PRAGMA quick_check here: it reads the whole file (~165 ms for 500k audit rows,
         * bench/bench_audit_query.c), too slow for every start. Damage surfaces as
         * SQLITE_CORRUPT (-EBADMSG) from the statement that meets it. */
        rc = check_schema(db, path, err, errsize);
        if (rc < 0)
                return rc;

        rc = exec_setup(db, "PRAGMA journal_mode = WAL", mode, sizeof mode, NULL);
        if (rc != SQLITE_OK)
                return bad_db(path, rc, err, errsize);
        if (strcmp(mode, "wal") != 0) {
                set_err(err, errsize, "%s: cannot switch to WAL journal mode (got \"%s\")", path, mode);
                return -EIO;
        }
        rc = exec_setup(db, sync_full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL", NULL, 0, NULL);
        if (rc == SQLITE_OK)
                rc = exec_setup(db, "PRAGMA foreign_keys = ON", NULL, 0, NULL);
        if (rc != SQLITE_OK)
                return bad_db(path, rc, err, errsize);
        return 0;
}

static int prepare_all(sg_store *s, const char *path, char *err, size_t errsize) {
        for (int i = 0; i < _ST_MAX; i++) {
                int rc = sqlite3_prepare_v3(s->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL);

                if (rc != SQLITE_OK) {
                        /* Our tables exist at our version, so this means a tampered schema. */
                        set_err(err, errsize,
                                "%s: unexpected schema (%s); the database is not a secguard database or is corrupt; "
                                "move it aside and restart (it is never recreated automatically)",
                                path, sqlite3_errmsg(s->db));
                        return sg_store_errno(rc) == -EIO ? -EBADMSG : sg_store_errno(rc);
                }
        }
        return 0;
}

static void copy_mac(uint8_t dst[SG_MAC_BYTES], const void *src, int len) {
        memset(dst, 0, SG_MAC_BYTES);
        if (src && len > 0)
                memcpy(dst, src, (size_t) len < SG_MAC_BYTES ? (size_t) len : SG_MAC_BYTES);
}

/* The chain continues from the newest row, else from the anchor left by pruning, else from
 * zeros. A damaged tail mac is carried on as is: verify reports that row. */
static int load_chain(sg_store *s) {
        sqlite3_stmt *st = s->st[ST_AUDIT_LAST];
        int rc;

        memset(&s->chain, 0, sizeof s->chain);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                s->chain.last_id = col_u64(st, 0);
                copy_mac(s->chain.last_mac, sqlite3_column_blob(st, 1), sqlite3_column_bytes(st, 1));
        }
        stmt_done(st);
        if (rc == SQLITE_ROW)
                return 0;
        if (rc != SQLITE_DONE)
                return sg_store_errno(rc);

        st = s->st[ST_ANCHOR_GET];
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                s->chain.last_id = col_u64(st, 0);
                copy_mac(s->chain.last_mac, sqlite3_column_blob(st, 1), sqlite3_column_bytes(st, 1));
        }
        stmt_done(st);
        return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : sg_store_errno(rc);
}

int sg_store_open(const struct sg_store_options *o, sg_store **ret, char *err, size_t errsize) {
        char path[PATH_MAX];
        sg_store *s;
        mode_t old_umask;
        int r, rc;

        set_err(err, errsize, "%s", "");
        if (!o || !o->state_dir || !o->audit_key || !ret) {
                set_err(err, errsize, "store: state directory and audit key are required");
                return -EINVAL;
        }
        if (sodium_init() < 0) {
                set_err(err, errsize, "libsodium failed to initialise");
                return -EIO;
        }
        if ((size_t) snprintf(path, sizeof path, "%s/%s", o->state_dir, DB_NAME) >= sizeof path - 16) {
                set_err(err, errsize, "state directory path %s is too long", o->state_dir);
                return -ENAMETOOLONG;
        }
        r = check_state_dir(o->state_dir, err, errsize);
        if (r < 0)
                return r;
        r = check_db_files(path, err, errsize);
        if (r < 0)
                return r;

        s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        s->keyed = sodium_malloc(sizeof *s->keyed);
        if (!s->keyed) {
                free(s);
                return -ENOMEM;
        }
        crypto_auth_hmacsha256_init(s->keyed, o->audit_key, SG_AUDIT_KEY_BYTES);
        (void) sodium_mprotect_readonly(s->keyed);

        /* The daemon is single-threaded, so the process umask may be borrowed: a new database
         * is created 0600, and SQLite gives -wal/-shm the database file's mode. */
        old_umask = umask(077);
        rc = sqlite3_open_v2(path, &s->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOFOLLOW |
                             SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
                             NULL);
        if (rc != SQLITE_OK) {
                r = sg_store_errno(rc);
                set_err(err, errsize, "cannot open %s: %s", path, s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
                goto fail;
        }
        r = configure(s->db, o->sync_full, path, err, errsize);
        if (r >= 0)
                r = check_integrity(s->db, path, err, errsize);
        if (r >= 0)
                r = migrate(s->db, path, err, errsize);
        if (r >= 0)
                r = prepare_all(s, path, err, errsize);
        if (r >= 0) {
                r = load_chain(s);
                if (r < 0)
                        (void) bad_db(path, SQLITE_IOERR, err, errsize);
        }
        if (r < 0)
                goto fail;
        (void) umask(old_umask);
        *ret = s;
        return 0;
fail:
        (void) umask(old_umask);
        sg_store_free(s);
        return r;
}

sg_store *sg_store_free(sg_store *s) {
        if (!s)
                return NULL;
        if (s->db) {
                int rc;

                if (s->in_tx && !sqlite3_get_autocommit(s->db))
                        (void) step_done(s->st[ST_ROLLBACK]);
                for (int i = 0; i < _ST_MAX; i++)
                        (void) sqlite3_finalize(s->st[i]);
                rc = sqlite3_close(s->db);
                /* Busy here means a statement we forgot to finalize: a bug. */
                assert(rc == SQLITE_OK);
                if (rc != SQLITE_OK) {
                        sqlite3_stmt *st;

                        while ((st = sqlite3_next_stmt(s->db, NULL)))
                                (void) sqlite3_finalize(st);
                        (void) sqlite3_close(s->db);
                }
        }
        if (s->keyed)
                sodium_free(s->keyed);
        sodium_memzero(&s->chain, sizeof s->chain);
        sodium_memzero(&s->chain_at_begin, sizeof s->chain_at_begin);
        free(s);
        return NULL;
}

/* ---- attempts ---- */

static bool valid_state(enum sg_attempt_state state) {
        return state == SG_ATTEMPT_PENDING || state == SG_ATTEMPT_FAILURE || state == SG_ATTEMPT_SUCCESS;
}

int sg_store_attempt_add(sg_store *s, uint64_t time_usec, const char *user, const char *source,
                         enum sg_attempt_state state, uint64_t *ret_id) {
        sqlite3_stmt *st;
        int r;

        if (!user || !source || !valid_state(state))
                return -EINVAL;
        r = write_check(s);
        if (r < 0)
                return r;
        st = s->st[ST_ATTEMPT_ADD];
        (void) sqlite3_bind_int64(st, 1, to_i64(time_usec));
        (void) bind_text(st, 2, user);
        (void) bind_text(st, 3, source);
        (void) sqlite3_bind_int(st, 4, (int) state);
        r = step_done(st);
        if (r < 0)
                return r;
        if (ret_id)
                *ret_id = (uint64_t) sqlite3_last_insert_rowid(s->db);
        return 0;
}

int sg_store_attempt_settle(sg_store *s, uint64_t id, enum sg_attempt_state state) {
        sqlite3_stmt *st;
        int r;

        if (!valid_state(state))
                return -EINVAL;
        r = write_check(s);
        if (r < 0)
                return r;
        st = s->st[ST_ATTEMPT_SETTLE];
        (void) sqlite3_bind_int64(st, 1, to_i64(id));
        (void) sqlite3_bind_int(st, 2, (int) state);
        r = step_done(st);
        if (r < 0)
                return r;
        return sqlite3_changes(s->db) > 0 ? 0 : -ENOENT;
}

int sg_store_attempt_abandon_pending(sg_store *s, uint64_t *ret_count) {
        int r = write_check(s);

        if (r < 0)
                return r;
        r = step_done(s->st[ST_ATTEMPT_ABANDON]);
        if (r < 0)
                return r;
        if (ret_count)
                *ret_count = (uint64_t) sqlite3_changes64(s->db);
        return 0;
}

int sg_store_attempt_foreach(sg_store *s, uint64_t since_usec, sg_attempt_cb cb, void *userdata) {
        sqlite3_stmt *st;
        int rc, r = 0;

        if (!s || !cb)
                return -EINVAL;
        st = s->st[ST_ATTEMPT_FOREACH];
        (void) sqlite3_bind_int64(st, 1, to_i64(since_usec));
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                const char *user = (const char *) sqlite3_column_text(st, 2);
                const char *source = (const char *) sqlite3_column_text(st, 3);
                int state = sqlite3_column_int(st, 4);

                if (!user || !source || !valid_state((enum sg_attempt_state) state))
                        continue; /* not a row we wrote; replaying it could only mislead */
                r = cb(userdata, col_u64(st, 0), col_u64(st, 1), user, source, (enum sg_attempt_state) state);
                if (r < 0)
                        break;
        }
        if (r >= 0 && rc != SQLITE_DONE)
                r = sg_store_errno(rc);
        stmt_done(st);
        return r < 0 ? r : 0;
}

int sg_store_attempt_prune(sg_store *s, uint64_t before_usec) {
        int r = write_check(s);

        if (r < 0)
                return r;
        (void) sqlite3_bind_int64(s->st[ST_ATTEMPT_PRUNE], 1, to_i64(before_usec));
        return step_done(s->st[ST_ATTEMPT_PRUNE]);
}

/* ---- locks ---- */

int sg_store_lock_put(sg_store *s, const struct sg_lock_row *l) {
        sqlite3_stmt *st;
        int r;

        if (!l || !l->kind || !l->key)
                return -EINVAL;
        r = write_check(s);
        if (r < 0)
                return r;
        st = s->st[ST_LOCK_PUT];
        (void) bind_text(st, 1, l->kind);
        (void) bind_text(st, 2, l->key);
        (void) sqlite3_bind_int64(st, 3, to_i64(l->until_usec));
        (void) sqlite3_bind_int64(st, 4, l->level);
        (void) sqlite3_bind_int64(st, 5, to_i64(l->last_lock_usec));
        (void) sqlite3_bind_int64(st, 6, to_i64(l->cleared_usec));
        (void) sqlite3_bind_int64(st, 7, l->failures);
        return step_done(st);
}

static uint32_t col_u32(sqlite3_stmt *st, int col) {
        sqlite3_int64 v = sqlite3_column_int64(st, col);

        return v < 0 ? 0 : v > UINT32_MAX ? UINT32_MAX : (uint32_t) v;
}

int sg_store_lock_foreach(sg_store *s, sg_lock_cb cb, void *userdata) {
        sqlite3_stmt *st;
        int rc, r = 0;

        if (!s || !cb)
                return -EINVAL;
        st = s->st[ST_LOCK_FOREACH];
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                struct sg_lock_row l = {
                        .kind = (const char *) sqlite3_column_text(st, 0),
                        .key = (const char *) sqlite3_column_text(st, 1),
                        .until_usec = col_u64(st, 2),
                        .level = col_u32(st, 3),
                        .last_lock_usec = col_u64(st, 4),
                        .cleared_usec = col_u64(st, 5),
                        .failures = col_u32(st, 6),
                };

                if (!l.kind || !l.key)
                        continue;
                r = cb(userdata, &l);
                if (r < 0)
                        break;
        }
        if (r >= 0 && rc != SQLITE_DONE)
                r = sg_store_errno(rc);
        stmt_done(st);
        return r < 0 ? r : 0;
}

int sg_store_lock_prune(sg_store *s, uint64_t before_usec) {
        int r = write_check(s);

        if (r < 0)
                return r;
        (void) sqlite3_bind_int64(s->st[ST_LOCK_PRUNE], 1, to_i64(before_usec));
        return step_done(s->st[ST_LOCK_PRUNE]);
}

/* ---- audit chain ---- */

static void mac_u64(crypto_auth_hmacsha256_state *h, uint64_t v) {
        uint8_t b[8];

        for (int i = 0; i < 8; i++)
                b[i] = (uint8_t) (v >> (56 - 8 * i));
        crypto_auth_hmacsha256_update(h, b, sizeof b);
}

/* Presence byte, then a 32-bit length, then the bytes: NULL, "" and any two different field
 * splits all encode differently. */
static void mac_field(crypto_auth_hmacsha256_state *h, const void *p, size_t len) {
        uint8_t hdr[5] = { p ? 1 : 0 };

        if (!p)
                len = 0;
        len = len > UINT32_MAX ? UINT32_MAX : len; /* rows that large cannot be stored anyway */
        hdr[1] = (uint8_t) (len >> 24);
        hdr[2] = (uint8_t) (len >> 16);
        hdr[3] = (uint8_t) (len >> 8);
        hdr[4] = (uint8_t) len;
        crypto_auth_hmacsha256_update(h, hdr, sizeof hdr);
        if (len)
                crypto_auth_hmacsha256_update(h, p, len);
}

static size_t str_len(const char *s) {
        return s ? strlen(s) : 0;
}

/* mac = HMAC-SHA256(key, prev_mac || id || time || event, reason, user, user_sealed, service,
 * rhost, tty, session_id, detail || pid || uid). Text lengths are passed in, so the walk can
 * hash exactly the bytes stored. */
struct mac_input {
        uint64_t id, time_usec;
        const void *f[9];
        size_t len[9];
        int64_t pid, uid;
};

static void compute_mac(const sg_store *s, const uint8_t prev[SG_MAC_BYTES], const struct mac_input *in,
                        uint8_t out[SG_MAC_BYTES]) {
        crypto_auth_hmacsha256_state h;

        memcpy(&h, s->keyed, sizeof h);
        crypto_auth_hmacsha256_update(&h, prev, SG_MAC_BYTES);
        mac_u64(&h, in->id);
        mac_u64(&h, in->time_usec);
        for (size_t i = 0; i < 9; i++)
                mac_field(&h, in->f[i], in->len[i]);
        mac_u64(&h, (uint64_t) in->pid);
        mac_u64(&h, (uint64_t) in->uid);
        crypto_auth_hmacsha256_final(&h, out);
        sodium_memzero(&h, sizeof h);
}

static void mac_input_from_event(struct mac_input *in, uint64_t id, const struct sg_audit_event *ev) {
        const char *texts[9] = { ev->event, ev->reason, ev->user, NULL, ev->service,
                                 ev->rhost, ev->tty, ev->session_id, ev->detail };

        *in = (struct mac_input) { .id = id, .time_usec = ev->time_usec, .pid = ev->pid, .uid = ev->uid };
        for (size_t i = 0; i < 9; i++) {
                in->f[i] = texts[i];
                in->len[i] = str_len(texts[i]);
        }
        in->f[3] = ev->user_sealed;
        in->len[3] = ev->user_sealed ? ev->user_sealed_len : 0;
}

int sg_store_audit_append(sg_store *s, const struct sg_audit_event *ev, uint64_t *ret_id) {
        uint8_t mac[SG_MAC_BYTES];
        struct mac_input in;
        sqlite3_stmt *st;
        uint64_t id;
        int r;

        if (!ev || !ev->event || (ev->user_sealed && ev->user_sealed_len > INT32_MAX))
                return -EINVAL;
        r = write_check(s);
        if (r < 0)
                return r;
        if (s->chain.last_id >= (uint64_t) INT64_MAX)
                return -EOVERFLOW;
        id = s->chain.last_id + 1;
        /* Times past INT64_MAX are stored clamped; hash what is stored. */
        mac_input_from_event(&in, id, ev);
        in.time_usec = (uint64_t) to_i64(ev->time_usec);
        compute_mac(s, s->chain.last_mac, &in, mac);

        st = s->st[ST_AUDIT_INSERT];
        (void) sqlite3_bind_int64(st, 1, (sqlite3_int64) id);
        (void) sqlite3_bind_int64(st, 2, (sqlite3_int64) in.time_usec);
        (void) bind_text(st, 3, ev->event);
        (void) bind_text(st, 4, ev->reason);
        (void) bind_text(st, 5, ev->user);
        if (ev->user_sealed)
                (void) sqlite3_bind_blob(st, 6, ev->user_sealed, (int) ev->user_sealed_len, SQLITE_STATIC);
        else
                (void) sqlite3_bind_null(st, 6);
        (void) bind_text(st, 7, ev->service);
        (void) bind_text(st, 8, ev->rhost);
        (void) bind_text(st, 9, ev->tty);
        (void) sqlite3_bind_int64(st, 10, ev->pid);
        (void) sqlite3_bind_int64(st, 11, ev->uid);
        (void) bind_text(st, 12, ev->session_id);
        (void) bind_text(st, 13, ev->detail);
        (void) sqlite3_bind_blob(st, 14, mac, sizeof mac, SQLITE_STATIC);
        r = step_done(st);
        if (r < 0) {
                (void) tx_lost(s);
                return r;
        }
        s->chain.last_id = id;
        memcpy(s->chain.last_mac, mac, sizeof mac);
        if (ret_id)
                *ret_id = id;
        return 0;
}

void sg_store_audit_tail(const sg_store *s, uint64_t *ret_id, uint8_t ret_mac[SG_MAC_BYTES]) {
        *ret_id = s->chain.last_id;
        memcpy(ret_mac, s->chain.last_mac, SG_MAC_BYTES);
}

int sg_store_audit_count(sg_store *s, uint64_t *ret) {
        sqlite3_int64 n = 0;
        int r;

        if (!s || !ret)
                return -EINVAL;
        r = step_int(s->st[ST_AUDIT_COUNT], &n);
        if (r < 0)
                return r;
        *ret = n < 0 ? 0 : (uint64_t) n;
        return 0;
}

/* Column positions of AUDIT_COLS. */
enum { C_ID, C_TIME, C_EVENT, C_REASON, C_USER, C_SEALED, C_SERVICE, C_RHOST, C_TTY, C_PID, C_UID,
       C_SESSION, C_DETAIL, C_MAC };

static const char *col_text(sqlite3_stmt *st, int col) {
        return (const char *) sqlite3_column_text(st, col); /* NULL for SQL NULL */
}

static void read_audit_row(sqlite3_stmt *st, struct sg_audit_row *r) {
        *r = (struct sg_audit_row) {
                .id = col_u64(st, C_ID),
                .ev = {
                        .time_usec = col_u64(st, C_TIME),
                        .event = col_text(st, C_EVENT),
                        .reason = col_text(st, C_REASON),
                        .user = col_text(st, C_USER),
                        .service = col_text(st, C_SERVICE),
                        .rhost = col_text(st, C_RHOST),
                        .tty = col_text(st, C_TTY),
                        .pid = sqlite3_column_int64(st, C_PID),
                        .uid = sqlite3_column_int64(st, C_UID),
                        .session_id = col_text(st, C_SESSION),
                        .detail = col_text(st, C_DETAIL),
                },
        };
        if (sqlite3_column_type(st, C_SEALED) != SQLITE_NULL) {
                /* A zero-length blob comes back as a NULL pointer; keep it "present". */
                const void *b = sqlite3_column_blob(st, C_SEALED);

                r->ev.user_sealed = b ? b : (const uint8_t *) "";
                r->ev.user_sealed_len = (size_t) sqlite3_column_bytes(st, C_SEALED);
        }
}

int sg_store_audit_query(sg_store *s, const struct sg_audit_filter *f, sg_audit_cb cb, void *userdata) {
        sqlite3_stmt *st;
        enum stmt_id which;
        int rc, r = 0;

        if (!s || !f || !cb)
                return -EINVAL;
        /* Lead with the most selective filter present; its index yields rows newest first. */
        if (f->user)
                which = ST_QUERY_USER;
        else if (f->rhost)
                which = ST_QUERY_RHOST;
        else if (f->event)
                which = ST_QUERY_EVENT;
        else if (f->since_usec || f->until_usec)
                which = ST_QUERY_TIME;
        else
                which = ST_QUERY_ALL;
        st = s->st[which];
        (void) bind_text(st, 1, f->user);
        (void) bind_text(st, 2, f->event);
        (void) bind_text(st, 3, f->rhost);
        (void) sqlite3_bind_int64(st, 4, to_i64(f->since_usec));
        (void) sqlite3_bind_int64(st, 5, f->until_usec ? to_i64(f->until_usec) : INT64_MAX);
        (void) sqlite3_bind_int64(st, 6, f->limit ? to_i64(f->limit) : 100);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                struct sg_audit_row row;

                read_audit_row(st, &row);
                if (!row.ev.event)
                        continue;
                r = cb(userdata, &row);
                if (r < 0)
                        break;
        }
        if (r >= 0 && rc != SQLITE_DONE)
                r = sg_store_errno(rc);
        stmt_done(st);
        return r < 0 ? r : 0;
}

/* anchor_mac = HMAC-SHA256(key, "secguard audit anchor v1" || singleton || last_id || last_mac),
 * fields encoded as in the rows. The tag keeps anchor and row MACs apart; the inputs also
 * differ in length (82 bytes here, at least 109 for a row), so no row MAC can pass for an
 * anchor MAC or the other way round. */
static void compute_anchor_mac(const sg_store *s, uint64_t last_id, const uint8_t last_mac[SG_MAC_BYTES],
                               uint8_t out[SG_MAC_BYTES]) {
        static const char tag[] = "secguard audit anchor v1";
        crypto_auth_hmacsha256_state h;

        memcpy(&h, s->keyed, sizeof h);
        mac_field(&h, tag, sizeof tag - 1);
        mac_u64(&h, 1); /* the singleton key */
        mac_u64(&h, last_id);
        mac_field(&h, last_mac, SG_MAC_BYTES);
        crypto_auth_hmacsha256_final(&h, out);
        sodium_memzero(&h, sizeof h);
}

struct anchor {
        struct chain at;   /* (0, zeros) when nothing was ever pruned */
        bool present;
        bool authentic;
        bool has_mac;      /* false: schema 1, or planted without one */
};

static int read_anchor(sg_store *s, struct anchor *ret) {
        sqlite3_stmt *st = s->st[ST_ANCHOR_GET];
        int rc;

        memset(ret, 0, sizeof *ret);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                uint8_t want[SG_MAC_BYTES];

                ret->present = true;
                ret->at.last_id = col_u64(st, 0);
                copy_mac(ret->at.last_mac, sqlite3_column_blob(st, 1), sqlite3_column_bytes(st, 1));
                ret->has_mac = sqlite3_column_type(st, 2) != SQLITE_NULL;
                /* Every stored field is bound: a last_mac of the wrong length or a negative
                 * id fails here rather than being padded or clamped into a match. */
                if (ret->has_mac && sqlite3_column_type(st, 0) == SQLITE_INTEGER &&
                    sqlite3_column_int64(st, 0) >= 0 && sqlite3_column_bytes(st, 1) == SG_MAC_BYTES &&
                    sqlite3_column_bytes(st, 2) == SG_MAC_BYTES) {
                        compute_anchor_mac(s, ret->at.last_id, ret->at.last_mac, want);
                        ret->authentic = sodium_memcmp(want, sqlite3_column_blob(st, 2), SG_MAC_BYTES) == 0;
                }
        }
        stmt_done(st);
        return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : sg_store_errno(rc);
}

/* What verify found: the first problem names the row and fills detail; later ones are
 * counted, and the next one after the first is quoted, so one old gap (a crash, a deletion
 * already investigated) does not hide tampering after it. */
struct findings {
        unsigned n;
        uint64_t first_id;
        char *detail;
        size_t detailsize;
        char next[192];
};

static void found(struct findings *f, uint64_t id, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void found(struct findings *f, uint64_t id, const char *fmt, ...) {
        va_list ap;

        if (f->n == 0) {
                f->first_id = id;
                if (f->detail && f->detailsize > 0) {
                        va_start(ap, fmt);
                        (void) vsnprintf(f->detail, f->detailsize, fmt, ap);
                        va_end(ap);
                }
        } else if (f->n == 1) {
                va_start(ap, fmt);
                (void) vsnprintf(f->next, sizeof f->next, fmt, ap);
                va_end(ap);
        }
        f->n++;
}

static void findings_finish(struct findings *f) {
        size_t len;

        if (f->n < 2 || !f->detail || f->detailsize == 0)
                return;
        len = strlen(f->detail);
        (void) snprintf(f->detail + len, f->detailsize - len, "; %u more problem%s after it, the next: %s",
                        f->n - 1, f->n == 2 ? "" : "s", f->next);
}

/* Does the stored row's mac match one computed over prev_mac? */
static bool row_mac_ok(const sg_store *s, sqlite3_stmt *st, const uint8_t prev_mac[SG_MAC_BYTES]) {
        static const int text_cols[9] = { C_EVENT, C_REASON, C_USER, C_SEALED, C_SERVICE,
                                          C_RHOST, C_TTY, C_SESSION, C_DETAIL };
        uint8_t mac[SG_MAC_BYTES];
        struct mac_input in = { 0 };

        if (sqlite3_column_type(st, C_ID) != SQLITE_INTEGER || sqlite3_column_type(st, C_TIME) != SQLITE_INTEGER ||
            sqlite3_column_type(st, C_PID) != SQLITE_INTEGER || sqlite3_column_type(st, C_UID) != SQLITE_INTEGER ||
            sqlite3_column_bytes(st, C_MAC) != SG_MAC_BYTES)
                return false;
        in.id = col_u64(st, C_ID);
        in.time_usec = (uint64_t) sqlite3_column_int64(st, C_TIME);
        in.pid = sqlite3_column_int64(st, C_PID);
        in.uid = sqlite3_column_int64(st, C_UID);
        for (size_t i = 0; i < 9; i++) {
                int c = text_cols[i];

                if (sqlite3_column_type(st, c) == SQLITE_NULL)
                        continue;
                /* Text columns hashed as text, the sealed one as a blob: the bytes stored. */
                in.f[i] = c == C_SEALED ? sqlite3_column_blob(st, c) : (const void *) sqlite3_column_text(st, c);
                in.len[i] = (size_t) sqlite3_column_bytes(st, c);
                if (!in.f[i])
                        in.f[i] = "";
        }
        compute_mac(s, prev_mac, &in, mac);
        return sodium_memcmp(mac, sqlite3_column_blob(st, C_MAC), SG_MAC_BYTES) == 0;
}

/* Checks one stored row against the chain so far, then moves prev on to it (its stored mac:
 * an edited row breaks only its own link, so what follows is still checked). */
static void verify_row(const sg_store *s, sqlite3_stmt *st, struct chain *prev, struct findings *f) {
        uint64_t id = col_u64(st, C_ID);

        if (id <= prev->last_id)
                found(f, id, "row %" PRIu64 ": out of sequence (expected row %" PRIu64 ")", id, prev->last_id + 1);
        else if (id > prev->last_id + 1) {
                /* The daemon chains the row after a gap it found at start to the row before the
                 * gap; a deletion made later leaves a row chained to one that is gone. */
                if (row_mac_ok(s, st, prev->last_mac))
                        found(f, id, "rows %" PRIu64 "..%" PRIu64 " missing (found gone when the daemon started: "
                              "deleted while it was down, or lost in a power failure)", prev->last_id + 1, id - 1);
                else
                        found(f, id, "rows %" PRIu64 "..%" PRIu64 " missing (deleted)", prev->last_id + 1, id - 1);
        } else if (!row_mac_ok(s, st, prev->last_mac))
                found(f, id, "row %" PRIu64 ": MAC mismatch (edited or inserted)", id);
        prev->last_id = id;
        copy_mac(prev->last_mac, sqlite3_column_blob(st, C_MAC), sqlite3_column_bytes(st, C_MAC));
}

int sg_store_audit_verify(sg_store *s, uint64_t *ret_bad_id, char *detail, size_t detailsize) {
        struct findings f = { .detail = detail, .detailsize = detailsize };
        struct anchor a;
        struct chain prev;
        sqlite3_stmt *st;
        int rc, r;

        if (!s)
                return -EINVAL;
        set_err(detail, detailsize, "%s", "");
        r = read_anchor(s, &a);
        if (r < 0)
                return r;
        /* First the anchor: the whole walk starts from it. */
        if (a.present && !a.has_mac)
                found(&f, a.at.last_id,
                      "prune anchor (rows up to %" PRIu64 "): unauthenticated anchor (it has no MAC: written before "
                      "schema 2, or planted); it cannot show those rows were pruned rather than deleted; the next "
                      "prune replaces it", a.at.last_id);
        else if (a.present && !a.authentic)
                found(&f, a.at.last_id, "prune anchor (rows up to %" PRIu64 "): MAC mismatch (tampered)", a.at.last_id);
        prev = a.at;

        st = s->st[ST_AUDIT_WALK];
        while ((rc = sqlite3_step(st)) == SQLITE_ROW)
                verify_row(s, st, &prev, &f);
        stmt_done(st);
        if (rc != SQLITE_DONE)
                return sg_store_errno(rc);

        /* The chain alone cannot see its newest rows removed; what we appended since open, or
         * the rows audit.head said existed (sg_store_audit_resume_after), can. */
        if (prev.last_id < s->chain.last_id)
                found(&f, prev.last_id + 1, "rows %" PRIu64 "..%" PRIu64 " missing at the end (deleted)",
                      prev.last_id + 1, s->chain.last_id);
        else if (prev.last_id == s->chain.last_id &&
                 sodium_memcmp(prev.last_mac, s->chain.last_mac, SG_MAC_BYTES) != 0)
                found(&f, prev.last_id, "row %" PRIu64 ": MAC differs from the one this daemon wrote (replaced)",
                      prev.last_id);
        sodium_memzero(&prev, sizeof prev);
        if (f.n == 0)
                return 0;
        findings_finish(&f);
        if (ret_bad_id)
                *ret_bad_id = f.first_id;
        return 1;
}

int sg_store_audit_resume_after(sg_store *s, uint64_t last_id) {
        if (!s || last_id < s->chain.last_id || last_id >= (uint64_t) INT64_MAX)
                return -EINVAL;
        /* Only the id moves: the next row is still chained to the newest row there is. */
        s->chain.last_id = last_id;
        return 0;
}

/* Highest id to delete, 0 for none. */
static int prune_cutoff(sg_store *s, uint64_t before_usec, uint64_t max_rows, sqlite3_int64 *ret) {
        sqlite3_int64 cut = 0, v;
        int r;

        if (max_rows) {
                v = 0;
                (void) sqlite3_bind_int64(s->st[ST_AUDIT_CUT_ROWS], 1, to_i64(max_rows));
                r = step_int(s->st[ST_AUDIT_CUT_ROWS], &v);
                if (r < 0)
                        return r;
                cut = v > cut ? v : cut;
        }
        if (before_usec) {
                /* Only a head: everything before the first row young enough to keep. */
                v = -1;
                (void) sqlite3_bind_int64(s->st[ST_AUDIT_CUT_AGE], 1, to_i64(before_usec));
                r = step_int(s->st[ST_AUDIT_CUT_AGE], &v);
                if (r < 0)
                        return r;
                if (r == 1)
                        v = v - 1;
                else {
                        v = 0; /* no row is young enough: all go */
                        r = step_int(s->st[ST_AUDIT_MAX_ID], &v);
                        if (r < 0)
                                return r;
                }
                cut = v > cut ? v : cut;
        }
        *ret = cut;
        return 0;
}

/* Deletes every row up to cut, keeping the last deleted row's (id, mac) as the anchor. */
static int prune_upto(sg_store *s, sqlite3_int64 cut, uint64_t *ret_deleted) {
        sqlite3_stmt *st = s->st[ST_AUDIT_MAC_OF];
        uint8_t mac[SG_MAC_BYTES], anchor_mac[SG_MAC_BYTES];
        sqlite3_int64 last = 0;
        int rc, r;

        (void) sqlite3_bind_int64(st, 1, cut);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                last = sqlite3_column_int64(st, 0);
                copy_mac(mac, sqlite3_column_blob(st, 1), sqlite3_column_bytes(st, 1));
        }
        stmt_done(st);
        if (rc == SQLITE_DONE)
                return 0; /* the head is already younger than the cut */
        if (rc != SQLITE_ROW)
                return sg_store_errno(rc);

        compute_anchor_mac(s, (uint64_t) last, mac, anchor_mac);
        st = s->st[ST_ANCHOR_PUT];
        (void) sqlite3_bind_int64(st, 1, last);
        (void) sqlite3_bind_blob(st, 2, mac, sizeof mac, SQLITE_STATIC);
        (void) sqlite3_bind_blob(st, 3, anchor_mac, sizeof anchor_mac, SQLITE_STATIC);
        r = step_done(st);
        if (r < 0)
                return r;
        (void) sqlite3_bind_int64(s->st[ST_AUDIT_DELETE_UPTO], 1, last);
        r = step_done(s->st[ST_AUDIT_DELETE_UPTO]);
        if (r < 0)
                return r;
        *ret_deleted = (uint64_t) sqlite3_changes64(s->db);
        return 0;
}

int sg_store_audit_prune(sg_store *s, uint64_t before_usec, uint64_t max_rows, uint64_t *ret_deleted) {
        sqlite3_int64 cut = 0;
        uint64_t deleted = 0;
        int r;

        r = write_check(s);
        if (r < 0)
                return r;
        if (!before_usec && !max_rows) {
                if (ret_deleted)
                        *ret_deleted = 0;
                return 0;
        }
        r = op_begin(s);
        if (r < 0)
                return r;
        r = prune_cutoff(s, before_usec, max_rows, &cut);
        if (r >= 0 && cut > 0)
                r = prune_upto(s, cut, &deleted);
        r = op_end(s, r);
        if (r < 0)
                return r;
        if (ret_deleted)
                *ret_deleted = deleted;
        return 0;
}
