/* SPDX-License-Identifier: MIT */
/*
 * Field validators (accept/reject tables with injection payloads, control bytes, invalid UTF-8,
 * long and empty strings) and the two escapers: no raw control byte survives, truncation is
 * marked and bounded for every output size, and JSON output always parses.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "validate.h"

struct vcase {
        const char *s;
        bool ok;
};

static char big[10 * 1024 + 1];

static int setup_big(void **state) {
        (void) state;
        memset(big, 'a', sizeof big - 1);
        big[sizeof big - 1] = '\0';
        return 0;
}

static void run_table(bool (*fn)(const char *), const char *name, const struct vcase *t, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (fn(t[i].s) != t[i].ok)
                        fail_msg("%s(case %zu \"%s\") should be %s", name, i, t[i].s, t[i].ok ? "valid" : "invalid");
}

#define RUN(fn, table) run_table(fn, #fn, table, sizeof table / sizeof table[0])

static void test_user(void **state) {
        static const struct vcase t[] = {
                { "alice", true },
                { "Alice.Smith", true },
                { "svc_backup-2", true },
                { "host01$", true },
                { "a", true },
                { "_apt", true },
                { "0123", true },
                { "", false },
                { "-rf", false },
                { ".", false },
                { "..", false },
                { "$", false },
                { "a$b", false },
                { "a$$", false },
                { "alice bob", false },
                { "alice\tbob", false },
                { "alice\n", false },
                { "alice\r", false },
                { "\x1b[31malice", false },
                { "al\x7fice", false },
                { "alice'--", false },
                { "' OR '1'='1", false },
                { "admin\"; DROP TABLE audit; --", false },
                { "robert');DROP TABLE users;--", false },
                { "%n%n%n%n", false },
                { "%s%x", false },
                { "a/b", false },
                { "../../etc/passwd", false },
                { "user@example.com", false },
                { "al\xc3\xa9", false },         /* valid UTF-8, still not a portable name */
                { "al\xff\xfe", false },         /* invalid UTF-8 */
                { "\xc0\xae\xc0\xae", false },   /* overlong "..": invalid UTF-8 */
                { "a:b", false },
                { "a*", false },
        };
        char s[80];

        (void) state;
        RUN(sg_valid_user, t);
        assert_false(sg_valid_user(NULL));
        assert_false(sg_valid_user(big));
        /* length bound: SG_USER_MAX accepted, one more refused */
        memset(s, 'u', SG_USER_MAX);
        s[SG_USER_MAX] = '\0';
        assert_true(sg_valid_user(s));
        s[SG_USER_MAX] = 'u';
        s[SG_USER_MAX + 1] = '\0';
        assert_false(sg_valid_user(s));
}

static void test_rhost(void **state) {
        static const struct vcase t[] = {
                { "192.0.2.1", true },
                { "2001:db8::1", true },
                { "fe80::1%eth0", true },
                { "::ffff:192.0.2.1", true },
                { "host-1.example.org", true },
                { "under_score.local", true },
                { "", false },
                { "host name", false },
                { "host\n", false },
                { "\x1b]0;pwned\x07", false },
                { "1.2.3.4'; DROP TABLE locks; --", false },
                { "host/24", false },
                { "%n%n", false }, /* "%" only as an IPv6 zone */
                { "fe80::1%eth0", true },
                { "fe80::1%", false },
                { "host%eth0", false },
                { "h\xc3\xa9te", false },
                { "\xff", false },
                { "[::1]", false },
                { "host,other", false },
        };

        (void) state;
        RUN(sg_valid_rhost, t);
        assert_false(sg_valid_rhost(NULL));
        assert_false(sg_valid_rhost(big));
        big[SG_RHOST_MAX] = '\0';
        assert_true(sg_valid_rhost(big));
        big[SG_RHOST_MAX] = 'a';
}

