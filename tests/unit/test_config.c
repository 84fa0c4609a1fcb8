/* SPDX-License-Identifier: MIT */
/*
 * The config loader: defaults, every key, every error class with its FILE:LINE, value syntax
 * edge cases and overflows, cross-field checks, the dump, the file safety checks (mode,
 * owner, symlink, FIFO), and that etc/secguard.conf and secguard.conf(5) match the code.
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

#include "config.h"

#define DUMP_SIZE 32768

static char tmpdir[PATH_MAX];

static int setup_dir(void **state) {
        const char *base = getenv("SG_TEST_TMP");

        (void) state;
        snprintf(tmpdir, sizeof tmpdir, "%s/sgconf.XXXXXX", base && *base ? base : "/tmp");
        return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_dir(void **state) {
        char cmd[PATH_MAX + 16];

        (void) state;
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
        return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *path, const void *data, size_t len, mode_t mode) {
        int fd;

        unlink(path);
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, data, len), (ssize_t) len);
        assert_int_equal(fchmod(fd, mode), 0);
        close(fd);
}

static char *dump(const struct sg_config *c) {
        char *out = malloc(DUMP_SIZE);
        int n;

        assert_non_null(out);
        n = sg_config_dump(c, out, DUMP_SIZE);
        assert_true(n > 0);
        assert_int_equal((size_t) n, strlen(out));
        return out;
}

/* Loads text over the defaults; returns the result, err holds the message. */
static int load(const char *text, struct sg_config *c, char *err, size_t errsize) {
        sg_config_defaults(c);
        err[0] = '\0';
        return sg_config_load_string(c, "t.conf", text, err, errsize);
}

static void test_defaults(void **state) {
        struct sg_config c;
        char err[256] = "";

        (void) state;
        memset(&c, 0x5a, sizeof c);
        sg_config_defaults(&c);
        assert_string_equal(c.socket, SG_DEFAULT_SOCKET);
        assert_string_equal(c.state_dir, SG_DEFAULT_STATE_DIR);
        assert_int_equal(c.timeout_ms, 2000);
        assert_int_equal(c.hash_permits, 0);
        assert_int_equal(c.permit_wait_ms, 1000);
        assert_int_equal(c.max_connections, 512);
        assert_int_equal(c.max_connections_per_uid, 8);
        assert_int_equal(c.request_timeout_ms, 5000);
        assert_string_equal(c.admin_group, "secguard");
        assert_int_equal(c.unreachable, SG_UNREACHABLE_ALLOW_LOCAL);
        assert_int_equal(c.disk_full, SG_DISKFULL_FAIL_REMOTE);
        assert_int_equal(c.fail_delay_ms, 2000);
        assert_false(c.upgrade_hashes);
        assert_int_equal(c.argon2_opslimit, 3);
        assert_int_equal(c.argon2_memlimit, 64ull << 20);
        assert_int_equal(c.max_argon2_memlimit, 256ull << 20);
        assert_int_equal(c.max_argon2_opslimit, 16);
        assert_int_equal(c.max_argon2_threads, 4);
        assert_int_equal(c.max_bcrypt_cost, 14);
        assert_int_equal(c.max_yescrypt_cost, 18);
        assert_int_equal(c.max_sha_rounds, 1000000);
        assert_int_equal(c.password_max_len, 1024);
        assert_int_equal(c.min_password_len, 8);
        assert_int_equal(c.window_sec, 900);
        assert_int_equal(c.lock_time_sec, 900);
        assert_int_equal(c.lock_factor, 2);
        assert_int_equal(c.lock_max_sec, 86400);
        assert_int_equal(c.history_sec, 30 * 86400);
        assert_int_equal(c.user_max_failures, 5);
        assert_int_equal(c.source_max_failures, 20);
        assert_int_equal(c.user_source_max_failures, 5);
        assert_int_equal(c.spray_max_users, 10);
        assert_int_equal(c.delay_step_ms, 500);
        assert_int_equal(c.delay_max_ms, 5000);
        assert_false(c.user_hard_lock);
        assert_false(c.deny_root);
        assert_false(c.account_locks);
        assert_int_equal(c.ipv6_prefix, 64);
        assert_string_equal(c.allowlist, "");
        assert_int_equal(c.max_sessions, 0);
        assert_int_equal(c.max_lifetime_sec, 0);
        assert_false(c.sync_full);
        assert_int_equal(c.max_age_sec, 365 * 86400);
        assert_int_equal(c.max_rows, 1000000);
        assert_string_equal(c.key_file, "");
        assert_string_equal(c.seal_public_key, "");
        assert_int_equal(c.seal_interval_sec, 900);
        assert_false(c.fleet_enabled);
        assert_string_equal(c.fleet_postgres, "");
        assert_string_equal(c.fleet_password_file, "");
        assert_string_equal(c.fleet_host_id, "");
        assert_string_equal(c.fleet_user, "secguard-fleet");
        assert_int_equal(c.fleet_source_max_failures, 50);
        assert_int_equal(c.fleet_window_sec, 3600);
        assert_int_equal(c.fleet_lock_time_sec, 3600);
        assert_int_equal(c.fleet_max_lock_time_sec, 7 * 86400);
        assert_int_equal(c.fleet_batch, 500);
        assert_int_equal(c.fleet_poll_interval_ms, 1000);
        /* The defaults are a valid configuration. */
        assert_int_equal(sg_config_check(&c, err, sizeof err), 0);
}

