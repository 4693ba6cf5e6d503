/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-peerauth-open — peerauth_open() on arbitrary lines, and
 * peerauth_seal() on arbitrary buffers, after a real handshake between two
 * in-memory peers (fuzz-peerauth.h: the name and both nonces come from the
 * input, so seeds made from a real session replay it exactly).
 *
 * Input: byte 0 (bit 0: the receiver is the acceptor, else the connector;
 * bits 1-3: how many mutations to try), a name, nc, ns, a byte choosing where
 * sealing starts, then the rest R.
 *
 *   1. Every line of R (split at '\n') is opened, in order, on the receiver.
 *      The oracle is the sender itself: a copy of it at the line's seq seals
 *      the line's content, and the line has a right tag exactly when it is
 *      that sealed line, byte for byte. So: not " #" + 16 + 32 lower-case hex
 *      digits at the end: -EBADMSG; a wrong tag: -EACCES; a right tag at
 *      another seq than the next one: -EPROTO; else 0, the suffix cut and the
 *      content NUL-terminated. On error the line, its length and the
 *      receiver are untouched.
 *   2. On a fresh session with the same parameters, R is sealed from the
 *      chosen offset: the bytes before it are untouched, every complete line
 *      after it gets exactly its suffix with the next seq, a trailing partial
 *      line is left as it was, *ret_end is where it starts. Each sealed line
 *      then opens on the receiver, in order, to its content; before that,
 *      the input's mutations of it (each always changes the line; one that
 *      happens to leave exactly the line the sender would seal next, say a cut
 *      exposing a sealed line inside the content, is skipped), the next line
 *      (reordered), a line the receiver sealed itself (other direction) and a
 *      line of another session are all refused; afterwards the line again
 *      (replay) is refused with -EPROTO.
 */

#include <errno.h>

#include "fuzz-peerauth.h"

#define LINES_MAX 64

static bool suffix_wellformed(const char *l, size_t n, uint64_t *ret_seq) {
        const char *s;
        uint64_t seq = 0;

        if (n < PEERAUTH_LINE_OVERHEAD)
                return false;
        s = l + n - PEERAUTH_LINE_OVERHEAD;
        if (s[0] != ' ' || s[1] != '#' || !fuzz_is_lower_hex(s + 2, 16 + 32))
                return false;
        for (unsigned i = 0; i < 16; i++)
                seq = seq << 4 | (uint64_t) (s[2 + i] <= '9' ? s[2 + i] - '0' : s[2 + i] - 'a' + 10);
        *ret_seq = seq;
        return true;
}

/* What the sender writes for content at seq (malloc'd, without '\n'). */
static char *seal_as(const PeerAuth *sender, uint64_t seq, const char *content, size_t len, size_t *ret_len) {
        PeerAuth copy = *sender;
        Buf b = {};
        size_t end;
        char *line;

        copy.send_seq = seq;
        FUZZ_CHECK(buf_append(&b, content, len) >= 0 && buf_append(&b, "\n", 1) >= 0);
        FUZZ_CHECK(peerauth_seal(&copy, &b, 0, &end) == 0);
        FUZZ_CHECK(end == b.len && copy.send_seq == seq + 1);
        line = fuzz_take_line(&b, ret_len);
        buf_done(&b);
        peerauth_done(&copy);
        return line;
}

/* line is exactly what from seals at seq. */
static bool sealed_by(const PeerAuth *from, uint64_t seq, const char *line, size_t len) {
        uint64_t s;
        size_t slen;
        char *sealed;
        bool same;

        if (!suffix_wellformed(line, len, &s) || s != seq || memchr(line, '\n', len))
                return false;   /* (a newline: not one line; the mutation is refused, checked by the caller) */
        sealed = seal_as(from, seq, line, len - PEERAUTH_LINE_OVERHEAD, &slen);
        same = slen == len && memcmp(sealed, line, len) == 0;
        free(sealed);
        return same;
}

/* Open a line that must be refused with want (or any error if want is 0): nothing changes. */
static void expect_refused(PeerAuth *to, const char *line, size_t len, int want) {
        char *copy = fuzz_strndup((const uint8_t *) line, len);
        uint64_t seq = to->recv_seq;
        const char *reason = NULL;
        size_t n = len;
        int r;

        r = peerauth_open(to, copy, &n, &reason);
        if (r == 0)
                fprintf(stderr, "opened: \"%.*s\" (%zu bytes)\n", (int) len, line, len);
        if (want != 0)
                FUZZ_CHECK(r == want);
        FUZZ_CHECK(r == -EBADMSG || r == -EACCES || r == -EPROTO);
        FUZZ_CHECK(reason && *reason);
        FUZZ_CHECK(n == len && memcmp(copy, line, len) == 0 && copy[len] == '\0');
        FUZZ_CHECK(to->recv_seq == seq && peerauth_established(to));
        free(copy);
}

