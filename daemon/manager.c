/* SPDX-License-Identifier: MIT */
/* secguardd's lifecycle: config, keys, store, state replay, the listening socket, signals,
 * group commit and periodic maintenance. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <sodium.h>
#include <systemd/sd-daemon.h>

#include "events.h"
#include "io.h"
#include "keyfile.h"
#include "manager-internal.h"
#include "requests.h"

#define MAINTENANCE_USEC (5ull * 60ull * 1000000ull)
#define DRAIN_USEC (5ull * 1000000ull)
#define AUDIT_KEY_CREDENTIAL "secguard-audit-key"
#define USEC_PER_SEC 1000000ull

static int load_config(const struct manager_args *a, struct sg_config *ret) {
        char err[512];
        int r;

        sg_config_defaults(ret);
        r = sg_config_load(ret, a->config_path, !a->config_required, err, sizeof err);
        if (r < 0) {
                log_error("%s", err);
                return r;
        }
        if (a->socket)
                snprintf(ret->socket, sizeof ret->socket, "%s", a->socket);
        if (a->state_dir)
                snprintf(ret->state_dir, sizeof ret->state_dir, "%s", a->state_dir);
        r = sg_config_check(ret, err, sizeof err);
        if (r < 0) {
                log_error("%s", err);
                return r;
        }
        return 0;
}

int manager_policy_config(const struct sg_config *c, const struct sg_cidr_list *allow,
                          struct sg_policy_config *ret) {
        *ret = (struct sg_policy_config) {
                .window_usec = c->window_sec * USEC_PER_SEC,
                .lock_time_usec = c->lock_time_sec * USEC_PER_SEC,
                .lock_factor = c->lock_factor,
                .lock_max_usec = c->lock_max_sec * USEC_PER_SEC,
                .history_usec = c->history_sec * USEC_PER_SEC,
                .user_max_failures = c->user_max_failures,
                .source_max_failures = c->source_max_failures,
                .user_source_max_failures = c->user_source_max_failures,
                .spray_max_users = c->spray_max_users,
                .delay_step_ms = c->delay_step_ms,
                .delay_max_ms = c->delay_max_ms,
                .user_hard_lock = c->user_hard_lock,
                .deny_root = c->deny_root,
                .ipv6_prefix = c->ipv6_prefix,
                .allowlist = *allow,
                .max_keys = 200000,
        };
        return 0;
}

static uint32_t permits_from_config(const struct sg_config *c) {
        long n;

        if (c->hash_permits > 0)
                return c->hash_permits;
        n = sysconf(_SC_NPROCESSORS_ONLN);
        return n > 0 ? (uint32_t) n : 1;
}

static int resolve_admin_group(Manager *m) {
        struct group *g;

        m->have_admin_gid = false;
        if (!m->config.admin_group[0])
                return 0;
        g = getgrnam(m->config.admin_group);
        if (!g) {
                log_notice("admin group \"%s\" does not exist; read-only views are root only",
                           m->config.admin_group);
                return 0;
        }
        m->admin_gid = g->gr_gid;
        m->have_admin_gid = true;
        return 0;
}

int manager_new(const struct manager_args *a, Manager **ret) {
        Manager *m;
        const char *bad = NULL;
        int r;

        m = calloc(1, sizeof *m);
        if (!m)
                return -ENOMEM;
        m->args = *a;
        m->listen_fd = -1;
        r = load_config(a, &m->config);
        if (r < 0)
                goto fail;
        r = sg_cidr_list_parse(m->config.allowlist, &m->allowlist, &bad);
        if (r < 0) {
                log_error("[ratelimit] allowlist: invalid entry near \"%s\"", bad ? bad : "");
                goto fail;
        }
        r = sg_peers_new(&m->peers);
        if (r < 0)
                goto fail;
        *ret = m;
        return 0;
fail:
        manager_free(m);
        return r;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        while (m->conns)
                conn_free(m->conns);
        if (m->tx_open) {
                int r = sg_store_commit(m->store);

                if (r < 0)
                        log_error_errno(r, "final commit failed");
                m->tx_open = false;
        }
        m->listen_source = sd_event_source_disable_unref(m->listen_source);
        m->commit_source = sd_event_source_disable_unref(m->commit_source);
        m->maintenance_timer = sd_event_source_disable_unref(m->maintenance_timer);
        m->drain_timer = sd_event_source_disable_unref(m->drain_timer);
        if (m->listen_fd >= 0)
                close(m->listen_fd);
        if (m->socket_bound)
                (void) unlink(m->config.socket);
        m->store = sg_store_free(m->store);
        m->policy = sg_policy_free(m->policy);
        m->peers = sg_peers_free(m->peers);
        sg_cidr_list_free(&m->allowlist);
        if (m->audit_key)
                sodium_free(m->audit_key);
        sodium_memzero(m->seal_pk, sizeof m->seal_pk);
        m->event = sd_event_unref(m->event);
        free(m);
        return NULL;
}

/* ---- the audit head: the chain's tail kept outside the database ---- */

