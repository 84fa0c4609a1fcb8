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
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "shadowfile.h"

struct ctx {
        char dir[512];
        char path[600];
};

static int setup_in(void **state, const char *base) {
        struct ctx *c = calloc(1, sizeof *c);

        if (!c)
                return -1;
        snprintf(c->dir, sizeof c->dir, "%s/test_shadow.XXXXXX", base);
        if (!mkdtemp(c->dir)) {
                free(c);
                return -1;
        }
        snprintf(c->path, sizeof c->path, "%s/shadow", c->dir);
        *state = c;
        return 0;
}

static int setup(void **state) {
        const char *base = getenv("SG_TEST_TMP");

        return setup_in(state, base && *base ? base : "/tmp");
}

/* Whether files in dir take user.* extended attributes. */
static bool takes_user_xattrs(const char *dir) {
        char probe[600];
        bool ok;
        int fd;

        snprintf(probe, sizeof probe, "%s/.xattr-probe.XXXXXX", dir);
        fd = mkstemp(probe);
        if (fd < 0)
                return false;
        ok = fsetxattr(fd, "user.probe", "1", 1, 0) == 0;
        close(fd);
        unlink(probe);
        return ok;
}

/* setup in the first of the test temp dir, /dev/shm, /var/tmp and /tmp whose file system
 * takes user.* xattrs; *state stays NULL (the test skips) when none does. */
static int setup_xattr(void **state) {
        const char *env = getenv("SG_TEST_TMP");
        const char *bases[] = { env && *env ? env : "/tmp", "/dev/shm", "/var/tmp", "/tmp" };

        for (size_t i = 0; i < sizeof bases / sizeof bases[0]; i++)
                if (takes_user_xattrs(bases[i]))
                        return setup_in(state, bases[i]);
        *state = NULL;
        return 0;
}

