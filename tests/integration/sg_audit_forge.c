/* SPDX-License-Identifier: MIT */
/*
 * sg_audit_forge STATE_DIR ID DETAIL: what root can do to the audit log with the keys it finds
 * on the host, for t_audit_fss. Row ID's detail becomes DETAIL; then that row and every later
 * one get fresh MACs, chained as the daemon would chain them, each row keeping its epoch
 * number but MACed under the only forward-secure key on disk (audit.fss: the current epoch's);
 * the seals are pointed at the new MACs (their own MACs cannot be redone without the old keys)
 * and audit.head at the new tail. Run it while no daemon uses the directory. Only rows with
 * an epoch are rewritten (rows before forward-secure keys fall to the static key anyway).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <sqlite3.h>

#include "audit-chain.h"
#include "fileio.h"
#include "fss.h"
#include "keyfile.h"

#define NCOLS 15

struct row {
        char *text[NCOLS]; /* as text; NULL for SQL NULL */
        int type[NCOLS];
        uint8_t *sealed;
        int sealed_len;
};

static char *dup_col(sqlite3_stmt *st, int i) {
        const unsigned char *t = sqlite3_column_text(st, i);

        return t ? strdup((const char *) t) : NULL;
}

static int die(const char *what) {
        fprintf(stderr, "sg_audit_forge: %s\n", what);
        return 1;
}

int main(int argc, char **argv) {
        uint8_t legacy[SG_AUDIT_KEY_BYTES], state[SG_FSS_STATE_BYTES], key[SG_FSS_KEY_BYTES], mac[SG_MAC_BYTES];
        char path[4096], err[4300], hex[2 * SG_MAC_BYTES + 1], line[128];
        struct row *rows = NULL;
        size_t n = 0, alloc = 0;
        sg_audit_chain *c = NULL;
        sqlite3_stmt *st;
        sqlite3 *db;
        uint64_t epoch, tail = 0;
        long long from;
        int r;

        if (argc != 4 || sodium_init() < 0)
                return die("usage: sg_audit_forge STATE_DIR ID DETAIL");
        from = atoll(argv[2]);
        snprintf(path, sizeof path, "%s/audit.fss", argv[1]);
        if (sg_key_read(path, state, sizeof state, err, sizeof err) < 0 || sg_fss_state_decode(state, &epoch, key) < 0)
                return die("no forward-secure key on disk");
        snprintf(path, sizeof path, "%s/audit.key", argv[1]);
        if (sg_key_read(path, legacy, sizeof legacy, err, sizeof err) < 0)
                return die("no static key on disk");
        snprintf(path, sizeof path, "%s/secguard.db", argv[1]);
        if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
                return die("cannot open the database");

        if (sqlite3_prepare_v2(db, "SELECT id, time_usec, event, reason, user, user_sealed, service, rhost, tty, pid, "
                               "uid, session_id, detail, mac, epoch FROM audit WHERE id >= ?1 ORDER BY id", -1, &st,
                               NULL) != SQLITE_OK)
                return die("prepare");
        sqlite3_bind_int64(st, 1, from);
        while (sqlite3_step(st) == SQLITE_ROW) {
                struct row *rw;

                if (n == alloc) {
                        alloc = alloc ? 2 * alloc : 64;
                        rows = realloc(rows, alloc * sizeof *rows);
                        if (!rows)
                                return die("out of memory");
                }
                rw = &rows[n++];
                memset(rw, 0, sizeof *rw);
                for (int i = 0; i < NCOLS; i++) {
                        rw->type[i] = sqlite3_column_type(st, i);
                        rw->text[i] = i == 5 ? NULL : dup_col(st, i);
                }
                if (rw->type[5] != SQLITE_NULL) {
                        rw->sealed_len = sqlite3_column_bytes(st, 5);
                        rw->sealed = malloc((size_t) rw->sealed_len + 1);
                        memcpy(rw->sealed, sqlite3_column_blob(st, 5), (size_t) rw->sealed_len);
                }
                if (rw->type[14] == SQLITE_NULL)
                        return die("a row without an epoch: only forward-secure rows are rewritten");
        }
        sqlite3_finalize(st);
        if (n == 0 || atoll(rows[0].text[0]) != from)
                return die("no such row");
        free(rows[0].text[12]);
        rows[0].text[12] = strdup(argv[3]);

        r = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        snprintf(line, sizeof line, "DELETE FROM audit WHERE id >= %lld", from);
        if (r == SQLITE_OK)
                r = sqlite3_exec(db, line, NULL, NULL, NULL);
        if (r != SQLITE_OK || sg_audit_chain_new(db, legacy, &c) < 0 || sg_audit_chain_load(c) < 0)
                return die("cannot start the rewrite");
        for (size_t i = 0; i < n; i++) {
                struct row *rw = &rows[i];
                struct sg_audit_event ev = {
                        .time_usec = strtoull(rw->text[1], NULL, 10), .event = rw->text[2], .reason = rw->text[3],
                        .user = rw->text[4], .user_sealed = rw->sealed, .user_sealed_len = (size_t) rw->sealed_len,
                        .service = rw->text[6], .rhost = rw->text[7], .tty = rw->text[8],
                        .pid = rw->text[9] ? atoll(rw->text[9]) : -1, .uid = rw->text[10] ? atoll(rw->text[10]) : -1,
                        .session_id = rw->text[11], .detail = rw->text[12],
                };

                /* The row's own epoch number, the attacker's key. */
                if (sg_audit_chain_set_epoch(c, strtoull(rw->text[14], NULL, 10), key) < 0 ||
                    sg_audit_chain_append(c, &ev, &tail) < 0)
                        return die("append");
        }
        sg_audit_chain_tail(c, &tail, mac);
        sg_audit_chain_free(c);
        r = sqlite3_exec(db, "UPDATE audit_seal SET last_mac = (SELECT mac FROM audit WHERE audit.id = audit_seal.last_id) "
                             "WHERE last_id IN (SELECT id FROM audit)", NULL, NULL, NULL);
        if (r == SQLITE_OK)
                r = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
        if (r != SQLITE_OK || sqlite3_close(db) != SQLITE_OK)
                return die(sqlite3_errmsg(db));
        sodium_bin2hex(hex, sizeof hex, mac, sizeof mac);
        snprintf(line, sizeof line, "%" PRIu64 " %s\n", tail, hex);
        snprintf(path, sizeof path, "%s/audit.head", argv[1]);
        if (sg_write_atomic(path, line, strlen(line), NULL, 0) < 0)
                return die("cannot write audit.head");
        printf("rewrote rows %lld..%" PRIu64 " under the key of epoch %" PRIu64 "\n", from, tail, epoch);
        for (size_t i = 0; i < n; i++) {
                for (int k = 0; k < NCOLS; k++)
                        free(rows[i].text[k]);
                free(rows[i].sealed);
        }
        free(rows);
        sodium_memzero(key, sizeof key);
        sodium_memzero(legacy, sizeof legacy);
        return 0;
}
