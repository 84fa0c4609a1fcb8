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
#include "fss.h"
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
        ST_AUDIT_LAST_EPOCH,
        ST_SEAL_PUT,
        ST_SEAL_ALL,
        ST_SEAL_MAX,
        ST_SEAL_PRUNE,
        ST_QUERY_ALL,
        ST_QUERY_TIME,
        ST_QUERY_USER,
        ST_QUERY_EVENT,
        ST_QUERY_RHOST,
        ST_EXPORT,
        _ST_MAX,
};

/* Column order shared by the walk and the queries; read_audit_row() depends on it. */
#define AUDIT_COLS "id, time_usec, event, reason, user, user_sealed, service, rhost, tty, pid, uid, session_id, detail, mac, epoch"

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
                            "rhost, tty, pid, uid, session_id, detail, mac, epoch) "
                            "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        [ST_AUDIT_COUNT] = "SELECT count(*) FROM audit",
        [ST_AUDIT_LAST] = "SELECT id, mac FROM audit ORDER BY id DESC LIMIT 1",
        [ST_AUDIT_WALK] = "SELECT " AUDIT_COLS " FROM audit ORDER BY id ASC",
        [ST_AUDIT_CUT_ROWS] = "SELECT id FROM audit ORDER BY id DESC LIMIT 1 OFFSET ?1",
        [ST_AUDIT_CUT_AGE] = "SELECT min(id) FROM audit WHERE time_usec >= ?1",
        [ST_AUDIT_MAX_ID] = "SELECT max(id) FROM audit",
        [ST_AUDIT_MIN_ID] = "SELECT min(id) FROM audit",
        [ST_AUDIT_MAC_OF] = "SELECT id, mac FROM audit WHERE id <= ?1 ORDER BY id DESC LIMIT 1",
        [ST_AUDIT_DELETE_UPTO] = "DELETE FROM audit WHERE id <= ?1",
        [ST_ANCHOR_GET] = "SELECT last_id, last_mac, mac, epoch FROM audit_anchor WHERE singleton = 1",
        [ST_ANCHOR_PUT] = "INSERT INTO audit_anchor(singleton, last_id, last_mac, mac, epoch) VALUES(1, ?1, ?2, ?3, ?4) "
                          "ON CONFLICT(singleton) DO UPDATE SET last_id = excluded.last_id, "
                          "last_mac = excluded.last_mac, mac = excluded.mac, epoch = excluded.epoch",
        [ST_AUDIT_LAST_EPOCH] = "SELECT epoch FROM audit ORDER BY id DESC LIMIT 1",
        /* A seal already there (a crash after it committed, before the key file moved on)
         * stays: it was written under the same key over the same tail. */
        [ST_SEAL_PUT] = "INSERT INTO audit_seal(epoch, last_id, last_mac, time_usec, mac) VALUES(?1, ?2, ?3, ?4, ?5) "
                        "ON CONFLICT(epoch) DO NOTHING",
        [ST_SEAL_ALL] = "SELECT epoch, last_id, last_mac, time_usec, mac FROM audit_seal ORDER BY epoch",
        [ST_SEAL_MAX] = "SELECT max(epoch) FROM audit_seal",
        [ST_SEAL_PRUNE] = "DELETE FROM audit_seal WHERE last_id < ?1",
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
        /* The fleet helper's feed: a range of the primary key, so a page costs its rows. */
        [ST_EXPORT] = "SELECT " AUDIT_COLS " FROM audit WHERE id > ?1 AND id <= ?2 ORDER BY id ASC LIMIT ?3",
};

struct chain {
        uint64_t last_id;
        uint8_t last_mac[SG_MAC_BYTES];
};

/* An epoch's key and the HMAC state keyed with its MAC key (copying the state saves two
 * SHA-256 blocks per row). */
struct epoch_key {
        bool set;
        uint64_t epoch;
        uint8_t key[SG_FSS_KEY_BYTES];
        crypto_auth_hmacsha256_state keyed;
};

/* Every secret of the chain, in one sodium_malloc'ed block (guard pages, wiped when freed). */
struct secrets {
        bool has_legacy;
        crypto_auth_hmacsha256_state legacy; /* the static audit.key: rows without an epoch */
        struct epoch_key writer;  /* the epoch rows are appended in; unset: static-key rows */
        struct epoch_key base;    /* the earliest key verify has: key(0) from the seed, or the current one */
        struct epoch_key cursor;  /* verify's key for the epoch it is in, stepped on from base */
};

/* What the last verify could not check (sg_audit_chain_verify_note()). */
struct verify_stats {
        uint64_t unchecked_rows, unchecked_first, unchecked_last; /* epochs before the key verify had */
        uint64_t unchecked_seals;
        uint64_t legacy_unchecked; /* static-key rows without that key */
        uint64_t epoch_rows;
        bool had_base, base_current;
        uint64_t base_epoch;
};