static void head_path(const Manager *m, char *out, size_t size) {
        snprintf(out, size, "%s/audit.head", m->config.state_dir);
}

/* fsync on the directory makes a rename in it durable. */
static int fsync_dir(const char *dir) {
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), r = 0;

        if (fd < 0)
                return -errno;
        if (fsync(fd) < 0)
                r = -errno;
        close(fd);
        return r;
}

/* Writes "ID HEXMAC\n", the committed tail, after each commit that appended audit rows: temp
 * file, fsync, rename, fsync of the directory, so after a power failure audit.head is the old
 * tail or the new one, never empty or missing. Never moves back (a newer commit may have
 * written it meanwhile). */
static void head_write(Manager *m, uint64_t id, const uint8_t mac[SG_MAC_BYTES]) {
        char path[PATH_MAX + 16], tmp[PATH_MAX + 32], line[32 + 2 * SG_MAC_BYTES + 4];
        char hex[2 * SG_MAC_BYTES + 1];
        int fd, n, r;

        if (id <= m->head_id)
                return;
        head_path(m, path, sizeof path);
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        sodium_bin2hex(hex, sizeof hex, mac, SG_MAC_BYTES);
        n = snprintf(line, sizeof line, "%" PRIu64 " %s\n", id, hex);
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0) {
                log_warning_errno(-errno, "cannot write %s", tmp);
                return;
        }
        /* Durable like the database: with [audit] synchronous = normal neither is synced at each
         * commit (two fsyncs per group commit would cap the event rate at the disk's latency). */
        errno = 0;
        if (write(fd, line, (size_t) n) != n)
                r = errno ? -errno : -EIO; /* a short write leaves errno alone */
        else if (m->config.sync_full && fsync(fd) < 0)
                r = -errno;
        else
                r = 0;
        if (close(fd) < 0 && r == 0)
                r = -errno;
        if (r == 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0) {
                log_warning_errno(r, "cannot write %s", path);
                (void) unlink(tmp);
                return;
        }
        r = m->config.sync_full ? fsync_dir(m->config.state_dir) : 0;
        if (r < 0)
                log_warning_errno(r, "cannot sync directory %s after writing %s", m->config.state_dir, path);
        m->head_id = id;
}

/* Reads audit.head: 1 with the id (and the mac when the line has one), 0 when absent,
 * -EBADMSG when unreadable. */
static int head_read(const char *path, uint64_t *ret_id, uint8_t ret_mac[SG_MAC_BYTES], bool *ret_has_mac) {
        char line[128], hex[2 * SG_MAC_BYTES + 2] = "";
        unsigned long long id;
        size_t maclen = 0;
        ssize_t n;
        int fd, k;

        fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT ? 0 : -errno;
        n = read(fd, line, sizeof line - 1);
        close(fd);
        if (n <= 0)
                return -EBADMSG;
        line[n] = '\0';
        k = sscanf(line, "%llu %65s", &id, hex);
        if (k < 1 || line[0] < '0' || line[0] > '9' || id >= (unsigned long long) INT64_MAX)
                return -EBADMSG;
        *ret_has_mac = k == 2 && strlen(hex) == 2 * SG_MAC_BYTES &&
                       sodium_hex2bin(ret_mac, SG_MAC_BYTES, hex, strlen(hex), NULL, &maclen, NULL) == 0 &&
                       maclen == SG_MAC_BYTES;
        *ret_id = id;
        return 1;
}

