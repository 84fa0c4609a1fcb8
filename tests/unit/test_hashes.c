/* SPDX-License-Identifier: MIT */
/* Hash recognition, cost parsing, caps, verification, dummy verification and creation. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <crypt.h>
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "hashes.h"

#define PW "correct horse battery staple"
#define MiB (1024ULL * 1024)

static const struct sg_hash_caps default_caps = {
        .argon2_memlimit = 256 * MiB,
        .argon2_opslimit = 16,
        .argon2_threads = 4,
        .bcrypt_cost = 14,
        .yescrypt_n_log2 = 18,
        .sha_rounds = 1000000,
};

/* Small argon2 cost so the suite stays fast. */
static const struct sg_hash_pref small_pref = { .opslimit = 1, .memlimit = 8 * MiB };

struct fixture {
        enum sg_scheme scheme;
        char hash[SG_HASH_MAX];
};

static struct fixture fixtures[6];

static void xcrypt_hash(const char *prefix, unsigned long count, const char *pw, char *out) {
        char setting[CRYPT_GENSALT_OUTPUT_SIZE];
        struct crypt_data *data = calloc(1, sizeof *data);
        const char *h;

        assert_non_null(data);
        assert_non_null(crypt_gensalt_rn(prefix, count, NULL, 0, setting, sizeof setting));
        h = crypt_rn(pw, setting, data, sizeof *data);
        assert_non_null(h);
        assert_true(h[0] != '*');
        assert_true(strlen(h) < SG_HASH_MAX);
        strcpy(out, h);
        free(data);
}

static int setup_fixtures(void **state) {
        (void) state;
        if (sodium_init() < 0)
                return -1;
        fixtures[0].scheme = SG_SCHEME_ARGON2ID;
        if (crypto_pwhash_str(fixtures[0].hash, PW, strlen(PW), small_pref.opslimit, small_pref.memlimit) != 0)
                return -1;
        fixtures[1].scheme = SG_SCHEME_ARGON2I;
        if (crypto_pwhash_argon2i_str(fixtures[1].hash, PW, strlen(PW), 3, 8 * MiB) != 0)
                return -1;
        fixtures[2].scheme = SG_SCHEME_BCRYPT;
        xcrypt_hash("$2b$", 4, PW, fixtures[2].hash);
        fixtures[3].scheme = SG_SCHEME_YESCRYPT;
        xcrypt_hash("$y$", 0, PW, fixtures[3].hash);
        fixtures[4].scheme = SG_SCHEME_SHA512CRYPT;
        xcrypt_hash("$6$", 0, PW, fixtures[4].hash);
        fixtures[5].scheme = SG_SCHEME_SHA256CRYPT;
        xcrypt_hash("$5$", 0, PW, fixtures[5].hash);
        return 0;
}

static double now_sec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static void test_scheme_detection(void **state) {
        char long_hash[SG_HASH_MAX + 8];

        (void) state;
        for (size_t i = 0; i < 6; i++)
                assert_int_equal(sg_hash_scheme(fixtures[i].hash), fixtures[i].scheme);
        assert_int_equal(sg_hash_scheme("$2y$04$abc"), SG_SCHEME_BCRYPT);
        assert_int_equal(sg_hash_scheme("$2a$04$abc"), SG_SCHEME_BCRYPT);
        assert_int_equal(sg_hash_scheme("$2x$04$abc"), SG_SCHEME_UNKNOWN);
        assert_int_equal(sg_hash_scheme("$argon2d$v=19$m=8,t=1,p=1$a$b"), SG_SCHEME_UNKNOWN);
        assert_int_equal(sg_hash_scheme(""), SG_SCHEME_NONE);
        assert_int_equal(sg_hash_scheme(NULL), SG_SCHEME_NONE);
        assert_int_equal(sg_hash_scheme("*"), SG_SCHEME_NONE);
        assert_int_equal(sg_hash_scheme("!"), SG_SCHEME_NONE);
        assert_int_equal(sg_hash_scheme("!!"), SG_SCHEME_NONE);
        assert_int_equal(sg_hash_scheme("*LK*"), SG_SCHEME_NONE);
        assert_int_equal(sg_hash_scheme("!$6$salt$hash"), SG_SCHEME_NONE);
        assert_int_equal(sg_hash_scheme("$1$abc$def"), SG_SCHEME_UNKNOWN);
        assert_int_equal(sg_hash_scheme("abJnggxhB/yWI"), SG_SCHEME_UNKNOWN);
        assert_int_equal(sg_hash_scheme("x"), SG_SCHEME_UNKNOWN);
        /* Over SG_HASH_MAX-1 characters: not a hash we handle, whatever the prefix. */
        memset(long_hash, 'a', sizeof long_hash - 1);
        long_hash[sizeof long_hash - 1] = '\0';
        memcpy(long_hash, "$6$", 3);
        assert_int_equal(sg_hash_scheme(long_hash), SG_SCHEME_UNKNOWN);
        long_hash[SG_HASH_MAX - 1] = '\0';
        assert_int_equal(sg_hash_scheme(long_hash), SG_SCHEME_SHA512CRYPT);
}

static void test_scheme_names(void **state) {
        static const char *const names[] = { "argon2id", "argon2i", "bcrypt", "yescrypt",
                                             "sha512crypt", "sha256crypt", "none", "unknown" };

        (void) state;
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
                assert_string_equal(sg_scheme_name(sg_scheme_from_name(names[i])), names[i]);
        assert_int_equal(sg_scheme_from_name("argon2id"), SG_SCHEME_ARGON2ID);
        assert_int_equal(sg_scheme_from_name("bcrypt"), SG_SCHEME_BCRYPT);
        assert_int_equal(sg_scheme_from_name("Argon2id"), SG_SCHEME_UNKNOWN);
        assert_int_equal(sg_scheme_from_name("md5"), SG_SCHEME_UNKNOWN);
        assert_int_equal(sg_scheme_from_name(""), SG_SCHEME_UNKNOWN);
        assert_int_equal(sg_scheme_from_name(NULL), SG_SCHEME_UNKNOWN);
        assert_string_equal(sg_scheme_name((enum sg_scheme) 99), "unknown");
}

