#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# fusion-test: where=container timeout=90
# An admin's `systemctl stop fusion-backup2` is respected: the monitor sees
# the unit inactive with Result=success, says it leaves it stopped, and does
# not restart it within 3x its restart backoff (3 s), while a failed unit
# would have been restarted after 1 s. The cluster keeps taking writes.
. "$FUSION_SHARE/guest/lib.sh"
. "$FUSION_SHARE/scenarios/systemd-lib.sh"

wait_for 60 "systemctl is-system-running" system_up
fusion_install
cluster_up

unit=fusion-backup2.service
# The socket would start it again on a connection: an admin stops both.
systemctl stop fusion-backup2.socket $unit || fail "systemctl stop failed"
expect "$unit after stop" inactive "$(systemctl is-active $unit)"
wait_for 10 "the monitor to note the stop" journal_has -u fusion-monitor.service --grep "Unit $unit of backup2 was stopped"
t0=$(date +%s%N)
# Negative check, bounded: 3x the first backoff (1 s), polled.
while [ $(( ($(date +%s%N) - t0) / 1000000 )) -lt 3000 ]; do
        [ "$(systemctl is-active $unit)" = inactive ] || fail "$unit was started again: $(systemctl is-active $unit)"
        sleep 0.1
done
log "ok: $unit still inactive 3000 ms after the stop"
journal_has "MESSAGE_ID=$MSG_UNIT_RESTARTED" && fail "the monitor restarted a unit: $(journalctl -b -q -o cat MESSAGE_ID=$MSG_UNIT_RESTARTED)"
journal_has -u fusion-monitor.service --grep "stays failed" && fail "the monitor tried to restart something"
send_ok with-backup2-stopped
