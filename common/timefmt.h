/* SPDX-License-Identifier: MIT */
/* Time stamps for the CLI: parse ISO-8601 or relative ("1h" ago), format as UTC. Pure code. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Accepts "2026-11-29T01:02:03Z", "2026-11-29T01:02:03.123456Z", "2026-11-29 01:02:03"
 * (UTC), "2026-11-29" (midnight UTC), "now", "@EPOCHSECONDS", or a duration ("90s", "15m",
 * "2h", "1d", plain seconds) meaning that long before now_usec. 0 or -EINVAL. */
int sg_parse_time(const char *s, uint64_t now_usec, uint64_t *ret_usec);

/* "2026-11-29T01:02:03.123456Z". out needs 32 bytes. */
void sg_format_time(uint64_t usec, char *out, size_t outsize);
