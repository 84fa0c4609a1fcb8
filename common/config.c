/* SPDX-License-Identifier: MIT */
/*
 * The config file, parsed with libinih through our own line reader. The reader is what lets us
 * name FILE:LINE for every error with Debian's libinih (built without INI_HANDLER_LINENO): it
 * counts lines, refuses over-long lines and NUL bytes instead of letting inih split them, and
 * checks [section] headers, which inih never reports to the handler when they hold no key.
 */
#include "config.h"
#include "errmsg.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ini.h>
#include <sodium.h>

#include "cidr.h"
#include "validate.h"

#define SEC_PER_DAY 86400ull
#define MS_PER_SEC 1000ull
#define CONFIG_MAX_BYTES (1024u * 1024u) /* a config file is a few KiB; bound what we read */
#define ARGON2_MEMLIMIT_CAP (4ull << 30)  /* per hash; permits multiply it */

enum key_type {
        T_UINT,        /* plain number */
        T_MS,          /* milliseconds: "1500", "1500ms", "2s" */
        T_DURATION,    /* seconds: "90", "90s", "15m", "2h", "1d" */
        T_SIZE,        /* bytes: "65536", "64K", "64M", "1G" */
        T_BOOL,
        T_UNREACHABLE, /* deny | allow_local */
        T_DISKFULL,    /* fail_remote | fail_all */
        T_SYNC,        /* normal | full -> bool */
        T_SOCKET,      /* absolute path < sizeof sun_path */
        T_PATH,        /* absolute path */
        T_PATH_OPT,    /* absolute path or empty */
        T_GROUP,       /* group name or empty */
        T_ALLOWLIST,   /* CIDR list, may continue on indented lines */
        T_USER,        /* account name or empty */
        T_CONNINFO,    /* libpq conninfo without a password, or empty */
        T_HOSTID,      /* 32 lowercase hex digits, or empty */
};

struct key_def {
        const char *section, *name;
        enum key_type type;
        size_t offset, size;
        uint64_t min, max; /* numeric types, in the unit stored */
};

#define FIELD(f) offsetof(struct sg_config, f), sizeof(((struct sg_config *) 0)->f)

