/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-peerauth — the cluster key file, the mutual handshake (right and wrong
 * keys both ways), sealed lines (tampered, replayed, reordered, truncated,
 * oversized, cross-direction), the tag's ChaCha20-Poly1305 format, the client token
 * and the rate limiter.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "peerauth.h"
#include "tests.h"

#define KEY_A "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n"
#define KEY_B "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210\n"

static char tmpdir[] = "/tmp/test-peerauth-XXXXXX";

static void key(const char *material, PeerAuthKey *ret) {
        ASSERT_OK(peerauth_key_from_bytes(material, strlen(material), ret));
        ASSERT_TRUE(ret->set);
}

/* Take the first line of b (without '\n') into a writable string, consuming it. */
static char *take_line(Buf *b, size_t *ret_len) {
        char *nl = memchr(b->data, '\n', b->len);
        size_t n;
        char *s;

        ASSERT_TRUE(nl);
        n = (size_t) (nl - b->data);
        s = strndup(b->data, n);
        ASSERT_TRUE(s);
        buf_consume(b, n + 1);
        *ret_len = n;
        return s;
}

/* Run a handshake between a connector holding kc and an acceptor holding ks.
 * Returns 0 when both ends are established, else the first error. */
static int handshake(const PeerAuthKey *kc, const PeerAuthKey *ks, PeerAuth *c, PeerAuth *s, int *ret_side) {
        Buf wire = {};
        const char *reason = NULL;
        char *line;
        size_t len;
        int r;

        ASSERT_OK(peerauth_hello(c, kc, "backup", &wire));
        ASSERT_EQ_INT(c->state, PEERAUTH_HELLO_SENT);
        line = take_line(&wire, &len);
        ASSERT_TRUE(peerauth_is_hello(line, len));
        ASSERT_EQ_INT(strncmp(line, "HELLO-AUTH backup ", 18), 0);
        ASSERT_EQ_U64(len, 18 + 64);
        r = peerauth_on_hello(s, ks, line, len, &wire, &reason);
        free(line);
        ASSERT_OK(r);
        ASSERT_STREQ(s->name, "backup");
        ASSERT_EQ_INT(s->state, PEERAUTH_CHALLENGE_SENT);

        line = take_line(&wire, &len);
        ASSERT_EQ_INT(strncmp(line, "CHALLENGE ", 10), 0);
        ASSERT_EQ_U64(len, 10 + 64 + 1 + 64);
        r = peerauth_on_challenge(c, line, len, &wire, &reason);
        free(line);
        if (r < 0) {
                *ret_side = 'c';
                ASSERT_STREQ(reason, "the peer does not hold this cluster key");
                ASSERT_EQ_INT(c->state, PEERAUTH_FAILED);
                ASSERT_EQ_U64(wire.len, 0);     /* no PROOF is sent */
                buf_done(&wire);
                return r;
        }
        ASSERT_EQ_INT(c->state, PEERAUTH_ESTABLISHED);

        line = take_line(&wire, &len);
        ASSERT_EQ_INT(strncmp(line, "PROOF ", 6), 0);
        r = peerauth_on_proof(s, line, len, &reason);
        free(line);
        buf_done(&wire);
        if (r < 0) {
                *ret_side = 's';
                ASSERT_STREQ(reason, "wrong key");
                return r;
        }
        ASSERT_EQ_INT(s->state, PEERAUTH_ESTABLISHED);
        return 0;
}

/* Seal text (one or more lines) from sender, return the sealed bytes. */
static void seal(PeerAuth *a, const char *text, Buf *out) {
        size_t from = out->len, end;

        ASSERT_OK(buf_append_str(out, text));
        ASSERT_OK(peerauth_seal(a, out, from, &end));
        ASSERT_EQ_U64(end, out->len);
}

static int open_line(PeerAuth *a, Buf *wire, char **ret, const char **reason) {
        size_t len;
        char *line = take_line(wire, &len);
        int r;

        r = peerauth_open(a, line, &len, reason);
        if (r >= 0)
                ASSERT_EQ_U64(len, strlen(line));
        *ret = line;
        return r;
}

TEST(key_material) {
        PeerAuthKey a, a2, b, raw;
        uint8_t bytes[32];

        key(KEY_A, &a);
        /* trailing whitespace does not matter, so an editor's newline does not change the key */
        ASSERT_OK(peerauth_key_from_bytes(KEY_A "  \r\n\n", strlen(KEY_A) + 5, &a2));
        ASSERT_EQ_INT(memcmp(a.bytes, a2.bytes, sizeof(a.bytes)), 0);
        key(KEY_B, &b);
        ASSERT_TRUE(memcmp(a.bytes, b.bytes, sizeof(a.bytes)) != 0);

        /* 32 raw bytes (not ending in whitespace) are enough, 31 are not */
        for (unsigned i = 0; i < sizeof(bytes); i++)
                bytes[i] = (uint8_t) (0x80 + i);
        ASSERT_OK(peerauth_key_from_bytes(bytes, 32, &raw));
        ASSERT_EQ_INT(peerauth_key_from_bytes(bytes, 31, &raw), -EINVAL);
        ASSERT_EQ_INT(peerauth_key_from_bytes("short\n", 6, &raw), -EINVAL);
        /* 31 bytes plus whitespace padding are still 31 */
        ASSERT_EQ_INT(peerauth_key_from_bytes("0123456789012345678901234567890      ", 37, &raw), -EINVAL);
}

