/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-peerauth-handshake — the HELLO-AUTH / CHALLENGE / PROOF handshake of
 * peerauth.h with a fixed cluster key. libsodium's random source is the
 * input's (fuzz-peerauth.h), so every nonce is chosen by the fuzzer and every
 * input replays the same way. Byte 0 picks the mode:
 *
 *   0  acceptor: the first line of the rest goes to peerauth_on_hello(), every
 *      following line to peerauth_on_proof() (each on a copy of the acceptor
 *      in CHALLENGE_SENT). on_hello accepts exactly the lines a reference
 *      parser accepts ("HELLO-AUTH <valid name> <64 lower-case hex>") and
 *      they are the very line a connector with that name and nonce writes;
 *      a PROOF establishes exactly when it is byte for byte the PROOF the
 *      real connector sends (then both ends seal and open each other's
 *      lines); a malformed one is -EBADMSG, a well-formed wrong one -EACCES.
 *   1  connector: a name (possibly invalid: peerauth_hello() must refuse it
 *      exactly then) and a nonce, then every line goes to
 *      peerauth_on_challenge(); it establishes exactly when the line is the
 *      CHALLENGE the real acceptor would send for that line's ns, and then
 *      its PROOF establishes the acceptor.
 *   2  real handshake: a valid name and both nonces from the input; every
 *      step must succeed. Then a list of mutations of the recorded HELLO-AUTH,
 *      CHALLENGE or PROOF (each always changes the line): a mutated CHALLENGE
 *      or PROOF never establishes, a mutated HELLO-AUTH never leads to an
 *      established connector; nor do the recorded lines replayed on a
 *      handshake with another nonce, another key, or a MAC moved from one
 *      role to the other.
 * In every mode a refused line leaves the state FAILED, writes nothing, and
 * gives a reason; a second handshake line on a finished state is refused.
 */

#include <errno.h>

#include "fuzz-peerauth.h"

#define LINES_MAX 32

/* ---- reference parsers (strict: the only spelling the peer writes) ---- */

static bool ref_hello(const char *l, size_t n, char name[NAME_MAX_LEN + 1], uint8_t nc[PEERAUTH_NONCE_BYTES]) {
        const char *sp;
        size_t nl;

        if (n < 11 || memcmp(l, "HELLO-AUTH ", 11) != 0)
                return false;
        sp = memchr(l + 11, ' ', n - 11);
        if (!sp)
                return false;
        nl = (size_t) (sp - (l + 11));
        if (nl == 0 || nl > NAME_MAX_LEN || memchr(l + 11, '\0', nl))
                return false;
        memcpy(name, l + 11, nl);
        name[nl] = '\0';
        if (!name_is_valid(name))
                return false;
        if (n - (size_t) (sp + 1 - l) != 64 || !fuzz_is_lower_hex(sp + 1, 64))
                return false;
        FUZZ_CHECK(sodium_hex2bin(nc, PEERAUTH_NONCE_BYTES, sp + 1, 64, NULL, NULL, NULL) == 0);
        return true;
}

static bool ref_challenge(const char *l, size_t n, uint8_t ns[PEERAUTH_NONCE_BYTES]) {
        if (n != 10 + 64 + 1 + 64 || memcmp(l, "CHALLENGE ", 10) != 0 || !fuzz_is_lower_hex(l + 10, 64) ||
            l[74] != ' ' || !fuzz_is_lower_hex(l + 75, 64))
                return false;
        FUZZ_CHECK(sodium_hex2bin(ns, PEERAUTH_NONCE_BYTES, l + 10, 64, NULL, NULL, NULL) == 0);
        return true;
}

static bool ref_proof(const char *l, size_t n) {
        return n == 6 + 64 && memcmp(l, "PROOF ", 6) == 0 && fuzz_is_lower_hex(l + 6, 64);
}

static bool line_eq(const char *a, size_t an, const char *b, size_t bn) {
        return an == bn && memcmp(a, b, an) == 0;
}

/* ---- the established state ---- */

