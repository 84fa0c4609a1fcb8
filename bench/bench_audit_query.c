/* SPDX-License-Identifier: MIT */
/*
 * Audit store at scale: appends N rows (default 1,000,000) in group-committed batches, then
 * times filtered newest-N queries, verify, count, reopen and PRAGMA quick_check. Prints
 * figures; asserts nothing about time (not part of CTest).
 *
 *   cc -O2 -D_GNU_SOURCE -Idaemon bench/bench_audit_query.c daemon/store.c daemon/audit-chain.c daemon/sql.c -lsqlite3 -lsodium -pthread \
 *      -o bench_audit_query && ./bench_audit_query [ROWS] [DIR]
 */
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store.h"

#define BATCH 10000

static double now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec * 1e3 + (double) ts.tv_nsec / 1e6;
}

static int count_row(void *userdata, const struct sg_audit_row *r) {
        (void) r;
        (*(uint64_t *) userdata)++;
        return 0;
}

static void timed_query(sg_store *s, const char *label, struct sg_audit_filter f) {
        uint64_t n = 0;
        double t0 = now_ms();
        int r = sg_store_audit_query(s, &f, count_row, &n);

        printf("%-44s %9.3f ms  (%" PRIu64 " rows, r=%d)\n", label, now_ms() - t0, n, r);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) st;
        (void) flag;
        (void) ftw;
        return remove(path);
}

int main(int argc, char **argv) {
        uint64_t rows = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
        char dir[512], path[600], detail[256], err[512];
        uint8_t key[SG_AUDIT_KEY_BYTES];
        struct sg_store_options o = { .state_dir = dir, .audit_key = key };
        static const char *const events[] = { "auth_failure", "auth_success", "session_open",
                                              "session_close", "lockout" };
        uint64_t base = 1700000000000000ull, bad = 0, n = 0;
        sg_store *s = NULL;
        double t0;
        int r;

        snprintf(dir, sizeof dir, "%s/sgbench.XXXXXX", argc > 2 ? argv[2] : "/tmp");
        if (!mkdtemp(dir))
                return 1;
        memset(key, 0x5a, sizeof key);
        r = sg_store_open(&o, &s, err, sizeof err);
        if (r < 0) {
                fprintf(stderr, "open: %s\n", err);
                return 1;
        }

        t0 = now_ms();
        for (uint64_t i = 0; i < rows; i++) {
                char user[32], rhost[32], detail_buf[64];
                struct sg_audit_event ev = {
                        .time_usec = base + i * 1000,
                        .event = events[i % 5],
                        .reason = i % 5 == 0 ? "bad_password" : NULL,
                        .user = user, .service = "sshd", .rhost = rhost, .tty = "ssh",
                        .pid = (int64_t) (1000 + i % 30000), .uid = 0,
                        .detail = detail_buf,
                };

                snprintf(user, sizeof user, "user%" PRIu64, (i * 7919) % 1000);
                snprintf(rhost, sizeof rhost, "198.51.%" PRIu64 ".%" PRIu64, (i / 256) % 256, i % 256);
                snprintf(detail_buf, sizeof detail_buf, "attempt %" PRIu64, i);
                if (i % BATCH == 0 && (r = sg_store_begin(s)) < 0)
                        break;
                if ((r = sg_store_audit_append(s, &ev, NULL)) < 0)
                        break;
                if ((i + 1) % BATCH == 0 || i + 1 == rows)
                        if ((r = sg_store_commit(s)) < 0)
                                break;
        }
        if (r < 0) {
                fprintf(stderr, "append failed: %s\n", strerror(-r));
                return 1;
        }
        {
                double ms = now_ms() - t0;

                printf("append %" PRIu64 " rows (batches of %d): %.0f ms = %.0f rows/s\n", rows, BATCH, ms,
                       (double) rows / (ms / 1e3));
        }

        timed_query(s, "query --user user42 --limit 100", (struct sg_audit_filter) { .user = "user42", .limit = 100 });
        timed_query(s, "query --user nobody --limit 100", (struct sg_audit_filter) { .user = "nobody", .limit = 100 });
        timed_query(s, "query --limit 100", (struct sg_audit_filter) { .limit = 100 });
        timed_query(s, "query --event lockout --limit 100", (struct sg_audit_filter) { .event = "lockout", .limit = 100 });
        timed_query(s, "query --rhost 198.51.3.7 --limit 100", (struct sg_audit_filter) { .rhost = "198.51.3.7", .limit = 100 });
        timed_query(s, "query --user user42 --event lockout", (struct sg_audit_filter) { .user = "user42", .event = "lockout" });
        timed_query(s, "query --since (last 1%) --limit 100",
                    (struct sg_audit_filter) { .since_usec = base + rows * 990, .limit = 100 });
        timed_query(s, "query --until (first 1%) --limit 100",
                    (struct sg_audit_filter) { .until_usec = base + rows * 10, .limit = 100 });
        timed_query(s, "query --since 0+1 (whole range) --limit 100",
                    (struct sg_audit_filter) { .since_usec = 1, .limit = 100 });
        timed_query(s, "query --user user42 --since (last 1%)",
                    (struct sg_audit_filter) { .user = "user42", .since_usec = base + rows * 990 });

        t0 = now_ms();
        r = sg_store_audit_count(s, &n);
        printf("%-44s %9.3f ms  (%" PRIu64 ")\n", "count", now_ms() - t0, n);
        t0 = now_ms();
        r = sg_store_audit_verify(s, &bad, detail, sizeof detail);
        printf("%-44s %9.3f ms  (r=%d %s)\n", "verify", now_ms() - t0, r, detail);
        s = sg_store_free(s);

        t0 = now_ms();
        r = sg_store_open(&o, &s, err, sizeof err);
        printf("%-44s %9.3f ms  (r=%d)\n", "reopen", now_ms() - t0, r);
        if (r >= 0) {
                uint64_t deleted = 0;

                t0 = now_ms();
                r = sg_store_audit_prune(s, 0, rows / 2, &deleted);
                printf("%-44s %9.3f ms  (deleted %" PRIu64 ", r=%d)\n", "prune to half", now_ms() - t0, deleted, r);
                s = sg_store_free(s);
        }

        snprintf(path, sizeof path, "%s/secguard.db", dir);
        {
                sqlite3 *db = NULL;

                if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
                        t0 = now_ms();
                        r = sqlite3_exec(db, "PRAGMA quick_check", NULL, NULL, NULL);
                        printf("%-44s %9.3f ms  (rc=%d)\n", "PRAGMA quick_check (after prune)", now_ms() - t0, r);
                }
                sqlite3_close(db);
        }
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        return 0;
}
