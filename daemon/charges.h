/* SPDX-License-Identifier: MIT */
/* Local logins in progress, counted per invoking uid (the user who ran su or sudo), so one
 * user cannot hold more than a few at once. Pure bookkeeping; uid 0 is never counted. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

typedef struct Charges Charges;

int charges_new(Charges **ret);
Charges *charges_free(Charges *c); /* NULL-safe */
/* Counts one more login for uid when it has fewer than max; returns whether it did. */
bool charges_take(Charges *c, uint32_t uid, unsigned max);
/* One login of uid is over. */
void charges_drop(Charges *c, uint32_t uid);
unsigned charges_count(const Charges *c, uint32_t uid);
