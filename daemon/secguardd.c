/* SPDX-License-Identifier: MIT */
/* secguardd: run() -> manager_new() -> manager_startup() -> event loop. */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "manager.h"

static void usage(FILE *f) {
        fprintf(f,
                "Usage: secguardd [OPTIONS]\n"
                "  -c, --config FILE      config file (default %s)\n"
                "  -s, --socket PATH      socket path (overrides [daemon] socket)\n"
                "  -d, --state-dir DIR    state directory (overrides [daemon] state_dir)\n"
                "      --check-config     validate the config and exit (0 = valid)\n"
                "      --log-target T     auto|journal|stderr (default auto)\n"
                "      --debug            debug logging\n"
                "  -h, --help             this help\n"
                "      --version          print the version\n",
                SG_DEFAULT_CONFIG);
}

int main(int argc, char **argv) {
        enum { OPT_CHECK = 0x100, OPT_LOG_TARGET, OPT_DEBUG, OPT_VERSION };
        static const struct option options[] = {
                { "config", required_argument, NULL, 'c' },
                { "socket", required_argument, NULL, 's' },
                { "state-dir", required_argument, NULL, 'd' },
                { "check-config", no_argument, NULL, OPT_CHECK },
                { "log-target", required_argument, NULL, OPT_LOG_TARGET },
                { "debug", no_argument, NULL, OPT_DEBUG },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, OPT_VERSION },
                {}
        };
        struct manager_args a = { .config_path = SG_DEFAULT_CONFIG, .log_target = SG_LOG_AUTO };
        bool check_only = false;
        Manager *m = NULL;
        int c, r;

        /* Each connection takes two buffers of about 64 KiB and gives them back when it ends.
         * With glibc's default 128 KiB trim threshold a burst of connections moved the heap's
         * end (brk) up and down again and again, at 28 us a call on the bench machine (strace
         * -c: 0.28 brk per login under a flood). Up to 2 MiB of freed heap is kept instead. */
        (void) mallopt(M_TRIM_THRESHOLD, 2 * 1024 * 1024);

        while ((c = getopt_long(argc, argv, "c:s:d:h", options, NULL)) >= 0) {
                switch (c) {
                case 'c': a.config_path = optarg; a.config_required = true; break;
                case 's': a.socket = optarg; break;
                case 'd': a.state_dir = optarg; break;
                case OPT_CHECK: check_only = true; break;
                case OPT_LOG_TARGET:
                        r = sg_log_parse_target(optarg);
                        if (r < 0) {
                                fprintf(stderr, "secguardd: --log-target must be auto, journal or stderr\n");
                                return 2;
                        }
                        a.log_target = (enum sg_log_target) r;
                        break;
                case OPT_DEBUG: a.debug = true; break;
                case 'h': usage(stdout); return 0;
                case OPT_VERSION: printf("secguardd %s\n", SECGUARD_VERSION); return 0;
                default: usage(stderr); return 2;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "secguardd: unexpected argument \"%s\"\n", argv[optind]);
                return 2;
        }
        /* --check-config answers on the terminal, whatever the log target. */
        sg_log_open(check_only ? SG_LOG_STDERR : a.log_target);
        sg_log_set_debug(a.debug);

        r = manager_new(&a, &m);
        if (r < 0)
                return 1;
        if (check_only) {
                if (manager_config_missing(m))
                        printf("no config file at %s, using built-in defaults (valid)\n", a.config_path);
                else
                        printf("%s: configuration is valid\n", a.config_path);
                manager_free(m);
                return 0;
        }
        r = manager_startup(m);
        if (r < 0) {
                manager_free(m);
                return 1;
        }
        r = manager_run(m);
        manager_free(m);
        return r;
}
