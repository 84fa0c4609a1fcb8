/* SPDX-License-Identifier: MIT */
/* The session table and its pure decisions (daemon/sessions.c): the per-user limit, expiry
 * with time passed in, and table bookkeeping. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "sessions.h"

#define S 1000000ULL

static void test_limit(void **state) {
        (void) state;
        assert_true(sg_session_may_open(100, 1000, 0, false)); /* 0 = unlimited */
        assert_true(sg_session_may_open(1, 1000, 2, false));
        assert_false(sg_session_may_open(2, 1000, 2, false));
        assert_false(sg_session_may_open(5, 1000, 2, true));
        assert_true(sg_session_may_open(5, 0, 2, false));  /* root exempt by default */
        assert_false(sg_session_may_open(2, 0, 2, true));  /* ... unless limit_root */
        assert_true(sg_session_may_open(1, 0, 2, true));
}

static void test_expiry(void **state) {
        (void) state;
        /* No limits: never. */
        assert_int_equal(sg_session_expiry(0, 0, 0, 0, 1000 * S), SG_SESSION_LIVE);
        /* Lifetime counts from the start, whatever the activity. */
        assert_int_equal(sg_session_expiry(60 * S, 0, 100 * S, 159 * S, 159 * S), SG_SESSION_LIVE);
        assert_int_equal(sg_session_expiry(60 * S, 0, 100 * S, 160 * S, 160 * S), SG_SESSION_LIFETIME);
        /* Idle counts from the last activity, or the start when the tty is older. */
        assert_int_equal(sg_session_expiry(0, 30 * S, 100 * S, 120 * S, 149 * S), SG_SESSION_LIVE);
        assert_int_equal(sg_session_expiry(0, 30 * S, 100 * S, 120 * S, 150 * S), SG_SESSION_IDLE);
        assert_int_equal(sg_session_expiry(0, 30 * S, 100 * S, 5 * S, 129 * S), SG_SESSION_LIVE);
        assert_int_equal(sg_session_expiry(0, 30 * S, 100 * S, 5 * S, 130 * S), SG_SESSION_IDLE);
        /* No terminal (activity unknown): never idle, however long; the lifetime still applies. */
        assert_int_equal(sg_session_expiry(0, 30 * S, 100 * S, 0, 100000 * S), SG_SESSION_LIVE);
        assert_int_equal(sg_session_expiry(60 * S, 30 * S, 100 * S, 0, 160 * S), SG_SESSION_LIFETIME);
        /* Both: lifetime wins when both are due. */
        assert_int_equal(sg_session_expiry(60 * S, 30 * S, 100 * S, 100 * S, 200 * S), SG_SESSION_LIFETIME);
        /* A clock that went backwards ends nothing. */
        assert_int_equal(sg_session_expiry(60 * S, 30 * S, 100 * S, 100 * S, 50 * S), SG_SESSION_LIVE);
}

static struct sg_session entry(const char *id, uint32_t uid) {
        struct sg_session e = { .uid = uid, .pid = 1234, .pidfd = -1 };

        snprintf(e.id, sizeof e.id, "%s", id);
        snprintf(e.user, sizeof e.user, "u%u", (unsigned) uid);
        return e;
}

static void test_table(void **state) {
        Sessions *s = NULL;
        struct sg_session e;
        char id[40];
        int i;

        (void) state;
        assert_int_equal(sessions_new(&s), 0);
        for (unsigned k = 0; k < 40; k++) { /* past the first growth */
                snprintf(id, sizeof id, "%032x", k);
                e = entry(id, 1000 + k % 3);
                assert_int_equal(sessions_add(s, &e), 0);
        }
        e = entry("00000000000000000000000000000005", 1);
        assert_int_equal(sessions_add(s, &e), -EEXIST);
        assert_int_equal(sessions_count(s), 40);
        assert_int_equal(sessions_count_uid(s, 1000), 14);
        assert_int_equal(sessions_count_uid(s, 1001), 13);
        assert_int_equal(sessions_count_uid(s, 7), 0);
        i = sessions_find(s, "00000000000000000000000000000005");
        assert_true(i >= 0);
        assert_int_equal(sessions_get(s, (size_t) i)->uid, 1002);
        assert_int_equal(sessions_get(s, (size_t) i)->ending_usec, 0);
        sessions_set_ending(s, (size_t) i, 77);
        sessions_set_ending(s, (size_t) i, 99); /* the first time counts */
        assert_int_equal(sessions_get(s, (size_t) i)->ending_usec, 77);
        sessions_remove(s, (size_t) i);
        assert_int_equal(sessions_find(s, "00000000000000000000000000000005"), -ENOENT);
        assert_int_equal(sessions_count(s), 39);
        assert_int_equal(sessions_count_uid(s, 1002), 12);
        /* Walking backwards while removing visits every entry once. */
        for (size_t k = sessions_count(s); k-- > 0;)
                if (sessions_get(s, k)->uid == 1000)
                        sessions_remove(s, k);
        assert_int_equal(sessions_count_uid(s, 1000), 0);
        assert_int_equal(sessions_count(s), 25);
        assert_null(sessions_get(s, 25));
        assert_null(sessions_free(s));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_limit),
                cmocka_unit_test(test_expiry),
                cmocka_unit_test(test_table),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
