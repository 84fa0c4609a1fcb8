/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>

#include "charges.h"

/* Few users have logins in progress at once (each is a connection): a small array. */
struct charge {
        uint32_t uid;
        unsigned count;
};

struct Charges {
        struct charge *v;
        size_t n, cap;
};

int charges_new(Charges **ret) {
        Charges *c = calloc(1, sizeof *c);

        if (!c)
                return -ENOMEM;
        *ret = c;
        return 0;
}

Charges *charges_free(Charges *c) {
        if (c) {
                free(c->v);
                free(c);
        }
        return NULL;
}

static struct charge *find(const Charges *c, uint32_t uid) {
        for (size_t i = 0; i < c->n; i++)
                if (c->v[i].uid == uid)
                        return &c->v[i];
        return NULL;
}

unsigned charges_count(const Charges *c, uint32_t uid) {
        const struct charge *e = find(c, uid);

        return e ? e->count : 0;
}

bool charges_take(Charges *c, uint32_t uid, unsigned max) {
        struct charge *e;

        if (uid == 0)
                return true;
        e = find(c, uid);
        if (e) {
                if (e->count >= max)
                        return false;
                e->count++;
                return true;
        }
        if (max == 0)
                return false;
        if (c->n == c->cap) {
                size_t cap = c->cap ? c->cap * 2 : 16;
                struct charge *v = realloc(c->v, cap * sizeof *v);

                if (!v)
                        return false; /* out of memory: refuse, as over the limit */
                c->v = v;
                c->cap = cap;
        }
        c->v[c->n++] = (struct charge) { .uid = uid, .count = 1 };
        return true;
}

void charges_drop(Charges *c, uint32_t uid) {
        struct charge *e = find(c, uid);

        if (!e || --e->count > 0)
                return;
        *e = c->v[--c->n];
}
