/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * server-util — the pure decisions of fusion-server, kept apart from the
 * event loop so they can be tested alone: the commit rule of
 * doc/internals.md, the ring of heartbeat send times that leases are
 * counted from, and reconnect backoff.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "hbproto.h"
#include "util.h"

/* The commit rule: the highest index N with N <= durable (durable on this
 * server), at least min_sync of the acked[] indexes >= N, and N >=
 * term_first (the first index written in the primary's current term; entries
 * of older terms commit only together with a newer one). Never less than
 * old_commit. */
uint64_t commit_index_compute(uint64_t old_commit, uint64_t durable, const uint64_t *acked, size_t n_acked,
                              uint64_t min_sync, uint64_t term_first);

/* Heartbeats remembered by seq, so that LEASE seq=S can be counted from the
 * time heartbeat S was sent. */
#define SEQ_RING_SIZE 64

typedef struct SeqRing {
        uint64_t seq[SEQ_RING_SIZE];
        usec_t sent[SEQ_RING_SIZE];
} SeqRing;

void seq_ring_put(SeqRing *r, uint64_t seq, usec_t sent);
/* 0 and the send time, or -ENOENT if seq is unknown or too old (seq 0 never exists). */
int seq_ring_get(const SeqRing *r, uint64_t seq, usec_t *ret);

/* Reconnect backoff: 10 ms doubling to 500 ms. */
#define BACKOFF_MIN_USEC (10 * USEC_PER_MSEC)
#define BACKOFF_MAX_USEC (500 * USEC_PER_MSEC)
usec_t backoff_next(usec_t current);

/* The newest max segments of a log (for SYNC). Returns the count and sets
 * *ret to the first of them. */
size_t segments_newest(const LogSegment *segments, size_t n, size_t max, const LogSegment **ret);

#define streq(a, b) (strcmp((a), (b)) == 0)

static inline bool streq_ptr(const char *a, const char *b) {
        if (!a || !b)
                return a == b;
        return streq(a, b);
}