/* At start, before the first append. audit.head names the tail as of the last commit. When
 * the database ends before it, those rows were deleted while we were down (or lost in a power
 * failure with synchronous = normal): the id sequence goes on after them, so the gap stays in
 * the chain and every later `audit verify` reports it. A missing or unreadable audit.head
 * while the database holds rows is noted too (the daemon_start row and the log say so).
 * m->missing_tail carries the note to daemon_start. */
static void head_check(Manager *m) {
        char path[PATH_MAX + 16];
        uint8_t have_mac[SG_MAC_BYTES], want_mac[SG_MAC_BYTES];
        uint64_t have, want = 0;
        bool has_mac = false;
        int r;

        head_path(m, path, sizeof path);
        sg_store_audit_tail(m->store, &have, have_mac);
        m->head_id = have;
        m->missing_tail[0] = '\0';
        r = head_read(path, &want, want_mac, &has_mac);
        if (r == 0 && have == 0)
                return; /* first start */
        if (r <= 0) {
                snprintf(m->missing_tail, sizeof m->missing_tail,
                         "audit.head is %s while the audit log has rows up to %" PRIu64
                         "; rows deleted from its end cannot be detected this time",
                         r == 0 ? "missing" : "unreadable", have);
                log_warning("%s: %s", path, m->missing_tail);
                return;
        }
        if (want > have) {
                r = sg_store_audit_resume_after(m->store, want);
                if (r < 0)
                        log_error_errno(r, "cannot continue the audit chain after row %" PRIu64, want);
                snprintf(m->missing_tail, sizeof m->missing_tail,
                         "audit rows %" PRIu64 "..%" PRIu64 " are missing at the end (deleted while secguardd was "
                         "down, or lost in a power failure with [audit] synchronous = normal); the log goes on at row %"
                         PRIu64, have + 1, want, want + 1);
                log_error("%s", m->missing_tail);
        } else if (want == have && has_mac && sodium_memcmp(want_mac, have_mac, SG_MAC_BYTES) != 0) {
                snprintf(m->missing_tail, sizeof m->missing_tail,
                         "audit row %" PRIu64 " is not the row recorded in audit.head (replaced)", have);
                log_error("%s: %s", path, m->missing_tail);
        }
}

/* ---- group commit ---- */

#define SLOW_COMMIT_USEC (500 * 1000)

static void manager_commit(Manager *m) {
        uint8_t tail_mac[SG_MAC_BYTES];
        uint64_t t0, took, tail_id = 0;
        Conn *held;
        int r;

        if (!m->tx_open)
                return;
        t0 = sg_now_mono_usec();
        r = sg_store_commit(m->store);
        m->tx_open = false;
        m->tx_ops = 0;
        if (r < 0) {
                log_error_errno(r, "committing to the store failed; rolling back");
                (void) sg_store_rollback(m->store);
        } else
                /* Taken now: once replies are released, new requests append uncommitted rows. */
                sg_store_audit_tail(m->store, &tail_id, tail_mac);
        took = sg_now_mono_usec() - t0;
        /* Every held reply and the whole event loop waited for this: say so when the disk is slow. */
        if (took >= SLOW_COMMIT_USEC)
                log_warning("committing to the store took %" PRIu64 " ms (slow disk?); logins waited for it",
                            took / 1000);
        (void) sd_event_source_set_enabled(m->commit_source, SD_EVENT_OFF);

        held = m->held_head;
        m->held_head = NULL;
        while (held) {
                Conn *c = held;

                held = c->held_next;
                c->held = false;
                c->held_next = NULL;
                if (r < 0 && !store_error_tolerated(c, r)) {
                        /* Nothing we promised is durable: take the replies back. */
                        request_store_failed(c, r);
                        c->success_unacked = false; /* that success was rolled back */
                        c->out_len = c->held_mark;
                        if (c->out_off > c->out_len)
                                c->out_off = c->out_len;
                        (void) conn_send_error(c, SG_ERR_INTERNAL, "store error");
                        conn_close_after_flush(c);
                }
                conn_flush(c);
                (void) conn_settle(c);
        }
        /* The replies depend on the commit only; audit.head's two fsyncs need not delay them. */
        if (r >= 0)
                head_write(m, tail_id, tail_mac);
}

