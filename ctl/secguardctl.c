/* SPDX-License-Identifier: MIT */
/*
 * secguardctl: the admin CLI. Talks to secguardd over its socket (checking the server is
 * root first), prints human tables or JSON Lines. Every string that reaches the terminal
 * goes through sg_escape / sg_json_escape: no raw control byte from a username is printed.
 * Arguments are parsed completely before the daemon is contacted, so a usage error is
 * exit 2 whether or not the daemon runs.
 * Exit codes (secguardctl(8), EXIT STATUS): 0 ok, 1 failed, 2 usage, 3 daemon unreachable, 4 permission.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <sodium.h>

#include "audit-keys.h"
#include "cli.h"
#include "config.h"
#include "event_table.h"
#include "fleet-db.h"
#include "fleet-status.h"
#include "hashes.h"
#include "io.h"
#include "protocol.h"
#include "seal.h"
#include "timefmt.h"
#include "tokenfmt.h"
#include "validate.h"

enum command {
        CMD_STATUS,
        CMD_LOCKS,
        CMD_UNLOCK,
        CMD_AUDIT,
        CMD_AUDIT_VERIFY,
        CMD_AUDIT_VERIFY_OFFLINE, /* --seed, --seed-file or --db: no daemon */
        CMD_AUDIT_SETUP_KEYS,
        CMD_SESSIONS,
        CMD_SESSION_KILL,
        CMD_HASH,
        CMD_KEYGEN,
        CMD_TOKEN_ISSUE,
        CMD_TOKEN_LIST,
        CMD_TOKEN_REVOKE,
};

struct ctl {
        const char *socket;
        const char *config;
        const char *admin_group;     /* [daemon] admin_group, for the permission-denied hint */
        bool json;
        unsigned timeout_ms;
        int fd;
        struct sg_msg *msg;
        struct sg_writer w;          /* the request, built while parsing the arguments */
        const char *unlock_target;   /* unlock: the user or address, for the reply line */
        const char *reveal_key;      /* audit --reveal --key FILE */
        seal_opener *opener;         /* loaded from reveal_key before connecting */
        uint64_t sealed_unopened;    /* sealed rows the key could not open */
        enum sg_scheme scheme;       /* hash --scheme */
        const char *public_path, *secret_path; /* keygen */
        const char *token_user;      /* token issue: checked against the user database */
        const char *seed_text, *seed_file, *db_path; /* audit verify */
        const char *state_dir;       /* audit setup-keys --state-dir */
};

static void usage(FILE *f) {
        fprintf(f,
                "Usage: secguardctl [--socket PATH] [--config FILE] [--json] COMMAND\n"
                "Commands:\n"
                "  status                       daemon version, uptime, counts, config in force\n"
                "  locks                        current lockouts\n"
                "  unlock USER                  clear a user's lock (audited)\n"
                "  unlock --rhost ADDR [--fleet]\n"
                "                               clear a source address's lock (audited); --fleet: on\n"
                "                               every host of the fleet (through secguard-fleetd)\n"
                "  fleet status [--state-dir DIR]\n"
                "                               secguard-fleetd: PostgreSQL connection, lag, last\n"
                "                               shipped id (exit 1 when not running or not connected)\n"
                "  fleet locks                  fleet lock decisions in force (from PostgreSQL)\n"
                "  fleet audit [--host ID] [audit's filters]\n"
                "                               every host's audit rows in PostgreSQL, newest first\n"
                "  fleet verify [--host ID [--key-file AUDIT_KEY] [--seed-file F]]\n"
                "                               missing id ranges per host (exit 1 on a gap); with a\n"
                "                               host's audit.key and seed, its MAC chain too\n"
                "  audit [--user U] [--event E] [--rhost H] [--since T] [--until T] [--limit N]\n"
                "        [--reveal --key SECRET_KEY_FILE]\n"
                "                               review events, newest last (T: ISO-8601 UTC,\n"
                "                               @EPOCH, now, or an age: 90s, 15m, 1h, 2d);\n"
                "                               --reveal opens sealed usernames with the key\n"
                "  audit verify [--seed SEED|-  | --seed-file FILE] [--db FILE]\n"
                "                               check the audit HMAC chain (exit 1 if broken);\n"
                "                               with the seed, every epoch, offline (no daemon)\n"
                "  audit setup-keys [--state-dir DIR]\n"
                "                               make the forward-secure verification seed; it is\n"
                "                               printed once, on the last line\n"
                "  sessions                     open login sessions\n"
                "  session kill ID              end a session (audited)\n"
                "  token issue USER [--ttl DURATION]\n"
                "                               a one-time login token (default 1h, at most 30d),\n"
                "                               printed once, on the last line\n"
                "  token list                   tokens with their state\n"
                "  token revoke ID              revoke an unused token (audited)\n"
                "  hash [--scheme argon2id|bcrypt|yescrypt|sha512crypt]\n"
                "                               read a password from stdin, print its hash\n"
                "  keygen --public FILE --secret FILE\n"
                "                               make the key pair for sealed usernames\n"
                "Exit codes: 0 ok, 1 failed, 2 usage, 3 daemon unreachable, 4 permission denied.\n");
}

/* ---- output helpers: everything printed is escaped ---- */

/* ---- talking to the daemon ---- */

static int ctl_connect(struct ctl *c) {
        int r = sg_connect(c->socket, sg_now_mono_usec() + (uint64_t) c->timeout_ms * 1000, 0);

        if (r == -EPERM) {
                fprintf(stderr, "secguardctl: the server at %s is not running as root; refusing to talk to it\n",
                        c->socket);
                return -EXIT_PERMISSION;
        }
        if (r < 0) {
                fprintf(stderr, "secguardctl: cannot reach secguardd at %s: %s\n", c->socket, strerror(-r));
                return -EXIT_UNREACHABLE;
        }
        c->fd = r;
        return 0;
}

/* Maps a daemon error reply to an exit code, printing it. */
static int reply_error(struct ctl *c) {
        uint64_t e = sg_msg_u64(c->msg, SG_F_ERROR, 0);
        const char *d = sg_msg_str(c->msg, SG_F_DETAIL);

        fprintf(stderr, "secguardctl: ");
        if (d) {
                char buf[2048];

                sg_escape(d, strlen(d), buf, sizeof buf);
                fprintf(stderr, "%s\n", buf);
        } else
                fprintf(stderr, "%s\n", sg_err_str(e));
        if (e == SG_ERR_PERMISSION) {
                /* Say who may: the daemon's table (dispatch.c) and the group of this config. */
                if (c->admin_group && c->admin_group[0])
                        fprintf(stderr, "secguardctl: status, locks, audit, sessions and token list are open to root and members of group "
                                "\"%s\" ([daemon] admin_group); everything else needs root\n", c->admin_group);
                else
                        fprintf(stderr, "secguardctl: every command needs root ([daemon] admin_group is empty)\n");
                return EXIT_PERMISSION;
        }
        return EXIT_FAILED;
}

/* An exchange may take ten times the connect timeout (audit queries read many rows). */
static uint64_t ctl_deadline(const struct ctl *c) {
        return sg_now_mono_usec() + (uint64_t) c->timeout_ms * 1000 * 10;
}