static void test_verify_each_scheme(void **state) {
        (void) state;
        for (size_t i = 0; i < 6; i++) {
                const char *h = fixtures[i].hash;
                struct sg_hash_cost c;

                assert_int_equal(sg_hash_parse_cost(h, &c), 0);
                assert_int_equal(c.scheme, fixtures[i].scheme);
                assert_int_equal(sg_hash_verify(h, PW, strlen(PW), &default_caps), 0);
                assert_int_equal(sg_hash_verify(h, "wrong", 5, &default_caps), -EACCES);
                assert_int_equal(sg_hash_verify(h, "", 0, &default_caps), -EACCES);
                /* A prefix of the right password is wrong too. */
                assert_int_equal(sg_hash_verify(h, PW, strlen(PW) - 1, &default_caps), -EACCES);
                /* The length is honoured: a buffer without a NUL at password_len still works. */
                assert_int_equal(sg_hash_verify(h, PW "trailing", strlen(PW), &default_caps), 0);
        }
}

static void test_locked_never_verify(void **state) {
        char locked[SG_HASH_MAX + 2];

        (void) state;
        for (size_t i = 0; i < 6; i++) {
                snprintf(locked, sizeof locked, "!%s", fixtures[i].hash);
                assert_int_equal(sg_hash_verify(locked, PW, strlen(PW), &default_caps), -EINVAL);
                snprintf(locked, sizeof locked, "*%s", fixtures[i].hash);
                assert_int_equal(sg_hash_verify(locked, PW, strlen(PW), &default_caps), -EINVAL);
        }
        assert_int_equal(sg_hash_verify("*", PW, strlen(PW), &default_caps), -EINVAL);
        assert_int_equal(sg_hash_verify("!", PW, strlen(PW), &default_caps), -EINVAL);
        assert_int_equal(sg_hash_verify("!!", "", 0, &default_caps), -EINVAL);
        /* An empty hash field means "no password" to some tools: never to us. */
        assert_int_equal(sg_hash_verify("", "", 0, &default_caps), -EINVAL);
        assert_int_equal(sg_hash_verify("", PW, strlen(PW), &default_caps), -EINVAL);
}

static void test_unknown_schemes(void **state) {
        char md5[SG_HASH_MAX], des[SG_HASH_MAX];

        (void) state;
        /* Real hashes of the right password in schemes we refuse. */
        xcrypt_hash("$1$", 0, PW, md5);
        {
                struct crypt_data *data = calloc(1, sizeof *data);
                const char *h;
                assert_non_null(data);
                h = crypt_rn(PW, "ab", data, sizeof *data);
                assert_non_null(h);
                strcpy(des, h);
                free(data);
        }
        assert_int_equal(sg_hash_scheme(md5), SG_SCHEME_UNKNOWN);
        assert_int_equal(sg_hash_scheme(des), SG_SCHEME_UNKNOWN);
        assert_int_equal(sg_hash_verify(md5, PW, strlen(PW), &default_caps), -EINVAL);
        assert_int_equal(sg_hash_verify(des, PW, strlen(PW), &default_caps), -EINVAL);
        assert_int_equal(sg_hash_verify("$2x$04$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz01234",
                                        PW, strlen(PW), &default_caps), -EINVAL);
}

static void test_embedded_nul(void **state) {
        static const char pw_nul[] = PW "\0suffix";
        char h[SG_HASH_MAX];

        (void) state;
        for (size_t i = 0; i < 6; i++)
                assert_int_equal(sg_hash_verify(fixtures[i].hash, pw_nul, sizeof pw_nul - 1,
                                                &default_caps), -EINVAL);
        assert_int_equal(sg_hash_create(SG_SCHEME_ARGON2ID, pw_nul, sizeof pw_nul - 1, &small_pref,
                                        false, h, sizeof h), -EINVAL);
        assert_int_equal(sg_hash_create(SG_SCHEME_SHA512CRYPT, pw_nul, sizeof pw_nul - 1, &small_pref,
                                        false, h, sizeof h), -EINVAL);
}

/* OpenSSH sends this (repeated to the real length) for invalid users and root logins it
 * refuses; it must never match anything. */
static void test_sshd_fake_password(void **state) {
        static const char junk[] = "\b\n\r\177INCORRECT";
        char fake[256];

        (void) state;
        for (size_t i = 0; i < sizeof fake - 1; i++)
                fake[i] = junk[i % (sizeof junk - 1)];
        fake[sizeof fake - 1] = '\0';
        for (size_t i = 0; i < 6; i++) {
                assert_int_equal(sg_hash_verify(fixtures[i].hash, fake, strlen(fake), &default_caps), -EACCES);
                assert_int_equal(sg_hash_verify(fixtures[i].hash, fake, strlen(PW), &default_caps), -EACCES);
        }
        assert_int_equal(sg_hash_dummy_verify(fake, strlen(fake), &small_pref), -EACCES);
}

