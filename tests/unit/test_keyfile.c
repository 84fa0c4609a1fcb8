/* SPDX-License-Identifier: MIT */
/*
 * Key files: a good key reads back; unsafe mode, foreign owner, symlink, FIFO and wrong size
 * are refused with the path (and the fix) in the message and no key bytes in it; creation is
 * 0600 and exclusive; systemd credentials take precedence over the path.
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

#include "keyfile.h"

#define KEY_LEN 32

static char tmpdir[PATH_MAX];

static int setup_dir(void **state) {
        const char *base = getenv("SG_TEST_TMP");

        (void) state;
        unsetenv("CREDENTIALS_DIRECTORY");
        snprintf(tmpdir, sizeof tmpdir, "%s/sgkey.XXXXXX", base && *base ? base : "/tmp");
        return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_dir(void **state) {
        char cmd[PATH_MAX + 16];

        (void) state;
        unsetenv("CREDENTIALS_DIRECTORY");
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
        return system(cmd) == 0 ? 0 : -1;
}

static void path_in(char *buf, size_t size, const char *name) {
        snprintf(buf, size, "%s/%s", tmpdir, name);
}

static void write_raw(const char *path, const uint8_t *data, size_t len, mode_t mode) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

        assert_true(fd >= 0);
        assert_int_equal(write(fd, data, len), (ssize_t) len);
        assert_int_equal(fchmod(fd, mode), 0);
        close(fd);
}

static void fill(uint8_t *k, uint8_t seed) {
        for (size_t i = 0; i < KEY_LEN; i++)
                k[i] = (uint8_t) (seed + i * 7);
}

/* The message must not leak key bytes, in raw or hex form. */
static void assert_no_key_in(const char *err, const uint8_t *k) {
        char hex[2 * KEY_LEN + 1];

        for (size_t i = 0; i < KEY_LEN; i++)
                snprintf(hex + 2 * i, 3, "%02x", k[i]);
        assert_null(strstr(err, hex));
        assert_null(memmem(err, strlen(err), k, 8));
}

static void test_read_ok(void **state) {
        uint8_t want[KEY_LEN], got[KEY_LEN];
        char path[PATH_MAX + 32], err[512] = "";

        (void) state;
        path_in(path, sizeof path, "audit.key");
        fill(want, 1);
        write_raw(path, want, KEY_LEN, 0600);
        assert_int_equal(sg_key_read(path, got, KEY_LEN, err, sizeof err), 0);
        assert_memory_equal(got, want, KEY_LEN);
        /* 0400 is fine too */
        assert_int_equal(chmod(path, 0400), 0);
        assert_int_equal(sg_key_read(path, got, KEY_LEN, err, sizeof err), 0);
}

static void test_wrong_mode(void **state) {
        static const mode_t modes[] = { 0640, 0604, 0660, 0644, 0666, 0610, 0601 };
        uint8_t want[KEY_LEN], got[KEY_LEN];
        char path[PATH_MAX + 32], err[512], fix[PATH_MAX + 64];

        (void) state;
        path_in(path, sizeof path, "loose.key");
        fill(want, 9);
        snprintf(fix, sizeof fix, "chmod 0600 %s", path);
        for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
                write_raw(path, want, KEY_LEN, modes[i]);
                memset(got, 0xaa, sizeof got);
                err[0] = '\0';
                assert_int_equal(sg_key_read(path, got, KEY_LEN, err, sizeof err), -EPERM);
                if (!strstr(err, fix))
                        fail_msg("mode %04o: message \"%s\" lacks the fix", (unsigned) modes[i], err);
                assert_no_key_in(err, want);
                /* nothing read into the buffer */
                for (size_t j = 0; j < KEY_LEN; j++)
                        assert_int_equal(got[j], 0xaa);
        }
}

static void test_foreign_owner(void **state) {
        uint8_t k[KEY_LEN];
        char path[PATH_MAX + 32], err[512];

        (void) state;
        if (geteuid() != 0) {
                fprintf(stderr, "# skipping: needs root to chown a file to another uid\n");
                skip();
        }
        path_in(path, sizeof path, "foreign.key");
        fill(k, 3);
        write_raw(path, k, KEY_LEN, 0600);
        assert_int_equal(chown(path, 4242, 4242), 0);
        assert_int_equal(sg_key_read(path, k, KEY_LEN, err, sizeof err), -EPERM);
        assert_non_null(strstr(err, path));
        assert_non_null(strstr(err, "chown"));
}

