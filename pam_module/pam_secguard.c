/* SPDX-License-Identifier: MIT */
/*
 * pam_secguard.so: the PAM entry points. The login steps are in docs/architecture.md; in short:
 * validate input -> prompt -> look up the shadow entry -> PRECHECK (the daemon reserves the
 * attempt and hands a hash permit) -> verify (or, for an unknown user or an unusable hash,
 * the same work on another real user's hash) -> REPORT (which carries what was typed when it
 * failed but looks like a one-time token: the daemon decides) -> optional hash upgrade. Every
 * failure returns PAM_AUTH_ERR and shows nothing of its own: the application prints one
 * message (pam_strerror) whatever the cause; the cause is only in the audit log. Only a
 * conversation that failed before anything was typed has its own code (PAM_CONV_ERR,
 * PAM_INCOMPLETE): there was no attempt to hide. A broken config file makes every call take
 * the daemon-unreachable path (config_fallback).
 *
 * No static state: everything lives in a per-call struct; PAM return codes appear only in
 * this file.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <security/pam_ext.h>
#include <security/pam_modules.h>
#include <security/pam_modutil.h>
#include <pwd.h>
#include <sodium.h>

#include "config.h"
#include "hashes.h"
#include "io.h"
#include "protocol.h"
#include "shadowfile.h"
#include "tokenfmt.h"
#include "validate.h"

#define DEFAULT_SHADOW "/etc/shadow"
/* What sshd passes as the password of an invalid user, or of root where root may not log in
 * (auth-pam.c, fake_password()): this, repeated or cut to the length of what was typed. */
#define SSHD_FAKE_PASSWORD "\b\n\r\177INCORRECT"
/* Internal results with a PAM code of their own (pam_result): the conversation failed (nothing
 * was typed, so nothing is verified or counted), or the application will call again; and a
 * password change asked for sooner than min_days allows. */
#define E_CONV ECOMM
#define E_CONV_AGAIN EINPROGRESS
#define E_TOO_SOON EAGAIN
/* A session refused by [session] max_sessions. */
#define E_SESSION_LIMIT EDQUOT
/* pam_set_data name of the session id the daemon handed out, for close. */
#define SESSION_DATA "pam_secguard_session"
/* pam_set_data name of the mark a one-time token login leaves for the account and password
 * phases of the same transaction: a new password is required (docs/protocol.md, REPORT). */
#define TOKEN_DATA "pam_secguard_token_login"
/* pam_set_data name of what a successful authentication read, for the account phase of the
 * same transaction (struct auth_memo). */
#define MEMO_DATA "pam_secguard_auth_memo"

struct args {
        const char *config;
        const char *socket;
        const char *shadow;
        bool config_given, debug;
};

struct login {
        pam_handle_t *pamh;
        struct args args;
        struct sg_config cfg;
        const char *user, *rhost, *tty, *service;
        bool input_valid;
        bool silent;        /* PAM_SILENT: no messages of our own */
        bool config_broken; /* built-in defaults in force; the daemon is not asked */
        struct sg_shadow_match sh; /* sh.entry is the user's when user_known */
        bool user_known;
        int fd;
        struct sg_msg *msg;
        /* timeout_ms is one budget for all the waiting this PAM call does on the daemon. */
        uint64_t wait_left_usec, wait_start_usec;
};

static int parse_args(pam_handle_t *pamh, int argc, const char **argv, struct args *a) {
        *a = (struct args) { .config = SG_DEFAULT_CONFIG, .shadow = DEFAULT_SHADOW };
        for (int i = 0; i < argc; i++) {
                if (strncmp(argv[i], "config=", 7) == 0) {
                        a->config = argv[i] + 7;
                        a->config_given = true;
                } else if (strncmp(argv[i], "socket=", 7) == 0)
                        a->socket = argv[i] + 7;
                else if (strncmp(argv[i], "shadow=", 7) == 0)
                        a->shadow = argv[i] + 7;
                else if (strcmp(argv[i], "debug") == 0)
                        a->debug = true;
                else {
                        pam_syslog(pamh, LOG_ERR, "unknown option \"%s\"", argv[i]);
                        return -EINVAL;
                }
        }
        if (a->shadow[0] != '/' || (a->socket && a->socket[0] != '/')) {
                pam_syslog(pamh, LOG_ERR, "shadow= and socket= need absolute paths");
                return -EINVAL;
        }
        return 0;
}

/* A config file that cannot be used must not lock the administrator out: the built-in
 * defaults apply and every call takes the daemon-unreachable path (unreachable = allow_local:
 * only root at a local console with the right password gets in), loudly logged each time. */
static void config_fallback(struct login *l, const char *err) {
        pam_syslog(l->pamh, LOG_CRIT, "%s; using the built-in defaults and not asking secguardd: every "
                   "login is refused except root's at a local console until the file is fixed", err);
        sg_config_defaults(&l->cfg);
        l->config_broken = true;
}

/* The config and the user's aging fields as a successful authentication read them, so the
 * account phase that follows in the same transaction (sshd, su, login: always) parses neither
 * file again. It is used only for the same user and the same module arguments; anything else
 * reads the files as before. The hash is never kept. */
struct auth_memo {
        char args[1024]; /* the module arguments, each followed by a NUL */
        size_t args_len;
        char user[SG_USER_MAX + 1];
        struct sg_config cfg;
        struct sg_shadow_entry entry; /* hash wiped */
};

