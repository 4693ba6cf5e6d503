/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-peerauth.h — what the peerauth targets share: libsodium's random
 * source replaced by one the input controls (nonces chosen by the fuzzer, and
 * every input reproducible), two fixed cluster keys, a real handshake between
 * two in-memory peers, and line mutations that always change the line.
 */
#pragma once

#include <sodium.h>

#include "fuzz.h"
#include "peerauth.h"
#include "util.h"

#define FUZZ_KEY_A "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n"
#define FUZZ_KEY_B "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210\n"

/* ---- random source ---- */

/* randombytes_buf() hands out these bytes first, then a counter stream. */
static uint8_t fuzz_rng_queue[4 * PEERAUTH_NONCE_BYTES];
static size_t fuzz_rng_len, fuzz_rng_pos;
static uint64_t fuzz_rng_counter;

static inline void fuzz_rng_set(const uint8_t *p, size_t n) {
        FUZZ_CHECK(n <= sizeof fuzz_rng_queue);
        if (n > 0)
                memcpy(fuzz_rng_queue, p, n);
        fuzz_rng_len = n;
        fuzz_rng_pos = 0;
        fuzz_rng_counter = 0;
}

static inline void fuzz_rng_buf(void *const buf, const size_t size) {
        uint8_t *out = buf;

        for (size_t i = 0; i < size; i++) {
                if (fuzz_rng_pos < fuzz_rng_len)
                        out[i] = fuzz_rng_queue[fuzz_rng_pos++];
                else
                        out[i] = (uint8_t) (0x9e ^ (fuzz_rng_counter++ * 0x3b));
        }
}

static inline uint32_t fuzz_rng_random(void) {
        uint32_t v;

        fuzz_rng_buf(&v, sizeof v);
        return v;
}

static inline const char *fuzz_rng_name(void) {
        return "fuzz";
}

static randombytes_implementation fuzz_rng = {
        .implementation_name = fuzz_rng_name,
        .random = fuzz_rng_random,
        .buf = fuzz_rng_buf,
};

static PeerAuthKey fuzz_key_a, fuzz_key_b;

/* Once per process: the random source (before sodium_init), then peerauth_init and the keys. */
static inline void fuzz_peerauth_setup(void) {
        static bool done;

        if (done)
                return;
        FUZZ_CHECK(randombytes_set_implementation(&fuzz_rng) == 0);
        FUZZ_CHECK(peerauth_init() == 0);
        FUZZ_CHECK(peerauth_key_from_bytes(FUZZ_KEY_A, strlen(FUZZ_KEY_A), &fuzz_key_a) == 0);
        FUZZ_CHECK(peerauth_key_from_bytes(FUZZ_KEY_B, strlen(FUZZ_KEY_B), &fuzz_key_b) == 0);
        FUZZ_CHECK(memcmp(fuzz_key_a.bytes, fuzz_key_b.bytes, PEERAUTH_KEY_BYTES) != 0);
        done = true;
}

/* ---- lines ---- */

/* Take the one complete line of b (without '\n') as an exact-size malloc'd
 * string, and empty b. b must hold exactly one line. */
static inline char *fuzz_take_line(Buf *b, size_t *ret_len) {
        char *nl;
        char *s;
        size_t n;

        FUZZ_CHECK(b->len >= 1 && b->data[b->len - 1] == '\n');
        nl = memchr(b->data, '\n', b->len);
        FUZZ_CHECK(nl == b->data + b->len - 1);
        n = b->len - 1;
        s = fuzz_strndup((const uint8_t *) b->data, n);
        buf_clear(b);
        *ret_len = n;
        return s;
}

static inline bool fuzz_is_lower_hex(const char *s, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
                        return false;
        return true;
}

/* A mutation of a line, from 4 input bytes; the result always differs from
 * the line (another byte, one byte fewer, one more, or a prefix). */
typedef struct FuzzMutation {
        uint8_t kind;
        uint16_t pos;
        uint8_t value;
} FuzzMutation;

static inline FuzzMutation fuzz_mutation(FuzzInput *in) {
        FuzzMutation m;

        m.kind = fuzz_byte(in);
        m.pos = fuzz_u16(in);
        m.value = fuzz_byte(in);
        return m;
}

/* malloc'd, exact size + NUL; *ret_len its length. */
static inline char *fuzz_mutate(const char *line, size_t len, FuzzMutation m, size_t *ret_len) {
        char *out = malloc(len + 2);
        size_t pos, n;

        FUZZ_CHECK(out);
        memcpy(out, line, len);
        switch (len == 0 ? 2 : m.kind % 4) {
        case 0: /* change one byte */
                pos = m.pos % len;
                out[pos] = (char) (out[pos] ^ (m.value ? m.value : 1));
                n = len;
                break;
        case 1: /* delete one byte */
                pos = m.pos % len;
                memmove(out + pos, out + pos + 1, len - pos - 1);
                n = len - 1;
                break;
        case 2: /* insert one byte */
                pos = m.pos % (len + 1);
                memmove(out + pos + 1, out + pos, len - pos);
                out[pos] = (char) m.value;
                n = len + 1;
                break;
        default: /* cut to a strict prefix */
                n = m.pos % len;
                break;
        }
        out[n] = '\0';
        FUZZ_CHECK(n != len || memcmp(out, line, len) != 0);
        *ret_len = n;
        return out;
}