static void test_bcrypt_truncation(void **state) {
        char pw1[80], pw2[80], h[SG_HASH_MAX];

        (void) state;
        /* Equal in the first 72 bytes, different after: bcrypt cannot tell them apart, which is
         * why bcrypt hashes are upgraded and new ones refused. */
        memset(pw1, 'a', 72);
        memcpy(pw2, pw1, 72);
        strcpy(pw1 + 72, "-one");
        strcpy(pw2 + 72, "-two");
        xcrypt_hash("$2b$", 4, pw1, h);
        assert_int_equal(sg_hash_verify(h, pw1, strlen(pw1), &default_caps), 0);
        assert_int_equal(sg_hash_verify(h, pw2, strlen(pw2), &default_caps), 0);
        assert_true(sg_hash_needs_upgrade(h, &small_pref));

        assert_int_equal(sg_hash_create(SG_SCHEME_BCRYPT, "short", 5, &small_pref, false, h, sizeof h), -ENOTSUP);
        assert_int_equal(sg_hash_create(SG_SCHEME_BCRYPT, pw1, strlen(pw1), &small_pref, true, h, sizeof h), -E2BIG);
        assert_int_equal(sg_hash_create(SG_SCHEME_BCRYPT, pw1, 72, &small_pref, true, h, sizeof h), 0);
        assert_true(strncmp(h, "$2b$12$", 7) == 0);
        assert_int_equal(sg_hash_verify(h, pw1, 72, &default_caps), 0);
}

static void test_parse_cost_argon2(void **state) {
        static const char *const bad[] = {
                "$argon2id$",
                "$argon2id$v=19",
                "$argon2id$m=65536,t=3,p=1$c2FsdHNhbHRzYWx0$aGFzaA",       /* no version */
                "$argon2id$v=16$m=65536,t=3,p=1$c2FsdHNhbHRzYWx0$aGFzaA",  /* old version */
                "$argon2id$v=19$t=3,p=1$c2FsdHNhbHRzYWx0$aGFzaA",          /* no m */
                "$argon2id$v=19$m=65536,p=1$c2FsdHNhbHRzYWx0$aGFzaA",      /* no t */
                "$argon2id$v=19$m=65536,t=3$c2FsdHNhbHRzYWx0$aGFzaA",      /* no p */
                "$argon2id$v=19$m=65536,t=3,p=1$c2FsdHNhbHRzYWx0",         /* no hash */
                "$argon2id$v=19$m=65536,t=3,p=1$c2FsdHNhbHRzYWx0$",        /* empty hash */
                "$argon2id$v=19$m=65536,t=3,p=1$$aGFzaA",                  /* empty salt */
                "$argon2id$v=19$m=65a36,t=3,p=1$c2FsdHNhbHRzYWx0$aGFzaA",  /* letters */
                "$argon2id$v=19$m=,t=3,p=1$c2FsdHNhbHRzYWx0$aGFzaA",
                "$argon2id$v=19$m=-1,t=3,p=1$c2FsdHNhbHRzYWx0$aGFzaA",
                "$argon2id$v=19$m=+65536,t=3,p=1$c2FsdHNhbHRzYWx0$aGFzaA",
                "$argon2id$v=19$m= 65536,t=3,p=1$c2FsdHNhbHRzYWx0$aGFzaA",
                "$argon2id$v=19$m=065536,t=3,p=1$c2FsdHNhbHRzYWx0$aGFzaA", /* leading zero */
                "$argon2id$v=19$m=18446744073709551616,t=3,p=1$c2FsdHNhbHRzYWx0$aGFzaA",
                "$argon2id$v=19$m=4294967296,t=3,p=1$c2FsdHNhbHRzYWx0$aGFzaA",  /* > 32 bits */
                "$argon2id$v=19$m=65536,t=99999999999999999999,p=1$c2FsdHNhbHRzYWx0$aGFzaA",
                "$argon2id$v=19$m=65536,t=0,p=1$c2FsdHNhbHRzYWx0$aGFzaA",
                "$argon2id$v=19$m=65536,t=3,p=0$c2FsdHNhbHRzYWx0$aGFzaA",
                "$argon2id$v=19$m=7,t=3,p=1$c2FsdHNhbHRzYWx0$aGFzaA",      /* m < 8p */
                "$argon2id$v=19$m=65536,t=3,p=16777216$c2FsdHNhbHRzYWx0$aGFzaA",
                "$argon2id$v=19$m=65536,t=3,p=1,x=1$c2FsdHNhbHRzYWx0$aGFzaA",
                "$argon2id$v=19$p=1,t=3,m=65536$c2FsdHNhbHRzYWx0$aGFzaA",  /* order */
                "$argon2id$v=19$m=65536,t=3,p=1$c2FsdHNh!HRzYWx0$aGFzaA",  /* bad base64 */
                "$argon2id$v=19$m=65536,t=3,p=1$c2FsdHNhbHRzYWx0$aGFzaA$",
                "$argon2id$v=19$m=65536,t=3,p=1$c2FsdHNhbHRzYWx0$aGFzaA=",
                "$argon2i$v=19$m=65536,t=3,p=1$c2FsdHNhbHRzYWx0",
        };
        struct sg_hash_cost c;

        (void) state;
        assert_int_equal(sg_hash_parse_cost("$argon2id$v=19$m=65536,t=3,p=1$c2FsdHNhbHRzYWx0$aGFzaA", &c), 0);
        assert_int_equal(c.scheme, SG_SCHEME_ARGON2ID);
        assert_int_equal(c.argon2_m_kib, 65536);
        assert_int_equal(c.argon2_t, 3);
        assert_int_equal(c.argon2_p, 1);
        assert_int_equal(sg_hash_parse_cost("$argon2i$v=19$m=4096,t=10,p=4$c2FsdHNhbHRzYWx0$aGFzaA", &c), 0);
        assert_int_equal(c.scheme, SG_SCHEME_ARGON2I);
        assert_int_equal(c.argon2_m_kib, 4096);
        assert_int_equal(c.argon2_t, 10);
        assert_int_equal(c.argon2_p, 4);
        assert_int_equal(sg_hash_parse_cost(fixtures[0].hash, &c), 0);
        assert_int_equal(c.argon2_m_kib, small_pref.memlimit / 1024);
        assert_int_equal(c.argon2_t, small_pref.opslimit);
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                memset(&c, 0x5a, sizeof c);
                if (sg_hash_parse_cost(bad[i], &c) != -EINVAL)
                        fail_msg("accepted malformed argon2 hash #%zu: %s", i, bad[i]);
                assert_int_equal(c.argon2_m_kib, 0x5a5a5a5a5a5a5a5aULL); /* untouched */
                assert_int_equal(sg_hash_verify(bad[i], PW, strlen(PW), &default_caps), -EINVAL);
        }
}

