/* SPDX-License-Identifier: MIT */
/*
 * Addresses and CIDR lists: IPv4/IPv6 parsing, IPv4-mapped normalisation, prefix bounds and
 * host-bit masking, list parsing with the bad token reported, matching, and the source keys
 * that group IPv6 sources by prefix.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "cidr.h"

static void test_addr_parse(void **state) {
        static const char *const bad[] = {
                "", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.4/8", " 1.2.3.4", "1.2.3.4 ", "01.2.3.4x",
                "::g", "2001:db8:::1", "1.2.3.4%eth0", "%eth0", "localhost", "example.org", "[::1]",
                "2001:db8::1/64", "1:2:3:4:5:6:7:8:9", "-1.2.3.4",
        };
        struct sg_addr a;

        (void) state;
        assert_int_equal(sg_addr_parse("192.0.2.1", &a), 0);
        assert_int_equal(a.family, AF_INET);
        assert_memory_equal(a.bytes, "\xc0\x00\x02\x01", 4);

        assert_int_equal(sg_addr_parse("2001:db8::1", &a), 0);
        assert_int_equal(a.family, AF_INET6);
        assert_memory_equal(a.bytes, "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01", 16);

        /* IPv4-mapped IPv6 is the IPv4 host: it must share counters and allowlist entries. */
        assert_int_equal(sg_addr_parse("::ffff:192.0.2.1", &a), 0);
        assert_int_equal(a.family, AF_INET);
        assert_memory_equal(a.bytes, "\xc0\x00\x02\x01", 4);
        assert_int_equal(sg_addr_parse("::FFFF:c000:0201", &a), 0);
        assert_int_equal(a.family, AF_INET);

        /* a zone does not change the host */
        assert_int_equal(sg_addr_parse("fe80::1%eth0", &a), 0);
        assert_int_equal(a.family, AF_INET6);
        assert_int_equal(a.bytes[0], 0xfe);

        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                memset(&a, 0x77, sizeof a);
                if (sg_addr_parse(bad[i], &a) != -EINVAL)
                        fail_msg("\"%s\" accepted", bad[i]);
                assert_int_equal(a.family, 0x77777777); /* untouched on failure */
        }
        assert_int_equal(sg_addr_parse(NULL, &a), -EINVAL);
}

static void test_cidr_parse(void **state) {
        static const char *const bad[] = {
                "10.0.0.0/33", "10.0.0.0/-1", "10.0.0.0/", "10.0.0.0/+8", "10.0.0.0/8/8", "10.0.0.0/8x",
                "10.0.0.0/ 8", "2001:db8::/129", "2001:db8::/999999999999999999999", "/8", "fe80::/10%eth0",
                "fe80::%eth0/10", "::ffff:10.0.0.0/95", "host/8",
        };
        struct sg_cidr c;
        char buf[INET6_ADDRSTRLEN];

        (void) state;
        /* host bits masked */
        assert_int_equal(sg_cidr_parse("192.0.2.77/24", &c), 0);
        assert_int_equal(c.addr.family, AF_INET);
        assert_int_equal(c.prefix, 24);
        assert_memory_equal(c.addr.bytes, "\xc0\x00\x02\x00", 4);

        assert_int_equal(sg_cidr_parse("10.255.255.255/9", &c), 0);
        assert_memory_equal(c.addr.bytes, "\x0a\x80\x00\x00", 4);

        assert_int_equal(sg_cidr_parse("2001:db8:aaaa:bbbb::1/36", &c), 0);
        assert_int_equal(c.addr.family, AF_INET6);
        inet_ntop(AF_INET6, c.addr.bytes, buf, sizeof buf);
        assert_string_equal(buf, "2001:db8:a000::");

        /* bare address: full-length prefix */
        assert_int_equal(sg_cidr_parse("192.0.2.1", &c), 0);
        assert_int_equal(c.prefix, 32);
        assert_int_equal(sg_cidr_parse("::1", &c), 0);
        assert_int_equal(c.prefix, 128);

        /* bounds: 0 and full length are fine */
        assert_int_equal(sg_cidr_parse("0.0.0.0/0", &c), 0);
        assert_int_equal(c.prefix, 0);
        assert_int_equal(sg_cidr_parse("1.2.3.4/0", &c), 0);
        assert_memory_equal(c.addr.bytes, "\0\0\0\0", 4);
        assert_int_equal(sg_cidr_parse("::/0", &c), 0);
        assert_int_equal(sg_cidr_parse("2001:db8::1/128", &c), 0);
        assert_int_equal(c.addr.bytes[15], 1);

        /* an IPv4-mapped network becomes its IPv4 form */
        assert_int_equal(sg_cidr_parse("::ffff:10.1.2.3/104", &c), 0);
        assert_int_equal(c.addr.family, AF_INET);
        assert_int_equal(c.prefix, 8);
        assert_memory_equal(c.addr.bytes, "\x0a\0\0\0", 4);

        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
                if (sg_cidr_parse(bad[i], &c) != -EINVAL)
                        fail_msg("\"%s\" accepted", bad[i]);
}

