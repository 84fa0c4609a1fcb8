/* SPDX-License-Identifier: MIT */
/*
 * Password hash strings. The parser here is deliberately stricter than libsodium and libxcrypt:
 * it runs on strings an attacker may have planted (a restored backup, a hostile NSS source) and
 * must bound the cost of a verification before any memory is allocated or any round is spent.
 */
#include "hashes.h"

#include <crypt.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* libxcrypt's base-64 alphabet (crypt(5) "./0-9A-Za-z"); argon2 uses RFC 4648 without padding. */

#define SHA_ROUNDS_DEFAULT 5000U
#define SHA_ROUNDS_MIN 1000U      /* libxcrypt rejects fewer (and more than MAX) */
#define SHA_ROUNDS_MAX 999999999U
#define SHA_SALT_MAX 16           /* libxcrypt silently truncates longer salts: never verifies */
#define BCRYPT_BODY_LEN 53        /* 22 salt + 31 hash characters */
#define BCRYPT_PW_MAX 72          /* bcrypt ignores everything after byte 72 */
#define BCRYPT_CREATE_COST 12
#define YESCRYPT_HASH_LEN 43      /* 256 bits in ascii64 */
#define YESCRYPT_SALT_MAX 86      /* 64 bytes in ascii64 */
#define YESCRYPT_BASE_R 32        /* libxcrypt's r for every cost it generates */
#define ARGON2_VERSION 19
#define ARGON2_MAX_LANES 0xFFFFFFU

/* Position in crypt's base-64 alphabet, ascii64 ("./0-9A-Za-z"), or -1. By ranges: this runs for every character of
 * every hash the shadow scan looks at. */
static int ascii64_value(char c) {
        if (c == '.' || c == '/')
                return c - '.';
        if (c >= '0' && c <= '9')
                return c - '0' + 2;
        if (c >= 'A' && c <= 'Z')
                return c - 'A' + 12;
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 38;
        return -1;
}

static bool is_ascii64(char c) {
        return ascii64_value(c) >= 0;
}

static bool is_b64_std(char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
               c == '+' || c == '/';
}

/* Length of the run of characters at s accepted by pred. */
static size_t span(const char *s, bool (*pred)(char)) {
        size_t n = 0;

        while (s[n] != '\0' && pred(s[n]))
                n++;
        return n;
}

/* Strict unsigned decimal: at least one digit, no sign, no leading zero, no overflow of max.
 * Advances *p past the digits. */
static int parse_decimal(const char **p, uint64_t max, uint64_t *ret) {
        const char *s = *p;
        uint64_t v = 0;
        size_t n = 0;

        if (s[0] < '0' || s[0] > '9')
                return -EINVAL;
        if (s[0] == '0' && s[1] >= '0' && s[1] <= '9')
                return -EINVAL;
        for (; s[n] >= '0' && s[n] <= '9'; n++) {
                unsigned d = (unsigned) (s[n] - '0');
                if (v > (max - d) / 10)
                        return -EINVAL;
                v = v * 10 + d;
        }
        *p = s + n;
        *ret = v;
        return 0;
}

