/* SPDX-License-Identifier: MIT */
/* requests.c's entry points beyond those in manager-internal.h. */
#pragma once

#include <stdbool.h>

#include "manager.h"

/* Writes the summary rows of noisy-peer events held back (peers.h) that are
 * due: those held back for a minute, or every one with force. Dispatch calls it for each
 * request; the manager should also call it from its maintenance timer and, with force,
 * before daemon_stop, so a count held when traffic stops is still written. */
void request_flush_suppressed(Manager *m, bool force);

/* A login request on c failed with store error r (the store refused the write or the
 * commit): tells journald the login was refused (auth_failure, reason daemon_error). */
void request_store_failed(Conn *c, int r);

/* The answer to a successful REPORT on c never reached the module (it hung up first, having
 * given up waiting): records that the user was refused after all. */
void request_ack_lost(Conn *c);
