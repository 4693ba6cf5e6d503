/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * monitor-peer — what the monitor says to one server and what a server's
 * HEARTBEAT changes: leases for the confirmed primary, FOLLOW for the others,
 * PROBE and PROMOTE for the failover, a higher term adopted as a floor.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "failover.h"
#include "log.h"
#include "monitor-manager.h"

/* ---- sending to servers ---- */

int peer_send(Peer *p, const HbMessage *msg) {
        HbConn *c = p->conn;
        HbMessage out = *msg;
        int r;

        if (!c)
                return -ENOTCONN;
        if (peer_out_pending(&c->out) > HB_OUTPUT_MAX)
                /* It does not read: the tick closes it, not from under our callers. */
                return -ENOBUFS;
        /* Every command names this monitor; a LEASE says how long the monitor fences by. */
        memcpy(out.monitor, p->manager->id, sizeof out.monitor);
        if (out.type == HB_LEASE)
                out.lease_ms = p->manager->config->lease_ms;
        r = hb_message_format(&out, &c->out.buf);
        if (r < 0)
                return log_warning_errno(r, "Failed to format %s for %s: %m", hb_type_to_string(msg->type),
                                         p->config->name);
        return hb_conn_flush(c);
}

int peer_send_probe(Peer *p, uint64_t seq) {
        return peer_send(p, &(HbMessage) { .type = HB_PROBE, .seq = seq });
}

int peer_send_follow(Peer *p, usec_t now) {
        Manager *m = p->manager;
        HbMessage msg = { .type = HB_FOLLOW, .term = m->term };
        int r;

        if (!m->primary || !m->primary_confirmed || m->primary == p)
                return 0;

        /* A stale primary of the current term (should not exist) is told to step down first. */
        if (p->role == ROLE_PRIMARY && p->term == m->term)
                (void) peer_send(p, &(HbMessage) { .type = HB_DEMOTE, .term = m->term });

        snprintf(msg.primary, sizeof msg.primary, "%s", m->primary->config->name);
        snprintf(msg.address, sizeof msg.address, "%s", m->primary->config->address);
        r = peer_send(p, &msg);
        if (r < 0)
                return r;
        p->follow_term = m->term;
        p->follow_time = now;
        log_debug("Sent FOLLOW term=%" PRIu64 " primary=%s to %s.", m->term, msg.primary, p->config->name);
        return 0;
}

void manager_follow_all(Manager *m, usec_t now) {
        for (size_t i = 0; i < m->n_peers; i++) {
                Peer *p = m->peers + i;

                if (p->conn && p != m->primary && p->follow_term != m->term)
                        (void) peer_send_follow(p, now);
        }
}

void manager_maybe_lease(Manager *m, Peer *p, const HbMessage *hb, usec_t now) {
        /* Only the confirmed primary of the current term, only while no failover or
         * switchover is in progress (failover_active() pauses writes), only while up. */
        if (p != m->primary || !m->primary_confirmed || failover_active(m))
                return;
        if (hb->role != ROLE_PRIMARY || hb->term != m->term)
                return;
        if (manager_peer_health(m, p, now) == PEER_DOWN)
                return;

        if (peer_send(p, &(HbMessage) { .type = HB_LEASE, .term = m->term, .seq = hb->seq }) >= 0)
                p->lease_received = now;
}

void manager_primary_confirmed(Manager *m, Peer *p, const HbMessage *hb, usec_t now) {
        m->primary = p;
        m->primary_confirmed = true;
        manager_maybe_lease(m, p, hb, now);
        manager_follow_all(m, now);
        manager_state_changed(m);
}

/* ---- heartbeats ---- */

static void manager_on_higher_term(Manager *m, Peer *p, const HbMessage *hb) {
        log_warning("Server %s reports %s term %" PRIu64 ", above the monitor's term %" PRIu64
                    "; adopting it as a floor.",
                    p->config->name, role_to_string(hb->role), hb->term, m->term);
        m->term_floor = hb->term;

        /* No primary of ours is running (e.g. the monitor lost its state): keep this one. */
        if (hb->role == ROLE_PRIMARY && !m->primary_confirmed && !failover_active(m))
                (void) manager_persist(m, hb->term, p);
}

void manager_on_heartbeat(Manager *m, Peer *p, const HbMessage *hb, usec_t now) {
        p->seen = true;
        p->role = hb->role;
        p->term = hb->term;
        p->index = hb->index;
        p->lterm = hb->lterm;
        p->commit = hb->commit;
        p->pid = hb->pid;
        p->seq = hb->seq;
        p->last_heartbeat = now;
        if (hb->probe > p->probe_answered) {
                p->probe_answered = hb->probe;
                p->probe_answer_time = now;
        }

        monitor_bus_peer_heartbeat(m, p);

        if (hb->term > MAX(m->term, m->term_floor))
                manager_on_higher_term(m, p, hb);

        if (failover_on_heartbeat(m, p, hb, now))
                goto done;

        if (p == m->primary) {
                if (m->primary_confirmed) {
                        if (hb->role == ROLE_PRIMARY && hb->term == m->term)
                                manager_maybe_lease(m, p, hb, now);
                        else {
                                char reason[96];

                                snprintf(reason, sizeof reason, "it reports role=%s term=%" PRIu64,
                                         role_to_string(hb->role), hb->term);
                                failover_primary_lost(m, p, reason);
                        }
                } else if (!failover_active(m) && hb->role == ROLE_PRIMARY && hb->term == m->term) {
                        log_info("Primary %s of term %" PRIu64 " confirmed.", p->config->name, m->term);
                        manager_primary_confirmed(m, p, hb, now);
                }
        } else if (m->primary && m->primary_confirmed) {
                /* A backup hears from us when it connected, after a change, or while it lags behind
                 * the current term (a returning old primary). */
                if (p->follow_term != m->term ||
                    ((hb->term < m->term || hb->role == ROLE_PRIMARY) &&
                     now >= p->follow_time + manager_ms(m, m->config->dead_after_ms)))
                        (void) peer_send_follow(p, now);
        }

done:
        failover_after_heartbeat(m, p, hb, now);

        if (m->tilt) {
                bool all = true;

                for (size_t i = 0; i < m->n_peers; i++)
                        if (m->peers[i].conn && m->peers[i].last_heartbeat <= m->tilt_since)
                                all = false;
                if (all) {
                        m->tilt = false;
                        log_notice("Leaving TILT: every connected server sent a heartbeat after the stall.");
                        failover_advance(m);
                }
        }
}
