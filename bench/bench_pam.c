/* SPDX-License-Identifier: MIT */
/*
 * bench_pam: runs real PAM transactions in-process from a private config dir
 * (pam_start_confdir, Linux-PAM >= 1.4), so process start-up is not measured. The password
 * is the first line of stdin (never on argv). Prints key=value lines; asserts nothing about
 * time. PAM's failure delay is replaced by a no-op (PAM_FAIL_DELAY): the delay is policy,
 * not cost, and both stacks would pay it alike.
 *
 *   bench_pam txn   CONFDIR USER N HASH SERVICE...
 *       N full transactions per service, interleaved: pam_start, authenticate, acct_mgmt,
 *       open_session, close_session, pam_end. Median/p99/mean per service. Unless HASH is
 *       "", also N crypt_rn(password, HASH) alone (prefix "crypt"), the cost of the hash.
 *   bench_pam rate  CONFDIR SERVICE USER SECONDS PROCS
 *       pam_authenticate transactions for SECONDS from PROCS processes; counts results
 *       (against a locked account: decisions/s).
 *   bench_pam once  CONFDIR SERVICE USER
 *       one pam_authenticate; exit 0 on success (used to fail on purpose).
 *   bench_pam flood CONFDIR SERVICE USER N
 *       N processes authenticate at once, each from its own source address; the parent
 *       samples the sum of their VmRSS and the host's MemAvailable every 2 ms, prints peaks,
 *       and the peak number of clients inside a hash at once (RSS > start + 32 MiB).
 */
#include <crypt.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <security/pam_appl.h>

static char password[1024];
/* Flood children use one source each: the daemon reserves every attempt before hashing, so
 * 40 parallel logins of one (user, source) would hit its lock after 5 and never hash. */
static char rhost[64] = "192.0.2.10";

