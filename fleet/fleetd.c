/* SPDX-License-Identifier: MIT */
/*
 * secguard-fleetd: ships this host's audit rows to PostgreSQL, publishes its source/spray
 * lockouts as fleet decisions, counts failures fleet-wide, and applies the other hosts'
 * decisions to the local daemon (docs/fleet.md).
 *
 * One thread, one loop. The daemon never waits for us: we are one more client of its socket
 * and every exchange with it is bounded. PostgreSQL is the source of truth for what has been
 * shipped: at every (re)connection we resume after SELECT max(id) of our host, and a batch is
 * one transaction, so a crash or an outage loses or duplicates nothing. Every statement with
 * data in it is parameterised; every PostgreSQL wait is bounded (async libpq + poll).
 */
#include "config.h"
#include "fleet-pg.h"
#include "fleet-util.h"
#include "io.h"
#include "protocol.h"
#include "schema.h"
#include "validate.h"
#include "cidr.h"
#include "fileio.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sodium.h>

#define DEFAULT_STATE_DIR "/var/lib/secguard-fleet"
#define PG_QUERY_TIMEOUT_MS 15000
#define PG_BACKOFF_MIN_MS 250
#define PG_BACKOFF_MAX_MS 30000
#define EXPORT_MAX 1000 /* the daemon's cap per FLEET_EXPORT */
#define DECISIONS_PER_FETCH 500
#define MIGRATION_LOCK 0x73656367666c7431LL /* "secgflt1": the advisory lock of migrations */
#define NOTIFY_CHANNEL "secguard_decisions"
/* A configuration the helper cannot run with (EX_CONFIG): the unit does not restart it
 * (RestartPreventExitStatus=78), since the next start would fail the same way. */
#define EXIT_CONFIG 78

/* ---- logging: stderr, with <N> priority prefixes when stderr is the journal ---- */

static bool log_journal;
static bool log_debug;

__attribute__((format(printf, 2, 3)))
static void logp(int prio, const char *fmt, ...) {
        char buf[2048];
        va_list ap;

        if (prio == LOG_DEBUG && !log_debug)
                return;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);
        if (log_journal)
                fprintf(stderr, "<%d>%s\n", prio, buf);
        else
                fprintf(stderr, "secguard-fleetd: %s\n", buf);
}

/* ---- state ---- */

struct row {
        uint64_t id, time_usec, pid, uid, epoch;
        bool has_pid, has_uid, has_epoch, escaped;
        char *event, *reason, *user, *service, *rhost, *tty, *session_id, *detail;
        uint8_t *sealed;
        size_t sealed_len;
        uint8_t mac[64];
        size_t mac_len;
        /* Filled by row_prepare: the numbers as statement parameters, the source key. */
        char num[5][24];
        char src[FLEET_KEY_MAX + 1];
        bool have_src;
};

struct fleetd {
        struct sg_config cfg;
        const char *config_path;
        char state_dir[PATH_MAX];
        char host_id[FLEET_HOST_ID_LEN + 1];
        char password[FLEET_PASSWORD_MAX + 1];
        bool have_password;
        bool migrate_only;

        PGconn *pg;
        uint64_t pg_next_try;   /* monotonic usec */
        uint64_t pg_backoff_ms;
        bool pg_was_down_logged;

        int64_t shipped_id;     /* valid while pg is connected */
        bool applied_known;
        int64_t applied_id;

        uint64_t daemon_max_id;
        uint64_t oldest_unshipped_usec; /* 0 when caught up (or unknown) */
        bool daemon_down_logged;
        bool export_refused_logged;
        uint64_t gap_logged_after;      /* a local gap before this id was reported */

        uint64_t rows_shipped, decisions_published, decisions_applied, decisions_rejected;
        uint64_t last_ship_usec;
        char last_error[600];
};

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig) {
        (void) sig;
        stop_requested = 1;
}

static void set_error(struct fleetd *f, const char *msg) {
        snprintf(f->last_error, sizeof f->last_error, "%s", msg);
}

/* ---- the local daemon ---- */

static uint64_t daemon_deadline(const struct fleetd *f) {
        return sg_now_mono_usec() + (uint64_t) f->cfg.timeout_ms * 1000;
}

static int daemon_connect(struct fleetd *f) {
        int fd = sg_connect(f->cfg.socket, daemon_deadline(f), 0);

        if (fd < 0) {
                if (!f->daemon_down_logged)
                        logp(LOG_WARNING, "cannot reach secguardd at %s: %s (retrying)", f->cfg.socket,
                             strerror(-fd));
                f->daemon_down_logged = true;
                return fd;
        }
        if (f->daemon_down_logged)
                logp(LOG_NOTICE, "secguardd reachable again");
        f->daemon_down_logged = false;
        return fd;
}

static char *dup_str(const struct sg_msg *m, uint8_t tag, bool *escaped) {
        const char *s = sg_msg_str(m, tag);
        size_t len, cap;
        char *out;

        if (!s)
                return NULL;
        len = strlen(s);
        if (fleet_utf8_valid(s, len))
                return strdup(s);
        /* PostgreSQL text is UTF-8: a hostile user name that is not goes in escaped, flagged. */
        *escaped = true;
        cap = len * 4 + 4;
        out = malloc(cap);
        if (out)
                sg_escape(s, len, out, cap);
        return out;
}

static void row_free(struct row *r) {
        free(r->event);
        free(r->reason);
        free(r->user);
        free(r->service);
        free(r->rhost);
        free(r->tty);
        free(r->session_id);
        free(r->detail);
        free(r->sealed);
        memset(r, 0, sizeof *r);
}

static int row_from_msg(const struct sg_msg *m, struct row *r) {
        const uint8_t *b;
        size_t len;

        memset(r, 0, sizeof *r);
        if (!sg_msg_has(m, SG_F_ID) || !sg_msg_has(m, SG_F_TIME) || !sg_msg_str(m, SG_F_EVENT))
                return -EBADMSG;
        r->id = sg_msg_u64(m, SG_F_ID, 0);
        r->time_usec = sg_msg_u64(m, SG_F_TIME, 0);
        if (r->id == 0 || r->id > INT64_MAX || r->time_usec > INT64_MAX)
                return -EBADMSG;
        r->event = dup_str(m, SG_F_EVENT, &r->escaped);
        r->reason = dup_str(m, SG_F_REASON, &r->escaped);
        r->user = dup_str(m, SG_F_USER, &r->escaped);
        r->service = dup_str(m, SG_F_SERVICE, &r->escaped);
        r->rhost = dup_str(m, SG_F_RHOST, &r->escaped);
        r->tty = dup_str(m, SG_F_TTY, &r->escaped);
        r->session_id = dup_str(m, SG_F_SESSION_ID, &r->escaped);
        r->detail = dup_str(m, SG_F_DETAIL, &r->escaped);
        r->has_pid = sg_msg_has(m, SG_F_PID) && sg_msg_u64(m, SG_F_PID, 0) <= INT64_MAX;
        r->pid = sg_msg_u64(m, SG_F_PID, 0);
        r->has_uid = sg_msg_has(m, SG_F_UID) && sg_msg_u64(m, SG_F_UID, 0) <= INT64_MAX;
        r->uid = sg_msg_u64(m, SG_F_UID, 0);
        r->has_epoch = sg_msg_has(m, SG_F_EPOCH) && sg_msg_u64(m, SG_F_EPOCH, 0) <= INT64_MAX;
        r->epoch = sg_msg_u64(m, SG_F_EPOCH, 0);
        b = sg_msg_bytes(m, SG_F_MAC, &len);
        if (!b || len == 0 || len > sizeof r->mac)
                return -EBADMSG;
        memcpy(r->mac, b, len);
        r->mac_len = len;
        b = sg_msg_bytes(m, SG_F_SEALED, &len);
        if (b && len > 0) {
                r->sealed = malloc(len);
                if (!r->sealed)
                        return -ENOMEM;
                memcpy(r->sealed, b, len);
                r->sealed_len = len;
        }
        if (!r->event)
                return -ENOMEM;
        return 0;
}

