/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * peerstream — output buffer, sealing, write loop and opened line reads of a
 * peer connection (see peerstream.h).
 */
#include <errno.h>
#include <sys/socket.h>

#include "macro.h"
#include "peerstream.h"

void peer_out_clear(PeerOut *o) {
        buf_clear(&o->buf);
        o->pos = 0;
        o->sealed = 0;
}

void peer_out_done(PeerOut *o) {
        buf_done(&o->buf);
        o->pos = 0;
        o->sealed = 0;
}

int peer_out_seal(PeerOut *o, PeerAuth *auth) {
        if (!peerauth_established(auth) || o->sealed >= o->buf.len)
                return 0;
        return peerauth_seal(auth, &o->buf, MAX(o->sealed, o->pos), &o->sealed);
}

int peer_out_write(PeerOut *o, int fd, PeerAuth *auth, const char **ret_what) {
        size_t limit = o->buf.len;
        int r;

        if (peerauth_established(auth)) {
                r = peer_out_seal(o, auth);
                if (r < 0) {
                        if (ret_what)
                                *ret_what = "cannot seal a line";
                        return r;
                }
                limit = o->sealed;
        }

        while (o->pos < limit) {
                ssize_t n;

                n = send(fd, o->buf.data + o->pos, limit - o->pos, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                break;
                        r = -errno;
                        /* Nothing more goes out on this connection. */
                        peer_out_clear(o);
                        if (ret_what)
                                *ret_what = "write failed";
                        return r;
                }
                o->pos += (size_t) n;
        }

        if (o->pos == o->buf.len) {
                if (o->buf.cap > PEER_OUT_KEEP_CAP)
                        peer_out_done(o);
                else
                        peer_out_clear(o);
        } else if (o->pos > PEER_OUT_KEEP_CAP && o->pos * 2 > o->buf.len) {
                buf_consume(&o->buf, o->pos);
                o->sealed = o->sealed > o->pos ? o->sealed - o->pos : 0;
                o->pos = 0;
        }
        return 0;
}

int peer_read(LineReader *lr, int fd) {
        int r;

        r = line_reader_fill(lr, fd);
        if (r == -ENOBUFS || r == -EINTR)
                return -EAGAIN;
        return r;
}

int peer_read_line(LineReader *lr, PeerAuth *auth, char **ret_line, size_t *ret_len, const char **ret_reason) {
        const char *reason = NULL;
        char *line;
        size_t len;
        int r;

        r = line_reader_next(lr, &line, &len);
        if (r <= 0)
                return r;
        if (peerauth_established(auth)) {
                r = peerauth_open(auth, line, &len, &reason);
                if (r < 0) {
                        if (ret_reason)
                                *ret_reason = reason ?: "bad seal";
                        return r;
                }
        }
        *ret_line = line;
        *ret_len = len;
        return 1;
}
