/* SPDX-License-Identifier: MIT */
/*
 * One-time login tokens, the admin requests. A token's text leaves the daemon once, in the
 * answer to TOKEN_ISSUE, and that answer is held until the commit that stores its hash (the
 * reply gate): an administrator is never shown a token the database does not know. The
 * audit rows and the journal name the id only.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "io.h"
#include "log.h"
#include "timefmt.h"
#include "token.h"
#include "tokenfmt.h"
#include "tokens.h"
#include "validate.h"

static struct sg_audit_event request_event(const Client *cl, const char *name, const char *user) {
        const struct conn_peer *p = client_peer(cl);

        return (struct sg_audit_event) {
                .time_usec = sg_now_real_usec(), .event = name, .user = user, .pid = p->pid, .uid = p->uid,
        };
}

int token_issue(Client *cl, const struct sg_msg *msg) {
        const Context *x = client_ctx(cl);
        const char *user = sg_msg_str(msg, SG_F_USER);
        uint64_t now = sg_now_real_usec(), expires, id = 0;
        char text[SG_TOKEN_TEXT_LEN + 1], idt[SG_TOKEN_ID_TEXT_LEN + 1], until[40], detail[128];
        struct sg_audit_event ev;
        struct sg_writer w;
        int r;

        if (!sg_valid_user(user))
                return client_send_error(cl, SG_ERR_INVALID, "not a valid user name");
        expires = sg_msg_has(msg, SG_F_UNTIL) ? sg_msg_u64(msg, SG_F_UNTIL, 0) : now + SG_TOKEN_TTL_DEFAULT_USEC;
        if (expires <= now)
                return client_send_error(cl, SG_ERR_INVALID, "the token would expire before it is issued");
        if (expires - now > SG_TOKEN_TTL_MAX_USEC)
                return client_send_error(cl, SG_ERR_INVALID, "a token may live at most 30 days");
        r = txn_begin(x->txn);
        if (r >= 0)
                r = tokens_prune(x->store, now); /* room for the new one before counting */
        if (r >= 0)
                r = tokens_issue(x->store, x->token_key, user, now, expires, (uint32_t) client_peer(cl)->uid, &id,
                                 text, sizeof text);
        if (r == -E2BIG)
                return client_send_error(cl, SG_ERR_INVALID, "too many tokens stored: revoke some, or wait "
                                         "until expired ones are pruned");
        if (r < 0)
                return r;
        sg_token_id_format(id, idt);
        sg_format_time(expires, until, sizeof until);
        ev = request_event(cl, "token_issued", user);
        snprintf(detail, sizeof detail, "token %s, expires %s", idt, until);
        ev.detail = detail;
        r = context_emit(x, &ev, false);
        if (r >= 0) {
                sg_writer_init(&w, SG_MSG_OK);
                sg_writer_u64(&w, SG_F_ID, id);
                sg_writer_str(&w, SG_F_USER, user);
                sg_writer_u64(&w, SG_F_UNTIL, expires);
                sg_writer_str(&w, SG_F_TOKEN, text);
                r = client_send(cl, &w);
                sodium_memzero(&w, sizeof w);
        }
        sodium_memzero(text, sizeof text);
        return r;
}

struct revoke_seen {
        char user[SG_FIELD_WIRE_MAX + 1];
};

static int revoke_row(void *userdata, const struct sg_token_row *row) {
        struct revoke_seen *s = userdata;

        snprintf(s->user, sizeof s->user, "%s", row->user);
        return 0;
}

int token_revoke(Client *cl, const struct sg_msg *msg) {
        const Context *x = client_ctx(cl);
        uint64_t id = sg_msg_u64(msg, SG_F_ID, 0);
        struct revoke_seen seen = { .user = "" };
        char idt[SG_TOKEN_ID_TEXT_LEN + 1], detail[64];
        struct sg_audit_event ev;
        struct sg_writer w;
        int r;

        if (id == 0 || id > SG_TOKEN_ID_MAX)
                return client_send_error(cl, SG_ERR_INVALID, "not a token id");
        r = txn_begin(x->txn);
        if (r >= 0)
                r = sg_store_token_get(x->store, id, revoke_row, &seen);
        if (r >= 0)
                r = sg_store_token_revoke(x->store, id, sg_now_real_usec());
        if (r == -ENOENT)
                return client_send_error(cl, SG_ERR_NOT_FOUND, "no unused token with that id");
        if (r < 0)
                return r;
        sg_token_id_format(id, idt);
        ev = request_event(cl, "token_revoked", seen.user);
        snprintf(detail, sizeof detail, "token %s", idt);
        ev.detail = detail;
        r = context_emit(x, &ev, false);
        if (r < 0)
                return r;
        sg_writer_init(&w, SG_MSG_OK);
        sg_writer_u64(&w, SG_F_ID, id);
        return client_send(cl, &w);
}

struct list {
        Client *cl;
        uint64_t now, n;
};

static const char *token_state(const struct sg_token_row *row, uint64_t now) {
        if (row->used_usec)
                return "used";
        if (row->revoked_usec)
                return "revoked";
        return row->expires_usec <= now ? "expired" : "active";
}

static int list_row(void *userdata, const struct sg_token_row *row) {
        struct list *l = userdata;
        struct sg_writer w;

        sg_writer_init(&w, SG_MSG_ROW);
        sg_writer_u64(&w, SG_F_ID, row->id);
        sg_writer_str(&w, SG_F_USER, row->user);
        sg_writer_u64(&w, SG_F_TIME, row->issued_usec);
        sg_writer_u64(&w, SG_F_UNTIL, row->expires_usec);
        sg_writer_str(&w, SG_F_STATE, token_state(row, l->now));
        sg_writer_u64(&w, SG_F_UID, row->issuer_uid);
        l->n++;
        return client_send(l->cl, &w);
}

int token_list(Client *cl, const struct sg_msg *msg) {
        struct list l = { .cl = cl, .now = sg_now_real_usec() };
        struct sg_writer w;
        int r;

        (void) msg;
        r = sg_store_token_foreach(client_ctx(cl)->store, list_row, &l);
        if (r < 0)
                return r;
        sg_writer_init(&w, SG_MSG_OK);
        sg_writer_u64(&w, SG_F_COUNT, l.n);
        return client_send(cl, &w);
}
