/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for sg_shadow_parse_line, the code that reads every line of the shadow
 * file. Input: "<user>\n<line>" (no newline: user "root" and the whole input as the line).
 * The line is copied to an exact-size heap buffer so ASan sees any read past len.
 */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shadowfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const uint8_t *nl = memchr(data, '\n', size < 300 ? size : 300);
        char user[300] = "root";
        const uint8_t *line = data;
        size_t len = size;
        struct sg_shadow_entry e;
        char *copy;
        int r;

        if (nl) {
                memcpy(user, data, (size_t) (nl - data));
                user[nl - data] = '\0';
                line = nl + 1;
                len = size - (size_t) (nl - data) - 1;
        }
        copy = malloc(len ? len : 1);
        if (!copy)
                return 0;
        if (len)
                memcpy(copy, line, len);

        memset(&e, 0x5a, sizeof e);
        r = sg_shadow_parse_line(copy, len, user, &e);
        assert(r == 1 || r == 0 || r == -EINVAL);
        if (r == 1) {
                size_t ulen = strlen(user), hlen = strnlen(e.hash, SG_HASH_MAX);
                /* Matched means: exact name, then a colon, then the hash field verbatim. */
                assert(hlen < SG_HASH_MAX);
                assert(len > ulen && memcmp(copy, user, ulen) == 0 && copy[ulen] == ':');
                assert(memcmp(copy + ulen + 1, e.hash, hlen) == 0 && copy[ulen + 1 + hlen] == ':');
                assert(e.last_change >= -1 && e.min_days >= -1 && e.max_days >= -1 &&
                       e.warn_days >= -1 && e.inactive_days >= -1 && e.expire >= -1);
        } else {
                assert(e.last_change == (long) 0x5a5a5a5a5a5a5a5aULL); /* untouched */
        }
        free(copy);
        return 0;
}