/* One request to the daemon: its buffers and its connection. */
struct daemon_call {
        struct sg_msg *m;
        struct sg_writer *w;
        int fd;
};

static void call_close(struct daemon_call *c) {
        if (c->fd >= 0)
                close(c->fd);
        free(c->m);
        free(c->w);
        *c = (struct daemon_call) { .fd = -1 };
}

/* 0 with buffers and a connection, or -errno with nothing left to close. */
static int call_open(struct fleetd *f, struct daemon_call *c) {
        *c = (struct daemon_call) { .m = malloc(sizeof *c->m), .w = malloc(sizeof *c->w), .fd = -1 };
        if (!c->m || !c->w) {
                call_close(c);
                return -ENOMEM;
        }
        c->fd = daemon_connect(f);
        if (c->fd < 0) {
                int r = c->fd;

                call_close(c);
                return r;
        }
        return 0;
}

/* FLEET_EXPORT: up to limit rows with id > after into rows (*n of them), and the daemon's
 * highest audit id. 0 or -errno. */
static int daemon_export(struct fleetd *f, uint64_t after, uint32_t limit, struct row *rows, size_t *n,
                         uint64_t *ret_max_id) {
        struct daemon_call c;
        struct sg_msg *m;
        struct sg_writer *w;
        uint64_t deadline = daemon_deadline(f), prev = after;
        int fd, r;

        *n = 0;
        r = call_open(f, &c);
        if (r < 0)
                return r;
        m = c.m;
        w = c.w;
        fd = c.fd;
        sg_writer_init(w, SG_MSG_FLEET_EXPORT);
        sg_writer_u64(w, SG_F_ID, after);
        sg_writer_u64(w, SG_F_LIMIT, limit);
        r = sg_call(fd, w, m, deadline);
        while (r == 0 && m->type == SG_MSG_ROW) {
                if (*n >= limit) {
                        r = -EBADMSG;
                        break;
                }
                r = row_from_msg(m, &rows[*n]);
                if (r < 0) {
                        row_free(&rows[*n]);
                        break;
                }
                if (rows[*n].id <= prev) { /* ids must rise strictly: never trust blindly */
                        row_free(&rows[*n]);
                        r = -EBADMSG;
                        break;
                }
                prev = rows[(*n)++].id;
                r = sg_read_msg(fd, m, deadline, NULL);
        }
        if (r == 0 && m->type == SG_MSG_ERROR) {
                /* Once until it changes: the next poll would say the same. */
                if (!f->export_refused_logged) {
                        char esc[1100];
                        const char *det = sg_msg_str(m, SG_F_DETAIL);

                        sg_escape(det ? det : "", det ? strlen(det) : 0, esc, sizeof esc);
                        logp(LOG_ERR, "secguardd refused FLEET_EXPORT: %s%s%s (is this uid the [fleet] user?)",
                             sg_err_str(sg_msg_u64(m, SG_F_ERROR, 0)), det ? ": " : "", esc);
                }
                f->export_refused_logged = true;
                r = -EPERM;
        } else if (r == 0 && (m->type != SG_MSG_OK || sg_msg_u64(m, SG_F_COUNT, UINT64_MAX) != *n)) {
                r = -EBADMSG; /* any other answer, or a count that is not the rows we got */
        }
        if (r == 0)
                f->export_refused_logged = false;
        if (r == 0)
                *ret_max_id = sg_msg_u64(m, SG_F_ID, 0);
        if (r < 0 && r != -EPERM)
                logp(LOG_WARNING, "FLEET_EXPORT failed: %s", strerror(-r));
        if (r < 0) {
                while (*n > 0)
                        row_free(&rows[--*n]);
        }
        call_close(&c);
        return r;
}

/* Sends a checked decision. 1 applied, 0 refused by the daemon (logged), -errno when the
 * daemon could not be asked (retry later). */
static int daemon_apply(struct fleetd *f, const struct fleet_decision *d) {
        struct daemon_call c;
        struct sg_msg *m;
        struct sg_writer *w;
        int r;

        r = call_open(f, &c);
        if (r < 0)
                return r;
        m = c.m;
        w = c.w;
        sg_writer_init(w, d->lock ? SG_MSG_FLEET_LOCK : SG_MSG_FLEET_UNLOCK);
        sg_writer_str(w, SG_F_KIND, d->kind);
        sg_writer_str(w, SG_F_KEY, d->key);
        if (d->lock)
                sg_writer_u64(w, SG_F_UNTIL, (uint64_t) d->until_usec);
        sg_writer_str(w, SG_F_HOST, d->origin_host);
        sg_writer_u64(w, SG_F_ID, (uint64_t) d->id);
        if (d->lock && d->reason)
                sg_writer_str(w, SG_F_REASON, d->reason);
        if (!d->lock && d->reason && strcmp(d->reason, "lifted") == 0)
                sg_writer_str(w, SG_F_STATE, "lifted"); /* only origin_host's own fleet lock */
        r = sg_call(c.fd, w, m, daemon_deadline(f));
        if (r < 0) {
                logp(LOG_WARNING, "decision %" PRId64 ": secguardd did not answer: %s (retrying)", d->id,
                     strerror(-r));
                goto out;
        }
        if (m->type == SG_MSG_OK) {
                const char *det = sg_msg_str(m, SG_F_DETAIL);

                logp(LOG_INFO, "decision %" PRId64 " applied: %s %s %s%s%s", d->id, d->lock ? "lock" : "unlock",
                     d->kind, d->key, det ? " - " : "", det ? det : "");
                r = 1;
        } else {
                char esc[1100];
                const char *det = sg_msg_str(m, SG_F_DETAIL);

                sg_escape(det ? det : "", det ? strlen(det) : 0, esc, sizeof esc);
                logp(LOG_ERR, "decision %" PRId64 " (%s %s %s from host %s) rejected by secguardd: %s: %s", d->id,
                     d->lock ? "lock" : "unlock", d->kind, d->key, d->origin_host,
                     sg_err_str(sg_msg_u64(m, SG_F_ERROR, 0)), esc);
                r = 0;
        }
out:
        call_close(&c);
        return r;
}

