/* SPDX-License-Identifier: MIT */
/*
 * Opening the fleet database: the one place that turns [fleet] postgres and the password
 * (fleet_read_password) into a libpq connection, shared by secguard-fleetd and secguardctl's
 * fleet commands so both connect the same way (docs/fleet.md, "Connection security").
 */
#pragma once

#include <stddef.h>

#include <libpq-fe.h>

/* Connects (blocking, bounded by connect_timeout = 10 s, TCP keepalives on) to conninfo, a
 * libpq conninfo string or service, with password (NULL: none, e.g. a client certificate) and
 * application_name. Always returns a PGconn (NULL only when out of memory): the caller checks
 * PQstatus() and PQfinish()es it either way. */
PGconn *fleet_pg_open(const char *conninfo, const char *password, const char *application_name);

/* A libpq or server message on one line, control characters escaped (it may quote data from
 * the server); trailing newlines dropped. Returns out. */
const char *fleet_pg_msg(const char *m, char *out, size_t outsize);
