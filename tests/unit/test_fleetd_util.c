/* SPDX-License-Identifier: MIT */
/*
 * secguard-fleetd's pure parts: which lockout rows become fleet decisions, which decisions
 * read from PostgreSQL may reach the daemon, host ids, the password file's checks, UTF-8.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "fleet-util.h"

static void test_parse_lockout(void **state) {
        char key[FLEET_KEY_MAX + 1];
        uint64_t secs = 0;

        (void) state;
        assert_int_equal(fleet_parse_lockout("source", "source 192.0.2.7 locked for 900 s after 20 failures (level 1)",
                                             key, &secs), 1);
        assert_string_equal(key, "192.0.2.7");
        assert_int_equal(secs, 900);
        assert_int_equal(fleet_parse_lockout("spray", "spray 2001:db8:1:2::/64 locked for 60 s after 10 failures (level 1)",
                                             key, &secs), 1);
        assert_string_equal(key, "2001:db8:1:2::/64");
        assert_int_equal(secs, 60);
        /* user locks never cross hosts; the detail must agree with the reason */
        assert_int_equal(fleet_parse_lockout("user", "user alice locked for 900 s after 5 failures (level 1)", key, &secs), 0);
        assert_int_equal(fleet_parse_lockout("user_source", "user_source alice|192.0.2.7 locked for 9 s", key, &secs), 0);
        assert_int_equal(fleet_parse_lockout("source", "spray 192.0.2.7 locked for 900 s", key, &secs), 0);
        /* host names, garbage, zero or absurd durations */
        assert_int_equal(fleet_parse_lockout("source", "source host.example locked for 900 s", key, &secs), 0);
        assert_int_equal(fleet_parse_lockout("source", "source 192.0.2.7 locked for 0 s", key, &secs), 0);
        assert_int_equal(fleet_parse_lockout("source", "source 192.0.2.7 locked for 99999999999999 s", key, &secs), 0);
        assert_int_equal(fleet_parse_lockout("source", "source 192.0.2.7 locked for -5 s", key, &secs), 0);
        assert_int_equal(fleet_parse_lockout("source", "source 192.0.2.7 locked for 5s", key, &secs), 0);
        assert_int_equal(fleet_parse_lockout("source", "source 192.0.2.7", key, &secs), 0);
        assert_int_equal(fleet_parse_lockout("source", NULL, key, &secs), 0);
        assert_int_equal(fleet_parse_lockout(NULL, "source 192.0.2.7 locked for 5 s", key, &secs), 0);
}

static void test_decision_check(void **state) {
        const uint64_t now = 1700000000ULL * 1000000, day = 86400ULL * 1000000;
        struct fleet_decision d = {
                .id = 1, .lock = true, .kind = "source", .key = "192.0.2.7",
                .until_usec = (int64_t) (now + 3600ULL * 1000000),
                .origin_host = "0123456789abcdef0123456789abcdef", .reason = "lockout",
        };
        const char *why = "x";
        char msg[256];

        (void) state;
        assert_int_equal(fleet_decision_check(&d, now, 7 * day, &why, msg, sizeof msg), 0);
        assert_null(why);
        d.key = "2001:db8::/64";
        assert_int_equal(fleet_decision_check(&d, now, 7 * day, &why, msg, sizeof msg), 0);
        d.key = "999.1.2.3";
        assert_int_equal(fleet_decision_check(&d, now, 7 * day, &why, msg, sizeof msg), -EINVAL);
        assert_string_equal(why, "bad_key");
        d.key = "192.0.2.7; DROP TABLE x";
        assert_int_equal(fleet_decision_check(&d, now, 7 * day, &why, msg, sizeof msg), -EINVAL);
        d.key = "192.0.2.7";
        d.kind = "user";
        assert_int_equal(fleet_decision_check(&d, now, 7 * day, &why, msg, sizeof msg), -EINVAL);
        assert_string_equal(why, "bad_kind");
        d.kind = "spray";
        d.until_usec = (int64_t) (now + 30 * day);
        assert_int_equal(fleet_decision_check(&d, now, 7 * day, &why, msg, sizeof msg), -EINVAL);
        assert_string_equal(why, "bad_until");
        assert_non_null(strstr(msg, "max_lock_time"));
        d.until_usec = (int64_t) (now - 1);
        assert_int_equal(fleet_decision_check(&d, now, 7 * day, &why, msg, sizeof msg), -ESTALE);
        assert_string_equal(why, "expired");
        d.until_usec = -5;
        assert_int_equal(fleet_decision_check(&d, now, 7 * day, &why, msg, sizeof msg), -EINVAL);
        assert_string_equal(why, "bad_until");
        d.until_usec = INT64_MAX;
        assert_int_equal(fleet_decision_check(&d, now, 7 * day, &why, msg, sizeof msg), -EINVAL);
        d.until_usec = (int64_t) (now + day);
        d.origin_host = "0123456789ABCDEF0123456789abcdef";
        assert_int_equal(fleet_decision_check(&d, now, 7 * day, &why, msg, sizeof msg), -EINVAL);
        assert_string_equal(why, "bad_host");
        d.origin_host = "0123456789abcdef0123456789abcdef";
        /* an unlock carries no until; its reason is fleet or lifted */
        d.lock = false;
        d.until_usec = 0;
        d.reason = "lockout";
        assert_int_equal(fleet_decision_check(&d, now, 7 * day, &why, msg, sizeof msg), -EINVAL);
        assert_string_equal(why, "bad_reason");
        d.reason = "fleet";
        assert_int_equal(fleet_decision_check(&d, now, 7 * day, &why, msg, sizeof msg), 0);
        d.reason = "lifted";
        assert_int_equal(fleet_decision_check(&d, now, 7 * day, &why, msg, sizeof msg), 0);
        d.reason = "Lifted";
        assert_int_equal(fleet_decision_check(&d, now, 7 * day, &why, msg, sizeof msg), -EINVAL);
}