static void test_every_key(void **state) {
        static const char text[] =
                "; a full config with every key away from its default\n"
                "[daemon]\n"
                "socket = /tmp/sg/s.sock\n"
                "state_dir = /srv/secguard\n"
                "timeout_ms = 1500ms\n"
                "hash_permits = 7\n"
                "permit_wait_ms = 1s\n"
                "max_connections = 100\n"
                "max_connections_per_uid = 3\n"
                "request_timeout_ms = 250\n"
                "admin_group = wheel_2-x\n"
                "unreachable = deny\n"
                "disk_full = fail_all\n"
                "[auth]\n"
                "fail_delay_ms = 0\n"
                "upgrade_hashes = yes\n"
                "argon2_opslimit = 2\n"
                "argon2_memlimit = 19M\n"
                "max_argon2_memlimit = 1G\n"
                "max_argon2_opslimit = 10\n"
                "max_argon2_threads = 2\n"
                "max_bcrypt_cost = 12\n"
                "max_yescrypt_cost = 16\n"
                "max_sha_rounds = 5000\n"
                "password_max_len = 512\n"
                "min_password_len = 12\n"
                "[ratelimit]\n"
                "window = 10m\n"
                "lock_time = 90s\n"
                "lock_factor = 3\n"
                "lock_max = 2h\n"
                "history = 7d\n"
                "user_max_failures = 6\n"
                "source_max_failures = 30\n"
                "user_source_max_failures = 4\n"
                "spray_max_users = 12\n"
                "delay_step_ms = 250\n"
                "delay_max_ms = 3s\n"
                "user_hard_lock = true\n"
                "deny_root = on\n"
                "account_locks = 1\n"
                "ipv6_prefix = 56\n"
                "allowlist = 192.0.2.0/24, 2001:db8::/32 10.1.2.3\n"
                "[session]\n"
                "max_sessions = 4\n"
                "max_lifetime = 12h\n"
                "[audit]\n"
                "synchronous = full\n"
                "max_age = 90d\n"
                "max_rows = 1000000\n"
                "key_file = /etc/secguard/audit.key\n"
                "seal_public_key = /etc/secguard/seal.pub\n"
                "[fleet]\n"
                "enabled = yes\n"
                "postgres = host=db.example.org port=5433 dbname=fleet user=sg sslmode=verify-full\n"
                "password_file = /etc/secguard/fleet.pw\n"
                "host_id = 0123456789abcdef0123456789abcdef\n"
                "user = sg-fleet_2\n"
                "source_max_failures = 80\n"
                "window = 2h\n"
                "lock_time = 30m\n"
                "max_lock_time = 2d\n"
                "batch = 100\n"
                "poll_interval = 250ms\n";
        struct sg_config c;
        char err[512];

        (void) state;
        assert_int_equal(load(text, &c, err, sizeof err), 0);
        assert_string_equal(err, "");
        assert_string_equal(c.socket, "/tmp/sg/s.sock");
        assert_string_equal(c.state_dir, "/srv/secguard");
        assert_int_equal(c.timeout_ms, 1500);
        assert_int_equal(c.hash_permits, 7);
        assert_int_equal(c.permit_wait_ms, 1000);
        assert_int_equal(c.max_connections, 100);
        assert_int_equal(c.max_connections_per_uid, 3);
        assert_int_equal(c.request_timeout_ms, 250);
        assert_string_equal(c.admin_group, "wheel_2-x");
        assert_int_equal(c.unreachable, SG_UNREACHABLE_DENY);
        assert_int_equal(c.disk_full, SG_DISKFULL_FAIL_ALL);
        assert_int_equal(c.fail_delay_ms, 0);
        assert_true(c.upgrade_hashes);
        assert_int_equal(c.argon2_opslimit, 2);
        assert_int_equal(c.argon2_memlimit, 19ull << 20);
        assert_int_equal(c.max_argon2_memlimit, 1ull << 30);
        assert_int_equal(c.max_argon2_opslimit, 10);
        assert_int_equal(c.max_argon2_threads, 2);
        assert_int_equal(c.max_bcrypt_cost, 12);
        assert_int_equal(c.max_yescrypt_cost, 16);
        assert_int_equal(c.max_sha_rounds, 5000);
        assert_int_equal(c.password_max_len, 512);
        assert_int_equal(c.min_password_len, 12);
        assert_int_equal(c.window_sec, 600);
        assert_int_equal(c.lock_time_sec, 90);
        assert_int_equal(c.lock_factor, 3);
        assert_int_equal(c.lock_max_sec, 7200);
        assert_int_equal(c.history_sec, 7 * 86400);
        assert_int_equal(c.user_max_failures, 6);
        assert_int_equal(c.source_max_failures, 30);
        assert_int_equal(c.user_source_max_failures, 4);
        assert_int_equal(c.spray_max_users, 12);
        assert_int_equal(c.delay_step_ms, 250);
        assert_int_equal(c.delay_max_ms, 3000);
        assert_true(c.user_hard_lock);
        assert_true(c.deny_root);
        assert_true(c.account_locks);
        assert_int_equal(c.ipv6_prefix, 56);
        assert_string_equal(c.allowlist, "192.0.2.0/24, 2001:db8::/32 10.1.2.3");
        assert_int_equal(c.max_sessions, 4);
        assert_int_equal(c.max_lifetime_sec, 12 * 3600);
        assert_true(c.sync_full);
        assert_int_equal(c.max_age_sec, 90 * 86400);
        assert_int_equal(c.max_rows, 1000000);
        assert_string_equal(c.key_file, "/etc/secguard/audit.key");
        assert_string_equal(c.seal_public_key, "/etc/secguard/seal.pub");
        assert_true(c.fleet_enabled);
        assert_string_equal(c.fleet_postgres, "host=db.example.org port=5433 dbname=fleet user=sg sslmode=verify-full");
        assert_string_equal(c.fleet_password_file, "/etc/secguard/fleet.pw");
        assert_string_equal(c.fleet_host_id, "0123456789abcdef0123456789abcdef");
        assert_string_equal(c.fleet_user, "sg-fleet_2");
        assert_int_equal(c.fleet_source_max_failures, 80);
        assert_int_equal(c.fleet_window_sec, 7200);
        assert_int_equal(c.fleet_lock_time_sec, 1800);
        assert_int_equal(c.fleet_max_lock_time_sec, 2 * 86400);
        assert_int_equal(c.fleet_batch, 100);
        assert_int_equal(c.fleet_poll_interval_ms, 250);
        assert_int_equal(sg_config_check(&c, err, sizeof err), 0);
}

struct error_case {
        const char *text;
        int line;
        const char *needle; /* must appear in the message */
};