/* ---- PostgreSQL ---- */

static void pg_drop(struct fleetd *f, const char *why) {
        char esc[600];

        if (!f->pg)
                return;
        logp(LOG_WARNING, "PostgreSQL connection lost: %s (reconnecting)", fleet_pg_msg(why, esc, sizeof esc));
        set_error(f, esc);
        PQfinish(f->pg);
        f->pg = NULL;
        f->pg_backoff_ms = PG_BACKOFF_MIN_MS;
        f->pg_next_try = sg_now_mono_usec() + f->pg_backoff_ms * 1000;
}

/* Waits (bounded) for the result of the query just sent; returns the last result or NULL on
 * timeout or a broken connection (the connection is then dropped). */
static PGresult *pg_wait(struct fleetd *f) {
        uint64_t deadline = sg_now_mono_usec() + (uint64_t) PG_QUERY_TIMEOUT_MS * 1000;
        PGresult *last = NULL, *res;

        for (;;) {
                while (!PQisBusy(f->pg)) {
                        res = PQgetResult(f->pg);
                        if (!res)
                                return last;
                        PQclear(last);
                        last = res;
                        if (PQstatus(f->pg) == CONNECTION_BAD)
                                break;
                }
                if (PQstatus(f->pg) == CONNECTION_BAD)
                        break;
                uint64_t now = sg_now_mono_usec();
                if (now >= deadline) {
                        PQclear(last);
                        pg_drop(f, "query timed out");
                        return NULL;
                }
                struct pollfd p = { .fd = PQsocket(f->pg), .events = POLLIN };
                int pr = poll(&p, 1, (int) ((deadline - now) / 1000 + 1));
                if (pr < 0 && errno != EINTR)
                        break;
                if (pr > 0 && !PQconsumeInput(f->pg))
                        break;
        }
        PQclear(last);
        pg_drop(f, PQerrorMessage(f->pg));
        return NULL;
}

static bool res_ok(PGresult *res) {
        ExecStatusType s = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;

        return s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
}

/* Parameterised statement: text parameters (NULL = SQL NULL) unless formats says binary. */
static PGresult *pg_exec(struct fleetd *f, const char *sql, int n, const char *const *vals, const int *lens,
                         const int *formats) {
        if (!f->pg)
                return NULL;
        if (!PQsendQueryParams(f->pg, sql, n, NULL, vals, lens, formats, 0)) {
                pg_drop(f, PQerrorMessage(f->pg));
                return NULL;
        }
        return pg_wait(f);
}

/* A statement that must succeed, or the transaction (and connection state) is abandoned.
 * Logs the server's message. */
static PGresult *pg_must(struct fleetd *f, const char *what, const char *sql, int n, const char *const *vals,
                         const int *lens, const int *formats) {
        PGresult *res = pg_exec(f, sql, n, vals, lens, formats);
        char esc[600];

        if (!f->pg) {
                PQclear(res);
                return NULL;
        }
        if (!res_ok(res)) {
                logp(LOG_ERR, "PostgreSQL: %s failed: %s", what,
                     fleet_pg_msg(res ? PQresultErrorMessage(res) : PQerrorMessage(f->pg), esc, sizeof esc));
                set_error(f, esc);
                PQclear(res);
                return NULL;
        }
        return res;
}

/* A fixed command (no data), which may hold several statements (the migrations): the simple
 * query protocol. */
static bool pg_cmd(struct fleetd *f, const char *what, const char *sql) {
        PGresult *res;
        char esc[600];

        if (!f->pg)
                return false;
        if (!PQsendQuery(f->pg, sql)) {
                pg_drop(f, PQerrorMessage(f->pg));
                return false;
        }
        res = pg_wait(f);
        if (!f->pg) {
                PQclear(res);
                return false;
        }
        if (!res_ok(res)) {
                logp(LOG_ERR, "PostgreSQL: %s failed: %s", what,
                     fleet_pg_msg(res ? PQresultErrorMessage(res) : PQerrorMessage(f->pg), esc, sizeof esc));
                set_error(f, esc);
                PQclear(res);
                return false;
        }
        PQclear(res);
        return true;
}

static void pg_rollback(struct fleetd *f) {
        if (f->pg && PQtransactionStatus(f->pg) != PQTRANS_IDLE)
                pg_cmd(f, "ROLLBACK", "ROLLBACK");
}

