/* SPDX-License-Identifier: MIT */
/*
 * Forward-secure audit keys (common/fss.c): the seed's text form reads back, typos are
 * caught, the key steps are deterministic, one-way in the sense that matters here (each
 * step and the MAC key differ from the key they come from), and the state file round-trips.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <errno.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "fss.h"

static void test_seed_roundtrip(void **state) {
        uint8_t seed[SG_FSS_SEED_BYTES], back[SG_FSS_SEED_BYTES];
        char text[SG_FSS_SEED_TEXT_SIZE];

        (void) state;
        for (int i = 0; i < 200; i++) {
                randombytes_buf(seed, sizeof seed);
                assert_int_equal(sg_fss_seed_format(seed, text, sizeof text), 0);
                assert_int_equal(strlen(text), SG_FSS_SEED_TEXT_SIZE - 1);
                for (size_t k = 4; k < strlen(text); k += 5)
                        assert_int_equal(text[k], '-');
                assert_int_equal(sg_fss_seed_parse(text, back), 0);
                assert_memory_equal(seed, back, sizeof seed);
        }
        assert_int_equal(sg_fss_seed_format(seed, text, SG_FSS_SEED_TEXT_SIZE - 1), -ENOBUFS);
}

/* What a person typing it back may do: upper case, no dashes, I/L/O for 1/1/0, a newline. */
static void test_seed_lenient(void **state) {
        uint8_t seed[SG_FSS_SEED_BYTES] = { 0 }, back[SG_FSS_SEED_BYTES];
        char text[SG_FSS_SEED_TEXT_SIZE], typed[64];
        size_t n = 0;

        (void) state;
        seed[0] = 0x08; /* a '1' and '0's in the text */
        assert_int_equal(sg_fss_seed_format(seed, text, sizeof text), 0);
        for (const char *p = text; *p; p++) {
                if (*p == '-')
                        continue;
                typed[n++] = *p == '1' ? 'L' : *p == '0' ? 'O' : (char) (*p >= 'a' ? *p - 32 : *p);
        }
        typed[n++] = '\n';
        typed[n] = '\0';
        assert_int_equal(sg_fss_seed_parse(typed, back), 0);
        assert_memory_equal(seed, back, sizeof seed);
}

static void test_seed_typos(void **state) {
        uint8_t seed[SG_FSS_SEED_BYTES], back[SG_FSS_SEED_BYTES];
        char text[SG_FSS_SEED_TEXT_SIZE], bad[64];

        (void) state;
        randombytes_buf(seed, sizeof seed);
        assert_int_equal(sg_fss_seed_format(seed, text, sizeof text), 0);
        /* Every single-symbol change is caught by the check. */
        for (size_t i = 0; i < strlen(text); i++) {
                if (text[i] == '-')
                        continue;
                strcpy(bad, text);
                bad[i] = bad[i] == 'z' ? 'y' : 'z';
                assert_int_equal(sg_fss_seed_parse(bad, back), -EBADMSG);
        }
        strcpy(bad, text);
        bad[strlen(bad) - 1] = '\0';
        assert_int_equal(sg_fss_seed_parse(bad, back), -EINVAL); /* too short */
        snprintf(bad, sizeof bad, "%sx", text);
        assert_int_equal(sg_fss_seed_parse(bad, back), -EINVAL); /* too long */
        strcpy(bad, text);
        bad[0] = 'u';
        assert_int_equal(sg_fss_seed_parse(bad, back), -EINVAL); /* not in the alphabet */
        assert_int_equal(sg_fss_seed_parse("", back), -EINVAL);
}

static void test_key_steps(void **state) {
        uint8_t seed[SG_FSS_SEED_BYTES], k0[SG_FSS_KEY_BYTES], k1[SG_FSS_KEY_BYTES], again[SG_FSS_KEY_BYTES];
        uint8_t m0[SG_FSS_KEY_BYTES], m1[SG_FSS_KEY_BYTES];

        (void) state;
        randombytes_buf(seed, sizeof seed);
        sg_fss_key0(seed, k0);
        sg_fss_key0(seed, again);
        assert_memory_equal(k0, again, sizeof k0);
        sg_fss_step(k0, k1);
        assert_memory_not_equal(k0, k1, sizeof k0);
        sg_fss_step(again, again); /* in place */
        assert_memory_equal(k1, again, sizeof k1);
        sg_fss_mac_key(k0, m0);
        sg_fss_mac_key(k1, m1);
        assert_memory_not_equal(m0, k0, sizeof m0);
        assert_memory_not_equal(m0, k1, sizeof m0); /* the MAC key is not the next key */
        assert_memory_not_equal(m0, m1, sizeof m0);
        seed[0] ^= 1;
        sg_fss_key0(seed, again);
        assert_memory_not_equal(k0, again, sizeof k0);
}

static void test_state(void **state) {
        uint8_t key[SG_FSS_KEY_BYTES], back[SG_FSS_KEY_BYTES], buf[SG_FSS_STATE_BYTES];
        uint64_t epoch = 0;

        (void) state;
        randombytes_buf(key, sizeof key);
        sg_fss_state_encode(123456789, key, buf);
        assert_int_equal(sg_fss_state_decode(buf, &epoch, back), 0);
        assert_int_equal(epoch, 123456789);
        assert_memory_equal(key, back, sizeof key);
        buf[0] ^= 1;
        assert_int_equal(sg_fss_state_decode(buf, &epoch, back), -EBADMSG);
        sg_fss_state_encode(UINT64_MAX, key, buf);
        assert_int_equal(sg_fss_state_decode(buf, &epoch, back), -EBADMSG);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_seed_roundtrip), cmocka_unit_test(test_seed_lenient),
                cmocka_unit_test(test_seed_typos),     cmocka_unit_test(test_key_steps),
                cmocka_unit_test(test_state),
        };

        if (sodium_init() < 0)
                return 1;
        return cmocka_run_group_tests(tests, NULL, NULL);
}
