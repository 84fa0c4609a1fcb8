/* SPDX-License-Identifier: MIT */
/*
 * bench_floor_module.so: a PAM module that does nothing, linked to the same shared
 * libraries as pam_secguard.so (libsodium, libcrypt, libpam). bench/run puts it in a stack
 * of its own next to pam_secguard's, so every run shows how much of the module's own cost
 * is only PAM loading and unloading a module of that shape for each transaction, a cost no
 * change inside the module can remove (docs/performance.md). It touches one symbol of each
 * library so that the linker keeps them all.
 */
#include <crypt.h>
#include <sodium.h>

#include <security/pam_modules.h>

#define FLOOR_EXPORT __attribute__((visibility("default")))

/* Never called by PAM; only here so that each library is really needed. */
FLOOR_EXPORT void *bench_floor_refs[] = { (void *) sodium_memzero, (void *) crypt_rn, (void *) pam_get_item };

FLOOR_EXPORT int pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv) {
        (void) pamh;
        (void) flags;
        (void) argc;
        (void) argv;
        return PAM_SUCCESS;
}

FLOOR_EXPORT int pam_sm_setcred(pam_handle_t *pamh, int flags, int argc, const char **argv) {
        return pam_sm_authenticate(pamh, flags, argc, argv);
}

FLOOR_EXPORT int pam_sm_acct_mgmt(pam_handle_t *pamh, int flags, int argc, const char **argv) {
        return pam_sm_authenticate(pamh, flags, argc, argv);
}
