/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-linereader — the bounded line splitter: byte-by-byte and random-chunk
 * feeding (seeded, checked against a reference model), "\r\n", over-long
 * lines between good ones, a 10 MB line through a socketpair with
 * line_reader_fill(), -ENOBUFS, -EAGAIN and end of file in mid-line.
 */

#include "tests.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "linereader.h"
#include "macro.h"

#define TOO_LONG_MARK "<E2BIG>"

/* What came out of a reader: lines joined as "line|line|<E2BIG>|...". */
typedef struct Out {
        char *text;
        size_t len, cap;
        size_t n_lines, n_too_long;
} Out;

static void out_add(Out *o, const char *s, size_t n) {
        if (o->len + n + 2 > o->cap) {
                o->cap = (o->len + n + 2) * 2;
                o->text = realloc(o->text, o->cap);
                ASSERT_TRUE(o->text);
        }
        memcpy(o->text + o->len, s, n);
        o->len += n;
        o->text[o->len++] = '|';
        o->text[o->len] = '\0';
}

static void out_free(Out *o) {
        free(o->text);
        *o = (Out) {};
}

static const char *out_str(const Out *o) {
        return o->text ? o->text : "";
}

/* Take every complete line out of lr. */
static void drain(LineReader *lr, Out *o) {
        for (;;) {
                char *line;
                size_t len;
                int r;

                r = line_reader_next(lr, &line, &len);
                if (r == 0)
                        return;
                if (r == -E2BIG) {
                        out_add(o, TOO_LONG_MARK, strlen(TOO_LONG_MARK));
                        o->n_too_long++;
                        continue;
                }
                ASSERT_EQ_INT(r, 1);
                ASSERT_TRUE(len <= lr->max_line);
                ASSERT_EQ_INT(line[len], '\0');
                ASSERT_TRUE(line >= lr->buf && line + len < lr->buf + lr->cap);
                out_add(o, line, len);
                o->n_lines++;
        }
}

static void check_bounds(const LineReader *lr, size_t max_line) {
        ASSERT_EQ_U64(lr->cap, max_line + 2);
        ASSERT_TRUE(lr->start <= lr->end);
        ASSERT_TRUE(lr->end <= lr->cap);
        ASSERT_EQ_U64(line_reader_pending(lr), lr->end - lr->start);
}

/* Feed data in chunks of sizes from next_chunk(), draining as we go. */
static void feed_all(LineReader *lr, const char *data, size_t n, size_t (*next_chunk)(void), Out *o) {
        size_t off = 0;

        while (off < n) {
                size_t c = next_chunk(); /* once: MIN() evaluates its arguments twice */
                size_t k = MIN(c, n - off), fed = 0;

                while (fed < k) {
                        size_t a = line_reader_feed(lr, data + off + fed, k - fed);

                        check_bounds(lr, lr->max_line);
                        fed += a;
                        drain(lr, o);
                        check_bounds(lr, lr->max_line);
                        if (a == 0)
                                /* Only a full buffer refuses bytes, and drain() then
                                 * always frees room (a line or -E2BIG). */
                                ASSERT_TRUE(lr->end - lr->start < lr->cap);
                }
                off += k;
        }
}

/* The reference model: split at '\n', strip one '\r' before it, lines longer
 * than max_line become TOO_LONG_MARK, a final partial line is dropped -- but
 * one of max_line + 2 bytes or more is already known to be too long and was
 * reported as such. */
static void model(const char *data, size_t n, size_t max_line, Out *o) {
        size_t s = 0;

        for (size_t i = 0; i < n; i++) {
                size_t len;

                if (data[i] != '\n')
                        continue;
                len = i - s;
                if (len > 0 && data[i - 1] == '\r')
                        len--;
                if (len > max_line) {
                        out_add(o, TOO_LONG_MARK, strlen(TOO_LONG_MARK));
                        o->n_too_long++;
                } else {
                        out_add(o, data + s, len);
                        o->n_lines++;
                }
                s = i + 1;
        }
        if (n - s >= max_line + 2) {
                out_add(o, TOO_LONG_MARK, strlen(TOO_LONG_MARK));
                o->n_too_long++;
        }
}

static size_t chunk_one(void) {
        return 1;
}

