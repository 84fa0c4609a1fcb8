/* SPDX-License-Identifier: MIT */
/* Group commit: one SQLite transaction for the writes between two idle moments of the loop. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include "io.h"
#include "log.h"
#include "txn.h"

#define SLOW_COMMIT_USEC (500 * 1000)

struct Txn {
        sg_store *store;
        sd_event_source *idle;
        bool open;
        unsigned ops;
        struct txn_waiter *waiting;   /* replies waiting for the open transaction */
        struct txn_waiter *releasing; /* being told the result of a commit */
        unsigned n_urgent;            /* urgent waiters since the last commit (txn.h) */
        uint64_t first_urgent_usec;
        void (*committed)(void *userdata, int r);
        void *userdata;
};

static void list_push(struct txn_waiter **list, struct txn_waiter *w) {
        w->prev = NULL;
        w->next = *list;
        if (*list)
                (*list)->prev = w;
        *list = w;
        w->list = list;
}

void txn_cancel(struct txn_waiter *w) {
        if (!w->list)
                return;
        if (w->prev)
                w->prev->next = w->next;
        else
                *w->list = w->next;
        if (w->next)
                w->next->prev = w->prev;
        w->prev = w->next = NULL;
        w->list = NULL;
}

static int on_idle(sd_event_source *s, void *userdata) {
        (void) s;
        (void) txn_commit(userdata);
        return 0;
}

int txn_new(sd_event *event, sg_store *store, void (*committed)(void *userdata, int r), void *userdata,
            Txn **ret) {
        Txn *t;
        int r;

        t = calloc(1, sizeof *t);
        if (!t)
                return -ENOMEM;
        t->store = store;
        t->committed = committed;
        t->userdata = userdata;
        if (event) {
                r = sd_event_add_defer(event, &t->idle, on_idle, t);
                if (r < 0) {
                        free(t);
                        return r;
                }
                /* The commit runs when nothing more urgent is pending: that is the group commit. */
                (void) sd_event_source_set_priority(t->idle, SD_EVENT_PRIORITY_IDLE);
                (void) sd_event_source_set_enabled(t->idle, SD_EVENT_OFF);
        }
        *ret = t;
        return 0;
}

Txn *txn_free(Txn *t) {
        if (!t)
                return NULL;
        (void) txn_commit(t);
        t->idle = sd_event_source_disable_unref(t->idle);
        free(t);
        return NULL;
}

int txn_begin(Txn *t) {
        int r;

        if (t->open) {
                t->ops++;
                return 0;
        }
        r = sg_store_begin(t->store);
        if (r < 0)
                return r;
        t->open = true;
        t->ops = 1;
        if (t->idle)
                (void) sd_event_source_set_enabled(t->idle, SD_EVENT_ONESHOT);
        return 0;
}

bool txn_is_open(const Txn *t) {
        return t->open;
}

void txn_wait(Txn *t, struct txn_waiter *w) {
        txn_cancel(w);
        if (!t->open) {
                w->done(w, 0);
                return;
        }
        list_push(&t->waiting, w);
        /* Counted until the commit, even if taken back (a connection ended): at worst a
         * commit runs a little early or late. */
        if (w->urgent && t->n_urgent++ == 0)
                t->first_urgent_usec = sg_now_mono_usec();
}

int txn_commit(Txn *t) {
        uint64_t t0, took;
        int r;

        if (!t->open)
                return 0;
        t0 = sg_now_mono_usec();
        r = sg_store_commit(t->store);
        t->open = false;
        t->ops = 0;
        t->n_urgent = 0;
        if (t->idle)
                (void) sd_event_source_set_enabled(t->idle, SD_EVENT_OFF);
        if (r < 0) {
                log_error_errno(r, "committing to the store failed; rolling back");
                (void) sg_store_rollback(t->store);
        }
        took = sg_now_mono_usec() - t0;
        /* Every held reply and the whole event loop waited for this: say so when the disk is slow. */
        if (took >= SLOW_COMMIT_USEC)
                log_warning("committing to the store took %" PRIu64 " ms (slow disk?); logins waited for it",
                            took / 1000);

        /* A waiter told now may start the next transaction and wait for it: it goes on the
         * fresh list, and this loop only drains the old one. */
        while (t->waiting) {
                struct txn_waiter *w = t->waiting;

                txn_cancel(w);
                list_push(&t->releasing, w);
        }
        while (t->releasing) {
                struct txn_waiter *w = t->releasing;

                txn_cancel(w);
                w->done(w, r);
        }
        if (t->committed)
                t->committed(t->userdata, r);
        return r;
}

bool txn_urgent_waiting(const Txn *t) {
        return t->open && t->n_urgent > 0;
}

void txn_after_request(Txn *t) {
        if (!t->open)
                return;
        if (t->ops >= TXN_MAX_OPS ||
            (t->n_urgent > 0 && t->n_urgent <= TXN_URGENT_FEW &&
             sg_now_mono_usec() - t->first_urgent_usec >= TXN_URGENT_USEC))
                (void) txn_commit(t);
}