static bool memo_args(int argc, const char **argv, char *buf, size_t size, size_t *ret_len) {
        size_t len = 0;

        for (int i = 0; i < argc; i++) {
                size_t n = strlen(argv[i]) + 1;

                if (n > size - len)
                        return false;
                memcpy(buf + len, argv[i], n);
                len += n;
        }
        *ret_len = len;
        return true;
}

static void memo_free(pam_handle_t *pamh, void *data, int status) {
        (void) pamh;
        (void) status;
        if (data) {
                sodium_memzero(data, sizeof(struct auth_memo));
                free(data);
        }
}

static void memo_drop(pam_handle_t *pamh) {
        (void) pam_set_data(pamh, MEMO_DATA, NULL, NULL);
}

/* The memo for this call, or NULL when there is none or it was made for other arguments.
 * The caller still compares the user. */
static const struct auth_memo *memo_find(pam_handle_t *pamh, int argc, const char **argv) {
        const void *v = NULL;
        const struct auth_memo *m;
        char args[sizeof m->args];
        size_t len;

        if (pam_get_data(pamh, MEMO_DATA, &v) != PAM_SUCCESS || !v)
                return NULL;
        m = v;
        if (!memo_args(argc, argv, args, sizeof args, &len) || len != m->args_len ||
            memcmp(args, m->args, len) != 0)
                return NULL;
        return m;
}

static int login_init(struct login *l, pam_handle_t *pamh, int flags, int argc, const char **argv,
                      const struct auth_memo *memo) {
        char err[512];
        int r;

        memset(l, 0, sizeof *l);
        l->pamh = pamh;
        l->silent = flags & PAM_SILENT;
        l->fd = -1;
        if (sodium_init() < 0)
                return -EIO;
        r = parse_args(pamh, argc, argv, &l->args);
        if (r < 0)
                return r;
        if (memo) {
                l->cfg = memo->cfg; /* checked when it was loaded; the socket= override is in it */
                goto loaded;
        }
        sg_config_defaults(&l->cfg);
        r = sg_config_load(&l->cfg, l->args.config, !l->args.config_given, err, sizeof err);
        if (r >= 0 && l->args.socket)
                snprintf(l->cfg.socket, sizeof l->cfg.socket, "%s", l->args.socket);
        if (r >= 0)
                r = sg_config_check(&l->cfg, err, sizeof err);
        if (r < 0)
                config_fallback(l, err);
loaded:
        l->wait_left_usec = (uint64_t) l->cfg.timeout_ms * 1000;
        l->msg = malloc(sizeof *l->msg);
        return l->msg ? 0 : -ENOMEM;
}

static void login_done(struct login *l) {
        if (l->fd >= 0)
                close(l->fd);
        l->fd = -1;
        sodium_memzero(&l->sh, sizeof l->sh);
        free(l->msg);
        l->msg = NULL;
}

