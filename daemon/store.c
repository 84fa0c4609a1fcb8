/* SPDX-License-Identifier: MIT */
/*
 * The daemon's SQLite store (see store.h). SQLite result codes stay in the store (this file
 * and audit-chain.c): every public function returns 0 or -errno, and sg_store_errno() here is
 * the one place mapping them.
 *
 * The audit trail (its tables, statements, key and tail) is audit-chain.c's: the store creates
 * it on the same handle, and the sg_store_audit_* functions here check the store's
 * transaction, then call it. Each transaction checkpoints the chain's tail, and whatever ends
 * the transaction without a commit rewinds it.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <limits.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <sodium.h>
#include <sqlite3.h>

#include "audit-chain.h"
#include "sql.h"
#include "fileio.h"
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
        ST_SESSION_PUT,
        ST_SESSION_DELETE,
        ST_SESSION_FOREACH,
        ST_TOKEN_ADD,
        ST_TOKEN_GET,
        ST_TOKEN_USE,
        ST_TOKEN_REVOKE,
        ST_TOKEN_FOREACH,
        ST_TOKEN_COUNT,
        ST_TOKEN_PRUNE,
        ST_FLEET_LOCK_PUT,
        ST_FLEET_LOCK_DELETE,
        ST_FLEET_LOCK_FOREACH,
        ST_FLEET_LOCK_PRUNE,
        _ST_MAX,
};

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
        [ST_SESSION_PUT] = "INSERT OR REPLACE INTO sessions(id, user, uid, service, tty, rhost, logind_id, "
                           "pid, pid_start, boot_id, started_usec) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "
                           "?10, ?11)",
        [ST_SESSION_DELETE] = "DELETE FROM sessions WHERE id = ?1",
        [ST_SESSION_FOREACH] = "SELECT id, user, uid, service, tty, rhost, logind_id, pid, pid_start, boot_id, "
                               "started_usec FROM sessions ORDER BY started_usec, id",
        [ST_TOKEN_ADD] = "INSERT INTO tokens(id, user, hash, issued_usec, expires_usec, issuer_uid) "
                         "VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
        [ST_TOKEN_GET] = "SELECT id, user, hash, issued_usec, expires_usec, used_usec, revoked_usec, issuer_uid "
                         "FROM tokens WHERE id = ?1",
        /* The conditions again in the write itself: whatever was read before, only one
         * login can ever turn a usable token into a used one. */
        [ST_TOKEN_USE] = "UPDATE tokens SET used_usec = ?2 WHERE id = ?1 AND used_usec = 0 AND revoked_usec = 0 "
                         "AND expires_usec > ?2",
        [ST_TOKEN_REVOKE] = "UPDATE tokens SET revoked_usec = ?2 WHERE id = ?1 AND used_usec = 0 "
                            "AND revoked_usec = 0",
        [ST_TOKEN_FOREACH] = "SELECT id, user, hash, issued_usec, expires_usec, used_usec, revoked_usec, "
                             "issuer_uid FROM tokens ORDER BY issued_usec, id",
        [ST_TOKEN_COUNT] = "SELECT count(*) FROM tokens",
        [ST_TOKEN_PRUNE] = "DELETE FROM tokens WHERE expires_usec < ?1 OR (used_usec != 0 AND used_usec < ?1) "
                           "OR (revoked_usec != 0 AND revoked_usec < ?1)",
        [ST_FLEET_LOCK_PUT] = "INSERT OR REPLACE INTO fleet_locks(kind, key, until_usec, origin_host, decision_id, "
                              "applied_usec) VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
        [ST_FLEET_LOCK_DELETE] = "DELETE FROM fleet_locks WHERE kind = ?1 AND key = ?2",
        [ST_FLEET_LOCK_FOREACH] = "SELECT kind, key, until_usec, origin_host, decision_id, applied_usec "
                                  "FROM fleet_locks ORDER BY kind, key",
        [ST_FLEET_LOCK_PRUNE] = "DELETE FROM fleet_locks WHERE until_usec < ?1",
};

