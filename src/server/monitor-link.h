/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * monitor-link — the server's one connection to fusion-monitor: the unix
 * socket when set and connectable, else TCP; reconnect with backoff;
 * HEARTBEAT every heartbeat_interval_ms (remembering when each seq was sent,
 * since a lease counts from then); LEASE/PROMOTE/FOLLOW/DEMOTE/PROBE handed
 * to the manager.
 */
#pragma once

#include <stdint.h>

#include "server-manager.h"

int monitor_link_new(Manager *m, MonitorLink **ret);
MonitorLink *monitor_link_free(MonitorLink *l);
int monitor_link_start(MonitorLink *l);
/* Send a heartbeat now (probe: the PROBE seq it answers, or 0). */
void monitor_link_send_heartbeat(MonitorLink *l, uint64_t probe);
/* The seq the next heartbeat will carry. */
uint64_t monitor_link_next_seq(const MonitorLink *l);
