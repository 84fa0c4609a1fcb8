/* SPDX-License-Identifier: MIT */
/* What every secguardctl command prints and parses the same way: escaped text for terminals,
 * JSON fields, time arguments. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum {
        EXIT_OK = 0,
        EXIT_FAILED = 1,
        EXIT_USAGE = 2,
        EXIT_UNREACHABLE = 3,
        EXIT_PERMISSION = 4,
};

/* s with control characters and invalid bytes escaped (sg_escape), to f / stdout. */
void cli_fputs_escaped(FILE *f, const char *s);
void cli_print_escaped(const char *s);
/* One JSON member: ,"key":"escaped s" (no comma before the first; *first is then false). */
void cli_json_str(const char *key, const char *s, bool *first);
void cli_json_u64(const char *key, uint64_t v, bool *first);
/* A time argument (ISO-8601 UTC, @EPOCH up to 9999-12-31, now, an age) in microseconds.
 * 0 or -EINVAL. */
int cli_parse_time(const char *s, uint64_t now, uint64_t *ret);
/* cli_parse_time() for a command-line argument: on a bad one, says so on stderr with the
 * accepted forms and returns -EINVAL. */
int cli_time_arg(const char *s, uint64_t now, uint64_t *ret);