/* Migration i brings the schema from user_version i to i + 1. Append only; never edit one
 * that has shipped. */
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
        /* 3: open login sessions (docs/state.md). */
        "CREATE TABLE sessions("
        "  id TEXT PRIMARY KEY,"
        "  user TEXT NOT NULL,"
        "  uid INTEGER NOT NULL,"
        "  service TEXT NOT NULL,"
        "  tty TEXT NOT NULL,"
        "  rhost TEXT NOT NULL,"
        "  logind_id TEXT NOT NULL,"
        "  pid INTEGER NOT NULL,"
        "  pid_start INTEGER NOT NULL,"
        "  boot_id TEXT NOT NULL,"
        "  started_usec INTEGER NOT NULL) WITHOUT ROWID;",
        /* 4: one-time login tokens (docs/state.md): a keyed hash of the secret, never the
         * secret. used_usec and revoked_usec are 0 until that happens. */
        "CREATE TABLE tokens("
        "  id INTEGER PRIMARY KEY,"
        "  user TEXT NOT NULL,"
        "  hash BLOB NOT NULL,"
        "  issued_usec INTEGER NOT NULL,"
        "  expires_usec INTEGER NOT NULL,"
        "  used_usec INTEGER NOT NULL DEFAULT 0,"
        "  revoked_usec INTEGER NOT NULL DEFAULT 0,"
        "  issuer_uid INTEGER NOT NULL);",
        /* 5: forward-secure audit keys (docs/state.md). Rows, and the anchor, carry the epoch
         * whose key MACed them (NULL: the static key); each epoch ends with a seal. */
        "ALTER TABLE audit ADD COLUMN epoch INTEGER;"
        "ALTER TABLE audit_anchor ADD COLUMN epoch INTEGER;"
        "CREATE TABLE audit_seal("
        "  epoch INTEGER PRIMARY KEY,"
        "  last_id INTEGER NOT NULL,"
        "  last_mac BLOB NOT NULL,"
        "  time_usec INTEGER NOT NULL,"
        "  mac BLOB NOT NULL);",
        /* 6: fleet locks (docs/state.md): lock decisions the fleet helper handed over, kept
         * apart from the local locks and their backoff history. */
        "CREATE TABLE fleet_locks("
        "  kind TEXT NOT NULL,"
        "  key TEXT NOT NULL,"
        "  until_usec INTEGER NOT NULL,"
        "  origin_host TEXT NOT NULL,"
        "  decision_id INTEGER NOT NULL,"
        "  applied_usec INTEGER NOT NULL,"
        "  PRIMARY KEY(kind, key)) WITHOUT ROWID;",
        /* 7: no index of pending attempts. Every reservation added an entry and every settle
         * removed it, a page more in both commits of each login, for one statement run once
         * at start (ST_ATTEMPT_ABANDON), which now reads the attempts table, as the replay
         * right after it does anyway (docs/performance.md). */
        "DROP INDEX IF EXISTS attempts_pending;",
};
_Static_assert(sizeof migrations / sizeof migrations[0] == SG_STORE_SCHEMA_VERSION,
               "one migration per schema version");

/* WAL checkpoints. SQLite's default runs one inside the COMMIT that brings the WAL to 1000
 * frames: it copies them into the database and fsyncs both files, milliseconds during which
 * the event loop, and every login, waits (that was the p99 of a serial login). Here a thread
 * with its own connection runs a PASSIVE checkpoint each time CKPT_FRAMES more frames are in
 * the WAL; it never blocks the writer, and each commit stays exactly as durable as
 * `synchronous` makes it (a checkpoint only copies committed pages into the database file).
 *
 * The WAL starts over (is written from its start again) only when a write begins after every
 * frame was copied, and under load the next commit has added frames before the thread is done.
 * So when its run left frames behind, the thread runs again once no commit came for
 * CKPT_QUIET_USEC. Under load without such a pause the WAL grows, up to a bound: there the commit
 * waits for the thread, if copying, and copies what is left itself, as SQLite's own checkpoint
 * did (but most pages are copied and synced by then). The bound is CKPT_INLINE_FRAMES, SQLite's
 * threshold, when the file system has less than CKPT_ROOMY_BYTES free: a WAL file that grows
 * needs room, and the free-space margin of keep_room() (manager.c) assumes the WAL stays the
 * size SQLite kept it (tests/integration/t_disk_prune.sh). With room to spare it is
 * CKPT_ROOMY_FRAMES (about 16 MiB with 4 KiB pages); SQLite never shrinks the file, so a WAL
 * that grew while there was room takes no more when room runs short. Decided once per WAL. */
#define CKPT_FRAMES 250
#define CKPT_INLINE_FRAMES 1000
#define CKPT_ROOMY_FRAMES 4000
#define CKPT_ROOMY_BYTES (256ULL << 20)
#define CKPT_QUIET_USEC 2000

struct checkpointer {
        sqlite3 *db;
        pthread_t thread;
        pthread_mutex_t lock;
        pthread_cond_t wake, idle;
        bool requested, running, stop;
        bool behind;      /* the thread's last run left frames in the WAL it did not copy */
        uint64_t commits; /* counted by the loop, so the thread can tell a pause */
        /* The loop's alone: */
        int last_frames;  /* WAL frames after the last commit */
        int asked_at;     /* WAL frames when it last asked (0: not since the WAL started over) */
        int bound;        /* this WAL's bound (0: not decided yet) */
};

struct sg_store {
        sqlite3 *db;
        sqlite3_stmt *st[_ST_MAX];
        sg_audit_chain *audit; /* the audit trail on the same handle */
        struct checkpointer *ckpt; /* NULL: checkpoints run in the commit, at CKPT_INLINE_FRAMES, as SQLite did */
        bool in_tx;
};


static void set_err(char *err, size_t errsize, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errsize, const char *fmt, ...) {
        va_list ap;

        if (!err || errsize == 0)
                return;
        va_start(ap, fmt);
        (void) vsnprintf(err, errsize, fmt, ap);
        va_end(ap);
}

/* ---- transactions ---- */

/* SQLite rolls a whole transaction back by itself after some errors (disk full, I/O, out of
 * memory). Then the audit chain's in-memory tail describes rows that no longer exist. */
static bool tx_lost(sg_store *s) {
        if (!s->in_tx || !sqlite3_get_autocommit(s->db))
                return false;
        sg_audit_chain_rewind(s->audit);
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
        sg_audit_chain_checkpoint(s->audit);
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
        sg_audit_chain_rewind(s->audit);
        s->in_tx = false;
        return r;
}

bool sg_store_in_transaction(const sg_store *s) {
        return s && s->in_tx;
}

