/* SPDX-License-Identifier: MIT */
/*
 * The secguard wire protocol, shared by pam_secguard.so, secguardd and secguardctl.
 *
 * A frame is an 8-byte header followed by a payload of typed fields:
 *
 *   header:  'S' 'G'  version:u8  type:u8  payload_len:u32be
 *   field:   tag:u8   len:u16be   value[len]
 *
 * Every tag has one value type (string, u64 or bytes) and a maximum length; every message
 * type has a set of allowed tags and a set of required tags. The decoder is strict: a
 * truncated, oversized, duplicated, unknown, badly typed or missing field, trailing bytes,
 * a wrong magic or version all fail with a distinct SG_PROTO_E* code, never a crash.
 * Strings may hold any byte except NUL (hostile usernames must reach the audit log verbatim;
 * content validation is validate.h's job, not the codec's).
 *
 * Pure code: no I/O here (see io.h), so unit tests and the fuzzer reach it directly.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SG_PROTO_MAGIC0 'S'
#define SG_PROTO_MAGIC1 'G'
#define SG_PROTO_VERSION 1
#define SG_FRAME_HEADER 8
#define SG_FRAME_MAX 65536 /* header + payload; hard cap, checked before allocation */
#define SG_PAYLOAD_MAX (SG_FRAME_MAX - SG_FRAME_HEADER)

/* Requests (client -> daemon). */
enum sg_msg_type {
        SG_MSG_NONE = 0,
        SG_MSG_PRECHECK = 1,     /* reserve an attempt + wait for a hash permit (root) */
        SG_MSG_REPORT = 2,       /* result of the attempt reserved on this connection (root) */
        SG_MSG_EVENT = 3,        /* module-side event: password_changed, hash_upgraded (root) */
        SG_MSG_STATUS = 4,       /* daemon status (root, admin group) */
        SG_MSG_LOCKS = 5,        /* list lockouts (root, admin group) */
        SG_MSG_UNLOCK = 6,       /* clear a lockout (root) */
        SG_MSG_AUDIT_QUERY = 7,  /* review events (root, admin group) */
        SG_MSG_AUDIT_VERIFY = 8, /* walk the HMAC chain (root, admin group) */
        SG_MSG_ACCOUNT = 9,      /* account-phase lock check, no reservation (root) */
        SG_MSG_SESSION_OPEN = 10,
        SG_MSG_SESSION_CLOSE = 11,
        SG_MSG_SESSIONS = 12,
        SG_MSG_SESSION_KILL = 13,
        SG_MSG_TOKEN_ISSUE = 14,  /* issue a one-time login token (root) */
        SG_MSG_TOKEN_REVOKE = 15, /* revoke one by id (root) */
        SG_MSG_TOKENS = 16,       /* list tokens (root, admin group) */
        SG_MSG_FLEET_EXPORT = 17, /* audit rows after an id, for the fleet helper (root, [fleet] user) */
        SG_MSG_FLEET_LOCK = 18,   /* apply a fleet-wide lock decision (root, [fleet] user) */
        SG_MSG_FLEET_UNLOCK = 19, /* apply a fleet-wide unlock decision (root, [fleet] user) */
        SG_MSG_REQUEST_MAX,

        /* Replies (daemon -> client). */
        SG_MSG_OK = 0x80,    /* success; fields depend on the request */
        SG_MSG_ERROR = 0x81, /* SG_F_ERROR (an SG_ERR_* code) + optional SG_F_DETAIL */
        SG_MSG_ROW = 0x82,   /* one row of a listing; a listing ends with SG_MSG_OK */
        SG_MSG_REPLY_MAX,
};