/* 1. arbitrary lines */
static void open_lines(PeerAuth *from, PeerAuth *to, const uint8_t *p, size_t left) {
        for (size_t k = 0; k < LINES_MAX && left > 0; k++) {
                const uint8_t *nl = memchr(p, '\n', left);
                size_t len = nl ? (size_t) (nl - p) : left, n = len;
                char *line = fuzz_strndup(p, len);
                const char *reason = NULL;
                uint64_t seq = 0, before = to->recv_seq;
                bool wellformed = suffix_wellformed(line, len, &seq);
                bool right = wellformed && sealed_by(from, seq, line, len);
                int r;

                r = peerauth_open(to, line, &n, &reason);
                if (!wellformed)
                        FUZZ_CHECK(r == -EBADMSG);
                else if (!right)
                        FUZZ_CHECK(r == -EACCES);
                else if (seq != before)
                        FUZZ_CHECK(r == -EPROTO);
                else
                        FUZZ_CHECK(r == 0);

                if (r == 0) {
                        FUZZ_CHECK(n == len - PEERAUTH_LINE_OVERHEAD && line[n] == '\0');
                        FUZZ_CHECK(memcmp(line, p, n) == 0);
                        FUZZ_CHECK(to->recv_seq == before + 1);
                        /* and never twice */
                        free(line);
                        line = fuzz_strndup(p, len);
                        expect_refused(to, line, len, -EPROTO);
                } else {
                        FUZZ_CHECK(reason && *reason);
                        FUZZ_CHECK(n == len && memcmp(line, p, len) == 0 && line[len] == '\0');
                        FUZZ_CHECK(to->recv_seq == before);
                }
                free(line);
                if (!nl)
                        break;
                p = nl + 1;
                left -= len + 1;
        }
}

