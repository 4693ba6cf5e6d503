/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * conn — connections on the server's client port: accepting (bounded by
 * max_clients), a LineReader and an output buffer per connection with
 * backpressure, and the per-connection FIFO that keeps replies in request
 * order while writes wait for their commit. A connection whose first request
 * is SYNC becomes a replication link (replication-primary.c). Over TCP (when
 * [cluster] auth applies) a backup first proves it holds the cluster key with
 * HELLO-AUTH/PROOF; from then on every line in both directions is sealed
 * (peerauth.h). Bounds and timeouts are listed in doc/security.md.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "linereader.h"
#include "peerstream.h"
#include "protocol.h"
#include "server-manager.h"
#include "util.h"

typedef enum PendingType {
        PENDING_REPLY,   /* finished reply text queued behind an earlier request */
        PENDING_WRITE,   /* SEND/PUT waiting for its commit */
        PENDING_READ,    /* READ streamed from a cursor */
} PendingType;

struct Pending {
        PendingType type;
        Conn *conn;
        Pending *next;           /* in the connection's FIFO */
        Pending *wprev, *wnext;  /* in the manager's waiting list (PENDING_WRITE) */
        bool waiting;            /* on the manager's waiting list */
        bool done;               /* reply is final */
        uint64_t index;          /* WRITE: the index; READ: next index to send */
        uint64_t count;          /* READ: messages left */
        usec_t deadline;         /* WRITE: ERR NOREPLICAS after this */
        Buf reply;
};

struct Conn {
        Manager *manager;
        Conn *prev, *next;       /* manager->conns, or manager->dead_conns */
        Conn *flush_next;        /* manager->flush_list */
        bool on_flush_list;
        int fd;
        sd_event_source *io;
        sd_event_source *resume_source;
        uint32_t events;
        LineReader lr;
        PeerOut out;             /* sealed once auth is established */
        Pending *head, *tail;
        size_t n_pending;
        bool got_request;
        bool eof;                /* the client sent no more */
        bool readable;           /* EPOLLET: the socket may hold unread bytes */
        bool rdhup;              /* EPOLLRDHUP seen: read on until EOF, a short read proves nothing */
        bool input_done;         /* eof and every complete line handled */
        bool input_blocked;      /* too much output or too many queued requests */
        bool write_shut;         /* draining: answered and shut down for writing; reading on to EOF */
        bool dead;

        /* replication link (primary side) */
        bool is_replica;
        Conn *rprev, *rnext;     /* manager->replicas */
        char replica_name[NAME_MAX_LEN + 1];
        uint64_t acked;          /* highest index the backup made durable */
        uint64_t next_index;     /* next entry to stream */
        uint64_t sent_commit;    /* commit index last sent */
        usec_t last_input;

        /* authentication */
        usec_t accepted;
        bool is_unix;
        bool reserve;            /* accepted past max_clients: replication only, CONN_HANDSHAKE_USEC to get there */
        bool token_ok;           /* AUTH with the client token accepted */
        bool sync_allowed;       /* only AUTH or HELLO-AUTH came before: SYNC may still open replication */
        PeerAuth *auth;          /* HELLO-AUTH handshake; sealed lines once established */
};

int conn_listen_start(Manager *m);
void conn_listen_stop(Manager *m);
/* Every tick: close connections past their first-line or handshake deadline. */
void conns_tick(Manager *m);
/* "10.0.0.2:41234" or "unix socket", for log lines. */
const char *conn_peer(const Conn *c, char *buf, size_t size);
/* Is the connection authenticated with the cluster key, or trusted without it
 * (a unix socket under auth = tcp, or auth = never)? */
bool conn_peer_trusted(const Conn *c);
/* A reserve connection became a replication link: it counts as one now. */
void conn_leave_reserve(Conn *c);
/* Log an authentication problem (rate-limited: a flood of bad peers does not flood the journal). */
void conn_log_auth(Conn *c, const char *fmt, ...) _printf_(2, 3);

Conn *conn_free(Conn *c);
/* Close now; the memory is freed later (safe inside callbacks and loops). */
void conn_kill(Conn *c);

size_t conn_output_size(const Conn *c);
/* Append a request to the connection's FIFO. */
Pending *conn_push(Conn *c, PendingType type);
/* Where an immediate reply goes: straight into the output when nothing is
 * queued before it, else behind the queued requests. NULL: out of memory. */
Buf *conn_reply_buf(Conn *c);
/* Move finished replies from the FIFO head to the output, then write. */
void conn_flush(Conn *c);
/* Write what is buffered; on error the connection is killed. */
void conn_write(Conn *c);
/* Draining (manager_shutdown): once everything the client sent is answered,
 * shut the socket down for writing and read on until the client closes (no
 * reset for a request in flight); a connection not yet heard from gets its
 * first request answered first. */
void conn_drain(Conn *c);
/* Continue later from a defer source: streaming (READ, replication) or buffered lines. */
void conn_schedule_resume(Conn *c);
/* Queue c for conn_flush() after the current batch. */
void conn_flush_later(Conn *c);
/* conn_flush() every queued connection. */
void conn_flush_list_run(Manager *m);

/* Answer a waiting write (takes it off the manager's list). */
void pending_finish(Pending *p);
