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
#include <unistd.h>

#define TEMP_RANDOM_LEN 6
#define TEMP_ATTEMPTS 100

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

/* Owner, mode, content and (with SG_WRITE_FSYNC) fsync; closes fd. 0 or -errno. */
static int fill_temp(int fd, const void *data, size_t len, const struct stat *like, unsigned flags) {
        int r = 0;

        /* Owner first: fchown() may clear set-id bits that fchmod() then restores. */
        if (like && (fchown(fd, like->st_uid, like->st_gid) < 0 || fchmod(fd, like->st_mode & 07777) < 0))
                r = -errno;
        if (r == 0)
                r = write_all(fd, data, len);
        if (r == 0 && (flags & SG_WRITE_FSYNC) && fsync(fd) < 0)
                r = -errno;
        if (close(fd) < 0 && r == 0)
                r = -errno;
        return r;
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
        int dfd, fd, r;

        if (!path || (!data && len > 0))
                return -EINVAL;
        dfd = open_parent(path, &base);
        if (dfd < 0)
                return dfd;
        fd = create_temp(dfd, base, tmp);
        if (fd < 0) {
                close(dfd);
                return fd;
        }
        r = fill_temp(fd, data, len, like, flags);
        if (r == 0)
                r = place(dfd, tmp, base, flags);
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