/* Groups several statements atomically, inside the caller's transaction (a savepoint) or on
 * its own (BEGIN IMMEDIATE). These never move the audit chain's tail, so there is nothing to
 * rewind. */
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

/* Our tables exist at our version by now, so a statement that does not prepare means a
 * tampered schema. */
static int schema_error(sg_store *s, int r, const char *path, char *err, size_t errsize) {
        set_err(err, errsize,
                "%s: unexpected schema (%s); the database is not a secguard database or is corrupt; "
                "move it aside and restart (it is never recreated automatically)",
                path, sqlite3_errmsg(s->db));
        return r;
}

/* The store's statements, then the audit chain with its own, and the chain's tail. */
static int prepare_all(sg_store *s, const uint8_t *audit_key, const char *path, char *err, size_t errsize) {
        int r;

        r = prepare_persistent(s->db, stmt_sql, s->st, _ST_MAX);
        if (r < 0)
                return schema_error(s, r, path, err, errsize);
        r = sg_audit_chain_new(s->db, audit_key, &s->audit);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return schema_error(s, r, path, err, errsize);
        r = sg_audit_chain_load(s->audit);
        if (r < 0)
                (void) bad_db(path, SQLITE_IOERR, err, errsize);
        return r;
}

/* ---- WAL checkpoints (see struct checkpointer) ---- */

/* Waits for a request, or, when its last run left frames behind, for a pause in the commits. */
static void checkpointer_wait(struct checkpointer *c) {
        while (!c->requested && !c->stop) {
                uint64_t seen = c->commits;
                struct timespec ts;

                if (!c->behind) {
                        pthread_cond_wait(&c->wake, &c->lock);
                        continue;
                }
                (void) clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_nsec += CKPT_QUIET_USEC * 1000L;
                if (ts.tv_nsec >= 1000000000L) {
                        ts.tv_sec++;
                        ts.tv_nsec -= 1000000000L;
                }
                if (pthread_cond_timedwait(&c->wake, &c->lock, &ts) == ETIMEDOUT && c->commits == seen)
                        c->requested = true;
        }
}

static void *checkpointer_main(void *userdata) {
        struct checkpointer *c = userdata;

        pthread_mutex_lock(&c->lock);
        for (;;) {
                int frames = -1, copied = -1, rc;
                uint64_t commits;

                checkpointer_wait(c);
                if (c->stop)
                        break;
                c->requested = false;
                c->running = true;
                commits = c->commits;
                pthread_mutex_unlock(&c->lock);
                rc = sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &frames, &copied);
                pthread_mutex_lock(&c->lock);
                c->running = false;
                /* Behind: a commit came meanwhile, a reader kept frames back, or busy (the
                 * loop's own checkpoint). Then again at the next pause. */
                c->behind = rc != SQLITE_OK || copied < frames || c->commits != commits;
                pthread_cond_signal(&c->idle);
        }
        pthread_mutex_unlock(&c->lock);
        return NULL;
}

/* Called by SQLite after each commit with the frames now in the WAL; it replaces
 * wal_autocheckpoint on this connection. */
static int on_wal_commit(void *userdata, sqlite3 *db, const char *name, int frames) {
        sg_store *s = userdata;
        struct checkpointer *c = s->ckpt;
        bool inline_ckpt = false;

        if (!c) {
                if (frames >= CKPT_INLINE_FRAMES)
                        (void) sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
                return SQLITE_OK;
        }
        if (frames < c->last_frames) { /* the WAL started over */
                c->asked_at = 0;
                c->bound = 0;
        }
        c->last_frames = frames;
        if (frames >= CKPT_INLINE_FRAMES && c->bound == 0) {
                uint64_t free_bytes = 0;

                c->bound = sg_store_free_bytes(s, &free_bytes) >= 0 && free_bytes >= CKPT_ROOMY_BYTES ?
                           CKPT_ROOMY_FRAMES : CKPT_INLINE_FRAMES;
        }
        pthread_mutex_lock(&c->lock);
        c->commits++;
        if (c->bound > 0 && frames >= c->bound) {
                /* Wait for the thread's copy to end (ours would only be refused meanwhile),
                 * then copy the rest here. */
                c->requested = false;
                while (c->running)
                        pthread_cond_wait(&c->idle, &c->lock);
                inline_ckpt = true;
        } else if (frames >= c->asked_at + CKPT_FRAMES && !c->requested && !c->running) {
                c->asked_at = frames;
                c->requested = true;
                pthread_cond_signal(&c->wake);
        }
        pthread_mutex_unlock(&c->lock);
        if (inline_ckpt)
                (void) sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        return SQLITE_OK;
}

static void checkpointer_stop(sg_store *s) {
        struct checkpointer *c = s->ckpt;

        if (!c)
                return;
        s->ckpt = NULL;
        pthread_mutex_lock(&c->lock);
        c->stop = true;
        pthread_cond_signal(&c->wake);
        pthread_mutex_unlock(&c->lock);
        (void) pthread_join(c->thread, NULL);
        (void) sqlite3_close(c->db);
        pthread_mutex_destroy(&c->lock);
        pthread_cond_destroy(&c->wake);
        pthread_cond_destroy(&c->idle);
        free(c);
}

/* Without the thread (no memory, no second connection) the store checkpoints in the commit,
 * as SQLite would by itself: slower tail, same data. */
