/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-election — the monitor's pure decisions: health, quorum, choice
 * ((lterm, index), priority, port; priority 0 never), switchover catch-up.
 */
#include "tests.h"

#include "election.h"

#define MS USEC_PER_MSEC

static ElectionView view(const char *name, uint64_t prio, uint16_t port, uint64_t lterm, uint64_t index) {
        return (ElectionView) {
                .name = name, .priority = prio, .port = port, .lterm = lterm, .index = index,
                .answered = true, .counts = true, .candidate = true,
        };
}

TEST(health) {
        usec_t now = 10000 * MS;

        ASSERT_EQ_INT(election_health(false, now, now, 100 * MS, 500 * MS, false), PEER_DOWN);
        ASSERT_EQ_INT(election_health(true, now, now, 100 * MS, 500 * MS, false), PEER_UP);
        ASSERT_EQ_INT(election_health(true, now - 200 * MS, now, 100 * MS, 500 * MS, false), PEER_UP);
        ASSERT_EQ_INT(election_health(true, now - 201 * MS, now, 100 * MS, 500 * MS, false), PEER_SUSPECT);
        ASSERT_EQ_INT(election_health(true, now - 500 * MS, now, 100 * MS, 500 * MS, false), PEER_SUSPECT);
        ASSERT_EQ_INT(election_health(true, now - 501 * MS, now, 100 * MS, 500 * MS, false), PEER_DOWN);
        /* TILT: silence is never death */
        ASSERT_EQ_INT(election_health(true, now - 5000 * MS, now, 100 * MS, 500 * MS, true), PEER_SUSPECT);
        ASSERT_EQ_INT(election_health(false, now, now, 100 * MS, 500 * MS, true), PEER_DOWN);
        /* a heartbeat "from the future" (received after now was read) */
        ASSERT_EQ_INT(election_health(true, now + MS, now, 100 * MS, 500 * MS, false), PEER_UP);

        ASSERT_STREQ(peer_health_to_string(PEER_SUSPECT), "suspect");
        ASSERT_EQ_INT(peer_health_from_string("down"), PEER_DOWN);
        ASSERT_EQ_INT(peer_health_from_string("gone"), _PEER_HEALTH_INVALID);
        ASSERT_TRUE(peer_health_to_string(_PEER_HEALTH_MAX) == NULL);
}

TEST(quorum_needed) {
        ASSERT_EQ_U64(election_quorum_needed(3, 1), 2);
        ASSERT_EQ_U64(election_quorum_needed(3, 2), 1);
        ASSERT_EQ_U64(election_quorum_needed(5, 2), 3);
        ASSERT_EQ_U64(election_quorum_needed(3, 0), 3);   /* impossible without the old primary */
        ASSERT_EQ_U64(election_quorum_needed(2, 5), 1);
        ASSERT_EQ_U64(election_quorum_needed(1, 0), 1);
}

/* The original system's rule: highest index, then priority, then port. */
TEST(choose_rules) {
        ElectionView v[3];
        ElectionResult r;

        /* the old primary (0) is lost: not counted, not a candidate */
        v[0] = view("primary", 8090, 8090, 1, 50);
        v[0].counts = v[0].candidate = false;
        v[1] = view("backup", 8089, 8089, 1, 10);
        v[2] = view("backup2", 8088, 8088, 1, 12);
        ASSERT_OK(election_decide(v, 3, 1, &r));
        ASSERT_EQ_INT(r.verdict, ELECTION_CHOSEN);
        ASSERT_EQ_INT(r.chosen, 2);             /* highest index wins over priority */
        ASSERT_EQ_U64(r.n_answered, 2);
        ASSERT_EQ_U64(r.n_needed, 2);
        ASSERT_EQ_INT(r.most_advanced, 2);      /* the old primary's index 50 is not considered */

        /* equal index: priority */
        v[2].index = 10;
        ASSERT_OK(election_decide(v, 3, 1, &r));
        ASSERT_EQ_INT(r.chosen, 1);

        /* equal index and priority: port */
        v[1].priority = v[2].priority = 5;
        ASSERT_OK(election_decide(v, 3, 1, &r));
        ASSERT_EQ_INT(r.chosen, 1);
        v[2].port = 9000;
        ASSERT_OK(election_decide(v, 3, 1, &r));
        ASSERT_EQ_INT(r.chosen, 2);

        /* lterm before index: a longer log from an older term loses */
        v[1] = view("backup", 8089, 8089, 3, 7);
        v[2] = view("backup2", 8088, 8088, 2, 100);
        ASSERT_OK(election_decide(v, 3, 1, &r));
        ASSERT_EQ_INT(r.chosen, 1);
        ASSERT_EQ_INT(r.most_advanced, 1);
}