static void test_parse_cost_bcrypt(void **state) {
        static const char body[] = "abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234"; /* 53 */
        static const char *const bad_costs[] = { "3", "03", "32", "99", "1a", "a1", "", "4", "004", "-4" };
        char h[128];
        struct sg_hash_cost c;

        (void) state;
        assert_int_equal(strlen(body), 53);
        assert_int_equal(sg_hash_parse_cost(fixtures[2].hash, &c), 0);
        assert_int_equal(c.bcrypt_cost, 4);
        snprintf(h, sizeof h, "$2y$12$%s", body);
        assert_int_equal(sg_hash_parse_cost(h, &c), 0);
        assert_int_equal(c.scheme, SG_SCHEME_BCRYPT);
        assert_int_equal(c.bcrypt_cost, 12);
        snprintf(h, sizeof h, "$2a$31$%s", body);
        assert_int_equal(sg_hash_parse_cost(h, &c), 0);
        assert_int_equal(c.bcrypt_cost, 31);
        for (size_t i = 0; i < sizeof bad_costs / sizeof bad_costs[0]; i++) {
                snprintf(h, sizeof h, "$2b$%s$%s", bad_costs[i], body);
                if (sg_hash_parse_cost(h, &c) != -EINVAL)
                        fail_msg("accepted bcrypt cost '%s'", bad_costs[i]);
        }
        snprintf(h, sizeof h, "$2b$10$%.52s", body); /* short */
        assert_int_equal(sg_hash_parse_cost(h, &c), -EINVAL);
        snprintf(h, sizeof h, "$2b$10$%sx", body);   /* long */
        assert_int_equal(sg_hash_parse_cost(h, &c), -EINVAL);
        snprintf(h, sizeof h, "$2b$10$%.30s+%s", body, body + 31); /* '+' is not in the alphabet */
        assert_int_equal(strlen(h), 60);
        assert_int_equal(sg_hash_parse_cost(h, &c), -EINVAL);
        assert_int_equal(sg_hash_parse_cost("$2b$10", &c), -EINVAL);
        assert_int_equal(sg_hash_parse_cost("$2b$", &c), -EINVAL);
}

#define YHASH "kbSm7DLwQGN7lqjvPdSEsJQ3P/hr3V/rHVYqkJqmX75" /* 43 ascii64 characters */

static void test_parse_cost_yescrypt(void **state) {
        static const char *const bad[] = {
                "$y$",
                "$y$$salt$" YHASH,                 /* no params */
                "$y$j9$salt$" YHASH,               /* no r */
                "$y$j$salt$" YHASH,
                "$y$j9T",
                "$y$j9T$salt",                     /* no hash */
                "$y$j9T$salt$",
                "$y$j9T$salt$" YHASH "x",          /* hash too long */
                "$y$j9T$salt$" YHASH "$",
                "$y$j9T$sa!t$" YHASH,              /* salt outside ascii64 */
                "$y$j!T$salt$" YHASH,
                "$y$j9T.$salt$" YHASH,             /* have=1 but p missing */
                "$y$j9T1.$salt$" YHASH,            /* g (hash upgrades) unsupported */
                "$y$j9T5.$salt$" YHASH,            /* ROM unsupported */
                "$y$jzzzzzzT$salt$" YHASH,         /* N log2 > 63 */
                "$y$zzzzzzz9T$salt$" YHASH,        /* flavor beyond 32 bits */
        };
        struct sg_hash_cost c;
        char h[SG_HASH_MAX];

        (void) state;
        /* libxcrypt's default "j9T": flavor YESCRYPT_DEFAULTS, N = 2^12, r = 32. */
        assert_int_equal(sg_hash_parse_cost(fixtures[3].hash, &c), 0);
        assert_true(strncmp(fixtures[3].hash, "$y$j9T$", 7) == 0);
        assert_int_equal(c.scheme, SG_SCHEME_YESCRYPT);
        assert_int_equal(c.yescrypt_n_log2, 12);
        assert_int_equal(c.yescrypt_r, 32);
        assert_int_equal(c.yescrypt_p, 1);
        assert_int_equal(c.yescrypt_t, 0);
        /* Each libxcrypt cost step grows the memory 128 * r * N: the decoded values follow. */
        {
                uint64_t prev = 0;
                for (unsigned long count = 1; count <= 11; count++) {
                        char setting[CRYPT_GENSALT_OUTPUT_SIZE];
                        assert_non_null(crypt_gensalt_rn("$y$", count, NULL, 0, setting, sizeof setting));
                        snprintf(h, sizeof h, "%s$%s", setting, YHASH);
                        assert_int_equal(sg_hash_parse_cost(h, &c), 0);
                        assert_true(((uint64_t) 1 << c.yescrypt_n_log2) * c.yescrypt_r > prev);
                        prev = ((uint64_t) 1 << c.yescrypt_n_log2) * c.yescrypt_r;
                }
        }
        /* Two-character number: "k." is 48 + 0 + min 1 = N log2 49. */
        assert_int_equal(sg_hash_parse_cost("$y$jk.T$salt$" YHASH, &c), 0);
        assert_int_equal(c.yescrypt_n_log2, 49);
        assert_int_equal(c.yescrypt_r, 32);
        /* have=1 ('.'), p = 2 + 2 ('0'): p = 4; have=3 adds t = 1 + 2 ('0') = 3. */
        assert_int_equal(sg_hash_parse_cost("$y$j9T.0$salt$" YHASH, &c), 0);
        assert_int_equal(c.yescrypt_p, 4);
        assert_int_equal(c.yescrypt_t, 0);
        assert_int_equal(sg_hash_parse_cost("$y$j9T0.0$salt$" YHASH, &c), 0);
        assert_int_equal(c.yescrypt_p, 2);
        assert_int_equal(c.yescrypt_t, 3);
        /* Empty salt is legal in the format. */
        assert_int_equal(sg_hash_parse_cost("$y$j9T$$" YHASH, &c), 0);
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
                if (sg_hash_parse_cost(bad[i], &c) != -EINVAL)
                        fail_msg("accepted malformed yescrypt hash #%zu: %s", i, bad[i]);
}

