/* SPDX-License-Identifier: MIT */
/*
 * shadow(5) reading and atomic replacement of one user's hash. The file holds every user's
 * hash, so each buffer that saw its bytes is wiped before it is freed.
 */
#include "shadowfile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <shadow.h> /* glibc's: lckpwdf(), ulckpwdf() */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fileio.h"

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

static bool user_valid(const char *user) {
        size_t n;

        if (!user)
                return false;
        n = strnlen(user, SHADOW_USER_MAX + 1);
        return n > 0 && n <= SHADOW_USER_MAX && !strpbrk(user, ":\n");
}

/* Parses any well-formed line into ret, whoever's it is. 0 or -EINVAL. */
static int parse_entry(const char *line, size_t len, struct sg_shadow_entry *ret) {
        struct field f[SHADOW_FIELDS];
        struct sg_shadow_entry e;
        long *const numeric[] = { &e.last_change, &e.min_days, &e.max_days, &e.warn_days,
                                  &e.inactive_days, &e.expire };

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
        memcpy(e.hash, f[1].p, f[1].len);
        e.hash[f[1].len] = '\0';
        *ret = e;
        sodium_memzero(&e, sizeof e);
        return 0;
}

/* Length of the name field (the whole line when it has no colon). */
static size_t name_len_of(const char *line, size_t len) {
        const char *colon = memchr(line, ':', len);

        return colon ? (size_t) (colon - line) : len;
}

