/* SPDX-License-Identifier: MIT */
/* secguardd's lifecycle: config, keys, store, state replay, the listening socket, signals,
 * group commit and periodic maintenance. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
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

#include "audit-epoch.h"
#include "audit-head.h"
#include "cidr.h"
#include "config.h"
#include "context.h"
#include "session.h"
#include "dispatch.h"
#include "events.h"
#include "fileio.h"
#include "io.h"
#include "keyfile.h"
#include "tokens.h"
#include "lock-row.h"
#include "manager.h"
#include "worker.h"

#define MAINTENANCE_USEC (5ull * 60ull * 1000000ull)
/* Retention deletes this many audit rows per loop iteration (a few ms), then lets logins in. */
#define PRUNE_SLICE_ROWS 2000
#define PRUNE_PAUSE_USEC 1000ull
#define CONN_IDLE_USEC (60ull * 1000000ull)        /* between requests, root */
#define CONN_IDLE_NONROOT_USEC (5ull * 1000000ull) /* between requests, admin-group members */
#define DRAIN_USEC (5ull * 1000000ull)
#define AUDIT_KEY_CREDENTIAL "secguard-audit-key"
#define TOKEN_KEY_CREDENTIAL "secguard-token-key"
#define USEC_PER_SEC 1000000ull

struct Manager {
        struct manager_args args;
        struct sg_config config;
        sd_event *event;
        sd_event_source *listen_source, *maintenance_timer, *drain_timer, *prune_timer;
        uint64_t pruned; /* audit rows deleted by the retention run in progress */
        uint64_t room_rows, room_cut; /* keep_room(): the table's size held, the last id pruned */
        uint64_t room_checked_usec;   /* keep_room(): when free space was last asked for */
        int listen_fd;
        bool listen_from_systemd, socket_bound, stopping;
        bool config_missing; /* the default config file does not exist: built-in defaults */

        struct sg_cidr_list allowlist;
        uint8_t *audit_key; /* sodium_malloc'ed */
        uint8_t *token_key; /* sodium_malloc'ed, read-only once loaded */
        uint8_t seal_pk[32];
        AuditHead *head;
        AuditEpoch *epoch;              /* forward-secure keys; NULL: not set up */
        sd_event_source *epoch_timer;
        bool epoch_unsaved;             /* audit.fss could not be replaced: retried each epoch */
        char epoch_note[320];           /* for the daemon_start row */

        /* The parts the request layer works with; created and freed here. */
        Context ctx;
};

/* Returns 1 when the (default) config file does not exist and the built-in defaults apply. */
static int load_config(const struct manager_args *a, struct sg_config *ret) {
        char err[512];
        int r, missing;

        sg_config_defaults(ret);
        r = sg_config_load(ret, a->config_path, !a->config_required, err, sizeof err);
        if (r < 0) {
                log_error("%s", err);
                return r;
        }
        missing = r;
        if (a->socket)
                snprintf(ret->socket, sizeof ret->socket, "%s", a->socket);
        if (a->state_dir)
                snprintf(ret->state_dir, sizeof ret->state_dir, "%s", a->state_dir);
        r = sg_config_check(ret, err, sizeof err);
        if (r < 0) {
                log_error("%s", err);
                return r;
        }
        return missing;
}

static void policy_config(const struct sg_config *c, const struct sg_cidr_list *allow,
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
                .ipv6_prefix_wide = c->ipv6_prefix_wide,
                .ipv6_prefix_widest = c->ipv6_prefix_widest,
                .hostname_max_failures = c->hostname_max_failures,
                .user_pacing = c->user_pacing,
                .allowlist = *allow,
                .max_keys = 200000,
        };
}

static uint32_t permits_from_config(const struct sg_config *c) {
        long n;

        if (c->hash_permits > 0)
                return c->hash_permits;
        n = sysconf(_SC_NPROCESSORS_ONLN);
        return n > 0 ? (uint32_t) n : 1;
}