static void write_file(const char *path, const char *text, mode_t mode) {
        int fd;

        (void) unlink(path);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        ASSERT_TRUE(fd >= 0);
        ASSERT_EQ_INT(write(fd, text, strlen(text)), (long long) strlen(text));
        ASSERT_EQ_INT(fchmod(fd, mode), 0);
        close(fd);
}

TEST(key_file) {
        char path[256], *error = NULL;
        PeerAuthKey k, expect;

        key(KEY_A, &expect);
        snprintf(path, sizeof(path), "%s/authkey", tmpdir);

        write_file(path, KEY_A, 0640);
        ASSERT_OK(peerauth_key_load(path, &k, &error));
        ASSERT_TRUE(!error);
        ASSERT_EQ_INT(memcmp(k.bytes, expect.bytes, sizeof(k.bytes)), 0);

        /* world-readable: refused, naming the file */
        write_file(path, KEY_A, 0644);
        ASSERT_EQ_INT(peerauth_key_load(path, &k, &error), -EPERM);
        ASSERT_TRUE(error && strstr(error, path) && strstr(error, "readable by everyone"));
        free(error);
        error = NULL;

        /* too short */
        write_file(path, "abc\n", 0600);
        ASSERT_EQ_INT(peerauth_key_load(path, &k, &error), -EINVAL);
        ASSERT_TRUE(error && strstr(error, path) && strstr(error, "at least 32 bytes"));
        free(error);
        error = NULL;

        /* missing */
        ASSERT_EQ_INT(unlink(path), 0);
        ASSERT_EQ_INT(peerauth_key_load(path, &k, &error), -ENOENT);
        ASSERT_TRUE(error && strstr(error, path) && strstr(error, "cannot open"));
        free(error);
        error = NULL;

        /* a directory */
        ASSERT_EQ_INT(peerauth_key_load(tmpdir, &k, &error), -EINVAL);
        ASSERT_TRUE(error && strstr(error, "regular file"));
        free(error);
}

TEST(handshake_ok_and_lines) {
        PeerAuthKey ka;
        PeerAuth c, s;
        Buf wire = {};
        const char *reason = NULL;
        char *line;
        int side = 0;

        key(KEY_A, &ka);
        ASSERT_OK(handshake(&ka, &ka, &c, &s, &side));

        /* connector -> acceptor, several lines sealed at once, one partial left */
        ASSERT_OK(buf_append_str(&wire, "HEARTBEAT name=backup seq=1\nHEARTBEAT name=backup seq=2\npart"));
        {
                size_t end;
                ASSERT_OK(peerauth_seal(&c, &wire, 0, &end));
                ASSERT_EQ_U64(end, wire.len - 4);
                ASSERT_EQ_INT(memcmp(wire.data + end, "part", 4), 0);
                ASSERT_EQ_U64(c.send_seq, 2);
                wire.len = end;
        }
        ASSERT_OK(open_line(&s, &wire, &line, &reason));
        ASSERT_STREQ(line, "HEARTBEAT name=backup seq=1");
        free(line);
        ASSERT_OK(open_line(&s, &wire, &line, &reason));
        ASSERT_STREQ(line, "HEARTBEAT name=backup seq=2");
        free(line);

        /* acceptor -> connector; an empty payload and a '#' in the line are fine */
        seal(&s, "ENTRY 43 4 42 * \n", &wire);
        seal(&s, "ENTRY 44 4 42 * a #b #0000\n", &wire);
        ASSERT_OK(open_line(&c, &wire, &line, &reason));
        ASSERT_STREQ(line, "ENTRY 43 4 42 * ");
        free(line);
        ASSERT_OK(open_line(&c, &wire, &line, &reason));
        ASSERT_STREQ(line, "ENTRY 44 4 42 * a #b #0000");
        free(line);

        /* a line reflected back to its sender is refused (other direction key) */
        seal(&c, "PING\n", &wire);
        ASSERT_EQ_INT(open_line(&c, &wire, &line, &reason), -EACCES);
        free(line);

        buf_done(&wire);
        peerauth_done(&c);
        peerauth_done(&s);
}

/* peerauth-tag.c, for this test only */
void peerauth_poly1305_use_openssl(bool use);
bool peerauth_poly1305_openssl_active(void);

/* The tag is the ChaCha20-Poly1305 tag of nothing with the line as associated data, nonce dir | 0 0 0 | seq (doc/protocol.md),
 * computed here independently of peerauth-tag.c. */
