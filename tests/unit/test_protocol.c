/* SPDX-License-Identifier: MIT */
/*
 * Wire codec: round trips of every message type, one test per class of malformed frame,
 * writer errors, and a fixed-seed mutation loop that must never crash and only ever yields a
 * decoded message or a defined error.
 *
 * The expected per-type and per-tag tables below are written out independently of
 * protocol.c on purpose: they are the spec the codec is checked against.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "protocol.h"

#define B(t) (UINT64_C(1) << (t))
#define ALL (((UINT64_C(1) << SG_F_MAX) - 1) & ~UINT64_C(1))

enum { K_NONE, K_STR, K_U64, K_BYTES };

static const struct {
        int kind;
        size_t max;
} tags[SG_F_MAX] = {
        [SG_F_USER] = { K_STR, 256 },       [SG_F_RHOST] = { K_STR, 256 },
        [SG_F_TTY] = { K_STR, 256 },        [SG_F_SERVICE] = { K_STR, 256 },
        [SG_F_USER_KNOWN] = { K_U64, 8 },   [SG_F_RESULT] = { K_U64, 8 },
        [SG_F_REASON] = { K_STR, 64 },      [SG_F_DECISION] = { K_U64, 8 },
        [SG_F_DELAY_MS] = { K_U64, 8 },     [SG_F_ERROR] = { K_U64, 8 },
        [SG_F_DETAIL] = { K_STR, 1024 },    [SG_F_EVENT] = { K_STR, 64 },
        [SG_F_TIME] = { K_U64, 8 },         [SG_F_UNTIL] = { K_U64, 8 },
        [SG_F_SINCE] = { K_U64, 8 },        [SG_F_LIMIT] = { K_U64, 8 },
        [SG_F_COUNT] = { K_U64, 8 },        [SG_F_KIND] = { K_STR, 32 },
        [SG_F_KEY] = { K_STR, 512 },        [SG_F_VERSION] = { K_STR, 64 },
        [SG_F_UPTIME] = { K_U64, 8 },       [SG_F_LOCKS] = { K_U64, 8 },
        [SG_F_SESSIONS] = { K_U64, 8 },     [SG_F_AUDIT_ROWS] = { K_U64, 8 },
        [SG_F_CONFIG] = { K_STR, 16384 },   [SG_F_ID] = { K_U64, 8 },
        [SG_F_PID] = { K_U64, 8 },          [SG_F_UID] = { K_U64, 8 },
        [SG_F_SEALED] = { K_BYTES, 512 },   [SG_F_TOKEN] = { K_STR, 256 },
        [SG_F_PERMITS] = { K_U64, 8 },      [SG_F_PERMITS_MAX] = { K_U64, 8 },
        [SG_F_FAILURES] = { K_U64, 8 },     [SG_F_SESSION_ID] = { K_STR, 64 },
        [SG_F_LOGIND_ID] = { K_STR, 64 },   [SG_F_IDLE] = { K_U64, 8 },
        [SG_F_STATE] = { K_STR, 16 },       [SG_F_MAC] = { K_BYTES, 64 },
        [SG_F_EPOCH] = { K_U64, 8 },        [SG_F_HOST] = { K_STR, 64 },
        [SG_F_FLEET] = { K_U64, 8 },
};

static const struct {
        uint8_t type;
        uint64_t allowed;
        uint64_t required;
} specs[] = {
        { SG_MSG_PRECHECK,
          B(SG_F_USER) | B(SG_F_SERVICE) | B(SG_F_RHOST) | B(SG_F_TTY) | B(SG_F_USER_KNOWN),
          B(SG_F_USER) | B(SG_F_SERVICE) },
        { SG_MSG_REPORT, B(SG_F_RESULT) | B(SG_F_REASON) | B(SG_F_USER_KNOWN) | B(SG_F_TOKEN),
          B(SG_F_RESULT) },
        { SG_MSG_EVENT,
          B(SG_F_EVENT) | B(SG_F_USER) | B(SG_F_SERVICE) | B(SG_F_RHOST) | B(SG_F_TTY) |
                  B(SG_F_REASON) | B(SG_F_DETAIL) | B(SG_F_USER_KNOWN),
          B(SG_F_EVENT) },
        { SG_MSG_STATUS, 0, 0 },
        { SG_MSG_LOCKS, 0, 0 },
        { SG_MSG_UNLOCK, B(SG_F_KIND) | B(SG_F_KEY) | B(SG_F_FLEET), B(SG_F_KIND) | B(SG_F_KEY) },
        { SG_MSG_AUDIT_QUERY,
          B(SG_F_USER) | B(SG_F_EVENT) | B(SG_F_RHOST) | B(SG_F_SINCE) | B(SG_F_UNTIL) |
                  B(SG_F_LIMIT),
          0 },
        { SG_MSG_AUDIT_VERIFY, 0, 0 },
        { SG_MSG_ACCOUNT, B(SG_F_USER) | B(SG_F_SERVICE) | B(SG_F_RHOST) | B(SG_F_TTY),
          B(SG_F_USER) | B(SG_F_SERVICE) },
        { SG_MSG_SESSION_OPEN,
          B(SG_F_USER) | B(SG_F_UID) | B(SG_F_SERVICE) | B(SG_F_PID) | B(SG_F_RHOST) | B(SG_F_TTY) |
                  B(SG_F_LOGIND_ID),
          B(SG_F_USER) | B(SG_F_UID) | B(SG_F_SERVICE) | B(SG_F_PID) },
        { SG_MSG_SESSION_CLOSE, B(SG_F_SESSION_ID), B(SG_F_SESSION_ID) },
        { SG_MSG_SESSIONS, 0, 0 },
        { SG_MSG_SESSION_KILL, B(SG_F_SESSION_ID), B(SG_F_SESSION_ID) },
        { SG_MSG_TOKEN_ISSUE, B(SG_F_USER) | B(SG_F_UNTIL), B(SG_F_USER) },
        { SG_MSG_TOKEN_REVOKE, B(SG_F_ID), B(SG_F_ID) },
        { SG_MSG_TOKENS, 0, 0 },
        { SG_MSG_FLEET_EXPORT, B(SG_F_ID) | B(SG_F_LIMIT), B(SG_F_ID) },
        { SG_MSG_FLEET_LOCK,
          B(SG_F_KIND) | B(SG_F_KEY) | B(SG_F_UNTIL) | B(SG_F_HOST) | B(SG_F_ID) | B(SG_F_REASON),
          B(SG_F_KIND) | B(SG_F_KEY) | B(SG_F_UNTIL) | B(SG_F_HOST) | B(SG_F_ID) },
        { SG_MSG_FLEET_UNLOCK, B(SG_F_KIND) | B(SG_F_KEY) | B(SG_F_HOST) | B(SG_F_ID) | B(SG_F_STATE),
          B(SG_F_KIND) | B(SG_F_KEY) | B(SG_F_HOST) | B(SG_F_ID) },
        { SG_MSG_OK, ALL, 0 },
        { SG_MSG_ERROR, B(SG_F_ERROR) | B(SG_F_DETAIL), B(SG_F_ERROR) },
        { SG_MSG_ROW, ALL, 0 },
};
#define N_SPECS (sizeof(specs) / sizeof(specs[0]))

static bool type_known(unsigned t) {
        for (size_t i = 0; i < N_SPECS; i++)
                if (specs[i].type == t)
                        return true;
        return false;
}

/* ---- raw frame builder, for frames the writer refuses to make ---- */