int sg_shadow_parse_line(const char *line, size_t len, const char *user, struct sg_shadow_entry *ret) {
        struct sg_shadow_entry e;
        int r;

        if (!line || !user || !ret || !user_valid(user))
                return -EINVAL;
        r = parse_entry(line, len, &e);
        if (r < 0)
                return r;
        if (!name_is(line, name_len_of(line, len), user)) {
                sodium_memzero(&e, sizeof e);
                return 0;
        }
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

/* The stand-in's scoring key. Fixed and public on purpose: the choice must be the same in
 * every process and for every attempt at a name (a new choice per attempt would spread an
 * unknown name's timings as no real user's spread), and it needs no secret, since it only
 * makes an unknown name cost what some real user's login costs. */
static const unsigned char standin_key[crypto_shorthash_KEYBYTES] = {
        0x73, 0x65, 0x63, 0x67, 0x75, 0x61, 0x72, 0x64, /* "secguard" */
        0x2d, 0x73, 0x74, 0x61, 0x6e, 0x64, 0x69, 0x6e, /* "-standin" */
};

/* One pass over a shadow file for one user (user's line and the stand-in). */
struct scan {
        const char *user;
        const struct sg_hash_caps *caps; /* NULL: any cost is usable */
        bool want_standin;               /* false: only user's line (no scoring) */
        size_t user_len;
        bool found;                      /* user's first line seen at off, len */
        size_t off, len;
        bool have_standin;               /* the best usable line so far: at soff, slen */
        size_t soff, slen;
        unsigned char best[crypto_shorthash_BYTES];
        unsigned char key[crypto_shorthash_KEYBYTES]; /* the scoring key for this user */
};

static void scan_init(struct scan *s, const char *user, const struct sg_hash_caps *caps, bool want_standin) {
        memset(s, 0, sizeof *s);
        s->user = user;
        s->caps = caps;
        s->want_standin = want_standin;
        s->user_len = strlen(user); /* <= SHADOW_USER_MAX: checked by user_valid() */
        /* score(name) = shorthash(name) under a key derived from the user: the same order as
         * hashing user || 0 || name, without hashing the user again on every line. */
        crypto_generichash(s->key, sizeof s->key, (const unsigned char *) user, s->user_len, standin_key,
                           sizeof standin_key);
}

/* A line that parses and whose hash is usable under the caps. */
static bool line_usable(const struct scan *s, const char *line, size_t ll) {
        struct sg_shadow_entry e;
        bool usable;

        usable = ll <= SHADOW_LINE_MAX && parse_entry(line, ll, &e) == 0 && sg_hash_usable(e.hash, s->caps) == 0;
        sodium_memzero(&e, sizeof e);
        return usable;
}

/* Every line gets the same work whoever asks and whether or not it is theirs: find its name,
 * compare it, score it. A line is parsed only when it would become the stand-in (its score
 * beats the best so far: about ln(lines) times per scan, in an order set by the names alone,
 * the same for a user who exists and one who does not). Only user's first line is theirs (as
 * getspnam does); it is parsed once, after the scan. */
static void scan_line(struct scan *s, const char *line, size_t ll, size_t off) {
        unsigned char score[crypto_shorthash_BYTES];
        size_t nl = name_len_of(line, ll);

        if (!s->found && name_is(line, nl, s->user)) {
                s->found = true;
                s->off = off;
                s->len = ll;
        }
        if (!s->want_standin)
                return;
        if (nl > SHADOW_LINE_MAX)
                nl = SHADOW_LINE_MAX; /* such a line is malformed: only the score needs its name */
        crypto_shorthash(score, (const unsigned char *) line, nl, s->key);
        if (s->have_standin && memcmp(score, s->best, sizeof score) >= 0)
                return;
        if (!line_usable(s, line, ll))
                return;
        memcpy(s->best, score, sizeof score);
        s->soff = off;
        s->slen = ll;
        s->have_standin = true;
}

/* Scans every line of buf; never stops at user's line, so a found user and an unknown one
 * cost the same scan. */
static void scan_all(struct scan *s, const char *buf, size_t len) {
        size_t off = 0;

        while (off < len) {
                const char *nl = memchr(buf + off, '\n', len - off);
                size_t ll = nl ? (size_t) (nl - (buf + off)) : len - off;

                scan_line(s, buf + off, ll, off);
                off += ll + 1;
        }
}

/* Fills ret from the scan: user's line parsed (an unknown user's scan parses the stand-in's
 * line instead, so both do the same work), and the stand-in's hash. */
static void scan_result(const struct scan *s, const char *buf, struct sg_shadow_match *ret) {
        struct sg_shadow_entry e;
        int r;

        sodium_memzero(ret, sizeof *ret);
        if (s->found) {
                r = s->len > SHADOW_LINE_MAX ? -EINVAL : parse_entry(buf + s->off, s->len, &e);
                ret->user = r;
                if (r == 0)
                        ret->entry = e;
        } else {
                ret->user = -ENOENT;
                if (s->have_standin)
                        (void) parse_entry(buf + s->soff, s->slen, &e);
        }
        if (s->have_standin && parse_entry(buf + s->soff, s->slen, &e) == 0)
                memcpy(ret->standin, e.hash, sizeof ret->standin); /* "" when none was usable */
        sodium_memzero(&e, sizeof e);
}

static void scan_wipe(struct scan *s) {
        sodium_memzero(s, sizeof *s);
}

static int find(const char *path, const char *user, const struct sg_hash_caps *caps, bool want_standin,
                struct sg_shadow_match *ret) {
        struct scan *s;
        size_t len, cap;
        char *buf = NULL;
        int r;

        if (!path || !ret || !user_valid(user))
                return -EINVAL;
        if (sodium_init() < 0)
                return -EIO;
        s = malloc(sizeof *s);
        if (!s)
                return -ENOMEM;
        r = read_file(path, NULL, &buf, &len, &cap);
        if (r < 0) {
                free(s);
                return r;
        }
        scan_init(s, user, caps, want_standin);
        scan_all(s, buf, len);
        scan_result(s, buf, ret);
        buf_free(buf, cap);
        scan_wipe(s);
        free(s);
        return 0;
}

int sg_shadow_find(const char *path, const char *user, const struct sg_hash_caps *caps,
                   struct sg_shadow_match *ret) {
        return find(path, user, caps, true, ret);
}

int sg_shadow_lookup(const char *path, const char *user, struct sg_shadow_entry *ret) {
        struct sg_shadow_match *m;
        int r;

        if (!ret)
                return -EINVAL;
        m = malloc(sizeof *m);
        if (!m)
                return -ENOMEM;
        r = find(path, user, NULL, false, m);
        if (r >= 0)
                r = m->user;
        if (r >= 0)
                *ret = m->entry;
        sodium_memzero(m, sizeof *m);
        free(m);
        return r;
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
        size_t len = 0, cap = 0, out_len = 0, out_cap = 0;
        char *buf = NULL, *out = NULL;
        struct sg_shadow_match *m;
        struct scan *s;
        struct stat st;
        int r;

        if (sodium_init() < 0)
                return -EIO;
        s = malloc(sizeof *s);
        m = malloc(sizeof *m);
        if (!s || !m) {
                free(s);
                free(m);
                return -ENOMEM;
        }
        scan_init(s, user, NULL, false); /* an update needs no stand-in */
        r = read_file(path, &st, &buf, &len, &cap);
        if (r < 0)
                goto out;
        scan_all(s, buf, len);
        scan_result(s, buf, m);
        r = m->user;
        if (r < 0)
                goto out;
        if (expect_old_hash && !hash_equal(m->entry.hash, expect_old_hash)) {
                r = -ESTALE;
                goto out;
        }
        r = build_content(buf, len, s->off, s->len, new_hash, set_last_change, &out, &out_len, &out_cap);
        if (r < 0)
                goto out;
        /* Same owner, mode and xattrs (SELinux label, ACLs) as before, as shadow-utils and
         * pam_unix keep them; durable before we report success. */
        r = sg_write_atomic(path, out, out_len, &st,
                            SG_WRITE_FSYNC | SG_WRITE_FSYNC_DIR | SG_WRITE_KEEP_XATTRS);
out:
        scan_wipe(s);
        free(s);
        sodium_memzero(m, sizeof *m);
        free(m);
        buf_free(out, out_cap);
        buf_free(buf, cap);
        return r;
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
        /* Temp files are only ever created while the lock is held, so one found now was left
         * by a writer that died between creating and renaming it. */
        (void) sg_remove_stale_temps(path);
        r = update_locked(path, user, new_hash, expect_old_hash, set_last_change);
        close(lock_fd); /* releases the flock */
out:
        if (system_db)
                ulckpwdf();
        return r;
}
