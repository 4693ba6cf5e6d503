#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# fusion-test: where=vm timeout=150
# `apt remove fusion` stops every unit (no fusion process, no port left) and
# keeps the configuration, the cluster key and the message logs; `apt purge
# fusion` then removes /etc/fusion, /var/lib/fusion and every enablement
# symlink, and keeps the system user "fusion" (Debian practice: files owned
# by its uid may remain, in backups for one; see debian/fusion.postrm).
# Runs last in the VM: the package is gone afterwards.
. "$FUSION_SHARE/guest/lib.sh"

wait_for 60 "systemctl is-system-running" system_up
fusion_install
systemctl start fusion-primary.service || fail "systemctl start fusion-primary failed"
wait_for 60 "three servers up and a primary" cluster_ready
out=$(fusion-client --deadline 20000 send "before-remove") || fail "send failed: $out"
log "stored: $out"

cursor=$(journalctl --show-cursor -n 0 -q | sed -n 's/^-- cursor: //p')
log "apt remove fusion"
DEBIAN_FRONTEND=noninteractive apt remove -y fusion >/tmp/apt-remove.log 2>&1 \
        || { cat /tmp/apt-remove.log; fail "apt remove failed"; }
expect "package state" config-files "$(dpkg-query -W -f='${db:Status-Status}' fusion)"
for u in fusion-primary fusion-backup fusion-backup2 fusion-monitor; do
        for k in service socket; do
                state=$(systemctl is-active "$u.$k")
                [ "$state" != active ] && [ "$state" != activating ] || fail "$u.$k still $state after remove"
        done
done
expect "fusion-monitor-client.socket" inactive "$(systemctl is-active fusion-monitor-client.socket)"
expect "fusion processes" "" "$(pgrep -u fusion -l || true)"
for p in 9000 9001 8090 8089 8088; do
        listening "127.0.0.1:$p" && fail "port $p still listens after remove"
done
log "ok: every unit stopped, no process, no port"
# Stopping must not start anything again (a server reconnecting to a socket
# that is still listening would socket-activate a stopped service).
started=$(journalctl --after-cursor "$cursor" -o cat --no-pager _PID=1 | grep '^Starting fusion-' || true)
expect "services started during the removal" "" "$started"
expect "conffile kept" yes "$( [ -f /etc/fusion/fusion.conf ] && echo yes)"
expect "cluster key kept" yes "$( [ -f /etc/fusion/authkey ] && echo yes)"
n=$(find /var/lib/fusion -type f | wc -l)
[ "$n" -gt 0 ] || fail "no data left in /var/lib/fusion after remove"
grep -rqa "before-remove" /var/lib/fusion/ || fail "the stored message is not in /var/lib/fusion after remove"
log "ok: data kept ($n files in /var/lib/fusion, the last message among them)"

log "apt purge fusion"
DEBIAN_FRONTEND=noninteractive apt purge -y fusion >/tmp/apt-purge.log 2>&1 \
        || { cat /tmp/apt-purge.log; fail "apt purge failed"; }
expect "package state" not-installed "$(dpkg-query -W -f='${db:Status-Status}' fusion 2>/dev/null || echo not-installed)"
expect "/etc/fusion after purge" gone "$( [ -e /etc/fusion ] && echo present || echo gone)"
expect "/var/lib/fusion after purge" gone "$( [ -e /var/lib/fusion ] && echo present || echo gone)"
expect "unit files after purge" 0 "$(ls /lib/systemd/system/fusion* 2>/dev/null | wc -l)"
# (fusion-test.service is the test runner's own unit)
expect "enablement symlinks after purge" "" "$(find /etc/systemd/system -name 'fusion*' ! -name 'fusion-test*')"
expect "user fusion kept" fusion "$(id -un fusion)"
rm -f /var/lib/fusion-test.installed
