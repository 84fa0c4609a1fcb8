/* SPDX-License-Identifier: MIT */
/*
 * The audit worker (see worker.h). Jobs go from the loop to the thread on the todo list and
 * come back on the done list, both under one mutex; the thread wakes the loop through an
 * eventfd. A job's inputs are written before it is queued and its results before it is
 * handed back, so the mutex orders every access; only the cancel flag is read while the
 * other side may write it, and it is atomic.
 *
 * Lifetime: a job is the worker's from submit until its last callback has returned or it is
 * dropped. Its owner (a Client) is only ever compared and passed back on the loop thread.
 * worker_cancel() marks the owner's jobs: a waiting one is skipped, the running one is
 * interrupted by SQLite's progress handler, a finished one is dropped when it comes back.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <sodium.h>

#include "store.h"
#include "worker.h"

#define ROWS_PER_SLICE 1000 /* rows handed to the owner per loop iteration */

enum job_kind { JOB_VERIFY, JOB_QUERY };

/* A copied row: the strings live in data, right after it. */
struct row_copy {
        struct sg_audit_row row;
        char data[];
};

typedef struct Job Job;
struct Job {
        Job *next;
        enum job_kind kind;
        atomic_bool cancelled;
        void *owner; /* loop thread only */

        /* verify */
        struct sg_audit_tail expect;
        struct sg_audit_epoch_key ek;
        worker_verify_done_fn verify_done;
        struct worker_verify_result verify;

        /* query: the filter with its strings copied, then the rows */
        struct sg_audit_filter filter;
        char *user, *event, *rhost;
        worker_row_fn row;
        worker_query_done_fn query_done;
        struct row_copy **rows;
        size_t n_rows, rows_alloc, next_row, bytes;
        int query_r;
};

struct Worker {
        pthread_t thread;
        bool started;
        pthread_mutex_t lock;
        pthread_cond_t wake;
        Job *todo, *done; /* under lock; FIFO (appended at the end) */
        Job *running;     /* under lock: taken off todo, not yet on done */
        atomic_bool stopping;

        /* The thread's alone once it runs. */
        sg_store_reader *reader;
        Job *current;

        /* Loop thread only. */
        int efd;
        sd_event_source *efd_source, *deliver_source;
        Job *deliver; /* query results being handed out, FIFO */
        unsigned jobs;
        bool verify_queued;
};

static void push(Job **list, Job *j) {
        j->next = NULL;
        while (*list)
                list = &(*list)->next;
        *list = j;
}

static Job *job_free(Worker *w, Job *j) {
        if (!j)
                return NULL;
        if (w) {
                w->jobs--;
                if (j->kind == JOB_VERIFY)
                        w->verify_queued = false;
        }
        for (size_t i = j->next_row; i < j->n_rows; i++)
                free(j->rows[i]);
        free(j->rows);
        free(j->user);
        free(j->event);
        free(j->rhost);
        sodium_memzero(&j->expect, sizeof j->expect);
        sodium_memzero(&j->ek, sizeof j->ek);
        free(j);
        return NULL;
}

/* ---- the thread ---- */

static bool stop_requested(void *userdata) {
        Worker *w = userdata;

        return atomic_load(&w->stopping) || (w->current && atomic_load(&w->current->cancelled));
}

static int copy_row(void *userdata, const struct sg_audit_row *r) {
        Job *j = userdata;
        const struct sg_audit_event *e = &r->ev;
        const char *texts[8] = { e->event, e->reason, e->user, e->service, e->rhost, e->tty, e->session_id, e->detail };
        size_t len[8], size = 0;
        struct row_copy *c;
        char *p;

        for (size_t i = 0; i < 8; i++) {
                len[i] = texts[i] ? strlen(texts[i]) + 1 : 0;
                size += len[i];
        }
        size += e->user_sealed ? e->user_sealed_len : 0;
        if (j->bytes + size + sizeof *c > WORKER_QUERY_BYTES_MAX)
                return -ENOBUFS;
        if (j->n_rows == j->rows_alloc) {
                size_t n = j->rows_alloc ? j->rows_alloc * 2 : 256;
                struct row_copy **rows = realloc(j->rows, n * sizeof *rows);

                if (!rows)
                        return -ENOMEM;
                j->rows = rows;
                j->rows_alloc = n;
        }
        c = malloc(sizeof *c + size);
        if (!c)
                return -ENOMEM;
        c->row = *r;
        p = c->data;
        {
                const char **dst[8] = { &c->row.ev.event, &c->row.ev.reason, &c->row.ev.user, &c->row.ev.service,
                                        &c->row.ev.rhost, &c->row.ev.tty, &c->row.ev.session_id, &c->row.ev.detail };

                for (size_t i = 0; i < 8; i++) {
                        if (!texts[i])
                                continue;
                        memcpy(p, texts[i], len[i]);
                        *dst[i] = p;
                        p += len[i];
                }
        }
        if (e->user_sealed) {
                memcpy(p, e->user_sealed, e->user_sealed_len);
                c->row.ev.user_sealed = (const uint8_t *) p;
        }
        j->rows[j->n_rows++] = c;
        j->bytes += size + sizeof *c;
        return 0;
}

