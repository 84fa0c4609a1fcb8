/* SPDX-License-Identifier: MIT */
/*
 * The dispatch table's permission bits: who may make which request. Root may make every
 * request; the admin group only the read-only views; the [fleet] user only the fleet
 * helper's requests; anyone else none; replies and
 * unknown types are no requests for anybody.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <cmocka.h>

#include "dispatch.h"

static const struct conn_peer root = { .uid = 0, .is_root = true, .is_admin = true };
static const struct conn_peer admin = { .uid = 1000, .is_admin = true };
static const struct conn_peer user = { .uid = 1001 };
static const struct conn_peer fleet = { .uid = 998, .is_fleet = true };

static void test_root_only(void **state) {
        const unsigned types[] = { SG_MSG_PRECHECK, SG_MSG_REPORT, SG_MSG_EVENT, SG_MSG_ACCOUNT, SG_MSG_UNLOCK,
                                   SG_MSG_SESSION_OPEN, SG_MSG_SESSION_CLOSE, SG_MSG_SESSION_KILL,
                                   SG_MSG_TOKEN_ISSUE, SG_MSG_TOKEN_REVOKE };

        (void) state;
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
                assert_int_equal(dispatch_permission(types[i]), PERM_ROOT);
                assert_true(dispatch_permitted(types[i], &root));
                assert_false(dispatch_permitted(types[i], &admin));
                assert_false(dispatch_permitted(types[i], &user));
                assert_false(dispatch_permitted(types[i], &fleet));
        }
}

static void test_fleet_requests(void **state) {
        const unsigned types[] = { SG_MSG_FLEET_EXPORT, SG_MSG_FLEET_LOCK, SG_MSG_FLEET_UNLOCK };

        (void) state;
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
                assert_int_equal(dispatch_permission(types[i]), PERM_ROOT | PERM_FLEET);
                assert_true(dispatch_permitted(types[i], &root));
                assert_true(dispatch_permitted(types[i], &fleet));
                assert_false(dispatch_permitted(types[i], &admin));
                assert_false(dispatch_permitted(types[i], &user));
        }
        /* the fleet user may ask nothing else */
        for (unsigned t = 0; t < 300; t++)
                if (t != SG_MSG_FLEET_EXPORT && t != SG_MSG_FLEET_LOCK && t != SG_MSG_FLEET_UNLOCK)
                        assert_false(dispatch_permitted(t, &fleet));
}

static void test_read_only_views(void **state) {
        const unsigned types[] = { SG_MSG_STATUS, SG_MSG_LOCKS, SG_MSG_AUDIT_QUERY, SG_MSG_AUDIT_VERIFY,
                                   SG_MSG_SESSIONS, SG_MSG_TOKENS };

        (void) state;
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
                assert_int_equal(dispatch_permission(types[i]), PERM_ROOT | PERM_ADMIN);
                assert_true(dispatch_permitted(types[i], &root));
                assert_true(dispatch_permitted(types[i], &admin));
                assert_false(dispatch_permitted(types[i], &user));
        }
}

static void test_no_request(void **state) {
        (void) state;
        /* Types without a handler, replies and out-of-range values: nobody. */
        for (unsigned t = 0; t < 300; t++) {
                if (dispatch_permission(t) != 0)
                        continue;
                assert_false(dispatch_permitted(t, &root));
                assert_false(dispatch_permitted(t, &admin));
                assert_false(dispatch_permitted(t, &user));
        }
        assert_int_equal(dispatch_permission(SG_MSG_NONE), 0);
        assert_int_equal(dispatch_permission(SG_MSG_OK), 0);
        assert_int_equal(dispatch_permission(SG_MSG_ERROR), 0);
        assert_int_equal(dispatch_permission(SG_MSG_ROW), 0);
        assert_int_equal(dispatch_permission(SG_MSG_REQUEST_MAX), 0);
        /* Nothing a plain user may ask at all. */
        for (unsigned t = 0; t < 300; t++)
                assert_false(dispatch_permitted(t, &user));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_root_only),
                cmocka_unit_test(test_fleet_requests),
                cmocka_unit_test(test_read_only_views),
                cmocka_unit_test(test_no_request),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
