/* SPDX-License-Identifier: MIT */
/*
 * Password hash strings: recognise the scheme, parse its cost, verify, create.
 * argon2id/argon2i through libsodium; bcrypt, yescrypt, sha512crypt, sha256crypt through
 * libxcrypt (crypt_rn). libxcrypt has no argon2, so we route by prefix.
 * Used by the module (verify, upgrade, chauthtok) and secguardctl hash.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SG_HASH_MAX 512 /* longest hash string we accept from a shadow file */
/* Longest password verify/create accept (-EINVAL above), a bound on the work a client can
 * ask for. libxcrypt schemes stop earlier, at 511 bytes (CRYPT_MAX_PASSPHRASE_SIZE): a longer
 * password never matches them (-EACCES) and cannot be hashed with them (-E2BIG). */
#define SG_HASH_PASSWORD_MAX 4096

enum sg_scheme {
        SG_SCHEME_NONE = 0,     /* empty, "!", "*", "!..." (locked) */
        SG_SCHEME_UNKNOWN,      /* anything we do not support (DES, MD5, ...) */
        SG_SCHEME_ARGON2ID,     /* $argon2id$ */
        SG_SCHEME_ARGON2I,      /* $argon2i$ */
        SG_SCHEME_BCRYPT,       /* $2b$ $2y$ $2a$ */
        SG_SCHEME_YESCRYPT,     /* $y$ */
        SG_SCHEME_SHA512CRYPT,  /* $6$ */
        SG_SCHEME_SHA256CRYPT,  /* $5$ */
};

struct sg_hash_cost {
        enum sg_scheme scheme;
        uint64_t argon2_m_kib; /* m= (KiB) */
        uint64_t argon2_t;     /* t= */
        uint64_t argon2_p;     /* p= */
        uint32_t bcrypt_cost;  /* log2 rounds */
        uint32_t yescrypt_n_log2; /* N = 2^n */
        uint32_t yescrypt_r;
        uint32_t sha_rounds;   /* 5000 when absent */
        uint32_t yescrypt_p;   /* 1 when absent */
        uint32_t yescrypt_t;   /* 0 when absent */
};

/* Caps a stored hash must respect before we spend memory or time on it. */
struct sg_hash_caps {
        uint64_t argon2_memlimit; /* bytes */
        uint64_t argon2_opslimit;
        uint32_t argon2_threads;
        uint32_t bcrypt_cost;
        uint32_t yescrypt_n_log2; /* N log2 at libxcrypt's r=32, p=1, t=0; a larger r*p or t
                                   * counts as the equivalent larger N */
        uint32_t sha_rounds;
};

/* The preferred scheme's parameters (upgrade target and new hashes). */
struct sg_hash_pref {
        uint64_t opslimit;
        uint64_t memlimit; /* bytes */
};

enum sg_scheme sg_hash_scheme(const char *hash);
const char *sg_scheme_name(enum sg_scheme s);
/* "argon2id", "bcrypt", "yescrypt", "sha512crypt" -> scheme; SG_SCHEME_UNKNOWN otherwise. */
enum sg_scheme sg_scheme_from_name(const char *name);

/* Parses the scheme and its cost parameters without computing anything.
 * 0, or -EINVAL for a malformed string (such a hash never verifies). */
int sg_hash_parse_cost(const char *hash, struct sg_hash_cost *ret);

/* 0 when within caps, -E2BIG when above (refuse without hashing). */
int sg_hash_within_caps(const struct sg_hash_cost *cost, const struct sg_hash_caps *caps);

/* Whether hash is one sg_hash_verify would compute: 0; -EINVAL when locked, unsupported or
 * malformed; -E2BIG when above caps (caps NULL: any cost). Parses only, computes nothing. */
int sg_hash_usable(const char *hash, const struct sg_hash_caps *caps);

/* Verifies password against hash in constant time where it matters.
 * 0 = match; -EACCES = mismatch; -EINVAL = malformed/unsupported/locked; -E2BIG = above caps;
 * -ENOMEM. Never matches for SG_SCHEME_NONE/UNKNOWN. */
int sg_hash_verify(const char *hash, const char *password, size_t password_len,
                   const struct sg_hash_caps *caps) __attribute__((warn_unused_result));

/* Burns the time a verification with the preferred scheme would take. Always -EACCES.
 * The module's last resort for unknown users and unusable hashes, when the shadow file has
 * no usable hash to stand in (see sg_shadow_find). */
int sg_hash_dummy_verify(const char *password, size_t password_len, const struct sg_hash_pref *pref);

/* true when hash should be replaced: not argon2id (or not parseable), or argon2id weaker than
 * pref: m below pref's memlimit or t below its opslimit. A stronger argon2id is kept (an
 * upgrade never lowers a cost); p is not compared (libsodium always writes p=1). */
bool sg_hash_needs_upgrade(const char *hash, const struct sg_hash_pref *pref);

/* false when verifying hash read only part of a password of password_len bytes (bcrypt reads
 * 72): a successful login then proves the prefix, and a new hash of the whole typed string
 * would lock the user out of their real password. */
bool sg_hash_reads_whole_password(const char *hash, size_t password_len);

/* Creates a new hash. Schemes: argon2id (pref's cost), yescrypt, sha512crypt; bcrypt is
 * refused (-ENOTSUP: 72-byte truncation) unless allow_bcrypt (secguardctl hash only).
 * out must hold SG_HASH_MAX bytes. 0 or -errno. */
int sg_hash_create(enum sg_scheme scheme, const char *password, size_t password_len,
                   const struct sg_hash_pref *pref, bool allow_bcrypt,
                   char *out, size_t outsize) __attribute__((warn_unused_result));
