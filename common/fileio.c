/* SPDX-License-Identifier: MIT */
#include "errmsg.h"
#include "fileio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#define TEMP_RANDOM_LEN 6
#define TEMP_ATTEMPTS 100
#define XATTR_ATTEMPTS 4 /* a list or value that keeps growing between size and read */
/* Never dropped: without it the file would get a default label and, under SELinux, be
 * unreadable to (or readable by) the wrong domains. */
#define XATTR_SELINUX "security.selinux"

int sg_fsync_dir(const char *dir) {
        int fd, r = 0;

        if (!dir)
                return -EINVAL;
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fsync(fd) < 0)
                r = -errno;
        close(fd);
        return r;
}

/* Opens path's directory and points *ret_base at its last component. fd or -errno. */
static int open_parent(const char *path, const char **ret_base) {
        const char *slash = strrchr(path, '/');
        const char *base = slash ? slash + 1 : path;
        char *dir;
        int fd;

        if (*base == '\0')
                return -EINVAL;
        if (strlen(base) + 2 + TEMP_RANDOM_LEN > NAME_MAX)
                return -ENAMETOOLONG; /* ".<base>." and the random part */
        if (!slash)
                dir = strdup(".");
        else if (slash == path)
                dir = strdup("/");
        else
                dir = strndup(path, (size_t) (slash - path));
        if (!dir)
                return -ENOMEM;
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        fd = fd < 0 ? -errno : fd;
        free(dir);
        *ret_base = base;
        return fd;
}

/* Creates ".<base>.XXXXXX" in dfd, mode 0600, its name in tmp. fd or -errno. */
static int create_temp(int dfd, const char *base, char tmp[static NAME_MAX + 1]) {
        static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

        for (int attempt = 0; attempt < TEMP_ATTEMPTS; attempt++) {
                unsigned char rnd[TEMP_RANDOM_LEN];
                size_t n = (size_t) snprintf(tmp, NAME_MAX + 1, ".%s.", base);
                int fd;

                if (getrandom(rnd, sizeof rnd, 0) != (ssize_t) sizeof rnd)
                        return errno ? -errno : -EIO;
                for (size_t i = 0; i < sizeof rnd; i++)
                        tmp[n + i] = alphabet[rnd[i] % (sizeof alphabet - 1)];
                tmp[n + sizeof rnd] = '\0';
                fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
                if (fd >= 0)
                        return fd;
                if (errno != EEXIST)
                        return -errno;
        }
        return -EEXIST;
}

static int write_all(int fd, const unsigned char *p, size_t n) {
        while (n > 0) {
                ssize_t k = write(fd, p, n);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return k < 0 ? -errno : -EIO;
                p += k;
                n -= (size_t) k;
        }
        return 0;
}

/* Reads an attribute list (name == NULL) or one value into a fresh buffer: the size first,
 * then the bytes, again when it grew in between. Size or -errno; *ret NULL for size 0. */
static ssize_t read_xattr(int fd, const char *name, char **ret) {
        *ret = NULL;
        for (int attempt = 0; attempt < XATTR_ATTEMPTS; attempt++) {
                ssize_t n = name ? fgetxattr(fd, name, NULL, 0) : flistxattr(fd, NULL, 0);
                char *buf;

                if (n <= 0)
                        return n < 0 ? -errno : 0;
                buf = malloc((size_t) n);
                if (!buf)
                        return -ENOMEM;
                n = name ? fgetxattr(fd, name, buf, (size_t) n) : flistxattr(fd, buf, (size_t) n);
                if (n >= 0) {
                        *ret = buf;
                        return n;
                }
                n = -errno;
                free(buf);
                if (n != -ERANGE)
                        return n;
        }
        return -ERANGE;
}

/* Puts one attribute of from on to. 1 when the file system refused it (ENOTSUP) and it was
 * skipped, 0 copied (or gone meanwhile), -errno. The SELinux label is never skipped. */
static int copy_xattr(int from, int to, const char *name) {
        char *value;
        ssize_t n = read_xattr(from, name, &value);
        int r = 0;

        if (n == -ENODATA)
                return 0;
        if (n < 0)
                return (int) n;
        if (fsetxattr(to, name, value ? value : "", (size_t) n, 0) < 0) {
                r = -errno;
                if (r == -EOPNOTSUPP && strcmp(name, XATTR_SELINUX) != 0)
                        r = 1;
        }
        free(value);
        return r;
}

/* Copies every extended attribute of from onto to (SG_WRITE_KEEP_XATTRS). The number
 * skipped (see copy_xattr), or -errno. A file system without xattrs has none to copy. */
static int copy_xattrs(int from, int to) {
        char *names;
        ssize_t n = read_xattr(from, NULL, &names);
        int skipped = 0, r = 0;

        if (n == -EOPNOTSUPP)
                return 0;
        if (n < 0)
                return (int) n;
        for (ssize_t i = 0; i < n && r >= 0; i += (ssize_t) strnlen(names + i, (size_t) (n - i)) + 1) {
                r = copy_xattr(from, to, names + i);
                skipped += r > 0;
        }
        free(names);
        return r < 0 ? r : skipped;
}

/* The file being replaced, for its xattrs: an fd when it is a regular file, -1 when there is
 * nothing to copy from (no file, a symlink, anything else), or -errno. */
