/* SPDX-License-Identifier: MIT */
#include "timefmt.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "config.h"

#define USEC 1000000ull

static int parse_digits(const char *s, size_t n, int *ret) {
        int v = 0;

        for (size_t i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -EINVAL;
                v = v * 10 + (s[i] - '0');
        }
        *ret = v;
        return 0;
}

static int parse_iso(const char *s, uint64_t *ret) {
        struct tm tm = { 0 };
        int y, mo, d, h = 0, mi = 0, sec = 0, frac = 0, frac_digits = 0;
        size_t len = strlen(s), i;
        time_t t;

        if (len < 10 || s[4] != '-' || s[7] != '-' || parse_digits(s, 4, &y) < 0 ||
            parse_digits(s + 5, 2, &mo) < 0 || parse_digits(s + 8, 2, &d) < 0)
                return -EINVAL;
        i = 10;
        if (i < len) {
                if ((s[i] != 'T' && s[i] != ' ') || len < i + 9 || s[i + 3] != ':' || s[i + 6] != ':' ||
                    parse_digits(s + i + 1, 2, &h) < 0 || parse_digits(s + i + 4, 2, &mi) < 0 ||
                    parse_digits(s + i + 7, 2, &sec) < 0)
                        return -EINVAL;
                i += 9;
                if (i < len && s[i] == '.') {
                        for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++)
                                if (frac_digits < 6) {
                                        frac = frac * 10 + (s[i] - '0');
                                        frac_digits++;
                                }
                        if (frac_digits == 0)
                                return -EINVAL;
                        for (; frac_digits < 6; frac_digits++)
                                frac *= 10;
                }
                if (i < len && s[i] == 'Z')
                        i++;
                if (i != len)
                        return -EINVAL;
        }
        if (y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
                return -EINVAL;
        tm.tm_year = y - 1900;
        tm.tm_mon = mo - 1;
        tm.tm_mday = d;
        tm.tm_hour = h;
        tm.tm_min = mi;
        tm.tm_sec = sec;
        t = timegm(&tm);
        if (t < 0 || tm.tm_mday != d) /* timegm normalises 2026-02-31; refuse it */
                return -EINVAL;
        *ret = (uint64_t) t * USEC + (uint64_t) frac;
        return 0;
}

int sg_parse_time(const char *s, uint64_t now_usec, uint64_t *ret_usec) {
        uint64_t v;

        if (!s || !*s)
                return -EINVAL;
        if (strcmp(s, "now") == 0) {
                *ret_usec = now_usec;
                return 0;
        }
        if (s[0] == '@') {
                if (sg_parse_duration(s + 1, &v) < 0 || strpbrk(s + 1, "smhd") || v > UINT64_MAX / USEC)
                        return -EINVAL;
                *ret_usec = v * USEC;
                return 0;
        }
        if (strlen(s) >= 10 && s[4] == '-')
                return parse_iso(s, ret_usec);
        if (sg_parse_duration(s, &v) < 0 || v > now_usec / USEC)
                return -EINVAL;
        *ret_usec = now_usec - v * USEC;
        return 0;
}

void sg_format_time(uint64_t usec, char *out, size_t outsize) {
        time_t t = (time_t) (usec / USEC);
        struct tm tm;

        if (!gmtime_r(&t, &tm)) {
                snprintf(out, outsize, "invalid");
                return;
        }
        snprintf(out, outsize, "%04d-%02d-%02dT%02d:%02d:%02d.%06uZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 (unsigned) (usec % USEC));
}