struct raw {
        size_t len;
        uint8_t b[SG_FRAME_MAX + 4096];
};

static void put32(uint8_t *p, uint32_t v) {
        p[0] = (uint8_t) (v >> 24);
        p[1] = (uint8_t) (v >> 16);
        p[2] = (uint8_t) (v >> 8);
        p[3] = (uint8_t) v;
}

static void raw_init(struct raw *r, uint8_t type) {
        r->b[0] = 'S';
        r->b[1] = 'G';
        r->b[2] = SG_PROTO_VERSION;
        r->b[3] = type;
        put32(r->b + 4, 0);
        r->len = SG_FRAME_HEADER;
}

static void raw_field(struct raw *r, uint8_t tag, const void *v, size_t len) {
        assert_true(r->len + 3 + len <= sizeof(r->b));
        r->b[r->len] = tag;
        r->b[r->len + 1] = (uint8_t) (len >> 8);
        r->b[r->len + 2] = (uint8_t) len;
        if (len > 0)
                memcpy(r->b + r->len + 3, v, len);
        r->len += 3 + len;
}

static void raw_str(struct raw *r, uint8_t tag, const char *s) {
        raw_field(r, tag, s, strlen(s));
}

static void raw_u64(struct raw *r, uint8_t tag, uint64_t v) {
        uint8_t b[8];
        put32(b, (uint32_t) (v >> 32));
        put32(b + 4, (uint32_t) v);
        raw_field(r, tag, b, 8);
}

/* Makes payload_len agree with the bytes written. */
static void raw_seal(struct raw *r) {
        put32(r->b + 4, (uint32_t) (r->len - SG_FRAME_HEADER));
}

static struct raw *raw_new(uint8_t type) {
        struct raw *r = malloc(sizeof(*r));
        assert_non_null(r);
        raw_init(r, type);
        return r;
}

static struct sg_msg *msg_new(void) {
        struct sg_msg *m = malloc(sizeof(*m));
        assert_non_null(m);
        memset(m, 0xAA, sizeof(*m)); /* garbage in: the decoder must not rely on zeroed input */
        return m;
}

static struct sg_writer *writer_new(void) {
        struct sg_writer *w = malloc(sizeof(*w));
        assert_non_null(w);
        return w;
}

static bool msg_is_zero(const struct sg_msg *m) {
        const uint8_t *p = (const uint8_t *) m;
        for (size_t i = 0; i < sizeof(*m); i++)
                if (p[i])
                        return false;
        return true;
}

/* Decodes r and asserts the result code; on failure the message must be fully zeroed. */
static void expect_decode(const struct raw *r, int want) {
        struct sg_msg *m = msg_new();
        int got = sg_msg_decode(r->b, r->len, m);
        if (got != want)
                fail_msg("decode: got %d (%s), want %d (%s)", got, sg_proto_strerror(got), want,
                         sg_proto_strerror(want));
        if (want < 0) {
                assert_true(msg_is_zero(m));
                assert_int_equal(m->type, SG_MSG_NONE);
        }
        free(m);
}

/* ---- value patterns used by the round trips ---- */

static void fill_str(char *buf, size_t len, uint8_t tag) {
        /* Every byte value but NUL, control and high bytes included: the codec is 8-bit clean
         * (content validation is not its job). */
        for (size_t i = 0; i < len; i++)
                buf[i] = (char) (1 + (i * 7 + tag) % 255);
}

static uint64_t u64_for(uint8_t tag) {
        return tag % 3 == 0 ? UINT64_MAX : UINT64_C(0x0102030405060708) ^ tag;
}

static void write_value(struct sg_writer *w, uint8_t tag, size_t len) {
        static char buf[16384];
        switch (tags[tag].kind) {
        case K_STR:
                fill_str(buf, len, tag);
                sg_writer_strn(w, tag, buf, len);
                break;
        case K_BYTES:
                for (size_t i = 0; i < len; i++)
                        buf[i] = (char) (i * 13 + tag); /* includes NULs */
                sg_writer_bytes(w, tag, buf, len);
                break;
        case K_U64:
                sg_writer_u64(w, tag, u64_for(tag));
                break;
        default:
                fail_msg("no such tag %u", tag);
        }
}

