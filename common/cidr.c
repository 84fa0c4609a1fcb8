/* SPDX-License-Identifier: MIT */
#include "cidr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static const uint8_t v4_mapped_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

int sg_addr_parse(const char *s, struct sg_addr *ret) {
        char buf[INET6_ADDRSTRLEN + 1];
        struct sg_addr a = { 0 };
        const char *pct;
        size_t n;

        if (!s)
                return -EINVAL;
        /* A zone ("fe80::1%eth0") does not change which host it is. */
        pct = strchr(s, '%');
        n = pct ? (size_t) (pct - s) : strlen(s);
        if (n == 0 || n >= sizeof buf)
                return -EINVAL;
        memcpy(buf, s, n);
        buf[n] = '\0';
        if (inet_pton(AF_INET, buf, a.bytes) == 1) {
                a.family = AF_INET;
        } else if (inet_pton(AF_INET6, buf, a.bytes) == 1) {
                a.family = AF_INET6;
                if (memcmp(a.bytes, v4_mapped_prefix, 12) == 0) {
                        memmove(a.bytes, a.bytes + 12, 4);
                        memset(a.bytes + 4, 0, 12);
                        a.family = AF_INET;
                }
        } else
                return -EINVAL;
        if (pct && a.family != AF_INET6)
                return -EINVAL;
        *ret = a;
        return 0;
}

static unsigned family_bits(int family) {
        return family == AF_INET ? 32 : 128;
}

static void mask_addr(struct sg_addr *a, unsigned prefix) {
        unsigned bits = family_bits(a->family);

        for (unsigned i = 0; i < bits / 8; i++) {
                unsigned keep = prefix > i * 8 ? prefix - i * 8 : 0;

                if (keep >= 8)
                        continue;
                a->bytes[i] &= (uint8_t) (0xff00u >> keep);
        }
}

int sg_cidr_parse(const char *s, struct sg_cidr *ret) {
        char buf[INET6_ADDRSTRLEN + 8];
        struct sg_cidr c = { 0 };
        char *slash, *end;
        unsigned long prefix;

        if (!s || strlen(s) >= sizeof buf)
                return -EINVAL;
        snprintf(buf, sizeof buf, "%s", s);
        slash = strchr(buf, '/');
        if (slash)
                *slash = '\0';
        if (strchr(buf, '%') || sg_addr_parse(buf, &c.addr) < 0)
                return -EINVAL;
        c.prefix = family_bits(c.addr.family);
        if (slash) {
                if (slash[1] < '0' || slash[1] > '9')
                        return -EINVAL;
                errno = 0;
                prefix = strtoul(slash + 1, &end, 10);
                if (errno || *end || prefix > 128)
                        return -EINVAL;
                /* An IPv4-mapped IPv6 CIDR ("::ffff:10.0.0.0/104") becomes its IPv4 form. */
                if (c.addr.family == AF_INET && strchr(buf, ':')) {
                        if (prefix < 96)
                                return -EINVAL;
                        prefix -= 96;
                }
                if (prefix > family_bits(c.addr.family))
                        return -EINVAL;
                c.prefix = (unsigned) prefix;
        }
        mask_addr(&c.addr, c.prefix);
        *ret = c;
        return 0;
}

void sg_cidr_list_free(struct sg_cidr_list *l) {
        if (!l)
                return;
        free(l->v);
        l->v = NULL;
        l->n = 0;
}

int sg_cidr_list_parse(const char *s, struct sg_cidr_list *ret, const char **ret_bad) {
        struct sg_cidr_list l = { 0 };
        const char *p = s ? s : "";

        while (*p) {
                char tok[INET6_ADDRSTRLEN + 8];
                size_t n = strcspn(p, " ,\t");
                struct sg_cidr *v;

                if (n == 0) {
                        p++;
                        continue;
                }
                if (n >= sizeof tok)
                        goto bad;
                memcpy(tok, p, n);
                tok[n] = '\0';
                v = realloc(l.v, (l.n + 1) * sizeof *v);
                if (!v) {
                        sg_cidr_list_free(&l);
                        return -ENOMEM;
                }
                l.v = v;
                if (sg_cidr_parse(tok, &l.v[l.n]) < 0)
                        goto bad;
                l.n++;
                p += n;
        }
        *ret = l;
        return 0;
bad:
        if (ret_bad)
                *ret_bad = p;
        sg_cidr_list_free(&l);
        return -EINVAL;
}

bool sg_cidr_list_match(const struct sg_cidr_list *l, const struct sg_addr *a) {
        if (!a)
                return false;
        for (size_t i = 0; l && i < l->n; i++) {
                struct sg_addr m = *a;

                if (l->v[i].addr.family != a->family)
                        continue;
                mask_addr(&m, l->v[i].prefix);
                if (memcmp(m.bytes, l->v[i].addr.bytes, 16) == 0)
                        return true;
        }
        return false;
}

/* Copies s into out whole or not at all: a truncated key would merge unrelated sources. */
static int put_key(const char *s, const char *suffix, char *out, size_t outsize) {
        int n = snprintf(out, outsize, "%s%s", s, suffix);

        if (n < 0 || (size_t) n >= outsize) {
                if (outsize > 0)
                        out[0] = '\0';
                return -ENOSPC;
        }
        return 0;
}

int sg_source_key(const char *rhost, unsigned v6_prefix, char *out, size_t outsize) {
        char buf[INET6_ADDRSTRLEN], suffix[8] = "";
        struct sg_addr a;

        if (!out)
                return -ENOSPC;
        if (!rhost)
                rhost = "";
        if (sg_addr_parse(rhost, &a) < 0) {
                /* A host name (sshd with UseDNS yes): one key however it is spelt, so case and a
                 * trailing dot do not make fresh counters. */
                char name[256];
                size_t n = strlen(rhost);

                if (n > 1 && rhost[n - 1] == '.')
                        n--;
                if (n >= sizeof name)
                        return put_key(rhost, "", out, outsize);
                for (size_t i = 0; i < n; i++)
                        name[i] = (char) ((rhost[i] >= 'A' && rhost[i] <= 'Z') ? rhost[i] - 'A' + 'a' : rhost[i]);
                name[n] = '\0';
                return put_key(name, "", out, outsize);
        }
        if (a.family == AF_INET6) {
                if (v6_prefix > 128)
                        v6_prefix = 128;
                mask_addr(&a, v6_prefix);
                snprintf(suffix, sizeof suffix, "/%u", v6_prefix);
        }
        if (!inet_ntop(a.family, a.bytes, buf, sizeof buf))
                return -ENOSPC;
        return put_key(buf, suffix, out, outsize);
}