/* A line sealed by one end opens on the other, once, in order. */
static void check_sealed_link(PeerAuth *from, PeerAuth *to, const char *text) {
        const char *reason = NULL;
        uint64_t seq = to->recv_seq;
        Buf b = {};
        char *line;
        size_t end, len;

        FUZZ_CHECK(buf_printf(&b, "%s\n", text) >= 0);
        FUZZ_CHECK(peerauth_seal(from, &b, 0, &end) == 0);
        FUZZ_CHECK(end == b.len && b.len == strlen(text) + 1 + PEERAUTH_LINE_OVERHEAD);
        line = fuzz_take_line(&b, &len);
        FUZZ_CHECK(peerauth_open(to, line, &len, &reason) == 0);
        FUZZ_CHECK(len == strlen(text) && strcmp(line, text) == 0 && to->recv_seq == seq + 1);
        free(line);
        buf_done(&b);
}

static void check_link(PeerAuth *c, PeerAuth *s) {
        FUZZ_CHECK(peerauth_established(c) && peerauth_established(s));
        check_sealed_link(c, s, "HEARTBEAT name=x role=backup");
        check_sealed_link(s, c, "LEASE term=1");
}

/* A refused handshake line: state FAILED, nothing written, a reason. */
static void check_refused_line(int r, const PeerAuth *a, const Buf *out, size_t out_len_before, const char *reason,
                               const char *line, size_t len) {
        if (r == 0)
                fprintf(stderr, "accepted: \"%.*s\" (%zu bytes)\n", (int) len, line, len);
        FUZZ_CHECK(r == -EBADMSG || r == -EACCES);
        FUZZ_CHECK(a->state == PEERAUTH_FAILED);
        FUZZ_CHECK(out == NULL || out->len == out_len_before);
        FUZZ_CHECK(reason && *reason);
}

#define check_refused(r, a, out, before, reason) check_refused_line(r, a, out, before, reason, "", 0)

/* ---- mode 0: acceptor ---- */

static void acceptor_lines(char **lines, size_t *lens, size_t n, FuzzInput *in) {
        char name[NAME_MAX_LEN + 1];
        uint8_t nc[PEERAUTH_NONCE_BYTES], ns[PEERAUTH_NONCE_BYTES];
        const char *reason = NULL;
        PeerAuth s, c, s2, c2;
        Buf out = {}, wire = {};
        char *hello = NULL, *challenge = NULL, *proof = NULL;
        size_t hello_len, challenge_len, proof_len;
        bool ok;
        int r;

        if (n == 0)
                return;
        fuzz_nonce(in, ns);

        /* The acceptor's output buffer may already hold lines: on_hello appends. */
        FUZZ_CHECK(buf_append_str(&out, "pending\n") >= 0);
        memset(&s, 0xa5, sizeof s);
        fuzz_rng_set(ns, sizeof ns);
        ok = ref_hello(lines[0], lens[0], name, nc);
        r = peerauth_on_hello(&s, &fuzz_key_a, lines[0], lens[0], &out, &reason);
        FUZZ_CHECK(s.acceptor);
        if (!ok) {
                FUZZ_CHECK(r == -EBADMSG);
                check_refused(r, &s, &out, 8, reason);
                FUZZ_CHECK(!peerauth_established(&s));
                /* A refused HELLO-AUTH cannot be followed by a PROOF. */
                for (size_t i = 1; i < n; i++) {
                        s2 = s;
                        FUZZ_CHECK(peerauth_on_proof(&s2, lines[i], lens[i], &reason) == -EBADMSG);
                        FUZZ_CHECK(!peerauth_established(&s2));
                }
                goto finish;
        }
        FUZZ_CHECK(r == 0);
        FUZZ_CHECK(peerauth_is_hello(lines[0], lens[0]));
        FUZZ_CHECK(s.state == PEERAUTH_CHALLENGE_SENT);
        FUZZ_CHECK(strcmp(s.name, name) == 0);
        FUZZ_CHECK(memcmp(s.nc, nc, sizeof nc) == 0 && memcmp(s.ns, ns, sizeof ns) == 0);
        FUZZ_CHECK(out.len > 8 && memcmp(out.data, "pending\n", 8) == 0);
        buf_consume(&out, 8);
        challenge = fuzz_take_line(&out, &challenge_len);
        FUZZ_CHECK(ref_challenge(challenge, challenge_len, ns) && memcmp(ns, s.ns, sizeof ns) == 0);

        /* The connector that would have sent this line: the same line, and it accepts the CHALLENGE. */
        fuzz_rng_set(nc, sizeof nc);
        FUZZ_CHECK(peerauth_hello(&c, &fuzz_key_a, name, &wire) == 0);
        hello = fuzz_take_line(&wire, &hello_len);
        FUZZ_CHECK(line_eq(hello, hello_len, lines[0], lens[0]));
        c2 = c;
        FUZZ_CHECK(peerauth_on_challenge(&c, challenge, challenge_len, &wire, &reason) == 0);
        FUZZ_CHECK(peerauth_established(&c));
        proof = fuzz_take_line(&wire, &proof_len);
        FUZZ_CHECK(ref_proof(proof, proof_len));

        /* The acceptor is not a connector. */
        s2 = s;
        FUZZ_CHECK(peerauth_on_challenge(&s2, challenge, challenge_len, &wire, &reason) == -EBADMSG);
        FUZZ_CHECK(s2.state == PEERAUTH_CHALLENGE_SENT && wire.len == 0);

        /* Every further line as the PROOF. */
        for (size_t i = 1; i < n; i++) {
                bool right = line_eq(lines[i], lens[i], proof, proof_len);

                s2 = s;
                reason = NULL;
                r = peerauth_on_proof(&s2, lines[i], lens[i], &reason);
                if (right) {
                        FUZZ_CHECK(r == 0);
                        FUZZ_CHECK(peerauth_established(&s2));
                        continue;
                }
                check_refused(r, &s2, NULL, 0, reason);
                FUZZ_CHECK(r == (ref_proof(lines[i], lens[i]) ? -EACCES : -EBADMSG));
                FUZZ_CHECK(!peerauth_established(&s2));
                /* and the real PROOF after a refused one is refused too: the state is spent */
                FUZZ_CHECK(peerauth_on_proof(&s2, proof, proof_len, &reason) == -EBADMSG);
                FUZZ_CHECK(!peerauth_established(&s2));
        }

        /* The real PROOF establishes; the two ends talk. */
        s2 = s;
        FUZZ_CHECK(peerauth_on_proof(&s2, proof, proof_len, &reason) == 0);
        check_link(&c, &s2);
        FUZZ_CHECK(peerauth_on_proof(&s2, proof, proof_len, &reason) == -EBADMSG);  /* once */
        FUZZ_CHECK(peerauth_established(&s2));

        /* An acceptor with another key: the connector refuses its CHALLENGE and sends nothing. */
        fuzz_rng_set(ns, sizeof ns);
        FUZZ_CHECK(peerauth_on_hello(&s2, &fuzz_key_b, lines[0], lens[0], &out, &reason) == 0);
        free(challenge);
        challenge = fuzz_take_line(&out, &challenge_len);
        r = peerauth_on_challenge(&c2, challenge, challenge_len, &wire, &reason);
        FUZZ_CHECK(r == -EACCES);
        check_refused(r, &c2, &wire, 0, reason);

finish:
        free(hello);
        free(challenge);
        free(proof);
        buf_done(&out);
        buf_done(&wire);
}