static void check_value(const struct sg_msg *m, uint8_t tag, size_t len) {
        static char want[16384];
        size_t got_len = 0;

        assert_true(sg_msg_has(m, tag));
        switch (tags[tag].kind) {
        case K_STR: {
                const char *s = sg_msg_str(m, tag);
                assert_non_null(s);
                assert_int_equal(strlen(s), len);
                fill_str(want, len, tag);
                assert_memory_equal(s, want, len);
                assert_non_null(sg_msg_bytes(m, tag, &got_len));
                assert_int_equal(got_len, len);
                assert_int_equal(sg_msg_u64(m, tag, 42), 42);
                break;
        }
        case K_BYTES: {
                const uint8_t *p = sg_msg_bytes(m, tag, &got_len);
                assert_non_null(p);
                assert_int_equal(got_len, len);
                for (size_t i = 0; i < len; i++)
                        assert_int_equal(p[i], (uint8_t) (i * 13 + tag));
                assert_null(sg_msg_str(m, tag));
                break;
        }
        case K_U64:
                assert_true(sg_msg_u64(m, tag, 0) == u64_for(tag));
                assert_null(sg_msg_str(m, tag));
                assert_null(sg_msg_bytes(m, tag, &got_len));
                break;
        }
}

/* ---- round trips ---- */

static void roundtrip(uint8_t type, uint64_t fields, bool max_len) {
        struct sg_writer *w = writer_new();
        struct sg_msg *m = msg_new();
        size_t len = 0;

        sg_writer_init(w, type);
        for (uint8_t t = 1; t < SG_F_MAX; t++)
                if (fields & B(t))
                        write_value(w, t, max_len ? tags[t].max : t % 5);
        assert_int_equal(sg_writer_finish(w, &len), 0);
        assert_int_equal(len, w->len);

        assert_int_equal(sg_msg_decode(w->buf, len, m), 0);
        assert_int_equal(m->type, type);
        assert_true(m->present == fields);
        for (uint8_t t = 1; t < SG_F_MAX; t++) {
                if (fields & B(t))
                        check_value(m, t, max_len ? tags[t].max : t % 5);
                else
                        assert_false(sg_msg_has(m, t));
        }
        free(m);
        free(w);
}

static void test_roundtrip_all_types(void **state) {
        (void) state;
        for (size_t i = 0; i < N_SPECS; i++) {
                roundtrip(specs[i].type, specs[i].allowed, true);  /* every field, longest */
                roundtrip(specs[i].type, specs[i].allowed, false); /* short and empty values */
                roundtrip(specs[i].type, specs[i].required, true); /* the minimum */
        }
}

static void test_header_layout(void **state) {
        struct sg_writer *w = writer_new();
        size_t len = 0;
        (void) state;

        sg_writer_init(w, SG_MSG_PRECHECK);
        sg_writer_str(w, SG_F_USER, "root");
        sg_writer_str(w, SG_F_SERVICE, "sshd");
        sg_writer_u64(w, SG_F_USER_KNOWN, 1);
        assert_int_equal(sg_writer_finish(w, &len), 0);

        static const uint8_t want[] = {
                'S', 'G', 1, 1, 0, 0, 0, 25,
                1, 0, 4, 'r', 'o', 'o', 't',
                4, 0, 4, 's', 's', 'h', 'd',
                5, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1,
        };
        assert_int_equal(len, sizeof(want));
        assert_memory_equal(w->buf, want, sizeof(want));

        size_t plen = 0;
        assert_int_equal(sg_frame_header(w->buf, &plen), 0);
        assert_int_equal(plen, 25);

        /* finish is idempotent */
        size_t len2 = 0;
        assert_int_equal(sg_writer_finish(w, &len2), 0);
        assert_int_equal(len2, len);
        free(w);
}

/* The writer accepts exactly the allowed tags per type, and the decoder refuses the rest. */
static void test_allowed_sets(void **state) {
        struct sg_writer *w = writer_new();
        (void) state;

        for (size_t i = 0; i < N_SPECS; i++) {
                for (uint8_t t = 1; t < SG_F_MAX; t++) {
                        size_t len;
                        sg_writer_init(w, specs[i].type);
                        write_value(w, t, tags[t].kind == K_U64 ? 8 : 1);
                        int r = sg_writer_finish(w, &len);
                        if (specs[i].allowed & B(t)) {
                                assert_int_equal(r, 0);
                                continue;
                        }
                        assert_int_equal(r, SG_PROTO_EUNKNOWN);

                        /* Same field by hand, with the required fields present. */
                        struct raw *rf = raw_new(specs[i].type);
                        for (uint8_t q = 1; q < SG_F_MAX; q++)
                                if (specs[i].required & B(q)) {
                                        if (tags[q].kind == K_U64)
                                                raw_u64(rf, q, 1);
                                        else
                                                raw_str(rf, q, "x");
                                }
                        if (tags[t].kind == K_U64)
                                raw_u64(rf, t, 1);
                        else
                                raw_str(rf, t, "x");
                        raw_seal(rf);
                        expect_decode(rf, SG_PROTO_EUNKNOWN);
                        free(rf);
                }
        }
        free(w);
}

/* ---- malformed frames, one class each ---- */

static void test_truncated_header(void **state) {
        struct raw *r = raw_new(SG_MSG_STATUS);
        struct sg_msg *m = msg_new();
        (void) state;

        raw_seal(r);
        for (size_t n = 0; n < SG_FRAME_HEADER; n++) {
                r->len = n;
                expect_decode(r, SG_PROTO_ETRUNC);
        }
        r->len = SG_FRAME_HEADER;
        expect_decode(r, 0);
        assert_int_equal(sg_msg_decode(NULL, 8, m), SG_PROTO_ETRUNC);
        free(m);
        free(r);
}

