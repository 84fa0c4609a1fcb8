/* SPDX-License-Identifier: MIT */
/* shadow(5) parsing, lookup and atomic, lossless, concurrent-safe updates (temp files only). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shadow.h"

struct ctx {
        char dir[512];
        char path[600];
};

static int setup(void **state) {
        const char *base = getenv("SG_TEST_TMP");
        struct ctx *c = calloc(1, sizeof *c);

        if (!c)
                return -1;
        snprintf(c->dir, sizeof c->dir, "%s/test_shadow.XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp(c->dir)) {
                free(c);
                return -1;
        }
        snprintf(c->path, sizeof c->path, "%s/shadow", c->dir);
        *state = c;
        return 0;
}

static int teardown(void **state) {
        struct ctx *c = *state;
        DIR *d = opendir(c->dir);
        struct dirent *de;

        if (d) {
                while ((de = readdir(d))) {
                        char p[1200];
                        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                                continue;
                        snprintf(p, sizeof p, "%s/%s", c->dir, de->d_name);
                        unlink(p);
                }
                closedir(d);
        }
        rmdir(c->dir);
        free(c);
        return 0;
}

static void write_file(const char *path, const char *data, size_t len) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

        assert_true(fd >= 0);
        assert_int_equal(write(fd, data, len), (ssize_t) len);
        assert_int_equal(close(fd), 0);
}

static char *read_file(const char *path, size_t *ret_len) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        struct stat st;
        char *buf;

        assert_true(fd >= 0);
        assert_int_equal(fstat(fd, &st), 0);
        buf = malloc((size_t) st.st_size + 1);
        assert_non_null(buf);
        assert_int_equal(read(fd, buf, (size_t) st.st_size), st.st_size);
        buf[st.st_size] = '\0';
        close(fd);
        *ret_len = (size_t) st.st_size;
        return buf;
}

static size_t count_lines(const char *s, size_t len) {
        size_t n = 0;

        for (size_t i = 0; i < len; i++)
                n += s[i] == '\n';
        return n;
}

/* Names in dir other than the shadow file and our lock file (leftover temp files). */
static int count_strays(const struct ctx *c) {
        DIR *d = opendir(c->dir);
        struct dirent *de;
        int n = 0;

        assert_non_null(d);
        while ((de = readdir(d)))
                if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
                    strcmp(de->d_name, "shadow") && strcmp(de->d_name, "shadow.secguard.lock"))
                        n++;
        closedir(d);
        return n;
}

static int parse(const char *line, const char *user, struct sg_shadow_entry *e) {
        return sg_shadow_parse_line(line, strlen(line), user, e);
}

static void test_parse_valid(void **state) {
        struct sg_shadow_entry e;

        (void) state;
        assert_int_equal(parse("root:$6$abc$def:19000:0:99999:7:::", "root", &e), 1);
        assert_string_equal(e.hash, "$6$abc$def");
        assert_int_equal(e.last_change, 19000);
        assert_int_equal(e.min_days, 0);
        assert_int_equal(e.max_days, 99999);
        assert_int_equal(e.warn_days, 7);
        assert_int_equal(e.inactive_days, -1);
        assert_int_equal(e.expire, -1);

        assert_int_equal(parse("bob:!:1:2:3:4:5:6:reserved", "bob", &e), 1);
        assert_string_equal(e.hash, "!");
        assert_int_equal(e.inactive_days, 5);
        assert_int_equal(e.expire, 6);

        assert_int_equal(parse("daemon:*::::::::", "daemon", &e), -EINVAL); /* ten fields */
        assert_int_equal(parse("daemon::::::::", "daemon", &e), 1);         /* empty hash kept */
        assert_string_equal(e.hash, "");
        assert_int_equal(e.last_change, -1);
}

