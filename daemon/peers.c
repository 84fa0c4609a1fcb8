/* SPDX-License-Identifier: MIT */
/*
 * Noisy-peer buckets (see peers.h): pure code, every time comes from the caller.
 *
 * A bucket's credit is banked refill time: one event costs SG_PEER_REFILL_USEC, and the bank
 * holds at most SG_PEER_BURST of them. `due` lets the periodic flush skip the table walk
 * until the first held-back count can be due.
 */
#include "peers.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct peer_slot {
        bool used;
        bool by_source;
        uint32_t uid;
        char source[SG_PEER_SOURCE_MAX];
        uint64_t credit;
        uint64_t seen_usec;  /* last event: refill base, and the order slots are reused in */
        uint64_t held_since; /* first event held back since the last summary (when any held) */
        uint64_t held[SG_PEER_EVENT_MAX];
};

struct sg_peers {
        struct peer_slot slots[SG_PEER_SLOTS];
        uint64_t due; /* no summary is due before this (UINT64_MAX: none held) */
};

static const char *const event_names[SG_PEER_EVENT_MAX] = {
        [SG_PEER_DENIED] = "peer_denied",
        [SG_PEER_PROTOCOL_ERROR] = "protocol_error",
        [SG_PEER_AUTH_BLOCKED] = "auth_blocked",
        [SG_PEER_AUTH_INVALID] = "auth_failure",
        [SG_PEER_AUTH_PACED] = "auth_blocked",
        [SG_PEER_FLEET_REJECTED] = "fleet_rejected",
};

const char *sg_peer_event_name(enum sg_peer_event kind) {
        return (unsigned) kind < SG_PEER_EVENT_MAX ? event_names[kind] : NULL;
}

int sg_peers_new(sg_peers **ret) {
        sg_peers *p;

        if (!ret)
                return -EINVAL;
        p = calloc(1, sizeof *p);
        if (!p)
                return -ENOMEM;
        p->due = UINT64_MAX;
        *ret = p;
        return 0;
}

sg_peers *sg_peers_free(sg_peers *p) {
        free(p);
        return NULL;
}

