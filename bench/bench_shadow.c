/* SPDX-License-Identifier: MIT */
/*
 * bench_shadow FILE USER N [peer]: the module's shadow lookup (sg_shadow_find with the default
 * cost caps, as a login does it) N times in one process; with "peer", what pam_unix's
 * getspnam does through nss_files instead (fgetspent_r from the top until the name matches).
 * Prints "median_us p99_us p999_us found|absent". Used by bench/run for the big-shadow rows
 * (bench/README.md); asserts nothing.
 */
#include <errno.h>
#include <shadow.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "config.h"
#include "hashes.h"
#include "shadowfile.h"

static double now_us(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec * 1e6 + (double) ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;

        return x < y ? -1 : x > y;
}

/* nss_files' getspnam: read entries in order, stop at the first with the name. */
static int peer_lookup(const char *path, const char *user, bool *found) {
        char buf[8192];
        struct spwd sp, *res;
        FILE *f = fopen(path, "re");

        if (!f)
                return -errno;
        *found = false;
        while (fgetspent_r(f, &sp, buf, sizeof buf, &res) == 0)
                if (strcmp(sp.sp_namp, user) == 0) {
                        *found = true;
                        break;
                }
        fclose(f);
        return 0;
}

int main(int argc, char **argv) {
        struct sg_config cfg;
        struct sg_hash_caps caps;
        struct sg_shadow_match *m;
        bool peer, found = false;
        double *t;
        long n;

        if (argc < 4 || argc > 5 || (n = strtol(argv[3], NULL, 10)) <= 0 || n > 1000000 ||
            (argc == 5 && strcmp(argv[4], "peer") != 0)) {
                fprintf(stderr, "usage: bench_shadow FILE USER N [peer]\n");
                return 2;
        }
        peer = argc == 5;
        if (sodium_init() < 0)
                return 1;
        sg_config_defaults(&cfg);
        caps = (struct sg_hash_caps) { /* as the module builds them from the config */
                .argon2_memlimit = cfg.max_argon2_memlimit, .argon2_opslimit = cfg.max_argon2_opslimit,
                .argon2_threads = cfg.max_argon2_threads, .bcrypt_cost = cfg.max_bcrypt_cost,
                .yescrypt_n_log2 = cfg.max_yescrypt_cost, .sha_rounds = cfg.max_sha_rounds,
        };
        t = calloc((size_t) n, sizeof *t);
        m = malloc(sizeof *m);
        if (!t || !m)
                return 1;
        for (long i = 0; i < n; i++) {
                double t0 = now_us();
                int r = peer ? peer_lookup(argv[1], argv[2], &found) : sg_shadow_find(argv[1], argv[2], &caps, m);

                t[i] = now_us() - t0;
                if (!peer)
                        found = m->user == 0;
                if (r < 0) {
                        fprintf(stderr, "bench_shadow: %s: %s\n", argv[1], strerror(-r));
                        return 1;
                }
        }
        qsort(t, (size_t) n, sizeof *t, cmp_double);
        printf("%.1f %.1f %.1f %s\n", t[n / 2], t[(size_t) ((double) n * 0.99)], t[(size_t) ((double) n * 0.999)],
               found ? "found" : "absent");
        sodium_memzero(m, sizeof *m);
        free(m);
        free(t);
        return 0;
}