/* ---- a real handshake ---- */

typedef struct FuzzHandshake {
        PeerAuth c, s;              /* connector, acceptor */
        char *hello, *challenge, *proof;
        size_t hello_len, challenge_len, proof_len;
} FuzzHandshake;

static inline void fuzz_handshake_done(FuzzHandshake *h) {
        free(h->hello);
        free(h->challenge);
        free(h->proof);
        peerauth_done(&h->c);
        peerauth_done(&h->s);
        *h = (FuzzHandshake) {};
}

/* Connector "name" with nonce nc, acceptor with nonce ns, both holding key:
 * every step must succeed and leave both ends established with matching
 * session keys. The lines sent are kept in h. */
static inline void fuzz_handshake(FuzzHandshake *h, const char *name, const uint8_t nc[PEERAUTH_NONCE_BYTES],
                           const uint8_t ns[PEERAUTH_NONCE_BYTES], const PeerAuthKey *key) {
        const char *reason = NULL;
        Buf wire = {};

        *h = (FuzzHandshake) {};
        fuzz_rng_set(nc, PEERAUTH_NONCE_BYTES);
        FUZZ_CHECK(peerauth_hello(&h->c, key, name, &wire) == 0);
        FUZZ_CHECK(h->c.state == PEERAUTH_HELLO_SENT && !h->c.acceptor);
        FUZZ_CHECK(memcmp(h->c.nc, nc, PEERAUTH_NONCE_BYTES) == 0);
        h->hello = fuzz_take_line(&wire, &h->hello_len);
        FUZZ_CHECK(peerauth_is_hello(h->hello, h->hello_len));

        fuzz_rng_set(ns, PEERAUTH_NONCE_BYTES);
        FUZZ_CHECK(peerauth_on_hello(&h->s, key, h->hello, h->hello_len, &wire, &reason) == 0);
        FUZZ_CHECK(h->s.state == PEERAUTH_CHALLENGE_SENT && h->s.acceptor);
        FUZZ_CHECK(strcmp(h->s.name, name) == 0);
        FUZZ_CHECK(memcmp(h->s.nc, nc, PEERAUTH_NONCE_BYTES) == 0);
        FUZZ_CHECK(memcmp(h->s.ns, ns, PEERAUTH_NONCE_BYTES) == 0);
        h->challenge = fuzz_take_line(&wire, &h->challenge_len);
        FUZZ_CHECK(h->challenge_len == 10 + 64 + 1 + 64 && memcmp(h->challenge, "CHALLENGE ", 10) == 0);
        FUZZ_CHECK(fuzz_is_lower_hex(h->challenge + 10, 64) && h->challenge[74] == ' ' &&
                   fuzz_is_lower_hex(h->challenge + 75, 64));

        FUZZ_CHECK(peerauth_on_challenge(&h->c, h->challenge, h->challenge_len, &wire, &reason) == 0);
        FUZZ_CHECK(peerauth_established(&h->c));
        h->proof = fuzz_take_line(&wire, &h->proof_len);
        FUZZ_CHECK(h->proof_len == 6 + 64 && memcmp(h->proof, "PROOF ", 6) == 0 &&
                   fuzz_is_lower_hex(h->proof + 6, 64));

        FUZZ_CHECK(peerauth_on_proof(&h->s, h->proof, h->proof_len, &reason) == 0);
        FUZZ_CHECK(peerauth_established(&h->s));

        /* One key per direction, the same on both ends; the long-term key is gone. */
        FUZZ_CHECK(memcmp(h->c.send_key, h->s.recv_key, PEERAUTH_KEY_BYTES) == 0);
        FUZZ_CHECK(memcmp(h->s.send_key, h->c.recv_key, PEERAUTH_KEY_BYTES) == 0);
        FUZZ_CHECK(memcmp(h->c.send_key, h->c.recv_key, PEERAUTH_KEY_BYTES) != 0);
        FUZZ_CHECK(sodium_is_zero(h->c.key, PEERAUTH_KEY_BYTES) && sodium_is_zero(h->s.key, PEERAUTH_KEY_BYTES));
        FUZZ_CHECK(h->c.send_seq == 0 && h->c.recv_seq == 0 && h->s.send_seq == 0 && h->s.recv_seq == 0);
        buf_done(&wire);
}

/* Name bytes mapped onto the characters name_is_valid() allows, 1..NAME_MAX_LEN of them. */
static inline void fuzz_valid_name(FuzzInput *in, char name[NAME_MAX_LEN + 1]) {
        static const char chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-";
        size_t n = 1 + fuzz_byte(in) % NAME_MAX_LEN;

        for (size_t i = 0; i < n; i++)
                name[i] = chars[fuzz_byte(in) % (sizeof chars - 1)];
        name[n] = '\0';
        FUZZ_CHECK(name_is_valid(name));
}

static inline void fuzz_nonce(FuzzInput *in, uint8_t out[PEERAUTH_NONCE_BYTES]) {
        for (size_t i = 0; i < PEERAUTH_NONCE_BYTES; i++)
                out[i] = fuzz_byte(in);
}
