#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# fusion-test: where=container timeout=120
# `journalctl MESSAGE_ID=<promotion>` lists every promotion (first election,
# a crash failover, a switchover) with FUSION_SERVER= and FUSION_TERM=, and
# `fusionctl status --json` matches reality: the primary, every server up,
# every unit active/running.
. "$FUSION_SHARE/guest/lib.sh"
. "$FUSION_SHARE/scenarios/systemd-lib.sh"

wait_for 60 "systemctl is-system-running" system_up
fusion_install
cluster_up
send_ok one

first=$(who)
systemctl kill -s KILL "fusion-$first.service"
new_primary() { local w; w=$(who); [ -n "$w" ] && [ "$w" != "$first" ]; }
wait_for 10 "a new primary" new_primary
second=$(who)
wait_for 20 "$first to rejoin as a backup" role_is "$first" backup
fusionctl promote "$first" || fail "fusionctl promote $first failed"
primary_is() { [ "$(who)" = "$1" ]; }
wait_for 10 "$first primary again" primary_is "$first"
send_ok two

# pairs [MATCH...]: "FUSION_SERVER=x FUSION_TERM=n" per promotion entry, oldest first.
pairs() {
        journalctl -b -q -o export "MESSAGE_ID=$MSG_PROMOTION" "$@" | awk '
                /^FUSION_SERVER=/ { s = $0 } /^FUSION_TERM=/ { t = $0 }
                /^$/ { print s " " t; s = t = "" }'
}
all=$(journalctl -b -q -o cat "MESSAGE_ID=$MSG_PROMOTION" | grep -c .)
echo "every promotion event (monitor and servers):"; pairs
# Every entry (the monitor's, and the promoted server's own) carries both fields.
expect "entries with FUSION_SERVER and FUSION_TERM" "$all" "$(pairs | grep -c '^FUSION_SERVER=[a-z0-9]* FUSION_TERM=[0-9]*$')"
expect "distinct promotions" 3 "$(pairs | sort -u | grep -c .)"
mon=$(pairs _SYSTEMD_UNIT=fusion-monitor.service)
expect "the monitor's promotions, in order" \
        "FUSION_SERVER=$first FUSION_TERM=1|FUSION_SERVER=$second FUSION_TERM=2|FUSION_SERVER=$first FUSION_TERM=3" \
        "$(paste -sd'|' <<<"$mon")"
expect "the servers' own promotion events" 3 "$(pairs _SYSTEMD_UNIT=fusion-$first.service _SYSTEMD_UNIT=fusion-$second.service | grep -c .)"

json=$(fusionctl status --json) || fail "fusionctl status --json failed"
echo "$json"
expect "json primary" "\"primary\":\"$first\"" "$(grep -o '"primary":"[^"]*"' <<<"$json")"
expect "json term" '"term":3' "$(grep -o '"term":[0-9]*' <<<"$json" | head -n1)"
for s in primary backup backup2; do
        obj=$(grep -o "{\"name\":\"$s\"[^}]*}" <<<"$json")
        [ -n "$obj" ] || fail "no entry for $s in status --json"
        expect "$s state" '"state":"up"' "$(grep -o '"state":"[^"]*"' <<<"$obj")"
        want=backup; [ "$s" = "$first" ] && want=primary
        expect "$s role" "\"role\":\"$want\"" "$(grep -o '"role":"[^"]*"' <<<"$obj")"
        expect "$s role (PING)" "$want" "$(role "$s")"
        expect "$s unit" "\"unit_active_state\":\"active\"" "$(grep -o '"unit_active_state":"[^"]*"' <<<"$obj")"
        expect "$s unit sub" "\"unit_sub_state\":\"running\"" "$(grep -o '"unit_sub_state":"[^"]*"' <<<"$obj")"
done