static void test_error_classes(void **state) {
        static const struct error_case cases[] = {
                /* unknown section, even with no key in it */
                { "[daemon]\ntimeout_ms = 100\n[nosuch]\n", 3, "[nosuch]: unknown section" },
                { "[ daemon ]\n", 1, "unknown section" },
                { "[Daemon]\ntimeout_ms = 100\n", 1, "unknown section" },
                /* unknown key, key outside a section */
                { "[auth]\n\nno_such_key = 1\n", 3, "[auth] no_such_key: unknown key" },
                { "[daemon]\nfail_delay_ms = 0\n", 2, "[daemon] fail_delay_ms: unknown key" },
                { "timeout_ms = 100\n[daemon]\n", 1, "outside a section" },
                /* duplicate key, also across a repeated section */
                { "[daemon]\ntimeout_ms = 100\ntimeout_ms = 200\n", 3, "duplicate key (first set on line 2)" },
                { "[auth]\nupgrade_hashes = no\n[daemon]\n[auth]\nupgrade_hashes = no\n", 5, "duplicate" },
                /* empty values where not allowed */
                { "[daemon]\ntimeout_ms =\n", 2, "[daemon] timeout_ms: empty value" },
                { "[daemon]\nsocket =\n", 2, "[daemon] socket: empty value" },
                { "[daemon]\nstate_dir = \n", 2, "[daemon] state_dir: empty value" },
                { "[auth]\nupgrade_hashes =\n", 2, "empty value" },
                { "[daemon]\nunreachable =\n", 2, "empty value" },
                /* bad values */
                { "[ratelimit]\nwindow = 15 fortnights\n", 2, "[ratelimit] window: \"15 fortnights\"" },
                { "[daemon]\ntimeout_ms = abc\n", 2, "timeout_ms: \"abc\"" },
                { "[daemon]\ntimeout_ms = -1\n", 2, "timeout_ms: \"-1\"" },
                { "[daemon]\nhash_permits = 2k\n", 2, "hash_permits" },
                { "[daemon]\nhash_permits = 0x10\n", 2, "hash_permits" },
                { "[auth]\nupgrade_hashes = maybe\n", 2, "expected yes or no" },
                { "[daemon]\nunreachable = allow\n", 2, "expected deny or allow_local" },
                { "[daemon]\ndisk_full = ignore\n", 2, "expected fail_remote or fail_all" },
                { "[audit]\nsynchronous = extra\n", 2, "expected normal or full" },
                { "[daemon]\nsocket = run/x.sock\n", 2, "absolute path" },
                { "[daemon]\nstate_dir = var/lib\n", 2, "absolute path" },
                { "[audit]\nkey_file = audit.key\n", 2, "absolute path or empty" },
                { "[audit]\nseal_public_key = ./k\n", 2, "absolute path or empty" },
                { "[daemon]\nadmin_group = Wheel\n", 2, "group name" },
                { "[daemon]\nadmin_group = 1adm\n", 2, "group name" },
                { "[daemon]\nadmin_group = adm;in\n", 2, "group name" },
                { "[ratelimit]\nallowlist = 10.0.0.0/8, 10.0.0.300, ::1\n", 2, "\"10.0.0.300\"" },
                { "[ratelimit]\nallowlist = 10.0.0.0/33\n", 2, "\"10.0.0.0/33\"" },
                { "[ratelimit]\nallowlist = 10.0.0.0/8\n  fe80::/10 nonsense\n", 3, "\"nonsense\"" },
                /* out of range */
                { "[daemon]\ntimeout_ms = 99\n", 2, "out of range (100..60000 ms)" },
                { "[daemon]\ntimeout_ms = 61s\n", 2, "out of range" },
                { "[daemon]\nhash_permits = 1025\n", 2, "out of range (0..1024)" },
                { "[ratelimit]\nipv6_prefix = 31\n", 2, "out of range (32..128)" },
                { "[ratelimit]\nipv6_prefix = 129\n", 2, "out of range" },
                { "[ratelimit]\nlock_factor = 0\n", 2, "out of range (1..16)" },
                { "[ratelimit]\nlock_factor = 17\n", 2, "out of range" },
                { "[ratelimit]\nuser_max_failures = 0\n", 2, "out of range (1..1000)" },
                { "[ratelimit]\nsource_max_failures = 1001\n", 2, "out of range" },
                { "[ratelimit]\nwindow = 0\n", 2, "out of range" },
                { "[ratelimit]\nwindow = 366d\n", 2, "out of range" },
                { "[auth]\npassword_max_len = 7\n", 2, "out of range (8..4096)" },
                { "[auth]\npassword_max_len = 4097\n", 2, "out of range" },
                { "[auth]\nargon2_memlimit = 8191\n", 2, "out of range" },
                { "[auth]\nargon2_memlimit = 5G\n", 2, "out of range" },
                { "[auth]\nmax_bcrypt_cost = 32\n", 2, "out of range" },
                { "[auth]\nmax_sha_rounds = 999\n", 2, "out of range" },
                /* [fleet] */
                { "[fleet]\nenabled = perhaps\n", 2, "[fleet] enabled: \"perhaps\": expected yes or no" },
                { "[fleet]\nenabled =\n", 2, "empty value" },
                { "[fleet]\nhost_id = 0123456789ABCDEF0123456789ABCDEF\n", 2, "32 lowercase hex" },
                { "[fleet]\nhost_id = 0123456789abcdef0123456789abcde\n", 2, "32 lowercase hex" },
                { "[fleet]\nhost_id = 0123456789abcdef0123456789abcdef0\n", 2, "[fleet] host_id" },
                { "[fleet]\nhost_id = 0123456789abcdef-123456789abcdef\n", 2, "32 lowercase hex" },
                { "[fleet]\nuser = Fleet\n", 2, "not a valid user name" },
                { "[fleet]\nuser = fleet;rm\n", 2, "not a valid user name" },
                { "[fleet]\npassword_file = fleet.pw\n", 2, "absolute path or empty" },
                { "[fleet]\npostgres = host=db password=hunter2\n", 2, "password_file" },
                { "[fleet]\npostgres = host=db PASSWORD = x\n", 2, "password_file" },
                { "[fleet]\npostgres = password=x\n", 2, "password_file" },
                { "[fleet]\npostgres = postgresql://sg:hunter2@db/fleet\n", 2, "password in the URI" },
                { "[fleet]\npostgres = postgres://sg@db/fleet?password=x\n", 2, "password_file" },
                { "[fleet]\npostgres = host=db\x01\n", 2, "control characters" },
                { "[fleet]\nsource_max_failures = 0\n", 2, "out of range (1..1000000)" },
                { "[fleet]\nwindow = 31d\n", 2, "out of range" },
                { "[fleet]\nlock_time = 0\n", 2, "out of range" },
                { "[fleet]\nmax_lock_time = 366d\n", 2, "out of range" },
                { "[fleet]\nbatch = 0\n", 2, "out of range (1..10000)" },
                { "[fleet]\nbatch = 10001\n", 2, "out of range" },
                { "[fleet]\npoll_interval = 5ms\n", 2, "out of range (10..3600000 ms)" },
                { "[fleet]\nnosuch = 1\n", 2, "[fleet] nosuch: unknown key" },
                /* overflow: too large rather than wrapped */
                { "[audit]\nmax_rows = 18446744073709551616\n", 2, "too large" },
                { "[audit]\nmax_rows = 9223372036854775808\n", 2, "out of range" },
                { "[audit]\nmax_age = 18446744073709551615d\n", 2, "too large" },
                { "[auth]\nargon2_memlimit = 17179869184G\n", 2, "too large" },
                { "[daemon]\ntimeout_ms = 4294967297\n", 2, "out of range" },
                /* syntax */
                { "[auth]\nbogus line without equals\n", 2, "syntax error" },
                { "[auth\nupgrade_hashes = no\n", 1, "missing ']'" },
                { "[auth] trailing\n", 1, "unexpected text after ']'" },
                { "[daemon]\ntimeout_ms = 100\n  200\n", 3, "continuation lines are only allowed for allowlist" },
                { "[daemon]\ntimeout_ms = 100 # not a comment\n", 2, "timeout_ms" },
                /* the first error wins */
                { "[daemon]\ntimeout_ms = x\n[nosuch]\n", 2, "timeout_ms" },
                { "[daemon]\nnope\ntimeout_ms = x\n", 2, "syntax error" },
        };
        struct sg_config c;
        char err[512], prefix[32];

        (void) state;
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                int r = load(cases[i].text, &c, err, sizeof err);

                snprintf(prefix, sizeof prefix, "t.conf:%d: ", cases[i].line);
                if (r != -EINVAL || strncmp(err, prefix, strlen(prefix)) != 0 || !strstr(err, cases[i].needle))
                        fail_msg("case %zu: r=%d err=\"%s\", want \"%s...%s\"", i, r, err, prefix,
                                 cases[i].needle);
        }
}