static void test_truncated_field_header(void **state) {
        struct raw *r = raw_new(SG_MSG_OK);
        (void) state;

        for (size_t n = 1; n < 3; n++) {
                raw_init(r, SG_MSG_OK);
                memset(r->b + r->len, SG_F_USER, n);
                r->len += n;
                raw_seal(r);
                expect_decode(r, SG_PROTO_ETRUNC);
        }
        /* after a good field too */
        raw_init(r, SG_MSG_OK);
        raw_str(r, SG_F_USER, "alice");
        r->b[r->len++] = SG_F_TTY;
        r->b[r->len++] = 0;
        raw_seal(r);
        expect_decode(r, SG_PROTO_ETRUNC);
        free(r);
}

static void test_field_beyond_payload(void **state) {
        struct raw *r = raw_new(SG_MSG_OK);
        (void) state;

        raw_str(r, SG_F_USER, "alice");
        r->b[SG_FRAME_HEADER + 2] = 6; /* claims one byte more than there is */
        raw_seal(r);
        expect_decode(r, SG_PROTO_ETRUNC);

        raw_init(r, SG_MSG_OK);
        raw_str(r, SG_F_USER, "alice");
        r->b[SG_FRAME_HEADER + 1] = 0xff;
        r->b[SG_FRAME_HEADER + 2] = 0xff;
        raw_seal(r);
        expect_decode(r, SG_PROTO_ETRUNC);
        free(r);
}

static void test_payload_len_mismatch(void **state) {
        struct raw *r = raw_new(SG_MSG_OK);
        (void) state;

        raw_str(r, SG_F_USER, "alice");
        raw_seal(r);
        expect_decode(r, 0);

        r->len--; /* header promises more than we have */
        expect_decode(r, SG_PROTO_ETRUNC);
        r->len++;

        r->b[r->len] = 0; /* one byte more than the header promises */
        r->len++;
        expect_decode(r, SG_PROTO_ETRAILING);
        free(r);
}

static void test_trailing_bytes(void **state) {
        struct raw *r = raw_new(SG_MSG_PRECHECK);
        (void) state;

        raw_str(r, SG_F_USER, "bob");
        raw_str(r, SG_F_SERVICE, "sshd");
        raw_seal(r);
        /* a whole valid field appended after the declared payload */
        raw_str(r, SG_F_TTY, "pts/0");
        expect_decode(r, SG_PROTO_ETRAILING);
        /* and a second frame glued to the first */
        raw_init(r, SG_MSG_STATUS);
        memcpy(r->b + SG_FRAME_HEADER, r->b, SG_FRAME_HEADER);
        r->len = 2 * SG_FRAME_HEADER;
        expect_decode(r, SG_PROTO_ETRAILING);
        free(r);
}

static void test_oversized_frame(void **state) {
        struct raw *r = raw_new(SG_MSG_OK);
        size_t plen = 7;
        (void) state;

        put32(r->b + 4, SG_PAYLOAD_MAX + 1);
        assert_int_equal(sg_frame_header(r->b, &plen), SG_PROTO_EOVERSIZE);
        assert_int_equal(plen, 7); /* untouched on failure */
        expect_decode(r, SG_PROTO_EOVERSIZE);

        put32(r->b + 4, UINT32_MAX);
        assert_int_equal(sg_frame_header(r->b, &plen), SG_PROTO_EOVERSIZE);
        expect_decode(r, SG_PROTO_EOVERSIZE);

        put32(r->b + 4, SG_PAYLOAD_MAX);
        assert_int_equal(sg_frame_header(r->b, &plen), 0);
        assert_int_equal(plen, SG_PAYLOAD_MAX);

        /* A whole frame past the cap, with a consistent-looking header. */
        r->len = SG_FRAME_MAX + 1;
        memset(r->b + SG_FRAME_HEADER, 0, r->len - SG_FRAME_HEADER);
        put32(r->b + 4, (uint32_t) (r->len - SG_FRAME_HEADER));
        expect_decode(r, SG_PROTO_EOVERSIZE);
        free(r);
}

static void test_oversized_field(void **state) {
        static const uint8_t strtags[] = { SG_F_USER, SG_F_RHOST, SG_F_TTY, SG_F_SERVICE,
                                           SG_F_REASON, SG_F_DETAIL, SG_F_EVENT, SG_F_KIND,
                                           SG_F_KEY, SG_F_VERSION, SG_F_CONFIG, SG_F_TOKEN,
                                           SG_F_SESSION_ID, SG_F_SEALED, SG_F_STATE,
                                           SG_F_MAC, SG_F_HOST };
        static char buf[16385];
        struct raw *r = raw_new(SG_MSG_OK);
        (void) state;

        memset(buf, 'a', sizeof(buf));
        for (size_t i = 0; i < sizeof(strtags); i++) {
                uint8_t t = strtags[i];
                raw_init(r, SG_MSG_OK);
                raw_field(r, t, buf, tags[t].max);
                raw_seal(r);
                expect_decode(r, 0);

                raw_init(r, SG_MSG_OK);
                raw_field(r, t, buf, tags[t].max + 1);
                raw_seal(r);
                expect_decode(r, SG_PROTO_EOVERSIZE);
        }
        free(r);
}

