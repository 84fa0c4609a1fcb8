/* SPDX-License-Identifier: MIT */
/* Login sessions: SESSION_OPEN, SESSION_CLOSE, SESSIONS, SESSION_KILL (handlers as in
 * client.h), the expiry and reaping tick, and the start-up reload from the store. The table
 * itself is sessions.c's. See docs/architecture.md and docs/state.md. */
#pragma once

#include "client.h"

int session_open(Client *cl, const struct sg_msg *msg);
int session_close(Client *cl, const struct sg_msg *msg);
int session_list(Client *cl, const struct sg_msg *msg);
int session_kill(Client *cl, const struct sg_msg *msg);

/* Every second while sessions are open: reaps sessions whose leader is gone (session_reaped),
 * ends expired ones (session_expired), SIGKILLs leaders that outlived the grace period. */
void session_tick(void *context);
/* At start: loads the stored sessions, keeping those whose leader still runs (same process:
 * boot and start time checked) and reaping the others. */
int session_restore(const Context *x);
