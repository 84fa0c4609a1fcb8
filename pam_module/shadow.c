/* SPDX-License-Identifier: MIT */
/*
 * shadow(5) reading and atomic replacement of one user's hash. The file holds every user's
 * hash, so each buffer that saw its bytes is wiped before it is freed.
 */
#include "shadow.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* glibc's <shadow.h> is hidden behind ours (pam_module/ is on the include path), so declare
 * the two functions we need from it; they have had these signatures since SVR4. */
extern int lckpwdf(void);
extern int ulckpwdf(void);

#define SHADOW_FIELDS 9
#define SHADOW_FILE_MAX (64U * 1024 * 1024) /* far above any real shadow file */
#define SHADOW_LINE_MAX 4096                /* longer lines are malformed (skipped) */
#define SHADOW_USER_MAX 256
#define LOCK_TIMEOUT_NSEC (5LL * 1000 * 1000 * 1000)
#define LOCK_POLL_NSEC (5 * 1000 * 1000)
#define LOCK_SUFFIX ".secguard.lock"
#define SYSTEM_SHADOW "/etc/shadow"

struct field {
        const char *p;
        size_t len;
};

/* Strict non-negative decimal; an empty field is -1 ("not set" in shadow(5)). */
static int parse_long_field(const struct field *f, long *ret) {
        long v = 0;

        if (f->len == 0) {
                *ret = -1;
                return 0;
        }
        for (size_t i = 0; i < f->len; i++) {
                char c = f->p[i];
                if (c < '0' || c > '9')
                        return -EINVAL;
                if (v > (LONG_MAX - (c - '0')) / 10)
                        return -EINVAL;
                v = v * 10 + (c - '0');
        }
        *ret = v;
        return 0;
}

/* Splits line into exactly nine colon-separated fields. */
static int split_fields(const char *line, size_t len, struct field f[SHADOW_FIELDS]) {
        size_t start = 0, n = 0;

        for (size_t i = 0; i <= len; i++) {
                if (i < len && line[i] != ':')
                        continue;
                if (n == SHADOW_FIELDS)
                        return -EINVAL; /* a ninth colon */
                f[n].p = line + start;
                f[n].len = i - start;
                n++;
                start = i + 1;
        }
        return n == SHADOW_FIELDS ? 0 : -EINVAL;
}

static bool name_is(const char *name, size_t name_len, const char *user) {
        size_t ulen = strlen(user);

        return name_len == ulen && memcmp(name, user, ulen) == 0;
}

/* Whether line belongs to user, judged only by its first field (also for malformed lines). */
static bool line_is_user(const char *line, size_t len, const char *user) {
        const char *colon = memchr(line, ':', len);

        return colon && name_is(line, (size_t) (colon - line), user);
}

static bool user_valid(const char *user) {
        size_t n;

        if (!user)
                return false;
        n = strnlen(user, SHADOW_USER_MAX + 1);
        return n > 0 && n <= SHADOW_USER_MAX && !strpbrk(user, ":\n");
}

int sg_shadow_parse_line(const char *line, size_t len, const char *user, struct sg_shadow_entry *ret) {
        struct field f[SHADOW_FIELDS];
        struct sg_shadow_entry e;
        long *const numeric[] = { &e.last_change, &e.min_days, &e.max_days, &e.warn_days,
                                  &e.inactive_days, &e.expire };

        if (!line || !user || !ret || !user_valid(user))
                return -EINVAL;
        /* A NUL would cut the hash short in every C consumer; a newline is a second line. */
        if (memchr(line, '\0', len) || memchr(line, '\n', len))
                return -EINVAL;
        if (split_fields(line, len, f) < 0)
                return -EINVAL;
        if (f[0].len == 0 || f[1].len >= SG_HASH_MAX)
                return -EINVAL;
        for (size_t i = 0; i < sizeof numeric / sizeof numeric[0]; i++)
                if (parse_long_field(&f[2 + i], numeric[i]) < 0)
                        return -EINVAL;
        if (!name_is(f[0].p, f[0].len, user))
                return 0;
        memcpy(e.hash, f[1].p, f[1].len);
        e.hash[f[1].len] = '\0';
        *ret = e;
        sodium_memzero(&e, sizeof e);
        return 1;
}

static void buf_free(char *buf, size_t size) {
        if (!buf)
                return;
        sodium_memzero(buf, size);
        free(buf);
}

