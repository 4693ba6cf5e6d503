/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * election — pure failover decisions (see election.h). No I/O, no clock, no
 * logging: everything it needs is passed in.
 */
#include <assert.h>
#include <string.h>

#include "election.h"

static const char *const peer_health_table[_PEER_HEALTH_MAX] = {
        [PEER_UP] = "up",
        [PEER_SUSPECT] = "suspect",
        [PEER_DOWN] = "down",
};

const char *peer_health_to_string(PeerHealth h) {
        if (h < 0 || h >= _PEER_HEALTH_MAX)
                return NULL;
        return peer_health_table[h];
}

PeerHealth peer_health_from_string(const char *s) {
        if (!s)
                return _PEER_HEALTH_INVALID;
        for (int i = 0; i < _PEER_HEALTH_MAX; i++)
                if (strcmp(peer_health_table[i], s) == 0)
                        return (PeerHealth) i;
        return _PEER_HEALTH_INVALID;
}

static const char *const election_verdict_table[_ELECTION_VERDICT_MAX] = {
        [ELECTION_CHOSEN] = "chosen",
        [ELECTION_NO_QUORUM] = "no-quorum",
        [ELECTION_NO_CANDIDATE] = "no-candidate",
        [ELECTION_BEHIND] = "behind",
};

const char *election_verdict_to_string(ElectionVerdict v) {
        if (v < 0 || v >= _ELECTION_VERDICT_MAX)
                return NULL;
        return election_verdict_table[v];
}

PeerHealth election_health(bool connected, usec_t last_heartbeat, usec_t now, usec_t interval,
                           usec_t dead_after, bool tilt) {
        usec_t age;

        if (!connected)
                return PEER_DOWN;

        age = now > last_heartbeat ? now - last_heartbeat : 0;
        if (age > 2 * interval || age > dead_after)
                return (age > dead_after && !tilt) ? PEER_DOWN : PEER_SUSPECT;
        return PEER_UP;
}

size_t election_quorum_needed(size_t n_servers, uint64_t min_sync_replicas) {
        if (min_sync_replicas >= n_servers)
                return 1;
        return MAX((size_t) (n_servers - min_sync_replicas), (size_t) 1);
}

static int cmp_u64(uint64_t a, uint64_t b) {
        return a < b ? -1 : a > b ? 1 : 0;
}

static int log_position_compare(const ElectionView *a, const ElectionView *b) {
        int r = cmp_u64(a->lterm, b->lterm);
        return r != 0 ? r : cmp_u64(a->index, b->index);
}

int election_compare(const ElectionView *a, const ElectionView *b) {
        int r;

        assert(a);
        assert(b);

        r = log_position_compare(a, b);
        if (r != 0)
                return r;
        r = cmp_u64(a->priority, b->priority);
        if (r != 0)
                return r;
        return cmp_u64(a->port, b->port);
}

int election_decide(const ElectionView *views, size_t n, uint64_t min_sync_replicas, ElectionResult *ret) {
        ElectionResult res = {
                .verdict = ELECTION_NO_QUORUM,
                .chosen = -1,
                .most_advanced = -1,
        };

        assert(views || n == 0);
        assert(ret);

        if (n == 0)
                return -EINVAL;

        res.n_needed = election_quorum_needed(n, min_sync_replicas);

        for (size_t i = 0; i < n; i++) {
                const ElectionView *v = views + i;

                if (!v->answered)
                        continue;
                if (v->counts)
                        res.n_answered++;
                if (v->counts || v->candidate)
                        if (res.most_advanced < 0 || log_position_compare(v, views + res.most_advanced) > 0)
                                res.most_advanced = (int) i;
                if (v->candidate && v->priority > 0)
                        if (res.chosen < 0 || election_compare(v, views + res.chosen) > 0)
                                res.chosen = (int) i;
        }

        if (res.n_answered < res.n_needed)
                res.verdict = ELECTION_NO_QUORUM;
        else if (res.chosen < 0)
                res.verdict = ELECTION_NO_CANDIDATE;
        else if (log_position_compare(views + res.chosen, views + res.most_advanced) < 0)
                res.verdict = ELECTION_BEHIND;
        else
                res.verdict = ELECTION_CHOSEN;

        if (res.verdict != ELECTION_CHOSEN)
                res.chosen = -1;

        *ret = res;
        return 0;
}

bool election_caught_up(uint64_t target_lterm, uint64_t target_index, uint64_t old_lterm, uint64_t old_index) {
        return target_lterm == old_lterm && target_index >= old_index;
}