struct sg_audit_chain {
        sqlite3 *db; /* the store's; not ours to close */
        sqlite3_stmt *st[_ST_MAX];
        struct secrets *sec;
        bool base_current;     /* base is the writer's current epoch: every earlier one must be sealed */
        struct chain chain;    /* tail of the audit chain, including uncommitted appends */
        struct chain chain_at_begin; /* restored when the transaction does not commit */
        struct verify_stats stats;
};

static void epoch_key_set(struct epoch_key *k, uint64_t epoch, const uint8_t key[SG_FSS_KEY_BYTES]) {
        uint8_t mac_key[SG_FSS_KEY_BYTES];

        k->set = true;
        k->epoch = epoch;
        if (k->key != key)
                memcpy(k->key, key, SG_FSS_KEY_BYTES);
        sg_fss_mac_key(k->key, mac_key);
        crypto_auth_hmacsha256_init(&k->keyed, mac_key, sizeof mac_key);
        sodium_memzero(mac_key, sizeof mac_key);
}

int sg_audit_chain_new(sqlite3 *db, const uint8_t key[SG_AUDIT_KEY_BYTES], sg_audit_chain **ret) {
        sg_audit_chain *c;
        int r;

        if (!db || !ret)
                return -EINVAL;
        c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        c->db = db;
        c->sec = sodium_malloc(sizeof *c->sec);
        if (!c->sec) {
                free(c);
                return -ENOMEM;
        }
        sodium_memzero(c->sec, sizeof *c->sec);
        if (key) {
                crypto_auth_hmacsha256_init(&c->sec->legacy, key, SG_AUDIT_KEY_BYTES);
                c->sec->has_legacy = true;
        }
        r = prepare_persistent(db, stmt_sql, c->st, _ST_MAX);
        if (r < 0) {
                sg_audit_chain_free(c);
                return r;
        }
        *ret = c;
        return 0;
}

int sg_audit_chain_set_epoch(sg_audit_chain *c, uint64_t epoch, const uint8_t key[SG_FSS_KEY_BYTES]) {
        if (!c || !key || epoch >= (uint64_t) INT64_MAX)
                return -EINVAL;
        epoch_key_set(&c->sec->writer, epoch, key);
        return sg_audit_chain_set_verify_key(c, epoch, key, true);
}

int sg_audit_chain_set_verify_key(sg_audit_chain *c, uint64_t epoch, const uint8_t key[SG_FSS_KEY_BYTES],
                                  bool current) {
        if (!c || !key || epoch >= (uint64_t) INT64_MAX)
                return -EINVAL;
        epoch_key_set(&c->sec->base, epoch, key);
        sodium_memzero(&c->sec->cursor, sizeof c->sec->cursor);
        c->base_current = current;
        return 0;
}

void sg_audit_chain_epoch_key(const sg_audit_chain *c, struct sg_audit_epoch_key *ret) {
        memset(ret, 0, sizeof *ret);
        if (!c || !c->sec->writer.set)
                return;
        ret->set = true;
        ret->epoch = c->sec->writer.epoch;
        memcpy(ret->key, c->sec->writer.key, sizeof ret->key);
}

void sg_audit_chain_forget_verify_key(sg_audit_chain *c) {
        if (!c)
                return;
        sodium_memzero(&c->sec->base, sizeof c->sec->base);
        sodium_memzero(&c->sec->cursor, sizeof c->sec->cursor);
        c->base_current = false;
}

bool sg_audit_chain_forward_secure(const sg_audit_chain *c) {
        return c && c->sec->writer.set;
}

sg_audit_chain *sg_audit_chain_free(sg_audit_chain *c) {
        if (!c)
                return NULL;
        for (int i = 0; i < _ST_MAX; i++)
                (void) sqlite3_finalize(c->st[i]);
        if (c->sec)
                sodium_free(c->sec);
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
        bool has_epoch;
        uint64_t epoch;
};

