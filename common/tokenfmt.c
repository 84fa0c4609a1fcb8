/* SPDX-License-Identifier: MIT */
/* One-time tokens as text (see tokenfmt.h). */
#include "tokenfmt.h"

#include <errno.h>
#include <string.h>

#include <sodium.h>

#define ID_BYTES 5    /* 40 bits */
#define ID_SYMBOLS 8  /* 40 bits, no padding */
#define SECRET_SYMBOLS 52
#define SYMBOLS (ID_SYMBOLS + SECRET_SYMBOLS)
#define GROUP 4

static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/* The value of one typed symbol, or -1. */
static int symbol_value(char c) {
        if (c >= 'a' && c <= 'z')
                c = (char) (c - 'a' + 'A');
        if (c == 'O')
                return 0;
        if (c == 'I' || c == 'L')
                return 1;
        for (int i = 0; i < 32; i++)
                if (alphabet[i] == c)
                        return i;
        return -1;
}

/* n bytes as base32 symbols, big-endian bit order, the last symbol zero-padded. */
static size_t encode(const uint8_t *in, size_t n, char *out) {
        uint32_t acc = 0;
        unsigned bits = 0;
        size_t k = 0;

        for (size_t i = 0; i < n; i++) {
                acc = (acc << 8 | in[i]) & 0xfff;
                bits += 8;
                while (bits >= 5) {
                        bits -= 5;
                        out[k++] = alphabet[(acc >> bits) & 31];
                }
        }
        if (bits > 0)
                out[k++] = alphabet[(acc << (5 - bits)) & 31];
        return k;
}

/* n symbol values into exactly outlen bytes; the leftover padding bits must be zero. */
static int decode(const uint8_t *v, size_t n, uint8_t *out, size_t outlen) {
        uint32_t acc = 0;
        unsigned bits = 0;
        size_t k = 0;

        for (size_t i = 0; i < n; i++) {
                acc = (acc << 5 | v[i]) & 0x1fff;
                bits += 5;
                if (bits >= 8) {
                        bits -= 8;
                        if (k == outlen)
                                return -EINVAL;
                        out[k++] = (uint8_t) (acc >> bits);
                }
        }
        if (k != outlen || (acc & ((1u << bits) - 1)) != 0)
                return -EINVAL;
        return 0;
}

/* Typed text to symbol values: dashes skipped, exactly want symbols. */
static int read_symbols(const char *s, uint8_t *v, size_t want) {
        size_t n = 0, len;

        if (!s)
                return -EINVAL;
        len = strnlen(s, SG_TOKEN_INPUT_MAX + 1);
        if (len > SG_TOKEN_INPUT_MAX)
                return -EINVAL;
        for (size_t i = 0; i < len; i++) {
                int x;

                if (s[i] == '-')
                        continue;
                x = symbol_value(s[i]);
                if (x < 0 || n == want)
                        return -EINVAL;
                v[n++] = (uint8_t) x;
        }
        return n == want ? 0 : -EINVAL;
}

static uint64_t id_from_bytes(const uint8_t b[ID_BYTES]) {
        uint64_t id = 0;

        for (size_t i = 0; i < ID_BYTES; i++)
                id = id << 8 | b[i];
        return id;
}

static void id_to_bytes(uint64_t id, uint8_t b[ID_BYTES]) {
        for (size_t i = 0; i < ID_BYTES; i++)
                b[i] = (uint8_t) (id >> (8 * (ID_BYTES - 1 - i)));
}

int sg_token_format(uint64_t id, const uint8_t secret[SG_TOKEN_SECRET_BYTES], char *out, size_t outsize) {
        char sym[SYMBOLS];
        uint8_t idb[ID_BYTES];
        size_t k = 0;

        if (id == 0 || id > SG_TOKEN_ID_MAX || !secret || !out || outsize <= SG_TOKEN_TEXT_LEN)
                return -EINVAL;
        id_to_bytes(id, idb);
        encode(idb, ID_BYTES, sym);
        encode(secret, SG_TOKEN_SECRET_BYTES, sym + ID_SYMBOLS);
        for (size_t i = 0; i < SYMBOLS; i++) {
                if (i > 0 && i % GROUP == 0)
                        out[k++] = '-';
                out[k++] = sym[i];
        }
        out[k] = '\0';
        sodium_memzero(sym, sizeof sym);
        return 0;
}

int sg_token_parse(const char *s, uint64_t *ret_id, uint8_t ret_secret[SG_TOKEN_SECRET_BYTES]) {
        uint8_t v[SYMBOLS], idb[ID_BYTES], secret[SG_TOKEN_SECRET_BYTES];
        uint64_t id = 0;
        int r;

        r = read_symbols(s, v, SYMBOLS);
        if (r == 0)
                r = decode(v, ID_SYMBOLS, idb, ID_BYTES);
        if (r == 0)
                r = decode(v + ID_SYMBOLS, SECRET_SYMBOLS, secret, SG_TOKEN_SECRET_BYTES);
        if (r == 0) {
                id = id_from_bytes(idb);
                if (id == 0)
                        r = -EINVAL;
        }
        if (r == 0) {
                if (ret_id)
                        *ret_id = id;
                if (ret_secret)
                        memcpy(ret_secret, secret, SG_TOKEN_SECRET_BYTES);
        }
        sodium_memzero(v, sizeof v);
        sodium_memzero(secret, sizeof secret);
        return r;
}

bool sg_token_shape(const char *s) {
        return sg_token_parse(s, NULL, NULL) == 0;
}

void sg_token_id_format(uint64_t id, char out[SG_TOKEN_ID_TEXT_LEN + 1]) {
        uint8_t idb[ID_BYTES];
        char sym[ID_SYMBOLS];

        id_to_bytes(id & SG_TOKEN_ID_MAX, idb);
        encode(idb, ID_BYTES, sym);
        memcpy(out, sym, GROUP);
        out[GROUP] = '-';
        memcpy(out + GROUP + 1, sym + GROUP, GROUP);
        out[SG_TOKEN_ID_TEXT_LEN] = '\0';
}

int sg_token_id_parse(const char *s, uint64_t *ret_id) {
        uint8_t v[ID_SYMBOLS], idb[ID_BYTES];
        uint64_t id;

        if (read_symbols(s, v, ID_SYMBOLS) < 0 || decode(v, ID_SYMBOLS, idb, ID_BYTES) < 0)
                return -EINVAL;
        id = id_from_bytes(idb);
        if (id == 0)
                return -EINVAL;
        *ret_id = id;
        return 0;
}