/* The limits of connections and permits, from the config in force (start and reload). */
static void apply_limits(Manager *m) {
        struct conn_limits l = {
                .max_connections = m->config.max_connections,
                .max_connections_per_uid = m->config.max_connections_per_uid,
                .request_timeout_ms = m->config.request_timeout_ms,
                .idle_usec = CONN_IDLE_USEC,
                .nonroot_idle_usec = CONN_IDLE_NONROOT_USEC,
        };
        struct group *g;

        if (m->config.admin_group[0]) {
                g = getgrnam(m->config.admin_group);
                if (g) {
                        l.admin_gid = g->gr_gid;
                        l.have_admin_gid = true;
                } else
                        log_notice("admin group \"%s\" does not exist; read-only views are root only",
                                   m->config.admin_group);
        }
        if (m->config.fleet_user[0]) {
                struct passwd *pw = getpwnam(m->config.fleet_user);

                if (pw && pw->pw_uid != 0) {
                        l.fleet_uid = pw->pw_uid;
                        l.have_fleet_uid = true;
                } else if (!pw && m->config.fleet_enabled)
                        log_notice("[fleet] user \"%s\" does not exist; fleet requests are root only",
                                   m->config.fleet_user);
        }
        conn_set_set_limits(m->ctx.conns, &l);
        permits_configure(m->ctx.permits, permits_from_config(&m->config),
                          (uint64_t) m->config.permit_wait_ms * 1000, (uint64_t) m->config.permit_lease_ms * 1000);
}

bool manager_config_missing(const Manager *m) {
        return m->config_missing;
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
        m->ctx.config = &m->config;
        r = load_config(a, &m->config);
        if (r < 0)
                goto fail;
        m->config_missing = r > 0;
        r = sg_cidr_list_parse(m->config.allowlist, &m->allowlist, &bad);
        if (r < 0) {
                log_error("[ratelimit] allowlist: invalid entry near \"%s\"", bad ? bad : "");
                goto fail;
        }
        r = sg_peers_new(&m->ctx.peers);
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
        /* Connections first: closing one may settle an attempt, which the last commit keeps. */
        m->ctx.conns = conn_set_free(m->ctx.conns);
        /* After the connections (they cancel their jobs), before the store and the key. */
        m->ctx.worker = worker_free(m->ctx.worker);
        m->ctx.txn = txn_free(m->ctx.txn);
        m->ctx.permits = permits_free(m->ctx.permits);
        m->ctx.charges = charges_free(m->ctx.charges);
        m->ctx.sessions = sessions_free(m->ctx.sessions);
        m->head = audit_head_free(m->head);
        m->epoch_timer = sd_event_source_disable_unref(m->epoch_timer);
        m->epoch = audit_epoch_free(m->epoch);
        m->listen_source = sd_event_source_disable_unref(m->listen_source);
        m->maintenance_timer = sd_event_source_disable_unref(m->maintenance_timer);
        m->drain_timer = sd_event_source_disable_unref(m->drain_timer);
        m->prune_timer = sd_event_source_disable_unref(m->prune_timer);
        if (m->listen_fd >= 0)
                close(m->listen_fd);
        if (m->socket_bound)
                (void) unlink(m->config.socket);
        m->ctx.store = sg_store_free(m->ctx.store);
        m->ctx.policy = sg_policy_free(m->ctx.policy);
        m->ctx.peers = sg_peers_free(m->ctx.peers);
        sg_cidr_list_free(&m->allowlist);
        if (m->audit_key)
                sodium_free(m->audit_key);
        if (m->token_key)
                sodium_free(m->token_key);
        sodium_memzero(m->seal_pk, sizeof m->seal_pk);
        m->event = sd_event_unref(m->event);
        free(m);
        return NULL;
}

/* Below this much free space the audit table stops growing: each commit prunes as many of the
 * oldest rows as it added (their pages take the new ones), so logins are not refused for a full
 * disk while the table still holds rows to give. Pruning once SQLITE_FULL is there is too late
 * in WAL mode: the deletion itself needs room in the WAL. Growth resumes at twice as much. */
#define ROOM_MIN_FREE_BYTES (16ULL << 20)
/* With room to spare, free space is asked for at most this often (a statfs per commit was two
 * system calls per login): at the fastest this daemon appends (bulk, about 45 MB/s of rows and
 * WAL), 50 ms is 2-3 MB, well inside the 16 MiB margin. Once short of room, every commit asks. */
#define ROOM_CHECK_USEC (50ULL * 1000ULL)

