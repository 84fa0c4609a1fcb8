/* SPDX-License-Identifier: MIT */
/*
 * The audit trail (see audit-chain.h): an HMAC-SHA256 chain in the store's database.
 *
 * Each row's mac covers the previous row's mac and a length-prefixed encoding of the row, its
 * id included, so an edit, an insertion, a reordering or a deletion in the middle breaks the
 * chain at a row verify can name. When old rows are pruned, the last deleted row's (id, mac)
 * is kept as the anchor the walk starts from; the anchor has a MAC of its own (domain
 * separated from the row MACs), so it cannot be moved forward over rows deleted from the
 * head. An anchor without one (schema 1, or planted) is reported as unauthenticated until
 * the next prune replaces it.
 *
 * Deleting the newest rows (the tail) leaves a shorter chain that is still consistent. While
 * the store is open, verify compares the tail with the (id, mac) it keeps in memory. Across a
 * restart the manager keeps the tail outside the database (audit.head) and, when rows it
 * names are gone, calls sg_store_audit_resume_after(): the next row then gets the id after
 * the missing ones, and the gap stays in the chain for every later verify to report.
 *
 * The encoding is the on-disk format: existing databases verify only while it stays exactly
 * as it is (tests/unit/test_store.c pins it to bytes).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <sqlite3.h>

#include "audit-chain.h"
#include "sql.h"

enum stmt_id {
        ST_AUDIT_INSERT,
        ST_AUDIT_COUNT,
        ST_AUDIT_LAST,
        ST_AUDIT_WALK,
        ST_AUDIT_CUT_ROWS,
        ST_AUDIT_CUT_AGE,
        ST_AUDIT_MAX_ID,
        ST_AUDIT_MIN_ID,
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
        [ST_AUDIT_INSERT] = "INSERT INTO audit(id, time_usec, event, reason, user, user_sealed, service, "
                            "rhost, tty, pid, uid, session_id, detail, mac) "
                            "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        [ST_AUDIT_COUNT] = "SELECT count(*) FROM audit",
        [ST_AUDIT_LAST] = "SELECT id, mac FROM audit ORDER BY id DESC LIMIT 1",
        [ST_AUDIT_WALK] = "SELECT " AUDIT_COLS " FROM audit ORDER BY id ASC",
        [ST_AUDIT_CUT_ROWS] = "SELECT id FROM audit ORDER BY id DESC LIMIT 1 OFFSET ?1",
        [ST_AUDIT_CUT_AGE] = "SELECT min(id) FROM audit WHERE time_usec >= ?1",
        [ST_AUDIT_MAX_ID] = "SELECT max(id) FROM audit",
        [ST_AUDIT_MIN_ID] = "SELECT min(id) FROM audit",
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

struct chain {
        uint64_t last_id;
        uint8_t last_mac[SG_MAC_BYTES];
};

struct sg_audit_chain {
        sqlite3 *db; /* the store's; not ours to close */
        sqlite3_stmt *st[_ST_MAX];
        /* HMAC state with the audit key already absorbed: as secret as the key, so it lives in
         * sodium_malloc'ed, read-only memory; copying it saves two SHA-256 blocks per row. */
        crypto_auth_hmacsha256_state *keyed;
        struct chain chain;    /* tail of the audit chain, including uncommitted appends */
        struct chain chain_at_begin; /* restored when the transaction does not commit */
};

int sg_audit_chain_new(sqlite3 *db, const uint8_t key[SG_AUDIT_KEY_BYTES], sg_audit_chain **ret) {
        sg_audit_chain *c;
        int r;

        if (!db || !key || !ret)
                return -EINVAL;
        c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        c->db = db;
        c->keyed = sodium_malloc(sizeof *c->keyed);
        if (!c->keyed) {
                free(c);
                return -ENOMEM;
        }
        crypto_auth_hmacsha256_init(c->keyed, key, SG_AUDIT_KEY_BYTES);
        (void) sodium_mprotect_readonly(c->keyed);
        r = prepare_persistent(db, stmt_sql, c->st, _ST_MAX);
        if (r < 0) {
                sg_audit_chain_free(c);
                return r;
        }
        *ret = c;
        return 0;
}

