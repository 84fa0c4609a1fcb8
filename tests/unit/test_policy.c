/* SPDX-License-Identifier: MIT */
/* The rate-limit policy, driven with a fake clock. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cidr.h"
#include "policy.h"

#define USEC 1000000ULL
#define MINUTE (60 * USEC)
#define HOUR (60 * MINUTE)
#define DAY (24 * HOUR)
#define T0 (1700000000ULL * USEC)

struct result {
        struct sg_verdict v;
        size_t n;
        struct sg_lock_info locks[SG_LOCK_KIND_MAX];
};

static struct sg_policy_config base_config(void) {
        return (struct sg_policy_config) {
                .window_usec = 15 * MINUTE,
                .lock_time_usec = 15 * MINUTE,
                .lock_factor = 2,
                .lock_max_usec = DAY,
                .history_usec = 30 * DAY,
                .user_max_failures = 5,
                .source_max_failures = 20,
                .user_source_max_failures = 5,
                .spray_max_users = 10,
                .delay_step_ms = 500,
                .delay_max_ms = 5000,
                .user_hard_lock = false,
                .deny_root = false,
                .ipv6_prefix = 64,
                .max_keys = 1000,
        };
}

static sg_policy *mk(const struct sg_policy_config *c) {
        sg_policy *p = NULL;

        assert_int_equal(sg_policy_new(c, &p), 0);
        assert_non_null(p);
        return p;
}

static struct result reserve(sg_policy *p, const char *user, const char *rhost, uint64_t now) {
        struct result r;

        memset(&r, 0xaa, sizeof r);
        sg_policy_reserve(p, user, rhost, now, &r.v, r.locks, SG_LOCK_KIND_MAX, &r.n);
        return r;
}

/* One wrong password: reserve, then settle as a failure when it was allowed. */
static struct result fail_once(sg_policy *p, const char *user, const char *rhost, uint64_t now) {
        struct result r = reserve(p, user, rhost, now);

        if (r.v.allowed)
                sg_policy_settle(p, user, rhost, r.v.reservation, SG_OUTCOME_FAILURE, now, NULL, 0, NULL);
        return r;
}

static void assert_allowed_no_lock(const struct result *r) {
        assert_true(r->v.allowed);
        assert_int_equal(r->n, 0);
}

static void assert_new_lock(const struct result *r, enum sg_lock_kind kind, const char *key) {
        assert_true(r->v.allowed); /* the attempt that reaches the threshold is still hashed */
        assert_int_equal(r->n, 1);
        assert_int_equal(r->locks[0].kind, kind);
        assert_string_equal(r->locks[0].key, key);
}

static void assert_denied(const struct result *r, enum sg_lock_kind kind) {
        assert_false(r->v.allowed);
        assert_int_equal(r->v.kind, kind);
        assert_int_equal(r->n, 0);
}

static void test_kind_names(void **state) {
        (void) state;
        assert_string_equal(sg_lock_kind_name(SG_LOCK_USER), "user");
        assert_string_equal(sg_lock_kind_name(SG_LOCK_SOURCE), "source");
        assert_string_equal(sg_lock_kind_name(SG_LOCK_USER_SOURCE), "user_source");
        assert_string_equal(sg_lock_kind_name(SG_LOCK_SPRAY), "spray");
        assert_null(sg_lock_kind_name(SG_LOCK_KIND_MAX));
        for (int k = 0; k < SG_LOCK_KIND_MAX; k++)
                assert_int_equal(sg_lock_kind_from_name(sg_lock_kind_name(k)), k);
        assert_int_equal(sg_lock_kind_from_name("users"), -EINVAL);
        assert_int_equal(sg_lock_kind_from_name(""), -EINVAL);
        assert_int_equal(sg_lock_kind_from_name(NULL), -EINVAL);
}

static void test_user_source_threshold_exact(void **state) {
        struct sg_policy_config c = base_config();
        sg_policy *p = mk(&c);
        struct result r;
        struct sg_verdict v;
        uint64_t until = T0 + 4 * USEC + 15 * MINUTE;

        (void) state;
        for (int i = 0; i < 4; i++) {
                r = fail_once(p, "alice", "192.0.2.1", T0 + i * USEC);
                assert_allowed_no_lock(&r);
        }
        r = fail_once(p, "alice", "192.0.2.1", T0 + 4 * USEC);
        assert_new_lock(&r, SG_LOCK_USER_SOURCE, "alice@192.0.2.1");
        assert_int_equal(r.locks[0].until_usec, until);
        assert_int_equal(r.locks[0].level, 1);
        assert_int_equal(r.locks[0].last_lock_usec, T0 + 4 * USEC);
        assert_int_equal(r.locks[0].failures, 5);

        r = reserve(p, "alice", "192.0.2.1", T0 + 5 * USEC);
        assert_denied(&r, SG_LOCK_USER_SOURCE);
        assert_int_equal(r.v.until_usec, until);
        assert_true(sg_policy_is_locked(p, "alice", "192.0.2.1", T0 + 5 * USEC, &v));
        assert_int_equal(v.kind, SG_LOCK_USER_SOURCE);
        assert_false(sg_policy_is_locked(p, "alice", "192.0.2.2", T0 + 5 * USEC, NULL));
        assert_false(sg_policy_is_locked(p, "alice", "", T0 + 5 * USEC, NULL));

        /* another user from the same source is not affected */
        r = fail_once(p, "bob", "192.0.2.1", T0 + 6 * USEC);
        assert_allowed_no_lock(&r);

        assert_int_equal(sg_policy_lock_count(p, T0 + 6 * USEC), 1);
        assert_int_equal(sg_policy_lock_count(p, until), 0);
        r = fail_once(p, "alice", "192.0.2.1", until + 16 * MINUTE);
        assert_allowed_no_lock(&r);
        sg_policy_free(p);
}

static void test_source_threshold_exact(void **state) {
        struct sg_policy_config c = base_config();
        sg_policy *p;
        struct result r;
        char user[16];

        (void) state;
        c.spray_max_users = 0; /* disabled: look at the source count alone */
        p = mk(&c);
        for (int i = 0; i < 19; i++) {
                snprintf(user, sizeof user, "u%d", i);
                r = fail_once(p, user, "198.51.100.7", T0 + i * USEC);
                assert_allowed_no_lock(&r);
        }
        r = fail_once(p, "u19", "198.51.100.7", T0 + 19 * USEC);
        assert_new_lock(&r, SG_LOCK_SOURCE, "198.51.100.7");
        assert_int_equal(r.locks[0].failures, 20);
        r = reserve(p, "u20", "198.51.100.7", T0 + 20 * USEC);
        assert_denied(&r, SG_LOCK_SOURCE);
        r = fail_once(p, "u20", "198.51.100.8", T0 + 20 * USEC);
        assert_allowed_no_lock(&r);
        sg_policy_free(p);
}

static void test_spray_lock(void **state) {
        struct sg_policy_config c = base_config();
        sg_policy *p;
        struct result r;

        (void) state;
        c.spray_max_users = 3;
        c.source_max_failures = 100;
        p = mk(&c);
        /* repeats of one user are not distinct users */
        assert_allowed_no_lock((r = fail_once(p, "a", "203.0.113.5", T0), &r));
        assert_allowed_no_lock((r = fail_once(p, "a", "203.0.113.5", T0 + 1), &r));
        assert_allowed_no_lock((r = fail_once(p, "b", "203.0.113.5", T0 + 2), &r));
        assert_allowed_no_lock((r = fail_once(p, "b", "203.0.113.5", T0 + 3), &r));
        r = fail_once(p, "c", "203.0.113.5", T0 + 4);
        assert_new_lock(&r, SG_LOCK_SPRAY, "203.0.113.5");
        assert_int_equal(r.locks[0].failures, 3);
        r = reserve(p, "d", "203.0.113.5", T0 + 5);
        assert_denied(&r, SG_LOCK_SPRAY);
        r = reserve(p, "a", "203.0.113.5", T0 + 5);
        assert_denied(&r, SG_LOCK_SPRAY);
        /* users spread over the window do not make a spray */
        r = fail_once(p, "e", "203.0.113.6", T0);
        r = fail_once(p, "f", "203.0.113.6", T0 + 10 * MINUTE);
        r = fail_once(p, "g", "203.0.113.6", T0 + 26 * MINUTE);
        assert_allowed_no_lock(&r);
        sg_policy_free(p);
}

static void test_user_hard_lock(void **state) {
        struct sg_policy_config c = base_config();
        sg_policy *p;
        struct result r;
        char rhost[32];

        (void) state;
        c.user_hard_lock = true;
        p = mk(&c);
        /* spread over sources so only the user key reaches its threshold */
        for (int i = 0; i < 4; i++) {
                snprintf(rhost, sizeof rhost, "192.0.2.%d", i + 1);
                r = fail_once(p, "alice", rhost, T0 + i * USEC);
                assert_allowed_no_lock(&r);
        }
        r = fail_once(p, "alice", "", T0 + 4 * USEC);
        assert_new_lock(&r, SG_LOCK_USER, "alice");
        r = reserve(p, "alice", "192.0.2.99", T0 + 5 * USEC);
        assert_denied(&r, SG_LOCK_USER);
        r = reserve(p, "alice", "", T0 + 5 * USEC);
        assert_denied(&r, SG_LOCK_USER);
        r = fail_once(p, "bob", "", T0 + 5 * USEC);
        assert_allowed_no_lock(&r);
        sg_policy_free(p);
}

static void test_user_soft_delays_only(void **state) {
        struct sg_policy_config c = base_config();
        sg_policy *p = mk(&c);
        struct result r;

        (void) state;
        for (unsigned i = 0; i < 14; i++) {
                r = fail_once(p, "alice", "", T0 + i * USEC);
                assert_allowed_no_lock(&r);
                assert_int_equal(r.v.delay_ms, i * 500 > 5000 ? 5000 : i * 500);
        }
        assert_int_equal(sg_policy_lock_count(p, T0 + 20 * USEC), 0);
        sg_policy_free(p);
}

static void test_root_exempt_unless_deny_root(void **state) {
        struct sg_policy_config c = base_config();
        sg_policy *p;
        struct result r;

        (void) state;
        c.user_hard_lock = true;
        p = mk(&c);
        for (int i = 0; i < 10; i++) {
                r = fail_once(p, "root", "", T0 + i * USEC);
                assert_allowed_no_lock(&r);
        }
        sg_policy_free(p);

        c.deny_root = true;
        p = mk(&c);
        for (int i = 0; i < 4; i++)
                assert_allowed_no_lock((r = fail_once(p, "root", "", T0 + i * USEC), &r));
        r = fail_once(p, "root", "", T0 + 4 * USEC);
        assert_new_lock(&r, SG_LOCK_USER, "root");
        r = reserve(p, "root", "", T0 + 5 * USEC);
        assert_denied(&r, SG_LOCK_USER);
        sg_policy_free(p);
}

static void test_parallel_reservations(void **state) {
        struct sg_policy_config c = base_config();
        sg_policy *p;
        struct result r[50];
        int allowed = 0;
        char user[16];

        (void) state;
        c.spray_max_users = 0;
        p = mk(&c);
        for (int i = 0; i < 50; i++) {
                r[i] = reserve(p, "alice", "192.0.2.1", T0);
                allowed += r[i].v.allowed;
        }
        assert_int_equal(allowed, 5);
        for (int i = 0; i < 50; i++)
                if (r[i].v.allowed)
                        sg_policy_settle(p, "alice", "192.0.2.1", r[i].v.reservation, SG_OUTCOME_FAILURE, T0 + USEC, NULL, 0, NULL);

        /* many users at once from one source: at most the source threshold */
        allowed = 0;
        for (int i = 0; i < 50; i++) {
                snprintf(user, sizeof user, "u%d", i);
                allowed += reserve(p, user, "198.51.100.1", T0).v.allowed;
        }
        assert_int_equal(allowed, 20);
        sg_policy_free(p);
}

