/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for the one-time token text (common/tokenfmt.c), which the module runs on
 * every typed password and the daemon on every TOKEN field. Checks beyond "no crash": parse
 * and the shape check agree; an accepted text has a valid id and formats back to a canonical
 * text that parses to the same id and secret; a refused one leaves the outputs untouched;
 * the id parser agrees with its formatter.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tokenfmt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Not assert(): CMake's RelWithDebInfo defines NDEBUG, which would compile the checks out. */
#define CHECK(x)                         \
        do {                             \
                if (!(x))                \
                        __builtin_trap(); \
        } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        uint8_t secret[SG_TOKEN_SECRET_BYTES], again[SG_TOKEN_SECRET_BYTES];
        char text[SG_TOKEN_TEXT_LEN + 1], idt[SG_TOKEN_ID_TEXT_LEN + 1];
        uint64_t id = 0, id2 = 0;
        char *s;
        int r;

        if (size > 4096)
                return 0;
        s = malloc(size + 1);
        if (!s)
                return 0;
        memcpy(s, data, size);
        s[size] = '\0';

        memset(secret, 0x5a, sizeof secret);
        r = sg_token_parse(s, &id, secret);
        CHECK(r == 0 || r == -22);
        CHECK((r == 0) == sg_token_shape(s));
        if (r == 0) {
                CHECK(id >= 1 && id <= SG_TOKEN_ID_MAX);
                CHECK(sg_token_format(id, secret, text, sizeof text) == 0);
                CHECK(strlen(text) == SG_TOKEN_TEXT_LEN);
                CHECK(sg_token_parse(text, &id2, again) == 0);
                CHECK(id2 == id && memcmp(again, secret, sizeof secret) == 0);
        } else {
                CHECK(id == 0);
                for (size_t i = 0; i < sizeof secret; i++)
                        CHECK(secret[i] == 0x5a);
        }

        id = 0;
        if (sg_token_id_parse(s, &id) == 0) {
                CHECK(id >= 1 && id <= SG_TOKEN_ID_MAX);
                sg_token_id_format(id, idt);
                CHECK(sg_token_id_parse(idt, &id2) == 0 && id2 == id);
        }
        free(s);
        return 0;
}
