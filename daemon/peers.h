/* SPDX-License-Identifier: MIT */
/*
 * Noisy peers: pure, in-memory limits (no I/O, no clock: callers pass a monotonic `now`).
 *
 * Events any local user can cause at will (a refused request, a malformed frame) are limited
 * per peer uid, so nobody can fill the disk or push real evidence out of a max_rows trail.
 * The same holds for login rows that cost a remote guesser nothing (attempts blocked by a
 * lock, invalid input): those are limited per source (rhost; "" = local logins).
 * A token bucket per uid or per source, shared by its kinds: SG_PEER_BURST events at once, then one per
 * SG_PEER_REFILL_USEC. Beyond that they are counted, not written. The counts come back as
 * summaries ("N similar events from uid U suppressed", one per kind) when that uid may write
 * again, at most SG_PEER_SUMMARY_USEC after the first one held back (at the next event or
 * flush), when its slot is reused, or on a forced flush. Root is limited like anyone: a
 * root client sending garbage is a bug, and its flood would bury evidence just the same.
 * Memory: a fixed table of SG_PEER_SLOTS buckets (uids and sources); the one least recently
 * seen is reused. The
 * times given here are monotonic (any clock that does not jump). The daemon keeps one
 * sg_peers for its whole life, so a reload keeps the buckets.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SG_PEER_BURST 20U
#define SG_PEER_REFILL_USEC 1000000ULL
#define SG_PEER_SUMMARY_USEC (60ULL * 1000000ULL)
#define SG_PEER_SLOTS 256U
#define SG_PEER_SOURCE_MAX 256U /* a valid rhost fits (sg_valid_rhost) */

enum sg_peer_event {
        SG_PEER_DENIED = 0,         /* peer_denied */
        SG_PEER_PROTOCOL_ERROR = 1, /* protocol_error */
        SG_PEER_AUTH_BLOCKED = 2,   /* auth_blocked (locked), per source */
        SG_PEER_AUTH_INVALID = 3,   /* auth_failure, reason invalid_input, per source */
        SG_PEER_AUTH_PACED = 4,     /* auth_blocked (paced), per source */
        SG_PEER_FLEET_REJECTED = 5, /* fleet_rejected: a refused fleet decision, per uid */
        SG_PEER_EVENT_MAX,
};

struct sg_peer_summary {
        bool by_source;          /* a source's bucket (then source), else a uid's (uid) */
        uint32_t uid;
        char source[SG_PEER_SOURCE_MAX];
        enum sg_peer_event kind;
        uint64_t suppressed;
};

/* Summaries one sg_peers_event() call can hand back: its bucket's and a reused slot's. */
#define SG_PEER_SUMMARY_MAX (2 * SG_PEER_EVENT_MAX)

enum sg_peer_verdict {
        SG_PEER_WRITE = 0,          /* write the event */
        SG_PEER_SUPPRESS_FIRST = 1, /* count it; the first held back since the last summary */
        SG_PEER_SUPPRESS = 2,       /* count it */
};

typedef struct sg_peers sg_peers;

/* 0, or -EINVAL (ret NULL), -ENOMEM. */
int sg_peers_new(sg_peers **ret);
/* NULL-safe; returns NULL. Counts still held are lost: flush with force first. */
sg_peers *sg_peers_free(sg_peers *p);

/* Decides for one event of `kind` (an unknown kind counts as SG_PEER_PROTOCOL_ERROR) from
 * `uid`. Summaries due now are written to out (write them before the event), their number to
 * *ret_n. */
enum sg_peer_verdict sg_peers_event(sg_peers *p, uint32_t uid, enum sg_peer_event kind, uint64_t mono_usec,
                                    struct sg_peer_summary out[static SG_PEER_SUMMARY_MAX], size_t *ret_n);
/* The same for a login row from `source` (rhost, "" = local; longer than SG_PEER_SOURCE_MAX - 1
 * is cut), in the source's own bucket. */
enum sg_peer_verdict sg_peers_source_event(sg_peers *p, const char *source, enum sg_peer_event kind,
                                           uint64_t mono_usec, struct sg_peer_summary out[static SG_PEER_SUMMARY_MAX],
                                           size_t *ret_n);
/* Hands out the summaries due at mono_usec (a minute since the first held back), or all of
 * them with force (at shutdown), up to max; returns how many. A uid's summaries are never
 * split across calls; when they do not fit, the next call goes on. Cheap when nothing is due. */
size_t sg_peers_flush(sg_peers *p, uint64_t mono_usec, bool force, struct sg_peer_summary *out, size_t max);

/* The audit event keyword ("peer_denied", "protocol_error", "auth_blocked", "auth_failure",
 * "fleet_rejected");
 * NULL for an unknown kind. */
const char *sg_peer_event_name(enum sg_peer_event kind);