sg_audit_chain *sg_audit_chain_free(sg_audit_chain *c) {
        if (!c)
                return NULL;
        for (int i = 0; i < _ST_MAX; i++)
                (void) sqlite3_finalize(c->st[i]);
        if (c->keyed)
                sodium_free(c->keyed);
        sodium_memzero(&c->chain, sizeof c->chain);
        sodium_memzero(&c->chain_at_begin, sizeof c->chain_at_begin);
        free(c);
        return NULL;
}

void sg_audit_chain_checkpoint(sg_audit_chain *c) {
        c->chain_at_begin = c->chain;
}

void sg_audit_chain_rewind(sg_audit_chain *c) {
        c->chain = c->chain_at_begin;
}

static void copy_mac(uint8_t dst[SG_MAC_BYTES], const void *src, int len) {
        memset(dst, 0, SG_MAC_BYTES);
        if (src && len > 0)
                memcpy(dst, src, (size_t) len < SG_MAC_BYTES ? (size_t) len : SG_MAC_BYTES);
}

/* The chain continues from the newest row, else from the anchor left by pruning, else from
 * zeros. A damaged tail mac is carried on as is: verify reports that row. */
int sg_audit_chain_load(sg_audit_chain *c) {
        sqlite3_stmt *st = c->st[ST_AUDIT_LAST];
        int rc;

        memset(&c->chain, 0, sizeof c->chain);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                c->chain.last_id = col_u64(st, 0);
                copy_mac(c->chain.last_mac, sqlite3_column_blob(st, 1), sqlite3_column_bytes(st, 1));
        }
        stmt_done(st);
        if (rc == SQLITE_ROW)
                return 0;
        if (rc != SQLITE_DONE)
                return sg_store_errno(rc);

        st = c->st[ST_ANCHOR_GET];
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                c->chain.last_id = col_u64(st, 0);
                copy_mac(c->chain.last_mac, sqlite3_column_blob(st, 1), sqlite3_column_bytes(st, 1));
        }
        stmt_done(st);
        return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : sg_store_errno(rc);
}

/* ---- the row MAC ---- */

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

