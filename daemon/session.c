/* SPDX-License-Identifier: MIT */
/*
 * Login sessions (docs/state.md#sessions). The module registers each session with its leader
 * (the process that called pam_open_session); the daemon opens a pidfd on the leader at once,
 * while that process is blocked waiting for our answer and so cannot have been replaced, and
 * every later signal goes through that pidfd: a recycled pid is never signalled. An ending
 * session is asked to end through logind when it has a logind id and a system bus answers,
 * otherwise its leader gets SIGHUP and, after [session] kill_grace, SIGKILL.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <sodium.h>
#include <systemd/sd-login.h>

#include "io.h"
#include "log.h"
#include "session.h"
#include "validate.h"

#define USEC_PER_SEC UINT64_C(1000000)

static int pidfd_open_(pid_t pid) {
        return (int) syscall(SYS_pidfd_open, pid, 0);
}

static int pidfd_signal(int pidfd, int sig) {
        return syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) < 0 ? -errno : 0;
}

/* The pidfd's process has exited. */
static bool pidfd_dead(int pidfd) {
        struct pollfd p = { .fd = pidfd, .events = POLLIN };

        return pidfd < 0 || (poll(&p, 1, 0) > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR)));
}

/* starttime (field 22) of /proc/PID/stat: the comm field may hold anything, so parse after
 * its last ')'. */
static int proc_start_time(pid_t pid, uint64_t *ret) {
        char path[64], buf[1024], *p;
        unsigned long long start;
        ssize_t n;
        int fd;

        snprintf(path, sizeof path, "/proc/%d/stat", (int) pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n <= 0)
                return -EIO;
        buf[n] = '\0';
        p = strrchr(buf, ')');
        if (!p)
                return -EIO;
        /* after ") ": state(3) ppid pgrp session tty_nr tpgid flags minflt cminflt majflt
         * cmajflt utime stime cutime cstime priority nice num_threads itrealvalue starttime(22) */
        if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
                   &start) != 1)
                return -EIO;
        *ret = start;
        return 0;
}

static void boot_id(char out[40]) {
        int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
        ssize_t n = fd >= 0 ? read(fd, out, 39) : -1;

        if (fd >= 0)
                close(fd);
        if (n <= 0)
                n = 0;
        out[n] = '\0';
        out[strcspn(out, "\n")] = '\0';
}

/* Opens a pidfd on pid and reads its start time; the start time is read after the pidfd is
 * open, so a pid reused in between shows as another start time. */
static int leader_open(pid_t pid, uint64_t *ret_start) {
        int fd = pidfd_open_(pid), r;

        if (fd < 0)
                return -errno;
        r = proc_start_time(pid, ret_start);
        if (r < 0) {
                close(fd);
                return r;
        }
        return fd;
}

/* When the session's tty was last used (its atime), or 0 when it has no tty device. */
static uint64_t tty_active_usec(const char *tty) {
        char path[SG_TTY_MAX + 8];
        struct stat st;

        if (!*tty || strstr(tty, ".."))
                return 0;
        if (strncmp(tty, "/dev/", 5) == 0)
                snprintf(path, sizeof path, "%s", tty);
        else if (strncmp(tty, "pts/", 4) == 0 || strncmp(tty, "tty", 3) == 0)
                snprintf(path, sizeof path, "/dev/%s", tty);
        else
                return 0;
        if (stat(path, &st) < 0 || !S_ISCHR(st.st_mode))
                return 0;
        return (uint64_t) st.st_atim.tv_sec * USEC_PER_SEC + (uint64_t) st.st_atim.tv_nsec / 1000;
}

static void event_of(struct sg_audit_event *ev, const struct sg_session *e, const char *name) {
        *ev = (struct sg_audit_event) {
                .time_usec = sg_now_real_usec(), .event = name,
                .user = e->user, .service = e->service,
                .rhost = *e->rhost ? e->rhost : NULL, .tty = *e->tty ? e->tty : NULL,
                .pid = -1, .uid = -1, .session_id = e->id, /* the daemon's own doing */
        };
}

/* An event a request caused: the peer's pid and uid, as every request row has them. */
static void event_by(struct sg_audit_event *ev, const struct sg_session *e, const char *name, const Client *cl) {
        event_of(ev, e, name);
        ev->pid = client_peer(cl)->pid;
        ev->uid = client_peer(cl)->uid;
}

