/* SPDX-License-Identifier: MIT */
/*
 * Group commit on a real store in a temp dir: waiters are told only after the commit and
 * with its result, a waiter that waits again during the release goes with the next commit,
 * cancel, the op cap acted on only after a request, and a failed commit rolling back and
 * telling every waiter.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "txn.h"

static char tmpdir[PATH_MAX];
static sg_store *store;
static Txn *txn;
static int committed_calls, committed_r;

struct rec {
        struct txn_waiter w;
        int calls, r;
        bool wait_again; /* waits for the next commit from inside done() */
};

static void on_done(struct txn_waiter *w, int r) {
        struct rec *x = (struct rec *) w;

        x->calls++;
        x->r = r;
        if (x->wait_again) {
                x->wait_again = false;
                assert_int_equal(txn_begin(txn), 0);
                txn_wait(txn, w);
        }
}

static void on_committed(void *userdata, int r) {
        (void) userdata;
        committed_calls++;
        committed_r = r;
}

static int setup(void **state) {
        const char *base = getenv("SG_TEST_TMP");
        uint8_t key[SG_AUDIT_KEY_BYTES] = { 1, 2, 3 };
        struct sg_store_options o = { .audit_key = key };
        char err[512];

        (void) state;
        snprintf(tmpdir, sizeof tmpdir, "%s/sgtxn.XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp(tmpdir))
                return -1;
        o.state_dir = tmpdir;
        if (sg_store_open(&o, &store, err, sizeof err) < 0) {
                fprintf(stderr, "sg_store_open: %s\n", err);
                return -1;
        }
        committed_calls = 0;
        committed_r = 1;
        return txn_new(NULL, store, on_committed, NULL, &txn);
}

static int teardown(void **state) {
        char path[PATH_MAX + 32];

        (void) state;
        txn = txn_free(txn);
        store = sg_store_free(store);
        snprintf(path, sizeof path, "%s/secguard.db", tmpdir);
        unlink(path);
        snprintf(path, sizeof path, "%s/secguard.db-wal", tmpdir);
        unlink(path);
        snprintf(path, sizeof path, "%s/secguard.db-shm", tmpdir);
        unlink(path);
        rmdir(tmpdir);
        return 0;
}

static struct rec new_rec(void) {
        return (struct rec) { .w = { .done = on_done }, .r = 1 };
}

static void test_waiters_told_after_commit(void **state) {
        struct rec a = new_rec(), b = new_rec();
        uint64_t id = 0;

        (void) state;
        assert_false(txn_is_open(txn));
        assert_int_equal(txn_begin(txn), 0);
        assert_true(txn_is_open(txn));
        assert_true(sg_store_in_transaction(store));
        assert_int_equal(sg_store_attempt_add(store, 1, "alice", "", SG_ATTEMPT_PENDING, &id), 0);
        txn_wait(txn, &a.w);
        txn_wait(txn, &b.w);
        txn_wait(txn, &b.w); /* twice: still told once */
        assert_int_equal(a.calls, 0);
        txn_after_request(txn); /* far below the cap: nothing */
        assert_int_equal(a.calls, 0);
        assert_true(txn_is_open(txn));

        assert_int_equal(txn_commit(txn), 0);
        assert_int_equal(a.calls, 1);
        assert_int_equal(a.r, 0);
        assert_int_equal(b.calls, 1);
        assert_int_equal(committed_calls, 1);
        assert_int_equal(committed_r, 0);
        assert_false(sg_store_in_transaction(store));
        /* Nothing open: a commit is a no-op and nobody is told again. */
        assert_int_equal(txn_commit(txn), 0);
        assert_int_equal(a.calls, 1);
        assert_int_equal(committed_calls, 1);
}

static void test_wait_without_transaction_is_immediate(void **state) {
        struct rec a = new_rec();

        (void) state;
        txn_wait(txn, &a.w);
        assert_int_equal(a.calls, 1);
        assert_int_equal(a.r, 0);
        assert_int_equal(committed_calls, 0);
}

static void test_cancel(void **state) {
        struct rec a = new_rec(), b = new_rec();

        (void) state;
        assert_int_equal(txn_begin(txn), 0);
        txn_wait(txn, &a.w);
        txn_wait(txn, &b.w);
        txn_cancel(&a.w);
        txn_cancel(&a.w); /* twice: harmless */
        assert_int_equal(txn_commit(txn), 0);
        assert_int_equal(a.calls, 0);
        assert_int_equal(b.calls, 1);
}

static void test_wait_again_goes_with_next_commit(void **state) {
        struct rec a = new_rec(), b = new_rec();

        (void) state;
        assert_int_equal(txn_begin(txn), 0);
        a.wait_again = true;
        txn_wait(txn, &a.w);
        txn_wait(txn, &b.w);
        assert_int_equal(txn_commit(txn), 0);
        assert_int_equal(a.calls, 1);
        assert_int_equal(b.calls, 1);
        assert_true(txn_is_open(txn)); /* a opened the next one */
        assert_int_equal(txn_commit(txn), 0);
        assert_int_equal(a.calls, 2);
        assert_int_equal(b.calls, 1);
        assert_int_equal(committed_calls, 2);
}

static void test_op_cap_after_request(void **state) {
        struct rec a = new_rec();

        (void) state;
        for (int i = 0; i < TXN_MAX_OPS - 1; i++)
                assert_int_equal(txn_begin(txn), 0);
        txn_wait(txn, &a.w);
        txn_after_request(txn);
        assert_int_equal(a.calls, 0); /* one short of the cap */
        assert_int_equal(txn_begin(txn), 0);
        assert_int_equal(a.calls, 0); /* the cap is reached, but begin never commits */
        txn_after_request(txn);
        assert_int_equal(a.calls, 1);
        assert_false(txn_is_open(txn));
}

static void test_failed_commit_tells_everyone(void **state) {
        struct rec a = new_rec(), b = new_rec();
        uint64_t id = 0, count = 0;

        (void) state;
        assert_int_equal(txn_begin(txn), 0);
        assert_int_equal(sg_store_attempt_add(store, 1, "alice", "", SG_ATTEMPT_PENDING, &id), 0);
        txn_wait(txn, &a.w);
        txn_wait(txn, &b.w);
        /* The transaction is lost under the group commit (as after an I/O error). */
        assert_int_equal(sg_store_rollback(store), 0);
        assert_true(txn_commit(txn) < 0);
        assert_int_equal(a.calls, 1);
        assert_true(a.r < 0);
        assert_int_equal(b.calls, 1);
        assert_int_equal(b.r, a.r);
        assert_int_equal(committed_calls, 1);
        assert_int_equal(committed_r, a.r);
        assert_false(txn_is_open(txn));
        /* Nothing of it is durable; the next transaction works. */
        assert_int_equal(sg_store_attempt_abandon_pending(store, &count), 0);
        assert_int_equal(count, 0);
        assert_int_equal(txn_begin(txn), 0);
        assert_int_equal(txn_commit(txn), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_waiters_told_after_commit, setup, teardown),
                cmocka_unit_test_setup_teardown(test_wait_without_transaction_is_immediate, setup, teardown),
                cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
                cmocka_unit_test_setup_teardown(test_wait_again_goes_with_next_commit, setup, teardown),
                cmocka_unit_test_setup_teardown(test_op_cap_after_request, setup, teardown),
                cmocka_unit_test_setup_teardown(test_failed_commit_tells_everyone, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