static int on_commit(sd_event_source *s, void *userdata) {
        (void) s;
        manager_commit(userdata);
        return 0;
}

int manager_tx(Manager *m) {
        int r;

        if (m->tx_open && ++m->tx_ops >= GROUP_COMMIT_MAX_OPS)
                manager_commit(m);
        if (m->tx_open)
                return 0;
        r = sg_store_begin(m->store);
        if (r < 0)
                return r;
        m->tx_open = true;
        m->tx_ops = 0;
        return sd_event_source_set_enabled(m->commit_source, SD_EVENT_ONESHOT);
}

void manager_hold(Manager *m, Conn *c) {
        c->held = true;
        c->held_next = m->held_head;
        m->held_head = c;
}

int manager_emit(Manager *m, const struct sg_audit_event *ev, bool user_unknown) {
        int r = manager_tx(m);

        if (r < 0)
                return r;
        return sg_event_emit(m->store, ev, user_unknown, m->have_seal_pk ? m->seal_pk : NULL, NULL);
}

/* ---- start-up ---- */

static int ensure_dir(const char *path, mode_t mode, bool must_be_private) {
        struct stat st;
        int fd;

        if (mkdir(path, mode) < 0 && errno != EEXIST)
                return log_error_errno(-errno, "cannot create %s", path);
        fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return log_error_errno(-errno, "cannot open directory %s", path);
        if (fstat(fd, &st) < 0) {
                close(fd);
                return -errno;
        }
        close(fd);
        if (st.st_uid != geteuid()) {
                log_error("%s is owned by uid %u, not by us (uid %u); fix: chown %u %s", path,
                          (unsigned) st.st_uid, (unsigned) geteuid(), (unsigned) geteuid(), path);
                return -EPERM;
        }
        if ((st.st_mode & 022) || (must_be_private && (st.st_mode & 077))) {
                log_error("%s has unsafe mode %04o; fix: chmod %04o %s", path,
                          (unsigned) (st.st_mode & 07777), (unsigned) mode, path);
                return -EPERM;
        }
        return 0;
}

static int load_keys(Manager *m) {
        char path[PATH_MAX + 32], err[512];
        bool created = false;
        int r;

        if (m->config.key_file[0])
                snprintf(path, sizeof path, "%s", m->config.key_file);
        else
                snprintf(path, sizeof path, "%s/audit.key", m->config.state_dir);
        m->audit_key = sodium_malloc(SG_AUDIT_KEY_BYTES);
        if (!m->audit_key)
                return -ENOMEM;
        r = sg_key_load(AUDIT_KEY_CREDENTIAL, path, true, m->audit_key, SG_AUDIT_KEY_BYTES,
                        &created, err, sizeof err);
        if (r < 0) {
                log_error("audit key: %s", err);
                return r;
        }
        if (created)
                log_notice("generated a new audit key at %s (back it up: audit verify needs it)", path);

        if (m->config.seal_public_key[0]) {
                r = sg_key_read(m->config.seal_public_key, m->seal_pk, sizeof m->seal_pk, err, sizeof err);
                if (r < 0) {
                        log_error("seal public key: %s", err);
                        return r;
                }
                m->have_seal_pk = true;
        }
        return 0;
}

static int replay_attempt(void *userdata, uint64_t id, uint64_t time_usec, const char *user,
                          const char *source, enum sg_attempt_state state) {
        Manager *m = userdata;

        (void) id;
        if (state == SG_ATTEMPT_SUCCESS)
                sg_policy_replay_success(m->policy, user, source, time_usec);
        else
                sg_policy_replay_failure(m->policy, user, source, time_usec);
        return 0;
}

static int replay_lock(void *userdata, const struct sg_lock_row *l) {
        Manager *m = userdata;
        struct sg_lock_info info = {
                .until_usec = l->until_usec,
                .level = l->level,
                .last_lock_usec = l->last_lock_usec,
                .cleared_usec = l->cleared_usec,
                .failures = l->failures,
        };
        int kind = sg_lock_kind_from_name(l->kind);

        if (kind < 0) {
                log_warning("ignoring stored lock of unknown kind \"%s\"", l->kind);
                return 0;
        }
        info.kind = (enum sg_lock_kind) kind;
        snprintf(info.key, sizeof info.key, "%s", l->key);
        sg_policy_load_lock(m->policy, &info);
        return 0;
}