/* Writes ev; a row the store refuses is still in the journal (context_emit), and logged. */
static void emit(const Context *x, const struct sg_audit_event *ev) {
        int r = context_emit(x, ev, false);

        if (r < 0)
                log_error_errno(r, "cannot record %s of session %s", ev->event, ev->session_id);
}

/* Drops entry i from the table and the store. */
static void forget(const Context *x, size_t i) {
        const struct sg_session *e = sessions_get(x->sessions, i);
        int r = txn_begin(x->txn);

        if (r >= 0)
                r = sg_store_session_delete(x->store, e->id);
        if (r < 0)
                log_error_errno(r, "cannot delete session %s from the store", e->id);
        sessions_remove(x->sessions, i);
}

static void signal_leader(const struct sg_session *e, int sig) {
        int r = pidfd_signal(e->pidfd, sig);

        if (r < 0 && r != -ESRCH)
                log_warning_errno(r, "cannot send %s to the leader (pid %d) of session %s", sig == SIGKILL ? "SIGKILL" : "SIGHUP",
                                  (int) e->pid, e->id);
}

struct logind_call {
        const Context *x;
        char id[SG_SESSION_ID_LEN + 1];
        char logind_id[sizeof ((struct sg_session *) 0)->logind_id];
};

/* logind refused or did not answer: the leader is signalled after all. */
static int on_terminate_reply(sd_bus_message *m, void *userdata, sd_bus_error *err) {
        struct logind_call *c = userdata;
        int i = sessions_find(c->x->sessions, c->id);

        (void) err;
        if (i >= 0 && sd_bus_message_is_method_error(m, NULL)) {
                const struct sg_session *e = sessions_get(c->x->sessions, (size_t) i);

                log_info("logind did not end session %s (%s): sending SIGHUP to its leader", e->id,
                         sd_bus_message_get_error(m) ? sd_bus_message_get_error(m)->name : "no answer");
                signal_leader(e, SIGHUP);
        } else if (!sd_bus_message_is_method_error(m, NULL))
                /* Said whether or not the session is still in the table: logind may end it, and
                 * the module close it, before this reply is read. */
                log_info("logind is ending session %s (logind session %s)", c->id, c->logind_id);
        free(c);
        return 0;
}

/* The leader's logind session: the one it registered with, else the one it is in now. A
 * module stacked before pam_systemd (pam-auth-update orders it so) opens our session before
 * logind's exists, so the id is often learnt only here. The pidfd still being alive after
 * the lookup proves the pid was not recycled while it was read. */
static bool leader_logind_id(const struct sg_session *e, char *buf, size_t size) {
        char *id = NULL;
        bool ok;

        if (*e->logind_id) {
                snprintf(buf, size, "%s", e->logind_id);
                return true;
        }
        if (pidfd_dead(e->pidfd) || sd_pid_get_session(e->pid, &id) < 0)
                return false;
        ok = !pidfd_dead(e->pidfd) && sg_valid_logind_id(id) && strlen(id) < size;
        if (ok)
                snprintf(buf, size, "%s", id);
        free(id);
        return ok;
}

static bool terminate_via_logind(const Context *x, const struct sg_session *e) {
        char logind_id[sizeof e->logind_id];
        struct logind_call *c;
        sd_bus *bus;
        int r;

        if (!leader_logind_id(e, logind_id, sizeof logind_id) || !(bus = sessions_bus(x->sessions, x->event)))
                return false;
        c = calloc(1, sizeof *c);
        if (!c)
                return false;
        c->x = x;
        memcpy(c->id, e->id, sizeof c->id);
        memcpy(c->logind_id, logind_id, sizeof c->logind_id);
        r = sd_bus_call_method_async(bus, NULL, "org.freedesktop.login1", "/org/freedesktop/login1",
                                     "org.freedesktop.login1.Manager", "TerminateSession", on_terminate_reply,
                                     c, "s", logind_id);
        if (r < 0) {
                free(c);
                return false;
        }
        /* The slot is floating: the reply (or a timeout error) frees c. */
        return true;
}

