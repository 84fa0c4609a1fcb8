/* SPDX-License-Identifier: MIT */
/* The session table (sessions.h): a plain array, sessions per host are few. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sessions.h"

#define TICK_USEC 1000000ULL

struct Sessions {
        struct sg_session *v;
        size_t n, cap;
        sd_event_source *timer;
        void (*tick)(void *userdata);
        void *userdata;
        sd_bus *bus;
        bool bus_tried;
};

int sessions_new(Sessions **ret) {
        Sessions *s = calloc(1, sizeof *s);

        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

Sessions *sessions_free(Sessions *s) {
        if (!s)
                return NULL;
        for (size_t i = 0; i < s->n; i++)
                if (s->v[i].pidfd >= 0)
                        close(s->v[i].pidfd);
        free(s->v);
        s->timer = sd_event_source_disable_unref(s->timer);
        s->bus = sd_bus_flush_close_unref(s->bus);
        free(s);
        return NULL;
}

static void timer_update(Sessions *s) {
        if (s->timer)
                (void) sd_event_source_set_enabled(s->timer, s->n > 0 ? SD_EVENT_ON : SD_EVENT_OFF);
}

int sessions_add(Sessions *s, const struct sg_session *e) {
        if (sessions_find(s, e->id) >= 0)
                return -EEXIST;
        if (s->n == s->cap) {
                size_t cap = s->cap ? s->cap * 2 : 16;
                struct sg_session *v = reallocarray(s->v, cap, sizeof *v);

                if (!v)
                        return -ENOMEM;
                s->v = v;
                s->cap = cap;
        }
        s->v[s->n++] = *e;
        timer_update(s);
        return 0;
}

size_t sessions_count(const Sessions *s) {
        return s->n;
}

unsigned sessions_count_uid(const Sessions *s, uint32_t uid) {
        unsigned c = 0;

        for (size_t i = 0; i < s->n; i++)
                c += s->v[i].uid == uid;
        return c;
}

const struct sg_session *sessions_get(const Sessions *s, size_t i) {
        return i < s->n ? &s->v[i] : NULL;
}

int sessions_find(const Sessions *s, const char *id) {
        for (size_t i = 0; i < s->n; i++)
                if (strcmp(s->v[i].id, id) == 0)
                        return (int) i;
        return -ENOENT;
}

void sessions_remove(Sessions *s, size_t i) {
        if (i >= s->n)
                return;
        if (s->v[i].pidfd >= 0)
                close(s->v[i].pidfd);
        s->v[i] = s->v[--s->n];
        timer_update(s);
}

void sessions_set_ending(Sessions *s, size_t i, uint64_t now_mono_usec) {
        if (i < s->n && s->v[i].ending_usec == 0)
                s->v[i].ending_usec = now_mono_usec ? now_mono_usec : 1;
}

void sessions_set_killed(Sessions *s, size_t i) {
        if (i < s->n)
                s->v[i].killed = true;
}

bool sg_session_may_open(unsigned open_of_uid, uint32_t uid, uint32_t max, bool limit_root) {
        if (max == 0 || (uid == 0 && !limit_root))
                return true;
        return open_of_uid < max;
}

enum sg_session_expiry sg_session_expiry(uint64_t max_lifetime_usec, uint64_t idle_timeout_usec,
                                         uint64_t started_usec, uint64_t active_usec, uint64_t now_usec) {
        if (max_lifetime_usec && now_usec >= started_usec && now_usec - started_usec >= max_lifetime_usec)
                return SG_SESSION_LIFETIME;
        if (!active_usec) /* no terminal to tell: never idle */
                return SG_SESSION_LIVE;
        if (active_usec < started_usec)
                active_usec = started_usec;
        if (idle_timeout_usec && now_usec >= active_usec && now_usec - active_usec >= idle_timeout_usec)
                return SG_SESSION_IDLE;
        return SG_SESSION_LIVE;
}

static int on_tick(sd_event_source *src, uint64_t usec, void *userdata) {
        Sessions *s = userdata;

        (void) usec;
        s->tick(s->userdata);
        (void) sd_event_source_set_time_relative(src, TICK_USEC);
        if (s->n > 0)
                (void) sd_event_source_set_enabled(src, SD_EVENT_ON);
        return 0;
}

int sessions_start_timer(Sessions *s, sd_event *event, void (*tick)(void *userdata), void *userdata) {
        int r;

        s->tick = tick;
        s->userdata = userdata;
        r = sd_event_add_time_relative(event, &s->timer, CLOCK_MONOTONIC, TICK_USEC, 0, on_tick, s);
        if (r < 0)
                return r;
        timer_update(s);
        return 0;
}

sd_bus *sessions_bus(Sessions *s, sd_event *event) {
        if (!s->bus && !s->bus_tried) {
                s->bus_tried = true;
                if (sd_bus_open_system(&s->bus) < 0 || sd_bus_attach_event(s->bus, event, 0) < 0)
                        s->bus = sd_bus_flush_close_unref(s->bus);
        }
        return s->bus;
}
