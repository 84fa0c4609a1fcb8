/* SPDX-License-Identifier: MIT */
/*
 * pam_run CONFDIR SERVICE USER OPERATION [RHOST]: runs one PAM operation (authenticate,
 * chauthtok, acct_mgmt) from a private PAM config dir with pam_start_confdir, answering
 * prompts with lines from stdin. For tests where pam_wrapper cannot be preloaded: a caller
 * with real uid != effective uid (as a setuid passwd is) runs in ld.so's secure mode.
 * Exit status: 0 on PAM_SUCCESS, 1 otherwise (the PAM error is printed).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <security/pam_appl.h>

static int conv(int n, const struct pam_message **msg, struct pam_response **resp, void *data) {
        struct pam_response *r = calloc((size_t) n, sizeof *r);

        (void) data;
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

int main(int argc, char **argv) {
        struct pam_conv c = { conv, NULL };
        pam_handle_t *pamh = NULL;
        int r;

        if (argc < 5 || argc > 6) {
                fprintf(stderr, "usage: pam_run CONFDIR SERVICE USER authenticate|chauthtok|acct_mgmt [RHOST]\n");
                return 2;
        }
        r = pam_start_confdir(argv[2], argv[3], &c, argv[1], &pamh);
        if (r != PAM_SUCCESS)
                return 2;
        if (argc == 6)
                pam_set_item(pamh, PAM_RHOST, argv[5]);
        if (strcmp(argv[4], "authenticate") == 0)
                r = pam_authenticate(pamh, 0);
        else if (strcmp(argv[4], "chauthtok") == 0)
                r = pam_chauthtok(pamh, 0);
        else if (strcmp(argv[4], "acct_mgmt") == 0)
                r = pam_acct_mgmt(pamh, 0);
        else
                r = PAM_SYSTEM_ERR;
        printf("%s: %s\n", argv[4], pam_strerror(pamh, r));
        pam_end(pamh, r);
        return r == PAM_SUCCESS ? 0 : 1;
}
