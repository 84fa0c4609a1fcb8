/* SPDX-License-Identifier: MIT */
/* The hash-permit FIFO: acquire, release, cancel, deadline. */
#include <errno.h>
#include <stdlib.h>

#include "io.h"
#include "permits.h"

struct Permits {
        uint32_t max, used;
        uint64_t wait_usec;
        struct permit_req *head, *tail;
        sd_event_source *timer; /* at the earliest deadline in the queue */
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

/* Deadlines usually grow along the FIFO, but not after a reload shortened the wait. */
static void arm_timer(Permits *p) {
        uint64_t first = UINT64_MAX;

        if (!p->timer)
                return;
        if (!p->head) {
                (void) sd_event_source_set_enabled(p->timer, SD_EVENT_OFF);
                return;
        }
        for (const struct permit_req *w = p->head; w; w = w->next)
                if (w->deadline_usec < first)
                        first = w->deadline_usec;
        (void) sd_event_source_set_time(p->timer, first);
        (void) sd_event_source_set_enabled(p->timer, SD_EVENT_ONESHOT);
}

/* The one unlink: takes req out of the FIFO wherever it stands. */
static void queue_remove(Permits *p, struct permit_req *req) {
        struct permit_req **q = &p->head, *prev = NULL;

        while (*q && *q != req) {
                prev = *q;
                q = &(*q)->next;
        }
        if (!*q)
                return;
        *q = req->next;
        if (p->tail == req)
                p->tail = prev;
        req->next = NULL;
        req->state = PERMIT_NONE;
        arm_timer(p);
}

/* Grants to waiters, oldest first, while permits are free. */
static void grant_waiters(Permits *p) {
        while (p->head && p->used < p->max) {
                struct permit_req *w = p->head;

                queue_remove(p, w);
                w->state = PERMIT_HELD;
                p->used++;
                w->granted(w);
        }
}

void permits_configure(Permits *p, uint32_t max, uint64_t wait_usec) {
        p->max = max > 0 ? max : 1;
        p->wait_usec = wait_usec;
        grant_waiters(p);
}

bool permits_acquire(Permits *p, struct permit_req *req, uint64_t now_usec) {
        if (req->state != PERMIT_NONE)
                return req->state == PERMIT_HELD;
        if (p->used < p->max && !p->head) {
                req->state = PERMIT_HELD;
                p->used++;
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
                queue_remove(p, req);
                break;
        case PERMIT_HELD:
                req->state = PERMIT_NONE;
                p->used--;
                grant_waiters(p);
                break;
        case PERMIT_NONE:
                break;
        }
}

void permits_expire(Permits *p, uint64_t now_usec) {
        struct permit_req *w = p->head;

        while (w) {
                struct permit_req *next = w->next;

                if (w->deadline_usec <= now_usec) {
                        queue_remove(p, w);
                        w->expired(w); /* may release others: start again from the head */
                        next = p->head;
                }
                w = next;
        }
        arm_timer(p);
}

uint32_t permits_in_use(const Permits *p) {
        return p->used;
}

uint32_t permits_max(const Permits *p) {
        return p->max;
}
