#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# fusion-test: where=container timeout=60
# systemd-analyze security: every fusion service scores <= 2.0 (the scores are
# recorded in units/README.md).
. "$FUSION_SHARE/guest/lib.sh"

wait_for 30 "systemctl is-system-running" system_up
fusion_install
for u in fusion-primary.service fusion-backup.service fusion-backup2.service fusion-monitor.service; do
        line=$(systemd-analyze security --no-pager "$u" 2>&1 | grep 'Overall exposure level')
        score=$(sed -E 's/.*: ([0-9.]+) .*/\1/' <<<"$line")
        log "$u: $score"
        awk -v s="$score" 'BEGIN { exit !(s != "" && s <= 2.0) }' || fail "$u scores '$score' (> 2.0): $line"
done
systemd-analyze security --no-pager fusion-primary.service | grep -v '^✓' || true