static void test_success_resets_user_not_source(void **state) {
        struct sg_policy_config c = base_config();
        sg_policy *p;
        struct result r;

        (void) state;
        c.source_max_failures = 10;
        c.spray_max_users = 0;
        p = mk(&c);
        for (int i = 0; i < 4; i++)
                fail_once(p, "alice", "192.0.2.1", T0 + i * USEC);
        for (int i = 0; i < 3; i++)
                fail_once(p, "bob", "192.0.2.1", T0 + (10 + i) * USEC);

        /* the 5th reaches the (alice, source) threshold, but it succeeds: the lock is lifted */
        r = reserve(p, "alice", "192.0.2.1", T0 + 20 * USEC);
        assert_new_lock(&r, SG_LOCK_USER_SOURCE, "alice@192.0.2.1");
        assert_int_equal(r.v.delay_ms, 2000);
        sg_policy_settle(p, "alice", "192.0.2.1", r.v.reservation, SG_OUTCOME_SUCCESS, T0 + 21 * USEC, NULL, 0, NULL);
        assert_int_equal(sg_policy_lock_count(p, T0 + 21 * USEC), 0);
        assert_false(sg_policy_is_locked(p, "alice", "192.0.2.1", T0 + 21 * USEC, NULL));

        /* alice's user and (alice, source) counts are gone (each success resets them again) */
        for (int i = 0; i < 4; i++) {
                r = reserve(p, "alice", "192.0.2.1", T0 + (30 + i) * USEC);
                assert_allowed_no_lock(&r);
                assert_int_equal(r.v.delay_ms, 0);
                sg_policy_settle(p, "alice", "192.0.2.1", r.v.reservation, SG_OUTCOME_SUCCESS, T0 + (30 + i) * USEC, NULL, 0, NULL);
        }

        /* the source keeps alice's 4 failures and bob's 3, not the successes: 7 */
        assert_allowed_no_lock((r = fail_once(p, "carol", "192.0.2.1", T0 + 40 * USEC), &r));
        assert_allowed_no_lock((r = fail_once(p, "carol", "192.0.2.1", T0 + 41 * USEC), &r));
        r = fail_once(p, "carol", "192.0.2.1", T0 + 42 * USEC);
        assert_new_lock(&r, SG_LOCK_SOURCE, "192.0.2.1");
        assert_int_equal(r.locks[0].failures, 10);
        sg_policy_free(p);
}

/* Five failures from alice@src starting at t; returns the new lock. */
static struct sg_lock_info lock_alice(sg_policy *p, uint64_t t) {
        struct result r;

        for (int i = 0; i < 4; i++)
                assert_allowed_no_lock((r = fail_once(p, "alice", "192.0.2.1", t + i * USEC), &r));
        r = fail_once(p, "alice", "192.0.2.1", t + 4 * USEC);
        assert_new_lock(&r, SG_LOCK_USER_SOURCE, "alice@192.0.2.1");
        return r.locks[0];
}

static void test_backoff(void **state) {
        struct sg_policy_config c = base_config();
        struct sg_lock_info l;
        struct result r;
        sg_policy *p;
        uint64_t t;

        (void) state;
        c.lock_max_usec = 45 * MINUTE;
        c.history_usec = DAY;
        p = mk(&c);

        l = lock_alice(p, T0);
        assert_int_equal(l.until_usec - l.last_lock_usec, 15 * MINUTE);
        assert_int_equal(l.level, 1);
        t = l.until_usec + USEC; /* expired, earlier failures out of the window */
        l = lock_alice(p, t);
        assert_int_equal(l.until_usec - l.last_lock_usec, 30 * MINUTE);
        assert_int_equal(l.level, 2);
        t = l.until_usec + USEC;
        l = lock_alice(p, t);
        assert_int_equal(l.until_usec - l.last_lock_usec, 45 * MINUTE); /* 60 capped at lock_max */
        assert_int_equal(l.level, 3);
        t = l.until_usec + 2 * DAY; /* quiet longer than history: forgotten */
        l = lock_alice(p, t);
        assert_int_equal(l.until_usec - l.last_lock_usec, 15 * MINUTE);
        assert_int_equal(l.level, 1);
        sg_policy_free(p);

        /* a lock shorter than the window: failures still in the window relock at once, longer */
        c = base_config();
        c.window_usec = HOUR;
        p = mk(&c);
        l = lock_alice(p, T0);
        r = fail_once(p, "alice", "192.0.2.1", l.until_usec);
        assert_new_lock(&r, SG_LOCK_USER_SOURCE, "alice@192.0.2.1");
        assert_int_equal(r.locks[0].level, 2);
        assert_int_equal(r.locks[0].until_usec, l.until_usec + 30 * MINUTE);
        sg_policy_free(p);
}

static void test_allowlist(void **state) {
        struct sg_policy_config c = base_config();
        struct sg_cidr_list list = { 0 };
        const char *hosts[] = { "192.0.2.7", "2001:db8:aa:1::5", "2001:db8:aa::1" };
        sg_policy *p;
        struct result r;

        (void) state;
        assert_int_equal(sg_cidr_list_parse("192.0.2.0/24, 2001:db8:aa::/48", &list, NULL), 0);
        c.allowlist = list;
        c.user_hard_lock = true;
        c.deny_root = true;
        p = mk(&c);
        for (size_t h = 0; h < sizeof hosts / sizeof hosts[0]; h++)
                for (int i = 0; i < 100; i++) {
                        r = fail_once(p, i % 2 ? "alice" : "root", hosts[h], T0 + i * USEC);
                        assert_allowed_no_lock(&r);
                        assert_int_equal(r.v.delay_ms, 0);
                        assert_false(sg_policy_is_locked(p, "alice", hosts[h], T0 + i * USEC, NULL));
                }
        assert_int_equal(sg_policy_key_count(p), 0);
        assert_int_equal(sg_policy_lock_count(p, T0), 0);

        /* next to them, an address outside the list is locked */
        for (int i = 0; i < 4; i++)
                assert_allowed_no_lock((r = fail_once(p, "bob", "192.0.3.1", T0 + i * USEC), &r));
        r = fail_once(p, "bob", "192.0.3.1", T0 + 5 * USEC);
        assert_true(r.v.allowed);
        assert_int_equal(r.n, 2); /* user_source and (hard) user */
        assert_denied((r = reserve(p, "bob", "2001:db8:ab::1", T0 + 6 * USEC), &r), SG_LOCK_USER);
        /* a user lock does not reach an allowlisted source */
        assert_true(reserve(p, "bob", "192.0.2.7", T0 + 7 * USEC).v.allowed);
        assert_false(sg_policy_is_locked(p, "bob", "2001:db8:aa::9", T0 + 7 * USEC, NULL));
        sg_policy_free(p);
        sg_cidr_list_free(&list);
}

static void test_ipv6_grouping(void **state) {
        struct sg_policy_config c = base_config();
        struct sg_verdict v;
        sg_policy *p;
        struct result r;

        (void) state;
        c.source_max_failures = 4;
        c.user_source_max_failures = 100;
        c.spray_max_users = 0;
        p = mk(&c);
        assert_allowed_no_lock((r = fail_once(p, "alice", "2001:db8:1:2::1", T0), &r));
        assert_allowed_no_lock((r = fail_once(p, "alice", "2001:db8:1:2::1", T0 + 1), &r));
        assert_allowed_no_lock((r = fail_once(p, "alice", "2001:db8:1:2::ffff", T0 + 2), &r));
        for (int i = 0; i < 3; i++) /* another /64 counts on its own */
                assert_allowed_no_lock((r = fail_once(p, "alice", "2001:db8:1:3::1", T0 + 3 + i), &r));
        r = fail_once(p, "alice", "2001:db8:1:2:abcd::9", T0 + 10);
        assert_new_lock(&r, SG_LOCK_SOURCE, "2001:db8:1:2::/64");
        assert_true(sg_policy_is_locked(p, "bob", "2001:db8:1:2::77", T0 + 11, &v));
        assert_int_equal(v.kind, SG_LOCK_SOURCE);
        assert_false(sg_policy_is_locked(p, "bob", "2001:db8:1:3::1", T0 + 11, NULL));
        sg_policy_free(p);

        c.ipv6_prefix = 48;
        p = mk(&c);
        assert_allowed_no_lock((r = fail_once(p, "alice", "2001:db8:1:2::1", T0), &r));
        assert_allowed_no_lock((r = fail_once(p, "alice", "2001:db8:1:2::1", T0 + 1), &r));
        assert_allowed_no_lock((r = fail_once(p, "alice", "2001:db8:1:3::1", T0 + 2), &r));
        r = fail_once(p, "alice", "2001:db8:1:ffff::1", T0 + 3);
        assert_new_lock(&r, SG_LOCK_SOURCE, "2001:db8:1::/48");
        assert_false(sg_policy_is_locked(p, "alice", "2001:db8:2::1", T0 + 4, NULL));
        assert_true(sg_policy_is_locked(p, "alice", "2001:db8:1:9::1", T0 + 4, NULL));
        sg_policy_free(p);
}

static void test_sliding_window(void **state) {
        struct sg_policy_config c = base_config();
        sg_policy *p = mk(&c);
        struct result r;

        (void) state;
        for (int i = 0; i < 4; i++)
                fail_once(p, "alice", "192.0.2.1", T0 + i * USEC);
        /* window [now - 15m, now]: failures at T0+2s and T0+3s are still in it */
        r = fail_once(p, "alice", "192.0.2.1", T0 + 15 * MINUTE + 2 * USEC);
        assert_allowed_no_lock(&r);
        assert_int_equal(r.v.delay_ms, 1000);
        r = fail_once(p, "alice", "192.0.2.1", T0 + 20 * MINUTE);
        assert_allowed_no_lock(&r);
        assert_int_equal(r.v.delay_ms, 500);
        r = fail_once(p, "alice", "192.0.2.1", T0 + 40 * MINUTE);
        assert_allowed_no_lock(&r);
        assert_int_equal(r.v.delay_ms, 0);
        assert_int_equal(sg_policy_lock_count(p, T0 + 40 * MINUTE), 0);
        sg_policy_free(p);
}

static void test_growing_delay(void **state) {
        struct sg_policy_config c = base_config();
        sg_policy *p = mk(&c);
        struct result r;

        (void) state;
        for (unsigned i = 0; i < 4; i++) {
                r = fail_once(p, "alice", "192.0.2.1", T0 + i * USEC);
                assert_int_equal(r.v.delay_ms, i * 500);
        }
        /* from a new source: the user count (4) still applies */
        r = fail_once(p, "alice", "192.0.2.2", T0 + 10 * USEC);
        assert_int_equal(r.v.delay_ms, 2000);
        r = fail_once(p, "alice", "", T0 + 11 * USEC);
        assert_int_equal(r.v.delay_ms, 2500);
        /* other users see none */
        r = fail_once(p, "bob", "192.0.2.1", T0 + 12 * USEC);
        assert_int_equal(r.v.delay_ms, 0);
        sg_policy_free(p);
}

/* A locked attempt gets the delay a wrong password would get at that point (the issue: a lock
 * must not be visible by timing), and it does not grow, since nothing is counted. */
