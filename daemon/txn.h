/* SPDX-License-Identifier: MIT */
/*
 * Group commit. Store writes between two commits share one SQLite transaction; the commit
 * runs when the event loop has nothing more urgent to do, or at once after a request that
 * brought the transaction to TXN_MAX_OPS writes. Replies that depend on those writes wait
 * (a txn_waiter each) and learn the commit's result. A commit never runs inside a request
 * handler: txn_after_request() is the only place the op cap is acted on.
 * See docs/architecture.md ("group commit").
 */
#pragma once

#include <stdbool.h>

#include <systemd/sd-event.h>

#include "store.h"

#define TXN_MAX_OPS 512 /* commit at least this often under load */
/* The idle-priority commit waits until the loop has nothing else to do. Under a flood of
 * requests that need no hash (a locked source) that can be long, and a legitimate login
 * would wait behind it. When only a few logins wait to hash (many would share the commit
 * anyway), one waiting this long makes the commit run after the next request. */
#define TXN_URGENT_FEW 2
#define TXN_URGENT_USEC 200

typedef struct Txn Txn;

struct txn_waiter {
        struct txn_waiter *prev, *next;
        struct txn_waiter **list; /* the list it is on, NULL when not waiting */
        /* r: 0, or the commit's -errno (the transaction was rolled back). */
        void (*done)(struct txn_waiter *w, int r);
        /* Set by the caller before txn_wait(): a login is about to hash once this commit is
         * done (an ALLOW). A few such waiters are not left behind a busy loop for long. */
        bool urgent;
};

/* committed(userdata, r) runs after each commit, once the waiters have been told. */
int txn_new(sd_event *event, sg_store *store, void (*committed)(void *userdata, int r), void *userdata,
            Txn **ret);
/* Commits what is open (the waiters learn the result) and frees. NULL-safe. */
Txn *txn_free(Txn *t);

/* Call before each store write: opens the transaction if none is, counts the write. */
int txn_begin(Txn *t);
bool txn_is_open(const Txn *t);
/* w->done runs after the commit of the open transaction (w must not be waiting already on
 * another commit; it is moved if it is). Without an open transaction, w->done runs now. */
void txn_wait(Txn *t, struct txn_waiter *w);
/* Takes w off its list (no call). Safe when w waits for nothing. */
void txn_cancel(struct txn_waiter *w);
/* Commits now. Returns the commit's result (0 when nothing was open). */
int txn_commit(Txn *t);
/* After a request: commits now when the open transaction holds TXN_MAX_OPS writes, or when
 * at most TXN_URGENT_FEW urgent waiters wait and the first has waited TXN_URGENT_USEC. */
void txn_after_request(Txn *t);
/* An urgent waiter (txn_waiter.urgent) waits for the open transaction. */
bool txn_urgent_waiting(const Txn *t);