static void checkpointer_start(sg_store *s, const char *path) {
        struct checkpointer *c;
        sigset_t all, old;
        int rc;

        (void) sqlite3_wal_hook(s->db, on_wal_commit, s);
        if (!sqlite3_threadsafe())
                return;
        c = calloc(1, sizeof *c);
        if (!c)
                return;
        rc = sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW | SQLITE_OPEN_NOMUTEX |
                             SQLITE_OPEN_EXRESCODE, NULL);
        /* Hardened like the main handle; the first read opens the WAL, which a checkpoint on a
         * connection that never read would not. */
        if (rc == SQLITE_OK &&
            (sqlite3_db_config(c->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL) != SQLITE_OK ||
             sqlite3_db_config(c->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL) != SQLITE_OK ||
             sqlite3_db_config(c->db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, NULL) != SQLITE_OK))
                rc = SQLITE_ERROR;
        if (rc == SQLITE_OK)
                rc = exec_setup(c->db, "SELECT count(*) FROM sqlite_schema", NULL, 0, NULL);
        if (rc != SQLITE_OK) {
                (void) sqlite3_close(c->db);
                free(c);
                return;
        }
        (void) pthread_mutex_init(&c->lock, NULL);
        (void) pthread_cond_init(&c->wake, NULL);
        (void) pthread_cond_init(&c->idle, NULL);
        /* Signals stay with the loop's thread (sd-event takes them through a signalfd). */
        sigfillset(&all);
        (void) pthread_sigmask(SIG_BLOCK, &all, &old);
        rc = pthread_create(&c->thread, NULL, checkpointer_main, c);
        (void) pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (rc != 0) {
                (void) sqlite3_close(c->db);
                pthread_mutex_destroy(&c->lock);
                pthread_cond_destroy(&c->wake);
                pthread_cond_destroy(&c->idle);
                free(c);
                return;
        }
        s->ckpt = c;
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
        r = sg_check_own_dir(o->state_dir, 0700, err, errsize);
        if (r < 0)
                return r;
        r = check_db_files(path, err, errsize);
        if (r < 0)
                return r;

        s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;

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
                r = prepare_all(s, o->audit_key, path, err, errsize);
        if (r < 0)
                goto fail;
        checkpointer_start(s, path);
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
        /* First: the main handle's close checkpoints and removes the WAL only as the last one. */
        checkpointer_stop(s);
        if (s->db) {
                int rc;

                if (s->in_tx && !sqlite3_get_autocommit(s->db))
                        (void) step_done(s->st[ST_ROLLBACK]);
                for (int i = 0; i < _ST_MAX; i++)
                        (void) sqlite3_finalize(s->st[i]);
                s->audit = sg_audit_chain_free(s->audit);
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
        free(s);
        return NULL;
}

/* ---- attempts ---- */

static bool valid_state(enum sg_attempt_state state) {
        /* The column has no CHECK: a build older than VOID skips such rows on replay (its
         * valid_state refuses them), which is what VOID means anyway. */
        return state == SG_ATTEMPT_PENDING || state == SG_ATTEMPT_FAILURE || state == SG_ATTEMPT_SUCCESS ||
               state == SG_ATTEMPT_VOID;
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
        return walk_end(st, rc, r);
}

/* Runs one of the DELETE ... WHERE ... < ?1 statements. */
static int prune_before(sg_store *s, enum stmt_id id, uint64_t before_usec) {
        int r = write_check(s);

        if (r < 0)
                return r;
        (void) sqlite3_bind_int64(s->st[id], 1, to_i64(before_usec));
        return step_done(s->st[id]);
}

int sg_store_attempt_prune(sg_store *s, uint64_t before_usec) {
        return prune_before(s, ST_ATTEMPT_PRUNE, before_usec);
}

/* ---- sessions ---- */

int sg_store_session_put(sg_store *s, const struct sg_session_row *row) {
        sqlite3_stmt *st;
        int r;

        if (!row || !row->id || !row->user || !row->service || !row->tty || !row->rhost || !row->logind_id ||
            !row->boot_id)
                return -EINVAL;
        r = write_check(s);
        if (r < 0)
                return r;
        st = s->st[ST_SESSION_PUT];
        (void) bind_text(st, 1, row->id);
        (void) bind_text(st, 2, row->user);
        (void) sqlite3_bind_int64(st, 3, row->uid);
        (void) bind_text(st, 4, row->service);
        (void) bind_text(st, 5, row->tty);
        (void) bind_text(st, 6, row->rhost);
        (void) bind_text(st, 7, row->logind_id);
        (void) sqlite3_bind_int64(st, 8, row->pid);
        (void) sqlite3_bind_int64(st, 9, to_i64(row->pid_start));
        (void) bind_text(st, 10, row->boot_id);
        (void) sqlite3_bind_int64(st, 11, to_i64(row->started_usec));
        return step_done(st);
}

int sg_store_session_delete(sg_store *s, const char *id) {
        sqlite3_stmt *st;
        int r;

        if (!id)
                return -EINVAL;
        r = write_check(s);
        if (r < 0)
                return r;
        st = s->st[ST_SESSION_DELETE];
        (void) bind_text(st, 1, id);
        return step_done(st);
}