static void test_parse_other_user(void **state) {
        struct sg_shadow_entry e;

        (void) state;
        memset(&e, 0x5a, sizeof e);
        assert_int_equal(parse("root:$6$abc$def:19000:0:99999:7:::", "roo", &e), 0);
        assert_int_equal(parse("roo:$6$abc$def:19000:0:99999:7:::", "root", &e), 0);
        assert_int_equal(parse("rootx:$6$abc$def:19000:0:99999:7:::", "root", &e), 0);
        assert_int_equal(parse("Root:$6$abc$def:19000:0:99999:7:::", "root", &e), 0);
        assert_int_equal(e.last_change, 0x5a5a5a5a5a5a5a5aL); /* untouched */
        /* The length bounds the line; what follows is not part of it. */
        {
                static const char buf[] = "root:h:1:2:3:4:5:6:XYZ";
                assert_int_equal(sg_shadow_parse_line(buf, strlen("root:h:1:2:3:4:5:6:"), "root", &e), 1);
                assert_int_equal(sg_shadow_parse_line(buf, strlen("root:h:1:2:3:4:5:"), "root", &e), -EINVAL);
        }
}

static void test_parse_field_count(void **state) {
        struct sg_shadow_entry e;

        (void) state;
        assert_int_equal(parse("root:x:1:2:3:4:5", "root", &e), -EINVAL);     /* 7 fields */
        assert_int_equal(parse("root:x:1:2:3:4:5:6", "root", &e), -EINVAL);   /* 8 */
        assert_int_equal(parse("root:x:1:2:3:4:5:6:", "root", &e), 1);        /* 9 */
        assert_int_equal(parse("root:x:1:2:3:4:5:6::", "root", &e), -EINVAL); /* 10 */
        assert_int_equal(parse("root:x:1:2:3:4:5:6:7:8", "root", &e), -EINVAL);
        assert_int_equal(parse("root", "root", &e), -EINVAL);
        assert_int_equal(parse("", "root", &e), -EINVAL);
        assert_int_equal(parse("# comment", "root", &e), -EINVAL);
        assert_int_equal(parse(":x:1:2:3:4:5:6:", "root", &e), -EINVAL);     /* empty name */
        /* Bad arguments. */
        assert_int_equal(parse("root:x:1:2:3:4:5:6:", "", &e), -EINVAL);
        assert_int_equal(parse("root:x:1:2:3:4:5:6:", "ro:ot", &e), -EINVAL);
        assert_int_equal(sg_shadow_parse_line(NULL, 0, "root", &e), -EINVAL);
        assert_int_equal(sg_shadow_parse_line("root:x:1:2:3:4:5:6:", 19, NULL, &e), -EINVAL);
        assert_int_equal(sg_shadow_parse_line("root:x:1:2:3:4:5:6:", 19, "root", NULL), -EINVAL);
}

static void test_parse_numeric_junk(void **state) {
        static const char *const bad[] = {
                "root:x:19a00:0:99999:7:::",
                "root:x:-1:0:99999:7:::",
                "root:x:+1:0:99999:7:::",
                "root:x: 1:0:99999:7:::",
                "root:x:1 :0:99999:7:::",
                "root:x:1:0x10:99999:7:::",
                "root:x:1:0:99999:7:1.5::",
                "root:x:1:0:99999:7::99999999999999999999:",
                "root:x:99999999999999999999999999999999:0:99999:7:::",
                "root:x:1:0:99999:7\r:::",
        };
        struct sg_shadow_entry e;

        (void) state;
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
                if (parse(bad[i], "root", &e) != -EINVAL)
                        fail_msg("accepted '%s'", bad[i]);
        /* Another user's malformed line is malformed too (lookup decides to skip it). */
        assert_int_equal(parse("bob:x:junk:0:99999:7:::", "root", &e), -EINVAL);
        /* Leading zeros are plain decimal. */
        assert_int_equal(parse("root:x:007:0:99999:7:::", "root", &e), 1);
        assert_int_equal(e.last_change, 7);
}