/* A message for the user, unless the application asked for silence (PAM_SILENT). */
static void login_say(const struct login *l, int style, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void login_say(const struct login *l, int style, const char *fmt, ...) {
        va_list ap;

        if (l->silent)
                return;
        va_start(ap, fmt);
        (void) pam_vprompt(l->pamh, style, NULL, fmt, ap);
        va_end(ap);
}

static const char *item_str(pam_handle_t *pamh, int item) {
        const void *v = NULL;

        if (pam_get_item(pamh, item, &v) != PAM_SUCCESS || !v)
                return "";
        return v;
}

/* Reads user, rhost, tty, service and validates them (step 1). Never fails: invalid input
 * is carried on as a failure-to-be, so the user sees the same prompt and outcome. */
static void login_read_items(struct login *l) {
        const char *user = NULL;

        if (pam_get_user(l->pamh, &user, NULL) != PAM_SUCCESS || !user)
                user = "";
        l->user = user;
        l->rhost = item_str(l->pamh, PAM_RHOST);
        l->tty = item_str(l->pamh, PAM_TTY);
        l->service = item_str(l->pamh, PAM_SERVICE);
        l->input_valid = sg_valid_user(l->user) && (!*l->rhost || sg_valid_rhost(l->rhost)) &&
                         sg_valid_tty(l->tty) && sg_valid_service(l->service);
}

static struct sg_hash_caps caps_of(const struct sg_config *c) {
        return (struct sg_hash_caps) {
                .argon2_memlimit = c->max_argon2_memlimit,
                .argon2_opslimit = c->max_argon2_opslimit,
                .argon2_threads = c->max_argon2_threads,
                .bcrypt_cost = c->max_bcrypt_cost,
                .yescrypt_n_log2 = c->max_yescrypt_cost,
                .sha_rounds = c->max_sha_rounds,
        };
}

static struct sg_hash_pref pref_of(const struct sg_config *c) {
        return (struct sg_hash_pref) { .opslimit = c->argon2_opslimit, .memlimit = c->argon2_memlimit };
}

/* Reads the user's entry and, for a password check, the stand-in hash (sg_shadow_find) in the
 * same pass; the account phase verifies nothing and skips the stand-in's scoring. */
static void login_lookup(struct login *l, bool want_standin) {
        struct sg_hash_caps caps = caps_of(&l->cfg);
        int r;

        l->user_known = false;
        sodium_memzero(&l->sh, sizeof l->sh);
        if (!l->input_valid)
                return;
        if (want_standin)
                r = sg_shadow_find(l->args.shadow, l->user, &caps, &l->sh);
        else {
                r = sg_shadow_lookup(l->args.shadow, l->user, &l->sh.entry);
                if (r == 0 || r == -ENOENT || r == -EINVAL) {
                        l->sh.user = r;
                        r = 0;
                }
        }
        if (r < 0)
                pam_syslog(l->pamh, LOG_ERR, "cannot read %s: %s", l->args.shadow, strerror(-r));
        else if (l->sh.user == 0)
                l->user_known = true;
        else if (l->sh.user != -ENOENT)
                pam_syslog(l->pamh, LOG_ERR, "a malformed line in %s for the user logging in", l->args.shadow);
}

static void put_items(struct login *l, struct sg_writer *w) {
        sg_writer_strn(w, SG_F_USER, l->user, strnlen(l->user, SG_FIELD_WIRE_MAX));
        sg_writer_strn(w, SG_F_SERVICE, l->service, strnlen(l->service, SG_FIELD_WIRE_MAX));
        if (*l->rhost)
                sg_writer_strn(w, SG_F_RHOST, l->rhost, strnlen(l->rhost, SG_FIELD_WIRE_MAX));
        if (*l->tty)
                sg_writer_strn(w, SG_F_TTY, l->tty, strnlen(l->tty, SG_FIELD_WIRE_MAX));
}

/* Every wait on the daemon (connect and each exchange) draws on one budget of timeout_ms
 * per PAM call, so a daemon that answers each exchange just in time cannot hold a login for
 * a multiple of it. Time between waits (hashing) is not charged. */
static uint64_t wait_begin(struct login *l) {
        l->wait_start_usec = sg_now_mono_usec();
        return l->wait_start_usec + l->wait_left_usec;
}

static void wait_end(struct login *l) {
        uint64_t spent = sg_now_mono_usec() - l->wait_start_usec;

        l->wait_left_usec = spent < l->wait_left_usec ? l->wait_left_usec - spent : 0;
}

/* One exchange with the daemon on the call's budget: connects first when not yet connected
 * (sg_connect checks the server runs as root before anything is sent), sends w, reads the
 * reply into l->msg. 0 or -errno. */
static int login_call(struct login *l, struct sg_writer *w) {
        uint64_t until;
        int r = 0;

        if (l->config_broken)
                return -ENOTCONN; /* see config_fallback */
        until = wait_begin(l);
        if (l->fd < 0) {
                r = sg_connect(l->cfg.socket, until, 0);
                if (r >= 0)
                        l->fd = r;
        }
        if (r >= 0)
                r = sg_call(l->fd, w, l->msg, until);
        wait_end(l);
        return r;
}

/* Step 2+3: connect, check the server is root, PRECHECK. Returns the decision or -errno. */
static int login_precheck(struct login *l, uint32_t *ret_delay_ms) {
        struct sg_writer *w = malloc(sizeof *w);
        int r;

        if (!w)
                return -ENOMEM;
        sg_writer_init(w, SG_MSG_PRECHECK);
        put_items(l, w);
        sg_writer_u64(w, SG_F_USER_KNOWN, l->user_known);
        r = login_call(l, w);
        free(w);
        if (r < 0)
                return r;
        if (l->msg->type != SG_MSG_OK || !sg_msg_has(l->msg, SG_F_DECISION))
                return -EPROTO;
        *ret_delay_ms = (uint32_t) sg_msg_u64(l->msg, SG_F_DELAY_MS, 0);
        return (int) sg_msg_u64(l->msg, SG_F_DECISION, 0);
}

/* REPORT. token: what was typed, when it has a one-time token's shape and the password check
 * failed; the daemon, which holds the token key, decides. 0 recorded, 1 recorded and the
 * token accepted (the login is a success after all), -errno. */
static int login_report(struct login *l, bool success, const char *reason, const char *token) {
        struct sg_writer *w = malloc(sizeof *w);
        int r;

        if (!w)
                return -ENOMEM;
        sg_writer_init(w, SG_MSG_REPORT);
        sg_writer_u64(w, SG_F_RESULT, success ? SG_RESULT_SUCCESS : SG_RESULT_FAILURE);
        if (!success)
                sg_writer_str(w, SG_F_REASON, reason);
        if (!success && token)
                sg_writer_str(w, SG_F_TOKEN, token);
        r = login_call(l, w); /* sg_call wipes the frame once sent */
        sodium_memzero(w, sizeof *w);
        free(w);
        if (r < 0)
                return r;
        if (l->msg->type != SG_MSG_OK)
                return -EPROTO;
        return token && sg_msg_u64(l->msg, SG_F_RESULT, 0) == SG_RESULT_SUCCESS ? 1 : 0;
}

static int login_event(struct login *l, const char *event, const char *detail) {
        struct sg_writer *w = malloc(sizeof *w);
        int r;

        if (!w)
                return -ENOMEM;
        sg_writer_init(w, SG_MSG_EVENT);
        sg_writer_str(w, SG_F_EVENT, event);
        put_items(l, w);
        if (detail)
                sg_writer_str(w, SG_F_DETAIL, detail);
        r = login_call(l, w);
        if (r >= 0 && l->msg->type != SG_MSG_OK)
                r = -EPROTO;
        free(w);
        if (r < 0)
                pam_syslog(l->pamh, LOG_WARNING, "could not record %s for the audit log: %s", event,
                           strerror(-r));
        return r;
}

/* The daemon's account decision (account_locks): 1 allowed, 0 refused (or an answer that is
 * not a decision), -errno when it could not be asked. */
static int login_account(struct login *l) {
        struct sg_writer *w = malloc(sizeof *w);
        int r;

        if (!w)
                return -ENOMEM;
        sg_writer_init(w, SG_MSG_ACCOUNT);
        put_items(l, w);
        r = login_call(l, w);
        free(w);
        if (r < 0)
                return r;
        return l->msg->type == SG_MSG_OK && sg_msg_u64(l->msg, SG_F_DECISION, 0) == SG_DECISION_ALLOW;
}

/* sshd's placeholder for a password it will not let through (SSHD_FAKE_PASSWORD, repeated or
 * cut to the typed length), or anything that starts with the whole of it. */
static bool is_sshd_fake(const char *pw) {
        const char junk[] = SSHD_FAKE_PASSWORD;
        size_t n = strlen(pw), k = sizeof junk - 1;

        if (n >= k && memcmp(pw, junk, k) == 0)
                return true;
        for (size_t i = 0; i < n; i++)
                if (pw[i] != junk[i % k])
                        return false;
        return n > 0;
}

/* For an unknown user or an unusable hash: the same work as a real user's wrong password on
 * this host. The password is checked against the stand-in, another real user's hash chosen
 * per name (sg_shadow_find), and the answer dropped; only a file without a usable hash
 * falls back to the preferred scheme's cost. */
static void verify_standin(const struct login *l, const char *pw, size_t len) {
        struct sg_hash_caps caps = caps_of(&l->cfg);
        struct sg_hash_pref pref = pref_of(&l->cfg);

        if (l->sh.standin[0] != '\0') {
                int r = sg_hash_verify(l->sh.standin, pw, len, &caps);
                (void) r; /* a match would be someone else's password */
                return;
        }
        (void) sg_hash_dummy_verify(pw, len, &pref);
}

/* Step 4: verify, or do the same work. Returns NULL on success, else the audit reason. */
static const char *login_verify(struct login *l, const char *pw) {
        struct sg_hash_caps caps = caps_of(&l->cfg);
        size_t len = strlen(pw);
        int r;

        if (!l->user_known) {
                verify_standin(l, pw, len);
                return "unknown_user";
        }
        r = sg_hash_usable(l->sh.entry.hash, &caps);
        if (r < 0) {
                verify_standin(l, pw, len);
                if (r == -E2BIG) {
                        pam_syslog(l->pamh, LOG_WARNING, "refusing a stored hash above the configured cost caps");
                        return "hash_cost";
                }
                if (sg_hash_scheme(l->sh.entry.hash) != SG_SCHEME_NONE)
                        return "unsupported_hash";
                /* "!" or "*" alone: no password was ever set (a new account); "!" before a hash:
                 * locked by passwd -l. Only the first may be opened with a one-time token. */
                return l->sh.entry.hash[strspn(l->sh.entry.hash, "!*")] == '\0' ? "no_password" : "locked_hash";
        }
        r = sg_hash_verify(l->sh.entry.hash, pw, len, &caps);
        if (r == -EINVAL)
                return "unsupported_hash";
        if (r < 0)
                return "bad_password";
        /* Whatever the stored hash says, sshd's placeholder password is never right. */
        if (is_sshd_fake(pw))
                return "bad_password";
        return NULL;
}

/* Replaces the user's hash in the shadow file. 0 or -errno; xattrs the file system refused
 * to carry over (never the SELinux label: that fails the update) are logged. */
static int login_store_hash(struct login *l, const char *hash, const char *expect_old, bool set_last_change) {
        int r = sg_shadow_update(l->args.shadow, l->user, hash, expect_old, set_last_change);

        if (r > 0)
                pam_syslog(l->pamh, LOG_WARNING, "%s rewritten without %d of its extended attributes: "
                           "the file system does not support them", l->args.shadow, r);
        return r < 0 ? r : 0;
}

/* Step 6: upgrade an outdated hash in place. Failures are logged, never fatal to the login. */
static void login_upgrade(struct login *l, const char *pw) {
        struct sg_hash_pref pref = pref_of(&l->cfg);
        char *hash;
        int r;

        if (!l->cfg.upgrade_hashes || !sg_hash_needs_upgrade(l->sh.entry.hash, &pref))
                return;
        if (!sg_hash_reads_whole_password(l->sh.entry.hash, strlen(pw))) {
                pam_syslog(l->pamh, LOG_INFO, "not upgrading a %s hash: it checked only part of "
                           "the typed password", sg_scheme_name(sg_hash_scheme(l->sh.entry.hash)));
                return;
        }
        hash = malloc(SG_HASH_MAX);
        if (!hash)
                return;
        r = sg_hash_create(SG_SCHEME_ARGON2ID, pw, strlen(pw), &pref, false, hash, SG_HASH_MAX);
        if (r >= 0)
                r = login_store_hash(l, hash, l->sh.entry.hash, false);
        if (r < 0)
                pam_syslog(l->pamh, LOG_WARNING, "hash upgrade for a user failed: %s", strerror(-r));
        else {
                char detail[64];

                snprintf(detail, sizeof detail, "from %s to argon2id",
                         sg_scheme_name(sg_hash_scheme(l->sh.entry.hash)));
                (void) login_event(l, "hash_upgraded", detail);
        }
        sodium_memzero(hash, SG_HASH_MAX);
        free(hash);
}

/* A console terminal, with or without /dev/: console, ttyN (virtual consoles), serial ports
 * (ttyS: 8250/16550; ttyAMA: ARM PL011; ttymxc: i.MX; ttyO: OMAP; ttySAC: Samsung; ttyPS:
 * Zynq; ttyUSB, ttyACM: USB serial adapters), hypervisor consoles (hvc, hvsi, xvc); each
 * followed by a number. Not a pseudo-terminal: su or sudo inside an ssh session is not
 * local. */
static bool tty_is_console(const char *tty) {
        static const char *const prefixes[] = { "tty", "ttyS", "ttyAMA", "ttymxc", "ttyO", "ttySAC",
                                                "ttyPS", "ttyUSB", "ttyACM", "hvc", "hvsi", "xvc" };

        if (strncmp(tty, "/dev/", 5) == 0)
                tty += 5;
        if (strcmp(tty, "console") == 0)
                return true;
        for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
                size_t n = strlen(prefixes[i]);

                if (strncmp(tty, prefixes[i], n) == 0 && tty[n] && strspn(tty + n, "0123456789") == strlen(tty + n))
                        return true;
        }
        return false;
}

