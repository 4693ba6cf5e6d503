/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * linereader — a bounded streaming line splitter (see linereader.h).
 *
 * The buffer holds at most max_line + 2 bytes: one accepted line plus its
 * "\r\n". Lines end at '\n'; one '\r' right before it is stripped too (a lone
 * '\r' elsewhere is data). Unconsumed bytes live in buf[start, end); the
 * buffer is compacted (moved to the front) only when its tail is full, and
 * reset for free whenever it runs empty.
 *
 * Over-long lines: when the buffer is full and holds no '\n', the line cannot
 * be accepted. line_reader_next() then reports -E2BIG once, drops the bytes
 * and enters discarding mode, in which feed/fill drop everything up to and
 * including the next '\n' without buffering it. A complete line (its '\n'
 * already buffered) that is one byte too long is reported with -E2BIG too.
 *
 * End of file: once read(2) returned 0, line_reader_fill() keeps returning 0
 * without reading. A final partial line without '\n' is never returned as a
 * line (it is dropped: a peer that closes mid-line did not finish its
 * request); line_reader_pending() still counts its bytes, so a caller can
 * tell a clean end of stream (0 pending) from one in the middle of a line.
 * (A partial line that already filled the buffer was reported with -E2BIG
 * when that happened, like any over-long line.)
 */

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "linereader.h"
#include "macro.h"

int line_reader_init(LineReader *lr, size_t max_line) {
        char *buf;

        assert(lr);
        if (max_line == 0 || max_line > SIZE_MAX - 2)
                return -EINVAL;

        buf = malloc(max_line + 2);
        if (!buf)
                return -ENOMEM;

        *lr = (LineReader) {
                .buf = buf,
                .cap = max_line + 2,
                .max_line = max_line,
        };
        return 0;
}

void line_reader_done(LineReader *lr) {
        if (!lr)
                return;
        free(lr->buf);
        *lr = (LineReader) {};
}

/* Make room at the tail: reset an empty buffer, move pending bytes to the
 * front when the tail is full. */
static void line_reader_make_room(LineReader *lr) {
        if (lr->start == lr->end)
                lr->start = lr->end = 0;
        else if (lr->end == lr->cap && lr->start > 0) {
                memmove(lr->buf, lr->buf + lr->start, lr->end - lr->start);
                lr->end -= lr->start;
                lr->start = 0;
        }
}

/* n new bytes were just appended at the tail. In discarding mode the buffer
 * was empty: keep only what follows the '\n' that ends the over-long line. */
static void line_reader_absorb(LineReader *lr, size_t n) {
        const char *nl;

        lr->end += n;
        if (!lr->discarding)
                return;

        assert(lr->start + n == lr->end);
        nl = memchr(lr->buf + lr->start, '\n', n);
        if (!nl) {
                lr->start = lr->end = 0;
                return;
        }
        lr->start = (size_t) (nl - lr->buf) + 1;
        lr->discarding = false;
}

int line_reader_fill(LineReader *lr, int fd) {
        size_t room;
        ssize_t n;

        assert(lr);
        assert(lr->buf);
        assert(fd >= 0);

        if (lr->eof)
                return 0;

        line_reader_make_room(lr);
        room = MIN(lr->cap - lr->end, (size_t) INT_MAX);
        if (room == 0)
                return -ENOBUFS; /* full: line_reader_next() takes a line or reports -E2BIG */

        do
                n = read(fd, lr->buf + lr->end, room);
        while (n < 0 && errno == EINTR);
        lr->drained = n >= 0 ? (size_t) n < room : errno == EWOULDBLOCK;
        if (n < 0)
                return errno == EWOULDBLOCK ? -EAGAIN : negative_errno();
        if (n == 0) {
                lr->eof = true;
                return 0;
        }

        line_reader_absorb(lr, (size_t) n);
        return (int) n;
}

size_t line_reader_feed(LineReader *lr, const void *data, size_t n) {
        const char *p = data;
        size_t done = 0;

        assert(lr);
        assert(lr->buf);
        assert(data || n == 0);

        while (done < n) {
                size_t room, k;

                if (lr->discarding) {
                        /* Drop straight from the input; nothing is buffered in this mode. */
                        const char *nl = memchr(p + done, '\n', n - done);
                        if (!nl)
                                return n;
                        done = (size_t) (nl - p) + 1;
                        lr->discarding = false;
                        continue;
                }

                line_reader_make_room(lr);
                room = lr->cap - lr->end;
                if (room == 0)
                        break;
                k = MIN(room, n - done);
                memcpy(lr->buf + lr->end, p + done, k);
                line_reader_absorb(lr, k);
                done += k;
        }
        return done;
}

int line_reader_next(LineReader *lr, char **ret_line, size_t *ret_len) {
        char *line, *nl;
        size_t len;

        assert(lr);
        assert(lr->buf);
        assert(ret_line);
        assert(ret_len);

        if (lr->start == lr->end) {
                lr->start = lr->end = 0;
                return 0;
        }

        line = lr->buf + lr->start;
        nl = memchr(line, '\n', lr->end - lr->start);
        if (!nl) {
                if (lr->end - lr->start >= lr->cap) {
                        /* max_line + 2 bytes and no '\n': too long whatever follows. */
                        lr->start = lr->end = 0;
                        lr->discarding = true;
                        return -E2BIG;
                }
                line_reader_make_room(lr);
                return 0;
        }

        lr->start = (size_t) (nl - lr->buf) + 1;
        len = (size_t) (nl - line);
        if (len > 0 && line[len - 1] == '\r')
                len--;
        if (len > lr->max_line)
                return -E2BIG;

        line[len] = '\0';
        *ret_line = line;
        *ret_len = len;
        return 1;
}

size_t line_reader_pending(const LineReader *lr) {
        assert(lr);
        return lr->end - lr->start;
}