static void compute_mac(const crypto_auth_hmacsha256_state *keyed, const uint8_t prev[SG_MAC_BYTES],
                        const struct mac_input *in, uint8_t out[SG_MAC_BYTES]) {
        crypto_auth_hmacsha256_state h;

        memcpy(&h, keyed, sizeof h);
        crypto_auth_hmacsha256_update(&h, prev, SG_MAC_BYTES);
        mac_u64(&h, in->id);
        mac_u64(&h, in->time_usec);
        for (size_t i = 0; i < 9; i++)
                mac_field(&h, in->f[i], in->len[i]);
        mac_u64(&h, (uint64_t) in->pid);
        mac_u64(&h, (uint64_t) in->uid);
        if (in->has_epoch)
                mac_u64(&h, in->epoch); /* forward-secure rows: the epoch is part of the row */
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

void sg_audit_row_mac(const uint8_t key[SG_AUDIT_KEY_BYTES], const uint64_t *epoch, const uint8_t prev[SG_MAC_BYTES],
                      uint64_t id, const struct sg_audit_event *ev, uint8_t out[SG_MAC_BYTES]) {
        crypto_auth_hmacsha256_state keyed;
        struct mac_input in;

        crypto_auth_hmacsha256_init(&keyed, key, SG_AUDIT_KEY_BYTES);
        mac_input_from_event(&in, id, ev);
        if (epoch) {
                in.has_epoch = true;
                in.epoch = *epoch;
        }
        compute_mac(&keyed, prev, &in, out);
        sodium_memzero(&keyed, sizeof keyed);
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
        if (c->sec->writer.set) {
                in.has_epoch = true;
                in.epoch = c->sec->writer.epoch;
                compute_mac(&c->sec->writer.keyed, c->chain.last_mac, &in, mac);
        } else if (c->sec->has_legacy)
                compute_mac(&c->sec->legacy, c->chain.last_mac, &in, mac);
        else
                return -ENOKEY;

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
        if (in.has_epoch)
                (void) sqlite3_bind_int64(st, 15, (sqlite3_int64) in.epoch);
        else
                (void) sqlite3_bind_null(st, 15);
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
       C_SESSION, C_DETAIL, C_MAC, C_EPOCH };

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
        if (sqlite3_column_type(st, C_MAC) != SQLITE_NULL) {
                const void *b = sqlite3_column_blob(st, C_MAC);

                r->mac = b ? b : (const uint8_t *) "";
                r->mac_len = (size_t) sqlite3_column_bytes(st, C_MAC);
        }
        if (sqlite3_column_type(st, C_EPOCH) != SQLITE_NULL) {
                r->has_epoch = true;
                r->epoch = col_u64(st, C_EPOCH);
        }
}
/* Steps a bound audit-row statement to the end, handing each row to cb (a row whose event
 * cannot be read is skipped); stops at cb's first error. */