/* root, no remote host, at a console terminal: who allow_local lets in without the daemon. */
static bool local_console_root(const struct login *l) {
        return l->input_valid && strcmp(l->user, "root") == 0 && !*l->rhost && tty_is_console(l->tty);
}

static void log_unreachable(const struct login *l, int err, const char *what) {
        if (l->config_broken)
                pam_syslog(l->pamh, LOG_ERR, "%s without secguardd: the config file is broken", what);
        else
                pam_syslog(l->pamh, LOG_ERR, "secguardd unreachable at %s for %s: %s", l->cfg.socket, what,
                           strerror(-err));
}

/* The daemon could not be asked. Policy allow_local: root at a local console may still log
 * in with the right password, so an administrator is never locked out of the machine. */
static bool unreachable_allows(struct login *l, int err, const char *pw) {
        bool local_root = local_console_root(l);

        log_unreachable(l, err, "a password check");
        if (l->cfg.unreachable != SG_UNREACHABLE_ALLOW_LOCAL || !local_root || !l->user_known)
                return false;
        if (login_verify(l, pw) != NULL)
                return false;
        pam_syslog(l->pamh, LOG_NOTICE, "local root login allowed without secguardd (unreachable=allow_local)");
        return true;
}

/* Steps 2-5 for a password already read: PRECHECK, verify, REPORT. 0 = verified. With
 * token_ok, what was typed may also be a one-time token: it goes through the same PRECHECK
 * and the same hash work as any password (so a refused token is a wrong password in every
 * way the user can see or time), and only when the password check fails is it sent with the
 * REPORT for the daemon to check; 1 = accepted as a token. */