static const struct key_def keys[] = {
        { "daemon", "socket", T_SOCKET, FIELD(socket), 0, 0 },
        { "daemon", "state_dir", T_PATH, FIELD(state_dir), 0, 0 },
        { "daemon", "timeout_ms", T_MS, FIELD(timeout_ms), 100, 60000 },
        { "daemon", "hash_permits", T_UINT, FIELD(hash_permits), 0, 1024 },
        { "daemon", "permit_wait_ms", T_MS, FIELD(permit_wait_ms), 0, 60000 },
        { "daemon", "permit_lease_ms", T_MS, FIELD(permit_lease_ms), 1000, 600000 },
        { "daemon", "max_connections", T_UINT, FIELD(max_connections), 1, 65536 },
        { "daemon", "max_connections_per_uid", T_UINT, FIELD(max_connections_per_uid), 1, 65536 },
        { "daemon", "request_timeout_ms", T_MS, FIELD(request_timeout_ms), 100, 600000 },
        { "daemon", "admin_group", T_GROUP, FIELD(admin_group), 0, 0 },
        { "daemon", "unreachable", T_UNREACHABLE, FIELD(unreachable), 0, 0 },
        { "daemon", "disk_full", T_DISKFULL, FIELD(disk_full), 0, 0 },

        { "auth", "fail_delay_ms", T_MS, FIELD(fail_delay_ms), 0, 60000 },
        { "auth", "upgrade_hashes", T_BOOL, FIELD(upgrade_hashes), 0, 0 },
        { "auth", "argon2_opslimit", T_UINT, FIELD(argon2_opslimit), crypto_pwhash_OPSLIMIT_MIN, 256 },
        { "auth", "argon2_memlimit", T_SIZE, FIELD(argon2_memlimit), crypto_pwhash_MEMLIMIT_MIN,
          ARGON2_MEMLIMIT_CAP },
        { "auth", "max_argon2_memlimit", T_SIZE, FIELD(max_argon2_memlimit), crypto_pwhash_MEMLIMIT_MIN,
          ARGON2_MEMLIMIT_CAP },
        { "auth", "max_argon2_opslimit", T_UINT, FIELD(max_argon2_opslimit), crypto_pwhash_OPSLIMIT_MIN, 256 },
        { "auth", "max_argon2_threads", T_UINT, FIELD(max_argon2_threads), 1, 255 },
        { "auth", "max_bcrypt_cost", T_UINT, FIELD(max_bcrypt_cost), 4, 31 },
        { "auth", "max_yescrypt_cost", T_UINT, FIELD(max_yescrypt_cost), 1, 30 },
        { "auth", "max_sha_rounds", T_UINT, FIELD(max_sha_rounds), 1000, 999999999 },
        { "auth", "password_max_len", T_UINT, FIELD(password_max_len), 8, 4096 },
        { "auth", "min_password_len", T_UINT, FIELD(min_password_len), 1, 4096 },

        { "ratelimit", "window", T_DURATION, FIELD(window_sec), 1, 365 * SEC_PER_DAY },
        { "ratelimit", "lock_time", T_DURATION, FIELD(lock_time_sec), 1, 365 * SEC_PER_DAY },
        { "ratelimit", "lock_factor", T_UINT, FIELD(lock_factor), 1, 16 },
        { "ratelimit", "lock_max", T_DURATION, FIELD(lock_max_sec), 1, 365 * SEC_PER_DAY },
        { "ratelimit", "history", T_DURATION, FIELD(history_sec), 1, 3650 * SEC_PER_DAY },
        { "ratelimit", "user_max_failures", T_UINT, FIELD(user_max_failures), 1, 1000 },
        { "ratelimit", "source_max_failures", T_UINT, FIELD(source_max_failures), 1, 1000 },
        { "ratelimit", "user_source_max_failures", T_UINT, FIELD(user_source_max_failures), 1, 1000 },
        { "ratelimit", "spray_max_users", T_UINT, FIELD(spray_max_users), 1, 1000 },
        { "ratelimit", "delay_step_ms", T_MS, FIELD(delay_step_ms), 0, 60000 },
        { "ratelimit", "delay_max_ms", T_MS, FIELD(delay_max_ms), 0, 60000 },
        { "ratelimit", "user_hard_lock", T_BOOL, FIELD(user_hard_lock), 0, 0 },
        { "ratelimit", "deny_root", T_BOOL, FIELD(deny_root), 0, 0 },
        { "ratelimit", "account_locks", T_BOOL, FIELD(account_locks), 0, 0 },
        { "ratelimit", "ipv6_prefix", T_UINT, FIELD(ipv6_prefix), 32, 128 },
        { "ratelimit", "ipv6_prefix_wide", T_UINT, FIELD(ipv6_prefix_wide), 0, 127 },
        { "ratelimit", "ipv6_prefix_widest", T_UINT, FIELD(ipv6_prefix_widest), 0, 127 },
        { "ratelimit", "hostname_max_failures", T_UINT, FIELD(hostname_max_failures), 1, 1000 },
        { "ratelimit", "user_pacing", T_BOOL, FIELD(user_pacing), 0, 0 },
        { "ratelimit", "allowlist", T_ALLOWLIST, FIELD(allowlist), 0, 0 },

        { "session", "max_sessions", T_UINT, FIELD(max_sessions), 0, 65536 },
        { "session", "max_lifetime", T_DURATION, FIELD(max_lifetime_sec), 0, 3650 * SEC_PER_DAY },
        { "session", "idle_timeout", T_DURATION, FIELD(idle_timeout_sec), 0, 3650 * SEC_PER_DAY },
        { "session", "limit_root", T_BOOL, FIELD(limit_root), 0, 0 },
        { "session", "kill_grace", T_DURATION, FIELD(kill_grace_sec), 1, 3600 },

        { "audit", "synchronous", T_SYNC, FIELD(sync_full), 0, 0 },
        { "audit", "max_age", T_DURATION, FIELD(max_age_sec), 0, 36500 * SEC_PER_DAY },
        { "audit", "max_rows", T_UINT, FIELD(max_rows), 0, INT64_MAX }, /* SQLite integers */
        { "audit", "key_file", T_PATH_OPT, FIELD(key_file), 0, 0 },
        { "audit", "seal_public_key", T_PATH_OPT, FIELD(seal_public_key), 0, 0 },
        { "audit", "seal_interval", T_DURATION, FIELD(seal_interval_sec), 1, 7 * SEC_PER_DAY },

        { "fleet", "enabled", T_BOOL, FIELD(fleet_enabled), 0, 0 },
        { "fleet", "postgres", T_CONNINFO, FIELD(fleet_postgres), 0, 0 },
        { "fleet", "password_file", T_PATH_OPT, FIELD(fleet_password_file), 0, 0 },
        { "fleet", "host_id", T_HOSTID, FIELD(fleet_host_id), 0, 0 },
        { "fleet", "user", T_USER, FIELD(fleet_user), 0, 0 },
        { "fleet", "source_max_failures", T_UINT, FIELD(fleet_source_max_failures), 1, 1000000 },
        { "fleet", "window", T_DURATION, FIELD(fleet_window_sec), 1, 30 * SEC_PER_DAY },
        { "fleet", "lock_time", T_DURATION, FIELD(fleet_lock_time_sec), 1, 365 * SEC_PER_DAY },
        { "fleet", "max_lock_time", T_DURATION, FIELD(fleet_max_lock_time_sec), 1, 365 * SEC_PER_DAY },
        { "fleet", "batch", T_UINT, FIELD(fleet_batch), 1, 10000 },
        { "fleet", "poll_interval", T_MS, FIELD(fleet_poll_interval_ms), 10, 3600 * MS_PER_SEC },
};

#define N_KEYS (sizeof keys / sizeof keys[0])

static const char *const sections[] = { "daemon", "auth", "ratelimit", "session", "audit", "fleet" };