/* 2. seal R, open what came out */
static void seal_and_open(PeerAuth *from, PeerAuth *to, PeerAuth *stranger, const uint8_t *p, size_t n,
                          size_t from_off, FuzzInput *in, unsigned n_mut) {
        size_t end, pos, src, n_lines = 0, k = 0;
        uint64_t seq0 = from->send_seq;
        Buf b = {};
        char *sealed[LINES_MAX];
        size_t sealed_len[LINES_MAX], content_off[LINES_MAX], content_len[LINES_MAX];
        FuzzMutation mut[8];

        for (unsigned i = 0; i < n_mut; i++)
                mut[i] = fuzz_mutation(in);

        /* Keep the number of lines (and of HMACs) bounded. */
        for (size_t i = 0, lines = 0; i < n; i++)
                if (p[i] == '\n' && ++lines == LINES_MAX) {
                        n = i + 1;
                        break;
                }
        from_off %= n + 1;

        FUZZ_CHECK(buf_append(&b, p, n) >= 0);
        FUZZ_CHECK(peerauth_seal(from, &b, from_off, &end) == 0);
        FUZZ_CHECK(b.data[b.len] == '\0');
        FUZZ_CHECK(b.len >= n && memcmp(b.data, p, from_off) == 0);

        /* The expected layout, line by line. */
        pos = src = from_off;
        for (;;) {
                const uint8_t *nl = memchr(p + src, '\n', n - src);
                size_t len;
                uint64_t seq;

                if (!nl)
                        break;
                len = (size_t) (nl - (p + src));
                FUZZ_CHECK(b.len >= pos + len + PEERAUTH_LINE_OVERHEAD + 1);
                FUZZ_CHECK(memcmp(b.data + pos, p + src, len) == 0);
                FUZZ_CHECK(suffix_wellformed(b.data + pos, len + PEERAUTH_LINE_OVERHEAD, &seq));
                FUZZ_CHECK(seq == seq0 + n_lines);
                FUZZ_CHECK(b.data[pos + len + PEERAUTH_LINE_OVERHEAD] == '\n');
                sealed[n_lines] = fuzz_strndup((const uint8_t *) b.data + pos, len + PEERAUTH_LINE_OVERHEAD);
                sealed_len[n_lines] = len + PEERAUTH_LINE_OVERHEAD;
                content_off[n_lines] = src;
                content_len[n_lines] = len;
                n_lines++;
                pos += len + PEERAUTH_LINE_OVERHEAD + 1;
                src += len + 1;
        }
        FUZZ_CHECK(end == pos);
        FUZZ_CHECK(b.len == pos + (n - src) && memcmp(b.data + pos, p + src, n - src) == 0);
        FUZZ_CHECK(from->send_seq == seq0 + n_lines);

        /* Sealing again from end changes nothing (only a partial line is left). */
        {
                size_t end2, len_before = b.len;

                FUZZ_CHECK(peerauth_seal(from, &b, end, &end2) == 0);
                FUZZ_CHECK(end2 == end && b.len == len_before && from->send_seq == seq0 + n_lines);
        }

        for (size_t i = 0; i < n_lines; i++) {
                const char *reason = NULL;
                size_t len = sealed_len[i];
                char *line;

                /* Mutations of this line, in its place. */
                for (unsigned j = 0; j < n_mut; j++) {
                        size_t mlen;
                        char *m;

                        if ((size_t) (mut[j].kind >> 2) % n_lines != i)
                                continue;
                        m = fuzz_mutate(sealed[i], sealed_len[i], mut[j], &mlen);
                        /* A mutation that leaves exactly what the sender would seal next is a good line,
                         * e.g. a cut that exposes a sealed line inside the content (libFuzzer learns tags
                         * from the oracle's memcmp). Every other one is refused. */
                        if (!sealed_by(from, to->recv_seq, m, mlen))
                                expect_refused(to, m, mlen, 0);
                        free(m);
                }
                /* The next line first: a good tag, but out of order. */
                if (i + 1 < n_lines)
                        expect_refused(to, sealed[i + 1], sealed_len[i + 1], -EPROTO);
                /* This content sealed by the receiver (the other direction), or by another session. */
                if (k++ < 4) {
                        size_t olen;
                        char *other = seal_as(to, to->recv_seq, (const char *) p + content_off[i], content_len[i], &olen);

                        expect_refused(to, other, olen, -EACCES);
                        free(other);
                        other = seal_as(stranger, to->recv_seq, (const char *) p + content_off[i], content_len[i], &olen);
                        expect_refused(to, other, olen, -EACCES);
                        free(other);
                }

                line = fuzz_strndup((const uint8_t *) sealed[i], len);
                FUZZ_CHECK(peerauth_open(to, line, &len, &reason) == 0);
                FUZZ_CHECK(len == content_len[i] && line[len] == '\0');
                FUZZ_CHECK(memcmp(line, p + content_off[i], len) == 0);
                free(line);
                /* Replayed: refused. */
                expect_refused(to, sealed[i], sealed_len[i], -EPROTO);
                if (i > 0)
                        expect_refused(to, sealed[0], sealed_len[0], -EPROTO);
        }
        FUZZ_CHECK(to->recv_seq == from->send_seq);

        for (size_t i = 0; i < n_lines; i++)
                free(sealed[i]);
        buf_done(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        FuzzInput in = { data, size };
        uint8_t flags, nc[PEERAUTH_NONCE_BYTES], ns[PEERAUTH_NONCE_BYTES];
        char name[NAME_MAX_LEN + 1];
        FuzzHandshake h, h2, other;
        size_t from_off;
        bool to_acceptor;
        unsigned n_mut;

        fuzz_peerauth_setup();
        flags = fuzz_byte(&in);
        to_acceptor = flags & 1;
        n_mut = (flags >> 1) & 7;
        fuzz_valid_name(&in, name);
        fuzz_nonce(&in, nc);
        fuzz_nonce(&in, ns);
        from_off = fuzz_u16(&in);

        /* 1. */
        fuzz_handshake(&h, name, nc, ns, &fuzz_key_a);
        if (to_acceptor)
                open_lines(&h.c, &h.s, in.p, in.n);
        else
                open_lines(&h.s, &h.c, in.p, in.n);

        /* 2. (the mutations come from the end of the input, so the lines stay where they were) */
        fuzz_handshake(&h2, name, nc, ns, &fuzz_key_a);
        nc[0] ^= 1;
        fuzz_handshake(&other, name, nc, ns, &fuzz_key_a);
        {
                size_t tail = n_mut * 4 < in.n ? n_mut * 4 : in.n;
                FuzzInput muts = { in.p + in.n - tail, tail };

                if (to_acceptor)
                        seal_and_open(&h2.c, &h2.s, &other.c, in.p, in.n, from_off, &muts, n_mut);
                else
                        seal_and_open(&h2.s, &h2.c, &other.s, in.p, in.n, from_off, &muts, n_mut);
        }

        fuzz_handshake_done(&h);
        fuzz_handshake_done(&h2);
        fuzz_handshake_done(&other);
        return 0;
}
