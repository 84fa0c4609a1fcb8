/* SPDX-License-Identifier: MIT */
/*
 * The one INI config file shared by the module and the daemon (libinih).
 * Every key has a default (sg_config_defaults); etc/secguard.conf and secguard.conf(5) list
 * them all. An unknown section or key, or a bad value, is an error naming file:line.
 * Durations: plain seconds or a number with a unit: "90s", "15m", "2h", "1d" (also "ms").
 */
#pragma once

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SG_DEFAULT_SOCKET "/run/secguard/secguardd.sock"
#define SG_DEFAULT_STATE_DIR "/var/lib/secguard"
#ifndef SG_DEFAULT_CONFIG
#define SG_DEFAULT_CONFIG "/etc/secguard/secguard.conf"
#endif

enum sg_unreachable_policy {
        SG_UNREACHABLE_DENY = 0,        /* every login fails */
        SG_UNREACHABLE_ALLOW_LOCAL = 1, /* root on a local console (no rhost) may log in */
};

enum sg_disk_full_policy {
        SG_DISKFULL_FAIL_REMOTE = 0, /* remote logins fail closed; local ones proceed; journald told */
        SG_DISKFULL_FAIL_ALL = 1,
};

struct sg_config {
        /* [daemon] */
        char socket[108];             /* sun_path size */
        char state_dir[PATH_MAX];
        uint32_t timeout_ms;          /* module's end-to-end deadline for the daemon: 2000 */
        uint32_t hash_permits;        /* 0 = number of CPUs */
        uint32_t permit_wait_ms;      /* how long PRECHECK waits for a permit: 1000 */
        uint32_t permit_lease_ms;     /* how long a permit may be held before it is taken back: 10000 */
        uint32_t max_connections;     /* concurrent connections: 512 */
        uint32_t max_connections_per_uid; /* for non-root peers: 8 */
        uint32_t request_timeout_ms;  /* daemon's read/write timeout per frame: 5000 */
        char admin_group[64];         /* read-only views: "secguard" ("" = none) */
        int unreachable;              /* enum sg_unreachable_policy: allow_local */
        int disk_full;                /* enum sg_disk_full_policy: fail_remote */

        /* [auth] */
        uint32_t fail_delay_ms;       /* 2000 */
        bool upgrade_hashes;          /* no */
        uint64_t argon2_opslimit;     /* 3 */
        uint64_t argon2_memlimit;     /* 64 MiB */
        uint64_t max_argon2_memlimit; /* stored-hash cap: 256 MiB */
        uint64_t max_argon2_opslimit; /* 16 */
        uint32_t max_argon2_threads;  /* p= cap: 4 */
        uint32_t max_bcrypt_cost;     /* 14 */
        uint32_t max_yescrypt_cost;   /* N log2 cap: 18 */
        uint32_t max_sha_rounds;      /* $5$/$6$ rounds cap: 1000000 */
        uint32_t password_max_len;    /* 1024 */
        uint32_t min_password_len;    /* 8 */

        /* [ratelimit] */
        uint64_t window_sec;          /* counting window: 15m */
        uint64_t lock_time_sec;       /* first lock: 15m */
        uint32_t lock_factor;         /* backoff multiplier: 2 */
        uint64_t lock_max_sec;        /* 1d */
        uint64_t history_sec;         /* how long a key's lock history is kept: 30d */
        uint32_t user_max_failures;   /* 5 */
        uint32_t source_max_failures; /* 20 */
        uint32_t user_source_max_failures; /* 5 */
        uint32_t spray_max_users;     /* distinct users per source per window: 10 */
        uint32_t delay_step_ms;       /* growing delay per failure before a lock: 500 */
        uint32_t delay_max_ms;        /* 5000 */
        bool user_hard_lock;          /* per-user hard lock (victim lock-out risk): no */
        bool deny_root;               /* root subject to per-user locks: no */
        bool account_locks;           /* account phase refuses locked users/sources: no */
        uint32_t ipv6_prefix;         /* 64 */
        uint32_t ipv6_prefix_wide;    /* also per /48 (2 x source_max_failures); 0 = off: 48 */
        uint32_t ipv6_prefix_widest;  /* also per /32 (4 x source_max_failures); 0 = off: 32 */
        uint32_t hostname_max_failures; /* host-name rhosts (UseDNS yes): 5 */
        bool user_pacing;             /* beyond user_max_failures, one attempt per delay step: yes */
        char allowlist[4096];         /* addresses/CIDRs, space or comma separated: "" */

