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