/* What ctl_call and ctl_next return for r (what they got) and the reply now in c->msg. */
static int ctl_reply(struct ctl *c, int r, const char *what) {
        if (r < 0) {
                fprintf(stderr, "secguardctl: %s failed: %s\n", what, strerror(-r));
                return -EXIT_UNREACHABLE;
        }
        if (c->msg->type == SG_MSG_ERROR)
                return -reply_error(c);
        return 0;
}

/* Sends c->w; on a reply of type OK or ROW returns 0 with it in c->msg. */
static int ctl_call(struct ctl *c) {
        return ctl_reply(c, sg_call(c->fd, &c->w, c->msg, ctl_deadline(c)), "request");
}

/* Reads the next reply (a ROW of a listing, or its end) into c->msg, as ctl_call. */
static int ctl_next(struct ctl *c) {
        return ctl_reply(c, sg_read_msg(c->fd, c->msg, ctl_deadline(c), NULL), "reading the reply");
}

/* ---- commands ---- */

static int cmd_status(struct ctl *c) {
        const struct sg_msg *m = c->msg;
        int r;

        r = ctl_call(c);
        if (r < 0)
                return -r;
        if (c->json) {
                bool first = true;

                printf("{");
                cli_json_str("version", sg_msg_str(m, SG_F_VERSION) ?: "", &first);
                cli_json_u64("uptime_sec", sg_msg_u64(m, SG_F_UPTIME, 0), &first);
                cli_json_u64("locks", sg_msg_u64(m, SG_F_LOCKS, 0), &first);
                cli_json_u64("sessions", sg_msg_u64(m, SG_F_SESSIONS, 0), &first);
                cli_json_u64("audit_rows", sg_msg_u64(m, SG_F_AUDIT_ROWS, 0), &first);
                cli_json_u64("hash_permits_used", sg_msg_u64(m, SG_F_PERMITS, 0), &first);
                cli_json_u64("hash_permits", sg_msg_u64(m, SG_F_PERMITS_MAX, 0), &first);
                cli_json_str("config", sg_msg_str(m, SG_F_CONFIG) ?: "", &first);
                printf("}\n");
                return EXIT_OK;
        }
        printf("secguardd ");
        cli_print_escaped(sg_msg_str(m, SG_F_VERSION) ?: "?");
        printf(", up %" PRIu64 " s\n", sg_msg_u64(m, SG_F_UPTIME, 0));
        printf("locks: %" PRIu64 "  sessions: %" PRIu64 "  audit rows: %" PRIu64 "  hash permits: %" PRIu64
               "/%" PRIu64 "\n",
               sg_msg_u64(m, SG_F_LOCKS, 0), sg_msg_u64(m, SG_F_SESSIONS, 0),
               sg_msg_u64(m, SG_F_AUDIT_ROWS, 0), sg_msg_u64(m, SG_F_PERMITS, 0),
               sg_msg_u64(m, SG_F_PERMITS_MAX, 0));
        printf("config in force:\n");
        if (sg_msg_str(m, SG_F_CONFIG)) {
                char *dup = strdup(sg_msg_str(m, SG_F_CONFIG)), *save = NULL;

                if (!dup)
                        return EXIT_FAILED;
                for (char *line = strtok_r(dup, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                        printf("  ");
                        cli_print_escaped(line);
                        printf("\n");
                }
                free(dup);
        }
        return EXIT_OK;
}

static int cmd_locks(struct ctl *c) {
        uint64_t n = 0;
        int r;

        r = ctl_call(c);
        if (!c->json && r == 0)
                printf("%-14s %-40s %8s %6s  %s\n", "KIND", "KEY", "FAILURES", "LEVEL", "UNTIL (UTC)");
        while (r == 0 && c->msg->type == SG_MSG_ROW) {
                const struct sg_msg *m = c->msg;
                /* a fleet lock carries SG_F_FLEET=1, its origin host and decision id */
                bool fleet = sg_msg_u64(m, SG_F_FLEET, 0) == 1;
                char until[40];

                sg_format_time(sg_msg_u64(m, SG_F_UNTIL, 0), until, sizeof until);
                if (c->json) {
                        bool first = true;

                        printf("{");
                        cli_json_str("kind", sg_msg_str(m, SG_F_KIND) ?: "", &first);
                        cli_json_str("key", sg_msg_str(m, SG_F_KEY) ?: "", &first);
                        cli_json_u64("failures", sg_msg_u64(m, SG_F_FAILURES, 0), &first);
                        cli_json_u64("level", sg_msg_u64(m, SG_F_COUNT, 0), &first);
                        cli_json_str("until", until, &first);
                        cli_json_str("origin", fleet ? "fleet" : "local", &first);
                        if (fleet) {
                                cli_json_str("host", sg_msg_str(m, SG_F_HOST) ?: "", &first);
                                cli_json_u64("decision", sg_msg_u64(m, SG_F_ID, 0), &first);
                        }
                        printf("}\n");
                } else {
                        const char *k = sg_msg_str(m, SG_F_KEY) ?: "", *kd = sg_msg_str(m, SG_F_KIND) ?: "";
                        char key[1024], kind[4 * 32 + 16];

                        sg_escape(k, strlen(k), key, sizeof key);
                        sg_escape(kd, strlen(kd), kind, sizeof kind - 8);
                        if (fleet)
                                strcat(kind, " (fleet)");
                        printf("%-14s %-40s %8" PRIu64 " %6" PRIu64 "  %s\n", kind, key,
                               sg_msg_u64(m, SG_F_FAILURES, 0), sg_msg_u64(m, SG_F_COUNT, 0), until);
                }
                n++;
                r = ctl_next(c);
        }
        if (r < 0)
                return -r;
        if (!c->json && n == 0)
                printf("(no locks in force)\n");
        return EXIT_OK;
}

static void print_cell(const char *s, int width) {
        char buf[4 * 256 + 8];

        sg_escape(s, strlen(s), buf, sizeof buf);
        printf("%-*s ", width, *buf ? buf : "-");
}

static int cmd_sessions(struct ctl *c) {
        uint64_t n = 0;
        int r;

        r = ctl_call(c);
        if (!c->json && r == 0)
                printf("%-32s %-12s %-8s %-10s %-20s %8s %-6s %-20s %s\n", "ID", "USER", "SERVICE", "TTY", "RHOST",
                       "PID", "LOGIND", "STARTED (UTC)", "IDLE");
        while (r == 0 && c->msg->type == SG_MSG_ROW) {
                const struct sg_msg *m = c->msg;
                char started[40];

                sg_format_time(sg_msg_u64(m, SG_F_TIME, 0), started, sizeof started);
                if (c->json) {
                        bool first = true;

                        printf("{");
                        cli_json_str("id", sg_msg_str(m, SG_F_SESSION_ID) ?: "", &first);
                        cli_json_str("user", sg_msg_str(m, SG_F_USER) ?: "", &first);
                        cli_json_u64("uid", sg_msg_u64(m, SG_F_UID, 0), &first);
                        cli_json_str("service", sg_msg_str(m, SG_F_SERVICE) ?: "", &first);
                        cli_json_str("tty", sg_msg_str(m, SG_F_TTY) ?: "", &first);
                        cli_json_str("rhost", sg_msg_str(m, SG_F_RHOST) ?: "", &first);
                        cli_json_u64("pid", sg_msg_u64(m, SG_F_PID, 0), &first);
                        cli_json_str("logind_id", sg_msg_str(m, SG_F_LOGIND_ID) ?: "", &first);
                        cli_json_str("started", started, &first);
                        if (sg_msg_has(m, SG_F_IDLE))
                                cli_json_u64("idle_sec", sg_msg_u64(m, SG_F_IDLE, 0), &first);
                        printf("}\n");
                } else {
                        print_cell(sg_msg_str(m, SG_F_SESSION_ID) ?: "", 32);
                        print_cell(sg_msg_str(m, SG_F_USER) ?: "", 12);
                        print_cell(sg_msg_str(m, SG_F_SERVICE) ?: "", 8);
                        print_cell(sg_msg_str(m, SG_F_TTY) ?: "", 10);
                        print_cell(sg_msg_str(m, SG_F_RHOST) ?: "", 20);
                        printf("%8" PRIu64 " ", sg_msg_u64(m, SG_F_PID, 0));
                        print_cell(sg_msg_str(m, SG_F_LOGIND_ID) ?: "", 6);
                        printf("%-20s ", started);
                        if (sg_msg_has(m, SG_F_IDLE))
                                printf("%" PRIu64 "s\n", sg_msg_u64(m, SG_F_IDLE, 0));
                        else
                                printf("-\n");
                }
                n++;
                r = ctl_next(c);
        }
        if (r < 0)
                return -r;
        if (!c->json && n == 0)
                printf("(no open sessions)\n");
        return EXIT_OK;
}

static int cmd_session_kill(struct ctl *c) {
        int r = ctl_call(c);

        if (r < 0)
                return -r;
        if (c->json)
                printf("{\"killed\":true}\n");
        else
                printf("session ending\n");
        return EXIT_OK;
}

static int parse_session(struct ctl *c, int argc, char **argv) {
        if (argc != 3 || strcmp(argv[1], "kill") != 0) {
                fprintf(stderr, "secguardctl: usage: session kill ID\n");
                return EXIT_USAGE;
        }
        if (!sg_valid_session_id(argv[2])) {
                fprintf(stderr, "secguardctl: not a session id (32 hex digits, see secguardctl sessions)\n");
                return EXIT_USAGE;
        }
        sg_writer_init(&c->w, SG_MSG_SESSION_KILL);
        sg_writer_str(&c->w, SG_F_SESSION_ID, argv[2]);
        return 0;
}

/* getopt_long over a command's own arguments (argv[0] is the command name). */
static void reset_getopt(void) {
        optind = 0; /* glibc: 0 re-initialises the parser for a new argv */
}

/* ---- one-time tokens ---- */

#define TOKEN_TTL_MAX_SEC (30ull * 86400)

static int cmd_token_issue(struct ctl *c) {
        const struct sg_msg *m = c->msg;
        const char *token;
        char idt[SG_TOKEN_ID_TEXT_LEN + 1], expires[40], line[SG_TOKEN_TEXT_LEN + 2];
        int r = ctl_call(c);

        if (r < 0)
                return -r;
        token = sg_msg_str(m, SG_F_TOKEN);
        if (m->type != SG_MSG_OK || !token || !sg_token_shape(token)) {
                fprintf(stderr, "secguardctl: the daemon's answer holds no token\n");
                return EXIT_FAILED;
        }
        sg_token_id_format(sg_msg_u64(m, SG_F_ID, 0), idt);
        sg_format_time(sg_msg_u64(m, SG_F_UNTIL, 0), expires, sizeof expires);
        if (c->json) {
                bool first = true;

                printf("{");
                cli_json_str("id", idt, &first);
                cli_json_str("user", c->token_user, &first);
                cli_json_str("expires", expires, &first);
                printf(",\"token\":\"");
        } else {
                printf("one-time token %s for ", idt);
                cli_print_escaped(c->token_user);
                printf(", valid until %s\n", expires);
                printf("Give it to the user over a trusted channel: it is shown only this once.\n");
        }
        /* The token goes out with write(2), not through stdio's buffer, and is wiped. */
        fflush(stdout);
        r = snprintf(line, sizeof line, "%s%s", token, c->json ? "" : "\n");
        if (r > 0 && (size_t) r < sizeof line && write(STDOUT_FILENO, line, (size_t) r) != r)
                r = -1;
        sodium_memzero(line, sizeof line);
        sodium_memzero(c->msg, sizeof *c->msg);
        if (c->json)
                printf("\"}\n");
        return r > 0 ? EXIT_OK : EXIT_FAILED;
}

static int cmd_token_list(struct ctl *c) {
        uint64_t n = 0;
        int r;

        r = ctl_call(c);
        if (!c->json && r == 0)
                printf("%-9s %-12s %-8s %-27s %-27s %s\n", "ID", "USER", "STATE", "ISSUED (UTC)", "EXPIRES (UTC)",
                       "BY UID");
        while (r == 0 && c->msg->type == SG_MSG_ROW) {
                const struct sg_msg *m = c->msg;
                char idt[SG_TOKEN_ID_TEXT_LEN + 1], issued[40], expires[40];

                sg_token_id_format(sg_msg_u64(m, SG_F_ID, 0), idt);
                sg_format_time(sg_msg_u64(m, SG_F_TIME, 0), issued, sizeof issued);
                sg_format_time(sg_msg_u64(m, SG_F_UNTIL, 0), expires, sizeof expires);
                if (c->json) {
                        bool first = true;

                        printf("{");
                        cli_json_str("id", idt, &first);
                        cli_json_str("user", sg_msg_str(m, SG_F_USER) ?: "", &first);
                        cli_json_str("issued", issued, &first);
                        cli_json_str("expires", expires, &first);
                        cli_json_str("state", sg_msg_str(m, SG_F_STATE) ?: "", &first);
                        cli_json_u64("issuer_uid", sg_msg_u64(m, SG_F_UID, 0), &first);
                        printf("}\n");
                } else {
                        printf("%-9s ", idt);
                        print_cell(sg_msg_str(m, SG_F_USER) ?: "", 12);
                        print_cell(sg_msg_str(m, SG_F_STATE) ?: "", 8);
                        printf("%-27s %-27s %" PRIu64 "\n", issued, expires, sg_msg_u64(m, SG_F_UID, 0));
                }
                n++;
                r = ctl_next(c);
        }
        if (r < 0)
                return -r;
        if (!c->json && n == 0)
                printf("(no tokens)\n");
        return EXIT_OK;
}

static int cmd_token_revoke(struct ctl *c) {
        char idt[SG_TOKEN_ID_TEXT_LEN + 1];
        int r = ctl_call(c);

        if (r < 0)
                return -r;
        sg_token_id_format(sg_msg_u64(c->msg, SG_F_ID, 0), idt);
        if (c->json)
                printf("{\"revoked\":\"%s\"}\n", idt);
        else
                printf("token %s revoked\n", idt);
        return EXIT_OK;
}

/* token issue USER [--ttl DURATION] | token list | token revoke ID */
static int parse_token(struct ctl *c, int argc, char **argv, enum command *ret_cmd) {
        static const struct option options[] = {
                { "ttl", required_argument, NULL, 't' },
                {}
        };
        const char *sub = argc > 1 ? argv[1] : "";
        uint64_t ttl = 0, id;
        bool ttl_given = false;
        int o;

        if (strcmp(sub, "list") == 0 && argc == 2) {
                sg_writer_init(&c->w, SG_MSG_TOKENS);
                *ret_cmd = CMD_TOKEN_LIST;
                return 0;
        }
        if (strcmp(sub, "revoke") == 0 && argc == 3) {
                if (sg_token_id_parse(argv[2], &id) < 0) {
                        fprintf(stderr, "secguardctl: not a token id (XXXX-XXXX, see secguardctl token list)\n");
                        return EXIT_USAGE;
                }
                sg_writer_init(&c->w, SG_MSG_TOKEN_REVOKE);
                sg_writer_u64(&c->w, SG_F_ID, id);
                *ret_cmd = CMD_TOKEN_REVOKE;
                return 0;
        }
        if (strcmp(sub, "issue") != 0) {
                fprintf(stderr, "secguardctl: usage: token issue USER [--ttl DURATION] | token list | token revoke ID\n");
                return EXIT_USAGE;
        }
        argc--;
        argv++;
        reset_getopt();
        /* Without "+": --ttl may come before or after the user. */
        while ((o = getopt_long(argc, argv, "", options, NULL)) >= 0) {
                if (o != 't')
                        return EXIT_USAGE;
                if (sg_parse_duration(optarg, &ttl) < 0) {
                        fprintf(stderr, "secguardctl: --ttl: not a duration (seconds, or 90s, 15m, 2h, 7d)\n");
                        return EXIT_USAGE;
                }
                ttl_given = true;
        }
        if (optind < argc)
                c->token_user = argv[optind++];
        if (!c->token_user || optind < argc) {
                fprintf(stderr, "secguardctl: usage: token issue USER [--ttl DURATION]\n");
                return EXIT_USAGE;
        }
        if (!sg_valid_user(c->token_user)) {
                fprintf(stderr, "secguardctl: not a valid user name\n");
                return EXIT_USAGE;
        }
        if (ttl_given && (ttl == 0 || ttl > TOKEN_TTL_MAX_SEC)) {
                fprintf(stderr, "secguardctl: --ttl must be between 1s and 30d\n");
                return EXIT_USAGE;
        }
        sg_writer_init(&c->w, SG_MSG_TOKEN_ISSUE);
        sg_writer_str(&c->w, SG_F_USER, c->token_user);
        if (ttl_given)
                sg_writer_u64(&c->w, SG_F_UNTIL, sg_now_real_usec() + ttl * 1000000);
        *ret_cmd = CMD_TOKEN_ISSUE;
        return 0;
}

static int parse_unlock(struct ctl *c, int argc, char **argv) {
        static const struct option options[] = {
                { "rhost", required_argument, NULL, 'r' },
                { "fleet", no_argument, NULL, 'f' },
                {}
        };
        const char *rhost = NULL, *user = NULL;
        bool fleet = false;
        int o;

        reset_getopt();
        while ((o = getopt_long(argc, argv, "+", options, NULL)) >= 0) {
                if (o == 'f')
                        fleet = true;
                else if (o == 'r')
                        rhost = optarg;
                else
                        return EXIT_USAGE;
        }
        if (optind < argc)
                user = argv[optind++];
        if ((!user) == (!rhost) || optind < argc) {
                fprintf(stderr, "secguardctl: unlock needs exactly one of USER or --rhost ADDR\n");
                return EXIT_USAGE;
        }
        if (user && !sg_valid_user(user)) {
                fprintf(stderr, "secguardctl: not a valid user name\n");
                return EXIT_USAGE;
        }
        if (rhost && !sg_valid_rhost(rhost)) {
                fprintf(stderr, "secguardctl: not a valid address\n");
                return EXIT_USAGE;
        }
        if (fleet && !rhost) {
                fprintf(stderr, "secguardctl: --fleet unlocks a source address: use it with --rhost ADDR\n");
                return EXIT_USAGE;
        }
        sg_writer_init(&c->w, SG_MSG_UNLOCK);
        sg_writer_str(&c->w, SG_F_KIND, user ? "user" : "source");
        sg_writer_str(&c->w, SG_F_KEY, user ? user : rhost);
        if (fleet)
                sg_writer_u64(&c->w, SG_F_FLEET, 1);
        c->unlock_target = user ? user : rhost;
        return 0;
}

static int cmd_unlock(struct ctl *c) {
        int r = ctl_call(c);

        if (r < 0)
                return -r;
        /* The daemon says what it cleared: "2 locks cleared, failures reset on 4 keys". */
        const char *detail = sg_msg_str(c->msg, SG_F_DETAIL);
        uint64_t locks = sg_msg_u64(c->msg, SG_F_COUNT, 0);

        if (c->json) {
                bool first = false;

                printf("{\"unlocked\":true,\"locks_cleared\":%" PRIu64, locks);
                if (detail)
                        cli_json_str("detail", detail, &first);
                printf("}\n");
        } else {
                printf("unlocked ");
                cli_print_escaped(c->unlock_target);
                if (detail) {
                        printf(": ");
                        cli_print_escaped(detail);
                }
                printf("\n");
        }
        return EXIT_OK;
}

/* The user column of an audit row. A sealed name is "<sealed>" unless --reveal opened it. */
static void audit_user(struct ctl *c, const struct sg_msg *m, bool *first) {
        const uint8_t *box;
        char name[SG_FIELD_WIRE_MAX + 1];
        size_t box_len = 0, len = 0;
        bool opened = false;

        if (sg_msg_has(m, SG_F_USER)) {
                if (c->json)
                        cli_json_str("user", sg_msg_str(m, SG_F_USER), first);
                else {
                        printf(" user=");
                        cli_print_escaped(sg_msg_str(m, SG_F_USER));
                }
                return;
        }
        box = sg_msg_bytes(m, SG_F_SEALED, &box_len);
        if (!box)
                return;
        if (c->opener) {
                opened = seal_open(c->opener, box, box_len, name, sizeof name, &len) == 0;
                if (!opened)
                        c->sealed_unopened++;
        }
        if (c->json) {
                char buf[6 * SG_FIELD_WIRE_MAX + 8];

                if (opened)
                        sg_json_escape(name, len, buf, sizeof buf);
                printf("%s\"user\":\"%s\",\"sealed\":true", *first ? "" : ",", opened ? buf : "<sealed>");
                if (c->opener)
                        printf(",\"revealed\":%s", opened ? "true" : "false");
                *first = false;
                sodium_memzero(buf, sizeof buf);
        } else if (opened) {
                char buf[4 * SG_FIELD_WIRE_MAX + 8];

                sg_escape(name, len, buf, sizeof buf);
                printf(" user=<sealed:%s>", buf);
                sodium_memzero(buf, sizeof buf);
        } else
                printf(" user=<sealed>");
        /* The name may be a password typed into the wrong field. */
        sodium_memzero(name, sizeof name);
}

static void print_audit_row(struct ctl *c) {
        const struct sg_msg *m = c->msg;
        static const struct { uint8_t tag; const char *name; } strs[] = {
                { SG_F_EVENT, "event" }, { SG_F_REASON, "reason" }, { SG_F_USER, "user" },
                { SG_F_SERVICE, "service" }, { SG_F_RHOST, "rhost" }, { SG_F_TTY, "tty" },
                { SG_F_SESSION_ID, "session" }, { SG_F_DETAIL, "detail" },
        };
        bool first = true;
        char when[40];

        sg_format_time(sg_msg_u64(m, SG_F_TIME, 0), when, sizeof when);
        if (c->json) {
                printf("{");
                cli_json_u64("id", sg_msg_u64(m, SG_F_ID, 0), &first);
                cli_json_str("time", when, &first);
        } else {
                char event[4 * 64 + 8];
                const char *e = sg_msg_str(m, SG_F_EVENT) ?: "";

                /* The daemon checks event names, but the row comes from a database file. */
                sg_escape(e, strlen(e), event, sizeof event);
                printf("%s %-16s", when, event);
        }
        for (size_t i = c->json ? 0 : 1; i < sizeof strs / sizeof strs[0]; i++) {
                if (strs[i].tag == SG_F_USER)
                        audit_user(c, m, &first);
                else if (!sg_msg_has(m, strs[i].tag))
                        continue;
                else if (c->json)
                        cli_json_str(strs[i].name, sg_msg_str(m, strs[i].tag), &first);
                else {
                        printf(" %s=", strs[i].name);
                        cli_print_escaped(sg_msg_str(m, strs[i].tag));
                }
        }
        if (c->json) {
                if (sg_msg_has(m, SG_F_PID))
                        cli_json_u64("pid", sg_msg_u64(m, SG_F_PID, 0), &first);
                if (sg_msg_has(m, SG_F_UID))
                        cli_json_u64("uid", sg_msg_u64(m, SG_F_UID, 0), &first);
                printf("}\n");
                return;
        }
        if (sg_msg_has(m, SG_F_PID))
                printf(" pid=%" PRIu64, sg_msg_u64(m, SG_F_PID, 0));
        if (sg_msg_has(m, SG_F_UID))
                printf(" uid=%" PRIu64, sg_msg_u64(m, SG_F_UID, 0));
        printf("\n");
}

/* detail: the problem when broken; note: what was not checked (may be ""). */
static int print_verify(const struct ctl *c, bool ok, uint64_t rows, uint64_t bad, const char *detail,
                        const char *note) {
        if (c->json) {
                bool first = true;

                printf("{\"intact\":%s", ok ? "true" : "false");
                first = false;
                cli_json_u64("rows", rows, &first);
                if (!ok) {
                        cli_json_u64("first_bad_id", bad, &first);
                        cli_json_str("detail", detail, &first);
                }
                if (note[0])
                        cli_json_str("not_checked", note, &first);
                printf("}\n");
        } else {
                if (ok)
                        printf("audit chain intact (%" PRIu64 " rows)\n", rows);
                else {
                        printf("audit chain BROKEN at row %" PRIu64 ": ", bad);
                        cli_print_escaped(detail);
                        printf("\n");
                }
                if (note[0]) {
                        printf("not checked: ");
                        cli_print_escaped(note);
                        printf("\n");
                }
        }
        return ok ? EXIT_OK : EXIT_FAILED;
}

static int cmd_audit_verify(struct ctl *c) {
        const struct sg_msg *m = c->msg;
        const char *d;
        bool ok;
        int r;

        r = ctl_call(c);
        if (r < 0)
                return -r;
        ok = sg_msg_u64(m, SG_F_RESULT, 0) == SG_RESULT_SUCCESS;
        d = sg_msg_str(m, SG_F_DETAIL) ?: "";
        /* The daemon sends the problem when broken, else what it could not check. */
        return print_verify(c, ok, sg_msg_u64(m, SG_F_AUDIT_ROWS, 0), sg_msg_u64(m, SG_F_ID, 0), ok ? "" : d,
                            ok ? d : "");
}

/* audit verify --seed/--seed-file/--db: the database read here, read-only; no daemon. */
static int cmd_audit_verify_offline(const struct ctl *c, const struct sg_config *cfg) {
        struct audit_offline_result res;
        char db[PATH_MAX + 32], key[PATH_MAX + 32], err[PATH_MAX + 512] = "";
        uint8_t *seed = NULL;
        int r;

        if (c->seed_text || c->seed_file) {
                seed = sodium_malloc(SG_FSS_SEED_BYTES);
                if (!seed)
                        return EXIT_FAILED;
                r = audit_seed_read(c->seed_text, c->seed_file, seed, err, sizeof err);
                /* A seed given on the command line was readable in /proc/PID/cmdline until
                 * now: blank our copy (--seed - and --seed-file never put it there). */
                if (c->seed_text && strcmp(c->seed_text, "-") != 0)
                        sodium_memzero((char *) c->seed_text, strlen(c->seed_text));
                if (r < 0) {
                        sodium_free(seed);
                        fprintf(stderr, "secguardctl: ");
                        cli_fputs_escaped(stderr, err);
                        fprintf(stderr, "\n");
                        return EXIT_USAGE;
                }
        }
        /* The static key (for rows from before forward-secure keys): beside a copied
         * database, else where the daemon reads it. */
        if (c->db_path) {
                const char *slash = strrchr(c->db_path, '/');

                snprintf(db, sizeof db, "%s", c->db_path);
                if (slash)
                        snprintf(key, sizeof key, "%.*s/audit.key", (int) (slash - c->db_path), c->db_path);
                else
                        snprintf(key, sizeof key, "audit.key");
        } else {
                snprintf(db, sizeof db, "%s/secguard.db", cfg->state_dir);
                if (cfg->key_file[0])
                        snprintf(key, sizeof key, "%s", cfg->key_file);
                else
                        snprintf(key, sizeof key, "%s/audit.key", cfg->state_dir);
        }
        r = audit_verify_offline(db, key, seed, &res, err, sizeof err);
        if (seed)
                sodium_free(seed);
        if (r < 0) {
                fprintf(stderr, "secguardctl: ");
                cli_fputs_escaped(stderr, err);
                fprintf(stderr, "\n");
                return EXIT_FAILED;
        }
        return print_verify(c, res.r == 0, res.rows, res.bad_id, res.detail, res.note);
}

static int cmd_audit_setup_keys(const struct ctl *c, const struct sg_config *cfg) {
        const char *dir = c->state_dir ? c->state_dir : cfg->state_dir;
        char seed[SG_FSS_SEED_TEXT_SIZE], err[PATH_MAX + 256] = "";
        int r;

        r = audit_setup_keys(dir, seed, sizeof seed, err, sizeof err);
        if (r < 0) {
                fprintf(stderr, "secguardctl: ");
                cli_fputs_escaped(stderr, err[0] ? err : strerror(-r));
                fprintf(stderr, "\n");
                return EXIT_FAILED;
        }
        printf("Forward-secure audit keys are set up in ");
        cli_print_escaped(dir);
        printf("/audit.fss (epoch 0).\n"
               "Restart secguardd to start using them (systemctl restart secguardd).\n"
               "The verification seed is on the next line. It is shown this once and stored nowhere:\n"
               "keep it OFF this host (paper, a password manager). It checks every audit row later:\n"
               "  secguardctl audit verify --seed -        (reads it from standard input)\n"
               "  secguardctl audit verify --seed-file F --db COPY-OF-secguard.db\n");
        printf("%s\n", seed);
        fflush(stdout);
        sodium_memzero(seed, sizeof seed);
        return EXIT_OK;
}

static int parse_audit_verify(struct ctl *c, int argc, char **argv, enum command *ret_cmd) {
        static const struct option options[] = {
                { "seed", required_argument, NULL, 's' },
                { "seed-file", required_argument, NULL, 'f' },
                { "db", required_argument, NULL, 'd' },
                {}
        };
        int o;

        reset_getopt();
        while ((o = getopt_long(argc, argv, "+", options, NULL)) >= 0) {
                switch (o) {
                case 's': c->seed_text = optarg; break;
                case 'f': c->seed_file = optarg; break;
                case 'd': c->db_path = optarg; break;
                default: return EXIT_USAGE;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "secguardctl: unexpected argument to audit verify\n");
                return EXIT_USAGE;
        }
        if (c->seed_text && c->seed_file) {
                fprintf(stderr, "secguardctl: give --seed or --seed-file, not both\n");
                return EXIT_USAGE;
        }
        if (c->seed_text || c->seed_file || c->db_path) {
                *ret_cmd = CMD_AUDIT_VERIFY_OFFLINE;
                return 0;
        }
        sg_writer_init(&c->w, SG_MSG_AUDIT_VERIFY);
        *ret_cmd = CMD_AUDIT_VERIFY;
        return 0;
}

static int parse_audit_setup_keys(struct ctl *c, int argc, char **argv, enum command *ret_cmd) {
        static const struct option options[] = {
                { "state-dir", required_argument, NULL, 'd' },
                {}
        };
        int o;

        reset_getopt();
        while ((o = getopt_long(argc, argv, "+", options, NULL)) >= 0) {
                if (o != 'd')
                        return EXIT_USAGE;
                c->state_dir = optarg;
        }
        if (optind < argc) {
                fprintf(stderr, "secguardctl: unexpected argument to audit setup-keys\n");
                return EXIT_USAGE;
        }
        *ret_cmd = CMD_AUDIT_SETUP_KEYS;
        return 0;
}

/* --event takes the names of the common event table and nothing else. */
static void usage_unknown_event(const char *name) {
        const struct sg_event_kind *kinds;
        size_t n;

        kinds = sg_event_kinds(&n);
        fprintf(stderr, "secguardctl: unknown event \"");
        cli_fputs_escaped(stderr, name);
        fprintf(stderr, "\"; one of:");
        for (size_t i = 0; i < n; i++)
                fprintf(stderr, " %s", kinds[i].name);
        fprintf(stderr, "\n");
}

/* sg_parse_time, plus a bound on @EPOCH: seconds past year 9999 are refused here (the
 * parser would multiply them into microseconds without an overflow check). */
static int parse_audit(struct ctl *c, int argc, char **argv, enum command *ret_cmd) {
        static const struct option options[] = {
                { "user", required_argument, NULL, 'u' },
                { "event", required_argument, NULL, 'e' },
                { "rhost", required_argument, NULL, 'r' },
                { "since", required_argument, NULL, 's' },
                { "until", required_argument, NULL, 'U' },
                { "limit", required_argument, NULL, 'n' },
                { "reveal", no_argument, NULL, 'R' },
                { "key", required_argument, NULL, 'k' },
                {}
        };
        uint64_t now = sg_now_real_usec(), t, since = 0, until = 0, limit;
        bool reveal = false;
        char *end;
        int o;

        if (argc > 1 && strcmp(argv[1], "verify") == 0)
                return parse_audit_verify(c, argc - 1, argv + 1, ret_cmd);
        if (argc > 1 && strcmp(argv[1], "setup-keys") == 0)
                return parse_audit_setup_keys(c, argc - 1, argv + 1, ret_cmd);
        sg_writer_init(&c->w, SG_MSG_AUDIT_QUERY);
        reset_getopt();
        while ((o = getopt_long(argc, argv, "+", options, NULL)) >= 0) {
                switch (o) {
                case 'u': sg_writer_str(&c->w, SG_F_USER, optarg); break;
                case 'r': sg_writer_str(&c->w, SG_F_RHOST, optarg); break;
                case 'e':
                        if (!sg_event_kind_find(optarg)) {
                                usage_unknown_event(optarg);
                                return EXIT_USAGE;
                        }
                        sg_writer_str(&c->w, SG_F_EVENT, optarg);
                        break;
                case 's':
                case 'U':
                        if (cli_time_arg(optarg, now, &t) < 0)
                                return EXIT_USAGE;
                        /* 0 means "open" on the wire; the epoch itself is as good as open. */
                        sg_writer_u64(&c->w, o == 's' ? SG_F_SINCE : SG_F_UNTIL, t);
                        if (o == 's')
                                since = t;
                        else
                                until = t;
                        break;
                case 'n':
                        errno = 0;
                        limit = strtoull(optarg, &end, 10);
                        if (errno || *end || end == optarg || limit == 0 || limit > 100000 || optarg[0] == '-') {
                                fprintf(stderr, "secguardctl: --limit must be 1..100000\n");
                                return EXIT_USAGE;
                        }
                        sg_writer_u64(&c->w, SG_F_LIMIT, limit);
                        break;
                case 'R': reveal = true; break;
                case 'k': c->reveal_key = optarg; break;
                default:
                        return EXIT_USAGE;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "secguardctl: unexpected argument to audit\n");
                return EXIT_USAGE;
        }
        if (since && until && since > until) {
                fprintf(stderr, "secguardctl: --since is later than --until\n");
                return EXIT_USAGE;
        }
        if (reveal != (c->reveal_key != NULL)) {
                fprintf(stderr, "secguardctl: --reveal and --key FILE go together\n");
                return EXIT_USAGE;
        }
        if (c->w.err) {
                fprintf(stderr, "secguardctl: a filter value is too long\n");
                return EXIT_USAGE;
        }
        *ret_cmd = CMD_AUDIT;
        return 0;
}

static int cmd_audit(struct ctl *c) {
        int r = ctl_call(c);

        while (r == 0 && c->msg->type == SG_MSG_ROW) {
                print_audit_row(c);
                r = ctl_next(c);
        }
        if (r < 0)
                return -r;
        if (c->sealed_unopened > 0) {
                fprintf(stderr, "secguardctl: %" PRIu64 " sealed user name(s) could not be opened with ",
                        c->sealed_unopened);
                cli_fputs_escaped(stderr, c->reveal_key);
                fprintf(stderr, " (not the secret key matching [audit] seal_public_key, or altered); shown as <sealed>\n");
                return EXIT_FAILED;
        }
        return EXIT_OK;
}

static int parse_hash(struct ctl *c, int argc, char **argv) {
        static const struct option options[] = {
                { "scheme", required_argument, NULL, 's' },
                {}
        };
        int o;

        c->scheme = SG_SCHEME_ARGON2ID;
        reset_getopt();
        while ((o = getopt_long(argc, argv, "+", options, NULL)) >= 0) {
                if (o != 's')
                        return EXIT_USAGE;
                c->scheme = sg_scheme_from_name(optarg);
                if (c->scheme != SG_SCHEME_ARGON2ID && c->scheme != SG_SCHEME_BCRYPT &&
                    c->scheme != SG_SCHEME_YESCRYPT && c->scheme != SG_SCHEME_SHA512CRYPT) {
                        fprintf(stderr, "secguardctl: --scheme must be argon2id, bcrypt, yescrypt or sha512crypt\n");
                        return EXIT_USAGE;
                }
        }
        if (optind < argc)
                return EXIT_USAGE;
        return 0;
}

/* ---- reading the password for `hash` ---- */

/* The terminal as it was, for the signal handler to put back: a Ctrl-C at the prompt must not
 * leave the admin's shell with echo off. */
static struct termios saved_tty;
static volatile sig_atomic_t tty_echo_off;

static void tty_restore(void) {
        if (tty_echo_off) {
                (void) tcsetattr(STDIN_FILENO, TCSANOW, &saved_tty);
                tty_echo_off = 0;
        }
}

static void on_signal_at_prompt(int sig) {
        int saved_errno = errno;

        tty_restore(); /* tcsetattr and write are async-signal-safe */
        (void) !write(STDERR_FILENO, "\n", 1);
        /* SA_RESETHAND put the default action back; the signal is blocked until we return,
         * then it ends the process as if we had never caught it. */
        (void) raise(sig);
        errno = saved_errno;
}

static const int prompt_signals[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };

/* Echo off (newline still shown) and the handlers that undo it. */
static int tty_echo_off_begin(struct sigaction old[static 4]) {
        struct sigaction sa = { .sa_handler = on_signal_at_prompt, .sa_flags = SA_RESETHAND };
        struct termios t;

        if (tcgetattr(STDIN_FILENO, &saved_tty) < 0)
                return -errno;
        t = saved_tty;
        t.c_lflag &= ~(tcflag_t) (ECHO | ECHOE | ECHOK);
        t.c_lflag |= ECHONL;
        sigemptyset(&sa.sa_mask);
        for (size_t i = 0; i < 4; i++) {
                sigaddset(&sa.sa_mask, prompt_signals[i]);
                (void) sigaction(prompt_signals[i], NULL, &old[i]);
        }
        for (size_t i = 0; i < 4; i++)
                /* A signal the caller ignored (nohup) stays ignored. */
                if (old[i].sa_handler != SIG_IGN)
                        (void) sigaction(prompt_signals[i], &sa, NULL);
        tty_echo_off = 1;
        /* TCSAFLUSH: whatever was typed before the prompt was echoed, so it is dropped. */
        if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &t) < 0) {
                int r = -errno;

                tty_echo_off = 0;
                for (size_t i = 0; i < 4; i++)
                        (void) sigaction(prompt_signals[i], &old[i], NULL);
                return r;
        }
        return 0;
}

