/* SPDX-License-Identifier: MIT */
/*
 * Reading and atomically updating a shadow(5) file (named so as not to hide glibc's
 * <shadow.h>, which shadowfile.c includes for lckpwdf). The path is a parameter (shadow=), so
 * tests use their own file; /etc/shadow is updated under lckpwdf().
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "hashes.h"

struct sg_shadow_entry {
        char hash[SG_HASH_MAX];
        long last_change; /* days since epoch; -1 empty */
        long min_days, max_days, warn_days, inactive_days, expire; /* -1 when empty */
};

/* Parses one shadow line (without the newline) for user. Pure code (the fuzzer's target).
 * 1 = this line is user's and ret filled; 0 = another user's line; -EINVAL malformed. */
int sg_shadow_parse_line(const char *line, size_t len, const char *user, struct sg_shadow_entry *ret);

/* What one pass over a shadow file found for one user name. */
struct sg_shadow_match {
        int user;                  /* 0 found (entry filled), -ENOENT absent, -EINVAL user's
                                    * (first) line malformed */
        struct sg_shadow_entry entry;
        char standin[SG_HASH_MAX]; /* another entry's hash, see below; "" when none is usable */
};

/* Looks user up in path (opened O_RDONLY|O_NOFOLLOW|O_CLOEXEC) and, in the same pass, picks
 * the stand-in hash that an unknown user's (or an unusable hash's) password is checked
 * against, so that such an attempt costs what a real user's costs on this host: among the
 * usable entries (sg_hash_usable with caps), the one whose name has the lowest
 * crypto_shorthash(name) under a key derived from user and a fixed public key. The choice
 * depends only on the two names: the same for every attempt at one name, spread across
 * names, and kept when entries are added (unless the new one scores lower). The whole file is
 * read and every line costs the same work whoever asks, found or not (a line is parsed only
 * when it could be the stand-in, plus user's own line, or for an unknown user the stand-in's
 * line once more). Lines longer than 4 KiB are malformed.
 * 0 with ret filled, or -errno on I/O error (ret untouched). */
int sg_shadow_find(const char *path, const char *user, const struct sg_hash_caps *caps,
                   struct sg_shadow_match *ret);

/* sg_shadow_find without the result's stand-in: 0 found, -ENOENT not found, -EINVAL user's
 * line malformed, other -errno on I/O error. */
int sg_shadow_lookup(const char *path, const char *user, struct sg_shadow_entry *ret);

/* Replaces user's hash (and, when set_last_change, field 3 with today) atomically:
 * lckpwdf() when path is /etc/shadow, plus an flock on "<path>.secguard.lock" (works for any
 * path and serialises concurrent module instances; not "<path>.lock": shadow-utils uses that
 * name as a link lock holding a PID and refuses to run while one without a PID exists),
 * temp file in the same directory with the same owner, mode and extended attributes (SELinux
 * label, ACLs, ...: SG_WRITE_KEEP_XATTRS), every other line byte for byte, fsync, rename,
 * fsync of the directory. expect_old_hash, when not NULL, must still be the current hash
 * (-ESTALE if another writer changed it). On success the number of xattrs the file system
 * refused and that were left behind (>= 0; never the SELinux label, whose loss fails the
 * update), else -ENOENT (no such user),
 * -ETIMEDOUT (lock not obtained within ~5 s), or -errno. */
int sg_shadow_update(const char *path, const char *user, const char *new_hash,
                     const char *expect_old_hash, bool set_last_change);