static void test_locked_attempt_delay(void **state) {
        struct sg_policy_config c = base_config();
        sg_policy *p = mk(&c);
        struct result r;

        (void) state;
        c.user_source_max_failures = 3;
        c.delay_step_ms = 300;
        sg_policy_set_config(p, &c);
        for (unsigned i = 0; i < 3; i++) {
                r = fail_once(p, "gina", "192.0.2.77", T0 + i * USEC);
                assert_true(r.v.allowed);
                assert_int_equal(r.v.delay_ms, i * 300);
        }
        for (unsigned i = 3; i < 6; i++) {
                r = fail_once(p, "gina", "192.0.2.77", T0 + i * USEC);
                assert_denied(&r, SG_LOCK_USER_SOURCE);
                assert_int_equal(r.v.delay_ms, 900);
        }
        /* capped like any delay */
        c.delay_max_ms = 700;
        sg_policy_set_config(p, &c);
        assert_int_equal(reserve(p, "gina", "192.0.2.77", T0 + 7 * USEC).v.delay_ms, 700);
        sg_policy_free(p);
}

static void test_unlock(void **state) {
        struct sg_policy_config c = base_config();
        struct sg_lock_info info, l;
        sg_policy *p = mk(&c);
        struct result r;
        uint64_t now = T0 + MINUTE;

        (void) state;
        assert_int_equal(sg_policy_unlock(p, SG_LOCK_USER_SOURCE, "alice@192.0.2.1", T0, &info), -ENOENT);
        assert_int_equal(sg_policy_unlock(p, SG_LOCK_USER, "nobody", T0, &info), -ENOENT);
        l = lock_alice(p, T0);

        memset(&info, 0, sizeof info);
        /* 1: a lock in force was lifted */
        assert_int_equal(sg_policy_unlock(p, SG_LOCK_USER_SOURCE, "alice@192.0.2.1", now, &info), 1);
        assert_int_equal(info.kind, SG_LOCK_USER_SOURCE);
        assert_string_equal(info.key, "alice@192.0.2.1");
        assert_int_equal(info.until_usec, 0);
        assert_int_equal(info.level, 1);
        assert_int_equal(info.last_lock_usec, l.last_lock_usec);
        assert_int_equal(info.cleared_usec, now);
        assert_int_equal(sg_policy_lock_count(p, now), 0);
        assert_int_equal(sg_policy_unlock(p, SG_LOCK_USER_SOURCE, "alice@192.0.2.1", now, NULL), -ENOENT);

        /* counters cleared: another 4 failures pass before the next lock, at level 2 */
        for (int i = 0; i < 4; i++)
                assert_allowed_no_lock((r = fail_once(p, "alice", "192.0.2.1", now + (i + 1) * USEC), &r));
        r = fail_once(p, "alice", "192.0.2.1", now + 5 * USEC);
        assert_new_lock(&r, SG_LOCK_USER_SOURCE, "alice@192.0.2.1");
        assert_int_equal(r.locks[0].level, 2);

        /* counters alone (no lock) can be cleared too (0); the user key is its own key */
        assert_int_equal(sg_policy_unlock(p, SG_LOCK_USER, "alice", now + 6 * USEC, &info), 0);
        assert_int_equal(sg_policy_unlock(p, SG_LOCK_USER, "alice", now + 6 * USEC, &info), -ENOENT);
        assert_true(sg_policy_is_locked(p, "alice", "192.0.2.1", now + 6 * USEC, NULL));

        /* a source given as a raw IPv6 address is grouped like the counters */
        c.source_max_failures = 2;
        c.spray_max_users = 0;
        sg_policy_set_config(p, &c);
        fail_once(p, "x", "2001:db8::1", now);
        r = fail_once(p, "y", "2001:db8::2", now + 1);
        assert_new_lock(&r, SG_LOCK_SOURCE, "2001:db8::/64");
        assert_int_equal(sg_policy_unlock(p, SG_LOCK_SOURCE, "2001:db8::5", now + 2, &info), 1);
        assert_string_equal(info.key, "2001:db8::/64");
        assert_true(reserve(p, "z", "2001:db8::3", now + 3).v.allowed);
        assert_int_equal(sg_policy_unlock(p, SG_LOCK_KIND_MAX, "x", now, &info), -EINVAL);
        sg_policy_free(p);
}

static void test_replay(void **state) {
        struct sg_policy_config c = base_config();
        struct sg_lock_info hist = {
                .kind = SG_LOCK_USER_SOURCE,
                .key = "alice@192.0.2.1",
                .until_usec = 0,
                .level = 1,
                .last_lock_usec = T0 - HOUR,
                .cleared_usec = T0 - 58 * USEC,
                .failures = 5,
        };
        sg_policy *p;
        struct result r;

        (void) state;
        /* rebuilt counts, and never a lock while replaying */
        p = mk(&c);
        for (int i = 0; i < 30; i++)
                sg_policy_replay_failure(p, "alice", "192.0.2.1", T0 - (60 - i) * USEC);
        assert_int_equal(sg_policy_lock_count(p, T0), 0);
        r = reserve(p, "alice", "192.0.2.1", T0);
        assert_true(r.v.allowed);
        assert_int_equal(r.v.delay_ms, 5000);
        assert_int_equal(r.n, 2); /* source and user_source reach their thresholds now */
        sg_policy_free(p);

        p = mk(&c);
        for (int i = 0; i < 4; i++)
                sg_policy_replay_failure(p, "alice", "192.0.2.1", T0 - (60 - i) * USEC);
        r = reserve(p, "alice", "192.0.2.1", T0);
        assert_new_lock(&r, SG_LOCK_USER_SOURCE, "alice@192.0.2.1");
        assert_int_equal(r.v.delay_ms, 2000);
        sg_policy_free(p);

        /* cleared_usec honoured, lock loaded before the replay (the manager's order) */
        p = mk(&c);
        sg_policy_load_lock(p, &hist);
        for (int i = 0; i < 4; i++) /* T0-60s .. T0-57s: only T0-57s is after the clear */
                sg_policy_replay_failure(p, "alice", "192.0.2.1", T0 - (60 - i) * USEC);
        for (int i = 0; i < 3; i++)
                assert_allowed_no_lock((r = fail_once(p, "alice", "192.0.2.1", T0 + i * USEC), &r));
        r = fail_once(p, "alice", "192.0.2.1", T0 + 3 * USEC);
        assert_new_lock(&r, SG_LOCK_USER_SOURCE, "alice@192.0.2.1");
        assert_int_equal(r.locks[0].level, 2); /* history level restored too */
        assert_int_equal(r.locks[0].until_usec, T0 + 3 * USEC + 30 * MINUTE);
        sg_policy_free(p);

        /* ... and loaded after it */
        p = mk(&c);
        for (int i = 0; i < 4; i++)
                sg_policy_replay_failure(p, "alice", "192.0.2.1", T0 - (60 - i) * USEC);
        sg_policy_load_lock(p, &hist);
        for (int i = 0; i < 3; i++)
                assert_allowed_no_lock((r = fail_once(p, "alice", "192.0.2.1", T0 + i * USEC), &r));
        sg_policy_free(p);

        /* a lock created by an attempt that succeeded is lifted by its replayed success */
        p = mk(&c);
        hist = (struct sg_lock_info) { .kind = SG_LOCK_USER_SOURCE, .key = "alice@192.0.2.1",
                                       .until_usec = T0 + 15 * MINUTE, .level = 1,
                                       .last_lock_usec = T0, .failures = 5 };
        sg_policy_load_lock(p, &hist);
        for (int i = 0; i < 4; i++)
                sg_policy_replay_failure(p, "alice", "192.0.2.1", T0 - (4 - i) * USEC);
        sg_policy_replay_success(p, "alice", "192.0.2.1", T0 - USEC / 2); /* another attempt */
        assert_true(sg_policy_is_locked(p, "alice", "192.0.2.1", T0 + USEC, NULL));
        sg_policy_replay_success(p, "alice", "192.0.2.1", T0);
        assert_false(sg_policy_is_locked(p, "alice", "192.0.2.1", T0 + USEC, NULL));
        assert_int_equal(lock_alice(p, T0 + MINUTE).level, 1);
        sg_policy_free(p);

        /* a replayed success resets user and (user, source) */
        p = mk(&c);
        for (int i = 0; i < 4; i++)
                sg_policy_replay_failure(p, "alice", "192.0.2.1", T0 - (60 - i) * USEC);
        sg_policy_replay_success(p, "alice", "192.0.2.1", T0 - 50 * USEC);
        sg_policy_replay_failure(p, "alice", "192.0.2.1", T0 - 40 * USEC);
        r = reserve(p, "alice", "192.0.2.1", T0);
        assert_allowed_no_lock(&r);
        assert_int_equal(r.v.delay_ms, 500);
        sg_policy_free(p);
}

struct collected {
        size_t n;
        struct sg_lock_info l[8];
};

static int collect(void *userdata, const struct sg_lock_info *l) {
        struct collected *c = userdata;

        if (c->n < 8)
                c->l[c->n] = *l;
        c->n++;
        return 0;
}

static int stop(void *userdata, const struct sg_lock_info *l) {
        (void) l;
        ++*(int *) userdata;
        return -42;
}

static void test_load_lock(void **state) {
        struct sg_policy_config c = base_config();
        struct sg_lock_info in = {
                .kind = SG_LOCK_SOURCE,
                .key = "198.51.100.9",
                .until_usec = T0 + 10 * MINUTE,
                .level = 2,
                .last_lock_usec = T0 - 5 * MINUTE,
                .cleared_usec = 0,
                .failures = 3,
        };
        struct collected got = { 0 };
        struct sg_verdict v;
        struct result r;
        sg_policy *p;
        int calls = 0;

        (void) state;
        c.source_max_failures = 3;
        c.spray_max_users = 0;
        p = mk(&c);
        sg_policy_load_lock(p, &in);
        r = reserve(p, "alice", "198.51.100.9", T0);
        assert_denied(&r, SG_LOCK_SOURCE);
        assert_int_equal(r.v.until_usec, T0 + 10 * MINUTE);
        assert_true(sg_policy_is_locked(p, "bob", "198.51.100.9", T0, &v));
        assert_false(v.allowed);
        assert_int_equal(v.until_usec, T0 + 10 * MINUTE);
        assert_int_equal(sg_policy_lock_count(p, T0), 1);
        assert_int_equal(sg_policy_foreach_lock(p, T0, collect, &got), 0);
        assert_int_equal(got.n, 1);
        assert_int_equal(got.l[0].kind, SG_LOCK_SOURCE);
        assert_string_equal(got.l[0].key, "198.51.100.9");
        assert_int_equal(got.l[0].until_usec, in.until_usec);
        assert_int_equal(got.l[0].level, 2);
        assert_int_equal(got.l[0].last_lock_usec, in.last_lock_usec);
        assert_int_equal(got.l[0].failures, 3);
        assert_int_equal(sg_policy_foreach_lock(p, T0, stop, &calls), -42);
        assert_int_equal(calls, 1);

        /* expired: allowed again, the next lock continues the backoff from level 2 */
        for (int i = 0; i < 2; i++)
                assert_allowed_no_lock((r = fail_once(p, "alice", "198.51.100.9", T0 + 10 * MINUTE + i), &r));
        r = fail_once(p, "alice", "198.51.100.9", T0 + 10 * MINUTE + 2);
        assert_new_lock(&r, SG_LOCK_SOURCE, "198.51.100.9");
        assert_int_equal(r.locks[0].level, 3);
        assert_int_equal(r.locks[0].until_usec - r.locks[0].last_lock_usec, 60 * MINUTE);

        /* junk rows are ignored */
        in.kind = SG_LOCK_KIND_MAX;
        sg_policy_load_lock(p, &in);
        in.kind = SG_LOCK_USER;
        in.key[0] = '\0';
        sg_policy_load_lock(p, &in);
        assert_int_equal(sg_policy_lock_count(p, T0 + 11 * MINUTE), 1);
        sg_policy_free(p);
}