static void test_long_lines(void **state) {
        char text[600], err[512];
        struct sg_config c;
        int n;

        (void) state;
        /* A long comment is harmless; a long key line is an error on its own line, and the
         * line count stays right after it. */
        n = snprintf(text, sizeof text, "[daemon]\n#");
        memset(text + n, 'x', 300);
        n += 300;
        n += snprintf(text + n, sizeof text - (size_t) n, "\ntimeout_ms = 3000\n");
        assert_int_equal(load(text, &c, err, sizeof err), 0);
        assert_int_equal(c.timeout_ms, 3000);

        n = snprintf(text, sizeof text, "[daemon]\nsocket = /");
        memset(text + n, 'a', 300);
        n += 300;
        snprintf(text + n, sizeof text - (size_t) n, "\ntimeout_ms = x\n");
        assert_int_equal(load(text, &c, err, sizeof err), -EINVAL);
        assert_non_null(strstr(err, "t.conf:2: line longer than"));

        /* Long runs of blanks before a key are no way around the limit. */
        n = snprintf(text, sizeof text, "[daemon]\n");
        memset(text + n, ' ', 300);
        n += 300;
        snprintf(text + n, sizeof text - (size_t) n, "timeout_ms = 100\n");
        assert_int_equal(load(text, &c, err, sizeof err), -EINVAL);
        assert_non_null(strstr(err, "t.conf:2: line longer than"));

        /* An allowlist longer than one line continues on indented lines. */
        assert_int_equal(load("[ratelimit]\nallowlist = 192.0.2.1\n"
                              "    198.51.100.0/24,\n"
                              "\t2001:db8::/48\n"
                              "user_max_failures = 9\n",
                              &c, err, sizeof err),
                         0);
        assert_string_equal(c.allowlist, "192.0.2.1 198.51.100.0/24, 2001:db8::/48");
        assert_int_equal(c.user_max_failures, 9);
}

static void test_syntax_variants(void **state) {
        struct sg_config c;
        char err[512];

        (void) state;
        /* CRLF, a BOM, inline ";" comments, "key: value", blank lines and indentation. */
        assert_int_equal(load("\xef\xbb\xbf[daemon]\r\n"
                              "timeout_ms = 3000 ; the deadline\r\n"
                              "\r\n"
                              "   ; indented comment\r\n"
                              "hash_permits: 3\r\n"
                              "[auth] ; comment after a header\n"
                              "  upgrade_hashes = YES\n",
                              &c, err, sizeof err),
                         0);
        assert_int_equal(c.timeout_ms, 3000);
        assert_int_equal(c.hash_permits, 3);
        assert_true(c.upgrade_hashes);
        /* An empty file and a comment-only file give the defaults. */
        assert_int_equal(load("", &c, err, sizeof err), 0);
        assert_int_equal(load("# nothing\n; here\n", &c, err, sizeof err), 0);
        assert_int_equal(c.timeout_ms, 2000);
        /* Empty allowed where documented. */
        assert_int_equal(load("[daemon]\nadmin_group =\n[audit]\nkey_file =\nseal_public_key=\n"
                              "[ratelimit]\nallowlist =\n",
                              &c, err, sizeof err),
                         0);
        assert_string_equal(c.admin_group, "");
        /* A socket path must fit sun_path: 107 bytes are fine, 108 are not. */
        {
                char text[256], path[120];

                memset(path, 'a', sizeof path);
                path[0] = '/';
                path[107] = '\0';
                snprintf(text, sizeof text, "[daemon]\nsocket = %s\n", path);
                assert_int_equal(load(text, &c, err, sizeof err), 0);
                assert_int_equal(strlen(c.socket), 107);
                path[107] = 'a';
                path[108] = '\0';
                snprintf(text, sizeof text, "[daemon]\nsocket = %s\n", path);
                assert_int_equal(load(text, &c, err, sizeof err), -EINVAL);
                assert_non_null(strstr(err, "t.conf:2: [daemon] socket: "));
                assert_non_null(strstr(err, "108"));
        }
}

