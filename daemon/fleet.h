/* SPDX-License-Identifier: MIT */
/*
 * The fleet helper's requests (secguard-fleetd; docs/protocol.md): FLEET_EXPORT (a page of
 * audit rows after an id, with their MACs), FLEET_LOCK and FLEET_UNLOCK (decisions made for
 * the whole fleet, validated here before anything is applied). Handlers as in client.h; who
 * may ask is decided by the table in dispatch.c (root and the [fleet] user).
 */
#pragma once

#include "client.h"

#define FLEET_EXPORT_DEFAULT_LIMIT 256
#define FLEET_EXPORT_MAX_LIMIT 1000 /* one page is read on the loop: keep it short */

int fleet_export(Client *cl, const struct sg_msg *msg);
int fleet_lock(Client *cl, const struct sg_msg *msg);
int fleet_unlock(Client *cl, const struct sg_msg *msg);

/* Clears every fleet lock an administrator's `unlock --rhost` covers on this host: the source
 * keys given (address, wider networks; "" skipped) and the spray key of the first one, in the
 * policy and the store (open transaction). Returns how many were in force, or -errno. */
int fleet_clear_for_unlock(const Context *x, const char *source, const char *wide, const char *widest);
