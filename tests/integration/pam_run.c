/* SPDX-License-Identifier: MIT */
/*
 * pam_run CONFDIR SERVICE USER OPERATION [RHOST [TTY]]: runs one PAM operation (authenticate,
 * chauthtok, acct_mgmt, open_session; login: authenticate, acct_mgmt and the password change
 * an expired token asks for, as login(1) does; or session: open_session, print SECGUARD_SESSION, wait
 * for a line or end of stdin, close_session: this process is the session's leader) from a private PAM config dir with pam_start_confdir, answering
 * prompts with lines from stdin. USER, RHOST and TTY given as "@FILE" are read from that file
 * (any bytes but NUL, up to 2 MiB: hostile items too long for argv); "" leaves an item unset. For tests where pam_wrapper cannot be preloaded: a caller
 * with real uid != effective uid (as a setuid passwd is) runs in ld.so's secure mode.
 * PAM_RUN_SILENT=1 passes PAM_SILENT; PAM_RUN_CONV=fail or =again makes the conversation
 * return PAM_CONV_ERR or PAM_CONV_AGAIN for every prompt (a client that went away, or one
 * that will call again).
 * Exit status: 0 on PAM_SUCCESS, 1 otherwise (the PAM error is printed).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ITEM_FILE_MAX (2u << 20)

#include <security/pam_appl.h>

static int conv(int n, const struct pam_message **msg, struct pam_response **resp, void *data) {
        const char *mode = getenv("PAM_RUN_CONV");
        struct pam_response *r;

        (void) data;
        if (mode && strcmp(mode, "fail") == 0)
                return PAM_CONV_ERR;
        if (mode && strcmp(mode, "again") == 0)
                return PAM_CONV_AGAIN;
        r = calloc((size_t) n, sizeof *r);
        if (!r)
                return PAM_BUF_ERR;
        for (int i = 0; i < n; i++) {
                char line[8192];

                switch (msg[i]->msg_style) {
                case PAM_PROMPT_ECHO_OFF:
                case PAM_PROMPT_ECHO_ON:
                        if (!fgets(line, sizeof line, stdin))
                                line[0] = '\0';
                        line[strcspn(line, "\n")] = '\0';
                        r[i].resp = strdup(line);
                        break;
                default:
                        printf("message: %s\n", msg[i]->msg);
                        break;
                }
        }
        *resp = r;
        return PAM_SUCCESS;
}

/* "@FILE" -> the file's bytes as a string (a NUL in it ends the item, as PAM would), else arg. */
static char *item_arg(const char *arg) {
        FILE *f;
        char *buf;
        size_t n;

        if (arg[0] != '@')
                return strdup(arg);
        f = fopen(arg + 1, "re");
        if (!f)
                return NULL;
        buf = malloc(ITEM_FILE_MAX + 1);
        if (!buf) {
                fclose(f);
                return NULL;
        }
        n = fread(buf, 1, ITEM_FILE_MAX, f);
        fclose(f);
        buf[n] = '\0';
        return buf;
}

int main(int argc, char **argv) {
        struct pam_conv c = { conv, NULL };
        const char *silent = getenv("PAM_RUN_SILENT");
        int flags = silent && strcmp(silent, "1") == 0 ? PAM_SILENT : 0;
        pam_handle_t *pamh = NULL;
        int r;

        char *user, *rhost = NULL, *tty = NULL;

        if (argc < 5 || argc > 7) {
                fprintf(stderr, "usage: pam_run CONFDIR SERVICE USER authenticate|chauthtok|acct_mgmt [RHOST [TTY]]\n");
                return 2;
        }
        user = item_arg(argv[3]);
        if (!user || (argc >= 6 && !(rhost = item_arg(argv[5]))) || (argc == 7 && !(tty = item_arg(argv[6])))) {
                fprintf(stderr, "pam_run: cannot read an item\n");
                return 2;
        }
        r = pam_start_confdir(argv[2], user, &c, argv[1], &pamh);
        if (r != PAM_SUCCESS)
                return 2;
        if (rhost && *rhost)
                pam_set_item(pamh, PAM_RHOST, rhost);
        if (tty && *tty)
                pam_set_item(pamh, PAM_TTY, tty);
        if (strcmp(argv[4], "authenticate") == 0)
                r = pam_authenticate(pamh, flags);
        else if (strcmp(argv[4], "chauthtok") == 0)
                r = pam_chauthtok(pamh, flags);
        else if (strcmp(argv[4], "acct_mgmt") == 0)
                r = pam_acct_mgmt(pamh, flags);
        else if (strcmp(argv[4], "login") == 0) {
                /* What login(1) and sshd do: auth, account, and the change the account phase
                 * may ask for (PAM_NEW_AUTHTOK_REQD), each step's result printed. */
                r = pam_authenticate(pamh, flags);
                printf("authenticate: %s\n", pam_strerror(pamh, r));
                if (r == PAM_SUCCESS) {
                        r = pam_acct_mgmt(pamh, flags);
                        printf("acct_mgmt: %s\n", pam_strerror(pamh, r));
                }
                if (r == PAM_NEW_AUTHTOK_REQD) {
                        r = pam_chauthtok(pamh, flags | PAM_CHANGE_EXPIRED_AUTHTOK);
                        printf("chauthtok: %s\n", pam_strerror(pamh, r));
                }
        }
        else if (strcmp(argv[4], "open_session") == 0 || strcmp(argv[4], "session") == 0) {
                const char *id;

                if (getenv("PAM_RUN_XDG_SESSION_ID")) {
                        char env[128];

                        snprintf(env, sizeof env, "XDG_SESSION_ID=%s", getenv("PAM_RUN_XDG_SESSION_ID"));
                        pam_putenv(pamh, env);
                }
                r = pam_open_session(pamh, flags);
                id = pam_getenv(pamh, "SECGUARD_SESSION");
                printf("open_session: %s\nSECGUARD_SESSION=%s\n", pam_strerror(pamh, r), id ? id : "");
                fflush(stdout);
                if (r == PAM_SUCCESS && strcmp(argv[4], "session") == 0) {
                        char line[64];

                        if (!fgets(line, sizeof line, stdin))
                                line[0] = 0; /* end of input: close as well */
                        r = pam_close_session(pamh, flags);
                        argv[4] = "close_session";
                }
        }
        else
                r = PAM_SYSTEM_ERR;
        printf("%s: %s\n", argv[4], pam_strerror(pamh, r));
        pam_end(pamh, r);
        free(user);
        free(rhost);
        free(tty);
        return r == PAM_SUCCESS ? 0 : 1;
}
