/* SPDX-License-Identifier: MIT */
#include "fleet-status.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io.h"
#include "validate.h"

#define DEFAULT_FLEET_STATE_DIR "/var/lib/secguard-fleet"
#define STALE_SEC 60 /* the helper rewrites the file at least every poll_interval */

static const char *const keys[] = {
        "updated_usec", "pid", "host_id", "connected", "last_shipped_id", "local_max_id", "lag_rows",
        "lag_seconds", "rows_shipped", "last_ship_usec", "last_decision_id", "decisions_published",
        "decisions_applied", "decisions_rejected", "daemon_reachable", "last_error",
};
#define NKEYS (sizeof keys / sizeof keys[0])

static int usage(void) {
        fprintf(stderr, "secguardctl: usage: fleet status [--state-dir DIR]\n");
        return 2;
}

int ctl_fleet(int argc, char **argv, bool json) {
        const char *dir = DEFAULT_FLEET_STATE_DIR;
        char path[PATH_MAX + 16], buf[4096], *vals[NKEYS] = { 0 }, *line, *save = NULL;
        ssize_t n;
        size_t i, got = 0;
        int fd, rc;

        if (argc < 2 || strcmp(argv[1], "status") != 0)
                return usage();
        for (int a = 2; a < argc; a++) {
                if (strcmp(argv[a], "--state-dir") == 0 && a + 1 < argc)
                        dir = argv[++a];
                else
                        return usage();
        }
        snprintf(path, sizeof path, "%s/status", dir);
        fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0) {
                fprintf(stderr, "secguardctl: cannot read %s: %s (is secguard-fleetd running?)\n", path,
                        strerror(errno));
                return 1;
        }
        while (got < sizeof buf - 1 && (n = read(fd, buf + got, sizeof buf - 1 - got)) > 0)
                got += (size_t) n;
        close(fd);
        buf[got] = '\0';
        for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                char *eq = strchr(line, '=');

                if (!eq)
                        continue;
                *eq = '\0';
                for (i = 0; i < NKEYS; i++)
                        if (strcmp(line, keys[i]) == 0)
                                vals[i] = eq + 1;
        }
        for (i = 0; i < NKEYS; i++)
                if (!vals[i])
                        vals[i] = "";

        uint64_t now = sg_now_real_usec(), updated = strtoull(vals[0], NULL, 10);
        long pid = strtol(vals[1], NULL, 10);
        bool running = pid > 0 && (kill((pid_t) pid, 0) == 0 || errno == EPERM);
        bool fresh = updated && now >= updated && (now - updated) / 1000000 <= STALE_SEC;
        bool connected = strcmp(vals[3], "yes") == 0;
        const char *state = !running ? "not running" : !fresh ? "stale" : connected ? "connected" : "disconnected";
        char esc[1024];

        rc = running && fresh && connected ? 0 : 1;
        if (json) {
                printf("{\"state\":\"%s\"", state);
                for (i = 0; i < NKEYS; i++) {
                        sg_json_escape(vals[i], strlen(vals[i]), esc, sizeof esc);
                        printf(",\"%s\":\"%s\"", keys[i], esc);
                }
                printf("}\n");
                return rc;
        }
        printf("state:            %s\n", state);
        for (i = 0; i < NKEYS; i++) {
                if (i == 0 || i == 1)
                        continue;
                sg_escape(vals[i], strlen(vals[i]), esc, sizeof esc);
                printf("%-18s%s\n", keys[i], esc);
        }
        printf("%-18s%" PRIu64 " s ago\n", "status_age", updated && now >= updated ? (now - updated) / 1000000 : 0);
        return rc;
}