static void tty_echo_off_end(const struct sigaction old[static 4]) {
        tty_restore();
        for (size_t i = 0; i < 4; i++)
                (void) sigaction(prompt_signals[i], &old[i], NULL);
}

/* One line from stdin into buf (bufsize bytes of locked memory, NUL-terminated), byte by
 * byte with read(2): no stdio buffer keeps a copy of the secret, and input after the newline
 * stays unread. The newline is not stored. -E2BIG when the line has more than bufsize - 1
 * bytes, -errno on a read error. */
static int read_secret_line(char *buf, size_t bufsize, size_t *ret_len) {
        size_t len = 0;

        for (;;) {
                ssize_t n = read(STDIN_FILENO, buf + len, 1); /* len < bufsize */

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0 || buf[len] == '\n')
                        break;
                if (len + 1 == bufsize)
                        return -E2BIG; /* buf[len] was the NUL's place */
                len++;
        }
        buf[len] = '\0';
        *ret_len = len;
        return 0;
}

static int cmd_hash(const struct ctl *c, const struct sg_config *cfg) {
        struct sg_hash_pref pref = { .opslimit = cfg->argon2_opslimit, .memlimit = cfg->argon2_memlimit };
        struct sigaction old[4];
        bool tty = isatty(STDIN_FILENO);
        /* Room for the longest password, a '\r' before the newline, and the NUL. */
        size_t cap = (size_t) cfg->password_max_len + 2, len = 0;
        char *pw, out[SG_HASH_MAX];
        int r;

        pw = sodium_malloc(cap); /* locked, guarded, wiped by sodium_free */
        if (!pw)
                return EXIT_FAILED;
        if (tty) {
                r = tty_echo_off_begin(old);
                if (r < 0) {
                        fprintf(stderr, "secguardctl: cannot turn off echo on the terminal: %s\n", strerror(-r));
                        sodium_free(pw);
                        return EXIT_FAILED;
                }
                fprintf(stderr, "Password (then Enter): ");
        }
        r = read_secret_line(pw, cap, &len);
        if (tty)
                tty_echo_off_end(old);
        if (r == 0 && len > 0 && pw[len - 1] == '\r')
                pw[--len] = '\0';
        if (r == -E2BIG || (r == 0 && len > cfg->password_max_len)) {
                fprintf(stderr, "secguardctl: password longer than %u bytes\n", cfg->password_max_len);
                sodium_free(pw);
                return EXIT_FAILED;
        }
        if (r < 0) {
                fprintf(stderr, "secguardctl: reading the password failed: %s\n", strerror(-r));
                sodium_free(pw);
                return EXIT_FAILED;
        }
        if (len == 0 || strlen(pw) != len) {
                fprintf(stderr, "secguardctl: empty password or NUL byte in it\n");
                sodium_free(pw);
                return EXIT_FAILED;
        }
        r = sg_hash_create(c->scheme, pw, len, &pref, true, out, sizeof out);
        sodium_free(pw);
        if (r < 0) {
                fprintf(stderr, "secguardctl: hashing failed: %s%s\n", strerror(-r),
                        r == -E2BIG ? " (bcrypt uses only the first 72 bytes)" : "");
                return EXIT_FAILED;
        }
        printf("%s\n", out);
        return EXIT_OK;
}

