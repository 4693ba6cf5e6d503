# shellcheck shell=bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Sourced by every scenario, inside the guest (container or VM):
#   . "$FUSION_SHARE/guest/lib.sh"
# FUSION_WHERE is "container" or "vm"; FUSION_SHARE is the host share.
set -u
FUSION_SHARE=${FUSION_SHARE:-/mnt/share}
FUSION_WHERE=${FUSION_WHERE:-unknown}

log() { echo "[$(cut -d' ' -f1 /proc/uptime)] $*"; }
fail() { log "FAIL: $*"; exit 1; }
skip() { log "SKIP: $*"; exit 77; }

# wait_for SECONDS DESCRIPTION COMMAND...: polls COMMAND every 50 ms until it
# succeeds; fails the scenario when the deadline passes.
wait_for() {
        local secs=$1 what=$2 end
        shift 2
        end=$(( $(date +%s%N) + secs * 1000000000 ))
        until "$@" >/dev/null 2>&1; do
                [ "$(date +%s%N)" -lt "$end" ] || fail "timed out after ${secs}s waiting for $what"
                sleep 0.05
        done
}

# expect DESCRIPTION EXPECTED ACTUAL
expect() {
        [ "$2" = "$3" ] || fail "$1: expected '$2', got '$3'"
        log "ok: $1 = '$3'"
}

# systemd finished starting up. In the VM the scenarios run from
# fusion-test.service, whose own job keeps the system "starting" until it
# ends: there, boot is done when that is the only job left.
system_up() {
        local s
        s=$(systemctl is-system-running 2>/dev/null)
        [ "$s" = running ] || [ "$s" = degraded ] && return 0
        [ "$FUSION_WHERE" = vm ] && [ "$s" = starting ] || return 1
        [ -z "$(systemctl list-jobs --no-legend --plain | grep -v ' fusion-test\.service ')" ]
}

# fusion_install: installs the package under test once: the .deb from the
# share (deb/), else a staged "meson install" tree (stage/, for iterating on
# units without packaging). Exits 77 when the share has neither.
fusion_install() {
        local deb
        [ -e /var/lib/fusion-test.installed ] && return 0
        deb=$(ls "$FUSION_SHARE"/deb/fusion_*.deb 2>/dev/null | head -n1)
        if [ -n "$deb" ]; then
                log "dpkg -i ${deb##*/}"
                dpkg -i "$deb" || fail "dpkg -i failed"
        elif [ -d "$FUSION_SHARE/stage" ]; then
                log "installing staged tree"
                tar -C "$FUSION_SHARE/stage" -cf - . | tar -C / -xf - --keep-directory-symlink --no-same-owner \
                        || fail "copying the staged tree failed"
                systemd-sysusers || fail "systemd-sysusers failed"
                journalctl --update-catalog
                systemctl daemon-reload
                systemctl enable --now fusion-monitor.socket fusion-monitor-client.socket \
                        fusion-primary.socket fusion-backup.socket fusion-backup2.socket \
                        || fail "enabling the sockets failed"
        else
                skip "no .deb (and no staged tree) in the share"
        fi
        touch /var/lib/fusion-test.installed
}

# listening HOST:PORT — a TCP listener exists.
listening() {
        ss -Hltn "sport = :${1##*:}" | grep -q .
}

# ---- helpers of the VM scenarios (names chosen not to clash with
# scenarios/systemd-lib.sh, which is sourced after this file) ----

# FUSION_PHASE: 1 on a scenario's first run, N after its (N-1)th reboot
# (see request_reboot). FUSION_HOST: vm1/vm2 in a two-VM scenario, else empty.
FUSION_PHASE=${FUSION_PHASE:-1}
FUSION_HOST=${FUSION_HOST:-}
MSG_ID_PROMOTION=d64db1b5024949868179f34b90865a1e

# request_reboot: ends this run of the scenario; the VM runner reboots the VM
# (systemctl reboot) and runs the scenario again with FUSION_PHASE+1. Only
# in the VM (scenario header "reboot=yes").
request_reboot() {
        [ "$FUSION_WHERE" = vm ] || skip "a reboot needs the VM"
        log "asking the runner for a reboot (phase $FUSION_PHASE done)"
        sync
        exit 100
}

# srv_request LINE HOST PORT: one request line, the first reply line.
srv_request() {
        local reply
        exec 5<>"/dev/tcp/$2/$3" || return 1
        printf '%s\n' "$1" >&5
        IFS= read -r -t 5 reply <&5
        exec 5<&-
        printf '%s\n' "${reply%$'\r'}"
}

# primary_name: the primary the monitor names (fusion-client who), or fails.
primary_name() {
        local out
        out=$(fusion-client who 2>/dev/null) || return 1
        case $out in primary=*) out=${out#primary=}; echo "${out%% *}" ;; *) return 1 ;; esac
}

# primary_term: the term the monitor names with its primary.
primary_term() {
        local out
        out=$(fusion-client who 2>/dev/null) || return 1
        case $out in *" term="*) echo "${out##* term=}" ;; *) return 1 ;; esac
}

# primary_is NAME / primary_is_not NAME: for wait_for.
primary_is() { [ "$(primary_name)" = "$1" ]; }
primary_is_not() { local p; p=$(primary_name) && [ -n "$p" ] && [ "$p" != "$1" ]; }