static size_t chunk_random(void) {
        /* Mostly small chunks, sometimes large ones. */
        return (rand() % 4 == 0) ? (size_t) (rand() % 200) + 1 : (size_t) (rand() % 7) + 1;
}

static size_t chunk_huge(void) {
        return SIZE_MAX / 2;
}

static void expect_lines(const char *data, size_t n, size_t max_line, size_t (*next_chunk)(void),
                         const char *expected) {
        LineReader lr;
        Out o = {}, m = {};

        ASSERT_OK(line_reader_init(&lr, max_line));
        feed_all(&lr, data, n, next_chunk, &o);
        model(data, n, max_line, &m);
        if (expected)
                ASSERT_STREQ(out_str(&o), expected);
        /* Compared as bytes: lines may carry NULs. */
        ASSERT_EQ_U64(o.len, m.len);
        ASSERT_TRUE(o.len == 0 || memcmp(o.text, m.text, o.len) == 0);
        ASSERT_EQ_U64(o.n_lines, m.n_lines);
        ASSERT_EQ_U64(o.n_too_long, m.n_too_long);
        line_reader_done(&lr);
        out_free(&o);
        out_free(&m);
}

TEST(init) {
        LineReader lr;

        ASSERT_EQ_INT(line_reader_init(&lr, 0), -EINVAL);
        ASSERT_EQ_INT(line_reader_init(&lr, SIZE_MAX), -EINVAL);
        ASSERT_OK(line_reader_init(&lr, 10));
        ASSERT_EQ_U64(lr.cap, 12);
        ASSERT_EQ_U64(lr.max_line, 10);
        ASSERT_EQ_U64(line_reader_pending(&lr), 0);
        ASSERT_TRUE(!lr.eof && !lr.discarding);
        line_reader_done(&lr);
        ASSERT_TRUE(lr.buf == NULL);
        line_reader_done(&lr); /* twice is fine */
}

TEST(basic) {
        static const char s[] = "PING\nSEND hello world\r\n\n\r\nlast";
        size_t (*chunkers[])(void) = { chunk_one, chunk_random, chunk_huge };

        for (size_t i = 0; i < ELEMENTSOF(chunkers); i++)
                expect_lines(s, sizeof(s) - 1, 64, chunkers[i], "PING|SEND hello world|||");

        /* A lone '\r' is data; only the one right before '\n' goes. */
        expect_lines("a\rb\n\r\r\nc\r\r\n", 11, 64, chunk_one, "a\rb|\r|c\r|");
        /* NUL bytes pass through (the protocol parser refuses them). */
        expect_lines("a\0b\nc\n", 6, 64, chunk_one, NULL);
        {
                LineReader lr;
                char *line;
                size_t len;

                ASSERT_OK(line_reader_init(&lr, 8));
                ASSERT_EQ_U64(line_reader_feed(&lr, "a\0b\n", 4), 4);
                ASSERT_EQ_INT(line_reader_next(&lr, &line, &len), 1);
                ASSERT_EQ_U64(len, 3);
                ASSERT_TRUE(memcmp(line, "a\0b", 4) == 0);
                line_reader_done(&lr);
        }
}

TEST(boundaries) {
        /* max_line 8: 8 bytes fit with "\n" and with "\r\n"; 9 do not. */
        expect_lines("12345678\n", 9, 8, chunk_huge, "12345678|");
        expect_lines("12345678\r\n", 10, 8, chunk_huge, "12345678|");
        expect_lines("12345678\r\n", 10, 8, chunk_one, "12345678|");
        expect_lines("123456789\n", 10, 8, chunk_huge, TOO_LONG_MARK "|");
        expect_lines("123456789\n", 10, 8, chunk_one, TOO_LONG_MARK "|");
        expect_lines("123456789\r\n", 11, 8, chunk_huge, TOO_LONG_MARK "|");
        expect_lines("1234567890\n", 11, 8, chunk_one, TOO_LONG_MARK "|");
        expect_lines("12345678\r\r\n", 11, 8, chunk_one, TOO_LONG_MARK "|");
        /* max_line 1 */
        expect_lines("a\nbc\nd\r\n\n", 10, 1, chunk_one, "a|" TOO_LONG_MARK "|d||");
}

