/* SPDX-License-Identifier: MIT */
/*
 * One-time login tokens as people type them. Pure code: no I/O, no keys (the daemon's keyed
 * hash is daemon/tokens.c's), so the module, the daemon and the unit tests share one parser.
 *
 * A token is a 40-bit id and a 32-byte secret, written in Crockford's base32 (0-9 and A-Z
 * without I, L, O, U) as 60 symbols in 15 groups of 4: the first two groups are the id,
 * the other 13 the secret (52 symbols carry 260 bits; the last 4 must be zero, so every
 * secret has exactly one spelling). Reading is forgiving where typing goes wrong: lower case
 * is upper case, O reads as 0, I and L as 1, and dashes are ignored wherever they are.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SG_TOKEN_SECRET_BYTES 32
#define SG_TOKEN_ID_MAX ((UINT64_C(1) << 40) - 1)
#define SG_TOKEN_TEXT_LEN 74    /* as printed: 15 groups of 4 symbols, 14 dashes */
#define SG_TOKEN_INPUT_MAX 128  /* longer input is not a token, whatever it holds */
#define SG_TOKEN_ID_TEXT_LEN 9  /* "XXXX-XXXX" */

/* Writes the token for id (1..SG_TOKEN_ID_MAX) and secret into out (outsize >
 * SG_TOKEN_TEXT_LEN). 0, or -EINVAL for a bad id or a short buffer. */
int sg_token_format(uint64_t id, const uint8_t secret[SG_TOKEN_SECRET_BYTES], char *out, size_t outsize);

/* Reads a token: 0 with the id and the secret, or -EINVAL (nothing written) for anything
 * that is not one (a symbol outside the alphabet, not exactly 60 symbols, padding bits
 * set, an id of 0, longer than SG_TOKEN_INPUT_MAX). Scratch copies are wiped. */
int sg_token_parse(const char *s, uint64_t *ret_id, uint8_t ret_secret[SG_TOKEN_SECRET_BYTES]);

/* The cheap syntactic check: true when sg_token_parse() would accept s. */
bool sg_token_shape(const char *s);

/* A token's id as listed and revoked: "XXXX-XXXX" (out needs SG_TOKEN_ID_TEXT_LEN + 1). */
void sg_token_id_format(uint64_t id, char out[SG_TOKEN_ID_TEXT_LEN + 1]);
/* Reads an id as sg_token_id_format() writes it (same leniency as sg_token_parse; 8 symbols,
 * not 0). 0 or -EINVAL. */
int sg_token_id_parse(const char *s, uint64_t *ret_id);