/* ---- mode 1: connector ---- */

static void connector_lines(char **lines, size_t *lens, size_t n, FuzzInput *in) {
        uint8_t nc[PEERAUTH_NONCE_BYTES], ns[PEERAUTH_NONCE_BYTES];
        size_t name_len = fuzz_byte(in) % (NAME_MAX_LEN + 8);
        const char *reason = NULL;
        char name[NAME_MAX_LEN + 8 + 1];
        char *hello = NULL;
        size_t hello_len;
        PeerAuth c, c2, s;
        Buf out = {}, wire = {};
        int r;

        for (size_t i = 0; i < name_len; i++)
                name[i] = (char) fuzz_byte(in);
        name[name_len] = '\0';
        fuzz_nonce(in, nc);

        fuzz_rng_set(nc, sizeof nc);
        FUZZ_CHECK(buf_append_str(&out, "x\n") >= 0);
        r = peerauth_hello(&c, &fuzz_key_a, name, &out);
        if (!name_is_valid(name)) {
                FUZZ_CHECK(r == -EINVAL && out.len == 2);
                goto finish;
        }
        FUZZ_CHECK(r == 0 && c.state == PEERAUTH_HELLO_SENT);
        buf_consume(&out, 2);
        hello = fuzz_take_line(&out, &hello_len);
        {
                char n2[NAME_MAX_LEN + 1];
                uint8_t nc2[PEERAUTH_NONCE_BYTES];

                FUZZ_CHECK(ref_hello(hello, hello_len, n2, nc2));
                FUZZ_CHECK(strcmp(n2, name) == 0 && memcmp(nc2, nc, sizeof nc) == 0);
        }

        /* The connector is not an acceptor. */
        c2 = c;
        FUZZ_CHECK(peerauth_on_proof(&c2, "PROOF 00", 8, &reason) == -EBADMSG);
        FUZZ_CHECK(c2.state == PEERAUTH_HELLO_SENT);

        for (size_t i = 0; i < n; i++) {
                char *challenge = NULL;
                size_t challenge_len = 0;
                bool wellformed = ref_challenge(lines[i], lens[i], ns), right = false;

                if (wellformed) {
                        /* The acceptor that picks this line's ns: what would it send? */
                        fuzz_rng_set(ns, sizeof ns);
                        FUZZ_CHECK(peerauth_on_hello(&s, &fuzz_key_a, hello, hello_len, &wire, &reason) == 0);
                        challenge = fuzz_take_line(&wire, &challenge_len);
                        right = line_eq(lines[i], lens[i], challenge, challenge_len);
                }

                c2 = c;
                reason = NULL;
                r = peerauth_on_challenge(&c2, lines[i], lens[i], &out, &reason);
                if (right) {
                        char *proof;
                        size_t proof_len;

                        FUZZ_CHECK(r == 0 && peerauth_established(&c2));
                        proof = fuzz_take_line(&out, &proof_len);
                        FUZZ_CHECK(ref_proof(proof, proof_len));
                        FUZZ_CHECK(peerauth_on_proof(&s, proof, proof_len, &reason) == 0);
                        check_link(&c2, &s);
                        free(proof);
                } else {
                        check_refused(r, &c2, &out, 0, reason);
                        FUZZ_CHECK(r == (wellformed ? -EACCES : -EBADMSG));
                        FUZZ_CHECK(!peerauth_established(&c2));
                }
                /* A connector takes one CHALLENGE. */
                FUZZ_CHECK(peerauth_on_challenge(&c2, lines[i], lens[i], &out, &reason) == -EBADMSG);
                FUZZ_CHECK(out.len == 0);
                free(challenge);
        }

finish:
        free(hello);
        buf_done(&out);
        buf_done(&wire);
}