/* Start-up store errors: a damaged file is named with the fix, never recreated. */
static int store_failed(Manager *m, int r, const char *what) {
        if (r == -EBADMSG)
                log_error("%s: %s/secguard.db is damaged; move it aside and restart (it is never recreated automatically)",
                          what, m->config.state_dir);
        else
                log_error_errno(r, "%s (database %s/secguard.db)", what, m->config.state_dir);
        return r;
}

static int open_state(Manager *m) {
        struct sg_store_options o = { .state_dir = m->config.state_dir,
                                      .sync_full = m->config.sync_full };
        struct sg_policy_config pc;
        uint64_t abandoned = 0, now = sg_now_real_usec();
        char err[1024];
        int r;

        r = ensure_dir(m->config.state_dir, 0700, false);
        if (r < 0)
                return r;
        r = load_keys(m);
        if (r < 0)
                return r;
        o.audit_key = m->audit_key;
        r = sg_store_open(&o, &m->store, err, sizeof err);
        if (r < 0) {
                log_error("%s", err);
                return r;
        }
        manager_policy_config(&m->config, &m->allowlist, &pc);
        r = sg_policy_new(&pc, &m->policy);
        if (r < 0)
                return log_error_errno(r, "cannot create the rate limiter");

        /* A login in flight when we died counts as a failure ("abandoned"). */
        r = sg_store_attempt_abandon_pending(m->store, &abandoned);
        if (r < 0)
                return store_failed(m, r, "cannot settle pending attempts");
        r = sg_store_lock_foreach(m->store, replay_lock, m);
        if (r < 0)
                return store_failed(m, r, "cannot load locks");
        r = sg_store_attempt_foreach(m->store, now > pc.window_usec ? now - pc.window_usec : 0,
                                     replay_attempt, m);
        if (r < 0)
                return store_failed(m, r, "cannot replay attempts");
        if (abandoned > 0)
                log_notice("%" PRIu64 " login attempts were in flight at the last stop; counted as failures",
                           abandoned);
        head_check(m);
        m->permits_max = permits_from_config(&m->config);
        return resolve_admin_group(m);
}

static int check_no_other_daemon(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd, r;

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
        r = connect(fd, (struct sockaddr *) &sa, sizeof sa);
        close(fd);
        if (r == 0) {
                log_error("another secguardd is already listening on %s", path);
                return -EADDRINUSE;
        }
        return 0;
}

static int bind_socket(Manager *m) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        char dir[sizeof sa.sun_path];
        struct stat st;
        char *slash;
        mode_t old;
        int fd, r;

        if (strlen(m->config.socket) >= sizeof sa.sun_path)
                return log_error_errno(-ENAMETOOLONG, "socket path %s", m->config.socket);
        snprintf(dir, sizeof dir, "%s", m->config.socket);
        slash = strrchr(dir, '/');
        if (!slash || slash == dir)
                return log_error_errno(-EINVAL, "socket path %s must be absolute, in a directory",
                                       m->config.socket);
        *slash = '\0';
        r = ensure_dir(dir, 0755, false);
        if (r < 0)
                return r;
        if (lstat(m->config.socket, &st) == 0) {
                if (!S_ISSOCK(st.st_mode)) {
                        log_error("%s exists and is not a socket; remove it", m->config.socket);
                        return -EEXIST;
                }
                r = check_no_other_daemon(m->config.socket);
                if (r < 0)
                        return r;
                (void) unlink(m->config.socket);
        }
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return log_error_errno(-errno, "socket");
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", m->config.socket);
        old = umask(0);
        /* 0666: every request is gated by SO_PEERCRED and the permission table. */
        r = bind(fd, (struct sockaddr *) &sa, sizeof sa);
        umask(old);
        if (r < 0) {
                r = -errno;
                close(fd);
                return log_error_errno(r, "cannot bind %s", m->config.socket);
        }
        m->socket_bound = true;
        if (chmod(m->config.socket, 0666) < 0 || listen(fd, SOMAXCONN) < 0) {
                r = -errno;
                close(fd);
                return log_error_errno(r, "cannot listen on %s", m->config.socket);
        }
        m->listen_fd = fd;
        return 0;
}

