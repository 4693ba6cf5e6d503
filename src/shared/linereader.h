/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * linereader — a bounded streaming line splitter for non-blocking sockets.
 * It never buffers more than max_line + 2 bytes of one line, handles partial
 * lines across reads, "\r\n", and many lines in one read. A line longer than
 * max_line is reported once as too long and the rest of it is discarded up to
 * its '\n'.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

typedef struct LineReader {
        char *buf;
        size_t cap;       /* allocated: max_line + 2 (room for "\r\n") */
        size_t start;     /* first unconsumed byte */
        size_t end;       /* one past the last byte read */
        size_t max_line;  /* longest line accepted, without the line ending */
        bool discarding;  /* inside an over-long line, dropping until '\n' */
        bool eof;
        bool drained;     /* the last fill read less than it had room for, or got EAGAIN:
                           * the fd held no more then (what edge-triggered epoll needs) */
} LineReader;

int line_reader_init(LineReader *lr, size_t max_line);
void line_reader_done(LineReader *lr);

/* read(2) once from fd into free space. Returns bytes read (> 0), 0 at EOF
 * (lr->eof set), -EAGAIN when nothing is available, -ENOBUFS when a complete
 * line is still waiting to be taken (call line_reader_next first), other -errno. */
int line_reader_fill(LineReader *lr, int fd);
/* Feed bytes directly (tests, fuzzers). Returns bytes accepted (may be < n). */
size_t line_reader_feed(LineReader *lr, const void *data, size_t n);

/* Take the next complete line. Returns 1 with *ret_line pointing into the
 * buffer (NUL-terminated in place, line ending stripped, valid until the next
 * call) and *ret_len its length; 0 when no complete line is buffered;
 * -E2BIG once for each over-long line (its bytes are dropped). */
int line_reader_next(LineReader *lr, char **ret_line, size_t *ret_len);

/* Bytes buffered but not yet returned as lines. */
size_t line_reader_pending(const LineReader *lr);
