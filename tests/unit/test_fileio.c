/* SPDX-License-Identifier: MIT */
/*
 * Durable file replacement: sg_write_atomic writes new and replaced files with the asked
 * owner and mode, never follows or writes through a symlink, refuses to replace with
 * SG_WRITE_NOREPLACE, leaves no temp file behind after success or failure; sg_fsync_dir
 * refuses what is not a directory; sg_remove_stale_temps removes exactly its own pattern.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "fileio.h"

#define ALL_SYNC (SG_WRITE_FSYNC | SG_WRITE_FSYNC_DIR)
#define PATH_BUF (PATH_MAX + NAME_MAX + 2)

static char tmpdir[PATH_MAX];

static int setup_dir(void **state) {
        const char *base = getenv("SG_TEST_TMP");

        (void) state;
        snprintf(tmpdir, sizeof tmpdir, "%s/sgfileio.XXXXXX", base && *base ? base : "/tmp");
        return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_dir(void **state) {
        char cmd[PATH_MAX + 16];

        (void) state;
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
        return system(cmd) == 0 ? 0 : -1;
}

static void path_in(char *buf, size_t size, const char *name) {
        snprintf(buf, size, "%s/%s", tmpdir, name);
}

static void write_raw(const char *path, const char *data, mode_t mode) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

        assert_true(fd >= 0);
        assert_int_equal(write(fd, data, strlen(data)), (ssize_t) strlen(data));
        assert_int_equal(fchmod(fd, mode), 0);
        close(fd);
}

static void assert_content(const char *path, const char *want) {
        char buf[256];
        ssize_t n;
        int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

        assert_true(fd >= 0);
        n = read(fd, buf, sizeof buf);
        close(fd);
        assert_int_equal(n, (ssize_t) strlen(want));
        assert_memory_equal(buf, want, strlen(want));
}

/* Entries of tmpdir other than . and .. whose name starts with a dot: temp files. */
static int count_hidden(void) {
        DIR *d = opendir(tmpdir);
        struct dirent *de;
        int n = 0;

        assert_non_null(d);
        while ((de = readdir(d)))
                if (de->d_name[0] == '.' && strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
                        n++;
        closedir(d);
        return n;
}

static void test_new_file(void **state) {
        char path[PATH_BUF];
        struct stat st;

        (void) state;
        path_in(path, sizeof path, "new");
        assert_int_equal(sg_write_atomic(path, "hello\n", 6, NULL, ALL_SYNC), 0);
        assert_content(path, "hello\n");
        assert_int_equal(lstat(path, &st), 0);
        assert_true(S_ISREG(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0600);
        assert_int_equal(st.st_uid, geteuid());
        assert_int_equal(count_hidden(), 0);

        /* Empty content and no sync at all are fine too. */
        assert_int_equal(sg_write_atomic(path, NULL, 0, NULL, 0), 0);
        assert_content(path, "");
        assert_int_equal(count_hidden(), 0);
}

static void test_replace_keeps_like(void **state) {
        char path[PATH_BUF];
        struct stat like, st;

        (void) state;
        path_in(path, sizeof path, "shadow");
        write_raw(path, "old\n", 0640);
        assert_int_equal(stat(path, &like), 0);
        if (geteuid() == 0) {
                like.st_uid = 12345;
                like.st_gid = 54321;
        }
        assert_int_equal(sg_write_atomic(path, "new content\n", 12, &like, ALL_SYNC), 0);
        assert_content(path, "new content\n");
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0640);
        assert_int_equal(st.st_uid, like.st_uid);
        assert_int_equal(st.st_gid, like.st_gid);
        assert_int_equal(count_hidden(), 0);
}

/* A symlink at path is replaced by the file; its target is not written. */
static void test_symlink_replaced_not_followed(void **state) {
        char path[PATH_BUF], target[PATH_BUF];
        struct stat st;

        (void) state;
        path_in(path, sizeof path, "link");
        path_in(target, sizeof target, "target");
        write_raw(target, "keep\n", 0600);
        assert_int_equal(symlink(target, path), 0);
        assert_int_equal(sg_write_atomic(path, "mine\n", 5, NULL, ALL_SYNC), 0);
        assert_int_equal(lstat(path, &st), 0);
        assert_true(S_ISREG(st.st_mode));
        assert_content(path, "mine\n");
        assert_content(target, "keep\n");
}

static void test_noreplace(void **state) {
        char path[PATH_BUF], dangling[PATH_BUF], fresh[PATH_BUF];
        struct stat st;

        (void) state;
        path_in(path, sizeof path, "key");
        write_raw(path, "theirs\n", 0600);
        assert_int_equal(sg_write_atomic(path, "mine\n", 5, NULL, ALL_SYNC | SG_WRITE_NOREPLACE), -EEXIST);
        assert_content(path, "theirs\n");
        assert_int_equal(count_hidden(), 0);

        /* A dangling symlink counts as present and stays as it was. */
        path_in(dangling, sizeof dangling, "dangling");
        assert_int_equal(symlink("/nonexistent/secguard-test", dangling), 0);
        assert_int_equal(sg_write_atomic(dangling, "x", 1, NULL, SG_WRITE_NOREPLACE), -EEXIST);
        assert_int_equal(lstat(dangling, &st), 0);
        assert_true(S_ISLNK(st.st_mode));
        assert_int_equal(count_hidden(), 0);

        path_in(fresh, sizeof fresh, "fresh");
        assert_int_equal(sg_write_atomic(fresh, "mine\n", 5, NULL, ALL_SYNC | SG_WRITE_NOREPLACE), 0);
        assert_content(fresh, "mine\n");
}

static void test_bad_paths(void **state) {
        char path[PATH_BUF], name[NAME_MAX + 1];

        (void) state;
        assert_int_equal(sg_write_atomic(NULL, "x", 1, NULL, 0), -EINVAL);
        path_in(path, sizeof path, "x");
        assert_int_equal(sg_write_atomic(path, NULL, 1, NULL, 0), -EINVAL);
        path_in(path, sizeof path, "");
        assert_int_equal(sg_write_atomic(path, "x", 1, NULL, 0), -EINVAL); /* ends in '/' */
        path_in(path, sizeof path, "missing/file");
        assert_int_equal(sg_write_atomic(path, "x", 1, NULL, 0), -ENOENT);
        /* A name that fits but whose temp name would not. */
        memset(name, 'n', NAME_MAX - 4);
        name[NAME_MAX - 4] = '\0';
        path_in(path, sizeof path, name);
        assert_int_equal(sg_write_atomic(path, "x", 1, NULL, 0), -ENAMETOOLONG);
        /* The directory is a file: nothing is written anywhere. */
        path_in(path, sizeof path, "plain");
        write_raw(path, "plain\n", 0600);
        path_in(path, sizeof path, "plain/file");
        assert_int_equal(sg_write_atomic(path, "x", 1, NULL, 0), -ENOTDIR);
        assert_int_equal(count_hidden(), 0);
}

/* A path without a directory part is relative to the working directory. */
static void test_relative_path(void **state) {
        char cwd[PATH_MAX], path[PATH_BUF];

        (void) state;
        assert_non_null(getcwd(cwd, sizeof cwd));
        assert_int_equal(chdir(tmpdir), 0);
        assert_int_equal(sg_write_atomic("rel", "r\n", 2, NULL, ALL_SYNC), 0);
        assert_int_equal(chdir(cwd), 0);
        path_in(path, sizeof path, "rel");
        assert_content(path, "r\n");
}

static void test_fsync_dir(void **state) {
        char path[PATH_BUF];

        (void) state;
        assert_int_equal(sg_fsync_dir(tmpdir), 0);
        assert_int_equal(sg_fsync_dir(NULL), -EINVAL);
        path_in(path, sizeof path, "missing");
        assert_int_equal(sg_fsync_dir(path), -ENOENT);
        path_in(path, sizeof path, "file");
        write_raw(path, "f\n", 0600);
        assert_int_equal(sg_fsync_dir(path), -ENOTDIR);
        path_in(path, sizeof path, "dirlink");
        assert_int_equal(symlink(tmpdir, path), 0);
        assert_true(sg_fsync_dir(path) < 0); /* -ENOTDIR or -ELOOP: a symlink is not followed */
}

static void test_remove_stale_temps(void **state) {
        char path[PATH_BUF], p[PATH_BUF];
        static const char *const ours[] = { ".db.Ab3xYz", ".db.000000" };
        static const char *const others[] = { ".db.short", ".db.toolong1", ".other.Ab3xYz", "db.Ab3xYz" };
        struct stat st;

        (void) state;
        path_in(path, sizeof path, "db");
        write_raw(path, "live\n", 0600);
        for (size_t i = 0; i < sizeof ours / sizeof ours[0]; i++) {
                path_in(p, sizeof p, ours[i]);
                write_raw(p, "stale\n", 0600);
        }
        for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
                path_in(p, sizeof p, others[i]);
                write_raw(p, "other\n", 0600);
        }
        path_in(p, sizeof p, ".db.dir123");
        assert_int_equal(mkdir(p, 0700), 0); /* not a regular file: left alone */

        assert_int_equal(sg_remove_stale_temps(path), 2);
        for (size_t i = 0; i < sizeof ours / sizeof ours[0]; i++) {
                path_in(p, sizeof p, ours[i]);
                assert_int_equal(lstat(p, &st), -1);
        }
        for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
                path_in(p, sizeof p, others[i]);
                assert_int_equal(lstat(p, &st), 0);
        }
        path_in(p, sizeof p, ".db.dir123");
        assert_int_equal(lstat(p, &st), 0);
        assert_content(path, "live\n");
        assert_int_equal(sg_remove_stale_temps(path), 0);
}

