# SPDX-License-Identifier: LGPL-2.1-or-later
# Helpers shared by the systemd-*.sh container scenarios (sourced after
# guest/lib.sh; not a scenario itself: no "fusion-test:" header).

MSG_PRIMARY_LOST=e043017d962c4e40bbc43755b9d1d47c
MSG_PROMOTION=d64db1b5024949868179f34b90865a1e
MSG_UNIT_RESTARTED=09d1614ca97b42528d5f17d14d9cbf8e
MSG_FENCING=1a4a058e29fb41a38ec1ce7ec9e4526c
DEAD_AFTER_MS=500

now_us() { echo $(( $(date +%s%N) / 1000 )); }

# request LINE PORT: one request line to 127.0.0.1:PORT, the first reply line.
request() {
        local reply
        exec 5<>"/dev/tcp/127.0.0.1/$2" || return 1
        printf '%s\n' "$1" >&5
        IFS= read -r -t 5 reply <&5
        exec 5<&-
        printf '%s\n' "${reply%$'\r'}"
}

# info_kv PORT KEY: KEY's value in the server's INFO reply.
info_kv() {
        local line
        exec 6<>"/dev/tcp/127.0.0.1/$1" || return 1
        printf 'INFO\n' >&6
        while IFS= read -r -t 5 line <&6; do
                line=${line%$'\r'}
                [ "$line" = END ] && break
                case $line in "$2="*) echo "${line#*=}" ;; esac
        done
        exec 6<&-
}

port_of() { case $1 in primary) echo 8090 ;; backup) echo 8089 ;; backup2) echo 8088 ;; esac; }

# The primary the monitor names ("" when none).
who() { local r; r=$(request WHO 9001) || return 1; case $r in "PRIMARY "*) set -- $r; echo "$2" ;; esac; }

has_primary() { [ -n "$(who)" ]; }
is_active() { [ "$(systemctl is-active "$1")" = active ]; }
# role NAME: the role NAME reports in PONG.
role() { local r; r=$(request PING "$(port_of "$1")") || return 1; set -- $r; [ "$1" = PONG ] && echo "$3"; }
role_is() { [ "$(role "$1")" = "$2" ]; }

# journal_us ID [MATCH...]: realtime (µs) of the newest entry with MESSAGE_ID=ID after the cursor file, "" if none.
journal_us() {
        local id=$1; shift
        journalctl -b -q -o export "MESSAGE_ID=$id" "$@" | sed -n 's/^__REALTIME_TIMESTAMP=//p' | tail -n1
}
journal_has() { journalctl -b -q -o cat "$@" | grep -q .; }

# cluster_up: start the cluster the way users do and wait until a primary answers writes.
cluster_up() {
        systemctl start fusion-primary.service || fail "systemctl start fusion-primary failed: $(journalctl -b -u 'fusion-*' -o cat | tail -n 30)"
        for u in fusion-primary fusion-backup fusion-backup2 fusion-monitor; do
                wait_for 30 "$u active" is_active "$u.service"
        done
        wait_for 30 "the monitor to name a primary" has_primary
        wait_for 30 "the monitor to follow the units over D-Bus" \
                journal_has -u fusion-monitor.service --grep 'Following [0-9]+ units through systemd'
        journal_has -u fusion-monitor.service --grep 'no system bus' && fail "the monitor found no system bus"
        log "ok: cluster up, primary $(who)"
}

# send_ok MSG: fusion-client send MSG prints "OK <index>".
send_ok() {
        local out
        out=$(timeout 20 fusion-client send "$1" 2>&1) || fail "fusion-client send $1: $out"
        case $out in "OK "*) log "ok: send $1 -> $out" ;; *) fail "fusion-client send $1: $out" ;; esac
}

# dump_on_fail: the monitor's journal when a scenario fails (the harness saves the whole journal too).
trap 'rc=$?; [ $rc -ne 0 ] && [ $rc -ne 77 ] && journalctl -b -u fusion-monitor.service -o short-monotonic --no-pager | tail -n 60' EXIT
