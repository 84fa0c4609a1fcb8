/* SPDX-License-Identifier: MIT */
/* Conversion between the policy's locks and the store's lock rows (see lock-row.h). */
#include "lock-row.h"

#include <errno.h>
#include <string.h>

int sg_lock_row_from_info(const struct sg_lock_info *info, struct sg_lock_row *ret) {
        const char *kind;

        if (!info || !ret)
                return -EINVAL;
        kind = sg_lock_kind_name(info->kind);
        if (!kind)
                return -EINVAL;
        *ret = (struct sg_lock_row) {
                .kind = kind,
                .key = info->key,
                .until_usec = info->until_usec,
                .level = info->level,
                .last_lock_usec = info->last_lock_usec,
                .cleared_usec = info->cleared_usec,
                .failures = info->failures,
        };
        return 0;
}

int sg_lock_info_from_row(const struct sg_lock_row *row, struct sg_lock_info *ret) {
        size_t keylen;
        int kind;

        if (!row || !ret || !row->key)
                return -EINVAL;
        kind = sg_lock_kind_from_name(row->kind);
        if (kind < 0)
                return kind;
        keylen = strlen(row->key);
        if (keylen >= sizeof ret->key)
                return -ENAMETOOLONG;
        *ret = (struct sg_lock_info) {
                .kind = (enum sg_lock_kind) kind,
                .until_usec = row->until_usec,
                .level = row->level,
                .last_lock_usec = row->last_lock_usec,
                .cleared_usec = row->cleared_usec,
                .failures = row->failures,
        };
        memcpy(ret->key, row->key, keylen + 1);
        return 0;
}
