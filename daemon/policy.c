/* SPDX-License-Identifier: MIT */
/*
 * Rate-limit policy: pure code, every time comes from the caller.
 *
 * Each key (kind + string) keeps a sorted ring of its newest failure timestamps, only as many
 * as its threshold (or the growing delay) needs; the spray key keeps (user hash, last time)
 * slots instead. Keys live in a chained hash table keyed with SipHash (crypto_shorthash) under
 * a random per-policy key, so a client choosing user names or host names cannot flood one
 * bucket. An LRU list bounds memory at max_keys.
 *
 * Choices the header leaves open, made here:
 * - Allowlisted sources are exempt from every lock (user locks too) and their attempts count
 *   nowhere: no source, user_source, spray or user failures, no delay.
 * - A lock is created by the reservation that reaches the threshold; that reservation is still
 *   allowed. If it then succeeds, the locks it created are lifted (a success counts nowhere, so
 *   without it no threshold was reached): a user who mistypes 4 times and gets the 5th right is
 *   not locked out. The stored row is not rewritten (settle has no output); on restart
 *   replay_success() lifts it again, knowing it by last_lock_usec == the success's time.
 * - Thresholds of 0 disable that kind of lock. Thresholds above RING_MAX act as RING_MAX.
 * - The user key locks only with user_hard_lock, and never "root" unless deny_root.
 * - Any lock in force denies, whatever the config says now (loaded or created earlier).
 * - A reservation is a unique, monotone stamp: max(now, previous stamp + 1). It is also the
 *   timestamp stored in the rings, so settle() finds the exact entry to remove.
 * - A void outcome (the daemon could not serve the attempt) takes its stamp out of every key
 *   and lifts the locks it created, as if it never was; the stored attempt row says VOID, so
 *   replay skips it and replay_void() lifts its locks again.
 * - Success clears user and user_source up to the reservation's stamp (cleared_usec), as
 *   replay_success() does with the attempt's time, so live and replayed state agree.
 * - sg_policy_unlock() touches only the named key (the caller unlocks SOURCE and SPRAY for an
 *   address; user_source keys "user@source" are their own keys, cleared for a user or a
 *   source by sg_policy_unlock_pairs()).
 * - A key that does not fit SG_POLICY_KEY_MAX cannot be counted: the attempt is denied.
 * - When max_keys is reached, the least recently used key without a lock in force is evicted
 *   (its history level is lost: the store keeps the durable copy). When every key is locked,
 *   a new key is not created and the attempt is decided without it: never a wrong denial.
 */
#include "policy.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#define RING_MAX 1024U           /* timestamps per key: bounds memory per key */
#define PENDING_MAX 4096U        /* reservations awaiting settle (beyond: settle is a no-op) */
#define DEFAULT_MAX_KEYS 65536U  /* when the config says 0 */
#define MIN_MAX_KEYS 8U          /* one attempt touches up to 4 keys */
#define BUCKETS_MIN 64U
#define BUCKETS_MAX (1U << 24)

enum {
        SEED_KEY,     /* table keys */
        SEED_USER,    /* user names in spray sets */
        SEED_BINDING, /* ties a reservation to its (user, source) */
        SEED_MAX,
};

struct spray_slot {
        uint64_t user_hash;
        uint64_t last_usec;
};

struct entry {
        struct entry *hnext;
        struct entry *lru_prev, *lru_next; /* prev: more recently used */
        uint64_t hash;
        uint64_t pin; /* == policy op: in use by the current call, not evictable */

        uint64_t until_usec, last_lock_usec, cleared_usec;
        uint64_t lock_stamp; /* the reservation that created the lock (0: loaded) */
        uint32_t level, failures;

        /* SPRAY: slots[0..n) unordered; others: ring of cap timestamps, oldest at head */
        uint32_t cap, n, head;
        uint64_t *ring;
        struct spray_slot *slots;

        /* a fleet lock on this key (SOURCE, SPRAY): fleet_until_usec 0 = none */
        uint64_t fleet_until_usec, fleet_decision_id, fleet_applied_usec;
        char fleet_host[SG_POLICY_HOST_MAX];

        /* USER: the next attempt pacing admits, remote and local (0 = none yet) */
        uint64_t pace_usec, pace_local_usec;

        enum sg_lock_kind kind;
        int tier; /* SOURCE: enum tier, from the key */
        size_t keylen;
        char key[];
};

struct pending {
        uint64_t stamp; /* 0 = free or settled */
        uint64_t binding;
};

struct sg_policy {
        struct sg_policy_config c;
        uint8_t seed[SEED_MAX][crypto_shorthash_KEYBYTES];

        struct entry **buckets;
        size_t nbuckets, n;
        struct entry *lru_head, *lru_tail;

        uint64_t op;
        uint64_t last_stamp;
        uint64_t now_hint; /* newest time seen, for calls that carry none (load_lock) */

        struct pending pending[PENDING_MAX];
        size_t pending_next;
};

/* The keys one attempt counts under: a slot per lock kind, and two wider source keys (an
 * IPv6 address's /48 and /32 networks, a host name's parent domain), counted as sources. */
enum {
        SLOT_WIDE = SG_LOCK_KIND_MAX,
        SLOT_WIDEST,
        SLOT_MAX,
};

/* How a source key is limited. */
enum tier {
        TIER_SOURCE,      /* an address, or its ipv6_prefix network */
        TIER_WIDE,        /* ipv6_prefix_wide network: 2 x source_max_failures */
        TIER_WIDEST,      /* ipv6_prefix_widest network: 4 x source_max_failures */
        TIER_HOST,        /* a host name (UseDNS yes): hostname_max_failures */
        TIER_HOST_DOMAIN, /* "*.parent.domain" of host names: source_max_failures */
};

struct attempt_keys {
        bool local;       /* rhost "": user key only */
        bool source_only; /* SG_POLICY_INVALID_USER: source keys only */
        bool allowlisted;
        size_t user_len, source_len, user_source_len, wide_len, widest_len;
        char user[SG_POLICY_KEY_MAX];
        char source[SG_POLICY_KEY_MAX];
        char user_source[SG_POLICY_KEY_MAX];
        char wide[SG_POLICY_KEY_MAX];
        char widest[SG_POLICY_KEY_MAX];
};

static enum sg_lock_kind slot_kind(int slot) {
        return slot >= SLOT_WIDE ? SG_LOCK_SOURCE : (enum sg_lock_kind) slot;
}

static const char *const kind_names[SG_LOCK_KIND_MAX] = {
        [SG_LOCK_USER] = "user",
        [SG_LOCK_SOURCE] = "source",
        [SG_LOCK_USER_SOURCE] = "user_source",
        [SG_LOCK_SPRAY] = "spray",
};

const char *sg_lock_kind_name(enum sg_lock_kind k) {
        if ((unsigned) k >= SG_LOCK_KIND_MAX)
                return NULL;
        return kind_names[k];
}

int sg_lock_kind_from_name(const char *s) {
        if (!s)
                return -EINVAL;
        for (int k = 0; k < SG_LOCK_KIND_MAX; k++)
                if (strcmp(s, kind_names[k]) == 0)
                        return k;
        return -EINVAL;
}

/* ---- small arithmetic helpers ---- */

