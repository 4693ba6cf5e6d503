#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# fusion-test: where=vm reboot=yes timeout=150
# A reboot (`systemctl reboot`): the cluster comes back by itself —
# fusion.target is enabled by the package (debian/rules), nothing is started
# by hand after the boot — with the same primary term or a higher one, and
# every message acknowledged before the reboot (recorded in the share) is
# still there, at its index, once.
. "$FUSION_SHARE/guest/lib.sh"

rec=$FUSION_SHARE/results/60-reboot.acked
wait_for 90 "systemctl is-system-running" system_up
case $FUSION_PHASE in
1)
        fusion_install
        expect "fusion.target enabled by the package" enabled "$(systemctl is-enabled fusion.target)"
        systemctl start fusion-primary.service || fail "systemctl start fusion-primary failed"
        wait_for 60 "three servers up and a primary" cluster_ready
        writer_start /tmp/60-reboot/w reboot
        wait_for 60 "50 acknowledged messages" writer_has_acked /tmp/60-reboot/w 50
        writer_stop /tmp/60-reboot/w
        [ ! -s /tmp/60-reboot/w/failed ] || { head -n 5 /tmp/60-reboot/w/failed; fail "the writer had failed requests"; }
        cp /tmp/60-reboot/w/acked "$rec"
        primary_term >"$rec.term"
        sync
        log "recorded $(wc -l <"$rec") acknowledged messages, term $(cat "$rec.term"); rebooting"
        request_reboot
        ;;
2)
        log "after the reboot: $(systemctl is-system-running), boot id $(cat /proc/sys/kernel/random/boot_id)"
        [ -s "$rec" ] || fail "no record of the messages acknowledged before the reboot"
        expect "still installed" installed "$(dpkg-query -W -f='${db:Status-Status}' fusion)"
        expect "fusion.target active after boot" active "$(systemctl is-active fusion.target)"
        for u in fusion-monitor fusion-primary fusion-backup fusion-backup2; do
                wait_for 60 "$u.service started at boot" sh -c "[ \"\$(systemctl is-active $u.service)\" = active ]"
        done
        wait_for 60 "three servers up and a primary" cluster_ready
        term=$(primary_term)
        log "ok: cluster back by itself: primary $(primary_name), term $(cat "$rec.term") -> $term"
        [ "$term" -ge "$(cat "$rec.term")" ] || fail "the term went back ($(cat "$rec.term") -> $term)"
        verify_acked "$rec"
        out=$(fusion-client --deadline 20000 send "after-reboot") || fail "send after the reboot failed: $out"
        log "ok: send after the reboot: $out"
        fusionctl status
        ;;
*)
        fail "unexpected phase $FUSION_PHASE"
        ;;
esac
