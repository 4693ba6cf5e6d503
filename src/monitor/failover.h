/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * failover — the monitor's failover state machine (doc/internals.md
 * §Failover), with explicit phases and timeouts:
 *
 *   trigger → FENCING (old primary's pidfd readable, or its last lease surely
 *   over) → PROBING (PROBE every connected server; wait for a quorum of fresh
 *   answers; choose with election_decide()) → PROMOTING (term+1 persisted,
 *   PROMOTE sent; wait dead_after_ms for HEARTBEAT role=primary term=T, else
 *   another PROBING round) → done (LEASE, FOLLOW the others, tell clients).
 *
 * The same machine runs the first election at start-up and the coordinated
 * switchover of "PROMOTE NAME" (PROBING then waits for the target to catch up
 * with the old primary instead of for a quorum).
 *
 * Fencing today knows pidfds and lease expiry only; fence_*() is the seam
 * where systemd unit state and KillUnit will plug in.
 */
#pragma once

#include <stdbool.h>

#include "monitor-manager.h"

/* Total time a switchover may take before it is abandoned. */
#define SWITCHOVER_TIMEOUT_USEC (5 * USEC_PER_SEC)

const char *failover_kind_to_string(FailoverKind k);
const char *failover_phase_to_string(FailoverPhase p);

void failover_init(Failover *f);
void failover_done(Manager *m);
bool failover_active(const Manager *m);

/* The confirmed primary p is lost (connection closed, silent, or reports
 * something else than role=primary of the current term). Call while
 * p->conn (if any) is still attached: its pidfd is duplicated for fencing. */
void failover_primary_lost(Manager *m, Peer *p, const char *reason);
/* No primary confirmed within dead_after_ms of the monitor's start. */
void failover_start_election(Manager *m);
/* PROMOTE NAME from the client API. Returns 1 when the switchover started
 * (the requester gets OK/ERR later, through client_promote_done()), 0 when it
 * was refused with an "ERR ..." line appended to reply, -errno on failure. */
int failover_switchover(Manager *m, ClientConn *requester, const char *name, Buf *reply);

/* A HEARTBEAT was received from p (its fields already updated). Returns true
 * when the failover consumed it (the promoted server's confirmation). */
bool failover_on_heartbeat(Manager *m, Peer *p, const HbMessage *hb, usec_t now);
/* After the manager handled it: probe answers and catch-up progress. */
void failover_after_heartbeat(Manager *m, Peer *p, const HbMessage *hb, usec_t now);
/* A server's connection was identified / closed. */
void failover_peer_connected(Manager *m, Peer *p);
void failover_peer_disconnected(Manager *m, Peer *p);
/* A client connection goes away; forget it as the switchover's requester. */
void failover_client_gone(Manager *m, ClientConn *c);
/* Re-evaluate after TILT ended. */
void failover_advance(Manager *m);