static void test_symlink_and_special(void **state) {
        uint8_t k[KEY_LEN];
        char path[PATH_MAX + 32], link[PATH_MAX + 32], err[512];

        (void) state;
        path_in(path, sizeof path, "real.key");
        path_in(link, sizeof link, "link.key");
        fill(k, 5);
        write_raw(path, k, KEY_LEN, 0600);
        assert_int_equal(symlink(path, link), 0);
        assert_int_equal(sg_key_read(link, k, KEY_LEN, err, sizeof err), -ELOOP);
        assert_non_null(strstr(err, link));
        assert_non_null(strstr(err, "symbolic link"));

        /* a dangling symlink is not "absent": sg_key_load must not create through it */
        assert_int_equal(unlink(path), 0);
        assert_int_equal(sg_key_load(NULL, link, true, k, KEY_LEN, NULL, err, sizeof err), -ELOOP);
        assert_int_equal(access(path, F_OK), -1);

        /* a directory and a FIFO are refused; the FIFO does not block */
        assert_int_equal(sg_key_read(tmpdir, k, KEY_LEN, err, sizeof err), -EPERM);
        path_in(path, sizeof path, "fifo.key");
        assert_int_equal(mkfifo(path, 0600), 0);
        assert_int_equal(sg_key_read(path, k, KEY_LEN, err, sizeof err), -EPERM);
        assert_non_null(strstr(err, "not a regular file"));
}

static void test_wrong_size(void **state) {
        uint8_t k[KEY_LEN + 1], got[KEY_LEN];
        char path[PATH_MAX + 32], err[512];

        (void) state;
        path_in(path, sizeof path, "short.key");
        memset(k, 7, sizeof k); /* all KEY_LEN + 1 bytes are written below */
        write_raw(path, k, KEY_LEN - 1, 0600);
        assert_int_equal(sg_key_read(path, got, KEY_LEN, err, sizeof err), -EBADMSG);
        assert_non_null(strstr(err, path));
        write_raw(path, k, KEY_LEN + 1, 0600);
        assert_int_equal(sg_key_read(path, got, KEY_LEN, err, sizeof err), -EBADMSG);
        write_raw(path, k, 0, 0600);
        assert_int_equal(sg_key_read(path, got, KEY_LEN, err, sizeof err), -EBADMSG);
        path_in(path, sizeof path, "absent.key");
        assert_int_equal(sg_key_read(path, got, KEY_LEN, err, sizeof err), -ENOENT);
        assert_non_null(strstr(err, path));
}

static void test_write_then_read(void **state) {
        uint8_t want[KEY_LEN], got[KEY_LEN];
        char path[PATH_MAX + 32], err[512];
        struct stat st;
        mode_t old = umask(0);

        (void) state;
        path_in(path, sizeof path, "new.key");
        fill(want, 11);
        assert_int_equal(sg_key_write(path, want, KEY_LEN, err, sizeof err), 0);
        umask(old);
        assert_int_equal(lstat(path, &st), 0);
        assert_true(S_ISREG(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0600); /* even with umask 0 */
        assert_int_equal(st.st_size, KEY_LEN);
        assert_int_equal(sg_key_read(path, got, KEY_LEN, err, sizeof err), 0);
        assert_memory_equal(got, want, KEY_LEN);
        /* exclusive: never overwrites */
        fill(got, 99);
        assert_int_equal(sg_key_write(path, got, KEY_LEN, err, sizeof err), -EEXIST);
        assert_int_equal(sg_key_read(path, got, KEY_LEN, err, sizeof err), 0);
        assert_memory_equal(got, want, KEY_LEN);
        /* not through a symlink either, even a dangling one */
        {
                char link[PATH_MAX + 32], target[PATH_MAX + 32];

                path_in(link, sizeof link, "planted.key");
                path_in(target, sizeof target, "elsewhere.key");
                assert_int_equal(symlink(target, link), 0);
                assert_int_equal(sg_key_write(link, want, KEY_LEN, err, sizeof err), -EEXIST);
                assert_int_equal(access(target, F_OK), -1);
        }
        /* a missing directory is an error naming the path */
        path_in(path, sizeof path, "nodir/new.key");
        assert_int_equal(sg_key_write(path, want, KEY_LEN, err, sizeof err), -ENOENT);
        assert_non_null(strstr(err, path));
}

static void test_load_create(void **state) {
        uint8_t a[KEY_LEN], b[KEY_LEN], zero[KEY_LEN] = { 0 };
        char path[PATH_MAX + 32], err[512];
        bool created = false;
        struct stat st;

        (void) state;
        path_in(path, sizeof path, "gen.key");
        /* absent and create=false: -ENOENT, nothing created */
        assert_int_equal(sg_key_load("cred", path, false, a, KEY_LEN, &created, err, sizeof err), -ENOENT);
        assert_int_equal(access(path, F_OK), -1);

        assert_int_equal(sg_key_load("cred", path, true, a, KEY_LEN, &created, err, sizeof err), 0);
        assert_true(created);
        assert_memory_not_equal(a, zero, KEY_LEN);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);

        /* the second load reads the same key and creates nothing */
        assert_int_equal(sg_key_load("cred", path, true, b, KEY_LEN, &created, err, sizeof err), 0);
        assert_false(created);
        assert_memory_equal(a, b, KEY_LEN);

        /* a second, independent generation gives a different key */
        path_in(path, sizeof path, "gen2.key");
        assert_int_equal(sg_key_load(NULL, path, true, b, KEY_LEN, NULL, err, sizeof err), 0);
        assert_memory_not_equal(a, b, KEY_LEN);

        /* an unsafe existing key is refused, never replaced */
        assert_int_equal(chmod(path, 0644), 0);
        assert_int_equal(sg_key_load(NULL, path, true, b, KEY_LEN, &created, err, sizeof err), -EPERM);
        assert_non_null(strstr(err, "chmod 0600"));
}