void sg_config_defaults(struct sg_config *c) {
        *c = (struct sg_config) {
                .timeout_ms = 2000,
                .hash_permits = 0,
                .permit_wait_ms = 1000,
                .permit_lease_ms = 10000,
                .max_connections = 512,
                .max_connections_per_uid = 8,
                .request_timeout_ms = 5000,
                .unreachable = SG_UNREACHABLE_ALLOW_LOCAL,
                .disk_full = SG_DISKFULL_FAIL_REMOTE,

                .fail_delay_ms = 2000,
                .upgrade_hashes = false,
                .argon2_opslimit = 3,
                .argon2_memlimit = 64ull << 20,
                .max_argon2_memlimit = 256ull << 20,
                .max_argon2_opslimit = 16,
                .max_argon2_threads = 4,
                .max_bcrypt_cost = 14,
                .max_yescrypt_cost = 18,
                .max_sha_rounds = 1000000,
                .password_max_len = 1024,
                .min_password_len = 8,

                .window_sec = 15 * 60,
                .lock_time_sec = 15 * 60,
                .lock_factor = 2,
                .lock_max_sec = SEC_PER_DAY,
                .history_sec = 30 * SEC_PER_DAY,
                .user_max_failures = 5,
                .source_max_failures = 20,
                .user_source_max_failures = 5,
                .spray_max_users = 10,
                .delay_step_ms = 500,
                .delay_max_ms = 5000,
                .user_hard_lock = false,
                .deny_root = false,
                .account_locks = false,
                .ipv6_prefix = 64,
                .ipv6_prefix_wide = 48,
                .ipv6_prefix_widest = 32,
                .hostname_max_failures = 5,
                .user_pacing = true,

                .max_sessions = 0,
                .kill_grace_sec = 5,
                .max_lifetime_sec = 0,

                .sync_full = false,
                .max_age_sec = 365 * SEC_PER_DAY,
                .max_rows = 1000000, /* a size bound by default: about 0.5 GB (docs/state.md) */
                .seal_interval_sec = 15 * 60,

                .fleet_enabled = false,
                .fleet_source_max_failures = 50,
                .fleet_window_sec = 3600,
                .fleet_lock_time_sec = 3600,
                .fleet_max_lock_time_sec = 7 * SEC_PER_DAY,
                .fleet_batch = 500,
                .fleet_poll_interval_ms = 1000,
        };
        snprintf(c->socket, sizeof c->socket, "%s", SG_DEFAULT_SOCKET);
        snprintf(c->state_dir, sizeof c->state_dir, "%s", SG_DEFAULT_STATE_DIR);
        snprintf(c->admin_group, sizeof c->admin_group, "%s", "secguard");
        snprintf(c->fleet_user, sizeof c->fleet_user, "%s", "secguard-fleet");
}

/* ---- value parsers ---- */

/* Digits only: strtoull alone would accept " 12", "+12" and "-1" (as a huge number). */
static int parse_number(const char **s, uint64_t *ret) {
        unsigned long long v;
        char *end;

        if (**s < '0' || **s > '9')
                return -EINVAL;
        errno = 0;
        v = strtoull(*s, &end, 10);
        if (errno == ERANGE)
                return -ERANGE;
        if (errno)
                return -EINVAL;
        *s = end;
        *ret = v;
        return 0;
}

struct unit {
        const char *suffix;
        uint64_t factor;
};

static int parse_with_units(const char *s, const struct unit *units, uint64_t *ret) {
        uint64_t v;
        int r;

        if (!s)
                return -EINVAL;
        r = parse_number(&s, &v);
        if (r < 0)
                return r;
        for (const struct unit *u = units; u->suffix; u++) {
                if (strcmp(s, u->suffix) != 0)
                        continue;
                if (v > UINT64_MAX / u->factor)
                        return -ERANGE;
                *ret = v * u->factor;
                return 0;
        }
        return -EINVAL;
}

static const struct unit plain_units[] = { { "", 1 }, { NULL, 0 } };
static const struct unit duration_units[] = {
        { "", 1 }, { "s", 1 }, { "m", 60 }, { "h", 3600 }, { "d", SEC_PER_DAY }, { NULL, 0 },
};
static const struct unit duration_ms_units[] = {
        { "", 1 }, { "ms", 1 }, { "s", MS_PER_SEC }, { "m", 60 * MS_PER_SEC },
        { "h", 3600 * MS_PER_SEC }, { "d", SEC_PER_DAY * MS_PER_SEC }, { NULL, 0 },
};
static const struct unit size_units[] = {
        { "", 1 }, { "K", 1ull << 10 }, { "k", 1ull << 10 }, { "M", 1ull << 20 }, { "m", 1ull << 20 },
        { "G", 1ull << 30 }, { "g", 1ull << 30 }, { "T", 1ull << 40 }, { "t", 1ull << 40 }, { NULL, 0 },
};

/* The public parsers promise 0 or -EINVAL; the loader wants to tell "too large" apart. */
static int public_result(int r) {
        return r < 0 ? -EINVAL : 0;
}

int sg_parse_duration(const char *s, uint64_t *ret_sec) {
        return public_result(parse_with_units(s, duration_units, ret_sec));
}

int sg_parse_duration_ms(const char *s, uint64_t *ret_ms) {
        return public_result(parse_with_units(s, duration_ms_units, ret_ms));
}

int sg_parse_size(const char *s, uint64_t *ret) {
        return public_result(parse_with_units(s, size_units, ret));
}

int sg_parse_bool(const char *s, bool *ret) {
        static const char *const yes[] = { "yes", "true", "on", "1" };
        static const char *const no[] = { "no", "false", "off", "0" };

        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
                if (strcasecmp(s, yes[i]) == 0) {
                        *ret = true;
                        return 0;
                }
                if (strcasecmp(s, no[i]) == 0) {
                        *ret = false;
                        return 0;
                }
        }
        return -EINVAL;
}

/* ---- field access ---- */

static void set_uint(struct sg_config *c, const struct key_def *k, uint64_t v) {
        char *p = (char *) c + k->offset;

        if (k->size == sizeof(uint64_t)) {
                memcpy(p, &v, sizeof v);
        } else {
                uint32_t v32 = (uint32_t) v; /* ranges keep every uint32_t key below 2^32 */

                memcpy(p, &v32, sizeof v32);
        }
}

static uint64_t get_uint(const struct sg_config *c, const struct key_def *k) {
        const char *p = (const char *) c + k->offset;

        if (k->size == sizeof(uint64_t)) {
                uint64_t v;

                memcpy(&v, p, sizeof v);
                return v;
        }
        uint32_t v32;

        memcpy(&v32, p, sizeof v32);
        return v32;
}

