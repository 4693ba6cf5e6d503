/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * monitor-manager — the monitor daemon's state and event loop: listening
 * sockets, one connection per server (heartbeats in; LEASE, FOLLOW, PROBE,
 * PROMOTE out), per-server health, the TILT guard, the persisted term and the
 * sd_notify status. The failover state machine is in failover.c, the client
 * API in client-api.c, the pure decisions in election.c.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "election.h"
#include "hbproto.h"
#include "linereader.h"
#include "monitor-bus.h"
#include "monitor-fds.h"
#include "peerauth.h"
#include "peerstream.h"
#include "util.h"

typedef struct Manager Manager;
typedef struct Peer Peer;
typedef struct HbConn HbConn;
typedef struct ClientConn ClientConn;

/* Longest heartbeat-protocol line accepted from a server. */
#define HB_LINE_MAX 1024
/* A server that does not read its LEASEs: drop the connection past this. */
#define HB_OUTPUT_MAX (64U * 1024U)
/* A connection that sends no HEARTBEAT (after authenticating, where that applies) this
 * long after it was accepted is closed: a flood of idle connections cannot hold the
 * endpoint (doc/security.md). */
#define HB_IDENTIFY_USEC (1 * USEC_PER_SEC)
/* Unidentified heartbeat connections at once; past this the oldest is closed. */
#define HB_UNIDENTIFIED_MAX 32

/* A stream connection on the heartbeat endpoint. */
struct HbConn {
        Manager *manager;
        HbConn *prev, *next;
        int fd;
        sd_event_source *io;
        LineReader reader;
        PeerOut out;            /* sealed once auth is established */
        Peer *peer;             /* NULL until the first HEARTBEAT names the server */
        bool is_unix;
        pid_t ucred_pid;        /* unix peers: SO_PEERCRED, else 0 */
        int pidfd;              /* pidfd of ucred_pid, -1 when none */
        usec_t accepted;        /* an unidentified connection is closed after HB_IDENTIFY_USEC */
        PeerAuth *auth;         /* HELLO-AUTH handshake, then sealed lines (monitor-auth.c) */
};

/* One configured server. */
struct Peer {
        Manager *manager;
        const ServerConfig *config;
        size_t idx;
        HbConn *conn;           /* NULL while disconnected */

        /* From its latest HEARTBEAT. */
        bool seen;
        Role role;
        uint64_t term, index, lterm, commit, pid, seq;
        usec_t last_heartbeat;  /* CLOCK_MONOTONIC receive time, 0: never */
        uint64_t probe_answered;/* highest probe seq it answered */
        usec_t probe_answer_time;

        /* Receive time of the last heartbeat answered with a LEASE (by this
         * monitor; initialised to the monitor's start, which bounds the leases
         * a previous monitor instance gave). */
        usec_t lease_received;

        uint64_t follow_term;   /* term of the last FOLLOW sent on this connection, 0: none */
        usec_t follow_time;
        usec_t demote_time;

        PeerUnit unit;          /* its systemd unit (monitor-bus.c) */
};

typedef enum FailoverKind {
        FAILOVER_NONE,
        FAILOVER_LOST,          /* the primary was lost */
        FAILOVER_STARTUP,       /* first election: no primary recorded or it did not show up */
        FAILOVER_SWITCHOVER,    /* PROMOTE NAME from the client API */
        _FAILOVER_KIND_MAX,
        _FAILOVER_KIND_INVALID = -EINVAL,
} FailoverKind;

typedef enum FailoverPhase {
        PHASE_FENCING,          /* waiting for the old primary's exit or lease expiry */
        PHASE_PROBING,          /* PROBEs out; waiting for quorum (switchover: catch-up) */
        PHASE_PROMOTING,        /* PROMOTE sent, waiting for the confirming heartbeat */
        _FAILOVER_PHASE_MAX,
        _FAILOVER_PHASE_INVALID = -EINVAL,
} FailoverPhase;

