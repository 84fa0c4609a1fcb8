/* SPDX-License-Identifier: MIT */
/* The central PostgreSQL schema, one migration per version (docs/fleet.md). Migration i
 * (0-based) brings the schema from version i to version i + 1. Fixed text: no data in it. */
#pragma once

#include <stddef.h>

extern const char *const fleet_migrations[];
extern const size_t fleet_migrations_n;

/* SQL condition: an unlock u ends the lock d. A fleet-wide one (reason fleet) always, a lifted
 * one only the lockout its own host published (docs/state.md, "Lifted locks"). */
#define FLEET_SQL_LIFT_MATCHES " AND (u.reason <> 'lifted' OR (u.origin_host = d.origin_host AND d.reason = 'lockout'))"

/* The lock decisions in force: action lock, id <= $1, until_usec > $2 (now), not followed by an
 * unlock of the same kind and key that ends it (FLEET_SQL_LIFT_MATCHES); columns id, action, kind, key, until_usec, origin_host,
 * reason; oldest first. Shared by secguard-fleetd (applied at start) and secguardctl fleet locks. */
extern const char fleet_sql_locks_in_force[];
