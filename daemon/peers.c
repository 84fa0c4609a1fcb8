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
#include <stdlib.h>

struct peer_slot {
        bool used;
        uint32_t uid;
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
                out[(*n)++] = (struct sg_peer_summary) { s->uid, (enum sg_peer_event) k, s->held[k] };
                s->held[k] = 0;
        }
}

static uint64_t slot_summary_at(const struct peer_slot *s) {
        return sat_add(s->held_since, SG_PEER_SUMMARY_USEC);
}

static bool slot_summary_due(const struct peer_slot *s, uint64_t now) {
        return now >= s->held_since && now - s->held_since >= SG_PEER_SUMMARY_USEC;
}

/* The uid's slot, or a fresh one: a free slot, else the one seen least recently (whose held
 * counts go to out first, so reusing it loses nothing). */
static struct peer_slot *slot_for(sg_peers *p, uint32_t uid, uint64_t now, struct sg_peer_summary *out,
                                  size_t *n) {
        struct peer_slot *s, *victim = NULL;

        for (size_t i = 0; i < SG_PEER_SLOTS; i++) {
                s = &p->slots[i];
                if (s->used && s->uid == uid)
                        return s;
                if (!victim || (victim->used && (!s->used || s->seen_usec < victim->seen_usec)))
                        victim = s;
        }
        if (victim->used)
                slot_take(victim, out, n);
        *victim = (struct peer_slot) {
                .used = true,
                .uid = uid,
                .credit = SG_PEER_BURST * SG_PEER_REFILL_USEC,
                .seen_usec = now,
        };
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

enum sg_peer_verdict sg_peers_event(sg_peers *p, uint32_t uid, enum sg_peer_event kind, uint64_t mono_usec,
                                    struct sg_peer_summary out[static SG_PEER_SUMMARY_MAX], size_t *ret_n) {
        enum sg_peer_verdict v;
        struct peer_slot *s;
        size_t n = 0;

        assert(p && out && ret_n);
        if ((unsigned) kind >= SG_PEER_EVENT_MAX)
                kind = SG_PEER_PROTOCOL_ERROR;
        s = slot_for(p, uid, mono_usec, out, &n);
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
