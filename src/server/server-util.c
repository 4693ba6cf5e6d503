/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * server-util — pure helpers of fusion-server (see server-util.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "server-util.h"

static int cmp_u64_desc(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;

        return x < y ? 1 : x > y ? -1 : 0;
}

uint64_t commit_index_compute(uint64_t old_commit, uint64_t durable, const uint64_t *acked, size_t n_acked,
                              uint64_t min_sync, uint64_t term_first) {
        uint64_t candidate = durable;

        if (min_sync > 0) {
                uint64_t sorted[64];
                size_t n = MIN(n_acked, ELEMENTSOF(sorted));

                if (n < min_sync)
                        return old_commit;

                memcpy(sorted, acked, n * sizeof(uint64_t));
                qsort(sorted, n, sizeof(uint64_t), cmp_u64_desc);
                /* sorted[min_sync - 1]: the highest index held by min_sync backups */
                candidate = MIN(candidate, sorted[min_sync - 1]);
        }

        if (term_first == 0 || candidate < term_first)
                return old_commit;

        return MAX(old_commit, candidate);
}

void seq_ring_put(SeqRing *r, uint64_t seq, usec_t sent) {
        r->seq[seq % SEQ_RING_SIZE] = seq;
        r->sent[seq % SEQ_RING_SIZE] = sent;
}

int seq_ring_get(const SeqRing *r, uint64_t seq, usec_t *ret) {
        if (seq == 0 || r->seq[seq % SEQ_RING_SIZE] != seq)
                return -ENOENT;
        *ret = r->sent[seq % SEQ_RING_SIZE];
        return 0;
}

usec_t backoff_next(usec_t current) {
        if (current < BACKOFF_MIN_USEC)
                return BACKOFF_MIN_USEC;
        return MIN(current * 2, BACKOFF_MAX_USEC);
}

size_t segments_newest(const LogSegment *segments, size_t n, size_t max, const LogSegment **ret) {
        if (n > max) {
                *ret = segments + (n - max);
                return max;
        }
        *ret = segments;
        return n;
}
