/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * peer-link — what the server's two outgoing connections (monitor-link.c to
 * the monitor, replication-backup.c to the primary) share: a non-blocking
 * connect watched on the event loop, a retry timer with capped backoff, the
 * line reader and the sealed output (peerstream.h) with EPOLLOUT while output
 * waits. The owner keeps its protocol, its logging and its failure policy:
 * the link calls back when the connect finished, with each line read, when
 * it is time to retry, and when the connection broke.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <systemd/sd-event.h>

#include "linereader.h"
#include "peerauth.h"
#include "peerstream.h"
#include "util.h"

typedef struct PeerLinkOps {
        /* The non-blocking connect finished: error is 0 or its positive errno. */
        void (*connected)(void *userdata, int error);
        /* What peer_read_line() gave, for each line after a read: r is 1 with the
         * (opened) line, -E2BIG for an over-long line that was dropped, or the error
         * of a bad seal with its reason. < 0: stop reading. */
        int (*line)(void *userdata, int r, char *line, size_t len, const char *reason);
        /* Optional: the lines of a read are all taken (and the link still stands). */
        void (*read_done)(void *userdata);
        /* The retry timer went off. */
        void (*retry)(void *userdata);
        /* The connection broke; what: "connection closed" (error 0: the peer hung up),
         * "read failed", "write failed", "cannot seal a line" or "cannot watch the
         * connection". The owner closes the link (and schedules a retry). */
        void (*fail)(void *userdata, int error, const char *what);
} PeerLinkOps;

typedef struct PeerLink {
        sd_event *event;
        const PeerLinkOps *ops;
        void *userdata;
        int64_t priority;       /* of the connection's and the retry timer's event sources */

        int fd;
        bool connecting;
        sd_event_source *io;
        sd_event_source *retry_timer;
        usec_t backoff;
        unsigned failures;      /* in a row, for the owner's logging */
        usec_t last_input;      /* when a read last brought bytes */

        LineReader lr;
        PeerOut out;
        PeerAuth auth;
} PeerLink;

void peer_link_init(PeerLink *p, sd_event *event, const PeerLinkOps *ops, void *userdata);
/* Event priority of the link's sources (sd_event_source_set_priority(); lower runs first). */
void peer_link_set_priority(PeerLink *p, int64_t priority);
/* Drop the connection: its watch, fd, queued output and session keys. */
void peer_link_close(PeerLink *p);
/* Close and free all (the retry timer and the reader too). */
void peer_link_done(PeerLink *p);
/* Close, and a fresh reader for lines up to max_line: nothing of the previous
 * connection leaks into the next. */
int peer_link_reset(PeerLink *p, size_t max_line);
/* Take fd, a socket whose non-blocking connect is under way, and wait for it. */
int peer_link_watch(PeerLink *p, int fd);
/* Arm the retry timer one backoff step (backoff_next()) from now. */
int peer_link_schedule_retry(PeerLink *p);
/* Seal and send what is queued; wait for EPOLLOUT while some remains. On failure
 * ops->fail was called and -errno is returned. */
int peer_link_write(PeerLink *p);