static int parse_keygen(struct ctl *c, int argc, char **argv) {
        static const struct option options[] = {
                { "public", required_argument, NULL, 'p' },
                { "secret", required_argument, NULL, 's' },
                {}
        };
        int o;

        reset_getopt();
        while ((o = getopt_long(argc, argv, "+", options, NULL)) >= 0) {
                switch (o) {
                case 'p': c->public_path = optarg; break;
                case 's': c->secret_path = optarg; break;
                default: return EXIT_USAGE;
                }
        }
        if (optind < argc || !c->public_path || !c->secret_path || !*c->public_path || !*c->secret_path) {
                fprintf(stderr, "secguardctl: keygen needs --public FILE and --secret FILE\n");
                return EXIT_USAGE;
        }
        if (strcmp(c->public_path, c->secret_path) == 0) {
                fprintf(stderr, "secguardctl: --public and --secret must be different files\n");
                return EXIT_USAGE;
        }
        return 0;
}

static int cmd_keygen(const struct ctl *c) {
        char err[PATH_MAX + 256];
        int r;

        r = seal_keygen(c->public_path, c->secret_path, err, sizeof err);
        if (r < 0) {
                fprintf(stderr, "secguardctl: ");
                cli_fputs_escaped(stderr, err);
                fprintf(stderr, "\n");
                return EXIT_FAILED;
        }
        if (c->json) {
                bool first = true;

                printf("{");
                cli_json_str("public", c->public_path, &first);
                cli_json_str("secret", c->secret_path, &first);
                printf("}\n");
                return EXIT_OK;
        }
        printf("public key: ");
        cli_print_escaped(c->public_path);
        printf("  (set [audit] seal_public_key to it and restart secguardd)\nsecret key: ");
        cli_print_escaped(c->secret_path);
        printf("  (keep it away from this host; read with: secguardctl audit --reveal --key FILE)\n");
        return EXIT_OK;
}

