/* SPDX-License-Identifier: MIT */
/*
 * secguardctl: the admin CLI. Talks to secguardd over its socket (checking the server is
 * root first), prints human tables or JSON Lines. Every string that reaches the terminal
 * goes through sg_escape / sg_json_escape: no raw control byte from a username is printed.
 * Exit codes (INTERFACE.md): 0 ok, 1 failed, 2 usage, 3 daemon unreachable, 4 permission.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "config.h"
#include "hashes.h"
#include "io.h"
#include "protocol.h"
#include "timefmt.h"
#include "validate.h"

enum {
        EXIT_OK = 0,
        EXIT_FAILED = 1,
        EXIT_USAGE = 2,
        EXIT_UNREACHABLE = 3,
        EXIT_PERMISSION = 4,
};

struct ctl {
        const char *socket;
        const char *config;
        bool json;
        unsigned timeout_ms;
        int fd;
        struct sg_msg *msg;
        struct sg_writer w;
};

static void usage(FILE *f) {
        fprintf(f,
                "Usage: secguardctl [--socket PATH] [--config FILE] [--json] COMMAND\n"
                "Commands:\n"
                "  status                       daemon version, uptime, counts, config in force\n"
                "  locks                        current lockouts\n"
                "  unlock USER                  clear a user's lock (audited)\n"
                "  unlock --rhost ADDR          clear a source address's lock (audited)\n"
                "  audit [--user U] [--event E] [--rhost H] [--since T] [--until T] [--limit N]\n"
                "                               review events, newest last (T: ISO-8601 or 1h, 2d...)\n"
                "  audit verify                 check the audit HMAC chain (exit 1 if broken)\n"
                "  hash [--scheme argon2id|bcrypt|yescrypt|sha512crypt]\n"
                "                               read a password from stdin, print its hash\n"
                "Exit codes: 0 ok, 1 failed, 2 usage, 3 daemon unreachable, 4 permission denied.\n");
}

/* ---- output helpers: everything printed is escaped ---- */

static void print_escaped(const char *s) {
        char buf[4 * 1024 + 8];

        sg_escape(s, strlen(s), buf, sizeof buf);
        fputs(buf, stdout);
}

static void json_str(const char *key, const char *s, bool *first) {
        char buf[6 * 1024 + 8];

        sg_json_escape(s, strlen(s), buf, sizeof buf);
        printf("%s\"%s\":\"%s\"", *first ? "" : ",", key, buf);
        *first = false;
}

static void json_u64(const char *key, uint64_t v, bool *first) {
        printf("%s\"%s\":%" PRIu64, *first ? "" : ",", key, v);
        *first = false;
}

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
        return e == SG_ERR_PERMISSION ? EXIT_PERMISSION : EXIT_FAILED;
}

/* Sends c->w; on a reply of type OK or ROW returns 0 with it in c->msg. */
static int ctl_call(struct ctl *c) {
        uint64_t until = sg_now_mono_usec() + (uint64_t) c->timeout_ms * 1000 * 10;
        int r;

        r = sg_call(c->fd, &c->w, c->msg, until);
        if (r < 0) {
                fprintf(stderr, "secguardctl: request failed: %s\n", strerror(-r));
                return -EXIT_UNREACHABLE;
        }
        if (c->msg->type == SG_MSG_ERROR)
                return -reply_error(c);
        return 0;
}

static int ctl_next(struct ctl *c) {
        uint64_t until = sg_now_mono_usec() + (uint64_t) c->timeout_ms * 1000 * 10;
        int r = sg_read_msg(c->fd, c->msg, until, NULL);

        if (r < 0) {
                fprintf(stderr, "secguardctl: reading the reply failed: %s\n", strerror(-r));
                return -EXIT_UNREACHABLE;
        }
        if (c->msg->type == SG_MSG_ERROR)
                return -reply_error(c);
        return 0;
}

/* ---- commands ---- */