static void test_list_parse(void **state) {
        struct sg_cidr_list l = { 0 };
        const char *bad = NULL;
        const char *s;

        (void) state;
        assert_int_equal(sg_cidr_list_parse("", &l, &bad), 0);
        assert_int_equal(l.n, 0);
        sg_cidr_list_free(&l);
        assert_int_equal(sg_cidr_list_parse(" , ,, ", &l, &bad), 0);
        assert_int_equal(l.n, 0);
        sg_cidr_list_free(&l);

        assert_int_equal(sg_cidr_list_parse("192.0.2.0/24, 2001:db8::/32 10.1.2.3,,fe80::1", &l, &bad), 0);
        assert_int_equal(l.n, 4);
        assert_int_equal(l.v[0].prefix, 24);
        assert_int_equal(l.v[1].addr.family, AF_INET6);
        assert_int_equal(l.v[2].prefix, 32);
        assert_int_equal(l.v[3].prefix, 128);
        sg_cidr_list_free(&l);
        assert_null(l.v);
        assert_int_equal(l.n, 0);
        sg_cidr_list_free(&l); /* twice is fine */
        sg_cidr_list_free(NULL);

        /* the offending token is reported; the output is untouched */
        s = "10.0.0.0/8, 10.0.0.300/32, ::1";
        l.n = 99;
        assert_int_equal(sg_cidr_list_parse(s, &l, &bad), -EINVAL);
        assert_ptr_equal(bad, s + 12);
        assert_int_equal(l.n, 99);
        l.n = 0;
        s = "::1 2001:db8::/200";
        assert_int_equal(sg_cidr_list_parse(s, &l, &bad), -EINVAL);
        assert_ptr_equal(bad, s + 4);
        s = "example.org";
        assert_int_equal(sg_cidr_list_parse(s, &l, NULL), -EINVAL);
        /* an absurdly long token is refused, not truncated into something valid */
        {
                char longtok[200];

                memset(longtok, '1', sizeof longtok - 1);
                longtok[sizeof longtok - 1] = '\0';
                memcpy(longtok, "10.0.0.1/", 9);
                assert_int_equal(sg_cidr_list_parse(longtok, &l, &bad), -EINVAL);
                assert_ptr_equal(bad, longtok);
        }
}

static void test_match(void **state) {
        struct sg_cidr_list l = { 0 };
        struct sg_addr a;

        (void) state;
        assert_int_equal(sg_cidr_list_parse("192.0.2.0/24 2001:db8:1::/48 198.51.100.7 ::ffff:203.0.113.0/120", &l, NULL),
                         0);
#define MATCHES(s, want)                                                        \
        do {                                                                    \
                assert_int_equal(sg_addr_parse(s, &a), 0);                      \
                if (sg_cidr_list_match(&l, &a) != (want))                       \
                        fail_msg("%s should %smatch", s, (want) ? "" : "not "); \
        } while (0)
        MATCHES("192.0.2.0", true);
        MATCHES("192.0.2.255", true);
        MATCHES("192.0.3.0", false);
        MATCHES("192.0.1.255", false);
        MATCHES("::ffff:192.0.2.9", true); /* mapped form of a listed IPv4 address */
        MATCHES("198.51.100.7", true);
        MATCHES("198.51.100.8", false);
        MATCHES("203.0.113.200", true);    /* listed in mapped form */
        MATCHES("2001:db8:1:ffff::1", true);
        MATCHES("2001:db8:2::1", false);
        MATCHES("fe80::1%eth0", false);
        MATCHES("::c000:201", false);      /* IPv4-compatible (deprecated) is IPv6, not 192.0.2.1 */
#undef MATCHES
        sg_cidr_list_free(&l);

        /* empty list and /0 */
        assert_int_equal(sg_addr_parse("192.0.2.1", &a), 0);
        assert_false(sg_cidr_list_match(&l, &a));
        assert_false(sg_cidr_list_match(NULL, &a));
        assert_int_equal(sg_cidr_list_parse("0.0.0.0/0", &l, NULL), 0);
        assert_true(sg_cidr_list_match(&l, &a));
        assert_int_equal(sg_addr_parse("::1", &a), 0);
        assert_false(sg_cidr_list_match(&l, &a)); /* families do not mix */
        sg_cidr_list_free(&l);
}