static int on_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Manager *m = userdata;

        (void) s;
        (void) revents;
        for (int i = 0; i < 64; i++) {
                int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

                if (c < 0) {
                        if (errno != EAGAIN && errno != EINTR)
                                log_warning_errno(-errno, "accept");
                        break;
                }
                if (conn_new(m, c) < 0)
                        log_warning("dropping a connection: out of resources");
        }
        return 0;
}

static int listen_socket(Manager *m) {
        int n, r;

        n = sd_listen_fds(1);
        if (n < 0)
                return log_error_errno(n, "sd_listen_fds");
        if (n > 1)
                return log_error_errno(-EINVAL, "expected one socket from systemd, got %d", n);
        if (n == 1) {
                int fd = SD_LISTEN_FDS_START;

                if (sd_is_socket_unix(fd, SOCK_STREAM, 1, NULL, 0) <= 0)
                        return log_error_errno(-EINVAL, "the socket from systemd is not a listening Unix stream socket");
                (void) fcntl(fd, F_SETFD, FD_CLOEXEC);
                (void) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
                m->listen_fd = fd;
                m->listen_from_systemd = true;
        } else {
                r = bind_socket(m);
                if (r < 0)
                        return r;
        }
        return sd_event_add_io(m->event, &m->listen_source, m->listen_fd, EPOLLIN, on_accept, m);
}

/* ---- signals and maintenance ---- */

static int on_drain_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        (void) s;
        (void) usec;
        log_warning("%zu connections still open after %llu s; closing them", m->n_conns,
                    DRAIN_USEC / USEC_PER_SEC);
        while (m->conns)
                conn_free(m->conns);
        return sd_event_exit(m->event, 0);
}

static int on_sigterm(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;
        struct sg_audit_event ev = { .time_usec = sg_now_real_usec(), .event = "daemon_stop",
                                     .pid = getpid(), .uid = geteuid() };
        int r;

        (void) s;
        (void) si;
        if (m->stopping)
                return 0;
        m->stopping = true;
        (void) sd_notify(0, "STOPPING=1");
        log_info("stopping: finishing %zu open connections", m->n_conns);
        m->listen_source = sd_event_source_disable_unref(m->listen_source);
        request_flush_suppressed(m, true); /* held-back counts before the last row */
        r = manager_emit(m, &ev, false);
        if (r < 0)
                log_error_errno(r, "cannot record daemon_stop");
        /* Idle connections go now; one with a request or attempt in flight may finish. */
        for (Conn *c = m->conns, *next; c; c = next) {
                next = c->next;
                if (!c->busy && !c->attempt_open && c->in_len == 0 && c->out_off == c->out_len && !c->held)
                        conn_free(c);
        }
        if (!m->conns) {
                manager_commit(m);
                return sd_event_exit(m->event, 0);
        }
        return sd_event_add_time_relative(m->event, &m->drain_timer, CLOCK_MONOTONIC, DRAIN_USEC, 0,
                                          on_drain_timeout, m);
}

static int on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;
        struct sg_config c;
        struct sg_cidr_list allow = { 0 };
        struct sg_policy_config pc;
        const char *bad = NULL;

        (void) s;
        (void) si;
        if (load_config(&m->args, &c) < 0) {
                log_error("reload failed; keeping the config in force");
                return 0;
        }
        if (sg_cidr_list_parse(c.allowlist, &allow, &bad) < 0) {
                log_error("reload failed: [ratelimit] allowlist: invalid entry near \"%s\"; keeping the config in force",
                          bad ? bad : "");
                return 0;
        }
        if (strcmp(c.socket, m->config.socket) != 0 || strcmp(c.state_dir, m->config.state_dir) != 0)
                log_warning("socket and state_dir changes take effect at restart");
        snprintf(c.socket, sizeof c.socket, "%s", m->config.socket);
        snprintf(c.state_dir, sizeof c.state_dir, "%s", m->config.state_dir);
        manager_policy_config(&c, &allow, &pc);
        sg_policy_set_config(m->policy, &pc); /* keeps every counter and lock */
        sg_cidr_list_free(&m->allowlist);
        m->allowlist = allow;
        m->config = c;
        m->permits_max = permits_from_config(&m->config);
        (void) resolve_admin_group(m);
        log_info("configuration reloaded from %s", m->args.config_path);
        return 0;
}

