/* SPDX-License-Identifier: MIT */
/*
 * Hash permits: how many password hashes may be computed at once, host-wide. A request that
 * finds none free waits in a FIFO until one is released or its deadline passes. The owner of
 * a permit_req embeds it and is called back through it. See docs/architecture.md.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-event.h>

typedef struct Permits Permits;

enum permit_state {
        PERMIT_NONE = 0,
        PERMIT_WAITING,
        PERMIT_HELD,
};

struct permit_req {
        struct permit_req *next; /* FIFO */
        enum permit_state state;
        uint64_t deadline_usec;  /* CLOCK_MONOTONIC, while waiting */
        void (*granted)(struct permit_req *p);
        void (*expired)(struct permit_req *p); /* left the queue without a permit */
};

/* event may be NULL (tests): then nothing expires but through permits_expire(). */
int permits_new(sd_event *event, Permits **ret);
Permits *permits_free(Permits *p); /* NULL-safe; the queue must be empty */
/* max: permits in all; wait_usec: how long a request may wait. A larger max grants at once. */
void permits_configure(Permits *p, uint32_t max, uint64_t wait_usec);

/* Returns true when granted now; false when queued (granted or expired is called later). */
bool permits_acquire(Permits *p, struct permit_req *req, uint64_t now_usec);
/* Gives back a held permit (granting the next waiters) or leaves the queue. No callback for
 * req itself; a no-op for PERMIT_NONE. */
void permits_release(Permits *p, struct permit_req *req);
/* Expires every waiter whose deadline is <= now_usec (the timer calls it). */
void permits_expire(Permits *p, uint64_t now_usec);

uint32_t permits_in_use(const Permits *p);
uint32_t permits_max(const Permits *p);