#define H512 "Gdcvht3lc1qgSA2rDzkjsr4zNnHvDwr7TASDCnuNPmr2bTYCgb2t0cRtR45Dc2XTrlfmwhI38VyrXSzytyIGW1"
#define H256 "Wb6ccYqVR7DaRvlUg3Y2IJ/SvYtdTTq2Ypf3KodMqXB"

static void test_parse_cost_sha(void **state) {
        static const char *const bad[] = {
                "$6$",
                "$6$salt",
                "$6$salt$",
                "$6$salt$" H512 "x",
                "$6$salt$" H256,                             /* sha256 length under $6$ */
                "$5$salt$" H512,
                "$6$rounds=$salt$" H512,
                "$6$rounds=abc$salt$" H512,
                "$6$rounds=10a0$salt$" H512,
                "$6$rounds=-5000$salt$" H512,
                "$6$rounds=05000$salt$" H512,                /* leading zero */
                "$6$rounds=999$salt$" H512,                  /* below libxcrypt's minimum */
                "$6$rounds=1000000000$salt$" H512,           /* above its maximum */
                "$6$rounds=99999999999999999999999$salt$" H512,
                "$6$rounds=5000" H512,
                "$6$saltsaltsaltsalts$" H512,                /* 17-char salt: truncated, never matches */
                "$6$sa:t$" H512,
                "$6$salt$" H512 "$",
        };
        struct sg_hash_cost c;

        (void) state;
        assert_int_equal(sg_hash_parse_cost(fixtures[4].hash, &c), 0);
        assert_int_equal(c.sha_rounds, 5000);
        assert_int_equal(sg_hash_parse_cost(fixtures[5].hash, &c), 0);
        assert_int_equal(c.scheme, SG_SCHEME_SHA256CRYPT);
        assert_int_equal(c.sha_rounds, 5000);
        assert_int_equal(sg_hash_parse_cost("$6$rounds=10000$salt$" H512, &c), 0);
        assert_int_equal(c.sha_rounds, 10000);
        assert_int_equal(sg_hash_parse_cost("$5$rounds=1000$saltsaltsaltsalt$" H256, &c), 0);
        assert_int_equal(c.sha_rounds, 1000);
        assert_int_equal(sg_hash_parse_cost("$6$rounds=999999999$salt$" H512, &c), 0);
        assert_int_equal(c.sha_rounds, 999999999);
        assert_int_equal(sg_hash_parse_cost("$6$$" H512, &c), 0);
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
                if (sg_hash_parse_cost(bad[i], &c) != -EINVAL)
                        fail_msg("accepted malformed sha-crypt hash #%zu: %s", i, bad[i]);
        assert_int_equal(sg_hash_parse_cost(NULL, &c), -EINVAL);
        assert_int_equal(sg_hash_parse_cost("!", &c), -EINVAL);
        assert_int_equal(sg_hash_parse_cost("$1$abc$def", &c), -EINVAL);
}

static long maxrss_kib(void) {
        struct rusage ru;

        assert_int_equal(getrusage(RUSAGE_SELF, &ru), 0);
        return ru.ru_maxrss;
}

/* A planted 4 GiB argon2id hash is refused from its text alone: fast, no allocation. */
static void test_caps_argon2_planted(void **state) {
        static const char planted[] =
                "$argon2id$v=19$m=4194304,t=3,p=1$c29tZXNhbHRzb21lc2FsdA$"
                "Hbt4sLUDb0RCBNzTCcrx6Jp5Aa8gKIcV3lH9ZsTHJvk";
        struct sg_hash_cost c;
        long rss_before;
        double t0, elapsed;

        (void) state;
        assert_int_equal(sg_hash_parse_cost(planted, &c), 0);
        assert_int_equal(c.argon2_m_kib, 4194304);
        assert_int_equal(sg_hash_within_caps(&c, &default_caps), -E2BIG);

        rss_before = maxrss_kib();
        t0 = now_sec();
        /* -E2BIG only comes from the caps check before libsodium: a libsodium attempt would
         * return -EACCES (allocation failure) or take seconds and gigabytes. */
        assert_int_equal(sg_hash_verify(planted, PW, strlen(PW), &default_caps), -E2BIG);
        elapsed = now_sec() - t0;
        assert_true(elapsed < 0.050);
        assert_true(maxrss_kib() - rss_before < 64 * 1024);

        assert_int_equal(sg_hash_verify("$argon2id$v=19$m=65536,t=17,p=1$c29tZXNhbHRzb21lc2FsdA$"
                                        "Hbt4sLUDb0RCBNzTCcrx6Jp5Aa8gKIcV3lH9ZsTHJvk",
                                        PW, strlen(PW), &default_caps), -E2BIG);
        assert_int_equal(sg_hash_verify("$argon2i$v=19$m=65536,t=3,p=8$c29tZXNhbHRzb21lc2FsdA$"
                                        "Hbt4sLUDb0RCBNzTCcrx6Jp5Aa8gKIcV3lH9ZsTHJvk",
                                        PW, strlen(PW), &default_caps), -E2BIG);
        /* The cap is inclusive and compared without overflowing m * 1024. */
        c = (struct sg_hash_cost) { .scheme = SG_SCHEME_ARGON2ID, .argon2_m_kib = 256 * 1024,
                                    .argon2_t = 16, .argon2_p = 4 };
        assert_int_equal(sg_hash_within_caps(&c, &default_caps), 0);
        c.argon2_m_kib = UINT64_MAX / 512;
        assert_int_equal(sg_hash_within_caps(&c, &default_caps), -E2BIG);
}