/* Field tags. The value type and size cap of each are in protocol.c's table. */
enum sg_field {
        SG_F_NONE = 0,
        SG_F_USER = 1,       /* str <= 256: PAM_USER as given (may be hostile) */
        SG_F_RHOST = 2,      /* str <= 256 */
        SG_F_TTY = 3,        /* str <= 256 */
        SG_F_SERVICE = 4,    /* str <= 256 */
        SG_F_USER_KNOWN = 5, /* u64 0/1: the module found the user in the shadow file */
        SG_F_RESULT = 6,     /* u64 enum sg_result */
        SG_F_REASON = 7,     /* str <= 64: reason keyword (sg_event_failure_reasons, common/event_table.h) */
        SG_F_DECISION = 8,   /* u64 enum sg_decision */
        SG_F_DELAY_MS = 9,   /* u64 */
        SG_F_ERROR = 10,     /* u64 enum sg_err */
        SG_F_DETAIL = 11,    /* str <= 1024: human-readable detail */
        SG_F_EVENT = 12,     /* str <= 64: event keyword */
        SG_F_TIME = 13,      /* u64 microseconds since the epoch, UTC */
        SG_F_UNTIL = 14,     /* u64 microseconds since the epoch, UTC */
        SG_F_SINCE = 15,     /* u64 microseconds since the epoch, UTC */
        SG_F_LIMIT = 16,     /* u64 */
        SG_F_COUNT = 17,     /* u64 */
        SG_F_KIND = 18,      /* str <= 32: lock kind ("user", "source", "user_source", "spray") */
        SG_F_KEY = 19,       /* str <= 512: lock key */
        SG_F_VERSION = 20,   /* str <= 64 */
        SG_F_UPTIME = 21,    /* u64 seconds */
        SG_F_LOCKS = 22,     /* u64 */
        SG_F_SESSIONS = 23,  /* u64 */
        SG_F_AUDIT_ROWS = 24,/* u64 */
        SG_F_CONFIG = 25,    /* str <= 16384: the config in force, "section.key=value" lines */
        SG_F_ID = 26,        /* u64: row id, session id, token id */
        SG_F_PID = 27,       /* u64 */
        SG_F_UID = 28,       /* u64 */
        SG_F_SEALED = 29,    /* bytes <= 512: crypto_box_seal of a username */
        SG_F_TOKEN = 30,     /* str <= 256: a one-time token as typed (common/tokenfmt.h) */
        SG_F_PERMITS = 31,   /* u64: hash permits in use */
        SG_F_PERMITS_MAX = 32,/* u64 */
        SG_F_FAILURES = 33,  /* u64 */
        SG_F_SESSION_ID = 34,/* str <= 64: a session's public id (hex) */
        SG_F_LOGIND_ID = 35, /* str <= 64: the logind session id (XDG_SESSION_ID) */
        SG_F_IDLE = 36,      /* u64 seconds since the session's tty was last used */
        SG_F_STATE = 37,     /* str <= 16: a token's state ("active", "used", "revoked", "expired") */
        SG_F_MAC = 38,       /* bytes <= 64: an audit row's HMAC */
        SG_F_EPOCH = 39,     /* u64: an audit row's key epoch */
        SG_F_HOST = 40,      /* str <= 64: a fleet host id (32 lowercase hex digits) */
        SG_F_FLEET = 41,     /* u64 0/1: UNLOCK also becomes a fleet-wide decision */
        SG_F_MAX,
};

enum sg_result {
        SG_RESULT_SUCCESS = 1,
        SG_RESULT_FAILURE = 2,
};

enum sg_decision {
        SG_DECISION_ALLOW = 1, /* go ahead and hash; a permit is held until REPORT */
        SG_DECISION_DENY = 2,  /* locked or invalid: prompt, compute no hash, fail */
        SG_DECISION_OVERLOAD = 3, /* no permit before the deadline: fail uniformly */
};

/* Errors carried in SG_MSG_ERROR. Stable numbers: they cross the wire. */
enum sg_err {
        SG_ERR_PROTOCOL = 1,   /* malformed frame */
        SG_ERR_PERMISSION = 2, /* peer not allowed for this request */
        SG_ERR_INVALID = 3,    /* a field failed validation */
        SG_ERR_NOT_FOUND = 4,
        SG_ERR_STATE = 5,      /* request not valid now (e.g. REPORT without PRECHECK) */
        SG_ERR_INTERNAL = 6,   /* store or other daemon failure */
        SG_ERR_BUSY = 7,       /* too many connections */
};