static void test_failed_load_leaves_config(void **state) {
        struct sg_config c, before;
        char err[512], *a, *b;

        (void) state;
        sg_config_defaults(&c);
        c.timeout_ms = 1234;
        before = c;
        /* The good first key must not leak into c when a later line fails. */
        assert_int_equal(sg_config_load_string(&c, "t.conf", "[daemon]\nhash_permits = 9\nbad\n", err, sizeof err),
                         -EINVAL);
        a = dump(&c);
        b = dump(&before);
        assert_string_equal(a, b);
        free(a);
        free(b);
        /* A good load keeps what the file does not set. */
        assert_int_equal(sg_config_load_string(&c, "t.conf", "[daemon]\nhash_permits = 9\n", err, sizeof err), 0);
        assert_int_equal(c.timeout_ms, 1234);
        assert_int_equal(c.hash_permits, 9);
}

static void test_parse_values(void **state) {
        static const struct {
                const char *s;
                int r;
                uint64_t v;
        } durations[] = {
                { "0", 0, 0 },
                { "90", 0, 90 },
                { "90s", 0, 90 },
                { "15m", 0, 900 },
                { "2h", 0, 7200 },
                { "1d", 0, 86400 },
                { "007", 0, 7 },
                { "18446744073709551615", 0, UINT64_MAX },
                { "18446744073709551616", -EINVAL, 0 },
                { "213503982334601d", 0, 213503982334601ull * 86400 },
                { "213503982334602d", -EINVAL, 0 },
                { "", -EINVAL, 0 },
                { "s", -EINVAL, 0 },
                { "-1", -EINVAL, 0 },
                { "+1", -EINVAL, 0 },
                { " 1", -EINVAL, 0 },
                { "1 s", -EINVAL, 0 },
                { "1.5h", -EINVAL, 0 },
                { "1S", -EINVAL, 0 },
                { "1ms", -EINVAL, 0 },
                { "1w", -EINVAL, 0 },
                { "1h30m", -EINVAL, 0 },
                { "0x10", -EINVAL, 0 },
        }, ms[] = {
                { "1500", 0, 1500 },
                { "1500ms", 0, 1500 },
                { "2s", 0, 2000 },
                { "1m", 0, 60000 },
                { "0ms", 0, 0 },
                { "18446744073709551s", 0, 18446744073709551000ull },
                { "18446744073709552s", -EINVAL, 0 },
                { "2 s", -EINVAL, 0 },
                { "ms", -EINVAL, 0 },
                { "-5ms", -EINVAL, 0 },
        }, sizes[] = {
                { "65536", 0, 65536 },
                { "64K", 0, 65536 },
                { "64k", 0, 65536 },
                { "64M", 0, 64ull << 20 },
                { "1G", 0, 1ull << 30 },
                { "2T", 0, 2ull << 40 },
                { "16777215T", 0, 16777215ull << 40 },
                { "16777216T", -EINVAL, 0 },
                { "64MB", -EINVAL, 0 },
                { "M", -EINVAL, 0 },
                { "-64M", -EINVAL, 0 },
                { "1.5G", -EINVAL, 0 },
        };
        static const struct {
                const char *s;
                int r;
                bool v;
        } bools[] = {
                { "yes", 0, true }, { "YES", 0, true }, { "true", 0, true }, { "on", 0, true },
                { "1", 0, true }, { "no", 0, false }, { "False", 0, false }, { "off", 0, false },
                { "0", 0, false }, { "", -EINVAL, false }, { "y", -EINVAL, false }, { "2", -EINVAL, false },
                { "yes ", -EINVAL, false }, { "enable", -EINVAL, false },
        };
        uint64_t v;
        bool b;

        (void) state;
        for (size_t i = 0; i < sizeof durations / sizeof durations[0]; i++) {
                v = 4242;
                if (sg_parse_duration(durations[i].s, &v) != durations[i].r)
                        fail_msg("duration \"%s\": want %d", durations[i].s, durations[i].r);
                assert_true(durations[i].r == 0 ? v == durations[i].v : v == 4242);
        }
        for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) {
                v = 4242;
                if (sg_parse_duration_ms(ms[i].s, &v) != ms[i].r)
                        fail_msg("duration_ms \"%s\": want %d", ms[i].s, ms[i].r);
                assert_true(ms[i].r == 0 ? v == ms[i].v : v == 4242);
        }
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
                v = 4242;
                if (sg_parse_size(sizes[i].s, &v) != sizes[i].r)
                        fail_msg("size \"%s\": want %d", sizes[i].s, sizes[i].r);
                assert_true(sizes[i].r == 0 ? v == sizes[i].v : v == 4242);
        }
        for (size_t i = 0; i < sizeof bools / sizeof bools[0]; i++) {
                b = !bools[i].v;
                if (sg_parse_bool(bools[i].s, &b) != bools[i].r)
                        fail_msg("bool \"%s\": want %d", bools[i].s, bools[i].r);
                if (bools[i].r == 0)
                        assert_true(b == bools[i].v);
        }
        assert_int_equal(sg_parse_duration(NULL, &v), -EINVAL);
        assert_int_equal(sg_parse_bool(NULL, &b), -EINVAL);
}