static int walk_rows(sqlite3_stmt *st, sg_audit_cb cb, void *userdata) {
        int rc, r = 0;

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

int sg_audit_chain_query(sg_audit_chain *c, const struct sg_audit_filter *f, sg_audit_cb cb, void *userdata) {
        sqlite3_stmt *st;
        enum stmt_id which;

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
        return walk_rows(st, cb, userdata);
}

int sg_audit_chain_export(sg_audit_chain *c, uint64_t after_id, uint64_t upto_id, uint64_t limit,
                          sg_audit_cb cb, void *userdata, uint64_t *ret_max_id) {
        sqlite3_int64 max = 0;
        sqlite3_stmt *st;
        int r;

        if (!c || !cb || limit == 0)
                return -EINVAL;
        if (ret_max_id) {
                r = step_int(c->st[ST_AUDIT_MAX_ID], &max);
                if (r < 0)
                        return r;
                *ret_max_id = max <= 0 ? 0 : (uint64_t) max < upto_id ? (uint64_t) max : upto_id;
        }
        st = c->st[ST_EXPORT];
        (void) sqlite3_bind_int64(st, 1, to_i64(after_id));
        (void) sqlite3_bind_int64(st, 2, to_i64(upto_id));
        (void) sqlite3_bind_int64(st, 3, to_i64(limit));
        return walk_rows(st, cb, userdata);
}

/* anchor_mac = HMAC-SHA256(key, "secguard audit anchor v1" || singleton || last_id || last_mac),
 * fields encoded as in the rows. The tag keeps anchor and row MACs apart; the inputs also
 * differ in length (82 bytes here, at least 109 for a row), so no row MAC can pass for an
 * anchor MAC or the other way round. An anchor written under a forward-secure key also
 * covers that key's epoch (90 bytes), and its key is that epoch's MAC key. */
static void compute_anchor_mac(const crypto_auth_hmacsha256_state *keyed, uint64_t last_id,
                               const uint8_t last_mac[SG_MAC_BYTES], const uint64_t *epoch, uint8_t out[SG_MAC_BYTES]) {
        static const char tag[] = "secguard audit anchor v1";
        crypto_auth_hmacsha256_state h;

        memcpy(&h, keyed, sizeof h);
        mac_field(&h, tag, sizeof tag - 1);
        mac_u64(&h, 1); /* the singleton key */
        mac_u64(&h, last_id);
        mac_field(&h, last_mac, SG_MAC_BYTES);
        if (epoch)
                mac_u64(&h, *epoch);
        crypto_auth_hmacsha256_final(&h, out);
        sodium_memzero(&h, sizeof h);
}

/* seal_mac = HMAC-SHA256(mac_key(epoch), "secguard audit seal v1" || epoch || last_id ||
 * last_mac || time): the epoch ended after row last_id, whose mac was last_mac. The seal of
 * the rows written before forward-secure keys (epoch -1) is under the static key, with its
 * own tag. */
static void compute_seal_mac(const crypto_auth_hmacsha256_state *keyed, int64_t epoch, uint64_t last_id,
                             const uint8_t last_mac[SG_MAC_BYTES], uint64_t time_usec, uint8_t out[SG_MAC_BYTES]) {
        static const char tag[] = "secguard audit seal v1", legacy_tag[] = "secguard audit legacy seal v1";
        crypto_auth_hmacsha256_state h;

        memcpy(&h, keyed, sizeof h);
        if (epoch < 0)
                mac_field(&h, legacy_tag, sizeof legacy_tag - 1);
        else
                mac_field(&h, tag, sizeof tag - 1);
        mac_u64(&h, (uint64_t) epoch);
        mac_u64(&h, last_id);
        mac_field(&h, last_mac, SG_MAC_BYTES);
        mac_u64(&h, time_usec);
        crypto_auth_hmacsha256_final(&h, out);
        sodium_memzero(&h, sizeof h);
}

/* A planted epoch number far ahead must not make verify step keys for hours: 4M steps take a
 * few seconds and are more than a century of 15-minute epochs. */
#define MAX_EPOCH_STEPS (1u << 22)

/* The HMAC state of epoch e's MAC key, or NULL when verify has no key for it: an epoch before
 * the one its key is for (no seed given), or one implausibly far ahead. Keys only step
 * forward; going back means starting again from the base key. */
static const crypto_auth_hmacsha256_state *epoch_keyed(sg_audit_chain *c, uint64_t e) {
        struct secrets *k = c->sec;
        uint8_t key[SG_FSS_KEY_BYTES];

        if (!k->base.set || e < k->base.epoch)
                return NULL;
        if (k->cursor.set && k->cursor.epoch == e)
                return &k->cursor.keyed;
        if (k->writer.set && k->writer.epoch == e)
                return &k->writer.keyed;
        if (!k->cursor.set || k->cursor.epoch > e)
                k->cursor = k->base;
        if (e - k->cursor.epoch > MAX_EPOCH_STEPS)
                return NULL;
        memcpy(key, k->cursor.key, sizeof key);
        for (uint64_t x = k->cursor.epoch; x < e; x++)
                sg_fss_step(key, key);
        epoch_key_set(&k->cursor, e, key);
        sodium_memzero(key, sizeof key);
        return &k->cursor.keyed;
}

struct anchor {
        struct chain at;   /* (0, zeros) when nothing was ever pruned */
        bool present;
        bool authentic;
        bool has_mac;      /* false: schema 1, or planted without one */
        bool unchecked;    /* written under a key verify does not have */
        bool has_epoch;    /* MACed under a forward-secure key */
        uint64_t epoch;
};

static int read_anchor(sg_audit_chain *c, struct anchor *ret) {
        sqlite3_stmt *st = c->st[ST_ANCHOR_GET];
        int rc;

        memset(ret, 0, sizeof *ret);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                const crypto_auth_hmacsha256_state *keyed;
                uint8_t want[SG_MAC_BYTES];

                ret->present = true;
                ret->at.last_id = col_u64(st, 0);
                copy_mac(ret->at.last_mac, sqlite3_column_blob(st, 1), sqlite3_column_bytes(st, 1));
                ret->has_mac = sqlite3_column_type(st, 2) != SQLITE_NULL;
                ret->has_epoch = sqlite3_column_type(st, 3) != SQLITE_NULL;
                ret->epoch = col_u64(st, 3);
                if (ret->has_epoch)
                        keyed = sqlite3_column_type(st, 3) == SQLITE_INTEGER && sqlite3_column_int64(st, 3) >= 0
                                        ? epoch_keyed(c, ret->epoch) : NULL;
                else
                        keyed = c->sec->has_legacy ? &c->sec->legacy : NULL;
                ret->unchecked = ret->has_mac && !keyed;
                /* Every stored field is bound: a last_mac of the wrong length or a negative
                 * id fails here rather than being padded or clamped into a match. */
                if (ret->has_mac && keyed && sqlite3_column_type(st, 0) == SQLITE_INTEGER &&
                    sqlite3_column_int64(st, 0) >= 0 && sqlite3_column_bytes(st, 1) == SG_MAC_BYTES &&
                    sqlite3_column_bytes(st, 2) == SG_MAC_BYTES) {
                        compute_anchor_mac(keyed, ret->at.last_id, ret->at.last_mac,
                                           ret->has_epoch ? &ret->epoch : NULL, want);
                        ret->authentic = sodium_memcmp(want, sqlite3_column_blob(st, 2), SG_MAC_BYTES) == 0;
                }
        }
        stmt_done(st);
        return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : sg_store_errno(rc);
}

/* What verify found: the first problem names the row and fills detail; later ones are
 * counted, and the next few after the first are quoted, so one old gap (a crash, a deletion
 * already investigated) does not hide tampering after it, and one change that breaks several
 * links (rows moved between epochs) is named for what it is. */
#define QUOTED_NEXT 3
struct findings {
        unsigned n;
        uint64_t first_id;
        char *detail;
        size_t detailsize;
        char next[QUOTED_NEXT][192];
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
        } else if (f->n <= QUOTED_NEXT) {
                va_start(ap, fmt);
                (void) vsnprintf(f->next[f->n - 1], sizeof f->next[0], fmt, ap);
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
                        f->n - 1, f->n == 2 ? "" : "s", f->next[0]);
        for (unsigned i = 1; i < QUOTED_NEXT && i < f->n - 1; i++) {
                len = strlen(f->detail);
                (void) snprintf(f->detail + len, f->detailsize - len, "; then: %s", f->next[i]);
        }
}

