/* SPDX-License-Identifier: MIT */
/* The audit trail's types, shared by the store's interface (store.h) and the chain under it
 * (audit-chain.h). Types only. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SG_AUDIT_KEY_BYTES 32
#define SG_MAC_BYTES 32

struct sg_audit_event {
        uint64_t time_usec;    /* UTC microseconds */
        const char *event;     /* an event name of common/event_table.c */
        const char *reason;    /* may be NULL */
        const char *user;      /* NULL when sealed */
        const uint8_t *user_sealed; size_t user_sealed_len; /* crypto_box_seal, or NULL */
        const char *service, *rhost, *tty; /* may be NULL */
        int64_t pid, uid;      /* of the peer (SO_PEERCRED); -1 unknown */
        const char *session_id;/* may be NULL */
        const char *detail;    /* may be NULL */
};

struct sg_audit_row {
        uint64_t id;
        struct sg_audit_event ev;
        const uint8_t *mac; size_t mac_len; /* the row's stored MAC (NULL when the column is NULL) */
        bool has_epoch; uint64_t epoch;     /* the forward-secure epoch that MACed it; none: the static key */
};

struct sg_audit_filter {
        const char *user, *event, *rhost; /* exact match; NULL = any */
        uint64_t since_usec, until_usec;  /* since <= time_usec <= until; 0 = open */
        uint64_t limit;                   /* newest `limit` rows, returned oldest first; 0 = 100 */
};

/* The newest row of the chain as its writer knows it: id and MAC (zeros before any row). */
struct sg_audit_tail {
        uint64_t id;
        uint8_t mac[SG_MAC_BYTES];
};

/* A forward-secure epoch key (common/fss.h) handed to a verification on another thread. */
struct sg_audit_epoch_key {
        bool set;
        uint64_t epoch;
        uint8_t key[32];
};

typedef int (*sg_audit_cb)(void *userdata, const struct sg_audit_row *r);