static void expect_tag(const PeerAuth *sender, char dir, uint64_t seq, const char *content, const char *sealed) {
        uint8_t nonce[12] = { (uint8_t) dir }, tag[PEERAUTH_TAG_BYTES], none[1] = {};
        char hex[2 * PEERAUTH_TAG_BYTES + 1];
        unsigned long long tag_len = 0;
        _cleanup_(freep) char *want = NULL;

        for (unsigned i = 0; i < 8; i++)
                nonce[4 + i] = (uint8_t) (seq >> (56 - 8 * i));
        ASSERT_OK(crypto_aead_chacha20poly1305_ietf_encrypt_detached(none, tag, &tag_len, none, 0,
                                                                     (const unsigned char *) content, strlen(content),
                                                                     NULL, nonce, sender->send_key));
        ASSERT_EQ_U64(tag_len, sizeof(tag));
        /* and the AEAD's own check accepts it */
        ASSERT_OK(crypto_aead_chacha20poly1305_ietf_decrypt_detached(none, NULL, none, 0, tag,
                                                                     (const unsigned char *) content, strlen(content),
                                                                     nonce, sender->send_key));
        sodium_bin2hex(hex, sizeof(hex), tag, sizeof(tag));
        ASSERT_TRUE(asprintf(&want, "%s #%016" PRIx64 "%s", content, seq, hex) > 0);
        ASSERT_STREQ(sealed, want);
}

TEST(tag_is_chacha20_poly1305) {
        PeerAuthKey ka;
        PeerAuth c, s;
        Buf wire = {};
        char *line;
        size_t len;
        int side = 0;

        key(KEY_A, &ka);
        ASSERT_OK(handshake(&ka, &ka, &c, &s, &side));

        seal(&c, "HEARTBEAT name=backup seq=1\n", &wire);
        seal(&c, "\n", &wire);
        line = take_line(&wire, &len);
        expect_tag(&c, 'c', 0, "HEARTBEAT name=backup seq=1", line);
        free(line);
        line = take_line(&wire, &len);
        expect_tag(&c, 'c', 1, "", line);
        free(line);

        seal(&s, "ENTRY 7 2 6 id-7 payload\n", &wire);
        line = take_line(&wire, &len);
        expect_tag(&s, 's', 0, "ENTRY 7 2 6 id-7 payload", line);
        free(line);

        /* Every length across Poly1305's 16-byte padding, and long lines: peerauth-tag.c
         * builds the tag from ChaCha20 and Poly1305 itself, the AEAD call above is
         * the reference. */
        static const size_t lens[] = { 255, 256, 257, 511, 512, 513, 4095, 4096, 4097, 65519, 65520 };
        _cleanup_(freep) char *content = malloc(65521 + 1);
        ASSERT_TRUE(content);
        for (size_t i = 0; i < 65521; i++)
                content[i] = (char) ('!' + (i * 7919) % 90);
        for (size_t n = 0; n < 2 * (100 + ELEMENTSOF(lens)); n++) {
                size_t l = n % (100 + ELEMENTSOF(lens)) < 100 ? n % (100 + ELEMENTSOF(lens))
                                                              : lens[n % (100 + ELEMENTSOF(lens)) - 100];

                /* first with OpenSSL's Poly1305, then again with libsodium's (the fallback) */
                peerauth_poly1305_use_openssl(n < 100 + ELEMENTSOF(lens));
                char saved = content[l], saved_next = content[l + 1];

                content[l] = '\n';
                content[l + 1] = '\0';
                seal(&s, content, &wire);
                content[l] = '\0';
                line = take_line(&wire, &len);
                expect_tag(&s, 's', 1 + n, content, line);
                free(line);
                content[l] = saved;
                content[l + 1] = saved_next;
        }
        peerauth_poly1305_use_openssl(true);
        /* libcrypto.so.3 is there (libssl-dev pulls libssl3): the first half really ran on OpenSSL */
        ASSERT_TRUE(peerauth_poly1305_openssl_active());

        buf_done(&wire);
        peerauth_done(&c);
        peerauth_done(&s);
}

/* Random session keys and sequence numbers (every hex digit at every place of the
 * seq, nonces far from 0), both directions: the tag is still the AEAD's (peerauth-tag.c
 * computes ChaCha20's block 0 itself), and the receiver opens the line at that seq. */
