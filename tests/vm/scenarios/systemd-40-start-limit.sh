#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# fusion-test: where=container timeout=150
# A unit driven to its start limit (its ExecStart fails, through a runtime
# drop-in, until StartLimitBurst is spent) ends "failed"; once the fault is
# removed, the monitor (restart_failed_units = yes) resets and restarts it
# after its backoff, and logs FUSION_MESSAGE_UNIT_RESTARTED.
. "$FUSION_SHARE/guest/lib.sh"
. "$FUSION_SHARE/scenarios/systemd-lib.sh"

wait_for 60 "systemctl is-system-running" system_up
fusion_install
cluster_up

unit=fusion-backup2.service
mkdir -p /run/systemd/system/$unit.d
printf '[Service]\nExecStart=\nExecStart=/bin/false\n' >/run/systemd/system/$unit.d/fault.conf
systemctl daemon-reload
t0=$(now_us)
systemctl kill -s KILL $unit
# systemd 252 keeps Result=exit-code when Restart= runs into the limit ("Start request repeated
# too quickly"); the socket gets service-start-limit-hit.
is_failed() { [ "$(systemctl is-active $unit)" = failed ]; }
wait_for 60 "$unit to end failed" is_failed
t_failed=$(now_us)
journal_has -u $unit --grep 'Start request repeated too quickly' || fail "$unit failed without hitting its start limit"
log "ok: $unit failed (Result=$(systemctl show -P Result $unit), start limit hit) after $(systemctl show -P NRestarts $unit) restarts, $(( (t_failed - t0) / 1000 )) ms"

# Remove the fault; the monitor's restart (1 s backoff, doubling to 30 s) must follow.
rm -f /run/systemd/system/$unit.d/fault.conf
systemctl daemon-reload
wait_for 70 "the monitor to restart $unit" journal_has "MESSAGE_ID=$MSG_UNIT_RESTARTED" "FUSION_SERVER=backup2"
t_restarted=$(journal_us "$MSG_UNIT_RESTARTED" "FUSION_SERVER=backup2")
journalctl -b -q -o cat "MESSAGE_ID=$MSG_UNIT_RESTARTED"
journalctl -b -q -o cat -u fusion-monitor.service --grep 'stays failed|Restart job'
log "TIMING start-limit-hit->restarted by the monitor $(( (t_restarted - t_failed) / 1000 )) ms"
wait_for 10 "$unit active" is_active $unit
wait_for 20 "backup2 to rejoin as a backup" role_is backup2 backup
send_ok after-restart
