#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Chaos: writers send PUTs with unique msgids continuously while, on a seeded
random schedule, the primary, a backup or the monitor is killed (SIGKILL) or
hung (SIGSTOP/SIGCONT), one failure at a time, each repaired before the next.
At the end every acknowledged message must be on the final primary at its
index with its payload, exactly once, indexes dense from 1, and every
server's log a prefix of the primary's.

FUSION_CHAOS_SECONDS (default 60) sets the length; FUSION_CHAOS_SEED the
seed; FUSION_CHAOS_MIN_FAILOVERS (default 20) the primary failovers required.

chaos-never runs the same with fsync=never (20 s, at least 8 failovers): an
acknowledged entry must then be in the file (written, not synced) on the
primary and a backup, which is what survives a killed process; it checks the
servers' write buffering (doc/storage.md).
"""
import os
import random
import signal
import time

from fusiontest import Cluster, Writer, main, wait_for


def chaos():
    run_chaos("always", 60, 20)


def chaos_never():
    run_chaos("never", 20, 8)


def run_chaos(fsync, default_seconds, default_min_failovers):
    seconds = float(os.environ.get("FUSION_CHAOS_SECONDS", str(default_seconds)))
    seed = int(os.environ.get("FUSION_CHAOS_SEED", str(int(time.time()))))
    min_failovers = int(os.environ.get("FUSION_CHAOS_MIN_FAILOVERS", str(default_min_failovers)))
    hard_cap = max(seconds * 4, seconds + 240)
    rnd = random.Random(seed)
    print("seed %d, %.0f s, at least %d primary failovers, fsync=%s" % (seed, seconds, min_failovers, fsync),
          flush=True)
    c = Cluster(cluster_opts={"fsync": fsync})
    ok = False
    writers = []
    try:
        c.start_all()
        c.wait_primary()
        c.wait_writable()
        writers = [Writer(c, "w%d" % i) for i in range(3)]
        for w in writers:
            w.start()
        t_start = time.monotonic()
        failovers = 0
        actions = {"kill-primary": 0, "hang-primary": 0, "kill-backup": 0, "hang-backup": 0, "kill-monitor": 0}
        while True:
            elapsed = time.monotonic() - t_start
            if elapsed >= seconds and failovers >= min_failovers:
                break
            if elapsed > hard_cap:
                raise AssertionError("only %d primary failovers in %.0f s" % (failovers, elapsed))
            acked = sum(len(w.acks) for w in writers)
            wait_for(lambda: sum(len(w.acks) for w in writers) >= acked + 5, 30, "progress before the next failure")
            who = c.wait_primary(timeout=30)
            primary = who[0]
            backups = [n for n in c.names if n != primary]
            # primary failures dominate so that enough failovers happen
            action = rnd.choices(list(actions), weights=[45, 20, 15, 10, 10])[0]
            actions[action] += 1
            if action in ("kill-primary", "hang-primary"):
                if action == "kill-primary":
                    c.kill(primary)
                else:
                    c.signal(primary, signal.SIGSTOP)
                new = c.wait_primary(timeout=30, exclude=primary, min_term=who[2] + 1)
                failovers += 1
                if action == "kill-primary":
                    c.start_server(primary)
                else:
                    time.sleep(rnd.uniform(0, 0.2))  # resume at a random point (a schedule, not a wait)
                    c.signal(primary, signal.SIGCONT)
                wait_for(lambda: (lambda p: p and p[1] == "backup")(c.ping(primary)), 30,
                         "old primary %s back as a backup" % primary)
            elif action in ("kill-backup", "hang-backup"):
                b = rnd.choice(backups)
                if action == "kill-backup":
                    c.kill(b)
                    c.start_server(b)
                else:
                    c.signal(b, signal.SIGSTOP)
                    time.sleep(rnd.uniform(0, 0.3))
                    c.signal(b, signal.SIGCONT)
                wait_for(lambda: c.ping(b), 30, "backup %s back" % b)
            else:
                c.kill("monitor")
                c.start_monitor()
                wait_for(lambda: c.who(), 30, "monitor back")
            # repaired: every server up before the next failure
            for n in c.names:
                wait_for(lambda: c.ping(n), 30, "%s answering" % n)
        for w in writers:
            w.stop()
        final = c.wait_primary(timeout=30)
        last = c.wait_writable(timeout=30)
        # let every server catch up to the final primary
        for n in c.names:
            wait_for(lambda: int(c.info(n).get("commit_index", 0)) >= last, 30, "%s to catch up" % n)
        log = c.read_all(final[0])
        acks = [a for w in writers for a in w.acks]
        lost = [a for a in acks if a[2] not in log or log[a[2]][1] != a[3]]
        # every payload is unique by construction (writers: "payload TAG SEQ",
        # probes: their msgid), so a repeated payload is a message stored twice
        payloads = [p for _, p in log.values() if p]
        dup = len(payloads) - len(set(payloads))
        dense = sorted(log) == list(range(1, len(log) + 1))
        for n in c.names:
            other = c.read_all(n)
            bad = [i for i in other if i not in log or log[i] != other[i]]
            assert not bad, "%s's log differs from the primary's at %s" % (n, bad[:5])
        errors = [e for w in writers for e in w.errors]
        print("acknowledged %d, failovers %d, lost %d, duplicated %d, log entries %d, actions %s"
              % (len(acks), failovers, len(lost), dup, len(log), actions))
        print("METRIC chaos acknowledged=%d failovers=%d lost=%d duplicated=%d" % (len(acks), failovers, len(lost), dup))
        assert not lost, "lost acknowledged messages: %s" % lost[:5]
        assert dup == 0, "%d payloads stored twice" % dup
        assert dense, "indexes not dense from 1"
        assert not errors, errors[:5]
        assert failovers >= min_failovers, failovers
        ok = True
    finally:
        for w in writers:
            w.stop_flag.set()
        c.cleanup(ok)


main({"chaos": chaos, "chaos-never": chaos_never})
