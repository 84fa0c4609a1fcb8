/* SPDX-License-Identifier: MIT */
/*
 * libpamtest checks of what the application sees: one outcome for every failure kind
 * (return code and messages), and timing that does not tell an unknown user from a wrong
 * password. Run by run_pamtest.sh, which starts the daemon and sets SG_T.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <libpamtest.h>
#include <security/pam_appl.h>

#define SERVICE "sgtest"
#define MSGS 8

struct outcome {
        int rv;
        char err[MSGS][PAM_MAX_MSG_SIZE];
        char info[MSGS][PAM_MAX_MSG_SIZE];
};

/* Runs one authentication; records the return code and every message shown. */
static void auth_once(const char *user, const char *password, struct outcome *o) {
        const char *pw[] = { password, NULL };
        char *err[MSGS + 1], *info[MSGS + 1];
        struct pamtest_conv_data conv = { .in_echo_off = pw, .out_err = err, .out_info = info };
        struct pam_testcase tests[] = { pam_test(PAMTEST_AUTHENTICATE, PAM_AUTH_ERR) };

        memset(o, 0, sizeof *o);
        for (int i = 0; i < MSGS; i++) {
                err[i] = o->err[i];
                info[i] = o->info[i];
        }
        err[MSGS] = info[MSGS] = NULL;
        (void) run_pamtest(SERVICE, user, &conv, tests, NULL);
        o->rv = tests[0].op_rv;
}

static void assert_same(const struct outcome *a, const struct outcome *b, const char *what) {
        if (a->rv != b->rv)
                fail_msg("%s: return code %d, wrong password gives %d", what, b->rv, a->rv);
        for (int i = 0; i < MSGS; i++) {
                if (strcmp(a->err[i], b->err[i]) != 0 || strcmp(a->info[i], b->info[i]) != 0)
                        fail_msg("%s: messages differ from a wrong password's", what);
        }
}

static void test_success(void **state) {
        struct outcome o;

        (void) state;
        auth_once("alice", getenv("SG_PW_ALICE"), &o);
        assert_int_equal(o.rv, PAM_SUCCESS);
}

static void test_one_outcome_for_every_failure(void **state) {
        char longpw[2100];
        struct {
                const char *what, *user, *pw;
        } cases[] = {
                { "unknown user", "mallory", "whatever" },
                { "locked hash", "locked", "whatever" },
                { "password over the limit", "alice", longpw },
                { "control bytes in the user name", "ali\x1b" "ce", "whatever" },
                { "SQL in the user name", "x'; DROP TABLE audit;--", "whatever" },
                { "sshd's fake password", "alice", "\b\n\r\177INCORRECT" },
                { "empty password", "alice", "" },
        };
        struct outcome ref, o;

        (void) state;
        memset(longpw, 'a', sizeof longpw - 1);
        longpw[sizeof longpw - 1] = '\0';
        auth_once("alice", "not the password", &ref);
        assert_int_equal(ref.rv, PAM_AUTH_ERR);
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                auth_once(cases[i].user, cases[i].pw, &o);
                assert_same(&ref, &o, cases[i].what);
        }
}

/* Direct libpam use for what run_pamtest cannot set: rhost and tty. */
static int conv_password(int n, const struct pam_message **msg, struct pam_response **resp, void *data) {
        struct pam_response *r = calloc((size_t) n, sizeof *r);

        if (!r)
                return PAM_BUF_ERR;
        for (int i = 0; i < n; i++)
                if (msg[i]->msg_style == PAM_PROMPT_ECHO_OFF || msg[i]->msg_style == PAM_PROMPT_ECHO_ON)
                        r[i].resp = strdup(data);
        *resp = r;
        return PAM_SUCCESS;
}

static int auth_items(const char *user, const char *pw, const char *rhost, const char *tty) {
        struct pam_conv conv = { conv_password, (void *) pw };
        pam_handle_t *pamh = NULL;
        int r;

        r = pam_start(SERVICE, user, &conv, &pamh);
        if (r != PAM_SUCCESS)
                return r;
        if (rhost)
                pam_set_item(pamh, PAM_RHOST, rhost);
        if (tty)
                pam_set_item(pamh, PAM_TTY, tty);
        r = pam_authenticate(pamh, 0);
        pam_end(pamh, r);
        return r;
}

