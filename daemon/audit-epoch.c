/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include <sodium.h>

#include "audit-epoch.h"
#include "fileio.h"
#include "fss.h"
#include "keyfile.h"

struct AuditEpoch {
        char path[PATH_MAX];
        uint64_t epoch;
        uint8_t *key; /* sodium_malloc'ed */
};

AuditEpoch *audit_epoch_free(AuditEpoch *e) {
        if (!e)
                return NULL;
        if (e->key)
                sodium_free(e->key);
        free(e);
        return NULL;
}

int audit_epoch_load(const char *state_dir, AuditEpoch **ret, char *err, size_t errsize) {
        uint8_t *buf = NULL;
        AuditEpoch *e;
        int r;

        *ret = NULL;
        e = calloc(1, sizeof *e);
        if (!e)
                return -ENOMEM;
        if ((size_t) snprintf(e->path, sizeof e->path, "%s/%s", state_dir, AUDIT_EPOCH_FILE) >= sizeof e->path) {
                audit_epoch_free(e);
                return -ENAMETOOLONG;
        }
        e->key = sodium_malloc(SG_FSS_KEY_BYTES);
        buf = sodium_malloc(SG_FSS_STATE_BYTES);
        if (!e->key || !buf) {
                r = -ENOMEM;
                goto out;
        }
        r = sg_key_read(e->path, buf, SG_FSS_STATE_BYTES, err, errsize);
        if (r == -ENOENT) {
                r = 0;
                goto out; /* not set up */
        }
        if (r >= 0 && sg_fss_state_decode(buf, &e->epoch, e->key) < 0) {
                snprintf(err, errsize, "%s is not a forward-secure key file (fix: restore it, or move it aside and "
                         "run secguardctl audit setup-keys)", e->path);
                r = -EBADMSG;
        }
        if (r >= 0) {
                *ret = e;
                e = NULL;
        }
out:
        if (buf)
                sodium_free(buf);
        audit_epoch_free(e);
        return r;
}

uint64_t audit_epoch_current(const AuditEpoch *e) {
        return e->epoch;
}

const uint8_t *audit_epoch_key(const AuditEpoch *e) {
        return e->key;
}

void audit_epoch_skip_to(AuditEpoch *e, uint64_t epoch) {
        while (e->epoch < epoch) {
                sg_fss_step(e->key, e->key); /* in place: key(e) is overwritten */
                e->epoch++;
        }
}

int audit_epoch_save(AuditEpoch *e) {
        uint8_t *buf;
        int r;

        buf = sodium_malloc(SG_FSS_STATE_BYTES);
        if (!buf)
                return -ENOMEM;
        sg_fss_state_encode(e->epoch, e->key, buf);
        r = sg_write_atomic(e->path, buf, SG_FSS_STATE_BYTES, NULL, SG_WRITE_FSYNC | SG_WRITE_FSYNC_DIR);
        sodium_free(buf);
        return r;
}