/* The daemon's `unlock`/`lifted` row: "KIND KEY lock lifted: ..." (daemon/login.c). */
static void test_parse_lifted(void **state) {
        char key[FLEET_KEY_MAX + 1];
        const char *kind = NULL;

        (void) state;
        assert_int_equal(fleet_parse_lifted("source 192.0.2.9 lock lifted: the attempt that set it succeeded",
                                            &kind, key), 1);
        assert_string_equal(kind, "source");
        assert_string_equal(key, "192.0.2.9");
        assert_int_equal(fleet_parse_lifted("spray 2001:db8:1:2::/64 lock lifted", &kind, key), 1);
        assert_string_equal(kind, "spray");
        assert_string_equal(key, "2001:db8:1:2::/64");
        /* kinds that stay on their host, host names, other texts: nothing to publish */
        assert_int_equal(fleet_parse_lifted("user alice lock lifted: x", &kind, key), 0);
        assert_int_equal(fleet_parse_lifted("user_source alice@192.0.2.9 lock lifted: x", &kind, key), 0);
        assert_int_equal(fleet_parse_lifted("source attacker.example lock lifted: x", &kind, key), 0);
        assert_int_equal(fleet_parse_lifted("source 192.0.2.9 locked for 600 s after 3 failures", &kind, key), 0);
        assert_int_equal(fleet_parse_lifted("source 192.0.2.9 lock liftedX", &kind, key), 0);
        assert_int_equal(fleet_parse_lifted("source  lock lifted", &kind, key), 0);
        assert_int_equal(fleet_parse_lifted("source 192.0.2.9", &kind, key), 0);
        assert_int_equal(fleet_parse_lifted("sourcex 192.0.2.9 lock lifted", &kind, key), 0);
        assert_int_equal(fleet_parse_lifted(NULL, &kind, key), 0);
        assert_int_equal(fleet_parse_lifted("source 1111111111111111111111111111111111111111111111111111111111111111111 "
                                            "lock lifted", &kind, key), 0);
}

static void test_host_id(void **state) {
        char id[FLEET_HOST_ID_LEN + 1], err[256];

        (void) state;
        assert_true(fleet_host_id_valid("0123456789abcdef0123456789abcdef"));
        assert_false(fleet_host_id_valid("0123456789abcdef0123456789abcde"));
        assert_false(fleet_host_id_valid("0123456789abcdef0123456789abcdef0"));
        assert_false(fleet_host_id_valid("0123456789abcdeg0123456789abcdef"));
        assert_int_equal(fleet_host_id("00000000000000000000000000000abc", id, err, sizeof err), 0);
        assert_string_equal(id, "00000000000000000000000000000abc");
        assert_int_equal(fleet_host_id("nothex", id, err, sizeof err), -EINVAL);
        if (access("/etc/machine-id", R_OK) == 0) {
                char id2[FLEET_HOST_ID_LEN + 1];

                assert_int_equal(fleet_host_id("", id, err, sizeof err), 0);
                assert_true(fleet_host_id_valid(id));
                assert_int_equal(fleet_host_id(NULL, id2, err, sizeof err), 0);
                assert_string_equal(id, id2);
        }
}