static void run_job(Worker *w, Job *j) {
        if (atomic_load(&j->cancelled))
                return;
        w->current = j;
        if (j->kind == JOB_VERIFY) {
                if (j->ek.set)
                        (void) sg_store_reader_set_epoch_key(w->reader, j->ek.epoch, j->ek.key, true);
                j->verify.r = sg_store_reader_audit_verify(w->reader, &j->expect, &j->verify.bad_id, &j->verify.rows,
                                                           j->verify.detail, sizeof j->verify.detail);
                if (j->verify.r >= 0)
                        (void) sg_store_reader_audit_note(w->reader, j->verify.note, sizeof j->verify.note);
                sg_store_reader_forget_epoch_key(w->reader);
                sodium_memzero(&j->ek, sizeof j->ek);
        } else
                j->query_r = sg_store_reader_audit_query(w->reader, &j->filter, copy_row, j);
        w->current = NULL;
}

static void *worker_main(void *userdata) {
        Worker *w = userdata;
        const uint64_t one = 1;

        pthread_mutex_lock(&w->lock);
        for (;;) {
                Job *j;

                while (!atomic_load(&w->stopping) && !w->todo)
                        pthread_cond_wait(&w->wake, &w->lock);
                if (atomic_load(&w->stopping))
                        break;
                j = w->todo;
                w->todo = j->next;
                w->running = j;
                pthread_mutex_unlock(&w->lock);

                run_job(w, j);

                pthread_mutex_lock(&w->lock);
                w->running = NULL;
                push(&w->done, j);
                /* An eventfd counter cannot overflow from this; EAGAIN would mean it is
                 * already readable anyway. */
                (void) !write(w->efd, &one, sizeof one);
        }
        pthread_mutex_unlock(&w->lock);
        return NULL;
}

/* ---- back on the loop ---- */

static void deliver_arm(Worker *w) {
        if (w->deliver)
                (void) sd_event_source_set_enabled(w->deliver_source, SD_EVENT_ONESHOT);
}

/* Hands out one slice of the first query result, or its end. */
static int on_deliver(sd_event_source *s, void *userdata) {
        Worker *w = userdata;
        Job *j = w->deliver;
        size_t end;
        int r = 0;

        (void) s;
        if (!j)
                return 0;
        end = j->next_row + ROWS_PER_SLICE < j->n_rows ? j->next_row + ROWS_PER_SLICE : j->n_rows;
        while (j->next_row < end && r >= 0) {
                struct row_copy *c = j->rows[j->next_row++];

                r = j->row(j->owner, &c->row);
                free(c);
        }
        if (r < 0 || j->next_row == j->n_rows) {
                w->deliver = j->next;
                j->query_done(j->owner, r < 0 ? r : j->query_r);
                job_free(w, j);
        }
        deliver_arm(w);
        return 0;
}

static int on_done(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Worker *w = userdata;
        uint64_t n;
        Job *list;

        (void) s;
        (void) revents;
        (void) !read(fd, &n, sizeof n);
        pthread_mutex_lock(&w->lock);
        list = w->done;
        w->done = NULL;
        pthread_mutex_unlock(&w->lock);

        while (list) {
                Job *j = list;

                list = j->next;
                if (atomic_load(&j->cancelled))
                        job_free(w, j);
                else if (j->kind == JOB_VERIFY) {
                        struct worker_verify_result res = j->verify;
                        worker_verify_done_fn done = j->verify_done;
                        void *owner = j->owner;

                        /* The slot is free before the owner hears: its answer may bring the
                         * next verification. */
                        job_free(w, j);
                        done(owner, &res);
                        sodium_memzero(&res, sizeof res);
                } else {
                        if (j->query_r < 0) {
                                /* Nothing partial goes out: only the error. */
                                for (size_t i = 0; i < j->n_rows; i++)
                                        free(j->rows[i]);
                                j->next_row = j->n_rows;
                        }
                        push(&w->deliver, j);
                }
        }
        deliver_arm(w);
        return 0;
}

/* ---- the interface ---- */