TEST(tag_random_keys_and_seqs) {
        PeerAuthKey ka;
        PeerAuth c, s;
        Buf wire = {};
        const char *reason = NULL;
        char content[301];
        int side = 0;

        key(KEY_A, &ka);
        ASSERT_OK(handshake(&ka, &ka, &c, &s, &side));
        for (unsigned n = 0; n < 3000; n++) {
                PeerAuth *from = n % 2 ? &s : &c, *to = n % 2 ? &c : &s;
                size_t len = randombytes_uniform(sizeof(content) - 1), got;
                uint64_t seq;
                char *line;

                randombytes_buf(from->send_key, sizeof(from->send_key));
                memcpy(to->recv_key, from->send_key, sizeof(to->recv_key));
                randombytes_buf(&seq, sizeof(seq));
                if (n % 3 == 0)
                        seq >>= randombytes_uniform(64);   /* short ones too */
                if (seq == UINT64_MAX)
                        seq--;
                from->send_seq = to->recv_seq = seq;
                for (size_t i = 0; i < len; i++)
                        content[i] = (char) (' ' + randombytes_uniform(95));
                content[len] = '\n';
                content[len + 1] = '\0';
                seal(from, content, &wire);
                content[len] = '\0';
                line = take_line(&wire, &got);
                expect_tag(from, n % 2 ? 's' : 'c', seq, content, line);
                ASSERT_OK(peerauth_open(to, line, &got, &reason));
                ASSERT_EQ_U64(got, len);
                ASSERT_STREQ(line, content);
                ASSERT_EQ_U64(to->recv_seq, seq + 1);
                free(line);
        }
        buf_done(&wire);
        peerauth_done(&c);
        peerauth_done(&s);
}

/* Every other byte at every place of the suffix " #<seq><tag>": another lower-case hex
 * digit is a wrong tag (for the seq too: it is part of the nonce), anything else a
 * malformed suffix; either way nothing is consumed and the line stays as it was. */
TEST(suffix_every_byte) {
        PeerAuthKey ka;
        PeerAuth c, s, s_copy;
        Buf wire = {};
        const char *reason = NULL;
        char *line, *bad;
        size_t len;
        int side = 0;

        key(KEY_A, &ka);
        ASSERT_OK(handshake(&ka, &ka, &c, &s, &side));
        c.send_seq = s.recv_seq = UINT64_C(0x0123456789abcdef);
        seal(&c, "ENTRY 9 2 0 id-9 some payload\n", &wire);
        line = take_line(&wire, &len);
        ASSERT_EQ_U64(len, strlen("ENTRY 9 2 0 id-9 some payload") + PEERAUTH_LINE_OVERHEAD);
        bad = malloc(len + 1);
        ASSERT_TRUE(bad);
        for (size_t pos = len - PEERAUTH_LINE_OVERHEAD; pos < len; pos++)
                for (unsigned v = 0; v < 256; v++) {
                        bool hex = (v >= '0' && v <= '9') || (v >= 'a' && v <= 'f');
                        size_t blen = len;
                        int r;

                        if ((char) v == line[pos])
                                continue;
                        memcpy(bad, line, len + 1);
                        bad[pos] = (char) v;
                        s_copy = s;
                        r = peerauth_open(&s_copy, bad, &blen, &reason);
                        if (pos >= len - PEERAUTH_LINE_OVERHEAD + 2 && hex)
                                ASSERT_EQ_INT(r, -EACCES);
                        else
                                ASSERT_EQ_INT(r, -EBADMSG);
                        ASSERT_EQ_U64(blen, len);
                        ASSERT_EQ_U64(s_copy.recv_seq, s.recv_seq);
                        ASSERT_EQ_INT(memcmp(bad + pos + 1, line + pos + 1, len - pos), 0);
                }
        free(bad);
        ASSERT_OK(peerauth_open(&s, line, &len, &reason));
        ASSERT_STREQ(line, "ENTRY 9 2 0 id-9 some payload");
        ASSERT_EQ_U64(s.recv_seq, UINT64_C(0x0123456789abcdf0));
        free(line);
        buf_done(&wire);
        peerauth_done(&c);
        peerauth_done(&s);
}

/* Sealing many lines at once (in place, last line first) gives exactly the bytes of
 * sealing them one at a time: 300 lines of lengths 0..299, more than the 128 line
 * ends peerauth_seal() keeps on the stack, after a prefix and before a partial line. */
