/* SPDX-License-Identifier: MIT */
/* The hash-permit FIFO: acquire, release, cancel, deadlines and leases. */
#include <errno.h>
#include <stdlib.h>

#include "io.h"
#include "permits.h"

struct Permits {
        uint32_t max, used, used_limited;
        uint64_t wait_usec, lease_usec;
        struct permit_req *head, *tail; /* waiting, oldest first */
        struct permit_req *holders;
        sd_event_source *timer;         /* at the earliest deadline, waiting or held */
};

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        (void) s;
        (void) usec;
        permits_expire(userdata, sg_now_mono_usec());
        return 0;
}

int permits_new(sd_event *event, Permits **ret) {
        Permits *p;
        int r;

        p = calloc(1, sizeof *p);
        if (!p)
                return -ENOMEM;
        p->max = 1;
        if (event) {
                r = sd_event_add_time(event, &p->timer, CLOCK_MONOTONIC, 0, 0, on_timer, p);
                if (r < 0) {
                        free(p);
                        return r;
                }
                (void) sd_event_source_set_enabled(p->timer, SD_EVENT_OFF);
        }
        *ret = p;
        return 0;
}

Permits *permits_free(Permits *p) {
        if (!p)
                return NULL;
        p->timer = sd_event_source_disable_unref(p->timer);
        free(p);
        return NULL;
}

uint32_t permits_limited_max(const Permits *p) {
        return p->max - p->max / 2;
}

/* Deadlines usually grow along the FIFO, but not after a reload shortened the wait, and
 * leases end in any order. */
static void arm_timer(Permits *p) {
        uint64_t first = UINT64_MAX;

        if (!p->timer)
                return;
        for (const struct permit_req *w = p->head; w; w = w->next)
                if (w->deadline_usec < first)
                        first = w->deadline_usec;
        for (const struct permit_req *h = p->holders; h; h = h->next)
                if (h->deadline_usec < first)
                        first = h->deadline_usec;
        if (first == UINT64_MAX) {
                (void) sd_event_source_set_enabled(p->timer, SD_EVENT_OFF);
                return;
        }
        (void) sd_event_source_set_time(p->timer, first);
        (void) sd_event_source_set_enabled(p->timer, SD_EVENT_ONESHOT);
}

/* The one unlink: takes req out of the list it is on, wherever it stands. */
static void list_remove(struct permit_req **head, struct permit_req **tail, struct permit_req *req) {
        struct permit_req **q = head, *prev = NULL;

        while (*q && *q != req) {
                prev = *q;
                q = &(*q)->next;
        }
        if (!*q)
                return;
        *q = req->next;
        if (tail && *tail == req)
                *tail = prev;
        req->next = NULL;
}

static bool can_take(const Permits *p, const struct permit_req *req) {
        return p->used < p->max && (!req->limited || p->used_limited < permits_limited_max(p));
}

static void hold(Permits *p, struct permit_req *req, uint64_t now_usec) {
        req->state = PERMIT_HELD;
        req->deadline_usec = now_usec + p->lease_usec;
        req->next = p->holders;
        p->holders = req;
        p->used++;
        p->used_limited += req->limited;
}

static void unhold(Permits *p, struct permit_req *req) {
        list_remove(&p->holders, NULL, req);
        req->state = PERMIT_NONE;
        p->used--;
        p->used_limited -= req->limited;
}

/* The oldest waiter a free permit can go to, or NULL. */
static struct permit_req *next_eligible(const Permits *p) {
        for (struct permit_req *w = p->head; w; w = w->next)
                if (can_take(p, w))
                        return w;
        return NULL;
}

/* Grants to waiters, oldest eligible first, while permits are free. */
static void grant_waiters(Permits *p, uint64_t now_usec) {
        struct permit_req *w;

        while ((w = next_eligible(p))) {
                list_remove(&p->head, &p->tail, w);
                hold(p, w, now_usec);
                w->granted(w);
        }
        arm_timer(p);
}

void permits_configure(Permits *p, uint32_t max, uint64_t wait_usec, uint64_t lease_usec) {
        p->max = max > 0 ? max : 1;
        p->wait_usec = wait_usec;
        p->lease_usec = lease_usec;
        grant_waiters(p, sg_now_mono_usec());
}

bool permits_acquire(Permits *p, struct permit_req *req, uint64_t now_usec) {
        if (req->state != PERMIT_NONE)
                return req->state == PERMIT_HELD;
        if (can_take(p, req) && !next_eligible(p)) {
                hold(p, req, now_usec);
                arm_timer(p);
                return true;
        }
        req->state = PERMIT_WAITING;
        req->deadline_usec = now_usec + p->wait_usec;
        req->next = NULL;
        if (p->tail)
                p->tail->next = req;
        else
                p->head = req;
        p->tail = req;
        arm_timer(p);
        return false;
}

void permits_release(Permits *p, struct permit_req *req) {
        switch (req->state) {
        case PERMIT_WAITING:
                list_remove(&p->head, &p->tail, req);
                req->state = PERMIT_NONE;
                arm_timer(p);
                break;
        case PERMIT_HELD:
                unhold(p, req);
                grant_waiters(p, sg_now_mono_usec());
                break;
        case PERMIT_NONE:
                break;
        }
}

/* The first request on list whose deadline has passed, or NULL. */
static struct permit_req *first_due(struct permit_req *list, uint64_t now_usec) {
        for (struct permit_req *r = list; r; r = r->next)
                if (r->deadline_usec <= now_usec)
                        return r;
        return NULL;
}

void permits_expire(Permits *p, uint64_t now_usec) {
        struct permit_req *r;

        /* Each callback may release other requests: look again from the start each time. A
         * permit taken back goes to a waiter before the waits that are over end. */
        while ((r = first_due(p->holders, now_usec))) {
                unhold(p, r);
                r->lease_expired(r);
        }
        grant_waiters(p, now_usec);
        while ((r = first_due(p->head, now_usec))) {
                list_remove(&p->head, &p->tail, r);
                r->state = PERMIT_NONE;
                r->expired(r);
        }
        grant_waiters(p, now_usec);
}

uint32_t permits_in_use(const Permits *p) {
        return p->used;
}

uint32_t permits_max(const Permits *p) {
        return p->max;
}