static int check_password(struct login *l, const char *pw, bool token_ok) {
        const char *reason, *token = NULL;
        uint32_t delay_ms = 0;
        int decision, r;

        login_lookup(l, true);
        decision = login_precheck(l, &delay_ms);
        if (decision < 0)
                return unreachable_allows(l, decision, pw) ? 0 : -EACCES;
        if (delay_ms)
                (void) pam_fail_delay(l->pamh, (l->cfg.fail_delay_ms + delay_ms) * 1000u);
        if (decision == SG_DECISION_DENY)
                return -EACCES; /* locked or invalid: the daemon audited it; no hash */
        if (decision == SG_DECISION_OVERLOAD) {
                (void) login_report(l, false, "overload", NULL);
                return -EACCES;
        }
        if (decision != SG_DECISION_ALLOW)
                return -EPROTO;

        if (!l->input_valid)
                reason = "invalid_input";
        else if (strlen(pw) > l->cfg.password_max_len)
                reason = "password_too_long"; /* refused without hashing */
        else
                reason = login_verify(l, pw);
        if (reason && token_ok && l->input_valid && sg_token_shape(pw))
                token = pw;
        r = login_report(l, reason == NULL, reason, token);
        if (r < 0) {
                pam_syslog(l->pamh, LOG_ERR, "secguardd did not confirm the result: %s", strerror(-r));
                return -EACCES; /* an unrecorded success is not a success */
        }
        if (r == 1)
                return 1;
        return reason ? -EACCES : 0;
}

/* The mark of a one-time token login in this PAM transaction (see TOKEN_DATA). */
static bool token_login(pam_handle_t *pamh) {
        const void *data = NULL;

        return pam_get_data(pamh, TOKEN_DATA, &data) == PAM_SUCCESS && data != NULL;
}

/* After a token login: the account phase will ask for a new password, and the token is no
 * password for the modules after us (use_first_pass) nor for the change that follows. */
static int token_login_begin(struct login *l) {
        if (pam_set_data(l->pamh, TOKEN_DATA, (void *) "1", NULL) != PAM_SUCCESS)
                return -ENOMEM;
        return pam_set_item(l->pamh, PAM_AUTHTOK, NULL) == PAM_SUCCESS ? 0 : -ENOMEM;
}

/* The password (PAM_AUTHTOK) or, for a change, the old one (PAM_OLDAUTHTOK): the one an
 * earlier module of the stack read, else one prompt of our own. Not pam_get_authtok, which
 * turns every conversation failure into PAM_AUTHTOK_ERR: the conversation's own answer is
 * what tells -E_CONV (it failed: nothing was typed, so nothing is verified or counted) from
 * -E_CONV_AGAIN (the application will call again). 0 with *ret_pw set, or -errno. */
static int get_token(struct login *l, int item, const char *prompt, const char **ret_pw) {
        const void *have = NULL;
        char *resp = NULL;
        int r;

        if (pam_get_item(l->pamh, item, &have) == PAM_SUCCESS && have) {
                *ret_pw = have;
                return 0;
        }
        r = pam_prompt(l->pamh, PAM_PROMPT_ECHO_OFF, &resp, "%s", prompt);
        if (r == PAM_SUCCESS && resp)
                r = pam_set_item(l->pamh, item, resp) == PAM_SUCCESS ? 0 : -ENOMEM;
        else if (r == PAM_INCOMPLETE || r == PAM_CONV_AGAIN)
                r = -E_CONV_AGAIN;
        else {
                pam_syslog(l->pamh, LOG_NOTICE, "the conversation failed (%s): nothing to verify",
                           r == PAM_SUCCESS ? "no answer" : pam_strerror(l->pamh, r));
                r = -E_CONV;
        }
        if (resp) {
                sodium_memzero(resp, strlen(resp));
                free(resp);
        }
        if (r == 0 && (pam_get_item(l->pamh, item, &have) != PAM_SUCCESS || !have))
                r = -ENOMEM;
        if (r == 0)
                *ret_pw = have;
        return r;
}