static int64_t res_i64(PGresult *res, int row, int col) {
        return PQgetisnull(res, row, col) ? 0 : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

/* Brings the schema to the newest version, one migration per transaction under an advisory
 * lock, so hosts starting together apply each migration exactly once. */
/* The schema's version: -1 when there is no schema yet; false on an error. */
static bool pg_schema_version(struct fleetd *f, int64_t *v) {
        PGresult *res = pg_must(f, "reading the schema version",
                                "SELECT to_regclass('secguard.schema_version') IS NOT NULL", 0, NULL, NULL, NULL);
        bool exists;

        if (!res)
                return false;
        exists = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
        PQclear(res);
        *v = -1;
        if (!exists)
                return true;
        res = pg_must(f, "reading the schema version", "SELECT coalesce(max(version), 0) FROM secguard.schema_version",
                      0, NULL, NULL, NULL);
        if (!res)
                return false;
        *v = res_i64(res, 0, 0);
        PQclear(res);
        return true;
}

static bool pg_migrate(struct fleetd *f) {
        char lockarg[32];
        const char *lv[1] = { lockarg };
        PGresult *res;
        int64_t v;

        snprintf(lockarg, sizeof lockarg, "%lld", (long long) MIGRATION_LOCK);
        if (!pg_schema_version(f, &v))
                return false;
        if (v == (int64_t) fleet_migrations_n)
                return true;
        if (v > (int64_t) fleet_migrations_n) {
                logp(LOG_ERR, "the PostgreSQL schema is version %" PRId64 ", newer than this secguard-fleetd "
                     "knows (%zu): upgrade it", v, fleet_migrations_n);
                set_error(f, "schema newer than this program");
                return false;
        }
        for (;;) {
                if (!pg_cmd(f, "BEGIN", "BEGIN"))
                        return false;
                res = pg_must(f, "taking the migration lock", "SELECT pg_advisory_xact_lock($1::bigint)", 1, lv,
                              NULL, NULL);
                PQclear(res);
                if (!res || !pg_cmd(f, "creating schema secguard",
                                    "CREATE SCHEMA IF NOT EXISTS secguard;"
                                    "CREATE TABLE IF NOT EXISTS secguard.schema_version("
                                    "  version integer PRIMARY KEY,"
                                    "  applied timestamptz NOT NULL DEFAULT now())"))
                        goto fail;
                if (!pg_schema_version(f, &v))
                        goto fail;
                if (v < 0)
                        v = 0;
                if (v >= (int64_t) fleet_migrations_n) {
                        pg_cmd(f, "COMMIT", "COMMIT");
                        return f->pg != NULL;
                }
                char next[24];
                const char *nv[1] = { next };
                snprintf(next, sizeof next, "%" PRId64, v + 1);
                if (!pg_cmd(f, "a schema migration", fleet_migrations[v]))
                        goto fail;
                res = pg_must(f, "recording the schema version",
                              "INSERT INTO secguard.schema_version(version) VALUES ($1::integer)", 1, nv, NULL, NULL);
                PQclear(res);
                if (!res || !pg_cmd(f, "COMMIT", "COMMIT"))
                        goto fail;
                logp(LOG_NOTICE, "PostgreSQL schema migrated to version %" PRId64, v + 1);
        }
fail:
        logp(LOG_ERR, "the PostgreSQL schema is at version %" PRId64 " and needs %zu: run "
             "`secguard-fleetd --migrate` once with the schema owner's connection (docs/fleet.md)",
             v < 0 ? 0 : v, fleet_migrations_n);
        pg_rollback(f);
        return false;
}

/* Registers the host (or notes that it is alive) and reads where shipping resumes. */
static bool pg_register(struct fleetd *f) {
        const char *v[1] = { f->host_id };
        PGresult *res;
        bool ok;

        res = pg_must(f, "updating this host's row",
                      "UPDATE secguard.hosts SET last_seen = now() WHERE host_id = $1", 1, v, NULL, NULL);
        if (!res)
                return false;
        ok = strcmp(PQcmdTuples(res), "1") == 0;
        PQclear(res);
        if (!ok) {
                res = pg_must(f, "registering this host",
                              "INSERT INTO secguard.hosts(host_id) VALUES ($1)", 1, v, NULL, NULL);
                if (!res) {
                        logp(LOG_ERR, "host %s is not registered: an administrator adds it with "
                             "INSERT INTO secguard.hosts(host_id, role) VALUES ('%s', '<its role>') (docs/fleet.md)",
                             f->host_id, f->host_id);
                        return false;
                }
                PQclear(res);
                logp(LOG_NOTICE, "host %s registered", f->host_id);
        }
        res = pg_must(f, "reading the last shipped id",
                      "SELECT coalesce(max(id), 0) FROM secguard.audit WHERE host_id = $1", 1, v, NULL, NULL);
        if (!res)
                return false;
        f->shipped_id = res_i64(res, 0, 0);
        PQclear(res);
        return true;
}

/* Server notices ("schema already exists, skipping") are for --debug only. */
static void pg_notice(void *arg, const char *message) {
        char esc[600];

        (void) arg;
        logp(LOG_DEBUG, "PostgreSQL: %s", fleet_pg_msg(message, esc, sizeof esc));
}

static void pg_connect(struct fleetd *f) {
        uint64_t now = sg_now_mono_usec();
        char esc[600];

        if (f->pg || now < f->pg_next_try)
                return;
        f->pg = fleet_pg_open(f->cfg.fleet_postgres, f->have_password ? f->password : NULL, "secguard-fleetd");
        if (!f->pg || PQstatus(f->pg) != CONNECTION_OK) {
                fleet_pg_msg(f->pg ? PQerrorMessage(f->pg) : "out of memory", esc, sizeof esc);
                if (!f->pg_was_down_logged || log_debug)
                        logp(LOG_WARNING, "cannot connect to PostgreSQL: %s (retrying with backoff up to %d s)", esc,
                             PG_BACKOFF_MAX_MS / 1000);
                f->pg_was_down_logged = true;
                set_error(f, esc);
                goto retry;
        }
        PQsetNoticeProcessor(f->pg, pg_notice, NULL);
        if (!pg_cmd(f, "setting statement_timeout", "SET statement_timeout = '10s'") || !pg_migrate(f))
                goto retry;
        if (f->migrate_only)
                return;
        if (!pg_register(f) || !pg_cmd(f, "LISTEN", "LISTEN " NOTIFY_CHANNEL))
                goto retry;
        logp(LOG_NOTICE, "connected to PostgreSQL as host %s; shipping resumes after audit id %" PRId64,
             f->host_id, f->shipped_id);
        f->pg_was_down_logged = false;
        f->pg_backoff_ms = PG_BACKOFF_MIN_MS;
        f->last_error[0] = '\0';
        return;
retry:
        if (f->pg)
                PQfinish(f->pg);
        f->pg = NULL;
        f->pg_next_try = now + f->pg_backoff_ms * 1000;
        f->pg_backoff_ms = f->pg_backoff_ms * 2 > PG_BACKOFF_MAX_MS ? PG_BACKOFF_MAX_MS : f->pg_backoff_ms * 2;
}

/* ---- shipping ---- */

static const char q_ins_decision[] =
        "INSERT INTO secguard.decisions(action, kind, key, until_usec, origin_host, reason, audit_id)"
        " VALUES ($1, $2, $3, $4::bigint, $5, $6, $7::bigint) ON CONFLICT DO NOTHING";

/* Fleet-wide sum for one source: under a transaction-scoped advisory lock on the key, so two
 * hosts crossing the threshold together insert one decision. */
static const char q_sum_lock[] = "SELECT pg_advisory_xact_lock(hashtextextended('secguard.fleet:' || $1, 0))";
static const char q_sum_insert[] =
        "INSERT INTO secguard.decisions(action, kind, key, until_usec, origin_host, reason)"
        " SELECT 'lock', 'source', $1, $3::bigint, $4, 'fleet_failures'"
        " WHERE secguard.source_failures($1, $2::bigint) >= $5::bigint"
        " AND NOT EXISTS (SELECT 1 FROM secguard.decisions d WHERE d.action = 'lock' AND d.key = $1"
        "  AND d.kind IN ('source', 'spray') AND d.until_usec > $6::bigint"
        "  AND NOT EXISTS (SELECT 1 FROM secguard.decisions u WHERE u.action = 'unlock'"
        "   AND u.key = d.key AND u.kind = d.kind AND u.id > d.id" FLEET_SQL_LIFT_MATCHES "))";

static bool ins_decision(struct fleetd *f, const char *action, const char *kind, const char *key,
                         uint64_t until, const char *reason, uint64_t audit_id) {
        char u[24], a[24];
        const char *v[7] = { action, kind, key, u, f->host_id, reason, a };
        PGresult *res;

        snprintf(u, sizeof u, "%" PRIu64, until);
        snprintf(a, sizeof a, "%" PRIu64, audit_id);
        res = pg_must(f, "publishing a decision", q_ins_decision, 7, v, NULL, NULL);
        if (res && strcmp(PQcmdTuples(res), "1") == 0) {
                f->decisions_published++;
                logp(LOG_INFO, "published %s %s %s (audit id %" PRIu64 ")", action, kind, key, audit_id);
        }
        PQclear(res);
        return res != NULL;
}

/* The numbers as text parameters and the source key (an address or IPv6 prefix, as
 * [ratelimit] ipv6_prefix keys it), once per row. */
static void row_prepare(const struct fleetd *f, struct row *r) {
        char src[320];

        snprintf(r->num[0], sizeof r->num[0], "%" PRIu64, r->id);
        snprintf(r->num[1], sizeof r->num[1], "%" PRIu64, r->time_usec);
        snprintf(r->num[2], sizeof r->num[2], "%" PRIu64, r->pid);
        snprintf(r->num[3], sizeof r->num[3], "%" PRIu64, r->uid);
        snprintf(r->num[4], sizeof r->num[4], "%" PRIu64, r->epoch);
        r->have_src = r->rhost && *r->rhost && sg_valid_rhost(r->rhost) &&
                      sg_source_key(r->rhost, f->cfg.ipv6_prefix, src, sizeof src) == 0 && fleet_key_valid(src);
        if (r->have_src)
                memcpy(r->src, src, strlen(src) + 1); /* fleet_key_valid: <= FLEET_KEY_MAX */
}

#define AUDIT_COLS 18
#define ROWS_PER_INSERT 100 /* 1800 parameters per statement (the protocol allows 65535) */

/* n rows (n <= ROWS_PER_INSERT) in one multi-row INSERT: the statement text holds placeholders
 * only, every value is a parameter. */
static bool insert_rows(struct fleetd *f, const struct row *rows, size_t n) {
        static const char head[] =
                "INSERT INTO secguard.audit(host_id, id, time_usec, event, reason, username, user_sealed, service,"
                " rhost, tty, pid, uid, session_id, detail, epoch, mac, escaped, source_key) VALUES ";
        static const char *const casts[AUDIT_COLS] = {
                "", "::bigint", "::bigint", "", "", "", "::bytea", "", "", "", "::bigint", "::bigint", "", "",
                "::bigint", "::bytea", "::boolean", "",
        };
        const char *v[AUDIT_COLS * ROWS_PER_INSERT];
        int lens[AUDIT_COLS * ROWS_PER_INSERT] = { 0 }, fmt[AUDIT_COLS * ROWS_PER_INSERT] = { 0 };
        size_t cap = sizeof head + n * AUDIT_COLS * 20 + 64, len, i, c;
        char *sql = malloc(cap);
        PGresult *res;

        if (!sql || n == 0 || n > ROWS_PER_INSERT) {
                free(sql);
                return false;
        }
        len = (size_t) snprintf(sql, cap, "%s", head);
        for (i = 0; i < n; i++) {
                const struct row *r = &rows[i];
                const char **rv = v + i * AUDIT_COLS;

                for (c = 0; c < AUDIT_COLS; c++)
                        len += (size_t) snprintf(sql + len, cap - len, "%s$%zu%s%s", c ? "" : (i ? ",(" : "("),
                                                 i * AUDIT_COLS + c + 1, casts[c], c + 1 < AUDIT_COLS ? "," : ")");
                rv[0] = f->host_id;
                rv[1] = r->num[0];
                rv[2] = r->num[1];
                rv[3] = r->event;
                rv[4] = r->reason;
                rv[5] = r->user;
                rv[6] = (const char *) r->sealed;
                lens[i * AUDIT_COLS + 6] = (int) r->sealed_len;
                fmt[i * AUDIT_COLS + 6] = 1;
                rv[7] = r->service;
                rv[8] = r->rhost;
                rv[9] = r->tty;
                rv[10] = r->has_pid ? r->num[2] : NULL;
                rv[11] = r->has_uid ? r->num[3] : NULL;
                rv[12] = r->session_id;
                rv[13] = r->detail;
                rv[14] = r->has_epoch ? r->num[4] : NULL;
                rv[15] = (const char *) r->mac;
                lens[i * AUDIT_COLS + 15] = (int) r->mac_len;
                fmt[i * AUDIT_COLS + 15] = 1;
                rv[16] = r->escaped ? "true" : "false";
                rv[17] = r->have_src ? r->src : NULL;
        }
        snprintf(sql + len, cap - len, " ON CONFLICT (host_id, id) DO NOTHING");
        res = pg_must(f, "inserting audit rows", sql, (int) (n * AUDIT_COLS), v, lens, fmt);
        free(sql);
        if (!res)
                return false;
        if (strtoull(PQcmdTuples(res), NULL, 10) != n)
                logp(LOG_WARNING, "audit ids %s-%s: %s of %zu rows were already in PostgreSQL (kept as they were)",
                     rows[0].num[0], rows[n - 1].num[0], PQcmdTuples(res), n);
        PQclear(res);
        return true;
}

/* What a shipped row publishes, in the batch's transaction. */
static bool publish_row(struct fleetd *f, const struct row *r, char (*keys)[FLEET_KEY_MAX + 1], size_t *nkeys,
                        size_t maxkeys) {
        /* This host's own source/spray lockouts, and `unlock --fleet`. Never the rows that
         * applying other hosts' decisions wrote (fleet_lock, fleet_unlock): no echo. */
        if (strcmp(r->event, "lockout") == 0 && r->reason) {
                char key[FLEET_KEY_MAX + 1];
                uint64_t secs;

                if (fleet_parse_lockout(r->reason, r->detail, key, &secs) == 1 &&
                    !ins_decision(f, "lock", r->reason, key, r->time_usec + secs * 1000000, "lockout", r->id))
                        return false;
        } else if (strcmp(r->event, "unlock") == 0 && r->reason && strcmp(r->reason, "fleet") == 0 && r->have_src) {
                /* The unlock decision's until_usec is when it was made: failures counted
                 * fleet-wide start again after it (secguard.source_failures). */
                if (!ins_decision(f, "unlock", "source", r->src, r->time_usec, "fleet", r->id) ||
                    !ins_decision(f, "unlock", "spray", r->src, r->time_usec, "fleet", r->id))
                        return false;
        } else if (strcmp(r->event, "unlock") == 0 && r->reason && strcmp(r->reason, "lifted") == 0) {
                /* This host lifted a lock the attempt that set it turned out not to deserve;
                 * the decision lifts on other hosts only the fleet lock its lockout made. */
                char key[FLEET_KEY_MAX + 1];
                const char *kind;

                if (fleet_parse_lifted(r->detail, &kind, key) == 1 &&
                    !ins_decision(f, "unlock", kind, key, r->time_usec, "lifted", r->id))
                        return false;
        } else if (strcmp(r->event, "auth_failure") == 0 && r->have_src) {
                size_t i;

                for (i = 0; i < *nkeys && strcmp(keys[i], r->src) != 0; i++)
                        ;
                if (i == *nkeys && *nkeys < maxkeys)
                        memcpy(keys[(*nkeys)++], r->src, strlen(r->src) + 1);
        }
        return true;
}

static bool fleet_sums(struct fleetd *f, char (*keys)[FLEET_KEY_MAX + 1], size_t nkeys) {
        uint64_t now = sg_now_real_usec();
        char since[24], until[24], max[24], nowb[24];
        size_t i;

        snprintf(since, sizeof since, "%" PRIu64, now - f->cfg.fleet_window_sec * 1000000);
        snprintf(until, sizeof until, "%" PRIu64, now + f->cfg.fleet_lock_time_sec * 1000000);
        snprintf(max, sizeof max, "%" PRIu32, f->cfg.fleet_source_max_failures);
        snprintf(nowb, sizeof nowb, "%" PRIu64, now);
        for (i = 0; i < nkeys; i++) {
                const char *lv[1] = { keys[i] };
                const char *v[6] = { keys[i], since, until, f->host_id, max, nowb };
                PGresult *res = pg_must(f, "locking a fleet-wide count", q_sum_lock, 1, lv, NULL, NULL);

                if (!res)
                        return false;
                PQclear(res);
                res = pg_must(f, "counting fleet-wide failures", q_sum_insert, 6, v, NULL, NULL);
                if (!res)
                        return false;
                if (strcmp(PQcmdTuples(res), "1") == 0) {
                        f->decisions_published++;
                        logp(LOG_NOTICE, "source %s reached %s failures across the fleet: published a fleet lock",
                             keys[i], max);
                }
                PQclear(res);
        }
        return true;
}

/* Ships one batch. 1 when rows were shipped (more may wait), 0 when there was nothing to ship,
 * -errno when PostgreSQL or the daemon failed (nothing is lost: the next try starts again from
 * PostgreSQL's max(id)). */
static int ship_batch(struct fleetd *f) {
        uint32_t want = f->cfg.fleet_batch;
        size_t n = 0, got, i, nkeys = 0;
        struct row *rows = calloc(want, sizeof *rows);
        char (*keys)[FLEET_KEY_MAX + 1] = calloc(want, sizeof *keys);
        uint64_t after = (uint64_t) f->shipped_id, max_id = 0, t_start = sg_now_mono_usec(), t_export = 0;
        int r = 0;

        if (!rows || !keys) {
                r = -ENOMEM;
                goto out;
        }
        while (n < want) {
                uint32_t lim = want - (uint32_t) n > EXPORT_MAX ? EXPORT_MAX : want - (uint32_t) n;

                r = daemon_export(f, n ? rows[n - 1].id : after, lim, rows + n, &got, &max_id);
                if (r < 0)
                        goto out;
                n += got;
                if (got < lim)
                        break;
        }
        f->daemon_max_id = max_id;
        t_export = sg_now_mono_usec();
        if (n == 0) {
                f->oldest_unshipped_usec = 0;
                goto out;
        }
        f->oldest_unshipped_usec = rows[0].time_usec;
        /* Ids are contiguous in the daemon's audit; a hole right after what PostgreSQL holds
         * means rows were pruned locally ([audit] max_rows, max_age) before they could be
         * shipped. Nothing can bring them back: say so once, and ship what is there. */
        if (f->pg && rows[0].id > after + 1 && f->gap_logged_after != after) {
                logp(LOG_WARNING, "audit ids %" PRIu64 "-%" PRIu64 " are gone from the local audit (pruned before "
                     "they were shipped); shipping resumes at %" PRIu64, after + 1, rows[0].id - 1, rows[0].id);
                f->gap_logged_after = after;
        }
        if (!f->pg) {
                r = -ENOTCONN;
                goto out;
        }
        if (!pg_cmd(f, "BEGIN", "BEGIN")) {
                r = -EIO;
                goto out;
        }
        /* The same hole recorded centrally, in the batch's transaction, so `secguardctl fleet
         * verify` reports it as pruned here, not as rows deleted from PostgreSQL. */
        if (rows[0].id > after + 1) {
                char first[24], last[24];
                const char *pv[3] = { f->host_id, first, last };
                PGresult *res;

                snprintf(first, sizeof first, "%" PRIu64, after + 1);
                snprintf(last, sizeof last, "%" PRIu64, rows[0].id - 1);
                res = pg_must(f, "recording a locally pruned range",
                              "INSERT INTO secguard.pruned(host_id, first_id, last_id) VALUES ($1, $2::bigint, $3::bigint)"
                              " ON CONFLICT (host_id, first_id) DO NOTHING", 3, pv, NULL, NULL);
                PQclear(res);
                if (!res) {
                        pg_rollback(f);
                        r = -EIO;
                        goto out;
                }
        }
        for (i = 0; i < n; i++)
                row_prepare(f, &rows[i]);
        for (i = 0; i < n; i += ROWS_PER_INSERT)
                if (!insert_rows(f, rows + i, n - i > ROWS_PER_INSERT ? ROWS_PER_INSERT : n - i))
                        break;
        if (i >= n) {
                for (i = 0; i < n; i++)
                        if (!publish_row(f, &rows[i], keys, &nkeys, want))
                                break;
        }
        if (i == n && fleet_sums(f, keys, nkeys)) {
                char last[24], lmax[24];
                const char *v[3] = { f->host_id, last, lmax };
                PGresult *res;

                snprintf(last, sizeof last, "%" PRIu64, rows[n - 1].id);
                snprintf(lmax, sizeof lmax, "%" PRIu64, max_id);
                res = pg_must(f, "updating this host's row",
                              "UPDATE secguard.hosts SET last_seen = now(), last_shipped_id = $2::bigint,"
                              " local_max_id = $3::bigint WHERE host_id = $1", 3, v, NULL, NULL);
                PQclear(res);
                if (res && pg_cmd(f, "COMMIT", "COMMIT")) {
                        f->shipped_id = (int64_t) rows[n - 1].id;
                        f->rows_shipped += n;
                        f->last_ship_usec = sg_now_real_usec();
                        f->oldest_unshipped_usec = 0;
                        logp(LOG_DEBUG, "shipped audit ids %" PRIu64 "-%" PRIu64 " (export %" PRIu64 " ms, PostgreSQL %" PRIu64
                             " ms)", rows[0].id, rows[n - 1].id, (t_export - t_start) / 1000,
                             (sg_now_mono_usec() - t_export) / 1000);
                        r = 1;
                        goto out;
                }
        }
        pg_rollback(f);
        r = -EIO;
out:
        for (i = 0; i < n; i++)
                row_free(&rows[i]);
        free(rows);
        free(keys);
        return r;
}

/* ---- applying ---- */

/* A lifted unlock ends only its origin host's lockout (docs/state.md, "Lifted locks"): 1 when
 * the newest lock decision that host made for kind/key before it is a lockout, 0 when it is
 * something else (a fleet_failures lock that host's helper summed up is not the host's to
 * lift) or there is none, -1 on a PostgreSQL problem. */
static int lift_target_ok(struct fleetd *f, const struct fleet_decision *d) {
        char id[24];
        const char *v[4] = { d->origin_host, d->kind, d->key, id };
        PGresult *res;
        int ok;

        snprintf(id, sizeof id, "%" PRId64, d->id);
        res = pg_must(f, "reading the lock a lift ends",
                      "SELECT reason FROM secguard.decisions WHERE action = 'lock' AND origin_host = $1"
                      " AND kind = $2 AND key = $3 AND id < $4::bigint ORDER BY id DESC LIMIT 1",
                      4, v, NULL, NULL);
        if (!res)
                return -1;
        ok = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "lockout") == 0;
        PQclear(res);
        return ok;
}

