/* SPDX-License-Identifier: MIT */
/* The noisy-peer buckets (peers.h): pure logic, times passed in. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "peers.h"

#define USEC 1000000ULL
#define MINUTE (60 * USEC)
#define HOUR (60 * MINUTE)

static enum sg_peer_verdict peer(sg_peers *p, uint32_t uid, enum sg_peer_event k, uint64_t now,
                                 struct sg_peer_summary *out, size_t *n) {
        return sg_peers_event(p, uid, k, now, out, n);
}

static sg_peers *mk(void) {
        sg_peers *p = NULL;

        assert_int_equal(sg_peers_new(&p), 0);
        assert_non_null(p);
        return p;
}

/* Burst, refill, counting, the summary when writing resumes, and nothing lost. */
static void test_peer_bucket(void **state) {
        sg_peers *p = mk();
        struct sg_peer_summary s[SG_PEER_SUMMARY_MAX];
        uint64_t t = 1000 * USEC, written = 0, held = 0;
        size_t n;

        (void) state;
        assert_string_equal(sg_peer_event_name(SG_PEER_DENIED), "peer_denied");
        assert_string_equal(sg_peer_event_name(SG_PEER_PROTOCOL_ERROR), "protocol_error");
        assert_string_equal(sg_peer_event_name(SG_PEER_FLEET_REJECTED), "fleet_rejected");
        assert_null(sg_peer_event_name(SG_PEER_EVENT_MAX));
        for (unsigned i = 0; i < SG_PEER_BURST; i++) {
                assert_int_equal(peer(p, 65534, SG_PEER_PROTOCOL_ERROR, t, s, &n), SG_PEER_WRITE);
                assert_int_equal(n, 0);
        }
        assert_int_equal(peer(p, 65534, SG_PEER_PROTOCOL_ERROR, t, s, &n), SG_PEER_SUPPRESS_FIRST);
        assert_int_equal(peer(p, 65534, SG_PEER_DENIED, t + 1, s, &n), SG_PEER_SUPPRESS);
        for (unsigned i = 0; i < 478; i++)
                assert_int_equal(peer(p, 65534, SG_PEER_PROTOCOL_ERROR, t + 2 + i, s, &n), SG_PEER_SUPPRESS);
        /* another uid has its own bucket */
        assert_int_equal(peer(p, 0, SG_PEER_PROTOCOL_ERROR, t + 500, s, &n), SG_PEER_WRITE);
        assert_int_equal(n, 0);
        /* not a minute yet: nothing due */
        assert_int_equal(sg_peers_flush(p, t + 30 * USEC - 1, false, s, SG_PEER_SUMMARY_MAX), 0);

        /* one refill later: the event is written, after both summaries */
        assert_int_equal(peer(p, 65534, SG_PEER_PROTOCOL_ERROR, t + USEC, s, &n), SG_PEER_WRITE);
        assert_int_equal(n, 2);
        for (size_t i = 0; i < n; i++) {
                assert_int_equal(s[i].uid, 65534);
                assert_int_equal(s[i].suppressed, s[i].kind == SG_PEER_DENIED ? 1 : 479);
                held += s[i].suppressed;
        }
        written = SG_PEER_BURST + 1;
        assert_int_equal(written + held, 501);
        /* the bucket is empty again: the next is held, a new period */
        assert_int_equal(peer(p, 65534, SG_PEER_DENIED, t + USEC + 1, s, &n), SG_PEER_SUPPRESS_FIRST);
        assert_int_equal(n, 0);
        /* a long pause refills the whole burst, no more */
        t += HOUR;
        for (unsigned i = 0; i < SG_PEER_BURST; i++) {
                assert_int_equal(peer(p, 65534, SG_PEER_DENIED, t, s, &n), SG_PEER_WRITE);
                assert_int_equal(n, i == 0 ? 1 : 0);
        }
        assert_int_equal(peer(p, 65534, SG_PEER_DENIED, t, s, &n), SG_PEER_SUPPRESS_FIRST);
        /* a clock that goes back refills nothing */
        assert_int_equal(peer(p, 65534, SG_PEER_DENIED, t - MINUTE, s, &n), SG_PEER_SUPPRESS);
        /* force hands out what is held */
        assert_int_equal(sg_peers_flush(p, t, true, s, SG_PEER_SUMMARY_MAX), 1);
        assert_int_equal(s[0].suppressed, 2);
        assert_int_equal(sg_peers_flush(p, t, true, s, SG_PEER_SUMMARY_MAX), 0);
        sg_peers_free(p);
}

