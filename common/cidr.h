/* SPDX-License-Identifier: MIT */
/* Addresses and CIDR lists for the allowlist and source grouping. Pure code. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sg_addr {
        int family;        /* AF_INET or AF_INET6 */
        uint8_t bytes[16]; /* network order; IPv4 in the first 4 */
};

struct sg_cidr {
        struct sg_addr addr; /* masked to prefix */
        unsigned prefix;
};

struct sg_cidr_list {
        size_t n;
        struct sg_cidr *v; /* malloc'ed */
};

/* Parses "192.0.2.1" or "2001:db8::1" (an IPv4-mapped IPv6 address becomes IPv4). 0 or -EINVAL. */
int sg_addr_parse(const char *s, struct sg_addr *ret);
/* Parses "addr" or "addr/prefix". 0 or -EINVAL. */
int sg_cidr_parse(const char *s, struct sg_cidr *ret);
/* Parses a list separated by spaces and/or commas; empty string = empty list.
 * 0 or -EINVAL (*ret_bad, if not NULL, points at the offending token's start). */
int sg_cidr_list_parse(const char *s, struct sg_cidr_list *ret, const char **ret_bad);
void sg_cidr_list_free(struct sg_cidr_list *l);
bool sg_cidr_list_match(const struct sg_cidr_list *l, const struct sg_addr *a);

/* The key under which a source is counted: IPv4 as the address, IPv6 masked to v6_prefix
 * bits and printed as "2001:db8:1:2::/64". Non-address rhosts (host names, empty) are used
 * verbatim, "" meaning local. Writes at most outsize bytes, NUL-terminated. 0 or -ENOSPC. */
int sg_source_key(const char *rhost, unsigned v6_prefix, char *out, size_t outsize);