static int authenticate(struct login *l) {
        const char *pw;
        int r;

        (void) pam_fail_delay(l->pamh, (unsigned) l->cfg.fail_delay_ms * 1000u);
        login_read_items(l);
        r = get_token(l, PAM_AUTHTOK, "Password: ", &pw);
        if (r < 0)
                return r;
        r = check_password(l, pw, true);
        if (r < 0)
                return r;
        if (r == 1) /* a token: there is no password to upgrade */
                return token_login_begin(l);
        login_upgrade(l, pw);
        return 0;
}

/* The one place that turns results into PAM codes: 0 success, the internal E_* results
 * their own codes, any other -errno the caller's failure code. */
static int pam_result(int r, int failure) {
        switch (r) {
        case 0: return PAM_SUCCESS;
        case -E_CONV: return PAM_CONV_ERR;
        case -E_CONV_AGAIN: return PAM_INCOMPLETE;
        case -E_TOO_SOON: return PAM_AUTHTOK_ERR; /* as pam_unix, in either phase */
        case -E_SESSION_LIMIT: return PAM_PERM_DENIED;
        default: return r < 0 ? failure : PAM_SUCCESS;
        }
}

/* After a successful authentication: the memo for the account phase (struct auth_memo). A
 * memo that cannot be made costs the account phase a read of both files, nothing else. */
static void memo_keep(const struct login *l, int argc, const char **argv) {
        struct auth_memo *m;

        if (l->config_broken || !l->input_valid || !l->user_known || strlen(l->user) > SG_USER_MAX)
                return;
        m = calloc(1, sizeof *m);
        if (!m)
                return;
        if (!memo_args(argc, argv, m->args, sizeof m->args, &m->args_len)) {
                free(m);
                return;
        }
        strcpy(m->user, l->user); /* length checked above */
        m->cfg = l->cfg;
        m->entry = l->sh.entry;
        sodium_memzero(m->entry.hash, sizeof m->entry.hash);
        if (pam_set_data(l->pamh, MEMO_DATA, m, memo_free) != PAM_SUCCESS)
                memo_free(l->pamh, m, 0);
}

PAM_EXTERN int pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv) {
        struct login l;
        int r;

        memo_drop(pamh); /* an earlier authentication's memo never outlives a new attempt */
        r = login_init(&l, pamh, flags, argc, argv, NULL);
        if (r >= 0)
                r = authenticate(&l);
        if (r == 0)
                memo_keep(&l, argc, argv);
        login_done(&l);
        return pam_result(r, PAM_AUTH_ERR);
}

PAM_EXTERN int pam_sm_setcred(pam_handle_t *pamh, int flags, int argc, const char **argv) {
        (void) pamh;
        (void) flags;
        (void) argc;
        (void) argv;
        return PAM_SUCCESS; /* we hand out no credentials */
}

/* Shadow aging as pam_unix's check_shadow_expiry reads it (-1 is an empty field): an expire
 * day of 0 has passed, a last change of 0 forces a change, max_days 0 asks for a change from
 * the next day, and aging needs a last change date (shadow(5): empty disables it). */
static int shadow_expiry(const struct login *l, const struct sg_shadow_entry *e, long today) {
        long age;

        if (e->expire != -1 && today >= e->expire)
                return PAM_ACCT_EXPIRED;
        if (e->last_change == 0)
                return PAM_NEW_AUTHTOK_REQD; /* forced change (passwd -e) */
        if (e->last_change < 0 || today < e->last_change || e->max_days == -1)
                return PAM_SUCCESS; /* no aging, or a change dated in the future */
        age = today - e->last_change;
        if (e->inactive_days != -1 && age > e->max_days + e->inactive_days)
                return PAM_ACCT_EXPIRED; /* pam_unix: PAM_AUTHTOK_EXPIRED, reported as this */
        if (age > e->max_days)
                return PAM_NEW_AUTHTOK_REQD;
        if (e->warn_days != -1 && age > e->max_days - e->warn_days) {
                long left = e->last_change + e->max_days - today;

                login_say(l, PAM_TEXT_INFO, "Your password will expire in %ld day%s.", left, left == 1 ? "" : "s");
        }
        return PAM_SUCCESS;
}

/* Shadow expiry as pam_unix does it, and (optionally) the daemon's locks for logins that
 * did not go through our auth (SSH keys). */
