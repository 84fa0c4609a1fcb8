/* SPDX-License-Identifier: MIT */
/*
 * The open login sessions, in memory: the table session.c answers from and the store keeps
 * the durable copy of. Each entry holds a pidfd on its leader (opened when the daemon learnt
 * the pid, so a signal can never reach a recycled pid) and whether it is being ended. The
 * limit and expiry decisions are pure (time passed in). The Sessions object also owns the
 * one-second timer that drives expiry and reaping (the callback is the upper layer's) and the
 * system bus connection used to ask logind to end a session. See docs/architecture.md.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "validate.h"

typedef struct Sessions Sessions;

struct sg_session {
        char id[SG_SESSION_ID_LEN + 1];
        char user[SG_USER_MAX + 1];
        char service[SG_SERVICE_MAX + 1];
        char tty[SG_TTY_MAX + 1];
        char rhost[SG_RHOST_MAX + 1];
        char logind_id[65];
        uint32_t uid;
        int32_t pid;
        uint64_t pid_start;    /* /proc/PID/stat starttime of the leader */
        uint64_t started_usec; /* UTC */
        int pidfd;             /* owned by the table; -1 none */
        uint64_t ending_usec;  /* CLOCK_MONOTONIC when it was told to end; 0 = not ending */
        bool killed;           /* SIGKILL sent */
};

enum sg_session_expiry {
        SG_SESSION_LIVE = 0,
        SG_SESSION_LIFETIME, /* older than max_lifetime */
        SG_SESSION_IDLE,     /* idle longer than idle_timeout */
};

int sessions_new(Sessions **ret);
Sessions *sessions_free(Sessions *s); /* NULL-safe; closes every pidfd and the bus */

/* Copies *e (taking its pidfd) into the table. -EEXIST for an id already there. */
int sessions_add(Sessions *s, const struct sg_session *e);
size_t sessions_count(const Sessions *s);
unsigned sessions_count_uid(const Sessions *s, uint32_t uid);
/* The i-th entry (0 <= i < count); removal moves the last entry into i, so walk backwards. */
const struct sg_session *sessions_get(const Sessions *s, size_t i);
/* Index of id, or -ENOENT. */
int sessions_find(const Sessions *s, const char *id);
/* Removes entry i, closing its pidfd. */
void sessions_remove(Sessions *s, size_t i);
void sessions_set_ending(Sessions *s, size_t i, uint64_t now_mono_usec);
void sessions_set_killed(Sessions *s, size_t i);

/* Whether one more session of uid fits under max (0 = unlimited); root is exempt unless
 * limit_root. Pure. */
bool sg_session_may_open(unsigned open_of_uid, uint32_t uid, uint32_t max, bool limit_root);
/* Whether a session started at started_usec, last active at active_usec (0: unknown, as for a
 * session without a terminal, which is then never idle), is over at now_usec (all UTC
 * microseconds); a limit of 0 is no limit. Pure. */
enum sg_session_expiry sg_session_expiry(uint64_t max_lifetime_usec, uint64_t idle_timeout_usec,
                                         uint64_t started_usec, uint64_t active_usec, uint64_t now_usec);

/* Calls tick(userdata) every second while the table is not empty. */
int sessions_start_timer(Sessions *s, sd_event *event, void (*tick)(void *userdata), void *userdata);
/* The system bus, attached to event; NULL when there is none (tried once). */
sd_bus *sessions_bus(Sessions *s, sd_event *event);
