/* SPDX-License-Identifier: MIT */
/*
 * One-time login tokens over the store: the keyed hash, issuing, redeeming, pruning. No
 * client and no transaction handling here: the request handlers (token.c for the admin
 * requests, login.c for a token typed at the password prompt) open the transaction and call
 * these inside it. The text form is common/tokenfmt.h's. See docs/state.md.
 *
 * Only a keyed hash of each secret is stored: BLAKE2b (crypto_generichash) under the
 * daemon's token key, over a label, the id, the user and the secret, so a row cannot be
 * moved to another id or user, and the database alone lets nobody log in.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define SG_TOKEN_KEY_BYTES 32
#define SG_TOKEN_TTL_DEFAULT_USEC (UINT64_C(3600) * 1000000)
#define SG_TOKEN_TTL_MAX_USEC (UINT64_C(30) * 86400 * 1000000)
/* Tokens stored at most (any state); issuing more is refused until some are pruned. */
#define SG_TOKENS_MAX 10000
/* A used, revoked or expired token stays listed this long, then maintenance prunes it
 * (the audit log keeps its story). */
#define SG_TOKEN_KEEP_USEC (UINT64_C(86400) * 1000000)

/* Makes a token for user, valid until expires_usec: a random id and secret, the row with the
 * keyed hash (the transaction must be open). The text goes to out (outsize >
 * SG_TOKEN_TEXT_LEN), the id to *ret_id. -E2BIG when SG_TOKENS_MAX are stored; other -errno
 * from the store. */
int tokens_issue(sg_store *st, const uint8_t key[SG_TOKEN_KEY_BYTES], const char *user, uint64_t now_usec,
                 uint64_t expires_usec, uint32_t issuer_uid, uint64_t *ret_id, char *out, size_t outsize);

enum token_verdict {
        TOKEN_OK,         /* good: it is used now */
        TOKEN_MALFORMED,  /* not a token's text */
        TOKEN_UNKNOWN,    /* no token has that id (or it was pruned) */
        TOKEN_MISMATCH,   /* the id exists, the secret is wrong */
        TOKEN_OTHER_USER, /* a good token, for someone else */
        TOKEN_EXPIRED,
        TOKEN_REVOKED,
        TOKEN_USED,       /* used before (or by a login a moment ago) */
};

/* Checks text as a token for user at now_usec and, when it is good, marks it used in the
 * open transaction. 0 with *ret_verdict and *ret_id (0 when the text named no stored
 * token), or -errno from the store. Every path computes one keyed hash. */
int tokens_redeem(sg_store *st, const uint8_t key[SG_TOKEN_KEY_BYTES], const char *user, const char *text,
                  uint64_t now_usec, enum token_verdict *ret_verdict, uint64_t *ret_id);

/* "expired", "wrong secret", ... for the audit detail. */
const char *token_verdict_str(enum token_verdict v);

/* Deletes tokens that ended (expired, used, revoked) more than SG_TOKEN_KEEP_USEC ago. */
int tokens_prune(sg_store *st, uint64_t now_usec);