static void test_range_edges(void **state) {
        static const struct {
                const char *text;
                int r;
        } cases[] = {
                { "[daemon]\ntimeout_ms = 100\n", 0 },       { "[daemon]\ntimeout_ms = 60000\n", 0 },
                { "[daemon]\ntimeout_ms = 60s\n", 0 },       { "[daemon]\ntimeout_ms = 60001\n", -EINVAL },
                { "[daemon]\nhash_permits = 1024\n", 0 },    { "[ratelimit]\nipv6_prefix = 32\n", 0 },
                { "[ratelimit]\nipv6_prefix = 128\n", 0 },   { "[ratelimit]\nlock_factor = 16\n", 0 },
                { "[ratelimit]\nspray_max_users = 1000\n", 0 },
                { "[auth]\nargon2_memlimit = 8K\n", 0 },     { "[auth]\nmax_argon2_memlimit = 4G\n", 0 },
                { "[auth]\nmax_argon2_memlimit = 4097M\n", -EINVAL },
                { "[auth]\npassword_max_len = 8\n", 0 },     { "[auth]\npassword_max_len = 4096\n", 0 },
                { "[auth]\nmin_password_len = 0\n", -EINVAL },
                { "[session]\nmax_lifetime = 0\n", 0 },      { "[session]\nmax_lifetime = 3650d\n", 0 },
                { "[session]\nmax_lifetime = 3651d\n", -EINVAL },
                { "[audit]\nmax_age = 0\n", 0 },             { "[audit]\nmax_rows = 9223372036854775807\n", 0 },
                { "[ratelimit]\nhistory = 3650d\n", 0 },     { "[ratelimit]\nhistory = 3651d\n", -EINVAL },
                { "[fleet]\nbatch = 1\n", 0 },               { "[fleet]\nbatch = 10000\n", 0 },
                { "[fleet]\nmax_lock_time = 365d\n", 0 },    { "[fleet]\nwindow = 30d\n", 0 },
                { "[fleet]\npoll_interval = 10ms\n", 0 },    { "[fleet]\npoll_interval = 1h\n", 0 },
                { "[fleet]\npoll_interval = 3601s\n", -EINVAL },
                { "[fleet]\nuser =\n", 0 },                  { "[fleet]\nhost_id =\n", 0 },
                { "[fleet]\npostgres =\n", 0 },              { "[fleet]\npostgres = service=fleet\n", 0 },
                { "[fleet]\npostgres = postgresql://sg@db.example.org:5432/fleet?sslmode=require\n", 0 },
                { "[fleet]\npostgres = host=db passfile=/etc/secguard/pgpass\n", 0 },
        };
        struct sg_config c;
        char err[512];

        (void) state;
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                int r = load(cases[i].text, &c, err, sizeof err);

                if (r != cases[i].r)
                        fail_msg("case %zu (%s): r=%d err=%s", i, cases[i].text, r, err);
        }
}