/* Opens a regular file without following a symlink (or blocking on a FIFO). */
static int open_regular(const char *path, struct stat *ret_st) {
        struct stat st;
        int fd;

        fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        if (!S_ISREG(st.st_mode)) {
                close(fd);
                return -EINVAL;
        }
        *ret_st = st;
        return fd;
}

/* Reads fd to EOF into a heap buffer. Growing copies by hand, because realloc() could leave
 * an unwiped copy of other users' hashes behind. */
static int read_all(int fd, size_t size_hint, char **ret_buf, size_t *ret_len, size_t *ret_cap) {
        size_t cap, len = 0;
        char *buf;

        cap = size_hint < SHADOW_FILE_MAX ? size_hint + 1 : (size_t) SHADOW_FILE_MAX + 1;
        if (cap < 4096)
                cap = 4096;
        buf = malloc(cap);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t n;

                if (len == cap) {
                        size_t ncap = cap * 2 > (size_t) SHADOW_FILE_MAX + 1 ?
                                              (size_t) SHADOW_FILE_MAX + 1 : cap * 2;
                        char *nbuf;

                        if (cap > SHADOW_FILE_MAX) {
                                buf_free(buf, cap);
                                return -EFBIG;
                        }
                        nbuf = malloc(ncap);
                        if (!nbuf) {
                                buf_free(buf, cap);
                                return -ENOMEM;
                        }
                        memcpy(nbuf, buf, len);
                        buf_free(buf, cap);
                        buf = nbuf;
                        cap = ncap;
                }
                n = read(fd, buf + len, cap - len);
                if (n < 0) {
                        int r = -errno;
                        if (r == -EINTR)
                                continue;
                        buf_free(buf, cap);
                        return r;
                }
                if (n == 0)
                        break;
                len += (size_t) n;
        }
        if (len > SHADOW_FILE_MAX) {
                buf_free(buf, cap);
                return -EFBIG;
        }
        *ret_buf = buf;
        *ret_len = len;
        *ret_cap = cap;
        return 0;
}

static int read_file(const char *path, struct stat *ret_st, char **ret_buf, size_t *ret_len,
                     size_t *ret_cap) {
        struct stat st;
        int fd, r;

        fd = open_regular(path, &st);
        if (fd < 0)
                return fd;
        r = read_all(fd, (size_t) st.st_size, ret_buf, ret_len, ret_cap);
        close(fd);
        if (r < 0)
                return r;
        if (ret_st)
                *ret_st = st;
        return 0;
}

/* Finds user's first line in buf. 1 with its offset/length and parsed entry, 0 when absent,
 * -EINVAL when user's line is malformed. Other users' malformed lines are not our business. */
static int find_user(const char *buf, size_t len, const char *user, size_t *ret_off,
                     size_t *ret_len, struct sg_shadow_entry *ret) {
        size_t off = 0;

        while (off < len) {
                const char *nl = memchr(buf + off, '\n', len - off);
                size_t ll = nl ? (size_t) (nl - (buf + off)) : len - off;
                const char *line = buf + off;
                int r;

                if (ll > SHADOW_LINE_MAX) {
                        if (line_is_user(line, ll, user))
                                return -EINVAL;
                } else {
                        r = sg_shadow_parse_line(line, ll, user, ret);
                        if (r == 1) {
                                *ret_off = off;
                                *ret_len = ll;
                                return 1;
                        }
                        if (r < 0 && line_is_user(line, ll, user))
                                return -EINVAL;
                }
                off += ll + 1;
        }
        return 0;
}

int sg_shadow_lookup(const char *path, const char *user, struct sg_shadow_entry *ret) {
        struct sg_shadow_entry e;
        size_t len, cap, off, ll;
        char *buf = NULL;
        int r;

        if (!path || !ret || !user_valid(user))
                return -EINVAL;
        r = read_file(path, NULL, &buf, &len, &cap);
        if (r < 0)
                return r;
        r = find_user(buf, len, user, &off, &ll, &e);
        buf_free(buf, cap);
        if (r == 0)
                return -ENOENT;
        if (r < 0)
                return r;
        *ret = e;
        sodium_memzero(&e, sizeof e);
        return 0;
}

