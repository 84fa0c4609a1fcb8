/* SPDX-License-Identifier: MIT */
/*
 * libpamtest checks of what the application sees: one outcome for every failure kind
 * (return code and messages), and timing that does not tell an unknown user from a wrong
 * password. Run by run_pamtest.sh, which starts the daemon and sets SG_T.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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

/* ---- Tests that change the shadow file for a while (restored by their teardown) ---- */

static char *saved_shadow;

static char *shadow_path(void) {
        static char path[4096];
        const char *t = getenv("SG_T");

        assert_non_null(t);
        snprintf(path, sizeof path, "%s/shadow", t);
        return path;
}

static char *read_text(const char *path) {
        FILE *f = fopen(path, "re");
        char *buf = NULL;
        size_t cap = 0, len = 0, n;

        assert_non_null(f);
        do {
                if (cap - len < 4096) {
                        cap = cap * 2 + 4096;
                        buf = realloc(buf, cap + 1);
                        assert_non_null(buf);
                }
                n = fread(buf + len, 1, cap - len, f);
                len += n;
        } while (n > 0);
        fclose(f);
        buf[len] = '\0';
        return buf;
}

/* Replaces the shadow file atomically (the module may read it at any moment), mode 0600. */
static void write_shadow(const char *content) {
        char tmp[4200];
        int fd;

        snprintf(tmp, sizeof tmp, "%s.pamtest", shadow_path());
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, content, strlen(content)), (ssize_t) strlen(content));
        assert_int_equal(close(fd), 0);
        assert_int_equal(rename(tmp, shadow_path()), 0);
}

/* The hash field of user's line in the saved shadow file. */
static void saved_hash(const char *user, char *out, size_t size) {
        size_t ulen = strlen(user);

        for (const char *line = saved_shadow; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
                if (strncmp(line, user, ulen) == 0 && line[ulen] == ':') {
                        const char *h = line + ulen + 1, *end = strchr(h, ':');

                        assert_non_null(end);
                        assert_true((size_t) (end - h) < size);
                        memcpy(out, h, (size_t) (end - h));
                        out[end - h] = '\0';
                        return;
                }
        }
        fail_msg("no %s in the test shadow file", user);
}

static int save_shadow(void **state) {
        (void) state;
        saved_shadow = read_text(shadow_path());
        return 0;
}

