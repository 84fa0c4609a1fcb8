/* SPDX-License-Identifier: MIT */
/*
 * secguardctl fleet verify | locks | audit (docs/fleet.md, secguardctl(8)). Everything read
 * from PostgreSQL is data from the network: numbers are parsed strictly, host ids checked, and
 * every string escaped before it reaches a terminal or a JSON line. Every statement is a fixed
 * text with $n parameters (PQexecParams), nothing is ever pasted into SQL.
 */
#include "fleet-db.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <sodium.h>

#include "audit-chain.h"
#include "audit-keys.h"
#include "cli.h"
#include "event_table.h"
#include "fleet-pg.h"
#include "fss.h"
#include "fleet-util.h"
#include "io.h"
#include "keyfile.h"
#include "schema.h"
#include "timefmt.h"
#include "validate.h"

#define STATEMENT_TIMEOUT "30s"
#define VERIFY_PAGE "5000"     /* rows per page of the MAC walk (keyset paging on id) */
#define MAX_GAPS_SHOWN 10000   /* per host; the count says when there are more */
#define MAX_PRUNED 100000
#define AUDIT_LIMIT_DEFAULT 100
#define AUDIT_LIMIT_MAX 100000
#define MAX_EPOCH (16ull << 20) /* as the daemon's seal limit: 480 years of 15-minute epochs */

static void err_escaped(const char *what, const char *msg) {
        char esc[1024];

        fprintf(stderr, "secguardctl: %s: %s\n", what, fleet_pg_msg(msg, esc, sizeof esc));
}

/* A parameterised statement; NULL (with the server's message on stderr) unless it succeeded. */
static PGresult *exec(PGconn *pg, const char *what, const char *sql, int n, const char *const *vals) {
        PGresult *res = PQexecParams(pg, sql, n, NULL, vals, NULL, NULL, 0);
        ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;

        if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
                return res;
        err_escaped(what, res ? PQresultErrorMessage(res) : PQerrorMessage(pg));
        PQclear(res);
        return NULL;
}

/* A bigint column: strictly decimal, else false (NULL is false too). */
static bool col_i64(const PGresult *res, int row, int col, int64_t *ret) {
        const char *s;
        char *end;
        long long v;

        if (PQgetisnull(res, row, col))
                return false;
        s = PQgetvalue(res, row, col);
        if (!*s || (*s != '-' && (*s < '0' || *s > '9')))
                return false;
        errno = 0;
        v = strtoll(s, &end, 10);
        if (errno || *end)
                return false;
        *ret = v;
        return true;
}

