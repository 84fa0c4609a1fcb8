/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for the wire decoder. Any input must decode or fail with a defined
 * SG_PROTO_E* code; a frame that decodes must survive a re-encode through the writer with
 * every field intact, and re-encoding is canonical (a second pass gives identical bytes).
 * Anything else aborts, which libFuzzer reports as a crash.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                         \
        do {                                                                                \
                if (!(cond)) {                                                              \
                        fprintf(stderr, "fuzz_protocol: check failed: %s (line %d)\n", #cond, \
                                __LINE__);                                                  \
                        abort();                                                            \
                }                                                                           \
        } while (0)

/* ~66 KiB each: static, not per-input allocations. */
static struct sg_msg m1, m2;
static struct sg_writer w1, w2;

/* Re-encodes m in tag order. The public accessors tell the value kinds apart: a string tag
 * answers sg_msg_str, a bytes tag only sg_msg_bytes, a u64 tag neither. */
static size_t reencode(const struct sg_msg *m, struct sg_writer *w) {
        size_t len = 0;

        sg_writer_init(w, m->type);
        for (uint8_t t = 1; t < SG_F_MAX; t++) {
                const uint8_t *p;
                size_t n = 0;

                if (!sg_msg_has(m, t))
                        continue;
                if (sg_msg_str(m, t)) {
                        p = sg_msg_bytes(m, t, &n);
                        CHECK(p && strlen((const char *) p) == n);
                        sg_writer_strn(w, t, (const char *) p, n);
                } else if ((p = sg_msg_bytes(m, t, &n)))
                        sg_writer_bytes(w, t, p, n);
                else
                        sg_writer_u64(w, t, sg_msg_u64(m, t, 0));
        }
        CHECK(sg_writer_finish(w, &len) == SG_PROTO_OK);
        return len;
}

static void check_same(const struct sg_msg *a, const struct sg_msg *b) {
        CHECK(a->type == b->type);
        CHECK(a->present == b->present);
        for (uint8_t t = 1; t < SG_F_MAX; t++) {
                const uint8_t *pa, *pb;
                size_t na = 0, nb = 0;

                if (!sg_msg_has(a, t))
                        continue;
                pa = sg_msg_bytes(a, t, &na);
                pb = sg_msg_bytes(b, t, &nb);
                CHECK(!pa == !pb);
                if (pa) {
                        CHECK(na == nb);
                        CHECK(memcmp(pa, pb, na) == 0);
                } else
                        CHECK(sg_msg_u64(a, t, 0) == sg_msg_u64(b, t, 1));
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        size_t plen = 0;
        int r = sg_msg_decode(data, size, &m1);

        CHECK(r <= SG_PROTO_OK && r >= SG_PROTO_ETRAILING);
        if (size >= SG_FRAME_HEADER) {
                /* the header parser agrees with the decoder on what it can see */
                int h = sg_frame_header(data, &plen);
                if (r == SG_PROTO_OK)
                        CHECK(h == SG_PROTO_OK && plen == size - SG_FRAME_HEADER);
        }
        if (r < 0) {
                CHECK(m1.type == SG_MSG_NONE && m1.present == 0 && m1.used == 0);
                return 0;
        }

        size_t len1 = reencode(&m1, &w1);
        CHECK(sg_msg_decode(w1.buf, len1, &m2) == SG_PROTO_OK);
        check_same(&m1, &m2);

        size_t len2 = reencode(&m2, &w2);
        CHECK(len1 == len2 && memcmp(w1.buf, w2.buf, len1) == 0);
        /* same fields, so the same length as the input, whatever their order there */
        CHECK(len1 == size);
        return 0;
}