/* 1 when every decision in res was dealt with, 0 when the daemon could not be reached (the
 * rest waits), -1 on a PostgreSQL problem. */
static int apply_result(struct fleetd *f, PGresult *res) {
        uint64_t now = sg_now_real_usec();
        int i, n = PQntuples(res);

        if (PQnfields(res) != 7)
                return -1;
        for (i = 0; i < n; i++) {
                struct fleet_decision d = {
                        .id = res_i64(res, i, 0),
                        .lock = strcmp(PQgetvalue(res, i, 1), "lock") == 0,
                        .kind = PQgetvalue(res, i, 2),
                        .key = PQgetvalue(res, i, 3),
                        .until_usec = res_i64(res, i, 4),
                        .origin_host = PQgetvalue(res, i, 5),
                        .reason = PQgetvalue(res, i, 6),
                };
                const char *why;
                char msg[256], ekey[300], ehost[300], ekind[300];

                /* Our own lockouts are already in force here, our own lifts already done. */
                if (strcmp(d.origin_host, f->host_id) == 0 &&
                    (d.lock ? strcmp(d.reason, "lockout") == 0 : strcmp(d.reason, "lifted") == 0)) {
                        f->applied_id = d.id;
                        continue;
                }
                int c = fleet_decision_check(&d, now, f->cfg.fleet_max_lock_time_sec * 1000000, &why, msg,
                                             sizeof msg);
                if (c == -ESTALE) {
                        logp(LOG_INFO, "decision %" PRId64 " skipped: %s", d.id, msg);
                        f->applied_id = d.id;
                        continue;
                }
                if (c < 0) {
                        sg_escape(d.key, strlen(d.key), ekey, sizeof ekey);
                        sg_escape(d.origin_host, strlen(d.origin_host), ehost, sizeof ehost);
                        sg_escape(d.kind, strlen(d.kind), ekind, sizeof ekind);
                        logp(LOG_ERR, "decision %" PRId64 " rejected (%s): %s (%s %s \"%s\" from host \"%s\"); "
                             "not sent to secguardd", d.id, why, msg, d.lock ? "lock" : "unlock", ekind, ekey, ehost);
                        f->decisions_rejected++;
                        f->applied_id = d.id;
                        continue;
                }
                if (!d.lock && strcmp(d.reason, "lifted") == 0) {
                        int ok = lift_target_ok(f, &d);

                        if (ok < 0)
                                return -1;
                        if (ok == 0) {
                                logp(LOG_INFO, "decision %" PRId64 " skipped: host %s lifted %s %s, but its newest "
                                     "lock decision there is not a lockout (nothing of its own to lift)",
                                     d.id, d.origin_host, d.kind, d.key);
                                f->applied_id = d.id;
                                continue;
                        }
                }
                int r = daemon_apply(f, &d);
                if (r < 0)
                        return 0;
                if (r > 0)
                        f->decisions_applied++;
                else
                        f->decisions_rejected++;
                f->applied_id = d.id;
        }
        return 1;
}

