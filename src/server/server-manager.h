/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * server-manager — the state of one fusion-server: its log, term and role,
 * the commit index, the writes waiting for it, group commit, and the role
 * changes the monitor orders (doc/internals.md). Role changes live in
 * server-roles.c, client connections in conn.c and their verbs in request.c,
 * the primary's side of replication in replication-primary.c, the backup's in
 * replication-backup.c, the monitor connection in monitor-link.c.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "hbproto.h"
#include "msglog.h"
#include "peerauth.h"
#include "protocol.h"
#include "util.h"

typedef struct Conn Conn;
typedef struct Pending Pending;
typedef struct MonitorLink MonitorLink;
typedef struct BackupLink BackupLink;

/* Output above this stops reading from a client until it drains. */
#define CONN_OUTPUT_HIGH (1024U * 1024U)
/* Replication streams from the log while its output is below this: a backup
 * that lags (a slow fdatasync) holds at most this much of the primary's
 * memory (4 MiB made the primary's RSS under 64 x 4 KiB load jump from ~12 to
 * ~22 MiB now and then; 1 MiB costs nothing measurable in throughput). */
#define REPLICA_OUTPUT_HIGH (1U * 1024U * 1024U)
/* Requests queued on one connection before reading from it pauses. */
#define CONN_PENDING_MAX 4096U
/* Unsynced appends that force a sync without waiting for the batch to end. */
#define FLUSH_FORCE_APPENDS 4096U
/* Longest wait of an append for its group commit while events keep coming. */
#define FLUSH_MAX_DELAY_USEC (1 * USEC_PER_MSEC)
#define BATCH_FSYNC_USEC (10 * USEC_PER_MSEC)
/* Connections accepted past max_clients, for replication links only (doc/security.md). */
#define CONN_RESERVE_MIN 2U
/* A connection must send its first complete line within this. */
#define CONN_FIRST_LINE_USEC (10 * USEC_PER_SEC)
/* A reserve connection must become a replication link, and a HELLO-AUTH handshake
 * must finish, within this. */
#define CONN_HANDSHAKE_USEC (1 * USEC_PER_SEC)
/* Event priorities (lower runs first): the monitor link (heartbeat timer, its
 * connection and so the LEASEs) before everything; the group-commit timer and
 * the replication links before client connections; client connections at 0.
 * One client wakeup is bounded (CONN_LINES_PER_WAKEUP, REPLICA_PUMP_BYTES), so
 * a due heartbeat waits at most for one such dispatch. */
#define PRIORITY_MONITOR SD_EVENT_PRIORITY_IMPORTANT
#define PRIORITY_REPLICATION (SD_EVENT_PRIORITY_IMPORTANT / 2)
/* Request lines handled per connection per wakeup; the rest continue from a defer source. */
#define CONN_LINES_PER_WAKEUP 64U
/* read(2) calls per connection per wakeup (edge-triggered: it reads until drained). */
#define CONN_READS_PER_WAKEUP 4U
/* Output one replica_pump() call queues at most before it yields to other events. */
#define REPLICA_PUMP_BYTES (256U * 1024U)
/* SIGTERM: how long clients get for the requests they already sent. */
#define SHUTDOWN_GRACE_USEC (1 * USEC_PER_SEC)
/* Timer accuracy for every timer of the server. */
#define TIMER_ACCURACY_USEC (1 * USEC_PER_MSEC)

