/* SPDX-License-Identifier: MIT */
/*
 * Login requests from the PAM module: PRECHECK (reserve an attempt, hand out a hash permit),
 * REPORT (settle it), EVENT (password_changed, hash_upgraded) and ACCOUNT (lock check for
 * logins without a password). The attempt a PRECHECK opens lives in a struct login_attempt
 * hung on the client; it is settled by REPORT, or as abandoned when the client goes away.
 * See docs/architecture.md ("one login").
 */
#pragma once

#include <stdbool.h>

#include "client.h"

/* Handlers (client.h, request_handler_fn). */
int login_precheck(Client *cl, const struct sg_msg *msg);
int login_report(Client *cl, const struct sg_msg *msg);
int login_event(Client *cl, const struct sg_msg *msg);
int login_account(Client *cl, const struct sg_msg *msg);
/* For the serving order only: true when the PRECHECK in msg names a user or source that is
 * locked now (it will be answered DENY). Changes nothing; login_precheck() decides. */
bool login_precheck_refused(Client *cl, const struct sg_msg *msg);

/* The client is going away: an open attempt is settled as abandoned, a success whose
 * answer never reached the module is recorded as refused, the permit is given back. */
void login_closed(Client *cl);
/* An attempt is open on cl (shutdown lets it finish). */
bool login_in_flight(const Client *cl);
/* The [daemon] disk_full policy: true when the login on cl may go on although the store
 * could not record it (a local login under fail_remote). Logs why. */
bool login_store_error_tolerated(Client *cl, int r);
/* The store failed a login request on cl: journald is told the login was refused. */
void login_store_failed(Client *cl, int r);