/* At the first connection: every lock still in force (not yet expired, not unlocked since),
 * then everything newer as it comes. */
static void apply_decisions(struct fleetd *f) {
        char after[24], now[24];
        const char *v[2] = { after, now };
        PGresult *res;
        int r;

        if (!f->pg)
                return;
        if (!f->applied_known) {
                res = pg_must(f, "reading the newest decision", "SELECT coalesce(max(id), 0) FROM secguard.decisions",
                              0, NULL, NULL, NULL);
                if (!res)
                        return;
                int64_t top = res_i64(res, 0, 0);
                PQclear(res);
                snprintf(after, sizeof after, "%" PRId64, top);
                snprintf(now, sizeof now, "%" PRIu64, sg_now_real_usec());
                res = pg_must(f, "reading the decisions in force", fleet_sql_locks_in_force, 2, v, NULL, NULL);
                if (!res)
                        return;
                r = apply_result(f, res);
                PQclear(res);
                if (r <= 0)
                        return;
                f->applied_id = top;
                f->applied_known = true;
                logp(LOG_NOTICE, "decisions in force applied; following decisions after id %" PRId64, top);
        }
        do {
                snprintf(after, sizeof after, "%" PRId64, f->applied_id);
                res = pg_must(f, "reading new decisions",
                              "SELECT id, action, kind, key, until_usec, origin_host, reason FROM secguard.decisions"
                              " WHERE id > $1::bigint ORDER BY id LIMIT " "500",
                              1, v, NULL, NULL);
                if (!res)
                        return;
                int n = PQntuples(res);
                r = apply_result(f, res);
                PQclear(res);
                if (r <= 0 || n < DECISIONS_PER_FETCH)
                        return;
        } while (!stop_requested);
}

