/* SPDX-License-Identifier: MIT */
/*
 * One-time tokens as text (common/tokenfmt.h): what is printed reads back to the same id and
 * secret, the typing leniencies hold (case, O/I/L, dashes), every secret has one spelling,
 * and anything else is refused: wrong symbols, wrong counts, padding bits, id 0, overlong
 * input. One changed symbol always changes what is read (or makes it unreadable).
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <ctype.h>
#include <errno.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "tokenfmt.h"

static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

static void make(uint64_t id, const uint8_t *secret, char out[SG_TOKEN_TEXT_LEN + 1]) {
        assert_int_equal(sg_token_format(id, secret, out, SG_TOKEN_TEXT_LEN + 1), 0);
        assert_int_equal(strlen(out), SG_TOKEN_TEXT_LEN);
}

static void test_known_spelling(void **state) {
        uint8_t secret[SG_TOKEN_SECRET_BYTES] = { 0 };
        char t[SG_TOKEN_TEXT_LEN + 1];
        uint64_t id;
        uint8_t got[SG_TOKEN_SECRET_BYTES];

        (void) state;
        secret[0] = 0xff;
        secret[31] = 0x01;
        make(1, secret, t);
        /* id 1: 39 zero bits then a one; 0xff = 11111|111..., the last byte's low bit lands in
         * the 52nd symbol's top bit (16 = 'G'). */
        assert_string_equal(t, "0000-0001-ZW00-0000-0000-0000-0000-0000-0000-0000-0000-0000-0000-0000-000G");
        assert_int_equal(sg_token_parse(t, &id, got), 0);
        assert_int_equal(id, 1);
        assert_memory_equal(got, secret, sizeof secret);
        make(SG_TOKEN_ID_MAX, secret, t);
        assert_memory_equal(t, "ZZZZ-ZZZZ-", 10);
        assert_int_equal(sg_token_format(0, secret, t, sizeof t), -EINVAL);
        assert_int_equal(sg_token_format(SG_TOKEN_ID_MAX + 1, secret, t, sizeof t), -EINVAL);
        assert_int_equal(sg_token_format(1, secret, t, SG_TOKEN_TEXT_LEN), -EINVAL);
}

static void test_round_trip(void **state) {
        (void) state;
        for (int i = 0; i < 2000; i++) {
                uint8_t secret[SG_TOKEN_SECRET_BYTES], got[SG_TOKEN_SECRET_BYTES];
                char t[SG_TOKEN_TEXT_LEN + 1], idt[SG_TOKEN_ID_TEXT_LEN + 1];
                uint64_t id = 1 + randombytes_uniform(UINT32_MAX) * (uint64_t) 255 % SG_TOKEN_ID_MAX, back = 0;

                randombytes_buf(secret, sizeof secret);
                make(id, secret, t);
                for (size_t k = 0; k < SG_TOKEN_TEXT_LEN; k++)
                        assert_true(k % 5 == 4 ? t[k] == '-' : strchr(alphabet, t[k]) != NULL);
                assert_true(sg_token_shape(t));
                assert_int_equal(sg_token_parse(t, &back, got), 0);
                assert_int_equal(back, id);
                assert_memory_equal(got, secret, sizeof secret);
                /* The id as listed is the token's first two groups. */
                sg_token_id_format(id, idt);
                assert_memory_equal(idt, t, SG_TOKEN_ID_TEXT_LEN);
                back = 0;
                assert_int_equal(sg_token_id_parse(idt, &back), 0);
                assert_int_equal(back, id);
        }
}

static void test_typing_leniency(void **state) {
        uint8_t secret[SG_TOKEN_SECRET_BYTES], got[SG_TOKEN_SECRET_BYTES];
        char t[SG_TOKEN_TEXT_LEN + 1], u[SG_TOKEN_TEXT_LEN + 1];
        uint64_t id = 0;
        size_t k = 0;

        (void) state;
        memset(secret, 0x10, sizeof secret); /* contains 0 and 1 symbols */
        make(0x0123456789, secret, t);
        /* lower case, no dashes, 0 typed as o, 1 typed as l */
        for (size_t i = 0; t[i]; i++) {
                if (t[i] == '-')
                        continue;
                u[k++] = t[i] == '0' ? 'o' : t[i] == '1' ? 'l' : (char) tolower((unsigned char) t[i]);
        }
        u[k] = '\0';
        assert_int_equal(sg_token_parse(u, &id, got), 0);
        assert_int_equal(id, 0x0123456789);
        assert_memory_equal(got, secret, sizeof secret);
        assert_int_equal(sg_token_id_parse("04hm-d5t9", &id), 0);
        assert_int_equal(sg_token_id_parse("04HMD5T9", &id), 0);
}

