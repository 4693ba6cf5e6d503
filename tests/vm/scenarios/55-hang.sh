#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# fusion-test: where=vm timeout=150
# A hung primary (`systemctl kill -s STOP`, every process of its unit
# stopped): the monitor notices the silence, fences it (lease expiry or
# KillUnit) and promotes a backup; systemd's watchdog or the monitor's kill
# ends the stopped process, systemd starts it again (Restart=on-failure) and
# it rejoins as a backup. A client writing all along loses nothing and sees
# no failed request.
. "$FUSION_SHARE/guest/lib.sh"

wait_for 60 "systemctl is-system-running" system_up
fusion_install
systemctl start fusion-primary.service || fail "systemctl start fusion-primary failed"
wait_for 60 "three servers up and a primary" cluster_ready
old=$(primary_name)
term0=$(primary_term)
unit=fusion-$old.service
pid0=$(systemctl show -P MainPID "$unit")
log "primary $old (pid $pid0), term $term0"
t0=$(date +%s%N)

dir=/tmp/55-hang
writer_start "$dir/w" hang
wait_for 30 "the writer's first acknowledgements" writer_has_acked "$dir/w" 10

log "systemctl kill -s STOP $unit"
systemctl kill -s STOP "$unit" || fail "systemctl kill -s STOP failed"
n_hang=$(writer_acked "$dir/w")
wait_for 30 "a new primary" primary_is_not "$old"
new=$(primary_name)
term1=$(primary_term)
log "ok: $new promoted, term $term0 -> $term1"
[ "$term1" -gt "$term0" ] || fail "the term did not grow ($term0 -> $term1)"
wait_for 30 "the promotion of $new in the journal" promotion_seen "$new" "$term1"
wait_for 30 "the writer to go on with $new" writer_has_acked "$dir/w" $((n_hang + 10))

# The stopped process must go: the watchdog (WatchdogSec=2s; systemd sends
# SIGABRT and SIGCONT) or the monitor's KillUnit. Then Restart=on-failure.
wait_for 60 "$unit restarted" sh -c \
        "p=\$(systemctl show -P MainPID $unit); [ \"\$p\" != 0 ] && [ \"\$p\" != $pid0 ] && [ \"\$(systemctl is-active $unit)\" = active ]"
how=$(journalctl -b -u "$unit" -o cat --no-pager --since "@$((t0 / 1000000000))" \
        | grep -E -m1 'Watchdog timeout|Killing process|Main process exited|Failed with result' || true)
log "ok: $unit restarted (pid $pid0 -> $(systemctl show -P MainPID "$unit")): $how"
journalctl -b -u fusion-monitor.service -o cat --no-pager --since "@$((t0 / 1000000000))" | grep -iE "fenc|kill|lost|promot" | head -n 8
wait_for 60 "$old back as a backup" server_is "$old" backup
wait_for 30 "three servers up" servers_up 3
log "ok: $old rejoined as a backup"

writer_stop "$dir/w"
[ ! -s "$dir/w/failed" ] || { head -n 5 "$dir/w/failed"; fail "the writer had failed requests"; }
verify_acked "$dir/w/acked"
fusionctl status
