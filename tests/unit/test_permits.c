/* SPDX-License-Identifier: MIT */
/*
 * The hash-permit FIFO on its own: grants up to the cap, waiters served oldest first,
 * leaving the queue (cancel), deadlines (also after a reload shortened the wait), and a
 * larger cap granting to waiters at once.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <cmocka.h>

#include "permits.h"

#define NREQ 8

struct rec {
        struct permit_req p;
        int id;
};

static int log_ids[64], log_kind[64]; /* kind 1 = granted, 2 = expired */
static size_t log_n;

static void on_granted(struct permit_req *p) {
        log_ids[log_n] = ((struct rec *) p)->id;
        log_kind[log_n++] = 1;
}

static void on_expired(struct permit_req *p) {
        log_ids[log_n] = ((struct rec *) p)->id;
        log_kind[log_n++] = 2;
}

static void init(struct rec *r, size_t n) {
        log_n = 0;
        for (size_t i = 0; i < n; i++)
                r[i] = (struct rec) { .p = { .granted = on_granted, .expired = on_expired }, .id = (int) i };
}

static void test_grants_up_to_cap_then_fifo(void **state) {
        struct rec r[NREQ];
        Permits *p = NULL;

        (void) state;
        init(r, NREQ);
        assert_int_equal(permits_new(NULL, &p), 0);
        permits_configure(p, 2, 1000);
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
        permits_configure(p, 1, 1000);
        assert_true(permits_acquire(p, &r[0].p, 0));
        assert_false(permits_acquire(p, &r[1].p, 0));
        /* Permits raised by a reload: the waiter gets one at once. */
        permits_configure(p, 2, 1000);
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
        permits_configure(p, 1, 1000);
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
        permits_configure(p, 1, 1000);
        assert_true(permits_acquire(p, &r[0].p, 0));
        assert_false(permits_acquire(p, &r[1].p, 100));  /* deadline 1100 */
        assert_false(permits_acquire(p, &r[2].p, 200));  /* 1200 */
        permits_configure(p, 1, 10);                     /* a reload shortens the wait */
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

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_grants_up_to_cap_then_fifo),
                cmocka_unit_test(test_newcomer_waits_behind_queue),
                cmocka_unit_test(test_cancel_anywhere_in_queue),
                cmocka_unit_test(test_deadlines),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