static int teardown(void **state) {
        struct ctx *c = *state;
        struct dirent *de;
        DIR *d;

        if (!c)
                return 0;
        d = opendir(c->dir);
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

/* ---- The stand-in hash (sg_shadow_find) ---- */

static const struct sg_hash_caps caps = {
        .argon2_memlimit = 256ULL << 20,
        .argon2_opslimit = 16,
        .argon2_threads = 4,
        .bcrypt_cost = 14,
        .yescrypt_n_log2 = 18,
        .sha_rounds = 1000000,
};

/* A well-formed sha512crypt string (nothing is computed here), distinct per i. */
static void fake_sha(int i, char *out, size_t size) {
        char body[87];

        memset(body, 'a' + i % 26, 86);
        body[86] = '\0';
        snprintf(out, size, "$6$salt%03d$%s", i, body);
}

/* The documented choice, computed here on its own: lowest crypto_shorthash(user || 0 ||
 * name) under the module's fixed key among the usable (name, hash) pairs. */
static const char *expected_standin(const char *user, const char *const *names,
                                    const char *const *hashes, size_t n) {
        static const unsigned char fixed[crypto_shorthash_KEYBYTES] = "secguard-standin";
        unsigned char best[crypto_shorthash_BYTES], score[crypto_shorthash_BYTES], key[crypto_shorthash_KEYBYTES];
        const char *pick = "";

        /* The documented order: shorthash(name) under generichash(user) keyed by the fixed key. */
        crypto_generichash(key, sizeof key, (const unsigned char *) user, strlen(user), fixed, sizeof fixed);
        for (size_t i = 0; i < n; i++) {
                if (sg_hash_usable(hashes[i], &caps) < 0)
                        continue;
                crypto_shorthash(score, (const unsigned char *) names[i], strlen(names[i]), key);
                if (!*pick || memcmp(score, best, sizeof score) < 0) {
                        memcpy(best, score, sizeof score);
                        pick = hashes[i];
                }
        }
        return pick;
}

#define USABLE 8

static void test_standin_choice(void **state) {
        struct ctx *c = *state;
        static char usable[USABLE + 4][SG_HASH_MAX];
        char names_buf[USABLE + 4][16], over_caps[SG_HASH_MAX], *content;
        const char *names[USABLE + 4], *hashes[USABLE + 4];
        const char *unusable =
                "locked:!$6$salt$xx:1::::::\n"
                "star:*:1::::::\n"
                "des:abJnggxhB/yWI:1::::::\n"
                "short:$6$salt$tooshort:1::::::\n"
                "badnum:$6$salt999$aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:x::::::\n"
                "argon4g:$argon2id$v=19$m=4194304,t=3,p=1$c29tZXNhbHRzb21lc2FsdA$zVMsI3Ecw6SWfZHL8vhC0yKAN1IkIGcPXj9kcY2RBdw:1::::::\n";
        struct sg_shadow_match *m = malloc(sizeof *m), *m2 = malloc(sizeof *m2);
        size_t cap = 16384, off = 0, distinct = 0;
        char seen[USABLE][SG_HASH_MAX];

        (void) state;
        assert_non_null(m);
        assert_non_null(m2);
        assert_int_equal(sodium_init() >= 0, 1);
        content = malloc(cap);
        assert_non_null(content);
        /* Unusable entries first and last, usable ones in between. */
        off += (size_t) snprintf(content + off, cap - off, "%s", unusable);
        for (int i = 0; i < USABLE; i++) {
                snprintf(names_buf[i], sizeof names_buf[i], "user%d", i);
                fake_sha(i, usable[i], sizeof usable[i]);
                names[i] = names_buf[i];
                hashes[i] = usable[i];
                off += (size_t) snprintf(content + off, cap - off, "%s:%s:1::::::\n", names[i], hashes[i]);
        }
        /* Above the sha_rounds cap: usable without caps, never with them. */
        snprintf(over_caps, sizeof over_caps, "$6$rounds=5000000$salt$%086d", 0);
        memset(strrchr(over_caps, '$') + 1, 'b', 86);
        off += (size_t) snprintf(content + off, cap - off, "slow:%s:1::::::\n%s", over_caps, unusable);
        write_file(c->path, content, off);

        for (int k = 0; k < 64; k++) {
                char user[32];
                const char *want;
                bool known;

                snprintf(user, sizeof user, k < 60 ? "ghost%d" : "user%d", k < 60 ? k : k - 60);
                known = k >= 60;
                assert_int_equal(sg_shadow_find(c->path, user, &caps, m), 0);
                assert_int_equal(m->user, known ? 0 : -ENOENT);
                /* The lowest score among usable entries, whole file scanned even for a user
                 * found on an early line. */
                want = expected_standin(user, names, hashes, USABLE);
                assert_string_equal(m->standin, want);
                assert_int_equal(sg_hash_usable(m->standin, &caps), 0);
                /* Deterministic per name. */
                assert_int_equal(sg_shadow_find(c->path, user, &caps, m2), 0);
                assert_string_equal(m2->standin, m->standin);
                if (!known) {
                        size_t j;
                        for (j = 0; j < distinct; j++)
                                if (strcmp(seen[j], m->standin) == 0)
                                        break;
                        if (j == distinct)
                                strcpy(seen[distinct++], m->standin);
                }
        }
        /* Spread across names: 60 names over 8 entries reach most of them. */
        assert_true(distinct >= 4);
        /* Unusable users' own lookups still carry a stand-in. */
        assert_int_equal(sg_shadow_find(c->path, "locked", &caps, m), 0);
        assert_int_equal(m->user, 0);
        assert_true(m->standin[0] != '\0');
        assert_int_equal(sg_shadow_find(c->path, "badnum", &caps, m), 0);
        assert_int_equal(m->user, -EINVAL);
        assert_true(m->standin[0] != '\0');

        /* Without caps the over-cap hash competes too: for some name it wins. */
        {
                bool won = false;
                for (int k = 0; k < 200 && !won; k++) {
                        char user[32];
                        snprintf(user, sizeof user, "ghost%d", k);
                        assert_int_equal(sg_shadow_find(c->path, user, NULL, m), 0);
                        won = strcmp(m->standin, over_caps) == 0;
                        assert_int_equal(sg_shadow_find(c->path, user, &caps, m), 0);
                        assert_string_not_equal(m->standin, over_caps);
                }
                assert_true(won);
        }

        /* Stable when users are added: a name keeps its stand-in unless a new entry wins. */
        {
                char before[60][SG_HASH_MAX];
                size_t off2 = off;

                for (int k = 0; k < 60; k++) {
                        char user[32];
                        snprintf(user, sizeof user, "ghost%d", k);
                        assert_int_equal(sg_shadow_find(c->path, user, &caps, m), 0);
                        strcpy(before[k], m->standin);
                }
                for (int i = USABLE; i < USABLE + 4; i++) {
                        snprintf(names_buf[i], sizeof names_buf[i], "new%d", i);
                        fake_sha(i, usable[i], sizeof usable[i]);
                        names[i] = names_buf[i];
                        hashes[i] = usable[i];
                        off2 += (size_t) snprintf(content + off2, cap - off2, "%s:%s:1::::::\n", names[i], hashes[i]);
                }
                write_file(c->path, content, off2);
                for (int k = 0; k < 60; k++) {
                        char user[32];
                        bool is_new = false;

                        snprintf(user, sizeof user, "ghost%d", k);
                        assert_int_equal(sg_shadow_find(c->path, user, &caps, m), 0);
                        assert_string_equal(m->standin, expected_standin(user, names, hashes, USABLE + 4));
                        for (int i = USABLE; i < USABLE + 4; i++)
                                is_new |= strcmp(m->standin, usable[i]) == 0;
                        assert_true(is_new || strcmp(m->standin, before[k]) == 0);
                }
        }

        /* No usable entry at all: no stand-in (the module falls back to its dummy). */
        write_file(c->path, unusable, strlen(unusable));
        assert_int_equal(sg_shadow_find(c->path, "ghost1", &caps, m), 0);
        assert_int_equal(m->user, -ENOENT);
        assert_string_equal(m->standin, "");
        assert_int_equal(sg_shadow_find(c->path, "locked", &caps, m), 0);
        assert_int_equal(m->user, 0);
        assert_string_equal(m->standin, "");
        /* I/O errors and bad arguments leave nothing behind. */
        assert_int_equal(sg_shadow_find(c->dir, "ghost1", &caps, m), -EINVAL);
        assert_int_equal(sg_shadow_find(c->path, "", &caps, m), -EINVAL);
        assert_int_equal(sg_shadow_find(c->path, "a:b", &caps, m), -EINVAL);
        free(content);
        free(m);
        free(m2);
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

/* fsetxattr for the whole program (the static libraries under test call this one): the name
 * in refused_xattr fails with refused_errno, as on a file system or policy that refuses it. */
static const char *refused_xattr;
static int refused_errno;

int fsetxattr(int fd, const char *name, const void *value, size_t size, int flags) {
        if (refused_xattr && strcmp(name, refused_xattr) == 0) {
                errno = refused_errno;
                return -1;
        }
        return (int) syscall(SYS_fsetxattr, fd, name, value, size, flags);
}

/* An access ACL for mode 0640 plus user 1000 read (the kernel's posix_acl_xattr format:
 * version 2, then tag, perm, id, little-endian). */
static const unsigned char acl_0640_u1000[] = {
        0x02, 0, 0, 0,                                /* version */
        0x01, 0, 0x06, 0, 0xff, 0xff, 0xff, 0xff,     /* user::rw- */
        0x02, 0, 0x04, 0, 0xe8, 0x03, 0, 0,           /* user:1000:r-- */
        0x04, 0, 0x04, 0, 0xff, 0xff, 0xff, 0xff,     /* group::r-- */
        0x10, 0, 0x04, 0, 0xff, 0xff, 0xff, 0xff,     /* mask::r-- */
        0x20, 0, 0x00, 0, 0xff, 0xff, 0xff, 0xff,     /* other::--- */
};
static const char selinux_label[] = "system_u:object_r:shadow_t:s0";

struct xattr_case {
        const char *name;
        const void *value;
        size_t size;
        bool set; /* set on the test file (an optional one may be refused) */
};

static void put_xattr(const char *path, struct xattr_case *x, bool optional) {
        int r = setxattr(path, x->name, x->value, x->size, 0);

        if (r < 0 && optional) {
                print_message("not testing %s here: %s\n", x->name, strerror(errno));
                return;
        }
        assert_int_equal(r, 0);
        x->set = true;
}

static void assert_xattr(const char *path, const struct xattr_case *x) {
        char buf[512];
        ssize_t n = getxattr(path, x->name, buf, sizeof buf);

        if (n < 0)
                fail_msg("%s lost: %s", x->name, strerror(errno));
        assert_int_equal((size_t) n, x->size);
        assert_memory_equal(buf, x->value, x->size);
}

static struct ctx *xattr_ctx(void **state) {
        if (!*state) {
                print_message("skipped: no file system here takes user.* xattrs "
                              "(tried the test temp dir, /dev/shm, /var/tmp, /tmp)\n");
                skip();
        }
        return *state;
}

/* The update keeps every extended attribute: user.* ones, an ACL and (as root, who may set
 * it without SELinux) the SELinux label, each byte for byte on the new inode. */
static void test_update_keeps_xattrs(void **state) {
        struct ctx *c = xattr_ctx(state);
        static const char data[] = "a:$6$a$a:1::::::\nb:$6$b$b:1::::::\n";
        unsigned char big[300];
        struct xattr_case xs[] = {
                { "user.one", "1", 1, false },
                { "user.big", big, sizeof big, false },
                { "system.posix_acl_access", acl_0640_u1000, sizeof acl_0640_u1000, false },
                { "security.selinux", selinux_label, sizeof selinux_label, false },
        };
        struct sg_shadow_entry e;
        struct stat before, after;

        for (size_t i = 0; i < sizeof big; i++)
                big[i] = (unsigned char) (i * 7);
        write_file(c->path, data, sizeof data - 1);
        assert_int_equal(chmod(c->path, 0640), 0);
        put_xattr(c->path, &xs[0], false);
        put_xattr(c->path, &xs[1], false);
        put_xattr(c->path, &xs[2], true);
        if (geteuid() == 0)
                put_xattr(c->path, &xs[3], true);
        else
                print_message("not root: security.selinux not tested\n");
        assert_int_equal(stat(c->path, &before), 0);

        assert_int_equal(sg_shadow_update(c->path, "b", "$y$new", NULL, false), 0);
        assert_int_equal(stat(c->path, &after), 0);
        assert_true(after.st_ino != before.st_ino);
        assert_int_equal(after.st_mode & 07777, 0640);
        for (size_t i = 0; i < sizeof xs / sizeof xs[0]; i++)
                if (xs[i].set)
                        assert_xattr(c->path, &xs[i]);
        assert_int_equal(sg_shadow_lookup(c->path, "b", &e), 0);
        assert_string_equal(e.hash, "$y$new");
        assert_int_equal(count_strays(c), 0);
}

/* A SELinux label that cannot be carried over fails the update: shadow is never left
 * unlabeled. The old file stays as it was. */
static void test_update_needs_the_selinux_label(void **state) {
        struct ctx *c = xattr_ctx(state);
        static const char data[] = "a:$6$a$a:1::::::\n";
        struct xattr_case label = { "security.selinux", selinux_label, sizeof selinux_label, false };
        struct stat before, after;
        char *content;
        size_t len;

        if (geteuid() != 0) {
                print_message("skipped: only root may set security.selinux without SELinux\n");
                skip();
        }
        write_file(c->path, data, sizeof data - 1);
        put_xattr(c->path, &label, false);
        assert_int_equal(stat(c->path, &before), 0);
        refused_xattr = "security.selinux";
        refused_errno = ENOTSUP;
        assert_int_equal(sg_shadow_update(c->path, "a", "$y$new", NULL, false), -ENOTSUP);
        refused_xattr = NULL;
        assert_int_equal(stat(c->path, &after), 0);
        assert_true(after.st_ino == before.st_ino);
        content = read_file(c->path, &len);
        assert_int_equal(len, sizeof data - 1);
        assert_memory_equal(content, data, len);
        free(content);
        assert_xattr(c->path, &label);
        assert_int_equal(count_strays(c), 0);
}

/* Another attribute that the file system refuses (ENOTSUP) is left behind and counted; any
 * other failure to set one fails the update. */
static void test_update_skips_unsupported_xattrs(void **state) {
        struct ctx *c = xattr_ctx(state);
        static const char data[] = "a:$6$a$a:1::::::\n";
        struct xattr_case kept = { "user.kept", "k", 1, false }, dropped = { "user.dropped", "d", 1, false };
        struct sg_shadow_entry e;
        char buf[8];

        write_file(c->path, data, sizeof data - 1);
        put_xattr(c->path, &kept, false);
        put_xattr(c->path, &dropped, false);
        refused_xattr = "user.dropped";
        refused_errno = ENOTSUP;
        assert_int_equal(sg_shadow_update(c->path, "a", "$y$one", NULL, false), 1);
        assert_xattr(c->path, &kept);
        assert_int_equal(getxattr(c->path, "user.dropped", buf, sizeof buf), -1);
        assert_int_equal(sg_shadow_lookup(c->path, "a", &e), 0);
        assert_string_equal(e.hash, "$y$one");

        put_xattr(c->path, &dropped, false);
        refused_errno = EIO;
        assert_int_equal(sg_shadow_update(c->path, "a", "$y$two", NULL, false), -EIO);
        refused_xattr = NULL;
        assert_int_equal(sg_shadow_lookup(c->path, "a", &e), 0);
        assert_string_equal(e.hash, "$y$one");
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
                cmocka_unit_test_setup_teardown(test_standin_choice, setup, teardown),
                cmocka_unit_test_setup_teardown(test_update_preserves_other_lines, setup, teardown),
                cmocka_unit_test_setup_teardown(test_update_rejects_bad_input, setup, teardown),
                cmocka_unit_test_setup_teardown(test_update_owner_mode, setup, teardown),
                cmocka_unit_test_setup_teardown(test_update_stale, setup, teardown),
                cmocka_unit_test_setup_teardown(test_symlink_refused, setup, teardown),
                cmocka_unit_test_setup_teardown(test_lock_timeout, setup, teardown),
                cmocka_unit_test_setup_teardown(test_concurrent_updates, setup, teardown),
                cmocka_unit_test_setup_teardown(test_update_keeps_xattrs, setup_xattr, teardown),
                cmocka_unit_test_setup_teardown(test_update_needs_the_selinux_label, setup_xattr, teardown),
                cmocka_unit_test_setup_teardown(test_update_skips_unsupported_xattrs, setup_xattr, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