static void test_tty(void **state) {
        static const struct vcase t[] = {
                { "", true },
                { "/dev/pts/0", true },
                { "ssh", true },
                { ":0", true },
                { "tty1", true },
                { ":0.0", true },
                { "cron", true },
                { "/dev/tty%n", false },
                { "x'); DROP TABLE audit;--", false },
                { "tty$(id)", false },
                { "pts 0", false },
                { "tty\"1", false },
                { "tty'1", false },
                { "tty\n", false },
                { "tty\x1b", false },
                { "tty\x7f", false },
                { "tty\xc3\xa9", false },
                { "../../etc", false },
                { "..", false },
                { ".", false },
                { "pts/../../etc/shadow", false },
                { "/dev/./pts/0", false },
                { "pts/0/..", false },
                { "...", true },
                { "/dev//pts/0", true },
                { "a.b/c..d", true },
        };

        (void) state;
        RUN(sg_valid_tty, t);
        assert_false(sg_valid_tty(NULL));
        assert_false(sg_valid_tty(big));
}

static void test_service(void **state) {
        static const struct vcase t[] = {
                { "sshd", true },
                { "sudo", true },
                { "login", true },
                { "gdm-password", true },
                { "my.service_1", true },
                { "", false },
                { "ssh d", false },
                { "sshd;rm", false },
                { "../sshd", false },
                { "sshd\n", false },
                { "'sshd'", false },
                { "%n", false },
                { "s\xc3\xa9", false },
        };

        (void) state;
        RUN(sg_valid_service, t);
        assert_false(sg_valid_service(NULL));
        assert_false(sg_valid_service(big));
}

static void test_no_control(void **state) {
        (void) state;
        assert_true(sg_no_control("", 0));
        assert_true(sg_no_control(NULL, 0));
        assert_true(sg_no_control("plain text ~!", 13));
        assert_true(sg_no_control("caf\xc3\xa9", 5)); /* bytes >= 0x80 are not control bytes */
        assert_false(sg_no_control("a\0b", 3));        /* an embedded NUL counts */
        assert_false(sg_no_control("a\tb", 3));
        assert_false(sg_no_control("\x1b", 1));
        assert_false(sg_no_control("\x7f", 1));
        assert_false(sg_no_control("x\x1f", 2));
        assert_true(sg_no_control(big, sizeof big - 1));
}

static bool has_raw_control(const char *s) {
        for (; *s; s++)
                if ((unsigned char) *s < 0x20 || (unsigned char) *s == 0x7f)
                        return true;
        return false;
}

static void test_escape(void **state) {
        static const char osc[] = "\x1b]0;pwned\x07";
        char out[256];
        size_t n;

        (void) state;
        n = sg_escape(osc, sizeof osc - 1, out, sizeof out);
        assert_string_equal(out, "\\x1b]0;pwned\\x07");
        assert_int_equal(n, strlen(out));
        assert_false(has_raw_control(out));

        n = sg_escape("a\\b\n\xff\x7f~ ", 8, out, sizeof out);
        assert_string_equal(out, "a\\\\b\\x0a\\xff\\x7f~ ");
        assert_int_equal(n, strlen(out));
        /* embedded NUL is data, not the end */
        sg_escape("a\0b", 3, out, sizeof out);
        assert_string_equal(out, "a\\x00b");
        sg_escape("", 0, out, sizeof out);
        assert_string_equal(out, "");
        sg_escape(NULL, 5, out, sizeof out);
        assert_string_equal(out, "");
}

/* Every output size from 0 up: NUL-terminated within outsize, never splits an escape, and a
 * truncated result ends in "..." when there is room for it. */
