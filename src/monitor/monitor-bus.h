/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * monitor-bus — the monitor's link to systemd over the system bus (sd-bus,
 * asynchronous calls only, attached to the monitor's sd-event loop).
 *
 * It follows every configured server's unit (ActiveState, SubState, Result,
 * MainPID, LoadState: one GetAll per interface, then PropertiesChanged, with
 * Manager.Subscribe), and it
 *   - feeds the failover: a primary's unit whose main process is gone is a
 *     trigger and a proof of death (failover_unit_dead());
 *   - fences a silent primary whose unit is still active with
 *     KillUnit(unit, "all", SIGKILL);
 *   - restarts units that end up "failed" (restart_failed_units): after a
 *     capped backoff, ResetFailedUnit + RestartUnit(unit, "replace"), the job
 *     followed through JobRemoved. A unit stopped by an admin (inactive,
 *     Result=success) is left alone.
 *
 * A unit's state is only trusted for a server once its MainPID was seen equal
 * to the pid the server reports in its heartbeats over a local connection
 * (unix socket peer, or loopback): a unit of the same name on another host,
 * or an idle unit while the cluster runs as plain processes, never counts.
 *
 * Without a system bus (or without systemd on it) nothing here runs and the
 * monitor watches heartbeats only. Bus trouble (disconnect, NoReply, a
 * daemon-reload or -reexec) makes unit states "unknown", never "failed";
 * the module reconnects / re-reads with backoff.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "util.h"

typedef struct Manager Manager;
typedef struct Peer Peer;
typedef struct MonitorBus MonitorBus;

/* Unit state of one server, kept in its Peer. */
typedef struct PeerUnit {
        char *path;             /* D-Bus object path of the unit, NULL: no unit configured */
        bool known;             /* ActiveState read since the last (re)connection or reload */
        bool loaded;            /* LoadState=loaded */
        char active[24];        /* ActiveState */
        char prev_active[24];   /* ActiveState before the last change handled */
        usec_t state_since;     /* when ActiveState last changed */
        char sub[24];           /* SubState */
        char result[32];        /* Service.Result */
        uint32_t main_pid;      /* Service.MainPID, 0: none */

        uint32_t bound_pid;     /* MainPID seen equal to the server's own (local) pid, 0: none */
        uint32_t dead_pid;      /* bound pid whose death the unit state proved, 0: none */
        usec_t active_since;    /* entered ActiveState=active, 0: not active */

        usec_t kill_sent;       /* KillUnit sent for bound_pid, 0: none */
        bool stopped_logged;    /* "left stopped" said for the current inactive spell */

        /* restart_failed_units */
        usec_t backoff;         /* next restart delay */
        usec_t restart_delay;   /* delay of the scheduled restart */
        sd_event_source *restart_timer;
        char *job;              /* pending RestartUnit job path */
        unsigned restarts;      /* successful restarts by this monitor */
} PeerUnit;

/* Connects to the system bus when there is one; *ret = NULL (and 0) when there is
 * none: the monitor then watches heartbeats only. */
int monitor_bus_new(Manager *m, MonitorBus **ret);
MonitorBus *monitor_bus_free(MonitorBus *b);

/* A heartbeat from p (p->pid updated): binds p's unit to its process. */
void monitor_bus_peer_heartbeat(Manager *m, Peer *p);

/* p is a silent primary: if its unit still runs the process that stopped
 * heartbeating, KillUnit(unit, "all", SIGKILL). Returns 1 when the kill was sent. */
int monitor_bus_kill_hung(Manager *m, Peer *p);

/* Did systemd show that process pid of p is gone? ret_how (may be NULL) gets a
 * static description. */
bool monitor_bus_pid_dead(const Peer *p, uint64_t pid, const char **ret_how);

/* "ActiveState/SubState" into buf when known; returns 1 when known, 0 when not. */
int monitor_bus_unit_state(const Peer *p, char *buf, size_t size);

/* Implemented in failover.c (declared here: failover.h belongs to the failover's author).
 * The confirmed primary p sent no heartbeat for dead_after_ms: lost, and killed through
 * systemd when its unit still runs it (a hang). */
void failover_primary_hung(Manager *m, Peer *p, const char *reason);
/* systemd shows that p's process is gone: a trigger when p is the confirmed primary, and a
 * proof of death for the fence. */
void failover_unit_dead(Manager *m, Peer *p, const char *reason);

/* Free a peer's unit state (timers, strings). */
void peer_unit_done(PeerUnit *u);
