/* SPDX-License-Identifier: MIT */
/*
 * The hash-permit FIFO on its own: grants up to the cap, waiters served oldest first,
 * leaving the queue (cancel), deadlines (also after a reload shortened the wait), and a
 * larger cap granting to waiters at once, leases taken back, and the share of permits that
 * limited requests (local logins charged to a user) may hold.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <cmocka.h>

#include "permits.h"

#define NREQ 8
#define LONG_LEASE (1ull << 50) /* no lease ends in the tests that are not about leases */

struct rec {
        struct permit_req p;
        int id;
};

static int log_ids[64], log_kind[64]; /* kind 1 = granted, 2 = expired, 3 = lease expired */
static size_t log_n;

static void on_granted(struct permit_req *p) {
        log_ids[log_n] = ((struct rec *) p)->id;
        log_kind[log_n++] = 1;
}

static void on_expired(struct permit_req *p) {
        log_ids[log_n] = ((struct rec *) p)->id;
        log_kind[log_n++] = 2;
}

static void on_lease_expired(struct permit_req *p) {
        log_ids[log_n] = ((struct rec *) p)->id;
        log_kind[log_n++] = 3;
}

static void init(struct rec *r, size_t n) {
        log_n = 0;
        for (size_t i = 0; i < n; i++)
                r[i] = (struct rec) {
                        .p = { .granted = on_granted, .expired = on_expired, .lease_expired = on_lease_expired },
                        .id = (int) i,
                };
}

static void test_grants_up_to_cap_then_fifo(void **state) {
        struct rec r[NREQ];
        Permits *p = NULL;

        (void) state;
        init(r, NREQ);
        assert_int_equal(permits_new(NULL, &p), 0);
        permits_configure(p, 2, 1000, LONG_LEASE);
        assert_true(permits_acquire(p, &r[0].p, 0));
        assert_true(permits_acquire(p, &r[1].p, 0));
        assert_false(permits_acquire(p, &r[2].p, 0));
        assert_false(permits_acquire(p, &r[3].p, 0));
        assert_false(permits_acquire(p, &r[4].p, 0));
        assert_int_equal(permits_in_use(p), 2);
        assert_int_equal(r[2].p.state, PERMIT_WAITING);

        permits_release(p, &r[1].p); /* next in line: 2 */
        assert_int_equal(log_n, 1);
        assert_int_equal(log_ids[0], 2);
        assert_int_equal(log_kind[0], 1);
        assert_int_equal(r[2].p.state, PERMIT_HELD);
        assert_int_equal(r[1].p.state, PERMIT_NONE);
        assert_int_equal(permits_in_use(p), 2);

        permits_release(p, &r[0].p);
        permits_release(p, &r[2].p);
        assert_int_equal(log_n, 3);
        assert_int_equal(log_ids[1], 3);
        assert_int_equal(log_ids[2], 4);

        /* A newcomer does not overtake: with a free permit but waiters, it queues. */
        permits_release(p, &r[3].p);
        assert_int_equal(permits_in_use(p), 1);
        assert_true(permits_acquire(p, &r[5].p, 0));
        permits_release(p, &r[4].p);
        permits_release(p, &r[5].p);
        assert_int_equal(permits_in_use(p), 0);
        permits_free(p);
}

static void test_newcomer_waits_behind_queue(void **state) {
        struct rec r[NREQ];
        Permits *p = NULL;

        (void) state;
        init(r, NREQ);
        assert_int_equal(permits_new(NULL, &p), 0);
        permits_configure(p, 1, 1000, LONG_LEASE);
        assert_true(permits_acquire(p, &r[0].p, 0));
        assert_false(permits_acquire(p, &r[1].p, 0));
        /* Permits raised by a reload: the waiter gets one at once. */
        permits_configure(p, 2, 1000, LONG_LEASE);
        assert_int_equal(log_n, 1);
        assert_int_equal(log_ids[0], 1);
        /* Full again: a newcomer queues even if an older waiter is gone. */
        assert_false(permits_acquire(p, &r[2].p, 0));
        assert_false(permits_acquire(p, &r[3].p, 0));
        permits_release(p, &r[2].p); /* leaves the queue: no callback */
        assert_int_equal(log_n, 1);
        assert_int_equal(r[2].p.state, PERMIT_NONE);
        permits_release(p, &r[0].p);
        assert_int_equal(log_n, 2);
        assert_int_equal(log_ids[1], 3);
        permits_release(p, &r[1].p);
        permits_release(p, &r[3].p);
        assert_int_equal(permits_in_use(p), 0);
        permits_free(p);
}

