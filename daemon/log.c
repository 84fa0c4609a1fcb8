/* SPDX-License-Identifier: MIT */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <systemd/sd-journal.h>

#define JOURNAL_SOCKET "/run/systemd/journal/socket"

static enum sg_log_target log_target = SG_LOG_STDERR;
static bool log_debug_on;

int sg_log_parse_target(const char *s) {
        if (strcmp(s, "auto") == 0)
                return SG_LOG_AUTO;
        if (strcmp(s, "journal") == 0)
                return SG_LOG_JOURNAL;
        if (strcmp(s, "stderr") == 0)
                return SG_LOG_STDERR;
        return -EINVAL;
}

void sg_log_open(enum sg_log_target t) {
        if (t == SG_LOG_AUTO)
                t = access(JOURNAL_SOCKET, W_OK) == 0 ? SG_LOG_JOURNAL : SG_LOG_STDERR;
        log_target = t;
}

void sg_log_set_debug(bool on) {
        log_debug_on = on;
}

__attribute__((format(printf, 3, 0)))
static void log_va(int prio, const char *suffix, const char *fmt, va_list ap) {
        char buf[2048];

        if (prio == LOG_DEBUG && !log_debug_on)
                return;
        vsnprintf(buf, sizeof buf, fmt, ap);
        if (log_target == SG_LOG_JOURNAL) {
                sd_journal_send("MESSAGE=%s%s", buf, suffix ? suffix : "",
                                "PRIORITY=%i", prio,
                                "SYSLOG_IDENTIFIER=secguardd", NULL);
                return;
        }
        fprintf(stderr, "secguardd: %s%s\n", buf, suffix ? suffix : "");
}

void sg_log(int prio, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        log_va(prio, NULL, fmt, ap);
        va_end(ap);
}

int sg_log_errno(int prio, int r, const char *fmt, ...) {
        char suffix[256];
        va_list ap;

        snprintf(suffix, sizeof suffix, ": %s", strerror(r < 0 ? -r : r));
        va_start(ap, fmt);
        log_va(prio, suffix, fmt, ap);
        va_end(ap);
        return r < 0 ? r : -r;
}

void sg_log_structured(int prio, struct iovec *iov, int n) {
        if (log_target == SG_LOG_JOURNAL) {
                (void) sd_journal_sendv(iov, n);
                return;
        }
        if (prio == LOG_DEBUG && !log_debug_on)
                return;
        /* One line, handed to stderr in one write (stderr is unbuffered: a write per field
         * cost nine system calls per login, and lines of concurrent writers could interleave):
         * the MESSAGE first, then the SECGUARD_* fields. A line longer than the buffer is cut
         * and ends in "...". */
        char line[8192];
        size_t len = 0;

        for (int pass = 0; pass < 2; pass++)
                for (int i = 0; i < n; i++) {
                        const char *f = iov[i].iov_base;
                        bool is_msg = iov[i].iov_len > 8 && memcmp(f, "MESSAGE=", 8) == 0;
                        bool is_sg = iov[i].iov_len > 9 && memcmp(f, "SECGUARD_", 9) == 0;
                        int w = 0;

                        if (len >= sizeof line)
                                break;
                        if (pass == 0 && is_msg)
                                w = snprintf(line + len, sizeof line - len, "secguardd: %.*s",
                                             (int) iov[i].iov_len - 8, f + 8);
                        else if (pass == 1 && is_sg)
                                w = snprintf(line + len, sizeof line - len, " %.*s", (int) iov[i].iov_len, f);
                        if (w > 0)
                                len += (size_t) w;
                }
        if (len >= sizeof line - 1) {
                len = sizeof line - 5;
                memcpy(line + len, "...", 3);
                len += 3;
        }
        line[len++] = '\n';
        (void) fwrite(line, 1, len, stderr);
}
