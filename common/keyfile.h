/* SPDX-License-Identifier: MIT */
/* Key files: read with owner/mode checks, created 0600 with O_EXCL. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Reads exactly len bytes of key material from path (O_RDONLY|O_NOFOLLOW|O_CLOEXEC).
 * The file must be a regular file owned by the effective uid (or root) with no group/world
 * permission bits: otherwise -EPERM with err naming the path and the fix ("chmod 0600 ...").
 * -ENOENT when absent; -EBADMSG when the size is wrong. The key is written into key (caller
 * owns and wipes it). */
int sg_key_read(const char *path, uint8_t *key, size_t len, char *err, size_t errsize);

/* Reads exactly len bytes of fd (path names it in errors): 0, or -errno with a message in err
 * and buf wiped (it may hold part of a secret). */
int sg_read_exact(int fd, void *buf, size_t len, const char *path, char *err, size_t errsize);

/* Writes len bytes to a new file at path, mode 0600, through a temp file renamed into place
 * without replacing anything (sg_write_atomic), file and directory fsync'ed. -EEXIST when
 * present (a dangling symlink included). */
int sg_key_write(const char *path, const uint8_t *key, size_t len, char *err, size_t errsize);

/* Loads name from $CREDENTIALS_DIRECTORY (systemd credentials) when set and present there;
 * otherwise from path; when absent and create is true, generates random bytes and writes
 * them to path (*ret_created = true). The key value is never logged. */
int sg_key_load(const char *cred_name, const char *path, bool create, uint8_t *key, size_t len,
                bool *ret_created, char *err, size_t errsize);
