/* SPDX-License-Identifier: MIT */
/*
 * One client as the request layer sees it: its connection, the decoded request, the reply
 * gate, and the login attempt it has open (login.c's, opaque here). The gate: a reply is
 * held while a transaction is open and released by the commit that makes it true; when
 * that commit fails, the owner's commit_failed callback decides what the client hears.
 * See docs/architecture.md.
 */
#pragma once

#include <stdbool.h>

#include "connection.h"
#include "context.h"
#include "protocol.h"

typedef struct Client Client;
struct login_attempt;

/* A request handler returns 0 when its reply is queued, REQUEST_PENDING when the reply comes
 * later (the handler arranged for client_finish() then), or -errno on a daemon failure (the
 * request layer then answers SG_ERR_INTERNAL and closes). */
#define REQUEST_PENDING 1
typedef int (*request_handler_fn)(Client *cl, const struct sg_msg *msg);

/* commit_failed(cl, r) runs when the commit a reply waited for failed; the replies are
 * still held and the request layer decides (client_take_back_replies()). */
Client *client_new(Conn *conn, const Context *ctx, void (*commit_failed)(Client *cl, int r));
Client *client_free(Client *cl); /* NULL-safe; wipes the decoded request */

Conn *client_conn(const Client *cl);
const struct conn_peer *client_peer(const Client *cl);
const Context *client_ctx(const Client *cl);
struct sg_msg *client_msg(Client *cl); /* the buffer the current request is decoded into */
/* After each decode into client_msg(): notes how much of the buffer it used, for the wipe. */
void client_msg_decoded(Client *cl);
/* What that decode returned (0 or a negative SG_PROTO_* code) and whether the request will
 * only be refused, kept from when the request was read until it is handled (dispatch.c). */
void client_set_decoded(Client *cl, int r, bool refusal_only);
int client_decoded(const Client *cl);
bool client_refusal_only(const Client *cl);
/* The reply held now lets a login hash once committed: its commit is urgent (txn.h). */
void client_mark_urgent(Client *cl);
struct login_attempt *client_login(const Client *cl);
void client_set_login(Client *cl, struct login_attempt *a);

/* Queues a reply (held until client_finish()). */
int client_send(Client *cl, struct sg_writer *w);
int client_send_error(Client *cl, enum sg_err err, const char *detail);
/* OK with a decision and the delay the module waits before it answers the user. */
int client_send_decision(Client *cl, uint64_t decision, uint32_t delay_ms);
/* The answer to the current request is complete: it goes out after the commit of the open
 * transaction (at once when none is open), and the next request may come. */
void client_finish(Client *cl);
/* From commit_failed: drops the held replies and answers SG_ERR_INTERNAL, then closes. */
void client_take_back_replies(Client *cl);
void client_close(Client *cl);