static void test_gc(void **state) {
        struct sg_policy_config c = base_config();
        sg_policy *p = mk(&c);

        (void) state;
        fail_once(p, "bob", "192.0.2.1", T0);
        assert_int_equal(sg_policy_key_count(p), 4); /* user, source, user_source, spray */
        sg_policy_gc(p, T0 + MINUTE);
        assert_int_equal(sg_policy_key_count(p), 4);
        sg_policy_gc(p, T0 + 16 * MINUTE);
        assert_int_equal(sg_policy_key_count(p), 0);

        lock_alice(p, T0 + HOUR);
        assert_int_equal(sg_policy_key_count(p), 4);
        sg_policy_gc(p, T0 + 2 * HOUR); /* expired, but the lock history stays */
        assert_int_equal(sg_policy_key_count(p), 1);
        assert_int_equal(sg_policy_lock_count(p, T0 + 2 * HOUR), 0);
        sg_policy_gc(p, T0 + 31 * DAY);
        assert_int_equal(sg_policy_key_count(p), 0);
        /* the history is gone: a new lock starts at level 1 */
        assert_int_equal(lock_alice(p, T0 + 32 * DAY).level, 1);
        sg_policy_free(p);
}

static void test_max_keys_eviction(void **state) {
        struct sg_policy_config c = base_config();
        struct result r;
        sg_policy *p;
        char user[16];

        (void) state;
        c.max_keys = 8;
        c.user_hard_lock = true;
        c.user_max_failures = 2;
        p = mk(&c);
        fail_once(p, "lockme", "", T0);
        r = fail_once(p, "lockme", "", T0 + 1);
        assert_new_lock(&r, SG_LOCK_USER, "lockme");

        for (int i = 0; i < 20; i++) {
                snprintf(user, sizeof user, "u%d", i);
                assert_allowed_no_lock((r = fail_once(p, user, "", T0 + 10 + i), &r));
                assert_true(sg_policy_key_count(p) <= 8);
        }
        assert_denied((r = reserve(p, "lockme", "", T0 + 40), &r), SG_LOCK_USER);

        /* fill the table with locks: a new key is not created, nobody is wrongly denied */
        for (int i = 0; i < 7; i++) {
                snprintf(user, sizeof user, "locker%d", i);
                fail_once(p, user, "", T0 + 50 + 2 * i);
                r = fail_once(p, user, "", T0 + 51 + 2 * i);
                assert_new_lock(&r, SG_LOCK_USER, user);
        }
        assert_int_equal(sg_policy_lock_count(p, T0 + 100), 8);
        for (int i = 0; i < 5; i++) {
                r = fail_once(p, "newbie", "", T0 + 100 + i);
                assert_allowed_no_lock(&r);
                assert_int_equal(r.v.delay_ms, 0);
        }
        r = fail_once(p, "newbie", "192.0.2.1", T0 + 110);
        assert_allowed_no_lock(&r);
        assert_int_equal(sg_policy_key_count(p), 8);
        assert_int_equal(sg_policy_lock_count(p, T0 + 110), 8);
        assert_denied((r = reserve(p, "lockme", "", T0 + 111), &r), SG_LOCK_USER);
        assert_denied((r = reserve(p, "locker6", "", T0 + 111), &r), SG_LOCK_USER);
        sg_policy_free(p);
}

static void test_settle_twice_noop(void **state) {
        struct sg_policy_config c = base_config();
        sg_policy *p = mk(&c);
        struct result r, first, r4, r5;

        (void) state;
        for (int i = 0; i < 3; i++)
                fail_once(p, "alice", "192.0.2.1", T0 + i);
        first = reserve(p, "alice", "192.0.2.1", T0 + 10);
        assert_int_equal(first.v.delay_ms, 1500);
        sg_policy_settle(p, "alice", "192.0.2.1", first.v.reservation, SG_OUTCOME_SUCCESS, T0 + 11, NULL, 0, NULL);
        assert_int_equal(fail_once(p, "alice", "192.0.2.1", T0 + 20).v.delay_ms, 0);
        assert_int_equal(fail_once(p, "alice", "192.0.2.1", T0 + 21).v.delay_ms, 500);

        sg_policy_settle(p, "alice", "192.0.2.1", first.v.reservation, SG_OUTCOME_SUCCESS, T0 + 22, NULL, 0, NULL); /* again */
        sg_policy_settle(p, "alice", "192.0.2.1", 12345, SG_OUTCOME_SUCCESS, T0 + 22, NULL, 0, NULL);              /* unknown */
        sg_policy_settle(p, "alice", "192.0.2.1", 0, SG_OUTCOME_SUCCESS, T0 + 22, NULL, 0, NULL);
        r4 = reserve(p, "alice", "192.0.2.1", T0 + 30);
        assert_int_equal(r4.v.delay_ms, 1000);

        /* someone else's user or source cannot settle it */
        sg_policy_settle(p, "bob", "192.0.2.1", r4.v.reservation, SG_OUTCOME_SUCCESS, T0 + 31, NULL, 0, NULL);
        sg_policy_settle(p, "alice", "192.0.2.2", r4.v.reservation, SG_OUTCOME_SUCCESS, T0 + 31, NULL, 0, NULL);
        r5 = reserve(p, "alice", "192.0.2.1", T0 + 32);
        assert_int_equal(r5.v.delay_ms, 1500);
        /* the rightful settle still works; r5, reserved later, stays counted */
        sg_policy_settle(p, "alice", "192.0.2.1", r4.v.reservation, SG_OUTCOME_SUCCESS, T0 + 33, NULL, 0, NULL);
        r = reserve(p, "alice", "192.0.2.1", T0 + 34);
        assert_int_equal(r.v.delay_ms, 500);

        /* a failure settle, then a success for the same reservation: the success is a no-op */
        sg_policy_settle(p, "alice", "192.0.2.1", r.v.reservation, SG_OUTCOME_FAILURE, T0 + 35, NULL, 0, NULL);
        sg_policy_settle(p, "alice", "192.0.2.1", r.v.reservation, SG_OUTCOME_SUCCESS, T0 + 36, NULL, 0, NULL);
        assert_int_equal(reserve(p, "alice", "192.0.2.1", T0 + 37).v.delay_ms, 1000);
        sg_policy_free(p);
}

static void test_locked_attempt_counts_nothing(void **state) {
        struct sg_policy_config c = base_config();
        sg_policy *p;
        struct result r;

        (void) state;
        c.source_max_failures = 8;
        c.spray_max_users = 3;
        p = mk(&c);
        lock_alice(p, T0);
        for (int i = 0; i < 100; i++) {
                r = reserve(p, "alice", "192.0.2.1", T0 + 10 * USEC + i);
                assert_denied(&r, SG_LOCK_USER_SOURCE);
        }
        /* source: still 5 of 8; spray: still 1 of 3 users */
        assert_allowed_no_lock((r = fail_once(p, "bob", "192.0.2.1", T0 + 20 * USEC), &r));
        assert_allowed_no_lock((r = fail_once(p, "bob", "192.0.2.1", T0 + 21 * USEC), &r));
        r = fail_once(p, "bob", "192.0.2.1", T0 + 22 * USEC);
        assert_new_lock(&r, SG_LOCK_SOURCE, "192.0.2.1");
        assert_int_equal(r.locks[0].failures, 8);
        /* a denied attempt for a new user creates no key */
        assert_int_equal(sg_policy_key_count(p), 6);
        assert_denied((r = reserve(p, "carol", "192.0.2.1", T0 + 23 * USEC), &r), SG_LOCK_SOURCE);
        assert_int_equal(sg_policy_key_count(p), 6);
        sg_policy_free(p);
}

static void test_set_config_keeps_counters(void **state) {
        struct sg_policy_config c = base_config();
        sg_policy *p = mk(&c);
        struct result r;

        (void) state;
        for (int i = 0; i < 3; i++)
                fail_once(p, "alice", "192.0.2.1", T0 + i);
        c.user_source_max_failures = 4;
        sg_policy_set_config(p, &c);
        r = fail_once(p, "alice", "192.0.2.1", T0 + 3);
        assert_new_lock(&r, SG_LOCK_USER_SOURCE, "alice@192.0.2.1");
        assert_int_equal(r.v.delay_ms, 1500);
        sg_policy_free(p);
}

struct unlocked {
        unsigned n, locked;
        char keys[80][SG_POLICY_KEY_MAX];
};

static int collect_unlocked(void *userdata, const struct sg_lock_info *l, bool was_locked) {
        struct unlocked *u = userdata;

        assert_int_equal(l->kind, SG_LOCK_USER_SOURCE);
        assert_int_equal(l->until_usec, 0);
        assert_true(u->n < 80);
        snprintf(u->keys[u->n++], sizeof u->keys[0], "%s", l->key);
        u->locked += was_locked;
        return 0;
}

static bool unlocked_has(const struct unlocked *u, const char *key) {
        for (unsigned i = 0; i < u->n; i++)
                if (strcmp(u->keys[i], key) == 0)
                        return true;
        return false;
}

static int stop_after_one(void *userdata, const struct sg_lock_info *l, bool was_locked) {
        (void) l;
        (void) was_locked;
        ++*(unsigned *) userdata;
        return -42;
}

/* Pairs by user or by source: exact parts (the last '@' splits), every one of them (no cap),
 * locks and bare counters alike; nothing else touched. */
