#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# fusion-test: where=container timeout=90
# The monitor's privilege decision holds (units/README.md): inside the real
# fusion-monitor.service sandbox (User=fusion, no capabilities), D-Bus calls
# to systemd are allowed exactly for KillUnit/RestartUnit/ResetFailedUnit on
# fusion server units, and denied for its own unit, other units and other
# verbs; another unprivileged user gets nothing. The service's ExecStart is
# swapped for a busctl script through a drop-in; every other setting is the
# shipped one. fusion-backup runs "sleep" so there is something to kill.
. "$FUSION_SHARE/guest/lib.sh"

wait_for 30 "systemctl is-system-running" system_up
fusion_install

mkdir -p /run/systemd/system/fusion-monitor.service.d /run/systemd/system/fusion-backup.service.d
cat >/run/systemd/system/fusion-backup.service.d/test.conf <<'EOT'
[Unit]
Wants=
[Service]
Type=simple
WatchdogSec=0
ExecStart=
ExecStart=/bin/sleep infinity
EOT
cat >/run/systemd/system/fusion-monitor.service.d/test.conf <<'EOT'
[Service]
Type=oneshot
Restart=no
WatchdogSec=0
ExecStart=
ExecStart=/bin/bash /run/fusion-test-calls
EOT
cat >/run/fusion-test-calls <<'EOT'
try() {
        local out
        if out=$(busctl call org.freedesktop.systemd1 /org/freedesktop/systemd1 \
                 org.freedesktop.systemd1.Manager "$@" 2>&1); then
                echo "CALL ALLOW $1 $3"
        else
                echo "CALL DENY $1 $3 ($out)"
        fi
}
echo "CALL USER $(id -un) CAPS $(grep CapEff /proc/self/status | cut -f2)"
try Subscribe
try KillUnit ssi fusion-backup.service all 18
try ResetFailedUnit s fusion-backup.service
try RestartUnit ss fusion-backup.service replace
try KillUnit ssi fusion-monitor.service all 18
try RestartUnit ss fusion-monitor.service replace
try KillUnit ssi systemd-journald.service all 18
try RestartUnit ss dbus.service replace
try StopUnit ss fusion-primary.service replace
try StartUnit ss fusion-primary.service replace
true
EOT
chmod 0755 /run/fusion-test-calls
systemctl daemon-reload
systemctl start fusion-backup.service || fail "fusion-backup (sleep stand-in) did not start"
pid_before=$(systemctl show -P MainPID fusion-backup.service)
systemctl start fusion-monitor.service || fail "fusion-monitor (busctl stand-in) failed: $(journalctl -u fusion-monitor -o cat | tail -n 20)"
calls=$(journalctl -b -u fusion-monitor.service -o cat | grep '^CALL ')
echo "$calls"
grep -q '^CALL USER fusion CAPS 0000000000000000$' <<<"$calls" || fail "monitor does not run as fusion without capabilities"
check() {
        grep -qE "^CALL $1 $2 ?$3( |\$)" <<<"$calls" || fail "expected $1 for $2 $3"
        log "ok: $1 $2 $3"
}
check ALLOW Subscribe ""
check ALLOW KillUnit fusion-backup.service
check ALLOW ResetFailedUnit fusion-backup.service
check ALLOW RestartUnit fusion-backup.service
check DENY KillUnit fusion-monitor.service
check DENY RestartUnit fusion-monitor.service
check DENY KillUnit systemd-journald.service
check DENY RestartUnit dbus.service
check DENY StopUnit fusion-primary.service
check DENY StartUnit fusion-primary.service
wait_for 10 "fusion-backup restarted" sh -c "p=\$(systemctl show -P MainPID fusion-backup.service); [ \"\$p\" != 0 ] && [ \"\$p\" != $pid_before ]"
log "ok: fusion-backup restarted by the monitor (pid $pid_before -> $(systemctl show -P MainPID fusion-backup.service))"

# Another unprivileged user is refused the same call.
if out=$(setpriv --reuid=nobody --regid=nogroup --clear-groups busctl call org.freedesktop.systemd1 \
        /org/freedesktop/systemd1 org.freedesktop.systemd1.Manager RestartUnit ss fusion-backup.service replace 2>&1); then
        fail "user nobody may restart fusion-backup.service"
fi
log "ok: nobody denied ($out)"
systemctl stop fusion-backup.service
rm -rf /run/systemd/system/fusion-monitor.service.d /run/systemd/system/fusion-backup.service.d /run/fusion-test-calls
systemctl daemon-reload