TEST(batch_equals_one_by_one) {
        PeerAuthKey ka;
        PeerAuth c, s, c2;
        Buf batch = {}, single = {};
        const char *reason = NULL;
        char *line;
        size_t end, len;
        int side = 0;

        key(KEY_A, &ka);
        ASSERT_OK(handshake(&ka, &ka, &c, &s, &side));
        c2 = c;

        ASSERT_OK(buf_append_str(&batch, "already sealed\n"));
        ASSERT_OK(buf_append_str(&single, "already sealed\n"));
        for (size_t i = 0; i < 300; i++) {
                for (size_t k = 0; k < i; k++)
                        ASSERT_OK(buf_append(&batch, &"abcdefghijklmnopqrstuvwxyz #"[(i + k) % 28], 1));
                ASSERT_OK(buf_append(&batch, "\n", 1));
        }
        ASSERT_OK(buf_append_str(&batch, "partial"));

        for (size_t pos = strlen("already sealed\n"); pos < batch.len;) {
                const char *nl = memchr(batch.data + pos, '\n', batch.len - pos);
                size_t from = single.len;

                if (!nl)
                        break;
                ASSERT_OK(buf_append(&single, batch.data + pos, (size_t) (nl - (batch.data + pos)) + 1));
                ASSERT_OK(peerauth_seal(&c2, &single, from, &end));
                ASSERT_EQ_U64(end, single.len);
                pos = (size_t) (nl - batch.data) + 1;
        }
        ASSERT_OK(buf_append_str(&single, "partial"));

        ASSERT_OK(peerauth_seal(&c, &batch, strlen("already sealed\n"), &end));
        ASSERT_EQ_U64(c.send_seq, 300);
        ASSERT_EQ_U64(c2.send_seq, 300);
        ASSERT_EQ_U64(batch.len, single.len);
        ASSERT_TRUE(memcmp(batch.data, single.data, batch.len) == 0);
        ASSERT_EQ_U64(end, batch.len - strlen("partial"));
        ASSERT_TRUE(batch.data[batch.len] == '\0');

        /* and the acceptor opens all 300 */
        buf_consume(&batch, strlen("already sealed\n"));
        batch.len -= strlen("partial");
        for (size_t i = 0; i < 300; i++) {
                ASSERT_OK(open_line(&s, &batch, &line, &reason));
                len = strlen(line);
                ASSERT_EQ_U64(len, i);
                free(line);
        }
        ASSERT_EQ_U64(batch.len, 0);

        buf_done(&batch);
        buf_done(&single);
        peerauth_done(&c);
        peerauth_done(&c2);
        peerauth_done(&s);
}

TEST(wrong_key_both_ways) {
        PeerAuthKey ka, kb;
        PeerAuth c, s;
        int side = 0;

        key(KEY_A, &ka);
        key(KEY_B, &kb);

        /* The connector finds out first: the acceptor's CHALLENGE MAC is wrong. */
        ASSERT_EQ_INT(handshake(&ka, &kb, &c, &s, &side), -EACCES);
        ASSERT_EQ_INT(side, 'c');
        ASSERT_EQ_INT(s.state, PEERAUTH_CHALLENGE_SENT);
        ASSERT_TRUE(!peerauth_established(&s));

        side = 0;
        ASSERT_EQ_INT(handshake(&kb, &ka, &c, &s, &side), -EACCES);
        ASSERT_EQ_INT(side, 'c');
}

TEST(forged_proof) {
        /* A connector without the key that sends a PROOF anyway (or replays one) is refused. */
        PeerAuthKey ka, kb;
        PeerAuth c1, s1, fake, s2;
        Buf wire = {};
        const char *reason = NULL;
        char *line, *proof;
        size_t len, proof_len;
        int side = 0;

        key(KEY_A, &ka);
        key(KEY_B, &kb);
        ASSERT_OK(handshake(&ka, &ka, &c1, &s1, &side));

        /* fake with key B: its PROOF does not verify under key A */
        ASSERT_OK(peerauth_hello(&fake, &kb, "primary", &wire));
        line = take_line(&wire, &len);
        ASSERT_OK(peerauth_on_hello(&s2, &ka, line, len, &wire, &reason));
        free(line);
        line = take_line(&wire, &len);
        /* it cannot check the challenge; it forges a PROOF of the right shape */
        free(line);
        proof = strdup("PROOF 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff");
        proof_len = strlen(proof);
        ASSERT_EQ_INT(peerauth_on_proof(&s2, proof, proof_len, &reason), -EACCES);
        ASSERT_STREQ(reason, "wrong key");
        ASSERT_EQ_INT(s2.state, PEERAUTH_FAILED);
        /* and nothing more is accepted on that connection */
        ASSERT_EQ_INT(peerauth_on_proof(&s2, proof, proof_len, &reason), -EBADMSG);
        free(proof);

        /* malformed handshake lines */
        ASSERT_EQ_INT(peerauth_on_hello(&s2, &ka, "HELLO-AUTH", 10, &wire, &reason), -EBADMSG);
        ASSERT_EQ_INT(peerauth_on_hello(&s2, &ka, "HELLO-AUTH a", 12, &wire, &reason), -EBADMSG);
        ASSERT_EQ_INT(peerauth_on_hello(&s2, &ka, "HELLO-AUTH a zz", 15, &wire, &reason), -EBADMSG);
        {
                char l[200];
                snprintf(l, sizeof(l), "HELLO-AUTH bad/name %064d", 0);
                ASSERT_EQ_INT(peerauth_on_hello(&s2, &ka, l, strlen(l), &wire, &reason), -EBADMSG);
                snprintf(l, sizeof(l), "HELLO-AUTH ok %064d extra", 0);
                ASSERT_EQ_INT(peerauth_on_hello(&s2, &ka, l, strlen(l), &wire, &reason), -EBADMSG);
                snprintf(l, sizeof(l), "HELLO-AUTH ok  %064d", 0);
                ASSERT_EQ_INT(peerauth_on_hello(&s2, &ka, l, strlen(l), &wire, &reason), -EBADMSG);
                snprintf(l, sizeof(l), "HELLO-AUTH ok %064d", 0);
                ASSERT_OK(peerauth_on_hello(&s2, &ka, l, strlen(l), &wire, &reason));
        }
        ASSERT_TRUE(peerauth_is_hello("HELLO-AUTH x", 12));
        ASSERT_TRUE(!peerauth_is_hello("HELLO-AUTHX", 11));
        ASSERT_TRUE(!peerauth_is_hello("PING", 4));

        buf_done(&wire);
}