static void test_unlock_pairs(void **state) {
        struct sg_policy_config c = base_config();
        sg_policy *p = mk(&c);
        struct unlocked *u = calloc(1, sizeof *u);
        char host[64];
        unsigned calls = 0;

        (void) state;
        assert_non_null(u);
        c.source_max_failures = 0;
        c.spray_max_users = 0;
        c.user_source_max_failures = 2;
        sg_policy_set_config(p, &c);
        for (int i = 0; i < 70; i++) {
                snprintf(host, sizeof host, "198.18.0.%d", i + 1);
                fail_once(p, "mallory", host, T0 + 2 * i);
                fail_once(p, "mallory", host, T0 + 2 * i + 1);
        }
        fail_once(p, "carol", "192.0.2.33", T0 + 200);
        fail_once(p, "carol", "192.0.2.33", T0 + 201);
        fail_once(p, "dave", "192.0.2.33", T0 + 202);         /* counters only */
        fail_once(p, "a@b", "192.0.2.33", T0 + 203);          /* '@' in a user name */
        fail_once(p, "a", "192.0.2.34", T0 + 204);
        fail_once(p, "carol", "2001:db8::1", T0 + 205);
        fail_once(p, "carol", "2001:db8::2", T0 + 206);
        assert_int_equal(sg_policy_lock_count(p, T0 + 300), 72);

        assert_int_equal(sg_policy_unlock_pairs(p, "mallory", NULL, T0 + 300, collect_unlocked, u), 70);
        assert_int_equal(u->n, 70);
        assert_int_equal(u->locked, 70);
        assert_int_equal(sg_policy_lock_count(p, T0 + 300), 2);
        assert_true(reserve(p, "mallory", "198.18.0.5", T0 + 301).v.allowed);

        /* by source: carol's lock, dave's and a@b's counters; not a@192.0.2.34, not carol@v6 */
        memset(u, 0, sizeof *u);
        assert_int_equal(sg_policy_unlock_pairs(p, NULL, "192.0.2.33", T0 + 302, collect_unlocked, u), 3);
        assert_int_equal(u->locked, 1);
        assert_true(unlocked_has(u, "carol@192.0.2.33"));
        assert_true(unlocked_has(u, "dave@192.0.2.33"));
        assert_true(unlocked_has(u, "a@b@192.0.2.33"));
        assert_true(reserve(p, "carol", "192.0.2.33", T0 + 303).v.allowed);
        /* cleared once: nothing left to clear */
        memset(u, 0, sizeof *u);
        assert_int_equal(sg_policy_unlock_pairs(p, NULL, "192.0.2.33", T0 + 400, collect_unlocked, u), 1);
        assert_true(unlocked_has(u, "carol@192.0.2.33")); /* the reservation just made */

        /* user "a" is not a prefix of "a@b" */
        memset(u, 0, sizeof *u);
        assert_int_equal(sg_policy_unlock_pairs(p, "a", NULL, T0 + 401, collect_unlocked, u), 1);
        assert_string_equal(u->keys[0], "a@192.0.2.34");

        /* a raw IPv6 address finds its /64 group; user and source together narrow it */
        memset(u, 0, sizeof *u);
        assert_int_equal(sg_policy_unlock_pairs(p, "bob", "2001:db8::77", T0 + 402, collect_unlocked, u), 0);
        assert_int_equal(sg_policy_unlock_pairs(p, "carol", "2001:db8::77", T0 + 402, collect_unlocked, u), 1);
        assert_string_equal(u->keys[0], "carol@2001:db8::/64");
        assert_int_equal(u->locked, 1);
        assert_int_equal(sg_policy_lock_count(p, T0 + 402), 0);

        /* the callback's error stops the walk */
        fail_once(p, "x", "192.0.2.9", T0 + 500);
        fail_once(p, "y", "192.0.2.9", T0 + 501);
        assert_int_equal(sg_policy_unlock_pairs(p, NULL, "192.0.2.9", T0 + 502, stop_after_one, &calls), -42);
        assert_int_equal(calls, 1);
        assert_int_equal(sg_policy_unlock_pairs(p, NULL, NULL, T0, collect_unlocked, u), -EINVAL);
        free(u);
        sg_policy_free(p);
}

static void test_long_keys(void **state) {
        struct sg_policy_config c = base_config();
        sg_policy *p = mk(&c);
        char user[65], host[256];
        struct result r;

        (void) state;
        memset(user, 'u', 64);
        user[64] = '\0';
        memset(host, 'h', 254);
        host[254] = '\0';
        for (int i = 0; i < 4; i++)
                assert_allowed_no_lock((r = fail_once(p, user, host, T0 + i), &r));
        r = fail_once(p, user, host, T0 + 4);
        assert_int_equal(r.n, 1);
        assert_int_equal(strlen(r.locks[0].key), SG_POLICY_KEY_MAX - 1);
        assert_false(reserve(p, user, host, T0 + 5).v.allowed);

        /* one byte more does not fit a key: denied, and nothing counted */
        host[254] = 'h';
        host[255] = '\0';
        r = reserve(p, "bob", "192.0.2.1", T0 + 6);
        assert_true(r.v.allowed);
        r = reserve(p, user, host, T0 + 7);
        assert_false(r.v.allowed);
        assert_int_equal(r.n, 0);
        assert_true(sg_policy_is_locked(p, user, host, T0 + 7, NULL));
        assert_null(sg_policy_free(p));
        assert_null(sg_policy_free(NULL));
}

/* Overload is the daemon's fault: a void attempt leaves no trace on any key and lifts the
 * locks it created, but resets nothing else. */
static void test_void_counts_nowhere(void **state) {
        struct sg_policy_config c = base_config();
        sg_policy *p;
        struct result r;

        (void) state;
        c.spray_max_users = 2;
        p = mk(&c);
        /* a victim retrying during a flood: 50 overloaded attempts, no delay, no lock */
        for (int i = 0; i < 50; i++) {
                r = reserve(p, "alice", "192.0.2.1", T0 + i * USEC);
                assert_true(r.v.allowed);
                assert_int_equal(r.v.delay_ms, 0);
                sg_policy_settle(p, "alice", "192.0.2.1", r.v.reservation, SG_OUTCOME_VOID, T0 + i * USEC, NULL, 0, NULL);
        }
        assert_int_equal(sg_policy_lock_count(p, T0 + MINUTE), 0);

        /* earlier failures stay counted (nothing reset), the void one is gone */
        for (int i = 0; i < 3; i++)
                assert_allowed_no_lock((r = fail_once(p, "alice", "192.0.2.1", T0 + MINUTE + i), &r));
        r = reserve(p, "alice", "192.0.2.1", T0 + MINUTE + 10);
        assert_int_equal(r.v.delay_ms, 1500);
        sg_policy_settle(p, "alice", "192.0.2.1", r.v.reservation, SG_OUTCOME_VOID, T0 + MINUTE + 10, NULL, 0, NULL);
        r = reserve(p, "alice", "192.0.2.1", T0 + MINUTE + 20);
        assert_int_equal(r.v.delay_ms, 1500);
        assert_int_equal(r.n, 0);
        /* the 5th: locks user_source; voided, the lock it created goes with it */
        sg_policy_settle(p, "alice", "192.0.2.1", r.v.reservation, SG_OUTCOME_FAILURE, T0 + MINUTE + 20, NULL, 0, NULL);
        r = reserve(p, "alice", "192.0.2.1", T0 + MINUTE + 30);
        assert_new_lock(&r, SG_LOCK_USER_SOURCE, "alice@192.0.2.1");
        sg_policy_settle(p, "alice", "192.0.2.1", r.v.reservation, SG_OUTCOME_VOID, T0 + MINUTE + 30, NULL, 0, NULL);
        assert_false(sg_policy_is_locked(p, "alice", "192.0.2.1", T0 + MINUTE + 40, NULL));
        /* and a real 5th failure locks again, at level 1 (the lifted lock left no history) */
        r = fail_once(p, "alice", "192.0.2.1", T0 + MINUTE + 50);
        assert_new_lock(&r, SG_LOCK_USER_SOURCE, "alice@192.0.2.1");
        assert_int_equal(r.locks[0].level, 1);
        /* settling again, in any way, changes nothing */
        sg_policy_settle(p, "alice", "192.0.2.1", r.v.reservation, SG_OUTCOME_VOID, T0 + MINUTE + 60, NULL, 0, NULL);
        assert_true(sg_policy_is_locked(p, "alice", "192.0.2.1", T0 + MINUTE + 60, NULL));
        sg_policy_free(p);

        /* spray: a void attempt does not put its user into the source's set ... */
        c.spray_max_users = 3;
        p = mk(&c);
        assert_allowed_no_lock((r = fail_once(p, "bob", "192.0.2.9", T0), &r));
        assert_allowed_no_lock((r = fail_once(p, "carol", "192.0.2.9", T0 + 1), &r));
        r = reserve(p, "dave", "192.0.2.9", T0 + 2);
        assert_new_lock(&r, SG_LOCK_SPRAY, "192.0.2.9");
        sg_policy_settle(p, "dave", "192.0.2.9", r.v.reservation, SG_OUTCOME_VOID, T0 + 2, NULL, 0, NULL);
        assert_false(sg_policy_is_locked(p, "bob", "192.0.2.9", T0 + 3, NULL));
        /* ... but a user already in the set stays there (its slot goes back to its failure) */
        r = reserve(p, "carol", "192.0.2.9", T0 + 4);
        assert_allowed_no_lock(&r);
        sg_policy_settle(p, "carol", "192.0.2.9", r.v.reservation, SG_OUTCOME_VOID, T0 + 4, NULL, 0, NULL);
        r = fail_once(p, "dave", "192.0.2.9", T0 + 5);
        assert_new_lock(&r, SG_LOCK_SPRAY, "192.0.2.9");
        sg_policy_free(p);

        /* replay: a void row is not replayed as a failure; replay_void lifts its stored lock */
        p = mk(&c);
        {
                struct sg_lock_info l = { .kind = SG_LOCK_USER_SOURCE, .key = "alice@192.0.2.1",
                                          .until_usec = T0 + 15 * MINUTE, .level = 1,
                                          .last_lock_usec = T0, .failures = 5 };

                sg_policy_load_lock(p, &l);
        }
        for (int i = 0; i < 4; i++)
                sg_policy_replay_failure(p, "alice", "192.0.2.1", T0 - (4 - i) * USEC);
        sg_policy_replay_void(p, "alice", "192.0.2.1", T0 - USEC / 2); /* another attempt */
        assert_true(sg_policy_is_locked(p, "alice", "192.0.2.1", T0 + USEC, NULL));
        sg_policy_replay_void(p, "alice", "192.0.2.1", T0);
        assert_false(sg_policy_is_locked(p, "alice", "192.0.2.1", T0 + USEC, NULL));
        r = reserve(p, "alice", "192.0.2.1", T0 + 2 * USEC); /* the 4 failures still count */
        assert_new_lock(&r, SG_LOCK_USER_SOURCE, "alice@192.0.2.1");
        sg_policy_free(p);
}

/* Invalid input counts toward its source only: 20 garbage names lock the source for everyone,
 * and nothing else (no user, pair or spray key; a local one counts nowhere). */
static void test_invalid_counts_toward_source(void **state) {
        struct sg_policy_config c = base_config();
        sg_policy *p = mk(&c);
        struct result r;

        (void) state;
        for (int i = 0; i < 19; i++) {
                r = fail_once(p, SG_POLICY_INVALID_USER, "192.0.2.7", T0 + i);
                assert_allowed_no_lock(&r);
                assert_int_equal(r.v.delay_ms, 0);
        }
        assert_int_equal(sg_policy_key_count(p), 1); /* the source key alone */
        r = fail_once(p, SG_POLICY_INVALID_USER, "192.0.2.7", T0 + 19);
        assert_new_lock(&r, SG_LOCK_SOURCE, "192.0.2.7");
        assert_denied((r = reserve(p, "alice", "192.0.2.7", T0 + 20), &r), SG_LOCK_SOURCE);
        assert_denied((r = reserve(p, SG_POLICY_INVALID_USER, "192.0.2.7", T0 + 21), &r), SG_LOCK_SOURCE);
        /* local: counted nowhere, never locked */
        for (int i = 0; i < 50; i++)
                assert_allowed_no_lock((r = fail_once(p, SG_POLICY_INVALID_USER, "", T0 + 30 + i), &r));
        assert_int_equal(sg_policy_key_count(p), 1);
        sg_policy_free(p);

        /* replayed the same way */
        p = mk(&c);
        for (int i = 0; i < 19; i++)
                sg_policy_replay_failure(p, SG_POLICY_INVALID_USER, "192.0.2.7", T0 - 60 * USEC + i);
        assert_int_equal(sg_policy_key_count(p), 1);
        r = fail_once(p, "alice", "192.0.2.7", T0);
        assert_new_lock(&r, SG_LOCK_SOURCE, "192.0.2.7");
        sg_policy_free(p);
}

/* Guessing one account from many sources: beyond user_max_failures, one attempt per delay
 * step is admitted host-wide (paced, not locked); local logins have their own step. */
