/* SPDX-License-Identifier: MIT */
#include "event_table.h"

#include <string.h>
#include <syslog.h>

/* The MESSAGE_IDs are part of the interface (journalctl MESSAGE_ID=..., the catalog): never
 * change one; a new event gets a new id (systemd-id128 new). */
static const struct sg_event_kind kinds[] = {
        { "auth_success",     "973db29d3eac4c60aa119cc6bf45d38d", LOG_INFO,    "Password login accepted" },
        { "auth_failure",     "7d83522bc15e482fb99cb8a983d6d48d", LOG_NOTICE,  "Password login failed" },
        { "auth_blocked",     "9efb99913c604602bdd08db2b074b4e3", LOG_WARNING, "Login attempt blocked by a lock" },
        { "lockout",          "6c043ffc13a24eaab37fb8e0df4e07d9", LOG_WARNING, "Lock imposed" },
        { "unlock",           "71f11c47c1f04beb8efd58b85fcef243", LOG_NOTICE,  "Lock cleared" },
        { "session_open",     "297cd2073b504ddd83d11f3e93a11803", LOG_INFO,    "Session opened" },
        { "session_close",    "ce07912fc4a74f6884961a4792eda096", LOG_INFO,    "Session closed" },
        { "session_expired",  "96c1ac2fd7f54e98bc3489af99cb92aa", LOG_NOTICE,  "Session expired" },
        { "session_killed",   "19ffe93d2a4a4973af4fe75ff9296189", LOG_NOTICE,  "Session ended by an administrator" },
        { "session_reaped",   "d12eb3e622b34d5e9eded43ea96c0c3e", LOG_INFO,    "Session reaped" },
        { "token_issued",     "6dc1786cb7f44cc8bc9db29a4a29dd6a", LOG_NOTICE,  "One-time token issued" },
        { "token_used",       "037e3a94097141ac943afc76cde00f08", LOG_NOTICE,  "One-time token used" },
        { "token_revoked",    "a8937c770e7145e3a07b1ae53b7a34d6", LOG_NOTICE,  "One-time token revoked" },
        { "password_changed", "c2d23907c5d84d969048e3354bef8572", LOG_NOTICE,  "Password changed" },
        { "hash_upgraded",    "224b3bd0710e42a1a776ae3d5497592f", LOG_INFO,    "Password hash upgraded" },
        { "peer_denied",      "f4b0c60b1845494b829b26dcb76c68cd", LOG_WARNING, "Request refused for this peer" },
        { "protocol_error",   "290221131b5745908d9714f7f32aad29", LOG_WARNING, "Malformed request" },
        { "daemon_start",     "bed7a44c82e24bf18dc9c06e3e4ce714", LOG_INFO,    "secguardd started" },
        { "daemon_stop",      "2634df0c47eb4bd0853a282f2a8d84d6", LOG_INFO,    "secguardd stopped" },
        { "fleet_lock",       "dd747379e8aa478d91a9bd4831e8ead6", LOG_WARNING, "Fleet-wide lock applied" },
        { "fleet_unlock",     "1e66e003555d475a982409b8e92c074f", LOG_NOTICE,  "Fleet-wide lock cleared" },
        { "fleet_rejected",   "307f5d3b837748cebf7b260dd3db722b", LOG_WARNING, "Fleet decision rejected" },
};

/* What each means: etc/secguard.catalog (auth_failure). "locked" and "paced" are the reasons
 * of auth_blocked; "daemon_error" reaches only journald (the store refused the row). */
const char *const sg_event_failure_reasons[] = {
        "unknown_user", "bad_password", "invalid_input", "locked_hash", "unsupported_hash",
        "hash_cost", "overload", "abandoned", "locked", "daemon_error", "password_too_long",
        "paced", "bad_token", "no_password", NULL,
};

const struct sg_event_kind *sg_event_kinds(size_t *ret_n) {
        *ret_n = sizeof kinds / sizeof kinds[0];
        return kinds;
}

const struct sg_event_kind *sg_event_kind_find(const char *name) {
        if (!name)
                return NULL;
        for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
                if (strcmp(kinds[i].name, name) == 0)
                        return &kinds[i];
        return NULL;
}

bool sg_event_reason_valid(const char *reason) {
        for (size_t i = 0; sg_event_failure_reasons[i]; i++)
                if (strcmp(sg_event_failure_reasons[i], reason) == 0)
                        return true;
        return false;
}