/* Starts ending entry i: logind, else SIGHUP; SIGKILL follows from the tick. */
static void end_session(const Context *x, size_t i) {
        const struct sg_session *e = sessions_get(x->sessions, i);

        if (e->ending_usec)
                return;
        if (!terminate_via_logind(x, e))
                signal_leader(e, SIGHUP);
        sessions_set_ending(x->sessions, i, sg_now_mono_usec());
}

void session_tick(void *context) {
        const Context *x = context;
        uint64_t now = sg_now_real_usec(), mono = sg_now_mono_usec();
        uint64_t grace = x->config->kill_grace_sec * USEC_PER_SEC;
        size_t n = sessions_count(x->sessions);

        for (size_t k = n; k-- > 0;) {
                const struct sg_session *e = sessions_get(x->sessions, k);
                struct sg_audit_event ev;
                enum sg_session_expiry why;
                char detail[64];

                if (pidfd_dead(e->pidfd)) {
                        if (!e->ending_usec) { /* a leader that died without closing */
                                event_of(&ev, e, "session_reaped");
                                snprintf(detail, sizeof detail, "leader pid %d is gone", (int) e->pid);
                                ev.detail = detail;
                                emit(x, &ev);
                        }
                        forget(x, k);
                        continue;
                }
                if (e->ending_usec) {
                        if (!e->killed && mono - e->ending_usec >= grace) {
                                log_info("the leader (pid %d) of session %s outlived SIGHUP: SIGKILL", (int) e->pid,
                                         e->id);
                                signal_leader(e, SIGKILL);
                                sessions_set_killed(x->sessions, k);
                        }
                        continue;
                }
                why = sg_session_expiry(x->config->max_lifetime_sec * USEC_PER_SEC,
                                        x->config->idle_timeout_sec * USEC_PER_SEC, e->started_usec,
                                        x->config->idle_timeout_sec ? tty_active_usec(e->tty) : 0, now);
                if (why == SG_SESSION_LIVE)
                        continue;
                event_of(&ev, e, "session_expired");
                ev.reason = why == SG_SESSION_LIFETIME ? "max_lifetime" : "idle_timeout";
                snprintf(detail, sizeof detail, "leader pid %d", (int) e->pid);
                ev.detail = detail;
                emit(x, &ev);
                end_session(x, k);
        }
}

/* ---- requests ---- */

static void put_str(struct sg_writer *w, uint8_t tag, const char *s, size_t max) {
        size_t n = strnlen(s, max);

        if (n)
                sg_writer_strn(w, tag, s, n);
}

static void copy_field(char *dst, size_t size, const char *src) {
        snprintf(dst, size, "%s", src ? src : "");
}

static int refuse_open(Client *cl, const struct sg_session *e, unsigned open, uint32_t max) {
        const Context *x = client_ctx(cl);
        struct sg_audit_event ev;
        struct sg_writer w;
        char detail[128];
        int r;

        event_by(&ev, e, "session_open", cl);
        ev.session_id = NULL;
        ev.reason = "too_many_sessions";
        snprintf(detail, sizeof detail, "refused: %u sessions open, max_sessions = %" PRIu32, open, max);
        ev.detail = detail;
        r = context_emit(x, &ev, false);
        if (r < 0)
                return r;
        sg_writer_init(&w, SG_MSG_OK);
        sg_writer_u64(&w, SG_F_DECISION, SG_DECISION_DENY);
        sg_writer_str(&w, SG_F_DETAIL, "too many sessions");
        return client_send(cl, &w);
}