static uint64_t now_ns(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

static int conv(int n, const struct pam_message **m, struct pam_response **resp, void *data) {
        struct pam_response *r = calloc((size_t) n, sizeof *r);

        (void) data;
        if (!r)
                return PAM_BUF_ERR;
        for (int i = 0; i < n; i++)
                if (m[i]->msg_style == PAM_PROMPT_ECHO_OFF || m[i]->msg_style == PAM_PROMPT_ECHO_ON)
                        r[i].resp = strdup(password);
        *resp = r;
        return PAM_SUCCESS;
}

static void no_delay(int retval, unsigned usec_delay, void *appdata) {
        (void) retval;
        (void) usec_delay;
        (void) appdata;
}

static int pam_begin(const char *confdir, const char *service, const char *user, pam_handle_t **ret) {
        static const struct pam_conv c = { conv, NULL };
        pam_handle_t *pamh = NULL;
        int r = pam_start_confdir(service, user, &c, confdir, &pamh);

        if (r != PAM_SUCCESS)
                return r;
        (void) pam_set_item(pamh, PAM_RHOST, rhost);
        (void) pam_set_item(pamh, PAM_TTY, "ssh");
        (void) pam_set_item(pamh, PAM_FAIL_DELAY, (const void *) no_delay);
        *ret = pamh;
        return PAM_SUCCESS;
}

/* One full transaction; returns the first failing PAM code, or PAM_SUCCESS. */
static int transaction(const char *confdir, const char *service, const char *user, const char **ret_step) {
        pam_handle_t *pamh = NULL;
        int r = pam_begin(confdir, service, user, &pamh);

        *ret_step = "pam_start";
        if (r != PAM_SUCCESS)
                return r;
        *ret_step = "authenticate";
        r = pam_authenticate(pamh, 0);
        if (r == PAM_SUCCESS) {
                *ret_step = "acct_mgmt";
                r = pam_acct_mgmt(pamh, 0);
        }
        if (r == PAM_SUCCESS) {
                *ret_step = "open_session";
                r = pam_open_session(pamh, 0);
                if (r == PAM_SUCCESS) {
                        *ret_step = "close_session";
                        r = pam_close_session(pamh, 0);
                }
        }
        pam_end(pamh, r);
        return r;
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;

        return x < y ? -1 : x > y;
}

static void stats(const char *prefix, uint64_t *ns, size_t n) {
        uint64_t sum = 0;
        size_t p99 = (n * 99 + 99) / 100 - 1; /* nearest rank: the ceil(0.99 n)-th value */

        qsort(ns, n, sizeof *ns, cmp_u64);
        for (size_t i = 0; i < n; i++)
                sum += ns[i];
        if (p99 >= n)
                p99 = n - 1;
        printf("%s_n=%zu %s_median_us=%.1f %s_p99_us=%.1f %s_mean_us=%.1f %s_min_us=%.1f\n", prefix, n,
               prefix, (double) ns[n / 2] / 1e3, prefix, (double) ns[p99] / 1e3, prefix,
               (double) sum / (double) n / 1e3, prefix, (double) ns[0] / 1e3);
}

/* Round-robin over the services (and crypt_rn alone, when a hash is given), one transaction
 * each per round, so that noise from the rest of the machine falls on all of them alike. */
static int do_txn(const char *confdir, const char *user, size_t n, const char *hash, char **services,
                  int n_services) {
        int cols = n_services + (hash ? 1 : 0);
        uint64_t **ns = calloc((size_t) cols, sizeof *ns);
        struct crypt_data *cd = calloc(1, sizeof *cd);
        const char *step;

        if (!ns || !cd)
                return 1;
        for (int j = 0; j < cols; j++)
                if (!(ns[j] = calloc(n, sizeof **ns)))
                        return 1;
        for (int j = 0; j < n_services; j++)
                for (size_t i = 0; i < 3; i++) /* warm-up: page cache, first dlopen, daemon */
                        if (transaction(confdir, services[j], user, &step) != PAM_SUCCESS) {
                                fprintf(stderr, "bench_pam: %s: warm-up transaction failed at %s\n",
                                        services[j], step);
                                return 1;
                        }
        for (size_t i = 0; i < n; i++) {
                for (int j = 0; j < n_services; j++) {
                        uint64_t t0 = now_ns();
                        int r = transaction(confdir, services[j], user, &step);

                        ns[j][i] = now_ns() - t0;
                        if (r != PAM_SUCCESS) {
                                fprintf(stderr, "bench_pam: %s: transaction %zu failed at %s: %s\n",
                                        services[j], i, step, pam_strerror(NULL, r));
                                return 1;
                        }
                }
                if (hash) {
                        uint64_t t0 = now_ns();
                        const char *h = crypt_rn(password, hash, cd, (int) sizeof *cd);

                        ns[n_services][i] = now_ns() - t0;
                        if (!h || strcmp(h, hash) != 0) {
                                fprintf(stderr, "bench_pam: crypt_rn does not reproduce the hash\n");
                                return 1;
                        }
                }
        }
        for (int j = 0; j < cols; j++) {
                char prefix[128];

                snprintf(prefix, sizeof prefix, "%s", j < n_services ? services[j] : "crypt");
                for (char *p = prefix; *p; p++)
                        if (*p == '-')
                                *p = '_';
                stats(prefix, ns[j], n);
                free(ns[j]);
        }
        explicit_bzero(cd, sizeof *cd);
        free(cd);
        free(ns);
        return 0;
}

static int auth_once(const char *confdir, const char *service, const char *user) {
        pam_handle_t *pamh = NULL;
        int r = pam_begin(confdir, service, user, &pamh);

        if (r != PAM_SUCCESS)
                return r;
        r = pam_authenticate(pamh, 0);
        pam_end(pamh, r);
        return r;
}

static int do_rate(const char *confdir, const char *service, const char *user, double seconds, int procs) {
        int barrier[2], result[2], status, rc = 0;
        uint64_t ok = 0, fail = 0;
        double rate = 0;

        if (pipe2(barrier, O_CLOEXEC) < 0 || pipe2(result, O_CLOEXEC) < 0)
                return 1;
        for (int i = 0; i < procs; i++) {
                pid_t pid = fork();

                if (pid < 0)
                        return 1;
                if (pid == 0) {
                        uint64_t k[3] = { 0, 0, 0 }, t0, stop;
                        char b;

                        close(barrier[1]);
                        if (read(barrier[0], &b, 1) < 0)
                                _exit(1);
                        t0 = now_ns();
                        stop = t0 + (uint64_t) (seconds * 1e9);
                        while (now_ns() < stop)
                                k[auth_once(confdir, service, user) == PAM_SUCCESS ? 0 : 1]++;
                        k[2] = now_ns() - t0;
                        _exit(write(result[1], k, sizeof k) == (ssize_t) sizeof k ? 0 : 1);
                }
        }
        close(barrier[0]);
        close(result[1]);
        usleep(100000);
        close(barrier[1]);
        for (int i = 0; i < procs; i++) {
                uint64_t k[3];

                if (read(result[0], k, sizeof k) != (ssize_t) sizeof k) {
                        rc = 1;
                        continue;
                }
                ok += k[0];
                fail += k[1];
                rate += (double) (k[0] + k[1]) / ((double) k[2] / 1e9);
        }
        while (wait(&status) > 0)
                if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                        rc = 1;
        printf("rate_procs=%d rate_success=%" PRIu64 " rate_failure=%" PRIu64 " rate_per_s=%.0f\n", procs, ok,
               fail, rate);
        return rc;
}

static long rss_kib(pid_t pid) {
        char path[64], buf[256];
        long pages_total, pages_rss;
        ssize_t n;
        int fd;

        snprintf(path, sizeof path, "/proc/%d/statm", (int) pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return 0;
        n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n <= 0)
                return 0;
        buf[n] = '\0';
        if (sscanf(buf, "%ld %ld", &pages_total, &pages_rss) != 2)
                return 0;
        return pages_rss * (sysconf(_SC_PAGESIZE) / 1024);
}

static long mem_available_kib(void) {
        char line[256];
        long v = 0;
        FILE *f = fopen("/proc/meminfo", "re");

        if (!f)
                return 0;
        while (fgets(line, sizeof line, f))
                if (sscanf(line, "MemAvailable: %ld kB", &v) == 1)
                        break;
        fclose(f);
        return v;
}

/* A client whose RSS grew by more than this since it started is inside an argon2id hash
 * (the bench uses 64 MiB hashes; loading the PAM stack adds ~2 MiB). */
#define BIG_KIB (32L * 1024)

static int do_flood(const char *confdir, const char *service, const char *user, int n) {
        pid_t *pids = calloc((size_t) n, sizeof *pids);
        long *base = calloc((size_t) n, sizeof *base);
        int barrier[2], status, ok = 0, done = 0, peak_big = 0;
        long base_sum = 0, peak_sum = 0, avail0, avail_min;
        uint64_t t0;

        if (!pids || !base || pipe2(barrier, O_CLOEXEC) < 0)
                return 1;
        for (int i = 0; i < n; i++) {
                pids[i] = fork();
                if (pids[i] < 0)
                        return 1;
                if (pids[i] == 0) {
                        char b;

                        close(barrier[1]);
                        snprintf(rhost, sizeof rhost, "198.51.100.%d", 1 + i % 250);
                        if (read(barrier[0], &b, 1) < 0)
                                _exit(2);
                        _exit(auth_once(confdir, service, user) == PAM_SUCCESS ? 0 : 1);
                }
        }
        close(barrier[0]);
        usleep(200000);
        for (int i = 0; i < n; i++)
                base_sum += (base[i] = rss_kib(pids[i]));
        avail0 = avail_min = mem_available_kib();
        t0 = now_ns();
        close(barrier[1]);
        while (done < n) {
                long sum = 0, avail;
                int big = 0;
                pid_t p;

                while ((p = waitpid(-1, &status, WNOHANG)) > 0) {
                        done++;
                        if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
                                ok++;
                        for (int i = 0; i < n; i++)
                                if (pids[i] == p)
                                        pids[i] = 0;
                }
                for (int i = 0; i < n; i++)
                        if (pids[i] > 0) {
                                long k = rss_kib(pids[i]);

                                sum += k;
                                /* half an argon2id block set above its start: hashing now */
                                big += k - base[i] > BIG_KIB;
                        }
                if (sum > peak_sum)
                        peak_sum = sum;
                if (big > peak_big)
                        peak_big = big;
                avail = mem_available_kib();
                if (avail > 0 && avail < avail_min)
                        avail_min = avail;
                usleep(2000);
        }
        printf("flood_n=%d flood_ok=%d flood_ms=%.0f flood_rss_base_kib=%ld flood_rss_peak_kib=%ld "
               "flood_rss_growth_kib=%ld flood_memavail_drop_kib=%ld flood_peak_hashing=%d\n",
               n, ok, (double) (now_ns() - t0) / 1e6, base_sum, peak_sum, peak_sum - base_sum,
               avail0 - avail_min, peak_big);
        free(pids);
        free(base);
        return ok == n ? 0 : 1;
}

int main(int argc, char **argv) {
        const char *mode = argc > 1 ? argv[1] : "";
        int rc;

        if (argc < 5) {
                fprintf(stderr, "usage: bench_pam txn CONFDIR USER N HASH SERVICE... | rate|once|flood CONFDIR SERVICE USER [ARGS] < password\n");
                return 2;
        }
        if (!fgets(password, sizeof password, stdin))
                password[0] = '\0';
        password[strcspn(password, "\n")] = '\0';

        if (strcmp(mode, "txn") == 0 && argc >= 7)
                rc = do_txn(argv[2], argv[3], strtoul(argv[4], NULL, 10), argv[5][0] ? argv[5] : NULL,
                            argv + 6, argc - 6);
        else if (strcmp(mode, "rate") == 0 && argc == 7)
                rc = do_rate(argv[2], argv[3], argv[4], strtod(argv[5], NULL), atoi(argv[6]));
        else if (strcmp(mode, "once") == 0 && argc == 5)
                rc = auth_once(argv[2], argv[3], argv[4]) == PAM_SUCCESS ? 0 : 1;
        else if (strcmp(mode, "flood") == 0 && argc == 6)
                rc = do_flood(argv[2], argv[3], argv[4], atoi(argv[5]));
        else {
                fprintf(stderr, "bench_pam: bad arguments\n");
                rc = 2;
        }
        explicit_bzero(password, sizeof password);
        return rc;
}