int sg_store_session_foreach(sg_store *s, sg_session_cb cb, void *userdata) {
        sqlite3_stmt *st;
        int rc, r = 0;

        if (!s || !cb)
                return -EINVAL;
        st = s->st[ST_SESSION_FOREACH];
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                sqlite3_int64 uid = sqlite3_column_int64(st, 2), pid = sqlite3_column_int64(st, 7);
                struct sg_session_row row = {
                        .id = (const char *) sqlite3_column_text(st, 0),
                        .user = (const char *) sqlite3_column_text(st, 1),
                        .uid = (uint32_t) uid,
                        .service = (const char *) sqlite3_column_text(st, 3),
                        .tty = (const char *) sqlite3_column_text(st, 4),
                        .rhost = (const char *) sqlite3_column_text(st, 5),
                        .logind_id = (const char *) sqlite3_column_text(st, 6),
                        .pid = (int32_t) pid,
                        .pid_start = col_u64(st, 8),
                        .boot_id = (const char *) sqlite3_column_text(st, 9),
                        .started_usec = col_u64(st, 10),
                };

                if (!row.id || !row.user || !row.service || !row.tty || !row.rhost || !row.logind_id ||
                    !row.boot_id || uid < 0 || uid > UINT32_MAX || pid <= 1 || pid > INT32_MAX)
                        continue; /* not a row we wrote */
                r = cb(userdata, &row);
                if (r < 0)
                        break;
        }
        return walk_end(st, rc, r);
}

/* ---- one-time tokens ---- */

int sg_store_token_add(sg_store *s, const struct sg_token_row *row) {
        sqlite3_stmt *st;
        int r;

        if (!row || !row->user || !row->hash || row->id == 0 || row->id > (uint64_t) INT64_MAX)
                return -EINVAL;
        r = write_check(s);
        if (r < 0)
                return r;
        st = s->st[ST_TOKEN_ADD];
        (void) sqlite3_bind_int64(st, 1, to_i64(row->id));
        (void) bind_text(st, 2, row->user);
        (void) sqlite3_bind_blob(st, 3, row->hash, SG_TOKEN_HASH_BYTES, SQLITE_STATIC);
        (void) sqlite3_bind_int64(st, 4, to_i64(row->issued_usec));
        (void) sqlite3_bind_int64(st, 5, to_i64(row->expires_usec));
        (void) sqlite3_bind_int64(st, 6, row->issuer_uid);
        return step_done(st);
}

/* Calls cb for each row st yields; rows no daemon wrote (no user, a hash of another size)
 * are skipped. *ret_n (may be NULL) counts the rows passed on. */
static int token_walk(sqlite3_stmt *st, sg_token_cb cb, void *userdata, uint64_t *ret_n) {
        uint64_t n = 0;
        int rc, r = 0;

        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                sqlite3_int64 uid = sqlite3_column_int64(st, 7);
                struct sg_token_row row = {
                        .id = col_u64(st, 0),
                        .user = (const char *) sqlite3_column_text(st, 1),
                        .hash = sqlite3_column_blob(st, 2),
                        .issued_usec = col_u64(st, 3),
                        .expires_usec = col_u64(st, 4),
                        .used_usec = col_u64(st, 5),
                        .revoked_usec = col_u64(st, 6),
                        .issuer_uid = uid < 0 || uid > UINT32_MAX ? UINT32_MAX : (uint32_t) uid,
                };

                if (!row.user || !row.hash || sqlite3_column_bytes(st, 2) != SG_TOKEN_HASH_BYTES)
                        continue;
                n++;
                r = cb(userdata, &row);
                if (r < 0)
                        break;
        }
        if (ret_n)
                *ret_n = n;
        return walk_end(st, rc, r);
}

int sg_store_token_get(sg_store *s, uint64_t id, sg_token_cb cb, void *userdata) {
        sqlite3_stmt *st;
        uint64_t n = 0;
        int r;

        if (!s || !cb)
                return -EINVAL;
        st = s->st[ST_TOKEN_GET];
        (void) sqlite3_bind_int64(st, 1, to_i64(id));
        r = token_walk(st, cb, userdata, &n);
        if (r < 0)
                return r;
        return n > 0 ? 0 : -ENOENT;
}

/* One of the conditional updates: 0 when it changed the row, -ENOENT when nothing matched. */
static int token_mark(sg_store *s, enum stmt_id id, uint64_t token_id, uint64_t now_usec) {
        sqlite3_stmt *st;
        int r = write_check(s);

        if (r < 0)
                return r;
        st = s->st[id];
        (void) sqlite3_bind_int64(st, 1, to_i64(token_id));
        (void) sqlite3_bind_int64(st, 2, to_i64(now_usec));
        r = step_done(st);
        if (r < 0)
                return r;
        return sqlite3_changes(s->db) == 1 ? 0 : -ENOENT;
}

int sg_store_token_use(sg_store *s, uint64_t id, uint64_t now_usec) {
        return token_mark(s, ST_TOKEN_USE, id, now_usec);
}

int sg_store_token_revoke(sg_store *s, uint64_t id, uint64_t now_usec) {
        return token_mark(s, ST_TOKEN_REVOKE, id, now_usec);
}

int sg_store_token_foreach(sg_store *s, sg_token_cb cb, void *userdata) {
        if (!s || !cb)
                return -EINVAL;
        return token_walk(s->st[ST_TOKEN_FOREACH], cb, userdata, NULL);
}

