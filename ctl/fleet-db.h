/* SPDX-License-Identifier: MIT */
/* `secguardctl fleet verify | locks | audit`: read the central PostgreSQL directly, connected
 * with the [fleet] section of the config exactly as secguard-fleetd connects (fleet/fleet-pg.h),
 * password included (docs/fleet.md). Read only; parameterised statements only. */
#pragma once

#include <stdbool.h>

#include "config.h"

/* argv[0] is "fleet", argv[1] the subcommand. Returns a secguardctl exit code: 0 ok, 1 failed
 * (or, for verify, a gap or a bad MAC found), 2 usage, 3 the database unreachable. */
int ctl_fleet_db(int argc, char **argv, bool json, const struct sg_config *cfg, const char *config_path);

/* Whether argv[1] names one of these subcommands. */
bool ctl_fleet_db_command(const char *sub);