static void test_credentials_preferred(void **state) {
        uint8_t cred[KEY_LEN], file[KEY_LEN], got[KEY_LEN];
        char creds[PATH_MAX + 32], cpath[PATH_MAX + 64], path[PATH_MAX + 32], err[512];
        bool created = true;

        (void) state;
        path_in(creds, sizeof creds, "credentials");
        assert_int_equal(mkdir(creds, 0700), 0);
        snprintf(cpath, sizeof cpath, "%s/secguard-audit-key", creds);
        path_in(path, sizeof path, "file.key");
        fill(cred, 21);
        fill(file, 42);
        write_raw(cpath, cred, KEY_LEN, 0400);
        write_raw(path, file, KEY_LEN, 0600);

        assert_int_equal(setenv("CREDENTIALS_DIRECTORY", creds, 1), 0);
        assert_int_equal(sg_key_load("secguard-audit-key", path, true, got, KEY_LEN, &created, err, sizeof err), 0);
        assert_false(created);
        assert_memory_equal(got, cred, KEY_LEN);

        /* not in the credentials directory: the path */
        assert_int_equal(sg_key_load("other-name", path, true, got, KEY_LEN, &created, err, sizeof err), 0);
        assert_memory_equal(got, file, KEY_LEN);

        /* a bad credential is an error, not a silent fallback */
        write_raw(cpath, cred, KEY_LEN - 1, 0400);
        assert_int_equal(sg_key_load("secguard-audit-key", path, true, got, KEY_LEN, &created, err, sizeof err),
                         -EBADMSG);
        assert_non_null(strstr(err, cpath));
        /* a symlinked credential is refused too */
        assert_int_equal(unlink(cpath), 0);
        assert_int_equal(symlink(path, cpath), 0);
        assert_int_equal(sg_key_load("secguard-audit-key", path, true, got, KEY_LEN, &created, err, sizeof err),
                         -ELOOP);
        /* a name cannot climb out of the directory */
        assert_int_equal(sg_key_load("../file.key", path, true, got, KEY_LEN, &created, err, sizeof err), -EINVAL);

        /* unset: the path */
        assert_int_equal(unsetenv("CREDENTIALS_DIRECTORY"), 0);
        assert_int_equal(sg_key_load("secguard-audit-key", path, true, got, KEY_LEN, &created, err, sizeof err), 0);
        assert_memory_equal(got, file, KEY_LEN);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_read_ok, setup_dir, teardown_dir),
                cmocka_unit_test_setup_teardown(test_wrong_mode, setup_dir, teardown_dir),
                cmocka_unit_test_setup_teardown(test_foreign_owner, setup_dir, teardown_dir),
                cmocka_unit_test_setup_teardown(test_symlink_and_special, setup_dir, teardown_dir),
                cmocka_unit_test_setup_teardown(test_wrong_size, setup_dir, teardown_dir),
                cmocka_unit_test_setup_teardown(test_write_then_read, setup_dir, teardown_dir),
                cmocka_unit_test_setup_teardown(test_load_create, setup_dir, teardown_dir),
                cmocka_unit_test_setup_teardown(test_credentials_preferred, setup_dir, teardown_dir),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
