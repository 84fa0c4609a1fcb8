/* SPDX-License-Identifier: MIT */
/*
 * Hash permits: how many password hashes may be computed at once, host-wide. A request that
 * finds none free waits in a FIFO until one is released or its deadline passes. A permit is
 * a lease: held longer than the lease (a client stopped or hung while it should be hashing)
 * it is taken back. Limited requests (local logins charged to an unprivileged user) may hold
 * at most half of the permits (rounded up), so the rest stay for everyone else. The owner of
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
        struct permit_req *next; /* the FIFO while waiting, the holders while held */
        enum permit_state state;
        bool limited;            /* set by the owner before acquiring */
        uint64_t deadline_usec;  /* CLOCK_MONOTONIC: end of the wait, then end of the lease */
        void (*granted)(struct permit_req *p);
        void (*expired)(struct permit_req *p);       /* left the queue without a permit */
        void (*lease_expired)(struct permit_req *p); /* the permit was taken back */
};

/* event may be NULL (tests): then nothing expires but through permits_expire(). */
int permits_new(sd_event *event, Permits **ret);
Permits *permits_free(Permits *p); /* NULL-safe; no request may be waiting or holding */
/* max: permits in all; wait_usec: how long a request may wait; lease_usec: how long a
 * permit may be held. A larger max grants to waiters at once. */
void permits_configure(Permits *p, uint32_t max, uint64_t wait_usec, uint64_t lease_usec);

/* Returns true when granted now; false when queued (granted or expired is called later). A
 * permit is free for req when fewer than max are held (and, for a limited req, fewer than
 * the limited share by limited requests); req waits behind any queued request that could
 * take it. */
bool permits_acquire(Permits *p, struct permit_req *req, uint64_t now_usec);
/* Gives back a held permit (granting the next waiters) or leaves the queue. No callback for
 * req itself; a no-op for PERMIT_NONE. */
void permits_release(Permits *p, struct permit_req *req);
/* Expires every wait and lease that ends at or before now_usec (the timer calls it). */
void permits_expire(Permits *p, uint64_t now_usec);

uint32_t permits_in_use(const Permits *p);
uint32_t permits_max(const Permits *p);
/* How many limited requests may hold a permit at once. */
uint32_t permits_limited_max(const Permits *p);
