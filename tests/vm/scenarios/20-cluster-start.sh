#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# fusion-test: where=both timeout=120
# The shipped units run the real binaries under their sandbox: starting
# fusion-primary alone brings up the monitor and both backups (Type=notify,
# so "active" means READY=1 arrived), the servers answer PING on their
# socket-activated ports, the monitor names a primary, a client's message
# makes the round trip (fusion-client send, then get; also a 4000-byte one,
# whose replication lines the servers seal with the libcrypto they dlopen()),
# fusionctl status shows three servers up, and a SIGKILLed server is restarted by systemd
# (Restart=on-failure).
. "$FUSION_SHARE/guest/lib.sh"

wait_for 60 "systemctl is-system-running" system_up
fusion_install

# request LINE HOST PORT: one request line, the first reply line.
request() {
        local reply
        exec 5<>"/dev/tcp/$2/$3" || return 1
        printf '%s\n' "$1" >&5
        IFS= read -r -t 5 reply <&5
        exec 5<&-
        printf '%s\n' "${reply%$'\r'}"
}

systemctl start fusion-primary.service || fail "systemctl start fusion-primary failed: $(journalctl -b -u 'fusion-*' -o cat | tail -n 30)"
for u in fusion-primary fusion-backup fusion-backup2 fusion-monitor; do
        wait_for 30 "$u active" sh -c "[ \"\$(systemctl is-active $u.service)\" = active ]"
        log "ok: $u.service active"
done
expect "state dir" "drwx------ fusion fusion" "$(stat -c '%A %U %G' /var/lib/fusion/primary)"
expect "monitor state dir" "drwx------ fusion fusion" "$(stat -c '%A %U %G' /var/lib/fusion/monitor)"
expect "primary user" fusion "$(ps -o user= -p "$(systemctl show -P MainPID fusion-primary.service)")"

for s in primary:8090 backup:8089 backup2:8088; do
        reply=$(request PING 127.0.0.1 "${s#*:}")
        case $reply in
        "PONG ${s%%:*} "*) log "ok: ${s%%:*} answers '$reply'" ;;
        *) fail "PING ${s%%:*}: got '$reply'" ;;
        esac
done
has_primary() { case $(request WHO 127.0.0.1 9001) in "PRIMARY "*) return 0 ;; esac; return 1; }
wait_for 30 "the monitor to name a primary" has_primary
log "ok: monitor says '$(request WHO 127.0.0.1 9001)'"

# A client's round trip, and fusionctl's view of it.
payload="round-trip-$(cat /proc/sys/kernel/random/uuid)"
out=$(fusion-client --deadline 20000 send "$payload") || fail "fusion-client send failed: $out"
case $out in "OK "*) ;; *) fail "fusion-client send: got '$out'" ;; esac
idx=${out#OK }
expect "fusion-client get $idx" "$payload" "$(fusion-client get "$idx" | cut -d' ' -f3-)"
wait_for 30 "fusionctl status: three servers up" servers_up 3
fusionctl status || fail "fusionctl status failed"
log "ok: fusionctl status shows 3 up, primary $(primary_name)"

# A 4 KiB message: its sealed ENTRY lines take OpenSSL's Poly1305, which each
# server dlopen()s at its first long line, here under the units' sandbox
# (MemoryDenyWriteExecute, SystemCallFilter, ProtectSystem).
big=$(head -c 3000 /dev/urandom | base64 -w0)
out=$(fusion-client --deadline 20000 send "$big") || fail "fusion-client send (4000 bytes) failed: $out"
case $out in "OK "*) ;; *) fail "fusion-client send (4000 bytes): got '$out'" ;; esac
expect "fusion-client get ${out#OK } (4000 bytes)" "$big" "$(fusion-client get "${out#OK }" | cut -d' ' -f3-)"
has_libcrypto() { grep -q 'libcrypto\.so\.3' "/proc/$(systemctl show -P MainPID "$1")/maps"; }
for u in fusion-primary fusion-backup fusion-backup2; do
        wait_for 30 "$u to load libcrypto for the long line" has_libcrypto "$u.service"
done
log "ok: a 4000-byte message round trip; all three servers sealed or opened it with libcrypto"

n0=$(systemctl show -P NRestarts fusion-backup2.service)
pid0=$(systemctl show -P MainPID fusion-backup2.service)
systemctl kill -s SIGKILL fusion-backup2.service
wait_for 30 "fusion-backup2 restarted by systemd" sh -c \
        "[ \"\$(systemctl show -P NRestarts fusion-backup2.service)\" -gt $n0 ] && [ \"\$(systemctl is-active fusion-backup2.service)\" = active ]"
log "ok: fusion-backup2 restarted (pid $pid0 -> $(systemctl show -P MainPID fusion-backup2.service))"

if journalctl -b -u 'fusion-*' -o cat | grep -q 'Watchdog timeout'; then
        fail "a watchdog fired: $(journalctl -b -u 'fusion-*' -o cat | grep 'Watchdog timeout')"
fi
failed=$(systemctl list-units --failed --plain --no-legend 'fusion-*')
[ -z "$failed" ] || fail "failed units: $failed"
log "ok: no fusion unit failed, no watchdog timeout"
