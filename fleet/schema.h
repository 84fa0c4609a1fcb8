/* SPDX-License-Identifier: MIT */
/* The central PostgreSQL schema, one migration per version (docs/fleet.md). Migration i
 * (0-based) brings the schema from version i to version i + 1. Fixed text: no data in it. */
#pragma once

#include <stddef.h>

extern const char *const fleet_migrations[];
extern const size_t fleet_migrations_n;