static void keep_room(Manager *m) {
        uint64_t free_bytes, tail = 0, rows = 0, deleted = 0;
        uint8_t mac[SG_MAC_BYTES];
        int r;

        uint64_t now = sg_now_mono_usec();

        if (!m->room_rows && m->room_checked_usec && now - m->room_checked_usec < ROOM_CHECK_USEC)
                return;
        m->room_checked_usec = now;
        if (sg_store_free_bytes(m->ctx.store, &free_bytes) < 0)
                return;
        if (free_bytes >= 2 * ROOM_MIN_FREE_BYTES || (free_bytes >= ROOM_MIN_FREE_BYTES && !m->room_rows)) {
                if (m->room_rows)
                        log_info("free space is back on the state directory: the audit table may grow again");
                m->room_rows = 0;
                return;
        }
        sg_store_audit_tail(m->ctx.store, &tail, mac);
        if (!m->room_rows) {
                if (sg_store_audit_count(m->ctx.store, &rows) < 0 || rows == 0)
                        return;
                m->room_rows = rows;
                m->room_cut = tail > rows ? tail - rows : 0;
                log_warning("less than %llu MiB free on the state directory: the audit table stays at %" PRIu64
                            " rows, the oldest make room for new ones", ROOM_MIN_FREE_BYTES >> 20, rows);
                return;
        }
        if (tail <= m->room_rows || tail - m->room_rows <= m->room_cut)
                return; /* nothing added since: no transaction, or commits would never stop */
        r = txn_begin(m->ctx.txn);
        if (r >= 0)
                r = sg_store_audit_prune_upto(m->ctx.store, tail - m->room_rows, &deleted);
        if (r < 0)
                log_warning_errno(r, "pruning audit rows to keep free space failed");
        else
                m->room_cut = tail - m->room_rows;
}

static void on_committed(void *userdata, int r) {
        Manager *m = userdata;

        /* The replies depend on the commit only; audit.head's fsyncs need not delay them. */
        if (r >= 0) {
                audit_head_update(m->head, m->ctx.store);
                keep_room(m);
        }
}

/* ---- start-up ---- */

/* Creates dir when absent; refuses one we do not own or others may write to. */
static int ensure_dir(const char *path, mode_t mode) {
        char err[PATH_MAX + 256];
        int r;

        if (mkdir(path, mode) < 0 && errno != EEXIST)
                return log_error_errno(-errno, "cannot create %s", path);
        r = sg_check_own_dir(path, mode, err, sizeof err);
        if (r < 0)
                log_error("%s", err);
        return r;
}

static int load_keys(Manager *m) {
        char path[PATH_MAX + 32], err[512];
        bool created = false;
        int r;

        if (m->config.key_file[0])
                snprintf(path, sizeof path, "%s", m->config.key_file);
        else
                snprintf(path, sizeof path, "%s/audit.key", m->config.state_dir);
        m->ctx.audit_key = m->audit_key = sodium_malloc(SG_AUDIT_KEY_BYTES);
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

        /* The token key only ever checks tokens this daemon issued: losing it costs the
         * outstanding tokens, nothing else. */
        snprintf(path, sizeof path, "%s/token.key", m->config.state_dir);
        m->ctx.token_key = m->token_key = sodium_malloc(SG_TOKEN_KEY_BYTES);
        if (!m->token_key)
                return -ENOMEM;
        r = sg_key_load(TOKEN_KEY_CREDENTIAL, path, true, m->token_key, SG_TOKEN_KEY_BYTES, &created, err,
                        sizeof err);
        if (r < 0) {
                log_error("token key: %s", err);
                return r;
        }
        (void) sodium_mprotect_readonly(m->token_key);
        if (created)
                log_notice("generated a new token key at %s", path);

        if (m->config.seal_public_key[0]) {
                r = sg_key_read(m->config.seal_public_key, m->seal_pk, sizeof m->seal_pk, err, sizeof err);
                if (r < 0) {
                        log_error("seal public key: %s", err);
                        return r;
                }
                m->ctx.seal_pk = m->seal_pk;
        }
        return 0;
}

static int replay_attempt(void *userdata, uint64_t id, uint64_t time_usec, const char *user,
                          const char *source, enum sg_attempt_state state) {
        Manager *m = userdata;

        (void) id;
        if (state == SG_ATTEMPT_SUCCESS)
                sg_policy_replay_success(m->ctx.policy, user, source, time_usec);
        else if (state == SG_ATTEMPT_VOID)
                sg_policy_replay_void(m->ctx.policy, user, source, time_usec);
        else
                sg_policy_replay_failure(m->ctx.policy, user, source, time_usec);
        return 0;
}