TEST(tampered_replayed_reordered_truncated) {
        PeerAuthKey ka;
        PeerAuth c, s, s_copy;
        Buf wire = {};
        const char *reason = NULL;
        char *line, *l1, *l2;
        size_t len, n1, n2;
        int side = 0;

        key(KEY_A, &ka);
        ASSERT_OK(handshake(&ka, &ka, &c, &s, &side));

        seal(&c, "HEARTBEAT name=primary role=primary term=3\n", &wire);
        seal(&c, "HEARTBEAT name=primary role=primary term=4\n", &wire);
        l1 = take_line(&wire, &n1);
        l2 = take_line(&wire, &n2);

        /* tampered: one byte of the content changed */
        s_copy = s;
        line = strdup(l1);
        len = n1;
        line[strlen("HEARTBEAT name=primary role=primary term=")] = '9';
        ASSERT_EQ_INT(peerauth_open(&s_copy, line, &len, &reason), -EACCES);
        ASSERT_EQ_U64(len, n1);            /* nothing stripped */
        ASSERT_EQ_U64(s_copy.recv_seq, 0); /* nothing consumed */
        free(line);

        /* tampered tag, tampered seq */
        line = strdup(l1);
        len = n1;
        line[n1 - 1] = line[n1 - 1] == '0' ? '1' : '0';
        ASSERT_EQ_INT(peerauth_open(&s_copy, line, &len, &reason), -EACCES);
        free(line);
        line = strdup(l1);
        len = n1;
        line[n1 - 33] = '1';   /* last digit of seq 0 */
        ASSERT_EQ_INT(peerauth_open(&s_copy, line, &len, &reason), -EACCES);
        free(line);

        /* reordered: the second line first */
        s_copy = s;
        line = strdup(l2);
        len = n2;
        ASSERT_EQ_INT(peerauth_open(&s_copy, line, &len, &reason), -EPROTO);
        ASSERT_TRUE(strstr(reason, "reordered"));
        free(line);

        /* in order: fine; then the first again: a replay */
        line = strdup(l1);
        len = n1;
        ASSERT_OK(peerauth_open(&s, line, &len, &reason));
        ASSERT_STREQ(line, "HEARTBEAT name=primary role=primary term=3");
        free(line);
        line = strdup(l1);
        len = n1;
        ASSERT_EQ_INT(peerauth_open(&s, line, &len, &reason), -EPROTO);
        ASSERT_TRUE(strstr(reason, "replayed"));
        free(line);

        /* truncated MAC: one hex digit missing, or the whole suffix */
        line = strdup(l2);
        len = n2 - 1;
        line[len] = '\0';
        ASSERT_TRUE(peerauth_open(&s, line, &len, &reason) < 0);
        free(line);
        line = strdup(l2);
        len = n2 - PEERAUTH_LINE_OVERHEAD;
        line[len] = '\0';
        ASSERT_EQ_INT(peerauth_open(&s, line, &len, &reason), -EBADMSG);
        free(line);
        line = strdup("PING");
        len = 4;
        ASSERT_EQ_INT(peerauth_open(&s, line, &len, &reason), -EBADMSG);
        ASSERT_STREQ(reason, "line without authentication tag");
        free(line);
        /* non-hex tag of the right length */
        line = strdup(l2);
        len = n2;
        line[n2 - 5] = 'g';
        ASSERT_EQ_INT(peerauth_open(&s, line, &len, &reason), -EBADMSG);
        free(line);

        /* the second line is still good after all the refusals */
        line = strdup(l2);
        len = n2;
        ASSERT_OK(peerauth_open(&s, line, &len, &reason));
        ASSERT_STREQ(line, "HEARTBEAT name=primary role=primary term=4");
        free(line);

        /* a line from another session (same key, other nonces) is refused */
        {
                PeerAuth c2, s2;
                Buf w2 = {};

                ASSERT_OK(handshake(&ka, &ka, &c2, &s2, &side));
                seal(&c2, "HEARTBEAT name=primary role=primary term=5\n", &w2);
                line = take_line(&w2, &len);
                ASSERT_EQ_INT(peerauth_open(&s, line, &len, &reason), -EACCES);
                free(line);
                buf_done(&w2);
        }

        free(l1);
        free(l2);
        buf_done(&wire);
}

