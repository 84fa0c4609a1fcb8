/* SPDX-License-Identifier: MIT */
#include "fleet-util.h"

#include "cidr.h"
#include "errmsg.h"
#include "keyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>
#include <systemd/sd-id128.h>

#define CRED_NAME "secguard-fleet-password"
#define MAX_LOCK_SECS (100ULL * 365 * 86400)

bool fleet_kind_valid(const char *kind) {
        return kind && (strcmp(kind, "source") == 0 || strcmp(kind, "spray") == 0);
}

bool fleet_key_valid(const char *key) {
        struct sg_cidr c;

        if (!key || !*key || strlen(key) > FLEET_KEY_MAX)
                return false;
        /* sg_cidr_parse would take a '%zone'? No: inet_pton refuses it; scope ids stay local. */
        return sg_cidr_parse(key, &c) == 0;
}

bool fleet_host_id_valid(const char *s) {
        size_t i;

        if (!s)
                return false;
        for (i = 0; s[i]; i++)
                if (i >= FLEET_HOST_ID_LEN || !((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
                        return false;
        return i == FLEET_HOST_ID_LEN;
}

int fleet_parse_lockout(const char *reason, const char *detail, char *key, uint64_t *ret_secs) {
        const char *p, *sp;
        size_t kl;
        char *end;
        unsigned long long n;

        if (!fleet_kind_valid(reason) || !detail)
                return 0;
        kl = strlen(reason);
        if (strncmp(detail, reason, kl) != 0 || detail[kl] != ' ')
                return 0;
        p = detail + kl + 1;
        sp = strchr(p, ' ');
        if (!sp || (size_t) (sp - p) > FLEET_KEY_MAX || sp == p)
                return 0;
        memcpy(key, p, (size_t) (sp - p));
        key[sp - p] = '\0';
        if (!fleet_key_valid(key))
                return 0;
        if (strncmp(sp, " locked for ", 12) != 0)
                return 0;
        p = sp + 12;
        if (*p < '0' || *p > '9')
                return 0;
        errno = 0;
        n = strtoull(p, &end, 10);
        if (errno || strncmp(end, " s", 2) != 0 || n == 0 || n > MAX_LOCK_SECS)
                return 0;
        *ret_secs = n;
        return 1;
}

int fleet_parse_lifted(const char *detail, const char **ret_kind, char *key) {
        static const char *const kinds[] = { "source", "spray" };
        static const char tail[] = " lock lifted";
        const char *p, *sp;

        if (!detail)
                return 0;
        for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
                size_t kl = strlen(kinds[i]);

                if (strncmp(detail, kinds[i], kl) != 0 || detail[kl] != ' ')
                        continue;
                p = detail + kl + 1;
                sp = strchr(p, ' ');
                if (!sp || sp == p || (size_t) (sp - p) > FLEET_KEY_MAX)
                        return 0;
                if (strncmp(sp, tail, sizeof tail - 1) != 0 || (sp[sizeof tail - 1] != '\0' && sp[sizeof tail - 1] != ':'))
                        return 0;
                memcpy(key, p, (size_t) (sp - p));
                key[sp - p] = '\0';
                if (!fleet_key_valid(key))
                        return 0;
                *ret_kind = kinds[i];
                return 1;
        }
        return 0;
}

int fleet_decision_check(const struct fleet_decision *d, uint64_t now_usec, uint64_t max_lock_usec,
                         const char **why, char *msg, size_t msgsize) {
        if (!fleet_kind_valid(d->kind)) {
                *why = "bad_kind";
                return sg_errmsg(msg, msgsize, -EINVAL, "kind is not source or spray");
        }
        if (!fleet_key_valid(d->key)) {
                *why = "bad_key";
                return sg_errmsg(msg, msgsize, -EINVAL, "key is not an IP address or prefix");
        }
        if (!fleet_host_id_valid(d->origin_host)) {
                *why = "bad_host";
                return sg_errmsg(msg, msgsize, -EINVAL, "origin host is not 32 lowercase hex digits");
        }
        if (d->lock) {
                if (d->until_usec <= 0) {
                        *why = "bad_until";
                        return sg_errmsg(msg, msgsize, -EINVAL, "until is not a time");
                }
                /* Not hostile, only late (a backlog shipped after an outage): nothing to do. */
                if ((uint64_t) d->until_usec <= now_usec) {
                        *why = "expired";
                        return sg_errmsg(msg, msgsize, -ESTALE, "the lock ended before it could be applied");
                }
                if ((uint64_t) d->until_usec - now_usec > max_lock_usec) {
                        *why = "bad_until";
                        return sg_errmsg(msg, msgsize, -EINVAL,
                                         "until is %" PRIu64 " s ahead, more than max_lock_time (%" PRIu64 " s)",
                                         ((uint64_t) d->until_usec - now_usec) / 1000000, max_lock_usec / 1000000);
                }
                if (d->reason && strcmp(d->reason, "lockout") != 0 && strcmp(d->reason, "fleet_failures") != 0) {
                        *why = "bad_reason";
                        return sg_errmsg(msg, msgsize, -EINVAL, "reason is not lockout or fleet_failures");
                }
        } else if (d->reason && strcmp(d->reason, "fleet") != 0 && strcmp(d->reason, "lifted") != 0) {
                *why = "bad_reason";
                return sg_errmsg(msg, msgsize, -EINVAL, "reason is not fleet or lifted");
        }
        *why = NULL;
        return 0;
}

int fleet_host_id(const char *cfg_host_id, char *out, char *err, size_t errsize) {
        sd_id128_t app, id;
        int r;

        if (cfg_host_id && *cfg_host_id) {
                if (!fleet_host_id_valid(cfg_host_id))
                        return sg_errmsg(err, errsize, -EINVAL, "[fleet] host_id must be 32 lowercase hex digits");
                memcpy(out, cfg_host_id, FLEET_HOST_ID_LEN + 1);
                return 0;
        }
        r = sd_id128_from_string(FLEET_APP_ID, &app);
        if (r < 0)
                return sg_errmsg(err, errsize, r, "bad built-in app id");
        r = sd_id128_get_machine_app_specific(app, &id);
        if (r < 0) {
                errno = -r;
                return sg_errmsg(err, errsize, r, "cannot derive the host id from /etc/machine-id: %m "
                                 "(fix: set [fleet] host_id)");
        }
        sd_id128_to_string(id, out);
        return 0;
}

static int read_secret_file(const char *path, char *out, size_t outsize, char *err, size_t errsize) {
        struct stat st;
        size_t got = 0;
        int fd, r = 0;

        fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0) {
                if (errno == ELOOP)
                        return sg_errmsg(err, errsize, -ELOOP, "%s is a symbolic link; refusing to follow it", path);
                return sg_errmsg(err, errsize, -errno, "cannot open %s: %m", path);
        }
        if (fstat(fd, &st) < 0)
                r = sg_errmsg(err, errsize, -errno, "cannot stat %s: %m", path);
        else if (!S_ISREG(st.st_mode))
                r = sg_errmsg(err, errsize, -EPERM, "%s is not a regular file", path);
        else if (st.st_uid != geteuid() && st.st_uid != 0)
                r = sg_errmsg(err, errsize, -EPERM, "%s is owned by uid %u (fix: chown %u %s)", path,
                              (unsigned) st.st_uid, (unsigned) geteuid(), path);
        else if (st.st_mode & 077)
                r = sg_errmsg(err, errsize, -EPERM,
                              "%s has mode %04o: group or others may read the password (fix: chmod 0600 %s)",
                              path, (unsigned) (st.st_mode & 07777), path);
        else if (st.st_size <= 0 || (uint64_t) st.st_size >= outsize)
                r = sg_errmsg(err, errsize, -EBADMSG, "%s holds %lld bytes, expected 1 to %zu", path,
                              (long long) st.st_size, outsize - 1);
        if (r == 0) {
                got = (size_t) st.st_size;
                r = sg_read_exact(fd, out, got, path, err, errsize);
        }
        close(fd);
        if (r == 0) {
                if (got > 0 && out[got - 1] == '\n')
                        got--;
                out[got] = '\0';
                if (got == 0 || memchr(out, '\0', got) || memchr(out, '\n', got) || memchr(out, '\r', got))
                        r = sg_errmsg(err, errsize, -EBADMSG,
                                      "%s must hold the password on one line, nothing else", path);
        }
        if (r < 0)
                sodium_memzero(out, outsize);
        return r < 0 ? r : 1;
}

int fleet_read_password(const char *path, char *out, size_t outsize, char *err, size_t errsize) {
        const char *creds = getenv("CREDENTIALS_DIRECTORY");

        if (creds && *creds) {
                char p[4096];

                if ((size_t) snprintf(p, sizeof p, "%s/%s", creds, CRED_NAME) < sizeof p && access(p, F_OK) == 0)
                        return read_secret_file(p, out, outsize, err, errsize);
        }
        if (!path || !*path)
                return 0;
        return read_secret_file(path, out, outsize, err, errsize);
}

bool fleet_utf8_valid(const char *str, size_t len) {
        const unsigned char *s = (const unsigned char *) str;
        size_t i = 0;

        while (i < len) {
                unsigned char c = s[i];
                uint32_t cp;
                size_t n, k;

                if (c < 0x80) {
                        i++;
                        continue;
                }
                if (c >= 0xc2 && c <= 0xdf)
                        n = 1, cp = c & 0x1f;
                else if (c >= 0xe0 && c <= 0xef)
                        n = 2, cp = c & 0x0f;
                else if (c >= 0xf0 && c <= 0xf4)
                        n = 3, cp = c & 0x07;
                else
                        return false;
                if (len - i <= n)
                        return false;
                for (k = 1; k <= n; k++) {
                        if ((s[i + k] & 0xc0) != 0x80)
                                return false;
                        cp = (cp << 6) | (s[i + k] & 0x3f);
                }
                if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
                    (cp >= 0xd800 && cp <= 0xdfff))
                        return false;
                i += n + 1;
        }
        return true;
}

