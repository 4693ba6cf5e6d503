/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-peerstream — the output buffer and write loop over a socketpair (plain
 * and sealed, a full socket, a broken one) and opened line reads (good,
 * tampered, over-long, EOF).
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "peerstream.h"
#include "tests.h"

#define KEY "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n"

static void pair(int fds[2]) {
        ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds));
}

/* Take the first line of b (without '\n'), consuming it; the copy is NUL-terminated in line. */
static size_t take_line(Buf *b, char *line, size_t size) {
        char *nl = memchr(b->data, '\n', b->len);
        size_t n;

        ASSERT_TRUE(nl);
        n = (size_t) (nl - b->data);
        ASSERT_TRUE(n < size);
        memcpy(line, b->data, n);
        line[n] = 0;
        buf_consume(b, n + 1);
        return n;
}

/* A connector c and an acceptor s, both established with the same key. */
static void handshake(PeerAuth *c, PeerAuth *s) {
        PeerAuthKey k;
        const char *reason = NULL;
        char line[256];
        Buf wire = {};
        size_t len;

        ASSERT_OK(peerauth_key_from_bytes(KEY, strlen(KEY), &k));
        ASSERT_OK(peerauth_hello(c, &k, "backup", &wire));
        len = take_line(&wire, line, sizeof(line));
        ASSERT_OK(peerauth_on_hello(s, &k, line, len, &wire, &reason));
        len = take_line(&wire, line, sizeof(line));
        ASSERT_OK(peerauth_on_challenge(c, line, len, &wire, &reason));
        len = take_line(&wire, line, sizeof(line));
        ASSERT_OK(peerauth_on_proof(s, line, len, &reason));
        ASSERT_TRUE(peerauth_established(c));
        ASSERT_TRUE(peerauth_established(s));
        buf_done(&wire);
}

/* The next line the reader has, opened with auth (may be NULL). */
static void expect_line(LineReader *lr, int fd, PeerAuth *auth, const char *want) {
        const char *reason = NULL;
        char *line;
        size_t len;
        int r;

        r = peer_read_line(lr, auth, &line, &len, &reason);
        if (r == 0) {
                ASSERT_TRUE(peer_read(lr, fd) > 0);
                r = peer_read_line(lr, auth, &line, &len, &reason);
        }
        ASSERT_EQ_INT(r, 1);
        ASSERT_EQ_U64(len, strlen(want));
        ASSERT_STREQ(line, want);
}

TEST(plain) {
        _cleanup_(line_reader_done) LineReader lr = {};
        PeerOut o = {};
        int fds[2];

        pair(fds);
        ASSERT_OK(line_reader_init(&lr, 64));
        ASSERT_EQ_INT(peer_read(&lr, fds[1]), -EAGAIN);

        ASSERT_OK(buf_append_str(&o.buf, "one\ntwo\npart"));
        ASSERT_EQ_U64(peer_out_pending(&o), 12);
        ASSERT_OK(peer_out_write(&o, fds[0], NULL, NULL));
        /* Without auth everything goes, a partial line too. */
        ASSERT_EQ_U64(peer_out_pending(&o), 0);
        ASSERT_EQ_U64(o.buf.len, 0);
        ASSERT_EQ_U64(o.pos, 0);
        expect_line(&lr, fds[1], NULL, "one");
        expect_line(&lr, fds[1], NULL, "two");
        ASSERT_EQ_INT(peer_read_line(&lr, NULL, NULL, NULL, NULL), 0);

        /* An over-long line is reported once, then the next one comes. */
        ASSERT_OK(buf_printf(&o.buf, "\n%0100d\nthree\n", 7));
        ASSERT_OK(peer_out_write(&o, fds[0], NULL, NULL));
        expect_line(&lr, fds[1], NULL, "part");
        ASSERT_TRUE(peer_read(&lr, fds[1]) > 0);
        {
                char *line;
                size_t len;
                int r;

                do
                        r = peer_read_line(&lr, NULL, &line, &len, NULL);
                while (r == 0 && peer_read(&lr, fds[1]) > 0);
                ASSERT_EQ_INT(r, -E2BIG);
        }
        expect_line(&lr, fds[1], NULL, "three");

        /* EOF once the writer closes. */
        safe_close(fds[0]);
        ASSERT_EQ_INT(peer_read(&lr, fds[1]), 0);
        safe_close(fds[1]);
        peer_out_done(&o);
}