/* Hostile rhost and tty values, and user names of 10 KiB and 1 MiB: the same refusal, and
 * the right password with a hostile rhost is refused too (invalid input never logs in). */
static void test_hostile_items(void **state) {
        const char *bad[] = { "x'); DROP TABLE audit;--", "\x1b]0;pwned\x07", "%n%n%n%s", "a b",
                              "\xff\xfe\x80", "../../etc/passwd", "host\nname" };
        const char *pw = getenv("SG_PW_ALICE");
        size_t sizes[] = { 10 * 1024, 1024 * 1024 };

        (void) state;
        /* A tty is only recorded, so printable oddities ("%n", "../x") are kept verbatim;
         * quotes, spaces, control and non-ASCII bytes are invalid input. */
        const char *bad_tty[] = { "x'); DROP TABLE audit;--", "\x1b]0;pwned\x07", "a b", "\xff\xfe\x80",
                                  "tty\n1" };

        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
                assert_int_equal(auth_items("alice", pw, bad[i], NULL), PAM_AUTH_ERR);
        for (size_t i = 0; i < sizeof bad_tty / sizeof bad_tty[0]; i++)
                assert_int_equal(auth_items("alice", pw, "192.0.2.1", bad_tty[i]), PAM_AUTH_ERR);
        for (size_t i = 0; i < 2; i++) {
                char *user = malloc(sizes[i] + 1);

                assert_non_null(user);
                memset(user, 'u', sizes[i]);
                user[sizes[i]] = '\0';
                assert_int_equal(auth_items(user, "whatever", NULL, NULL), PAM_AUTH_ERR);
                assert_int_equal(auth_items("alice", user, NULL, NULL), PAM_AUTH_ERR); /* 1 MiB password */
                free(user);
        }
        /* The daemon is still there and still says yes to the right answer. */
        assert_int_equal(auth_items("alice", pw, "192.0.2.1", "/dev/pts/1"), PAM_SUCCESS);
}

static double now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;

        return (x > y) - (x < y);
}

/*
 * Unknown user vs wrong password, interleaved so drift hits both alike. Many samples; we
 * compare medians and require the distributions to overlap: the probability that a random
 * unknown-user sample is slower than a random wrong-password one (the Mann-Whitney U
 * statistic over n*n) must be near 1/2. A real leak (a skipped hash) puts it near 0 or 1.
 */
static void test_timing_does_not_reveal_the_user(void **state) {
        enum { N = 100 };
        double known[N], unknown[N], mk, mu, ratio, u = 0, p;
        struct outcome o;

        (void) state;
        for (int i = 0; i < 5; i++) /* warm up caches and the daemon */
                auth_once("alice", "wrong", &o);
        for (int i = 0; i < N; i++) {
                double t0 = now_ms();

                auth_once("alice", "wrong password", &o);
                known[i] = now_ms() - t0;
                t0 = now_ms();
                auth_once("nosuchuser", "wrong password", &o);
                unknown[i] = now_ms() - t0;
        }
        for (int i = 0; i < N; i++)
                for (int j = 0; j < N; j++)
                        u += unknown[i] > known[j] ? 1.0 : unknown[i] == known[j] ? 0.5 : 0.0;
        p = u / (N * N);
        qsort(known, N, sizeof(double), cmp_double);
        qsort(unknown, N, sizeof(double), cmp_double);
        mk = known[N / 2];
        mu = unknown[N / 2];
        ratio = mu / mk;
        printf("# timing: median wrong password %.2f ms, unknown user %.2f ms, ratio %.3f, P(unknown slower) %.2f\n",
               mk, mu, ratio, p);
        assert_true(ratio > 0.8 && ratio < 1.25);
        assert_true(p > 0.2 && p < 0.8);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_success),
                cmocka_unit_test(test_one_outcome_for_every_failure),
                cmocka_unit_test(test_hostile_items),
                cmocka_unit_test(test_timing_does_not_reveal_the_user),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