struct pieces {
        struct fleet_range *out;
        bool *is_pruned;
        size_t outmax, n;
        struct fleet_range last; /* the newest piece, written or not */
        bool last_pruned;
};

static void put_piece(struct pieces *p, int64_t first, int64_t last, bool pruned) {
        if (p->n > 0 && p->last_pruned == pruned && p->last.last + 1 == first) {
                p->last.last = last; /* adjacent reported ranges read as one */
        } else {
                p->n++;
                p->last = (struct fleet_range) { first, last };
                p->last_pruned = pruned;
        }
        if (p->n <= p->outmax) {
                p->out[p->n - 1] = p->last;
                p->is_pruned[p->n - 1] = pruned;
        }
}

size_t fleet_gap_split(struct fleet_range gap, const struct fleet_range *pruned, size_t npruned,
                       struct fleet_range *out, bool *is_pruned, size_t outmax) {
        struct pieces pc = { .out = out, .is_pruned = is_pruned, .outmax = outmax };
        int64_t cur = gap.first;

        while (cur <= gap.last) {
                /* The reported range covering cur, else the nearest one starting after it. */
                int64_t next_start = gap.last + 1, cover_end = -1;

                for (size_t i = 0; i < npruned; i++) {
                        const struct fleet_range *p = &pruned[i];

                        if (p->first > p->last || p->last < cur)
                                continue;
                        if (p->first <= cur) {
                                if (p->last > cover_end)
                                        cover_end = p->last;
                        } else if (p->first < next_start) {
                                next_start = p->first;
                        }
                }
                if (cover_end >= cur) {
                        int64_t end = cover_end < gap.last ? cover_end : gap.last;

                        put_piece(&pc, cur, end, true);
                        if (end == INT64_MAX)
                                break;
                        cur = end + 1;
                } else {
                        put_piece(&pc, cur, next_start - 1, false);
                        cur = next_start;
                }
        }
        return pc.n;
}