TEST(too_long_between_good) {
        char data[4096];
        size_t n = 0;
        size_t (*chunkers[])(void) = { chunk_one, chunk_random, chunk_huge };

        n += (size_t) sprintf(data + n, "first\n");
        memset(data + n, 'x', 1000);
        n += 1000;
        data[n++] = '\n';
        n += (size_t) sprintf(data + n, "second\r\n");
        memset(data + n, 'y', 33); /* exactly max_line + 1 */
        n += 33;
        n += (size_t) sprintf(data + n, "\r\nthird\n");

        for (size_t i = 0; i < ELEMENTSOF(chunkers); i++)
                expect_lines(data, n, 32, chunkers[i],
                             "first|" TOO_LONG_MARK "|second|" TOO_LONG_MARK "|third|");
}

TEST(random_streams) {
        /* Seeded: the same streams every run, and the seed is printed. */
        unsigned seed = 0xf051u;
        char *data = malloc(1 << 16);

        ASSERT_TRUE(data);
        fprintf(stderr, "seed %u\n", seed);
        srand(seed);
        for (int round = 0; round < 300; round++) {
                size_t max_line = (size_t) (rand() % 40) + 1, n = 0;
                int n_lines = rand() % 40;

                for (int l = 0; l < n_lines && n < (1 << 15); l++) {
                        size_t len = (size_t) (rand() % (int) (max_line * 2 + 3));
                        static const char alphabet[] = "ab \r\t\0z";

                        for (size_t k = 0; k < len; k++)
                                data[n++] = alphabet[rand() % (int) (sizeof(alphabet) - 1)];
                        if (rand() % 3 == 0)
                                data[n++] = '\r';
                        if (l + 1 < n_lines || rand() % 2 == 0)
                                data[n++] = '\n';
                }
                expect_lines(data, n, max_line, chunk_random, NULL);
                expect_lines(data, n, max_line, chunk_one, NULL);
                expect_lines(data, n, max_line, chunk_huge, NULL);
        }
        free(data);
}

TEST(feed_partial) {
        LineReader lr;
        char *line;
        size_t len;

        /* A full buffer without '\n' refuses more bytes until next() runs. */
        ASSERT_OK(line_reader_init(&lr, 4));
        ASSERT_EQ_U64(line_reader_feed(&lr, "abcdefgh\nok\n", 12), 6);
        ASSERT_EQ_U64(line_reader_pending(&lr), 6);
        ASSERT_EQ_INT(line_reader_next(&lr, &line, &len), -E2BIG);
        ASSERT_EQ_U64(line_reader_pending(&lr), 0);
        ASSERT_TRUE(lr.discarding);
        /* Discarding swallows up to the '\n' without buffering it. */
        ASSERT_EQ_U64(line_reader_feed(&lr, "gh\nok\n", 6), 6);
        ASSERT_TRUE(!lr.discarding);
        ASSERT_EQ_INT(line_reader_next(&lr, &line, &len), 1);
        ASSERT_STREQ(line, "ok");
        ASSERT_EQ_U64(len, 2);
        ASSERT_EQ_INT(line_reader_next(&lr, &line, &len), 0);
        ASSERT_EQ_INT(line_reader_next(&lr, &line, &len), 0);

        /* Reported once: no second -E2BIG for the rest of the same line. */
        ASSERT_EQ_U64(line_reader_feed(&lr, "123456", 6), 6);
        ASSERT_EQ_INT(line_reader_next(&lr, &line, &len), -E2BIG);
        ASSERT_EQ_U64(line_reader_feed(&lr, "78901234567890", 14), 14);
        ASSERT_EQ_INT(line_reader_next(&lr, &line, &len), 0);
        ASSERT_EQ_U64(line_reader_feed(&lr, "0\nxy", 4), 4);
        ASSERT_EQ_INT(line_reader_next(&lr, &line, &len), 0);
        ASSERT_EQ_U64(line_reader_pending(&lr), 2);
        ASSERT_EQ_U64(line_reader_feed(&lr, "\n", 1), 1);
        ASSERT_EQ_INT(line_reader_next(&lr, &line, &len), 1);
        ASSERT_STREQ(line, "xy");
        line_reader_done(&lr);
}