int session_open(Client *cl, const struct sg_msg *msg) {
        const Context *x = client_ctx(cl);
        const char *user = sg_msg_str(msg, SG_F_USER), *service = sg_msg_str(msg, SG_F_SERVICE);
        const char *tty = sg_msg_str(msg, SG_F_TTY), *rhost = sg_msg_str(msg, SG_F_RHOST);
        const char *logind_id = sg_msg_str(msg, SG_F_LOGIND_ID);
        uint64_t pid = sg_msg_u64(msg, SG_F_PID, 0), uid = sg_msg_u64(msg, SG_F_UID, UINT64_MAX);
        struct sg_session e = { .pidfd = -1 };
        struct sg_session_row row;
        struct sg_audit_event ev;
        struct sg_writer w;
        uint8_t raw[SG_SESSION_ID_LEN / 2];
        char boot[40], detail[160];
        unsigned open;
        int fd, r;

        if (!sg_valid_user(user) || !sg_valid_service(service) || (tty && !sg_valid_tty(tty)) ||
            (rhost && !sg_valid_rhost(rhost)) || (logind_id && !sg_valid_logind_id(logind_id)) || pid <= 1 ||
            pid > INT32_MAX || uid >= UINT32_MAX)
                return client_send_error(cl, SG_ERR_INVALID, "invalid session fields");
        copy_field(e.user, sizeof e.user, user);
        copy_field(e.service, sizeof e.service, service);
        copy_field(e.tty, sizeof e.tty, tty);
        copy_field(e.rhost, sizeof e.rhost, rhost);
        copy_field(e.logind_id, sizeof e.logind_id, logind_id);
        e.uid = (uint32_t) uid;
        e.pid = (int32_t) pid;

        open = sessions_count_uid(x->sessions, e.uid);
        if (!sg_session_may_open(open, e.uid, x->config->max_sessions, x->config->limit_root))
                return refuse_open(cl, &e, open, x->config->max_sessions);

        fd = leader_open(e.pid, &e.pid_start);
        if (fd < 0)
                return client_send_error(cl, SG_ERR_INVALID, "no such leader process");
        e.pidfd = fd;
        randombytes_buf(raw, sizeof raw);
        sodium_bin2hex(e.id, sizeof e.id, raw, sizeof raw);
        e.started_usec = sg_now_real_usec();
        boot_id(boot);
        row = (struct sg_session_row) {
                .id = e.id, .user = e.user, .service = e.service, .tty = e.tty, .rhost = e.rhost,
                .logind_id = e.logind_id, .uid = e.uid, .pid = e.pid, .pid_start = e.pid_start,
                .boot_id = boot, .started_usec = e.started_usec,
        };
        r = txn_begin(x->txn);
        if (r >= 0)
                r = sg_store_session_put(x->store, &row);
        if (r >= 0) {
                event_by(&ev, &e, "session_open", cl);
                snprintf(detail, sizeof detail, "leader pid %d%s%s", (int) e.pid, *e.logind_id ? ", logind session " : "",
                         e.logind_id);
                ev.detail = detail;
                r = context_emit(x, &ev, false);
        }
        if (r >= 0)
                r = sessions_add(x->sessions, &e);
        if (r < 0) {
                close(fd);
                return r;
        }
        sg_writer_init(&w, SG_MSG_OK);
        sg_writer_u64(&w, SG_F_DECISION, SG_DECISION_ALLOW);
        sg_writer_str(&w, SG_F_SESSION_ID, e.id);
        return client_send(cl, &w);
}

int session_close(Client *cl, const struct sg_msg *msg) {
        const Context *x = client_ctx(cl);
        const char *id = sg_msg_str(msg, SG_F_SESSION_ID);
        struct sg_audit_event ev;
        struct sg_writer w;
        char detail[96];
        int i, r;

        if (!sg_valid_session_id(id))
                return client_send_error(cl, SG_ERR_INVALID, "invalid session id");
        i = sessions_find(x->sessions, id);
        sg_writer_init(&w, SG_MSG_OK);
        sg_writer_u64(&w, SG_F_COUNT, i >= 0);
        if (i >= 0) { /* an unknown id is fine: close is idempotent */
                const struct sg_session *e = sessions_get(x->sessions, (size_t) i);
                uint64_t now = sg_now_real_usec();

                event_by(&ev, e, "session_close", cl);
                snprintf(detail, sizeof detail, "after %" PRIu64 " s",
                         now > e->started_usec ? (now - e->started_usec) / USEC_PER_SEC : 0);
                ev.detail = detail;
                r = context_emit(x, &ev, false);
                if (r < 0)
                        return r;
                r = sg_store_session_delete(x->store, e->id);
                if (r < 0)
                        return r;
                sessions_remove(x->sessions, (size_t) i);
        }
        return client_send(cl, &w);
}