/* Does the stored row's mac match one computed over prev_mac? */
static bool row_mac_ok(const crypto_auth_hmacsha256_state *keyed, sqlite3_stmt *st, const uint8_t prev_mac[SG_MAC_BYTES],
                       const uint64_t *epoch) {
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
        if (epoch) {
                in.has_epoch = true;
                in.epoch = *epoch;
        }
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
        compute_mac(keyed, prev_mac, &in, mac);
        return sodium_memcmp(mac, sqlite3_column_blob(st, C_MAC), SG_MAC_BYTES) == 0;
}

/* ---- the walk over rows and epoch seals ---- */

struct seal {
        int64_t epoch; /* -1: the seal of the static-key rows */
        bool well_formed;
        uint64_t last_id, time_usec;
        uint8_t last_mac[SG_MAC_BYTES], mac[SG_MAC_BYTES];
};

#define MAX_SEALS (16u << 20) /* 16M epochs: 480 years of 15-minute epochs */

/* Every seal, by epoch (a few thousand a month at the default interval). */
static int load_seals(sg_audit_chain *c, struct seal **ret, size_t *ret_n) {
        sqlite3_stmt *st = c->st[ST_SEAL_ALL];
        struct seal *v = NULL, *nv;
        size_t n = 0, alloc = 0;
        int rc, r = 0;

        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                struct seal *s;

                if (n == alloc) {
                        alloc = alloc ? alloc * 2 : 64;
                        if (alloc > MAX_SEALS || !(nv = realloc(v, alloc * sizeof *v))) {
                                r = -E2BIG;
                                break;
                        }
                        v = nv;
                }
                s = &v[n++];
                s->epoch = sqlite3_column_int64(st, 0);
                s->last_id = col_u64(st, 1);
                copy_mac(s->last_mac, sqlite3_column_blob(st, 2), sqlite3_column_bytes(st, 2));
                s->time_usec = col_u64(st, 3);
                copy_mac(s->mac, sqlite3_column_blob(st, 4), sqlite3_column_bytes(st, 4));
                s->well_formed = s->epoch >= -1 && sqlite3_column_type(st, 1) == SQLITE_INTEGER &&
                                 sqlite3_column_int64(st, 1) >= 0 && sqlite3_column_bytes(st, 2) == SG_MAC_BYTES &&
                                 sqlite3_column_type(st, 3) == SQLITE_INTEGER &&
                                 sqlite3_column_bytes(st, 4) == SG_MAC_BYTES;
        }
        stmt_done(st);
        if (r == 0 && rc != SQLITE_DONE)
                r = sg_store_errno(rc);
        if (r < 0) {
                free(v);
                return r;
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

struct walk {
        sg_audit_chain *c;
        struct findings *f;
        struct chain prev;      /* the last row (or the anchor) */
        struct seal *seals;
        size_t n_seals, si;     /* si: the next seal to check */
        bool in_epochs;         /* past the static-key rows */
        bool legacy_seen;       /* a static-key row or anchor came first */
        uint64_t cur;           /* epoch of the last row, once in_epochs */
        uint64_t start;         /* the first epoch whose seal must be there */
};

static void seal_name(const struct seal *s, char *buf, size_t size) {
        if (s->epoch < 0)
                snprintf(buf, size, "the rows written with the static key");
        else
                snprintf(buf, size, "epoch %" PRId64, s->epoch);
}

/* The epoch ended at the row before: the seal must name that row, and carry a MAC under the
 * epoch's key. */
static void check_seal(struct walk *w, const struct seal *s) {
        const crypto_auth_hmacsha256_state *keyed;
        uint8_t want[SG_MAC_BYTES];
        char name[64];

        seal_name(s, name, sizeof name);
        if (!s->well_formed) {
                found(w->f, w->prev.last_id, "%s: malformed seal (edited)", name);
                return;
        }
        if (s->last_id > w->prev.last_id)
                found(w->f, w->prev.last_id + 1, "%s: rows %" PRIu64 "..%" PRIu64 " missing at its end (deleted; "
                      "its seal says it ended at row %" PRIu64 ")", name, w->prev.last_id + 1, s->last_id, s->last_id);
        else if (s->last_id != w->prev.last_id || sodium_memcmp(s->last_mac, w->prev.last_mac, SG_MAC_BYTES) != 0)
                found(w->f, s->last_id, "%s: its seal names row %" PRIu64 " but the epoch ends at row %" PRIu64
                      " (rows edited, moved or added after the seal)", name, s->last_id, w->prev.last_id);
        keyed = s->epoch < 0 ? (w->c->sec->has_legacy ? &w->c->sec->legacy : NULL) : epoch_keyed(w->c, (uint64_t) s->epoch);
        if (!keyed) {
                w->c->stats.unchecked_seals++;
                return;
        }
        compute_seal_mac(keyed, s->epoch, s->last_id, s->last_mac, s->time_usec, want);
        if (sodium_memcmp(want, s->mac, SG_MAC_BYTES) != 0)
                found(w->f, s->last_id, "%s: seal MAC mismatch (forged or edited seal)", name);
}

/* Leaving epochs from..to-1 (the rows so far are their last): each must have its seal. */
static void cross(struct walk *w, uint64_t from, uint64_t to) {
        uint64_t x = from;

        while (w->si < w->n_seals && w->seals[w->si].epoch < (int64_t) from)
                w->si++;
        while (x < to) {
                const struct seal *s = w->si < w->n_seals ? &w->seals[w->si] : NULL;
                uint64_t end;

                if (s && (uint64_t) s->epoch == x) {
                        check_seal(w, s);
                        w->si++;
                        x++;
                        continue;
                }
                end = s && (uint64_t) s->epoch < to ? (uint64_t) s->epoch : to;
                if (end - x == 1)
                        found(w->f, w->prev.last_id, "epoch %" PRIu64 ": no seal (the end of the epoch, or the whole "
                              "epoch, deleted)", x);
                else
                        found(w->f, w->prev.last_id, "epochs %" PRIu64 "..%" PRIu64 ": no seals (whole epochs, or their "
                              "ends, deleted)", x, end - 1);
                x = end;
        }
}

/* The first forward-secure row or seal: the static-key rows before it must be sealed. */
static void leave_legacy(struct walk *w) {
        w->in_epochs = true;
        if (w->n_seals > 0 && w->seals[0].epoch < 0)
                check_seal(w, &w->seals[0]);
        else if (w->legacy_seen)
                found(w->f, w->prev.last_id, "rows up to %" PRIu64 " (static key): no seal at the switch to "
                      "forward-secure keys (deleted)", w->prev.last_id);
}

static void note_unchecked(sg_audit_chain *c, uint64_t e) {
        if (c->stats.unchecked_rows == 0 || e < c->stats.unchecked_first)
                c->stats.unchecked_first = e;
        if (c->stats.unchecked_rows == 0 || e > c->stats.unchecked_last)
                c->stats.unchecked_last = e;
        c->stats.unchecked_rows++;
}

/* Checks one stored row against the chain so far, then moves prev on to it (its stored mac:
 * an edited row breaks only its own link, so what follows is still checked). */
static void verify_row(struct walk *w, sqlite3_stmt *st) {
        sg_audit_chain *c = w->c;
        const crypto_auth_hmacsha256_state *keyed = NULL;
        uint64_t id = col_u64(st, C_ID), e = 0;
        int et = sqlite3_column_type(st, C_EPOCH);
        bool has_epoch = false, malformed = false;

        if (et == SQLITE_NULL) {
                if (w->in_epochs)
                        found(w->f, id, "row %" PRIu64 ": no epoch after forward-secure rows (written with the static "
                              "key: audit.fss removed, or inserted)", id);
                else
                        w->legacy_seen = true;
                keyed = c->sec->has_legacy ? &c->sec->legacy : NULL;
                if (!keyed)
                        c->stats.legacy_unchecked++;
        } else if (et != SQLITE_INTEGER || sqlite3_column_int64(st, C_EPOCH) < 0) {
                found(w->f, id, "row %" PRIu64 ": malformed epoch (edited)", id);
                malformed = true;
        } else {
                e = col_u64(st, C_EPOCH);
                has_epoch = true;
                c->stats.epoch_rows++;
                if (!w->in_epochs) {
                        leave_legacy(w);
                        if (e < w->start)
                                w->start = e;
                        cross(w, w->start, e);
                        w->cur = e;
                } else if (e < w->cur)
                        found(w->f, id, "row %" PRIu64 ": epoch %" PRIu64 " after epoch %" PRIu64 " (rows moved, or an "
                              "old key file put back)", id, e, w->cur);
                else if (e > w->cur) {
                        cross(w, w->cur, e);
                        w->cur = e;
                }
                keyed = epoch_keyed(c, e);
                if (!keyed)
                        note_unchecked(c, e);
        }

        if (id <= w->prev.last_id)
                found(w->f, id, "row %" PRIu64 ": out of sequence (expected row %" PRIu64 ")", id, w->prev.last_id + 1);
        else if (id > w->prev.last_id + 1) {
                /* The daemon chains the row after a gap it found at start to the row before the
                 * gap; a deletion made later leaves a row chained to one that is gone. */
                if (keyed && row_mac_ok(keyed, st, w->prev.last_mac, has_epoch ? &e : NULL))
                        found(w->f, id, "rows %" PRIu64 "..%" PRIu64 " missing (found gone when the daemon started: "
                              "deleted while it was down, or lost in a power failure)", w->prev.last_id + 1, id - 1);
                else
                        found(w->f, id, "rows %" PRIu64 "..%" PRIu64 " missing (deleted)", w->prev.last_id + 1, id - 1);
        } else if (!malformed && keyed && !row_mac_ok(keyed, st, w->prev.last_mac, has_epoch ? &e : NULL))
                found(w->f, id, "row %" PRIu64 ": MAC mismatch (edited or inserted)", id);
        w->prev.last_id = id;
        copy_mac(w->prev.last_mac, sqlite3_column_blob(st, C_MAC), sqlite3_column_bytes(st, C_MAC));
}

int sg_audit_chain_verify_upto(sg_audit_chain *c, const struct sg_audit_tail *expect, uint64_t *ret_bad_id,
                               char *detail, size_t detailsize) {
        struct findings f = { .detail = detail, .detailsize = detailsize };
        struct walk w = { .c = c, .f = &f };
        uint8_t mac_at_expect[SG_MAC_BYTES];
        bool seen_expect = false;
        uint64_t end = 0;
        struct anchor a;
        sqlite3_stmt *st;
        int rc, r;

        if (!c || !expect)
                return -EINVAL;
        if (detail && detailsize > 0)
                detail[0] = '\0';
        memset(&c->stats, 0, sizeof c->stats);
        c->stats.had_base = c->sec->base.set;
        c->stats.base_current = c->base_current;
        c->stats.base_epoch = c->sec->base.epoch;
        r = read_anchor(c, &a);
        if (r >= 0)
                r = load_seals(c, &w.seals, &w.n_seals);
        if (r < 0)
                return r;
        /* First the anchor: the whole walk starts from it. */
        if (a.present && !a.has_mac)
                found(&f, a.at.last_id,
                      "prune anchor (rows up to %" PRIu64 "): unauthenticated anchor (it has no MAC: written before "
                      "schema 2, or planted); it cannot show those rows were pruned rather than deleted; the next "
                      "prune replaces it", a.at.last_id);
        else if (a.present && !a.unchecked && !a.authentic)
                found(&f, a.at.last_id, "prune anchor (rows up to %" PRIu64 "): MAC mismatch (tampered)", a.at.last_id);
        else if (a.unchecked)
                c->stats.unchecked_seals++;
        w.prev = a.at;
        w.legacy_seen = a.present && !a.has_epoch;
        /* Without pruning every epoch from 0 on is sealed; after it, those whose rows are gone
         * went with them, and the seals start at the first one still there. */
        w.start = UINT64_MAX;
        if (!a.present)
                w.start = 0;
        for (size_t i = 0; a.present && i < w.n_seals && w.start == UINT64_MAX; i++)
                if (w.seals[i].epoch >= 0)
                        w.start = (uint64_t) w.seals[i].epoch;
        if (w.prev.last_id == expect->id) {
                memcpy(mac_at_expect, w.prev.last_mac, SG_MAC_BYTES);
                seen_expect = true;
        }

        st = c->st[ST_AUDIT_WALK];
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                verify_row(&w, st);
                if (w.prev.last_id == expect->id) {
                        memcpy(mac_at_expect, w.prev.last_mac, SG_MAC_BYTES);
                        seen_expect = true;
                }
        }
        stmt_done(st);
        if (rc != SQLITE_DONE) {
                free(w.seals);
                return sg_store_errno(rc);
        }

        /* The epochs after the last row: each sealed over the same tail, up to the newest seal
         * (and, for the daemon, up to the epoch it writes in). */
        if (w.n_seals > 0 && w.seals[w.n_seals - 1].epoch >= 0)
                end = (uint64_t) w.seals[w.n_seals - 1].epoch + 1;
        if (c->base_current && c->sec->base.epoch > end)
                end = c->sec->base.epoch;
        if (!w.in_epochs && end > 0) {
                leave_legacy(&w);
                if (w.start == UINT64_MAX || w.start > end)
                        w.start = end;
                cross(&w, w.start, end);
        } else if (w.in_epochs)
                cross(&w, w.cur, end);

        /* The chain alone cannot see its newest rows removed; the writer's tail (what it
         * appended since open, or the rows audit.head said existed) can. Rows after that
         * tail were committed since the caller took it. */
        if (w.prev.last_id < expect->id)
                found(&f, w.prev.last_id + 1, "rows %" PRIu64 "..%" PRIu64 " missing at the end (deleted)",
                      w.prev.last_id + 1, expect->id);
        else if (seen_expect && sodium_memcmp(mac_at_expect, expect->mac, SG_MAC_BYTES) != 0)
                found(&f, expect->id, "row %" PRIu64 ": MAC differs from the one this daemon wrote (replaced)",
                      expect->id);
        sodium_memzero(&w.prev, sizeof w.prev);
        sodium_memzero(mac_at_expect, sizeof mac_at_expect);
        free(w.seals);
        if (f.n == 0)
                return 0;
        findings_finish(&f);
        if (ret_bad_id)
                *ret_bad_id = f.first_id;
        return 1;
}