static void test_check(void **state) {
        struct sg_config c;
        char err[512];

        (void) state;
#define EXPECT_CHECK_FAILS(mutation, needle)                                                             \
        do {                                                                                             \
                sg_config_defaults(&c);                                                                  \
                mutation;                                                                                \
                err[0] = '\0';                                                                           \
                assert_int_equal(sg_config_check(&c, err, sizeof err), -EINVAL);                         \
                if (!strstr(err, needle))                                                                \
                        fail_msg("%s: message \"%s\" lacks \"%s\"", #mutation, err, needle);             \
        } while (0)

        EXPECT_CHECK_FAILS(c.argon2_memlimit = c.max_argon2_memlimit + 1024, "argon2_memlimit");
        EXPECT_CHECK_FAILS(c.argon2_opslimit = c.max_argon2_opslimit + 1, "argon2_opslimit");
        EXPECT_CHECK_FAILS(c.lock_time_sec = c.lock_max_sec + 1, "lock_time");
        EXPECT_CHECK_FAILS(c.history_sec = c.lock_max_sec - 1, "history");
        EXPECT_CHECK_FAILS(c.min_password_len = c.password_max_len + 1, "min_password_len");
        EXPECT_CHECK_FAILS(c.max_connections_per_uid = c.max_connections + 1, "max_connections_per_uid");
        /* what command-line overrides can break */
        EXPECT_CHECK_FAILS(strcpy(c.socket, "relative.sock"), "[daemon] socket");
        EXPECT_CHECK_FAILS(strcpy(c.socket, ""), "[daemon] socket");
        EXPECT_CHECK_FAILS(strcpy(c.state_dir, "state"), "[daemon] state_dir");
        EXPECT_CHECK_FAILS(strcpy(c.state_dir, "/var/lib/\x1b[2J"), "control");
        EXPECT_CHECK_FAILS(c.timeout_ms = 50, "timeout_ms");
        EXPECT_CHECK_FAILS(c.ipv6_prefix = 200, "ipv6_prefix");
        EXPECT_CHECK_FAILS(c.unreachable = 7, "unreachable");
        EXPECT_CHECK_FAILS(c.disk_full = -1, "disk_full");
        EXPECT_CHECK_FAILS(strcpy(c.allowlist, "10.0.0.0/8 bogus"), "bogus");
        EXPECT_CHECK_FAILS(strcpy(c.admin_group, "Admins"), "admin_group");
        EXPECT_CHECK_FAILS(memset(c.socket, 'a', sizeof c.socket), "socket");
        EXPECT_CHECK_FAILS(c.fleet_lock_time_sec = c.fleet_max_lock_time_sec + 1, "[fleet] lock_time");
        EXPECT_CHECK_FAILS(strcpy(c.fleet_host_id, "xyz"), "[fleet] host_id");
        EXPECT_CHECK_FAILS(strcpy(c.fleet_postgres, "dbname=x password=y"), "[fleet] postgres");
        EXPECT_CHECK_FAILS(strcpy(c.fleet_user, "Root"), "[fleet] user");
        EXPECT_CHECK_FAILS(c.fleet_batch = 0, "[fleet] batch");
#undef EXPECT_CHECK_FAILS

        /* Equal values are fine: lock_time == lock_max == history, min == max length. */
        sg_config_defaults(&c);
        c.lock_time_sec = c.lock_max_sec = c.history_sec = 3600;
        c.min_password_len = c.password_max_len = 64;
        c.argon2_memlimit = c.max_argon2_memlimit;
        c.argon2_opslimit = c.max_argon2_opslimit;
        assert_int_equal(sg_config_check(&c, err, sizeof err), 0);
        /* A load passes per-key checks but leaves cross-field ones to sg_config_check. */
        assert_int_equal(load("[auth]\nargon2_memlimit = 512M\n", &c, err, sizeof err), 0);
        assert_int_equal(sg_config_check(&c, err, sizeof err), -EINVAL);
        assert_non_null(strstr(err, "max_argon2_memlimit"));
}

static void test_dump(void **state) {
        struct sg_config c;
        char small[64], err[256], *out, *line;
        size_t lines = 0;
        int n;

        (void) state;
        sg_config_defaults(&c);
        out = dump(&c);
        /* sizes in bytes, durations in seconds, one "section.key=value" per line */
        assert_non_null(strstr(out, "daemon.socket=" SG_DEFAULT_SOCKET "\n"));
        assert_non_null(strstr(out, "auth.argon2_memlimit=67108864\n"));
        assert_non_null(strstr(out, "ratelimit.window=900\n"));
        assert_non_null(strstr(out, "ratelimit.history=2592000\n"));
        assert_non_null(strstr(out, "daemon.unreachable=allow_local\n"));
        assert_non_null(strstr(out, "audit.synchronous=normal\n"));
        assert_non_null(strstr(out, "ratelimit.allowlist=\n"));
        for (line = out; *line; line = strchr(line, '\n') + 1) {
                char *eq = strchr(line, '='), *dot = strchr(line, '.');

                assert_non_null(eq);
                assert_non_null(dot);
                assert_true(dot < eq && eq < strchr(line, '\n'));
                lines++;
        }
        assert_int_equal(lines, 66); /* every key of struct sg_config */
        n = (int) strlen(out);
        free(out);

        /* Loaded values show up in the dump in its units. */
        assert_int_equal(load("[session]\nmax_lifetime = 1h\n[daemon]\nunreachable = deny\n", &c, err, sizeof err), 0);
        out = dump(&c);
        assert_non_null(strstr(out, "session.max_lifetime=3600\n"));
        assert_non_null(strstr(out, "daemon.unreachable=deny\n"));
        free(out);

        assert_int_equal(sg_config_dump(&c, small, sizeof small), -ENOSPC);
        assert_true(strlen(small) < sizeof small);
        assert_int_equal(sg_config_dump(&c, small, 0), -ENOSPC);
        {
                char *exact = malloc((size_t) n + 8);

                sg_config_defaults(&c);
                assert_non_null(exact);
                assert_int_equal(sg_config_dump(&c, exact, (size_t) n + 1), n);
                assert_int_equal(sg_config_dump(&c, exact, (size_t) n), -ENOSPC);
                free(exact);
        }
}

static void test_file_safety(void **state) {
        char path[PATH_MAX + 32], link[PATH_MAX + 32], err[512];
        static const char good[] = "[daemon]\ntimeout_ms = 3000\n";
        struct sg_config c;

        (void) state;
        snprintf(path, sizeof path, "%s/secguard.conf", tmpdir);
        write_file(path, good, strlen(good), 0644);
        sg_config_defaults(&c);
        assert_int_equal(sg_config_load(&c, path, false, err, sizeof err), 0);
        assert_int_equal(c.timeout_ms, 3000);

        /* world-writable: refused, message names the path and the fix */
        assert_int_equal(chmod(path, 0666), 0);
        sg_config_defaults(&c);
        assert_int_equal(sg_config_load(&c, path, false, err, sizeof err), -EPERM);
        assert_non_null(strstr(err, path));
        assert_non_null(strstr(err, "chmod"));
        assert_int_equal(c.timeout_ms, 2000);
        assert_int_equal(chmod(path, 0644), 0);

        /* owned by someone else: refused (needs root to arrange) */
        if (geteuid() == 0) {
                assert_int_equal(chown(path, 4242, 4242), 0);
                assert_int_equal(sg_config_load(&c, path, false, err, sizeof err), -EPERM);
                assert_non_null(strstr(err, path));
                assert_non_null(strstr(err, "chown root:root"));
                /* group-writable by a group other than root's: refused */
                assert_int_equal(chown(path, 0, 4242), 0);
                assert_int_equal(chmod(path, 0664), 0);
                assert_int_equal(sg_config_load(&c, path, false, err, sizeof err), -EPERM);
                assert_non_null(strstr(err, "chmod g-w"));
                assert_int_equal(chown(path, 0, 0), 0);
                assert_int_equal(sg_config_load(&c, path, false, err, sizeof err), 0);
                assert_int_equal(chmod(path, 0644), 0);
        } else {
                fprintf(stderr, "# skipping the foreign-owner case: needs root to chown\n");
        }

        /* a symbolic link is not followed */
        snprintf(link, sizeof link, "%s/link.conf", tmpdir);
        assert_int_equal(symlink(path, link), 0);
        assert_int_equal(sg_config_load(&c, link, false, err, sizeof err), -ELOOP);
        assert_non_null(strstr(err, link));
        assert_non_null(strstr(err, "symbolic link"));
        /* ... even when missing_ok */
        assert_int_equal(sg_config_load(&c, link, true, err, sizeof err), -ELOOP);

        /* a directory or a FIFO is refused, and the FIFO does not block */
        assert_int_equal(sg_config_load(&c, tmpdir, false, err, sizeof err), -EPERM);
        snprintf(link, sizeof link, "%s/fifo.conf", tmpdir);
        assert_int_equal(mkfifo(link, 0644), 0);
        assert_int_equal(sg_config_load(&c, link, false, err, sizeof err), -EPERM);
        assert_non_null(strstr(err, "not a regular file"));

        /* missing: fine with missing_ok (config untouched), an error naming the path without */
        snprintf(link, sizeof link, "%s/missing.conf", tmpdir);
        sg_config_defaults(&c);
        c.hash_permits = 77;
        err[0] = '\0';
        assert_int_equal(sg_config_load(&c, link, true, err, sizeof err), 1);
        assert_int_equal(c.hash_permits, 77);
        assert_int_equal(sg_config_load(&c, link, false, err, sizeof err), -ENOENT);
        assert_non_null(strstr(err, link));
}

static void test_file_errors_name_file_line(void **state) {
        static const char nul[] = "[daemon]\ntimeout_ms = 3000\nhash_\0permits = 3\n";
        char path[PATH_MAX + 32], err[512], want[PATH_MAX + 64];
        struct sg_config c;

        (void) state;
        snprintf(path, sizeof path, "%s/bad.conf", tmpdir);
        /* a NUL byte cannot hide the rest of a line */
        write_file(path, nul, sizeof nul - 1, 0600);
        sg_config_defaults(&c);
        assert_int_equal(sg_config_load(&c, path, false, err, sizeof err), -EINVAL);
        snprintf(want, sizeof want, "%s:3: NUL byte", path);
        assert_non_null(strstr(err, want));

        write_file(path, "[auth]\n\n\nargon2_opslimit = 0\n", 29, 0644);
        assert_int_equal(sg_config_load(&c, path, false, err, sizeof err), -EINVAL);
        snprintf(want, sizeof want, "%s:4: [auth] argon2_opslimit: ", path);
        assert_non_null(strstr(err, want));

        /* a huge file is refused, not read to the end */
        {
                size_t big = 2u << 20;
                char *data = malloc(big);

                assert_non_null(data);
                memset(data, '\n', big);
                memcpy(data, "[daemon]\n", 9);
                write_file(path, data, big, 0644);
                free(data);
                assert_int_equal(sg_config_load(&c, path, false, err, sizeof err), -EINVAL);
                assert_non_null(strstr(err, "larger than"));
        }
}

/* ---- the example config and the man page cannot drift from the code ---- */

static char *read_source_file(const char *rel) {
        char path[PATH_MAX], *slash, *data;
        FILE *f;
        long n;

        snprintf(path, sizeof path, "%s", __FILE__);
        slash = strstr(path, "tests/unit/test_config.c");
        assert_non_null(slash);
        snprintf(slash, sizeof path - (size_t) (slash - path), "%s", rel);
        f = fopen(path, "re");
        if (!f)
                fail_msg("cannot open %s", path);
        assert_int_equal(fseek(f, 0, SEEK_END), 0);
        n = ftell(f);
        assert_true(n > 0);
        rewind(f);
        data = calloc(1, (size_t) n + 1);
        assert_non_null(data);
        assert_int_equal(fread(data, 1, (size_t) n, f), (size_t) n);
        fclose(f);
        return data;
}

/* "# key = value" or "# key =" */
static bool is_commented_key(const char *line) {
        const char *p = line + 2;

        if (strncmp(line, "# ", 2) != 0 || !(*p >= 'a' && *p <= 'z'))
                return false;
        while ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')
                p++;
        return strncmp(p, " =", 2) == 0 && (p[2] == '\n' || p[2] == ' ');
}

static void test_example_config_matches_defaults(void **state) {
        char *text = read_source_file("etc/secguard.conf"), *uncommented, *line, *a, *b;
        struct sg_config c, d;
        char err[512];
        size_t keys = 0, o = 0;

        (void) state;
        /* As shipped (everything commented out) it loads and changes nothing. */
        assert_int_equal(load(text, &c, err, sizeof err), 0);
        sg_config_defaults(&d);
        a = dump(&c);
        b = dump(&d);
        assert_string_equal(a, b);
        free(a);

        /* Every key uncommented: still the defaults, and every key is there exactly once
         * (a duplicate would fail the load). */
        uncommented = calloc(1, strlen(text) + 1);
        assert_non_null(uncommented);
        for (line = text; *line;) {
                char *end = strchrnul(line, '\n');
                size_t len = (size_t) (end - line) + (*end ? 1 : 0);

                if (is_commented_key(line)) {
                        memcpy(uncommented + o, line + 2, len - 2);
                        o += len - 2;
                        keys++;
                } else {
                        memcpy(uncommented + o, line, len);
                        o += len;
                }
                line += len;
        }
        if (load(uncommented, &c, err, sizeof err) != 0)
                fail_msg("etc/secguard.conf with every key uncommented: %s", err);
        a = dump(&c);
        assert_string_equal(a, b);
        assert_int_equal(keys, 66);
        free(a);
        free(b);
        free(uncommented);
        free(text);
}

static void test_man_page_documents_every_key(void **state) {
        char *man = read_source_file("man/secguard.conf.5"), *out, *line;
        struct sg_config c;

        (void) state;
        sg_config_defaults(&c);
        out = dump(&c);
        for (line = out; *line; line = strchr(line, '\n') + 1) {
                char key[64], needle[80];
                const char *dot = strchr(line, '.'), *eq = strchr(line, '=');

                snprintf(key, sizeof key, "%.*s", (int) (eq - dot - 1), dot + 1);
                snprintf(needle, sizeof needle, ".B %s\n", key);
                if (!strstr(man, needle))
                        fail_msg("secguard.conf.5 lacks \".B %s\"", key);
        }
        free(out);
        free(man);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_defaults),
                cmocka_unit_test(test_every_key),
                cmocka_unit_test(test_error_classes),
                cmocka_unit_test(test_long_lines),
                cmocka_unit_test(test_syntax_variants),
                cmocka_unit_test(test_failed_load_leaves_config),
                cmocka_unit_test(test_parse_values),
                cmocka_unit_test(test_range_edges),
                cmocka_unit_test(test_check),
                cmocka_unit_test(test_dump),
                cmocka_unit_test_setup_teardown(test_file_safety, setup_dir, teardown_dir),
                cmocka_unit_test_setup_teardown(test_file_errors_name_file_line, setup_dir, teardown_dir),
                cmocka_unit_test(test_example_config_matches_defaults),
                cmocka_unit_test(test_man_page_documents_every_key),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
