#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# fusion-test: where=container timeout=90
# `systemctl start fusion-primary` alone brings up the whole cluster; the
# monitor follows the three units over D-Bus (no "no system bus" fallback),
# elects a primary, and `fusion-client send` is acknowledged.
. "$FUSION_SHARE/guest/lib.sh"
. "$FUSION_SHARE/scenarios/systemd-lib.sh"

wait_for 60 "systemctl is-system-running" system_up
fusion_install

t0=$(now_us)
cluster_up
log "cluster up in $(( ($(now_us) - t0) / 1000 )) ms (start job to a named primary)"
send_ok x
send_ok "second message"
for s in primary backup backup2; do
        r=$(role "$s")
        case $r in primary|backup) log "ok: $s answers PING as $r" ;; *) fail "$s: PING role '$r'" ;; esac
done
expect "primaries" 1 "$(for s in primary backup backup2; do role "$s"; done | grep -c '^primary$')"
expect "the primary WHO names" "$(who)" "$(for s in primary backup backup2; do [ "$(role "$s")" = primary ] && echo "$s"; done)"
failed=$(systemctl list-units --failed --plain --no-legend 'fusion-*')
[ -z "$failed" ] || fail "failed units: $failed"