static void compute_mac(const sg_audit_chain *c, const uint8_t prev[SG_MAC_BYTES], const struct mac_input *in,
                        uint8_t out[SG_MAC_BYTES]) {
        crypto_auth_hmacsha256_state h;

        memcpy(&h, c->keyed, sizeof h);
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

bool sg_audit_event_valid(const struct sg_audit_event *ev) {
        return ev && ev->event && !(ev->user_sealed && ev->user_sealed_len > INT32_MAX);
}

int sg_audit_chain_append(sg_audit_chain *c, const struct sg_audit_event *ev, uint64_t *ret_id) {
        uint8_t mac[SG_MAC_BYTES];
        struct mac_input in;
        sqlite3_stmt *st;
        uint64_t id;
        int r;

        if (!c || !sg_audit_event_valid(ev))
                return -EINVAL;
        if (c->chain.last_id >= (uint64_t) INT64_MAX)
                return -EOVERFLOW;
        id = c->chain.last_id + 1;
        /* Times past INT64_MAX are stored clamped; hash what is stored. */
        mac_input_from_event(&in, id, ev);
        in.time_usec = (uint64_t) to_i64(ev->time_usec);
        compute_mac(c, c->chain.last_mac, &in, mac);

        st = c->st[ST_AUDIT_INSERT];
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
        if (r < 0)
                return r;
        c->chain.last_id = id;
        memcpy(c->chain.last_mac, mac, sizeof mac);
        if (ret_id)
                *ret_id = id;
        return 0;
}

void sg_audit_chain_tail(const sg_audit_chain *c, uint64_t *ret_id, uint8_t ret_mac[SG_MAC_BYTES]) {
        *ret_id = c->chain.last_id;
        memcpy(ret_mac, c->chain.last_mac, SG_MAC_BYTES);
}

int sg_audit_chain_count(sg_audit_chain *c, uint64_t *ret) {
        sqlite3_int64 n = 0;
        int r;

        if (!c || !ret)
                return -EINVAL;
        r = step_int(c->st[ST_AUDIT_COUNT], &n);
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

int sg_audit_chain_query(sg_audit_chain *c, const struct sg_audit_filter *f, sg_audit_cb cb, void *userdata) {
        sqlite3_stmt *st;
        enum stmt_id which;
        int rc, r = 0;

        if (!c || !f || !cb)
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
        st = c->st[which];
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
        return walk_end(st, rc, r);
}

/* anchor_mac = HMAC-SHA256(key, "secguard audit anchor v1" || singleton || last_id || last_mac),
 * fields encoded as in the rows. The tag keeps anchor and row MACs apart; the inputs also
 * differ in length (82 bytes here, at least 109 for a row), so no row MAC can pass for an
 * anchor MAC or the other way round. */
static void compute_anchor_mac(const sg_audit_chain *c, uint64_t last_id, const uint8_t last_mac[SG_MAC_BYTES],
                               uint8_t out[SG_MAC_BYTES]) {
        static const char tag[] = "secguard audit anchor v1";
        crypto_auth_hmacsha256_state h;

        memcpy(&h, c->keyed, sizeof h);
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

static int read_anchor(sg_audit_chain *c, struct anchor *ret) {
        sqlite3_stmt *st = c->st[ST_ANCHOR_GET];
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
                        compute_anchor_mac(c, ret->at.last_id, ret->at.last_mac, want);
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
static bool row_mac_ok(const sg_audit_chain *c, sqlite3_stmt *st, const uint8_t prev_mac[SG_MAC_BYTES]) {
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
                int col = text_cols[i];

                if (sqlite3_column_type(st, col) == SQLITE_NULL)
                        continue;
                /* Text columns hashed as text, the sealed one as a blob: the bytes stored. */
                in.f[i] = col == C_SEALED ? sqlite3_column_blob(st, col) : (const void *) sqlite3_column_text(st, col);
                in.len[i] = (size_t) sqlite3_column_bytes(st, col);
                if (!in.f[i])
                        in.f[i] = "";
        }
        compute_mac(c, prev_mac, &in, mac);
        return sodium_memcmp(mac, sqlite3_column_blob(st, C_MAC), SG_MAC_BYTES) == 0;
}

/* Checks one stored row against the chain so far, then moves prev on to it (its stored mac:
 * an edited row breaks only its own link, so what follows is still checked). */
static void verify_row(const sg_audit_chain *c, sqlite3_stmt *st, struct chain *prev, struct findings *f) {
        uint64_t id = col_u64(st, C_ID);

        if (id <= prev->last_id)
                found(f, id, "row %" PRIu64 ": out of sequence (expected row %" PRIu64 ")", id, prev->last_id + 1);
        else if (id > prev->last_id + 1) {
                /* The daemon chains the row after a gap it found at start to the row before the
                 * gap; a deletion made later leaves a row chained to one that is gone. */
                if (row_mac_ok(c, st, prev->last_mac))
                        found(f, id, "rows %" PRIu64 "..%" PRIu64 " missing (found gone when the daemon started: "
                              "deleted while it was down, or lost in a power failure)", prev->last_id + 1, id - 1);
                else
                        found(f, id, "rows %" PRIu64 "..%" PRIu64 " missing (deleted)", prev->last_id + 1, id - 1);
        } else if (!row_mac_ok(c, st, prev->last_mac))
                found(f, id, "row %" PRIu64 ": MAC mismatch (edited or inserted)", id);
        prev->last_id = id;
        copy_mac(prev->last_mac, sqlite3_column_blob(st, C_MAC), sqlite3_column_bytes(st, C_MAC));
}

int sg_audit_chain_verify_upto(sg_audit_chain *c, const struct sg_audit_tail *expect, uint64_t *ret_bad_id,
                               char *detail, size_t detailsize) {
        struct findings f = { .detail = detail, .detailsize = detailsize };
        uint8_t mac_at_expect[SG_MAC_BYTES];
        bool seen_expect = false;
        struct anchor a;
        struct chain prev;
        sqlite3_stmt *st;
        int rc, r;

        if (!c || !expect)
                return -EINVAL;
        if (detail && detailsize > 0)
                detail[0] = '\0';
        r = read_anchor(c, &a);
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
        if (prev.last_id == expect->id) {
                memcpy(mac_at_expect, prev.last_mac, SG_MAC_BYTES);
                seen_expect = true;
        }

        st = c->st[ST_AUDIT_WALK];
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                verify_row(c, st, &prev, &f);
                if (prev.last_id == expect->id) {
                        memcpy(mac_at_expect, prev.last_mac, SG_MAC_BYTES);
                        seen_expect = true;
                }
        }
        stmt_done(st);
        if (rc != SQLITE_DONE)
                return sg_store_errno(rc);

        /* The chain alone cannot see its newest rows removed; the writer's tail (what it
         * appended since open, or the rows audit.head said existed) can. Rows after that
         * tail were committed since the caller took it. */
        if (prev.last_id < expect->id)
                found(&f, prev.last_id + 1, "rows %" PRIu64 "..%" PRIu64 " missing at the end (deleted)",
                      prev.last_id + 1, expect->id);
        else if (seen_expect && sodium_memcmp(mac_at_expect, expect->mac, SG_MAC_BYTES) != 0)
                found(&f, expect->id, "row %" PRIu64 ": MAC differs from the one this daemon wrote (replaced)",
                      expect->id);
        sodium_memzero(&prev, sizeof prev);
        sodium_memzero(mac_at_expect, sizeof mac_at_expect);
        if (f.n == 0)
                return 0;
        findings_finish(&f);
        if (ret_bad_id)
                *ret_bad_id = f.first_id;
        return 1;
}

int sg_audit_chain_verify(sg_audit_chain *c, uint64_t *ret_bad_id, char *detail, size_t detailsize) {
        struct sg_audit_tail t;
        int r;

        if (!c)
                return -EINVAL;
        sg_audit_chain_tail(c, &t.id, t.mac);
        r = sg_audit_chain_verify_upto(c, &t, ret_bad_id, detail, detailsize);
        sodium_memzero(&t, sizeof t);
        return r;
}

void sg_audit_chain_committed_tail(const sg_audit_chain *c, bool in_transaction, struct sg_audit_tail *ret) {
        const struct chain *from = in_transaction ? &c->chain_at_begin : &c->chain;

        ret->id = from->last_id;
        memcpy(ret->mac, from->last_mac, SG_MAC_BYTES);
}

int sg_audit_chain_resume_after(sg_audit_chain *c, uint64_t last_id) {
        if (!c || last_id < c->chain.last_id || last_id >= (uint64_t) INT64_MAX)
                return -EINVAL;
        /* Only the id moves: the next row is still chained to the newest row there is. */
        c->chain.last_id = last_id;
        return 0;
}

/* Highest id to delete, 0 for none. */
static int prune_cutoff(sg_audit_chain *c, uint64_t before_usec, uint64_t max_rows, sqlite3_int64 *ret) {
        sqlite3_int64 cut = 0, v;
        int r;

        if (max_rows) {
                v = 0;
                (void) sqlite3_bind_int64(c->st[ST_AUDIT_CUT_ROWS], 1, to_i64(max_rows));
                r = step_int(c->st[ST_AUDIT_CUT_ROWS], &v);
                if (r < 0)
                        return r;
                cut = v > cut ? v : cut;
        }
        if (before_usec) {
                /* Only a head: everything before the first row young enough to keep. */
                v = -1;
                (void) sqlite3_bind_int64(c->st[ST_AUDIT_CUT_AGE], 1, to_i64(before_usec));
                r = step_int(c->st[ST_AUDIT_CUT_AGE], &v);
                if (r < 0)
                        return r;
                if (r == 1)
                        v = v - 1;
                else {
                        v = 0; /* no row is young enough: all go */
                        r = step_int(c->st[ST_AUDIT_MAX_ID], &v);
                        if (r < 0)
                                return r;
                }
                cut = v > cut ? v : cut;
        }
        *ret = cut;
        return 0;
}

/* Deletes every row up to cut, keeping the last deleted row's (id, mac) as the anchor. */
static int prune_upto(sg_audit_chain *c, sqlite3_int64 cut, uint64_t *ret_deleted) {
        sqlite3_stmt *st = c->st[ST_AUDIT_MAC_OF];
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

        compute_anchor_mac(c, (uint64_t) last, mac, anchor_mac);
        st = c->st[ST_ANCHOR_PUT];
        (void) sqlite3_bind_int64(st, 1, last);
        (void) sqlite3_bind_blob(st, 2, mac, sizeof mac, SQLITE_STATIC);
        (void) sqlite3_bind_blob(st, 3, anchor_mac, sizeof anchor_mac, SQLITE_STATIC);
        r = step_done(st);
        if (r < 0)
                return r;
        (void) sqlite3_bind_int64(c->st[ST_AUDIT_DELETE_UPTO], 1, last);
        r = step_done(c->st[ST_AUDIT_DELETE_UPTO]);
        if (r < 0)
                return r;
        *ret_deleted = (uint64_t) sqlite3_changes64(c->db);
        return 0;
}

int sg_audit_chain_prune_upto(sg_audit_chain *c, uint64_t cut, uint64_t *ret_deleted) {
        uint64_t deleted = 0;
        int r;

        if (!c || !ret_deleted || cut > INT64_MAX)
                return -EINVAL;
        r = cut > 0 ? prune_upto(c, (sqlite3_int64) cut, &deleted) : 0;
        if (r < 0)
                return r;
        *ret_deleted = deleted;
        return 0;
}

int sg_audit_chain_prune_some(sg_audit_chain *c, uint64_t before_usec, uint64_t max_rows, uint64_t limit,
                              uint64_t *ret_deleted, bool *ret_more) {
        sqlite3_int64 cut = 0, first = 0;
        uint64_t deleted = 0;
        bool more = false;
        int r;

        if (!c || !ret_deleted)
                return -EINVAL;
        r = prune_cutoff(c, before_usec, max_rows, &cut);
        if (r >= 0 && cut > 0 && limit > 0) {
                /* Ids are consecutive but for gaps, so this deletes at most limit rows. */
                r = step_int(c->st[ST_AUDIT_MIN_ID], &first);
                /* A cut before the first row (the anchor's rows are gone already): nothing. */
                if (r >= 0 && first > 0 && cut >= first && (uint64_t) (cut - first) >= limit) {
                        cut = first + (sqlite3_int64) limit - 1;
                        more = true;
                }
        }
        if (r >= 0 && cut > 0)
                r = prune_upto(c, cut, &deleted);
        if (r < 0)
                return r;
        *ret_deleted = deleted;
        if (ret_more)
                *ret_more = more;
        return 0;
}

int sg_audit_chain_prune(sg_audit_chain *c, uint64_t before_usec, uint64_t max_rows, uint64_t *ret_deleted) {
        return sg_audit_chain_prune_some(c, before_usec, max_rows, 0, ret_deleted, NULL);
}