static void test_check_own_dir(void **state) {
        char err[PATH_MAX + 256] = "", link[PATH_MAX + 16];

        (void) state;
        assert_int_equal(chmod(tmpdir, 0700), 0);
        assert_int_equal(sg_check_own_dir(tmpdir, 0700, err, sizeof err), 0);
        assert_int_equal(chmod(tmpdir, 0755), 0);
        assert_int_equal(sg_check_own_dir(tmpdir, 0755, err, sizeof err), 0);
        assert_int_equal(chmod(tmpdir, 0775), 0);
        assert_int_equal(sg_check_own_dir(tmpdir, 0755, err, sizeof err), -EPERM);
        assert_non_null(strstr(err, tmpdir));
        assert_non_null(strstr(err, "chmod 0755"));
        assert_int_equal(chmod(tmpdir, 0700), 0);
        if (geteuid() == 0) {
                assert_int_equal(chown(tmpdir, 65534, 65534), 0);
                assert_int_equal(sg_check_own_dir(tmpdir, 0700, err, sizeof err), -EPERM);
                assert_non_null(strstr(err, "chown 0"));
                assert_int_equal(chown(tmpdir, 0, 0), 0);
        }
        path_in(link, sizeof link, "link");
        assert_int_equal(symlink(tmpdir, link), 0);
        assert_int_equal(sg_check_own_dir(link, 0700, err, sizeof err), -ENOTDIR);
        assert_non_null(strstr(err, "symbolic link"));
        path_in(link, sizeof link, "absent");
        assert_int_equal(sg_check_own_dir(link, 0700, err, sizeof err), -ENOENT);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_new_file, setup_dir, teardown_dir),
                cmocka_unit_test_setup_teardown(test_replace_keeps_like, setup_dir, teardown_dir),
                cmocka_unit_test_setup_teardown(test_symlink_replaced_not_followed, setup_dir, teardown_dir),
                cmocka_unit_test_setup_teardown(test_noreplace, setup_dir, teardown_dir),
                cmocka_unit_test_setup_teardown(test_bad_paths, setup_dir, teardown_dir),
                cmocka_unit_test_setup_teardown(test_relative_path, setup_dir, teardown_dir),
                cmocka_unit_test_setup_teardown(test_fsync_dir, setup_dir, teardown_dir),
                cmocka_unit_test_setup_teardown(test_remove_stale_temps, setup_dir, teardown_dir),
                cmocka_unit_test_setup_teardown(test_check_own_dir, setup_dir, teardown_dir),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