static void test_bad_magic_version_type(void **state) {
        struct raw *r = raw_new(SG_MSG_STATUS);
        (void) state;

        raw_seal(r);
        r->b[0] = 's';
        expect_decode(r, SG_PROTO_EMAGIC);
        r->b[0] = 'S';
        r->b[1] = 'X';
        expect_decode(r, SG_PROTO_EMAGIC);
        r->b[1] = 'G';

        r->b[2] = 0;
        expect_decode(r, SG_PROTO_EVERSION);
        r->b[2] = 2;
        expect_decode(r, SG_PROTO_EVERSION);
        r->b[2] = SG_PROTO_VERSION;
        expect_decode(r, 0);

        for (unsigned t = 0; t < 256; t++) {
                r->b[3] = (uint8_t) t;
                if (type_known(t))
                        continue; /* (might still need fields: checked elsewhere) */
                expect_decode(r, SG_PROTO_ETYPE);
                struct sg_writer *w = writer_new();
                size_t len;
                sg_writer_init(w, (uint8_t) t);
                assert_int_equal(sg_writer_finish(w, &len), SG_PROTO_ETYPE);
                free(w);
        }
        free(r);
}

static void test_unknown_tag(void **state) {
        static const uint8_t bad[] = { 0, SG_F_MAX, SG_F_MAX + 1, 63, 64, 65, 127, 200, 255 };
        struct raw *r = raw_new(SG_MSG_OK);
        (void) state;

        for (size_t i = 0; i < sizeof(bad); i++) {
                raw_init(r, SG_MSG_OK);
                raw_str(r, bad[i], "x");
                raw_seal(r);
                expect_decode(r, SG_PROTO_EUNKNOWN);
                raw_init(r, SG_MSG_ROW);
                raw_u64(r, SG_F_ID, 1);
                raw_field(r, bad[i], NULL, 0);
                raw_seal(r);
                expect_decode(r, SG_PROTO_EUNKNOWN);
        }
        free(r);
}

static void test_tag_not_allowed(void **state) {
        struct raw *r = raw_new(SG_MSG_PRECHECK);
        (void) state;

        raw_str(r, SG_F_USER, "bob");
        raw_str(r, SG_F_SERVICE, "sshd");
        raw_u64(r, SG_F_ERROR, 1);
        raw_seal(r);
        expect_decode(r, SG_PROTO_EUNKNOWN);

        /* a status request carries nothing at all */
        raw_init(r, SG_MSG_STATUS);
        raw_str(r, SG_F_USER, "bob");
        raw_seal(r);
        expect_decode(r, SG_PROTO_EUNKNOWN);
        free(r);
}

static void test_duplicate_tag(void **state) {
        struct raw *r = raw_new(SG_MSG_PRECHECK);
        (void) state;

        raw_str(r, SG_F_USER, "bob");
        raw_str(r, SG_F_SERVICE, "sshd");
        raw_str(r, SG_F_USER, "root");
        raw_seal(r);
        expect_decode(r, SG_PROTO_EDUP);

        raw_init(r, SG_MSG_OK);
        raw_u64(r, SG_F_COUNT, 1);
        raw_u64(r, SG_F_COUNT, 1);
        raw_seal(r);
        expect_decode(r, SG_PROTO_EDUP);
        free(r);
}

static void test_u64_wrong_size(void **state) {
        static const uint8_t zeros[16];
        struct raw *r = raw_new(SG_MSG_OK);
        (void) state;

        for (size_t n = 0; n <= sizeof(zeros); n++) {
                raw_init(r, SG_MSG_OK);
                raw_field(r, SG_F_LIMIT, zeros, n);
                raw_seal(r);
                expect_decode(r, n == 8 ? 0 : SG_PROTO_EBADVAL);
        }
        /* big-endian */
        raw_init(r, SG_MSG_OK);
        static const uint8_t be[8] = { 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef };
        raw_field(r, SG_F_LIMIT, be, 8);
        raw_seal(r);
        struct sg_msg *m = msg_new();
        assert_int_equal(sg_msg_decode(r->b, r->len, m), 0);
        assert_true(sg_msg_u64(m, SG_F_LIMIT, 0) == UINT64_C(0x0123456789abcdef));
        free(m);
        free(r);
}

static void test_nul_in_string(void **state) {
        static const char *const vals[] = { "\0bob", "b\0ob", "bob\0", "\0" };
        static const size_t lens[] = { 4, 4, 4, 1 };
        struct raw *r = raw_new(SG_MSG_OK);
        (void) state;

        for (size_t i = 0; i < 4; i++) {
                raw_init(r, SG_MSG_OK);
                raw_field(r, SG_F_USER, vals[i], lens[i]);
                raw_seal(r);
                expect_decode(r, SG_PROTO_EBADVAL);
        }
        /* NUL is fine in a bytes field, and an empty string is a string */
        raw_init(r, SG_MSG_OK);
        raw_field(r, SG_F_SEALED, "\0\0\0", 3);
        raw_field(r, SG_F_USER, NULL, 0);
        raw_seal(r);
        struct sg_msg *m = msg_new();
        assert_int_equal(sg_msg_decode(r->b, r->len, m), 0);
        size_t len = 9;
        assert_non_null(sg_msg_bytes(m, SG_F_SEALED, &len));
        assert_int_equal(len, 3);
        assert_string_equal(sg_msg_str(m, SG_F_USER), "");
        free(m);
        free(r);
}

static void test_missing_required(void **state) {
        struct raw *r = raw_new(SG_MSG_PRECHECK);
        (void) state;

        for (size_t i = 0; i < N_SPECS; i++) {
                for (uint8_t t = 1; t < SG_F_MAX; t++) {
                        if (!(specs[i].required & B(t)))
                                continue;
                        raw_init(r, specs[i].type);
                        for (uint8_t q = 1; q < SG_F_MAX; q++) {
                                if (!(specs[i].required & B(q)) || q == t)
                                        continue;
                                if (tags[q].kind == K_U64)
                                        raw_u64(r, q, 2);
                                else
                                        raw_str(r, q, "y");
                        }
                        raw_seal(r);
                        expect_decode(r, SG_PROTO_EMISSING);
                }
        }
        free(r);
}

/* ---- writer ---- */