static const struct {
        const char *name;
        enum command cmd;
} commands[] = {
        { "status", CMD_STATUS }, { "locks", CMD_LOCKS }, { "unlock", CMD_UNLOCK },
        { "audit", CMD_AUDIT },   { "hash", CMD_HASH },   { "keygen", CMD_KEYGEN },
        { "sessions", CMD_SESSIONS }, { "session", CMD_SESSION_KILL },
        { "token", CMD_TOKEN_ISSUE },
};

/* Parses the command and its arguments into c (the request in c->w); EXIT_USAGE or 0. */
static int parse_command(struct ctl *c, int argc, char **argv, enum command *ret_cmd) {
        const char *name = argv[0];
        enum command cmd;
        size_t i;

        for (i = 0; i < sizeof commands / sizeof commands[0]; i++)
                if (strcmp(commands[i].name, name) == 0)
                        break;
        if (i == sizeof commands / sizeof commands[0]) {
                fprintf(stderr, "secguardctl: unknown command \"");
                cli_fputs_escaped(stderr, name);
                fprintf(stderr, "\"\n");
                return EXIT_USAGE;
        }
        cmd = commands[i].cmd;
        switch (cmd) {
        case CMD_STATUS:
        case CMD_LOCKS:
        case CMD_SESSIONS:
                if (argc > 1) {
                        fprintf(stderr, "secguardctl: %s takes no arguments\n", name);
                        return EXIT_USAGE;
                }
                sg_writer_init(&c->w, cmd == CMD_STATUS ? SG_MSG_STATUS :
                                      cmd == CMD_LOCKS ? SG_MSG_LOCKS : SG_MSG_SESSIONS);
                break;
        case CMD_SESSION_KILL:
                if (parse_session(c, argc, argv) != 0)
                        return EXIT_USAGE;
                break;
        case CMD_UNLOCK:
                if (parse_unlock(c, argc, argv) != 0)
                        return EXIT_USAGE;
                break;
        case CMD_AUDIT:
                return parse_audit(c, argc, argv, ret_cmd);
        case CMD_TOKEN_ISSUE:
                return parse_token(c, argc, argv, ret_cmd);
        case CMD_HASH:
                if (parse_hash(c, argc, argv) != 0)
                        return EXIT_USAGE;
                break;
        case CMD_KEYGEN:
                if (parse_keygen(c, argc, argv) != 0)
                        return EXIT_USAGE;
                break;
        default:
                return EXIT_USAGE;
        }
        *ret_cmd = cmd;
        return 0;
}