static int open_replaced(int dfd, const char *base) {
        struct stat st;
        int fd;

        if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT ? -1 : -errno;
        if (!S_ISREG(st.st_mode))
                return -1;
        fd = openat(dfd, base, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return errno == ENOENT || errno == ELOOP ? -1 : -errno;
        return fd;
}

/* Owner, mode, xattrs of xattrs_from (when >= 0), content and (with SG_WRITE_FSYNC) fsync;
 * closes fd. The number of xattrs skipped, or -errno. */
static int fill_temp(int fd, const void *data, size_t len, const struct stat *like, int xattrs_from,
                     unsigned flags) {
        int r = 0, skipped = 0;

        /* Owner first: fchown() may clear set-id bits that fchmod() then restores. Both come
         * before the xattrs: fchown() drops security.capability, and an ACL set after
         * fchmod() leaves the group bits as its mask, as on the old file. */
        if (like && (fchown(fd, like->st_uid, like->st_gid) < 0 || fchmod(fd, like->st_mode & 07777) < 0))
                r = -errno;
        if (r == 0 && xattrs_from >= 0) {
                skipped = copy_xattrs(xattrs_from, fd);
                r = skipped < 0 ? skipped : 0;
        }
        if (r == 0)
                r = write_all(fd, data, len);
        if (r == 0 && (flags & SG_WRITE_FSYNC) && fsync(fd) < 0)
                r = -errno;
        if (close(fd) < 0 && r == 0)
                r = -errno;
        return r < 0 ? r : skipped;
}

/* rename, or with SG_WRITE_NOREPLACE one that fails with EEXIST; a file system without
 * RENAME_NOREPLACE gets link + unlink, which refuses an existing name the same way. */
static int place(int dfd, const char *tmp, const char *base, unsigned flags) {
        if (!(flags & SG_WRITE_NOREPLACE))
                return renameat(dfd, tmp, dfd, base) < 0 ? -errno : 0;
        if (renameat2(dfd, tmp, dfd, base, RENAME_NOREPLACE) == 0)
                return 0;
        if (errno != EINVAL && errno != ENOSYS)
                return -errno;
        if (linkat(dfd, tmp, dfd, base, 0) < 0)
                return -errno;
        (void) unlinkat(dfd, tmp, 0);
        return 0;
}

int sg_write_atomic(const char *path, const void *data, size_t len, const struct stat *like,
                    unsigned flags) {
        char tmp[NAME_MAX + 1];
        const char *base;
        int dfd, fd, from = -1, r;

        if (!path || (!data && len > 0))
                return -EINVAL;
        dfd = open_parent(path, &base);
        if (dfd < 0)
                return dfd;
        if (flags & SG_WRITE_KEEP_XATTRS) {
                from = open_replaced(dfd, base);
                if (from < -1) {
                        close(dfd);
                        return from;
                }
        }
        fd = create_temp(dfd, base, tmp);
        if (fd < 0) {
                if (from >= 0)
                        close(from);
                close(dfd);
                return fd;
        }
        r = fill_temp(fd, data, len, like, from, flags);
        if (from >= 0)
                close(from);
        if (r >= 0) {
                int placed = place(dfd, tmp, base, flags);
                r = placed < 0 ? placed : r;
        }
        if (r < 0)
                (void) unlinkat(dfd, tmp, 0);
        else if ((flags & SG_WRITE_FSYNC_DIR) && fsync(dfd) < 0)
                r = -errno;
        close(dfd);
        return r;
}

int sg_remove_stale_temps(const char *path) {
        char prefix[NAME_MAX + 2];
        const char *base;
        struct dirent *de;
        size_t plen;
        int dfd, n = 0;
        DIR *d;

        if (!path)
                return -EINVAL;
        dfd = open_parent(path, &base);
        if (dfd < 0)
                return dfd;
        snprintf(prefix, sizeof prefix, ".%s.", base);
        plen = strlen(prefix);
        d = fdopendir(dfd);
        if (!d) {
                int r = -errno;
                close(dfd);
                return r;
        }
        while ((de = readdir(d))) {
                struct stat st;

                if (strncmp(de->d_name, prefix, plen) != 0 || strlen(de->d_name) != plen + TEMP_RANDOM_LEN)
                        continue;
                if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
                    unlinkat(dfd, de->d_name, 0) == 0)
                        n++;
        }
        closedir(d);
        return n;
}

int sg_check_own_dir(const char *dir, unsigned fix_mode, char *err, size_t errsize) {
        struct stat st;
        int fd, r;

        fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
                r = -errno;
                /* O_DIRECTORY|O_NOFOLLOW reports a symlink as ENOTDIR: say which it is. */
                if ((r == -ENOTDIR || r == -ELOOP) && lstat(dir, &st) == 0 && S_ISLNK(st.st_mode))
                        return sg_errmsg(err, errsize, r, "%s is a symbolic link; refusing to follow it; "
                                         "fix: point to the real directory", dir);
                return sg_errmsg(err, errsize, r, "cannot open directory %s: %s", dir, strerror(-r));
        }
        r = fstat(fd, &st) < 0 ? -errno : 0;
        close(fd);
        if (r < 0)
                return sg_errmsg(err, errsize, r, "cannot stat directory %s: %s", dir, strerror(-r));
        if (st.st_uid != geteuid())
                return sg_errmsg(err, errsize, -EPERM, "%s is owned by uid %u, not by uid %u running secguardd; "
                                 "fix: chown %u %s", dir, (unsigned) st.st_uid, (unsigned) geteuid(),
                                 (unsigned) geteuid(), dir);
        if (st.st_mode & 022)
                return sg_errmsg(err, errsize, -EPERM, "%s is group/world writable (mode %04o); fix: chmod %04o %s",
                                 dir, (unsigned) (st.st_mode & 07777), fix_mode, dir);
        return 0;
}