static void test_writer_errors(void **state) {
        struct sg_writer *w = writer_new();
        size_t len = 1234;
        (void) state;

        /* too long, and sticky: later valid fields do not clear it */
        char big[258];
        memset(big, 'u', sizeof(big));
        big[257] = 0;
        sg_writer_init(w, SG_MSG_PRECHECK);
        sg_writer_str(w, SG_F_USER, big);
        assert_int_equal(w->err, SG_PROTO_ENOSPC);
        sg_writer_str(w, SG_F_SERVICE, "sshd");
        assert_int_equal(sg_writer_finish(w, &len), SG_PROTO_ENOSPC);
        assert_int_equal(len, 1234);

        big[256] = 0; /* exactly the cap */
        sg_writer_init(w, SG_MSG_PRECHECK);
        sg_writer_str(w, SG_F_USER, big);
        assert_int_equal(sg_writer_finish(w, &len), 0);
        len = 1234;

        /* a long string without terminator past cap + 1 is never read past it */
        char *unterminated = malloc(257);
        assert_non_null(unterminated);
        memset(unterminated, 'v', 257);
        sg_writer_init(w, SG_MSG_PRECHECK);
        sg_writer_str(w, SG_F_USER, unterminated);
        assert_int_equal(w->err, SG_PROTO_ENOSPC);
        free(unterminated);

        sg_writer_init(w, SG_MSG_OK);
        sg_writer_u64(w, SG_F_USER, 1);
        assert_int_equal(sg_writer_finish(w, &len), SG_PROTO_EBADVAL);

        sg_writer_init(w, SG_MSG_OK);
        sg_writer_str(w, SG_F_COUNT, "1");
        assert_int_equal(sg_writer_finish(w, &len), SG_PROTO_EBADVAL);

        sg_writer_init(w, SG_MSG_OK);
        sg_writer_bytes(w, SG_F_USER, "x", 1);
        assert_int_equal(sg_writer_finish(w, &len), SG_PROTO_EBADVAL);

        sg_writer_init(w, SG_MSG_OK);
        sg_writer_str(w, SG_F_SEALED, "x");
        assert_int_equal(sg_writer_finish(w, &len), SG_PROTO_EBADVAL);

        sg_writer_init(w, SG_MSG_OK);
        sg_writer_strn(w, SG_F_USER, "a\0b", 3);
        assert_int_equal(sg_writer_finish(w, &len), SG_PROTO_EBADVAL);

        sg_writer_init(w, SG_MSG_OK);
        sg_writer_str(w, SG_F_USER, NULL);
        assert_int_equal(sg_writer_finish(w, &len), SG_PROTO_EBADVAL);

        sg_writer_init(w, SG_MSG_OK);
        sg_writer_bytes(w, SG_F_SEALED, NULL, 3);
        assert_int_equal(sg_writer_finish(w, &len), SG_PROTO_EBADVAL);

        sg_writer_init(w, SG_MSG_OK);
        sg_writer_u64(w, 0, 1);
        assert_int_equal(sg_writer_finish(w, &len), SG_PROTO_EUNKNOWN);

        sg_writer_init(w, SG_MSG_OK);
        sg_writer_u64(w, 200, 1);
        assert_int_equal(sg_writer_finish(w, &len), SG_PROTO_EUNKNOWN);

        sg_writer_init(w, SG_MSG_ERROR);
        sg_writer_str(w, SG_F_USER, "x");
        assert_int_equal(sg_writer_finish(w, &len), SG_PROTO_EUNKNOWN);

        sg_writer_init(w, SG_MSG_OK);
        sg_writer_u64(w, SG_F_ID, 1);
        sg_writer_u64(w, SG_F_ID, 2);
        assert_int_equal(sg_writer_finish(w, &len), SG_PROTO_EDUP);

        char sealed[513] = { 0 };
        sg_writer_init(w, SG_MSG_OK);
        sg_writer_bytes(w, SG_F_SEALED, sealed, sizeof(sealed));
        assert_int_equal(sg_writer_finish(w, &len), SG_PROTO_ENOSPC);

        /* first error wins */
        sg_writer_init(w, SG_MSG_OK);
        sg_writer_u64(w, SG_F_USER, 1);
        sg_writer_u64(w, 0, 1);
        assert_int_equal(sg_writer_finish(w, &len), SG_PROTO_EBADVAL);

        /* no failed finish touched the out-parameter */
        assert_int_equal(len, 1234);
        free(w);
}

static void test_accessors(void **state) {
        struct sg_writer *w = writer_new();
        struct sg_msg *m = msg_new();
        size_t len;
        (void) state;

        sg_writer_init(w, SG_MSG_ERROR);
        sg_writer_u64(w, SG_F_ERROR, SG_ERR_PERMISSION);
        assert_int_equal(sg_writer_finish(w, &len), 0);
        assert_int_equal(sg_msg_decode(w->buf, len, m), 0);

        assert_true(sg_msg_has(m, SG_F_ERROR));
        assert_false(sg_msg_has(m, SG_F_DETAIL));
        assert_false(sg_msg_has(m, 0));
        assert_false(sg_msg_has(m, SG_F_MAX));
        assert_false(sg_msg_has(m, 255));
        assert_null(sg_msg_str(m, SG_F_DETAIL));
        assert_null(sg_msg_str(m, 255));
        assert_int_equal(sg_msg_u64(m, SG_F_ERROR, 0), SG_ERR_PERMISSION);
        assert_int_equal(sg_msg_u64(m, SG_F_LIMIT, 77), 77);
        assert_int_equal(sg_msg_u64(m, 255, 78), 78);
        len = 5;
        assert_null(sg_msg_bytes(m, SG_F_SEALED, &len));
        assert_int_equal(len, 5);
        free(m);
        free(w);
}

