# shellcheck shell=bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Shared by tests/vm/run (qemu TCG VM) and tests/vm/run-container
# (systemd-nspawn): tools, the .deb, the cached Debian 12 root directory,
# scenario discovery. Sourced, not run.

VM_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP_DIR=$(cd "$VM_DIR/../.." && pwd)
CACHE_DIR=${FUSION_VM_CACHE:-$VM_DIR/cache}

# Packages of the guest. Everything the .deb depends on must be here: the
# guest has no network, dpkg -i cannot fetch anything.
GUEST_PACKAGES=systemd,systemd-sysv,dbus,udev,polkitd,libinih1,libsodium23,libssl3,linux-image-amd64,initramfs-tools,iproute2,procps,kmod
GUEST_SUITE=bookworm
GUEST_MIRRORS=(
        "deb http://deb.debian.org/debian bookworm main"
        "deb http://deb.debian.org/debian bookworm-updates main"
        "deb http://deb.debian.org/debian-security bookworm-security main"
)

T0=$(date +%s)
say() { printf '[%4ds] %s\n' $(( $(date +%s) - T0 )) "$*" >&2; }
die() { say "ERROR: $*"; exit 2; }

# Run "$@" with a deadline; a step that overruns fails the run.
deadline() {
        local secs=$1; shift
        timeout --kill-after=10 "$secs" "$@"
}