/* ---- status file ---- */

static void write_status(struct fleetd *f) {
        char buf[2048], path[PATH_MAX + 16], err[700];
        uint64_t now = sg_now_real_usec(), lag_rows, lag_sec;
        int n;

        lag_rows = f->daemon_max_id > (uint64_t) f->shipped_id ? f->daemon_max_id - (uint64_t) f->shipped_id : 0;
        lag_sec = f->oldest_unshipped_usec && now > f->oldest_unshipped_usec ?
                          (now - f->oldest_unshipped_usec) / 1000000 : 0;
        sg_escape(f->last_error, strlen(f->last_error), err, sizeof err);
        n = snprintf(buf, sizeof buf,
                     "updated_usec=%" PRIu64 "\npid=%ld\nhost_id=%s\nconnected=%s\nlast_shipped_id=%" PRId64
                     "\nlocal_max_id=%" PRIu64 "\nlag_rows=%" PRIu64 "\nlag_seconds=%" PRIu64
                     "\nrows_shipped=%" PRIu64 "\nlast_ship_usec=%" PRIu64 "\nlast_decision_id=%" PRId64
                     "\ndecisions_published=%" PRIu64 "\ndecisions_applied=%" PRIu64
                     "\ndecisions_rejected=%" PRIu64 "\ndaemon_reachable=%s\nlast_error=%s\n",
                     now, (long) getpid(), f->host_id, f->pg ? "yes" : "no", f->shipped_id, f->daemon_max_id,
                     lag_rows, lag_sec, f->rows_shipped, f->last_ship_usec, f->applied_id, f->decisions_published,
                     f->decisions_applied, f->decisions_rejected, f->daemon_down_logged ? "no" : "yes", err);
        if (n < 0 || (size_t) n >= sizeof buf)
                return;
        snprintf(path, sizeof path, "%s/status", f->state_dir);
        struct stat like = { .st_mode = S_IFREG | 0644, .st_uid = geteuid(), .st_gid = getegid() };
        int r = sg_write_atomic(path, buf, (size_t) n, &like, 0);
        if (r < 0)
                logp(LOG_WARNING, "cannot write %s: %s", path, strerror(-r));
}

