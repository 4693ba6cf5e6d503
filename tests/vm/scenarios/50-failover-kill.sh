#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# fusion-test: where=vm timeout=150
# `systemctl kill -s KILL` of the primary's unit under load: the monitor
# promotes a backup (journal: the promotion's MESSAGE_ID with FUSION_SERVER
# and FUSION_TERM, the term one higher), `fusion-client bench --continuous`
# running through it reports no failed request, a second client's
# acknowledged messages are all still there, and systemd restarts the old
# primary, which rejoins as a backup.
. "$FUSION_SHARE/guest/lib.sh"

wait_for 60 "systemctl is-system-running" system_up
fusion_install
systemctl start fusion-primary.service || fail "systemctl start fusion-primary failed"
wait_for 60 "three servers up and a primary" cluster_ready
old=$(primary_name)
term0=$(primary_term)
log "primary $old, term $term0"
unit=fusion-$old.service
pid0=$(systemctl show -P MainPID "$unit")

dir=/tmp/50-failover
mkdir -p "$dir"
fusion-client bench --continuous --duration 15000 --size 64 >"$dir/bench.out" 2>"$dir/bench.err" &
bench=$!
writer_start "$dir/w" failover
wait_for 30 "the writer's first acknowledgements" writer_has_acked "$dir/w" 10

log "systemctl kill -s KILL $unit (pid $pid0)"
systemctl kill -s KILL "$unit" || fail "systemctl kill failed"
n_kill=$(writer_acked "$dir/w")
wait_for 30 "a new primary" primary_is_not "$old"
new=$(primary_name)
term1=$(primary_term)
log "ok: new primary $new, term $term0 -> $term1"
[ "$term1" -gt "$term0" ] || fail "the term did not grow ($term0 -> $term1)"
case $new in primary|backup|backup2) ;; *) fail "unexpected primary '$new'" ;; esac

wait_for 30 "the promotion of $new (term $term1) in journalctl -u fusion-monitor" promotion_seen "$new" "$term1"
log "ok: journalctl -u fusion-monitor MESSAGE_ID=$MSG_ID_PROMOTION:"
journalctl -b -u fusion-monitor.service "MESSAGE_ID=$MSG_ID_PROMOTION" -o verbose --no-pager \
        | grep -E 'MESSAGE=|MESSAGE_ID=|FUSION_SERVER=|FUSION_TERM=' | tail -n 4

wait_for 30 "the writer to go on after the failover" writer_has_acked "$dir/w" $((n_kill + 10))
wait_for 60 "$unit restarted by systemd" sh -c \
        "p=\$(systemctl show -P MainPID $unit); [ \"\$p\" != 0 ] && [ \"\$p\" != $pid0 ] && [ \"\$(systemctl is-active $unit)\" = active ]"
wait_for 60 "$old back as a backup" server_is "$old" backup
wait_for 30 "three servers up" servers_up 3
log "ok: $old rejoined as a backup (pid $pid0 -> $(systemctl show -P MainPID "$unit"))"

wait_for 60 "the continuous bench to end" sh -c "! kill -0 $bench"
wait "$bench"
brc=$?
cat "$dir/bench.out"
[ -s "$dir/bench.err" ] && sed 's/^/bench stderr: /' "$dir/bench.err" | head -n 20
expect "bench exit status" 0 "$brc"
expect "bench failed requests" 0 "$(sed -n 's/.* failed=\([0-9]*\).*/\1/p' "$dir/bench.out")"
msgs=$(sed -n 's/.* msgs=\([0-9]*\).*/\1/p' "$dir/bench.out")
[ "${msgs:-0}" -gt 0 ] || fail "bench acknowledged nothing"

writer_stop "$dir/w"
[ ! -s "$dir/w/failed" ] || { head -n 5 "$dir/w/failed"; fail "the writer had failed requests"; }
verify_acked "$dir/w/acked"
fusionctl status