static void socketpair_nb(int fds[2]) {
        ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds));
        ASSERT_OK(fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK));
}

static void write_all(int fd, const void *p, size_t n) {
        const char *c = p;

        while (n > 0) {
                ssize_t k = write(fd, c, n);

                if (k < 0 && errno == EINTR)
                        continue;
                ASSERT_TRUE(k > 0);
                c += k;
                n -= (size_t) k;
        }
}

TEST(fill_enobufs_eagain) {
        _cleanup_(closep) int a = -1, b = -1;
        int fds[2];
        LineReader lr;
        char *line;
        size_t len;

        socketpair_nb(fds);
        a = fds[0];
        b = fds[1];

        ASSERT_OK(line_reader_init(&lr, 8));
        ASSERT_EQ_INT(line_reader_fill(&lr, a), -EAGAIN);
        ASSERT_TRUE(lr.drained);

        /* 10 bytes = cap, all complete lines: the next fill has no room. */
        write_all(b, "a\nb\nc\nd\ne\nf\n", 12);
        ASSERT_EQ_INT(line_reader_fill(&lr, a), 10);
        ASSERT_TRUE(!lr.drained);       /* it took all it had room for: more may wait */
        ASSERT_EQ_INT(line_reader_fill(&lr, a), -ENOBUFS);
        ASSERT_EQ_INT(line_reader_next(&lr, &line, &len), 1);
        ASSERT_STREQ(line, "a");
        /* One line taken: the buffer compacts and reads the remaining 2 bytes. */
        ASSERT_EQ_INT(line_reader_fill(&lr, a), 2);
        ASSERT_TRUE(!lr.drained);       /* exactly the room it had */
        ASSERT_EQ_U64(lr.start, 0);
        ASSERT_EQ_U64(line_reader_pending(&lr), 10);
        for (const char *want = "bcdef"; *want; want++) {
                ASSERT_EQ_INT(line_reader_next(&lr, &line, &len), 1);
                ASSERT_EQ_U64(len, 1);
                ASSERT_EQ_INT(line[0], *want);
        }
        ASSERT_EQ_INT(line_reader_next(&lr, &line, &len), 0);
        ASSERT_EQ_INT(line_reader_fill(&lr, a), -EAGAIN);

        /* A full buffer without '\n' is also -ENOBUFS until next() reports it. */
        write_all(b, "0123456789AB\nok\n", 16);
        ASSERT_EQ_INT(line_reader_fill(&lr, a), 10);
        ASSERT_EQ_INT(line_reader_fill(&lr, a), -ENOBUFS);
        ASSERT_EQ_INT(line_reader_next(&lr, &line, &len), -E2BIG);
        ASSERT_EQ_INT(line_reader_fill(&lr, a), 6);
        ASSERT_EQ_INT(line_reader_next(&lr, &line, &len), 1);
        ASSERT_STREQ(line, "ok");
        ASSERT_EQ_INT(line_reader_next(&lr, &line, &len), 0);

        /* Less than the room: the socket had no more then. */
        write_all(b, "x\n", 2);
        ASSERT_EQ_INT(line_reader_fill(&lr, a), 2);
        ASSERT_TRUE(lr.drained);
        ASSERT_EQ_INT(line_reader_next(&lr, &line, &len), 1);
        ASSERT_STREQ(line, "x");

        /* Errors from read(2) come back as -errno. */
        {
                int closed = fcntl(a, F_DUPFD_CLOEXEC, 3);

                ASSERT_TRUE(closed >= 0);
                safe_close(closed);
                ASSERT_EQ_INT(line_reader_fill(&lr, closed), -EBADF);
        }
        line_reader_done(&lr);
}