static void check_all_sizes(size_t (*esc)(const char *, size_t, char *, size_t), const char *in, size_t len) {
        char full[512], out[520];
        size_t flen = esc(in, len, full, sizeof full);

        assert_true(flen < sizeof full);
        for (size_t size = 0; size <= flen + 2; size++) {
                size_t n;

                memset(out, 'Z', sizeof out);
                n = esc(in, len, out, size);
                assert_true(out[size] == 'Z'); /* nothing written past outsize */
                if (size == 0) {
                        assert_int_equal(n, 0);
                        assert_true(out[0] == 'Z');
                        continue;
                }
                assert_int_equal(strlen(out), n);
                assert_true(n < size);
                if (flen < size) {
                        assert_string_equal(out, full);
                        continue;
                }
                if (size >= 4) {
                        assert_true(n >= 3);
                        assert_memory_equal(out + n - 3, "...", 3);
                        /* what precedes "..." is a prefix of the full output at a unit boundary */
                        assert_memory_equal(out, full, n - 3);
                        assert_true(full[n - 3] != '\0');
                } else {
                        assert_int_equal(n, size - 1);
                        assert_memory_equal(out, "...", n);
                }
        }
}

static void test_escape_truncation(void **state) {
        char out[8];

        (void) state;
#define CHECK_ALL_SIZES(fn, lit) check_all_sizes(fn, lit, sizeof lit - 1)
        CHECK_ALL_SIZES(sg_escape, "\x1b]0;pwned\x07 and more text \\ here");
        CHECK_ALL_SIZES(sg_escape, "abc");
        CHECK_ALL_SIZES(sg_json_escape, "caf\xc3\xa9 \xf0\x9f\x94\x92 \"q\" \\ \x01\xff end");
        CHECK_ALL_SIZES(sg_json_escape, "abcd");
#undef CHECK_ALL_SIZES
        /* An exact fit is not truncated. */
        assert_int_equal(sg_escape("abc", 3, out, 4), 3);
        assert_string_equal(out, "abc");
        assert_int_equal(sg_escape("abcd", 4, out, 4), 3);
        assert_string_equal(out, "...");
        /* An escape that does not fit is dropped whole. */
        assert_int_equal(sg_escape("ab\x1b", 3, out, 6), 5);
        assert_string_equal(out, "ab...");
        /* 10 KiB in, bounded out. */
        {
                char small[64];

                assert_int_equal(sg_escape(big, sizeof big - 1, small, sizeof small), 63);
                assert_memory_equal(small + 60, "...", 4);
                assert_int_equal(sg_json_escape(big, sizeof big - 1, small, sizeof small), 63);
        }
}

/* A minimal strict JSON string-body checker: what a parser would accept between quotes. */
static bool valid_json_body(const char *s) {
        const unsigned char *p = (const unsigned char *) s;

        while (*p) {
                if (*p < 0x20)
                        return false;
                if (*p == '"')
                        return false;
                if (*p == '\\') {
                        p++;
                        if (*p == 'u') {
                                for (int i = 1; i <= 4; i++)
                                        if (!p[i] || !strchr("0123456789abcdefABCDEF", p[i]))
                                                return false;
                                p += 5;
                        } else if (*p && strchr("\"\\/bfnrt", *p))
                                p++;
                        else
                                return false;
                        continue;
                }
                if (*p < 0x80) {
                        p++;
                        continue;
                }
                /* UTF-8: lead byte, continuation bytes, no overlong or surrogate */
                {
                        size_t n;
                        uint32_t cp;

                        if (*p >= 0xc2 && *p <= 0xdf)
                                n = 2, cp = *p & 0x1f;
                        else if (*p >= 0xe0 && *p <= 0xef)
                                n = 3, cp = *p & 0x0f;
                        else if (*p >= 0xf0 && *p <= 0xf4)
                                n = 4, cp = *p & 0x07;
                        else
                                return false;
                        for (size_t i = 1; i < n; i++) {
                                if ((p[i] & 0xc0) != 0x80)
                                        return false;
                                cp = (cp << 6) | (p[i] & 0x3f);
                        }
                        if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
                            (cp >= 0xd800 && cp <= 0xdfff))
                                return false;
                        p += n;
                }
        }
        return true;
}

