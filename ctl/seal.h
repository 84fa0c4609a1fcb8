/* SPDX-License-Identifier: MIT */
/*
 * Sealed usernames, the admin's side. secguardd seals the name typed for an unknown account
 * (often a password in the wrong field) to a public key with crypto_box_seal; only the
 * holder of the matching secret key can read it. Here: make that key pair, and open boxes
 * with the secret key (kept in sodium_malloc'ed memory, wiped when freed).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Creates a crypto_box key pair: the secret key at secret_path, the public key (what
 * [audit] seal_public_key names) at public_path, both 0600, created exclusively. Refuses
 * (-EEXIST) when either exists, writing nothing; when the second write fails the first
 * file is removed again. err names the path. */
int seal_keygen(const char *public_path, const char *secret_path, char *err, size_t errsize);

typedef struct seal_opener seal_opener;

/* Reads the secret key (owner/mode checked by sg_key_read) and derives its public key. */
int seal_opener_new(const char *secret_path, seal_opener **ret, char *err, size_t errsize);
seal_opener *seal_opener_free(seal_opener *o); /* NULL-safe; wipes the key; returns NULL */

/* Opens one sealed box into out (NUL-terminated; the name may hold any byte but NUL, so
 * print it escaped). -EBADMSG when the box was not sealed to this key or was altered;
 * -ENOBUFS when out is too small. *ret_len = name length. */
int seal_open(const seal_opener *o, const uint8_t *box, size_t box_len, char *out, size_t outsize,
              size_t *ret_len);