TEST(oversized) {
        PeerAuthKey ka;
        PeerAuth c, s;
        Buf wire = {};
        const char *reason = NULL;
        size_t big = 1024 * 1024, len;
        char *text, *line;
        int side = 0;

        key(KEY_A, &ka);
        ASSERT_OK(handshake(&ka, &ka, &c, &s, &side));

        /* a 1 MiB line round-trips; the overhead is exactly PEERAUTH_LINE_OVERHEAD */
        text = malloc(big + 2);
        ASSERT_TRUE(text);
        memset(text, 'x', big);
        text[big] = '\n';
        text[big + 1] = '\0';
        seal(&c, text, &wire);
        ASSERT_EQ_U64(wire.len, big + PEERAUTH_LINE_OVERHEAD + 1);
        line = take_line(&wire, &len);
        ASSERT_OK(peerauth_open(&s, line, &len, &reason));
        ASSERT_EQ_U64(len, big);
        free(line);

        /* an oversized handshake line is malformed, whatever it holds */
        memset(text, 'a', big);
        memcpy(text, "HELLO-AUTH ", 11);
        ASSERT_EQ_INT(peerauth_on_hello(&s, &ka, text, big, &wire, &reason), -EBADMSG);
        memcpy(text, "CHALLENGE ", 10);
        c.state = PEERAUTH_HELLO_SENT;
        ASSERT_EQ_INT(peerauth_on_challenge(&c, text, big, &wire, &reason), -EBADMSG);

        free(text);
        buf_done(&wire);
}

TEST(token) {
        Config *c;
        char *t = NULL, *error = NULL, path[256];

        ASSERT_TRUE(client_token_equal("secret", 6, "secret", 6));
        ASSERT_TRUE(!client_token_equal("secret", 6, "secreT", 6));
        ASSERT_TRUE(!client_token_equal("secret", 6, "secret2", 7));
        ASSERT_TRUE(!client_token_equal("", 0, "x", 1));
        ASSERT_TRUE(client_token_is_valid("a", 1));
        ASSERT_TRUE(!client_token_is_valid("a b", 3));
        ASSERT_TRUE(!client_token_is_valid("", 0));
        ASSERT_TRUE(!client_token_is_valid("\x01", 1));

        ASSERT_OK(config_new_default(&c));
        ASSERT_OK(client_token_load(c, &t, &error));
        ASSERT_TRUE(!t);

        c->client_token = strdup("inline-token");
        ASSERT_OK(client_token_load(c, &t, &error));
        ASSERT_STREQ(t, "inline-token");
        free(t);
        free(c->client_token);
        c->client_token = NULL;

        snprintf(path, sizeof(path), "%s/token", tmpdir);
        write_file(path, "file-token \n# ignored\n", 0600);
        c->client_token_file = strdup(path);
        ASSERT_OK(client_token_load(c, &t, &error));
        ASSERT_STREQ(t, "file-token");
        free(t);

        write_file(path, "two words\n", 0600);
        ASSERT_EQ_INT(client_token_load(c, &t, &error), -EINVAL);
        ASSERT_TRUE(error && strstr(error, path));
        free(error);
        error = NULL;
        ASSERT_EQ_INT(unlink(path), 0);
        ASSERT_EQ_INT(client_token_load(c, &t, &error), -ENOENT);
        ASSERT_TRUE(error && strstr(error, "cannot read the client token"));
        free(error);
        config_free(c);
}

/* Upper-case hex in a handshake line or a line's suffix, or a NUL inside a
 * HELLO-AUTH name or the token file's first line: all refused. (Found by
 * tests/fuzz/fuzz-peerauth-*: sodium_hex2bin() also takes upper case, so a
 * sealed line could be respelled and still open; "ab\0c" passed as "ab".) */
static bool upcase_first_letter(char *s, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (s[i] >= 'a' && s[i] <= 'f') {
                        s[i] = (char) (s[i] - 'a' + 'A');
                        return true;
                }
        return false;
}

