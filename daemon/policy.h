/* SPDX-License-Identifier: MIT */
/*
 * The rate-limit policy: pure, in-memory decisions (no I/O, no clock: callers pass `now`).
 * The store is the durable copy; on start the manager replays attempts and locks into it.
 *
 * Keys counted: user, source (rhost grouped by sg_source_key), (user, source), and the set of
 * distinct users tried per source (spraying). Sliding windows of `window` seconds.
 * Reserve before hashing: sg_policy_reserve() counts the attempt as a failure at once, so N
 * parallel guesses can never get more than the threshold of hashes; sg_policy_settle() turns
 * it into a success (removes the reservation, resets user and (user, source)), leaves it a
 * failure, or voids it (the daemon could not serve it: removed everywhere, nothing reset). Locks grow exponentially for repeat offenders (lock_time * factor^level, capped at
 * lock_max), with history kept for history_sec, longer than any lock.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cidr.h"

enum sg_lock_kind {
        SG_LOCK_USER = 0,
        SG_LOCK_SOURCE = 1,
        SG_LOCK_USER_SOURCE = 2,
        SG_LOCK_SPRAY = 3, /* keyed by source */
        SG_LOCK_KIND_MAX,
};

struct sg_policy_config {
        uint64_t window_usec;
        uint64_t lock_time_usec;
        uint32_t lock_factor;
        uint64_t lock_max_usec;
        uint64_t history_usec;
        uint32_t user_max_failures;
        uint32_t source_max_failures;
        uint32_t user_source_max_failures;
        uint32_t spray_max_users;
        uint32_t delay_step_ms;
        uint32_t delay_max_ms;
        bool user_hard_lock;
        bool deny_root;
        unsigned ipv6_prefix;
        unsigned ipv6_prefix_wide;     /* also counted per /wide network (2x source_max); 0 = off */
        unsigned ipv6_prefix_widest;   /* and per /widest network (4x source_max); 0 = off */
        uint32_t hostname_max_failures; /* a host-name rhost (UseDNS yes) locks at this many */
        bool user_pacing;              /* beyond user_max_failures, one attempt per delay step */
        struct sg_cidr_list allowlist; /* owned by the caller; the policy keeps a pointer copy */
        size_t max_keys;               /* memory bound: least recently used unlocked keys go first */
};

struct sg_verdict {
        bool allowed;             /* false = locked or paced: compute no hash */
        bool paced;               /* when !allowed: refused by the user's pacing, not a lock */
        uint32_t delay_ms;        /* growing delay before hashing (0 when none) */
        enum sg_lock_kind kind;   /* when !allowed: which lock (SG_LOCK_USER when paced) */
        uint64_t until_usec;      /* when !allowed: the lock's end, or the next paced step */
        uint64_t reservation;     /* when allowed: hand back to sg_policy_settle */
};

/* The user name invalid input is counted under: such attempts count toward their source's
 * failures only (no user, pair or spray key; a local one counts nowhere), so garbage names
 * lock a source as wrong passwords do. No valid user name holds '~' (sg_valid_user), and
 * pseudonyms are '~' and 24 hex digits. */
#define SG_POLICY_INVALID_USER "~invalid"

/* Most locks one sg_policy_reserve() can create: one per lock kind, and the two wider source
 * keys (IPv6 /48 and /32, a host name's parent domain). */
#define SG_POLICY_NEW_LOCKS_MAX (SG_LOCK_KIND_MAX + 2)

/* Longest key + NUL. A "user@source" longer than that (a 64-byte user with a host name of
 * 255) cannot be counted: such an attempt is denied (fails closed). */
#define SG_POLICY_KEY_MAX 320

/* A lock that sg_policy_reserve/settle just created, for the store and the audit log. */
struct sg_lock_info {
        enum sg_lock_kind kind;
        char key[SG_POLICY_KEY_MAX];
        uint64_t until_usec;
        uint32_t level;
        uint64_t last_lock_usec;
        uint64_t cleared_usec;
        uint32_t failures;
};

typedef struct sg_policy sg_policy;

int sg_policy_new(const struct sg_policy_config *c, sg_policy **ret);
sg_policy *sg_policy_free(sg_policy *p);
/* Swaps the config (SIGHUP) keeping every counter and lock. */
void sg_policy_set_config(sg_policy *p, const struct sg_policy_config *c);

