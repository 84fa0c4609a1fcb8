/* SPDX-License-Identifier: MIT */
/*
 * The request layer: the connection ops the manager installs (a client per connection),
 * the handler table with who may ask what, and the audit rows for refused or malformed
 * requests (limited per uid: peers.h). See docs/architecture.md.
 */
#pragma once

#include <stdbool.h>

#include "connection.h"
#include "context.h"

/* The ops for conn_set_new(); the owner pointer given there must be the Context. */
extern const struct conn_ops dispatch_conn_ops;

/* Who may make a request: the permission bits of the handler table. */
enum {
        PERM_ROOT = 1 << 0,  /* uid 0 */
        PERM_ADMIN = 1 << 1, /* members of [daemon] admin_group */
        PERM_FLEET = 1 << 2, /* the [fleet] user (the fleet helper's account) */
};
/* The permission bits for a request type; 0 for a type that is no request. */
unsigned dispatch_permission(unsigned type);
/* Whether peer may make a request of this type. */
bool dispatch_permitted(unsigned type, const struct conn_peer *peer);

/* Writes the summary rows of refused/malformed requests held back that are due: those held
 * for a minute, or all of them with force (before daemon_stop). */
void dispatch_flush_suppressed(const Context *x, bool force);
/* Shutdown: whether the client on this connection has a login in flight. */
bool dispatch_busy(void *data);
