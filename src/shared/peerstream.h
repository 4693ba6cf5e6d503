/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * peerstream — the byte mechanics of a line connection that may be sealed
 * with peerauth (doc/security.md), shared by both ends of fusion's internal
 * links (server -> monitor, backup -> primary, and the accepting sides):
 * an output buffer with a write position, sealing of what was queued once
 * the handshake is done, the non-blocking write loop, and reading lines that
 * are opened on the way in. Pure: no event loop, no logging; the caller
 * watches the fd and decides what a failure means.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "linereader.h"
#include "peerauth.h"
#include "util.h"

/* A buffer that went out completely is freed rather than kept past this size, and
 * one that went out this far is compacted. */
#define PEER_OUT_KEEP_CAP (256U * 1024U)

/* Queued output: lines are appended to buf; pos..buf.len has not gone out yet. */
typedef struct PeerOut {
        Buf buf;
        size_t pos;     /* sent up to here */
        size_t sealed;  /* sealed up to here (auth established) */
} PeerOut;

/* Bytes queued and not sent yet. */
static inline size_t peer_out_pending(const PeerOut *o) {
        return o->buf.len - o->pos;
}

/* The handshake is done: what is queued so far goes out in the clear, every line
 * queued after this is sealed. */
static inline void peer_out_seal_from_here(PeerOut *o) {
        o->sealed = o->buf.len;
}

/* Drop whatever is queued (a new connection starts empty). */
void peer_out_clear(PeerOut *o);
void peer_out_done(PeerOut *o);

/* Seal the complete lines queued since the last seal, now (when auth is established;
 * else nothing to do). Sealing a line right after queueing it costs no copy (a batch
 * moves every line but the first). -ENOMEM: nothing changed. */
int peer_out_seal(PeerOut *o, PeerAuth *auth);

/* Seal what was queued since the last call (when auth is established; only complete,
 * sealed lines go out then), and send until the socket is full. 0 when all that may
 * go out went out or the socket would block (see peer_out_pending()); < 0 on failure,
 * with *ret_what (may be NULL) saying "cannot seal a line" (-ENOMEM, nothing changed)
 * or "write failed" (the send(2) error; the queued output is dropped). */
int peer_out_write(PeerOut *o, int fd, PeerAuth *auth, const char **ret_what);

/* read(2) once into lr: > 0 bytes read, 0 at EOF, -EAGAIN when nothing can be read
 * now (also for EINTR, and while a complete line waits to be taken), other -errno. */
int peer_read(LineReader *lr, int fd);

/* Take the next complete line of lr and, when auth is established, check and strip
 * its seal in place. 1: a line in *ret_line, its length in *ret_len (valid until the next call);
 * 0: no complete line buffered; -E2BIG: an over-long line was dropped (once per
 * line); -EBADMSG, -EACCES or -EPROTO: the seal is wrong, *ret_reason says why,
 * and the connection must be closed. */
int peer_read_line(LineReader *lr, PeerAuth *auth, char **ret_line, size_t *ret_len, const char **ret_reason);