static int maintenance(Manager *m) {
        uint64_t now = sg_now_real_usec(), deleted = 0;
        uint64_t keep_attempts = m->config.window_sec * USEC_PER_SEC;
        int r;

        r = manager_tx(m);
        if (r < 0)
                return r;
        request_flush_suppressed(m, false);
        sg_policy_gc(m->policy, now);
        r = sg_store_attempt_prune(m->store, now > keep_attempts ? now - keep_attempts : 0);
        if (r >= 0)
                r = sg_store_lock_prune(m->store, now - m->config.history_sec * USEC_PER_SEC);
        if (r >= 0 && (m->config.max_age_sec || m->config.max_rows))
                r = sg_store_audit_prune(m->store,
                                         m->config.max_age_sec ? now - m->config.max_age_sec * USEC_PER_SEC : 0,
                                         m->config.max_rows, &deleted);
        if (r < 0)
                log_warning_errno(r, "maintenance failed");
        else if (deleted)
                log_info("pruned %" PRIu64 " audit rows past retention", deleted);
        return r;
}

static int on_maintenance(sd_event_source *s, uint64_t usec, void *userdata) {
        (void) usec;
        (void) maintenance(userdata);
        (void) sd_event_source_set_time_relative(s, MAINTENANCE_USEC);
        return sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
}

int manager_startup(Manager *m) {
        struct sg_audit_event ev = { .event = "daemon_start", .pid = getpid(), .uid = geteuid() };
        char detail[512];
        sigset_t mask;
        int r;

        m->start_mono_usec = sg_now_mono_usec();
        if (sodium_init() < 0)
                return log_error_errno(-EIO, "libsodium failed to initialise");
        r = sd_event_new(&m->event);
        if (r < 0)
                return log_error_errno(r, "sd_event_new");

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);
        if ((r = sd_event_add_signal(m->event, NULL, SIGTERM, on_sigterm, m)) < 0 ||
            (r = sd_event_add_signal(m->event, NULL, SIGINT, on_sigterm, m)) < 0 ||
            (r = sd_event_add_signal(m->event, NULL, SIGHUP, on_sighup, m)) < 0)
                return log_error_errno(r, "cannot watch signals");

        r = open_state(m);
        if (r < 0)
                return r;
        /* The commit runs when nothing more urgent is pending: that is the group commit. */
        r = sd_event_add_defer(m->event, &m->commit_source, on_commit, m);
        if (r < 0)
                return r;
        (void) sd_event_source_set_priority(m->commit_source, SD_EVENT_PRIORITY_IDLE);
        (void) sd_event_source_set_enabled(m->commit_source, SD_EVENT_OFF);
        r = sd_event_add_time_relative(m->event, &m->maintenance_timer, CLOCK_MONOTONIC,
                                       MAINTENANCE_USEC, 0, on_maintenance, m);
        if (r < 0)
                return r;
        r = maintenance(m);
        if (r == -EBADMSG)
                return store_failed(m, r, "maintenance");

        r = listen_socket(m);
        if (r < 0)
                return r;
        ev.time_usec = sg_now_real_usec();
        snprintf(detail, sizeof detail, "version %s, %u hash permits%s%s", SECGUARD_VERSION, m->permits_max,
                 m->missing_tail[0] ? "; " : "", m->missing_tail);
        /* Recorded in this row for good; a gap itself lives on in the chain ids. Cleared so
         * that it is not also reported as a fault of the chain while this daemon runs. */
        m->missing_tail[0] = '\0';
        ev.detail = detail;
        r = manager_emit(m, &ev, false);
        if (r < 0)
                return store_failed(m, r, "cannot write to the audit log");
        manager_commit(m);
        log_info("listening on %s%s", m->listen_from_systemd ? "the socket from systemd" : m->config.socket, "");
        (void) sd_notify(0, "READY=1");
        return 0;
}

int manager_run(Manager *m) {
        int r = sd_event_loop(m->event);

        manager_commit(m);
        return r < 0 ? 1 : r;
}