static int replay_fleet_lock(void *userdata, const struct sg_fleet_lock_row *row) {
        Manager *m = userdata;
        struct sg_fleet_lock l = { .until_usec = row->until_usec, .decision_id = row->decision_id,
                                   .applied_usec = row->applied_usec };
        int kind = sg_lock_kind_from_name(row->kind), r = -EINVAL;

        /* Checked again as on arrival, against today's config: a row that no longer names a
         * key this host counts on (ipv6_prefix changed) or that is not ours is skipped. */
        if ((kind == SG_LOCK_SOURCE || kind == SG_LOCK_SPRAY) && sg_fleet_host_id_valid(row->origin_host) &&
            sg_policy_fleet_key(m->ctx.policy, (enum sg_lock_kind) kind, row->key, l.key) == 0 &&
            strcmp(l.key, row->key) == 0) {
                l.kind = (enum sg_lock_kind) kind;
                memcpy(l.origin_host, row->origin_host, SG_FLEET_HOST_ID_LEN + 1);
                r = sg_policy_fleet_lock(m->ctx.policy, &l);
        }
        if (r < 0)
                log_warning_errno(r, "ignoring stored fleet lock \"%s\" of kind \"%s\"", row->key, row->kind);
        return 0;
}

static int replay_lock(void *userdata, const struct sg_lock_row *l) {
        Manager *m = userdata;
        struct sg_lock_info info;
        int r;

        r = sg_lock_info_from_row(l, &info);
        if (r < 0) {
                /* A row from a newer build, or one no policy wrote: never load a cut key. */
                log_warning_errno(r, "ignoring stored lock \"%s\" of kind \"%s\"", l->key ? l->key : "",
                                  l->kind ? l->kind : "");
                return 0;
        }
        sg_policy_load_lock(m->ctx.policy, &info);
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

        r = ensure_dir(m->config.state_dir, 0700);
        if (r < 0)
                return r;
        r = load_keys(m);
        if (r < 0)
                return r;
        o.audit_key = m->audit_key;
        r = sg_store_open(&o, &m->ctx.store, err, sizeof err);
        if (r < 0) {
                log_error("%s", err);
                return r;
        }
        policy_config(&m->config, &m->allowlist, &pc);
        r = sg_policy_new(&pc, &m->ctx.policy);
        if (r < 0)
                return log_error_errno(r, "cannot create the rate limiter");

        /* A login in flight when we died counts as a failure ("abandoned"). */
        r = sg_store_attempt_abandon_pending(m->ctx.store, &abandoned);
        if (r < 0)
                return store_failed(m, r, "cannot settle pending attempts");
        r = sg_store_lock_foreach(m->ctx.store, replay_lock, m);
        if (r < 0)
                return store_failed(m, r, "cannot load locks");
        r = sg_store_fleet_lock_foreach(m->ctx.store, replay_fleet_lock, m);
        if (r < 0)
                return store_failed(m, r, "cannot load fleet locks");
        r = sg_store_attempt_foreach(m->ctx.store, now > pc.window_usec ? now - pc.window_usec : 0,
                                     replay_attempt, m);
        if (r < 0)
                return store_failed(m, r, "cannot replay attempts");
        if (abandoned > 0)
                log_notice("%" PRIu64 " login attempts were in flight at the last stop; counted as failures",
                           abandoned);
        return audit_head_new(m->config.state_dir, m->config.sync_full, &m->head);
}

/* ---- forward-secure epochs (docs/threat-model.md) ---- */

/* Replaces audit.fss with the current epoch's key; until that works the old key stays on
 * disk, so it is retried at every epoch change. */
static void epoch_save(Manager *m) {
        int r = audit_epoch_save(m->epoch);

        m->epoch_unsaved = r < 0;
        if (r < 0)
                log_error_errno(r, "cannot replace %s/" AUDIT_EPOCH_FILE " with the key of epoch %" PRIu64
                                "; the previous epoch's key stays on disk until it can", m->config.state_dir,
                                audit_epoch_current(m->epoch));
}

/* Ends the current epoch with its seal (in the transaction given), then moves the key on:
 * rows appended from here on belong to the next epoch. The old key is wiped in memory here;
 * the caller commits, then saves the file, before the loop acknowledges any new row. */
static int epoch_seal_and_step(Manager *m, uint64_t now) {
        int r;

        r = sg_store_audit_seal(m->ctx.store, now);
        if (r < 0)
                return r;
        audit_epoch_skip_to(m->epoch, audit_epoch_current(m->epoch) + 1);
        return sg_store_audit_set_epoch(m->ctx.store, audit_epoch_current(m->epoch), audit_epoch_key(m->epoch));
}

