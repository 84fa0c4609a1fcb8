/* SPDX-License-Identifier: MIT */
/*
 * The common event table against itself and against the shipped journald catalog: names and
 * MESSAGE_IDs unique and well formed, lookups exact, and etc/secguard.catalog (read from the
 * source tree at test time) holding exactly one entry per MESSAGE_ID whose Subject is the
 * event's summary, its auth_failure entry explaining every failure reason. A renamed id or
 * a forgotten catalog entry fails here, not in a user's `journalctl -x`.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include <cmocka.h>

#include "event_table.h"

#define MAX_CATALOG 64

struct catalog_entry {
        char id[40];
        char subject[200];
};

static bool is_lower_hex(const char *s, size_t len) {
        if (strlen(s) != len)
                return false;
        for (size_t i = 0; i < len; i++)
                if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
                        return false;
        return true;
}

static void test_names_and_ids(void **state) {
        const struct sg_event_kind *k;
        size_t n;

        (void) state;
        k = sg_event_kinds(&n);
        assert_non_null(k);
        assert_int_equal(n, 22);
        for (size_t i = 0; i < n; i++) {
                assert_non_null(k[i].name);
                assert_true(strlen(k[i].name) > 0 && strspn(k[i].name, "abcdefghijklmnopqrstuvwxyz_") == strlen(k[i].name));
                if (!is_lower_hex(k[i].message_id, 32))
                        fail_msg("%s: MESSAGE_ID \"%s\" is not 32 lower-case hex digits", k[i].name, k[i].message_id);
                assert_true(k[i].priority == LOG_INFO || k[i].priority == LOG_NOTICE ||
                            k[i].priority == LOG_WARNING);
                assert_true(k[i].summary && *k[i].summary);
                for (size_t j = 0; j < i; j++) {
                        if (strcmp(k[i].name, k[j].name) == 0)
                                fail_msg("event name %s twice", k[i].name);
                        if (strcmp(k[i].message_id, k[j].message_id) == 0)
                                fail_msg("%s and %s share a MESSAGE_ID", k[i].name, k[j].name);
                }
                assert_ptr_equal(sg_event_kind_find(k[i].name), &k[i]);
        }
}

static void test_find_is_exact(void **state) {
        (void) state;
        assert_null(sg_event_kind_find(NULL));
        assert_null(sg_event_kind_find(""));
        assert_null(sg_event_kind_find("auth"));
        assert_null(sg_event_kind_find("auth_success "));
        assert_null(sg_event_kind_find("AUTH_SUCCESS"));
        assert_null(sg_event_kind_find("session_reap"));
        assert_non_null(sg_event_kind_find("session_reaped"));
        assert_non_null(sg_event_kind_find("auth_failure"));
        assert_non_null(sg_event_kind_find("fleet_lock"));
        assert_non_null(sg_event_kind_find("fleet_unlock"));
        assert_non_null(sg_event_kind_find("fleet_rejected"));
        assert_null(sg_event_kind_find("fleet"));
        assert_non_null(sg_event_kind_find("daemon_stop"));
        /* A fixed id users may already filter on. */
        assert_string_equal(sg_event_kind_find("lockout")->message_id, "6c043ffc13a24eaab37fb8e0df4e07d9");
}

static void test_reasons(void **state) {
        size_t n = 0;

        (void) state;
        for (; sg_event_failure_reasons[n]; n++) {
                assert_true(sg_event_reason_valid(sg_event_failure_reasons[n]));
                for (size_t j = 0; j < n; j++)
                        assert_string_not_equal(sg_event_failure_reasons[n], sg_event_failure_reasons[j]);
        }
        assert_true(n >= 9);
        assert_false(sg_event_reason_valid("quality")); /* no password-phase reasons yet */
        assert_true(sg_event_reason_valid("bad_password"));
        assert_true(sg_event_reason_valid("abandoned"));
        assert_false(sg_event_reason_valid(""));
        assert_false(sg_event_reason_valid("bad_password\n"));
        assert_false(sg_event_reason_valid("user_source")); /* a lockout kind, not a failure */
}

/* etc/secguard.catalog in the source tree this test was compiled from (CMake gives the
 * compiler absolute paths, so __FILE__ is one). */