static void test_json_escape(void **state) {
        char out[512];

        (void) state;
        sg_json_escape("a\"b\\c", 5, out, sizeof out);
        assert_string_equal(out, "a\\\"b\\\\c");
        sg_json_escape("\x1b]0;pwned\x07", 10, out, sizeof out);
        assert_string_equal(out, "\\u001b]0;pwned\\u0007");
        assert_false(has_raw_control(out));
        sg_json_escape("\n\t\x7f", 3, out, sizeof out);
        assert_string_equal(out, "\\u000a\\u0009\\u007f");
        /* valid multi-byte UTF-8 passes through; invalid bytes become \u00XX */
        sg_json_escape("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x92", 14, out, sizeof out);
        assert_string_equal(out, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x92");
        sg_json_escape("\xff\xfe", 2, out, sizeof out);
        assert_string_equal(out, "\\u00ff\\u00fe");
        sg_json_escape("\xc0\xaf", 2, out, sizeof out); /* overlong '/' */
        assert_string_equal(out, "\\u00c0\\u00af");
        sg_json_escape("\xed\xa0\x80", 3, out, sizeof out); /* UTF-16 surrogate */
        assert_string_equal(out, "\\u00ed\\u00a0\\u0080");
        sg_json_escape("\xe2\x82", 2, out, sizeof out); /* cut sequence at the end */
        assert_string_equal(out, "\\u00e2\\u0082");
        sg_json_escape("\xf4\x90\x80\x80", 4, out, sizeof out); /* above U+10FFFF */
        assert_string_equal(out, "\\u00f4\\u0090\\u0080\\u0080");
        sg_json_escape("a\0b", 3, out, sizeof out);
        assert_string_equal(out, "a\\u0000b");
        assert_true(valid_json_body(out));
}

/* Code points that change how a terminal or a viewer shows the rest of the line: the C1
 * controls (U+009B is a one-byte CSI on many terminals) and the bidirectional overrides,
 * embeddings, isolates and marks ("Trojan Source"), plus the Unicode line separators. */
static const struct {
        const char *utf8;
        const char *json;
        const char *terminal;
} dangerous_cps[] = {
        { "\xc2\x80", "\\u0080", "\\xc2\\x80" },             /* first C1 control */
        { "\xc2\x9b", "\\u009b", "\\xc2\\x9b" },             /* CSI */
        { "\xc2\x9f", "\\u009f", "\\xc2\\x9f" },             /* last C1 control */
        { "\xd8\x9c", "\\u061c", "\\xd8\\x9c" },             /* ARABIC LETTER MARK */
        { "\xe2\x80\x8e", "\\u200e", "\\xe2\\x80\\x8e" },    /* LRM */
        { "\xe2\x80\x8f", "\\u200f", "\\xe2\\x80\\x8f" },    /* RLM */
        { "\xe2\x80\xa8", "\\u2028", "\\xe2\\x80\\xa8" },    /* LINE SEPARATOR */
        { "\xe2\x80\xa9", "\\u2029", "\\xe2\\x80\\xa9" },    /* PARAGRAPH SEPARATOR */
        { "\xe2\x80\xaa", "\\u202a", "\\xe2\\x80\\xaa" },    /* LRE */
        { "\xe2\x80\xab", "\\u202b", "\\xe2\\x80\\xab" },    /* RLE */
        { "\xe2\x80\xac", "\\u202c", "\\xe2\\x80\\xac" },    /* PDF */
        { "\xe2\x80\xad", "\\u202d", "\\xe2\\x80\\xad" },    /* LRO */
        { "\xe2\x80\xae", "\\u202e", "\\xe2\\x80\\xae" },    /* RLO */
        { "\xe2\x81\xa6", "\\u2066", "\\xe2\\x81\\xa6" },    /* LRI */
        { "\xe2\x81\xa7", "\\u2067", "\\xe2\\x81\\xa7" },    /* RLI */
        { "\xe2\x81\xa8", "\\u2068", "\\xe2\\x81\\xa8" },    /* FSI */
        { "\xe2\x81\xa9", "\\u2069", "\\xe2\\x81\\xa9" },    /* PDI */
};

static void test_json_escapes_c1_and_bidi(void **state) {
        char in[64], out[256], want[256];

        (void) state;
        for (size_t i = 0; i < sizeof dangerous_cps / sizeof dangerous_cps[0]; i++) {
                snprintf(in, sizeof in, "a%sb", dangerous_cps[i].utf8);
                sg_json_escape(in, strlen(in), out, sizeof out);
                snprintf(want, sizeof want, "a%sb", dangerous_cps[i].json);
                if (strcmp(out, want) != 0)
                        fail_msg("json escape of U+%s: got \"%s\", want \"%s\"", dangerous_cps[i].json + 2, out, want);
                assert_true(valid_json_body(out));
                /* ASCII only: nothing of the code point reaches the reader raw */
                for (const char *p = out; *p; p++)
                        assert_true(*p >= 0x20 && *p < 0x7f);

                sg_escape(in, strlen(in), out, sizeof out);
                snprintf(want, sizeof want, "a%sb", dangerous_cps[i].terminal);
                assert_string_equal(out, want);
        }
        /* The neighbours of those ranges are ordinary text and pass through. */
        snprintf(in, sizeof in, "%s", "\xc2\xa0\xe2\x80\x8d\xe2\x80\xaf\xe2\x81\xa5\xe2\x81\xaa");
        sg_json_escape(in, strlen(in), out, sizeof out);
        assert_string_equal(out, in);
        /* The rhost of the integration test: CSI and RLO among ordinary characters. */
        snprintf(in, sizeof in, "%s", "10.0.0.1\xc2\x9b" "31m\xe2\x80\xae" "evil");
        sg_json_escape(in, strlen(in), out, sizeof out);
        assert_string_equal(out, "10.0.0.1\\u009b31m\\u202eevil");
        /* Truncation never cuts a \uXXXX escape. */
        check_all_sizes(sg_json_escape, "x\xc2\x9by\xe2\x80\xaez", strlen("x\xc2\x9by\xe2\x80\xaez"));
}

static void test_json_always_valid(void **state) {
        uint32_t x = 0x12345678;
        unsigned char in[96];
        char out[700];

        (void) state;
        /* Pseudo-random byte strings of every length and output sizes small and large: the
         * output is always a valid JSON string body, truncated or not. */
        for (int round = 0; round < 20000; round++) {
                size_t len = (size_t) round % sizeof in, size;

                for (size_t i = 0; i < len; i++) {
                        x ^= x << 13;
                        x ^= x >> 17;
                        x ^= x << 5;
                        /* bias towards the interesting bytes */
                        in[i] = (x & 3) == 0 ? (unsigned char) (0x80 | (x >> 8)) : (unsigned char) (x >> 16);
                }
                size = round % 3 == 0 ? sizeof out : (size_t) (x % 40);
                sg_json_escape((const char *) in, len, out, size);
                if (size > 0 && !valid_json_body(out))
                        fail_msg("round %d: invalid JSON body", round);
                if (size > 0)
                        assert_false(has_raw_control(out));
                sg_escape((const char *) in, len, out, size);
                if (size > 0) {
                        for (const char *p = out; *p; p++)
                                assert_true(*p >= 0x20 && *p < 0x7f);
                }
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_user),
                cmocka_unit_test(test_rhost),
                cmocka_unit_test(test_tty),
                cmocka_unit_test(test_service),
                cmocka_unit_test(test_no_control),
                cmocka_unit_test(test_escape),
                cmocka_unit_test(test_escape_truncation),
                cmocka_unit_test(test_json_escape),
                cmocka_unit_test(test_json_escapes_c1_and_bidi),
                cmocka_unit_test(test_json_always_valid),
        };

        return cmocka_run_group_tests(tests, setup_big, NULL);
}
