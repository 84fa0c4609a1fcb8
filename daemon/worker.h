/* SPDX-License-Identifier: MIT */
/*
 * The audit worker: one thread with its own read-only connection to the database
 * (sg_store_reader), so that long reads (audit verify, large audit queries) never stall the
 * event loop and the logins on it. See docs/architecture.md ("The audit worker").
 *
 * Everything here is called on the loop thread, and every callback runs there. The thread
 * sees only its job (inputs copied in, results copied out) and its connection: never a
 * Client, a Conn or the writer's store. A job belongs to an owner (the handler's client);
 * worker_cancel(owner) before the owner goes guarantees none of its callbacks runs later.
 * One job runs at a time, the others wait in order.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "audit.h"

typedef struct Worker Worker;

#define WORKER_JOBS_MAX 8                /* waiting or running; more get -EBUSY */
#define WORKER_DETAIL_MAX 1024
#define WORKER_QUERY_BYTES_MAX (48u << 20) /* a query result larger than this: -ENOBUFS */

struct worker_verify_result {
        int r;            /* 0 intact, 1 broken, -errno as sg_store_audit_verify() */
        uint64_t bad_id;  /* when broken */
        uint64_t rows;    /* rows in the verified snapshot */
        char detail[WORKER_DETAIL_MAX];
        char note[WORKER_DETAIL_MAX]; /* what could not be checked ("" when nothing) */
};

/* verify_done runs once, with the result; row gets each row of a query, oldest first, a
 * slice per loop iteration, then query_done its end (0, -ENOBUFS: the result is too large,
 * or -errno). A callback returning < 0 ends the job: no further call is made for it. */
typedef void (*worker_verify_done_fn)(void *owner, const struct worker_verify_result *res);
typedef int (*worker_row_fn)(void *owner, const struct sg_audit_row *row);
typedef void (*worker_query_done_fn)(void *owner, int r);

/* Opens the read-only connection (errors as sg_store_reader_open(), message in err) and
 * starts the thread. The key is absorbed at once; the caller's copy is not kept. */
int worker_new(sd_event *event, const char *state_dir, const uint8_t *audit_key, Worker **ret, char *err,
               size_t errsize);
/* Stops the job running (SQLite's progress handler interrupts it), joins the thread, drops
 * every job without calling back. NULL-safe; returns NULL. */
Worker *worker_free(Worker *w);

/* Verifies the chain up to expect (sg_store_audit_committed_tail()). -EBUSY: a verification
 * is already waiting or running (one at a time), or WORKER_JOBS_MAX jobs are. */
/* ek (may be NULL) is the current forward-secure epoch key, copied into the job and wiped
 * with it. */
int worker_verify(Worker *w, const struct sg_audit_tail *expect, const struct sg_audit_epoch_key *ek, void *owner,
                  worker_verify_done_fn done);
/* Runs an audit query; the filter's strings are copied. -EBUSY as above. */
int worker_query(Worker *w, const struct sg_audit_filter *f, void *owner, worker_row_fn row,
                 worker_query_done_fn done);
/* The owner goes away: its jobs are stopped or dropped, and no callback runs for them. */
void worker_cancel(Worker *w, const void *owner);
bool worker_verifying(const Worker *w);