int worker_new(sd_event *event, const char *state_dir, const uint8_t *audit_key, Worker **ret, char *err,
               size_t errsize) {
        sigset_t all, old;
        Worker *w;
        int r;

        w = calloc(1, sizeof *w);
        if (!w)
                return -ENOMEM;
        w->efd = -1;
        pthread_mutex_init(&w->lock, NULL);
        pthread_cond_init(&w->wake, NULL);
        r = sg_store_reader_open(state_dir, audit_key, &w->reader, err, errsize);
        if (r < 0)
                goto fail;
        sg_store_reader_set_stop(w->reader, stop_requested, w);
        w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (w->efd < 0) {
                r = -errno;
                snprintf(err, errsize, "audit worker: eventfd: %s", strerror(-r));
                goto fail;
        }
        r = sd_event_add_io(event, &w->efd_source, w->efd, EPOLLIN, on_done, w);
        if (r >= 0)
                r = sd_event_add_defer(event, &w->deliver_source, on_deliver, w);
        if (r >= 0)
                r = sd_event_source_set_enabled(w->deliver_source, SD_EVENT_OFF);
        if (r < 0) {
                snprintf(err, errsize, "audit worker: cannot add event sources: %s", strerror(-r));
                goto fail;
        }
        /* Signals stay with the loop's signalfd: the thread blocks them all. */
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        r = -pthread_create(&w->thread, NULL, worker_main, w);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r < 0) {
                snprintf(err, errsize, "audit worker: cannot start its thread: %s", strerror(-r));
                goto fail;
        }
        w->started = true;
        *ret = w;
        return 0;
fail:
        worker_free(w);
        return r;
}

static Job *drop_all(Job *list) {
        while (list) {
                Job *j = list;

                list = j->next;
                job_free(NULL, j);
        }
        return NULL;
}

Worker *worker_free(Worker *w) {
        if (!w)
                return NULL;
        if (w->started) {
                pthread_mutex_lock(&w->lock);
                atomic_store(&w->stopping, true);
                pthread_cond_signal(&w->wake);
                pthread_mutex_unlock(&w->lock);
                (void) pthread_join(w->thread, NULL);
        }
        w->todo = drop_all(w->todo);
        w->done = drop_all(w->done);
        w->deliver = drop_all(w->deliver);
        w->reader = sg_store_reader_free(w->reader);
        w->efd_source = sd_event_source_disable_unref(w->efd_source);
        w->deliver_source = sd_event_source_disable_unref(w->deliver_source);
        if (w->efd >= 0)
                close(w->efd);
        pthread_cond_destroy(&w->wake);
        pthread_mutex_destroy(&w->lock);
        free(w);
        return NULL;
}

static void submit(Worker *w, Job *j) {
        w->jobs++;
        pthread_mutex_lock(&w->lock);
        push(&w->todo, j);
        pthread_cond_signal(&w->wake);
        pthread_mutex_unlock(&w->lock);
}

int worker_verify(Worker *w, const struct sg_audit_tail *expect, const struct sg_audit_epoch_key *ek, void *owner,
                  worker_verify_done_fn done) {
        Job *j;

        if (!w || !expect || !done)
                return -EINVAL;
        if (w->verify_queued || w->jobs >= WORKER_JOBS_MAX)
                return -EBUSY;
        j = calloc(1, sizeof *j);
        if (!j)
                return -ENOMEM;
        j->kind = JOB_VERIFY;
        j->owner = owner;
        j->expect = *expect;
        if (ek)
                j->ek = *ek;
        j->verify_done = done;
        w->verify_queued = true;
        submit(w, j);
        return 0;
}

static int dup_opt(const char *s, char **ret) {
        *ret = NULL;
        if (!s)
                return 0;
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

int worker_query(Worker *w, const struct sg_audit_filter *f, void *owner, worker_row_fn row,
                 worker_query_done_fn done) {
        Job *j;

        if (!w || !f || !row || !done)
                return -EINVAL;
        if (w->jobs >= WORKER_JOBS_MAX)
                return -EBUSY;
        j = calloc(1, sizeof *j);
        if (!j)
                return -ENOMEM;
        j->kind = JOB_QUERY;
        j->owner = owner;
        j->row = row;
        j->query_done = done;
        j->filter = *f;
        if (dup_opt(f->user, &j->user) < 0 || dup_opt(f->event, &j->event) < 0 || dup_opt(f->rhost, &j->rhost) < 0) {
                job_free(NULL, j);
                return -ENOMEM;
        }
        j->filter.user = j->user;
        j->filter.event = j->event;
        j->filter.rhost = j->rhost;
        submit(w, j);
        return 0;
}

void worker_cancel(Worker *w, const void *owner) {
        Job **p;

        if (!w || !owner)
                return;
        pthread_mutex_lock(&w->lock);
        for (Job *j = w->todo; j; j = j->next)
                if (j->owner == owner)
                        atomic_store(&j->cancelled, true);
        for (Job *j = w->done; j; j = j->next)
                if (j->owner == owner)
                        atomic_store(&j->cancelled, true);
        /* The running job: its progress handler sees the flag within a few thousand steps. */
        if (w->running && w->running->owner == owner)
                atomic_store(&w->running->cancelled, true);
        pthread_mutex_unlock(&w->lock);
        for (p = &w->deliver; *p;) {
                Job *j = *p;

                if (j->owner == owner) {
                        *p = j->next;
                        job_free(w, j);
                } else
                        p = &j->next;
        }
}

bool worker_verifying(const Worker *w) {
        return w && w->verify_queued;
}