static int run_daemon_command(struct ctl *c, enum command cmd) {
        int r;

        if (c->reveal_key) {
                char err[PATH_MAX + 256];

                r = seal_opener_new(c->reveal_key, &c->opener, err, sizeof err);
                if (r < 0) {
                        fprintf(stderr, "secguardctl: ");
                        cli_fputs_escaped(stderr, err);
                        fprintf(stderr, "\n");
                        return EXIT_FAILED;
                }
        }
        /* A token for a name no account has would only wait for someone to create it. */
        if (cmd == CMD_TOKEN_ISSUE && !getpwnam(c->token_user)) {
                fprintf(stderr, "secguardctl: no user \"");
                cli_fputs_escaped(stderr, c->token_user);
                fprintf(stderr, "\" on this system\n");
                return EXIT_FAILED;
        }
        c->msg = malloc(sizeof *c->msg);
        if (!c->msg)
                return EXIT_FAILED;
        r = ctl_connect(c);
        if (r < 0)
                return -r;
        switch (cmd) {
        case CMD_STATUS: return cmd_status(c);
        case CMD_LOCKS: return cmd_locks(c);
        case CMD_UNLOCK: return cmd_unlock(c);
        case CMD_AUDIT: return cmd_audit(c);
        case CMD_AUDIT_VERIFY: return cmd_audit_verify(c);
        case CMD_SESSIONS: return cmd_sessions(c);
        case CMD_SESSION_KILL: return cmd_session_kill(c);
        case CMD_TOKEN_ISSUE: return cmd_token_issue(c);
        case CMD_TOKEN_LIST: return cmd_token_list(c);
        case CMD_TOKEN_REVOKE: return cmd_token_revoke(c);
        default: return EXIT_USAGE;
        }
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                { "socket", required_argument, NULL, 's' },
                { "config", required_argument, NULL, 'c' },
                { "json", no_argument, NULL, 'j' },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        struct ctl c = { .config = SG_DEFAULT_CONFIG, .fd = -1 };
        struct sg_config cfg;
        enum command cmd;
        bool config_given = false;
        char err[512];
        int o, r;

        while ((o = getopt_long(argc, argv, "+s:c:jh", options, NULL)) >= 0) {
                switch (o) {
                case 's': c.socket = optarg; break;
                case 'c': c.config = optarg; config_given = true; break;
                case 'j': c.json = true; break;
                case 'h': usage(stdout); return EXIT_OK;
                default: usage(stderr); return EXIT_USAGE;
                }
        }
        if (optind >= argc) {
                usage(stderr);
                return EXIT_USAGE;
        }
        /* fleet verify/locks/audit read PostgreSQL with the [fleet] section: the config, no
         * daemon. fleet status reads secguard-fleetd's status file: no daemon, no config. */
        if (strcmp(argv[optind], "fleet") == 0 && optind + 1 < argc && ctl_fleet_db_command(argv[optind + 1])) {
                if (sodium_init() < 0)
                        return EXIT_FAILED;
                sg_config_defaults(&cfg);
                if (sg_config_load(&cfg, c.config, !config_given, err, sizeof err) < 0) {
                        fprintf(stderr, "secguardctl: ");
                        cli_fputs_escaped(stderr, err);
                        fprintf(stderr, "\n");
                        return EXIT_FAILED;
                }
                return ctl_fleet_db(argc - optind, argv + optind, c.json, &cfg, c.config);
        }
        if (strcmp(argv[optind], "fleet") == 0)
                return ctl_fleet(argc - optind, argv + optind, c.json);
        if (parse_command(&c, argc - optind, argv + optind, &cmd) != 0) {
                usage(stderr);
                return EXIT_USAGE;
        }
        if (sodium_init() < 0)
                return EXIT_FAILED;
        if (cmd == CMD_KEYGEN) /* needs neither the config nor the daemon */
                return cmd_keygen(&c);
        sg_config_defaults(&cfg);
        if (sg_config_load(&cfg, c.config, !config_given, err, sizeof err) < 0) {
                /* hash needs the config's settings; the daemon's commands need only the socket,
                 * so a broken file must not keep an admin from status or unlock. */
                if (cmd == CMD_HASH) {
                        fprintf(stderr, "secguardctl: %s\n", err);
                        return EXIT_FAILED;
                }
                fprintf(stderr, "secguardctl: warning: %s; using the built-in defaults%s\n", err,
                        c.socket ? "" : " (give --socket if the daemon listens elsewhere)");
                sg_config_defaults(&cfg);
        }
        if (cmd == CMD_HASH)
                return cmd_hash(&c, &cfg);
        if (cmd == CMD_AUDIT_VERIFY_OFFLINE)
                return cmd_audit_verify_offline(&c, &cfg);
        if (cmd == CMD_AUDIT_SETUP_KEYS)
                return cmd_audit_setup_keys(&c, &cfg);
        if (!c.socket)
                c.socket = cfg.socket;
        c.timeout_ms = cfg.timeout_ms;
        c.admin_group = cfg.admin_group;

        r = run_daemon_command(&c, cmd);
        if (c.fd >= 0)
                close(c.fd);
        free(c.msg);
        seal_opener_free(c.opener);
        return r;
}