        /* [session] */
        uint32_t max_sessions;        /* 0 = unlimited */
        uint64_t max_lifetime_sec;    /* 0 = unlimited */
        uint64_t idle_timeout_sec;    /* 0 = unlimited; idle = since the tty was last used */
        bool limit_root;              /* max_sessions applies to root too: no */
        uint64_t kill_grace_sec;      /* SIGHUP to SIGKILL of an ended session's leader: 5 */

        /* [audit] */
        bool sync_full;               /* synchronous=FULL (else NORMAL): no */
        uint64_t max_age_sec;         /* 365d; 0 = keep */
        uint64_t max_rows;            /* 1000000; 0 = unlimited */
        char key_file[PATH_MAX];      /* audit MAC key: "" = <state_dir>/audit.key */
        char seal_public_key[PATH_MAX]; /* admin public key for sealed usernames: "" = none */
        uint64_t seal_interval_sec;   /* forward-secure key epoch: 15m (docs/threat-model.md) */

        /* [fleet] (the PostgreSQL helper secguard-fleetd; the daemon reads user and max_lock_time) */
        bool fleet_enabled;           /* no */
        char fleet_postgres[1025];    /* libpq conninfo or "service=NAME", no password in it: "" */
        char fleet_password_file[PATH_MAX]; /* PostgreSQL password file: "" = systemd credential or none */
        char fleet_host_id[33];       /* 32 lowercase hex: "" = derived from /etc/machine-id */
        char fleet_user[64];          /* the helper's account, granted FLEET_*: "secguard-fleet" ("" = root only) */
        uint32_t fleet_source_max_failures; /* failures from one source over all hosts per window: 50 */
        uint64_t fleet_window_sec;    /* 1h */
        uint64_t fleet_lock_time_sec; /* fleet lock imposed: 1h */
        uint64_t fleet_max_lock_time_sec; /* a decision further ahead is refused: 7d */
        uint32_t fleet_batch;         /* rows per shipping transaction: 500 */
        uint32_t fleet_poll_interval_ms; /* fallback poll when LISTEN/NOTIFY is quiet: 1s */
};

#define SG_FLEET_HOST_ID_LEN 32

/* true when s is exactly 32 lowercase hex digits (a fleet host id). */
bool sg_fleet_host_id_valid(const char *s);

/* Fills every field with its documented default. */
void sg_config_defaults(struct sg_config *c);

/* Parses path over the current contents of c (call sg_config_defaults first).
 * A missing file is not an error when missing_ok: returns 1 then, 0 when a file was read.
 * On error returns -errno/-EINVAL and writes "FILE:LINE: message" into err (errsize bytes). */
int sg_config_load(struct sg_config *c, const char *path, bool missing_ok, char *err, size_t errsize);
/* The same over a string (tests, fuzzing); name is used in messages. */
int sg_config_load_string(struct sg_config *c, const char *name, const char *text, char *err, size_t errsize);

/* Cross-field checks after loading and flag overrides (e.g. socket path absolute). */
int sg_config_check(const struct sg_config *c, char *err, size_t errsize);

/* "2h" -> 7200. 0 or -EINVAL. */
int sg_parse_duration(const char *s, uint64_t *ret_sec);
/* Like sg_parse_duration but in milliseconds ("1500", "1500ms", "2s"). */
int sg_parse_duration_ms(const char *s, uint64_t *ret_ms);
/* "64M", "1G", "65536" (bytes; K/M/G are 1024-based). */
int sg_parse_size(const char *s, uint64_t *ret);
/* yes/no/true/false/on/off/1/0. */
int sg_parse_bool(const char *s, bool *ret);

/* Writes the config in force as "section.key=value\n" lines. Returns length or -ENOSPC. */
int sg_config_dump(const struct sg_config *c, char *out, size_t outsize);