# server_json NAME: NAME's object in `fusionctl status --json`, one line.
server_json() {
        fusionctl status --json 2>/dev/null | grep -o "{\"name\":\"$1\"[^}]*}"
}
# server_field NAME FIELD: a string or number field of NAME's status.
server_field() {
        server_json "$1" | sed -nE "s/.*\"$2\":\"?([^\",}]*)\"?.*/\\1/p"
}
# servers_up N: fusionctl status --json shows exactly N servers up.
servers_up() {
        [ "$(fusionctl status --json 2>/dev/null | grep -o '"state":"up"' | wc -l)" -eq "$1" ]
}
# server_is NAME ROLE: NAME is up with ROLE.
server_is() {
        local j
        j=$(server_json "$1")
        [[ $j == *"\"role\":\"$2\""* && $j == *'"state":"up"'* ]]
}

# cluster_ready: three servers up, one of them the primary the monitor names.
cluster_ready() {
        servers_up 3 && primary_name >/dev/null
}

# promotions_json: the monitor's promotion events (MESSAGE_ID) since boot, in
# journalctl's export format (KEY=VALUE lines, an empty line between entries).
promotion_entries() {
        journalctl -b -u fusion-monitor.service "MESSAGE_ID=$MSG_ID_PROMOTION" -o export --no-pager 2>/dev/null
}
# promotion_seen NAME TERM: the journal has a promotion of NAME to TERM,
# with its FUSION_SERVER and FUSION_TERM fields.
promotion_seen() {
        promotion_entries | awk -v s="$1" -v t="$2" '
                /^$/ { if (srv == s && term == t) found = 1; srv = ""; term = "" }
                /^FUSION_SERVER=/ { srv = substr($0, 15) }
                /^FUSION_TERM=/ { term = substr($0, 13) }
                END { if (srv == s && term == t) found = 1; exit !found }'
}

# A writer: sends unique messages one at a time (one fusion-client process
# each, so every request is a fresh client doing its own retries), records
# "PAYLOAD INDEX" for each "OK <index>" in DIR/acked and every failed
# request (exit status and error) in DIR/failed. WRITER_PACE (seconds,
# default 0.05) between two requests is a rate limit, not a wait for
# anything: a process per request costs the emulated CPUs dearly.
#   writer_start DIR TAG [DEADLINE_MS]  writer_stop DIR
writer_start() {
        local dir=$1 tag=$2 dl=${3:-20000}
        mkdir -p "$dir"
        : >"$dir/acked"
        : >"$dir/failed"
        rm -f "$dir/stop"
        (
                i=0
                while [ ! -e "$dir/stop" ]; do
                        i=$((i + 1))
                        p="$tag-$i"
                        out=$(fusion-client --deadline "$dl" send "$p" 2>"$dir/err")
                        rc=$?
                        case $rc:$out in
                        "0:OK "*) echo "$p ${out#OK }" >>"$dir/acked" ;;
                        *) echo "$p rc=$rc out='$out' err='$(tr '\n' ' ' <"$dir/err")'" >>"$dir/failed" ;;
                        esac
                        sleep "${WRITER_PACE:-0.05}"
                done
        ) &
        echo $! >"$dir/pid"
}
writer_stop() {
        local dir=$1 pid
        pid=$(cat "$dir/pid")
        touch "$dir/stop"
        wait_for 60 "the writer to stop" sh -c "! kill -0 $pid"
        wait "$pid" 2>/dev/null
        log "writer: $(wc -l <"$dir/acked") acknowledged, $(wc -l <"$dir/failed") failed"
}
writer_acked() { wc -l <"$1/acked"; }
# writer_has_acked DIR N: at least N messages acknowledged (for wait_for).
writer_has_acked() { [ "$(wc -l <"$1/acked")" -ge "$2" ]; }

# verify_acked FILE: every "PAYLOAD INDEX" line of FILE is in the cluster's
# log at INDEX, and that PAYLOAD nowhere else (read back through
# fusion-client read from whichever server answers).
verify_acked() {
        local file=$1 max n log
        n=$(wc -l <"$file")
        [ "$n" -gt 0 ] || fail "verify_acked: no acknowledged messages in $file"
        max=$(awk '$2 > m { m = $2 } END { print m + 0 }' "$file")
        log=$(mktemp)
        local from=1
        while [ "$from" -le "$max" ]; do
                fusion-client --deadline 20000 read "$from" 10000 >>"$log" || fail "fusion-client read $from failed"
                from=$((from + 10000))
        done
        awk 'NR == FNR { at[$1] = $3; cnt[$3]++; next }
             { if (at[$2] != $1) { printf "lost or moved: %s acknowledged at %s, log has \"%s\" there\n", $1, $2, at[$2]; bad++ }
               else if (cnt[$1] != 1) { printf "duplicated: %s stored %d times\n", $1, cnt[$1]; bad++ } }
             END { exit bad > 0 }' "$log" "$file" >"$log.bad"
        local rc=$?
        if [ $rc -ne 0 ]; then
                head -n 20 "$log.bad"
                rm -f "$log" "$log.bad"
                fail "acknowledged messages missing (see above)"
        fi
        rm -f "$log" "$log.bad"
        log "ok: all $n acknowledged messages at their index, once (log up to $max)"
}

# fusion_unit_journal: the fusion units' last lines, for failure messages.
fusion_journal_tail() { journalctl -b -u 'fusion-*' -o short-monotonic --no-pager | tail -n "${1:-40}"; }
