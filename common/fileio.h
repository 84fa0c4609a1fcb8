/* SPDX-License-Identifier: MIT */
/* Durable file replacement: the one place that writes a temp file, renames it into place and
 * fsyncs the directory (the shadow file, key files, the daemon's audit.head). */
#pragma once

#include <stddef.h>
#include <sys/stat.h>

/* fsyncs the directory dir, which makes a rename or a creation in it durable. Opened
 * O_RDONLY|O_DIRECTORY|O_NOFOLLOW|O_CLOEXEC: a symlink as dir's last component is refused
 * (-ENOTDIR or -ELOOP). 0 or -errno. */
int sg_fsync_dir(const char *dir);

enum {
        SG_WRITE_FSYNC = 1 << 0,     /* fsync the file before the rename */
        SG_WRITE_FSYNC_DIR = 1 << 1, /* fsync the directory after it (the rename is durable) */
        SG_WRITE_NOREPLACE = 1 << 2, /* never replace path: -EEXIST when anything is there,
                                      * a dangling symlink included */
        SG_WRITE_KEEP_XATTRS = 1 << 3, /* copy the replaced file's extended attributes */
};

/* Puts len bytes of data at path so that a reader (or a crash) sees the old file or the new
 * one, never a part: the bytes go to a temp file ".<base>.XXXXXX" (6 random characters from
 * [A-Za-z0-9]) in path's directory, created O_EXCL|O_NOFOLLOW|O_CLOEXEC, which is renamed
 * over path. The new file gets like's owner and permission bits (07777) when like is not NULL
 * (the file it replaces: the owner is set first, as fchown may clear set-id bits), else mode
 * 0600 and the caller's owner. A symlink at path is replaced, never followed; path's directory
 * is opened once, following symlinks as rename(2) would, and every step happens in it.
 * With SG_WRITE_KEEP_XATTRS, every extended attribute of the regular file at path (SELinux
 * label, POSIX ACLs, user.*, ...) is copied onto the temp file, after owner and mode, before
 * the rename (flistxattr/fgetxattr/fsetxattr on fds); one the file system refuses
 * (-EOPNOTSUPP) is skipped and counted, except security.selinux, whose loss fails the write
 * like any other error. Without a regular file at path there is nothing to copy.
 * 0 (with SG_WRITE_KEEP_XATTRS: the number of xattrs skipped, >= 0), -EINVAL (no file name in path, or no data with len > 0), -ENAMETOOLONG (the temp name
 * would be too long), -EEXIST (SG_WRITE_NOREPLACE), or -errno. The temp file never survives a
 * failure and path is untouched by one, except that a failing SG_WRITE_FSYNC_DIR comes after
 * the rename: its -errno means the new file is in place but may not survive a crash. */
int sg_write_atomic(const char *path, const void *data, size_t len, const struct stat *like,
                    unsigned flags);

/* Checks a directory that holds our state (the daemon's state directory, the socket's
 * directory): not a symlink (-ENOTDIR), owned by the effective uid, not writable by group
 * or others (-EPERM). 0, or -errno with a message naming dir and the fix in err (chmod to
 * fix_mode when the mode is wrong). */
int sg_check_own_dir(const char *dir, unsigned fix_mode, char *err, size_t errsize);

/* Removes the temp files sg_write_atomic may have left for path when its writer died between
 * creating and renaming one: regular files named exactly ".<base>." plus 6 characters in
 * path's directory. Safe only while the caller's own lock keeps every other writer of path
 * away (their temp file would go too). The number removed, or -errno. */
int sg_remove_stale_temps(const char *path);