need_tools() {
        # need_tools cmd:package ...
        local missing=() t
        for t in "$@"; do
                command -v "${t%%:*}" >/dev/null 2>&1 || missing+=("${t#*:}")
        done
        [ ${#missing[@]} -eq 0 ] && return 0
        say "installing ${missing[*]}"
        [ "$(id -u)" -eq 0 ] || die "need root to install ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        deadline 300 apt-get update -qq || die "apt-get update failed"
        deadline 600 apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
                || die "apt-get install ${missing[*]} failed"
}

# The build dependencies from debian/control, installed when missing.
need_build_deps() {
        need_tools dpkg-buildpackage:dpkg-dev dh:debhelper lintian:lintian
        local deps
        deps=$(cd "$TOP_DIR" && dpkg-checkbuilddeps 2>&1 | sed -n 's/.*Unmet build dependencies: //p' \
                | sed -E 's/\([^)]*\)//g; s/\|[^ ]*//g')
        if [ -n "$deps" ]; then
                say "installing build dependencies: $deps"
                export DEBIAN_FRONTEND=noninteractive
                deadline 300 apt-get update -qq || die "apt-get update failed"
                # shellcheck disable=SC2086
                deadline 600 apt-get install -y -qq --no-install-recommends $deps >/dev/null \
                        || die "apt-get install $deps failed"
        fi
}

# build_deb OUTDIR: copies the working tree (tracked and untracked, not
# ignored files) to a scratch dir, runs dpkg-buildpackage -us -uc -b and
# lintian there, leaves fusion_*.deb in OUTDIR. Never builds inside the tree.
build_deb() {
        local out=$1 work
        need_build_deps
        work=$(mktemp -d /tmp/fusion-deb.XXXXXX)
        mkdir -p "$work/fusion"
        (cd "$TOP_DIR" && git ls-files -z --cached --others --exclude-standard \
                | xargs -0 -r sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh \
                | tar --null -T - -cf -) | tar -C "$work/fusion" -xf -
        say "dpkg-buildpackage -us -uc -b (log: $out/build.log)"
        if ! (cd "$work/fusion" && deadline 900 dpkg-buildpackage -us -uc -b) >"$out/build.log" 2>&1; then
                tail -n 40 "$out/build.log" >&2
                rm -rf "$work"
                return 1
        fi
        say "lintian (log: $out/lintian.log)"
        (cd "$work" && deadline 300 lintian --fail-on error,warning --info fusion_*.changes) >"$out/lintian.log" 2>&1
        local lrc=$?
        cp "$work"/fusion_*.deb "$out"/
        # The same tree again with a higher version (the upgrade scenario):
        # a new changelog entry, no clean (the build tree is reused, so the
        # binaries are the same build), no tests (they just ran).
        local ver
        ver=$(cd "$work/fusion" && dpkg-parsechangelog -S Version)
        mkdir -p "$out/upgrade"
        say "dpkg-buildpackage of $ver+vmtest1 (upgrade scenario, log: $out/build-upgrade.log)"
        if (cd "$work/fusion" && upgrade_changelog "$ver" "$ver+vmtest1" && \
                DEB_BUILD_OPTIONS=nocheck deadline 600 dpkg-buildpackage -us -uc -b -nc) >"$out/build-upgrade.log" 2>&1; then
                cp "$work/fusion_$ver+vmtest1_"*.deb "$out/upgrade/"
        else
                say "building the upgrade .deb failed (log: $out/build-upgrade.log); the upgrade scenario will fail"
        fi
        rm -rf "$work"
        if [ $lrc -ne 0 ]; then
                cat "$out/lintian.log" >&2
                say "lintian reported errors or warnings"
                return 1
        fi
        return 0
}

# check_guest_deps DEB: the guest has no network, so every package DEB
# depends on must be in GUEST_PACKAGES (or in every minbase system); says
# which are missing.
check_guest_deps() {
        local dep missing=()
        for dep in $(dpkg-deb -f "$1" Depends | tr ',' '\n' | sed -E 's/\|.*//; s/\(.*\)//; s/ //g'); do
                case ",$GUEST_PACKAGES,libc6,libsystemd0," in *",$dep,"*) ;; *) missing+=("$dep") ;; esac
        done
        [ ${#missing[@]} -eq 0 ] || say "WARNING: the package depends on ${missing[*]}, not in GUEST_PACKAGES (tests/vm/lib.sh): installing it in the guest will fail"
}

# upgrade_changelog OLD NEW: in a source tree, a new debian/changelog entry
# NEW above OLD's (what dch --newversion would write).
upgrade_changelog() {
        local old=$1 new=$2 tmp
        tmp=$(mktemp)
        {
                printf 'fusion (%s) bookworm; urgency=medium\n\n' "$new"
                printf '  * Test upgrade of %s (tests/vm, not a release).\n\n' "$old"
                printf ' -- fusion developers <fusion-devel@lists.example.org>  %s\n\n' "$(date -R)"
                cat debian/changelog
        } >"$tmp" && mv "$tmp" debian/changelog
}

# repack_upgrade DEB OUTDIR: a copy of DEB with Version VERSION+vmtest1 (for
# --deb PATH, where there is no source tree to build again).
repack_upgrade() {
        local deb=$1 out=$2 tmp ver
        tmp=$(mktemp -d)
        dpkg-deb -R "$deb" "$tmp/p" || { rm -rf "$tmp"; return 1; }
        ver=$(sed -n 's/^Version: //p' "$tmp/p/DEBIAN/control")
        sed -i "s/^Version: .*/Version: $ver+vmtest1/" "$tmp/p/DEBIAN/control"
        mkdir -p "$out"
        dpkg-deb -Zxz -b "$tmp/p" "$out/fusion_${ver}+vmtest1_amd64.deb" >/dev/null
        local rc=$?
        rm -rf "$tmp"
        return $rc
}

# Prints the rootfs cache key: the package list, the suite, the mirrors and the
# files baked into the image (guest/customize, guest/fusion-test.service).
rootfs_key() {
        { echo "$GUEST_SUITE $GUEST_PACKAGES"; printf "%s\n" "${GUEST_MIRRORS[@]}"; cat "$VM_DIR/guest/customize" "$VM_DIR/guest/fusion-test.service"; } \
                | sha256sum | cut -c1-16
}

# build_rootfs: sets ROOTFS (a directory) and KERNEL/INITRD, building them
# with mmdebstrap when not cached. ~60-90 s, ~700 MB.
build_rootfs() {
        local key dir
        key=$(rootfs_key)
        dir=$CACHE_DIR/rootfs-$key
        ROOTFS=$dir/root
        KERNEL=$dir/vmlinuz
        INITRD=$dir/initrd.img
        mkdir -p "$CACHE_DIR"
        # One builder at a time (a VM and a container run may start together).
        exec {lock_fd}>"$CACHE_DIR/.lock"
        flock -w 900 "$lock_fd" || die "timed out waiting for $CACHE_DIR/.lock"
        if [ -e "$dir/.done" ]; then
                use_rootfs "$dir"
                flock -u "$lock_fd"
                say "root directory cached: $dir"
                return 0
        fi
        need_tools mmdebstrap:mmdebstrap
        rm -rf --one-file-system "$dir"
        mkdir -p "$dir"
        say "mmdebstrap $GUEST_SUITE (log: $dir/mmdebstrap.log)"
        if ! deadline 900 mmdebstrap --variant=minbase --include="$GUEST_PACKAGES" \
                --customize-hook="copy-in $VM_DIR/guest/fusion-test.service /etc/systemd/system" \
                --customize-hook="copy-in $VM_DIR/guest/customize /tmp" \
                --customize-hook='chroot "$1" sh /tmp/customize' \
                --customize-hook='rm -f "$1/tmp/customize"' \
                "$GUEST_SUITE" "$ROOTFS" "${GUEST_MIRRORS[@]}" >"$dir/mmdebstrap.log" 2>&1; then
                tail -n 30 "$dir/mmdebstrap.log" >&2
                rm -rf --one-file-system "$dir"
                die "mmdebstrap failed"
        fi
        cp "$ROOTFS"/boot/vmlinuz-* "$KERNEL"
        cp "$ROOTFS"/boot/initrd.img-* "$INITRD"
        touch "$dir/.done"
        use_rootfs "$dir"
        # Keep only the newest cached root directory, but never one that
        # another run (a concurrent VM or container run with another key)
        # still uses, and never across a mount point.
        local old
        for old in "$CACHE_DIR"/rootfs-*; do
                [ "$old" != "$dir" ] && [ -d "$old" ] || continue
                if [ -e "$old/.use-lock" ] && ! flock -n -x "$old/.use-lock" true; then
                        say "keeping $old: another run uses it"
                        continue
                fi
                rm -rf --one-file-system "$old" 2>/dev/null || say "could not remove all of $old"
        done
        flock -u "$lock_fd"
        say "root directory ready: $(du -sh "$ROOTFS" | cut -f1)"
}

# use_rootfs DIR: a shared lock on DIR/.use-lock for as long as this run
# lives, so that another run's cache clean-up leaves DIR alone.
use_rootfs() {
        exec {use_fd}>>"$1/.use-lock"
        flock -s "$use_fd"
}

# build_rootfs_bg: starts build_rootfs in the background (mmdebstrap is
# mostly downloads and unpacking, the .deb build mostly compiling: they
# overlap well); a later build_rootfs waits for it through the cache lock.
build_rootfs_bg() {
        local key
        key=$(rootfs_key)
        [ -e "$CACHE_DIR/rootfs-$key/.done" ] && return 0
        mkdir -p "$CACHE_DIR"
        (build_rootfs) &
        # Let it take the lock before anyone else asks for the root directory.
        local end=$(( $(date +%s) + 10 ))
        until [ -d "$CACHE_DIR/rootfs-$key" ] || [ "$(date +%s)" -ge "$end" ]; do sleep 0.1; done
}

# scenario_field FILE FIELD: the value of "# fusion-test: FIELD=VALUE" in
# the scenario's header comment.
scenario_field() {
        sed -n "s/^# fusion-test:.*\\b$2=\\([^ ]*\\).*/\\1/p" "$1" | head -n1
}

# select_scenarios KIND LIST [QUIET]: prints the scenario names to run where
# KIND (vm, container or pair) is acceptable ("where=both" fits vm and
# container; "where=pair" is a two-VM scenario, run only by tests/vm/run).
# LIST is a comma-separated list of names, or empty for all. QUIET: say
# nothing about listed scenarios that do not fit.
select_scenarios() {
        local kind=$1 list=$2 quiet=${3:-} f name where
        for f in "$VM_DIR"/scenarios/*.sh; do
                name=$(basename "$f" .sh)
                where=$(scenario_field "$f" where)
                if [ -n "$list" ]; then
                        case ",$list," in *",$name,"*) ;; *) continue ;; esac
                        if [ "$where" != "$kind" ] && { [ "$where" != both ] || [ "$kind" = pair ]; }; then
                                [ -n "$quiet" ] || say "scenario $name runs in '$where', not in '$kind': skipped"
                                continue
                        fi
                elif [ "$where" != "$kind" ] && { [ "$where" != both ] || [ "$kind" = pair ]; }; then
                        continue
                fi
                echo "$name"
        done
}

# report RESULTS_DIR NAME...: prints one line per scenario and the summary;
# returns non-zero when anything failed.
report() {
        local dir=$1 name rc passed=0 failed=0 skipped=0
        shift
        for name in "$@"; do
                rc=$(cat "$dir/$name.rc" 2>/dev/null || echo none)
                case $rc in
                0) passed=$((passed + 1)); echo "PASS $name" ;;
                77) skipped=$((skipped + 1)); echo "SKIP $name" ;;
                none) failed=$((failed + 1)); echo "FAIL $name (no result: deadline or crash)" ;;
                *) failed=$((failed + 1)); echo "FAIL $name (exit $rc, log: $dir/$name.log)" ;;
                esac
        done
        echo "$passed passed, $failed failed, $skipped skipped"
        [ "$failed" -eq 0 ] && [ $((passed + skipped)) -gt 0 ]
}

# parse_args "$@": the options shared by run and run-container. Sets
# SCENARIOS, DEB, STAGE, OUT.
usage_common='  --scenarios LIST  comma-separated scenario names (default: all that fit)
  --deb PATH        test this .deb instead of building one
  --stage DIR       install a "meson install" DESTDIR tree instead of a .deb
  --no-deb          run without the package (install scenarios are skipped)
  --out DIR         where results go (default: tests/vm/cache/last-KIND)'
parse_args() {
        SCENARIOS='' DEB='' STAGE='' NO_DEB='' OUT=''
        while [ $# -gt 0 ]; do
                case $1 in
                --scenarios) SCENARIOS=$2; shift 2 ;;
                --scenarios=*) SCENARIOS=${1#*=}; shift ;;
                --deb) DEB=$(realpath "$2"); shift 2 ;;
                --stage) STAGE=$(realpath "$2"); shift 2 ;;
                --no-deb) NO_DEB=1; shift ;;
                --out) OUT=$2; shift 2 ;;
                -h|--help) echo "usage: $0 [options]"; echo "$usage_common"; exit 0 ;;
                *) die "unknown option $1 (see --help)" ;;
                esac
        done
}

# prepare_share KIND NAME...: the directory bound/shared into the guest:
# guest/ (lib.sh, runner), scenarios/, deb/ or stage/, results/,
# scenarios.list. Sets SHARE. Sets PKG_FAILED=1 when the package did not build.
prepare_share() {
        local kind=$1
        shift
        OUT=${OUT:-$CACHE_DIR/last-$kind}
        rm -rf --one-file-system "$OUT"
        mkdir -p "$OUT"
        OUT=$(realpath "$OUT")
        SHARE=$OUT/share
        mkdir -p "$SHARE/deb" "$SHARE/results"
        cp -r "$VM_DIR/guest" "$VM_DIR/scenarios" "$SHARE/"
        printf '%s\n' "$@" >"$SHARE/scenarios.list"
        PKG_FAILED=
        if [ -n "$DEB" ]; then
                # Under its canonical name (the guest looks for fusion_*.deb).
                cp "$DEB" "$SHARE/deb/$(dpkg-deb -f "$DEB" Package)_$(dpkg-deb -f "$DEB" Version)_$(dpkg-deb -f "$DEB" Architecture).deb" \
                        || die "cannot read $DEB"
                repack_upgrade "$DEB" "$SHARE/deb-upgrade" || say "could not repack $DEB with a higher version"
        elif [ -n "$STAGE" ]; then
                cp -a "$STAGE" "$SHARE/stage"
        elif [ -z "$NO_DEB" ]; then
                if build_deb "$OUT"; then
                        cp "$OUT"/fusion_*.deb "$SHARE/deb/"
                        mkdir -p "$SHARE/deb-upgrade"
                        cp "$OUT"/upgrade/fusion_*.deb "$SHARE/deb-upgrade/" 2>/dev/null
                        say "package: $(basename "$OUT"/fusion_*.deb)"
                        check_guest_deps "$(ls "$OUT"/fusion_*.deb | head -n1)"
                else
                        PKG_FAILED=1
                        rm -f "$SHARE"/deb/*
                        say "package build FAILED (log: $OUT/build.log); scenarios that need it will skip"
                fi
        fi
}

# finish NAME...: the report; a failed package build counts as a failure.
finish() {
        local rc=0 line
        line=$(report "$SHARE/results" "$@") || rc=1
        printf '%s\n' "$line" | sed '$d'
        if [ -n "$PKG_FAILED" ]; then
                echo "FAIL package (dpkg-buildpackage or lintian, log: $OUT/build.log $OUT/lintian.log)"
                line=$(printf '%s\n' "$line" | tail -n1 | awk '{ $3 = $3 + 1; print }')
                rc=1
        else
                line=$(printf '%s\n' "$line" | tail -n1)
        fi
        say "results in $SHARE/results"
        echo "$line"
        return $rc
}

# make_image: IMAGE, an ext4 image of the root directory (cached next to
# it). VMs boot it with snapshot=on: their writes go to a temporary overlay
# that lives as long as the qemu process (so it survives a guest reboot) and
# the image stays clean for the next VM.
make_image() {
        IMAGE=${ROOTFS%/root}/root.ext4
        exec {img_lock_fd}>"$CACHE_DIR/.image-lock"
        flock -w 600 "$img_lock_fd" || die "timed out waiting for $CACHE_DIR/.image-lock"
        if [ ! -e "$IMAGE.done" ]; then
                say "mkfs.ext4 -d (image of the root directory)"
                rm -f "$IMAGE"
                truncate -s 2G "$IMAGE"
                deadline 300 mkfs.ext4 -q -F -L fusion-root -d "$ROOTFS" "$IMAGE" || die "mkfs.ext4 failed"
                touch "$IMAGE.done"
        fi
        flock -u "$img_lock_fd"
}

# qemu_start NAME SHARE LOGDIR HOSTNAME APPEND DISK SMP MEM [qemu args...]:
# boots under TCG in the background, console on LOGDIR/console.log
# (NAME-console.log for NAME != vm), the runner's lines on
# LOGDIR/results.log (NAME-results.log); qemu truncates both. DISK: "snapshot"
# (the image, writes thrown away when qemu exits) or a qcow2 overlay file
# (kept: a later qemu process boots the same disk again, see vm_reboot).
# A guest reboot or panic ends qemu (-no-reboot). Sets QPID and QRESULTS.
qemu_start() {
        local name=$1 share=$2 logdir=$3 host=$4 append=$5 disk=$6 smp=$7 mem=$8 pre='' drive
        shift 8
        [ "$name" = vm ] || pre=$name-
        QRESULTS=$logdir/${pre}results.log
        touch "$QRESULTS"
        if [ "$disk" = snapshot ]; then
                drive=file=$IMAGE,format=raw,if=virtio,snapshot=on
        else
                drive=file=$disk,format=qcow2,if=virtio
        fi
        qemu-system-x86_64 -accel tcg,thread=multi -cpu "${FUSION_VM_CPU:-max}" -m "$mem" -smp "$smp" \
                -display none -no-reboot -nodefaults -name "fusion-$name" \
                -kernel "$KERNEL" -initrd "$INITRD" \
                -append "console=ttyS0 root=/dev/vda rw ${FUSION_VM_QUIET-quiet} panic=-1 systemd.hostname=$host fusion.test=1 $append" \
                -drive "$drive" \
                -virtfs local,path="$share",mount_tag=share,security_model=none,id=share \
                -serial file:"$logdir/${pre}console.log" -serial file:"$QRESULTS" "$@" &
        QPID=$!
}

# overlay_new FILE: a qcow2 overlay on the image (the image stays clean).
overlay_new() {
        rm -f "$1"
        qemu-img create -q -f qcow2 -b "$IMAGE" -F raw "$1" || die "qemu-img create failed"
}

# reboot_wanted RESULTS: the runner of the boot that just ended asked for a
# reboot (RESULTS holds one boot: qemu truncates it when it starts).
reboot_wanted() {
        local asked ups
        asked=$(grep -c '^runner: .* asks for a reboot' "$1" 2>/dev/null)
        ups=$(grep -c '^runner: up ' "$1" 2>/dev/null)
        [ "${asked:-0}" -gt 0 ] && [ "${asked:-0}" -ge "${ups:-0}" ]
}

# qemu_wait PID RESULTS DEADLINE_S LABEL: waits until the VM powers itself
# off (or reboots: qemu ends); kills it 30 s after its runner said "done" or
# asked for a reboot, or at the deadline.
qemu_wait() {
        local pid=$1 results=$2 limit=$3 label=$4 start done_at='' now n0 grace=30
        start=$(date +%s)
        n0=$(grep -c '^runner: done\|asks for a reboot' "$results" 2>/dev/null)
        while kill -0 "$pid" 2>/dev/null; do
                now=$(date +%s)
                if [ -z "$done_at" ] && [ "$(grep -c '^runner: done\|asks for a reboot' "$results" 2>/dev/null)" -gt "${n0:-0}" ]; then
                        done_at=$now
                        # A reboot stops every unit first; a power-off at the end is forced.
                        tail -n 1 "$results" | grep -q 'asks for a reboot' && grace=90
                fi
                if [ -n "$done_at" ] && [ $(( now - done_at )) -ge $grace ]; then
                        say "$label did not power off or reboot ${grace}s after the runner asked: killing it"
                        kill "$pid"
                        break
                fi
                if [ $(( now - start )) -ge "$limit" ]; then
                        say "$label deadline (${limit}s) reached: killing it"
                        kill "$pid"
                        break
                fi
                sleep 0.5
        done
        wait "$pid" 2>/dev/null
        say "$label finished after $(( $(date +%s) - start ))s"
}

# free_port: a TCP port on 127.0.0.1 nobody listens on (for qemu's socket
# netdev between two VMs; the link itself never leaves the qemu processes).
free_port() {
        local p
        for p in $(seq $(( 17000 + $$ % 500 )) 17999); do
                ss -Hltn "sport = :$p" | grep -q . || { echo "$p"; return 0; }
        done
        return 1
}
