/* SPDX-License-Identifier: MIT */
/* lock-row.c: the policy's lock <-> the store's lock row, both ways and at the edges. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lock-row.h"

static void test_round_trip(void **state) {
        (void) state;
        for (int k = 0; k < SG_LOCK_KIND_MAX; k++) {
                struct sg_lock_info in = {
                        .kind = (enum sg_lock_kind) k,
                        .until_usec = UINT64_MAX - (uint64_t) k,
                        .level = 7,
                        .last_lock_usec = 1700000000000000ULL,
                        .cleared_usec = 1699999999000000ULL,
                        .failures = UINT32_MAX,
                }, out;
                struct sg_lock_row row;

                memset(&out, 0xaa, sizeof out);
                strcpy(in.key, "alice@192.0.2.0");
                assert_int_equal(sg_lock_row_from_info(&in, &row), 0);
                assert_string_equal(row.kind, sg_lock_kind_name(in.kind));
                assert_ptr_equal(row.key, in.key); /* borrowed, not copied */
                assert_int_equal(row.until_usec, in.until_usec);
                assert_int_equal(row.level, 7);
                assert_int_equal(row.last_lock_usec, in.last_lock_usec);
                assert_int_equal(row.cleared_usec, in.cleared_usec);
                assert_int_equal(row.failures, UINT32_MAX);

                assert_int_equal(sg_lock_info_from_row(&row, &out), 0);
                assert_int_equal(out.kind, in.kind);
                assert_string_equal(out.key, in.key);
                assert_int_equal(out.until_usec, in.until_usec);
                assert_int_equal(out.level, in.level);
                assert_int_equal(out.last_lock_usec, in.last_lock_usec);
                assert_int_equal(out.cleared_usec, in.cleared_usec);
                assert_int_equal(out.failures, in.failures);
        }
}

static void test_refusals_leave_output(void **state) {
        struct sg_lock_info info = { .kind = SG_LOCK_KIND_MAX }, out, before;
        struct sg_lock_row row = { .kind = "user", .key = "u" }, row_before;
        char longkey[SG_POLICY_KEY_MAX + 1];

        (void) state;
        memset(&out, 0x5c, sizeof out);
        before = out;
        row_before = row;
        assert_int_equal(sg_lock_row_from_info(&info, &row), -EINVAL);
        assert_memory_equal(&row, &row_before, sizeof row);
        assert_int_equal(sg_lock_row_from_info(NULL, &row), -EINVAL);
        assert_int_equal(sg_lock_row_from_info(&info, NULL), -EINVAL);

        row.kind = "users"; /* a kind from a newer build */
        assert_int_equal(sg_lock_info_from_row(&row, &out), -EINVAL);
        row.kind = NULL;
        assert_int_equal(sg_lock_info_from_row(&row, &out), -EINVAL);
        row.kind = "user";
        row.key = NULL;
        assert_int_equal(sg_lock_info_from_row(&row, &out), -EINVAL);
        assert_int_equal(sg_lock_info_from_row(NULL, &out), -EINVAL);
        assert_int_equal(sg_lock_info_from_row(&row, NULL), -EINVAL);

        /* the longest key that fits, and one byte more */
        memset(longkey, 'k', sizeof longkey - 1);
        longkey[sizeof longkey - 1] = '\0';
        row.key = longkey;
        assert_int_equal(sg_lock_info_from_row(&row, &out), -ENAMETOOLONG);
        assert_memory_equal(&out, &before, sizeof out);
        longkey[SG_POLICY_KEY_MAX - 1] = '\0';
        assert_int_equal(sg_lock_info_from_row(&row, &out), 0);
        assert_int_equal(strlen(out.key), SG_POLICY_KEY_MAX - 1);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_round_trip),
                cmocka_unit_test(test_refusals_leave_output),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
