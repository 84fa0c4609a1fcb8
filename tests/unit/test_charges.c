/* SPDX-License-Identifier: MIT */
/* Local logins in progress per invoking uid: the cap, drops, root never counted, many uids. */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <cmocka.h>

#include "charges.h"

static void test_cap_and_drop(void **state) {
        Charges *c = NULL;

        (void) state;
        assert_int_equal(charges_new(&c), 0);
        assert_true(charges_take(c, 1000, 2));
        assert_true(charges_take(c, 1000, 2));
        assert_false(charges_take(c, 1000, 2));
        assert_int_equal(charges_count(c, 1000), 2);
        assert_true(charges_take(c, 1001, 2)); /* another user has its own count */
        charges_drop(c, 1000);
        assert_int_equal(charges_count(c, 1000), 1);
        assert_true(charges_take(c, 1000, 2));
        charges_drop(c, 1000);
        charges_drop(c, 1000);
        charges_drop(c, 1000); /* more drops than takes: stays at 0 */
        assert_int_equal(charges_count(c, 1000), 0);
        assert_int_equal(charges_count(c, 1001), 1);
        /* Root is never counted or refused. */
        for (int i = 0; i < 10; i++)
                assert_true(charges_take(c, 0, 2));
        assert_int_equal(charges_count(c, 0), 0);
        assert_false(charges_take(c, 1002, 0));
        charges_free(c);
}

static void test_many_uids(void **state) {
        Charges *c = NULL;

        (void) state;
        assert_int_equal(charges_new(&c), 0);
        for (uint32_t uid = 1; uid <= 1000; uid++)
                assert_true(charges_take(c, uid, 1));
        for (uint32_t uid = 1; uid <= 1000; uid++) {
                assert_false(charges_take(c, uid, 1));
                assert_int_equal(charges_count(c, uid), 1);
        }
        for (uint32_t uid = 1; uid <= 1000; uid += 2)
                charges_drop(c, uid);
        for (uint32_t uid = 1; uid <= 1000; uid++)
                assert_int_equal(charges_count(c, uid), uid % 2 ? 0 : 1);
        charges_free(c);
        assert_null(charges_free(NULL));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_cap_and_drop),
                cmocka_unit_test(test_many_uids),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