static FILE *open_catalog(void) {
        const char *tail = "/tests/unit/test_event_table.c";
        char path[4096];
        size_t len = strlen(__FILE__), tl = strlen(tail);

        if (len <= tl || strcmp(__FILE__ + len - tl, tail) != 0 || len - tl + 32 >= sizeof path)
                fail_msg("cannot find the source tree from %s", __FILE__);
        snprintf(path, sizeof path, "%.*s/etc/secguard.catalog", (int) (len - tl), __FILE__);
        FILE *f = fopen(path, "re");
        if (!f)
                fail_msg("%s: cannot open", path);
        return f;
}

static size_t read_catalog(struct catalog_entry *e, size_t max) {
        char line[1024];
        size_t n = 0;
        FILE *f = open_catalog();

        while (fgets(line, sizeof line, f)) {
                line[strcspn(line, "\n")] = '\0';
                if (strncmp(line, "-- ", 3) == 0) {
                        assert_true(n < max);
                        if (strlen(line + 3) >= sizeof e[n].id)
                                fail_msg("catalog id line too long: %s", line);
                        snprintf(e[n].id, sizeof e[n].id, "%.39s", line + 3);
                        e[n].subject[0] = '\0';
                        n++;
                } else if (n > 0 && strncmp(line, "Subject: ", 9) == 0 && !e[n - 1].subject[0]) {
                        if (strlen(line + 9) >= sizeof e[n - 1].subject)
                                fail_msg("catalog Subject too long: %s", line);
                        snprintf(e[n - 1].subject, sizeof e[n - 1].subject, "%.199s", line + 9);
                }
        }
        fclose(f);
        return n;
}

static void test_catalog_matches_table(void **state) {
        struct catalog_entry cat[MAX_CATALOG];
        const struct sg_event_kind *k;
        size_t n, ncat;

        (void) state;
        k = sg_event_kinds(&n);
        ncat = read_catalog(cat, MAX_CATALOG);
        if (ncat != n)
                fail_msg("catalog has %zu entries, the table %zu kinds", ncat, n);
        for (size_t i = 0; i < ncat; i++) {
                const struct sg_event_kind *match = NULL;
                char want[256];

                for (size_t j = 0; j < n; j++)
                        if (strcmp(cat[i].id, k[j].message_id) == 0)
                                match = &k[j];
                if (!match)
                        fail_msg("catalog entry %s is no event's MESSAGE_ID", cat[i].id);
                for (size_t j = 0; j < i; j++)
                        if (strcmp(cat[i].id, cat[j].id) == 0)
                                fail_msg("catalog entry %s twice", cat[i].id);
                snprintf(want, sizeof want, "secguard: %s", match->summary);
                if (strcmp(cat[i].subject, want) != 0)
                        fail_msg("%s: catalog Subject \"%s\", expected \"%s\"", match->name, cat[i].subject, want);
        }
}

/* The catalog's auth_failure entry explains every reason a failure row can carry ("locked"
 * and "paced" belong to auth_blocked, whose entry explains them). */
static void test_catalog_explains_reasons(void **state) {
        char section[8192] = "", line[1024], head[64];
        bool inside = false;
        size_t used = 0;
        FILE *f = open_catalog();

        (void) state;
        snprintf(head, sizeof head, "-- %s", sg_event_kind_find("auth_failure")->message_id);
        while (fgets(line, sizeof line, f)) {
                if (strncmp(line, "-- ", 3) == 0)
                        inside = strncmp(line, head, strlen(head)) == 0;
                else if (inside && used + strlen(line) < sizeof section) {
                        memcpy(section + used, line, strlen(line) + 1);
                        used += strlen(line);
                }
        }
        fclose(f);
        assert_true(used > 0);
        for (size_t i = 0; sg_event_failure_reasons[i]; i++)
                if (strcmp(sg_event_failure_reasons[i], "locked") != 0 &&
                    strcmp(sg_event_failure_reasons[i], "paced") != 0 &&
                    !strstr(section, sg_event_failure_reasons[i]))
                        fail_msg("the catalog's auth_failure entry does not mention reason %s",
                                 sg_event_failure_reasons[i]);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_names_and_ids),
                cmocka_unit_test(test_find_is_exact),
                cmocka_unit_test(test_reasons),
                cmocka_unit_test(test_catalog_matches_table),
                cmocka_unit_test(test_catalog_explains_reasons),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
