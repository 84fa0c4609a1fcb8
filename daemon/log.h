/* SPDX-License-Identifier: MIT */
/* Daemon logging: journald when its socket is there (or when asked), else stderr.
 * Errors are logged once, by the caller that decides what to do about them. */
#pragma once

#include <stdbool.h>
#include <syslog.h>
#include <sys/uio.h>

enum sg_log_target {
        SG_LOG_AUTO = 0,
        SG_LOG_JOURNAL,
        SG_LOG_STDERR,
};

int sg_log_parse_target(const char *s); /* -EINVAL */
void sg_log_open(enum sg_log_target t);
void sg_log_set_debug(bool on);

void sg_log(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Logs "message: strerror(-r)" and returns r (always negative), systemd-style. */
int sg_log_errno(int prio, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define log_debug(...) sg_log(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) sg_log(LOG_INFO, __VA_ARGS__)
#define log_notice(...) sg_log(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...) sg_log(LOG_WARNING, __VA_ARGS__)
#define log_error(...) sg_log(LOG_ERR, __VA_ARGS__)
#define log_error_errno(r, ...) sg_log_errno(LOG_ERR, (r), __VA_ARGS__)
#define log_warning_errno(r, ...) sg_log_errno(LOG_WARNING, (r), __VA_ARGS__)

/* Sends prepared journald fields ("KEY=value" iovecs). With the stderr target, prints
 * MESSAGE= and the SECGUARD_* fields on one line instead. Values must already be escaped. */
void sg_log_structured(int prio, struct iovec *iov, int n);
