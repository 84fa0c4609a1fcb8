/* SPDX-License-Identifier: MIT */
/*
 * What request handlers work with: the daemon's parts, created and owned by manager.c and
 * lent to the layers below it. A handler reads these pointers and calls each part's own
 * functions; it never changes the struct. See docs/architecture.md.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "charges.h"
#include "config.h"
#include "connection.h"
#include "peers.h"
#include "permits.h"
#include "policy.h"
#include "sessions.h"
#include "store.h"
#include "txn.h"

typedef struct Context {
        const struct sg_config *config; /* the config in force (a reload changes its contents) */
        sg_store *store;
        sg_policy *policy;
        sg_peers *peers;
        Txn *txn;
        Permits *permits;
        Charges *charges; /* local logins in progress per invoking uid */
        ConnSet *conns;
        Sessions *sessions; /* the open login sessions (session.c handles them) */
        sd_event *event;    /* the loop, for the system bus session.c asks logind on */
        struct Worker *worker;    /* the audit worker (worker.h); NULL: audit reads run inline */
        const uint8_t *audit_key; /* SG_AUDIT_KEY_BYTES, in sodium_malloc'ed memory */
        const uint8_t *seal_pk;   /* the admin's public key for unknown names; NULL = not sealing */
        const uint8_t *token_key; /* SG_TOKEN_KEY_BYTES (tokens.h), sodium_malloc'ed, read-only */
        uint64_t start_mono_usec;
} Context;

/* Records ev in the open transaction (opening one) and tells journald. user_unknown: ev->user
 * matched no account, so it is sealed when sealing is on. */
int context_emit(const Context *x, const struct sg_audit_event *ev, bool user_unknown);

/* Writes the summaries of held-back events (peers.h): one row each, "N similar events from
 * uid U (or from SOURCE) suppressed". A row the store refuses is logged with its count. */
void context_emit_summaries(const Context *x, const struct sg_peer_summary *s, size_t n);