static int cmd_status(struct ctl *c) {
        const struct sg_msg *m = c->msg;
        int r;

        sg_writer_init(&c->w, SG_MSG_STATUS);
        r = ctl_call(c);
        if (r < 0)
                return -r;
        if (c->json) {
                bool first = true;

                printf("{");
                json_str("version", sg_msg_str(m, SG_F_VERSION) ?: "", &first);
                json_u64("uptime_sec", sg_msg_u64(m, SG_F_UPTIME, 0), &first);
                json_u64("locks", sg_msg_u64(m, SG_F_LOCKS, 0), &first);
                json_u64("sessions", sg_msg_u64(m, SG_F_SESSIONS, 0), &first);
                json_u64("audit_rows", sg_msg_u64(m, SG_F_AUDIT_ROWS, 0), &first);
                json_u64("hash_permits_used", sg_msg_u64(m, SG_F_PERMITS, 0), &first);
                json_u64("hash_permits", sg_msg_u64(m, SG_F_PERMITS_MAX, 0), &first);
                json_str("config", sg_msg_str(m, SG_F_CONFIG) ?: "", &first);
                printf("}\n");
                return EXIT_OK;
        }
        printf("secguardd %s, up %" PRIu64 " s\n", sg_msg_str(m, SG_F_VERSION) ?: "?",
               sg_msg_u64(m, SG_F_UPTIME, 0));
        printf("locks: %" PRIu64 "  sessions: %" PRIu64 "  audit rows: %" PRIu64
               "  hash permits: %" PRIu64 "/%" PRIu64 "\n",
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
                        print_escaped(line);
                        printf("\n");
                }
                free(dup);
        }
        return EXIT_OK;
}