TEST(canonical_encoding) {
        PeerAuthKey ka;
        PeerAuth c, s, c2, s2;
        Buf wire = {};
        const char *reason = NULL;
        char *hello, *challenge, *proof, *line, *bad;
        size_t hello_len, challenge_len, proof_len, len;

        key(KEY_A, &ka);
        ASSERT_OK(peerauth_hello(&c, &ka, "backup", &wire));
        hello = take_line(&wire, &hello_len);
        ASSERT_OK(peerauth_on_hello(&s, &ka, hello, hello_len, &wire, &reason));
        challenge = take_line(&wire, &challenge_len);

        /* the CHALLENGE with one hex letter of its MAC in upper case */
        bad = strdup(challenge);
        ASSERT_TRUE(upcase_first_letter(bad + 75, 64));
        c2 = c;
        ASSERT_EQ_INT(peerauth_on_challenge(&c2, bad, challenge_len, &wire, &reason), -EBADMSG);
        ASSERT_STREQ(reason, "malformed CHALLENGE");
        ASSERT_EQ_U64(wire.len, 0);
        free(bad);
        /* ... or of its nonce */
        bad = strdup(challenge);
        ASSERT_TRUE(upcase_first_letter(bad + 10, 64));
        c2 = c;
        ASSERT_EQ_INT(peerauth_on_challenge(&c2, bad, challenge_len, &wire, &reason), -EBADMSG);
        free(bad);

        ASSERT_OK(peerauth_on_challenge(&c, challenge, challenge_len, &wire, &reason));
        proof = take_line(&wire, &proof_len);
        bad = strdup(proof);
        ASSERT_TRUE(upcase_first_letter(bad + 6, 64));
        s2 = s;
        ASSERT_EQ_INT(peerauth_on_proof(&s2, bad, proof_len, &reason), -EBADMSG);
        ASSERT_STREQ(reason, "malformed PROOF");
        ASSERT_TRUE(!peerauth_established(&s2));
        free(bad);
        ASSERT_OK(peerauth_on_proof(&s, proof, proof_len, &reason));

        /* a sealed line with one hex letter of its tag in upper case */
        seal(&c, "HEARTBEAT name=backup role=backup term=3\n", &wire);
        line = take_line(&wire, &len);
        bad = strdup(line);
        ASSERT_TRUE(upcase_first_letter(bad + len - 32, 32));
        {
                size_t blen = len;

                ASSERT_EQ_INT(peerauth_open(&s, bad, &blen, &reason), -EBADMSG);
                ASSERT_EQ_U64(blen, len);
                ASSERT_EQ_U64(s.recv_seq, 0);
        }
        free(bad);
        ASSERT_OK(peerauth_open(&s, line, &len, &reason));
        ASSERT_STREQ(line, "HEARTBEAT name=backup role=backup term=3");
        free(line);

        /* the HELLO-AUTH nonce in upper case; a NUL in the name */
        bad = strdup(hello);
        ASSERT_TRUE(upcase_first_letter(bad + strlen("HELLO-AUTH backup "), 64));
        ASSERT_EQ_INT(peerauth_on_hello(&s2, &ka, bad, hello_len, &wire, &reason), -EBADMSG);
        free(bad);
        {
                char l[200];
                int n = snprintf(l, sizeof(l), "HELLO-AUTH ab_c %064d", 0);

                l[13] = '\0';
                ASSERT_EQ_INT(peerauth_on_hello(&s2, &ka, l, (size_t) n, &wire, &reason), -EBADMSG);
                ASSERT_STREQ(reason, "bad name in HELLO-AUTH");
                ASSERT_EQ_INT(s2.state, PEERAUTH_FAILED);
                ASSERT_EQ_U64(wire.len, 0);
        }

        /* a NUL in the token file's first line */
        {
                Config *cfg;
                char path[256], *t = NULL, *error = NULL;
                int fd;

                snprintf(path, sizeof(path), "%s/token-nul", tmpdir);
                fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
                ASSERT_TRUE(fd >= 0);
                ASSERT_EQ_INT(write(fd, "abc\0def\n", 8), 8);
                close(fd);
                ASSERT_OK(config_new_default(&cfg));
                cfg->client_token_file = strdup(path);
                ASSERT_EQ_INT(client_token_load(cfg, &t, &error), -EINVAL);
                ASSERT_TRUE(!t);
                ASSERT_TRUE(error && strstr(error, path));
                free(error);
                ASSERT_EQ_INT(unlink(path), 0);
                config_free(cfg);
        }

        free(hello);
        free(challenge);
        free(proof);
        buf_done(&wire);
}

TEST(ratelimit) {
        RateLimit rl = RATELIMIT_INIT(1000, 3);
        unsigned suppressed = 99;

        ASSERT_TRUE(ratelimit_pass(&rl, 10, &suppressed));
        ASSERT_EQ_INT(suppressed, 0);
        ASSERT_TRUE(ratelimit_pass(&rl, 20, &suppressed));
        ASSERT_TRUE(ratelimit_pass(&rl, 30, &suppressed));
        ASSERT_TRUE(!ratelimit_pass(&rl, 40, &suppressed));
        ASSERT_TRUE(!ratelimit_pass(&rl, 1009, &suppressed));
        ASSERT_TRUE(ratelimit_pass(&rl, 1010, &suppressed));
        ASSERT_EQ_INT(suppressed, 2);
        ASSERT_TRUE(ratelimit_pass(&rl, 1011, &suppressed));
        ASSERT_EQ_INT(suppressed, 0);
}

int main(void) {
        ASSERT_OK(peerauth_init());
        ASSERT_TRUE(mkdtemp(tmpdir));

        RUN(key_material);
        RUN(key_file);
        RUN(handshake_ok_and_lines);
        RUN(tag_is_chacha20_poly1305);
        RUN(tag_random_keys_and_seqs);
        RUN(suffix_every_byte);
        RUN(batch_equals_one_by_one);
        RUN(wrong_key_both_ways);
        RUN(forged_proof);
        RUN(tampered_replayed_reordered_truncated);
        RUN(oversized);
        RUN(token);
        RUN(canonical_encoding);
        RUN(ratelimit);

        (void) rmdir(tmpdir);
        return 0;
}