int sg_store_token_count(sg_store *s, uint64_t *ret) {
        sqlite3_int64 n = 0;
        int r = step_int(s->st[ST_TOKEN_COUNT], &n);

        if (r < 0)
                return r;
        *ret = n < 0 ? 0 : (uint64_t) n;
        return 0;
}

int sg_store_token_prune(sg_store *s, uint64_t before_usec) {
        return prune_before(s, ST_TOKEN_PRUNE, before_usec);
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
        return walk_end(st, rc, r);
}

int sg_store_lock_prune(sg_store *s, uint64_t before_usec) {
        return prune_before(s, ST_LOCK_PRUNE, before_usec);
}

/* ---- fleet locks ---- */

int sg_store_fleet_lock_put(sg_store *s, const struct sg_fleet_lock_row *l) {
        sqlite3_stmt *st;
        int r;

        if (!l || !l->kind || !l->key || !l->origin_host)
                return -EINVAL;
        r = write_check(s);
        if (r < 0)
                return r;
        st = s->st[ST_FLEET_LOCK_PUT];
        (void) bind_text(st, 1, l->kind);
        (void) bind_text(st, 2, l->key);
        (void) sqlite3_bind_int64(st, 3, to_i64(l->until_usec));
        (void) bind_text(st, 4, l->origin_host);
        (void) sqlite3_bind_int64(st, 5, to_i64(l->decision_id));
        (void) sqlite3_bind_int64(st, 6, to_i64(l->applied_usec));
        return step_done(st);
}

int sg_store_fleet_lock_delete(sg_store *s, const char *kind, const char *key) {
        sqlite3_stmt *st;
        int r;

        if (!kind || !key)
                return -EINVAL;
        r = write_check(s);
        if (r < 0)
                return r;
        st = s->st[ST_FLEET_LOCK_DELETE];
        (void) bind_text(st, 1, kind);
        (void) bind_text(st, 2, key);
        return step_done(st);
}

int sg_store_fleet_lock_foreach(sg_store *s, sg_fleet_lock_cb cb, void *userdata) {
        sqlite3_stmt *st;
        int rc, r = 0;

        if (!s || !cb)
                return -EINVAL;
        st = s->st[ST_FLEET_LOCK_FOREACH];
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                struct sg_fleet_lock_row l = {
                        .kind = (const char *) sqlite3_column_text(st, 0),
                        .key = (const char *) sqlite3_column_text(st, 1),
                        .until_usec = col_u64(st, 2),
                        .origin_host = (const char *) sqlite3_column_text(st, 3),
                        .decision_id = col_u64(st, 4),
                        .applied_usec = col_u64(st, 5),
                };

                if (!l.kind || !l.key || !l.origin_host)
                        continue;
                r = cb(userdata, &l);
                if (r < 0)
                        break;
        }
        return walk_end(st, rc, r);
}

int sg_store_fleet_lock_prune(sg_store *s, uint64_t before_usec) {
        return prune_before(s, ST_FLEET_LOCK_PRUNE, before_usec);
}

/* ---- audit trail: the store's transaction around audit-chain.c ---- */

int sg_store_audit_append(sg_store *s, const struct sg_audit_event *ev, uint64_t *ret_id) {
        int r;

        if (!sg_audit_event_valid(ev))
                return -EINVAL;
        r = write_check(s);
        if (r < 0)
                return r;
        r = sg_audit_chain_append(s->audit, ev, ret_id);
        if (r < 0)
                (void) tx_lost(s);
        return r;
}

int sg_store_audit_export(sg_store *s, uint64_t after_id, uint64_t limit, sg_audit_cb cb, void *userdata,
                          uint64_t *ret_max_id) {
        struct sg_audit_tail tail;

        if (!s || !cb || limit == 0)
                return -EINVAL;
        sg_audit_chain_committed_tail(s->audit, s->in_tx, &tail);
        sodium_memzero(tail.mac, sizeof tail.mac);
        return sg_audit_chain_export(s->audit, after_id, tail.id, limit, cb, userdata, ret_max_id);
}

int sg_store_audit_query(sg_store *s, const struct sg_audit_filter *f, sg_audit_cb cb, void *userdata) {
        if (!s)
                return -EINVAL;
        return sg_audit_chain_query(s->audit, f, cb, userdata);
}

int sg_store_audit_count(sg_store *s, uint64_t *ret) {
        if (!s)
                return -EINVAL;
        return sg_audit_chain_count(s->audit, ret);
}

void sg_store_audit_tail(const sg_store *s, uint64_t *ret_id, uint8_t ret_mac[SG_MAC_BYTES]) {
        sg_audit_chain_tail(s->audit, ret_id, ret_mac);
}

int sg_store_audit_verify(sg_store *s, uint64_t *ret_bad_id, char *detail, size_t detailsize) {
        if (!s)
                return -EINVAL;
        return sg_audit_chain_verify(s->audit, ret_bad_id, detail, detailsize);
}

int sg_store_audit_verify_note(const sg_store *s, char *buf, size_t size) {
        if (!s)
                return -EINVAL;
        return sg_audit_chain_verify_note(s->audit, buf, size);
}

int sg_store_audit_set_epoch(sg_store *s, uint64_t epoch, const uint8_t key[SG_FSS_KEY_BYTES]) {
        if (!s)
                return -EINVAL;
        return sg_audit_chain_set_epoch(s->audit, epoch, key);
}

/* A seal (seal_fn: under the epoch's key, or the static key's) inside the open transaction;
 * a failure loses the transaction, as any failed write does. */
