#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# fusion-test: where=pair timeout=300
# Two hosts: two VMs on one private virtual link (qemu -netdev socket between
# the two qemu processes; 192.168.77.0/24 exists only there, no other
# network). vm1 runs primary and backup, vm2 the monitor and backup2; the
# heartbeats and the replication to backup2 cross the link over TCP, with
# one cluster key copied to both hosts. A client on vm2 writes continuously
# (fusion-client bench --continuous, and a recording writer); `systemctl
# kill -s KILL fusion-primary` on vm1 fails the cluster over across hosts
# (to backup or backup2), the client goes on without a failed request and
# loses no acknowledged message, and the old primary rejoins as a backup.
# Both VMs run this script (FUSION_HOST=vm1|vm2); they meet through files in
# the share.
. "$FUSION_SHARE/guest/lib.sh"

sync_dir=$FUSION_SHARE/sync
mkdir -p "$sync_dir"
mark() { echo "${2:-}" >"$sync_dir/$1.tmp" && mv "$sync_dir/$1.tmp" "$sync_dir/$1"; log "mark $1"; }
marked() { [ -e "$sync_dir/$1" ]; }
# A failure on one host tells the other at once (it stops waiting).
other_failed() { [ -e "$sync_dir/failed-$other" ]; }
fail_pair() { mark "failed-$FUSION_HOST" "$*"; fail "$*"; }
await() { # await SECS MARK: wait for the other host's mark, or its failure
        local end=$(( $(date +%s) + $1 ))
        until marked "$2"; do
                other_failed && fail "$other failed: $(cat "$sync_dir/failed-$other")"
                [ "$(date +%s)" -lt "$end" ] || fail_pair "timed out after ${1}s waiting for $other ($2)"
                sleep 0.1
        done
}
on_exit() {
        local rc=$?
        [ $rc -ne 0 ] && [ $rc -ne 77 ] && [ ! -e "$sync_dir/failed-$FUSION_HOST" ] && mark "failed-$FUSION_HOST" "exit $rc"
}
trap on_exit EXIT

case $FUSION_HOST in
vm1) me=1 other=vm2 ;;
vm2) me=2 other=vm1 ;;
*) skip "a two-VM scenario (FUSION_HOST is '$FUSION_HOST')" ;;
esac