/* At start: the key file against the log, the static-key rows sealed once, the epoch the
 * daemon stopped in sealed, and a new epoch begun. */
static int epochs_start(Manager *m) {
        char err[PATH_MAX + 256] = "";
        int64_t last = -1;
        uint64_t e;
        int r, q;

        m->epoch_note[0] = '\0';
        r = audit_epoch_load(m->config.state_dir, &m->epoch, err, sizeof err);
        if (r < 0) {
                log_error("forward-secure audit key: %s", err);
                return r;
        }
        r = sg_store_audit_last_epoch(m->ctx.store, &last);
        if (r < 0)
                return store_failed(m, r, "cannot read the audit epochs");
        if (!m->epoch) {
                if (last >= 0) {
                        snprintf(m->epoch_note, sizeof m->epoch_note,
                                 AUDIT_EPOCH_FILE " is missing but the audit log has forward-secure rows up to "
                                 "epoch %" PRId64 " (the key file was removed); new rows use the static key and "
                                 "audit verify reports them", last);
                        log_error("%s", m->epoch_note);
                } else
                        log_notice("forward-secure audit keys are not set up: whoever gets root can rewrite past "
                                   "audit rows undetected; run \"secguardctl audit setup-keys\", keep the seed it "
                                   "prints off this host, and restart secguardd");
                return 0;
        }
        e = audit_epoch_current(m->epoch);
        if (last > (int64_t) e) {
                snprintf(m->epoch_note, sizeof m->epoch_note,
                         AUDIT_EPOCH_FILE " holds the key of epoch %" PRIu64 " but the audit log reaches epoch %"
                         PRId64 ": an older key file was put back; continuing after epoch %" PRId64, e, last, last);
                log_error("%s", m->epoch_note);
                audit_epoch_skip_to(m->epoch, (uint64_t) last);
        }
        r = sg_store_audit_set_epoch(m->ctx.store, audit_epoch_current(m->epoch), audit_epoch_key(m->epoch));
        if (r >= 0)
                r = sg_store_begin(m->ctx.store);
        if (r < 0)
                return store_failed(m, r, "cannot begin the audit epoch");
        r = sg_store_audit_seal_static(m->ctx.store, sg_now_real_usec());
        if (r >= 0)
                r = epoch_seal_and_step(m, sg_now_real_usec());
        q = r >= 0 ? sg_store_commit(m->ctx.store) : r;
        if (q < 0) {
                (void) sg_store_rollback(m->ctx.store);
                return store_failed(m, q, "cannot seal the audit epoch");
        }
        epoch_save(m);
        /* Availability first (a full disk must not lock every login out): go on, loudly; the
         * old key stays on disk until a retry at the next epoch works. */
        if (m->epoch_unsaved && !m->epoch_note[0])
                snprintf(m->epoch_note, sizeof m->epoch_note, "cannot replace " AUDIT_EPOCH_FILE ": the key of "
                         "epoch %" PRIu64 " stays on disk until it can", audit_epoch_current(m->epoch) - 1);
        log_info("audit epoch %" PRIu64 " begins (forward-secure keys; the next every %" PRIu64 " s)",
                 audit_epoch_current(m->epoch), m->config.seal_interval_sec);
        return 0;
}

/* Ends the current epoch and begins the next, between two group commits. */
static void epoch_change(Manager *m) {
        int r;

        r = txn_begin(m->ctx.txn);
        if (r >= 0)
                r = epoch_seal_and_step(m, sg_now_real_usec());
        if (r < 0)
                log_error_errno(r, "cannot end audit epoch %" PRIu64 "; it goes on", audit_epoch_current(m->epoch));
        else {
                /* Rows appended while the commit's replies go out are the new epoch's, and are
                 * acknowledged only by a later commit, after the file is replaced below. */
                (void) txn_commit(m->ctx.txn);
                epoch_save(m);
        }
        if (m->epoch_unsaved && r < 0)
                epoch_save(m);
}

static int on_epoch_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        (void) usec;
        epoch_change(m);
        (void) sd_event_source_set_time_relative(s, m->config.seal_interval_sec * USEC_PER_SEC);
        return sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
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
        r = ensure_dir(dir, 0755);
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
                if (conn_set_add(m->ctx.conns, c) < 0)
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
        /* manager_free() closes them, settling what they had open. */
        log_warning("%zu connections still open after %llu s; closing them", conn_set_count(m->ctx.conns),
                    DRAIN_USEC / USEC_PER_SEC);
        return sd_event_exit(m->event, 0);
}

