#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# fusion-test: where=both timeout=90
# The .deb installs on a minimal Debian 12: user created, units present and
# clean under systemd-analyze verify, sockets enabled and listening, catalog
# known to journalctl, conffile and cluster key in place, fusion.target
# enabled, and nothing but sockets started.
. "$FUSION_SHARE/guest/lib.sh"

wait_for 30 "systemctl is-system-running" system_up
fusion_install

expect "user fusion" fusion "$(id -un fusion 2>/dev/null)"
expect "conffile" yes "$( [ -f /etc/fusion/fusion.conf ] && echo yes)"
units=(fusion-monitor.socket fusion-monitor-client.socket fusion-primary.socket fusion-backup.socket
       fusion-backup2.socket fusion-monitor.service fusion-primary.service fusion-backup.service
       fusion-backup2.service fusion.target)
for u in "${units[@]}"; do
        [ -f "/lib/systemd/system/$u" ] || fail "$u not installed in /lib/systemd/system"
done
# man pages are checked when installed (man/ is installed by the build).
man_opt=--man=no
[ -e /usr/share/man/man8/fusion-server.8.gz ] && command -v man >/dev/null && man_opt=--man=yes
out=$(cd /lib/systemd/system && systemd-analyze verify $man_opt "${units[@]}" 2>&1)
[ -z "$out" ] || fail "systemd-analyze verify: $out"
log "ok: systemd-analyze verify clean"

for u in fusion-monitor.socket fusion-monitor-client.socket fusion-primary.socket fusion-backup.socket fusion-backup2.socket; do
        expect "$u enabled" enabled "$(systemctl is-enabled "$u")"
        expect "$u active" active "$(systemctl is-active "$u")"
done
for u in fusion-monitor.service fusion-primary.service fusion-backup.service fusion-backup2.service; do
        expect "$u not started by the install" inactive "$(systemctl is-active "$u")"
done
# Enabled (a reboot starts the cluster, see debian/rules), not started.
expect "fusion.target enabled" enabled "$(systemctl is-enabled fusion.target)"
expect "fusion.target not started by the install" inactive "$(systemctl is-active fusion.target)"
expect "cluster key" "-rw-r----- root fusion 65" "$(stat -c '%A %U %G %s' /etc/fusion/authkey)"
for p in 9000 9001 8090 8089 8088; do
        listening "127.0.0.1:$p" || fail "nothing listens on 127.0.0.1:$p"
done
log "ok: ports 9000 9001 8090 8089 8088 listen"
expect "monitor.sock" "srw-rw---- fusion fusion" "$(stat -c '%A %U %G' /run/fusion/monitor.sock)"
expect "client.sock" "srw-rw---- fusion fusion" "$(stat -c '%A %U %G' /run/fusion/client.sock)"
expect "catalog entries" 8 "$(journalctl --list-catalog | grep -c ' fusion: ')"
expect "polkit rule" yes "$( [ -f /usr/share/polkit-1/rules.d/60-fusion.rules ] && echo yes)"