static int64_t now_mono_nsec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* flock() on "<path>.secguard.lock", polling so that a stuck holder costs at most ~5 s. */
static int lock_acquire(const char *path) {
        struct timespec pause = { .tv_sec = 0, .tv_nsec = LOCK_POLL_NSEC };
        int64_t deadline = now_mono_nsec() + LOCK_TIMEOUT_NSEC;
        char *lock_path;
        struct stat st;
        int fd, r;

        if (asprintf(&lock_path, "%s" LOCK_SUFFIX, path) < 0)
                return -ENOMEM;
        fd = open(lock_path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY, 0600);
        r = -errno;
        free(lock_path);
        if (fd < 0)
                return r;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                close(fd);
                return -EINVAL;
        }
        for (;;) {
                if (flock(fd, LOCK_EX | LOCK_NB) == 0)
                        return fd;
                if (errno != EWOULDBLOCK && errno != EINTR) {
                        r = -errno;
                        close(fd);
                        return r;
                }
                if (now_mono_nsec() >= deadline) {
                        close(fd);
                        return -ETIMEDOUT;
                }
                nanosleep(&pause, NULL);
        }
}

static int write_all(int fd, const char *p, size_t n) {
        while (n > 0) {
                ssize_t k = write(fd, p, n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += k;
                n -= (size_t) k;
        }
        return 0;
}

/* "<dir>" and "<dir>/.<base>.XXXXXX" for path. */
static int temp_paths(const char *path, char **ret_dir, char **ret_tmp) {
        const char *slash = strrchr(path, '/');
        const char *base = slash ? slash + 1 : path;
        char *dir, *tmp;

        if (*base == '\0')
                return -EINVAL;
        if (!slash)
                dir = strdup(".");
        else if (slash == path)
                dir = strdup("/");
        else
                dir = strndup(path, (size_t) (slash - path));
        if (!dir)
                return -ENOMEM;
        if (asprintf(&tmp, "%s/.%s.XXXXXX", strcmp(dir, "/") == 0 ? "" : dir, base) < 0) {
                free(dir);
                return -ENOMEM;
        }
        *ret_dir = dir;
        *ret_tmp = tmp;
        return 0;
}

static int fsync_dir(const char *dir) {
        int fd, r = 0;

        fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fsync(fd) < 0)
                r = -errno;
        close(fd);
        return r;
}

/* Writes data to a temp file next to path with st's owner and mode, then renames it over
 * path. The temp file never survives a failure. */
static int replace_file(const char *path, const struct stat *st, const char *data, size_t len) {
        char *dir = NULL, *tmp = NULL;
        int fd, r;

        r = temp_paths(path, &dir, &tmp);
        if (r < 0)
                return r;
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0) {
                r = -errno;
                goto out;
        }
        /* Owner first: fchown() may clear set-id bits that fchmod() then restores. */
        if (fchown(fd, st->st_uid, st->st_gid) < 0 || fchmod(fd, st->st_mode & 07777) < 0) {
                r = -errno;
                goto fail;
        }
        r = write_all(fd, data, len);
        if (r < 0)
                goto fail;
        if (fsync(fd) < 0) {
                r = -errno;
                goto fail;
        }
        if (close(fd) < 0) {
                fd = -1;
                r = -errno;
                goto fail;
        }
        fd = -1;
        if (rename(tmp, path) < 0) {
                r = -errno;
                goto fail;
        }
        /* The new file is in place; the directory fsync makes the rename durable. */
        r = fsync_dir(dir);
        goto out;
fail:
        if (fd >= 0)
                close(fd);
        unlink(tmp);
out:
        free(dir);
        free(tmp);
        return r;
}

static bool hash_storable(const char *h) {
        size_t n;

        if (!h)
                return false;
        n = strnlen(h, SG_HASH_MAX);
        if (n == 0 || n >= SG_HASH_MAX)
                return false; /* an empty hash field means "no password" to pam_unix */
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char) h[i];
                if (c == ':' || c < 0x20 || c == 0x7f)
                        return false;
        }
        return true;
}

static bool hash_equal(const char *a, const char *b) {
        size_t n = strlen(a);

        return strlen(b) == n && sodium_memcmp(a, b, n) == 0;
}