/* Decides for one attempt and, when allowed, reserves it (counted as a failure now).
 * rhost is PAM_RHOST ("" = local). New locks triggered by this attempt are written to
 * new_locks (up to max_new), count in *ret_new. */
void sg_policy_reserve(sg_policy *p, const char *user, const char *rhost, uint64_t now_usec,
                       struct sg_verdict *ret, struct sg_lock_info *new_locks, size_t max_new,
                       size_t *ret_new);
/* How a reserved attempt ended. FAILURE and SUCCESS have the values false and true had. */
enum sg_outcome {
        SG_OUTCOME_FAILURE = 0, /* keeps the failure counted at reserve time */
        SG_OUTCOME_SUCCESS = 1, /* proves the user */
        SG_OUTCOME_VOID = 2,    /* the daemon could not serve it (overload): counts nowhere */
};

/* Settles a reservation. SUCCESS resets user and (user, source), removes the reserved
 * failure from the source's count and lifts the locks this reservation created. FAILURE
 * keeps it. VOID removes the reserved failure from every key it was counted on (user,
 * source, pair, the source's spray set) and lifts the locks this reservation created,
 * resetting nothing else. Settling twice, or an unknown reservation, is a no-op.
 * Each lock lifted is written to lifted as it now is (until_usec 0), up to max_lifted
 * (SG_POLICY_NEW_LOCKS_MAX holds them all), their count in *ret_lifted (0 when none);
 * lifted may be NULL. The caller audits them (docs/state.md, "Lifted locks"). */
void sg_policy_settle(sg_policy *p, const char *user, const char *rhost, uint64_t reservation,
                      enum sg_outcome outcome, uint64_t now_usec, struct sg_lock_info *lifted,
                      size_t max_lifted, size_t *ret_lifted);

/* Read-only check (account phase): true when user or source is locked now. */
bool sg_policy_is_locked(sg_policy *p, const char *user, const char *rhost, uint64_t now_usec,
                         struct sg_verdict *ret);

/* Replay on start, oldest first. */
void sg_policy_replay_failure(sg_policy *p, const char *user, const char *source_key, uint64_t time_usec);
void sg_policy_replay_success(sg_policy *p, const char *user, const char *source_key, uint64_t time_usec);
/* A voided attempt counts nowhere; replaying it only lifts the locks it created (their
 * last_lock_usec is its time) when a stored row still shows them in force. Replay reports
 * no lifted lock: the live lift wrote its audit row and the lock row already. */
void sg_policy_replay_void(sg_policy *p, const char *user, const char *source_key, uint64_t time_usec);
void sg_policy_load_lock(sg_policy *p, const struct sg_lock_info *l);

/* Clears a lock and the key's counters (history level kept). key as listed. -ENOENT if
 * the key has no lock or counters. The updated row is written to ret for the store.
 * Returns 1 when a lock in force was lifted, 0 when only counters were cleared. */
int sg_policy_unlock(sg_policy *p, enum sg_lock_kind kind, const char *key, uint64_t now_usec,
                     struct sg_lock_info *ret);

/* The wider source keys an address also counts under (its IPv6 /wide and /widest networks,
 * a host name's parent domain), written to wide and widest ("" where there is none), for
 * `unlock --rhost`: a lock on the network blocks the address too. 0 or -EINVAL. */
int sg_policy_wider_keys(const sg_policy *p, const char *rhost, char wide[static SG_POLICY_KEY_MAX],
                         char widest[static SG_POLICY_KEY_MAX]);

/* Called for each key sg_policy_unlock_pairs() cleared: the updated row for the store, and
 * whether a lock in force was lifted. A negative return stops the walk and is returned. */
typedef int (*sg_policy_unlock_cb)(void *userdata, const struct sg_lock_info *l, bool was_locked);
/* Clears, as sg_policy_unlock() does, every (user, source) key with a lock in force or
 * counters: those of `user` when user is not NULL, those of `source` (an address, grouped
 * like the counters, or a listed source key) when source is not NULL, of both when both are
 * given. No limit on how many. Returns the number of keys cleared, or cb's error (the keys
 * cleared before it stay cleared). */
