/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for the hash-string parser: scheme detection, cost parsing and the caps
 * check, i.e. everything that runs on a stored hash before any hashing. It never calls
 * sg_hash_verify (a planted cost is exactly what the parser must stop, not the fuzzer run).
 */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hashes.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const struct sg_hash_caps caps = {
                .argon2_memlimit = 256ULL << 20, .argon2_opslimit = 16, .argon2_threads = 4,
                .bcrypt_cost = 14, .yescrypt_n_log2 = 18, .sha_rounds = 1000000,
        };
        static const struct sg_hash_caps no_caps = {
                .argon2_memlimit = UINT64_MAX, .argon2_opslimit = UINT64_MAX,
                .argon2_threads = UINT32_MAX, .bcrypt_cost = UINT32_MAX,
                .yescrypt_n_log2 = UINT32_MAX, .sha_rounds = UINT32_MAX,
        };
        struct sg_hash_cost cost;
        enum sg_scheme scheme;
        char *hash;
        int r;

        /* NUL-terminated, exact-size copy: the API takes C strings. */
        hash = malloc(size + 1);
        if (!hash)
                return 0;
        memcpy(hash, data, size);
        hash[size] = '\0';

        scheme = sg_hash_scheme(hash);
        assert(scheme >= SG_SCHEME_NONE && scheme <= SG_SCHEME_SHA256CRYPT);
        (void) sg_scheme_name(scheme);

        r = sg_hash_parse_cost(hash, &cost);
        assert(r == 0 || r == -EINVAL);
        if (r == 0) {
                assert(cost.scheme == scheme);
                assert(scheme != SG_SCHEME_NONE && scheme != SG_SCHEME_UNKNOWN);
                assert(strlen(hash) < SG_HASH_MAX);
                r = sg_hash_within_caps(&cost, &caps);
                assert(r == 0 || r == -E2BIG);
                r = sg_hash_within_caps(&cost, &no_caps);
                assert(r == 0);
        }
        free(hash);
        return 0;
}