static void test_user_pacing(void **state) {
        struct sg_policy_config c = base_config();
        sg_policy *p;
        struct result r;
        char rhost[64];
        int admitted = 0, paced = 0;

        (void) state;
        c.user_pacing = true;
        c.ipv6_prefix_wide = 48;
        c.ipv6_prefix_widest = 32;
        p = mk(&c);
        /* 60 guesses within one second, each from its own /64 of distinct /32s: 5 free, then
         * the 6th takes the step (2.5 s at 5 failures), the rest are refused as paced */
        for (int i = 0; i < 60; i++) {
                snprintf(rhost, sizeof rhost, "2001:db8:%x:%x::1", i, i);
                r = reserve(p, "alice", rhost, T0 + (uint64_t) i * 10000);
                if (r.v.allowed) {
                        admitted++;
                        sg_policy_settle(p, "alice", rhost, r.v.reservation, SG_OUTCOME_FAILURE, T0 + (uint64_t) i * 10000, NULL, 0, NULL);
                } else {
                        assert_true(r.v.paced);
                        assert_int_equal(r.v.kind, SG_LOCK_USER);
                        assert_int_equal(r.v.until_usec, T0 + 5 * 10000 + 2500 * 1000);
                        assert_int_equal(r.v.delay_ms, 3000);
                        paced++;
                }
        }
        assert_int_equal(admitted, 6);
        assert_int_equal(paced, 54);
        assert_int_equal(sg_policy_lock_count(p, T0 + USEC), 0); /* no lock: the victim is paced, not locked */
        /* a local login of the victim is not held up by the remote flood */
        r = reserve(p, "alice", "", T0 + USEC);
        assert_true(r.v.allowed);
        sg_policy_settle(p, "alice", "", r.v.reservation, SG_OUTCOME_FAILURE, T0 + USEC, NULL, 0, NULL);
        /* ... but is paced itself: the next local one waits its own step */
        assert_true((r = reserve(p, "alice", "", T0 + USEC + 1), !r.v.allowed && r.v.paced));
        /* the remote step opens at its time: one more admitted, which takes the next step */
        assert_false((r = reserve(p, "alice", "192.0.2.1", T0 + 2550 * 1000 - 1), r.v.allowed));
        r = reserve(p, "alice", "192.0.2.1", T0 + 2550 * 1000);
        assert_true(r.v.allowed);
        assert_false((r = reserve(p, "alice", "192.0.2.2", T0 + 2550 * 1000 + 1), r.v.allowed));
        /* other users are not paced */
        assert_allowed_no_lock((r = fail_once(p, "bob", "192.0.2.3", T0 + 3 * USEC), &r));
        /* a success ends the pacing (the user's failures are cleared) */
        r = reserve(p, "alice", "192.0.2.9", T0 + 10 * USEC);
        assert_true(r.v.allowed);
        sg_policy_settle(p, "alice", "192.0.2.9", r.v.reservation, SG_OUTCOME_SUCCESS, T0 + 10 * USEC, NULL, 0, NULL);
        for (int i = 0; i < 5; i++)
                assert_true((r = fail_once(p, "alice", "192.0.2.10", T0 + 11 * USEC + (uint64_t) i), r.v.allowed));
        sg_policy_free(p);

        /* off: every attempt admitted (the old behaviour) */
        c.user_pacing = false;
        p = mk(&c);
        for (int i = 0; i < 30; i++) {
                snprintf(rhost, sizeof rhost, "2001:db8:%x:%x::1", i, i);
                assert_true((r = fail_once(p, "alice", rhost, T0 + (uint64_t) i), r.v.allowed));
        }
        sg_policy_free(p);
}

/* IPv6 sources count per /64, and per /48 (2 x source_max) and /32 (4 x) too. */
static void test_ipv6_hierarchy(void **state) {
        struct sg_policy_config c = base_config();
        sg_policy *p;
        struct result r;
        char rhost[64], user[16];

        (void) state;
        c.ipv6_prefix_wide = 48;
        c.ipv6_prefix_widest = 32;
        c.spray_max_users = 1000;
        p = mk(&c);
        /* 40 users from 40 /64s of one /48: no /64 reaches anything, the /48 locks at 40 */
        for (int i = 0; i < 39; i++) {
                snprintf(rhost, sizeof rhost, "2001:db8:1:%x::1", i);
                snprintf(user, sizeof user, "u%d", i);
                assert_allowed_no_lock((r = fail_once(p, user, rhost, T0 + (uint64_t) i), &r));
        }
        r = fail_once(p, "u39", "2001:db8:1:ffff::1", T0 + 39);
        assert_new_lock(&r, SG_LOCK_SOURCE, "2001:db8:1::/48");
        assert_denied((r = reserve(p, "alice", "2001:db8:1:abcd::7", T0 + 40), &r), SG_LOCK_SOURCE);
        assert_allowed_no_lock((r = reserve(p, "alice", "2001:db8:2::7", T0 + 41), &r));
        /* the /32 at 80: 41 so far (the reservation above counts), 39 more from other /48s */
        for (int i = 0; i < 38; i++) {
                snprintf(rhost, sizeof rhost, "2001:db8:%x::1", 0x100 + i);
                snprintf(user, sizeof user, "v%d", i);
                assert_allowed_no_lock((r = fail_once(p, user, rhost, T0 + 100 + (uint64_t) i), &r));
        }
        r = fail_once(p, "v38", "2001:db8:ffff::1", T0 + 200);
        assert_new_lock(&r, SG_LOCK_SOURCE, "2001:db8::/32");
        /* a lock loaded from the store keeps its tier's limit: unlock and relock by key */
        assert_int_equal(sg_policy_unlock(p, SG_LOCK_SOURCE, "2001:db8:1::/48", T0 + 300, NULL), 1);
        sg_policy_free(p);

        /* a wide prefix not shorter than ipv6_prefix is off: never the same network twice */
        c.ipv6_prefix = 48;
        p = mk(&c);
        for (int i = 0; i < 19; i++) {
                snprintf(rhost, sizeof rhost, "2001:db8:1:%x::1", i);
                snprintf(user, sizeof user, "u%d", i);
                assert_allowed_no_lock((r = fail_once(p, user, rhost, T0 + (uint64_t) i), &r));
        }
        r = fail_once(p, "u19", "2001:db8:1:ffff::1", T0 + 19);
        assert_new_lock(&r, SG_LOCK_SOURCE, "2001:db8:1::/48"); /* at source_max_failures, once */
        sg_policy_free(p);
        c.ipv6_prefix = 64;

        /* replay rebuilds the wide counts from the stored /64 keys */
        p = mk(&c);
        for (int i = 0; i < 39; i++) {
                snprintf(rhost, sizeof rhost, "2001:db8:1:%x::/64", i);
                snprintf(user, sizeof user, "u%d", i);
                sg_policy_replay_failure(p, user, rhost, T0 - 60 * USEC + (uint64_t) i);
        }
        r = fail_once(p, "u39", "2001:db8:1:ffff::1", T0);
        assert_new_lock(&r, SG_LOCK_SOURCE, "2001:db8:1::/48");
        sg_policy_free(p);
}

/* Host names (UseDNS yes): a stricter budget per name, and the parent domain counted too. */
/* The wider keys `unlock --rhost` clears along with the address's own. */
static void test_wider_keys(void **state) {
        struct sg_policy_config c = base_config();
        char wide[SG_POLICY_KEY_MAX], widest[SG_POLICY_KEY_MAX];
        sg_policy *p;

        (void) state;
        c.ipv6_prefix_wide = 48;
        c.ipv6_prefix_widest = 32;
        p = mk(&c);
        assert_int_equal(sg_policy_wider_keys(p, "2001:db8:7:99::1", wide, widest), 0);
        assert_string_equal(wide, "2001:db8:7::/48");
        assert_string_equal(widest, "2001:db8::/32");
        assert_int_equal(sg_policy_wider_keys(p, "192.0.2.1", wide, widest), 0);
        assert_string_equal(wide, "");
        assert_string_equal(widest, "");
        assert_int_equal(sg_policy_wider_keys(p, "host1.evil.example", wide, widest), 0);
        assert_string_equal(wide, "*.evil.example");
        assert_string_equal(widest, "");
        assert_int_equal(sg_policy_wider_keys(p, "", wide, widest), 0); /* local: none */
        assert_string_equal(wide, "");
        sg_policy_free(p);
        c.ipv6_prefix_wide = c.ipv6_prefix_widest = 0;
        p = mk(&c);
        assert_int_equal(sg_policy_wider_keys(p, "2001:db8:7:99::1", wide, widest), 0);
        assert_string_equal(wide, "");
        assert_string_equal(widest, "");
        sg_policy_free(p);
}

static void test_hostname_budget(void **state) {
        struct sg_policy_config c = base_config();
        sg_policy *p;
        struct result r;
        char rhost[64], user[16];

        (void) state;
        c.hostname_max_failures = 3;
        c.spray_max_users = 1000;
        p = mk(&c);
        for (int i = 0; i < 2; i++) {
                snprintf(user, sizeof user, "u%d", i);
                assert_allowed_no_lock((r = fail_once(p, user, "Host1.Evil.Example.", T0 + (uint64_t) i), &r));
        }
        r = fail_once(p, "u2", "host1.evil.example", T0 + 2);
        assert_new_lock(&r, SG_LOCK_SOURCE, "host1.evil.example");
        /* a new name per attempt: the parent domain locks at source_max_failures */
        for (int i = 3; i < 19; i++) {
                snprintf(rhost, sizeof rhost, "h%d.evil.example", i);
                snprintf(user, sizeof user, "u%d", i);
                assert_allowed_no_lock((r = fail_once(p, user, rhost, T0 + (uint64_t) i), &r));
        }
        r = fail_once(p, "u19", "h19.evil.example", T0 + 19);
        assert_new_lock(&r, SG_LOCK_SOURCE, "*.evil.example");
        assert_denied((r = reserve(p, "alice", "other.evil.example", T0 + 20), &r), SG_LOCK_SOURCE);
        /* never a whole top-level domain */
        for (int i = 0; i < 25; i++) {
                snprintf(rhost, sizeof rhost, "n%d.example", i);
                assert_allowed_no_lock((r = fail_once(p, "bob", rhost, T0 + 30 + (uint64_t) i), &r));
        }
        assert_false(sg_policy_is_locked(p, "bob", "fresh.example", T0 + 60, NULL));
        sg_policy_free(p);
}

/* ---- fleet locks ---- */

static int count_fleet_cb(void *userdata, const struct sg_fleet_lock *l) {
        (void) l;
        (*(size_t *) userdata)++;
        return 0;
}


static struct sg_fleet_lock fleet_make(sg_policy *p, enum sg_lock_kind kind, const char *key, uint64_t until,
                                       uint64_t id, uint64_t now) {
        struct sg_fleet_lock l = { .kind = kind, .until_usec = until, .decision_id = id, .applied_usec = now };

        assert_int_equal(sg_policy_fleet_key(p, kind, key, l.key), 0);
        snprintf(l.origin_host, sizeof l.origin_host, "%s", "0123456789abcdef0123456789abcdef");
        return l;
}

