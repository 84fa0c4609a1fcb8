/* SPDX-License-Identifier: MIT */
/*
 * Forward-secure audit keys (the pure part; docs/threat-model.md, docs/state.md).
 *
 * A 16-byte seed, made once by `secguardctl audit setup-keys` and kept off the host, gives
 * key(0); key(e + 1) = KDF(key(e)) and the host keeps only the current key(e), so whoever
 * takes the host at epoch e can forge nothing MACed in an earlier epoch. The row MACs of
 * epoch e use mac_key(e), derived from key(e) in another domain, never key(e) itself.
 *
 *   key(0)     = BLAKE2b-256(key = seed, "secguard audit fss key0 v1")
 *   key(e + 1) = crypto_kdf_derive_from_key(id 1, ctx "sgfsstep", key(e))
 *   mac_key(e) = crypto_kdf_derive_from_key(id 2, ctx "sgfssmac", key(e))
 *
 * The seed's text form: 16 bytes and a 4-byte check, in Crockford's base32 (no I L O U),
 * 32 symbols in groups of four: "xxxx-xxxx-xxxx-xxxx-xxxx-xxxx-xxxx-xxxx".
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define SG_FSS_SEED_BYTES 16
#define SG_FSS_KEY_BYTES 32
#define SG_FSS_SEED_TEXT_SIZE 40 /* 39 characters and the NUL */
/* The key state file (<state_dir>/audit.fss): "SGFSS\1\0\0", the epoch (big-endian), key(epoch). */
#define SG_FSS_STATE_BYTES 48

/* Writes the text form into out (at least SG_FSS_SEED_TEXT_SIZE bytes). 0 or -ENOBUFS. */
int sg_fss_seed_format(const uint8_t seed[SG_FSS_SEED_BYTES], char *out, size_t outsize);
/* Reads the text form: case does not matter, I and L read as 1, O as 0, '-' and blanks
 * are skipped. -EINVAL when it is not 32 symbols of the alphabet, -EBADMSG when the check
 * does not match (a typo). seed is written only on success. */
int sg_fss_seed_parse(const char *text, uint8_t seed[SG_FSS_SEED_BYTES]);

void sg_fss_key0(const uint8_t seed[SG_FSS_SEED_BYTES], uint8_t ret_key[SG_FSS_KEY_BYTES]);
/* key(e) -> key(e + 1); key and ret_next may be the same buffer. */
void sg_fss_step(const uint8_t key[SG_FSS_KEY_BYTES], uint8_t ret_next[SG_FSS_KEY_BYTES]);
void sg_fss_mac_key(const uint8_t key[SG_FSS_KEY_BYTES], uint8_t ret_mac_key[SG_FSS_KEY_BYTES]);

void sg_fss_state_encode(uint64_t epoch, const uint8_t key[SG_FSS_KEY_BYTES], uint8_t out[SG_FSS_STATE_BYTES]);
/* -EBADMSG when the magic is wrong or the epoch does not fit an SQLite integer. */
int sg_fss_state_decode(const uint8_t in[SG_FSS_STATE_BYTES], uint64_t *ret_epoch,
                        uint8_t ret_key[SG_FSS_KEY_BYTES]);