static void test_cancel_anywhere_in_queue(void **state) {
        struct rec r[NREQ];
        Permits *p = NULL;

        (void) state;
        init(r, NREQ);
        assert_int_equal(permits_new(NULL, &p), 0);
        permits_configure(p, 1, 1000, LONG_LEASE);
        assert_true(permits_acquire(p, &r[0].p, 0));
        for (int i = 1; i <= 5; i++)
                assert_false(permits_acquire(p, &r[i].p, 0));
        permits_release(p, &r[5].p); /* tail */
        permits_release(p, &r[3].p); /* middle */
        permits_release(p, &r[1].p); /* head */
        permits_release(p, &r[1].p); /* twice: no-op */
        /* The tail is right after removing it: a new waiter goes after 4. */
        assert_false(permits_acquire(p, &r[6].p, 0));
        permits_release(p, &r[0].p);
        permits_release(p, &r[2].p);
        permits_release(p, &r[4].p);
        assert_int_equal(log_n, 3);
        assert_int_equal(log_ids[0], 2);
        assert_int_equal(log_ids[1], 4);
        assert_int_equal(log_ids[2], 6);
        permits_release(p, &r[6].p);
        assert_int_equal(permits_in_use(p), 0);
        permits_free(p);
}

static void test_deadlines(void **state) {
        struct rec r[NREQ];
        Permits *p = NULL;

        (void) state;
        init(r, NREQ);
        assert_int_equal(permits_new(NULL, &p), 0);
        permits_configure(p, 1, 1000, LONG_LEASE);
        assert_true(permits_acquire(p, &r[0].p, 0));
        assert_false(permits_acquire(p, &r[1].p, 100));  /* deadline 1100 */
        assert_false(permits_acquire(p, &r[2].p, 200));  /* 1200 */
        permits_configure(p, 1, 10, LONG_LEASE);                     /* a reload shortens the wait */
        assert_false(permits_acquire(p, &r[3].p, 300));  /* 310: earlier than the ones before */
        permits_expire(p, 309);
        assert_int_equal(log_n, 0);
        permits_expire(p, 310);
        assert_int_equal(log_n, 1);
        assert_int_equal(log_ids[0], 3);
        assert_int_equal(log_kind[0], 2);
        assert_int_equal(r[3].p.state, PERMIT_NONE);
        permits_expire(p, 1150);
        assert_int_equal(log_n, 2);
        assert_int_equal(log_ids[1], 1);
        /* An expired request holds nothing: releasing it gives nothing back. */
        permits_release(p, &r[1].p);
        assert_int_equal(permits_in_use(p), 1);
        permits_release(p, &r[0].p); /* 2 is granted */
        assert_int_equal(log_n, 3);
        assert_int_equal(log_kind[2], 1);
        permits_expire(p, 99999); /* 2 holds a permit now: nothing expires */
        assert_int_equal(log_n, 3);
        permits_release(p, &r[2].p);
        assert_int_equal(permits_in_use(p), 0);
        permits_free(p);
}