static int audit_seal(sg_store *s, int (*seal_fn)(sg_audit_chain *, uint64_t), uint64_t time_usec) {
        int r = write_check(s);

        if (r < 0)
                return r;
        r = seal_fn(s->audit, time_usec);
        if (r < 0)
                (void) tx_lost(s);
        return r;
}

int sg_store_audit_seal(sg_store *s, uint64_t time_usec) {
        return audit_seal(s, sg_audit_chain_seal, time_usec);
}

int sg_store_audit_seal_static(sg_store *s, uint64_t time_usec) {
        return audit_seal(s, sg_audit_chain_seal_static, time_usec);
}

void sg_store_audit_epoch_key(const sg_store *s, struct sg_audit_epoch_key *ret) {
        sg_audit_chain_epoch_key(s ? s->audit : NULL, ret);
}

int sg_store_audit_last_epoch(sg_store *s, int64_t *ret) {
        if (!s)
                return -EINVAL;
        return sg_audit_chain_last_epoch(s->audit, ret);
}

int sg_store_audit_resume_after(sg_store *s, uint64_t last_id) {
        if (!s)
                return -EINVAL;
        return sg_audit_chain_resume_after(s->audit, last_id);
}

int sg_store_audit_prune_upto(sg_store *s, uint64_t cut, uint64_t *ret_deleted) {
        uint64_t deleted = 0;
        int r;

        r = write_check(s);
        if (r < 0)
                return r;
        r = op_begin(s);
        if (r < 0)
                return r;
        r = sg_audit_chain_prune_upto(s->audit, cut, &deleted);
        r = op_end(s, r);
        if (r < 0)
                return r;
        if (ret_deleted)
                *ret_deleted = deleted;
        return 0;
}

int sg_store_free_bytes(sg_store *s, uint64_t *ret) {
        const char *path;
        char dir[PATH_MAX];
        struct statvfs st;
        char *slash;

        if (!s || !ret)
                return -EINVAL;
        path = sqlite3_db_filename(s->db, "main");
        if (!path || strlen(path) >= sizeof dir)
                return -EINVAL;
        strcpy(dir, path);
        slash = strrchr(dir, '/');
        if (slash)
                *slash = '\0';
        if (statvfs(slash ? dir : ".", &st) < 0)
                return -errno;
        *ret = (uint64_t) st.f_bavail * st.f_frsize;
        return 0;
}

int sg_store_audit_prune(sg_store *s, uint64_t before_usec, uint64_t max_rows, uint64_t *ret_deleted) {
        return sg_store_audit_prune_some(s, before_usec, max_rows, 0, ret_deleted, NULL);
}

int sg_store_audit_prune_some(sg_store *s, uint64_t before_usec, uint64_t max_rows, uint64_t limit,
                              uint64_t *ret_deleted, bool *ret_more) {
        uint64_t deleted = 0;
        bool more = false;
        int r;

        r = write_check(s);
        if (r < 0)
                return r;
        if (!before_usec && !max_rows) {
                if (ret_deleted)
                        *ret_deleted = 0;
                if (ret_more)
                        *ret_more = false;
                return 0;
        }
        r = op_begin(s);
        if (r < 0)
                return r;
        r = sg_audit_chain_prune_some(s->audit, before_usec, max_rows, limit, &deleted, &more);
        r = op_end(s, r);
        if (r < 0)
                return r;
        if (ret_deleted)
                *ret_deleted = deleted;
        if (ret_more)
                *ret_more = more;
        return 0;
}

void sg_store_audit_committed_tail(const sg_store *s, struct sg_audit_tail *ret) {
        sg_audit_chain_committed_tail(s->audit, s->in_tx, ret);
}

/* ---- the read-only connection ---- */

enum reader_stmt_id {
        RST_BEGIN,
        RST_END,
        RST_COUNT,
        _RST_MAX,
};

static const char *const reader_sql[_RST_MAX] = {
        [RST_BEGIN] = "BEGIN",  /* deferred: the snapshot starts at the first read */
        [RST_END] = "ROLLBACK", /* nothing to keep; ends the snapshot */
        [RST_COUNT] = "SELECT count(*) FROM audit",
};

struct sg_store_reader {
        sqlite3 *db;
        sqlite3_stmt *st[_RST_MAX];
        sg_audit_chain *audit; /* the chain's statements on this handle */
        bool (*stop)(void *userdata);
        void *stop_userdata;
};

/* SQLite calls this every 4096 VM steps (well under a millisecond). */
static int reader_progress(void *userdata) {
        sg_store_reader *r = userdata;

        return r->stop && r->stop(r->stop_userdata) ? 1 : 0;
}

int sg_store_reader_open(const char *state_dir, const uint8_t *audit_key, sg_store_reader **ret, char *err,
                         size_t errsize) {
        char path[PATH_MAX];

        set_err(err, errsize, "%s", "");
        if (!state_dir || !audit_key || !ret)
                return -EINVAL;
        if ((size_t) snprintf(path, sizeof path, "%s/%s", state_dir, DB_NAME) >= sizeof path)
                return -ENAMETOOLONG;
        return sg_store_reader_open_file(path, audit_key, ret, err, errsize);
}

