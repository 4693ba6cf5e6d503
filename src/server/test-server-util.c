/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Tests for server-util: the commit rule, the heartbeat send-time ring,
 * backoff and SYNC segment selection.
 */
#include "tests.h"

#include "server-util.h"

TEST(commit_needs_replicas) {
        uint64_t acked[] = { 5, 3 };

        /* min_sync 1: the best backup decides, bounded by local durability */
        ASSERT_EQ_U64(commit_index_compute(0, 10, acked, 2, 1, 1), 5);
        ASSERT_EQ_U64(commit_index_compute(0, 4, acked, 2, 1, 1), 4);
        /* min_sync 2: the second best */
        ASSERT_EQ_U64(commit_index_compute(0, 10, acked, 2, 2, 1), 3);
        /* too few backups: nothing moves */
        ASSERT_EQ_U64(commit_index_compute(2, 10, acked, 2, 3, 1), 2);
        ASSERT_EQ_U64(commit_index_compute(2, 10, NULL, 0, 1, 1), 2);
        /* min_sync 0: local durability alone */
        ASSERT_EQ_U64(commit_index_compute(0, 10, NULL, 0, 0, 1), 10);
}

TEST(commit_current_term_rule) {
        uint64_t acked[] = { 7 };

        /* term starts at 8: entries 1..7 of older terms do not commit on their own */
        ASSERT_EQ_U64(commit_index_compute(3, 9, acked, 1, 1, 8), 3);
        acked[0] = 8;
        ASSERT_EQ_U64(commit_index_compute(3, 9, acked, 1, 1, 8), 8);
        /* no entry of this term yet (term_first 0): nothing */
        ASSERT_EQ_U64(commit_index_compute(3, 9, acked, 1, 1, 0), 3);
}

TEST(commit_never_decreases) {
        uint64_t acked[] = { 2, 1 };

        ASSERT_EQ_U64(commit_index_compute(6, 10, acked, 2, 1, 1), 6);
        ASSERT_EQ_U64(commit_index_compute(6, 3, NULL, 0, 0, 1), 6);
}

TEST(commit_order_independent) {
        uint64_t a[] = { 1, 9, 4, 7 }, b[] = { 9, 7, 4, 1 };

        ASSERT_EQ_U64(commit_index_compute(0, 100, a, 4, 2, 1), 7);
        ASSERT_EQ_U64(commit_index_compute(0, 100, b, 4, 2, 1), 7);
        ASSERT_EQ_U64(commit_index_compute(0, 100, a, 4, 4, 1), 1);
        /* the input array is left alone */
        ASSERT_EQ_U64(a[0], 1);
        ASSERT_EQ_U64(a[1], 9);
}

TEST(seq_ring) {
        SeqRing r = {};
        usec_t t = 0;

        ASSERT_EQ_INT(seq_ring_get(&r, 0, &t), -ENOENT);
        ASSERT_EQ_INT(seq_ring_get(&r, 1, &t), -ENOENT);
        for (uint64_t s = 1; s <= 100; s++)
                seq_ring_put(&r, s, s * 1000);
        ASSERT_EQ_INT(seq_ring_get(&r, 100, &t), 0);
        ASSERT_EQ_U64(t, 100000);
        ASSERT_EQ_INT(seq_ring_get(&r, 37, &t), 0);
        ASSERT_EQ_U64(t, 37000);
        /* overwritten by 100 - 64 + ... : 36 is gone, 101 never existed */
        ASSERT_EQ_INT(seq_ring_get(&r, 36, &t), -ENOENT);
        ASSERT_EQ_INT(seq_ring_get(&r, 101, &t), -ENOENT);
}

TEST(backoff) {
        usec_t b = 0;

        b = backoff_next(b);
        ASSERT_EQ_U64(b, 10 * USEC_PER_MSEC);
        b = backoff_next(b);
        ASSERT_EQ_U64(b, 20 * USEC_PER_MSEC);
        for (int i = 0; i < 10; i++)
                b = backoff_next(b);
        ASSERT_EQ_U64(b, 500 * USEC_PER_MSEC);
}

TEST(segments) {
        LogSegment s[100];
        const LogSegment *first = NULL;

        for (size_t i = 0; i < 100; i++)
                s[i] = (LogSegment){ .term = i + 1, .first = i * 10 + 1, .last = i * 10 + 10 };
        ASSERT_EQ_U64(segments_newest(s, 100, REPL_SEGMENTS_MAX, &first), REPL_SEGMENTS_MAX);
        ASSERT_TRUE(first == s + 100 - REPL_SEGMENTS_MAX);
        ASSERT_EQ_U64(segments_newest(s, 3, REPL_SEGMENTS_MAX, &first), 3);
        ASSERT_TRUE(first == s);
        ASSERT_EQ_U64(segments_newest(s, 0, REPL_SEGMENTS_MAX, &first), 0);
}

int main(void) {
        RUN(commit_needs_replicas);
        RUN(commit_current_term_rule);
        RUN(commit_never_decreases);
        RUN(commit_order_independent);
        RUN(seq_ring);
        RUN(backoff);
        RUN(segments);
        return 0;
}
