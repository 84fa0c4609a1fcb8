/* SPDX-License-Identifier: MIT */
#include "keyfile.h"
#include "errmsg.h"
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

/* Messages name the path and, where there is one, the fix; they never contain key bytes. */

static int check_key_fd(int fd, const char *path, size_t len, char *err, size_t errsize) {
        struct stat st;

        /* fstat on the descriptor we read from: no window for a swap between check and use. */
        if (fstat(fd, &st) < 0)
                return sg_errmsg(err, errsize, -errno, "cannot stat %s: %m", path);
        if (!S_ISREG(st.st_mode))
                return sg_errmsg(err, errsize, -EPERM, "%s is not a regular file (fix: replace it with a key file)",
                            path);
        if (st.st_uid != geteuid() && st.st_uid != 0)
                return sg_errmsg(err, errsize, -EPERM, "%s is owned by uid %u (fix: chown %u %s)", path,
                            (unsigned) st.st_uid, (unsigned) geteuid(), path);
        if (st.st_mode & 077)
                return sg_errmsg(err, errsize, -EPERM,
                            "%s has mode %04o: group or others may access the key (fix: chmod 0600 %s)",
                            path, (unsigned) (st.st_mode & 07777), path);
        if (st.st_size < 0 || (uint64_t) st.st_size != len)
                return sg_errmsg(err, errsize, -EBADMSG, "%s holds %lld bytes, expected a %zu-byte key", path,
                            (long long) st.st_size, len);
        return 0;
}

int sg_read_exact(int fd, void *buf, size_t len, const char *path, char *err, size_t errsize) {
        size_t got = 0;
        int r = 0;

        while (r == 0 && got < len) {
                ssize_t n = read(fd, (uint8_t *) buf + got, len - got);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        r = sg_errmsg(err, errsize, -errno, "cannot read %s: %m", path);
                else if (n == 0)
                        r = sg_errmsg(err, errsize, -EBADMSG, "%s shrank while being read", path);
                else
                        got += (size_t) n;
        }
        if (r < 0)
                sodium_memzero(buf, len);
        return r;
}

int sg_key_read(const char *path, uint8_t *key, size_t len, char *err, size_t errsize) {
        int fd, r;

        if (!path || !key)
                return sg_errmsg(err, errsize, -EINVAL, "no key path given");
        /* O_NONBLOCK: a FIFO planted at the path must not block us; S_ISREG refuses it below. */
        fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0) {
                if (errno == ELOOP)
                        return sg_errmsg(err, errsize, -ELOOP,
                                    "%s is a symbolic link; refusing to follow it (fix: put the key file itself there)",
                                    path);
                return sg_errmsg(err, errsize, -errno, "cannot open %s: %m", path);
        }
        r = check_key_fd(fd, path, len, err, errsize);
        if (r == 0)
                r = sg_read_exact(fd, key, len, path, err, errsize);
        close(fd);
        return r;
}

int sg_key_write(const char *path, const uint8_t *key, size_t len, char *err, size_t errsize) {
        int r;

        if (!path || !key)
                return sg_errmsg(err, errsize, -EINVAL, "no key path given");
        /* Mode 0600 from the start; never over a planted file or link (no-replace); a reader,
         * or a second daemon losing the race to create it, sees the whole key or none. */
        r = sg_write_atomic(path, key, len, NULL, SG_WRITE_FSYNC | SG_WRITE_FSYNC_DIR | SG_WRITE_NOREPLACE);
        if (r < 0) {
                errno = -r;
                return sg_errmsg(err, errsize, r, r == -EEXIST ? "cannot create %s: %m" : "cannot write %s: %m",
                                 path);
        }
        return 0;
}

int sg_key_load(const char *cred_name, const char *path, bool create, uint8_t *key, size_t len,
                bool *ret_created, char *err, size_t errsize) {
        const char *creds = getenv("CREDENTIALS_DIRECTORY");
        int r;

        if (creds && *creds && cred_name && *cred_name) {
                char cpath[PATH_MAX];

                if (strchr(cred_name, '/'))
                        return sg_errmsg(err, errsize, -EINVAL, "bad credential name %s", cred_name);
                if ((size_t) snprintf(cpath, sizeof cpath, "%s/%s", creds, cred_name) >= sizeof cpath)
                        return sg_errmsg(err, errsize, -ENAMETOOLONG, "credentials directory path too long");
                r = sg_key_read(cpath, key, len, err, errsize);
                if (r != -ENOENT) {
                        if (r == 0 && ret_created)
                                *ret_created = false;
                        return r;
                }
        }
        r = sg_key_read(path, key, len, err, errsize);
        if (r != -ENOENT || !create) {
                if (r == 0 && ret_created)
                        *ret_created = false;
                return r;
        }
        if (sodium_init() < 0)
                return sg_errmsg(err, errsize, -EIO, "libsodium failed to initialise");
        randombytes_buf(key, len);
        r = sg_key_write(path, key, len, err, errsize);
        if (r == -EEXIST) {
                /* Someone created it between our read and write: use theirs. */
                sodium_memzero(key, len);
                r = sg_key_read(path, key, len, err, errsize);
                if (r == 0 && ret_created)
                        *ret_created = false;
                return r;
        }
        if (r < 0) {
                sodium_memzero(key, len);
                return r;
        }
        if (ret_created)
                *ret_created = true;
        return 0;
}
