/* SPDX-License-Identifier: MIT */
/*
 * The SQLite store on real files in a temp dir: what open refuses (unsafe modes, symlinks,
 * garbage, foreign or newer schemas) and leaves untouched, migrations, restart persistence,
 * attempts and locks, audit queries with every filter, SQL payloads stored verbatim, and the
 * HMAC chain against edits, deletions, insertions and reorderings made behind the store's
 * back with a second SQLite connection, through pruning and rolled-back transactions.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "sql.h"
#include "audit-chain.h"
#include "store.h"

static char tmpdir[PATH_MAX];
static char dbpath[PATH_MAX + 32];
static uint8_t key[SG_AUDIT_KEY_BYTES];

/* ---- fixture ---- */

static int setup(void **state) {
        const char *base = getenv("SG_TEST_TMP");

        (void) state;
        if (!base || !*base)
                base = "/tmp";
        snprintf(tmpdir, sizeof tmpdir, "%s/sgstore.XXXXXX", base);
        if (!mkdtemp(tmpdir))
                return -1;
        snprintf(dbpath, sizeof dbpath, "%s/secguard.db", tmpdir);
        for (size_t i = 0; i < sizeof key; i++)
                key[i] = (uint8_t) (i * 7 + 1);
        return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) st;
        (void) flag;
        (void) ftw;
        return remove(path);
}