static void test_caps_bcrypt(void **state) {
        static const char body[] = "abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234";
        char h[128];
        double t0;

        (void) state;
        snprintf(h, sizeof h, "$2b$31$%s", body);
        t0 = now_sec();
        assert_int_equal(sg_hash_verify(h, PW, strlen(PW), &default_caps), -E2BIG);
        assert_true(now_sec() - t0 < 0.050);
        snprintf(h, sizeof h, "$2b$15$%s", body);
        assert_int_equal(sg_hash_verify(h, PW, strlen(PW), &default_caps), -E2BIG);
        /* At the cap exactly: allowed (the fixture has cost 4). */
        {
                struct sg_hash_caps caps = default_caps;
                caps.bcrypt_cost = 4;
                assert_int_equal(sg_hash_verify(fixtures[2].hash, PW, strlen(PW), &caps), 0);
                caps.bcrypt_cost = 3;
                assert_int_equal(sg_hash_verify(fixtures[2].hash, PW, strlen(PW), &caps), -E2BIG);
        }
}

static void test_caps_yescrypt(void **state) {
        struct sg_hash_caps caps = default_caps;
        struct sg_hash_cost c;
        double t0;

        (void) state;
        t0 = now_sec();
        assert_int_equal(sg_hash_verify("$y$jk.T$salt$" YHASH, PW, strlen(PW), &default_caps), -E2BIG);
        assert_int_equal(sg_hash_verify("$y$jLT$salt$" YHASH, PW, strlen(PW), &default_caps), -E2BIG); /* N log2 24 */
        assert_true(now_sec() - t0 < 0.050);
        /* p = 4 at r = 32: four times the memory of j9T, i.e. N log2 12 + 2. */
        assert_int_equal(sg_hash_parse_cost("$y$j9T.0$salt$" YHASH, &c), 0);
        caps.yescrypt_n_log2 = 13;
        assert_int_equal(sg_hash_within_caps(&c, &caps), -E2BIG);
        caps.yescrypt_n_log2 = 14;
        assert_int_equal(sg_hash_within_caps(&c, &caps), 0);
        /* A huge r counts as memory too. */
        c = (struct sg_hash_cost) { .scheme = SG_SCHEME_YESCRYPT, .yescrypt_n_log2 = 10,
                                    .yescrypt_r = UINT32_MAX, .yescrypt_p = UINT32_MAX };
        assert_int_equal(sg_hash_within_caps(&c, &default_caps), -E2BIG);
        /* The fixture (j9T) under a cap of 11 is refused, 12 allowed. */
        caps.yescrypt_n_log2 = 11;
        assert_int_equal(sg_hash_verify(fixtures[3].hash, PW, strlen(PW), &caps), -E2BIG);
        caps.yescrypt_n_log2 = 12;
        assert_int_equal(sg_hash_verify(fixtures[3].hash, PW, strlen(PW), &caps), 0);
}

static void test_caps_sha_rounds(void **state) {
        double t0;

        (void) state;
        t0 = now_sec();
        assert_int_equal(sg_hash_verify("$6$rounds=999999999$salt$" H512, PW, strlen(PW), &default_caps), -E2BIG);
        assert_int_equal(sg_hash_verify("$5$rounds=999999999$salt$" H256, PW, strlen(PW), &default_caps), -E2BIG);
        assert_int_equal(sg_hash_verify("$6$rounds=1000001$salt$" H512, PW, strlen(PW), &default_caps), -E2BIG);
        assert_true(now_sec() - t0 < 0.050);
        /* Within the cap: computed, and a wrong hash value is a plain mismatch. */
        assert_int_equal(sg_hash_verify("$6$rounds=1000$salt$" H512, PW, strlen(PW), &default_caps), -EACCES);
}

static void test_verify_args(void **state) {
        char big[SG_HASH_PASSWORD_MAX + 2];
        char long_hash[SG_HASH_MAX + 1];

        (void) state;
        assert_int_equal(sg_hash_verify(NULL, PW, strlen(PW), &default_caps), -EINVAL);
        assert_int_equal(sg_hash_verify(fixtures[4].hash, PW, strlen(PW), NULL), -EINVAL);
        assert_int_equal(sg_hash_verify(fixtures[4].hash, NULL, 3, &default_caps), -EINVAL);
        memset(big, 'x', sizeof big - 1);
        big[sizeof big - 1] = '\0';
        assert_int_equal(sg_hash_verify(fixtures[4].hash, big, SG_HASH_PASSWORD_MAX + 1, &default_caps), -EINVAL);
        for (size_t i = 0; i < 6; i++)
                assert_int_equal(sg_hash_verify(fixtures[i].hash, big, SG_HASH_PASSWORD_MAX, &default_caps), -EACCES);
        /* libxcrypt stops at 511 bytes: a longer password whose first 511 bytes are right
         * must still not match (no silent truncation as with bcrypt's 72). */
        {
                char h[SG_HASH_MAX];
                big[CRYPT_MAX_PASSPHRASE_SIZE - 1] = '\0';
                xcrypt_hash("$6$", 0, big, h);
                assert_int_equal(sg_hash_verify(h, big, CRYPT_MAX_PASSPHRASE_SIZE - 1, &default_caps), 0);
                big[CRYPT_MAX_PASSPHRASE_SIZE - 1] = 'x';
                assert_int_equal(sg_hash_verify(h, big, CRYPT_MAX_PASSPHRASE_SIZE, &default_caps), -EACCES);
                assert_int_equal(sg_hash_create(SG_SCHEME_SHA512CRYPT, big, CRYPT_MAX_PASSPHRASE_SIZE,
                                                &small_pref, false, h, sizeof h), -E2BIG);
                assert_int_equal(sg_hash_create(SG_SCHEME_ARGON2ID, big, SG_HASH_PASSWORD_MAX,
                                                &small_pref, false, h, sizeof h), 0);
                assert_int_equal(sg_hash_verify(h, big, SG_HASH_PASSWORD_MAX, &default_caps), 0);
        }
        /* A hash string of SG_HASH_MAX characters is refused before anything else. */
        memset(long_hash, 'a', sizeof long_hash - 1);
        long_hash[sizeof long_hash - 1] = '\0';
        memcpy(long_hash, "$6$", 3);
        assert_int_equal(sg_hash_verify(long_hash, PW, strlen(PW), &default_caps), -EINVAL);
}

