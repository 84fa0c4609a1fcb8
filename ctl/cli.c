/* SPDX-License-Identifier: MIT */
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "timefmt.h"
#include "validate.h"

/* The latest time the CLI accepts: 9999-12-31T23:59:59Z, as for ISO-8601 input. */
#define MAX_EPOCH_SEC 253402300799ull

void cli_fputs_escaped(FILE *f, const char *s) {
        char buf[4 * 1024 + 8];

        sg_escape(s, strlen(s), buf, sizeof buf);
        fputs(buf, f);
}

void cli_print_escaped(const char *s) {
        cli_fputs_escaped(stdout, s);
}

void cli_json_str(const char *key, const char *s, bool *first) {
        char buf[6 * 1024 + 8];

        sg_json_escape(s, strlen(s), buf, sizeof buf);
        printf("%s\"%s\":\"%s\"", *first ? "" : ",", key, buf);
        *first = false;
}

void cli_json_u64(const char *key, uint64_t v, bool *first) {
        printf("%s\"%s\":%" PRIu64, *first ? "" : ",", key, v);
        *first = false;
}

int cli_parse_time(const char *s, uint64_t now, uint64_t *ret) {
        unsigned long long sec;
        char *end;
        uint64_t t;

        if (sg_parse_time(s, now, &t) < 0)
                return -EINVAL;
        if (s[0] == '@') {
                errno = 0;
                sec = strtoull(s + 1, &end, 10);
                if (errno || sec > MAX_EPOCH_SEC)
                        return -EINVAL;
        }
        *ret = t;
        return 0;
}

int cli_time_arg(const char *s, uint64_t now, uint64_t *ret) {
        if (cli_parse_time(s, now, ret) == 0)
                return 0;
        fprintf(stderr, "secguardctl: bad time \"");
        cli_fputs_escaped(stderr, s);
        fprintf(stderr, "\" (ISO-8601 UTC like 2026-01-31T12:00:00Z, @EPOCH, now, or an age: 90s, 15m, 1h, 2d)\n");
        return -EINVAL;
}