int sg_store_reader_open_file(const char *path, const uint8_t *audit_key, sg_store_reader **ret, char *err,
                              size_t errsize) {
        sg_store_reader *rd;
        int r, rc;

        set_err(err, errsize, "%s", "");
        if (!path || !ret)
                return -EINVAL;
        rd = calloc(1, sizeof *rd);
        if (!rd)
                return -ENOMEM;
        rc = sqlite3_open_v2(path, &rd->db,
                             SQLITE_OPEN_READONLY | SQLITE_OPEN_NOFOLLOW | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
                             NULL);
        if (rc != SQLITE_OK) {
                r = sg_store_errno(rc);
                set_err(err, errsize, "cannot open %s read-only: %s", path,
                        rd->db ? sqlite3_errmsg(rd->db) : sqlite3_errstr(rc));
                goto fail;
        }
        (void) sqlite3_extended_result_codes(rd->db, 1);
        if (sqlite3_db_config(rd->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL) != SQLITE_OK ||
            sqlite3_db_config(rd->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL) != SQLITE_OK ||
            sqlite3_db_config(rd->db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, NULL) != SQLITE_OK ||
            sqlite3_db_config(rd->db, SQLITE_DBCONFIG_DQS_DML, 0, NULL) != SQLITE_OK ||
            sqlite3_db_config(rd->db, SQLITE_DBCONFIG_DQS_DDL, 0, NULL) != SQLITE_OK) {
                set_err(err, errsize, "cannot configure SQLite for %s", path);
                r = -EIO;
                goto fail;
        }
        (void) sqlite3_busy_timeout(rd->db, BUSY_TIMEOUT_MS);
        r = check_schema(rd->db, path, err, errsize);
        if (r < 0)
                goto fail;
        r = prepare_persistent(rd->db, reader_sql, rd->st, _RST_MAX);
        if (r >= 0)
                r = sg_audit_chain_new(rd->db, audit_key, &rd->audit);
        if (r < 0) {
                set_err(err, errsize, "%s: unexpected schema (%s)", path, sqlite3_errmsg(rd->db));
                goto fail;
        }
        sqlite3_progress_handler(rd->db, 4096, reader_progress, rd);
        *ret = rd;
        return 0;
fail:
        sg_store_reader_free(rd);
        return r;
}

sg_store_reader *sg_store_reader_free(sg_store_reader *rd) {
        if (!rd)
                return NULL;
        if (rd->db) {
                int rc;

                for (int i = 0; i < _RST_MAX; i++)
                        (void) sqlite3_finalize(rd->st[i]);
                rd->audit = sg_audit_chain_free(rd->audit);
                rc = sqlite3_close(rd->db);
                assert(rc == SQLITE_OK);
                (void) rc;
        }
        free(rd);
        return NULL;
}

void sg_store_reader_set_stop(sg_store_reader *rd, bool (*stop)(void *userdata), void *userdata) {
        rd->stop = stop;
        rd->stop_userdata = userdata;
}

/* One snapshot around a read (BEGIN, then the first read takes it). */
static int reader_begin(sg_store_reader *rd) {
        return step_done(rd->st[RST_BEGIN]);
}

static int reader_end(sg_store_reader *rd, int r) {
        if (!sqlite3_get_autocommit(rd->db))
                (void) step_done(rd->st[RST_END]);
        return r;
}

int sg_store_reader_audit_verify(sg_store_reader *rd, const struct sg_audit_tail *expect, uint64_t *ret_bad_id,
                                 uint64_t *ret_rows, char *detail, size_t detailsize) {
        sqlite3_int64 n = 0;
        int r, q;

        if (!rd || !expect)
                return -EINVAL;
        r = reader_begin(rd);
        if (r < 0)
                return r;
        r = sg_audit_chain_verify_upto(rd->audit, expect, ret_bad_id, detail, detailsize);
        if (r >= 0 && ret_rows) {
                q = step_int(rd->st[RST_COUNT], &n);
                if (q < 0)
                        r = q;
                else
                        *ret_rows = n < 0 ? 0 : (uint64_t) n;
        }
        return reader_end(rd, r);
}

int sg_store_reader_set_epoch_key(sg_store_reader *rd, uint64_t epoch, const uint8_t key[SG_FSS_KEY_BYTES],
                                  bool current) {
        if (!rd)
                return -EINVAL;
        return sg_audit_chain_set_verify_key(rd->audit, epoch, key, current);
}

void sg_store_reader_forget_epoch_key(sg_store_reader *rd) {
        if (rd)
                sg_audit_chain_forget_verify_key(rd->audit);
}

int sg_store_reader_audit_last_epoch(sg_store_reader *rd, int64_t *ret) {
        int r;

        if (!rd)
                return -EINVAL;
        r = reader_begin(rd);
        if (r < 0)
                return r;
        return reader_end(rd, sg_audit_chain_last_epoch(rd->audit, ret));
}

int sg_store_reader_audit_note(const sg_store_reader *rd, char *buf, size_t size) {
        if (!rd)
                return -EINVAL;
        return sg_audit_chain_verify_note(rd->audit, buf, size);
}

int sg_store_reader_audit_query(sg_store_reader *rd, const struct sg_audit_filter *f, sg_audit_cb cb,
                                void *userdata) {
        int r;

        if (!rd)
                return -EINVAL;
        r = reader_begin(rd);
        if (r < 0)
                return r;
        return reader_end(rd, sg_audit_chain_query(rd->audit, f, cb, userdata));
}