static int cmd_locks(struct ctl *c) {
        uint64_t n = 0;
        int r;

        sg_writer_init(&c->w, SG_MSG_LOCKS);
        r = ctl_call(c);
        if (!c->json && r == 0)
                printf("%-12s %-40s %8s %6s  %s\n", "KIND", "KEY", "FAILURES", "LEVEL", "UNTIL (UTC)");
        while (r == 0 && c->msg->type == SG_MSG_ROW) {
                const struct sg_msg *m = c->msg;
                char until[40];

                sg_format_time(sg_msg_u64(m, SG_F_UNTIL, 0), until, sizeof until);
                if (c->json) {
                        bool first = true;

                        printf("{");
                        json_str("kind", sg_msg_str(m, SG_F_KIND) ?: "", &first);
                        json_str("key", sg_msg_str(m, SG_F_KEY) ?: "", &first);
                        json_u64("failures", sg_msg_u64(m, SG_F_FAILURES, 0), &first);
                        json_u64("level", sg_msg_u64(m, SG_F_COUNT, 0), &first);
                        json_str("until", until, &first);
                        printf("}\n");
                } else {
                        char key[1024];

                        sg_escape(sg_msg_str(m, SG_F_KEY) ?: "", strlen(sg_msg_str(m, SG_F_KEY) ?: ""),
                                  key, sizeof key);
                        printf("%-12s %-40s %8" PRIu64 " %6" PRIu64 "  %s\n", sg_msg_str(m, SG_F_KIND) ?: "",
                               key, sg_msg_u64(m, SG_F_FAILURES, 0), sg_msg_u64(m, SG_F_COUNT, 0), until);
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

static int cmd_unlock(struct ctl *c, int argc, char **argv) {
        static const struct option options[] = {
                { "rhost", required_argument, NULL, 'r' },
                {}
        };
        const char *rhost = NULL, *user = NULL;
        int o, r;

        optind = 1;
        while ((o = getopt_long(argc, argv, "+r:", options, NULL)) >= 0) {
                if (o != 'r')
                        return EXIT_USAGE;
                rhost = optarg;
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
        sg_writer_init(&c->w, SG_MSG_UNLOCK);
        sg_writer_str(&c->w, SG_F_KIND, user ? "user" : "source");
        sg_writer_str(&c->w, SG_F_KEY, user ? user : rhost);
        r = ctl_call(c);
        if (r < 0)
                return -r;
        if (c->json)
                printf("{\"unlocked\":true}\n");
        else {
                printf("unlocked ");
                print_escaped(user ? user : rhost);
                printf("\n");
        }
        return EXIT_OK;
}

static void print_audit_row(struct ctl *c) {
        const struct sg_msg *m = c->msg;
        static const struct { uint8_t tag; const char *name; } strs[] = {
                { SG_F_EVENT, "event" }, { SG_F_REASON, "reason" }, { SG_F_USER, "user" },
                { SG_F_SERVICE, "service" }, { SG_F_RHOST, "rhost" }, { SG_F_TTY, "tty" },
                { SG_F_SESSION_ID, "session" }, { SG_F_DETAIL, "detail" },
        };
        char when[40];

        sg_format_time(sg_msg_u64(m, SG_F_TIME, 0), when, sizeof when);
        if (c->json) {
                bool first = true;

                printf("{");
                json_u64("id", sg_msg_u64(m, SG_F_ID, 0), &first);
                json_str("time", when, &first);
                for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
                        if (sg_msg_has(m, strs[i].tag))
                                json_str(strs[i].name, sg_msg_str(m, strs[i].tag), &first);
                if (sg_msg_has(m, SG_F_SEALED))
                        json_str("user", "<sealed>", &first);
                if (sg_msg_has(m, SG_F_PID))
                        json_u64("pid", sg_msg_u64(m, SG_F_PID, 0), &first);
                if (sg_msg_has(m, SG_F_UID))
                        json_u64("uid", sg_msg_u64(m, SG_F_UID, 0), &first);
                printf("}\n");
                return;
        }
        printf("%s %-16s", when, sg_msg_str(m, SG_F_EVENT) ?: "");
        for (size_t i = 1; i < sizeof strs / sizeof strs[0]; i++)
                if (sg_msg_has(m, strs[i].tag)) {
                        printf(" %s=", strs[i].name);
                        print_escaped(sg_msg_str(m, strs[i].tag));
                }
        if (sg_msg_has(m, SG_F_SEALED))
                printf(" user=<sealed>");
        if (sg_msg_has(m, SG_F_UID))
                printf(" uid=%" PRIu64, sg_msg_u64(m, SG_F_UID, 0));
        printf("\n");
}

static int cmd_audit_verify(struct ctl *c) {
        const struct sg_msg *m = c->msg;
        bool ok;
        int r;

        sg_writer_init(&c->w, SG_MSG_AUDIT_VERIFY);
        r = ctl_call(c);
        if (r < 0)
                return -r;
        ok = sg_msg_u64(m, SG_F_RESULT, 0) == SG_RESULT_SUCCESS;
        if (c->json) {
                bool first = true;

                printf("{\"intact\":%s", ok ? "true" : "false");
                first = false;
                json_u64("rows", sg_msg_u64(m, SG_F_AUDIT_ROWS, 0), &first);
                if (!ok) {
                        json_u64("first_bad_id", sg_msg_u64(m, SG_F_ID, 0), &first);
                        json_str("detail", sg_msg_str(m, SG_F_DETAIL) ?: "", &first);
                }
                printf("}\n");
        } else if (ok)
                printf("audit chain intact (%" PRIu64 " rows)\n", sg_msg_u64(m, SG_F_AUDIT_ROWS, 0));
        else {
                printf("audit chain BROKEN at row %" PRIu64 ": ", sg_msg_u64(m, SG_F_ID, 0));
                print_escaped(sg_msg_str(m, SG_F_DETAIL) ?: "");
                printf("\n");
        }
        return ok ? EXIT_OK : EXIT_FAILED;
}

static int cmd_audit(struct ctl *c, int argc, char **argv) {
        static const struct option options[] = {
                { "user", required_argument, NULL, 'u' },
                { "event", required_argument, NULL, 'e' },
                { "rhost", required_argument, NULL, 'r' },
                { "since", required_argument, NULL, 's' },
                { "until", required_argument, NULL, 'U' },
                { "limit", required_argument, NULL, 'n' },
                {}
        };
        uint64_t now = sg_now_real_usec(), t, limit;
        char *end;
        int o, r;

        if (argc > 1 && strcmp(argv[1], "verify") == 0) {
                if (argc > 2)
                        return EXIT_USAGE;
                return cmd_audit_verify(c);
        }
        sg_writer_init(&c->w, SG_MSG_AUDIT_QUERY);
        optind = 1;
        while ((o = getopt_long(argc, argv, "+", options, NULL)) >= 0) {
                switch (o) {
                case 'u': sg_writer_str(&c->w, SG_F_USER, optarg); break;
                case 'e': sg_writer_str(&c->w, SG_F_EVENT, optarg); break;
                case 'r': sg_writer_str(&c->w, SG_F_RHOST, optarg); break;
                case 's':
                case 'U':
                        if (sg_parse_time(optarg, now, &t) < 0) {
                                fprintf(stderr, "secguardctl: bad time \"%s\" (ISO-8601 like 2026-01-31T12:00:00Z, or 1h, 2d)\n", optarg);
                                return EXIT_USAGE;
                        }
                        sg_writer_u64(&c->w, o == 's' ? SG_F_SINCE : SG_F_UNTIL, t);
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
                default:
                        return EXIT_USAGE;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "secguardctl: unexpected argument to audit\n");
                return EXIT_USAGE;
        }
        if (c->w.err) {
                fprintf(stderr, "secguardctl: a filter value is too long\n");
                return EXIT_USAGE;
        }
        r = ctl_call(c);
        while (r == 0 && c->msg->type == SG_MSG_ROW) {
                print_audit_row(c);
                r = ctl_next(c);
        }
        return r < 0 ? -r : EXIT_OK;
}

static int cmd_hash(int argc, char **argv, const struct sg_config *cfg) {
        static const struct option options[] = {
                { "scheme", required_argument, NULL, 's' },
                {}
        };
        struct sg_hash_pref pref = { .opslimit = cfg->argon2_opslimit, .memlimit = cfg->argon2_memlimit };
        enum sg_scheme scheme = SG_SCHEME_ARGON2ID;
        char *pw, out[SG_HASH_MAX];
        size_t cap = cfg->password_max_len + 2, len = 0;
        int o, ch, r;

        optind = 1;
        while ((o = getopt_long(argc, argv, "+", options, NULL)) >= 0) {
                if (o != 's')
                        return EXIT_USAGE;
                scheme = sg_scheme_from_name(optarg);
                if (scheme != SG_SCHEME_ARGON2ID && scheme != SG_SCHEME_BCRYPT &&
                    scheme != SG_SCHEME_YESCRYPT && scheme != SG_SCHEME_SHA512CRYPT) {
                        fprintf(stderr, "secguardctl: --scheme must be argon2id, bcrypt, yescrypt or sha512crypt\n");
                        return EXIT_USAGE;
                }
        }
        if (optind < argc)
                return EXIT_USAGE;
        if (isatty(STDIN_FILENO))
                fprintf(stderr, "Password (then Enter): ");
        pw = sodium_malloc(cap + 1);
        if (!pw)
                return EXIT_FAILED;
        while ((ch = getchar()) != EOF && ch != '\n') {
                if (len >= cap - 1) {
                        fprintf(stderr, "secguardctl: password longer than %u bytes\n", cfg->password_max_len);
                        sodium_free(pw);
                        return EXIT_FAILED;
                }
                pw[len++] = (char) ch;
        }
        pw[len] = '\0';
        if (len > 0 && pw[len - 1] == '\r')
                pw[--len] = '\0';
        if (len == 0 || strlen(pw) != len) {
                fprintf(stderr, "secguardctl: empty password or NUL byte in it\n");
                sodium_free(pw);
                return EXIT_FAILED;
        }
        r = sg_hash_create(scheme, pw, len, &pref, true, out, sizeof out);
        sodium_free(pw);
        if (r < 0) {
                fprintf(stderr, "secguardctl: hashing failed: %s%s\n", strerror(-r),
                        r == -E2BIG ? " (bcrypt uses only the first 72 bytes)" : "");
                return EXIT_FAILED;
        }
        printf("%s\n", out);
        return EXIT_OK;
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
        bool config_given = false;
        char err[512];
        const char *cmd;
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
        if (sodium_init() < 0)
                return EXIT_FAILED;
        sg_config_defaults(&cfg);
        if (sg_config_load(&cfg, c.config, !config_given, err, sizeof err) < 0) {
                fprintf(stderr, "secguardctl: %s\n", err);
                return EXIT_FAILED;
        }
        if (!c.socket)
                c.socket = cfg.socket;
        c.timeout_ms = cfg.timeout_ms;

        cmd = argv[optind];
        argc -= optind;
        argv += optind;
        if (strcmp(cmd, "hash") == 0)
                return cmd_hash(argc, argv, &cfg);

        if (strcmp(cmd, "status") != 0 && strcmp(cmd, "locks") != 0 && strcmp(cmd, "unlock") != 0 &&
            strcmp(cmd, "audit") != 0) {
                fprintf(stderr, "secguardctl: unknown command \"%s\"\n", cmd);
                usage(stderr);
                return EXIT_USAGE;
        }
        if ((strcmp(cmd, "status") == 0 || strcmp(cmd, "locks") == 0) && argc > 1) {
                fprintf(stderr, "secguardctl: %s takes no arguments\n", cmd);
                return EXIT_USAGE;
        }
        c.msg = malloc(sizeof *c.msg);
        if (!c.msg)
                return EXIT_FAILED;
        r = ctl_connect(&c);
        if (r < 0) {
                free(c.msg);
                return -r;
        }
        if (strcmp(cmd, "status") == 0)
                r = cmd_status(&c);
        else if (strcmp(cmd, "locks") == 0)
                r = cmd_locks(&c);
        else if (strcmp(cmd, "unlock") == 0)
                r = cmd_unlock(&c, argc, argv);
        else
                r = cmd_audit(&c, argc, argv);
        if (r == EXIT_USAGE)
                usage(stderr);
        close(c.fd);
        free(c.msg);
        return r;
}
