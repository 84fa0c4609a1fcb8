/* SPDX-License-Identifier: MIT */
/* Forward-secure audit keys: see fss.h. No I/O here. */
#include <errno.h>
#include <string.h>

#include <sodium.h>

#include "fss.h"

static const char alphabet[] = "0123456789abcdefghjkmnpqrstvwxyz";
static const uint8_t magic[8] = { 'S', 'G', 'F', 'S', 'S', 1, 0, 0 };

#define CHECK_BYTES 4
#define TEXT_SYMBOLS 32 /* (16 + 4) * 8 / 5 */

static void seed_check(const uint8_t seed[SG_FSS_SEED_BYTES], uint8_t out[CHECK_BYTES]) {
        static const char tag[] = "secguard audit seed check v1";
        uint8_t h[crypto_generichash_BYTES_MIN];

        crypto_generichash(h, sizeof h, (const uint8_t *) tag, sizeof tag - 1, seed, SG_FSS_SEED_BYTES);
        memcpy(out, h, CHECK_BYTES);
        sodium_memzero(h, sizeof h);
}

int sg_fss_seed_format(const uint8_t seed[SG_FSS_SEED_BYTES], char *out, size_t outsize) {
        uint8_t buf[SG_FSS_SEED_BYTES + CHECK_BYTES];
        size_t o = 0;

        if (!seed || !out || outsize < SG_FSS_SEED_TEXT_SIZE)
                return -ENOBUFS;
        memcpy(buf, seed, SG_FSS_SEED_BYTES);
        seed_check(seed, buf + SG_FSS_SEED_BYTES);
        for (size_t i = 0; i < TEXT_SYMBOLS; i++) {
                size_t bit = i * 5;
                unsigned v = (unsigned) buf[bit / 8] << 8 | (bit / 8 + 1 < sizeof buf ? buf[bit / 8 + 1] : 0);

                if (i > 0 && i % 4 == 0)
                        out[o++] = '-';
                out[o++] = alphabet[(v >> (11 - bit % 8)) & 31];
        }
        out[o] = '\0';
        sodium_memzero(buf, sizeof buf);
        return 0;
}

static int symbol_value(char ch) {
        const char *p;

        if (ch >= 'A' && ch <= 'Z')
                ch = (char) (ch - 'A' + 'a');
        if (ch == 'i' || ch == 'l')
                ch = '1';
        else if (ch == 'o')
                ch = '0';
        p = ch ? strchr(alphabet, ch) : NULL;
        return p ? (int) (p - alphabet) : -1;
}

int sg_fss_seed_parse(const char *text, uint8_t seed[SG_FSS_SEED_BYTES]) {
        uint8_t buf[SG_FSS_SEED_BYTES + CHECK_BYTES] = { 0 }, check[CHECK_BYTES];
        size_t n = 0;
        int r = 0;

        if (!text || !seed)
                return -EINVAL;
        for (const char *p = text; *p && r == 0; p++) {
                int v;

                if (*p == '-' || *p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
                        continue;
                v = symbol_value(*p);
                if (v < 0 || n == TEXT_SYMBOLS) {
                        r = -EINVAL;
                        break;
                }
                for (int b = 4; b >= 0; b--) {
                        size_t bit = n * 5 + (size_t) (4 - b);

                        if (v >> b & 1)
                                buf[bit / 8] |= (uint8_t) (0x80 >> (bit % 8));
                }
                n++;
        }
        if (r == 0 && n != TEXT_SYMBOLS)
                r = -EINVAL;
        if (r == 0) {
                seed_check(buf, check);
                if (sodium_memcmp(check, buf + SG_FSS_SEED_BYTES, CHECK_BYTES) != 0)
                        r = -EBADMSG;
        }
        if (r == 0)
                memcpy(seed, buf, SG_FSS_SEED_BYTES);
        sodium_memzero(buf, sizeof buf);
        return r;
}

void sg_fss_key0(const uint8_t seed[SG_FSS_SEED_BYTES], uint8_t ret_key[SG_FSS_KEY_BYTES]) {
        static const char tag[] = "secguard audit fss key0 v1";

        crypto_generichash(ret_key, SG_FSS_KEY_BYTES, (const uint8_t *) tag, sizeof tag - 1, seed,
                           SG_FSS_SEED_BYTES);
}

void sg_fss_step(const uint8_t key[SG_FSS_KEY_BYTES], uint8_t ret_next[SG_FSS_KEY_BYTES]) {
        uint8_t next[SG_FSS_KEY_BYTES];

        crypto_kdf_derive_from_key(next, sizeof next, 1, "sgfsstep", key);
        memcpy(ret_next, next, sizeof next);
        sodium_memzero(next, sizeof next);
}

void sg_fss_mac_key(const uint8_t key[SG_FSS_KEY_BYTES], uint8_t ret_mac_key[SG_FSS_KEY_BYTES]) {
        crypto_kdf_derive_from_key(ret_mac_key, SG_FSS_KEY_BYTES, 2, "sgfssmac", key);
}

void sg_fss_state_encode(uint64_t epoch, const uint8_t key[SG_FSS_KEY_BYTES], uint8_t out[SG_FSS_STATE_BYTES]) {
        memcpy(out, magic, sizeof magic);
        for (int i = 0; i < 8; i++)
                out[8 + i] = (uint8_t) (epoch >> (56 - 8 * i));
        memcpy(out + 16, key, SG_FSS_KEY_BYTES);
}

int sg_fss_state_decode(const uint8_t in[SG_FSS_STATE_BYTES], uint64_t *ret_epoch,
                        uint8_t ret_key[SG_FSS_KEY_BYTES]) {
        uint64_t epoch = 0;

        if (memcmp(in, magic, sizeof magic) != 0)
                return -EBADMSG;
        for (int i = 0; i < 8; i++)
                epoch = epoch << 8 | in[8 + i];
        if (epoch >= (uint64_t) INT64_MAX)
                return -EBADMSG;
        *ret_epoch = epoch;
        memcpy(ret_key, in + 16, SG_FSS_KEY_BYTES);
        return 0;
}
