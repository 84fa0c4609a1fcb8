/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "audit-head.h"
#include "fileio.h"
#include "log.h"

struct AuditHead {
        char dir[PATH_MAX];
        char path[PATH_MAX + 16];
        bool sync_full;
        int fd;      /* audit.head open for writing in place; -1: next write goes by rename */
        uint64_t id; /* the tail last written */
};

/* Every line is HEAD_LINE_LEN bytes: the id zero-padded to 20 digits, a space, the MAC in
 * hex, a newline. The same length each time lets a commit rewrite it in place with one
 * pwrite (a rename per commit was a third of the daemon's time per login). */
#define HEAD_LINE_LEN (20 + 1 + 2 * SG_MAC_BYTES + 1)

int audit_head_new(const char *state_dir, bool sync_full, AuditHead **ret) {
        AuditHead *h = calloc(1, sizeof *h);

        if (!h)
                return -ENOMEM;
        snprintf(h->dir, sizeof h->dir, "%s", state_dir);
        snprintf(h->path, sizeof h->path, "%s/audit.head", state_dir);
        h->sync_full = sync_full;
        h->fd = -1;
        *ret = h;
        return 0;
}

AuditHead *audit_head_free(AuditHead *h) {
        if (h && h->fd >= 0)
                close(h->fd);
        free(h);
        return NULL;
}

/* The first write (and any write after an in-place one failed) goes through a temp file and a
 * rename, so audit.head is never empty or missing, and leaves the file open for the next ones.
 * Later writes replace the one line in place: a single pwrite of HEAD_LINE_LEN bytes at offset
 * 0, inside the file's first sector, which a crash of the daemon cannot tear; a power failure
 * tearing it would leave a line that reads as unreadable, reported at the next start as a
 * missing audit.head is. */
static void head_write(AuditHead *h, uint64_t id, const uint8_t mac[SG_MAC_BYTES]) {
        char line[HEAD_LINE_LEN + 1], hex[2 * SG_MAC_BYTES + 1];
        int n, r;

        sodium_bin2hex(hex, sizeof hex, mac, SG_MAC_BYTES);
        n = snprintf(line, sizeof line, "%020" PRIu64 " %s\n", id, hex);
        if (n != HEAD_LINE_LEN)
                return; /* cannot happen: the id fits in 20 digits */
        if (h->fd >= 0) {
                ssize_t k = pwrite(h->fd, line, HEAD_LINE_LEN, 0);

                /* Durable like the database: with [audit] synchronous = normal neither is synced
                 * at each commit (two fsyncs per group commit would cap the event rate at the
                 * disk's latency). */
                if (k == HEAD_LINE_LEN && (!h->sync_full || fdatasync(h->fd) == 0)) {
                        h->id = id;
                        return;
                }
                log_warning_errno(k < 0 ? -errno : -EIO, "cannot rewrite %s in place: replacing it", h->path);
                close(h->fd);
                h->fd = -1;
        }
        r = sg_write_atomic(h->path, line, HEAD_LINE_LEN, NULL, h->sync_full ? SG_WRITE_FSYNC : 0);
        if (r < 0) {
                log_warning_errno(r, "cannot write %s", h->path);
                return;
        }
        r = h->sync_full ? sg_fsync_dir(h->dir) : 0;
        if (r < 0)
                log_warning_errno(r, "cannot sync directory %s after writing %s", h->dir, h->path);
        h->id = id;
        h->fd = open(h->path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
        if (h->fd < 0)
                log_warning_errno(-errno, "cannot open %s: each commit will replace it", h->path);
}

void audit_head_update(AuditHead *h, sg_store *store) {
        uint8_t mac[SG_MAC_BYTES];
        uint64_t id = 0;

        sg_store_audit_tail(store, &id, mac);
        /* Never moves back (a newer commit may have written it meanwhile). */
        if (id > h->id)
                head_write(h, id, mac);
}

/* Reads audit.head: 1 with the id (and the mac when the line has one), 0 when absent,
 * -EBADMSG when unreadable. */
static int head_read(const char *path, uint64_t *ret_id, uint8_t ret_mac[SG_MAC_BYTES], bool *ret_has_mac) {
        char line[128], hex[2 * SG_MAC_BYTES + 2] = "";
        unsigned long long id;
        size_t maclen = 0;
        ssize_t n;
        int fd, k;

        fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT ? 0 : -errno;
        n = read(fd, line, sizeof line - 1);
        close(fd);
        if (n <= 0)
                return -EBADMSG;
        line[n] = '\0';
        k = sscanf(line, "%llu %65s", &id, hex);
        if (k < 1 || line[0] < '0' || line[0] > '9' || id >= (unsigned long long) INT64_MAX)
                return -EBADMSG;
        *ret_has_mac = k == 2 && strlen(hex) == 2 * SG_MAC_BYTES &&
                       sodium_hex2bin(ret_mac, SG_MAC_BYTES, hex, strlen(hex), NULL, &maclen, NULL) == 0 &&
                       maclen == SG_MAC_BYTES;
        *ret_id = id;
        return 1;
}

/* When the database ends before audit.head, those rows were deleted while we were down (or
 * lost in a power failure with synchronous = normal): the id sequence goes on after them, so
 * the gap stays in the chain and every later `audit verify` reports it. A missing or
 * unreadable audit.head while the database holds rows is noted too. */
void audit_head_check(AuditHead *h, sg_store *store, char *note, size_t notesize) {
        uint8_t have_mac[SG_MAC_BYTES], want_mac[SG_MAC_BYTES];
        uint64_t have, want = 0;
        bool has_mac = false;
        int r;

        sg_store_audit_tail(store, &have, have_mac);
        h->id = have;
        note[0] = '\0';
        /* A writer that died mid-write left its temp file; only this daemon writes here. */
        (void) sg_remove_stale_temps(h->path);
        r = head_read(h->path, &want, want_mac, &has_mac);
        if (r == 0 && have == 0)
                return; /* first start */
        if (r <= 0) {
                snprintf(note, notesize,
                         "audit.head is %s while the audit log has rows up to %" PRIu64
                         "; rows deleted from its end cannot be detected this time",
                         r == 0 ? "missing" : "unreadable", have);
                log_warning("%s: %s", h->path, note);
                return;
        }
        if (want > have) {
                r = sg_store_audit_resume_after(store, want);
                if (r < 0)
                        log_error_errno(r, "cannot continue the audit chain after row %" PRIu64, want);
                snprintf(note, notesize,
                         "audit rows %" PRIu64 "..%" PRIu64 " are missing at the end (deleted while secguardd was "
                         "down, or lost in a power failure with [audit] synchronous = normal); the log goes on at row %"
                         PRIu64, have + 1, want, want + 1);
                log_error("%s", note);
        } else if (want == have && has_mac && sodium_memcmp(want_mac, have_mac, SG_MAC_BYTES) != 0) {
                snprintf(note, notesize, "audit row %" PRIu64 " is not the row recorded in audit.head (replaced)", have);
                log_error("%s: %s", h->path, note);
        }
}