static void test_parse_hash_bounds(void **state) {
        char line[SG_HASH_MAX + 64];
        char hash[SG_HASH_MAX + 1];
        struct sg_shadow_entry e;

        (void) state;
        memset(hash, 'h', SG_HASH_MAX - 1);
        hash[SG_HASH_MAX - 1] = '\0';
        snprintf(line, sizeof line, "root:%s:1::::::", hash);
        assert_int_equal(parse(line, "root", &e), 1);
        assert_int_equal(strlen(e.hash), SG_HASH_MAX - 1);
        memset(hash, 'h', SG_HASH_MAX);
        hash[SG_HASH_MAX] = '\0';
        snprintf(line, sizeof line, "root:%s:1::::::", hash);
        assert_int_equal(parse(line, "root", &e), -EINVAL);
        /* A NUL inside the line would truncate the hash for every C reader. */
        {
                static const char nul[] = "root:$6$a\0bc:1::::::";
                assert_int_equal(sg_shadow_parse_line(nul, sizeof nul - 1, "root", &e), -EINVAL);
        }
}

static const char sample[] =
        "root:$6$rootsalt$roothash:19000:0:99999:7:::\n"
        "# not a shadow line, kept anyway\n"
        "\n"
        "daemon:*:19000:0:99999:7:::\n"
        "broken:line\n"
        "bob:$y$j9T$bobsalt$bobhash:19001:0:99999:7:::\n"
        "badnum:x:abc:0:99999:7:::\n"
        "alice:!$6$alicesalt$alicehash:19002:1:2:3:4:5:";

static void test_lookup(void **state) {
        struct ctx *c = *state;
        struct sg_shadow_entry e;

        write_file(c->path, sample, sizeof sample - 1);
        assert_int_equal(sg_shadow_lookup(c->path, "root", &e), 0);
        assert_string_equal(e.hash, "$6$rootsalt$roothash");
        assert_int_equal(sg_shadow_lookup(c->path, "bob", &e), 0);
        assert_string_equal(e.hash, "$y$j9T$bobsalt$bobhash");
        assert_int_equal(e.last_change, 19001);
        assert_int_equal(sg_shadow_lookup(c->path, "alice", &e), 0); /* no trailing newline */
        assert_string_equal(e.hash, "!$6$alicesalt$alicehash");
        assert_int_equal(e.expire, 5);
        assert_int_equal(sg_shadow_lookup(c->path, "daemon", &e), 0);
        assert_int_equal(sg_shadow_lookup(c->path, "roo", &e), -ENOENT);
        assert_int_equal(sg_shadow_lookup(c->path, "nobody", &e), -ENOENT);
        assert_int_equal(sg_shadow_lookup(c->path, "broken", &e), -EINVAL);
        assert_int_equal(sg_shadow_lookup(c->path, "badnum", &e), -EINVAL);
        assert_int_equal(sg_shadow_lookup(c->path, "", &e), -EINVAL);
        {
                char missing[700];
                snprintf(missing, sizeof missing, "%s/nope", c->dir);
                assert_int_equal(sg_shadow_lookup(missing, "root", &e), -ENOENT);
                assert_int_equal(sg_shadow_lookup(c->dir, "root", &e), -EINVAL); /* a directory */
        }
}

static void test_lookup_long_lines(void **state) {
        struct ctx *c = *state;
        struct sg_shadow_entry e;
        size_t n = 6000, off = 0;
        char *buf = malloc(3 * n);

        assert_non_null(buf);
        /* Another user's 5000-byte line does not hide the users after it. */
        off += (size_t) sprintf(buf + off, "long:");
        memset(buf + off, 'x', 5000);
        off += 5000;
        off += (size_t) sprintf(buf + off, ":1::::::\nroot:$6$s$h:1::::::\nhuge:");
        memset(buf + off, 'y', 5000);
        off += 5000;
        off += (size_t) sprintf(buf + off, ":1::::::\n");
        write_file(c->path, buf, off);
        assert_int_equal(sg_shadow_lookup(c->path, "root", &e), 0);
        assert_string_equal(e.hash, "$6$s$h");
        assert_int_equal(sg_shadow_lookup(c->path, "long", &e), -EINVAL);
        assert_int_equal(sg_shadow_lookup(c->path, "huge", &e), -EINVAL);
        free(buf);
}