static bool has_prefix(const char *s, const char *prefix) {
        return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* "PREFIXdecimal" at *p, as parse_decimal, and *p moved past it. */
static int parse_param(const char **p, const char *prefix, uint64_t max, uint64_t *ret) {
        if (!has_prefix(*p, prefix))
                return -EINVAL;
        *p += strlen(prefix);
        return parse_decimal(p, max, ret);
}

enum sg_scheme sg_hash_scheme(const char *hash) {
        if (!hash || hash[0] == '\0' || hash[0] == '!' || hash[0] == '*')
                return SG_SCHEME_NONE;
        if (strnlen(hash, SG_HASH_MAX) >= SG_HASH_MAX)
                return SG_SCHEME_UNKNOWN;
        if (has_prefix(hash, "$argon2id$"))
                return SG_SCHEME_ARGON2ID;
        if (has_prefix(hash, "$argon2i$"))
                return SG_SCHEME_ARGON2I;
        if (has_prefix(hash, "$2b$") || has_prefix(hash, "$2y$") || has_prefix(hash, "$2a$"))
                return SG_SCHEME_BCRYPT;
        if (has_prefix(hash, "$y$"))
                return SG_SCHEME_YESCRYPT;
        if (has_prefix(hash, "$6$"))
                return SG_SCHEME_SHA512CRYPT;
        if (has_prefix(hash, "$5$"))
                return SG_SCHEME_SHA256CRYPT;
        return SG_SCHEME_UNKNOWN;
}

static const char *const scheme_names[] = {
        [SG_SCHEME_NONE] = "none",
        [SG_SCHEME_UNKNOWN] = "unknown",
        [SG_SCHEME_ARGON2ID] = "argon2id",
        [SG_SCHEME_ARGON2I] = "argon2i",
        [SG_SCHEME_BCRYPT] = "bcrypt",
        [SG_SCHEME_YESCRYPT] = "yescrypt",
        [SG_SCHEME_SHA512CRYPT] = "sha512crypt",
        [SG_SCHEME_SHA256CRYPT] = "sha256crypt",
};

const char *sg_scheme_name(enum sg_scheme s) {
        if ((unsigned) s >= sizeof scheme_names / sizeof scheme_names[0])
                return "unknown";
        return scheme_names[s];
}

enum sg_scheme sg_scheme_from_name(const char *name) {
        if (!name)
                return SG_SCHEME_UNKNOWN;
        for (size_t i = 0; i < sizeof scheme_names / sizeof scheme_names[0]; i++)
                if (strcmp(name, scheme_names[i]) == 0)
                        return (enum sg_scheme) i;
        return SG_SCHEME_UNKNOWN;
}

/* "$argon2id$v=19$m=M,t=T,p=P$salt$hash", salt and hash RFC 4648 base64 without padding. */
static int parse_argon2(const char *s, struct sg_hash_cost *c) {
        uint64_t v;
        size_t n;

        s = strchr(s + 1, '$') + 1; /* past "$argon2id$" / "$argon2i$" */
        if (parse_param(&s, "v=", UINT32_MAX, &v) < 0 || v != ARGON2_VERSION ||
            parse_param(&s, "$m=", UINT32_MAX, &c->argon2_m_kib) < 0 ||
            parse_param(&s, ",t=", UINT32_MAX, &c->argon2_t) < 0 ||
            parse_param(&s, ",p=", ARGON2_MAX_LANES, &c->argon2_p) < 0)
                return -EINVAL;
        /* The argon2 spec's own minimums; libsodium would refuse these anyway. */
        if (c->argon2_t < 1 || c->argon2_p < 1 || c->argon2_m_kib < 8 * c->argon2_p)
                return -EINVAL;
        if (*s++ != '$')
                return -EINVAL;
        n = span(s, is_b64_std);
        if (n == 0 || s[n] != '$')
                return -EINVAL;
        s += n + 1;
        n = span(s, is_b64_std);
        if (n == 0 || s[n] != '\0')
                return -EINVAL;
        return 0;
}

/* The end of a crypt(5) hash string: up to salt_max salt characters, '$', then exactly
 * hash_len ascii64 characters. 0 or -EINVAL. */
static int parse_salt_hash(const char *s, bool (*salt_char)(char), size_t salt_max, size_t hash_len) {
        size_t n = span(s, salt_char);

        if (n > salt_max || s[n] != '$')
                return -EINVAL;
        s += n + 1;
        if (span(s, is_ascii64) != hash_len || s[hash_len] != '\0')
                return -EINVAL;
        return 0;
}

/* "$2b$NN$" + 22 salt + 31 hash characters. */
static int parse_bcrypt(const char *s, struct sg_hash_cost *c) {
        unsigned cost;

        s += 4;
        if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9' || s[2] != '$')
                return -EINVAL;
        cost = (unsigned) (s[0] - '0') * 10 + (unsigned) (s[1] - '0');
        if (cost < 4 || cost > 31)
                return -EINVAL;
        s += 3;
        if (span(s, is_ascii64) != BCRYPT_BODY_LEN || s[BCRYPT_BODY_LEN] != '\0')
                return -EINVAL;
        c->bcrypt_cost = cost;
        return 0;
}

/* yescrypt's variable-length integer: the first character's value selects how many more
 * characters follow (ranges 0-47: none, 48-55: one, 56-59: two, 60-61: three, 62: four,
 * 63: five); each range continues the numbering where the previous one ended, and the
 * following characters are the low-order digits, most significant first. */
static int yescrypt_decode_uint(const char **p, uint32_t min, uint32_t *ret) {
        const char *s = *p;
        uint64_t base = min, start = 0, end = 47, v;
        unsigned extra = 0;
        int c;

        c = ascii64_value(*s++);
        if (c < 0)
                return -EINVAL;
        while ((uint64_t) c > end) {
                base += (end + 1 - start) << (6 * extra);
                start = end + 1;
                end = start + (62 - end) / 2;
                extra++;
        }
        v = ((uint64_t) c - start) << (6 * extra);
        while (extra-- > 0) {
                c = ascii64_value(*s++);
                if (c < 0)
                        return -EINVAL;
                v += (uint64_t) c << (6 * extra);
        }
        if (base + v > UINT32_MAX)
                return -EINVAL;
        *p = s;
        *ret = (uint32_t) (base + v);
        return 0;
}

/* "$y$" flavor N_log2 r [have [p] [t] [g] [NROM]] "$" salt "$" hash, all in ascii64. */
static int parse_yescrypt(const char *s, struct sg_hash_cost *c) {
        uint32_t flavor, n_log2, r, have, p = 1, t = 0, g = 0;

        s += 3;
        if (yescrypt_decode_uint(&s, 0, &flavor) < 0 ||
            yescrypt_decode_uint(&s, 1, &n_log2) < 0 ||
            yescrypt_decode_uint(&s, 1, &r) < 0)
                return -EINVAL;
        if (n_log2 > 63)
                return -EINVAL;
        if (*s != '$') {
                if (yescrypt_decode_uint(&s, 1, &have) < 0 || have > 15)
                        return -EINVAL;
                if ((have & 1) && yescrypt_decode_uint(&s, 2, &p) < 0)
                        return -EINVAL;
                if ((have & 2) && yescrypt_decode_uint(&s, 1, &t) < 0)
                        return -EINVAL;
                if ((have & 4) && yescrypt_decode_uint(&s, 1, &g) < 0)
                        return -EINVAL;
                /* Hash upgrades (g) and a ROM are not supported by libxcrypt's crypt(): such
                 * a hash can never verify, so call it malformed now. */
                if (g != 0 || (have & 8))
                        return -EINVAL;
        }
        if (*s++ != '$' || parse_salt_hash(s, is_ascii64, YESCRYPT_SALT_MAX, YESCRYPT_HASH_LEN) < 0)
                return -EINVAL;
        (void) flavor; /* libxcrypt validates the flavor bits; they do not change the cost */
        c->yescrypt_n_log2 = n_log2;
        c->yescrypt_r = r;
        c->yescrypt_p = p;
        c->yescrypt_t = t;
        return 0;
}

static bool is_sha_salt_char(char c) {
        return c != '$' && c != ':' && c != '\n' && (unsigned char) c >= 0x20 && c != 0x7f;
}

/* "$6$[rounds=N$]salt$hash" (86 hash characters; 43 for "$5$"). */
static int parse_sha(const char *s, size_t hash_len, struct sg_hash_cost *c) {
        uint64_t rounds = SHA_ROUNDS_DEFAULT;

        s += 3;
        if (has_prefix(s, "rounds=")) {
                s += 7;
                if (parse_decimal(&s, UINT32_MAX, &rounds) < 0 || *s++ != '$')
                        return -EINVAL;
                if (rounds < SHA_ROUNDS_MIN || rounds > SHA_ROUNDS_MAX)
                        return -EINVAL;
        }
        if (parse_salt_hash(s, is_sha_salt_char, SHA_SALT_MAX, hash_len) < 0)
                return -EINVAL;
        c->sha_rounds = (uint32_t) rounds;
        return 0;
}

int sg_hash_parse_cost(const char *hash, struct sg_hash_cost *ret) {
        struct sg_hash_cost c = { 0 };
        int r;

        if (!hash || !ret)
                return -EINVAL;
        c.scheme = sg_hash_scheme(hash);
        switch (c.scheme) {
        case SG_SCHEME_ARGON2ID:
        case SG_SCHEME_ARGON2I:
                r = parse_argon2(hash, &c);
                break;
        case SG_SCHEME_BCRYPT:
                r = parse_bcrypt(hash, &c);
                break;
        case SG_SCHEME_YESCRYPT:
                r = parse_yescrypt(hash, &c);
                break;
        case SG_SCHEME_SHA512CRYPT:
                r = parse_sha(hash, 86, &c);
                break;
        case SG_SCHEME_SHA256CRYPT:
                r = parse_sha(hash, 43, &c);
                break;
        default:
                r = -EINVAL;
        }
        if (r < 0)
                return r;
        *ret = c;
        return 0;
}

/* Smallest k with 2^k >= v (v >= 1). */
static unsigned ceil_log2(uint64_t v) {
        unsigned k = 0;

        while (k < 64 && ((uint64_t) 1 << k) < v)
                k++;
        return k;
}

int sg_hash_within_caps(const struct sg_hash_cost *cost, const struct sg_hash_caps *caps) {
        uint64_t lanes;

        if (!cost || !caps)
                return -EINVAL;
        switch (cost->scheme) {
        case SG_SCHEME_ARGON2ID:
        case SG_SCHEME_ARGON2I:
                /* Compare in KiB: m * 1024 could overflow for a planted m. */
                if (cost->argon2_m_kib > caps->argon2_memlimit / 1024 ||
                    cost->argon2_t > caps->argon2_opslimit ||
                    cost->argon2_p > caps->argon2_threads)
                        return -E2BIG;
                return 0;
        case SG_SCHEME_BCRYPT:
                return cost->bcrypt_cost > caps->bcrypt_cost ? -E2BIG : 0;
        case SG_SCHEME_YESCRYPT:
                /* Memory is 128 * r * p * N bytes and time grows with t too: express both as
                 * extra powers of two of N at libxcrypt's r=32 so one cap bounds them all. */
                lanes = (uint64_t) cost->yescrypt_r * (cost->yescrypt_p ? cost->yescrypt_p : 1);
                if ((uint64_t) cost->yescrypt_n_log2 +
                    ceil_log2((lanes + YESCRYPT_BASE_R - 1) / YESCRYPT_BASE_R) +
                    ceil_log2((uint64_t) cost->yescrypt_t + 1) > caps->yescrypt_n_log2)
                        return -E2BIG;
                return 0;
        case SG_SCHEME_SHA512CRYPT:
        case SG_SCHEME_SHA256CRYPT:
                return cost->sha_rounds > caps->sha_rounds ? -E2BIG : 0;
        default:
                return -EINVAL;
        }
}

int sg_hash_usable(const char *hash, const struct sg_hash_caps *caps) {
        struct sg_hash_cost cost;
        int r;

        r = sg_hash_parse_cost(hash, &cost);
        if (r < 0)
                return r;
        return caps ? sg_hash_within_caps(&cost, caps) : 0;
}

/* Checks the password is a plain string of a sane length and returns a NUL-terminated copy
 * (crypt_rn reads up to the NUL; the caller's buffer need not have one). */
/* A NUL-terminated copy for crypt() and libsodium (which it also initialises: the module has
 * no global init hook, and sodium_init() is safe to call every time). */
static int password_dup(const char *password, size_t len, char **ret) {
        char *copy;

        if (sodium_init() < 0)
                return -ENOMEM;
        if (!password && len > 0)
                return -EINVAL;
        if (len > SG_HASH_PASSWORD_MAX)
                return -EINVAL;
        if (len > 0 && memchr(password, '\0', len))
                return -EINVAL; /* would be truncated by crypt(): "a\0b" must not verify as "a" */
        copy = malloc(len + 1);
        if (!copy)
                return -ENOMEM;
        if (len > 0)
                memcpy(copy, password, len);
        copy[len] = '\0';
        *ret = copy;
        return 0;
}

static void password_free(char *p, size_t len) {
        if (!p)
                return;
        sodium_memzero(p, len + 1);
        free(p);
}

/* Runs crypt_rn with the scratch area on the heap (it is 32 KiB) and compares the result with
 * hash in constant time. */
static int verify_xcrypt(const char *hash, char *pw) {
        struct crypt_data *data;
        bool too_long;
        const char *out;
        size_t hash_len = strlen(hash);
        int r;

        /* libxcrypt refuses longer phrases, so no stored hash can match one; hash its first
         * bytes anyway, so the answer takes as long as for any other wrong password. */
        too_long = strlen(pw) >= CRYPT_MAX_PASSPHRASE_SIZE;
        if (too_long)
                pw[CRYPT_MAX_PASSPHRASE_SIZE - 1] = '\0';
        data = calloc(1, sizeof *data);
        if (!data)
                return -ENOMEM;
        errno = 0;
        out = crypt_rn(pw, hash, data, (int) sizeof *data);
        if (!out)
                r = errno == ENOMEM ? -ENOMEM : -EINVAL;
        else if (out[0] == '*')
                r = -EINVAL;
        else if (strlen(out) != hash_len)
                r = -EACCES;
        else
                r = sodium_memcmp(out, hash, hash_len) == 0 ? 0 : -EACCES;
        if (too_long && r == 0)
                r = -EACCES;
        sodium_memzero(data, sizeof *data);
        free(data);
        return r;
}

int sg_hash_verify(const char *hash, const char *password, size_t password_len,
                   const struct sg_hash_caps *caps) {
        struct sg_hash_cost cost;
        char *pw = NULL;
        int r;

        if (!hash || !caps)
                return -EINVAL;
        /* Parse and cap before anything is allocated or computed. */
        r = sg_hash_parse_cost(hash, &cost);
        if (r < 0)
                return r;
        r = sg_hash_within_caps(&cost, caps);
        if (r < 0)
                return r;
        r = password_dup(password, password_len, &pw);
        if (r < 0)
                return r;

        switch (cost.scheme) {
        case SG_SCHEME_ARGON2ID:
                /* libsodium returns -1 for a mismatch and for an allocation failure alike. */
                r = crypto_pwhash_argon2id_str_verify(hash, pw, password_len) == 0 ? 0 : -EACCES;
                break;
        case SG_SCHEME_ARGON2I:
                r = crypto_pwhash_argon2i_str_verify(hash, pw, password_len) == 0 ? 0 : -EACCES;
                break;
        default:
                r = verify_xcrypt(hash, pw);
        }
        password_free(pw, password_len);
        return r;
}

int sg_hash_dummy_verify(const char *password, size_t password_len, const struct sg_hash_pref *pref) {
        /* A well-formed argon2id string at the preferred cost with an all-zero salt and digest:
         * verifying against it costs exactly what a real verification costs, without
         * computing a fresh hash (which would double the work). */
        char dummy[crypto_pwhash_STRBYTES];
        char salt[23], digest[44];
        unsigned long long ops = crypto_pwhash_OPSLIMIT_INTERACTIVE;
        unsigned long long mem_kib = crypto_pwhash_MEMLIMIT_INTERACTIVE / 1024;
        int n;

        if (pref) {
                ops = pref->opslimit;
                mem_kib = pref->memlimit / 1024;
        }
        if (sodium_init() < 0)
                return -EACCES;
        memset(salt, 'A', sizeof salt - 1);     /* 16 zero bytes in base64 */
        salt[sizeof salt - 1] = '\0';
        memset(digest, 'A', sizeof digest - 1); /* 32 zero bytes */
        digest[sizeof digest - 1] = '\0';
        n = snprintf(dummy, sizeof dummy, "$argon2id$v=19$m=%llu,t=%llu,p=1$%s$%s",
                     mem_kib, ops, salt, digest);
        if (n > 0 && (size_t) n < sizeof dummy) {
                /* The password may hold anything (unknown users type junk, even NUL bytes):
                 * libsodium takes the length explicitly and the result is ignored, since
                 * matching an all-zero digest would need a preimage. */
                int r = crypto_pwhash_argon2id_str_verify(dummy, password ? password : "",
                                                          password ? password_len : 0);
                (void) r;
        }
        return -EACCES;
}

bool sg_hash_needs_upgrade(const char *hash, const struct sg_hash_pref *pref) {
        struct sg_hash_cost c;

        if (!hash || !pref)
                return true;
        if (sg_hash_parse_cost(hash, &c) < 0 || c.scheme != SG_SCHEME_ARGON2ID)
                return true;
        /* Not crypto_pwhash_str_needs_rehash: it answers yes for any difference, and would
         * rehash a stronger hash down to the preference on the next login. libsodium writes
         * m = memlimit / 1024 KiB, so compare in KiB. */
        return c.argon2_m_kib < pref->memlimit / 1024 || c.argon2_t < pref->opslimit;
}

bool sg_hash_reads_whole_password(const char *hash, size_t password_len) {
        return sg_hash_scheme(hash) != SG_SCHEME_BCRYPT || password_len <= BCRYPT_PW_MAX;
}

static int create_argon2id(const char *pw, size_t len, const struct sg_hash_pref *pref,
                           char *out, size_t outsize) {
        char buf[crypto_pwhash_STRBYTES];
        size_t n;
        int r = 0;

        if (!pref || pref->opslimit < crypto_pwhash_OPSLIMIT_MIN ||
            pref->opslimit > crypto_pwhash_OPSLIMIT_MAX ||
            pref->memlimit < crypto_pwhash_MEMLIMIT_MIN ||
            pref->memlimit > crypto_pwhash_MEMLIMIT_MAX)
                return -EINVAL;
        if (crypto_pwhash_str(buf, pw, len, pref->opslimit, (size_t) pref->memlimit) != 0)
                return -ENOMEM; /* limits were checked: only the allocation can fail */
        n = strlen(buf);
        if (n >= outsize)
                r = -ENOBUFS;
        else
                memcpy(out, buf, n + 1);
        sodium_memzero(buf, sizeof buf);
        return r;
}

static int create_xcrypt(const char *prefix, unsigned long count, const char *pw,
                         char *out, size_t outsize) {
        char setting[CRYPT_GENSALT_OUTPUT_SIZE];
        struct crypt_data *data;
        const char *h;
        size_t n;
        int r = 0;

        errno = 0;
        if (!crypt_gensalt_rn(prefix, count, NULL, 0, setting, (int) sizeof setting))
                return errno > 0 ? -errno : -EINVAL;
        data = calloc(1, sizeof *data);
        if (!data)
                return -ENOMEM;
        errno = 0;
        h = crypt_rn(pw, setting, data, (int) sizeof *data);
        if (!h || h[0] == '*')
                r = errno == ENOMEM ? -ENOMEM : -EINVAL;
        else if ((n = strlen(h)) >= outsize)
                r = -ENOBUFS;
        else
                memcpy(out, h, n + 1);
        sodium_memzero(data, sizeof *data);
        free(data);
        return r;
}

int sg_hash_create(enum sg_scheme scheme, const char *password, size_t password_len,
                   const struct sg_hash_pref *pref, bool allow_bcrypt,
                   char *out, size_t outsize) {
        char *pw = NULL;
        int r;

        if (!out || outsize == 0 || password_len > SG_HASH_PASSWORD_MAX)
                return -EINVAL;
        switch (scheme) {
        case SG_SCHEME_ARGON2ID:
                break;
        case SG_SCHEME_YESCRYPT:
        case SG_SCHEME_SHA512CRYPT:
                if (password_len >= CRYPT_MAX_PASSPHRASE_SIZE)
                        return -E2BIG; /* libxcrypt's limit */
                break;
        case SG_SCHEME_BCRYPT:
                if (!allow_bcrypt)
                        return -ENOTSUP;
                /* A longer password would be silently truncated: refuse rather than mislead. */
                if (password_len > BCRYPT_PW_MAX)
                        return -E2BIG;
                break;
        case SG_SCHEME_ARGON2I:
        case SG_SCHEME_SHA256CRYPT:
                return -ENOTSUP;
        default:
                return -EINVAL;
        }
        r = password_dup(password, password_len, &pw);
        if (r < 0)
                return r;
        switch (scheme) {
        case SG_SCHEME_ARGON2ID:
                r = create_argon2id(pw, password_len, pref, out, outsize);
                break;
        case SG_SCHEME_YESCRYPT:
                r = create_xcrypt("$y$", 0, pw, out, outsize);
                break;
        case SG_SCHEME_SHA512CRYPT:
                r = create_xcrypt("$6$", 0, pw, out, outsize);
                break;
        default: /* bcrypt */
                r = create_xcrypt("$2b$", BCRYPT_CREATE_COST, pw, out, outsize);
        }
        password_free(pw, password_len);
        return r;
}
