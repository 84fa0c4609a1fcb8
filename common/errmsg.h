/* SPDX-License-Identifier: MIT */
/* The one way common/ code reports an error: a message for the caller, the code returned. */
#pragma once

#include <stddef.h>

/* Formats fmt into err (when err and errsize allow) and returns r. errno is left as it was,
 * so "%m" names the caller's error. */
int sg_errmsg(char *err, size_t errsize, int r, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