TEST(sealed) {
        _cleanup_(line_reader_done) LineReader lr = {};
        PeerAuth c = {}, s = {};
        const char *reason = NULL;
        PeerOut o = {};
        char *line;
        size_t len;
        int fds[2];

        pair(fds);
        ASSERT_OK(line_reader_init(&lr, 64 + PEERAUTH_LINE_OVERHEAD));
        handshake(&c, &s);

        /* The last handshake line goes in the clear, what follows is sealed; a partial
         * line waits until it is complete. */
        ASSERT_OK(buf_append_str(&o.buf, "PROOF x\n"));
        peer_out_seal_from_here(&o);
        ASSERT_OK(buf_append_str(&o.buf, "HEARTBEAT 1\nHEART"));
        ASSERT_OK(peer_out_write(&o, fds[0], &c, NULL));
        ASSERT_EQ_U64(peer_out_pending(&o), 5);
        ASSERT_EQ_U64(o.sealed, o.pos);
        expect_line(&lr, fds[1], NULL, "PROOF x");
        expect_line(&lr, fds[1], &s, "HEARTBEAT 1");
        ASSERT_EQ_INT(peer_read_line(&lr, &s, &line, &len, &reason), 0);

        ASSERT_OK(buf_append_str(&o.buf, "BEAT 2\n"));
        ASSERT_OK(peer_out_write(&o, fds[0], &c, NULL));
        ASSERT_EQ_U64(peer_out_pending(&o), 0);
        ASSERT_EQ_U64(o.sealed, 0);
        expect_line(&lr, fds[1], &s, "HEARTBEAT 2");

        /* A line without a seal is refused, with the reason. */
        ASSERT_TRUE(write(fds[0], "FORGED 3\n", 9) == 9);
        ASSERT_TRUE(peer_read(&lr, fds[1]) > 0);
        ASSERT_TRUE(peer_read_line(&lr, &s, &line, &len, &reason) < 0);
        ASSERT_TRUE(reason && reason[0]);

        safe_close(fds[0]);
        safe_close(fds[1]);
        peer_out_done(&o);
        peerauth_done(&c);
        peerauth_done(&s);
}

TEST(full_socket) {
        _cleanup_(line_reader_done) LineReader lr = {};
        PeerOut o = {};
        char chunk[4096];
        size_t total, got = 0;
        int fds[2];

        pair(fds);
        ASSERT_OK(line_reader_init(&lr, 64));
        memset(chunk, 'x', sizeof(chunk));
        for (size_t i = 0; i < 512; i++)
                ASSERT_OK(buf_append(&o.buf, chunk, sizeof(chunk)));
        total = o.buf.len;

        /* The socket takes what it can; the rest stays queued (EAGAIN is no error). */
        ASSERT_OK(peer_out_write(&o, fds[0], NULL, NULL));
        ASSERT_TRUE(peer_out_pending(&o) > 0);
        ASSERT_TRUE(o.pos > 0);

        for (unsigned rounds = 0; peer_out_pending(&o) > 0; rounds++) {
                ssize_t n;

                ASSERT_TRUE(rounds < 100000);
                while ((n = read(fds[1], chunk, sizeof(chunk))) > 0)
                        got += (size_t) n;
                ASSERT_OK(peer_out_write(&o, fds[0], NULL, NULL));
                /* Past PEER_OUT_KEEP_CAP what went out is dropped from the front. */
                ASSERT_TRUE(o.pos <= PEER_OUT_KEEP_CAP || o.pos * 2 <= o.buf.len);
        }
        {
                ssize_t n;

                while ((n = read(fds[1], chunk, sizeof(chunk))) > 0)
                        got += (size_t) n;
        }
        ASSERT_EQ_U64(got, total);
        /* A big buffer is freed once empty. */
        ASSERT_EQ_U64(o.buf.cap, 0);
        safe_close(fds[0]);
        safe_close(fds[1]);
}

TEST(broken) {
        PeerOut o = {};
        const char *what = NULL;
        int fds[2];

        pair(fds);
        safe_close(fds[1]);
        ASSERT_OK(buf_append_str(&o.buf, "HEARTBEAT 1\n"));
        ASSERT_EQ_INT(peer_out_write(&o, fds[0], NULL, &what), -EPIPE);
        ASSERT_STREQ(what, "write failed");
        /* Nothing more goes out on it. */
        ASSERT_EQ_U64(peer_out_pending(&o), 0);
        safe_close(fds[0]);
        peer_out_done(&o);
}

int main(void) {
        ASSERT_OK(peerauth_init());
        RUN(plain);
        RUN(sealed);
        RUN(full_socket);
        RUN(broken);
        return 0;
}