typedef struct Failover {
        FailoverKind kind;
        FailoverPhase phase;
        Peer *old;              /* old primary; NULL at a first election without a recorded primary */
        uint64_t old_pid;       /* its pid when the failover began (heartbeats), 0: unknown */
        int old_pidfd;          /* dup of the old primary's pidfd, -1 */
        sd_event_source *pidfd_source;
        bool old_exited;
        usec_t fence_deadline;  /* old->lease_received + lease_ms */
        usec_t started;
        uint64_t probe_min;     /* probe answers with seq >= this count for this round */
        usec_t probe_sent;
        Peer *target;           /* switchover target, or the promoted candidate */
        uint64_t promote_term;
        usec_t deadline;        /* of the current phase (0: none) */
        sd_event_source *timer;
        ClientConn *requester;  /* switchover: the client waiting for OK/ERR */
        bool old_index_known;   /* switchover: the old primary answered a post-fence probe */
        uint64_t old_index, old_lterm;
        unsigned round;
        ElectionVerdict last_verdict; /* to log a stuck election once per round */
        bool last_verdict_logged;
        bool last_term_logged;  /* no term after the highest one seen: logged once per failover */
} Failover;

/* A connection on the client API endpoint. */
struct ClientConn {
        Manager *manager;
        ClientConn *prev, *next;
        int fd;
        sd_event_source *io;
        sd_event_source *defer;   /* resumes reading after a pending PROMOTE was answered */
        LineReader reader;
        Buf out;
        bool subscribed;
        bool pending;             /* a PROMOTE is in progress: hold further requests */
        bool eof;
        bool spoke;               /* sent a complete line; until then it may be evicted (client-api.c) */
        usec_t accepted;
};

struct Manager {
        sd_event *event;
        Config *config;
        char *state_path;
        char *id_path;
        char id[HB_MONITOR_ID_MAX + 1];       /* persisted identity, sent in every command */

        Peer peers[CONFIG_SERVERS_MAX];
        size_t n_peers;

        HbConn *hb_conns;
        ClientConn *clients;
        size_t n_clients;
        MonitorFds fds;
        MonitorBus *bus;          /* systemd over D-Bus, NULL: none (heartbeats only) */
        sd_event_source *listen_sources[2 * MONITOR_FDS_MAX];
        size_t n_listen_sources;

        uint64_t term;            /* persisted cluster term */
        uint64_t term_floor;      /* highest term any server reported; promotions go above it */
        Peer *primary;            /* recorded primary of the current term, NULL: none */
        bool primary_confirmed;   /* it reported role=primary term=term to this monitor */

        usec_t start_time;
        sd_event_source *startup_timer;
        bool startup_done;

        sd_event_source *tick;
        usec_t tick_expected;
        bool tilt;
        usec_t tilt_since;        /* when the last stall was seen to end */

        uint64_t probe_seq;
        Failover failover;

        char *who_line;           /* last line broadcast to subscribers */
        char *status_text;        /* last STATUS= sent to systemd */
};

/* Takes ownership of config and fds. */
int manager_new(Config *config, MonitorFds *fds, Manager **ret);
Manager *manager_free(Manager *m);
int manager_start(Manager *m);
int manager_run(Manager *m);

static inline void manager_freep(Manager **m) {
        if (*m)
                manager_free(*m);
}

usec_t manager_ms(const Manager *m, uint64_t ms);
PeerHealth manager_peer_health(const Manager *m, const Peer *p, usec_t now);
Peer *manager_find_peer(Manager *m, const char *name);
size_t manager_peers_up(const Manager *m, usec_t now);

/* A HEARTBEAT from p (monitor-peer.c). */
void manager_on_heartbeat(Manager *m, Peer *p, const HbMessage *hb, usec_t now);

/* Send a heartbeat-protocol message to a connected server. */
int peer_send(Peer *p, const HbMessage *msg);
int peer_send_probe(Peer *p, uint64_t seq);
int peer_send_follow(Peer *p, usec_t now);

/* Persist term/primary (term first in memory only on success). */
int manager_persist(Manager *m, uint64_t term, Peer *primary);

/* The primary of the current term confirmed: LEASE it, FOLLOW the others,
 * tell subscribers. */
void manager_primary_confirmed(Manager *m, Peer *p, const HbMessage *hb, usec_t now);
/* Grant a LEASE for this heartbeat when the rules allow it. */
void manager_maybe_lease(Manager *m, Peer *p, const HbMessage *hb, usec_t now);
/* FOLLOW every connected server but the primary that has not heard of the current term. */
void manager_follow_all(Manager *m, usec_t now);

/* WHO answer ("PRIMARY ..." or "NOPRIMARY") into b. */
int manager_who(Manager *m, Buf *b);
/* Re-evaluate WHO and the sd_notify status; broadcast a change. */
void manager_state_changed(Manager *m);

/* Write what the socket takes now; EPOLLOUT for the rest. */
int hb_conn_flush(HbConn *c);
void hb_conn_free(HbConn *c);
