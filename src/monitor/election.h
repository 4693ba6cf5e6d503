/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * election — the monitor's pure decisions, kept apart from the event loop so
 * they can be tested alone: a server's health from its heartbeat age, whether
 * the servers that answered a PROBE form a quorum, which of them to promote
 * (doc/internals.md §Failover), and whether a switchover target caught up.
 */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

typedef enum PeerHealth {
        PEER_UP,
        PEER_SUSPECT,
        PEER_DOWN,
        _PEER_HEALTH_MAX,
        _PEER_HEALTH_INVALID = -EINVAL,
} PeerHealth;

const char *peer_health_to_string(PeerHealth h);
PeerHealth peer_health_from_string(const char *s);

/* A connected server is suspect after two missed heartbeat intervals and
 * down after dead_after without a heartbeat; in TILT silence is never death
 * (at worst suspect). A server without a connection is down. */
PeerHealth election_health(bool connected, usec_t last_heartbeat, usec_t now, usec_t interval,
                           usec_t dead_after, bool tilt);

/* One configured server as the election sees it. */
typedef struct ElectionView {
        const char *name;
        uint64_t priority;   /* 0: never promote */
        uint16_t port;       /* of the client address, the last tie-breaker */
        uint64_t lterm;      /* term of the last log entry */
        uint64_t index;      /* last log index */
        bool answered;       /* up, and answered a PROBE sent after the trigger */
        bool counts;         /* counts toward the quorum (false: the old primary) */
        bool candidate;      /* may be chosen (false: the old primary of a lost-primary failover) */
} ElectionView;

typedef enum ElectionVerdict {
        ELECTION_CHOSEN,       /* promote views[chosen] */
        ELECTION_NO_QUORUM,    /* too few counting servers answered */
        ELECTION_NO_CANDIDATE, /* quorum met, but no answered candidate with priority > 0 */
        ELECTION_BEHIND,       /* the best candidate lacks entries that a non-candidate holds */
        _ELECTION_VERDICT_MAX,
        _ELECTION_VERDICT_INVALID = -EINVAL,
} ElectionVerdict;

const char *election_verdict_to_string(ElectionVerdict v);

typedef struct ElectionResult {
        ElectionVerdict verdict;
        size_t n_answered;   /* counting servers that answered */
        size_t n_needed;     /* counting servers needed */
        int chosen;          /* index into the views, -1 unless ELECTION_CHOSEN */
        int most_advanced;   /* answered server (counting or candidate) with the highest (lterm, index), -1 none */
} ElectionResult;

/* Servers other than the old primary that must answer: n_servers -
 * min_sync_replicas, at least 1. An acknowledged write is on the primary and
 * min_sync_replicas backups, so any set this large holds every one of them. */
size_t election_quorum_needed(size_t n_servers, uint64_t min_sync_replicas);

/* Order of preference: (lterm, index), then priority, then port. <0, 0, >0. */
int election_compare(const ElectionView *a, const ElectionView *b);

/* Decide over all configured servers (n == number of servers). Never
 * chooses a server whose (lterm, index) is below that of another answered
 * server that counts or is a candidate: it might miss an acknowledged write
 * that the other one holds (e.g. a more advanced priority-0 server). */
int election_decide(const ElectionView *views, size_t n, uint64_t min_sync_replicas, ElectionResult *ret);

/* Switchover: has the target every entry the old primary reported after its
 * lease ended? Same last term and at least the same index. */
bool election_caught_up(uint64_t target_lterm, uint64_t target_index, uint64_t old_lterm, uint64_t old_index);