static void test_update_preserves_other_lines(void **state) {
        struct ctx *c = *state;
        struct sg_shadow_entry e;
        char *content, *expected, *longline;
        size_t len, explen;

        /* Odd lines around the target: comment, empty line, CRLF, a 5000-byte line, and a
         * last line without a newline. Every one must come back byte for byte. */
        longline = malloc(5100);
        assert_non_null(longline);
        strcpy(longline, "longuser:");
        memset(longline + 9, 'L', 5000);
        strcpy(longline + 5009, ":1::::::\n");
        content = malloc(16384);
        expected = malloc(16384);
        assert_non_null(content);
        assert_non_null(expected);
        snprintf(content, 16384,
                 "# comment line\n"
                 "\n"
                 "crlf:x:1::::::\r\n"
                 "%s"
                 "bob:$6$old$hash:19001:0:99999:7:::\n"
                 "bobby:$6$other$hash:19001:0:99999:7:::\n"
                 "tail:$6$t$t:1::::::", longline);
        write_file(c->path, content, strlen(content));

        assert_int_equal(sg_shadow_update(c->path, "bob", "$y$j9T$new$hash", NULL, false), 0);
        snprintf(expected, 16384,
                 "# comment line\n"
                 "\n"
                 "crlf:x:1::::::\r\n"
                 "%s"
                 "bob:$y$j9T$new$hash:19001:0:99999:7:::\n"
                 "bobby:$6$other$hash:19001:0:99999:7:::\n"
                 "tail:$6$t$t:1::::::", longline);
        free(content);
        content = read_file(c->path, &len);
        explen = strlen(expected);
        assert_int_equal(len, explen);
        assert_memory_equal(content, expected, len);
        free(content);

        /* The last line, without a trailing newline, with field 3 set to today. */
        assert_int_equal(sg_shadow_update(c->path, "tail", "$6$n$n", NULL, true), 0);
        {
                char today[64];
                long now = (long) (time(NULL) / 86400);
                char *p = strstr(expected, "tail:");
                assert_non_null(p);
                snprintf(today, sizeof today, "tail:$6$n$n:%ld::::::", now);
                strcpy(p, today);
        }
        content = read_file(c->path, &len);
        assert_int_equal(len, strlen(expected));
        assert_memory_equal(content, expected, len);
        assert_true(content[len - 1] != '\n');
        free(content);
        assert_int_equal(sg_shadow_lookup(c->path, "tail", &e), 0);
        assert_string_equal(e.hash, "$6$n$n");
        assert_int_equal(e.last_change, (long) (time(NULL) / 86400));

        /* Unknown user and malformed user lines change nothing. */
        assert_int_equal(sg_shadow_update(c->path, "bo", "$6$x$x", NULL, false), -ENOENT);
        assert_int_equal(sg_shadow_update(c->path, "longuser", "$6$x$x", NULL, false), -EINVAL);
        content = read_file(c->path, &len);
        assert_memory_equal(content, expected, len);
        free(content);
        assert_int_equal(count_strays(c), 0);
        free(expected);
        free(longline);
}

static void test_update_rejects_bad_input(void **state) {
        struct ctx *c = *state;
        static const char data[] = "root:$6$a$b:1::::::\n";
        char *content;
        size_t len;

        write_file(c->path, data, sizeof data - 1);
        assert_int_equal(sg_shadow_update(c->path, "root", "", NULL, false), -EINVAL);
        assert_int_equal(sg_shadow_update(c->path, "root", "a:b", NULL, false), -EINVAL);
        assert_int_equal(sg_shadow_update(c->path, "root", "a\nevil::0:::::", NULL, false), -EINVAL);
        assert_int_equal(sg_shadow_update(c->path, "root", NULL, NULL, false), -EINVAL);
        assert_int_equal(sg_shadow_update(c->path, "ro:ot", "$6$x$x", NULL, false), -EINVAL);
        assert_int_equal(sg_shadow_update(c->path, "", "$6$x$x", NULL, false), -EINVAL);
        content = read_file(c->path, &len);
        assert_int_equal(len, sizeof data - 1);
        assert_memory_equal(content, data, len);
        free(content);
}

