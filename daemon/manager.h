/* SPDX-License-Identifier: MIT */
/* secguardd's manager: the event loop, the socket, connections, the dispatch table, and
 * the state (store, policy, permits) they act on. */
#pragma once

#include <stdbool.h>

#include "log.h"

struct manager_args {
        const char *config_path;
        bool config_required;  /* given on the command line: a missing file is an error */
        const char *socket;    /* overrides [daemon] socket when not NULL */
        const char *state_dir; /* overrides [daemon] state_dir when not NULL */
        enum sg_log_target log_target;
        bool debug;
};

typedef struct Manager Manager;

/* Loads and checks the config (and nothing else). */
int manager_new(const struct manager_args *a, Manager **ret);
Manager *manager_free(Manager *m);
/* True when the default config file does not exist and the built-in defaults are in force. */
bool manager_config_missing(const Manager *m);
/* Opens the store, replays state, listens, notifies READY=1. */
int manager_startup(Manager *m);
/* Runs until SIGTERM/SIGINT; returns the exit code. */
int manager_run(Manager *m);