static uint64_t sat_add(uint64_t a, uint64_t b) {
        return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static uint64_t window_cutoff(const sg_policy *p, uint64_t now) {
        return now > p->c.window_usec ? now - p->c.window_usec : 0;
}

static void note_now(sg_policy *p, uint64_t now) {
        if (now > p->now_hint)
                p->now_hint = now;
}

/* Unique and monotone, never 0: bursts within one microsecond drift by a few microseconds. */
static uint64_t next_stamp(sg_policy *p, uint64_t now) {
        p->last_stamp = now > p->last_stamp ? now : p->last_stamp + 1;
        return p->last_stamp;
}

static uint64_t hash_bytes(const sg_policy *p, unsigned seed, const void *a, size_t alen,
                           const void *b, size_t blen) {
        uint8_t buf[1 + 2 * SG_POLICY_KEY_MAX + 1], out[crypto_shorthash_BYTES];
        uint64_t h;

        assert(alen + blen + 1 <= sizeof buf);
        memcpy(buf, a, alen);
        buf[alen] = 0; /* separator: neither part holds a NUL */
        if (blen > 0)
                memcpy(buf + alen + 1, b, blen);
        crypto_shorthash(out, buf, alen + 1 + blen, p->seed[seed]);
        memcpy(&h, out, sizeof h);
        return h;
}

static uint64_t key_hash(const sg_policy *p, enum sg_lock_kind kind, const char *key, size_t len) {
        uint8_t k = (uint8_t) kind;

        return hash_bytes(p, SEED_KEY, &k, 1, key, len);
}

static uint64_t user_hash(const sg_policy *p, const struct attempt_keys *k) {
        return hash_bytes(p, SEED_USER, k->user, k->user_len, NULL, 0);
}

/* ---- per-key capacities ---- */

static uint32_t clamp_cap(uint64_t v) {
        return v < 1 ? 1 : v > RING_MAX ? RING_MAX : (uint32_t) v;
}

static uint32_t source_threshold(const sg_policy *p, int tier) {
        uint64_t t = p->c.source_max_failures;

        switch (tier) {
        case TIER_WIDE:
                t *= 2;
                break;
        case TIER_WIDEST:
                t *= 4;
                break;
        case TIER_HOST:
                t = p->c.hostname_max_failures;
                break;
        default:
                break;
        }
        return t > UINT32_MAX ? UINT32_MAX : (uint32_t) t;
}

static uint32_t threshold(const sg_policy *p, enum sg_lock_kind kind, int tier) {
        uint32_t t = 0;

        switch (kind) {
        case SG_LOCK_USER:
                t = p->c.user_max_failures;
                break;
        case SG_LOCK_SOURCE:
                t = source_threshold(p, tier);
                break;
        case SG_LOCK_USER_SOURCE:
                t = p->c.user_source_max_failures;
                break;
        case SG_LOCK_SPRAY:
                t = p->c.spray_max_users;
                break;
        default:
                break;
        }
        return t > RING_MAX ? RING_MAX : t;
}

/* Failures needed to reach delay_max: the user keys must count that far even without a lock. */
static uint64_t delay_need(const sg_policy *p) {
        if (p->c.delay_step_ms == 0)
                return 0;
        return ((uint64_t) p->c.delay_max_ms + p->c.delay_step_ms - 1) / p->c.delay_step_ms;
}

static uint32_t wanted_cap(const sg_policy *p, enum sg_lock_kind kind, int tier) {
        uint64_t t = threshold(p, kind, tier);

        if (kind == SG_LOCK_USER || kind == SG_LOCK_USER_SOURCE)
                t = t > delay_need(p) ? t : delay_need(p);
        return clamp_cap(t);
}

/* ---- timestamp ring, sorted oldest first ---- */

static uint64_t *ring_at(struct entry *e, uint32_t i) {
        return &e->ring[(e->head + i) % e->cap];
}

static void ring_insert(struct entry *e, uint64_t t) {
        uint32_t i;

        if (e->n == e->cap) {
                if (*ring_at(e, 0) > t)
                        return; /* older than everything kept: the threshold does not need it */
                e->head = (e->head + 1) % e->cap;
                e->n--;
        }
        for (i = e->n; i > 0 && *ring_at(e, i - 1) > t; i--)
                *ring_at(e, i) = *ring_at(e, i - 1);
        *ring_at(e, i) = t;
        e->n++;
}

static bool ring_remove(struct entry *e, uint64_t t) {
        for (uint32_t i = e->n; i > 0; i--) {
                if (*ring_at(e, i - 1) != t)
                        continue;
                for (uint32_t j = i - 1; j + 1 < e->n; j++)
                        *ring_at(e, j) = *ring_at(e, j + 1);
                e->n--;
                return true;
        }
        return false;
}

/* Drops every entry <= t (those are sorted first). */
static void ring_drop_upto(struct entry *e, uint64_t t) {
        while (e->n > 0 && *ring_at(e, 0) <= t) {
                e->head = (e->head + 1) % e->cap;
                e->n--;
        }
}

static uint32_t ring_count(struct entry *e, uint64_t cutoff) {
        uint32_t c = 0;

        for (uint32_t i = e->n; i > 0 && *ring_at(e, i - 1) >= cutoff; i--)
                c++;
        return c;
}

/* ---- spray slots ---- */

static void spray_upsert(struct entry *e, uint64_t uh, uint64_t t) {
        uint32_t oldest = 0;

        for (uint32_t i = 0; i < e->n; i++) {
                if (e->slots[i].user_hash == uh) {
                        if (t > e->slots[i].last_usec)
                                e->slots[i].last_usec = t;
                        return;
                }
                if (e->slots[i].last_usec < e->slots[oldest].last_usec)
                        oldest = i;
        }
        if (e->n < e->cap) {
                e->slots[e->n++] = (struct spray_slot) { uh, t };
                return;
        }
        /* Full: keep the most recent users, that is what the window looks at. */
        if (e->slots[oldest].last_usec <= t)
                e->slots[oldest] = (struct spray_slot) { uh, t };
}

static void spray_remove_at(struct entry *e, uint32_t i) {
        e->slots[i] = e->slots[--e->n];
}

static void spray_remove_user(struct entry *e, uint64_t uh, uint64_t upto) {
        for (uint32_t i = 0; i < e->n; i++)
                if (e->slots[i].user_hash == uh && e->slots[i].last_usec <= upto) {
                        spray_remove_at(e, i);
                        return;
                }
}

/* The user's slot if the attempt stamped `stamp` set it: back to `previous` (0: remove). */
static void spray_void_user(struct entry *e, uint64_t uh, uint64_t stamp, uint64_t previous) {
        for (uint32_t i = 0; i < e->n; i++) {
                if (e->slots[i].user_hash != uh || e->slots[i].last_usec != stamp)
                        continue;
                if (previous > 0)
                        e->slots[i].last_usec = previous;
                else
                        spray_remove_at(e, i);
                return;
        }
}

static void spray_drop_upto(struct entry *e, uint64_t t) {
        for (uint32_t i = 0; i < e->n;)
                if (e->slots[i].last_usec <= t)
                        spray_remove_at(e, i);
                else
                        i++;
}

static uint32_t spray_count(struct entry *e, uint64_t cutoff) {
        uint32_t c = 0;

        for (uint32_t i = 0; i < e->n; i++)
                if (e->slots[i].last_usec >= cutoff)
                        c++;
        return c;
}

/* ---- counters of any kind ---- */

static uint32_t entry_count(struct entry *e, uint64_t cutoff) {
        return e->kind == SG_LOCK_SPRAY ? spray_count(e, cutoff) : ring_count(e, cutoff);
}

static void entry_drop_upto(struct entry *e, uint64_t t) {
        if (e->kind == SG_LOCK_SPRAY)
                spray_drop_upto(e, t);
        else
                ring_drop_upto(e, t);
}

static void entry_clear_counters(struct entry *e) {
        e->n = 0;
        e->head = 0;
}

/* Reallocates the counters when the config changed their size, keeping the newest. On
 * allocation failure the old size stays: still correct, just less precise. */
static void entry_resize(sg_policy *p, struct entry *e) {
        uint32_t cap = wanted_cap(p, e->kind, e->tier);

        if (cap == e->cap)
                return;
        if (e->kind == SG_LOCK_SPRAY) {
                struct spray_slot *s = calloc(cap, sizeof *s);

                if (!s)
                        return;
                /* keep the newest `cap` slots */
                while (e->n > cap) {
                        uint32_t oldest = 0;

                        for (uint32_t i = 1; i < e->n; i++)
                                if (e->slots[i].last_usec < e->slots[oldest].last_usec)
                                        oldest = i;
                        spray_remove_at(e, oldest);
                }
                memcpy(s, e->slots, e->n * sizeof *s);
                free(e->slots);
                e->slots = s;
        } else {
                uint64_t *r = calloc(cap, sizeof *r);
                uint32_t keep = e->n < cap ? e->n : cap;

                if (!r)
                        return;
                for (uint32_t i = 0; i < keep; i++)
                        r[i] = *ring_at(e, e->n - keep + i);
                free(e->ring);
                e->ring = r;
                e->n = keep;
                e->head = 0;
        }
        e->cap = cap;
}

/* ---- table and LRU ---- */

static void lru_unlink(sg_policy *p, struct entry *e) {
        if (e->lru_prev)
                e->lru_prev->lru_next = e->lru_next;
        else
                p->lru_head = e->lru_next;
        if (e->lru_next)
                e->lru_next->lru_prev = e->lru_prev;
        else
                p->lru_tail = e->lru_prev;
        e->lru_prev = e->lru_next = NULL;
}

static void lru_push_head(sg_policy *p, struct entry *e) {
        e->lru_prev = NULL;
        e->lru_next = p->lru_head;
        if (p->lru_head)
                p->lru_head->lru_prev = e;
        else
                p->lru_tail = e;
        p->lru_head = e;
}

static void lru_touch(sg_policy *p, struct entry *e) {
        if (p->lru_head == e)
                return;
        lru_unlink(p, e);
        lru_push_head(p, e);
}

static struct entry *entry_free(struct entry *e) {
        if (!e)
                return NULL;
        free(e->ring);
        free(e->slots);
        free(e);
        return NULL;
}

static void entry_remove(sg_policy *p, struct entry *e) {
        struct entry **pp = &p->buckets[e->hash & (p->nbuckets - 1)];

        while (*pp != e)
                pp = &(*pp)->hnext;
        *pp = e->hnext;
        lru_unlink(p, e);
        p->n--;
        entry_free(e);
}

static struct entry *entry_find(sg_policy *p, enum sg_lock_kind kind, const char *key, size_t len) {
        uint64_t h = key_hash(p, kind, key, len);

        for (struct entry *e = p->buckets[h & (p->nbuckets - 1)]; e; e = e->hnext)
                if (e->hash == h && e->kind == kind && e->keylen == len && memcmp(e->key, key, len) == 0)
                        return e;
        return NULL;
}

static size_t max_keys(const sg_policy *p) {
        if (p->c.max_keys == 0)
                return DEFAULT_MAX_KEYS;
        return p->c.max_keys < MIN_MAX_KEYS ? MIN_MAX_KEYS : p->c.max_keys;
}

/* Frees the least recently used key without a lock in force (local or fleet) and not used by this call.
 * Locked keys met on the way go to the head so the next search does not walk them again. */
static bool evict_one(sg_policy *p, uint64_t now) {
        size_t steps = p->n;
        struct entry *e = p->lru_tail;

        while (e && steps-- > 0) {
                struct entry *prev = e->lru_prev;

                if (e->pin == p->op) {
                        e = prev;
                        continue;
                }
                if (e->until_usec <= now && e->fleet_until_usec <= now) {
                        entry_remove(p, e);
                        return true;
                }
                lru_touch(p, e);
                e = prev;
        }
        return false;
}

static void table_grow(sg_policy *p) {
        size_t nb = p->nbuckets * 2;
        struct entry **b;

        if (nb > BUCKETS_MAX)
                return;
        b = calloc(nb, sizeof *b);
        if (!b)
                return; /* longer chains, still correct */
        for (size_t i = 0; i < p->nbuckets; i++)
                for (struct entry *e = p->buckets[i], *next; e; e = next) {
                        next = e->hnext;
                        e->hnext = b[e->hash & (nb - 1)];
                        b[e->hash & (nb - 1)] = e;
                }
        free(p->buckets);
        p->buckets = b;
        p->nbuckets = nb;
}

/* The IPv6 prefixes in force for the wider source keys (0 = off): each strictly wider than the
 * one before it, else it would count the same network twice. */
static unsigned prefix_wide(const sg_policy *p) {
        unsigned w = p->c.ipv6_prefix_wide;

        return w > 0 && w < p->c.ipv6_prefix ? w : 0;
}

static unsigned prefix_widest(const sg_policy *p) {
        unsigned w = p->c.ipv6_prefix_widest, above = prefix_wide(p) ?: p->c.ipv6_prefix;

        return w > 0 && w < above ? w : 0;
}

/* A source key's tier, from its spelling alone, so a lock loaded from the store gets the
 * same limit as a live one: "*.domain" (a parent domain), "net/len" (by the length), an
 * address, or else a host name. */
static int key_tier(const sg_policy *p, const char *key, size_t len) {
        char buf[SG_POLICY_KEY_MAX];
        const char *slash;
        struct sg_addr a;

        if (len >= sizeof buf)
                return TIER_HOST;
        memcpy(buf, key, len);
        buf[len] = '\0';
        if (buf[0] == '*')
                return TIER_HOST_DOMAIN;
        slash = strchr(buf, '/');
        if (slash) {
                unsigned long n = strtoul(slash + 1, NULL, 10);

                if (n != p->c.ipv6_prefix && n == prefix_wide(p))
                        return TIER_WIDE;
                if (n != p->c.ipv6_prefix && n == prefix_widest(p))
                        return TIER_WIDEST;
                return TIER_SOURCE;
        }
        return sg_addr_parse(buf, &a) == 0 ? TIER_SOURCE : TIER_HOST;
}

/* Finds or creates a key, marks it used by this call. NULL when the table is full of locked
 * keys or memory ran out: the caller then decides without this key. */
static struct entry *entry_get(sg_policy *p, enum sg_lock_kind kind, const char *key, size_t len,
                               uint64_t now) {
        struct entry *e = entry_find(p, kind, key, len);
        uint32_t cap;

        if (e) {
                entry_resize(p, e);
                lru_touch(p, e);
                e->pin = p->op;
                return e;
        }
        while (p->n >= max_keys(p))
                if (!evict_one(p, now))
                        return NULL;

        e = calloc(1, sizeof *e + len + 1);
        if (!e)
                return NULL;
        e->tier = kind == SG_LOCK_SOURCE ? key_tier(p, key, len) : TIER_SOURCE;
        cap = wanted_cap(p, kind, e->tier);
        if (kind == SG_LOCK_SPRAY)
                e->slots = calloc(cap, sizeof *e->slots);
        else
                e->ring = calloc(cap, sizeof *e->ring);
        if (!e->slots && !e->ring)
                return entry_free(e);
        e->cap = cap;
        e->kind = kind;
        e->keylen = len;
        memcpy(e->key, key, len);
        e->hash = key_hash(p, kind, key, len);
        e->pin = p->op;

        if (p->n >= p->nbuckets)
                table_grow(p);
        e->hnext = p->buckets[e->hash & (p->nbuckets - 1)];
        p->buckets[e->hash & (p->nbuckets - 1)] = e;
        lru_push_head(p, e);
        p->n++;
        return e;
}

/* ---- keys of an attempt ---- */

static bool source_allowlisted(const sg_policy *p, const char *rhost) {
        struct sg_addr a;
        struct sg_cidr net;

        if (p->c.allowlist.n == 0)
                return false;
        if (sg_addr_parse(rhost, &a) == 0)
                return sg_cidr_list_match(&p->c.allowlist, &a);
        /* a replayed source key "2001:db8::/64": exact when the allowlist covers the group */
        if (sg_cidr_parse(rhost, &net) == 0)
                return sg_cidr_list_match(&p->c.allowlist, &net.addr);
        return false;
}

/* rhost, or an already grouped key (replay, stored locks): sg_source_key() keeps a key as it
 * is; should it refuse one ("2001:db8::/64" is no host name), the key is taken verbatim. */
static int source_key(const sg_policy *p, const char *s, char *out, size_t outsize) {
        size_t len = strlen(s);

        if (sg_source_key(s, p->c.ipv6_prefix, out, outsize) >= 0)
                return 0;
        if (len >= outsize)
                return -ENAMETOOLONG;
        memcpy(out, s, len + 1);
        return 0;
}

/* The wider keys of a source key (as source_key() made it): an IPv6 network's networks at
 * ipv6_prefix_wide and ipv6_prefix_widest, a host name's parent domain as "*.parent" (when
 * the parent still has a dot: never a whole top-level domain). */
static void wider_keys(const sg_policy *p, struct attempt_keys *k) {
        const unsigned prefixes[2] = { prefix_wide(p), prefix_widest(p) };
        char *outs[2] = { k->wide, k->widest };
        size_t *lens[2] = { &k->wide_len, &k->widest_len };
        char addr[INET6_ADDRSTRLEN];
        struct sg_cidr net;
        struct sg_addr a;
        const char *dot;

        k->wide_len = k->widest_len = 0;
        k->wide[0] = k->widest[0] = '\0';
        if (k->local)
                return;
        if (sg_addr_parse(k->source, &a) == 0 || sg_cidr_parse(k->source, &net) == 0) {
                if (sg_addr_parse(k->source, &a) < 0)
                        a = net.addr;
                if (a.family != AF_INET6 || !inet_ntop(AF_INET6, a.bytes, addr, sizeof addr))
                        return;
                for (int i = 0; i < 2; i++)
                        if (prefixes[i] > 0 && sg_source_key(addr, prefixes[i], outs[i], SG_POLICY_KEY_MAX) >= 0)
                                *lens[i] = strlen(outs[i]);
                return;
        }
        if (k->source[0] == '*')
                return; /* already a domain key (a stored lock) */
        dot = strchr(k->source, '.');
        if (!dot || !strchr(dot + 1, '.') || k->source_len + 1 >= SG_POLICY_KEY_MAX)
                return;
        k->wide[0] = '*';
        memcpy(k->wide + 1, dot, k->source_len - (size_t) (dot - k->source) + 1);
        k->wide_len = strlen(k->wide);
}

static int attempt_keys(const sg_policy *p, const char *user, const char *rhost,
                        struct attempt_keys *k);

int sg_policy_wider_keys(const sg_policy *p, const char *rhost, char wide[static SG_POLICY_KEY_MAX],
                         char widest[static SG_POLICY_KEY_MAX]) {
        struct attempt_keys k;
        int r;

        assert(p);
        wide[0] = widest[0] = '\0';
        r = attempt_keys(p, SG_POLICY_INVALID_USER, rhost ?: "", &k);
        if (r < 0)
                return r;
        memcpy(wide, k.wide, k.wide_len + 1);
        memcpy(widest, k.widest, k.widest_len + 1);
        return 0;
}

static int attempt_keys(const sg_policy *p, const char *user, const char *rhost,
                        struct attempt_keys *k) {
        int r;

        if (!user || !rhost)
                return -EINVAL;
        k->user_len = strlen(user);
        if (k->user_len == 0 || k->user_len >= sizeof k->user)
                return -EINVAL;
        memcpy(k->user, user, k->user_len + 1);

        r = source_key(p, rhost, k->source, sizeof k->source);
        if (r < 0)
                return r;
        k->source_len = strlen(k->source);
        k->local = k->source_len == 0;
        k->source_only = strcmp(k->user, SG_POLICY_INVALID_USER) == 0;
        k->allowlisted = !k->local && source_allowlisted(p, rhost);
        k->user_source_len = 0;
        k->user_source[0] = '\0';
        if (!k->local) {
                if (k->user_len + 1 + k->source_len >= sizeof k->user_source)
                        return -ENAMETOOLONG;
                memcpy(k->user_source, k->user, k->user_len);
                k->user_source[k->user_len] = '@';
                memcpy(k->user_source + k->user_len + 1, k->source, k->source_len + 1);
                k->user_source_len = k->user_len + 1 + k->source_len;
        }
        wider_keys(p, k);
        return 0;
}

static bool kind_applies(const struct attempt_keys *k, int slot) {
        if (slot == SLOT_WIDE)
                return k->wide_len > 0;
        if (slot == SLOT_WIDEST)
                return k->widest_len > 0;
        if (k->source_only)
                return slot == SG_LOCK_SOURCE && !k->local;
        return slot == SG_LOCK_USER || !k->local;
}

static const char *attempt_key(const struct attempt_keys *k, int slot, size_t *ret_len) {
        switch (slot) {
        case SLOT_WIDE:
                *ret_len = k->wide_len;
                return k->wide;
        case SLOT_WIDEST:
                *ret_len = k->widest_len;
                return k->widest;
        case SG_LOCK_USER:
                *ret_len = k->user_len;
                return k->user;
        case SG_LOCK_USER_SOURCE:
                *ret_len = k->user_source_len;
                return k->user_source;
        default:
                *ret_len = k->source_len;
                return k->source;
        }
}

static uint64_t attempt_binding(const sg_policy *p, const struct attempt_keys *k) {
        return hash_bytes(p, SEED_BINDING, k->user, k->user_len, k->source, k->source_len);
}

static void find_all(sg_policy *p, const struct attempt_keys *k, struct entry *e[SLOT_MAX]) {
        for (int slot = 0; slot < SLOT_MAX; slot++) {
                const char *key;
                size_t len;

                e[slot] = NULL;
                if (!kind_applies(k, slot))
                        continue;
                key = attempt_key(k, slot, &len);
                e[slot] = entry_find(p, slot_kind(slot), key, len);
        }
}

/* The lock in force (local or fleet) that ends last, if any. */
static bool lock_in_force(struct entry *e[SLOT_MAX], uint64_t now, struct sg_verdict *v) {
        bool locked = false;

        for (int slot = 0; slot < SLOT_MAX; slot++) {
                uint64_t until;

                if (!e[slot])
                        continue;
                /* a fleet lock refuses exactly as a local one; the later end wins */
                until = e[slot]->until_usec > e[slot]->fleet_until_usec ? e[slot]->until_usec
                                                                        : e[slot]->fleet_until_usec;
                if (until <= now)
                        continue;
                if (!locked || until > v->until_usec) {
                        v->kind = slot_kind(slot);
                        v->until_usec = until;
                }
                locked = true;
        }
        return locked;
}

static uint32_t delay_for(const sg_policy *p, struct entry *e[SLOT_MAX], uint64_t cutoff) {
        uint64_t n = 0, d;

        if (e[SG_LOCK_USER])
                n = ring_count(e[SG_LOCK_USER], cutoff);
        if (e[SG_LOCK_USER_SOURCE]) {
                uint64_t m = ring_count(e[SG_LOCK_USER_SOURCE], cutoff);

                n = m > n ? m : n;
        }
        d = n * p->c.delay_step_ms;
        return d > p->c.delay_max_ms ? p->c.delay_max_ms : (uint32_t) d;
}

/* ---- locks ---- */

static uint64_t lock_duration(const sg_policy *p, uint32_t level) {
        uint64_t d = p->c.lock_time_usec, cap = p->c.lock_max_usec ? p->c.lock_max_usec : UINT64_MAX;
        uint32_t f = p->c.lock_factor ? p->c.lock_factor : 1;

        for (uint32_t i = 0; i < level && f > 1 && d < cap; i++)
                d = d > cap / f ? cap : d * f;
        return d > cap ? cap : d;
}

static void lock_fill(const struct entry *e, struct sg_lock_info *l) {
        *l = (struct sg_lock_info) {
                .kind = e->kind,
                .until_usec = e->until_usec,
                .level = e->level,
                .last_lock_usec = e->last_lock_usec,
                .cleared_usec = e->cleared_usec,
                .failures = e->failures,
        };
        memcpy(l->key, e->key, e->keylen);
        l->key[e->keylen] = '\0';
}

static void lock_create(sg_policy *p, struct entry *e, uint32_t failures, uint64_t now,
                        uint64_t stamp, struct sg_lock_info *out, size_t max_out, size_t *n_out) {
        /* the level counts previous locks only while they are within history */
        bool recent = e->last_lock_usec != 0 &&
                      (e->last_lock_usec >= now || now - e->last_lock_usec <= p->c.history_usec);
        uint32_t level = recent ? e->level : 0;

        e->until_usec = sat_add(now, lock_duration(p, level));
        e->level = level + 1;
        e->last_lock_usec = now;
        e->lock_stamp = stamp;
        e->failures = failures;
        if (out && *n_out < max_out)
                lock_fill(e, &out[(*n_out)++]);
}

/* Undoes a lock whose only cause turned out to be a success. last_lock_usec stays: it only
 * makes the backoff history remember a little longer. */
static void lock_lift(struct entry *e) {
        e->until_usec = 0;
        e->lock_stamp = 0;
        if (e->level > 0)
                e->level--;
}

static bool user_lock_applies(const sg_policy *p, const char *user) {
        return p->c.user_hard_lock && (p->c.deny_root || strcmp(user, "root") != 0);
}

/* ---- pacing: one attempt per delay step for a user beyond user_max_failures ---- */

static uint64_t *pace_slot(const struct attempt_keys *k, struct entry *user) {
        return k->local ? &user->pace_local_usec : &user->pace_usec;
}

static bool pace_applies(const sg_policy *p, struct entry *user, uint64_t cutoff) {
        return p->c.user_pacing && p->c.user_max_failures > 0 &&
               ring_count(user, cutoff) >= p->c.user_max_failures;
}

/* Refused by pacing: the user is beyond its threshold and the current step's attempt was
 * already given (remote and local attempts each have their own step). */
static bool paced(const sg_policy *p, const struct attempt_keys *k, struct entry *user, uint64_t cutoff,
                  uint64_t now, struct sg_verdict *v) {
        uint64_t next;

        if (!user || !pace_applies(p, user, cutoff))
                return false;
        next = *pace_slot(k, user);
        if (now >= next)
                return false;
        v->kind = SG_LOCK_USER;
        v->until_usec = next;
        v->paced = true;
        return true;
}

/* An attempt admitted beyond the threshold takes the step: the next one waits delay_ms (at
 * least one delay_step). */
static void pace_admit(const sg_policy *p, const struct attempt_keys *k, struct entry *user, uint64_t cutoff,
                       uint64_t now, uint32_t delay_ms) {
        uint64_t step = delay_ms > p->c.delay_step_ms ? delay_ms : p->c.delay_step_ms;

        if (!pace_applies(p, user, cutoff))
                return;
        *pace_slot(k, user) = sat_add(now, step * 1000);
}

/* ---- pending reservations ---- */

static void pending_add(sg_policy *p, uint64_t stamp, uint64_t binding) {
        p->pending[p->pending_next] = (struct pending) { stamp, binding };
        p->pending_next = (p->pending_next + 1) % PENDING_MAX;
}

static bool pending_take(sg_policy *p, uint64_t stamp, uint64_t binding) {
        if (stamp == 0)
                return false;
        /* newest first; stamps grow along the ring, so stop at the first older one */
        for (size_t i = 1; i <= PENDING_MAX; i++) {
                struct pending *q = &p->pending[(p->pending_next + PENDING_MAX - i) % PENDING_MAX];

                if (q->stamp == 0)
                        continue;
                if (q->stamp < stamp)
                        return false;
                if (q->stamp != stamp)
                        continue;
                if (q->binding != binding)
                        return false;
                q->stamp = 0;
                return true;
        }
        return false;
}

/* ---- public API ---- */

int sg_policy_new(const struct sg_policy_config *c, sg_policy **ret) {
        sg_policy *p;

        if (!c || !ret)
                return -EINVAL;
        if (sodium_init() < 0)
                return -EIO;
        p = calloc(1, sizeof *p);
        if (!p)
                return -ENOMEM;
        p->nbuckets = BUCKETS_MIN;
        p->buckets = calloc(p->nbuckets, sizeof *p->buckets);
        if (!p->buckets) {
                free(p);
                return -ENOMEM;
        }
        p->c = *c;
        randombytes_buf(p->seed, sizeof p->seed);
        *ret = p;
        return 0;
}

sg_policy *sg_policy_free(sg_policy *p) {
        if (!p)
                return NULL;
        while (p->lru_head)
                entry_remove(p, p->lru_head);
        free(p->buckets);
        sodium_memzero(p->seed, sizeof p->seed);
        free(p);
        return NULL;
}

void sg_policy_set_config(sg_policy *p, const struct sg_policy_config *c) {
        assert(p && c);
        /* counters are resized lazily, when each key is next used */
        p->c = *c;
}

size_t sg_policy_key_count(const sg_policy *p) {
        return p ? p->n : 0;
}

void sg_policy_reserve(sg_policy *p, const char *user, const char *rhost, uint64_t now_usec,
                       struct sg_verdict *ret, struct sg_lock_info *new_locks, size_t max_new,
                       size_t *ret_new) {
        struct sg_verdict v = { .allowed = false };
        struct entry *e[SLOT_MAX];
        struct attempt_keys k;
        uint64_t cutoff = window_cutoff(p, now_usec), stamp;
        size_t n_new = 0;

        assert(p && ret);
        p->op++;
        note_now(p, now_usec);

        if (attempt_keys(p, user, rhost ?: "", &k) < 0) {
                /* cannot be counted (input validated upstream should never get here): deny */
                v.kind = SG_LOCK_SOURCE;
                v.until_usec = now_usec;
                goto finish;
        }
        if (k.allowlisted) {
                stamp = next_stamp(p, now_usec);
                pending_add(p, stamp, attempt_binding(p, &k));
                v = (struct sg_verdict) { .allowed = true, .reservation = stamp };
                goto finish;
        }

        find_all(p, &k, e);
        if (lock_in_force(e, now_usec, &v) || paced(p, &k, e[SG_LOCK_USER], cutoff, now_usec, &v)) {
                /* nothing counted, nothing created; the delay still looks like a failure's */
                v.delay_ms = delay_for(p, e, cutoff);
                goto finish;
        }

        for (int slot = 0; slot < SLOT_MAX; slot++) {
                const char *key;
                size_t len;

                if (!kind_applies(&k, slot))
                        continue;
                key = attempt_key(&k, slot, &len);
                e[slot] = entry_get(p, slot_kind(slot), key, len, now_usec);
        }
        v.delay_ms = delay_for(p, e, cutoff);
        if (e[SG_LOCK_USER])
                pace_admit(p, &k, e[SG_LOCK_USER], cutoff, now_usec, v.delay_ms);

        stamp = next_stamp(p, now_usec);
        for (int slot = 0; slot < SLOT_MAX; slot++)
                if (e[slot] && slot != SG_LOCK_SPRAY)
                        ring_insert(e[slot], stamp);
        if (e[SG_LOCK_SPRAY])
                spray_upsert(e[SG_LOCK_SPRAY], user_hash(p, &k), stamp);

        for (int slot = 0; slot < SLOT_MAX; slot++) {
                uint32_t t, n;

                if (!e[slot])
                        continue;
                t = threshold(p, e[slot]->kind, e[slot]->tier);
                if (t == 0 || (slot == SG_LOCK_USER && !user_lock_applies(p, user)))
                        continue;
                n = entry_count(e[slot], cutoff);
                if (n >= t)
                        lock_create(p, e[slot], n, now_usec, stamp, new_locks, max_new, &n_new);
        }

        pending_add(p, stamp, attempt_binding(p, &k));
        v.allowed = true;
        v.reservation = stamp;
        v.kind = 0;
        v.until_usec = 0;

finish:
        *ret = v;
        if (ret_new)
                *ret_new = n_new;
}

/* Where lifted locks are reported (NULL on replay: the audit already holds their rows). */
struct lifted_out {
        struct sg_lock_info *locks;
        size_t max, n;
};

/* Lifts the locks the attempt stamped t created: live they are known by their reservation,
 * on replay by their time. Each lifted lock, as it now is, goes to out. */
static void lift_locks_of(struct entry *e[SLOT_MAX], uint64_t t, bool replay, struct lifted_out *out) {
        for (int slot = 0; slot < SLOT_MAX; slot++) {
                struct entry *x = e[slot];

                if (!x || x->until_usec == 0)
                        continue;
                if (!(replay ? x->last_lock_usec == t : x->lock_stamp == t))
                        continue;
                lock_lift(x);
                if (out && out->locks && out->n < out->max)
                        lock_fill(x, &out->locks[out->n++]);
        }
}

/* Success proves the user: clears user and (user, source) up to t, and the user's place in the
 * source's spray set. The source keeps failures against other users. Locks created by this very
 * attempt are lifted. */
static void clear_on_success(sg_policy *p, const struct attempt_keys *k, uint64_t t, bool replay,
                             struct lifted_out *out) {
        static const enum sg_lock_kind reset[] = { SG_LOCK_USER, SG_LOCK_USER_SOURCE };
        struct entry *e[SLOT_MAX];

        find_all(p, k, e);
        lift_locks_of(e, t, replay, out);
        for (size_t i = 0; i < sizeof reset / sizeof reset[0]; i++) {
                struct entry *x = e[reset[i]];

                if (!x)
                        continue;
                ring_drop_upto(x, t);
                if (t > x->cleared_usec)
                        x->cleared_usec = t;
        }
        if (e[SG_LOCK_SPRAY])
                spray_remove_user(e[SG_LOCK_SPRAY], user_hash(p, k), t);
}

/* A void attempt never happened: its stamp leaves every ring, and the user's spray slot goes
 * back to the user's newest other failure from this source (the pair's ring holds exactly
 * those), or goes when there is none. Nothing else is reset. */
static void void_attempt(sg_policy *p, const struct attempt_keys *k, uint64_t stamp, struct lifted_out *out) {
        struct entry *e[SLOT_MAX];

        find_all(p, k, e);
        lift_locks_of(e, stamp, false, out);
        for (int slot = 0; slot < SLOT_MAX; slot++)
                if (e[slot] && slot != SG_LOCK_SPRAY)
                        ring_remove(e[slot], stamp);
        if (e[SG_LOCK_SPRAY]) {
                struct entry *pair = e[SG_LOCK_USER_SOURCE];

                spray_void_user(e[SG_LOCK_SPRAY], user_hash(p, k), stamp,
                                pair && pair->n > 0 ? *ring_at(pair, pair->n - 1) : 0);
        }
}

void sg_policy_settle(sg_policy *p, const char *user, const char *rhost, uint64_t reservation,
                      enum sg_outcome outcome, uint64_t now_usec, struct sg_lock_info *lifted,
                      size_t max_lifted, size_t *ret_lifted) {
        struct lifted_out out = { .locks = lifted, .max = max_lifted };
        struct attempt_keys k;
        struct entry *src;

        assert(p);
        if (ret_lifted)
                *ret_lifted = 0;
        note_now(p, now_usec);
        if (attempt_keys(p, user, rhost ?: "", &k) < 0)
                return;
        if (!pending_take(p, reservation, attempt_binding(p, &k)))
                return; /* unknown, already settled, or pushed out of the pending ring */
        switch (outcome) {
        case SG_OUTCOME_SUCCESS:
                /* the success counts toward no source key */
                for (int slot = SG_LOCK_SOURCE; slot < SLOT_MAX; slot++) {
                        const char *key;
                        size_t len;

                        if (slot_kind(slot) != SG_LOCK_SOURCE || !kind_applies(&k, slot))
                                continue;
                        key = attempt_key(&k, slot, &len);
                        src = entry_find(p, SG_LOCK_SOURCE, key, len);
                        if (src)
                                ring_remove(src, reservation);
                }
                clear_on_success(p, &k, reservation, false, &out);
                break;
        case SG_OUTCOME_VOID:
                if (!k.allowlisted)
                        void_attempt(p, &k, reservation, &out);
                break;
        default:
                return; /* a failure: counted at reserve time */
        }
        if (ret_lifted)
                *ret_lifted = out.n;
}

bool sg_policy_is_locked(sg_policy *p, const char *user, const char *rhost, uint64_t now_usec,
                         struct sg_verdict *ret) {
        struct sg_verdict v = { .allowed = true };
        struct entry *e[SLOT_MAX];
        struct attempt_keys k;
        bool locked = false;

        assert(p);
        if (attempt_keys(p, user, rhost ?: "", &k) < 0) {
                v = (struct sg_verdict) { .allowed = false, .kind = SG_LOCK_SOURCE, .until_usec = now_usec };
                locked = true;
        } else if (!k.allowlisted) {
                find_all(p, &k, e);
                locked = lock_in_force(e, now_usec, &v);
                v.allowed = !locked;
        }
        if (ret)
                *ret = v;
        return locked;
}

void sg_policy_replay_failure(sg_policy *p, const char *user, const char *source_key, uint64_t time_usec) {
        struct attempt_keys k;

        assert(p);
        if (attempt_keys(p, user, source_key ?: "", &k) < 0 || k.allowlisted)
                return;
        p->op++;
        note_now(p, time_usec);
        if (time_usec > p->last_stamp)
                p->last_stamp = time_usec; /* later reservations never equal a replayed entry */

        for (int slot = 0; slot < SLOT_MAX; slot++) {
                struct entry *e;
                const char *key;
                size_t len;

                if (!kind_applies(&k, slot))
                        continue;
                key = attempt_key(&k, slot, &len);
                e = entry_get(p, slot_kind(slot), key, len, time_usec);
                if (!e || time_usec <= e->cleared_usec)
                        continue;
                if (slot == SG_LOCK_SPRAY)
                        spray_upsert(e, user_hash(p, &k), time_usec);
                else
                        ring_insert(e, time_usec);
        }
}

void sg_policy_replay_success(sg_policy *p, const char *user, const char *source_key, uint64_t time_usec) {
        struct attempt_keys k;

        assert(p);
        if (attempt_keys(p, user, source_key ?: "", &k) < 0)
                return;
        note_now(p, time_usec);
        if (time_usec > p->last_stamp)
                p->last_stamp = time_usec;
        clear_on_success(p, &k, time_usec, true, NULL);
}

void sg_policy_replay_void(sg_policy *p, const char *user, const char *source_key, uint64_t time_usec) {
        struct entry *e[SLOT_MAX];
        struct attempt_keys k;

        assert(p);
        if (attempt_keys(p, user, source_key ?: "", &k) < 0 || k.allowlisted)
                return;
        note_now(p, time_usec);
        if (time_usec > p->last_stamp)
                p->last_stamp = time_usec;
        find_all(p, &k, e);
        lift_locks_of(e, time_usec, true, NULL);
}

/* Accepts a key as listed, or for source kinds a raw address (grouped here). */
static int normalize_key(const sg_policy *p, enum sg_lock_kind kind, const char *key,
                         char out[static SG_POLICY_KEY_MAX]) {
        const char *at;
        size_t ulen;

        if (!key || strlen(key) >= SG_POLICY_KEY_MAX)
                return -EINVAL;
        switch (kind) {
        case SG_LOCK_SOURCE:
        case SG_LOCK_SPRAY:
                return source_key(p, key, out, SG_POLICY_KEY_MAX);
        case SG_LOCK_USER_SOURCE:
                at = strchr(key, '@');
                if (!at)
                        return -EINVAL;
                ulen = (size_t) (at - key) + 1;
                memcpy(out, key, ulen);
                return source_key(p, at + 1, out + ulen, SG_POLICY_KEY_MAX - ulen);
        default:
                memcpy(out, key, strlen(key) + 1);
                return 0;
        }
}

void sg_policy_load_lock(sg_policy *p, const struct sg_lock_info *l) {
        char key[SG_POLICY_KEY_MAX];
        struct entry *e;

        assert(p);
        if (!l || (unsigned) l->kind >= SG_LOCK_KIND_MAX ||
            strnlen(l->key, sizeof l->key) >= sizeof l->key || l->key[0] == '\0')
                return;
        if (normalize_key(p, l->kind, l->key, key) < 0)
                return;
        p->op++;
        e = entry_get(p, l->kind, key, strlen(key), p->now_hint);
        if (!e)
                return;
        e->until_usec = l->until_usec;
        e->level = l->level;
        e->last_lock_usec = l->last_lock_usec;
        e->cleared_usec = l->cleared_usec;
        e->failures = l->failures;
        e->lock_stamp = 0;
        entry_drop_upto(e, e->cleared_usec);
        note_now(p, l->last_lock_usec);
}

/* Lifts e's lock and clears its counters: 1 when a lock was in force, 0 when only counters,
 * -ENOENT when it has neither. */
static int entry_unlock(sg_policy *p, struct entry *e, uint64_t now_usec, struct sg_lock_info *ret) {
        bool was_locked = e->until_usec > now_usec;

        if (!was_locked && entry_count(e, window_cutoff(p, now_usec)) == 0)
                return -ENOENT;
        e->until_usec = 0;
        e->lock_stamp = 0;
        entry_clear_counters(e);
        if (now_usec > e->cleared_usec)
                e->cleared_usec = now_usec;
        if (ret)
                lock_fill(e, ret);
        return was_locked;
}

int sg_policy_unlock(sg_policy *p, enum sg_lock_kind kind, const char *key, uint64_t now_usec,
                     struct sg_lock_info *ret) {
        char k[SG_POLICY_KEY_MAX];
        struct entry *e;

        assert(p);
        if ((unsigned) kind >= SG_LOCK_KIND_MAX)
                return -EINVAL;
        if (normalize_key(p, kind, key, k) < 0)
                return -ENOENT; /* such a key cannot have been counted */
        e = entry_find(p, kind, k, strlen(k));
        if (!e)
                return -ENOENT;
        note_now(p, now_usec);
        return entry_unlock(p, e, now_usec, ret);
}

/* "user@source": sources never hold '@' (sg_valid_rhost), user names may, so the last '@'
 * splits. A user name alone is no prefix match: "a" must not clear "a@b"'s pairs. */
static bool pair_matches(const struct entry *e, const char *user, size_t user_len, const char *source,
                         size_t source_len) {
        const char *at = memrchr(e->key, '@', e->keylen);
        size_t ulen, slen;

        if (!at)
                return false;
        ulen = (size_t) (at - e->key);
        slen = e->keylen - ulen - 1;
        if (user && (ulen != user_len || memcmp(e->key, user, ulen) != 0))
                return false;
        if (source && (slen != source_len || memcmp(at + 1, source, slen) != 0))
                return false;
        return true;
}

int sg_policy_unlock_pairs(sg_policy *p, const char *user, const char *source, uint64_t now_usec,
                           sg_policy_unlock_cb cb, void *userdata) {
        char src[SG_POLICY_KEY_MAX];
        size_t user_len = user ? strlen(user) : 0, source_len = 0;
        int n = 0;

        assert(p && cb);
        if (!user && !source)
                return -EINVAL;
        if (source) {
                if (source_key(p, source, src, sizeof src) < 0)
                        return 0; /* cannot have been counted */
                source_len = strlen(src);
        }
        note_now(p, now_usec);
        /* Clearing changes neither the table nor the LRU list, so walking it here is safe. */
        for (struct entry *e = p->lru_head; e; e = e->lru_next) {
                struct sg_lock_info info;
                int r;

                if (e->kind != SG_LOCK_USER_SOURCE ||
                    !pair_matches(e, user, user_len, source ? src : NULL, source_len))
                        continue;
                r = entry_unlock(p, e, now_usec, &info);
                if (r == -ENOENT)
                        continue;
                n++;
                r = cb(userdata, &info, r > 0);
                if (r < 0)
                        return r;
        }
        return n;
}

int sg_policy_foreach_lock(sg_policy *p, uint64_t now_usec, sg_policy_lock_cb cb, void *userdata) {
        assert(p && cb);
        for (struct entry *e = p->lru_head; e; e = e->lru_next) {
                struct sg_lock_info l;
                int r;

                if (e->until_usec <= now_usec)
                        continue;
                lock_fill(e, &l);
                r = cb(userdata, &l);
                if (r < 0)
                        return r;
        }
        return 0;
}

size_t sg_policy_lock_count(sg_policy *p, uint64_t now_usec) {
        size_t n = 0;

        assert(p);
        for (struct entry *e = p->lru_head; e; e = e->lru_next)
                if (e->until_usec > now_usec)
                        n++;
        return n;
}

void sg_policy_gc(sg_policy *p, uint64_t now_usec) {
        uint64_t cutoff = window_cutoff(p, now_usec);

        assert(p);
        note_now(p, now_usec);
        for (struct entry *e = p->lru_head, *next; e; e = next) {
                bool history = e->last_lock_usec != 0 &&
                               (e->last_lock_usec >= now_usec ||
                                now_usec - e->last_lock_usec <= p->c.history_usec);

                next = e->lru_next;
                if (cutoff > 0)
                        entry_drop_upto(e, cutoff - 1);
                if (e->fleet_until_usec != 0 && e->fleet_until_usec <= now_usec)
                        e->fleet_until_usec = 0; /* expired: the store drops its row at maintenance */
                if (e->until_usec > now_usec || e->fleet_until_usec > now_usec || e->n > 0 || history)
                        continue;
                entry_remove(p, e);
        }
}

/* ---- fleet locks ---- */

int sg_policy_fleet_key(const sg_policy *p, enum sg_lock_kind kind, const char *key,
                        char out[static SG_POLICY_KEY_MAX]) {
        char addr[INET6_ADDRSTRLEN];
        struct sg_cidr net;
        struct sg_addr a;
        unsigned len;

        assert(p);
        if ((kind != SG_LOCK_SOURCE && kind != SG_LOCK_SPRAY) || !key || !*key ||
            strnlen(key, SG_POLICY_KEY_MAX) >= SG_POLICY_KEY_MAX)
                return -EINVAL;
        if (sg_addr_parse(key, &a) == 0)
                return sg_source_key(key, p->c.ipv6_prefix, out, SG_POLICY_KEY_MAX) < 0 ? -EINVAL : 0;
        /* a network: IPv6 only (IPv4 sources are keyed by address), at a length this host
         * keys sources on, else no attempt here could ever match it */
        if (!strchr(key, '/') || sg_cidr_parse(key, &net) < 0 || net.addr.family != AF_INET6)
                return -EINVAL;
        len = net.prefix;
        if (!(len == p->c.ipv6_prefix ||
              (kind == SG_LOCK_SOURCE && len != 0 && (len == prefix_wide(p) || len == prefix_widest(p)))))
                return -EINVAL;
        if (!inet_ntop(AF_INET6, net.addr.bytes, addr, sizeof addr))
                return -EINVAL;
        return sg_source_key(addr, len, out, SG_POLICY_KEY_MAX) < 0 ? -EINVAL : 0;
}

bool sg_policy_key_allowlisted(const sg_policy *p, const char *key) {
        assert(p);
        return key && *key && source_allowlisted(p, key);
}

static bool fleet_kind(enum sg_lock_kind kind) {
        return kind == SG_LOCK_SOURCE || kind == SG_LOCK_SPRAY;
}

int sg_policy_fleet_lock(sg_policy *p, const struct sg_fleet_lock *l) {
        size_t len;
        struct entry *e;

        assert(p);
        if (!l || !fleet_kind(l->kind))
                return -EINVAL;
        len = strnlen(l->key, sizeof l->key);
        if (len == 0 || len >= sizeof l->key ||
            strnlen(l->origin_host, sizeof l->origin_host) >= sizeof l->origin_host)
                return -EINVAL;
        p->op++;
        note_now(p, l->applied_usec);
        e = entry_get(p, l->kind, l->key, len, l->applied_usec);
        if (!e)
                return -ENOSPC;
        e->fleet_until_usec = l->until_usec;
        e->fleet_decision_id = l->decision_id;
        e->fleet_applied_usec = l->applied_usec;
        memcpy(e->fleet_host, l->origin_host, sizeof e->fleet_host);
        return 0;
}

int sg_policy_fleet_unlock(sg_policy *p, enum sg_lock_kind kind, const char *key, uint64_t now_usec) {
        struct entry *e;
        bool was;

        assert(p);
        if (!fleet_kind(kind) || !key)
                return 0;
        e = entry_find(p, kind, key, strnlen(key, SG_POLICY_KEY_MAX));
        if (!e || e->fleet_until_usec == 0)
                return 0;
        was = e->fleet_until_usec > now_usec;
        e->fleet_until_usec = 0;
        e->fleet_decision_id = 0;
        e->fleet_applied_usec = 0;
        e->fleet_host[0] = '\0';
        return was;
}

int sg_policy_fleet_unlock_origin(sg_policy *p, enum sg_lock_kind kind, const char *key, const char *origin_host,
                                  uint64_t now_usec) {
        struct entry *e;

        assert(p);
        if (!fleet_kind(kind) || !key || !origin_host)
                return -ENOENT;
        e = entry_find(p, kind, key, strnlen(key, SG_POLICY_KEY_MAX));
        if (!e || e->fleet_until_usec == 0)
                return -ENOENT;
        if (strncmp(e->fleet_host, origin_host, sizeof e->fleet_host) != 0)
                return -ESRCH;
        return sg_policy_fleet_unlock(p, kind, key, now_usec);
}

static void fleet_fill(const struct entry *e, struct sg_fleet_lock *l) {
        *l = (struct sg_fleet_lock) {
                .kind = e->kind,
                .until_usec = e->fleet_until_usec,
                .decision_id = e->fleet_decision_id,
                .applied_usec = e->fleet_applied_usec,
        };
        memcpy(l->key, e->key, e->keylen);
        l->key[e->keylen] = '\0';
        memcpy(l->origin_host, e->fleet_host, sizeof l->origin_host);
}

int sg_policy_fleet_get(sg_policy *p, enum sg_lock_kind kind, const char *key, struct sg_fleet_lock *ret) {
        struct entry *e;

        assert(p);
        if (!fleet_kind(kind) || !key)
                return -ENOENT;
        e = entry_find(p, kind, key, strnlen(key, SG_POLICY_KEY_MAX));
        if (!e || e->fleet_until_usec == 0)
                return -ENOENT;
        if (ret)
                fleet_fill(e, ret);
        return 0;
}

int sg_policy_foreach_fleet_lock(sg_policy *p, uint64_t now_usec, sg_policy_fleet_cb cb, void *userdata) {
        assert(p && cb);
        for (struct entry *e = p->lru_head; e; e = e->lru_next) {
                struct sg_fleet_lock l;
                int r;

                if (e->fleet_until_usec <= now_usec)
                        continue;
                fleet_fill(e, &l);
                r = cb(userdata, &l);
                if (r < 0)
                        return r;
        }
        return 0;
}

size_t sg_policy_fleet_lock_count(sg_policy *p, uint64_t now_usec) {
        size_t n = 0;

        assert(p);
        for (struct entry *e = p->lru_head; e; e = e->lru_next)
                if (e->fleet_until_usec > now_usec)
                        n++;
        return n;
}
