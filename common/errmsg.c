/* SPDX-License-Identifier: MIT */
#include "errmsg.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

int sg_errmsg(char *err, size_t errsize, int r, const char *fmt, ...) {
        int saved = errno;
        va_list ap;

        if (err && errsize > 0) {
                va_start(ap, fmt);
                errno = saved;
                vsnprintf(err, errsize, fmt, ap);
                va_end(ap);
        }
        errno = saved;
        return r;
}