static void test_fleet_key(void **state) {
        struct sg_policy_config c = base_config();
        char out[SG_POLICY_KEY_MAX];
        sg_policy *p;

        (void) state;
        c.ipv6_prefix_wide = 48;
        c.ipv6_prefix_widest = 32;
        p = mk(&c);
        /* addresses: keyed as a local lock keys them */
        assert_int_equal(sg_policy_fleet_key(p, SG_LOCK_SOURCE, "192.0.2.7", out), 0);
        assert_string_equal(out, "192.0.2.7");
        assert_int_equal(sg_policy_fleet_key(p, SG_LOCK_SOURCE, "2001:db8:1:2::99", out), 0);
        assert_string_equal(out, "2001:db8:1:2::/64");
        assert_int_equal(sg_policy_fleet_key(p, SG_LOCK_SPRAY, "::ffff:192.0.2.8", out), 0);
        assert_string_equal(out, "192.0.2.8");
        /* networks at the lengths this host keys on, written canonically */
        assert_int_equal(sg_policy_fleet_key(p, SG_LOCK_SOURCE, "2001:db8:1:2::/64", out), 0);
        assert_string_equal(out, "2001:db8:1:2::/64");
        assert_int_equal(sg_policy_fleet_key(p, SG_LOCK_SOURCE, "2001:DB8:1:2:0::/64", out), 0);
        assert_string_equal(out, "2001:db8:1:2::/64");
        assert_int_equal(sg_policy_fleet_key(p, SG_LOCK_SOURCE, "2001:db8:1::/48", out), 0);
        assert_string_equal(out, "2001:db8:1::/48");
        assert_int_equal(sg_policy_fleet_key(p, SG_LOCK_SOURCE, "2001:db8::/32", out), 0);
        assert_string_equal(out, "2001:db8::/32");
        /* refused: other lengths, IPv4 networks, wide networks for spray, names, junk, kinds */
        assert_int_equal(sg_policy_fleet_key(p, SG_LOCK_SOURCE, "2001:db8:1:2::/56", out), -EINVAL);
        assert_int_equal(sg_policy_fleet_key(p, SG_LOCK_SOURCE, "2001:db8::/0", out), -EINVAL);
        assert_int_equal(sg_policy_fleet_key(p, SG_LOCK_SOURCE, "192.0.2.0/24", out), -EINVAL);
        assert_int_equal(sg_policy_fleet_key(p, SG_LOCK_SPRAY, "2001:db8:1::/48", out), -EINVAL);
        assert_int_equal(sg_policy_fleet_key(p, SG_LOCK_SOURCE, "attacker.example", out), -EINVAL);
        assert_int_equal(sg_policy_fleet_key(p, SG_LOCK_SOURCE, "*.example.org", out), -EINVAL);
        assert_int_equal(sg_policy_fleet_key(p, SG_LOCK_SOURCE, "192.0.2.300", out), -EINVAL);
        assert_int_equal(sg_policy_fleet_key(p, SG_LOCK_SOURCE, "", out), -EINVAL);
        assert_int_equal(sg_policy_fleet_key(p, SG_LOCK_SOURCE, "2001:db8::1/64/64", out), -EINVAL);
        assert_int_equal(sg_policy_fleet_key(p, SG_LOCK_USER, "192.0.2.7", out), -EINVAL);
        assert_int_equal(sg_policy_fleet_key(p, SG_LOCK_USER_SOURCE, "a@192.0.2.7", out), -EINVAL);
        sg_policy_free(p);
}

static void test_fleet_lock_denies_like_a_local_lock(void **state) {
        struct sg_policy_config c = base_config();
        struct sg_fleet_lock l, got;
        struct sg_verdict v;
        struct result r;
        sg_policy *p;

        (void) state;
        p = mk(&c);
        l = fleet_make(p, SG_LOCK_SOURCE, "192.0.2.7", T0 + HOUR, 41, T0);
        assert_int_equal(sg_policy_fleet_lock(p, &l), 0);
        assert_int_equal(sg_policy_fleet_lock_count(p, T0), 1);
        assert_int_equal(sg_policy_lock_count(p, T0), 0); /* not a local lock */

        /* any user from that source: refused, nothing counted, no new lock */
        r = reserve(p, "alice", "192.0.2.7", T0 + MINUTE);
        assert_false(r.v.allowed);
        assert_false(r.v.paced);
        assert_int_equal(r.v.kind, SG_LOCK_SOURCE);
        assert_int_equal(r.v.until_usec, T0 + HOUR);
        assert_int_equal(r.n, 0);
        assert_true(sg_policy_is_locked(p, "bob", "192.0.2.7", T0 + MINUTE, &v));
        /* another source is not touched */
        r = reserve(p, "alice", "192.0.2.8", T0 + MINUTE);
        assert_allowed_no_lock(&r);

        /* the decision is what is stored: host and id */
        assert_int_equal(sg_policy_fleet_get(p, SG_LOCK_SOURCE, "192.0.2.7", &got), 0);
        assert_int_equal(got.decision_id, 41);
        assert_string_equal(got.origin_host, "0123456789abcdef0123456789abcdef");
        assert_int_equal(sg_policy_fleet_get(p, SG_LOCK_SPRAY, "192.0.2.7", &got), -ENOENT);

        /* a local unlock of the key touches the local lock only (the daemon clears the fleet
         * lock itself, with its store row) */
        assert_int_equal(sg_policy_unlock(p, SG_LOCK_SOURCE, "192.0.2.7", T0 + MINUTE, NULL), -ENOENT);
        assert_false(reserve(p, "alice", "192.0.2.7", T0 + 2 * MINUTE).v.allowed);

        /* it expires like a local lock */
        r = reserve(p, "alice", "192.0.2.7", T0 + HOUR);
        assert_true(r.v.allowed);
        assert_int_equal(sg_policy_fleet_lock_count(p, T0 + HOUR), 0);
        sg_policy_free(p);
}

static void test_fleet_lock_unlock_and_listing(void **state) {
        struct sg_policy_config c = base_config();
        struct sg_fleet_lock l;
        sg_policy *p;
        size_t n = 0;

        (void) state;
        p = mk(&c);
        l = fleet_make(p, SG_LOCK_SPRAY, "2001:db8:1:2::5", T0 + HOUR, 7, T0);
        assert_int_equal(sg_policy_fleet_lock(p, &l), 0);
        /* a spray lock refuses every named user from the /64 */
        assert_false(reserve(p, "carol", "2001:db8:1:2::99", T0 + 1).v.allowed);
        assert_int_equal(sg_policy_foreach_fleet_lock(p, T0 + 1, count_fleet_cb, &n), 0);
        assert_int_equal(n, 1);
        /* unlock: 1 when one was in force, then 0 */
        assert_int_equal(sg_policy_fleet_unlock(p, SG_LOCK_SPRAY, "2001:db8:1:2::/64", T0 + 2), 1);
        assert_int_equal(sg_policy_fleet_unlock(p, SG_LOCK_SPRAY, "2001:db8:1:2::/64", T0 + 2), 0);
        assert_true(reserve(p, "carol", "2001:db8:1:2::99", T0 + 3).v.allowed);
        assert_int_equal(sg_policy_fleet_lock_count(p, T0 + 3), 0);
        /* bad input changes nothing */
        l.kind = SG_LOCK_USER;
        assert_int_equal(sg_policy_fleet_lock(p, &l), -EINVAL);
        l.kind = SG_LOCK_SOURCE;
        l.key[0] = '\0';
        assert_int_equal(sg_policy_fleet_lock(p, &l), -EINVAL);
        sg_policy_free(p);
}

static void test_fleet_lock_allowlist_wins(void **state) {
        struct sg_policy_config c = base_config();
        struct sg_cidr_list list = { 0 };
        struct sg_fleet_lock l;
        sg_policy *p;

        (void) state;
        assert_int_equal(sg_cidr_list_parse("192.0.2.0/28", &list, NULL), 0);
        c.allowlist = list;
        p = mk(&c);
        assert_true(sg_policy_key_allowlisted(p, "192.0.2.7"));
        assert_false(sg_policy_key_allowlisted(p, "192.0.2.77"));
        l = fleet_make(p, SG_LOCK_SOURCE, "192.0.2.7", T0 + HOUR, 1, T0);
        assert_int_equal(sg_policy_fleet_lock(p, &l), 0);
        /* listed, never enforced */
        assert_int_equal(sg_policy_fleet_lock_count(p, T0), 1);
        assert_true(reserve(p, "alice", "192.0.2.7", T0 + 1).v.allowed);
        assert_false(sg_policy_is_locked(p, "alice", "192.0.2.7", T0 + 1, NULL));
        sg_policy_free(p);
        sg_cidr_list_free(&list);
}

/* A fleet-locked key is never evicted to make room, and gc keeps it until it ends. */
static void test_fleet_lock_survives_eviction_and_gc(void **state) {
        struct sg_policy_config c = base_config();
        struct sg_fleet_lock l;
        char rhost[32];
        sg_policy *p;

        (void) state;
        c.max_keys = 8;
        p = mk(&c);
        l = fleet_make(p, SG_LOCK_SOURCE, "198.51.100.1", T0 + DAY, 3, T0);
        assert_int_equal(sg_policy_fleet_lock(p, &l), 0);
        for (int i = 0; i < 50; i++) {
                snprintf(rhost, sizeof rhost, "203.0.113.%d", i);
                (void) fail_once(p, "alice", rhost, T0 + (uint64_t) i);
        }
        assert_false(reserve(p, "alice", "198.51.100.1", T0 + MINUTE).v.allowed);
        sg_policy_gc(p, T0 + HOUR);
        assert_false(reserve(p, "alice", "198.51.100.1", T0 + HOUR).v.allowed);
        sg_policy_gc(p, T0 + DAY + 1);
        assert_int_equal(sg_policy_fleet_get(p, SG_LOCK_SOURCE, "198.51.100.1", NULL), -ENOENT);
        assert_true(reserve(p, "alice", "198.51.100.1", T0 + DAY + 2).v.allowed);
        sg_policy_free(p);
}


/* ---- lifted locks: the in-flight attempt that crossed a threshold succeeds or is void ---- */

static struct sg_policy_config lift_config(void) {
        struct sg_policy_config c = base_config();

        c.source_max_failures = 3;
        c.user_max_failures = 100;
        c.user_source_max_failures = 100;
        c.spray_max_users = 100;
        return c;
}

/* fail, fail, then the third attempt crosses the source threshold in flight: its lock is
 * reported when the attempt succeeds (until 0, the level back), only once, and only when the
 * attempt itself set it. */
static void test_lift_reported_on_success(void **state) {
        struct sg_policy_config c = lift_config();
        struct sg_lock_info lifted[SG_POLICY_NEW_LOCKS_MAX];
        sg_policy *p = mk(&c);
        struct result r;
        size_t n = 99;

        (void) state;
        assert_allowed_no_lock((r = fail_once(p, "alice", "192.0.2.9", T0), &r));
        assert_allowed_no_lock((r = fail_once(p, "alice", "192.0.2.9", T0 + 1), &r));
        r = reserve(p, "alice", "192.0.2.9", T0 + 2);
        assert_new_lock(&r, SG_LOCK_SOURCE, "192.0.2.9");
        /* in flight: the lock bounds parallel guessing */
        assert_true(sg_policy_is_locked(p, "bob", "192.0.2.9", T0 + 3, NULL));
        sg_policy_settle(p, "alice", "192.0.2.9", r.v.reservation, SG_OUTCOME_SUCCESS, T0 + 4, lifted,
                         SG_POLICY_NEW_LOCKS_MAX, &n);
        assert_int_equal(n, 1);
        assert_int_equal(lifted[0].kind, SG_LOCK_SOURCE);
        assert_string_equal(lifted[0].key, "192.0.2.9");
        assert_int_equal(lifted[0].until_usec, 0);
        assert_int_equal(lifted[0].level, 0);
        assert_int_equal(lifted[0].last_lock_usec, T0 + 2);
        assert_false(sg_policy_is_locked(p, "bob", "192.0.2.9", T0 + 5, NULL));
        /* settling again reports nothing */
        n = 99;
        sg_policy_settle(p, "alice", "192.0.2.9", r.v.reservation, SG_OUTCOME_SUCCESS, T0 + 6, lifted,
                         SG_POLICY_NEW_LOCKS_MAX, &n);
        assert_int_equal(n, 0);
        /* the two failures still count: one more failure locks (and that lock stays) */
        r = fail_once(p, "bob", "192.0.2.9", T0 + 7);
        assert_new_lock(&r, SG_LOCK_SOURCE, "192.0.2.9");
        assert_true(sg_policy_is_locked(p, "carol", "192.0.2.9", T0 + 8, NULL));
        sg_policy_free(p);

        /* a success that set no lock reports none; a lock set by another attempt stays */
        p = mk(&c);
        assert_allowed_no_lock((r = fail_once(p, "alice", "192.0.2.9", T0), &r));
        r = reserve(p, "alice", "192.0.2.9", T0 + 1);
        assert_allowed_no_lock(&r);
        struct result other = reserve(p, "bob", "192.0.2.9", T0 + 2);
        assert_new_lock(&other, SG_LOCK_SOURCE, "192.0.2.9");
        n = 99;
        sg_policy_settle(p, "alice", "192.0.2.9", r.v.reservation, SG_OUTCOME_SUCCESS, T0 + 3, lifted,
                         SG_POLICY_NEW_LOCKS_MAX, &n);
        assert_int_equal(n, 0);
        assert_true(sg_policy_is_locked(p, "carol", "192.0.2.9", T0 + 4, NULL));
        /* ... and bob's failure keeps it */
        n = 99;
        sg_policy_settle(p, "bob", "192.0.2.9", other.v.reservation, SG_OUTCOME_FAILURE, T0 + 5, lifted,
                         SG_POLICY_NEW_LOCKS_MAX, &n);
        assert_int_equal(n, 0);
        assert_true(sg_policy_is_locked(p, "carol", "192.0.2.9", T0 + 6, NULL));
        sg_policy_free(p);
}

