#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# fusion-test: where=both timeout=60
# systemd is PID 1 and the system reaches running (or degraded), and the
# share is readable. Proves the harness itself works.
. "$FUSION_SHARE/guest/lib.sh"

expect "PID 1" systemd "$(cat /proc/1/comm)"
wait_for 30 "systemctl is-system-running" system_up
log "system state: $(systemctl is-system-running)"
systemctl --failed --no-legend --plain
expect "share readable" yes "$( [ -r "$FUSION_SHARE/guest/lib.sh" ] && echo yes)"
expect "journald answers" yes "$(journalctl -b -n1 -q >/dev/null && echo yes)"
case $FUSION_WHERE in
vm) expect "virtualization" vm "$(systemd-detect-virt --vm >/dev/null && echo vm)" ;;
container) expect "virtualization" systemd-nspawn "$(systemd-detect-virt --container)" ;;
esac