PAM_EXTERN int pam_sm_acct_mgmt(pam_handle_t *pamh, int flags, int argc, const char **argv) {
        const struct auth_memo *memo = memo_find(pamh, argc, argv);
        struct login l;
        long today = (long) (time(NULL) / 86400);
        int r, ret = PAM_SUCCESS;

        r = login_init(&l, pamh, flags, argc, argv, memo);
        if (r < 0) {
                login_done(&l);
                return PAM_AUTH_ERR;
        }
        login_read_items(&l);
        if (memo && l.input_valid && strcmp(memo->user, l.user) == 0) {
                l.sh.entry = memo->entry;
                l.sh.user = 0;
                l.user_known = true;
        } else
                login_lookup(&l, false);
        if (!l.input_valid || !l.user_known)
                ret = PAM_USER_UNKNOWN; /* as pam_unix: no shadow entry, no account */
        else
                ret = shadow_expiry(&l, &l.sh.entry, today);
        /* A broken config may have been meant to turn account_locks on: the check then takes
         * the unreachable path, as everything else does. */
        if (ret == PAM_SUCCESS && (l.cfg.account_locks || l.config_broken)) {
                r = login_account(&l);
                if (r == 0)
                        ret = PAM_PERM_DENIED;
                else if (r < 0) {
                        log_unreachable(&l, r, "the account check");
                        if (l.cfg.unreachable != SG_UNREACHABLE_ALLOW_LOCAL || !local_console_root(&l))
                                ret = PAM_PERM_DENIED;
                }
        }
        /* Logged in with a one-time token: the user sets a password before anything else. */
        if (ret == PAM_SUCCESS && token_login(pamh)) {
                login_say(&l, PAM_TEXT_INFO, "You logged in with a one-time token: choose a new password now.");
                ret = PAM_NEW_AUTHTOK_REQD;
        }
        login_done(&l);
        return ret;
}

/* The logind session this one runs in: XDG_SESSION_ID as pam_systemd put it into the PAM
 * environment (pam_systemd comes first in the session stack), else none. The module links no
 * libsystemd. */
static const char *logind_session(const struct login *l) {
        const char *id = pam_getenv(l->pamh, "XDG_SESSION_ID");

        return id && sg_valid_logind_id(id) ? id : NULL;
}

static void session_id_free(pam_handle_t *pamh, void *data, int status) {
        (void) pamh;
        (void) status;
        free(data);
}

/* Keeps the daemon's id for close (pam_set_data) and shows it to the session
 * (SECGUARD_SESSION in the PAM environment). */
static int session_keep(struct login *l, const char *id) {
        char env[sizeof "SECGUARD_SESSION=" + SG_SESSION_ID_LEN];
        char *copy = strdup(id);

        if (!copy)
                return -ENOMEM;
        if (pam_set_data(l->pamh, SESSION_DATA, copy, session_id_free) != PAM_SUCCESS) {
                free(copy);
                return -ENOMEM;
        }
        snprintf(env, sizeof env, "SECGUARD_SESSION=%s", id);
        return pam_putenv(l->pamh, env) == PAM_SUCCESS ? 0 : -ENOMEM;
}

/* Registers the session; the leader is this process, the one that called pam_open_session.
 * 0 (registered, or the daemon could not be asked: authentication has already happened, so
 * the session goes ahead unregistered, logged), -E_SESSION_LIMIT, or -errno for input that
 * cannot name a session. */
static int open_session(struct login *l) {
        const struct passwd *pw;
        const char *logind_id = logind_session(l), *id;
        struct sg_writer *w;
        int r;

        login_read_items(l);
        if (!l->input_valid) {
                pam_syslog(l->pamh, LOG_ERR, "refusing a session with invalid PAM items");
                return -EINVAL;
        }
        pw = pam_modutil_getpwnam(l->pamh, l->user);
        if (!pw) {
                pam_syslog(l->pamh, LOG_ERR, "refusing a session for a user without an account");
                return -ENOENT;
        }
        w = malloc(sizeof *w);
        if (!w)
                return -ENOMEM;
        sg_writer_init(w, SG_MSG_SESSION_OPEN);
        put_items(l, w);
        sg_writer_u64(w, SG_F_UID, pw->pw_uid);
        sg_writer_u64(w, SG_F_PID, (uint64_t) getpid());
        if (logind_id)
                sg_writer_str(w, SG_F_LOGIND_ID, logind_id);
        r = login_call(l, w);
        free(w);
        if (r >= 0 && l->msg->type == SG_MSG_OK && sg_msg_u64(l->msg, SG_F_DECISION, 0) == SG_DECISION_DENY) {
                login_say(l, PAM_ERROR_MSG, "too many sessions");
                return -E_SESSION_LIMIT;
        }
        id = r >= 0 && l->msg->type == SG_MSG_OK ? sg_msg_str(l->msg, SG_F_SESSION_ID) : NULL;
        if (!id || !sg_valid_session_id(id)) {
                pam_syslog(l->pamh, LOG_ERR, "secguardd did not register the session (%s): it goes ahead "
                           "untracked", r < 0 ? strerror(-r) :
                           l->msg->type == SG_MSG_ERROR ? sg_msg_str(l->msg, SG_F_DETAIL) ?: "error" : "bad answer");
                return 0;
        }
        r = session_keep(l, id);
        if (r < 0)
                pam_syslog(l->pamh, LOG_ERR, "cannot keep the session id: %s", strerror(-r));
        return 0;
}

PAM_EXTERN int pam_sm_open_session(pam_handle_t *pamh, int flags, int argc, const char **argv) {
        struct login l;
        int r;

        r = login_init(&l, pamh, flags, argc, argv, NULL);
        if (r >= 0)
                r = open_session(&l);
        login_done(&l);
        return pam_result(r, PAM_SESSION_ERR);
}

/* Never fails the stack: a second close, an unknown id or a daemon that is down are logged at
 * most; the daemon reaps a session whose leader is gone anyway. */