/* ---- mode 2: a real handshake, then mutations and replays ---- */

/* A connector "name"/nc facing a CHALLENGE line that is not the right one. */
static void expect_challenge_refused(const char *name, const uint8_t nc[PEERAUTH_NONCE_BYTES],
                                     const PeerAuthKey *key, const char *line, size_t len) {
        const char *reason = NULL;
        Buf wire = {};
        PeerAuth c;
        int r;

        fuzz_rng_set(nc, PEERAUTH_NONCE_BYTES);
        FUZZ_CHECK(peerauth_hello(&c, key, name, &wire) == 0);
        buf_clear(&wire);
        r = peerauth_on_challenge(&c, line, len, &wire, &reason);
        check_refused_line(r, &c, &wire, 0, reason, line, len);
        FUZZ_CHECK(!peerauth_established(&c));
        buf_done(&wire);
}

/* An acceptor that got hello and picked ns, facing a PROOF line that is not the right one. */
static void expect_proof_refused(const char *hello, size_t hello_len, const uint8_t ns[PEERAUTH_NONCE_BYTES],
                                 const PeerAuthKey *key, const char *line, size_t len) {
        const char *reason = NULL;
        Buf wire = {};
        PeerAuth s;
        int r;

        fuzz_rng_set(ns, PEERAUTH_NONCE_BYTES);
        FUZZ_CHECK(peerauth_on_hello(&s, key, hello, hello_len, &wire, &reason) == 0);
        r = peerauth_on_proof(&s, line, len, &reason);
        check_refused_line(r, &s, NULL, 0, reason, line, len);
        FUZZ_CHECK(!peerauth_established(&s));
        buf_done(&wire);
}

