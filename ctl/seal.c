/* SPDX-License-Identifier: MIT */
#include "seal.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "errmsg.h"
#include "keyfile.h"

struct seal_opener {
        uint8_t *sk; /* sodium_malloc'ed: guarded pages, wiped by sodium_free */
        uint8_t pk[crypto_box_PUBLICKEYBYTES];
};

static bool path_taken(const char *path) {
        struct stat st;

        /* lstat: a dangling symlink is taken too (sg_key_write would refuse it anyway). */
        return lstat(path, &st) == 0 || errno != ENOENT;
}

int seal_keygen(const char *public_path, const char *secret_path, char *err, size_t errsize) {
        uint8_t pk[crypto_box_PUBLICKEYBYTES], *sk;
        int r;

        if (!public_path || !secret_path || !*public_path || !*secret_path)
                return sg_errmsg(err, errsize, -EINVAL, "both --public and --secret are needed");
        /* Check both first, so a refusal leaves no half of a pair behind. */
        if (strcmp(public_path, secret_path) == 0)
                return sg_errmsg(err, errsize, -EINVAL, "--public and --secret must be different files");
        if (path_taken(secret_path) || path_taken(public_path))
                return sg_errmsg(err, errsize, -EEXIST, "%s exists; refusing to overwrite a key (move it away first)",
                                 path_taken(secret_path) ? secret_path : public_path);
        sk = sodium_malloc(crypto_box_SECRETKEYBYTES);
        if (!sk)
                return sg_errmsg(err, errsize, -ENOMEM, "out of memory");
        if (crypto_box_keypair(pk, sk) != 0) {
                sodium_free(sk);
                return sg_errmsg(err, errsize, -EIO, "crypto_box_keypair failed");
        }
        r = sg_key_write(secret_path, sk, crypto_box_SECRETKEYBYTES, err, errsize);
        sodium_free(sk);
        if (r < 0)
                return r;
        r = sg_key_write(public_path, pk, sizeof pk, err, errsize);
        if (r < 0) {
                /* We created it a moment ago with O_EXCL: removing it leaves things as they were. */
                (void) unlink(secret_path);
                return r;
        }
        return 0;
}

int seal_opener_new(const char *secret_path, seal_opener **ret, char *err, size_t errsize) {
        seal_opener *o = calloc(1, sizeof *o);
        int r;

        if (!o)
                return sg_errmsg(err, errsize, -ENOMEM, "out of memory");
        o->sk = sodium_malloc(crypto_box_SECRETKEYBYTES);
        if (!o->sk) {
                free(o);
                return sg_errmsg(err, errsize, -ENOMEM, "out of memory");
        }
        r = sg_key_read(secret_path, o->sk, crypto_box_SECRETKEYBYTES, err, errsize);
        if (r == -EBADMSG)
                sg_errmsg(err, errsize, r, "%s is not a secret key of %d bytes (made by secguardctl keygen?)",
                          secret_path, crypto_box_SECRETKEYBYTES);
        if (r >= 0 && crypto_scalarmult_base(o->pk, o->sk) != 0)
                r = sg_errmsg(err, errsize, -EBADMSG, "%s does not hold a usable secret key", secret_path);
        if (r < 0) {
                seal_opener_free(o);
                return r;
        }
        (void) sodium_mprotect_readonly(o->sk);
        *ret = o;
        return 0;
}

seal_opener *seal_opener_free(seal_opener *o) {
        if (!o)
                return NULL;
        sodium_free(o->sk);
        sodium_memzero(o->pk, sizeof o->pk);
        free(o);
        return NULL;
}

int seal_open(const seal_opener *o, const uint8_t *box, size_t box_len, char *out, size_t outsize,
              size_t *ret_len) {
        size_t len;

        if (!o || !box || box_len < crypto_box_SEALBYTES)
                return -EBADMSG;
        len = box_len - crypto_box_SEALBYTES;
        if (outsize < len + 1)
                return -ENOBUFS;
        if (crypto_box_seal_open((unsigned char *) out, box, box_len, o->pk, o->sk) != 0) {
                sodium_memzero(out, outsize);
                return -EBADMSG;
        }
        out[len] = '\0';
        *ret_len = len;
        return 0;
}
