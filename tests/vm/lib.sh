# SPDX-License-Identifier: LGPL-2.1-or-later
# Shared by tests/vm/run (qemu TCG VM) and tests/vm/run-container
# (systemd-nspawn): tools, the .deb, the cached Debian 12 root directory,
# scenario discovery. Sourced, not run.

VM_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP_DIR=$(cd "$VM_DIR/../.." && pwd)
CACHE_DIR=${FUSION_VM_CACHE:-$VM_DIR/cache}

# Packages of the guest. Everything the .deb depends on must be here: the
# guest has no network, dpkg -i cannot fetch anything.
GUEST_PACKAGES=systemd,systemd-sysv,dbus,udev,polkitd,libinih1,linux-image-amd64,initramfs-tools,iproute2,procps,kmod
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
        rm -rf "$work"
        if [ $lrc -ne 0 ]; then
                cat "$out/lintian.log" >&2
                say "lintian reported errors or warnings"
                return 1
        fi
        return 0
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
                flock -u "$lock_fd"
                say "root directory cached: $dir"
                return 0
        fi
        need_tools mmdebstrap:mmdebstrap
        rm -rf "$dir"
        mkdir -p "$dir"
        say "mmdebstrap $GUEST_SUITE (log: $dir/mmdebstrap.log)"
        if ! deadline 900 mmdebstrap --variant=minbase --include="$GUEST_PACKAGES" \
                --customize-hook="copy-in $VM_DIR/guest/fusion-test.service /etc/systemd/system" \
                --customize-hook="copy-in $VM_DIR/guest/customize /tmp" \
                --customize-hook='chroot "$1" sh /tmp/customize' \
                --customize-hook='rm -f "$1/tmp/customize"' \
                "$GUEST_SUITE" "$ROOTFS" "${GUEST_MIRRORS[@]}" >"$dir/mmdebstrap.log" 2>&1; then
                tail -n 30 "$dir/mmdebstrap.log" >&2
                rm -rf "$dir"
                die "mmdebstrap failed"
        fi
        cp "$ROOTFS"/boot/vmlinuz-* "$KERNEL"
        cp "$ROOTFS"/boot/initrd.img-* "$INITRD"
        touch "$dir/.done"
        # Keep only the newest cached root directory.
        find "$CACHE_DIR" -maxdepth 1 -name 'rootfs-*' ! -name "rootfs-$key" -exec rm -rf {} +
        flock -u "$lock_fd"
        say "root directory ready: $(du -sh "$ROOTFS" | cut -f1)"
}

# scenario_field FILE FIELD: the value of "# fusion-test: FIELD=VALUE" in
# the scenario's header comment.
scenario_field() {
        sed -n "s/^# fusion-test:.*\\b$2=\\([^ ]*\\).*/\\1/p" "$1" | head -n1
}

# select_scenarios KIND LIST: prints the scenario names to run where KIND
# (vm or container) is acceptable ("where=both" fits either). LIST is a
# comma-separated list of names, or empty for all.
select_scenarios() {
        local kind=$1 list=$2 f name where
        for f in "$VM_DIR"/scenarios/*.sh; do
                name=$(basename "$f" .sh)
                where=$(scenario_field "$f" where)
                if [ -n "$list" ]; then
                        case ",$list," in *",$name,"*) ;; *) continue ;; esac
                        if [ "$where" != "$kind" ] && [ "$where" != both ]; then
                                say "scenario $name runs in '$where', not in '$kind': skipped"
                                continue
                        fi
                elif [ "$where" != "$kind" ] && [ "$where" != both ]; then
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
        rm -rf "$OUT"
        mkdir -p "$OUT"
        OUT=$(realpath "$OUT")
        SHARE=$OUT/share
        mkdir -p "$SHARE/deb" "$SHARE/results"
        cp -r "$VM_DIR/guest" "$VM_DIR/scenarios" "$SHARE/"
        printf '%s\n' "$@" >"$SHARE/scenarios.list"
        PKG_FAILED=
        if [ -n "$DEB" ]; then
                cp "$DEB" "$SHARE/deb/"
        elif [ -n "$STAGE" ]; then
                cp -a "$STAGE" "$SHARE/stage"
        elif [ -z "$NO_DEB" ]; then
                if build_deb "$OUT"; then
                        cp "$OUT"/fusion_*.deb "$SHARE/deb/"
                        say "package: $(basename "$OUT"/fusion_*.deb)"
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