static void test_leases(void **state) {
        struct rec r[NREQ];
        Permits *p = NULL;

        (void) state;
        init(r, NREQ);
        assert_int_equal(permits_new(NULL, &p), 0);
        permits_configure(p, 2, 1000, 500);
        assert_true(permits_acquire(p, &r[0].p, 0));    /* lease until 500 */
        assert_true(permits_acquire(p, &r[1].p, 100));  /* until 600 */
        assert_false(permits_acquire(p, &r[2].p, 200)); /* waits until 1200 */
        permits_expire(p, 499);
        assert_int_equal(log_n, 0);
        /* 0's lease ends: its permit is taken back and goes to the waiter. */
        permits_expire(p, 500);
        assert_int_equal(log_n, 2);
        assert_int_equal(log_ids[0], 0);
        assert_int_equal(log_kind[0], 3);
        assert_int_equal(r[0].p.state, PERMIT_NONE);
        assert_int_equal(log_ids[1], 2);
        assert_int_equal(log_kind[1], 1);
        assert_int_equal(r[2].p.state, PERMIT_HELD); /* its lease runs from 500 */
        assert_int_equal(permits_in_use(p), 2);
        /* Released in time: no lease ends for it. */
        permits_release(p, &r[1].p);
        permits_expire(p, 999);
        assert_int_equal(log_n, 2);
        permits_expire(p, 1000);
        assert_int_equal(log_n, 3);
        assert_int_equal(log_ids[2], 2);
        assert_int_equal(log_kind[2], 3);
        assert_int_equal(permits_in_use(p), 0);
        /* Releasing what was taken back gives nothing back twice. */
        permits_release(p, &r[0].p);
        permits_release(p, &r[2].p);
        assert_int_equal(permits_in_use(p), 0);
        permits_free(p);
}

static void test_limited_share(void **state) {
        struct rec r[NREQ];
        Permits *p = NULL;

        (void) state;
        init(r, NREQ);
        assert_int_equal(permits_new(NULL, &p), 0);
        permits_configure(p, 4, 1000, LONG_LEASE);
        assert_int_equal(permits_limited_max(p), 2);
        for (int i = 0; i < 4; i++)
                r[i].p.limited = true;
        assert_true(permits_acquire(p, &r[0].p, 0));
        assert_true(permits_acquire(p, &r[1].p, 0));
        /* The limited share is taken; two permits stay free for the others. */
        assert_false(permits_acquire(p, &r[2].p, 0));
        assert_false(permits_acquire(p, &r[3].p, 0));
        assert_int_equal(permits_in_use(p), 2);
        /* An unlimited request overtakes limited waiters that cannot be served. */
        assert_true(permits_acquire(p, &r[4].p, 0));
        assert_true(permits_acquire(p, &r[5].p, 0));
        assert_false(permits_acquire(p, &r[6].p, 0)); /* all 4 held: it queues */
        /* An unlimited permit comes back: it goes to 6, not to the older limited waiters. */
        permits_release(p, &r[4].p);
        assert_int_equal(log_n, 1);
        assert_int_equal(log_ids[0], 6);
        /* A limited permit comes back: the oldest limited waiter gets it. */
        permits_release(p, &r[0].p);
        assert_int_equal(log_n, 2);
        assert_int_equal(log_ids[1], 2);
        permits_release(p, &r[1].p);
        assert_int_equal(log_ids[2], 3);
        permits_release(p, &r[2].p);
        permits_release(p, &r[3].p);
        permits_release(p, &r[5].p);
        permits_release(p, &r[6].p);
        assert_int_equal(permits_in_use(p), 0);
        /* One permit in all: a limited request may still have it (there is nothing to share). */
        permits_configure(p, 1, 1000, LONG_LEASE);
        assert_int_equal(permits_limited_max(p), 1);
        assert_true(permits_acquire(p, &r[0].p, 0));
        permits_release(p, &r[0].p);
        /* Two: one for each. */
        permits_configure(p, 2, 1000, LONG_LEASE);
        assert_int_equal(permits_limited_max(p), 1);
        permits_free(p);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_grants_up_to_cap_then_fifo),
                cmocka_unit_test(test_newcomer_waits_behind_queue),
                cmocka_unit_test(test_cancel_anywhere_in_queue),
                cmocka_unit_test(test_deadlines),
                cmocka_unit_test(test_leases),
                cmocka_unit_test(test_limited_share),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
