/* SPDX-License-Identifier: MIT */
/*
 * The secguard wire codec (see protocol.h for the frame layout).
 *
 * Two static tables drive both directions, so the encoder can never emit a frame the decoder
 * would refuse:
 *
 * tag_specs[tag]: value type and size cap of each tag.
 *   str  <= 256   USER RHOST TTY SERVICE TOKEN
 *   str  <= 64    REASON EVENT VERSION SESSION_ID LOGIND_ID HOST
 *   str  <= 32    KIND
 *   str  <= 16    STATE
 *   str  <= 512   KEY
 *   str  <= 1024  DETAIL
 *   str  <= 16384 CONFIG
 *   bytes <= 512  SEALED
 *   bytes <= 64   MAC
 *   u64 (exactly 8 bytes, big-endian) every other tag
 *
 * msg_specs[type]: tags allowed and tags required per message type.
 *   type           required               also allowed
 *   PRECHECK       USER SERVICE           RHOST TTY USER_KNOWN
 *   REPORT         RESULT                 REASON USER_KNOWN TOKEN
 *   EVENT          EVENT                  USER SERVICE RHOST TTY REASON DETAIL USER_KNOWN
 *   STATUS         -                      -
 *   LOCKS          -                      -
 *   UNLOCK         KIND KEY               FLEET
 *   AUDIT_QUERY    -                      USER EVENT RHOST SINCE UNTIL LIMIT
 *   AUDIT_VERIFY   -                      -
 *   ACCOUNT        USER SERVICE           RHOST TTY
 *   SESSION_OPEN   USER UID SERVICE PID   RHOST TTY LOGIND_ID
 *   SESSION_CLOSE  SESSION_ID             -
 *   SESSIONS       -                      -
 *   SESSION_KILL   SESSION_ID             -
 *   TOKEN_ISSUE    USER                   UNTIL
 *   TOKEN_REVOKE   ID                     -
 *   TOKENS         -                      -
 *   FLEET_EXPORT   ID                     LIMIT
 *   FLEET_LOCK     KIND KEY UNTIL HOST ID REASON
 *   FLEET_UNLOCK   KIND KEY HOST ID       STATE ("lifted": only HOST's own fleet lock)
 *   OK             -                      every tag (the generic reply; fields depend on the request)
 *   ERROR          ERROR                  DETAIL
 *   ROW            -                      every tag (one row of a listing)
 *
 * REPORT allows USER_KNOWN (the module learns it from the shadow file after PRECHECK) and TOKEN
 * (a one-time token typed instead of a password is verified by the daemon, which holds the key).
 *
 * Pure code: no I/O, no allocation; every length is checked against what remains before it is
 * used, and the decoder fails closed with one distinct code per defect.
 */

#include <string.h>

#include "protocol.h"

enum sg_field_type {
        SG_FT_NONE = 0, /* unknown tag */
        SG_FT_STR,
        SG_FT_U64,
        SG_FT_BYTES,
};

struct tag_spec {
        uint8_t type;
        uint16_t max;
};

#define STR(n) { SG_FT_STR, (n) }
#define U64 { SG_FT_U64, 8 }
#define BYTES(n) { SG_FT_BYTES, (n) }

