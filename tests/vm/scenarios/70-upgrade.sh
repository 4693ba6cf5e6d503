#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# fusion-test: where=vm timeout=240
# Upgrade in place: `apt install ./fusion_<higher version>.deb` over the
# running cluster while a client writes continuously. The package is
# upgraded, every service runs the new binaries (restarted), the sockets
# stay up, the client sees no failed request (fusion-client retries on its
# own: its exit status and errors are counted) and no acknowledged message
# is lost. The cluster key and the edited conffile survive.
. "$FUSION_SHARE/guest/lib.sh"

wait_for 60 "systemctl is-system-running" system_up
fusion_install
new_deb=$(ls "$FUSION_SHARE"/deb-upgrade/fusion_*.deb 2>/dev/null | head -n1)
[ -n "$new_deb" ] || fail "no upgrade .deb in the share (deb-upgrade/)"
systemctl start fusion-primary.service || fail "systemctl start fusion-primary failed"
wait_for 60 "three servers up and a primary" cluster_ready
v0=$(dpkg-query -W -f='${Version}' fusion)
v1=$(dpkg-deb -f "$new_deb" Version)
dpkg --compare-versions "$v1" gt "$v0" || fail "the upgrade .deb ($v1) is not newer than $v0"
# An administrator's edit of the conffile (a comment) and the key must survive.
echo "# edited by the administrator (70-upgrade)" >>/etc/fusion/fusion.conf
key0=$(sha256sum </etc/fusion/authkey)
declare -A pid0
for u in fusion-primary fusion-backup fusion-backup2 fusion-monitor; do
        pid0[$u]=$(systemctl show -P MainPID "$u.service")
done

dir=/tmp/70-upgrade
writer_start "$dir/w" upgrade 30000
wait_for 30 "the writer's first acknowledgements" writer_has_acked "$dir/w" 10
log "apt install ./${new_deb##*/} ($v0 -> $v1) under load"
t0=$(date +%s%N)
(cd "${new_deb%/*}" && DEBIAN_FRONTEND=noninteractive apt install -y "./${new_deb##*/}") >"$dir/apt.log" 2>&1 \
        || { cat "$dir/apt.log"; fail "apt install of the upgrade failed"; }
log "apt install took $(( ($(date +%s%N) - t0) / 1000000 )) ms"
n_up=$(writer_acked "$dir/w")
expect "installed version" "$v1" "$(dpkg-query -W -f='${Version}' fusion)"
for u in fusion-primary fusion-backup fusion-backup2 fusion-monitor; do
        wait_for 30 "$u active after the upgrade" sh -c "[ \"\$(systemctl is-active $u.service)\" = active ]"
        now=$(systemctl show -P MainPID "$u.service")
        [ "$now" != "${pid0[$u]}" ] || fail "$u was not restarted by the upgrade (pid $now)"
        log "ok: $u restarted (pid ${pid0[$u]} -> $now)"
done
for s in fusion-primary fusion-backup fusion-backup2 fusion-monitor fusion-monitor-client; do
        expect "$s.socket after the upgrade" active "$(systemctl is-active "$s.socket")"
done
wait_for 60 "three servers up and a primary" cluster_ready
wait_for 60 "the writer to go on after the upgrade" writer_has_acked "$dir/w" $((n_up + 10))
writer_stop "$dir/w"
if [ -s "$dir/w/failed" ]; then
        head -n 10 "$dir/w/failed"
        fail "$(wc -l <"$dir/w/failed") client request(s) failed during the upgrade"
fi
log "ok: no failed client request ($(writer_acked "$dir/w") acknowledged)"
verify_acked "$dir/w/acked"
expect "conffile edit kept" 1 "$(grep -c 'edited by the administrator (70-upgrade)' /etc/fusion/fusion.conf)"
expect "cluster key kept" "$key0" "$(sha256sum </etc/fusion/authkey)"
grep -q ' conffile ' "$dir/apt.log" && fail "apt asked about the conffile"
fusionctl status
