/* SPDX-License-Identifier: MIT */
/*
 * sg_audit_fill STATE_DIR ROWS: appends ROWS audit rows with the daemon's own chain code
 * (audit-chain.c, same key), so a test gets a large, intact audit log in seconds: the store
 * creates the schema, then one unsynced transaction on a connection of our own appends.
 * Creates STATE_DIR/audit.key (0600) when absent. With forward-secure keys set up
 * (STATE_DIR/audit.fss, from secguardctl audit setup-keys) the rows carry the file's epoch and
 * its MAC key, as the daemon would write them in that epoch (it seals the epoch at its next
 * start). Run it while no daemon uses the directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "audit-chain.h"
#include "fss.h"
#include "keyfile.h"
#include "store.h"


static int load_or_make_key(const char *dir, uint8_t key[SG_AUDIT_KEY_BYTES]) {
        char path[4096];
        ssize_t n;
        int fd;

        snprintf(path, sizeof path, "%s/audit.key", dir);
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd >= 0) {
                n = read(fd, key, SG_AUDIT_KEY_BYTES);
                close(fd);
                return n == SG_AUDIT_KEY_BYTES ? 0 : -EIO;
        }
        randombytes_buf(key, SG_AUDIT_KEY_BYTES);
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return -errno;
        n = write(fd, key, SG_AUDIT_KEY_BYTES);
        close(fd);
        return n == SG_AUDIT_KEY_BYTES ? 0 : -EIO;
}

/* 1 with the epoch and key of STATE_DIR/audit.fss, 0 when there is none. */
static int load_epoch(const char *dir, uint64_t *ret_epoch, uint8_t key[SG_FSS_KEY_BYTES]) {
        uint8_t buf[SG_FSS_STATE_BYTES];
        char path[4096], err[4200];
        int r;

        snprintf(path, sizeof path, "%s/audit.fss", dir);
        r = sg_key_read(path, buf, sizeof buf, err, sizeof err);
        if (r == -ENOENT)
                return 0;
        if (r >= 0)
                r = sg_fss_state_decode(buf, ret_epoch, key);
        sodium_memzero(buf, sizeof buf);
        return r < 0 ? r : 1;
}

static int exec(sqlite3 *db, const char *sql) {
        return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -EIO;
}

/* The audit indexes, dropped for the bulk insert and built again from their own SQL after it
 * (sorting once beats a million B-tree inserts). */
struct indexes {
        char *name[8], *sql[8];
        size_t n;
};

static int drop_indexes(sqlite3 *db, struct indexes *ix) {
        sqlite3_stmt *st;
        char drop[256];

        if (sqlite3_prepare_v2(db, "SELECT name, sql FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'audit' "
                               "AND sql IS NOT NULL", -1, &st, NULL) != SQLITE_OK)
                return -EIO;
        while (ix->n < 8 && sqlite3_step(st) == SQLITE_ROW) {
                ix->name[ix->n] = strdup((const char *) sqlite3_column_text(st, 0));
                ix->sql[ix->n] = strdup((const char *) sqlite3_column_text(st, 1));
                ix->n++;
        }
        sqlite3_finalize(st);
        for (size_t i = 0; i < ix->n; i++) {
                if (!ix->name[i] || !ix->sql[i])
                        return -ENOMEM;
                snprintf(drop, sizeof drop, "DROP INDEX \"%s\"", ix->name[i]);
                if (exec(db, drop) < 0)
                        return -EIO;
        }
        return 0;
}

static int create_indexes(sqlite3 *db, struct indexes *ix) {
        int r = 0;

        for (size_t i = 0; i < ix->n; i++) {
                if (r >= 0 && exec(db, ix->sql[i]) < 0)
                        r = -EIO;
                free(ix->name[i]);
                free(ix->sql[i]);
        }
        ix->n = 0;
        return r;
}

static int fill(const char *dir, const uint8_t key[SG_AUDIT_KEY_BYTES], uint64_t rows) {
        struct timespec ts;
        uint64_t base;
        sg_audit_chain *c = NULL;
        struct indexes ix = { .n = 0 };
        char path[4096];
        sqlite3 *db = NULL;
        int r;

        /* Rows one millisecond apart, ending now: young enough for any retention. */
        clock_gettime(CLOCK_REALTIME, &ts);
        base = (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u - rows * 1000u;
        snprintf(path, sizeof path, "%s/secguard.db", dir);
        if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW, NULL) != SQLITE_OK) {
                sqlite3_close(db);
                return -EIO;
        }
        r = exec(db, "PRAGMA synchronous = OFF; PRAGMA cache_size = -65536; BEGIN");
        /* The chain's statements first: one of them names an index. */
        if (r >= 0)
                r = sg_audit_chain_new(db, key, &c);
        if (r >= 0)
                r = sg_audit_chain_load(c);
        if (r >= 0) {
                uint8_t ekey[SG_FSS_KEY_BYTES];
                uint64_t epoch = 0;

                r = load_epoch(dir, &epoch, ekey);
                if (r == 1)
                        r = sg_audit_chain_set_epoch(c, epoch, ekey);
                sodium_memzero(ekey, sizeof ekey);
        }
        if (r >= 0)
                r = drop_indexes(db, &ix);
        for (uint64_t i = 0; i < rows && r >= 0; i++) {
                char user[32], rhost[32];
                struct sg_audit_event ev = {
                        .time_usec = base + i * 1000, .event = i % 2 ? "auth_success" : "auth_failure",
                        .reason = i % 2 ? NULL : "bad_password", .user = user, .service = "sshd",
                        .rhost = rhost, .pid = (int64_t) (1000 + i % 30000), .uid = 0,
                };

                snprintf(user, sizeof user, "filler%u", (unsigned) (i % 1000));
                snprintf(rhost, sizeof rhost, "198.51.100.%u", (unsigned) (i % 256));
                r = sg_audit_chain_append(c, &ev, NULL);
        }
        sg_audit_chain_free(c);
        if (r >= 0)
                r = create_indexes(db, &ix);
        else
                (void) create_indexes(db, &ix);
        if (r >= 0)
                r = exec(db, "COMMIT");
        if (sqlite3_close(db) != SQLITE_OK && r >= 0)
                r = -EIO;
        return r;
}

int main(int argc, char **argv) {
        uint8_t key[SG_AUDIT_KEY_BYTES];
        struct sg_store_options o = { .audit_key = key };
        sg_store *s = NULL;
        char err[1024];
        int r;

        if (argc != 3 || sodium_init() < 0) {
                fprintf(stderr, "usage: sg_audit_fill STATE_DIR ROWS\n");
                return 2;
        }
        o.state_dir = argv[1];
        if (load_or_make_key(argv[1], key) < 0) {
                fprintf(stderr, "sg_audit_fill: cannot read or create %s/audit.key\n", argv[1]);
                return 1;
        }
        /* The store creates (or checks) the schema. */
        if (sg_store_open(&o, &s, err, sizeof err) < 0) {
                fprintf(stderr, "sg_audit_fill: %s\n", err);
                return 1;
        }
        s = sg_store_free(s);
        r = fill(argv[1], key, strtoull(argv[2], NULL, 10));
        sodium_memzero(key, sizeof key);
        if (r < 0) {
                fprintf(stderr, "sg_audit_fill: append failed: %s\n", strerror(-r));
                return 1;
        }
        return 0;
}