static void test_update_owner_mode(void **state) {
        struct ctx *c = *state;
        static const char data[] = "a:$6$a$a:1::::::\nb:$6$b$b:1::::::\n";
        struct stat before, after;
        uid_t uid = geteuid();
        gid_t gid = getegid();

        write_file(c->path, data, sizeof data - 1);
        assert_int_equal(chmod(c->path, 0640), 0);
        if (geteuid() == 0) {
                uid = 1234;
                gid = 42;
                assert_int_equal(chown(c->path, uid, gid), 0);
        } else {
                print_message("not root: owner preserved only as our own uid/gid\n");
        }
        assert_int_equal(stat(c->path, &before), 0);
        assert_int_equal(sg_shadow_update(c->path, "b", "$y$new", NULL, false), 0);
        assert_int_equal(stat(c->path, &after), 0);
        assert_int_equal(after.st_mode & 07777, 0640);
        assert_int_equal(after.st_uid, uid);
        assert_int_equal(after.st_gid, gid);
        assert_true(after.st_ino != before.st_ino); /* replaced by rename, not rewritten */
        assert_int_equal(count_strays(c), 0);
}

static void test_update_stale(void **state) {
        struct ctx *c = *state;
        static const char data[] = "a:$6$a$a:1::::::\nb:$6$b$b:1::::::\n";
        struct sg_shadow_entry e;
        struct stat before, after;
        char *content;
        size_t len;

        write_file(c->path, data, sizeof data - 1);
        assert_int_equal(stat(c->path, &before), 0);
        assert_int_equal(sg_shadow_update(c->path, "b", "$y$new", "$6$b$", false), -ESTALE);
        assert_int_equal(sg_shadow_update(c->path, "b", "$y$new", "$6$b$bb", false), -ESTALE);
        assert_int_equal(sg_shadow_update(c->path, "b", "$y$new", "$6$a$a", false), -ESTALE);
        content = read_file(c->path, &len);
        assert_int_equal(len, sizeof data - 1);
        assert_memory_equal(content, data, len);
        free(content);
        assert_int_equal(stat(c->path, &after), 0);
        assert_true(after.st_ino == before.st_ino);
        assert_int_equal(count_strays(c), 0);

        assert_int_equal(sg_shadow_update(c->path, "b", "$y$new", "$6$b$b", false), 0);
        assert_int_equal(sg_shadow_lookup(c->path, "b", &e), 0);
        assert_string_equal(e.hash, "$y$new");
}

static void test_symlink_refused(void **state) {
        struct ctx *c = *state;
        static const char data[] = "root:$6$a$b:1::::::\n";
        struct sg_shadow_entry e;
        char target[700], *content;
        size_t len;
        struct stat st;

        snprintf(target, sizeof target, "%s/real", c->dir);
        write_file(target, data, sizeof data - 1);
        assert_int_equal(symlink(target, c->path), 0);
        assert_int_equal(sg_shadow_lookup(c->path, "root", &e), -ELOOP);
        assert_int_equal(sg_shadow_update(c->path, "root", "$6$x$x", NULL, false), -ELOOP);
        assert_int_equal(lstat(c->path, &st), 0);
        assert_true(S_ISLNK(st.st_mode));
        content = read_file(target, &len);
        assert_memory_equal(content, data, len);
        free(content);
        unlink(c->path);

        /* A symlink planted as the lock file is refused as well. */
        {
                char lock[700];
                write_file(c->path, data, sizeof data - 1);
                snprintf(lock, sizeof lock, "%s.secguard.lock", c->path);
                unlink(lock); /* left by the attempt above */
                assert_int_equal(symlink(target, lock), 0);
                assert_int_equal(sg_shadow_update(c->path, "root", "$6$x$x", NULL, false), -ELOOP);
                unlink(lock);
        }
        unlink(target);
}