/* A void attempt reports the lock it set; spray too; max_lifted bounds what is written. */
static void test_lift_reported_on_void(void **state) {
        struct sg_policy_config c = lift_config();
        struct sg_lock_info lifted[SG_POLICY_NEW_LOCKS_MAX];
        sg_policy *p;
        struct result r;
        size_t n = 99;

        (void) state;
        c.source_max_failures = 100;
        c.spray_max_users = 2;
        p = mk(&c);
        assert_allowed_no_lock((r = fail_once(p, "alice", "192.0.2.10", T0), &r));
        r = reserve(p, "bob", "192.0.2.10", T0 + 1);
        assert_new_lock(&r, SG_LOCK_SPRAY, "192.0.2.10");
        sg_policy_settle(p, "bob", "192.0.2.10", r.v.reservation, SG_OUTCOME_VOID, T0 + 2, lifted, 0, &n);
        assert_int_equal(n, 0); /* lifted, but no room to report it */
        assert_false(sg_policy_is_locked(p, "carol", "192.0.2.10", T0 + 3, NULL));
        r = reserve(p, "bob", "192.0.2.10", T0 + 4);
        assert_new_lock(&r, SG_LOCK_SPRAY, "192.0.2.10");
        sg_policy_settle(p, "bob", "192.0.2.10", r.v.reservation, SG_OUTCOME_VOID, T0 + 5, lifted,
                         SG_POLICY_NEW_LOCKS_MAX, &n);
        assert_int_equal(n, 1);
        assert_int_equal(lifted[0].kind, SG_LOCK_SPRAY);
        assert_string_equal(lifted[0].key, "192.0.2.10");
        assert_int_equal(lifted[0].until_usec, 0);
        sg_policy_free(p);
}

/* Restart after a lift: the daemon stored the lifted row (until 0) and the attempt as a
 * success; replay keeps it lifted and does not lower the level a second time. */
static void test_lift_replay(void **state) {
        struct sg_policy_config c = lift_config();
        struct sg_lock_info lifted[SG_POLICY_NEW_LOCKS_MAX], created;
        sg_policy *p = mk(&c), *q;
        struct result r;
        size_t n = 0;
        uint64_t t3;

        (void) state;
        /* an earlier lock gives the key level 1, so a double lift would show */
        for (int i = 0; i < 3; i++)
                fail_once(p, "mallory", "192.0.2.11", T0 + (uint64_t) i);
        (void) sg_policy_unlock(p, SG_LOCK_SOURCE, "192.0.2.11", T0 + 10, NULL);
        fail_once(p, "alice", "192.0.2.11", T0 + MINUTE);
        fail_once(p, "alice", "192.0.2.11", T0 + MINUTE + 1);
        r = reserve(p, "alice", "192.0.2.11", t3 = T0 + MINUTE + 2);
        assert_new_lock(&r, SG_LOCK_SOURCE, "192.0.2.11");
        assert_int_equal(r.locks[0].level, 2);
        created = r.locks[0];
        sg_policy_settle(p, "alice", "192.0.2.11", r.v.reservation, SG_OUTCOME_SUCCESS, t3 + 1, lifted,
                         SG_POLICY_NEW_LOCKS_MAX, &n);
        assert_int_equal(n, 1);
        assert_int_equal(lifted[0].level, 1);
        sg_policy_free(p);

        /* the new process: the lock row as written back after the lift, then the attempts */
        q = mk(&c);
        sg_policy_load_lock(q, &lifted[0]);
        sg_policy_replay_failure(q, "alice", "192.0.2.11", T0 + MINUTE);
        sg_policy_replay_failure(q, "alice", "192.0.2.11", T0 + MINUTE + 1);
        sg_policy_replay_success(q, "alice", "192.0.2.11", t3);
        assert_false(sg_policy_is_locked(q, "bob", "192.0.2.11", t3 + 2, NULL));
        /* the next lock on that key is level 1 again (not 0: the lift lowered it once only) */
        r = fail_once(q, "bob", "192.0.2.11", t3 + 3);
        assert_new_lock(&r, SG_LOCK_SOURCE, "192.0.2.11");
        assert_int_equal(r.locks[0].level, 2);
        sg_policy_free(q);

        /* a crash before the row was written back: the stored row shows the lock in force,
         * replay lifts it (quietly: the audit row is written live only) */
        q = mk(&c);
        sg_policy_load_lock(q, &created);
        sg_policy_replay_failure(q, "alice", "192.0.2.11", T0 + MINUTE);
        sg_policy_replay_failure(q, "alice", "192.0.2.11", T0 + MINUTE + 1);
        assert_true(sg_policy_is_locked(q, "bob", "192.0.2.11", t3 + 2, NULL));
        sg_policy_replay_success(q, "alice", "192.0.2.11", t3);
        assert_false(sg_policy_is_locked(q, "bob", "192.0.2.11", t3 + 2, NULL));
        sg_policy_free(q);
}

/* A lifted lockout elsewhere clears only the fleet lock its origin published. */
static void test_fleet_unlock_origin(void **state) {
        struct sg_policy_config c = base_config();
        sg_policy *p = mk(&c);
        struct sg_fleet_lock l = fleet_make(p, SG_LOCK_SOURCE, "192.0.2.12", T0 + HOUR, 7, T0);
        struct sg_fleet_lock have;

        (void) state;
        assert_int_equal(sg_policy_fleet_lock(p, &l), 0);
        /* another origin: untouched */
        assert_int_equal(sg_policy_fleet_unlock_origin(p, SG_LOCK_SOURCE, l.key, "ffffffffffffffffffffffffffffffff",
                                                       T0 + 1),
                         -ESRCH);
        assert_true(sg_policy_is_locked(p, "bob", "192.0.2.12", T0 + 2, NULL));
        /* the spray kind of the same key has none */
        assert_int_equal(sg_policy_fleet_unlock_origin(p, SG_LOCK_SPRAY, l.key, l.origin_host, T0 + 2), -ENOENT);
        assert_true(sg_policy_is_locked(p, "bob", "192.0.2.12", T0 + 2, NULL));
        /* the origin: cleared */
        assert_int_equal(sg_policy_fleet_unlock_origin(p, SG_LOCK_SOURCE, l.key, l.origin_host, T0 + 3), 1);
        assert_int_equal(sg_policy_fleet_get(p, SG_LOCK_SOURCE, l.key, &have), -ENOENT);
        assert_false(sg_policy_is_locked(p, "bob", "192.0.2.12", T0 + 4, NULL));
        assert_int_equal(sg_policy_fleet_unlock_origin(p, SG_LOCK_SOURCE, l.key, l.origin_host, T0 + 5), -ENOENT);
        /* an expired one from the origin goes too, reported as not in force */
        struct sg_fleet_lock old = fleet_make(p, SG_LOCK_SOURCE, "192.0.2.12", T0 + 6, 8, T0 + 5);
        assert_int_equal(sg_policy_fleet_lock(p, &old), 0);
        assert_int_equal(sg_policy_fleet_unlock_origin(p, SG_LOCK_SOURCE, l.key, l.origin_host, T0 + 7), 0);
        assert_int_equal(sg_policy_fleet_get(p, SG_LOCK_SOURCE, l.key, &have), -ENOENT);
        /* a local lock on the key is never touched */
        c.source_max_failures = 3;
        sg_policy_set_config(p, &c);
        for (int i = 0; i < 3; i++)
                fail_once(p, "u", "192.0.2.12", T0 + 10 + (uint64_t) i);
        assert_true(sg_policy_is_locked(p, "bob", "192.0.2.12", T0 + 40, NULL));
        assert_int_equal(sg_policy_fleet_lock(p, &l), 0);
        assert_int_equal(sg_policy_fleet_unlock_origin(p, SG_LOCK_SOURCE, l.key, l.origin_host, T0 + 41), 1);
        assert_true(sg_policy_is_locked(p, "bob", "192.0.2.12", T0 + 42, NULL));
        sg_policy_free(p);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_kind_names),
                cmocka_unit_test(test_user_source_threshold_exact),
                cmocka_unit_test(test_source_threshold_exact),
                cmocka_unit_test(test_spray_lock),
                cmocka_unit_test(test_user_hard_lock),
                cmocka_unit_test(test_user_soft_delays_only),
                cmocka_unit_test(test_root_exempt_unless_deny_root),
                cmocka_unit_test(test_parallel_reservations),
                cmocka_unit_test(test_success_resets_user_not_source),
                cmocka_unit_test(test_backoff),
                cmocka_unit_test(test_allowlist),
                cmocka_unit_test(test_ipv6_grouping),
                cmocka_unit_test(test_sliding_window),
                cmocka_unit_test(test_growing_delay),
                cmocka_unit_test(test_locked_attempt_delay),
                cmocka_unit_test(test_unlock),
                cmocka_unit_test(test_unlock_pairs),
                cmocka_unit_test(test_replay),
                cmocka_unit_test(test_load_lock),
                cmocka_unit_test(test_gc),
                cmocka_unit_test(test_max_keys_eviction),
                cmocka_unit_test(test_settle_twice_noop),
                cmocka_unit_test(test_locked_attempt_counts_nothing),
                cmocka_unit_test(test_set_config_keeps_counters),
                cmocka_unit_test(test_long_keys),
                cmocka_unit_test(test_void_counts_nowhere),
                cmocka_unit_test(test_invalid_counts_toward_source),
                cmocka_unit_test(test_user_pacing),
                cmocka_unit_test(test_ipv6_hierarchy),
                cmocka_unit_test(test_hostname_budget),
                cmocka_unit_test(test_wider_keys),
                cmocka_unit_test(test_fleet_key),
                cmocka_unit_test(test_fleet_lock_denies_like_a_local_lock),
                cmocka_unit_test(test_fleet_lock_unlock_and_listing),
                cmocka_unit_test(test_fleet_lock_allowlist_wins),
                cmocka_unit_test(test_fleet_lock_survives_eviction_and_gc),
                cmocka_unit_test(test_lift_reported_on_success),
                cmocka_unit_test(test_lift_reported_on_void),
                cmocka_unit_test(test_lift_replay),
                cmocka_unit_test(test_fleet_unlock_origin),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