static const struct tag_spec tag_specs[SG_F_MAX] = {
        [SG_F_USER] = STR(256),
        [SG_F_RHOST] = STR(256),
        [SG_F_TTY] = STR(256),
        [SG_F_SERVICE] = STR(256),
        [SG_F_USER_KNOWN] = U64,
        [SG_F_RESULT] = U64,
        [SG_F_REASON] = STR(64),
        [SG_F_DECISION] = U64,
        [SG_F_DELAY_MS] = U64,
        [SG_F_ERROR] = U64,
        [SG_F_DETAIL] = STR(1024),
        [SG_F_EVENT] = STR(64),
        [SG_F_TIME] = U64,
        [SG_F_UNTIL] = U64,
        [SG_F_SINCE] = U64,
        [SG_F_LIMIT] = U64,
        [SG_F_COUNT] = U64,
        [SG_F_KIND] = STR(32),
        [SG_F_KEY] = STR(512),
        [SG_F_VERSION] = STR(64),
        [SG_F_UPTIME] = U64,
        [SG_F_LOCKS] = U64,
        [SG_F_SESSIONS] = U64,
        [SG_F_AUDIT_ROWS] = U64,
        [SG_F_CONFIG] = STR(16384),
        [SG_F_ID] = U64,
        [SG_F_PID] = U64,
        [SG_F_UID] = U64,
        [SG_F_SEALED] = BYTES(512),
        [SG_F_TOKEN] = STR(256),
        [SG_F_PERMITS] = U64,
        [SG_F_PERMITS_MAX] = U64,
        [SG_F_FAILURES] = U64,
        [SG_F_SESSION_ID] = STR(64),
        [SG_F_LOGIND_ID] = STR(64),
        [SG_F_IDLE] = U64,
        [SG_F_STATE] = STR(16),
        [SG_F_MAC] = BYTES(64),
        [SG_F_EPOCH] = U64,
        [SG_F_HOST] = STR(64),
        [SG_F_FLEET] = U64,
};

#undef STR
#undef U64
#undef BYTES

/* present/allowed/required bitmasks share the layout of struct sg_msg.present. */
_Static_assert(SG_F_MAX <= 64, "tags must fit a uint64_t bitmask");

#define B(tag) (UINT64_C(1) << (tag))
#define ALL_TAGS (((UINT64_C(1) << SG_F_MAX) - 1) & ~B(SG_F_NONE))

struct msg_spec {
        bool known;
        uint64_t allowed; /* includes required */
        uint64_t required;
};

static const struct msg_spec msg_specs[256] = {
        [SG_MSG_PRECHECK] = { true,
                B(SG_F_USER) | B(SG_F_SERVICE) | B(SG_F_RHOST) | B(SG_F_TTY) | B(SG_F_USER_KNOWN),
                B(SG_F_USER) | B(SG_F_SERVICE) },
        [SG_MSG_REPORT] = { true,
                B(SG_F_RESULT) | B(SG_F_REASON) | B(SG_F_USER_KNOWN) | B(SG_F_TOKEN),
                B(SG_F_RESULT) },
        [SG_MSG_EVENT] = { true,
                B(SG_F_EVENT) | B(SG_F_USER) | B(SG_F_SERVICE) | B(SG_F_RHOST) | B(SG_F_TTY) |
                        B(SG_F_REASON) | B(SG_F_DETAIL) | B(SG_F_USER_KNOWN),
                B(SG_F_EVENT) },
        [SG_MSG_STATUS] = { true, 0, 0 },
        [SG_MSG_LOCKS] = { true, 0, 0 },
        [SG_MSG_UNLOCK] = { true, B(SG_F_KIND) | B(SG_F_KEY) | B(SG_F_FLEET), B(SG_F_KIND) | B(SG_F_KEY) },
        [SG_MSG_AUDIT_QUERY] = { true,
                B(SG_F_USER) | B(SG_F_EVENT) | B(SG_F_RHOST) | B(SG_F_SINCE) | B(SG_F_UNTIL) |
                        B(SG_F_LIMIT),
                0 },
        [SG_MSG_AUDIT_VERIFY] = { true, 0, 0 },
        [SG_MSG_ACCOUNT] = { true,
                B(SG_F_USER) | B(SG_F_SERVICE) | B(SG_F_RHOST) | B(SG_F_TTY),
                B(SG_F_USER) | B(SG_F_SERVICE) },
        [SG_MSG_SESSION_OPEN] = { true,
                B(SG_F_USER) | B(SG_F_UID) | B(SG_F_SERVICE) | B(SG_F_PID) | B(SG_F_RHOST) | B(SG_F_TTY) |
                        B(SG_F_LOGIND_ID),
                B(SG_F_USER) | B(SG_F_UID) | B(SG_F_SERVICE) | B(SG_F_PID) },
        [SG_MSG_SESSION_CLOSE] = { true, B(SG_F_SESSION_ID), B(SG_F_SESSION_ID) },
        [SG_MSG_SESSIONS] = { true, 0, 0 },
        [SG_MSG_SESSION_KILL] = { true, B(SG_F_SESSION_ID), B(SG_F_SESSION_ID) },
        [SG_MSG_TOKEN_ISSUE] = { true, B(SG_F_USER) | B(SG_F_UNTIL), B(SG_F_USER) },
        [SG_MSG_TOKEN_REVOKE] = { true, B(SG_F_ID), B(SG_F_ID) },
        [SG_MSG_TOKENS] = { true, 0, 0 },
        [SG_MSG_FLEET_EXPORT] = { true, B(SG_F_ID) | B(SG_F_LIMIT), B(SG_F_ID) },
        [SG_MSG_FLEET_LOCK] = { true,
                B(SG_F_KIND) | B(SG_F_KEY) | B(SG_F_UNTIL) | B(SG_F_HOST) | B(SG_F_ID) | B(SG_F_REASON),
                B(SG_F_KIND) | B(SG_F_KEY) | B(SG_F_UNTIL) | B(SG_F_HOST) | B(SG_F_ID) },
        [SG_MSG_FLEET_UNLOCK] = { true,
                B(SG_F_KIND) | B(SG_F_KEY) | B(SG_F_HOST) | B(SG_F_ID) | B(SG_F_STATE),
                B(SG_F_KIND) | B(SG_F_KEY) | B(SG_F_HOST) | B(SG_F_ID) },

        [SG_MSG_OK] = { true, ALL_TAGS, 0 },
        [SG_MSG_ERROR] = { true, B(SG_F_ERROR) | B(SG_F_DETAIL), B(SG_F_ERROR) },
        [SG_MSG_ROW] = { true, ALL_TAGS, 0 },
};