/* A flood that never pauses gets one summary a minute, at its own events or at a flush. */
static void test_peer_summary_each_minute(void **state) {
        sg_peers *p = mk();
        struct sg_peer_summary s[SG_PEER_SUMMARY_MAX];
        uint64_t t = 5000 * USEC, held = 0, summaries = 0;
        size_t n;

        (void) state;
        for (unsigned i = 0; i < SG_PEER_BURST; i++)
                peer(p, 7, SG_PEER_DENIED, t, s, &n);
        /* 10 events a second for 3 minutes: 1/s written, the rest held */
        for (uint64_t ms = 0; ms < 3 * 60 * 1000; ms += 100) {
                enum sg_peer_verdict v = peer(p, 7, SG_PEER_DENIED, t + ms * 1000, s, &n);

                for (size_t i = 0; i < n; i++) {
                        held += s[i].suppressed;
                        summaries++;
                }
                (void) v;
        }
        /* written resumes each second here, so each summary covers about a second */
        assert_true(summaries >= 170);
        /* a flood faster than the refill, with no pause at all: the minute rule */
        sg_peers_free(p);
        p = mk();
        held = summaries = 0;
        for (unsigned i = 0; i < SG_PEER_BURST; i++)
                peer(p, 7, SG_PEER_DENIED, t, s, &n);
        for (uint64_t i = 0; i < 1000; i++) {
                /* all within one refill period would be too short for a minute: use a clock
                 * that stands still, then jumps by a minute without refilling (new held time) */
                assert_int_not_equal(peer(p, 7, SG_PEER_DENIED, t, s, &n), SG_PEER_WRITE);
                assert_int_equal(n, 0);
        }
        /* nothing due before the minute; at the minute the flush hands it out */
        assert_int_equal(sg_peers_flush(p, t + MINUTE - 1, false, s, SG_PEER_SUMMARY_MAX), 0);
        assert_int_equal(sg_peers_flush(p, t + MINUTE, false, s, SG_PEER_SUMMARY_MAX), 1);
        assert_int_equal(s[0].suppressed, 1000);
        assert_int_equal(s[0].uid, 7);
        assert_int_equal(sg_peers_flush(p, t + 2 * MINUTE, false, s, SG_PEER_SUMMARY_MAX), 0);
        (void) held;
        sg_peers_free(p);
}

/* The table is fixed: a new uid reuses the least recently seen slot, handing out its counts. */
static void test_peer_table_bounded(void **state) {
        sg_peers *p = mk();
        struct sg_peer_summary s[SG_PEER_SUMMARY_MAX], f[4];
        uint64_t t = 9000 * USEC;
        size_t n;

        (void) state;
        /* uid 1000 floods first (its slot is the oldest), then SG_PEER_SLOTS - 1 others */
        for (unsigned i = 0; i < SG_PEER_BURST + 5; i++)
                peer(p, 1000, SG_PEER_PROTOCOL_ERROR, t, s, &n);
        for (uint32_t uid = 2000; uid < 2000 + SG_PEER_SLOTS - 1; uid++) {
                assert_int_equal(peer(p, uid, SG_PEER_DENIED, t + uid, s, &n), SG_PEER_WRITE);
                assert_int_equal(n, 0);
        }
        /* one more uid: 1000's slot goes, and its 5 held events come back as a summary */
        assert_int_equal(peer(p, 5000, SG_PEER_DENIED, t + 10000, s, &n), SG_PEER_WRITE);
        assert_int_equal(n, 1);
        assert_int_equal(s[0].uid, 1000);
        assert_int_equal(s[0].kind, SG_PEER_PROTOCOL_ERROR);
        assert_int_equal(s[0].suppressed, 5);
        /* flush with little room goes on at the next call */
        for (uint32_t uid = 2000; uid < 2003; uid++)
                for (unsigned i = 0; i < SG_PEER_BURST + 1; i++) {
                        peer(p, uid, SG_PEER_DENIED, t + 20000, s, &n);
                        peer(p, uid, SG_PEER_PROTOCOL_ERROR, t + 20000, s, &n);
                }
        n = sg_peers_flush(p, t + 20000 + MINUTE, false, f, 3);
        assert_int_equal(n, 2);
        n = sg_peers_flush(p, t + 20000 + MINUTE, false, f, 3);
        assert_int_equal(n, 2);
        n = sg_peers_flush(p, t + 20000 + MINUTE, false, f, 3);
        assert_int_equal(n, 2);
        assert_int_equal(sg_peers_flush(p, t + 20000 + MINUTE, false, f, 3), 0);
        sg_peers_free(p);
}