int session_list(Client *cl, const struct sg_msg *msg) {
        const Context *x = client_ctx(cl);
        uint64_t now = sg_now_real_usec();
        size_t n = sessions_count(x->sessions);
        struct sg_writer w;
        int r;

        (void) msg;
        for (size_t i = 0; i < n; i++) {
                const struct sg_session *e = sessions_get(x->sessions, i);
                uint64_t active = tty_active_usec(e->tty);
                char logind_id[sizeof e->logind_id];

                if (!leader_logind_id(e, logind_id, sizeof logind_id))
                        logind_id[0] = '\0';
                sg_writer_init(&w, SG_MSG_ROW);
                sg_writer_str(&w, SG_F_SESSION_ID, e->id);
                sg_writer_str(&w, SG_F_USER, e->user);
                sg_writer_u64(&w, SG_F_UID, e->uid);
                sg_writer_str(&w, SG_F_SERVICE, e->service);
                put_str(&w, SG_F_TTY, e->tty, sizeof e->tty);
                put_str(&w, SG_F_RHOST, e->rhost, sizeof e->rhost);
                put_str(&w, SG_F_LOGIND_ID, logind_id, sizeof logind_id);
                sg_writer_u64(&w, SG_F_PID, (uint64_t) e->pid);
                sg_writer_u64(&w, SG_F_TIME, e->started_usec);
                if (active) {
                        if (active < e->started_usec)
                                active = e->started_usec;
                        sg_writer_u64(&w, SG_F_IDLE, now > active ? (now - active) / USEC_PER_SEC : 0);
                }
                r = client_send(cl, &w);
                if (r < 0)
                        return r;
        }
        sg_writer_init(&w, SG_MSG_OK);
        sg_writer_u64(&w, SG_F_COUNT, n);
        return client_send(cl, &w);
}

int session_kill(Client *cl, const struct sg_msg *msg) {
        const Context *x = client_ctx(cl);
        const char *id = sg_msg_str(msg, SG_F_SESSION_ID);
        const struct sg_session *e;
        struct sg_audit_event ev;
        struct sg_writer w;
        int i, r;

        if (!sg_valid_session_id(id))
                return client_send_error(cl, SG_ERR_INVALID, "invalid session id");
        i = sessions_find(x->sessions, id);
        if (i < 0)
                return client_send_error(cl, SG_ERR_NOT_FOUND, "no such session");
        e = sessions_get(x->sessions, (size_t) i);
        event_by(&ev, e, "session_killed", cl);
        ev.detail = e->ending_usec ? "already ending" : NULL;
        r = context_emit(x, &ev, false);
        if (r < 0)
                return r;
        end_session(x, (size_t) i);
        sg_writer_init(&w, SG_MSG_OK);
        return client_send(cl, &w);
}

/* ---- start-up ---- */

struct restore {
        const Context *x;
        char boot[40];
        int err;
};

static int restore_one(void *userdata, const struct sg_session_row *row) {
        struct restore *rs = userdata;
        struct sg_session e = { .pidfd = -1 };
        uint64_t start = 0;
        int fd = -1;

        if (!sg_valid_session_id(row->id))
                return 0;
        copy_field(e.id, sizeof e.id, row->id);
        copy_field(e.user, sizeof e.user, row->user);
        copy_field(e.service, sizeof e.service, row->service);
        copy_field(e.tty, sizeof e.tty, row->tty);
        copy_field(e.rhost, sizeof e.rhost, row->rhost);
        copy_field(e.logind_id, sizeof e.logind_id, row->logind_id);
        e.uid = row->uid;
        e.pid = row->pid;
        e.pid_start = row->pid_start;
        e.started_usec = row->started_usec;
        if (strcmp(row->boot_id, rs->boot) == 0)
                fd = leader_open(e.pid, &start);
        if (fd >= 0 && start != row->pid_start) { /* the pid now names another process */
                close(fd);
                fd = -1;
        }
        e.pidfd = fd;
        /* Added even when the leader is gone: the first tick reaps it with its audit row. */
        if (sessions_add(rs->x->sessions, &e) < 0) {
                if (fd >= 0)
                        close(fd);
                rs->err = -ENOMEM;
                return -ENOMEM;
        }
        return 0;
}

int session_restore(const Context *x) {
        struct restore rs = { .x = x };
        int r;

        boot_id(rs.boot);
        r = sg_store_session_foreach(x->store, restore_one, &rs);
        if (r < 0)
                return r;
        log_info("%zu sessions reloaded from the store", sessions_count(x->sessions));
        return 0;
}
