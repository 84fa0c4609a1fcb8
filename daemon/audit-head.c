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
        uint64_t id; /* the tail last written */
};

int audit_head_new(const char *state_dir, bool sync_full, AuditHead **ret) {
        AuditHead *h = calloc(1, sizeof *h);

        if (!h)
                return -ENOMEM;
        snprintf(h->dir, sizeof h->dir, "%s", state_dir);
        snprintf(h->path, sizeof h->path, "%s/audit.head", state_dir);
        h->sync_full = sync_full;
        *ret = h;
        return 0;
}

AuditHead *audit_head_free(AuditHead *h) {
        free(h);
        return NULL;
}

/* Writes "ID HEXMAC\n" through a temp file and a rename, so after a power failure audit.head
 * is the old tail or the new one, never empty or missing. */
static void head_write(AuditHead *h, uint64_t id, const uint8_t mac[SG_MAC_BYTES]) {
        char line[32 + 2 * SG_MAC_BYTES + 4], hex[2 * SG_MAC_BYTES + 1];
        int n, r;

        sodium_bin2hex(hex, sizeof hex, mac, SG_MAC_BYTES);
        n = snprintf(line, sizeof line, "%" PRIu64 " %s\n", id, hex);
        /* Durable like the database: with [audit] synchronous = normal neither is synced at each
         * commit (two fsyncs per group commit would cap the event rate at the disk's latency). */
        r = sg_write_atomic(h->path, line, (size_t) n, NULL, h->sync_full ? SG_WRITE_FSYNC : 0);
        if (r < 0) {
                log_warning_errno(r, "cannot write %s", h->path);
                return;
        }
        r = h->sync_full ? sg_fsync_dir(h->dir) : 0;
        if (r < 0)
                log_warning_errno(r, "cannot sync directory %s after writing %s", h->dir, h->path);
        h->id = id;
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