static void test_password_file(void **state) {
        const char *tmp = getenv("SG_TEST_TMP");
        char dir[PATH_MAX], path[PATH_MAX + 64], link[PATH_MAX + 64], out[FLEET_PASSWORD_MAX + 1], err[512];
        int fd;

        (void) state;
        unsetenv("CREDENTIALS_DIRECTORY");
        snprintf(dir, sizeof dir, "%s/fleetpw.XXXXXX", tmp ? tmp : "/tmp");
        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof path, "%s/pw", dir);
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, "s3cret pw\n", 10), 10);
        close(fd);
        assert_int_equal(fleet_read_password(path, out, sizeof out, err, sizeof err), 1);
        assert_string_equal(out, "s3cret pw");
        assert_int_equal(fleet_read_password("", out, sizeof out, err, sizeof err), 0);
        chmod(path, 0640);
        assert_int_equal(fleet_read_password(path, out, sizeof out, err, sizeof err), -EPERM);
        assert_non_null(strstr(err, "chmod 0600"));
        assert_null(strstr(err, "s3cret"));
        chmod(path, 0600);
        snprintf(link, sizeof link, "%s/link", dir);
        assert_int_equal(symlink(path, link), 0);
        assert_int_equal(fleet_read_password(link, out, sizeof out, err, sizeof err), -ELOOP);
        /* the credential wins over the file */
        setenv("CREDENTIALS_DIRECTORY", dir, 1);
        snprintf(link, sizeof link, "%s/secguard-fleet-password", dir);
        fd = open(link, O_WRONLY | O_CREAT | O_EXCL, 0600);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, "from-cred", 9), 9);
        close(fd);
        assert_int_equal(fleet_read_password(path, out, sizeof out, err, sizeof err), 1);
        assert_string_equal(out, "from-cred");
        unsetenv("CREDENTIALS_DIRECTORY");
        /* two lines: refused */
        fd = open(path, O_WRONLY | O_TRUNC);
        assert_int_equal(write(fd, "a\nb\n", 4), 4);
        close(fd);
        assert_int_equal(fleet_read_password(path, out, sizeof out, err, sizeof err), -EBADMSG);
        unlink(link);
        snprintf(link, sizeof link, "%s/link", dir);
        unlink(link);
        unlink(path);
        rmdir(dir);
}

static void test_utf8(void **state) {
        (void) state;
        assert_true(fleet_utf8_valid("alice", 5));
        assert_true(fleet_utf8_valid("\xc3\xa9t\xc3\xa9", 6));
        assert_true(fleet_utf8_valid("\xf0\x9f\x98\x80", 4));
        assert_false(fleet_utf8_valid("\xff", 1));
        assert_false(fleet_utf8_valid("\xc0\xaf", 2));         /* overlong */
        assert_false(fleet_utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
        assert_false(fleet_utf8_valid("\xe2\x82", 2));         /* truncated */
        assert_false(fleet_utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
}

static void test_gap_split(void **state) {
        struct fleet_range out[8];
        bool pr[8];
        const struct fleet_range none[1] = { { 0, 0 } };
        const struct fleet_range some[] = { { 20, 25 }, { 3, 5 }, { 5, 7 }, { 30, 40 }, { 9, 8 } };

        (void) state;
        /* Nothing reported: the whole gap is a true gap. */
        assert_int_equal(fleet_gap_split((struct fleet_range) { 4, 4 }, none, 0, out, pr, 8), 1);
        assert_true(out[0].first == 4 && out[0].last == 4 && !pr[0]);
        /* 1..12 against 3..5, 5..7 (overlapping, out of order) and an empty 9..8. */
        assert_int_equal(fleet_gap_split((struct fleet_range) { 1, 12 }, some, 5, out, pr, 8), 3);
        assert_true(out[0].first == 1 && out[0].last == 2 && !pr[0]);
        assert_true(out[1].first == 3 && out[1].last == 7 && pr[1]);
        assert_true(out[2].first == 8 && out[2].last == 12 && !pr[2]);
        /* Clipped to the gap on both sides; a range past it plays no part. */
        assert_int_equal(fleet_gap_split((struct fleet_range) { 22, 31 }, some, 5, out, pr, 8), 3);
        assert_true(out[0].first == 22 && out[0].last == 25 && pr[0]);
        assert_true(out[1].first == 26 && out[1].last == 29 && !pr[1]);
        assert_true(out[2].first == 30 && out[2].last == 31 && pr[2]);
        /* Wholly pruned. */
        assert_int_equal(fleet_gap_split((struct fleet_range) { 32, 33 }, some, 5, out, pr, 8), 1);
        assert_true(out[0].first == 32 && out[0].last == 33 && pr[0]);
        /* Too small an output: the count says so, what fits is right. */
        assert_int_equal(fleet_gap_split((struct fleet_range) { 1, 12 }, some, 5, out, pr, 1), 3);
        assert_true(out[0].first == 1 && out[0].last == 2 && !pr[0]);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_lockout), cmocka_unit_test(test_gap_split),
                cmocka_unit_test(test_decision_check), cmocka_unit_test(test_parse_lifted),
                cmocka_unit_test(test_host_id),       cmocka_unit_test(test_password_file),
                cmocka_unit_test(test_utf8),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