static void on_drained(void *userdata) {
        Manager *m = userdata;

        if (m->stopping)
                (void) sd_event_exit(m->event, 0);
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
        log_info("stopping: finishing %zu open connections", conn_set_count(m->ctx.conns));
        m->listen_source = sd_event_source_disable_unref(m->listen_source);
        dispatch_flush_suppressed(&m->ctx, true); /* held-back counts before the last row */
        r = context_emit(&m->ctx, &ev, false);
        if (r < 0)
                log_error_errno(r, "cannot record daemon_stop");
        /* Idle connections go now; one with a request or attempt in flight may finish. */
        conn_set_close_idle(m->ctx.conns, dispatch_busy);
        if (conn_set_count(m->ctx.conns) == 0)
                return sd_event_exit(m->event, 0);
        return sd_event_add_time_relative(m->event, &m->drain_timer, CLOCK_MONOTONIC, DRAIN_USEC, 0,
                                          on_drain_timeout, m);
}

static int on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;
        struct sg_config c;
        struct sg_cidr_list allow = { 0 };
        struct sg_policy_config pc;
        const char *bad = NULL;
        int missing;

        (void) s;
        (void) si;
        missing = load_config(&m->args, &c);
        if (missing < 0) {
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
        policy_config(&c, &allow, &pc);
        sg_policy_set_config(m->ctx.policy, &pc); /* keeps every counter and lock */
        sg_cidr_list_free(&m->allowlist);
        m->allowlist = allow;
        m->config = c;
        apply_limits(m);
        m->config_missing = missing > 0;
        if (m->config_missing)
                log_info("configuration reloaded: no config file at %s, using built-in defaults",
                         m->args.config_path);
        else
                log_info("configuration reloaded from %s", m->args.config_path);
        return 0;
}

static int on_prune(sd_event_source *s, uint64_t usec, void *userdata);

/* One slice of audit retention in the group commit's transaction; while rows remain past
 * retention, the next slice runs from a timer, after what the loop has waiting. */
static int prune_slice(Manager *m) {
        uint64_t now = sg_now_real_usec(), deleted = 0;
        bool more = false;
        int r;

        if (!m->config.max_age_sec && !m->config.max_rows)
                return 0;
        r = txn_begin(m->ctx.txn);
        if (r < 0)
                return r;
        r = sg_store_audit_prune_some(m->ctx.store,
                                      m->config.max_age_sec ? now - m->config.max_age_sec * USEC_PER_SEC : 0,
                                      m->config.max_rows, PRUNE_SLICE_ROWS, &deleted, &more);
        if (r < 0)
                return r;
        m->pruned += deleted;
        /* A slice is work like a request: the held replies of logins served meanwhile (read
         * ahead, connection.c) go with the next commit txn_after_request() lets through,
         * not with the whole retention run's. */
        txn_after_request(m->ctx.txn);
        if (more) {
                if (!m->prune_timer)
                        return sd_event_add_time_relative(m->event, &m->prune_timer, CLOCK_MONOTONIC,
                                                          PRUNE_PAUSE_USEC, 0, on_prune, m);
                (void) sd_event_source_set_time_relative(m->prune_timer, PRUNE_PAUSE_USEC);
                return sd_event_source_set_enabled(m->prune_timer, SD_EVENT_ONESHOT);
        }
        if (m->pruned)
                log_info("pruned %" PRIu64 " audit rows past retention", m->pruned);
        m->pruned = 0;
        return 0;
}

static int on_prune(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        int r;

        (void) s;
        (void) usec;
        r = prune_slice(m);
        if (r < 0) {
                log_warning_errno(r, "audit retention failed after %" PRIu64 " rows", m->pruned);
                m->pruned = 0;
        }
        return 0;
}

static bool pruning(const Manager *m) {
        int enabled = SD_EVENT_OFF;

        return m->prune_timer && sd_event_source_get_enabled(m->prune_timer, &enabled) >= 0 &&
               enabled != SD_EVENT_OFF;
}

