/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-linereader — the bounded line reader against a reference model.
 *
 * Input: byte 0 picks max_line (1..128), byte 1 the number of chunk-size
 * bytes that follow (0..15) and whether lines are taken eagerly (after every
 * feed) or lazily (only when the reader is full); the rest is the stream. It
 * is delivered in chunks whose sizes cycle through the chunk-size bytes, each
 * chunk either through line_reader_feed() or written to a pipe and read with
 * line_reader_fill().
 *
 * Model: every complete line (one '\r' before its '\n' stripped) of at most
 * max_line bytes comes out exactly, in order; every longer one gives exactly
 * one -E2BIG; an unfinished last line gives -E2BIG once it reaches
 * max_line + 2 bytes and otherwise stays pending. The reader never holds more
 * than max_line + 2 bytes and never stalls (a full reader always yields an
 * event).
 */

#include <fcntl.h>
#include <unistd.h>

#include "fuzz.h"
#include "linereader.h"
#include "macro.h"

/* Far below the pipe's capacity, so one non-blocking write takes a whole chunk. */
#define PIPE_CHUNK_MAX 4096

typedef struct Model {
        const uint8_t *p;      /* the stream */
        size_t n;
        size_t pos;            /* start of the next expected line */
        size_t cap;            /* max_line + 2 */
        size_t max_line;
        bool partial_reported; /* the unfinished last line already gave -E2BIG */
} Model;

/* The next event the reader owes: 1 and the line, -E2BIG, or 0 for none. */
static int model_next(Model *m, const uint8_t **ret_line, size_t *ret_len) {
        const uint8_t *start = m->p + m->pos, *nl;
        size_t len;

        if (m->pos >= m->n)
                return 0;
        nl = memchr(start, '\n', m->n - m->pos);
        if (!nl) {
                if (m->n - m->pos >= m->cap && !m->partial_reported) {
                        m->partial_reported = true;
                        return -E2BIG;
                }
                return 0;
        }
        len = (size_t) (nl - start);
        m->pos += len + 1;
        if (len > 0 && start[len - 1] == '\r')
                len--;
        if (len > m->max_line)
                return -E2BIG;
        *ret_line = start;
        *ret_len = len;
        return 1;
}

static size_t model_pending(const Model *m) {
        if (m->partial_reported)
                return 0;
        return m->n - m->pos;
}

static void check_bounds(const LineReader *lr, size_t max_line) {
        FUZZ_CHECK(lr->cap == max_line + 2);
        FUZZ_CHECK(lr->start <= lr->end && lr->end <= lr->cap);
        FUZZ_CHECK(line_reader_pending(lr) == lr->end - lr->start);
        FUZZ_CHECK(line_reader_pending(lr) <= max_line + 2);
}

/* Take every line the reader has; compare each with the model. Returns the count of events. */
static size_t drain(LineReader *lr, Model *m) {
        size_t events = 0;

        for (;;) {
                const uint8_t *want_line = NULL;
                size_t len = SIZE_MAX, want_len = 0;
                char *line = NULL;
                int r, want;

                r = line_reader_next(lr, &line, &len);
                check_bounds(lr, m->max_line);
                if (r == 0)
                        return events;
                events++;
                FUZZ_CHECK(r == 1 || r == -E2BIG);
                want = model_next(m, &want_line, &want_len);
                if (r != want)
                        fprintf(stderr, "line_reader_next() = %d, model says %d (stream offset %zu)\n", r, want,
                                m->pos);
                FUZZ_CHECK(r == want);
                if (r == 1) {
                        FUZZ_CHECK(line >= lr->buf && line + len < lr->buf + lr->cap);
                        FUZZ_CHECK(len <= m->max_line);
                        FUZZ_CHECK(line[len] == '\0');
                        FUZZ_CHECK(len == want_len && memcmp(line, want_line, len) == 0);
                }
        }
}

static size_t chunk_size(uint8_t s, size_t remaining) {
        size_t v = s & 0x7f, n;

        if (v == 0)
                return remaining;
        n = v < 96 ? v : (v - 95) * 256;
        return n < remaining ? n : remaining;
}

static void deliver_feed(LineReader *lr, Model *m, const uint8_t *p, size_t n, bool eager) {
        size_t off = 0;

        while (off < n) {
                size_t acc = line_reader_feed(lr, p + off, n - off), events;

                check_bounds(lr, m->max_line);
                FUZZ_CHECK(acc <= n - off);
                off += acc;
                if (off == n && !eager)
                        break; /* all taken: leave the lines buffered for now */
                events = drain(lr, m);
                /* A reader that takes nothing must have had something to give. */
                FUZZ_CHECK(acc > 0 || events > 0);
        }
        if (eager)
                drain(lr, m);
}

static void deliver_fill(LineReader *lr, Model *m, int fds[2], const uint8_t *p, size_t n, bool eager) {
        ssize_t k = write(fds[1], p, n);

        FUZZ_CHECK(k == (ssize_t) n);
        for (;;) {
                int r = line_reader_fill(lr, fds[0]);

                check_bounds(lr, m->max_line);
                if (r == -EAGAIN)
                        break;
                if (r == -ENOBUFS) {
                        FUZZ_CHECK(drain(lr, m) > 0);
                        continue;
                }
                FUZZ_CHECK(r > 0);
                if (eager)
                        drain(lr, m);
        }
        if (eager)
                drain(lr, m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        FuzzInput in = { data, size };
        size_t max_line, n_sizes, off = 0, i = 0;
        const uint8_t *sizes;
        int fds[2] = { -1, -1 };
        bool eager;
        LineReader lr;
        Model m;
        uint8_t b;

        max_line = 1 + fuzz_byte(&in) % 128;
        b = fuzz_byte(&in);
        eager = b & 0x80;
        n_sizes = MIN((size_t) (b & 0x0f), in.n);
        sizes = in.p;
        in.p += n_sizes;
        in.n -= n_sizes;

        FUZZ_CHECK(line_reader_init(&lr, max_line) == 0);
        m = (Model) { .p = in.p, .n = in.n, .cap = max_line + 2, .max_line = max_line };

        while (off < in.n) {
                uint8_t s = n_sizes > 0 ? sizes[i++ % n_sizes] : 0;
                size_t n = chunk_size(s, in.n - off);

                if (s & 0x80) {
                        n = MIN(n, (size_t) PIPE_CHUNK_MAX);
                        if (fds[0] < 0)
                                FUZZ_CHECK(pipe2(fds, O_NONBLOCK | O_CLOEXEC) == 0);
                        deliver_fill(&lr, &m, fds, in.p + off, n, eager);
                } else
                        deliver_feed(&lr, &m, in.p + off, n, eager);
                off += n;
        }
        drain(&lr, &m);

        /* Nothing owed, and what is left is the unfinished last line. */
        {
                const uint8_t *l;
                size_t len;
                FUZZ_CHECK(model_next(&m, &l, &len) == 0);
        }
        FUZZ_CHECK(line_reader_pending(&lr) == model_pending(&m));

        if (fds[0] >= 0) {
                close(fds[1]);
                FUZZ_CHECK(line_reader_fill(&lr, fds[0]) == 0 && lr.eof);
                FUZZ_CHECK(line_reader_fill(&lr, fds[0]) == 0);
                FUZZ_CHECK(line_reader_pending(&lr) == model_pending(&m));
                close(fds[0]);
        }
        line_reader_done(&lr);
        return 0;
}