static bool is_numeric(enum key_type t) {
        return t == T_UINT || t == T_MS || t == T_DURATION || t == T_SIZE;
}

static bool is_string(enum key_type t) {
        return t == T_SOCKET || t == T_PATH || t == T_PATH_OPT || t == T_GROUP || t == T_ALLOWLIST ||
               t == T_USER || t == T_CONNINFO || t == T_HOSTID;
}

static const char *unit_name(enum key_type t) {
        switch (t) {
        case T_MS:
                return " ms";
        case T_DURATION:
                return " s";
        case T_SIZE:
                return " bytes";
        default:
                return "";
        }
}

static const char *unreachable_name(int v) {
        return v == SG_UNREACHABLE_DENY ? "deny" : "allow_local";
}

static const char *disk_full_name(int v) {
        return v == SG_DISKFULL_FAIL_ALL ? "fail_all" : "fail_remote";
}

/* ---- string checks, shared by the loader and sg_config_check ---- */

static bool valid_group(const char *s) {
        if (!((s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
                return false;
        for (const char *p = s + 1; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
                        return false;
        return true;
}

bool sg_fleet_host_id_valid(const char *s) {
        if (!s)
                return false;
        for (size_t i = 0; i < SG_FLEET_HOST_ID_LEN; i++)
                if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
                        return false; /* also stops at the terminator of a short string */
        return s[SG_FLEET_HOST_ID_LEN] == '\0';
}

/* Secrets come from files with checked owner and mode, never from the config, which is
 * world-readable and shown by `secguardctl status --config`. A conninfo naming a password
 * (keyword form "password=..." or a URI "postgresql://user:secret@host") is refused. */
static const char *conninfo_problem(const char *s) {
        static const char *const uri[] = { "postgresql://", "postgres://" };

        for (size_t i = 0; i < sizeof uri / sizeof uri[0]; i++) {
                size_t n = strlen(uri[i]);

                if (strncasecmp(s, uri[i], n) == 0) {
                        const char *auth = s + n, *end = auth + strcspn(auth, "/?");
                        const char *at = memchr(auth, '@', (size_t) (end - auth));

                        if (at && memchr(auth, ':', (size_t) (at - auth)))
                                return "a password in the URI is not allowed (use password_file)";
                        if (strcasestr(end, "password="))
                                return "a password in the conninfo is not allowed (use password_file)";
                        return NULL;
                }
        }
        /* keyword=value form: "password" or "sslpassword" followed by '=' */
        for (const char *p = s; (p = strcasestr(p, "password")) != NULL; p++) {
                const char *q = p + strlen("password");

                while (*q == ' ' || *q == '\t')
                        q++;
                if (*q == '=')
                        return "a password in the conninfo is not allowed (use password_file)";
        }
        return NULL;
}

/* NULL when s is acceptable for k, else the reason. */
static const char *string_problem(const struct key_def *k, const char *s, const char **ret_bad) {
        size_t len = strlen(s);

        if (len >= k->size)
                return k->type == T_SOCKET ? "too long: a socket path must be shorter than 108 bytes"
                                           : "value too long";
        if (!sg_no_control(s, len))
                return "control characters are not allowed";
        switch (k->type) {
        case T_SOCKET:
        case T_PATH:
                if (len == 0)
                        return "empty value: an absolute path is required";
                return s[0] == '/' ? NULL : "must be an absolute path";
        case T_PATH_OPT:
                return len == 0 || s[0] == '/' ? NULL : "must be an absolute path or empty";
        case T_GROUP:
                return len == 0 || valid_group(s) ? NULL : "not a valid group name ([a-z_][a-z0-9_-]*)";
        case T_USER:
                return len == 0 || valid_group(s) ? NULL : "not a valid user name ([a-z_][a-z0-9_-]*)";
        case T_HOSTID:
                return len == 0 || sg_fleet_host_id_valid(s) ? NULL : "not a host id (32 lowercase hex digits)";
        case T_CONNINFO:
                return len == 0 ? NULL : conninfo_problem(s);
        case T_ALLOWLIST: {
                struct sg_cidr_list l = { 0 };
                int r = sg_cidr_list_parse(s, &l, ret_bad);

                sg_cidr_list_free(&l);
                if (r == -ENOMEM)
                        return "out of memory";
                return r < 0 ? "not an IPv4/IPv6 address or CIDR" : NULL;
        }
        default:
                return NULL;
        }
}

/* ---- parsing ---- */

struct parse_ctx {
        struct sg_config *c;
        const char *name; /* for messages */
        FILE *f;          /* source: a file ... */
        const char *text; /* ... or a string */
        size_t text_len, text_pos;
        size_t bytes;
        bool stop;
        unsigned lineno;
        bool continuation;  /* current line continues prev_key (inih's multi-line value) */
        char prev_key[64];
        unsigned seen[N_KEYS]; /* line where each key was set, 0 = not set */
        unsigned err_line;     /* first error, 0 = none */
        char err[400];
};

static void record_error(struct parse_ctx *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void record_error(struct parse_ctx *p, const char *fmt, ...) {
        va_list ap;

        if (p->err_line)
                return;
        p->err_line = p->lineno;
        va_start(ap, fmt);
        vsnprintf(p->err, sizeof p->err, fmt, ap);
        va_end(ap);
}

/* A value or name as it may appear in a message: escaped and bounded. */
static const char *shown(const char *s, char *buf, size_t size) {
        sg_escape(s, strlen(s), buf, size);
        return buf;
}

static int next_byte(struct parse_ctx *p) {
        if (p->f)
                return getc(p->f);
        if (p->text_pos >= p->text_len)
                return EOF;
        return (unsigned char) p->text[p->text_pos++];
}

static bool section_known(const char *s) {
        for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++)
                if (strcmp(s, sections[i]) == 0)
                        return true;
        return false;
}

static bool is_space(char ch) {
        return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\v' || ch == '\f';
}

/* Checks a "[name]" line the way inih reads it: the name runs to ']' (inih stops early at an
 * inline comment, " ;"); what follows ']' must be blank or a comment. */
static void check_section_line(struct parse_ctx *p, const char *s) {
        char name[64], buf[80];
        const char *q = s + 1;
        bool was_space = false;
        size_t n;

        while (*q && *q != ']' && !(was_space && *q == ';')) {
                was_space = is_space(*q);
                q++;
        }
        if (*q != ']') {
                record_error(p, "missing ']' in section header");
                return;
        }
        n = (size_t) (q - (s + 1));
        if (n >= sizeof name)
                n = sizeof name - 1;
        memcpy(name, s + 1, n);
        name[n] = '\0';
        for (q++; is_space(*q); q++)
                ;
        if (*q && *q != ';' && *q != '#')
                record_error(p, "[%s]: unexpected text after ']'", shown(name, buf, sizeof buf));
        else if (!section_known(name))
                record_error(p, "[%s]: unknown section (known: [daemon] [auth] [ratelimit] [session] [audit] [fleet])",
                             shown(name, buf, sizeof buf));
}

/* inih's line reader (fgets-like). Every call returns exactly one whole line ending in '\n',
 * so inih's line count is ours; lines we refuse are handed over as blank lines. */
static char *read_line(char *str, int num, void *stream) {
        struct parse_ctx *p = stream;
        bool any = false, too_long = false, nul = false;
        size_t n = 0, cap;
        const char *s;
        int ch;

        if (p->stop || num < 3)
                return NULL;
        cap = (size_t) num - 2; /* room for '\n' and NUL */
        while ((ch = next_byte(p)) != EOF) {
                any = true;
                if (++p->bytes > CONFIG_MAX_BYTES) {
                        p->lineno++;
                        record_error(p, "file larger than %u bytes", CONFIG_MAX_BYTES);
                        p->stop = true;
                        return NULL;
                }
                if (ch == '\n')
                        break;
                if (ch == '\0')
                        nul = true;
                else if (n < cap)
                        str[n++] = (char) ch;
                else
                        too_long = true;
        }
        if (!any)
                return NULL;
        p->lineno++;
        str[n] = '\0';

        s = str;
        if (p->lineno == 1 && (unsigned char) s[0] == 0xef && (unsigned char) s[1] == 0xbb &&
            (unsigned char) s[2] == 0xbf)
                s += 3; /* inih skips a UTF-8 BOM too */
        while (is_space(*s))
                s++;
        p->continuation = false;
        if (nul) {
                record_error(p, "NUL byte in line");
                goto blank;
        }
        if (*s == ';' || *s == '#')
                goto done; /* a comment, over-long or not, says nothing */
        if (too_long || (*s == '\0' && n == cap)) {
                record_error(p, "line longer than %zu bytes (continue a long allowlist on indented lines)",
                             cap);
                goto blank;
        }
        if (*s == '\0')
                goto done;
        /* inih's order: an indented line after a key continues that key's value, even when it
         * looks like a section header. */
        if (s > str && p->prev_key[0])
                p->continuation = true;
        else if (*s == '[') {
                p->prev_key[0] = '\0';
                check_section_line(p, s);
        }
done:
        str[n++] = '\n';
        str[n] = '\0';
        return str;
blank:
        p->continuation = false;
        str[0] = '\n';
        str[1] = '\0';
        return str;
}

static int key_error(struct parse_ctx *p, const char *section, const char *name, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
static int key_error(struct parse_ctx *p, const char *section, const char *name, const char *fmt, ...) {
        char reason[300], sbuf[64], nbuf[64];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(reason, sizeof reason, fmt, ap);
        va_end(ap);
        if (section && *section)
                record_error(p, "[%s] %s: %s", shown(section, sbuf, sizeof sbuf), shown(name, nbuf, sizeof nbuf),
                             reason);
        else
                record_error(p, "%s: %s", shown(name, nbuf, sizeof nbuf), reason);
        return 0; /* inih: handler failed */
}

static const struct key_def *find_key(const char *section, const char *name) {
        for (size_t i = 0; i < N_KEYS; i++)
                if (strcmp(keys[i].section, section) == 0 && strcmp(keys[i].name, name) == 0)
                        return &keys[i];
        return NULL;
}

static const char *number_hint(enum key_type t) {
        switch (t) {
        case T_MS:
                return "expected milliseconds (\"1500\", \"1500ms\" or \"2s\")";
        case T_DURATION:
                return "expected a duration (seconds, or a number with s, m, h or d: \"90s\", \"15m\", \"2h\", \"1d\")";
        case T_SIZE:
                return "expected a size (bytes, or a number with K, M or G: \"64M\")";
        default:
                return "expected a non-negative whole number";
        }
}

static int apply_number(struct parse_ctx *p, const struct key_def *k, const char *section, const char *name,
                        const char *value) {
        char vbuf[64];
        uint64_t v;
        int r;

        switch (k->type) {
        case T_MS:
                r = parse_with_units(value, duration_ms_units, &v);
                break;
        case T_DURATION:
                r = parse_with_units(value, duration_units, &v);
                break;
        case T_SIZE:
                r = parse_with_units(value, size_units, &v);
                break;
        default:
                r = parse_with_units(value, plain_units, &v);
                break;
        }
        if (r == -ERANGE)
                return key_error(p, section, name, "\"%s\" is too large (at most %llu%s)",
                                 shown(value, vbuf, sizeof vbuf), (unsigned long long) k->max, unit_name(k->type));
        if (r < 0)
                return key_error(p, section, name, "\"%s\": %s", shown(value, vbuf, sizeof vbuf),
                                 number_hint(k->type));
        if (v < k->min || v > k->max)
                return key_error(p, section, name, "\"%s\" is out of range (%llu..%llu%s)",
                                 shown(value, vbuf, sizeof vbuf), (unsigned long long) k->min,
                                 (unsigned long long) k->max, unit_name(k->type));
        set_uint(p->c, k, v);
        return 1;
}

static int apply_word(struct parse_ctx *p, const struct key_def *k, const char *section, const char *name,
                      const char *value) {
        char vbuf[64];
        bool b;
        int v;

        switch (k->type) {
        case T_BOOL:
                if (sg_parse_bool(value, &b) < 0)
                        return key_error(p, section, name, "\"%s\": expected yes or no",
                                         shown(value, vbuf, sizeof vbuf));
                memcpy((char *) p->c + k->offset, &b, sizeof b);
                return 1;
        case T_SYNC:
                if (strcasecmp(value, "normal") == 0)
                        b = false;
                else if (strcasecmp(value, "full") == 0)
                        b = true;
                else
                        return key_error(p, section, name, "\"%s\": expected normal or full",
                                         shown(value, vbuf, sizeof vbuf));
                memcpy((char *) p->c + k->offset, &b, sizeof b);
                return 1;
        case T_UNREACHABLE:
                if (strcasecmp(value, "deny") == 0)
                        v = SG_UNREACHABLE_DENY;
                else if (strcasecmp(value, "allow_local") == 0)
                        v = SG_UNREACHABLE_ALLOW_LOCAL;
                else
                        return key_error(p, section, name, "\"%s\": expected deny or allow_local",
                                         shown(value, vbuf, sizeof vbuf));
                memcpy((char *) p->c + k->offset, &v, sizeof v);
                return 1;
        case T_DISKFULL:
                if (strcasecmp(value, "fail_remote") == 0)
                        v = SG_DISKFULL_FAIL_REMOTE;
                else if (strcasecmp(value, "fail_all") == 0)
                        v = SG_DISKFULL_FAIL_ALL;
                else
                        return key_error(p, section, name, "\"%s\": expected fail_remote or fail_all",
                                         shown(value, vbuf, sizeof vbuf));
                memcpy((char *) p->c + k->offset, &v, sizeof v);
                return 1;
        default:
                return key_error(p, section, name, "internal error: unhandled key type");
        }
}

static int bad_string(struct parse_ctx *p, const char *section, const char *name, const char *value,
                      const char *why, const char *bad) {
        char vbuf[64], tok[64];

        if (bad) {
                size_t n = strcspn(bad, " ,\t");

                if (n >= sizeof tok)
                        n = sizeof tok - 1;
                memcpy(tok, bad, n);
                tok[n] = '\0';
                return key_error(p, section, name, "\"%s\": %s", shown(tok, vbuf, sizeof vbuf), why);
        }
        return key_error(p, section, name, "\"%s\": %s", shown(value, vbuf, sizeof vbuf), why);
}

static int apply_string(struct parse_ctx *p, const struct key_def *k, const char *section, const char *name,
                        const char *value) {
        const char *bad = NULL, *why;

        why = string_problem(k, value, &bad);
        if (why)
                return bad_string(p, section, name, value, why, bad);
        memcpy((char *) p->c + k->offset, value, strlen(value) + 1);
        return 1;
}

/* An indented line after "allowlist = ...": more entries for the same list. */
static int append_allowlist(struct parse_ctx *p, const struct key_def *k, const char *section, const char *name,
                            const char *value) {
        char *list = (char *) p->c + k->offset;
        size_t have = strlen(list), add = strlen(value);
        const char *bad = NULL, *why;

        if (have + 1 + add >= k->size)
                return key_error(p, section, name, "list too long (at most %zu bytes)", k->size - 1);
        why = string_problem(k, value, &bad);
        if (why)
                return bad_string(p, section, name, value, why, bad);
        if (have > 0)
                list[have++] = ' ';
        memcpy(list + have, value, add + 1);
        return 1;
}

static int handle_pair(void *user, const char *section, const char *name, const char *value) {
        struct parse_ctx *p = user;
        const struct key_def *k;
        size_t idx;

        if (!value)
                value = "";
        if (!p->continuation)
                snprintf(p->prev_key, sizeof p->prev_key, "%s", name);
        if (!*section)
                return key_error(p, NULL, name, "key outside a section (put it under [daemon], [auth], "
                                                "[ratelimit], [session], [audit] or [fleet])");
        if (!section_known(section))
                return key_error(p, section, name, "unknown section");
        k = find_key(section, name);
        if (!k)
                return key_error(p, section, name, "unknown key");
        idx = (size_t) (k - keys);
        if (p->continuation) {
                if (k->type != T_ALLOWLIST)
                        return key_error(p, section, name,
                                         "indented continuation lines are only allowed for allowlist");
                return append_allowlist(p, k, section, name, value);
        }
        if (p->seen[idx])
                return key_error(p, section, name, "duplicate key (first set on line %u)", p->seen[idx]);
        p->seen[idx] = p->lineno;
        if (*value == '\0' && k->type != T_PATH_OPT && k->type != T_GROUP && k->type != T_ALLOWLIST &&
            k->type != T_USER && k->type != T_CONNINFO && k->type != T_HOSTID)
                return key_error(p, section, name, "empty value");
        if (is_numeric(k->type))
                return apply_number(p, k, section, name, value);
        if (is_string(k->type))
                return apply_string(p, k, section, name, value);
        return apply_word(p, k, section, name, value);
}


/* Parses into a copy so c is untouched unless the whole file is good. */
static int parse(struct sg_config *c, struct parse_ctx *p, char *err, size_t errsize) {
        struct sg_config *work;
        int line;

        work = malloc(sizeof *work);
        if (!work)
                return sg_errmsg(err, errsize, -ENOMEM, "%s: out of memory", p->name);
        *work = *c;
        p->c = work;
        line = ini_parse_stream(read_line, p, handle_pair, p);
        if (p->f && ferror(p->f)) {
                free(work);
                return sg_errmsg(err, errsize, -EIO, "%s: read error", p->name);
        }
        if (line < 0) {
                free(work);
                return sg_errmsg(err, errsize, -ENOMEM, "%s: out of memory", p->name);
        }
        if (line > 0 && (p->err_line == 0 || (unsigned) line < p->err_line)) {
                free(work);
                return sg_errmsg(err, errsize, -EINVAL,
                            "%s:%d: syntax error: expected \"[section]\", \"key = value\", a comment or a blank line",
                            p->name, line);
        }
        if (p->err_line) {
                free(work);
                return sg_errmsg(err, errsize, -EINVAL, "%s:%u: %s", p->name, p->err_line, p->err);
        }
        *c = *work;
        free(work);
        return 0;
}

int sg_config_load_string(struct sg_config *c, const char *name, const char *text, char *err, size_t errsize) {
        struct parse_ctx p = {
                .name = name ? name : "(string)",
                .text = text ? text : "",
                .text_len = text ? strlen(text) : 0,
        };

        return parse(c, &p, err, errsize);
}

/* Refuses a file others could have written: the module reads it as root inside sshd. */
static int check_config_fd(int fd, const char *path, char *err, size_t errsize) {
        struct stat st;

        if (fstat(fd, &st) < 0)
                return sg_errmsg(err, errsize, -errno, "%s: cannot stat: %m", path);
        if (!S_ISREG(st.st_mode))
                return sg_errmsg(err, errsize, -EPERM, "%s: not a regular file", path);
        if (st.st_uid != 0 && st.st_uid != geteuid())
                return sg_errmsg(err, errsize, -EPERM, "%s: owned by uid %u, not root; refusing it (fix: chown root:root %s)",
                            path, (unsigned) st.st_uid, path);
        if (st.st_mode & S_IWOTH)
                return sg_errmsg(err, errsize, -EPERM,
                            "%s: writable by every user (mode %04o); refusing it (fix: chmod go-w %s)", path,
                            (unsigned) (st.st_mode & 07777), path);
        if ((st.st_mode & S_IWGRP) && st.st_gid != 0 && st.st_gid != getegid())
                return sg_errmsg(err, errsize, -EPERM,
                            "%s: writable by group %u (mode %04o); refusing it (fix: chmod g-w %s)", path,
                            (unsigned) st.st_gid, (unsigned) (st.st_mode & 07777), path);
        return 0;
}

int sg_config_load(struct sg_config *c, const char *path, bool missing_ok, char *err, size_t errsize) {
        struct parse_ctx p = { 0 };
        FILE *f;
        int fd, r;

        if (!path)
                path = SG_DEFAULT_CONFIG;
        /* O_NONBLOCK: a FIFO must not hang a login; check_config_fd refuses it. */
        fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0) {
                if (errno == ENOENT && missing_ok)
                        return 1;
                if (errno == ELOOP)
                        return sg_errmsg(err, errsize, -ELOOP,
                                    "%s: is a symbolic link; refusing to follow it (fix: replace it with the file it points to)",
                                    path);
                return sg_errmsg(err, errsize, -errno, "%s: cannot open: %m", path);
        }
        r = check_config_fd(fd, path, err, errsize);
        if (r < 0) {
                close(fd);
                return r;
        }
        f = fdopen(fd, "re");
        if (!f) {
                r = -errno;
                close(fd);
                return sg_errmsg(err, errsize, r, "%s: cannot read: %s", path, strerror(-r));
        }
        p.name = path;
        p.f = f;
        r = parse(c, &p, err, errsize);
        fclose(f);
        return r;
}

/* ---- checks after flag overrides ---- */

int sg_config_check(const struct sg_config *c, char *err, size_t errsize) {
        for (size_t i = 0; i < N_KEYS; i++) {
                const struct key_def *k = &keys[i];

                if (is_numeric(k->type)) {
                        uint64_t v = get_uint(c, k);

                        if (v < k->min || v > k->max)
                                return sg_errmsg(err, errsize, -EINVAL, "config: [%s] %s: %llu is out of range (%llu..%llu%s)",
                                            k->section, k->name, (unsigned long long) v,
                                            (unsigned long long) k->min, (unsigned long long) k->max,
                                            unit_name(k->type));
                } else if (is_string(k->type)) {
                        const char *s = (const char *) c + k->offset, *bad = NULL, *why;
                        char buf[80];

                        if (strnlen(s, k->size) >= k->size)
                                return sg_errmsg(err, errsize, -EINVAL, "config: [%s] %s: not terminated", k->section,
                                            k->name);
                        why = string_problem(k, s, &bad);
                        if (why)
                                return sg_errmsg(err, errsize, -EINVAL, "config: [%s] %s: \"%s\": %s", k->section,
                                            k->name, shown(bad ? bad : s, buf, sizeof buf), why);
                }
        }
        if (c->unreachable != SG_UNREACHABLE_DENY && c->unreachable != SG_UNREACHABLE_ALLOW_LOCAL)
                return sg_errmsg(err, errsize, -EINVAL, "config: [daemon] unreachable: unknown policy %d", c->unreachable);
        if (c->disk_full != SG_DISKFULL_FAIL_REMOTE && c->disk_full != SG_DISKFULL_FAIL_ALL)
                return sg_errmsg(err, errsize, -EINVAL, "config: [daemon] disk_full: unknown policy %d", c->disk_full);
        if (c->argon2_memlimit > c->max_argon2_memlimit)
                return sg_errmsg(err, errsize, -EINVAL,
                            "config: [auth] argon2_memlimit (%llu bytes) exceeds max_argon2_memlimit (%llu bytes): "
                            "new hashes would be refused",
                            (unsigned long long) c->argon2_memlimit, (unsigned long long) c->max_argon2_memlimit);
        if (c->argon2_opslimit > c->max_argon2_opslimit)
                return sg_errmsg(err, errsize, -EINVAL,
                            "config: [auth] argon2_opslimit (%llu) exceeds max_argon2_opslimit (%llu): "
                            "new hashes would be refused",
                            (unsigned long long) c->argon2_opslimit, (unsigned long long) c->max_argon2_opslimit);
        if (c->min_password_len > c->password_max_len)
                return sg_errmsg(err, errsize, -EINVAL, "config: [auth] min_password_len (%u) exceeds password_max_len (%u)",
                            c->min_password_len, c->password_max_len);
        if (c->lock_time_sec > c->lock_max_sec)
                return sg_errmsg(err, errsize, -EINVAL, "config: [ratelimit] lock_time (%llus) exceeds lock_max (%llus)",
                            (unsigned long long) c->lock_time_sec, (unsigned long long) c->lock_max_sec);
        if (c->history_sec < c->lock_max_sec)
                return sg_errmsg(err, errsize, -EINVAL,
                            "config: [ratelimit] history (%llus) is shorter than lock_max (%llus): "
                            "backoff would forget locks still in force",
                            (unsigned long long) c->history_sec, (unsigned long long) c->lock_max_sec);
        if (c->max_connections_per_uid > c->max_connections)
                return sg_errmsg(err, errsize, -EINVAL,
                            "config: [daemon] max_connections_per_uid (%u) exceeds max_connections (%u)",
                            c->max_connections_per_uid, c->max_connections);
        if (c->fleet_lock_time_sec > c->fleet_max_lock_time_sec)
                return sg_errmsg(err, errsize, -EINVAL,
                            "config: [fleet] lock_time (%llus) exceeds max_lock_time (%llus): every fleet "
                            "lock would be refused as absurd",
                            (unsigned long long) c->fleet_lock_time_sec,
                            (unsigned long long) c->fleet_max_lock_time_sec);
        if (c->permit_wait_ms >= c->timeout_ms)
                return sg_errmsg(err, errsize, -EINVAL,
                            "config: [daemon] permit_wait_ms (%u) must be below timeout_ms (%u), or the "
                            "module gives up before the daemon answers",
                            c->permit_wait_ms, c->timeout_ms);
        return 0;
}

/* ---- dump ---- */

static void format_value(const struct sg_config *c, const struct key_def *k, char *buf, size_t size,
                         const char **ret) {
        const char *p = (const char *) c + k->offset;
        bool b;
        int v;

        *ret = buf;
        switch (k->type) {
        case T_BOOL:
                memcpy(&b, p, sizeof b);
                *ret = b ? "yes" : "no";
                return;
        case T_SYNC:
                memcpy(&b, p, sizeof b);
                *ret = b ? "full" : "normal";
                return;
        case T_UNREACHABLE:
                memcpy(&v, p, sizeof v);
                *ret = unreachable_name(v);
                return;
        case T_DISKFULL:
                memcpy(&v, p, sizeof v);
                *ret = disk_full_name(v);
                return;
        default:
                break;
        }
        if (is_string(k->type)) {
                /* Strings are validated; escaping anyway keeps one line per key. */
                sg_escape(p, strnlen(p, k->size), buf, size);
                return;
        }
        snprintf(buf, size, "%llu", (unsigned long long) get_uint(c, k));
}

int sg_config_dump(const struct sg_config *c, char *out, size_t outsize) {
        size_t len = 0;

        if (!out || outsize == 0)
                return -ENOSPC;
        out[0] = '\0';
        for (size_t i = 0; i < N_KEYS; i++) {
                char buf[4 * sizeof c->allowlist + 8];
                const char *v;
                int n;

                format_value(c, &keys[i], buf, sizeof buf, &v);
                n = snprintf(out + len, outsize - len, "%s.%s=%s\n", keys[i].section, keys[i].name, v);
                if (n < 0 || (size_t) n >= outsize - len) {
                        out[len] = '\0';
                        return -ENOSPC;
                }
                len += (size_t) n;
        }
        return len > INT32_MAX ? -ENOSPC : (int) len;
}