static uint64_t sat_add(uint64_t a, uint64_t b) {
        return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static bool slot_holds(const struct peer_slot *s) {
        for (unsigned k = 0; k < SG_PEER_EVENT_MAX; k++)
                if (s->held[k] > 0)
                        return true;
        return false;
}

static size_t slot_held_kinds(const struct peer_slot *s) {
        size_t n = 0;

        for (unsigned k = 0; k < SG_PEER_EVENT_MAX; k++)
                n += s->held[k] > 0;
        return n;
}

/* Moves the slot's counts into out[*n...] (room checked by the caller). */
static void slot_take(struct peer_slot *s, struct sg_peer_summary *out, size_t *n) {
        for (unsigned k = 0; k < SG_PEER_EVENT_MAX; k++) {
                if (s->held[k] == 0)
                        continue;
                out[*n] = (struct sg_peer_summary) { .by_source = s->by_source, .uid = s->uid,
                                                     .kind = (enum sg_peer_event) k, .suppressed = s->held[k] };
                memcpy(out[*n].source, s->source, sizeof s->source);
                (*n)++;
                s->held[k] = 0;
        }
}

static uint64_t slot_summary_at(const struct peer_slot *s) {
        return sat_add(s->held_since, SG_PEER_SUMMARY_USEC);
}

static bool slot_summary_due(const struct peer_slot *s, uint64_t now) {
        return now >= s->held_since && now - s->held_since >= SG_PEER_SUMMARY_USEC;
}

static bool slot_is(const struct peer_slot *s, const struct peer_slot *who) {
        if (!s->used || s->by_source != who->by_source)
                return false;
        return who->by_source ? strcmp(s->source, who->source) == 0 : s->uid == who->uid;
}

/* The bucket's slot, or a fresh one: a free slot, else the one seen least recently (whose held
 * counts go to out first, so reusing it loses nothing). who names the bucket. */
static struct peer_slot *slot_for(sg_peers *p, const struct peer_slot *who, uint64_t now,
                                  struct sg_peer_summary *out, size_t *n) {
        struct peer_slot *s, *victim = NULL;

        for (size_t i = 0; i < SG_PEER_SLOTS; i++) {
                s = &p->slots[i];
                if (slot_is(s, who))
                        return s;
                if (!victim || (victim->used && (!s->used || s->seen_usec < victim->seen_usec)))
                        victim = s;
        }
        if (victim->used)
                slot_take(victim, out, n);
        *victim = *who;
        victim->used = true;
        victim->credit = SG_PEER_BURST * SG_PEER_REFILL_USEC;
        victim->seen_usec = now;
        return victim;
}

/* Banks the time since the slot's last event, up to a full burst. A clock that goes back
 * refills nothing. */
static void slot_refill(struct peer_slot *s, uint64_t now) {
        const uint64_t cap = SG_PEER_BURST * SG_PEER_REFILL_USEC;
        uint64_t elapsed;

        if (now <= s->seen_usec)
                return;
        elapsed = now - s->seen_usec;
        s->credit = elapsed >= cap - s->credit ? cap : s->credit + elapsed;
        s->seen_usec = now;
}

static enum sg_peer_verdict bucket_event(sg_peers *p, const struct peer_slot *who, enum sg_peer_event kind,
                                         uint64_t mono_usec, struct sg_peer_summary *out, size_t *ret_n) {
        enum sg_peer_verdict v;
        struct peer_slot *s;
        size_t n = 0;

        assert(p && out && ret_n);
        if ((unsigned) kind >= SG_PEER_EVENT_MAX)
                kind = SG_PEER_PROTOCOL_ERROR;
        s = slot_for(p, who, mono_usec, out, &n);
        slot_refill(s, mono_usec);
        if (s->credit >= SG_PEER_REFILL_USEC) {
                s->credit -= SG_PEER_REFILL_USEC;
                slot_take(s, out, &n); /* writing resumes: say what was held back first */
                v = SG_PEER_WRITE;
        } else if (!slot_holds(s)) {
                s->held[kind] = 1;
                s->held_since = mono_usec;
                if (slot_summary_at(s) < p->due)
                        p->due = slot_summary_at(s);
                v = SG_PEER_SUPPRESS_FIRST;
        } else {
                s->held[kind]++;
                if (slot_summary_due(s, mono_usec))
                        slot_take(s, out, &n); /* a flood that never pauses: once a minute */
                v = SG_PEER_SUPPRESS;
        }
        *ret_n = n;
        return v;
}

enum sg_peer_verdict sg_peers_event(sg_peers *p, uint32_t uid, enum sg_peer_event kind, uint64_t mono_usec,
                                    struct sg_peer_summary out[static SG_PEER_SUMMARY_MAX], size_t *ret_n) {
        struct peer_slot who = { .uid = uid };

        return bucket_event(p, &who, kind, mono_usec, out, ret_n);
}

enum sg_peer_verdict sg_peers_source_event(sg_peers *p, const char *source, enum sg_peer_event kind,
                                           uint64_t mono_usec, struct sg_peer_summary out[static SG_PEER_SUMMARY_MAX],
                                           size_t *ret_n) {
        struct peer_slot who = { .by_source = true };

        assert(source);
        snprintf(who.source, sizeof who.source, "%s", source);
        return bucket_event(p, &who, kind, mono_usec, out, ret_n);
}

size_t sg_peers_flush(sg_peers *p, uint64_t mono_usec, bool force, struct sg_peer_summary *out, size_t max) {
        uint64_t due = UINT64_MAX;
        size_t n = 0;

        assert(p && (out || max == 0));
        if (!force && mono_usec < p->due)
                return 0;
        for (size_t i = 0; i < SG_PEER_SLOTS; i++) {
                struct peer_slot *s = &p->slots[i];

                if (!s->used || !slot_holds(s))
                        continue;
                if (!force && !slot_summary_due(s, mono_usec)) {
                        if (slot_summary_at(s) < due)
                                due = slot_summary_at(s);
                        continue;
                }
                if (n + slot_held_kinds(s) > max) {
                        due = 0; /* no room: the next call goes on */
                        continue;
                }
                slot_take(s, out, &n);
        }
        p->due = due;
        return n;
}