/* ---- main ---- */

static void usage(FILE *o) {
        fprintf(o, "Usage: secguard-fleetd [--config FILE] [--state-dir DIR] [--migrate] [--debug]\n"
                   "Ships secguard audit rows to PostgreSQL and applies fleet-wide lock decisions\n"
                   "([fleet] in secguard.conf; docs/fleet.md).\n"
                   "  --migrate    create or upgrade the PostgreSQL schema, then exit\n");
}

static void wait_for_work(struct fleetd *f) {
        uint64_t ms = f->cfg.fleet_poll_interval_ms;
        struct pollfd p = { .fd = f->pg ? PQsocket(f->pg) : -1, .events = POLLIN };

        if (f->pg) {
                /* A NOTIFY read while a query ran waits in libpq's queue, not on the socket. */
                PGnotify *nt;
                bool queued = false;

                while ((nt = PQnotifies(f->pg)) != NULL) {
                        PQfreemem(nt);
                        queued = true;
                }
                if (queued)
                        return;
        } else {
                uint64_t now = sg_now_mono_usec();
                uint64_t until = f->pg_next_try > now ? (f->pg_next_try - now) / 1000 : 0;

                if (until < ms)
                        ms = until;
        }
        if (poll(&p, 1, (int) ms) > 0 && f->pg) {
                PGnotify *nt;

                if (!PQconsumeInput(f->pg)) {
                        pg_drop(f, PQerrorMessage(f->pg));
                        return;
                }
                while ((nt = PQnotifies(f->pg)) != NULL)
                        PQfreemem(nt);
        }
}

int main(int argc, char **argv) {
        static const struct option opts[] = {
                { "config", required_argument, NULL, 'c' }, { "state-dir", required_argument, NULL, 's' },
                { "migrate", no_argument, NULL, 'm' },      { "debug", no_argument, NULL, 'd' },
                { "help", no_argument, NULL, 'h' },         { NULL, 0, NULL, 0 },
        };
        static struct fleetd fl;
        struct fleetd *f = &fl;
        const char *state_dir = getenv("STATE_DIRECTORY");
        char err[1024];
        int c, r;

        f->config_path = SG_DEFAULT_CONFIG;
        while ((c = getopt_long(argc, argv, "c:s:mdh", opts, NULL)) != -1) {
                switch (c) {
                case 'c':
                        f->config_path = optarg;
                        break;
                case 's':
                        state_dir = optarg;
                        break;
                case 'm':
                        f->migrate_only = true;
                        break;
                case 'd':
                        log_debug = true;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (optind != argc) {
                usage(stderr);
                return 2;
        }
        log_journal = getenv("JOURNAL_STREAM") != NULL;
        if (sodium_init() < 0)
                return 1;
        /* $STATE_DIRECTORY may list several; the first is ours. */
        snprintf(f->state_dir, sizeof f->state_dir, "%s", state_dir && *state_dir ? state_dir : DEFAULT_STATE_DIR);
        f->state_dir[strcspn(f->state_dir, ":")] = '\0';

        sg_config_defaults(&f->cfg);
        r = sg_config_load(&f->cfg, f->config_path, false, err, sizeof err);
        if (r >= 0)
                r = sg_config_check(&f->cfg, err, sizeof err);
        if (r < 0) {
                logp(LOG_ERR, "%s", err);
                return EXIT_CONFIG;
        }
        if (!f->cfg.fleet_enabled && !f->migrate_only) {
                logp(LOG_ERR, "[fleet] enabled = no in %s: nothing to do", f->config_path);
                return EXIT_CONFIG;
        }
        if (!f->cfg.fleet_postgres[0]) {
                logp(LOG_ERR, "[fleet] postgres is empty in %s", f->config_path);
                return EXIT_CONFIG;
        }
        r = fleet_host_id(f->cfg.fleet_host_id, f->host_id, err, sizeof err);
        if (r < 0) {
                logp(LOG_ERR, "%s", err);
                return EXIT_CONFIG;
        }
        r = fleet_read_password(f->cfg.fleet_password_file, f->password, sizeof f->password, err, sizeof err);
        if (r < 0) {
                logp(LOG_ERR, "PostgreSQL password: %s", err);
                return EXIT_CONFIG;
        }
        f->have_password = r > 0;
        sodium_mlock(f->password, sizeof f->password);

        struct sigaction sa = { .sa_handler = on_signal };
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);
        signal(SIGHUP, SIG_IGN); /* no reload: the unit restarts the helper for a new config */

        f->pg_backoff_ms = PG_BACKOFF_MIN_MS;
        if (f->migrate_only) {
                pg_connect(f);
                r = f->pg ? 0 : 1; /* not EXIT_CONFIG: the server may only be away */
                if (f->pg)
                        PQfinish(f->pg);
                sodium_munlock(f->password, sizeof f->password);
                return r;
        }
        if (!f->migrate_only) {
                struct stat st;

                if (stat(f->state_dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
                        logp(LOG_ERR, "state directory %s is missing (--state-dir, or StateDirectory= in the unit)",
                             f->state_dir);
                        return EXIT_CONFIG;
                }
        }
        logp(LOG_NOTICE, "starting: host %s, daemon socket %s, batch %" PRIu32 ", poll %" PRIu32 " ms", f->host_id,
             f->cfg.socket, f->cfg.fleet_batch, f->cfg.fleet_poll_interval_ms);
        while (!stop_requested) {
                bool more = false;

                pg_connect(f);
                r = ship_batch(f);
                if (r > 0 && (uint64_t) f->shipped_id < f->daemon_max_id)
                        more = true;
                apply_decisions(f);
                write_status(f);
                if (!more && !stop_requested)
                        wait_for_work(f);
        }
        logp(LOG_NOTICE, "stopping");
        if (f->pg)
                PQfinish(f->pg);
        f->pg = NULL;
        write_status(f);
        sodium_munlock(f->password, sizeof f->password);
        return 0;
}