static void test_names(void **state) {
        (void) state;
        for (int c = SG_PROTO_ENOSPC; c <= SG_PROTO_OK; c++) {
                assert_non_null(sg_proto_strerror(c));
                for (int d = c + 1; d <= SG_PROTO_OK; d++)
                        assert_string_not_equal(sg_proto_strerror(c), sg_proto_strerror(d));
        }
        assert_string_equal(sg_proto_strerror(-99), "unknown protocol error");
        assert_string_equal(sg_err_str(SG_ERR_PERMISSION), "permission denied");
        for (uint64_t e = SG_ERR_PROTOCOL; e <= SG_ERR_BUSY; e++)
                assert_string_not_equal(sg_err_str(e), "unknown error");
        assert_string_equal(sg_err_str(0), "unknown error");
        assert_string_equal(sg_err_str(UINT64_MAX), "unknown error");
        assert_string_equal(sg_msg_type_name(SG_MSG_PRECHECK), "PRECHECK");
        assert_string_equal(sg_msg_type_name(SG_MSG_SESSION_CLOSE), "SESSION_CLOSE");
        assert_string_equal(sg_msg_type_name(SG_MSG_ROW), "ROW");
        assert_string_equal(sg_msg_type_name(SG_MSG_FLEET_EXPORT), "FLEET_EXPORT");
        assert_string_equal(sg_msg_type_name(SG_MSG_FLEET_LOCK), "FLEET_LOCK");
        assert_string_equal(sg_msg_type_name(SG_MSG_FLEET_UNLOCK), "FLEET_UNLOCK");
        /* The fleet numbers are shared with the PostgreSQL helper: they never move. */
        assert_int_equal(SG_MSG_FLEET_EXPORT, 17);
        assert_int_equal(SG_MSG_FLEET_LOCK, 18);
        assert_int_equal(SG_MSG_FLEET_UNLOCK, 19);
        assert_int_equal(SG_F_MAC, 38);
        assert_int_equal(SG_F_EPOCH, 39);
        assert_int_equal(SG_F_HOST, 40);
        assert_int_equal(SG_F_FLEET, 41);
        assert_string_equal(sg_msg_type_name(0x7f), "UNKNOWN");
        for (size_t i = 0; i < N_SPECS; i++)
                assert_string_not_equal(sg_msg_type_name(specs[i].type), "UNKNOWN");
}

/* ---- mutation property ---- */

static uint64_t rng_state = UINT64_C(0x5eC9a4dF00d1234);

static uint64_t rnd(void) {
        /* xorshift64*: fixed seed, so a failure reproduces exactly */
        rng_state ^= rng_state >> 12;
        rng_state ^= rng_state << 25;
        rng_state ^= rng_state >> 27;
        return rng_state * UINT64_C(2685821657736338717);
}

static size_t rnd_below(size_t n) {
        return n ? (size_t) (rnd() % n) : 0;
}

static void mutate(struct raw *r) {
        size_t ops = 1 + rnd_below(4);
        for (size_t k = 0; k < ops; k++) {
                size_t pos = rnd_below(r->len + 1);
                switch (rnd_below(8)) {
                case 0: /* flip a bit */
                        if (r->len)
                                r->b[rnd_below(r->len)] ^= (uint8_t) (1u << rnd_below(8));
                        break;
                case 1: { /* interesting byte */
                        static const uint8_t v[] = { 0, 1, 3, 7, 8, 9, 0x7f, 0x80, 0xfe, 0xff };
                        if (r->len)
                                r->b[rnd_below(r->len)] = v[rnd_below(sizeof(v))];
                        break;
                }
                case 2: /* truncate */
                        r->len = rnd_below(r->len + 1);
                        break;
                case 3: { /* insert random bytes */
                        size_t n = 1 + rnd_below(16);
                        if (r->len + n > SG_FRAME_MAX + 16)
                                break;
                        memmove(r->b + pos + n, r->b + pos, r->len - pos);
                        for (size_t i = 0; i < n; i++)
                                r->b[pos + i] = (uint8_t) rnd();
                        r->len += n;
                        break;
                }
                case 4: { /* delete a range */
                        size_t n = rnd_below(r->len - pos + 1);
                        memmove(r->b + pos, r->b + pos + n, r->len - pos - n);
                        r->len -= n;
                        break;
                }
                case 5: { /* duplicate a chunk (repeats fields) */
                        size_t n = rnd_below(r->len - pos + 1);
                        if (r->len + n > SG_FRAME_MAX + 16)
                                break;
                        memmove(r->b + pos + n, r->b + pos, r->len - pos);
                        r->len += n;
                        break;
                }
                case 6: /* random type byte: reach every message type's rules */
                        if (r->len > 3)
                                r->b[3] = (uint8_t) (rnd_below(2) ? rnd_below(SG_MSG_REQUEST_MAX)
                                                                 : 0x80 + rnd_below(3));
                        break;
                default: /* overwrite a 16-bit field length */
                        if (r->len >= SG_FRAME_HEADER + 3) {
                                size_t at = SG_FRAME_HEADER + rnd_below(r->len - SG_FRAME_HEADER - 2);
                                r->b[at + 1] = (uint8_t) rnd();
                                r->b[at + 2] = (uint8_t) rnd();
                        }
                        break;
                }
        }
        /* Most of the time keep the header consistent, so the field walker gets exercised. */
        if (rnd_below(4) != 0 && r->len >= SG_FRAME_HEADER)
                raw_seal(r);
}