static void test_needs_upgrade(void **state) {
        const struct sg_hash_pref stronger = { .opslimit = 2, .memlimit = 8 * MiB };
        const struct sg_hash_pref more_mem = { .opslimit = 1, .memlimit = 16 * MiB };

        (void) state;
        assert_false(sg_hash_needs_upgrade(fixtures[0].hash, &small_pref));
        assert_true(sg_hash_needs_upgrade(fixtures[0].hash, &stronger));
        assert_true(sg_hash_needs_upgrade(fixtures[0].hash, &more_mem));
        /* argon2i at the same cost still needs the switch to argon2id. */
        for (size_t i = 1; i < 6; i++)
                assert_true(sg_hash_needs_upgrade(fixtures[i].hash, &small_pref));
        assert_true(sg_hash_needs_upgrade("$argon2id$garbage", &small_pref));
        assert_true(sg_hash_needs_upgrade("!", &small_pref));
        assert_true(sg_hash_needs_upgrade(NULL, &small_pref));
}

/* Upgrades only ever strengthen: an argon2id above the preferred cost is kept as it is. */
static void test_needs_upgrade_never_downgrades(void **state) {
        const struct sg_hash_pref more_ops = { .opslimit = 2, .memlimit = 8 * MiB };
        const struct sg_hash_pref more_mem = { .opslimit = 1, .memlimit = 16 * MiB };
        /* Well-formed strings (nothing is verified here); p= does not matter to libsodium. */
        static const char t2_m16[] = "$argon2id$v=19$m=16384,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$zVMsI3Ecw6SWfZHL8vhC0yKAN1IkIGcPXj9kcY2RBdw";
        static const char t1_m8_p2[] = "$argon2id$v=19$m=8192,t=1,p=2$c29tZXNhbHRzb21lc2FsdA$zVMsI3Ecw6SWfZHL8vhC0yKAN1IkIGcPXj9kcY2RBdw";
        static const char t3_m8[] = "$argon2id$v=19$m=8192,t=3,p=1$c29tZXNhbHRzb21lc2FsdA$zVMsI3Ecw6SWfZHL8vhC0yKAN1IkIGcPXj9kcY2RBdw";
        static const char t1_m64[] = "$argon2id$v=19$m=65536,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$zVMsI3Ecw6SWfZHL8vhC0yKAN1IkIGcPXj9kcY2RBdw";
        char real[crypto_pwhash_STRBYTES];

        (void) state;
        /* Stronger in both, in one, or only a different p: kept. */
        assert_false(sg_hash_needs_upgrade(t2_m16, &small_pref));
        assert_false(sg_hash_needs_upgrade(t2_m16, &more_ops));
        assert_false(sg_hash_needs_upgrade(t2_m16, &more_mem));
        assert_false(sg_hash_needs_upgrade(t3_m8, &small_pref));
        assert_false(sg_hash_needs_upgrade(t1_m64, &small_pref));
        assert_false(sg_hash_needs_upgrade(t1_m8_p2, &small_pref));
        assert_int_equal(crypto_pwhash_str(real, PW, strlen(PW), 2, 16 * MiB), 0);
        assert_false(sg_hash_needs_upgrade(real, &small_pref));
        /* Weaker in either m or t: upgraded, even when the other one is stronger. */
        assert_true(sg_hash_needs_upgrade(t3_m8, &more_mem));
        assert_true(sg_hash_needs_upgrade(t1_m64, &more_ops));
        assert_true(sg_hash_needs_upgrade(t1_m8_p2, &more_ops));
        assert_true(sg_hash_needs_upgrade(fixtures[0].hash, &more_mem));
        {
                const struct sg_hash_pref much_more = { .opslimit = 3, .memlimit = 32 * MiB };
                assert_true(sg_hash_needs_upgrade(real, &much_more));
        }
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;

        return (x > y) - (x < y);
}

static double median5(double v[5]) {
        qsort(v, 5, sizeof v[0], cmp_double);
        return v[2];
}

