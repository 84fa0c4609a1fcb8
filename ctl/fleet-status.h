/* SPDX-License-Identifier: MIT */
/* `secguardctl fleet status`: reads the status file secguard-fleetd keeps in its state
 * directory (docs/fleet.md). No daemon and no PostgreSQL connection needed. */
#pragma once

#include <stdbool.h>

/* argv[0] is "fleet". Returns a secguardctl exit code: 0 running and connected, 1 not
 * running, stale or not connected to PostgreSQL, 2 usage. */
int ctl_fleet(int argc, char **argv, bool json);