static void test_refused(void **state) {
        uint8_t secret[SG_TOKEN_SECRET_BYTES], got[SG_TOKEN_SECRET_BYTES];
        char t[SG_TOKEN_TEXT_LEN + 1], u[SG_TOKEN_INPUT_MAX + 8];
        uint64_t id = 42;

        (void) state;
        randombytes_buf(secret, sizeof secret);
        make(77, secret, t);
        memset(got, 0xaa, sizeof got);

        assert_false(sg_token_shape(NULL));
        assert_false(sg_token_shape(""));
        assert_false(sg_token_shape("correct horse battery staple"));
        /* one symbol short, one too many */
        snprintf(u, sizeof u, "%.*s", SG_TOKEN_TEXT_LEN - 1, t);
        assert_false(sg_token_shape(u));
        snprintf(u, sizeof u, "%s0", t);
        assert_false(sg_token_shape(u));
        /* U and non-alphabet bytes anywhere */
        for (const char *bad = "U*_ \t\x7f\xc3"; *bad; bad++) {
                memcpy(u, t, sizeof t);
                u[20] = *bad;
                assert_false(sg_token_shape(u));
        }
        /* padding bits of the last symbol: only 0 and G (16) are spellings */
        memcpy(u, t, sizeof t);
        for (const char *p = alphabet; *p; p++) {
                u[SG_TOKEN_TEXT_LEN - 1] = *p;
                assert_int_equal(sg_token_shape(u), *p == '0' || *p == 'G');
        }
        /* id 0 */
        memcpy(u, t, sizeof t);
        memcpy(u, "0000-0000", 9);
        assert_false(sg_token_shape(u));
        /* overlong input, even when the symbols are right */
        memset(u, '-', sizeof u);
        memcpy(u + sizeof u - 1 - SG_TOKEN_TEXT_LEN, t, SG_TOKEN_TEXT_LEN + 1);
        assert_false(sg_token_shape(u));
        /* nothing written on refusal */
        assert_int_equal(sg_token_parse("nope", &id, got), -EINVAL);
        assert_int_equal(id, 42);
        for (size_t i = 0; i < sizeof got; i++)
                assert_int_equal(got[i], 0xaa);
        assert_int_equal(sg_token_id_parse("0000-0000", &id), -EINVAL);
        assert_int_equal(sg_token_id_parse("0000-000", &id), -EINVAL);
        assert_int_equal(sg_token_id_parse("0000-00001", &id), -EINVAL);
        assert_int_equal(sg_token_id_parse("000U-0001", &id), -EINVAL);
}

/* Changing any one symbol to any other readable value never reads as the same token. */
static void test_tamper(void **state) {
        uint8_t secret[SG_TOKEN_SECRET_BYTES], got[SG_TOKEN_SECRET_BYTES];
        char t[SG_TOKEN_TEXT_LEN + 1], u[SG_TOKEN_TEXT_LEN + 1];

        (void) state;
        randombytes_buf(secret, sizeof secret);
        make(123456789, secret, t);
        for (size_t i = 0; i < SG_TOKEN_TEXT_LEN; i++) {
                if (t[i] == '-')
                        continue;
                for (const char *p = alphabet; *p; p++) {
                        uint64_t id = 0;

                        if (*p == t[i])
                                continue;
                        memcpy(u, t, sizeof t);
                        u[i] = *p;
                        if (sg_token_parse(u, &id, got) == 0)
                                assert_true(id != 123456789 || memcmp(got, secret, sizeof got) != 0);
                }
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_known_spelling),
                cmocka_unit_test(test_round_trip),
                cmocka_unit_test(test_typing_leniency),
                cmocka_unit_test(test_refused),
                cmocka_unit_test(test_tamper),
        };

        if (sodium_init() < 0)
                return 1;
        return cmocka_run_group_tests(tests, NULL, NULL);
}
