/* SPDX-License-Identifier: MIT */
/* Administrator requests: STATUS, LOCKS, UNLOCK, AUDIT_QUERY, AUDIT_VERIFY (handlers as in
 * client.h). Who may ask which is decided by the table in dispatch.c. */
#pragma once

#include "client.h"

int admin_status(Client *cl, const struct sg_msg *msg);
int admin_locks(Client *cl, const struct sg_msg *msg);
int admin_unlock(Client *cl, const struct sg_msg *msg);
int admin_audit_query(Client *cl, const struct sg_msg *msg);
int admin_audit_verify(Client *cl, const struct sg_msg *msg);
/* The fields of one audit row as AUDIT_QUERY sends them (FLEET_EXPORT adds MAC and epoch). */
void admin_audit_row_fields(struct sg_writer *w, const struct sg_audit_row *row);
/* The client goes away: whatever the audit worker still does for it is dropped. */
void admin_closed(Client *cl);