#undef B

static const struct tag_spec *tag_spec(uint8_t tag) {
        if (tag >= SG_F_MAX || tag_specs[tag].type == SG_FT_NONE)
                return NULL;
        return &tag_specs[tag];
}

static uint16_t get_be16(const uint8_t *p) {
        return (uint16_t) ((uint16_t) p[0] << 8 | p[1]);
}

static uint32_t get_be32(const uint8_t *p) {
        return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

static uint64_t get_be64(const uint8_t *p) {
        return (uint64_t) get_be32(p) << 32 | get_be32(p + 4);
}

static void put_be16(uint8_t *p, uint16_t v) {
        p[0] = (uint8_t) (v >> 8);
        p[1] = (uint8_t) v;
}

static void put_be32(uint8_t *p, uint32_t v) {
        p[0] = (uint8_t) (v >> 24);
        p[1] = (uint8_t) (v >> 16);
        p[2] = (uint8_t) (v >> 8);
        p[3] = (uint8_t) v;
}

static void put_be64(uint8_t *p, uint64_t v) {
        put_be32(p, (uint32_t) (v >> 32));
        put_be32(p + 4, (uint32_t) v);
}

/* ---- writer ---- */

void sg_writer_init(struct sg_writer *w, uint8_t type) {
        w->len = SG_FRAME_HEADER;
        w->err = msg_specs[type].known ? SG_PROTO_OK : SG_PROTO_ETYPE;
        w->present = 0;
        w->buf[0] = SG_PROTO_MAGIC0;
        w->buf[1] = SG_PROTO_MAGIC1;
        w->buf[2] = SG_PROTO_VERSION;
        w->buf[3] = type;
        put_be32(w->buf + 4, 0);
}

/* Checks everything the decoder will check, then reserves room for one field and returns a
 * pointer to its value, or NULL with w->err set. */
static uint8_t *writer_field(struct sg_writer *w, uint8_t tag, uint8_t ftype, size_t len) {
        const struct tag_spec *ts;

        if (w->err < 0)
                return NULL;

        ts = tag_spec(tag);
        if (!ts || !(msg_specs[w->buf[3]].allowed & (UINT64_C(1) << tag))) {
                w->err = SG_PROTO_EUNKNOWN;
                return NULL;
        }
        if (ts->type != ftype) {
                w->err = SG_PROTO_EBADVAL;
                return NULL;
        }
        if (w->present & (UINT64_C(1) << tag)) {
                w->err = SG_PROTO_EDUP;
                return NULL;
        }
        if (len > ts->max || 3 + len > sizeof(w->buf) - w->len) {
                w->err = SG_PROTO_ENOSPC;
                return NULL;
        }

        uint8_t *p = w->buf + w->len;
        p[0] = tag;
        put_be16(p + 1, (uint16_t) len);
        w->len += 3 + len;
        w->present |= UINT64_C(1) << tag;
        return p + 3;
}

void sg_writer_strn(struct sg_writer *w, uint8_t tag, const char *s, size_t len) {
        if (w->err >= 0 && (!s && len > 0)) {
                w->err = SG_PROTO_EBADVAL;
                return;
        }
        /* NUL cannot cross the wire inside a string: the receiver copies strings out as C
         * strings, and a silent cut there would let two different names look alike. */
        if (w->err >= 0 && len > 0 && memchr(s, 0, len)) {
                w->err = SG_PROTO_EBADVAL;
                return;
        }
        uint8_t *p = writer_field(w, tag, SG_FT_STR, len);
        if (p && len > 0)
                memcpy(p, s, len);
}

void sg_writer_str(struct sg_writer *w, uint8_t tag, const char *s) {
        if (!s) {
                if (w->err >= 0)
                        w->err = SG_PROTO_EBADVAL;
                return;
        }
        /* Bounded scan: a value longer than any cap is refused without reading all of it. */
        const struct tag_spec *ts = tag_spec(tag);
        size_t cap = ts ? ts->max : 0;
        sg_writer_strn(w, tag, s, strnlen(s, cap + 1));
}

void sg_writer_u64(struct sg_writer *w, uint8_t tag, uint64_t v) {
        uint8_t *p = writer_field(w, tag, SG_FT_U64, 8);
        if (p)
                put_be64(p, v);
}

void sg_writer_bytes(struct sg_writer *w, uint8_t tag, const void *p, size_t len) {
        if (w->err >= 0 && !p && len > 0) {
                w->err = SG_PROTO_EBADVAL;
                return;
        }
        uint8_t *d = writer_field(w, tag, SG_FT_BYTES, len);
        if (d && len > 0)
                memcpy(d, p, len);
}

int sg_writer_finish(struct sg_writer *w, size_t *ret_len) {
        if (w->err < 0)
                return w->err;
        if (w->len > SG_FRAME_MAX) /* cannot happen: writer_field bounds it; belt and braces */
                return SG_PROTO_ENOSPC;

        put_be32(w->buf + 4, (uint32_t) (w->len - SG_FRAME_HEADER));
        if (ret_len)
                *ret_len = w->len;
        return SG_PROTO_OK;
}

/* ---- decoder ---- */

int sg_frame_header(const uint8_t *hdr, size_t *ret_payload_len) {
        uint32_t plen;

        if (!hdr)
                return SG_PROTO_ETRUNC;
        if (hdr[0] != SG_PROTO_MAGIC0 || hdr[1] != SG_PROTO_MAGIC1)
                return SG_PROTO_EMAGIC;
        if (hdr[2] != SG_PROTO_VERSION)
                return SG_PROTO_EVERSION;
        if (!msg_specs[hdr[3]].known)
                return SG_PROTO_ETYPE;
        plen = get_be32(hdr + 4);
        if (plen > SG_PAYLOAD_MAX)
                return SG_PROTO_EOVERSIZE;

        if (ret_payload_len)
                *ret_payload_len = plen;
        return SG_PROTO_OK;
}

static int decode_fields(const uint8_t *p, size_t left, struct sg_msg *m) {
        const struct msg_spec *ms = &msg_specs[m->type];

        while (left > 0) {
                if (left < 3)
                        return SG_PROTO_ETRUNC;

                uint8_t tag = p[0];
                size_t len = get_be16(p + 1);
                p += 3;
                left -= 3;
                if (len > left)
                        return SG_PROTO_ETRUNC;

                const struct tag_spec *ts = tag_spec(tag);
                uint64_t bit = UINT64_C(1) << (tag & 63);
                if (!ts || !(ms->allowed & bit))
                        return SG_PROTO_EUNKNOWN;
                if (m->present & bit)
                        return SG_PROTO_EDUP;

                if (ts->type == SG_FT_U64) {
                        if (len != 8)
                                return SG_PROTO_EBADVAL;
                        m->f[tag].u = get_be64(p);
                } else {
                        if (len > ts->max)
                                return SG_PROTO_EOVERSIZE;
                        if (ts->type == SG_FT_STR && len > 0 && memchr(p, 0, len))
                                return SG_PROTO_EBADVAL;
                        /* Each field costs >= 3 header bytes but takes len + 1 here, so data[]
                         * (payload max + one byte per tag) always has room; checked anyway. */
                        if (len + 1 > sizeof(m->data) - m->used)
                                return SG_PROTO_EOVERSIZE;
                        if (len > 0)
                                memcpy(m->data + m->used, p, len);
                        m->data[m->used + len] = 0;
                        m->f[tag].off = m->used;
                        m->f[tag].len = (uint32_t) len;
                        m->used += (uint32_t) len + 1;
                }
                m->present |= bit;
                p += len;
                left -= len;
        }

        if ((m->present & ms->required) != ms->required)
                return SG_PROTO_EMISSING;
        return SG_PROTO_OK;
}

int sg_msg_decode(const uint8_t *frame, size_t len, struct sg_msg *m) {
        size_t plen;
        int r;

        if (!m)
                return SG_PROTO_ETRUNC;

        /* Reset only the bookkeeping on the way in (data[] is 64 KiB and only reachable
         * through it); a failure below wipes the whole message. */
        m->type = SG_MSG_NONE;
        m->present = 0;
        m->used = 0;
        memset(m->f, 0, sizeof(m->f));

        if (!frame || len < SG_FRAME_HEADER) {
                r = SG_PROTO_ETRUNC;
                goto fail;
        }
        r = sg_frame_header(frame, &plen);
        if (r < 0)
                goto fail;
        if (len - SG_FRAME_HEADER < plen) {
                r = SG_PROTO_ETRUNC;
                goto fail;
        }
        if (len - SG_FRAME_HEADER > plen) {
                r = SG_PROTO_ETRAILING;
                goto fail;
        }

        m->type = frame[3];
        r = decode_fields(frame + SG_FRAME_HEADER, plen, m);
        if (r < 0)
                goto fail;
        return SG_PROTO_OK;

fail:
        memset(m, 0, sizeof(*m));
        return r;
}

/* ---- accessors ---- */

bool sg_msg_has(const struct sg_msg *m, uint8_t tag) {
        return m && tag < SG_F_MAX && tag != SG_F_NONE && (m->present & (UINT64_C(1) << tag));
}

const char *sg_msg_str(const struct sg_msg *m, uint8_t tag) {
        if (!sg_msg_has(m, tag) || tag_specs[tag].type != SG_FT_STR)
                return NULL;
        return (const char *) m->data + m->f[tag].off;
}

uint64_t sg_msg_u64(const struct sg_msg *m, uint8_t tag, uint64_t def) {
        if (!sg_msg_has(m, tag) || tag_specs[tag].type != SG_FT_U64)
                return def;
        return m->f[tag].u;
}

/* Works for strings too (their length without the terminator), so callers can handle both
 * kinds of variable-length value alike. */
const uint8_t *sg_msg_bytes(const struct sg_msg *m, uint8_t tag, size_t *ret_len) {
        if (!sg_msg_has(m, tag) || tag_specs[tag].type == SG_FT_U64)
                return NULL;
        if (ret_len)
                *ret_len = m->f[tag].len;
        return m->data + m->f[tag].off;
}

/* ---- names ---- */

const char *sg_proto_strerror(int code) {
        switch (code) {
        case SG_PROTO_OK:
                return "success";
        case SG_PROTO_ETRUNC:
                return "truncated frame or field";
        case SG_PROTO_EOVERSIZE:
                return "frame or field too long";
        case SG_PROTO_EMAGIC:
                return "bad magic";
        case SG_PROTO_EVERSION:
                return "unsupported protocol version";
        case SG_PROTO_ETYPE:
                return "unknown message type";
        case SG_PROTO_EUNKNOWN:
                return "unknown or unexpected field";
        case SG_PROTO_EDUP:
                return "duplicate field";
        case SG_PROTO_EBADVAL:
                return "malformed field value";
        case SG_PROTO_EMISSING:
                return "required field missing";
        case SG_PROTO_ETRAILING:
                return "trailing bytes after payload";
        case SG_PROTO_ENOSPC:
                return "field does not fit";
        default:
                return "unknown protocol error";
        }
}

const char *sg_err_str(uint64_t err) {
        switch (err) {
        case SG_ERR_PROTOCOL:
                return "protocol error";
        case SG_ERR_PERMISSION:
                return "permission denied";
        case SG_ERR_INVALID:
                return "invalid request";
        case SG_ERR_NOT_FOUND:
                return "not found";
        case SG_ERR_STATE:
                return "request not valid in this state";
        case SG_ERR_INTERNAL:
                return "internal daemon error";
        case SG_ERR_BUSY:
                return "daemon busy";
        default:
                return "unknown error";
        }
}

const char *sg_msg_type_name(uint8_t type) {
        static const char *const names[256] = {
                [SG_MSG_NONE] = "NONE",
                [SG_MSG_PRECHECK] = "PRECHECK",
                [SG_MSG_REPORT] = "REPORT",
                [SG_MSG_EVENT] = "EVENT",
                [SG_MSG_STATUS] = "STATUS",
                [SG_MSG_LOCKS] = "LOCKS",
                [SG_MSG_UNLOCK] = "UNLOCK",
                [SG_MSG_AUDIT_QUERY] = "AUDIT_QUERY",
                [SG_MSG_AUDIT_VERIFY] = "AUDIT_VERIFY",
                [SG_MSG_ACCOUNT] = "ACCOUNT",
                [SG_MSG_SESSION_OPEN] = "SESSION_OPEN",
                [SG_MSG_SESSION_CLOSE] = "SESSION_CLOSE",
                [SG_MSG_SESSIONS] = "SESSIONS",
                [SG_MSG_SESSION_KILL] = "SESSION_KILL",
                [SG_MSG_TOKEN_ISSUE] = "TOKEN_ISSUE",
                [SG_MSG_TOKEN_REVOKE] = "TOKEN_REVOKE",
                [SG_MSG_TOKENS] = "TOKENS",
                [SG_MSG_FLEET_EXPORT] = "FLEET_EXPORT",
                [SG_MSG_FLEET_LOCK] = "FLEET_LOCK",
                [SG_MSG_FLEET_UNLOCK] = "FLEET_UNLOCK",
                [SG_MSG_OK] = "OK",
                [SG_MSG_ERROR] = "ERROR",
                [SG_MSG_ROW] = "ROW",
        };

        return names[type] ? names[type] : "UNKNOWN";
}
