/* SPDX-License-Identifier: MIT */
#include <stddef.h>
#include <stdlib.h>

#include <sodium.h>

#include "client.h"

struct Client {
        Conn *conn;
        const Context *ctx;
        struct sg_msg *msg;
        uint32_t msg_used_max; /* the most of msg->data any request used: what to wipe */
        int decoded;           /* what decoding the current request into msg returned */
        bool refusal_only;     /* and whether the request will only be refused (dispatch.c) */
        bool urgent;           /* the held reply lets a login hash (client_mark_urgent) */
        struct login_attempt *login;
        struct txn_waiter commit; /* the held replies wait for this commit */
        void (*commit_failed)(Client *cl, int r);
};

static void on_committed(struct txn_waiter *w, int r) {
        Client *cl = (Client *) ((char *) w - offsetof(Client, commit));

        if (r < 0)
                cl->commit_failed(cl, r);
        else
                conn_release(cl->conn, true);
}

Client *client_new(Conn *conn, const Context *ctx, void (*commit_failed)(Client *cl, int r)) {
        Client *cl = calloc(1, sizeof *cl);

        if (!cl)
                return NULL;
        cl->msg = malloc(sizeof *cl->msg);
        if (!cl->msg) {
                free(cl);
                return NULL;
        }
        cl->conn = conn;
        cl->ctx = ctx;
        cl->commit.done = on_committed;
        cl->commit_failed = commit_failed;
        return cl;
}

Client *client_free(Client *cl) {
        if (!cl)
                return NULL;
        txn_cancel(&cl->commit);
        /* A user field may hold a password typed in the wrong place. Only the part of the
         * 66 KiB buffer a request ever used (client_msg_decoded) can hold one. */
        sodium_memzero(cl->msg, offsetof(struct sg_msg, data) +
                                        (cl->msg_used_max < sizeof cl->msg->data ? cl->msg_used_max
                                                                                 : sizeof cl->msg->data));
        free(cl->msg);
        free(cl);
        return NULL;
}

Conn *client_conn(const Client *cl) {
        return cl->conn;
}

const struct conn_peer *client_peer(const Client *cl) {
        return conn_peer(cl->conn);
}

const Context *client_ctx(const Client *cl) {
        return cl->ctx;
}

void client_mark_urgent(Client *cl) {
        cl->urgent = true;
}

void client_msg_decoded(Client *cl) {
        if (cl->msg->used > cl->msg_used_max)
                cl->msg_used_max = cl->msg->used;
}

void client_set_decoded(Client *cl, int r, bool refusal_only) {
        cl->decoded = r;
        cl->refusal_only = refusal_only;
}

int client_decoded(const Client *cl) {
        return cl->decoded;
}

bool client_refusal_only(const Client *cl) {
        return cl->refusal_only;
}

struct sg_msg *client_msg(Client *cl) {
        return cl->msg;
}

struct login_attempt *client_login(const Client *cl) {
        return cl->login;
}

void client_set_login(Client *cl, struct login_attempt *a) {
        cl->login = a;
}

int client_send(Client *cl, struct sg_writer *w) {
        conn_hold(cl->conn);
        return conn_send(cl->conn, w);
}

int client_send_error(Client *cl, enum sg_err err, const char *detail) {
        conn_hold(cl->conn);
        return conn_send_error(cl->conn, err, detail);
}

int client_send_decision(Client *cl, uint64_t decision, uint32_t delay_ms) {
        struct sg_writer w;

        sg_writer_init(&w, SG_MSG_OK);
        sg_writer_u64(&w, SG_F_DECISION, decision);
        sg_writer_u64(&w, SG_F_DELAY_MS, delay_ms);
        return client_send(cl, &w);
}

void client_finish(Client *cl) {
        /* Without an open transaction the replies go now (txn_wait calls back at once). */
        cl->commit.urgent = cl->urgent;
        cl->urgent = false;
        txn_wait(cl->ctx->txn, &cl->commit);
        conn_request_done(cl->conn);
}

void client_take_back_replies(Client *cl) {
        conn_release(cl->conn, false);
        (void) conn_send_error(cl->conn, SG_ERR_INTERNAL, "store error");
        conn_close_after_flush(cl->conn);
}

void client_close(Client *cl) {
        conn_close_after_flush(cl->conn);
}