/* Someone holds the lock: the update gives up after ~5 s instead of hanging a login. */
static void test_lock_timeout(void **state) {
        struct ctx *c = *state;
        static const char data[] = "root:$6$a$b:1::::::\n";
        struct timespec t0, t1;
        char lock[700];
        double elapsed;
        int fd;

        write_file(c->path, data, sizeof data - 1);
        snprintf(lock, sizeof lock, "%s.secguard.lock", c->path);
        fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(flock(fd, LOCK_EX), 0);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        assert_int_equal(sg_shadow_update(c->path, "root", "$6$x$x", NULL, false), -ETIMEDOUT);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        elapsed = (double) (t1.tv_sec - t0.tv_sec) + (double) (t1.tv_nsec - t0.tv_nsec) / 1e9;
        assert_true(elapsed > 4.0 && elapsed < 8.0);
        close(fd);
        assert_int_equal(sg_shadow_update(c->path, "root", "$6$x$x", NULL, false), 0);
}

#define ROUNDS 50

static void updater(const char *path, const char *user) {
        char prev[64], next[64];

        snprintf(prev, sizeof prev, "$6$%s$start", user);
        for (int i = 0; i < ROUNDS; i++) {
                snprintf(next, sizeof next, "$6$%s$%d", user, i);
                /* expect_old_hash turns any lost update into a failure right away. */
                if (sg_shadow_update(path, user, next, prev, false) != 0)
                        _exit(1);
                memcpy(prev, next, sizeof prev);
        }
        _exit(0);
}

static void test_concurrent_updates(void **state) {
        struct ctx *c = *state;
        static const char data[] =
                "first:x:1::::::\n"
                "a:$6$a$start:1::::::\n"
                "middle:x:1::::::\n"
                "b:$6$b$start:1::::::\n"
                "last:x:1::::::\n";
        struct sg_shadow_entry e;
        pid_t pa, pb;
        int status;
        char *content;
        size_t len;

        write_file(c->path, data, sizeof data - 1);
        pa = fork();
        assert_true(pa >= 0);
        if (pa == 0)
                updater(c->path, "a");
        pb = fork();
        assert_true(pb >= 0);
        if (pb == 0)
                updater(c->path, "b");
        assert_int_equal(waitpid(pa, &status, 0), pa);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        assert_int_equal(waitpid(pb, &status, 0), pb);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

        assert_int_equal(sg_shadow_lookup(c->path, "a", &e), 0);
        assert_string_equal(e.hash, "$6$a$49");
        assert_int_equal(sg_shadow_lookup(c->path, "b", &e), 0);
        assert_string_equal(e.hash, "$6$b$49");
        content = read_file(c->path, &len);
        assert_int_equal(count_lines(content, len), 5);
        assert_string_equal(content,
                            "first:x:1::::::\n"
                            "a:$6$a$49:1::::::\n"
                            "middle:x:1::::::\n"
                            "b:$6$b$49:1::::::\n"
                            "last:x:1::::::\n");
        free(content);
        assert_int_equal(count_strays(c), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_valid),
                cmocka_unit_test(test_parse_other_user),
                cmocka_unit_test(test_parse_field_count),
                cmocka_unit_test(test_parse_numeric_junk),
                cmocka_unit_test(test_parse_hash_bounds),
                cmocka_unit_test_setup_teardown(test_lookup, setup, teardown),
                cmocka_unit_test_setup_teardown(test_lookup_long_lines, setup, teardown),
                cmocka_unit_test_setup_teardown(test_update_preserves_other_lines, setup, teardown),
                cmocka_unit_test_setup_teardown(test_update_rejects_bad_input, setup, teardown),
                cmocka_unit_test_setup_teardown(test_update_owner_mode, setup, teardown),
                cmocka_unit_test_setup_teardown(test_update_stale, setup, teardown),
                cmocka_unit_test_setup_teardown(test_symlink_refused, setup, teardown),
                cmocka_unit_test_setup_teardown(test_lock_timeout, setup, teardown),
                cmocka_unit_test_setup_teardown(test_concurrent_updates, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