PAM_EXTERN int pam_sm_close_session(pam_handle_t *pamh, int flags, int argc, const char **argv) {
        const void *data = NULL;
        const char *id;
        struct sg_writer *w;
        struct login l;
        int r;

        if (pam_get_data(pamh, SESSION_DATA, &data) != PAM_SUCCESS || !data)
                data = pam_getenv(pamh, "SECGUARD_SESSION");
        id = data;
        if (!id || !sg_valid_session_id(id))
                return PAM_SUCCESS; /* nothing registered by us */
        r = login_init(&l, pamh, flags, argc, argv, NULL);
        w = r >= 0 ? malloc(sizeof *w) : NULL;
        if (w) {
                sg_writer_init(w, SG_MSG_SESSION_CLOSE);
                sg_writer_str(w, SG_F_SESSION_ID, id);
                r = login_call(&l, w);
                if (r >= 0 && l.msg->type != SG_MSG_OK)
                        r = -EPROTO;
                free(w);
        } else if (r >= 0)
                r = -ENOMEM;
        if (r < 0)
                pam_syslog(pamh, LOG_WARNING, "could not tell secguardd that session %s closed: %s", id,
                           strerror(-r));
        login_done(&l);
        return PAM_SUCCESS;
}

/* Quality checks for a new password; NULL when acceptable, else what to tell the user. */
static const char *new_password_problem(const struct login *l, const char *old, const char *pw) {
        size_t len = strlen(pw);

        if (len < l->cfg.min_password_len)
                return "the new password is too short";
        if (len > l->cfg.password_max_len)
                return "the new password is too long";
        if (old && strcmp(old, pw) == 0)
                return "the new password is the same as the old one";
        if (strcasecmp(pw, l->user) == 0)
                return "the new password is the user name";
        return NULL;
}

/* pam_unix's rule against cycling straight back to an old password: a caller whose real uid
 * is not root may not change it again within min_days of the last change. Empty fields, a
 * forced change (last change 0) and a change dated in the future put no limit. */
static bool change_too_soon(const struct sg_shadow_entry *e, long today) {
        if (getuid() == 0 || e->min_days <= 0 || e->last_change <= 0 || today < e->last_change)
                return false;
        return today - e->last_change < e->min_days;
}

static int refuse_too_soon(struct login *l) {
        login_say(l, PAM_ERROR_MSG, "You must wait longer to change your password");
        return -E_TOO_SOON;
}

/* PAM_PRELIM_CHECK: the old password (not asked of root), then min_days. */
static int change_prelim(struct login *l, int flags, long today) {
        const char *old;
        int r;

        /* root (passwd USER) changes a password without the old one, as pam_unix does; so
         * does a user who just logged in with a one-time token (this transaction's auth). */
        if (getuid() == 0 && !(flags & PAM_CHANGE_EXPIRED_AUTHTOK))
                return 0;
        if ((flags & PAM_CHANGE_EXPIRED_AUTHTOK) && token_login(l->pamh))
                return 0;
        (void) pam_fail_delay(l->pamh, (unsigned) l->cfg.fail_delay_ms * 1000u);
        r = get_token(l, PAM_OLDAUTHTOK, "Current password: ", &old);
        if (r >= 0)
                r = check_password(l, old, false);
        if (r >= 0 && change_too_soon(&l->sh.entry, today))
                r = refuse_too_soon(l);
        return r;
}

static int change_password(struct login *l, int flags) {
        struct sg_hash_pref pref = pref_of(&l->cfg);
        long today = (long) (time(NULL) / 86400);
        const void *old = NULL;
        const char *pw, *problem;
        char *hash;
        int r;

        login_read_items(l);
        if (!l->input_valid)
                return -EINVAL;
        if (flags & PAM_PRELIM_CHECK)
                return change_prelim(l, flags, today);
        if (!(flags & PAM_UPDATE_AUTHTOK))
                return -EINVAL;
        login_lookup(l, true);
        if (!l->user_known)
                return -ENOENT;
        if (change_too_soon(&l->sh.entry, today))
                return refuse_too_soon(l);
        (void) pam_get_item(l->pamh, PAM_OLDAUTHTOK, &old);
        /* New password, asked twice; libpam refuses a retype that differs. */
        if (pam_get_authtok(l->pamh, PAM_AUTHTOK, &pw, NULL) != PAM_SUCCESS || !pw)
                return -EINVAL;
        problem = new_password_problem(l, old, pw);
        if (problem) {
                login_say(l, PAM_ERROR_MSG, "BAD PASSWORD: %s", problem);
                (void) pam_set_item(l->pamh, PAM_AUTHTOK, NULL);
                return -EINVAL;
        }
        hash = malloc(SG_HASH_MAX);
        if (!hash)
                return -ENOMEM;
        r = sg_hash_create(SG_SCHEME_ARGON2ID, pw, strlen(pw), &pref, false, hash, SG_HASH_MAX);
        if (r >= 0)
                r = login_store_hash(l, hash, NULL, true);
        sodium_memzero(hash, SG_HASH_MAX);
        free(hash);
        if (r < 0) {
                pam_syslog(l->pamh, LOG_ERR, "cannot update %s: %s", l->args.shadow, strerror(-r));
                return r;
        }
        (void) login_event(l, "password_changed", "argon2id");
        (void) pam_set_data(l->pamh, TOKEN_DATA, NULL, NULL); /* the change the token asked for is made */
        return 0;
}

PAM_EXTERN int pam_sm_chauthtok(pam_handle_t *pamh, int flags, int argc, const char **argv) {
        struct login l;
        int r;

        r = login_init(&l, pamh, flags, argc, argv, NULL);
        if (r >= 0)
                r = change_password(&l, flags);
        login_done(&l);
        return pam_result(r, (flags & PAM_PRELIM_CHECK) ? PAM_AUTH_ERR : PAM_AUTHTOK_ERR);
}