static int teardown(void **state) {
        (void) state;
        (void) chmod(tmpdir, 0700);
        return nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static sg_store *open_store_key(const uint8_t *k) {
        struct sg_store_options o = { .state_dir = tmpdir, .audit_key = k };
        char err[512] = "";
        sg_store *s = NULL;
        int r = sg_store_open(&o, &s, err, sizeof err);

        if (r < 0)
                print_error("sg_store_open: %d %s\n", r, err);
        assert_int_equal(r, 0);
        assert_non_null(s);
        return s;
}

static sg_store *open_store(void) {
        return open_store_key(key);
}

/* Expects open to fail with r, and err to contain each of the NULL-terminated strings. */
static void expect_open_fails(int expected, ...) {
        struct sg_store_options o = { .state_dir = tmpdir, .audit_key = key };
        sg_store *s = (sg_store *) 0x1; /* must stay untouched */
        char err[1024] = "";
        const char *needle;
        va_list ap;
        int r;

        r = sg_store_open(&o, &s, err, sizeof err);
        if (r != expected)
                print_error("sg_store_open: %d (expected %d) %s\n", r, expected, err);
        assert_int_equal(r, expected);
        assert_ptr_equal(s, (sg_store *) 0x1);
        va_start(ap, expected);
        while ((needle = va_arg(ap, const char *))) {
                if (!strstr(err, needle))
                        print_error("message \"%s\" lacks \"%s\"\n", err, needle);
                assert_non_null(strstr(err, needle));
        }
        va_end(ap);
}

/* A second connection that edits the file behind the store's back. */
static void raw_exec(const char *sql) {
        sqlite3 *db = NULL;
        char *msg = NULL;
        int rc;

        assert_int_equal(sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
        sqlite3_busy_timeout(db, 5000);
        rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
        if (rc != SQLITE_OK)
                print_error("%s: %s\n", sql, msg ? msg : "?");
        assert_int_equal(rc, SQLITE_OK);
        sqlite3_free(msg);
        assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

static int64_t raw_int(const char *sql) {
        sqlite3_stmt *st = NULL;
        sqlite3 *db = NULL;
        int64_t v;

        assert_int_equal(sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        assert_int_equal(sqlite3_close(db), SQLITE_OK);
        return v;
}

static void raw_text(const char *sql, char *buf, size_t size) {
        sqlite3_stmt *st = NULL;
        sqlite3 *db = NULL;

        assert_int_equal(sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        snprintf(buf, size, "%s", (const char *) sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
        assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

static void raw_blob(const char *sql, uint8_t *buf, size_t size) {
        sqlite3_stmt *st = NULL;
        sqlite3 *db = NULL;

        assert_int_equal(sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        assert_int_equal(sqlite3_column_bytes(st, 0), (int) size);
        memcpy(buf, sqlite3_column_blob(st, 0), size);
        sqlite3_finalize(st);
        assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

/* A database made by someone else (no WAL), mode 0600 so only its content is at stake. */
static void raw_create(const char *sql) {
        sqlite3 *db = NULL;

        assert_int_equal(sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_close(db), SQLITE_OK);
        assert_int_equal(chmod(dbpath, 0600), 0);
}

static mode_t file_mode(const char *path) {
        struct stat st;

        assert_int_equal(stat(path, &st), 0);
        return st.st_mode & 07777;
}

static bool exists(const char *path) {
        struct stat st;

        return lstat(path, &st) == 0;
}

static struct sg_audit_event ev_make(uint64_t t, const char *event, const char *user, const char *rhost) {
        return (struct sg_audit_event) {
                .time_usec = t, .event = event, .user = user, .rhost = rhost,
                .service = "sshd", .tty = "ssh", .pid = 1234, .uid = 0,
        };
}

static uint64_t append(sg_store *s, uint64_t t, const char *event, const char *user, const char *rhost) {
        struct sg_audit_event ev = ev_make(t, event, user, rhost);
        uint64_t id = 0;

        assert_int_equal(sg_store_audit_append(s, &ev, &id), 0);
        return id;
}

/* Ten rows, ids 1..10, times 100..1000. */
static void append_ten(sg_store *s) {
        for (uint64_t i = 1; i <= 10; i++)
                assert_int_equal(append(s, i * 100, "auth_failure", i % 2 ? "alice" : "bob", "192.0.2.1"), i);
}

static int verify(sg_store *s, uint64_t *bad, char *detail, size_t size) {
        *bad = 0;
        detail[0] = 0;
        return sg_store_audit_verify(s, bad, detail, size);
}

static void assert_intact(sg_store *s) {
        char detail[256];
        uint64_t bad;
        int r = verify(s, &bad, detail, sizeof detail);

        if (r != 0)
                print_error("verify: %d at %llu: %s\n", r, (unsigned long long) bad, detail);
        assert_int_equal(r, 0);
}

static void assert_broken(sg_store *s, uint64_t bad_id, const char *needle) {
        char detail[256];
        uint64_t bad;
        int r = verify(s, &bad, detail, sizeof detail);

        if (r != 1 || bad != bad_id || !strstr(detail, needle))
                print_error("verify: %d at %llu: %s\n", r, (unsigned long long) bad, detail);
        assert_int_equal(r, 1);
        assert_int_equal(bad, bad_id);
        assert_non_null(strstr(detail, needle));
}

/* ---- query collection ---- */

#define MAX_ROWS 64
struct collected {
        size_t n;
        uint64_t id[MAX_ROWS];
        int stop_after; /* > 0: return -ENOBUFS after that many rows */
};

static int collect(void *userdata, const struct sg_audit_row *r) {
        struct collected *c = userdata;

        assert_true(c->n < MAX_ROWS);
        c->id[c->n++] = r->id;
        if (c->stop_after > 0 && c->n >= (size_t) c->stop_after)
                return -ENOBUFS;
        return 0;
}

static void expect_query(sg_store *s, struct sg_audit_filter f, size_t n, ...) {
        struct collected c = { 0 };
        va_list ap;

        assert_int_equal(sg_store_audit_query(s, &f, collect, &c), 0);
        if (c.n != n)
                print_error("query returned %zu rows, expected %zu\n", c.n, n);
        assert_int_equal(c.n, n);
        va_start(ap, n);
        for (size_t i = 0; i < n; i++)
                assert_int_equal(c.id[i], va_arg(ap, int));
        va_end(ap);
}

/* ---- open, files, refusal ---- */

static void test_open_creates_private_wal_db(void **state) {
        char mode[16];
        sg_store *s;

        (void) state;
        s = open_store();
        assert_true(exists(dbpath));
        assert_int_equal(file_mode(dbpath), 0600);
        append(s, 1, "daemon_start", NULL, NULL);
        {
                char wal[PATH_MAX + 64], shm[PATH_MAX + 64];

                snprintf(wal, sizeof wal, "%s-wal", dbpath);
                snprintf(shm, sizeof shm, "%s-shm", dbpath);
                assert_true(exists(wal));
                assert_true(exists(shm));
                assert_int_equal(file_mode(wal), 0600);
                assert_int_equal(file_mode(shm), 0600);
        }
        raw_text("PRAGMA journal_mode", mode, sizeof mode);
        assert_string_equal(mode, "wal");
        assert_int_equal(raw_int("PRAGMA user_version"), SG_STORE_SCHEMA_VERSION);
        assert_null(sg_store_free(s));
}

static void test_migrations_create_schema(void **state) {
        static const char *const names[] = { "attempts", "locks", "audit", "audit_anchor",
                                             "attempts_time", "audit_user",
                                             "audit_event", "audit_rhost", "audit_time", "sessions",
                                             "tokens", "audit_seal", "fleet_locks" };
        char sql[256];

        (void) state;
        sg_store_free(open_store());
        assert_int_equal(raw_int("PRAGMA user_version"), SG_STORE_SCHEMA_VERSION);
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
                snprintf(sql, sizeof sql, "SELECT count(*) FROM sqlite_schema WHERE name = '%s'", names[i]);
                assert_int_equal(raw_int(sql), 1);
        }
        /* A second open finds the schema current and changes nothing. */
        sg_store_free(open_store());
        assert_int_equal(raw_int("PRAGMA user_version"), SG_STORE_SCHEMA_VERSION);
        assert_int_equal(raw_int("SELECT count(*) FROM sqlite_schema WHERE type = 'table'"), 8);
}

struct lock_seen {
        size_t n;
        char kind[8][16], key[8][64];
        struct sg_lock_row row[8];
};

static int collect_lock(void *userdata, const struct sg_lock_row *l) {
        struct lock_seen *ls = userdata;

        assert_true(ls->n < 8);
        snprintf(ls->kind[ls->n], sizeof ls->kind[0], "%s", l->kind);
        snprintf(ls->key[ls->n], sizeof ls->key[0], "%s", l->key);
        ls->row[ls->n] = *l;
        ls->row[ls->n].kind = ls->kind[ls->n];
        ls->row[ls->n].key = ls->key[ls->n];
        ls->n++;
        return 0;
}

struct attempt_seen {
        size_t n;
        uint64_t id[16], time[16];
        char user[16][32], source[16][32];
        enum sg_attempt_state state[16];
        int stop_after;
};

static int collect_attempt(void *userdata, uint64_t id, uint64_t time_usec, const char *user,
                           const char *source, enum sg_attempt_state st) {
        struct attempt_seen *a = userdata;

        assert_true(a->n < 16);
        a->id[a->n] = id;
        a->time[a->n] = time_usec;
        snprintf(a->user[a->n], sizeof a->user[0], "%s", user);
        snprintf(a->source[a->n], sizeof a->source[0], "%s", source);
        a->state[a->n] = st;
        a->n++;
        if (a->stop_after > 0 && a->n >= (size_t) a->stop_after)
                return -ECANCELED;
        return 0;
}

static void test_reopen_keeps_data(void **state) {
        struct sg_lock_row l = { .kind = "user", .key = "alice", .until_usec = 5000, .level = 2,
                                 .last_lock_usec = 4000, .cleared_usec = 10, .failures = 5 };
        struct attempt_seen a = { 0 };
        struct lock_seen ls = { 0 };
        uint64_t n = 0, id = 0;
        sg_store *s;

        (void) state;
        s = open_store();
        append_ten(s);
        assert_int_equal(sg_store_attempt_add(s, 100, "alice", "192.0.2.1", SG_ATTEMPT_FAILURE, &id), 0);
        assert_int_equal(sg_store_lock_put(s, &l), 0);
        s = sg_store_free(s);

        /* Daemon restart: everything is still there and the chain continues. */
        s = open_store();
        assert_int_equal(sg_store_audit_count(s, &n), 0);
        assert_int_equal(n, 10);
        assert_int_equal(append(s, 1100, "daemon_start", NULL, NULL), 11);
        assert_intact(s);
        assert_int_equal(sg_store_attempt_foreach(s, 0, collect_attempt, &a), 0);
        assert_int_equal(a.n, 1);
        assert_int_equal(a.id[0], id);
        assert_string_equal(a.user[0], "alice");
        assert_int_equal(sg_store_lock_foreach(s, collect_lock, &ls), 0);
        assert_int_equal(ls.n, 1);
        assert_int_equal(ls.row[0].until_usec, 5000);
        assert_int_equal(ls.row[0].level, 2);
        assert_int_equal(ls.row[0].failures, 5);
        sg_store_free(s);
}

static void test_state_dir_unsafe_refused(void **state) {
        (void) state;
        assert_int_equal(chmod(tmpdir, 0777), 0);
        expect_open_fails(-EPERM, tmpdir, "group/world writable", "0777", "chmod 0700", NULL);
        assert_int_equal(chmod(tmpdir, 0720), 0);
        expect_open_fails(-EPERM, tmpdir, "chmod 0700", NULL);
        assert_int_equal(chmod(tmpdir, 0700), 0);
        assert_false(exists(dbpath)); /* nothing was created on the way */

        if (geteuid() == 0) {
                assert_int_equal(chown(tmpdir, 65534, 65534), 0);
                expect_open_fails(-EPERM, tmpdir, "chown", NULL);
                assert_int_equal(chown(tmpdir, 0, 0), 0);
        } else
                print_message("skipping the foreign-owner case: needs root to chown\n");

        /* A symlink in place of the directory is not followed. */
        {
                char link[PATH_MAX + 16], real[PATH_MAX + 16];
                struct sg_store_options o = { .state_dir = link, .audit_key = key };
                char err[512] = "";
                sg_store *s = NULL;

                snprintf(real, sizeof real, "%s/real", tmpdir);
                snprintf(link, sizeof link, "%s/link", tmpdir);
                assert_int_equal(mkdir(real, 0700), 0);
                assert_int_equal(symlink(real, link), 0);
                assert_int_equal(sg_store_open(&o, &s, err, sizeof err), -ENOTDIR);
                assert_null(s);
                assert_non_null(strstr(err, link));
                assert_non_null(strstr(err, "symbolic link"));
        }
}

static void test_db_unsafe_mode_refused(void **state) {
        (void) state;
        sg_store_free(open_store());
        assert_int_equal(chmod(dbpath, 0644), 0);
        expect_open_fails(-EPERM, dbpath, "chmod 0600", NULL);
        assert_int_equal(file_mode(dbpath), 0644); /* reported, not silently changed */
        assert_int_equal(chmod(dbpath, 0660), 0);
        expect_open_fails(-EPERM, dbpath, "chmod 0600", NULL);
        assert_int_equal(chmod(dbpath, 0600), 0);
        if (geteuid() == 0) {
                assert_int_equal(chown(dbpath, 65534, 65534), 0);
                expect_open_fails(-EPERM, dbpath, "chown", NULL);
                assert_int_equal(chown(dbpath, 0, 0), 0);
        } else
                print_message("skipping the foreign-owner case: needs root to chown\n");
        sg_store_free(open_store());
}

static void test_db_symlink_refused(void **state) {
        char target[PATH_MAX + 16];
        int fd;

        (void) state;
        snprintf(target, sizeof target, "%s/elsewhere", tmpdir);
        fd = open(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        close(fd);
        assert_int_equal(symlink(target, dbpath), 0);
        expect_open_fails(-EPERM, dbpath, "symbolic link", NULL);
        {
                struct stat st;

                assert_int_equal(stat(target, &st), 0);
                assert_int_equal(st.st_size, 0);
        }
}

static void test_garbage_refused_untouched(void **state) {
        char before[8192], after[sizeof before + 1];
        char wal[PATH_MAX + 64];
        ssize_t n;
        int fd;

        (void) state;
        for (size_t i = 0; i < sizeof before; i++)
                before[i] = "not a database\n"[i % 15];
        fd = open(dbpath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, before, sizeof before), (ssize_t) sizeof before);
        close(fd);

        expect_open_fails(-EBADMSG, dbpath, "not a secguard database", "move it aside", NULL);

        fd = open(dbpath, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        n = read(fd, after, sizeof after);
        close(fd);
        assert_int_equal(n, (ssize_t) sizeof before);
        assert_memory_equal(before, after, sizeof before);
        snprintf(wal, sizeof wal, "%s-wal", dbpath);
        assert_false(exists(wal));
}

static void test_newer_schema_refused(void **state) {
        (void) state;
        raw_create("PRAGMA user_version = 99; CREATE TABLE future(x);");
        char understood[32];

        snprintf(understood, sizeof understood, "version %d", SG_STORE_SCHEMA_VERSION);
        expect_open_fails(-EPROTO, dbpath, "99", understood, NULL);
        assert_int_equal(raw_int("PRAGMA user_version"), 99);
}

static void test_foreign_db_refused(void **state) {
        (void) state;
        raw_create("CREATE TABLE someone_elses(x); INSERT INTO someone_elses VALUES(42);");
        expect_open_fails(-EBADMSG, dbpath, "not a secguard database", NULL);
        assert_int_equal(raw_int("SELECT x FROM someone_elses"), 42);
        assert_int_equal(raw_int("PRAGMA user_version"), 0);
}

/* A schema of our version whose tables were changed behind our back: the statement that no
 * longer prepares is named, whether it is the store's or the audit trail's. */
static void test_tampered_schema_refused(void **state) {
        (void) state;
        sg_store_free(open_store());
        raw_exec("DROP INDEX audit_time");
        expect_open_fails(-EBADMSG, dbpath, "unexpected schema", "audit_time", "move it aside", NULL);
        raw_exec("CREATE INDEX audit_time ON audit(time_usec)");
        sg_store_free(open_store());
        raw_exec("ALTER TABLE locks RENAME COLUMN failures TO fails");
        expect_open_fails(-EBADMSG, dbpath, "unexpected schema", "failures", NULL);
}

static void test_open_bad_args(void **state) {
        struct sg_store_options o = { .state_dir = tmpdir, .audit_key = NULL };
        char err[256] = "";
        sg_store *s = NULL;

        (void) state;
        assert_int_equal(sg_store_open(&o, &s, err, sizeof err), -EINVAL);
        assert_null(s);
        o.audit_key = key;
        o.state_dir = NULL;
        assert_int_equal(sg_store_open(&o, &s, err, sizeof err), -EINVAL);
        assert_int_equal(sg_store_open(NULL, &s, NULL, 0), -EINVAL);
        o.state_dir = "/nonexistent/secguard-test";
        assert_int_equal(sg_store_open(&o, &s, err, sizeof err), -ENOENT);
        assert_non_null(strstr(err, "/nonexistent/secguard-test"));
        assert_null(sg_store_free(NULL));
}

/* ---- attempts and locks ---- */

static void test_attempts(void **state) {
        struct attempt_seen a = { 0 };
        uint64_t id1, id2, id3, id4, n = 99;
        sg_store *s;

        (void) state;
        s = open_store();
        assert_int_equal(sg_store_attempt_add(s, 100, "alice", "192.0.2.1", SG_ATTEMPT_PENDING, &id1), 0);
        assert_int_equal(sg_store_attempt_add(s, 200, "bob", "192.0.2.2", SG_ATTEMPT_FAILURE, &id2), 0);
        assert_int_equal(sg_store_attempt_add(s, 300, "alice", "192.0.2.1", SG_ATTEMPT_PENDING, &id3), 0);
        assert_true(id1 < id2 && id2 < id3);
        assert_int_equal(sg_store_attempt_add(s, 1, NULL, "x", SG_ATTEMPT_FAILURE, NULL), -EINVAL);
        assert_int_equal(sg_store_attempt_add(s, 1, "x", "x", (enum sg_attempt_state) 7, NULL), -EINVAL);

        assert_int_equal(sg_store_attempt_settle(s, id1, SG_ATTEMPT_SUCCESS), 0);
        assert_int_equal(sg_store_attempt_settle(s, 999999, SG_ATTEMPT_SUCCESS), -ENOENT);

        /* Restart: the one still pending was in flight and counts as a failure. */
        assert_int_equal(sg_store_attempt_abandon_pending(s, &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(sg_store_attempt_abandon_pending(s, &n), 0);
        assert_int_equal(n, 0);

        assert_int_equal(sg_store_attempt_foreach(s, 0, collect_attempt, &a), 0);
        assert_int_equal(a.n, 3);
        assert_int_equal(a.id[0], id1);
        assert_int_equal(a.state[0], SG_ATTEMPT_SUCCESS);
        assert_int_equal(a.id[1], id2);
        assert_int_equal(a.state[1], SG_ATTEMPT_FAILURE);
        assert_string_equal(a.user[1], "bob");
        assert_string_equal(a.source[1], "192.0.2.2");
        assert_int_equal(a.time[1], 200);
        assert_int_equal(a.id[2], id3);
        assert_int_equal(a.state[2], SG_ATTEMPT_FAILURE);

        memset(&a, 0, sizeof a);
        assert_int_equal(sg_store_attempt_foreach(s, 200, collect_attempt, &a), 0);
        assert_int_equal(a.n, 2);
        assert_int_equal(a.id[0], id2);

        memset(&a, 0, sizeof a);
        a.stop_after = 1;
        assert_int_equal(sg_store_attempt_foreach(s, 0, collect_attempt, &a), -ECANCELED);
        assert_int_equal(a.n, 1);

        /* Pruning drops old settled rows, never one still pending. */
        assert_int_equal(sg_store_attempt_add(s, 50, "carol", "192.0.2.3", SG_ATTEMPT_PENDING, &id4), 0);
        assert_int_equal(sg_store_attempt_prune(s, 250), 0);
        memset(&a, 0, sizeof a);
        assert_int_equal(sg_store_attempt_foreach(s, 0, collect_attempt, &a), 0);
        assert_int_equal(a.n, 2);
        assert_int_equal(a.id[0], id4);
        assert_int_equal(a.state[0], SG_ATTEMPT_PENDING);
        assert_int_equal(a.id[1], id3);
        sg_store_free(s);
}

static void test_locks(void **state) {
        struct sg_lock_row l1 = { .kind = "user", .key = "alice", .until_usec = 1000, .level = 1,
                                  .last_lock_usec = 500, .cleared_usec = 0, .failures = 5 };
        struct sg_lock_row l2 = { .kind = "source", .key = "192.0.2.7", .until_usec = 9000, .level = 3,
                                  .last_lock_usec = 8000, .cleared_usec = 0, .failures = 20 };
        struct sg_lock_row l3 = { .kind = "user_source", .key = "bob|192.0.2.8", .until_usec = 0,
                                  .level = 1, .last_lock_usec = 100, .cleared_usec = 7000, .failures = 3 };
        struct lock_seen ls = { 0 };
        sg_store *s;

        (void) state;
        s = open_store();
        assert_int_equal(sg_store_lock_put(s, &l1), 0);
        assert_int_equal(sg_store_lock_put(s, &l2), 0);
        assert_int_equal(sg_store_lock_put(s, &l3), 0);
        l1.level = 2;
        l1.until_usec = 3000;
        assert_int_equal(sg_store_lock_put(s, &l1), 0); /* replaces */
        assert_int_equal(sg_store_lock_put(s, &(struct sg_lock_row) { .kind = "user" }), -EINVAL);

        assert_int_equal(sg_store_lock_foreach(s, collect_lock, &ls), 0);
        assert_int_equal(ls.n, 3);
        assert_string_equal(ls.kind[0], "source");
        assert_string_equal(ls.kind[1], "user");
        assert_string_equal(ls.key[1], "alice");
        assert_int_equal(ls.row[1].level, 2);
        assert_int_equal(ls.row[1].until_usec, 3000);
        assert_int_equal(ls.row[1].last_lock_usec, 500);
        assert_int_equal(ls.row[1].failures, 5);
        assert_string_equal(ls.key[2], "bob|192.0.2.8");
        assert_int_equal(ls.row[2].cleared_usec, 7000);

        /* Before 5000: alice (locked until 3000, last lock 500) goes; the source is still
         * locked and bob's history was cleared at 7000: both stay. */
        assert_int_equal(sg_store_lock_prune(s, 5000), 0);
        memset(&ls, 0, sizeof ls);
        assert_int_equal(sg_store_lock_foreach(s, collect_lock, &ls), 0);
        assert_int_equal(ls.n, 2);
        assert_string_equal(ls.kind[0], "source");
        assert_string_equal(ls.kind[1], "user_source");
        assert_int_equal(sg_store_lock_prune(s, 100000), 0);
        memset(&ls, 0, sizeof ls);
        assert_int_equal(sg_store_lock_foreach(s, collect_lock, &ls), 0);
        assert_int_equal(ls.n, 0);
        sg_store_free(s);
}

/* ---- audit queries ---- */

static void test_audit_query_filters(void **state) {
        struct collected c = { .stop_after = 2 };
        sg_store *s;

        (void) state;
        s = open_store();
        append(s, 100, "auth_failure", "alice", "192.0.2.1");
        append(s, 200, "auth_success", "bob", "192.0.2.2");
        append(s, 300, "auth_failure", "alice", "192.0.2.2");
        append(s, 400, "lockout", "alice", NULL);
        append(s, 500, "auth_failure", "carol", "192.0.2.1");
        append(s, 600, "auth_failure", "alice", "192.0.2.1");

        expect_query(s, (struct sg_audit_filter) { 0 }, 6, 1, 2, 3, 4, 5, 6);
        expect_query(s, (struct sg_audit_filter) { .limit = 2 }, 2, 5, 6);
        expect_query(s, (struct sg_audit_filter) { .user = "alice" }, 4, 1, 3, 4, 6);
        expect_query(s, (struct sg_audit_filter) { .user = "alice", .limit = 2 }, 2, 4, 6);
        expect_query(s, (struct sg_audit_filter) { .event = "auth_failure" }, 4, 1, 3, 5, 6);
        expect_query(s, (struct sg_audit_filter) { .event = "auth_failure", .limit = 3 }, 3, 3, 5, 6);
        expect_query(s, (struct sg_audit_filter) { .rhost = "192.0.2.1" }, 3, 1, 5, 6);
        expect_query(s, (struct sg_audit_filter) { .rhost = "192.0.2.1", .limit = 1 }, 1, 6);
        expect_query(s, (struct sg_audit_filter) { .user = "alice", .rhost = "192.0.2.1" }, 2, 1, 6);
        expect_query(s, (struct sg_audit_filter) { .user = "alice", .event = "lockout" }, 1, 4);
        expect_query(s, (struct sg_audit_filter) { .event = "auth_failure", .rhost = "192.0.2.2" }, 1, 3);
        expect_query(s, (struct sg_audit_filter) { .since_usec = 300 }, 4, 3, 4, 5, 6);
        expect_query(s, (struct sg_audit_filter) { .until_usec = 300 }, 3, 1, 2, 3);
        expect_query(s, (struct sg_audit_filter) { .since_usec = 200, .until_usec = 400 }, 3, 2, 3, 4);
        expect_query(s, (struct sg_audit_filter) { .since_usec = 200, .until_usec = 400, .limit = 2 }, 2, 3, 4);
        expect_query(s, (struct sg_audit_filter) { .user = "alice", .since_usec = 300 }, 3, 3, 4, 6);
        expect_query(s, (struct sg_audit_filter) { .event = "auth_failure", .until_usec = 300 }, 2, 1, 3);
        expect_query(s, (struct sg_audit_filter) { .rhost = "192.0.2.1", .since_usec = 200 }, 2, 5, 6);
        expect_query(s, (struct sg_audit_filter) { .user = "nobody" }, 0);
        expect_query(s, (struct sg_audit_filter) { .user = "alice", .event = "auth_success" }, 0);

        /* A callback error stops the walk and comes back. */
        assert_int_equal(sg_store_audit_query(s, &(struct sg_audit_filter) { 0 }, collect, &c), -ENOBUFS);
        assert_int_equal(c.n, 2);
        assert_int_equal(c.id[0], 1);
        /* The statement was reset: the next query starts afresh. */
        expect_query(s, (struct sg_audit_filter) { .limit = 1 }, 1, 6);
        sg_store_free(s);
}

struct agg {
        size_t n;
        uint64_t first, last;
        bool ordered;
};

static int aggregate(void *userdata, const struct sg_audit_row *r) {
        struct agg *a = userdata;

        if (a->n == 0)
                a->first = r->id;
        else if (r->id <= a->last)
                a->ordered = false;
        a->last = r->id;
        a->n++;
        return 0;
}

/* The default limit is 100; newest-N come oldest first with every statement. */
static void test_audit_query_newest_n(void **state) {
        struct agg a = { .ordered = true };
        sg_store *s;

        (void) state;
        s = open_store();
        assert_int_equal(sg_store_begin(s), 0);
        for (int i = 1; i <= 150; i++)
                append(s, (uint64_t) i, i % 3 ? "auth_failure" : "auth_success", i % 2 ? "alice" : "bob",
                       "192.0.2.1");
        assert_int_equal(sg_store_commit(s), 0);

        assert_int_equal(sg_store_audit_query(s, &(struct sg_audit_filter) { 0 }, aggregate, &a), 0);
        assert_int_equal(a.n, 100);
        assert_int_equal(a.first, 51);
        assert_int_equal(a.last, 150);
        assert_true(a.ordered);

        a = (struct agg) { .ordered = true };
        assert_int_equal(sg_store_audit_query(s, &(struct sg_audit_filter) { .user = "bob", .limit = 10 },
                                              aggregate, &a), 0);
        assert_int_equal(a.n, 10);
        assert_int_equal(a.first, 132);
        assert_int_equal(a.last, 150);
        assert_true(a.ordered);

        a = (struct agg) { .ordered = true };
        assert_int_equal(sg_store_audit_query(s, &(struct sg_audit_filter) { .since_usec = 20, .until_usec = 80,
                                                                             .limit = 1000 },
                                              aggregate, &a), 0);
        assert_int_equal(a.n, 61);
        assert_int_equal(a.first, 20);
        assert_int_equal(a.last, 80);
        assert_true(a.ordered);
        sg_store_free(s);
}

struct payload_check {
        const struct sg_audit_event *want;
        size_t n;
};

static void assert_str_or_null(const char *got, const char *want) {
        if (!want)
                assert_null(got);
        else {
                assert_non_null(got);
                assert_string_equal(got, want);
        }
}

static int check_payload(void *userdata, const struct sg_audit_row *r) {
        struct payload_check *p = userdata;
        const struct sg_audit_event *w = p->want;

        p->n++;
        assert_int_equal(r->ev.time_usec, w->time_usec);
        assert_str_or_null(r->ev.event, w->event);
        assert_str_or_null(r->ev.reason, w->reason);
        assert_str_or_null(r->ev.user, w->user);
        assert_str_or_null(r->ev.service, w->service);
        assert_str_or_null(r->ev.rhost, w->rhost);
        assert_str_or_null(r->ev.tty, w->tty);
        assert_str_or_null(r->ev.session_id, w->session_id);
        assert_str_or_null(r->ev.detail, w->detail);
        assert_int_equal(r->ev.pid, w->pid);
        assert_int_equal(r->ev.uid, w->uid);
        if (w->user_sealed) {
                assert_non_null(r->ev.user_sealed);
                assert_int_equal(r->ev.user_sealed_len, w->user_sealed_len);
                assert_memory_equal(r->ev.user_sealed, w->user_sealed, w->user_sealed_len);
        } else
                assert_null(r->ev.user_sealed);
        return 0;
}

static void test_sql_payloads_verbatim(void **state) {
        static const char *const payloads[] = {
                "x'); DROP TABLE audit;--",
                "\"; DELETE FROM audit_anchor; --",
                "' OR '1'='1",
                "%s%n%x\\",
                "",
        };
        static const uint8_t sealed[] = { 0, 'x', '\'', ')', ';', 0, 0xff, 0x80 };
        sg_store *s;

        (void) state;
        s = open_store();
        for (size_t i = 0; i < sizeof payloads / sizeof payloads[0]; i++) {
                const char *p = payloads[i];
                struct sg_audit_event ev = {
                        .time_usec = 1000 + i, .event = p, .reason = p, .user = p, .service = p,
                        .rhost = p, .tty = p, .session_id = p, .detail = p, .pid = -1, .uid = INT64_MIN,
                };
                struct payload_check pc = { .want = &ev };
                uint64_t id = 0, aid = 0;
                struct sg_lock_row l = { .kind = p, .key = p, .level = 1 };
                struct lock_seen ls = { 0 };

                assert_int_equal(sg_store_audit_append(s, &ev, &id), 0);
                assert_int_equal(sg_store_audit_query(s, &(struct sg_audit_filter) { .user = p, .event = p,
                                                                                     .rhost = p },
                                                      check_payload, &pc), 0);
                assert_int_equal(pc.n, 1);
                assert_int_equal(sg_store_attempt_add(s, 1, p, p, SG_ATTEMPT_FAILURE, &aid), 0);
                assert_int_equal(sg_store_lock_put(s, &l), 0);
                assert_int_equal(sg_store_lock_foreach(s, collect_lock, &ls), 0);
                assert_true(ls.n >= 1);
        }
        {
                struct sg_audit_event ev = { .time_usec = 5, .event = "auth_failure", .user_sealed = sealed,
                                             .user_sealed_len = sizeof sealed, .pid = 7, .uid = 8 };
                struct payload_check pc = { .want = &ev };

                append(s, 1, "daemon_start", NULL, NULL);
                assert_int_equal(sg_store_audit_append(s, &ev, NULL), 0);
                assert_int_equal(sg_store_audit_query(s, &(struct sg_audit_filter) { .limit = 1 }, check_payload, &pc), 0);
                assert_int_equal(pc.n, 1);
        }
        assert_intact(s);
        sg_store_free(s);
        assert_int_equal(raw_int("SELECT count(*) FROM audit"), 7);
        assert_int_equal(raw_int("SELECT count(*) FROM sqlite_schema WHERE type = 'table'"), 8);
}

/* ---- fleet locks ---- */

struct fleet_seen {
        size_t n;
        char kind[8][16], key[8][64], host[8][40];
        struct sg_fleet_lock_row row[8];
};

static int collect_fleet(void *userdata, const struct sg_fleet_lock_row *l) {
        struct fleet_seen *fs = userdata;

        if (fs->n >= 8)
                return -E2BIG;
        snprintf(fs->kind[fs->n], sizeof fs->kind[0], "%s", l->kind);
        snprintf(fs->key[fs->n], sizeof fs->key[0], "%s", l->key);
        snprintf(fs->host[fs->n], sizeof fs->host[0], "%s", l->origin_host);
        fs->row[fs->n] = *l;
        fs->n++;
        return 0;
}

static void test_fleet_locks(void **state) {
        static const char host[] = "0123456789abcdef0123456789abcdef";
        struct sg_fleet_lock_row a = { .kind = "source", .key = "192.0.2.7", .until_usec = 9000,
                                       .origin_host = host, .decision_id = 41, .applied_usec = 100 };
        struct sg_fleet_lock_row b = { .kind = "spray", .key = "2001:db8:1:2::/64", .until_usec = 5000,
                                       .origin_host = host, .decision_id = 42, .applied_usec = 200 };
        struct fleet_seen fs = { 0 };
        sg_store *s;

        (void) state;
        s = open_store();
        assert_int_equal(sg_store_fleet_lock_put(s, &a), 0);
        assert_int_equal(sg_store_fleet_lock_put(s, &b), 0);
        a.until_usec = 12000;
        a.decision_id = 43;
        assert_int_equal(sg_store_fleet_lock_put(s, &a), 0); /* the newer decision replaces */
        assert_int_equal(sg_store_fleet_lock_put(s, &(struct sg_fleet_lock_row) { .kind = "source", .key = "x" }),
                         -EINVAL);
        /* durable: a new store sees them */
        sg_store_free(s);
        s = open_store();
        assert_int_equal(sg_store_fleet_lock_foreach(s, collect_fleet, &fs), 0);
        assert_int_equal(fs.n, 2);
        assert_string_equal(fs.kind[0], "source");
        assert_string_equal(fs.key[0], "192.0.2.7");
        assert_int_equal(fs.row[0].until_usec, 12000);
        assert_int_equal(fs.row[0].decision_id, 43);
        assert_int_equal(fs.row[0].applied_usec, 100);
        assert_string_equal(fs.host[0], host);
        assert_string_equal(fs.kind[1], "spray");
        assert_string_equal(fs.key[1], "2001:db8:1:2::/64");
        /* local locks are another table: untouched */
        assert_int_equal(raw_int("SELECT count(*) FROM locks"), 0);

        /* expired before 6000: the spray lock (5000) goes, the source lock (12000) stays */
        assert_int_equal(sg_store_fleet_lock_prune(s, 6000), 0);
        memset(&fs, 0, sizeof fs);
        assert_int_equal(sg_store_fleet_lock_foreach(s, collect_fleet, &fs), 0);
        assert_int_equal(fs.n, 1);
        assert_string_equal(fs.key[0], "192.0.2.7");

        /* delete: exact kind and key; none left is not an error */
        assert_int_equal(sg_store_fleet_lock_delete(s, "spray", "192.0.2.7"), 0);
        assert_int_equal(raw_int("SELECT count(*) FROM fleet_locks"), 1);
        assert_int_equal(sg_store_fleet_lock_delete(s, "source", "192.0.2.7"), 0);
        assert_int_equal(sg_store_fleet_lock_delete(s, "source", "192.0.2.7"), 0);
        assert_int_equal(raw_int("SELECT count(*) FROM fleet_locks"), 0);
        /* hostile text is stored verbatim (bound, never spliced) */
        assert_int_equal(sg_store_fleet_lock_put(s, &(struct sg_fleet_lock_row) {
                                 .kind = "source", .key = "x'); DROP TABLE locks; --", .origin_host = host }), 0);
        assert_int_equal(raw_int("SELECT count(*) FROM fleet_locks WHERE key LIKE 'x%DROP TABLE locks%'"), 1);
        assert_int_equal(raw_int("SELECT count(*) FROM sqlite_schema WHERE name = 'locks'"), 1);
        sg_store_free(s);
}

/* A schema 5 database (before fleet locks) migrates to 6 and keeps its data. */
static void test_fleet_locks_from_schema_5(void **state) {
        sg_store *s;

        (void) state;
        s = open_store();
        append_ten(s);
        sg_store_free(s);
        raw_exec("DROP TABLE fleet_locks; PRAGMA user_version = 5");
        s = open_store();
        assert_int_equal(raw_int("PRAGMA user_version"), SG_STORE_SCHEMA_VERSION);
        assert_int_equal(raw_int("SELECT count(*) FROM fleet_locks"), 0);
        assert_int_equal(raw_int("SELECT count(*) FROM audit"), 10);
        assert_intact(s);
        sg_store_free(s);
}

/* A schema 6 database (with the index of pending attempts) migrates to 7: the index goes, the
 * rows stay, and a pending attempt left by a crash is still found and settled as a failure. */
static void test_attempts_pending_index_dropped(void **state) {
        uint64_t id = 0, n = 0;
        sg_store *s;

        (void) state;
        s = open_store();
        assert_int_equal(sg_store_begin(s), 0);
        assert_int_equal(sg_store_attempt_add(s, 100, "alice", "192.0.2.1", SG_ATTEMPT_PENDING, &id), 0);
        assert_int_equal(sg_store_attempt_add(s, 101, "bob", "192.0.2.2", SG_ATTEMPT_SUCCESS, NULL), 0);
        assert_int_equal(sg_store_commit(s), 0);
        sg_store_free(s);
        raw_exec("CREATE INDEX attempts_pending ON attempts(state) WHERE state = 0; PRAGMA user_version = 6");
        s = open_store();
        assert_int_equal(raw_int("PRAGMA user_version"), SG_STORE_SCHEMA_VERSION);
        assert_int_equal(raw_int("SELECT count(*) FROM sqlite_schema WHERE name = 'attempts_pending'"), 0);
        assert_int_equal(raw_int("SELECT count(*) FROM attempts"), 2);
        assert_int_equal(sg_store_begin(s), 0);
        assert_int_equal(sg_store_attempt_abandon_pending(s, &n), 0);
        assert_int_equal(sg_store_commit(s), 0);
        assert_int_equal(n, 1);
        assert_int_equal(raw_int("SELECT state FROM attempts WHERE user = 'alice'"), SG_ATTEMPT_FAILURE);
        assert_int_equal(raw_int("SELECT state FROM attempts WHERE user = 'bob'"), SG_ATTEMPT_SUCCESS);
        sg_store_free(s);
}

/* Checkpoints run off the commit (a thread, and a short one in the commit to let the WAL
 * start over), yet the WAL stays bounded commit after commit: without checkpoints these 4000
 * commits (about 24,000 frames) would make it some 100 MB. */
static void test_wal_bounded(void **state) {
        char wal[sizeof dbpath + 8];
        uint64_t free_bytes = 0;
        off_t max = 0;
        int bound;
        sg_store *s;

        (void) state;
        s = open_store();
        snprintf(wal, sizeof wal, "%s-wal", dbpath);
        for (uint64_t i = 1; i <= 4000; i++) {
                struct stat st;
                uint64_t id = 0;

                assert_int_equal(sg_store_begin(s), 0);
                assert_int_equal(sg_store_attempt_add(s, i, "alice", "192.0.2.1", SG_ATTEMPT_PENDING, &id), 0);
                assert_int_equal(sg_store_attempt_settle(s, id, SG_ATTEMPT_FAILURE), 0);
                assert_int_equal(append(s, i, "auth_failure", "alice", "192.0.2.1"), i);
                assert_int_equal(sg_store_commit(s), 0);
                if (stat(wal, &st) == 0 && st.st_size > max)
                        max = st.st_size;
        }
        print_message("largest WAL: %lld bytes\n", (long long) max);
        assert_true(max > 0);
        /* The bound (CKPT_*, store.c): SQLite's own 1000 frames when the file system has
         * less than 256 MiB free, else 4000; frames of a 4 KiB page and a 24-byte header,
         * the commit that crossed it, the WAL header. */
        assert_int_equal(sg_store_free_bytes(s, &free_bytes), 0);
        bound = free_bytes >= (256ULL << 20) ? 4000 : 1000;
        print_message("%llu MiB free: bound %d frames\n", (unsigned long long) (free_bytes >> 20), bound);
        assert_true(max <= (off_t) (bound + 10) * (4096 + 24) + 32);
        assert_int_equal(raw_int("SELECT count(*) FROM audit"), 4000);
        assert_intact(s);
        sg_store_free(s);
}

struct export_seen {
        size_t n;
        uint64_t id[16];
        bool mac_ok[16];
        bool has_epoch[16];
};

static int collect_export(void *userdata, const struct sg_audit_row *r) {
        struct export_seen *es = userdata;

        if (es->n >= 16)
                return -E2BIG;
        es->id[es->n] = r->id;
        es->mac_ok[es->n] = r->mac && r->mac_len == SG_MAC_BYTES;
        es->has_epoch[es->n] = r->has_epoch;
        es->n++;
        return 0;
}

static void test_audit_export(void **state) {
        struct export_seen es = { 0 };
        uint64_t max = 99;
        sg_store *s;

        (void) state;
        s = open_store();
        /* empty: nothing, max 0 */
        assert_int_equal(sg_store_audit_export(s, 0, 10, collect_export, &es, &max), 0);
        assert_int_equal(es.n, 0);
        assert_int_equal(max, 0);
        assert_int_equal(sg_store_audit_export(s, 0, 0, collect_export, &es, &max), -EINVAL);

        append_ten(s);
        assert_int_equal(sg_store_audit_export(s, 3, 4, collect_export, &es, &max), 0);
        assert_int_equal(es.n, 4);
        for (size_t i = 0; i < 4; i++) {
                assert_int_equal(es.id[i], 4 + i);
                assert_true(es.mac_ok[i]);
                assert_false(es.has_epoch[i]); /* the static key */
        }
        assert_int_equal(max, 10);

        /* rows of an open transaction are not exported, nor counted in max */
        assert_int_equal(sg_store_begin(s), 0);
        assert_int_equal(append(s, 1100, "auth_failure", "carol", "192.0.2.2"), 11);
        memset(&es, 0, sizeof es);
        assert_int_equal(sg_store_audit_export(s, 8, 100, collect_export, &es, &max), 0);
        assert_int_equal(es.n, 2);
        assert_int_equal(es.id[1], 10);
        assert_int_equal(max, 10);
        assert_int_equal(sg_store_commit(s), 0);
        memset(&es, 0, sizeof es);
        assert_int_equal(sg_store_audit_export(s, 8, 100, collect_export, &es, &max), 0);
        assert_int_equal(es.n, 3);
        assert_int_equal(es.id[2], 11);
        assert_int_equal(max, 11);

        /* after the newest: nothing */
        memset(&es, 0, sizeof es);
        assert_int_equal(sg_store_audit_export(s, 11, 100, collect_export, &es, NULL), 0);
        assert_int_equal(es.n, 0);
        sg_store_free(s);
}

/* ---- the chain ---- */

static void test_verify_intact(void **state) {
        sg_store *s;

        (void) state;
        s = open_store();
        assert_intact(s); /* empty */
        append_ten(s);
        assert_intact(s);
        sg_store_free(s);
        s = open_store();
        assert_intact(s);
        sg_store_free(s);
}

static void test_verify_catches_update(void **state) {
        sg_store *s;

        (void) state;
        s = open_store();
        append_ten(s);
        raw_exec("UPDATE audit SET detail = 'nothing to see' WHERE id = 4");
        assert_broken(s, 4, "row 4: MAC mismatch");
        sg_store_free(s);
}

static void test_verify_catches_field_moves(void **state) {
        sg_store *s;

        (void) state;
        s = open_store();
        append_ten(s);
        /* Same bytes, different field boundaries: the length prefixes tell them apart. */
        raw_exec("UPDATE audit SET service = 'ssh', tty = 'dssh' WHERE id = 7");
        assert_broken(s, 7, "MAC mismatch");
        raw_exec("UPDATE audit SET service = 'sshd', tty = 'ssh' WHERE id = 7");
        assert_intact(s);
        raw_exec("UPDATE audit SET reason = '' WHERE id = 2"); /* NULL -> empty */
        assert_broken(s, 2, "MAC mismatch");
        raw_exec("UPDATE audit SET reason = NULL WHERE id = 2");
        assert_intact(s);
        raw_exec("UPDATE audit SET time_usec = time_usec + 1 WHERE id = 9");
        assert_broken(s, 9, "MAC mismatch");
        sg_store_free(s);
}

static void test_verify_catches_delete_in_middle(void **state) {
        sg_store *s;

        (void) state;
        s = open_store();
        append_ten(s);
        raw_exec("DELETE FROM audit WHERE id IN (5, 6)");
        assert_broken(s, 7, "rows 5..6 missing (deleted)");
        sg_store_free(s);
        /* Still caught after a restart. */
        s = open_store();
        assert_broken(s, 7, "rows 5..6 missing");
        sg_store_free(s);
}

static void test_verify_catches_forged_insert(void **state) {
        sg_store *s;

        (void) state;
        s = open_store();
        append_ten(s);
        /* A replacement row carrying a valid mac copied from another row. */
        raw_exec("DELETE FROM audit WHERE id = 5;"
                 "INSERT INTO audit(id, time_usec, event, user, pid, uid, mac) "
                 "SELECT 5, 500, 'auth_success', 'alice', 1234, 0, mac FROM audit WHERE id = 4");
        assert_broken(s, 5, "row 5: MAC mismatch (edited or inserted)");
        sg_store_free(s);
}

static void test_verify_catches_forged_append(void **state) {
        sg_store *s;

        (void) state;
        s = open_store();
        append_ten(s);
        raw_exec("INSERT INTO audit(id, time_usec, event, user, pid, uid, mac) "
                 "VALUES(11, 1100, 'auth_success', 'mallory', 1, 0, randomblob(32))");
        assert_broken(s, 11, "row 11: MAC mismatch");
        sg_store_free(s);
}

static void test_verify_catches_reorder(void **state) {
        sg_store *s;

        (void) state;
        s = open_store();
        append_ten(s);
        raw_exec("UPDATE audit SET id = -3 WHERE id = 3;"
                 "UPDATE audit SET id = 3 WHERE id = 4;"
                 "UPDATE audit SET id = 4 WHERE id = -3;");
        assert_broken(s, 3, "row 3: MAC mismatch");
        sg_store_free(s);
}

static void test_verify_tail_deletion(void **state) {
        sg_store *s;

        (void) state;
        s = open_store();
        append_ten(s);
        raw_exec("DELETE FROM audit WHERE id >= 9");
        /* The running store remembers what it wrote. */
        assert_broken(s, 9, "rows 9..10 missing at the end");
        sg_store_free(s);
        /* The database alone cannot show it after a restart: a shortened tail is a consistent
         * chain. The manager keeps the tail in audit.head and calls
         * sg_store_audit_resume_after() (test_resume_after_tail_cut); without that the chain
         * continues from row 8. */
        s = open_store();
        assert_intact(s);
        assert_int_equal(append(s, 2000, "daemon_start", NULL, NULL), 9);
        assert_intact(s);
        sg_store_free(s);
}

static void test_verify_wrong_key(void **state) {
        uint8_t other[SG_AUDIT_KEY_BYTES];
        sg_store *s;

        (void) state;
        s = open_store();
        append_ten(s);
        sg_store_free(s);
        memcpy(other, key, sizeof other);
        other[0] ^= 1;
        s = open_store_key(other);
        assert_broken(s, 1, "row 1: MAC mismatch");
        sg_store_free(s);
}

static void test_prune_max_rows(void **state) {
        uint8_t mac6[SG_MAC_BYTES], anchor[SG_MAC_BYTES];
        uint64_t deleted = 0, n = 0;
        sg_store *s;

        (void) state;
        s = open_store();
        append_ten(s);
        raw_blob("SELECT mac FROM audit WHERE id = 6", mac6, sizeof mac6);
        assert_int_equal(sg_store_audit_prune(s, 0, 4, &deleted), 0);
        assert_int_equal(deleted, 6);
        assert_int_equal(sg_store_audit_count(s, &n), 0);
        assert_int_equal(n, 4);
        assert_int_equal(raw_int("SELECT min(id) FROM audit"), 7);
        assert_int_equal(raw_int("SELECT last_id FROM audit_anchor"), 6);
        raw_blob("SELECT last_mac FROM audit_anchor", anchor, sizeof anchor);
        assert_memory_equal(anchor, mac6, sizeof mac6);
        assert_intact(s);

        assert_int_equal(sg_store_audit_prune(s, 0, 4, &deleted), 0);
        assert_int_equal(deleted, 0);
        assert_int_equal(sg_store_audit_prune(s, 0, 0, &deleted), 0); /* no limits: nothing */
        assert_int_equal(deleted, 0);
        assert_int_equal(append(s, 1100, "auth_success", "alice", NULL), 11);
        assert_intact(s);
        sg_store_free(s);

        s = open_store();
        assert_intact(s);
        assert_int_equal(append(s, 1200, "auth_success", "alice", NULL), 12);
        assert_intact(s);
        /* Losing the anchor shows up as the pruned rows missing. */
        raw_exec("DELETE FROM audit_anchor");
        assert_broken(s, 7, "rows 1..6 missing");
        sg_store_free(s);
}

/* Slices after an earlier prune: the cut (what retention wants gone) lies before the first
 * row left. Nothing is deleted; a slice never deletes more than its limit. */
static void test_prune_slices(void **state) {
        uint64_t deleted = 0, n = 0;
        bool more = true;
        sg_store *s;

        (void) state;
        s = open_store();
        append_ten(s);
        assert_int_equal(sg_store_audit_prune(s, 0, 6, &deleted), 0); /* rows 5..10 left */
        assert_int_equal(deleted, 4);
        /* By age, everything before time 450 (rows 1..4, gone already): the cut is row 4. */
        assert_int_equal(sg_store_audit_prune_some(s, 450, 0, 3, &deleted, &more), 0);
        assert_int_equal(deleted, 0);
        assert_false(more);
        assert_int_equal(sg_store_audit_count(s, &n), 0);
        assert_int_equal(n, 6);
        /* Before time 1000: rows 5..9, three at most per slice. */
        assert_int_equal(sg_store_audit_prune_some(s, 1000, 0, 3, &deleted, &more), 0);
        assert_int_equal(deleted, 3);
        assert_true(more);
        assert_int_equal(sg_store_audit_prune_some(s, 1000, 0, 3, &deleted, &more), 0);
        assert_int_equal(deleted, 2);
        assert_false(more);
        assert_int_equal(raw_int("SELECT min(id) FROM audit"), 10);
        assert_intact(s);
        sg_store_free(s);
}

static void test_prune_by_age(void **state) {
        uint64_t deleted = 0, n = 99;
        sg_store *s;

        (void) state;
        s = open_store();
        append_ten(s);
        assert_int_equal(sg_store_audit_prune(s, 550, 0, &deleted), 0);
        assert_int_equal(deleted, 5);
        assert_int_equal(raw_int("SELECT last_id FROM audit_anchor"), 5);
        assert_intact(s);
        assert_int_equal(sg_store_audit_prune(s, 550, 0, &deleted), 0);
        assert_int_equal(deleted, 0);
        /* Both limits: whichever deletes more. */
        assert_int_equal(sg_store_audit_prune(s, 650, 2, &deleted), 0);
        assert_int_equal(deleted, 3);
        assert_intact(s);
        /* Everything older: the log is empty and the anchor carries the chain. */
        assert_int_equal(sg_store_audit_prune(s, 5000, 0, &deleted), 0);
        assert_int_equal(deleted, 2);
        assert_int_equal(sg_store_audit_count(s, &n), 0);
        assert_int_equal(n, 0);
        assert_int_equal(raw_int("SELECT last_id FROM audit_anchor"), 10);
        assert_intact(s);
        sg_store_free(s);

        s = open_store();
        assert_intact(s);
        assert_int_equal(append(s, 6000, "daemon_start", NULL, NULL), 11);
        assert_intact(s);
        sg_store_free(s);
}

/* ---- the prune anchor carries its own MAC ---- */

/* The attack of the review: delete the head of the log and point the anchor at the last
 * deleted row, its (id, mac) copied from the table. */
static void test_anchor_forged_after_head_delete(void **state) {
        sg_store *s;

        (void) state;
        s = open_store();
        append_ten(s);
        raw_exec("INSERT INTO audit_anchor(singleton, last_id, last_mac) SELECT 1, id, mac FROM audit WHERE id = 6;"
                 "DELETE FROM audit WHERE id <= 6");
        assert_broken(s, 6, "anchor");
        sg_store_free(s);
        /* Still caught after a restart. */
        s = open_store();
        assert_broken(s, 6, "anchor");
        sg_store_free(s);
}

static void test_anchor_forged_after_delete_all(void **state) {
        sg_store *s;

        (void) state;
        s = open_store();
        append_ten(s);
        sg_store_free(s);
        raw_exec("INSERT INTO audit_anchor(singleton, last_id, last_mac) SELECT 1, id, mac FROM audit WHERE id = 10;"
                 "DELETE FROM audit");
        s = open_store();
        assert_broken(s, 10, "anchor");
        sg_store_free(s);
}

/* An honest prune's anchor MAC does not vouch for another anchor: moving it on, or pasting a
 * row's MAC into it (MACs of rows and anchors are domain separated), is caught. */
static void test_anchor_mac_bound_to_fields(void **state) {
        uint64_t deleted = 0;
        sg_store *s;

        (void) state;
        s = open_store();
        append_ten(s);
        assert_int_equal(sg_store_audit_prune(s, 0, 7, &deleted), 0);
        assert_int_equal(deleted, 3);
        assert_int_equal(raw_int("SELECT length(mac) FROM audit_anchor"), SG_MAC_BYTES);
        assert_intact(s);
        /* Advance the anchor over rows 4..6, keeping the honest anchor's own MAC. */
        raw_exec("UPDATE audit_anchor SET (last_id, last_mac) = (SELECT id, mac FROM audit WHERE id = 6);"
                 "DELETE FROM audit WHERE id <= 6");
        assert_broken(s, 6, "anchor (rows up to 6): MAC mismatch (tampered)");
        sg_store_free(s);
}

static void test_anchor_mac_not_a_row_mac(void **state) {
        uint64_t deleted = 0;
        sg_store *s;

        (void) state;
        s = open_store();
        append_ten(s);
        assert_int_equal(sg_store_audit_prune(s, 0, 7, &deleted), 0);
        raw_exec("UPDATE audit_anchor SET mac = (SELECT mac FROM audit WHERE id = 4)");
        assert_broken(s, 3, "MAC mismatch (tampered)");
        raw_exec("UPDATE audit_anchor SET mac = randomblob(32)");
        assert_broken(s, 3, "MAC mismatch (tampered)");
        raw_exec("UPDATE audit_anchor SET mac = x'00'");
        assert_broken(s, 3, "MAC mismatch (tampered)");
        raw_exec("UPDATE audit_anchor SET mac = NULL");
        assert_broken(s, 3, "unauthenticated anchor");
        /* The next prune writes an anchor of its own, with a MAC. */
        assert_int_equal(sg_store_audit_prune(s, 0, 5, &deleted), 0);
        assert_int_equal(deleted, 2);
        assert_intact(s);
        sg_store_free(s);
}

/* A database from schema 1 (anchor without a MAC) is migrated; its anchor is reported as
 * unauthenticated until the daemon's next prune replaces it. */
/* Back to before schema 4 (forward-secure keys), for the tests of older databases. */
#define UNDO_SCHEMA_5 "DROP TABLE fleet_locks; DROP TABLE audit_seal; ALTER TABLE audit DROP COLUMN epoch; ALTER TABLE audit_anchor DROP COLUMN epoch; "

static void test_anchor_from_schema_1(void **state) {
        uint64_t deleted = 0;
        sg_store *s;

        (void) state;
        s = open_store();
        append_ten(s);
        assert_int_equal(sg_store_audit_prune(s, 0, 8, &deleted), 0);
        sg_store_free(s);
        raw_exec(UNDO_SCHEMA_5 "ALTER TABLE audit_anchor DROP COLUMN mac; DROP TABLE sessions; DROP TABLE tokens; "
                 "PRAGMA user_version = 1");
        s = open_store();
        assert_int_equal(raw_int("PRAGMA user_version"), SG_STORE_SCHEMA_VERSION);
        assert_int_equal(raw_int("SELECT mac IS NULL FROM audit_anchor"), 1);
        assert_broken(s, 2, "unauthenticated anchor");
        assert_int_equal(append(s, 1100, "daemon_start", NULL, NULL), 11);
        assert_broken(s, 2, "unauthenticated anchor");
        assert_int_equal(sg_store_audit_prune(s, 0, 8, &deleted), 0);
        assert_int_equal(deleted, 1);
        assert_intact(s);
        sg_store_free(s);
}

/* ---- forward-secure epochs ---- */

/* Verifies dbpath on a reader of our own, from key(0) (the seed) or with no epoch key. */
static int reader_verify(const uint8_t *key0, uint64_t *bad, char *detail, size_t size, char *note, size_t notesize) {
        struct sg_audit_tail none = { 0 };
        sg_store_reader *rd = NULL;
        uint64_t rows = 0;
        char err[512];
        int r;

        assert_int_equal(sg_store_reader_open_file(dbpath, key, &rd, err, sizeof err), 0);
        if (key0)
                assert_int_equal(sg_store_reader_set_epoch_key(rd, 0, key0, false), 0);
        r = sg_store_reader_audit_verify(rd, &none, bad, &rows, detail, size);
        assert_int_equal(sg_store_reader_audit_note(rd, note, notesize), 0);
        sg_store_reader_free(rd);
        return r;
}

/* Two epochs: the daemon's view (key of epoch 1) checks epoch 1 and says what it did not
 * check; an edit in epoch 0 slips past it and is named from key(0); a removed seal and an
 * epoch cut at its end are named either way. */
static void test_epochs(void **state) {
        uint8_t seed[SG_FSS_SEED_BYTES] = { 7 }, k0[SG_FSS_KEY_BYTES], k1[SG_FSS_KEY_BYTES];
        char detail[512], note[512];
        uint64_t bad = 0;
        sg_store *s;

        (void) state;
        sg_fss_key0(seed, k0);
        sg_fss_step(k0, k1);
        s = open_store();
        append_ten(s); /* static-key rows 1..10 */
        assert_int_equal(sg_store_audit_set_epoch(s, 0, k0), 0);
        assert_int_equal(sg_store_begin(s), 0);
        assert_int_equal(sg_store_audit_seal_static(s, 1), 0);
        assert_int_equal(append(s, 1100, "auth_failure", "alice", NULL), 11);
        assert_int_equal(append(s, 1200, "auth_failure", "alice", NULL), 12);
        assert_int_equal(sg_store_audit_seal(s, 1250), 0);
        assert_int_equal(sg_store_audit_set_epoch(s, 1, k1), 0);
        assert_int_equal(append(s, 1300, "auth_success", "alice", NULL), 13);
        assert_int_equal(sg_store_commit(s), 0);
        assert_intact(s);
        /* sg_audit_row_mac gives the bytes stored for forward-secure rows too: row 13 of epoch
         * 1 over row 12, with mac_key(key(1)); the static key or another epoch does not. */
        {
                struct sg_audit_event ev = ev_make(1300, "auth_success", "alice", NULL);
                uint8_t prev[SG_MAC_BYTES], want[SG_MAC_BYTES], mk[SG_FSS_KEY_BYTES], got[SG_MAC_BYTES];
                uint64_t e1 = 1, e0 = 0;

                raw_blob("SELECT mac FROM audit WHERE id = 12", prev, sizeof prev);
                raw_blob("SELECT mac FROM audit WHERE id = 13", want, sizeof want);
                sg_fss_mac_key(k1, mk);
                sg_audit_row_mac(mk, &e1, prev, 13, &ev, got);
                assert_memory_equal(got, want, SG_MAC_BYTES);
                sg_audit_row_mac(mk, &e0, prev, 13, &ev, got);
                assert_memory_not_equal(got, want, SG_MAC_BYTES);
                sg_audit_row_mac(mk, NULL, prev, 13, &ev, got);
                assert_memory_not_equal(got, want, SG_MAC_BYTES);
        }
        assert_int_equal(sg_store_audit_verify_note(s, note, sizeof note), 0);
        assert_non_null(strstr(note, "MACs of 2 rows of epochs 0..0 not checked"));
        assert_int_equal(reader_verify(k0, &bad, detail, sizeof detail, note, sizeof note), 0);
        assert_string_equal(note, "");
        assert_int_equal(reader_verify(NULL, &bad, detail, sizeof detail, note, sizeof note), 0);
        assert_non_null(strstr(note, "no key (give --seed)"));

        raw_exec("UPDATE audit SET detail = 'forged' WHERE id = 11");
        assert_intact(s); /* the threat: the daemon holds no key of epoch 0 */
        assert_int_equal(reader_verify(k0, &bad, detail, sizeof detail, note, sizeof note), 1);
        assert_int_equal(bad, 11);
        assert_non_null(strstr(detail, "row 11: MAC mismatch"));
        raw_exec("UPDATE audit SET detail = NULL WHERE id = 11");

        raw_exec("DELETE FROM audit WHERE id = 12");
        assert_int_equal(reader_verify(k0, &bad, detail, sizeof detail, note, sizeof note), 1);
        assert_non_null(strstr(detail, "epoch 0: rows 12..12 missing at its end"));
        assert_broken(s, 12, "epoch 0: rows 12..12 missing at its end");
        raw_exec("DELETE FROM audit_seal WHERE epoch = 0");
        assert_broken(s, 11, "epoch 0: no seal");
        sg_store_free(s);
}

/* ---- sessions ---- */

struct session_seen {
        unsigned n;
        char ids[4][40];
        int32_t pid;
        uint64_t pid_start;
};

static int see_session(void *userdata, const struct sg_session_row *row) {
        struct session_seen *seen = userdata;

        if (seen->n < 4)
                snprintf(seen->ids[seen->n], sizeof seen->ids[0], "%s", row->id);
        seen->n++;
        seen->pid = row->pid;
        seen->pid_start = row->pid_start;
        return 0;
}

static const struct sg_session_row session_a = {
        .id = "0123456789abcdef0123456789abcdef", .user = "alice", .service = "sshd", .tty = "pts/1",
        .rhost = "192.0.2.1", .logind_id = "", .uid = 1000, .pid = 4242, .pid_start = 77,
        .boot_id = "boot", .started_usec = 100,
};

static void test_sessions_put_delete(void **state) {
        struct session_seen seen = { 0 };
        sg_store *s;

        (void) state;
        s = open_store();
        assert_int_equal(sg_store_begin(s), 0);
        assert_int_equal(sg_store_session_put(s, &session_a), 0);
        assert_int_equal(sg_store_commit(s), 0);
        sg_store_free(s);
        /* Sessions survive a reopen: they are the daemon's durable copy. */
        s = open_store();
        assert_int_equal(sg_store_session_foreach(s, see_session, &seen), 0);
        assert_int_equal(seen.n, 1);
        assert_string_equal(seen.ids[0], session_a.id);
        assert_int_equal(seen.pid, 4242);
        assert_int_equal(seen.pid_start, 77);
        assert_int_equal(sg_store_begin(s), 0);
        assert_int_equal(sg_store_session_delete(s, session_a.id), 0);
        assert_int_equal(sg_store_session_delete(s, session_a.id), 0); /* idempotent */
        assert_int_equal(sg_store_commit(s), 0);
        seen.n = 0;
        assert_int_equal(sg_store_session_foreach(s, see_session, &seen), 0);
        assert_int_equal(seen.n, 0);
        /* A row no daemon wrote (pid 1, the init process) is skipped, never signalled. */
        raw_exec("INSERT INTO sessions VALUES('ffffffffffffffffffffffffffffffff', 'bob', 1, 'x', '', '', '', 1, 0, "
                 "'b', 0)");
        assert_int_equal(sg_store_session_foreach(s, see_session, &seen), 0);
        assert_int_equal(seen.n, 0);
        sg_store_free(s);
}

/* A schema 2 database (before sessions) gains the table and keeps its audit rows. */
static void test_sessions_from_schema_2(void **state) {
        struct session_seen seen = { 0 };
        sg_store *s;

        (void) state;
        s = open_store();
        append_ten(s);
        sg_store_free(s);
        raw_exec(UNDO_SCHEMA_5 "DROP TABLE sessions; DROP TABLE tokens; PRAGMA user_version = 2");
        s = open_store();
        assert_int_equal(raw_int("PRAGMA user_version"), SG_STORE_SCHEMA_VERSION);
        assert_int_equal(raw_int("SELECT count(*) FROM audit"), 10);
        assert_intact(s);
        assert_int_equal(sg_store_begin(s), 0);
        assert_int_equal(sg_store_session_put(s, &session_a), 0);
        assert_int_equal(sg_store_commit(s), 0);
        assert_int_equal(sg_store_session_foreach(s, see_session, &seen), 0);
        assert_int_equal(seen.n, 1);
        sg_store_free(s);
}

/* ---- one-time tokens ---- */

struct token_seen {
        unsigned n;
        uint64_t id, used, revoked;
        char user[16];
};

static int see_token(void *userdata, const struct sg_token_row *row) {
        struct token_seen *seen = userdata;

        seen->n++;
        seen->id = row->id;
        seen->used = row->used_usec;
        seen->revoked = row->revoked_usec;
        snprintf(seen->user, sizeof seen->user, "%s", row->user);
        return 0;
}

static const uint8_t token_hash[SG_TOKEN_HASH_BYTES] = { 1, 2, 3 };

static void put_token(sg_store *s, uint64_t id, uint64_t expires) {
        const struct sg_token_row row = {
                .id = id, .user = "alice", .hash = token_hash, .issued_usec = 100, .expires_usec = expires,
        };

        assert_int_equal(sg_store_token_add(s, &row), 0);
}

/* A token is used at most once, never after expiry or revocation; ids are unique; prune
 * takes what ended before the cut; rows survive a reopen. */
static void test_tokens(void **state) {
        struct token_seen seen = { 0 };
        struct sg_token_row dup = { .id = 7, .user = "bob", .hash = token_hash };
        uint64_t n = 0;
        sg_store *s;

        (void) state;
        s = open_store();
        assert_int_equal(sg_store_begin(s), 0);
        put_token(s, 7, 1000);
        put_token(s, 8, 1000);
        put_token(s, 9, 500);
        assert_int_equal(sg_store_token_add(s, &dup), -EEXIST);
        dup.id = 0;
        assert_int_equal(sg_store_token_add(s, &dup), -EINVAL);
        assert_int_equal(sg_store_commit(s), 0);
        sg_store_free(s);

        s = open_store();
        assert_int_equal(sg_store_token_get(s, 7, see_token, &seen), 0);
        assert_int_equal(seen.n, 1);
        assert_string_equal(seen.user, "alice");
        assert_int_equal(sg_store_token_get(s, 6, see_token, &seen), -ENOENT);
        assert_int_equal(sg_store_begin(s), 0);
        assert_int_equal(sg_store_token_use(s, 7, 200), 0);
        assert_int_equal(sg_store_token_use(s, 7, 201), -ENOENT); /* once */
        assert_int_equal(sg_store_token_revoke(s, 7, 202), -ENOENT); /* used: nothing to revoke */
        assert_int_equal(sg_store_token_revoke(s, 8, 300), 0);
        assert_int_equal(sg_store_token_use(s, 8, 301), -ENOENT); /* revoked */
        assert_int_equal(sg_store_token_use(s, 9, 500), -ENOENT); /* expired at 500 */
        assert_int_equal(sg_store_token_use(s, 6, 1), -ENOENT);   /* never issued */
        assert_int_equal(sg_store_commit(s), 0);
        seen.n = 0;
        assert_int_equal(sg_store_token_get(s, 7, see_token, &seen), 0);
        assert_int_equal(seen.used, 200);
        assert_int_equal(sg_store_token_get(s, 8, see_token, &seen), 0);
        assert_int_equal(seen.revoked, 300);
        assert_int_equal(sg_store_token_count(s, &n), 0);
        assert_int_equal(n, 3);

        /* A row no daemon wrote (a hash of another size) is never passed on. */
        raw_exec("INSERT INTO tokens(id, user, hash, issued_usec, expires_usec, issuer_uid) "
                 "VALUES(5, 'eve', x'00', 1, 99999, 0)");
        seen.n = 0;
        assert_int_equal(sg_store_token_get(s, 5, see_token, &seen), -ENOENT);
        assert_int_equal(sg_store_token_foreach(s, see_token, &seen), 0);
        assert_int_equal(seen.n, 3);

        /* Cut at 400: 7 (used at 200) and 8 (revoked at 300) go; 9 expired at 500 stays. */
        assert_int_equal(sg_store_begin(s), 0);
        assert_int_equal(sg_store_token_prune(s, 400), 0);
        assert_int_equal(sg_store_commit(s), 0);
        seen.n = 0;
        assert_int_equal(sg_store_token_foreach(s, see_token, &seen), 0);
        assert_int_equal(seen.n, 1);
        assert_int_equal(seen.id, 9);
        sg_store_free(s);
}

/* A schema 3 database (before tokens) gains the table and keeps its sessions. */
static void test_tokens_from_schema_3(void **state) {
        struct session_seen seen = { 0 };
        sg_store *s;

        (void) state;
        s = open_store();
        assert_int_equal(sg_store_begin(s), 0);
        assert_int_equal(sg_store_session_put(s, &session_a), 0);
        assert_int_equal(sg_store_commit(s), 0);
        sg_store_free(s);
        raw_exec(UNDO_SCHEMA_5 "DROP TABLE tokens; PRAGMA user_version = 3");
        s = open_store();
        assert_int_equal(raw_int("PRAGMA user_version"), SG_STORE_SCHEMA_VERSION);
        assert_int_equal(sg_store_session_foreach(s, see_session, &seen), 0);
        assert_int_equal(seen.n, 1);
        assert_int_equal(sg_store_begin(s), 0);
        put_token(s, 1, 10);
        assert_int_equal(sg_store_commit(s), 0);
        sg_store_free(s);
}

/* ---- rows the audit head says existed: the gap stays in the chain ---- */

static void test_resume_after_tail_cut(void **state) {
        char detail[256];
        uint64_t bad;
        sg_store *s;

        (void) state;
        s = open_store();
        append_ten(s);
        sg_store_free(s);
        raw_exec("DELETE FROM audit WHERE id >= 8");

        /* The manager read audit.head: rows up to 10 existed. */
        s = open_store();
        assert_int_equal(sg_store_audit_resume_after(s, 6), -EINVAL); /* below the tail */
        assert_int_equal(sg_store_audit_resume_after(s, 7), 0);       /* no gap: nothing to do */
        assert_intact(s);
        assert_int_equal(sg_store_audit_resume_after(s, 10), 0);
        assert_broken(s, 8, "rows 8..10 missing at the end");
        assert_int_equal(append(s, 2000, "daemon_start", NULL, NULL), 11);
        assert_broken(s, 11, "rows 8..10 missing");
        sg_store_free(s);

        /* Every restart, with no help from outside, and with rows after the gap. */
        for (int round = 0; round < 2; round++) {
                s = open_store();
                assert_broken(s, 11, "rows 8..10 missing");
                assert_int_equal(append(s, 3000 + (uint64_t) round, "daemon_start", NULL, NULL), 12 + (uint64_t) round);
                assert_broken(s, 11, "rows 8..10 missing");
                sg_store_free(s);
        }
        /* The row after the gap is chained to row 7 by the daemon itself, so verify can tell
         * this from a deletion in the middle; what follows the gap is still checked. */
        s = open_store();
        assert_int_equal(verify(s, &bad, detail, sizeof detail), 1);
        assert_non_null(strstr(detail, "found gone when the daemon started"));
        assert_null(strstr(detail, "more problem"));
        raw_exec("UPDATE audit SET detail = 'x' WHERE id = 12");
        assert_int_equal(verify(s, &bad, detail, sizeof detail), 1);
        assert_int_equal(bad, 11);
        assert_non_null(strstr(detail, "1 more problem"));
        assert_non_null(strstr(detail, "row 12: MAC mismatch"));
        sg_store_free(s);
}

/* The gap survives a rolled-back transaction only as far as the caller's resume did. */
static void test_resume_after_then_rollback(void **state) {
        sg_store *s;

        (void) state;
        s = open_store();
        append_ten(s);
        assert_int_equal(sg_store_audit_resume_after(s, 15), 0);
        assert_int_equal(sg_store_begin(s), 0);
        assert_int_equal(append(s, 2000, "daemon_start", NULL, NULL), 16);
        assert_int_equal(sg_store_rollback(s), 0);
        assert_int_equal(append(s, 2000, "daemon_start", NULL, NULL), 16);
        assert_broken(s, 16, "rows 11..15 missing");
        sg_store_free(s);
}

static void test_prune_inside_transaction(void **state) {
        uint64_t deleted = 0, n = 0;
        sg_store *s;

        (void) state;
        s = open_store();
        append_ten(s);
        assert_int_equal(sg_store_begin(s), 0);
        assert_int_equal(append(s, 1100, "auth_failure", "alice", NULL), 11);
        assert_int_equal(sg_store_audit_prune(s, 0, 3, &deleted), 0);
        assert_int_equal(deleted, 8);
        assert_intact(s);
        assert_int_equal(sg_store_rollback(s), 0);
        /* All of it undone, including the anchor. */
        assert_int_equal(sg_store_audit_count(s, &n), 0);
        assert_int_equal(n, 10);
        assert_int_equal(raw_int("SELECT count(*) FROM audit_anchor"), 0);
        assert_intact(s);

        assert_int_equal(sg_store_begin(s), 0);
        assert_int_equal(append(s, 1100, "auth_failure", "alice", NULL), 11);
        assert_int_equal(sg_store_audit_prune(s, 0, 3, &deleted), 0);
        assert_int_equal(sg_store_commit(s), 0);
        assert_int_equal(sg_store_audit_count(s, &n), 0);
        assert_int_equal(n, 3);
        assert_intact(s);
        sg_store_free(s);
}

static void test_rollback_restores_chain(void **state) {
        uint64_t n = 0;
        sg_store *s;

        (void) state;
        s = open_store();
        assert_int_equal(append(s, 1, "daemon_start", NULL, NULL), 1);
        assert_int_equal(append(s, 2, "auth_success", "alice", NULL), 2);
        assert_false(sg_store_in_transaction(s));
        assert_int_equal(sg_store_begin(s), 0);
        assert_true(sg_store_in_transaction(s));
        assert_int_equal(sg_store_begin(s), -EBUSY);
        assert_int_equal(append(s, 3, "auth_failure", "bob", NULL), 3);
        assert_int_equal(append(s, 4, "auth_failure", "bob", NULL), 4);
        assert_int_equal(sg_store_rollback(s), 0);
        assert_false(sg_store_in_transaction(s));
        assert_int_equal(append(s, 5, "auth_failure", "carol", NULL), 3);
        assert_int_equal(sg_store_audit_count(s, &n), 0);
        assert_int_equal(n, 3);
        assert_intact(s);

        /* No transaction: commit is a caller bug, rollback a no-op. */
        assert_int_equal(sg_store_commit(s), -EINVAL);
        assert_int_equal(sg_store_rollback(s), 0);
        sg_store_free(s);
}

static void test_group_commit(void **state) {
        struct attempt_seen a = { 0 };
        uint64_t id = 0, n = 0;
        sg_store *s;

        (void) state;
        s = open_store();
        assert_int_equal(sg_store_begin(s), 0);
        assert_int_equal(sg_store_attempt_add(s, 10, "alice", "192.0.2.1", SG_ATTEMPT_PENDING, &id), 0);
        assert_int_equal(sg_store_attempt_settle(s, id, SG_ATTEMPT_FAILURE), 0);
        for (int i = 0; i < 50; i++)
                append(s, (uint64_t) i, "auth_failure", "alice", "192.0.2.1");
        /* Not visible to another connection before the commit. */
        assert_int_equal(raw_int("SELECT count(*) FROM audit"), 0);
        assert_int_equal(sg_store_commit(s), 0);
        assert_false(sg_store_in_transaction(s));
        assert_int_equal(raw_int("SELECT count(*) FROM audit"), 50);
        sg_store_free(s);

        s = open_store();
        assert_int_equal(sg_store_audit_count(s, &n), 0);
        assert_int_equal(n, 50);
        assert_int_equal(sg_store_attempt_foreach(s, 0, collect_attempt, &a), 0);
        assert_int_equal(a.n, 1);
        assert_int_equal(a.state[0], SG_ATTEMPT_FAILURE);
        assert_intact(s);
        sg_store_free(s);
}

/* Descriptors of this process that point into the temp dir. */
static int fds_into_tmpdir(void) {
        char link[PATH_MAX + 1], p[300];
        struct dirent *de;
        int n = 0;
        DIR *d = opendir("/proc/self/fd");

        assert_non_null(d);
        while ((de = readdir(d))) {
                ssize_t len;

                snprintf(p, sizeof p, "/proc/self/fd/%s", de->d_name);
                len = readlink(p, link, sizeof link - 1);
                if (len <= 0)
                        continue;
                link[len] = 0;
                if (strncmp(link, tmpdir, strlen(tmpdir)) == 0)
                        n++;
        }
        closedir(d);
        return n;
}

static void test_free_is_clean(void **state) {
        struct attempt_seen a = { 0 };
        struct lock_seen ls = { 0 };
        uint64_t n, bad;
        char detail[128];
        sqlite3_int64 mem_before;
        sg_store *s;

        (void) state;
        mem_before = sqlite3_memory_used();
        s = open_store();
        assert_true(fds_into_tmpdir() > 0);
        /* Use every statement at least once, including walks stopped half way. */
        append_ten(s);
        assert_int_equal(sg_store_begin(s), 0);
        assert_int_equal(sg_store_attempt_add(s, 1, "u", "s", SG_ATTEMPT_PENDING, &n), 0);
        assert_int_equal(sg_store_attempt_settle(s, n, SG_ATTEMPT_SUCCESS), 0);
        assert_int_equal(sg_store_attempt_abandon_pending(s, &n), 0);
        assert_int_equal(sg_store_lock_put(s, &(struct sg_lock_row) { .kind = "user", .key = "u" }), 0);
        assert_int_equal(sg_store_commit(s), 0);
        a.stop_after = 1;
        assert_int_equal(sg_store_attempt_foreach(s, 0, collect_attempt, &a), -ECANCELED);
        assert_int_equal(sg_store_lock_foreach(s, collect_lock, &ls), 0);
        assert_int_equal(sg_store_audit_query(s, &(struct sg_audit_filter) { .user = "alice" },
                                              collect, &(struct collected) { .stop_after = 1 }), -ENOBUFS);
        assert_int_equal(sg_store_audit_verify(s, &bad, detail, sizeof detail), 0);
        assert_int_equal(sg_store_audit_prune(s, 300, 0, &n), 0);
        assert_int_equal(sg_store_attempt_prune(s, 100), 0);
        assert_int_equal(sg_store_lock_prune(s, 100), 0);
        /* Left inside an open transaction: free rolls it back and still closes. */
        assert_int_equal(sg_store_begin(s), 0);
        append(s, 5000, "daemon_stop", NULL, NULL);
        assert_null(sg_store_free(s));
        assert_int_equal(fds_into_tmpdir(), 0);
        /* Every SQLite allocation of the connection was returned (close succeeded). */
        if (mem_before > 0)
                assert_int_equal(sqlite3_memory_used(), mem_before);
        assert_int_equal(raw_int("SELECT count(*) FROM audit"), 8);
}

/* The on-disk MAC format, pinned to bytes: databases written by earlier builds must go on
 * verifying. The vectors come from the store as it was before its audit code moved out of
 * store.c, and agree with an independent HMAC over the encoding described in audit-chain.c; a
 * change here means existing trails would read as tampered. */
static void hex(const uint8_t *b, size_t n, char *out) {
        for (size_t i = 0; i < n; i++)
                snprintf(out + 2 * i, 3, "%02x", b[i]);
}

static void assert_blob_hex(const char *sql, const char *want) {
        uint8_t b[SG_MAC_BYTES];
        char got[2 * SG_MAC_BYTES + 1];

        raw_blob(sql, b, sizeof b);
        hex(b, sizeof b, got);
        if (strcmp(got, want) != 0)
                print_error("%s: %s\n", sql, got);
        assert_string_equal(got, want);
}

static void test_audit_mac_format_pinned(void **state) {
        static const uint8_t sealed[] = { 0x00, 0x01, 0xfe, 0xff };
        struct sg_audit_event full = {
                .time_usec = 1700000000123456ULL, .event = "auth_failure", .reason = "bad_password",
                .user = "alice", .service = "sshd", .rhost = "192.0.2.7", .tty = "ssh",
                .pid = 4242, .uid = 0, .session_id = "s-1", .detail = "d\xc3\xa9tail",
        };
        struct sg_audit_event sparse = {
                .time_usec = 1700000000999999ULL, .event = "daemon_start", .reason = "",
                .user_sealed = sealed, .user_sealed_len = sizeof sealed, .pid = -1, .uid = -1,
        };
        uint64_t id = 0, deleted = 0;
        sg_store *s;

        (void) state;
        s = open_store();
        assert_int_equal(sg_store_audit_append(s, &full, &id), 0);
        assert_int_equal(id, 1);
        assert_int_equal(sg_store_audit_append(s, &sparse, &id), 0);
        assert_int_equal(id, 2);
        assert_blob_hex("SELECT mac FROM audit WHERE id = 1", "c674e6d965e131f17918473f46a221a344df5bd324e23c00ea51a5e774cc72af");
        assert_blob_hex("SELECT mac FROM audit WHERE id = 2", "98a2de2fe9c9cdc4ac8cd1f95055d4d8fb81b50d5c165109746ce28882615bf2");
        /* The pure function secguardctl fleet verify uses gives the same bytes. */
        {
                uint8_t zero[SG_MAC_BYTES] = { 0 }, m1[SG_MAC_BYTES], m2[SG_MAC_BYTES];
                char h[2 * SG_MAC_BYTES + 1];

                sg_audit_row_mac(key, NULL, zero, 1, &full, m1);
                hex(m1, sizeof m1, h);
                assert_string_equal(h, "c674e6d965e131f17918473f46a221a344df5bd324e23c00ea51a5e774cc72af");
                sg_audit_row_mac(key, NULL, m1, 2, &sparse, m2);
                hex(m2, sizeof m2, h);
                assert_string_equal(h, "98a2de2fe9c9cdc4ac8cd1f95055d4d8fb81b50d5c165109746ce28882615bf2");
                sg_audit_row_mac(key, NULL, m1, 3, &sparse, m2); /* the id is covered */
                hex(m2, sizeof m2, h);
                assert_string_not_equal(h, "98a2de2fe9c9cdc4ac8cd1f95055d4d8fb81b50d5c165109746ce28882615bf2");
        }
        assert_int_equal(sg_store_audit_prune(s, 0, 1, &deleted), 0);
        assert_int_equal(deleted, 1);
        assert_blob_hex("SELECT mac FROM audit_anchor", "bb9b4f04a766bc3a21a053ae3ef8eda7e10f5ac615eeaec56441fd1f8d709258");
        assert_intact(s);
        sg_store_free(s);
}

static void test_errno_map(void **state) {
        (void) state;
        assert_int_equal(sg_store_errno(SQLITE_OK), 0);
        assert_int_equal(sg_store_errno(SQLITE_DONE), 0);
        assert_int_equal(sg_store_errno(SQLITE_FULL), -ENOSPC);
        assert_int_equal(sg_store_errno(SQLITE_BUSY), -EBUSY);
        assert_int_equal(sg_store_errno(SQLITE_BUSY_SNAPSHOT), -EBUSY);
        assert_int_equal(sg_store_errno(SQLITE_LOCKED), -EBUSY);
        assert_int_equal(sg_store_errno(SQLITE_NOMEM), -ENOMEM);
        assert_int_equal(sg_store_errno(SQLITE_CORRUPT), -EBADMSG);
        assert_int_equal(sg_store_errno(SQLITE_NOTADB), -EBADMSG);
        assert_int_equal(sg_store_errno(SQLITE_READONLY), -EROFS);
        assert_int_equal(sg_store_errno(SQLITE_IOERR), -EIO);
        assert_int_equal(sg_store_errno(SQLITE_IOERR_FSYNC), -EIO);
        assert_int_equal(sg_store_errno(SQLITE_CONSTRAINT_PRIMARYKEY), -EEXIST);
        assert_int_equal(sg_store_errno(SQLITE_PERM), -EPERM);
        assert_int_equal(sg_store_errno(SQLITE_AUTH), -EPERM);
        assert_int_equal(sg_store_errno(SQLITE_ERROR), -EIO);
        assert_int_equal(sg_store_errno(SQLITE_SCHEMA), -EIO);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_open_creates_private_wal_db, setup, teardown),
                cmocka_unit_test_setup_teardown(test_migrations_create_schema, setup, teardown),
                cmocka_unit_test_setup_teardown(test_sessions_put_delete, setup, teardown),
                cmocka_unit_test_setup_teardown(test_sessions_from_schema_2, setup, teardown),
                cmocka_unit_test_setup_teardown(test_tokens, setup, teardown),
                cmocka_unit_test_setup_teardown(test_tokens_from_schema_3, setup, teardown),
                cmocka_unit_test_setup_teardown(test_reopen_keeps_data, setup, teardown),
                cmocka_unit_test_setup_teardown(test_state_dir_unsafe_refused, setup, teardown),
                cmocka_unit_test_setup_teardown(test_db_unsafe_mode_refused, setup, teardown),
                cmocka_unit_test_setup_teardown(test_db_symlink_refused, setup, teardown),
                cmocka_unit_test_setup_teardown(test_garbage_refused_untouched, setup, teardown),
                cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, teardown),
                cmocka_unit_test_setup_teardown(test_foreign_db_refused, setup, teardown),
                cmocka_unit_test_setup_teardown(test_tampered_schema_refused, setup, teardown),
                cmocka_unit_test_setup_teardown(test_open_bad_args, setup, teardown),
                cmocka_unit_test_setup_teardown(test_attempts, setup, teardown),
                cmocka_unit_test_setup_teardown(test_locks, setup, teardown),
                cmocka_unit_test_setup_teardown(test_fleet_locks, setup, teardown),
                cmocka_unit_test_setup_teardown(test_attempts_pending_index_dropped, setup, teardown),
                cmocka_unit_test_setup_teardown(test_wal_bounded, setup, teardown),
                cmocka_unit_test_setup_teardown(test_fleet_locks_from_schema_5, setup, teardown),
                cmocka_unit_test_setup_teardown(test_audit_export, setup, teardown),
                cmocka_unit_test_setup_teardown(test_audit_query_filters, setup, teardown),
                cmocka_unit_test_setup_teardown(test_audit_query_newest_n, setup, teardown),
                cmocka_unit_test_setup_teardown(test_sql_payloads_verbatim, setup, teardown),
                cmocka_unit_test_setup_teardown(test_verify_intact, setup, teardown),
                cmocka_unit_test_setup_teardown(test_verify_catches_update, setup, teardown),
                cmocka_unit_test_setup_teardown(test_verify_catches_field_moves, setup, teardown),
                cmocka_unit_test_setup_teardown(test_verify_catches_delete_in_middle, setup, teardown),
                cmocka_unit_test_setup_teardown(test_verify_catches_forged_insert, setup, teardown),
                cmocka_unit_test_setup_teardown(test_verify_catches_forged_append, setup, teardown),
                cmocka_unit_test_setup_teardown(test_verify_catches_reorder, setup, teardown),
                cmocka_unit_test_setup_teardown(test_verify_tail_deletion, setup, teardown),
                cmocka_unit_test_setup_teardown(test_verify_wrong_key, setup, teardown),
                cmocka_unit_test_setup_teardown(test_prune_max_rows, setup, teardown),
                cmocka_unit_test_setup_teardown(test_prune_slices, setup, teardown),
                cmocka_unit_test_setup_teardown(test_prune_by_age, setup, teardown),
                cmocka_unit_test_setup_teardown(test_anchor_forged_after_head_delete, setup, teardown),
                cmocka_unit_test_setup_teardown(test_anchor_forged_after_delete_all, setup, teardown),
                cmocka_unit_test_setup_teardown(test_anchor_mac_bound_to_fields, setup, teardown),
                cmocka_unit_test_setup_teardown(test_anchor_mac_not_a_row_mac, setup, teardown),
                cmocka_unit_test_setup_teardown(test_anchor_from_schema_1, setup, teardown),
                cmocka_unit_test_setup_teardown(test_epochs, setup, teardown),
                cmocka_unit_test_setup_teardown(test_resume_after_tail_cut, setup, teardown),
                cmocka_unit_test_setup_teardown(test_resume_after_then_rollback, setup, teardown),
                cmocka_unit_test_setup_teardown(test_prune_inside_transaction, setup, teardown),
                cmocka_unit_test_setup_teardown(test_rollback_restores_chain, setup, teardown),
                cmocka_unit_test_setup_teardown(test_group_commit, setup, teardown),
                cmocka_unit_test_setup_teardown(test_free_is_clean, setup, teardown),
                cmocka_unit_test_setup_teardown(test_audit_mac_format_pinned, setup, teardown),
                cmocka_unit_test(test_errno_map),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
