/* SPDX-License-Identifier: MIT */
/* One-time login tokens, the admin side: TOKEN_ISSUE, TOKEN_REVOKE, TOKENS (handlers as in
 * client.h). The rules over the store are tokens.c's; a token typed at the password prompt
 * is redeemed by login.c's REPORT. See docs/protocol.md and docs/state.md. */
#pragma once

#include "client.h"

int token_issue(Client *cl, const struct sg_msg *msg);
int token_revoke(Client *cl, const struct sg_msg *msg);
int token_list(Client *cl, const struct sg_msg *msg);