static int maintenance(Manager *m) {
        uint64_t now = sg_now_real_usec();
        uint64_t keep_attempts = m->config.window_sec * USEC_PER_SEC;
        int r;

        r = txn_begin(m->ctx.txn);
        if (r < 0)
                return r;
        dispatch_flush_suppressed(&m->ctx, false);
        sg_policy_gc(m->ctx.policy, now);
        r = sg_store_attempt_prune(m->ctx.store, now > keep_attempts ? now - keep_attempts : 0);
        if (r >= 0)
                r = sg_store_lock_prune(m->ctx.store, now - m->config.history_sec * USEC_PER_SEC);
        if (r >= 0)
                r = sg_store_fleet_lock_prune(m->ctx.store, now);
        if (r >= 0)
                r = tokens_prune(m->ctx.store, now);
        if (r >= 0 && !pruning(m))
                r = prune_slice(m);
        if (r < 0)
                log_warning_errno(r, "maintenance failed");
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
        char detail[1024], missing_tail[256], err[1024] = "";
        sigset_t mask;
        int r;

        m->ctx.start_mono_usec = sg_now_mono_usec();
        if (m->config_missing)
                log_notice("no config file at %s, using built-in defaults", m->args.config_path);
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
        if (r >= 0)
                r = epochs_start(m);
        if (r < 0)
                return r;
        audit_head_check(m->head, m->ctx.store, missing_tail, sizeof missing_tail);
        r = worker_new(m->event, m->config.state_dir, m->audit_key, &m->ctx.worker, err, sizeof err);
        if (r < 0) {
                log_error("%s", err[0] ? err : "cannot start the audit worker");
                return r;
        }
        if ((r = txn_new(m->event, m->ctx.store, on_committed, m, &m->ctx.txn)) < 0 ||
            (r = permits_new(m->event, &m->ctx.permits)) < 0 ||
            (r = charges_new(&m->ctx.charges)) < 0 ||
            (r = sessions_new(&m->ctx.sessions)) < 0 ||
            (r = conn_set_new(m->event, &dispatch_conn_ops, &m->ctx, &m->ctx.conns)) < 0)
                return log_error_errno(r, "cannot set up the request layer");
        m->ctx.event = m->event;
        r = session_restore(&m->ctx);
        if (r < 0)
                return store_failed(m, r, "cannot load the open sessions");
        r = sessions_start_timer(m->ctx.sessions, m->event, session_tick, &m->ctx);
        if (r < 0)
                return log_error_errno(r, "cannot start the session timer");
        conn_set_on_drained(m->ctx.conns, on_drained, m);
        apply_limits(m);
        r = sd_event_add_time_relative(m->event, &m->maintenance_timer, CLOCK_MONOTONIC,
                                       MAINTENANCE_USEC, 0, on_maintenance, m);
        if (r < 0)
                return r;
        if (m->epoch) {
                r = sd_event_add_time_relative(m->event, &m->epoch_timer, CLOCK_MONOTONIC,
                                               m->config.seal_interval_sec * USEC_PER_SEC, 0, on_epoch_timer, m);
                if (r < 0)
                        return log_error_errno(r, "cannot start the audit epoch timer");
        }
        r = maintenance(m);
        if (r == -EBADMSG)
                return store_failed(m, r, "maintenance");

        r = listen_socket(m);
        if (r < 0)
                return r;
        ev.time_usec = sg_now_real_usec();
        /* A note on audit.head is recorded in this row for good; a gap itself lives on in
         * the chain ids. */
        snprintf(detail, sizeof detail, "version %s, %u hash permits%s%s%s%s", SECGUARD_VERSION,
                 permits_max(m->ctx.permits), missing_tail[0] ? "; " : "", missing_tail,
                 m->epoch_note[0] ? "; " : "", m->epoch_note);
        ev.detail = detail;
        r = context_emit(&m->ctx, &ev, false);
        if (r < 0)
                return store_failed(m, r, "cannot write to the audit log");
        (void) txn_commit(m->ctx.txn);
        log_info("listening on %s%s", m->listen_from_systemd ? "the socket from systemd" : m->config.socket, "");
        (void) sd_notify(0, "READY=1");
        return 0;
}

int manager_run(Manager *m) {
        int r = sd_event_loop(m->event);

        (void) txn_commit(m->ctx.txn);
        /* Seal the last epoch now rather than at the next start: while secguardd is down the
         * disk then holds only a key no row was written under. */
        if (m->epoch)
                epoch_change(m);
        return r < 0 ? 1 : r;
}