TEST(eof_mid_line) {
        _cleanup_(closep) int a = -1;
        int fds[2];
        LineReader lr;
        char *line;
        size_t len;

        socketpair_nb(fds);
        a = fds[0];
        write_all(fds[1], "one\ntw", 6);
        safe_close(fds[1]);

        ASSERT_OK(line_reader_init(&lr, 16));
        ASSERT_EQ_INT(line_reader_fill(&lr, a), 6);
        ASSERT_TRUE(!lr.eof);
        ASSERT_EQ_INT(line_reader_fill(&lr, a), 0);
        ASSERT_TRUE(lr.eof);
        ASSERT_EQ_INT(line_reader_next(&lr, &line, &len), 1);
        ASSERT_STREQ(line, "one");
        /* The unfinished "tw" is never a line; pending shows the stream ended mid-line. */
        ASSERT_EQ_INT(line_reader_next(&lr, &line, &len), 0);
        ASSERT_EQ_U64(line_reader_pending(&lr), 2);
        /* Further fills stay at EOF without reading. */
        ASSERT_EQ_INT(line_reader_fill(&lr, a), 0);
        ASSERT_EQ_INT(line_reader_next(&lr, &line, &len), 0);
        line_reader_done(&lr);

        /* A clean end: nothing pending. */
        socketpair_nb(fds);
        write_all(fds[1], "x\r\n", 3);
        safe_close(fds[1]);
        ASSERT_OK(line_reader_init(&lr, 16));
        ASSERT_EQ_INT(line_reader_fill(&lr, fds[0]), 3);
        ASSERT_EQ_INT(line_reader_fill(&lr, fds[0]), 0);
        ASSERT_EQ_INT(line_reader_next(&lr, &line, &len), 1);
        ASSERT_STREQ(line, "x");
        ASSERT_EQ_INT(line_reader_next(&lr, &line, &len), 0);
        ASSERT_EQ_U64(line_reader_pending(&lr), 0);
        line_reader_done(&lr);
        safe_close(fds[0]);
}

#define HUGE_LINE (10u * 1024 * 1024)

TEST(huge_line_socketpair) {
        _cleanup_(closep) int a = -1;
        const size_t max_line = 65536 + 80;
        size_t total_read = 0, total_written;
        int fds[2], status, fills = 0;
        LineReader lr;
        char *orig_buf;
        Out o = {};
        pid_t pid;

        ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds));
        a = fds[0];
        total_written = strlen("good one\n") + HUGE_LINE + 1 + strlen("good two\r\n");

        pid = fork();
        ASSERT_TRUE(pid >= 0);
        if (pid == 0) {
                char *chunk = malloc(1 << 16);

                safe_close(fds[0]);
                if (!chunk)
                        _exit(2);
                memset(chunk, 'z', 1 << 16);
                write_all(fds[1], "good one\n", 9);
                for (size_t left = HUGE_LINE; left > 0;) {
                        size_t k = MIN(left, (size_t) (1 << 16));
                        write_all(fds[1], chunk, k);
                        left -= k;
                }
                write_all(fds[1], "\ngood two\r\n", 11);
                free(chunk);
                _exit(0);
        }
        safe_close(fds[1]);
        alarm(60); /* a deadline, not a delay: a stuck writer fails the test */

        ASSERT_OK(line_reader_init(&lr, max_line));
        orig_buf = lr.buf;
        for (;;) {
                int r;

                drain(&lr, &o);
                r = line_reader_fill(&lr, a);
                ASSERT_TRUE(r >= 0); /* blocking socket; drained, so never -ENOBUFS */
                check_bounds(&lr, max_line);
                ASSERT_TRUE(lr.buf == orig_buf);
                ASSERT_TRUE(line_reader_pending(&lr) <= max_line + 2);
                if (r == 0)
                        break;
                total_read += (size_t) r;
                fills++;
        }
        drain(&lr, &o);
        alarm(0);

        ASSERT_EQ_INT(waitpid(pid, &status, 0), pid);
        ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        ASSERT_EQ_U64(total_read, total_written);
        ASSERT_TRUE(fills > 1);
        ASSERT_STREQ(out_str(&o), "good one|" TOO_LONG_MARK "|good two|");
        ASSERT_EQ_U64(o.n_too_long, 1);
        ASSERT_EQ_U64(line_reader_pending(&lr), 0);
        line_reader_done(&lr);
        out_free(&o);
}

int main(void) {
        RUN(init);
        RUN(basic);
        RUN(boundaries);
        RUN(too_long_between_good);
        RUN(random_streams);
        RUN(feed_partial);
        RUN(fill_enobufs_eagain);
        RUN(eof_mid_line);
        RUN(huge_line_socketpair);
        return 0;
}