static void note_add(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void note_add(char *buf, size_t size, const char *fmt, ...) {
        size_t len = strnlen(buf, size);
        va_list ap;

        if (len + 3 >= size)
                return;
        if (len > 0) {
                memcpy(buf + len, "; ", 3);
                len += 2;
        }
        va_start(ap, fmt);
        (void) vsnprintf(buf + len, size - len, fmt, ap);
        va_end(ap);
}

int sg_audit_chain_verify_note(const sg_audit_chain *c, char *buf, size_t size) {
        const struct verify_stats *s = &c->stats;

        if (!buf || size == 0)
                return -EINVAL;
        buf[0] = '\0';
        if (s->unchecked_rows > 0 && s->had_base)
                note_add(buf, size, "MACs of %" PRIu64 " rows of epochs %" PRIu64 "..%" PRIu64 " not checked: this host "
                         "keeps only the key of epoch %" PRIu64 " (check them offline with audit verify --seed)",
                         s->unchecked_rows, s->unchecked_first, s->unchecked_last, s->base_epoch);
        else if (s->unchecked_rows > 0)
                note_add(buf, size, "MACs of %" PRIu64 " forward-secure rows (epochs %" PRIu64 "..%" PRIu64 ") not "
                         "checked: no key (give --seed)", s->unchecked_rows, s->unchecked_first, s->unchecked_last);
        if (s->unchecked_seals > 0)
                note_add(buf, size, "%" PRIu64 " seal or anchor MACs of earlier epochs not checked (only their place "
                         "in the chain)", s->unchecked_seals);
        if (s->legacy_unchecked > 0)
                note_add(buf, size, "MACs of %" PRIu64 " rows written with the static key not checked (audit.key not "
                         "given)", s->legacy_unchecked);
        return 0;
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

        /* Under the key rows are written with now: the current epoch's, once there is one. */
        if (c->sec->writer.set)
                compute_anchor_mac(&c->sec->writer.keyed, (uint64_t) last, mac, &c->sec->writer.epoch, anchor_mac);
        else if (c->sec->has_legacy)
                compute_anchor_mac(&c->sec->legacy, (uint64_t) last, mac, NULL, anchor_mac);
        else
                return -ENOKEY;
        st = c->st[ST_ANCHOR_PUT];
        (void) sqlite3_bind_int64(st, 1, last);
        (void) sqlite3_bind_blob(st, 2, mac, sizeof mac, SQLITE_STATIC);
        (void) sqlite3_bind_blob(st, 3, anchor_mac, sizeof anchor_mac, SQLITE_STATIC);
        if (c->sec->writer.set)
                (void) sqlite3_bind_int64(st, 4, (sqlite3_int64) c->sec->writer.epoch);
        else
                (void) sqlite3_bind_null(st, 4);
        r = step_done(st);
        if (r < 0)
                return r;
        /* Seals of epochs that ended before the anchor went with their rows. */
        (void) sqlite3_bind_int64(c->st[ST_SEAL_PRUNE], 1, last);
        r = step_done(c->st[ST_SEAL_PRUNE]);
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

/* ---- epochs ---- */

static int put_seal(sg_audit_chain *c, const crypto_auth_hmacsha256_state *keyed, int64_t epoch, uint64_t time_usec) {
        sqlite3_stmt *st = c->st[ST_SEAL_PUT];
        uint8_t mac[SG_MAC_BYTES];
        sqlite3_int64 t = to_i64(time_usec);

        compute_seal_mac(keyed, epoch, c->chain.last_id, c->chain.last_mac, (uint64_t) t, mac);
        (void) sqlite3_bind_int64(st, 1, epoch);
        (void) sqlite3_bind_int64(st, 2, (sqlite3_int64) c->chain.last_id);
        (void) sqlite3_bind_blob(st, 3, c->chain.last_mac, SG_MAC_BYTES, SQLITE_TRANSIENT);
        (void) sqlite3_bind_int64(st, 4, t);
        (void) sqlite3_bind_blob(st, 5, mac, sizeof mac, SQLITE_TRANSIENT);
        return step_done(st);
}

int sg_audit_chain_seal(sg_audit_chain *c, uint64_t time_usec) {
        if (!c)
                return -EINVAL;
        if (!c->sec->writer.set)
                return -ENOKEY;
        return put_seal(c, &c->sec->writer.keyed, (int64_t) c->sec->writer.epoch, time_usec);
}

int sg_audit_chain_seal_static(sg_audit_chain *c, uint64_t time_usec) {
        sqlite3_int64 any = -1;
        int r;

        if (!c)
                return -EINVAL;
        if (!c->sec->has_legacy)
                return -ENOKEY;
        r = step_int(c->st[ST_SEAL_MAX], &any);
        if (r < 0)
                return r;
        if (r == 1)
                return 0; /* sealed before (or epochs began without static-key rows) */
        return put_seal(c, &c->sec->legacy, -1, time_usec);
}

int sg_audit_chain_last_epoch(sg_audit_chain *c, int64_t *ret) {
        sqlite3_int64 row = -1, seal = -1;
        int r;

        if (!c || !ret)
                return -EINVAL;
        r = step_int(c->st[ST_AUDIT_LAST_EPOCH], &row);
        if (r >= 0)
                r = step_int(c->st[ST_SEAL_MAX], &seal);
        if (r < 0)
                return r;
        *ret = row > seal ? row : seal;
        return 0;
}