static const char *col_str(const PGresult *res, int row, int col) {
        return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

static int bad_value(const char *what) {
        fprintf(stderr, "secguardctl: PostgreSQL returned a malformed %s; stopping\n", what);
        return EXIT_FAILED;
}

/* Connects with [fleet] postgres and the password as secguard-fleetd reads it. */
static int connect_fleet(const struct sg_config *cfg, const char *config_path, PGconn **ret) {
        char *pw = sodium_malloc(FLEET_PASSWORD_MAX + 1), err[1024];
        PGconn *pg;
        int r;

        if (!pw)
                return EXIT_FAILED;
        if (!cfg->fleet_postgres[0]) {
                fprintf(stderr, "secguardctl: [fleet] postgres is empty in ");
                cli_fputs_escaped(stderr, config_path);
                fprintf(stderr, " (give --config with the fleet database's connection)\n");
                sodium_free(pw);
                return EXIT_FAILED;
        }
        r = fleet_read_password(cfg->fleet_password_file, pw, FLEET_PASSWORD_MAX + 1, err, sizeof err);
        if (r < 0) {
                fprintf(stderr, "secguardctl: PostgreSQL password: ");
                cli_fputs_escaped(stderr, err);
                fprintf(stderr, "\n");
                sodium_free(pw);
                return EXIT_FAILED;
        }
        pg = fleet_pg_open(cfg->fleet_postgres, r > 0 ? pw : NULL, "secguardctl");
        sodium_free(pw); /* wipes it: libpq keeps its own copy for this connection only */
        if (!pg || PQstatus(pg) != CONNECTION_OK) {
                err_escaped("cannot connect to the fleet database", pg ? PQerrorMessage(pg) : "out of memory");
                PQfinish(pg);
                return EXIT_UNREACHABLE;
        }
        /* One snapshot for every statement of the command (verify's counts, holes and rows
         * agree while helpers keep shipping), and nothing it runs can write. */
        static const char *const setup[] = {
                "SET statement_timeout = '" STATEMENT_TIMEOUT "'",
                "START TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY",
        };
        for (size_t i = 0; i < sizeof setup / sizeof setup[0]; i++) {
                PGresult *res = exec(pg, "setting up the session", setup[i], 0, NULL);

                if (!res) {
                        PQfinish(pg);
                        return EXIT_FAILED;
                }
                PQclear(res);
        }
        *ret = pg;
        return EXIT_OK;
}

static void print_cell(const char *s, int width) {
        char buf[4 * 256 + 8];

        sg_escape(s ? s : "", s ? strlen(s) : 0, buf, sizeof buf);
        printf("%-*s ", width, *buf ? buf : "-");
}

/* ---- fleet locks ---- */

static int fleet_locks(PGconn *pg, bool json) {
        char top[24], now[24];
        const char *v[2] = { top, now };
        PGresult *res;
        int i, n, rc = EXIT_OK;

        snprintf(top, sizeof top, "%" PRId64, INT64_MAX);
        snprintf(now, sizeof now, "%" PRIu64, sg_now_real_usec());
        res = exec(pg, "reading the decisions in force", fleet_sql_locks_in_force, 2, v);
        if (!res)
                return EXIT_FAILED;
        if (PQnfields(res) != 7) {
                PQclear(res);
                return bad_value("result");
        }
        n = PQntuples(res);
        if (!json)
                printf("%-9s %-7s %-40s %-20s %-32s %s\n", "DECISION", "KIND", "KEY", "UNTIL (UTC)", "ORIGIN HOST",
                       "REASON");
        for (i = 0; i < n; i++) {
                int64_t id, until;
                char when[40];

                if (!col_i64(res, i, 0, &id) || !col_i64(res, i, 4, &until) || id <= 0 || until <= 0) {
                        rc = bad_value("decision");
                        break;
                }
                sg_format_time((uint64_t) until, when, sizeof when);
                if (json) {
                        bool first = true;

                        printf("{");
                        cli_json_u64("decision", (uint64_t) id, &first);
                        cli_json_str("kind", col_str(res, i, 2) ?: "", &first);
                        cli_json_str("key", col_str(res, i, 3) ?: "", &first);
                        cli_json_str("until", when, &first);
                        cli_json_u64("until_usec", (uint64_t) until, &first);
                        cli_json_str("origin_host", col_str(res, i, 5) ?: "", &first);
                        cli_json_str("reason", col_str(res, i, 6) ?: "", &first);
                        printf("}\n");
                } else {
                        printf("%-9" PRId64 " ", id);
                        print_cell(col_str(res, i, 2), 7);
                        print_cell(col_str(res, i, 3), 40);
                        printf("%-20s ", when);
                        print_cell(col_str(res, i, 5), 32);
                        print_cell(col_str(res, i, 6), 0);
                        printf("\n");
                }
        }
        if (!json && n == 0)
                printf("(no fleet locks in force)\n");
        PQclear(res);
        return rc;
}

/* ---- fleet audit ---- */

struct audit_args {
        const char *host, *user, *rhost, *event;
        uint64_t since, until, limit;
};

static int parse_fleet_audit(int argc, char **argv, struct audit_args *a, bool *json) {
        static const struct option options[] = {
                { "user", required_argument, NULL, 'u' },  { "event", required_argument, NULL, 'e' },
                { "rhost", required_argument, NULL, 'r' }, { "since", required_argument, NULL, 's' },
                { "until", required_argument, NULL, 'U' }, { "limit", required_argument, NULL, 'n' },
                { "host", required_argument, NULL, 'H' },  { "json", no_argument, NULL, 'j' },
                {}
        };
        uint64_t now = sg_now_real_usec(), t;
        char *end;
        int o;

        a->limit = AUDIT_LIMIT_DEFAULT;
        optind = 0;
        opterr = 1;
        while ((o = getopt_long(argc, argv, "+", options, NULL)) >= 0) {
                switch (o) {
                case 'u': a->user = optarg; break;
                case 'r': a->rhost = optarg; break;
                case 'H': a->host = optarg; break;
                case 'j': *json = true; break;
                case 'e':
                        /* fleet_lock / fleet_unlock are events like the others */
                        if (!sg_event_kind_find(optarg)) {
                                fprintf(stderr, "secguardctl: unknown event \"");
                                cli_fputs_escaped(stderr, optarg);
                                fprintf(stderr, "\" (secguardctl(8) lists them)\n");
                                return EXIT_USAGE;
                        }
                        a->event = optarg;
                        break;
                case 's':
                case 'U':
                        if (cli_time_arg(optarg, now, &t) < 0)
                                return EXIT_USAGE;
                        *(o == 's' ? &a->since : &a->until) = t;
                        break;
                case 'n':
                        errno = 0;
                        a->limit = strtoull(optarg, &end, 10);
                        if (errno || *end || end == optarg || a->limit == 0 || a->limit > AUDIT_LIMIT_MAX ||
                            optarg[0] == '-') {
                                fprintf(stderr, "secguardctl: --limit must be 1..100000\n");
                                return EXIT_USAGE;
                        }
                        break;
                default:
                        return EXIT_USAGE;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "secguardctl: unexpected argument to fleet audit\n");
                return EXIT_USAGE;
        }
        if (a->host && !fleet_host_id_valid(a->host)) {
                fprintf(stderr, "secguardctl: --host takes a host id, 32 lowercase hex digits\n");
                return EXIT_USAGE;
        }
        if (a->since && a->until && a->since > a->until) {
                fprintf(stderr, "secguardctl: --since is later than --until\n");
                return EXIT_USAGE;
        }
        return EXIT_OK;
}

static void audit_text(bool json, const char *name, const char *v, bool *first) {
        if (!v)
                return;
        if (json) {
                cli_json_str(name, v, first);
        } else {
                printf(" %s=", name);
                cli_print_escaped(v);
        }
}

static int fleet_audit(PGconn *pg, const struct audit_args *a, bool json) {
        /* time_usec <= $6: until is inclusive, as for `secguardctl audit`. */
        static const char sql[] =
                "SELECT host_id, id, time_usec, event, reason, username, user_sealed IS NOT NULL, service, rhost,"
                " tty, pid, uid, session_id, detail FROM secguard.audit"
                " WHERE ($1::text IS NULL OR host_id = $1) AND ($2::text IS NULL OR username = $2)"
                " AND ($3::text IS NULL OR event = $3) AND ($4::text IS NULL OR rhost = $4)"
                " AND time_usec >= $5::bigint AND time_usec <= $6::bigint"
                " ORDER BY time_usec DESC, host_id, id DESC LIMIT $7::bigint";
        static const char *const names[] = { NULL, NULL, NULL, "event", "reason", "user", NULL, "service",
                                             "rhost", "tty", NULL, NULL, "session", "detail" };
        char since[24], until[24], limit[24];
        const char *v[7] = { a->host, a->user, a->event, a->rhost, since, until, limit };
        PGresult *res;
        int i, n, rc = EXIT_OK;

        snprintf(since, sizeof since, "%" PRIu64, a->since);
        snprintf(until, sizeof until, "%" PRId64, a->until ? (int64_t) a->until : INT64_MAX);
        snprintf(limit, sizeof limit, "%" PRIu64, a->limit);
        res = exec(pg, "reading the central audit", sql, 7, v);
        if (!res)
                return EXIT_FAILED;
        if (PQnfields(res) != 14) {
                PQclear(res);
                return bad_value("result");
        }
        n = PQntuples(res);
        for (i = 0; i < n; i++) {
                const char *host = col_str(res, i, 0);
                int64_t id, t, pid = -1, uid = -1;
                bool first = true, sealed = strcmp(PQgetvalue(res, i, 6), "t") == 0;
                char when[40];

                if (!host || !fleet_host_id_valid(host) || !col_i64(res, i, 1, &id) || !col_i64(res, i, 2, &t) ||
                    t < 0 || (!PQgetisnull(res, i, 10) && !col_i64(res, i, 10, &pid)) ||
                    (!PQgetisnull(res, i, 11) && !col_i64(res, i, 11, &uid))) {
                        rc = bad_value("audit row");
                        break;
                }
                sg_format_time((uint64_t) t, when, sizeof when);
                if (json) {
                        printf("{");
                        cli_json_str("host", host, &first);
                        cli_json_u64("id", (uint64_t) id, &first);
                        cli_json_str("time", when, &first);
                } else {
                        printf("%s %s %8" PRId64 " ", when, host, id);
                        print_cell(col_str(res, i, 3), 16);
                }
                for (int c = json ? 3 : 4; c < 14; c++) {
                        if (c == 6) {
                                if (sealed)
                                        audit_text(json, "user", "<sealed>", &first);
                                continue;
                        }
                        if (names[c])
                                audit_text(json, names[c], col_str(res, i, c), &first);
                }
                if (json) {
                        if (pid >= 0)
                                cli_json_u64("pid", (uint64_t) pid, &first);
                        if (uid >= 0)
                                cli_json_u64("uid", (uint64_t) uid, &first);
                        printf("}\n");
                } else {
                        if (pid >= 0)
                                printf(" pid=%" PRId64, pid);
                        if (uid >= 0)
                                printf(" uid=%" PRId64, uid);
                        printf("\n");
                }
        }
        PQclear(res);
        return rc;
}

/* ---- fleet verify ---- */

struct verify_args {
        const char *host, *key_file, *seed_file;
};

/* The keys a MAC walk has, in sodium_malloc'ed memory: the static audit.key, key(0) from the
 * seed, and the epoch key the walk has stepped to (key(e) and mac_key(e)). */
struct walk_keys {
        bool has_static, has_seed, cursor_set;
        uint8_t static_key[SG_AUDIT_KEY_BYTES];
        uint8_t key0[SG_FSS_KEY_BYTES];
        uint64_t cursor_epoch;
        uint8_t cursor[SG_FSS_KEY_BYTES], cursor_mac[SG_FSS_KEY_BYTES];
};

/* mac_key(e), stepping forward from the cursor (or from key(0) when e is behind it). */
static const uint8_t *epoch_mac_key(struct walk_keys *k, uint64_t e) {
        if (!k->cursor_set || e < k->cursor_epoch) {
                memcpy(k->cursor, k->key0, sizeof k->cursor);
                k->cursor_epoch = 0;
                k->cursor_set = true;
                sg_fss_mac_key(k->cursor, k->cursor_mac);
        }
        if (e == k->cursor_epoch)
                return k->cursor_mac;
        while (k->cursor_epoch < e) {
                sg_fss_step(k->cursor, k->cursor);
                k->cursor_epoch++;
        }
        sg_fss_mac_key(k->cursor, k->cursor_mac);
        return k->cursor_mac;
}

struct host_report {
        int64_t rows, min_id, max_id, shipped_id;
        size_t gaps, pruned;                   /* pieces */
        int64_t gap_ids, pruned_ids;           /* ids in them */
        bool mac_checked;
        int64_t mac_ok, mac_bad, first_bad_id;
        int64_t skip_epoch, skip_escaped, skip_after_gap, skip_static;
        int64_t skip_epoch_first, skip_epoch_last;
};

static void range_json(const char *name, struct fleet_range r, bool *first_item) {
        printf("%s{\"kind\":\"%s\",\"first\":%" PRId64 ",\"last\":%" PRId64 "}", *first_item ? "" : ",", name,
               r.first, r.last);
        *first_item = false;
}

/* Missing ids of host: holes between rows (and before the first), and a tail the host says it
 * shipped that is no longer there (hosts.last_shipped_id past max(id)). Each split into
 * reported-pruned and true pieces. */
static int verify_gaps(PGconn *pg, const char *host, bool json, struct host_report *h) {
        static const char q_stats[] =
                "SELECT count(a.id), coalesce(min(a.id), 0), coalesce(max(a.id), 0), h.last_shipped_id"
                " FROM secguard.hosts h LEFT JOIN secguard.audit a ON a.host_id = h.host_id"
                " WHERE h.host_id = $1 GROUP BY h.last_shipped_id";
        static const char q_holes[] =
                "SELECT prev + 1, id - 1 FROM (SELECT id, lag(id, 1, 0::bigint) OVER (ORDER BY id) AS prev"
                " FROM secguard.audit WHERE host_id = $1) s WHERE id > prev + 1 ORDER BY id LIMIT " "10001";
        static const char q_pruned[] =
                "SELECT first_id, last_id FROM secguard.pruned WHERE host_id = $1 ORDER BY first_id LIMIT " "100000";
        const char *v[1] = { host };
        struct fleet_range *pruned = NULL, holes_tail;
        PGresult *stats = NULL, *holes = NULL, *pr = NULL;
        size_t npruned = 0;
        bool first_item = true;
        int rc = EXIT_FAILED, nholes, i;

        stats = exec(pg, "counting a host's rows", q_stats, 1, v);
        holes = stats ? exec(pg, "looking for missing ids", q_holes, 1, v) : NULL;
        pr = holes ? exec(pg, "reading the pruned ranges", q_pruned, 1, v) : NULL;
        if (!pr)
                goto out;
        if (PQntuples(stats) != 1 || !col_i64(stats, 0, 0, &h->rows) || !col_i64(stats, 0, 1, &h->min_id) ||
            !col_i64(stats, 0, 2, &h->max_id) || !col_i64(stats, 0, 3, &h->shipped_id)) {
                rc = bad_value("row count");
                goto out;
        }
        npruned = (size_t) PQntuples(pr);
        pruned = calloc(npruned ? npruned : 1, sizeof *pruned);
        if (!pruned)
                goto out;
        for (i = 0; i < (int) npruned; i++)
                if (!col_i64(pr, i, 0, &pruned[i].first) || !col_i64(pr, i, 1, &pruned[i].last)) {
                        rc = bad_value("pruned range");
                        goto out;
                }
        if (json)
                printf(",\"missing\":[");
        nholes = PQntuples(holes);
        /* The holes, then the tail: one more iteration with the tail range when there is one. */
        holes_tail = (struct fleet_range) { h->max_id + 1, h->shipped_id };
        for (i = 0; i <= nholes; i++) {
                struct fleet_range gap, out[64];
                bool is_pruned[64];
                size_t k, pieces;

                if (i == nholes) {
                        if (holes_tail.first > holes_tail.last)
                                break;
                        gap = holes_tail;
                } else if (!col_i64(holes, i, 0, &gap.first) || !col_i64(holes, i, 1, &gap.last) ||
                           gap.first > gap.last) {
                        rc = bad_value("id range");
                        goto out;
                }
                pieces = fleet_gap_split(gap, pruned, npruned, out, is_pruned, 64);
                for (k = 0; k < pieces && k < 64; k++) {
                        int64_t ids = out[k].last - out[k].first + 1;

                        if (is_pruned[k]) {
                                h->pruned++;
                                h->pruned_ids += ids;
                        } else {
                                h->gaps++;
                                h->gap_ids += ids;
                        }
                        if (h->gaps + h->pruned > MAX_GAPS_SHOWN)
                                continue;
                        if (json)
                                range_json(is_pruned[k] ? "pruned" : "gap", out[k], &first_item);
                        else if (is_pruned[k])
                                printf("  pruned  ids %" PRId64 "..%" PRId64 " (%" PRId64 "): pruned locally before "
                                       "shipping, as the host reported\n", out[k].first, out[k].last, ids);
                        else
                                printf("  GAP     ids %" PRId64 "..%" PRId64 " (%" PRId64 "): missing from the central "
                                       "audit\n", out[k].first, out[k].last, ids);
                }
                if (pieces > 64) /* a hole cut into that many reported ranges is not a host's doing */
                        h->gaps++;
        }
        if (json)
                printf("]");
        else if (nholes > 10000 || h->gaps + h->pruned > MAX_GAPS_SHOWN)
                printf("  (more missing ranges than shown)\n");
        if (nholes > 10000)
                h->gaps++; /* the rest were not even read: count at least one more */
        rc = EXIT_OK;
out:
        PQclear(stats);
        PQclear(holes);
        PQclear(pr);
        free(pruned);
        return rc;
}

static bool hex_field(const char *hex, uint8_t *out, size_t outsize, size_t *ret_len) {
        return sodium_hex2bin(out, outsize, hex, strlen(hex), NULL, ret_len, NULL) == 0;
}

/* Recomputes every row's MAC over the previous row's stored MAC, exactly as secguardd wrote it
 * (sg_audit_row_mac): static-key rows with audit.key, forward-secure rows with mac_key(e)
 * stepped from the seed. Rows it cannot check are counted, never passed: a key not given,
 * escaped text (the original bytes are only on the host), a row right after missing ids (its
 * predecessor's MAC is gone). */
static int verify_macs(PGconn *pg, const char *host, struct walk_keys *keys, struct host_report *h) {
        static const char q_page[] =
                "SELECT id, time_usec, event, reason, username, encode(user_sealed, 'hex'), service, rhost, tty,"
                " pid, uid, session_id, detail, epoch, encode(mac, 'hex'), escaped FROM secguard.audit"
                " WHERE host_id = $1 AND id > $2::bigint ORDER BY id LIMIT " VERIFY_PAGE;
        uint8_t prev[SG_MAC_BYTES] = { 0 }, *sealed = malloc(65536);
        int64_t prev_id = 0, after = 0;
        int rc = EXIT_OK;

        if (!sealed)
                return EXIT_FAILED;
        h->mac_checked = true;
        for (;;) {
                char afterbuf[24];
                const char *v[2] = { host, afterbuf };
                PGresult *res;
                int i, n;

                snprintf(afterbuf, sizeof afterbuf, "%" PRId64, after);
                res = exec(pg, "reading audit rows", q_page, 2, v);
                if (!res) {
                        rc = EXIT_FAILED;
                        break;
                }
                n = PQntuples(res);
                for (i = 0; i < n; i++) {
                        int64_t id, t, pid = -1, uid = -1, epoch;
                        uint8_t stored[SG_MAC_BYTES], mac[SG_MAC_BYTES];
                        size_t maclen = 0, sealed_len = 0;
                        const char *sealed_hex = col_str(res, i, 5), *mac_hex = col_str(res, i, 14);

                        if (!col_i64(res, i, 0, &id) || id <= after || !col_i64(res, i, 1, &t) || !mac_hex ||
                            (!PQgetisnull(res, i, 9) && !col_i64(res, i, 9, &pid)) ||
                            (!PQgetisnull(res, i, 10) && !col_i64(res, i, 10, &uid)) ||
                            (sealed_hex && !hex_field(sealed_hex, sealed, 65536, &sealed_len))) {
                                rc = bad_value("audit row");
                                break;
                        }
                        after = id;
                        /* A wrong-length MAC cannot match; hash it as a mismatch below. */
                        if (!hex_field(mac_hex, stored, sizeof stored, &maclen) || maclen != SG_MAC_BYTES)
                                memset(stored, 0, sizeof stored), maclen = 0;
                        bool has_epoch = col_i64(res, i, 13, &epoch);
                        uint64_t e = has_epoch ? (uint64_t) epoch : 0;

                        if (id != prev_id + 1) {
                                h->skip_after_gap++;
                        } else if (has_epoch && !keys->has_seed) {
                                if (h->skip_epoch++ == 0)
                                        h->skip_epoch_first = id;
                                h->skip_epoch_last = id;
                        } else if (!has_epoch && !PQgetisnull(res, i, 13)) {
                                rc = bad_value("epoch");
                                break;
                        } else if (!has_epoch && !keys->has_static) {
                                h->skip_static++;
                        } else if (strcmp(PQgetvalue(res, i, 15), "t") == 0) {
                                h->skip_escaped++;
                        } else if (has_epoch && (epoch < 0 || e > MAX_EPOCH)) {
                                /* not an epoch the daemon could have reached: not its MAC */
                                if (h->mac_bad++ == 0)
                                        h->first_bad_id = id;
                        } else {
                                struct sg_audit_event ev = {
                                        .time_usec = (uint64_t) t, .event = col_str(res, i, 2),
                                        .reason = col_str(res, i, 3), .user = col_str(res, i, 4),
                                        .user_sealed = sealed_hex ? sealed : NULL, .user_sealed_len = sealed_len,
                                        .service = col_str(res, i, 6), .rhost = col_str(res, i, 7),
                                        .tty = col_str(res, i, 8), .pid = pid, .uid = uid,
                                        .session_id = col_str(res, i, 11), .detail = col_str(res, i, 12),
                                };

                                if (has_epoch)
                                        sg_audit_row_mac(epoch_mac_key(keys, e), &e, prev, (uint64_t) id, &ev, mac);
                                else
                                        sg_audit_row_mac(keys->static_key, NULL, prev, (uint64_t) id, &ev, mac);
                                if (maclen == SG_MAC_BYTES && sodium_memcmp(mac, stored, SG_MAC_BYTES) == 0) {
                                        h->mac_ok++;
                                } else if (h->mac_bad++ == 0) {
                                        h->first_bad_id = id;
                                }
                        }
                        /* The next row chains to what is stored, checked or not. */
                        memcpy(prev, stored, sizeof prev);
                        prev_id = id;
                }
                PQclear(res);
                if (rc != EXIT_OK || n < atoi(VERIFY_PAGE))
                        break;
        }
        sodium_memzero(sealed, 65536);
        free(sealed);
        return rc;
}

static void print_mac_report(const struct host_report *h, bool json) {
        if (json) {
                printf(",\"mac_checked\":%" PRId64 ",\"mac_bad\":%" PRId64, h->mac_ok + h->mac_bad, h->mac_bad);
                if (h->mac_bad)
                        printf(",\"first_bad_id\":%" PRId64, h->first_bad_id);
                printf(",\"not_checked\":{\"epoch\":%" PRId64 ",\"static_key\":%" PRId64 ",\"escaped\":%" PRId64
                       ",\"after_gap\":%" PRId64 "}", h->skip_epoch, h->skip_static, h->skip_escaped, h->skip_after_gap);
                return;
        }
        printf("  MACs: %" PRId64 " rows checked with the key, %" PRId64 " bad\n", h->mac_ok + h->mac_bad, h->mac_bad);
        if (h->mac_bad)
                printf("  BAD MAC: row %" PRId64 " is not the row the host wrote (first of %" PRId64 ")\n",
                       h->first_bad_id, h->mac_bad);
        if (h->skip_epoch)
                printf("  not checked: %" PRId64 " rows (ids %" PRId64 "..%" PRId64 ") MACed under forward-secure "
                       "epochs; they need the seed (--seed-file)\n",
                       h->skip_epoch, h->skip_epoch_first, h->skip_epoch_last);
        if (h->skip_static)
                printf("  not checked: %" PRId64 " rows MACed with the static audit.key (--key-file)\n",
                       h->skip_static);
        if (h->skip_escaped)
                printf("  not checked: %" PRId64 " rows stored escaped (not UTF-8): only the host has their bytes\n",
                       h->skip_escaped);
        if (h->skip_after_gap)
                printf("  not checked: %" PRId64 " rows right after missing ids (the MAC they chain to is gone)\n",
                       h->skip_after_gap);
}

static int parse_fleet_verify(int argc, char **argv, struct verify_args *a, bool *json) {
        static const struct option options[] = {
                { "host", required_argument, NULL, 'H' },
                { "key-file", required_argument, NULL, 'k' },
                { "seed-file", required_argument, NULL, 'S' },
                { "json", no_argument, NULL, 'j' },
                {}
        };
        int o;

        optind = 0;
        opterr = 1;
        while ((o = getopt_long(argc, argv, "+", options, NULL)) >= 0) {
                switch (o) {
                case 'H': a->host = optarg; break;
                case 'k': a->key_file = optarg; break;
                case 'S': a->seed_file = optarg; break;
                case 'j': *json = true; break;
                default: return EXIT_USAGE;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "secguardctl: unexpected argument to fleet verify\n");
                return EXIT_USAGE;
        }
        if (a->host && !fleet_host_id_valid(a->host)) {
                fprintf(stderr, "secguardctl: --host takes a host id, 32 lowercase hex digits\n");
                return EXIT_USAGE;
        }
        if ((a->key_file || a->seed_file) && !a->host) {
                fprintf(stderr, "secguardctl: --key-file and --seed-file are one host's keys: give that host with --host\n");
                return EXIT_USAGE;
        }
        return EXIT_OK;
}

static int fleet_verify(PGconn *pg, const struct verify_args *a, struct walk_keys *keys, bool json) {
        const char *v[1] = { a->host };
        PGresult *hosts;
        int i, n, rc = EXIT_OK, bad_hosts = 0;

        hosts = exec(pg, "reading the hosts",
                     "SELECT host_id FROM secguard.hosts WHERE ($1::text IS NULL OR host_id = $1) ORDER BY host_id", 1,
                     v);
        if (!hosts)
                return EXIT_FAILED;
        n = PQntuples(hosts);
        if (n == 0 && a->host) {
                fprintf(stderr, "secguardctl: host %s is not in secguard.hosts\n", a->host);
                PQclear(hosts);
                return EXIT_FAILED;
        }
        for (i = 0; i < n && rc == EXIT_OK; i++) {
                const char *host = PQgetvalue(hosts, i, 0);
                struct host_report h = { 0 };

                if (!fleet_host_id_valid(host)) {
                        rc = bad_value("host id");
                        break;
                }
                if (json)
                        printf("{\"host\":\"%s\"", host);
                else
                        printf("host %s\n", host);
                rc = verify_gaps(pg, host, json, &h);
                if (rc == EXIT_OK && keys)
                        rc = verify_macs(pg, host, keys, &h);
                if (rc != EXIT_OK) {
                        if (json)
                                printf("}\n");
                        break;
                }
                bool ok = h.gaps == 0 && h.mac_bad == 0;
                if (!ok)
                        bad_hosts++;
                if (json) {
                        printf(",\"rows\":%" PRId64 ",\"first_id\":%" PRId64 ",\"last_id\":%" PRId64
                               ",\"gaps\":%zu,\"gap_ids\":%" PRId64 ",\"pruned_ids\":%" PRId64,
                               h.rows, h.min_id, h.max_id, h.gaps, h.gap_ids, h.pruned_ids);
                        if (h.mac_checked)
                                print_mac_report(&h, true);
                        printf(",\"ok\":%s}\n", ok ? "true" : "false");
                } else {
                        printf("  %" PRId64 " rows, ids %" PRId64 "..%" PRId64 "; %zu gap(s) (%" PRId64 " ids), %" PRId64
                               " ids pruned before shipping\n", h.rows, h.min_id, h.max_id, h.gaps, h.gap_ids,
                               h.pruned_ids);
                        if (h.mac_checked)
                                print_mac_report(&h, false);
                        else
                                printf("  not checked: MACs (give --host with that host's --key-file and --seed-file)\n");
                        printf("  %s\n", ok ? "ok" : "BROKEN");
                }
        }
        PQclear(hosts);
        if (rc == EXIT_OK && bad_hosts > 0) {
                if (!json)
                        printf("%d host(s) with missing ids or bad MACs\n", bad_hosts);
                rc = EXIT_FAILED;
        }
        return rc;
}

/* ---- dispatch ---- */

bool ctl_fleet_db_command(const char *sub) {
        return sub && (strcmp(sub, "verify") == 0 || strcmp(sub, "locks") == 0 || strcmp(sub, "audit") == 0);
}

int ctl_fleet_db(int argc, char **argv, bool json, const struct sg_config *cfg, const char *config_path) {
        struct audit_args aa = { 0 };
        struct verify_args va = { 0 };
        struct walk_keys *keys = NULL;
        const char *sub = argv[1];
        PGconn *pg = NULL;
        int rc;

        if (strcmp(sub, "locks") == 0) {
                rc = argc == 2 ? EXIT_OK : EXIT_USAGE;
                if (argc == 3 && strcmp(argv[2], "--json") == 0)
                        json = true, rc = EXIT_OK;
        } else if (strcmp(sub, "audit") == 0) {
                rc = parse_fleet_audit(argc - 1, argv + 1, &aa, &json);
        } else {
                rc = parse_fleet_verify(argc - 1, argv + 1, &va, &json);
        }
        if (rc != EXIT_OK) {
                fprintf(stderr, "secguardctl: usage: fleet locks [--json] | fleet audit [--host ID] [--user U] "
                                "[--rhost A] [--event E] [--since T] [--until T] [--limit N] [--json] | "
                                "fleet verify [--host ID [--key-file FILE] [--seed-file FILE]] [--json]\n");
                return rc;
        }
        if (va.key_file || va.seed_file) {
                char err[1024] = "out of memory";
                int r = 0;

                keys = sodium_malloc(sizeof *keys);
                if (!keys)
                        return EXIT_FAILED;
                memset(keys, 0, sizeof *keys);
                /* The daemon's own checks: regular file, ours or root's, mode 0600 at most. */
                if (va.key_file) {
                        r = sg_key_read(va.key_file, keys->static_key, SG_AUDIT_KEY_BYTES, err, sizeof err);
                        keys->has_static = r >= 0;
                }
                if (r >= 0 && va.seed_file) {
                        uint8_t *seed = sodium_malloc(SG_FSS_SEED_BYTES);

                        r = seed ? audit_seed_read(NULL, va.seed_file, seed, err, sizeof err) : -ENOMEM;
                        if (r >= 0) {
                                sg_fss_key0(seed, keys->key0);
                                keys->has_seed = true;
                        }
                        if (seed)
                                sodium_free(seed);
                }
                if (r < 0) {
                        fprintf(stderr, "secguardctl: ");
                        cli_fputs_escaped(stderr, err);
                        fprintf(stderr, "\n");
                        sodium_free(keys);
                        return r == -EPERM ? EXIT_PERMISSION : EXIT_FAILED;
                }
        }
        rc = connect_fleet(cfg, config_path, &pg);
        if (rc == EXIT_OK) {
                if (strcmp(sub, "locks") == 0)
                        rc = fleet_locks(pg, json);
                else if (strcmp(sub, "audit") == 0)
                        rc = fleet_audit(pg, &aa, json);
                else
                        rc = fleet_verify(pg, &va, keys, json);
                PQfinish(pg);
        }
        if (keys)
                sodium_free(keys);
        return rc;
}