/* Builds the new file: every byte as before except field 2 (and 3) of user's line. */
static int build_content(const char *buf, size_t len, size_t off, size_t ll,
                         const char *new_hash, bool set_last_change,
                         char **ret, size_t *ret_len, size_t *ret_cap) {
        const char *line = buf + off;
        const char *c1 = memchr(line, ':', ll);
        const char *c2 = memchr(c1 + 1, ':', ll - (size_t) (c1 + 1 - line));
        const char *c3 = memchr(c2 + 1, ':', ll - (size_t) (c2 + 1 - line));
        const char *tail = set_last_change ? c3 : c2;
        size_t head_len = (size_t) (c1 + 1 - buf), tail_len = len - (size_t) (tail - buf);
        size_t hlen = strlen(new_hash), cap, n;
        char today[32] = "";
        char *out;

        if (set_last_change)
                snprintf(today, sizeof today, ":%lld", (long long) (time(NULL) / 86400));
        cap = head_len + hlen + strlen(today) + tail_len;
        out = malloc(cap ? cap : 1);
        if (!out)
                return -ENOMEM;
        memcpy(out, buf, head_len);
        n = head_len;
        memcpy(out + n, new_hash, hlen);
        n += hlen;
        memcpy(out + n, today, strlen(today));
        n += strlen(today);
        memcpy(out + n, tail, tail_len);
        n += tail_len;
        *ret = out;
        *ret_len = n;
        *ret_cap = cap ? cap : 1;
        return 0;
}

static int update_locked(const char *path, const char *user, const char *new_hash,
                         const char *expect_old_hash, bool set_last_change) {
        struct sg_shadow_entry e;
        size_t len = 0, cap = 0, off = 0, ll = 0, out_len = 0, out_cap = 0;
        char *buf = NULL, *out = NULL;
        struct stat st;
        int r;

        r = read_file(path, &st, &buf, &len, &cap);
        if (r < 0)
                return r;
        r = find_user(buf, len, user, &off, &ll, &e);
        if (r == 0)
                r = -ENOENT;
        if (r < 0)
                goto out;
        if (expect_old_hash && !hash_equal(e.hash, expect_old_hash)) {
                r = -ESTALE;
                goto out;
        }
        r = build_content(buf, len, off, ll, new_hash, set_last_change, &out, &out_len, &out_cap);
        if (r < 0)
                goto out;
        r = replace_file(path, &st, out, out_len);
out:
        sodium_memzero(&e, sizeof e);
        buf_free(out, out_cap);
        buf_free(buf, cap);
        return r;
}

/* Temp files are only ever created while the lock is held, so one found while we hold it was
 * left by a writer that died between mkostemp() and rename(): remove it. Only our exact
 * pattern (".<base>." + 6 characters, a regular file) is touched. */
static void remove_stale_temps(const char *path) {
        const char *slash = strrchr(path, '/');
        const char *base = slash ? slash + 1 : path;
        char *dir = NULL, *tmp = NULL, prefix[NAME_MAX + 2];
        struct dirent *de;
        size_t plen;
        DIR *d;
        int dfd;

        if (temp_paths(path, &dir, &tmp) < 0)
                return;
        snprintf(prefix, sizeof prefix, ".%s.", base);
        plen = strlen(prefix);
        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        d = dfd >= 0 ? fdopendir(dfd) : NULL;
        if (!d) {
                if (dfd >= 0)
                        close(dfd);
                goto out;
        }
        while ((de = readdir(d))) {
                struct stat st;

                if (strncmp(de->d_name, prefix, plen) != 0 || strlen(de->d_name) != plen + 6)
                        continue;
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))
                        (void) unlinkat(dirfd(d), de->d_name, 0);
        }
        closedir(d);
out:
        free(dir);
        free(tmp);
}

int sg_shadow_update(const char *path, const char *user, const char *new_hash,
                     const char *expect_old_hash, bool set_last_change) {
        bool system_db;
        int lock_fd, r;

        if (!path || !user_valid(user) || !hash_storable(new_hash))
                return -EINVAL;
        if (expect_old_hash && strnlen(expect_old_hash, SG_HASH_MAX) >= SG_HASH_MAX)
                return -EINVAL;

        /* lckpwdf() excludes shadow-utils, pam_unix and other libc users; our own lock also
         * covers test paths and threads of one process (lckpwdf is per process). */
        system_db = strcmp(path, SYSTEM_SHADOW) == 0;
        if (system_db && lckpwdf() < 0)
                return errno > 0 ? -errno : -EBUSY;
        lock_fd = lock_acquire(path);
        if (lock_fd < 0) {
                r = lock_fd;
                goto out;
        }
        remove_stale_temps(path);
        r = update_locked(path, user, new_hash, expect_old_hash, set_last_change);
        close(lock_fd); /* releases the flock */
out:
        if (system_db)
                ulckpwdf();
        return r;
}