wait_for 90 "systemctl is-system-running" system_up
# The link: the only NIC, on the private /24.
nic() { local n; for n in /sys/class/net/*; do [ "${n##*/}" = lo ] || { echo "${n##*/}"; return 0; }; done; return 1; }
wait_for 30 "the virtual NIC" nic
ifc=$(nic)
ip addr add "192.168.77.$me/24" dev "$ifc" || fail_pair "ip addr add failed"
ip link set "$ifc" up || fail_pair "ip link set up failed"
log "link: $ifc 192.168.77.$me/24 ($(ip -br link show "$ifc"))"
expect "routes" "192.168.77.0/24 dev $ifc proto kernel scope link src 192.168.77.$me" \
        "$(ip -o route show | sed "s/ *$//")"

fusion_install
# One cluster key for both hosts: vm1's (made by its postinst) goes to vm2.
if [ "$me" = 1 ]; then
        cp /etc/fusion/authkey "$sync_dir/authkey.tmp" && mv "$sync_dir/authkey.tmp" "$sync_dir/authkey"
        mark key
else
        await 120 key
        install -m 0640 -o root -g fusion "$sync_dir/authkey" /etc/fusion/authkey
fi

# Per-host configuration: the same servers and monitor addresses on both;
# only vm2 (the monitor's host) has the monitor's unix sockets.
if [ "$me" = 1 ]; then msock='' csock=''; else msock=/run/fusion/monitor.sock csock=/run/fusion/client.sock; fi
cat >/etc/fusion/fusion.conf <<EOT
# tests/vm/scenarios/90-two-hosts.sh on $FUSION_HOST
[cluster]
# Two emulated single-CPU hosts under load miss 500 ms heartbeat deadlines
# now and then (a spurious failover, harmless but it moves the primary under
# the checks below); a real cross-host link gets the same margin.
heartbeat_interval_ms = 100
dead_after_ms = 1500
lease_ms = 1200
min_sync_replicas = 1

[monitor]
listen = 192.168.77.2:9000
socket = $msock
client_listen = 192.168.77.2:9001
client_socket = $csock
address = 192.168.77.2:9000
client_address = 192.168.77.2:9001

[server.primary]
address = 192.168.77.1:8090

[server.backup]
address = 192.168.77.1:8089

[server.backup2]
address = 192.168.77.2:8088
EOT
listen_on() { # UNIT ADDRESS...: the socket unit listens there instead
        mkdir -p "/etc/systemd/system/$1.d"
        { echo "[Socket]"; echo "ListenStream="; printf 'ListenStream=%s\n' "${@:2}"; } \
                >"/etc/systemd/system/$1.d/two-hosts.conf"
}
if [ "$me" = 1 ]; then
        here=(fusion-primary.socket fusion-backup.socket)
        gone=(fusion-monitor.socket fusion-monitor-client.socket fusion-monitor.service
              fusion-backup2.socket fusion-backup2.service)
        listen_on fusion-primary.socket 192.168.77.1:8090
        listen_on fusion-backup.socket 192.168.77.1:8089
else
        here=(fusion-monitor.socket fusion-monitor-client.socket fusion-backup2.socket)
        gone=(fusion-primary.socket fusion-primary.service fusion-backup.socket fusion-backup.service)
        listen_on fusion-monitor.socket 192.168.77.2:9000 /run/fusion/monitor.sock
        listen_on fusion-monitor-client.socket 192.168.77.2:9001 /run/fusion/client.sock
        listen_on fusion-backup2.socket 192.168.77.2:8088
fi
systemctl mask --now "${gone[@]}" >/dev/null 2>&1 || fail_pair "masking ${gone[*]} failed"
systemctl daemon-reload
systemctl restart "${here[@]}" || fail_pair "restarting ${here[*]} failed"
for s in "${here[@]}"; do
        expect "$s" active "$(systemctl is-active "$s")"
done
mark "ready-$FUSION_HOST"
await 120 "ready-$other"

if [ "$me" = 1 ]; then
        # ---- vm1: primary and backup ----
        systemctl start fusion-primary.service || fail_pair "systemctl start fusion-primary failed"
        wait_for 30 "fusion-backup active" sh -c '[ "$(systemctl is-active fusion-backup.service)" = active ]'
        expect "fusion-backup2 not here" masked "$(systemctl is-enabled fusion-backup2.service 2>/dev/null)"
        expect "no local monitor" inactive "$(systemctl is-active fusion-monitor.service)"
        wait_for 60 "three servers up (asked over the link)" cluster_ready
        mark started
        await 120 writing
        pid0=$(systemctl show -P MainPID fusion-primary.service)
        log "systemctl kill -s KILL fusion-primary.service (pid $pid0)"
        systemctl kill -s KILL fusion-primary.service || fail_pair "systemctl kill failed"
        mark killed
        wait_for 60 "fusion-primary restarted by systemd" sh -c \
                "p=\$(systemctl show -P MainPID fusion-primary.service); [ \"\$p\" != 0 ] && [ \"\$p\" != $pid0 ] && [ \"\$(systemctl is-active fusion-primary.service)\" = active ]"
        log "ok: fusion-primary restarted here (pid $pid0 -> $(systemctl show -P MainPID fusion-primary.service))"
        # Stay up (serving) until vm2 has checked everything.
        await 200 done-vm2
        log "vm2 says: $(cat "$sync_dir/done-vm2")"
else
        # ---- vm2: the monitor, backup2 and the client ----
        systemctl start fusion-backup2.service || fail_pair "systemctl start fusion-backup2 failed"
        await 120 started
        wait_for 60 "three servers up and a primary" cluster_ready
        expect "primary" primary "$(primary_name)"
        expect "primary's address (across the link)" "192.168.77.1:8090" \
                "$(fusion-client who | sed -n 's/.* address=\([^ ]*\) .*/\1/p')"
        expect "the monitor runs here" active "$(systemctl is-active fusion-monitor.service)"
        term0=$(primary_term)
        fusionctl status
        dir=/tmp/90-two-hosts
        mkdir -p "$dir"
        fusion-client bench --continuous --duration 20000 --size 64 >"$dir/bench.out" 2>"$dir/bench.err" &
        bench=$!
        writer_start "$dir/w" twohosts
        wait_for 30 "the writer's first acknowledgements" writer_has_acked "$dir/w" 10
        mark writing
        await 60 killed
        n_kill=$(writer_acked "$dir/w")
        wait_for 30 "a new primary" primary_is_not primary
        new=$(primary_name)
        term1=$(primary_term)
        log "ok: failover across hosts: primary (vm1) -> $new, term $term0 -> $term1"
        [ "$term1" -gt "$term0" ] || fail_pair "the term did not grow ($term0 -> $term1)"
        wait_for 30 "the promotion in journalctl -u fusion-monitor" promotion_seen "$new" "$term1"
        wait_for 30 "the writer to go on after the failover" writer_has_acked "$dir/w" $((n_kill + 10))
        wait_for 60 "the old primary back as a backup" server_is primary backup
        wait_for 30 "three servers up" servers_up 3
        wait_for 60 "the continuous bench to end" sh -c "! kill -0 $bench"
        wait "$bench"
        brc=$?
        cat "$dir/bench.out"
        [ -s "$dir/bench.err" ] && sed 's/^/bench stderr: /' "$dir/bench.err" | head -n 20
        [ "$brc" = 0 ] || fail_pair "bench exit status $brc"
        expect "bench failed requests" 0 "$(sed -n 's/.* failed=\([0-9]*\).*/\1/p' "$dir/bench.out")"
        writer_stop "$dir/w"
        [ ! -s "$dir/w/failed" ] || { head -n 5 "$dir/w/failed"; fail_pair "the writer had failed requests"; }
        verify_acked "$dir/w/acked"
        fusionctl status
        mark done-vm2 "primary $new, term $term1, $(writer_acked "$dir/w") acknowledged, none lost"
fi