static void real_handshake(FuzzInput *in) {
        uint8_t nc[PEERAUTH_NONCE_BYTES], ns[PEERAUTH_NONCE_BYTES], other[PEERAUTH_NONCE_BYTES];
        char name[NAME_MAX_LEN + 1];
        const char *reason = NULL;
        FuzzHandshake h;
        Buf wire = {};
        char *m, swapped[6 + 64 + 1], swapped2[10 + 64 + 1 + 64 + 1];
        size_t mlen;

        fuzz_valid_name(in, name);
        fuzz_nonce(in, nc);
        fuzz_nonce(in, ns);
        fuzz_handshake(&h, name, nc, ns, &fuzz_key_a);
        check_link(&h.c, &h.s);

        /* Mutations of the recorded lines. */
        for (unsigned i = 0; i < 8 && in->n > 0; i++) {
                FuzzMutation mu = fuzz_mutation(in);
                unsigned which = (mu.kind >> 2) % 3;

                if (which == 0) {
                        PeerAuth s;
                        int r;

                        m = fuzz_mutate(h.hello, h.hello_len, mu, &mlen);
                        fuzz_rng_set(ns, sizeof ns);
                        r = peerauth_on_hello(&s, &fuzz_key_a, m, mlen, &wire, &reason);
                        if (r == 0) {
                                /* It named another server or nonce: the real connector refuses the answer. */
                                char *challenge;
                                size_t challenge_len;

                                FUZZ_CHECK(strcmp(s.name, name) != 0 || memcmp(s.nc, nc, sizeof nc) != 0);
                                challenge = fuzz_take_line(&wire, &challenge_len);
                                expect_challenge_refused(name, nc, &fuzz_key_a, challenge, challenge_len);
                                free(challenge);
                        } else
                                check_refused(r, &s, &wire, 0, reason);
                } else if (which == 1) {
                        m = fuzz_mutate(h.challenge, h.challenge_len, mu, &mlen);
                        expect_challenge_refused(name, nc, &fuzz_key_a, m, mlen);
                } else {
                        m = fuzz_mutate(h.proof, h.proof_len, mu, &mlen);
                        expect_proof_refused(h.hello, h.hello_len, ns, &fuzz_key_a, m, mlen);
                }
                free(m);
        }

        /* Replays: the recorded CHALLENGE to a connector with another nonce or
         * key, the recorded PROOF to an acceptor with another nonce or key. */
        memcpy(other, nc, sizeof other);
        other[fuzz_byte(in) % sizeof other] ^= 1u << (fuzz_byte(in) % 8);
        expect_challenge_refused(name, other, &fuzz_key_a, h.challenge, h.challenge_len);
        expect_challenge_refused(name, nc, &fuzz_key_b, h.challenge, h.challenge_len);
        memcpy(other, ns, sizeof other);
        other[fuzz_byte(in) % sizeof other] ^= 1u << (fuzz_byte(in) % 8);
        expect_proof_refused(h.hello, h.hello_len, other, &fuzz_key_a, h.proof, h.proof_len);
        expect_proof_refused(h.hello, h.hello_len, ns, &fuzz_key_b, h.proof, h.proof_len);

        /* A MAC moved to the other role: mac_s as a PROOF, mac_c in a CHALLENGE. */
        snprintf(swapped, sizeof swapped, "PROOF %.64s", h.challenge + 75);
        expect_proof_refused(h.hello, h.hello_len, ns, &fuzz_key_a, swapped, strlen(swapped));
        snprintf(swapped2, sizeof swapped2, "CHALLENGE %.64s %.64s", h.challenge + 10, h.proof + 6);
        expect_challenge_refused(name, nc, &fuzz_key_a, swapped2, strlen(swapped2));

        buf_done(&wire);
        fuzz_handshake_done(&h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        FuzzInput in = { data, size };
        char *lines[LINES_MAX];
        size_t lens[LINES_MAX], n = 0;
        uint8_t mode;

        fuzz_peerauth_setup();
        mode = fuzz_byte(&in);

        if (mode % 3 == 2) {
                real_handshake(&in);
                return 0;
        }

        /* Mode 0 takes its ns, mode 1 its name and nc, from the front: byte 1 says how many bytes that is. */
        {
                size_t head = fuzz_byte(&in);
                FuzzInput params = { in.p, head < in.n ? head : in.n };
                const uint8_t *p;
                size_t left;

                in.p += params.n;
                in.n -= params.n;
                p = in.p;
                left = in.n;
                while (left > 0 && n < LINES_MAX) {
                        const uint8_t *nl = memchr(p, '\n', left);
                        size_t len = nl ? (size_t) (nl - p) : left;

                        lines[n] = fuzz_strndup(p, len);
                        lens[n++] = len;
                        if (!nl)
                                break;
                        p = nl + 1;
                        left -= len + 1;
                }

                if (mode % 3 == 0)
                        acceptor_lines(lines, lens, n, &params);
                else
                        connector_lines(lines, lens, n, &params);
        }

        for (size_t i = 0; i < n; i++)
                free(lines[i]);
        return 0;
}