/* Odd inputs: an unknown kind counts as a protocol error; NULL is safe to free. */
static void test_peer_edges(void **state) {
        sg_peers *p = mk();
        struct sg_peer_summary s[SG_PEER_SUMMARY_MAX];
        size_t n = 99;

        (void) state;
        assert_int_equal(sg_peers_new(NULL), -EINVAL);
        assert_null(sg_peers_free(NULL));
        /* an empty table has nothing to hand out, forced or not */
        assert_int_equal(sg_peers_flush(p, 0, true, s, SG_PEER_SUMMARY_MAX), 0);
        assert_int_equal(sg_peers_flush(p, UINT64_MAX, false, NULL, 0), 0);
        for (unsigned i = 0; i < SG_PEER_BURST; i++)
                assert_int_equal(peer(p, 42, SG_PEER_EVENT_MAX, 0, s, &n), SG_PEER_WRITE);
        assert_int_equal(n, 0);
        assert_int_equal(peer(p, 42, (enum sg_peer_event) 77, 0, s, &n), SG_PEER_SUPPRESS_FIRST);
        assert_int_equal(sg_peers_flush(p, 0, true, s, SG_PEER_SUMMARY_MAX), 1);
        assert_int_equal(s[0].kind, SG_PEER_PROTOCOL_ERROR);
        assert_int_equal(s[0].suppressed, 1);
        /* times near the end of the clock do not wrap the summary deadline */
        for (unsigned i = 0; i < SG_PEER_BURST + 1; i++)
                (void) peer(p, 43, SG_PEER_DENIED, UINT64_MAX - 1, s, &n);
        assert_int_equal(sg_peers_flush(p, UINT64_MAX - 1, false, s, SG_PEER_SUMMARY_MAX), 0);
        assert_int_equal(sg_peers_flush(p, UINT64_MAX, true, s, SG_PEER_SUMMARY_MAX), 1);
        assert_null(sg_peers_free(p));
}

/* Login rows by source: a bucket per source, apart from the uids' buckets and from each other;
 * the summary names the source. */
static void test_source_buckets(void **state) {
        sg_peers *p = mk();
        struct sg_peer_summary s[SG_PEER_SUMMARY_MAX];
        uint64_t t = 1000 * USEC;
        size_t n;

        (void) state;
        assert_string_equal(sg_peer_event_name(SG_PEER_AUTH_BLOCKED), "auth_blocked");
        assert_string_equal(sg_peer_event_name(SG_PEER_AUTH_INVALID), "auth_failure");
        for (unsigned i = 0; i < SG_PEER_BURST; i++)
                assert_int_equal(sg_peers_source_event(p, "192.0.2.7", SG_PEER_AUTH_INVALID, t, s, &n),
                                 SG_PEER_WRITE);
        assert_int_equal(sg_peers_source_event(p, "192.0.2.7", SG_PEER_AUTH_INVALID, t, s, &n),
                         SG_PEER_SUPPRESS_FIRST);
        for (unsigned i = 0; i < 99; i++)
                assert_int_equal(sg_peers_source_event(p, "192.0.2.7", SG_PEER_AUTH_BLOCKED, t + 1 + i, s, &n),
                                 SG_PEER_SUPPRESS);
        /* uid 0, "" (local) and another source are other buckets */
        assert_int_equal(peer(p, 0, SG_PEER_PROTOCOL_ERROR, t + 200, s, &n), SG_PEER_WRITE);
        assert_int_equal(sg_peers_source_event(p, "", SG_PEER_AUTH_BLOCKED, t + 201, s, &n), SG_PEER_WRITE);
        assert_int_equal(sg_peers_source_event(p, "2001:db8::/64", SG_PEER_AUTH_BLOCKED, t + 202, s, &n),
                         SG_PEER_WRITE);
        assert_int_equal(n, 0);
        assert_int_equal(sg_peers_flush(p, t + 2 * MINUTE, false, s, SG_PEER_SUMMARY_MAX), 2);
        for (size_t i = 0; i < 2; i++) {
                assert_true(s[i].by_source);
                assert_string_equal(s[i].source, "192.0.2.7");
                assert_int_equal(s[i].suppressed, s[i].kind == SG_PEER_AUTH_INVALID ? 1 : 99);
        }
        sg_peers_free(p);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_peer_bucket),
                cmocka_unit_test(test_source_buckets),
                cmocka_unit_test(test_peer_summary_each_minute),
                cmocka_unit_test(test_peer_table_bounded),
                cmocka_unit_test(test_peer_edges),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