TEST(quorum) {
        ElectionView v[3];
        ElectionResult r;

        v[0] = view("primary", 8090, 8090, 1, 50);
        v[0].counts = v[0].candidate = false;
        v[1] = view("backup", 8089, 8089, 1, 10);
        v[2] = view("backup2", 8088, 8088, 1, 12);
        v[2].answered = false;

        /* min_sync 1: both backups must answer; only one did */
        ASSERT_OK(election_decide(v, 3, 1, &r));
        ASSERT_EQ_INT(r.verdict, ELECTION_NO_QUORUM);
        ASSERT_EQ_INT(r.chosen, -1);
        ASSERT_EQ_U64(r.n_answered, 1);
        ASSERT_EQ_U64(r.n_needed, 2);

        /* the old primary answering does not help the quorum */
        v[0].answered = true;
        ASSERT_OK(election_decide(v, 3, 1, &r));
        ASSERT_EQ_INT(r.verdict, ELECTION_NO_QUORUM);

        /* min_sync 2: every acknowledged write is on both backups, one answer is enough */
        ASSERT_OK(election_decide(v, 3, 2, &r));
        ASSERT_EQ_INT(r.verdict, ELECTION_CHOSEN);
        ASSERT_EQ_INT(r.chosen, 1);

        /* min_sync 0: no failover can be safe */
        v[2].answered = true;
        ASSERT_OK(election_decide(v, 3, 0, &r));
        ASSERT_EQ_INT(r.verdict, ELECTION_NO_QUORUM);
        ASSERT_EQ_U64(r.n_needed, 3);

        ASSERT_EQ_INT(election_decide(v, 0, 1, &r), -EINVAL);
}

TEST(priority_zero) {
        ElectionView v[3];
        ElectionResult r;

        v[0] = view("primary", 8090, 8090, 1, 50);
        v[0].counts = v[0].candidate = false;
        v[1] = view("backup", 0, 8089, 1, 12);
        v[2] = view("backup2", 8088, 8088, 1, 12);

        ASSERT_OK(election_decide(v, 3, 1, &r));
        ASSERT_EQ_INT(r.verdict, ELECTION_CHOSEN);
        ASSERT_EQ_INT(r.chosen, 2);

        /* the priority-0 server is ahead: the candidate might miss an acknowledged write */
        v[1].index = 13;
        ASSERT_OK(election_decide(v, 3, 1, &r));
        ASSERT_EQ_INT(r.verdict, ELECTION_BEHIND);
        ASSERT_EQ_INT(r.chosen, -1);
        ASSERT_EQ_INT(r.most_advanced, 1);

        /* nobody promotable answered */
        v[2].priority = 0;
        ASSERT_OK(election_decide(v, 3, 1, &r));
        ASSERT_EQ_INT(r.verdict, ELECTION_NO_CANDIDATE);
        ASSERT_STREQ(election_verdict_to_string(r.verdict), "no-candidate");
}

/* First election with the recorded primary back as a backup: a candidate that does not count. */
TEST(first_election) {
        ElectionView v[3];
        ElectionResult r;

        v[0] = view("primary", 8090, 8090, 2, 20);
        v[0].counts = false;
        v[1] = view("backup", 8089, 8089, 2, 20);
        v[2] = view("backup2", 8088, 8088, 2, 19);
        v[2].answered = false;
        ASSERT_OK(election_decide(v, 3, 1, &r));
        ASSERT_EQ_INT(r.verdict, ELECTION_NO_QUORUM);

        v[2].answered = true;
        ASSERT_OK(election_decide(v, 3, 1, &r));
        ASSERT_EQ_INT(r.verdict, ELECTION_CHOSEN);
        ASSERT_EQ_INT(r.chosen, 0);             /* same log, highest priority */

        /* a fresh cluster: nothing recorded, everyone counts */
        v[0].counts = true;
        v[0].answered = false;
        v[1] = view("backup", 8089, 8089, 0, 0);
        v[2] = view("backup2", 8088, 8088, 0, 0);
        ASSERT_OK(election_decide(v, 3, 1, &r));
        ASSERT_EQ_INT(r.verdict, ELECTION_CHOSEN);
        ASSERT_EQ_INT(r.chosen, 1);
}

TEST(compare) {
        ElectionView a = view("a", 1, 1, 1, 1), b = view("b", 1, 1, 1, 1);

        ASSERT_EQ_INT(election_compare(&a, &b), 0);
        b.port = 2;
        ASSERT_TRUE(election_compare(&a, &b) < 0);
        a.priority = 2;
        ASSERT_TRUE(election_compare(&a, &b) > 0);
        b.index = 2;
        ASSERT_TRUE(election_compare(&a, &b) < 0);
        a.lterm = 2;
        ASSERT_TRUE(election_compare(&a, &b) > 0);
}

TEST(caught_up) {
        ASSERT_TRUE(election_caught_up(3, 10, 3, 10));
        ASSERT_TRUE(election_caught_up(3, 11, 3, 10));
        ASSERT_TRUE(!election_caught_up(3, 9, 3, 10));
        ASSERT_TRUE(!election_caught_up(2, 12, 3, 10));  /* a divergent tail from an older term */
}

int main(void) {
        RUN(health);
        RUN(quorum_needed);
        RUN(choose_rules);
        RUN(quorum);
        RUN(priority_zero);
        RUN(first_election);
        RUN(compare);
        RUN(caught_up);
        return 0;
}
