/* SPDX-License-Identifier: MIT */
/*
 * secguard-fleetd's pure parts (no libpq, no I/O but the password file): what a shipped audit
 * row publishes, what a central decision must look like before it reaches the local daemon,
 * the host id. Unit-tested in tests/unit/test_fleetd_util.c; docs/fleet.md is the design.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FLEET_HOST_ID_LEN 32
#define FLEET_KEY_MAX 64       /* an address or a prefix: "2001:db8:1:2::/64" is 17 */
#define FLEET_PASSWORD_MAX 1024

/* The app id mixed into /etc/machine-id (sd_id128_get_machine_app_specific), so the host id
 * PostgreSQL sees cannot be traced back to the machine id. */
#define FLEET_APP_ID "34ded693ebdf408d86d6560158a5aec2"

/* A lock kind that may cross hosts: "source" or "spray". */
bool fleet_kind_valid(const char *kind);
/* An address or address/prefix as the daemon keys a source lock (sg_cidr_parse accepts it),
 * at most FLEET_KEY_MAX bytes. Host names are never fleet keys. */
bool fleet_key_valid(const char *key);
/* Exactly 32 lowercase hex digits. */
bool fleet_host_id_valid(const char *s);

/* A `lockout` audit row (reason = kind, rhost = source, detail "KIND KEY locked for N s after
 * ..."): 1 and kind/key/seconds when it is a fleet-publishable lock (kind source or spray,
 * the detail's KIND equal to reason, KEY a valid fleet key, 0 < N <= 100 years), 0 when it is
 * not one to publish. key must hold FLEET_KEY_MAX + 1 bytes. */
int fleet_parse_lockout(const char *reason, const char *detail, char *key, uint64_t *ret_secs);

/* An `unlock` audit row with reason `lifted` (the daemon lifted a lock the succeeding or
 * void attempt had set; detail "KIND KEY lock lifted: ..."): 1 and kind ("source" or
 * "spray", static) and key when kind is one that crosses hosts and key a valid fleet key, 0
 * otherwise. key must hold FLEET_KEY_MAX + 1 bytes. */
int fleet_parse_lifted(const char *detail, const char **ret_kind, char *key);

/* A decision as read from PostgreSQL, before it goes to the daemon. */
struct fleet_decision {
        int64_t id;
        bool lock;              /* action: lock or unlock */
        const char *kind;
        const char *key;
        int64_t until_usec;     /* lock only */
        const char *origin_host;
        const char *reason;     /* unlock: "fleet" (unlock --fleet) or "lifted" (origin only) */
};

/* 0 when d may be sent to the daemon, else -EINVAL with why (a short keyword such as
 * "bad_kind") and a message naming the problem in msg, or -ESTALE (why "expired") for a lock
 * that has already ended. now and max_lock in microseconds. */
int fleet_decision_check(const struct fleet_decision *d, uint64_t now_usec, uint64_t max_lock_usec,
                         const char **why, char *msg, size_t msgsize);

/* The host id: cfg_host_id when set (validated), else derived from /etc/machine-id with
 * FLEET_APP_ID. 0 or -errno with err. out holds FLEET_HOST_ID_LEN + 1 bytes. */
int fleet_host_id(const char *cfg_host_id, char *out, char *err, size_t errsize);

/* Reads the PostgreSQL password: from $CREDENTIALS_DIRECTORY/secguard-fleet-password when
 * that exists, else from path (when not empty). The file must be a regular file, not a
 * symlink, owned by the effective uid or root, without group/other permission bits; one
 * trailing newline is dropped; no NUL or other newline inside. 1 when read, 0 when there is
 * no password to read (no credential, empty path), -errno with err otherwise. The password
 * never appears in err. */
int fleet_read_password(const char *path, char *out, size_t outsize, char *err, size_t errsize);

/* Well-formed UTF-8 (no overlongs, surrogates or code points above U+10FFFF), len bytes. */
bool fleet_utf8_valid(const char *s, size_t len);

/* An inclusive range of audit ids. */
struct fleet_range {
        int64_t first, last;
};

/* Splits the missing ids gap.first..gap.last into consecutive pieces, each either inside a
 * range the host reported as pruned (pruned[], any order, may overlap) or not (a true gap).
 * Writes at most outmax pieces in id order to out and is_pruned; returns how many pieces
 * there are (more than outmax: the rest was not written). */
size_t fleet_gap_split(struct fleet_range gap, const struct fleet_range *pruned, size_t npruned,
                       struct fleet_range *out, bool *is_pruned, size_t outmax);
