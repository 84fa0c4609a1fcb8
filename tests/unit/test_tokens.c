/* SPDX-License-Identifier: MIT */
/*
 * daemon/tokens.c over a real store: an issued token redeems once for its user and then
 * never again; every other case gets its own verdict without using the token (another
 * user, a changed secret, an unknown id, text that is no token, revoked, expired); the id is
 * reported only when a stored token has it; the hash depends on the key; the store holds no
 * secret; pruning keeps a day of history.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <sodium.h>

#include "store.h"
#include "tokenfmt.h"
#include "tokens.h"

#define SEC UINT64_C(1000000)
#define NOW (UINT64_C(1800000000) * SEC)

static char tmpdir[PATH_MAX];
static uint8_t audit_key[SG_AUDIT_KEY_BYTES], key[SG_TOKEN_KEY_BYTES];
static sg_store *store;

static int setup(void **state) {
        const char *base = getenv("SG_TEST_TMP");
        struct sg_store_options o = { .audit_key = audit_key };
        char err[512] = "";

        (void) state;
        snprintf(tmpdir, sizeof tmpdir, "%s/sgtokens.XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp(tmpdir))
                return -1;
        randombytes_buf(key, sizeof key);
        o.state_dir = tmpdir;
        if (sg_store_open(&o, &store, err, sizeof err) < 0) {
                print_error("sg_store_open: %s\n", err);
                return -1;
        }
        return sg_store_begin(store);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) st;
        (void) flag;
        (void) ftw;
        return remove(path);
}

static int teardown(void **state) {
        (void) state;
        (void) sg_store_commit(store);
        store = sg_store_free(store);
        return nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static uint64_t issue(const char *user, uint64_t ttl, char text[SG_TOKEN_TEXT_LEN + 1]) {
        uint64_t id = 0;

        assert_int_equal(tokens_issue(store, key, user, NOW, NOW + ttl, 0, &id, text, SG_TOKEN_TEXT_LEN + 1), 0);
        assert_true(sg_token_shape(text));
        assert_true(id > 0 && id <= SG_TOKEN_ID_MAX);
        return id;
}

static void expect(const char *user, const char *text, uint64_t now, enum token_verdict want, uint64_t want_id) {
        enum token_verdict v = TOKEN_OK;
        uint64_t id = 12345;

        assert_int_equal(tokens_redeem(store, key, user, text, now, &v, &id), 0);
        if (v != want)
                fail_msg("verdict %s, expected %s", token_verdict_str(v), token_verdict_str(want));
        assert_int_equal(id, want_id);
}

static void test_once(void **state) {
        char t[SG_TOKEN_TEXT_LEN + 1];
        uint64_t id;

        (void) state;
        id = issue("alice", 3600 * SEC, t);
        expect("bob", t, NOW + 1, TOKEN_OTHER_USER, id);
        expect("alice", t, NOW + 1, TOKEN_OK, id);
        expect("alice", t, NOW + 2, TOKEN_USED, id);
}

static void test_refusals(void **state) {
        char t[SG_TOKEN_TEXT_LEN + 1], u[SG_TOKEN_TEXT_LEN + 1];
        uint8_t other_key[SG_TOKEN_KEY_BYTES];
        enum token_verdict v;
        uint64_t id, got;

        (void) state;
        id = issue("alice", 60 * SEC, t);
        /* a changed secret symbol */
        memcpy(u, t, sizeof t);
        u[40] = u[40] == 'A' ? 'B' : 'A';
        expect("alice", u, NOW + 1, TOKEN_MISMATCH, id);
        /* a changed id symbol: no such token, and no id reported (it may be anything typed) */
        memcpy(u, t, sizeof t);
        u[2] = u[2] == '7' ? '8' : '7';
        expect("alice", u, NOW + 1, TOKEN_UNKNOWN, 0);
        expect("alice", "not a token at all", NOW + 1, TOKEN_MALFORMED, 0);
        expect("alice", "", NOW + 1, TOKEN_MALFORMED, 0);
        /* another key: the stored hash does not match */
        memcpy(other_key, key, sizeof key);
        other_key[0] ^= 1;
        assert_int_equal(tokens_redeem(store, other_key, "alice", t, NOW + 1, &v, &got), 0);
        assert_int_equal(v, TOKEN_MISMATCH);
        /* expired at its expiry */
        expect("alice", t, NOW + 60 * SEC, TOKEN_EXPIRED, id);
        /* none of that used it */
        expect("alice", t, NOW + 59 * SEC, TOKEN_OK, id);

        id = issue("alice", 60 * SEC, t);
        assert_int_equal(sg_store_token_revoke(store, id, NOW + 1), 0);
        expect("alice", t, NOW + 2, TOKEN_REVOKED, id);
}

struct no_secret {
        const uint8_t *secret;
        unsigned rows;
};

static int check_row(void *userdata, const struct sg_token_row *row) {
        struct no_secret *n = userdata;

        n->rows++;
        assert_memory_not_equal(row->hash, n->secret, SG_TOKEN_SECRET_BYTES);
        return 0;
}

static void test_store_holds_no_secret(void **state) {
        char t[SG_TOKEN_TEXT_LEN + 1];
        uint8_t secret[SG_TOKEN_SECRET_BYTES];
        struct no_secret n = { .secret = secret };
        uint64_t id, id2;

        (void) state;
        id = issue("alice", 60 * SEC, t);
        assert_int_equal(sg_token_parse(t, &id2, secret), 0);
        assert_int_equal(id, id2);
        assert_int_equal(sg_store_token_foreach(store, check_row, &n), 0);
        assert_int_equal(n.rows, 1);
        sodium_memzero(secret, sizeof secret);
}

static uint64_t count(void) {
        uint64_t n = 99;

        assert_int_equal(sg_store_token_count(store, &n), 0);
        return n;
}

static void test_prune(void **state) {
        char t[SG_TOKEN_TEXT_LEN + 1];

        (void) state;
        (void) issue("alice", 60 * SEC, t);
        assert_int_equal(tokens_prune(store, NOW + 60 * SEC + SG_TOKEN_KEEP_USEC - 1), 0);
        assert_int_equal(count(), 1); /* ended less than a day ago: still listed */
        assert_int_equal(tokens_prune(store, NOW + 60 * SEC + SG_TOKEN_KEEP_USEC + 1), 0);
        assert_int_equal(count(), 0);
}

static void test_bad_arguments(void **state) {
        char t[SG_TOKEN_TEXT_LEN + 1];
        uint64_t id;

        (void) state;
        assert_int_equal(tokens_issue(store, key, "bad name", NOW, NOW + SEC, 0, &id, t, sizeof t), -EINVAL);
        assert_int_equal(tokens_issue(store, key, "alice", NOW, NOW, 0, &id, t, sizeof t), -EINVAL);
        assert_int_equal(tokens_issue(store, key, "alice", NOW, NOW + SEC, 0, &id, t, SG_TOKEN_TEXT_LEN), -EINVAL);
        assert_int_equal(tokens_issue(store, NULL, "alice", NOW, NOW + SEC, 0, &id, t, sizeof t), -EINVAL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_once, setup, teardown),
                cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
                cmocka_unit_test_setup_teardown(test_store_holds_no_secret, setup, teardown),
                cmocka_unit_test_setup_teardown(test_prune, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
        };

        if (sodium_init() < 0)
                return 1;
        return cmocka_run_group_tests(tests, NULL, NULL);
}