/* Decoder results (negative, so they can share a return with -errno-free codec calls). */
enum sg_proto_err {
        SG_PROTO_OK = 0,
        SG_PROTO_ETRUNC = -1,     /* frame or field shorter than its header says */
        SG_PROTO_EOVERSIZE = -2,  /* frame or field longer than allowed */
        SG_PROTO_EMAGIC = -3,
        SG_PROTO_EVERSION = -4,
        SG_PROTO_ETYPE = -5,      /* unknown message type */
        SG_PROTO_EUNKNOWN = -6,   /* unknown tag, or tag not allowed in this message */
        SG_PROTO_EDUP = -7,       /* tag present twice */
        SG_PROTO_EBADVAL = -8,    /* u64 not 8 bytes, NUL inside a string */
        SG_PROTO_EMISSING = -9,   /* required tag absent */
        SG_PROTO_ETRAILING = -10, /* bytes after the declared payload */
        SG_PROTO_ENOSPC = -11,    /* encoder: field does not fit / value too long */
};

/* A decoded message. Strings are copied out NUL-terminated, so callers may use them as C
 * strings; bytes fields are not terminated (use len). Heap-allocate it (it is ~66 KiB). */
struct sg_msg {
        uint8_t type;
        uint64_t present; /* bit (1 << tag) */
        struct {
                uint64_t u;    /* SG_FT_U64 */
                uint32_t len;  /* SG_FT_STR / SG_FT_BYTES */
                uint32_t off;  /* into data[] */
        } f[SG_F_MAX];
        uint32_t used;
        uint8_t data[SG_PAYLOAD_MAX + SG_F_MAX];
};

/* Builder for an outgoing frame. */
struct sg_writer {
        size_t len;
        int err; /* first error, sticky: check once at sg_writer_finish() */
        uint64_t present;
        uint8_t buf[SG_FRAME_MAX];
};

void sg_writer_init(struct sg_writer *w, uint8_t type);
void sg_writer_str(struct sg_writer *w, uint8_t tag, const char *s);
void sg_writer_strn(struct sg_writer *w, uint8_t tag, const char *s, size_t len);
void sg_writer_u64(struct sg_writer *w, uint8_t tag, uint64_t v);
void sg_writer_bytes(struct sg_writer *w, uint8_t tag, const void *p, size_t len);
/* Seals the header; returns 0 and the frame length, or an SG_PROTO_E* code. Does not check
 * required fields: the encoder is ours, the decoder on the other side checks them. */
int sg_writer_finish(struct sg_writer *w, size_t *ret_len) __attribute__((warn_unused_result));

/* Parses a frame header: returns 0 and the payload length, or SG_PROTO_E*. Needs exactly
 * SG_FRAME_HEADER bytes. Used by readers to learn how much more to read. */
int sg_frame_header(const uint8_t *hdr, size_t *ret_payload_len) __attribute__((warn_unused_result));

/* Decodes one whole frame (header + payload, exactly len bytes). On error *m is zeroed. */
int sg_msg_decode(const uint8_t *frame, size_t len, struct sg_msg *m) __attribute__((warn_unused_result));

bool sg_msg_has(const struct sg_msg *m, uint8_t tag);
/* NULL when absent. */
const char *sg_msg_str(const struct sg_msg *m, uint8_t tag);
/* def when absent. */
uint64_t sg_msg_u64(const struct sg_msg *m, uint8_t tag, uint64_t def);
/* NULL when absent; *ret_len set when present. */
const uint8_t *sg_msg_bytes(const struct sg_msg *m, uint8_t tag, size_t *ret_len);

const char *sg_proto_strerror(int code);
const char *sg_err_str(uint64_t err);
const char *sg_msg_type_name(uint8_t type);