int sg_policy_unlock_pairs(sg_policy *p, const char *user, const char *source, uint64_t now_usec,
                           sg_policy_unlock_cb cb, void *userdata);

typedef int (*sg_policy_lock_cb)(void *userdata, const struct sg_lock_info *l);
/* Locks in force at now_usec. */
int sg_policy_foreach_lock(sg_policy *p, uint64_t now_usec, sg_policy_lock_cb cb, void *userdata);
size_t sg_policy_lock_count(sg_policy *p, uint64_t now_usec);

/* Forgets counters older than the window and history older than history_usec. */
void sg_policy_gc(sg_policy *p, uint64_t now_usec);
/* Keys held in memory (status, tests). */
size_t sg_policy_key_count(const sg_policy *p);

/* ---- fleet locks (docs/state.md): decisions of the fleet helper, kept beside the local lock
 * of the same key. They refuse an attempt exactly like a local lock in force (the allowlist
 * still wins), expire at until_usec, and are never created, lifted or extended by attempts:
 * only sg_policy_fleet_lock/_unlock and an administrator's unlock change them. */
#define SG_POLICY_HOST_MAX 33 /* 32 hex digits + NUL */

struct sg_fleet_lock {
        enum sg_lock_kind kind;       /* SG_LOCK_SOURCE or SG_LOCK_SPRAY */
        char key[SG_POLICY_KEY_MAX];  /* as sg_policy_fleet_key() made it */
        uint64_t until_usec;
        char origin_host[SG_POLICY_HOST_MAX];
        uint64_t decision_id;
        uint64_t applied_usec;
};

/* The key a fleet decision names, as a local lock of that kind keys it: an IP address
 * (IPv6 grouped to ipv6_prefix), or an IPv6 network at ipv6_prefix (for source also at
 * ipv6_prefix_wide or ipv6_prefix_widest), written canonically to out. Host names and other
 * networks are refused: -EINVAL (also for a kind other than source or spray). */
int sg_policy_fleet_key(const sg_policy *p, enum sg_lock_kind kind, const char *key,
                        char out[static SG_POLICY_KEY_MAX]);
/* Whether a source key (an address or a network key) is on the allowlist. */
bool sg_policy_key_allowlisted(const sg_policy *p, const char *key);
/* Sets (replaces) the fleet lock of l->kind/l->key; l->key must come from
 * sg_policy_fleet_key(). 0; -EINVAL for a bad kind or key; -ENOSPC when the key table is
 * full of locked keys (nothing changed). */
int sg_policy_fleet_lock(sg_policy *p, const struct sg_fleet_lock *l);
/* Removes the fleet lock of kind/key (as sg_policy_fleet_key() made it): 1 when one was in
 * force at now_usec, 0 when there was none in force (an expired one is removed too). */
int sg_policy_fleet_unlock(sg_policy *p, enum sg_lock_kind kind, const char *key, uint64_t now_usec);
/* As sg_policy_fleet_unlock(), only when the fleet lock of kind/key came from origin_host
 * (a lifted lockout: docs/state.md, "Lifted locks"): 1 or 0 as there; -ENOENT when kind/key
 * holds no fleet lock, -ESRCH when it came from another host (left as it is). Local locks
 * are never touched. */
int sg_policy_fleet_unlock_origin(sg_policy *p, enum sg_lock_kind kind, const char *key, const char *origin_host,
                                  uint64_t now_usec);
/* The fleet lock of kind/key (key as sg_policy_fleet_key() made it), expired or not:
 * 0, or -ENOENT when there is none. */
int sg_policy_fleet_get(sg_policy *p, enum sg_lock_kind kind, const char *key, struct sg_fleet_lock *ret);
typedef int (*sg_policy_fleet_cb)(void *userdata, const struct sg_fleet_lock *l);
/* Fleet locks in force at now_usec (allowlisted ones included: they are listed, not enforced). */
int sg_policy_foreach_fleet_lock(sg_policy *p, uint64_t now_usec, sg_policy_fleet_cb cb, void *userdata);
size_t sg_policy_fleet_lock_count(sg_policy *p, uint64_t now_usec);

const char *sg_lock_kind_name(enum sg_lock_kind k);
int sg_lock_kind_from_name(const char *s); /* -EINVAL */