static int restore_shadow(void **state) {
        (void) state;
        write_shadow(saved_shadow);
        free(saved_shadow);
        saved_shadow = NULL;
        return 0;
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

/* Mann-Whitney P(a random sample of x is slower than one of y), and the ratio x/y of the
 * first quartiles. Other work on the machine only ever adds time, and under load the samples
 * split into a fast and a slow group whose sizes decide where a median falls (a ratio of
 * medians of 0.64 with P = 0.50 was seen under a CPU hog): the fast quartile is the cost. */
static void compare_timings(double *x, double *y, int n, double *ret_ratio, double *ret_p) {
        double u = 0;

        for (int i = 0; i < n; i++)
                for (int j = 0; j < n; j++)
                        u += x[i] > y[j] ? 1.0 : x[i] == y[j] ? 0.5 : 0.0;
        *ret_p = u / ((double) n * n);
        qsort(x, (size_t) n, sizeof(double), cmp_double);
        qsort(y, (size_t) n, sizeof(double), cmp_double);
        *ret_ratio = x[n / 4] / y[n / 4];
}

/*
 * Unknown user vs wrong password, interleaved so drift hits both alike. Many samples; we
 * compare first quartiles (see compare_timings) and require the distributions to overlap: the
 * probability that a random
 * unknown-user sample is slower than a random wrong-password one (the Mann-Whitney U
 * statistic over n*n) must be near 1/2. A real leak (a skipped hash) puts it near 0 or 1.
 * An unknown name costs what some real user's login costs (the stand-in hash), so this one
 * runs on a host whose real users are all on argon2id (root, alice; "locked" is unusable);
 * test_timing_on_a_sha512crypt_host covers a host on other schemes.
 */
static void test_timing_does_not_reveal_the_user(void **state) {
        enum { N = 100 };
        double known[N], unknown[N], ratio, p;
        char root[512], alice[512], locked[512], content[2048];
        struct outcome o;

        (void) state;
        saved_hash("root", root, sizeof root);
        saved_hash("alice", alice, sizeof alice);
        saved_hash("locked", locked, sizeof locked);
        snprintf(content, sizeof content, "root:%s:20000:0:99999:7:::\nalice:%s:20000:0:99999:7:::\n"
                 "locked:%s:20000:0:99999:7:::\n", root, alice, locked);
        write_shadow(content);
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
        compare_timings(unknown, known, N, &ratio, &p);
        printf("# timing: wrong password %.2f ms (quartile 1) %.2f ms (median), unknown user %.2f / %.2f ms, "
               "Q1 ratio %.3f, P(unknown slower) %.2f\n", known[N / 4], known[N / 2], unknown[N / 4],
               unknown[N / 2], ratio, p);
        assert_true(ratio > 0.8 && ratio < 1.25);
        assert_true(p > 0.2 && p < 0.8);
}

/*
 * The common host: real users on sha512crypt (default rounds) and one on yescrypt, upgrades
 * off. An unknown user must cost what a real user's wrong password costs there, not what the
 * preferred scheme (argon2id) would: every unknown name is checked against one real user's
 * hash, so across names it costs what real users cost. Wrong passwords cycle over the 10
 * real users, unknown names over 10 names (as many, so the daemon's per-name state is alike
 * on both sides; ghost0-9 happen to map one name to the yescrypt user, as the real side has
 * one, though 0-3 would pass too), interleaved.
 */
static void test_timing_on_a_sha512crypt_host(void **state) {
        enum { N = 300, USERS = 10 };
        double known[N], unknown[N], ratio, p;
        char sha[512], yes[512], users[USERS][16];
        char *content;
        size_t off = 0, cap = USERS * 700;
        struct outcome o;

        (void) state;
        saved_hash("carol", sha, sizeof sha);
        saved_hash("bob", yes, sizeof yes);
        assert_true(strncmp(sha, "$6$", 3) == 0 && strncmp(sha, "$6$rounds=", 10) != 0);
        assert_true(strncmp(yes, "$y$", 3) == 0);
        content = malloc(cap);
        assert_non_null(content);
        for (int i = 0; i < USERS; i++) {
                snprintf(users[i], sizeof users[i], i == USERS - 1 ? "bob" : "user%d", i);
                off += (size_t) snprintf(content + off, cap - off, "%s:%s:20000:0:99999:7:::\n", users[i],
                                         i == USERS - 1 ? yes : sha);
        }
        write_shadow(content);
        free(content);

        for (int i = 0; i < 5; i++) /* warm up caches and the daemon */
                auth_once("user0", "wrong", &o);
        for (int i = 0; i < N; i++) {
                char ghost[32];
                double t0 = now_ms();

                auth_once(users[i % USERS], "wrong password", &o);
                known[i] = now_ms() - t0;
                assert_int_equal(o.rv, PAM_AUTH_ERR);
                snprintf(ghost, sizeof ghost, "ghost%d", i % USERS);
                t0 = now_ms();
                auth_once(ghost, "wrong password", &o);
                unknown[i] = now_ms() - t0;
                assert_int_equal(o.rv, PAM_AUTH_ERR);
        }
        compare_timings(unknown, known, N, &ratio, &p);
        printf("# sha512crypt host: wrong password %.2f ms (quartile 1) %.2f ms (median), unknown user "
               "%.2f / %.2f ms, Q1 ratio %.3f, P(unknown slower) %.2f\n", known[N / 4], known[N / 2],
               unknown[N / 4], unknown[N / 2], ratio, p);
        assert_true(ratio > 0.8 && ratio < 1.25);
        assert_true(p > 0.2 && p < 0.8);
}

/*
 * sshd sends "\b\n\r\177INCORRECT", repeated or cut to the length of what was typed, as the
 * password of an invalid user (or of root when root logins are off), and expects it to fail.
 * pamtester reads one line, so this needs libpamtest: shadow entries whose hashes ARE hashes
 * of such strings (sha512crypt, made once with crypt(3): python3 -c 'import crypt;
 * print(crypt.crypt(PW, "$6$SALT$"))'), and exactly those bytes as the answer. A control entry
 * (first byte 'x' instead of '\b') proves such bytes reach the module intact and log in.
 */
static void test_sshd_fake_password_never_matches(void **state) {
        static const struct {
                const char *user, *hash, *pw;
                int expect;
        } cases[] = {
                { "fakectl", "$6$sgfakectl$MKW2gzt7xK6nkjUeL5bcmyV2x/aCknS5XGDbyqdts1oKLCJJsUh2nW65zDsMv/.WxHQ0mh3VScjKJLnTPva450",
                  "x\n\r\177INCORRECT", PAM_SUCCESS },
                { "fake14", "$6$sgfakepw$NDfbhsnvjnkO.YEDtQMciOk3Qh9v2.QhXti./N2guZi2fy3QmQSq0Ck8hl.RjO7cf.IfA8LX0ASGuhpAM9b1w.",
                  "\b\n\r\177INCORRECT", PAM_AUTH_ERR },
                { "fake5", "$6$sgfakepw5$6znSyCqWMtpof6MDi0SiSCN5Bc24PleB3WSm/4Ybi2rrg0frbUnh0rxGcwYD768IYuBXNVPHJxC1Nk3uN5p61.",
                  "\b\n\r\177I", PAM_AUTH_ERR },
                { "fake20", "$6$sgfakepw20$pVgqBXdEvS/EoZfvHZ7r04QG.kYKfXwHMq9b.yeLpDL6QYO07JwO3dxFVgAUpx0JCHzzd9HW.sqE0Q1fNcZLg.",
                  "\b\n\r\177INCORRECT\b\n\r\177IN", PAM_AUTH_ERR },
        };
        size_t n = sizeof cases / sizeof cases[0], cap = strlen(saved_shadow) + n * 200, off;
        char *content = malloc(cap);

        (void) state;
        assert_non_null(content);
        off = (size_t) snprintf(content, cap, "%s", saved_shadow);
        for (size_t i = 0; i < n; i++)
                off += (size_t) snprintf(content + off, cap - off, "%s:%s:20000:0:99999:7:::\n",
                                         cases[i].user, cases[i].hash);
        write_shadow(content);
        free(content);
        for (size_t i = 0; i < n; i++) {
                struct outcome o;

                auth_once(cases[i].user, cases[i].pw, &o);
                if (o.rv != cases[i].expect)
                        fail_msg("%s: %d, expected %d", cases[i].user, o.rv, cases[i].expect);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_success),
                cmocka_unit_test(test_one_outcome_for_every_failure),
                cmocka_unit_test(test_hostile_items),
                cmocka_unit_test_setup_teardown(test_timing_does_not_reveal_the_user, save_shadow, restore_shadow),
                cmocka_unit_test_setup_teardown(test_timing_on_a_sha512crypt_host, save_shadow, restore_shadow),
                cmocka_unit_test_setup_teardown(test_sshd_fake_password_never_matches, save_shadow, restore_shadow),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
