/* SPDX-License-Identifier: MIT */
/* The central PostgreSQL schema, one migration per version (docs/fleet.md). Migration i
 * (0-based) brings the schema from version i to version i + 1. Fixed text: no data in it. */
#pragma once

#include <stddef.h>

extern const char *const fleet_migrations[];
extern const size_t fleet_migrations_n;

/* The lock decisions in force: action lock, id <= $1, until_usec > $2 (now), not followed by an
 * unlock of the same kind and key; columns id, action, kind, key, until_usec, origin_host,
 * reason; oldest first. Shared by secguard-fleetd (applied at start) and secguardctl fleet locks. */
extern const char fleet_sql_locks_in_force[];