typedef struct Manager {
        sd_event *event;
        const Config *config;
        const ServerConfig *self;

        int listen_fd;
        sd_event_source *listen_source;
        sd_event_source *accept_retry_timer;

        MsgLog *log;
        char *state_path;
        uint64_t term;
        Role role;
        uint64_t commit_index;
        uint64_t term_first_index;   /* primary: index of its term-start record */
        usec_t primary_since;        /* when this server became primary (now_usec) */
        usec_t lease_expiry;         /* primary: writes are acknowledged only before this */
        uint64_t lease_first_seq;    /* primary: only heartbeats sent as primary earn a lease */
        char *primary_name;          /* known primary (itself when primary), NULL if none */
        char *primary_address;

        /* group commit */
        sd_event_source *flush_source;   /* idle defer: sync, commit, stream */
        sd_event_source *flush_timer;    /* the same, at the latest FLUSH_MAX_DELAY_USEC later */
        uint64_t n_unflushed;
        bool flushing;
        sd_event_source *batch_timer;
        sd_event_source *tick_timer;
        sd_event_source *deadline_timer;
        sd_event_source *gc_source;

        Conn *conns;                 /* live connections (clients and replicas) */
        size_t n_conns;
        size_t n_reserve;            /* of them accepted past max_clients (see conn.c) */
        bool listen_is_unix;

        PeerAuthKey authkey;         /* the cluster key, loaded when config_auth_needed() */
        char *client_token;          /* NULL: clients need no AUTH */
        RateLimit auth_log;          /* authentication failures logged */
        Conn *replicas;              /* the live connections that are replication links */
        size_t n_replicas;
        Conn *dead_conns;            /* closed, freed by gc_source */
        Conn *flush_list;            /* connections with output to write after a batch */

        Pending *waiting_head;       /* writes waiting for commit, by index */
        Pending *waiting_tail;

        MonitorLink *monitor;
        BackupLink *backup;

        /* SIGTERM: no more accepts; answer what clients already sent, then exit */
        bool draining;
        sd_event_source *drain_timer;

        char status[160];
} Manager;

int manager_new(sd_event *e, const Config *config, const ServerConfig *self, int listen_fd, Manager **ret);
Manager *manager_free(Manager *m);
int manager_start(Manager *m);
const char *manager_status(Manager *m);

static inline void manager_freep(Manager **m) {
        if (*m)
                manager_free(*m);
}

bool manager_lease_valid(const Manager *m);
/* Primary for less than sync_timeout_ms: the backups are still connecting to
 * it, so a write waits for them instead of failing with NOREPLICAS at once. */
bool manager_term_is_young(const Manager *m);
size_t manager_replicas_in_sync(const Manager *m);
/* Highest index that counts as durable on this server per the fsync mode. */
uint64_t manager_durable_index(const Manager *m);

/* Writes (primary): append one record in the current term; it becomes durable
 * and is streamed to replicas at the end of the event-loop batch. */
int manager_append(Manager *m, const char *msgid, size_t msgid_len, const void *payload, size_t len,
                   uint64_t *ret_index);
/* Put a write on the waiting list; it is answered when its index commits or
 * when sync_timeout_ms passes. */
void manager_wait_write(Manager *m, Pending *p);
void manager_unwait_write(Manager *m, Pending *p);
/* Recompute the commit index from local durability and replica acks. */
void manager_update_commit(Manager *m);
/* Backup: raise the commit index told by the primary (clamped to the log). */
void manager_set_commit(Manager *m, uint64_t commit);
/* Write out a batch of appends as [cluster] fsync says: with always also fdatasync;
 * with batch arm the fdatasync BATCH_FSYNC_USEC later (none while idle). */
int manager_write_batch(Manager *m);

/* Monitor commands and term changes. */
int manager_observe_term(Manager *m, uint64_t term, const char *source);
void manager_on_lease(Manager *m, uint64_t term, uint64_t seq, usec_t sent);
void manager_on_promote(Manager *m, uint64_t term);
void manager_on_follow(Manager *m, uint64_t term, const char *primary, const char *address);
void manager_on_demote(Manager *m, uint64_t term);
void manager_demote(Manager *m, const char *reason);

/* Shared by server-manager.c and server-roles.c. */
void manager_set_log_context(Manager *m);
int manager_set_primary(Manager *m, const char *name, const char *address);
/* Answer every waiting write with an error (on demotion). */
void manager_fail_waiting(Manager *m, ErrCode code, const char *text);

/* Fatal storage error: log and end the event loop. */
void manager_fail(Manager *m, int error, const char *what);

void manager_update_status(Manager *m);
void manager_schedule_gc(Manager *m);

/* SIGTERM/SIGINT: stop accepting, answer every request already received (and
 * the first one of a connection accepted but not yet heard from), close each
 * client connection gracefully, then leave the event loop; at the latest
 * after SHUTDOWN_GRACE_USEC. A second signal leaves at once. */
void manager_shutdown(Manager *m);
/* While draining: leave the event loop once no client connection is left. */
void manager_drain_check(Manager *m);
