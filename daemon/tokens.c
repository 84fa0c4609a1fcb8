/* SPDX-License-Identifier: MIT */
/* One-time login tokens over the store (see tokens.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "tokenfmt.h"
#include "tokens.h"
#include "validate.h"

_Static_assert(SG_TOKEN_KEY_BYTES >= crypto_generichash_KEYBYTES_MIN &&
               SG_TOKEN_KEY_BYTES <= crypto_generichash_KEYBYTES_MAX, "a generichash key");
_Static_assert(SG_TOKEN_HASH_BYTES >= crypto_generichash_BYTES_MIN, "a generichash output");

static void put_be(uint8_t *p, uint64_t v, size_t n) {
        for (size_t i = 0; i < n; i++)
                p[i] = (uint8_t) (v >> (8 * (n - 1 - i)));
}

/* The stored hash: keyed BLAKE2b over a label, the id, the user (length-prefixed) and the
 * secret, so no two (id, user, secret) encode alike. */
static void token_hash(const uint8_t key[SG_TOKEN_KEY_BYTES], uint64_t id, const char *user,
                       const uint8_t secret[SG_TOKEN_SECRET_BYTES], uint8_t out[SG_TOKEN_HASH_BYTES]) {
        static const char label[] = "secguard token v1";
        crypto_generichash_state h;
        uint8_t idb[8], len[4];
        size_t ulen = strlen(user);

        put_be(idb, id, sizeof idb);
        put_be(len, ulen, sizeof len);
        crypto_generichash_init(&h, key, SG_TOKEN_KEY_BYTES, SG_TOKEN_HASH_BYTES);
        crypto_generichash_update(&h, (const uint8_t *) label, sizeof label);
        crypto_generichash_update(&h, idb, sizeof idb);
        crypto_generichash_update(&h, len, sizeof len);
        crypto_generichash_update(&h, (const uint8_t *) user, ulen);
        crypto_generichash_update(&h, secret, SG_TOKEN_SECRET_BYTES);
        crypto_generichash_final(&h, out, SG_TOKEN_HASH_BYTES);
        sodium_memzero(&h, sizeof h);
}

int tokens_issue(sg_store *st, const uint8_t key[SG_TOKEN_KEY_BYTES], const char *user, uint64_t now_usec,
                 uint64_t expires_usec, uint32_t issuer_uid, uint64_t *ret_id, char *out, size_t outsize) {
        uint8_t secret[SG_TOKEN_SECRET_BYTES], hash[SG_TOKEN_HASH_BYTES];
        uint64_t n = 0, id = 0;
        int r;

        if (!key || !sg_valid_user(user) || expires_usec <= now_usec || outsize <= SG_TOKEN_TEXT_LEN)
                return -EINVAL;
        r = sg_store_token_count(st, &n);
        if (r < 0)
                return r;
        if (n >= SG_TOKENS_MAX)
                return -E2BIG;
        randombytes_buf(secret, sizeof secret);
        /* 40-bit ids: a collision is rare but possible; a few draws settle it. */
        for (int tries = 0; tries < 8; tries++) {
                struct sg_token_row row = {
                        .user = user, .hash = hash, .issued_usec = now_usec, .expires_usec = expires_usec,
                        .issuer_uid = issuer_uid,
                };

                do
                        randombytes_buf(&id, sizeof id);
                while ((id &= SG_TOKEN_ID_MAX) == 0);
                row.id = id;
                token_hash(key, id, user, secret, hash);
                r = sg_store_token_add(st, &row);
                if (r != -EEXIST)
                        break;
        }
        if (r >= 0)
                r = sg_token_format(id, secret, out, outsize);
        sodium_memzero(secret, sizeof secret);
        sodium_memzero(hash, sizeof hash);
        if (r < 0)
                return r;
        *ret_id = id;
        return 0;
}

struct found {
        char user[SG_FIELD_WIRE_MAX + 1];
        uint8_t hash[SG_TOKEN_HASH_BYTES];
        uint64_t expires_usec, used_usec, revoked_usec;
};

static int found_row(void *userdata, const struct sg_token_row *row) {
        struct found *f = userdata;

        snprintf(f->user, sizeof f->user, "%s", row->user);
        memcpy(f->hash, row->hash, SG_TOKEN_HASH_BYTES);
        f->expires_usec = row->expires_usec;
        f->used_usec = row->used_usec;
        f->revoked_usec = row->revoked_usec;
        return 0;
}

int tokens_redeem(sg_store *st, const uint8_t key[SG_TOKEN_KEY_BYTES], const char *user, const char *text,
                  uint64_t now_usec, enum token_verdict *ret_verdict, uint64_t *ret_id) {
        uint8_t secret[SG_TOKEN_SECRET_BYTES] = { 0 }, hash[SG_TOKEN_HASH_BYTES];
        struct found f = { .user = "" };
        enum token_verdict v = TOKEN_OK;
        uint64_t id = 0;
        bool same;
        int r = 0;

        if (!key || !user || !text)
                return -EINVAL;
        if (sg_token_parse(text, &id, secret) < 0) {
                v = TOKEN_MALFORMED;
                id = 0;
        } else {
                r = sg_store_token_get(st, id, found_row, &f);
                if (r == -ENOENT) {
                        v = TOKEN_UNKNOWN;
                        id = 0; /* may have been anything typed: not for the audit */
                        r = 0;
                }
        }
        /* One hash on every path: what is refused takes as long as what is accepted. */
        token_hash(key, id, f.user, secret, hash);
        same = sodium_memcmp(hash, f.hash, sizeof hash) == 0;
        if (r >= 0 && v == TOKEN_OK) {
                if (!same)
                        v = TOKEN_MISMATCH;
                else if (strcmp(f.user, user) != 0)
                        v = TOKEN_OTHER_USER;
                else if (f.used_usec != 0)
                        v = TOKEN_USED;
                else if (f.revoked_usec != 0)
                        v = TOKEN_REVOKED;
                else if (f.expires_usec <= now_usec)
                        v = TOKEN_EXPIRED;
                else {
                        /* The write decides, whatever was read above. */
                        r = sg_store_token_use(st, id, now_usec);
                        if (r == -ENOENT) {
                                v = TOKEN_USED;
                                r = 0;
                        }
                }
        }
        sodium_memzero(secret, sizeof secret);
        sodium_memzero(hash, sizeof hash);
        sodium_memzero(&f, sizeof f);
        if (r < 0)
                return r;
        *ret_verdict = v;
        *ret_id = id;
        return 0;
}

const char *token_verdict_str(enum token_verdict v) {
        switch (v) {
        case TOKEN_OK: return "used";
        case TOKEN_MALFORMED: return "not a token";
        case TOKEN_UNKNOWN: return "no such token";
        case TOKEN_MISMATCH: return "wrong secret";
        case TOKEN_OTHER_USER: return "issued for another user";
        case TOKEN_EXPIRED: return "expired";
        case TOKEN_REVOKED: return "revoked";
        case TOKEN_USED: return "already used";
        default: return "refused";
        }
}

int tokens_prune(sg_store *st, uint64_t now_usec) {
        return sg_store_token_prune(st, now_usec > SG_TOKEN_KEEP_USEC ? now_usec - SG_TOKEN_KEEP_USEC : 0);
}