/* Re-encodes m through the writer; returns the decode result of the new frame. */
static void reencode_equal(const struct sg_msg *m, struct sg_writer *w, struct sg_msg *m2) {
        size_t len;

        sg_writer_init(w, m->type);
        for (uint8_t t = 1; t < SG_F_MAX; t++) {
                if (!sg_msg_has(m, t))
                        continue;
                size_t n = 0;
                const uint8_t *p = sg_msg_bytes(m, t, &n);
                if (tags[t].kind == K_STR)
                        sg_writer_strn(w, t, (const char *) p, n);
                else if (tags[t].kind == K_BYTES)
                        sg_writer_bytes(w, t, p, n);
                else
                        sg_writer_u64(w, t, sg_msg_u64(m, t, 0));
        }
        assert_int_equal(sg_writer_finish(w, &len), 0);
        assert_int_equal(sg_msg_decode(w->buf, len, m2), 0);
        assert_int_equal(m2->type, m->type);
        assert_true(m2->present == m->present);
        for (uint8_t t = 1; t < SG_F_MAX; t++) {
                if (!sg_msg_has(m, t))
                        continue;
                size_t a = 0, b = 0;
                if (tags[t].kind == K_U64) {
                        assert_true(sg_msg_u64(m, t, 0) == sg_msg_u64(m2, t, 1));
                        continue;
                }
                const uint8_t *pa = sg_msg_bytes(m, t, &a), *pb = sg_msg_bytes(m2, t, &b);
                assert_int_equal(a, b);
                assert_memory_equal(pa, pb, a);
        }
}

static void test_mutations(void **state) {
        struct raw *seeds[4], *r = raw_new(SG_MSG_OK);
        struct sg_writer *w = writer_new();
        struct sg_msg *m = msg_new(), *m2 = msg_new();
        size_t counts[16] = { 0 };
        (void) state;

        for (size_t i = 0; i < 4; i++)
                seeds[i] = raw_new(SG_MSG_OK);
        raw_init(seeds[0], SG_MSG_PRECHECK);
        raw_str(seeds[0], SG_F_USER, "alice");
        raw_str(seeds[0], SG_F_SERVICE, "sshd");
        raw_str(seeds[0], SG_F_RHOST, "192.0.2.7");
        raw_u64(seeds[0], SG_F_USER_KNOWN, 1);
        raw_init(seeds[1], SG_MSG_OK);
        raw_u64(seeds[1], SG_F_DECISION, SG_DECISION_ALLOW);
        raw_u64(seeds[1], SG_F_DELAY_MS, 0);
        raw_field(seeds[1], SG_F_SEALED, "\0\1\2\3", 4);
        raw_str(seeds[1], SG_F_DETAIL, "ok");
        raw_init(seeds[2], SG_MSG_ERROR);
        raw_u64(seeds[2], SG_F_ERROR, SG_ERR_PERMISSION);
        raw_str(seeds[2], SG_F_DETAIL, "peer not allowed");
        raw_init(seeds[3], SG_MSG_ROW);
        raw_u64(seeds[3], SG_F_ID, 9);
        raw_str(seeds[3], SG_F_KIND, "user");
        raw_str(seeds[3], SG_F_KEY, "mallory");
        raw_u64(seeds[3], SG_F_UNTIL, UINT64_MAX);
        for (size_t i = 0; i < 4; i++)
                raw_seal(seeds[i]);

        for (long it = 0; it < 200000; it++) {
                const struct raw *s = seeds[rnd_below(4)];
                r->len = s->len;
                memcpy(r->b, s->b, s->len);
                mutate(r);

                int got = sg_msg_decode(r->b, r->len, m);
                if (got > 0 || got < SG_PROTO_ETRAILING)
                        fail_msg("iteration %ld: undefined result %d", it, got);
                counts[-got]++;
                if (got < 0) {
                        assert_int_equal(m->type, SG_MSG_NONE);
                        assert_true(m->present == 0);
                        assert_int_equal(m->used, 0);
                        continue;
                }
                /* every accepted message obeys the per-type rules */
                bool found = false;
                for (size_t i = 0; i < N_SPECS; i++) {
                        if (specs[i].type != m->type)
                                continue;
                        found = true;
                        assert_true((m->present & ~specs[i].allowed) == 0);
                        assert_true((m->present & specs[i].required) == specs[i].required);
                }
                assert_true(found);
                for (uint8_t t = 1; t < SG_F_MAX; t++)
                        if (tags[t].kind == K_STR && sg_msg_has(m, t))
                                assert_int_equal(strlen(sg_msg_str(m, t)), m->f[t].len);
                reencode_equal(m, w, m2);
        }
        /* the loop must have reached both sides and most error classes */
        assert_true(counts[0] > 1000);
        for (int c = 1; c <= 10; c++)
                if (c != -SG_PROTO_EMAGIC && c != -SG_PROTO_EVERSION)
                        assert_true(counts[c] > 0);

        for (size_t i = 0; i < 4; i++)
                free(seeds[i]);
        free(r);
        free(w);
        free(m);
        free(m2);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_roundtrip_all_types),
                cmocka_unit_test(test_header_layout),
                cmocka_unit_test(test_allowed_sets),
                cmocka_unit_test(test_truncated_header),
                cmocka_unit_test(test_truncated_field_header),
                cmocka_unit_test(test_field_beyond_payload),
                cmocka_unit_test(test_payload_len_mismatch),
                cmocka_unit_test(test_trailing_bytes),
                cmocka_unit_test(test_oversized_frame),
                cmocka_unit_test(test_oversized_field),
                cmocka_unit_test(test_bad_magic_version_type),
                cmocka_unit_test(test_unknown_tag),
                cmocka_unit_test(test_tag_not_allowed),
                cmocka_unit_test(test_duplicate_tag),
                cmocka_unit_test(test_u64_wrong_size),
                cmocka_unit_test(test_nul_in_string),
                cmocka_unit_test(test_missing_required),
                cmocka_unit_test(test_writer_errors),
                cmocka_unit_test(test_accessors),
                cmocka_unit_test(test_names),
                cmocka_unit_test(test_mutations),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
