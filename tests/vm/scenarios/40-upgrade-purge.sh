#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# fusion-test: where=container timeout=120
# The maintainer scripts: re-installing over a running cluster (the upgrade
# path) restarts the running services and their sockets in one go and leaves
# them active; removal stops everything; purge removes /var/lib/fusion and
# /etc/fusion but keeps the system user.
. "$FUSION_SHARE/guest/lib.sh"

wait_for 60 "systemctl is-system-running" system_up
fusion_install
deb=$(ls "$FUSION_SHARE"/deb/fusion_*.deb 2>/dev/null | head -n1)
[ -n "$deb" ] || skip "needs the .deb"

systemctl start fusion-primary.service || fail "start fusion-primary failed"
for u in fusion-primary fusion-backup fusion-backup2 fusion-monitor; do
        wait_for 30 "$u active" sh -c "[ \"\$(systemctl is-active $u.service)\" = active ]"
done
declare -A before
for u in fusion-primary fusion-backup fusion-backup2 fusion-monitor; do
        before[$u]=$(systemctl show -P MainPID "$u.service")
done

log "upgrade path: dpkg -i over the running cluster"
dpkg -i "$deb" || fail "re-install failed"
for u in fusion-primary fusion-backup fusion-backup2 fusion-monitor; do
        wait_for 30 "$u active again" sh -c "[ \"\$(systemctl is-active $u.service)\" = active ]"
        now=$(systemctl show -P MainPID "$u.service")
        [ "$now" != "${before[$u]}" ] || fail "$u was not restarted by the upgrade (pid $now)"
        log "ok: $u restarted (pid ${before[$u]} -> $now)"
done
for s in fusion-primary fusion-backup fusion-backup2 fusion-monitor fusion-monitor-client; do
        expect "$s.socket after upgrade" active "$(systemctl is-active "$s.socket")"
done

log "remove"
dpkg --remove fusion || fail "dpkg --remove failed"
for u in fusion-primary.service fusion-monitor.service fusion-primary.socket fusion-monitor.socket; do
        state=$(systemctl is-active "$u")
        [ "$state" != active ] || fail "$u still active after remove"
done
log "ok: units stopped"
listening 127.0.0.1:8090 && fail "port 8090 still listens after remove"

log "purge"
dpkg --purge fusion || fail "dpkg --purge failed"
expect "/var/lib/fusion after purge" gone "$( [ -e /var/lib/fusion ] && echo present || echo gone)"
expect "/etc/fusion after purge" gone "$( [ -e /etc/fusion ] && echo present || echo gone)"
expect "unit files after purge" 0 "$(ls /lib/systemd/system/fusion* 2>/dev/null | wc -l)"
expect "sockets.target.wants after purge" 0 "$(ls /etc/systemd/system/sockets.target.wants/fusion* 2>/dev/null | wc -l)"
expect "user fusion kept" fusion "$(id -un fusion)"
rm -f /var/lib/fusion-test.installed
