#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# fusion-test: where=container timeout=120
# `fusionctl hang` SIGSTOPs the primary's main process through systemd: its
# connection stays open, its heartbeats stop. After dead_after_ms the monitor
# declares it lost, fences it (lease expiry; and KillUnit SIGKILL through
# systemd, since its unit is still active) and promotes a backup; systemd
# restarts the killed unit well before its watchdog (WatchdogSec=2s) would,
# and the old primary rejoins as a backup.
. "$FUSION_SHARE/guest/lib.sh"
. "$FUSION_SHARE/scenarios/systemd-lib.sh"

wait_for 60 "systemctl is-system-running" system_up
fusion_install
cluster_up
send_ok before-hang

old=$(who)
unit=fusion-$old.service
n0=$(systemctl show -P NRestarts "$unit")
pid0=$(systemctl show -P MainPID "$unit")

t_hang=$(now_us)
fusionctl hang "$old" || fail "fusionctl hang $old failed"
expect "state of the hung process" T "$(ps -o stat= -p "$pid0" | cut -c1)"
new_primary() { local w; w=$(who); [ -n "$w" ] && [ "$w" != "$old" ]; }
wait_for 10 "a new primary" new_primary
new=$(who)
log "ok: $new took over from the hung $old"

wait_for 10 "the KillUnit fencing event" journal_has "MESSAGE_ID=$MSG_FENCING" --grep "KillUnit" "FUSION_SERVER=$old"
journalctl -b -q -o cat "MESSAGE_ID=$MSG_FENCING" "FUSION_SERVER=$old" | tail -n 2
t_lost=$(journal_us "$MSG_PRIMARY_LOST" "FUSION_SERVER=$old")
t_prom=$(journal_us "$MSG_PROMOTION" "FUSION_SERVER=$new")
t_kill=$(journalctl -b -q -o export "MESSAGE_ID=$MSG_FENCING" "FUSION_SERVER=$old" --grep KillUnit | sed -n 's/^__REALTIME_TIMESTAMP=//p' | tail -n1)
log "TIMING hang->lost $(( (t_lost - t_hang) / 1000 )) ms, hang->KillUnit $(( (t_kill - t_hang) / 1000 )) ms, hang->promoted $(( (t_prom - t_hang) / 1000 )) ms"

restarted() { [ "$(systemctl show -P NRestarts "$unit")" -gt "$n0" ] && is_active "$unit"; }
wait_for 20 "$unit restarted by systemd" restarted
t_up=$(now_us)
log "TIMING hang->$unit active again $(( (t_up - t_hang) / 1000 )) ms (pid $pid0 -> $(systemctl show -P MainPID "$unit"))"
journalctl -b -q -o cat -u "$unit" --grep 'Watchdog timeout' && fail "the watchdog, not KillUnit, ended the hung $old"
journal_has -u fusion-monitor.service --grep "process $pid0 gone .* after KillUnit" || fail "the monitor did not see the KillUnit take effect"
journalctl -b -q -o cat -u fusion-monitor.service --grep "process $pid0 gone"
wait_for 20 "$old to rejoin as a backup" role_is "$old" backup
expect "primary after $old rejoined" "$new" "$(who)"
send_ok after-hang