static void test_source_key(void **state) {
        char k1[64], k2[64], small[8];

        (void) state;
        assert_int_equal(sg_source_key("192.0.2.1", 64, k1, sizeof k1), 0);
        assert_string_equal(k1, "192.0.2.1");
        assert_int_equal(sg_source_key("::ffff:192.0.2.1", 64, k1, sizeof k1), 0);
        assert_string_equal(k1, "192.0.2.1");

        /* same /64: same key; different /64: different keys */
        assert_int_equal(sg_source_key("2001:db8:1:2::1", 64, k1, sizeof k1), 0);
        assert_int_equal(sg_source_key("2001:db8:1:2:ffff:ffff:ffff:ffff", 64, k2, sizeof k2), 0);
        assert_string_equal(k1, "2001:db8:1:2::/64");
        assert_string_equal(k1, k2);
        assert_int_equal(sg_source_key("2001:db8:1:3::1", 64, k2, sizeof k2), 0);
        assert_string_equal(k2, "2001:db8:1:3::/64");
        assert_string_not_equal(k1, k2);
        /* the prefix is honoured: a /48 groups them */
        assert_int_equal(sg_source_key("2001:db8:1:3::1", 48, k2, sizeof k2), 0);
        assert_string_equal(k2, "2001:db8:1::/48");
        assert_int_equal(sg_source_key("2001:db8::1", 128, k2, sizeof k2), 0);
        assert_string_equal(k2, "2001:db8::1/128");
        /* zone stripped: the same host on two interfaces is one source */
        assert_int_equal(sg_source_key("fe80::1:2:3:4%eth0", 64, k1, sizeof k1), 0);
        assert_string_equal(k1, "fe80::/64");

        /* names: one key however spelt (case, trailing dot); the local case verbatim */
        assert_int_equal(sg_source_key("host.example.org", 64, k1, sizeof k1), 0);
        assert_string_equal(k1, "host.example.org");
        assert_int_equal(sg_source_key("Host.EXAMPLE.org.", 64, k2, sizeof k2), 0);
        assert_string_equal(k2, "host.example.org");
        assert_int_equal(sg_source_key("", 64, k1, sizeof k1), 0);
        assert_string_equal(k1, "");
        assert_int_equal(sg_source_key(NULL, 64, k1, sizeof k1), 0);
        assert_string_equal(k1, "");
        /* an existing key stays what it is */
        assert_int_equal(sg_source_key("2001:db8:1:2::/64", 64, k2, sizeof k2), 0);
        assert_string_equal(k2, "2001:db8:1:2::/64");

        /* never truncated: -ENOSPC and an empty string */
        assert_int_equal(sg_source_key("long-host-name.example.org", 64, small, sizeof small), -ENOSPC);
        assert_string_equal(small, "");
        assert_int_equal(sg_source_key("2001:db8::1", 64, small, sizeof small), -ENOSPC);
        assert_string_equal(small, "");
        assert_int_equal(sg_source_key("1.2.3.4", 64, small, sizeof small), 0);
        assert_int_equal(sg_source_key("10.20.30.40", 64, small, sizeof small), -ENOSPC);
        assert_int_equal(sg_source_key("1234567", 64, small, sizeof small), 0);
        assert_int_equal(sg_source_key("12345678", 64, small, sizeof small), -ENOSPC);
        assert_int_equal(sg_source_key("x", 64, small, 0), -ENOSPC);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_addr_parse),
                cmocka_unit_test(test_cidr_parse),
                cmocka_unit_test(test_list_parse),
                cmocka_unit_test(test_match),
                cmocka_unit_test(test_source_key),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
