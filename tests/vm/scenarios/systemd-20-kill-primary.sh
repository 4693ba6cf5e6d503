#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# fusion-test: where=container timeout=120
# `systemctl kill -s KILL` of the primary's unit: the monitor promotes a
# backup faster than dead_after_ms (journal: the monitor's "lost" and
# "promoted" events with MESSAGE_ID, and a continuous writer's longest gap),
# and systemd restarts the old primary (Restart=on-failure), which rejoins as
# a backup.
. "$FUSION_SHARE/guest/lib.sh"
. "$FUSION_SHARE/scenarios/systemd-lib.sh"

wait_for 60 "systemctl is-system-running" system_up
fusion_install
cluster_up
send_ok before-kill

old=$(who)
unit=fusion-$old.service
n0=$(systemctl show -P NRestarts "$unit")
pid0=$(systemctl show -P MainPID "$unit")

# A writer that PUTs one message at a time and reports its longest gap.
timeout 30 fusion-client bench --continuous --duration 4000 >/tmp/bench.out 2>/tmp/bench.err &
bench=$!
# The writer is running once the primary's log grows.
last_index() { info_kv "$(port_of "$old")" last_index; }
i0=$(last_index)
grows() { local i; i=$(last_index); [ -n "$i" ] && [ "$i" -gt $(( i0 + 20 )) ]; }
wait_for 20 "the writer to store messages" grows

t_kill=$(now_us)
systemctl kill -s KILL "$unit" || fail "systemctl kill $unit failed"
new_primary() { local w; w=$(who); [ -n "$w" ] && [ "$w" != "$old" ]; }
wait_for 10 "a new primary" new_primary
new=$(who)
log "ok: $new took over from $old"

wait_for 10 "the promotion in the journal" journal_has "MESSAGE_ID=$MSG_PROMOTION" "FUSION_SERVER=$new"
t_lost=$(journal_us "$MSG_PRIMARY_LOST" "FUSION_SERVER=$old")
t_prom=$(journal_us "$MSG_PROMOTION" "FUSION_SERVER=$new")
[ -n "$t_lost" ] && [ -n "$t_prom" ] || fail "lost/promoted events missing (lost '$t_lost', promoted '$t_prom')"
lost_ms=$(( (t_lost - t_kill) / 1000 )); prom_ms=$(( (t_prom - t_kill) / 1000 ))
log "TIMING kill->lost ${lost_ms} ms, kill->promoted ${prom_ms} ms (dead_after_ms $DEAD_AFTER_MS)"
[ "$prom_ms" -lt "$DEAD_AFTER_MS" ] || fail "promotion took ${prom_ms} ms, not faster than dead_after_ms"
journalctl -b -u fusion-monitor.service -o cat --grep "Promoted $new|fenced" | tail -n 3

wait "$bench"; rc=$?
cat /tmp/bench.out; tail -n 5 /tmp/bench.err
[ $rc -eq 0 ] || fail "the writer failed (exit $rc)"
gap=$(sed -n 's/.*max_gap_ms=\([0-9]*\).*/\1/p' /tmp/bench.out)
[ -n "$gap" ] || fail "no max_gap_ms in the writer's output"
log "TIMING writer max_gap_ms ${gap}"
[ "$gap" -lt "$DEAD_AFTER_MS" ] || fail "the writer stalled ${gap} ms, not below dead_after_ms"

restarted() { [ "$(systemctl show -P NRestarts "$unit")" -gt "$n0" ] && is_active "$unit"; }
wait_for 20 "$unit restarted by systemd" restarted
log "ok: $unit restarted (pid $pid0 -> $(systemctl show -P MainPID "$unit"))"
wait_for 20 "$old to rejoin as a backup" role_is "$old" backup
expect "primary after $old rejoined" "$new" "$(who)"
send_ok after-kill