static void test_dummy_verify_timing(void **state) {
        const struct sg_hash_pref pref = { .opslimit = 2, .memlimit = 16 * MiB };
        char real[crypto_pwhash_STRBYTES];
        double t_real[5], t_dummy[5], ratio;

        (void) state;
        assert_int_equal(crypto_pwhash_str(real, PW, strlen(PW), pref.opslimit, pref.memlimit), 0);
        for (int i = 0; i < 5; i++) {
                double t0 = now_sec();
                assert_int_equal(sg_hash_verify(real, "wrong password", 14, &default_caps), -EACCES);
                t_real[i] = now_sec() - t0;
                t0 = now_sec();
                assert_int_equal(sg_hash_dummy_verify("wrong password", 14, &pref), -EACCES);
                t_dummy[i] = now_sec() - t0;
        }
        ratio = median5(t_dummy) / median5(t_real);
        print_message("dummy/real verify time ratio: %.2f\n", ratio);
        assert_true(ratio > 0.5 && ratio < 2.0);
        /* Any input, even the real password, NUL bytes or nothing, fails. */
        assert_int_equal(sg_hash_dummy_verify(PW, strlen(PW), &pref), -EACCES);
        assert_int_equal(sg_hash_dummy_verify("a\0b", 3, &pref), -EACCES);
        assert_int_equal(sg_hash_dummy_verify(NULL, 0, &pref), -EACCES);
}

static void test_create(void **state) {
        char h[SG_HASH_MAX], tiny[16];
        struct sg_hash_cost c;

        (void) state;
        assert_int_equal(sg_hash_create(SG_SCHEME_ARGON2ID, PW, strlen(PW), &small_pref, false, h, sizeof h), 0);
        assert_int_equal(sg_hash_scheme(h), SG_SCHEME_ARGON2ID);
        assert_int_equal(sg_hash_parse_cost(h, &c), 0);
        assert_int_equal(c.argon2_t, small_pref.opslimit);
        assert_int_equal(c.argon2_m_kib, small_pref.memlimit / 1024);
        assert_int_equal(sg_hash_verify(h, PW, strlen(PW), &default_caps), 0);
        assert_false(sg_hash_needs_upgrade(h, &small_pref));

        assert_int_equal(sg_hash_create(SG_SCHEME_YESCRYPT, PW, strlen(PW), &small_pref, false, h, sizeof h), 0);
        assert_true(strncmp(h, "$y$", 3) == 0);
        assert_int_equal(sg_hash_verify(h, PW, strlen(PW), &default_caps), 0);
        assert_int_equal(sg_hash_verify(h, "nope", 4, &default_caps), -EACCES);

        assert_int_equal(sg_hash_create(SG_SCHEME_SHA512CRYPT, PW, strlen(PW), &small_pref, false, h, sizeof h), 0);
        assert_true(strncmp(h, "$6$", 3) == 0);
        assert_int_equal(sg_hash_verify(h, PW, strlen(PW), &default_caps), 0);

        /* Two hashes of one password differ (fresh salt). */
        {
                char h2[SG_HASH_MAX];
                assert_int_equal(sg_hash_create(SG_SCHEME_SHA512CRYPT, PW, strlen(PW), &small_pref, false, h2, sizeof h2), 0);
                assert_string_not_equal(h, h2);
        }

        assert_int_equal(sg_hash_create(SG_SCHEME_ARGON2I, PW, strlen(PW), &small_pref, false, h, sizeof h), -ENOTSUP);
        assert_int_equal(sg_hash_create(SG_SCHEME_SHA256CRYPT, PW, strlen(PW), &small_pref, false, h, sizeof h), -ENOTSUP);
        assert_int_equal(sg_hash_create(SG_SCHEME_NONE, PW, strlen(PW), &small_pref, false, h, sizeof h), -EINVAL);
        assert_int_equal(sg_hash_create(SG_SCHEME_UNKNOWN, PW, strlen(PW), &small_pref, false, h, sizeof h), -EINVAL);
        assert_int_equal(sg_hash_create(SG_SCHEME_ARGON2ID, PW, strlen(PW), &small_pref, false, tiny, sizeof tiny), -ENOBUFS);
        assert_int_equal(sg_hash_create(SG_SCHEME_SHA512CRYPT, PW, strlen(PW), &small_pref, false, tiny, sizeof tiny), -ENOBUFS);
        {
                const struct sg_hash_pref weak = { .opslimit = 0, .memlimit = 8 * MiB };
                assert_int_equal(sg_hash_create(SG_SCHEME_ARGON2ID, PW, strlen(PW), &weak, false, h, sizeof h), -EINVAL);
                assert_int_equal(sg_hash_create(SG_SCHEME_ARGON2ID, PW, strlen(PW), NULL, false, h, sizeof h), -EINVAL);
        }
        {
                static char big[SG_HASH_PASSWORD_MAX + 1];
                memset(big, 'x', sizeof big);
                assert_int_equal(sg_hash_create(SG_SCHEME_SHA512CRYPT, big, sizeof big, &small_pref, false, h, sizeof h), -EINVAL);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_scheme_detection),
                cmocka_unit_test(test_scheme_names),
                cmocka_unit_test(test_verify_each_scheme),
                cmocka_unit_test(test_locked_never_verify),
                cmocka_unit_test(test_unknown_schemes),
                cmocka_unit_test(test_embedded_nul),
                cmocka_unit_test(test_sshd_fake_password),
                cmocka_unit_test(test_bcrypt_truncation),
                cmocka_unit_test(test_parse_cost_argon2),
                cmocka_unit_test(test_parse_cost_bcrypt),
                cmocka_unit_test(test_parse_cost_yescrypt),
                cmocka_unit_test(test_parse_cost_sha),
                cmocka_unit_test(test_caps_argon2_planted),
                cmocka_unit_test(test_caps_bcrypt),
                cmocka_unit_test(test_caps_yescrypt),
                cmocka_unit_test(test_caps_sha_rounds),
                cmocka_unit_test(test_verify_args),
                cmocka_unit_test(test_needs_upgrade),
                cmocka_unit_test(test_needs_upgrade_never_downgrades),
                cmocka_unit_test(test_dummy_verify_timing),
                cmocka_unit_test(test_create),
        };

        return cmocka_run_group_tests(tests, setup_fixtures, NULL);
}
