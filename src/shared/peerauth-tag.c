/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * peerauth-tag — the per-line tag of an established peerauth link and the
 * sealing and opening of lines with it (see peerauth.h and doc/security.md):
 * ChaCha20 block 0 for the one-time key, Poly1305 through OpenSSL (dlopen()ed)
 * or libsodium, the constant-time hex spelling and comparison of the suffix.
 * The key, the handshake that derives the session keys and the client token
 * are in peerauth.c.
 */
#include <assert.h>
#include <dlfcn.h>
#include <endian.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "peerauth-internal.h"
#include "peerauth.h"

#define SEQ_HEX 16
#define TAG_HEX (2 * PEERAUTH_TAG_BYTES)
static_assert(2 + SEQ_HEX + TAG_HEX == PEERAUTH_LINE_OVERHEAD, "sealed line suffix: \" #\" seq tag");

static_assert(PEERAUTH_TAG_BYTES == crypto_aead_chacha20poly1305_IETF_ABYTES, "line tag: a Poly1305 tag");
static_assert(PEERAUTH_KEY_BYTES == crypto_aead_chacha20poly1305_IETF_KEYBYTES, "line tag: a ChaCha20 key");
static_assert(crypto_aead_chacha20poly1305_IETF_NPUBBYTES == 12, "line tag: nonce = dir | 0 0 0 | seq");
static_assert(crypto_stream_chacha20_ietf_NONCEBYTES == 12, "line tag: the AEAD's nonce");
static_assert(crypto_onetimeauth_poly1305_BYTES == PEERAUTH_TAG_BYTES, "line tag: a Poly1305 tag");

/* tag = the ChaCha20-Poly1305 (IETF, RFC 8439) tag of an empty message with
 * the line as associated data, under key, nonce = dir | 0 0 0 | seq (big
 * endian): a Poly1305 MAC of the line with a one-time key that ChaCha20
 * derives from (key, dir, seq). The length of the line is part of what
 * Poly1305 covers.
 *
 * Built here from its two parts, the first ChaCha20 block (chacha20_block0_key()),
 * then Poly1305 over line | zero padding to 16 | le64(len) | le64(0), rather than
 * by calling crypto_aead_chacha20poly1305_ietf_encrypt_detached(). Every line
 * of replication and heartbeats is sealed, and on long lines the Poly1305
 * pass is the cost: OpenSSL's (EVP_MAC "POLY1305", AVX2/AVX-512 code) takes
 * 0.36 us for 4 KiB here, libsodium's 0.87 us one-shot and 2.3 us
 * incrementally; the whole 4 KiB tag went from 1.35 us (the AEAD call) to
 * ~0.5 us, and a primary at 64 clients x 4 KiB from 23 to 21 us of server
 * CPU per write.
 *
 * libcrypto is dlopen()ed at the first line of POLY1305_OPENSSL_MIN bytes or
 * more, not linked: loaded and initialised it adds ~3 MiB to a process's RSS,
 * which a server that only exchanges heartbeats (or short entries) does not
 * need. Without it (not installed, no POLY1305 in its providers, no memory)
 * libsodium's Poly1305 computes the same tag. test-peerauth checks both
 * against the AEAD call. */
#define POLY1305_OPENSSL_MIN 256

static struct {
        typeof(OPENSSL_init_crypto) *init_crypto;
        typeof(EVP_MAC_fetch) *mac_fetch;
        typeof(EVP_MAC_free) *mac_free;
        typeof(EVP_MAC_CTX_new) *ctx_new;
        typeof(EVP_MAC_init) *init;
        typeof(EVP_MAC_update) *update;
        typeof(EVP_MAC_final) *final;
        bool loaded;
} libcrypto;
static pthread_once_t libcrypto_once = PTHREAD_ONCE_INIT;
static _Thread_local EVP_MAC_CTX *poly1305_ctx;
static _Thread_local bool poly1305_unavailable;

static void libcrypto_load(void) {
        void *dl = dlopen("libcrypto.so.3", RTLD_NOW | RTLD_LOCAL);

        if (!dl)
                return;
        libcrypto.init_crypto = (typeof(libcrypto.init_crypto)) dlsym(dl, "OPENSSL_init_crypto");
        libcrypto.mac_fetch = (typeof(libcrypto.mac_fetch)) dlsym(dl, "EVP_MAC_fetch");
        libcrypto.mac_free = (typeof(libcrypto.mac_free)) dlsym(dl, "EVP_MAC_free");
        libcrypto.ctx_new = (typeof(libcrypto.ctx_new)) dlsym(dl, "EVP_MAC_CTX_new");
        libcrypto.init = (typeof(libcrypto.init)) dlsym(dl, "EVP_MAC_init");
        libcrypto.update = (typeof(libcrypto.update)) dlsym(dl, "EVP_MAC_update");
        libcrypto.final = (typeof(libcrypto.final)) dlsym(dl, "EVP_MAC_final");
        if (!libcrypto.init_crypto || !libcrypto.mac_fetch || !libcrypto.mac_free || !libcrypto.ctx_new ||
            !libcrypto.init || !libcrypto.update || !libcrypto.final ||
            /* no openssl.cnf: nothing in it concerns a bare Poly1305 */
            libcrypto.init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG, NULL) != 1) {
                dlclose(dl);
                return;
        }
        libcrypto.loaded = true;        /* never unloaded */
}

/* Not in peerauth.h: for test-peerauth, which checks both ways of computing the tag. */
void peerauth_poly1305_use_openssl(bool use);
bool peerauth_poly1305_openssl_active(void);
void peerauth_poly1305_use_openssl(bool use) {
        poly1305_unavailable = !use;
}
bool peerauth_poly1305_openssl_active(void) {
        return poly1305_ctx && !poly1305_unavailable;
}

static EVP_MAC_CTX *poly1305_openssl(void) {
        if (poly1305_unavailable)
                return NULL;
        if (poly1305_ctx)
                return poly1305_ctx;
        (void) pthread_once(&libcrypto_once, libcrypto_load);
        if (libcrypto.loaded) {
                EVP_MAC *mac = libcrypto.mac_fetch(NULL, "POLY1305", NULL);

                if (mac)
                        poly1305_ctx = libcrypto.ctx_new(mac);
                libcrypto.mac_free(mac);        /* the context keeps its own reference */
        }
        poly1305_unavailable = !poly1305_ctx;
        return poly1305_ctx;
}

static uint32_t load_le32(const uint8_t *p) {
        uint32_t v;

        memcpy(&v, p, sizeof(v));
        return le32toh(v);
}

static uint32_t rotl32(uint32_t v, unsigned n) {
        return (v << n) | (v >> (32 - n));
}

static void chacha20_quarter_round(uint32_t x[16], unsigned a, unsigned b, unsigned c, unsigned d) {
        x[a] += x[b];
        x[d] = rotl32(x[d] ^ x[a], 16);
        x[c] += x[d];
        x[b] = rotl32(x[b] ^ x[c], 12);
        x[a] += x[b];
        x[d] = rotl32(x[d] ^ x[a], 8);
        x[c] += x[d];
        x[b] = rotl32(x[b] ^ x[c], 7);
}

/* The first 32 bytes of ChaCha20 block 0 (RFC 8439 2.3, counter 0): the one-time
 * Poly1305 key of RFC 8439 2.6. One block in plain C takes about half the time of
 * libsodium's crypto_stream_chacha20_ietf(), which is built for long streams (once
 * per line, for every line both ways). test-peerauth checks it against libsodium's
 * AEAD for random keys and sequence numbers. */
static void chacha20_block0_key(const uint8_t key[PEERAUTH_KEY_BYTES], const uint8_t nonce[12],
                                uint8_t out[32]) {
        uint32_t in[16] = { 0x61707865, 0x3320646e, 0x79622d32, 0x6b206574 }, x[16];

        for (unsigned i = 0; i < 8; i++)
                in[4 + i] = load_le32(key + 4 * i);
        in[12] = 0;
        for (unsigned i = 0; i < 3; i++)
                in[13 + i] = load_le32(nonce + 4 * i);
        memcpy(x, in, sizeof(x));
        for (unsigned i = 0; i < 10; i++) {
                chacha20_quarter_round(x, 0, 4, 8, 12);
                chacha20_quarter_round(x, 1, 5, 9, 13);
                chacha20_quarter_round(x, 2, 6, 10, 14);
                chacha20_quarter_round(x, 3, 7, 11, 15);
                chacha20_quarter_round(x, 0, 5, 10, 15);
                chacha20_quarter_round(x, 1, 6, 11, 12);
                chacha20_quarter_round(x, 2, 7, 8, 13);
                chacha20_quarter_round(x, 3, 4, 9, 14);
        }
        for (unsigned i = 0; i < 8; i++) {
                uint32_t v = htole32(x[i] + in[i]);

                memcpy(out + 4 * i, &v, sizeof(v));
        }
        sodium_memzero(x, sizeof(x));
        sodium_memzero(in, sizeof(in));
}

static void line_tag(const uint8_t key[PEERAUTH_KEY_BYTES], char dir, uint64_t seq, const char *line, size_t len,
                     uint8_t out[PEERAUTH_TAG_BYTES]) {
        uint8_t nonce[crypto_stream_chacha20_ietf_NONCEBYTES] = { (uint8_t) dir };
        /* After the line: zeros up to a multiple of 16, then le64(len of the line), le64(0). */
        uint8_t block0[32], tail[32] = {};
        size_t pad = (16 - (len & 15)) & 15, tag_len = 0;
        const uint8_t *padded = tail + 16 - pad;
        crypto_onetimeauth_poly1305_state st;
        EVP_MAC_CTX *ctx;

        for (unsigned i = 0; i < 8; i++) {
                nonce[4 + i] = (uint8_t) (seq >> (56 - 8 * i));
                tail[16 + i] = (uint8_t) ((uint64_t) len >> (8 * i));
        }
        /* The one-time key is the first 32 bytes of block 0. */
        chacha20_block0_key(key, nonce, block0);

        ctx = len >= POLY1305_OPENSSL_MIN ? poly1305_openssl() : NULL;
        if (ctx && libcrypto.init(ctx, block0, crypto_onetimeauth_poly1305_KEYBYTES, NULL) == 1 &&
            libcrypto.update(ctx, (const unsigned char *) line, len) == 1 &&
            libcrypto.update(ctx, padded, pad + 16) == 1 &&
            libcrypto.final(ctx, out, &tag_len, PEERAUTH_TAG_BYTES) == 1 && tag_len == PEERAUTH_TAG_BYTES) {
                sodium_memzero(block0, sizeof(block0));
                return;
        }

        (void) crypto_onetimeauth_poly1305_init(&st, block0);
        (void) crypto_onetimeauth_poly1305_update(&st, (const unsigned char *) line, len);
        (void) crypto_onetimeauth_poly1305_update(&st, padded, pad + 16);
        (void) crypto_onetimeauth_poly1305_final(&st, out);
        sodium_memzero(block0, sizeof(block0));
        sodium_memzero(&st, sizeof(st));
}

/* ---- hex ---- */

/* Exactly n lower-case hex digits, the only spelling sodium_bin2hex() writes:
 * sodium_hex2bin() also takes upper case, and a line that can be respelled
 * and still pass would be a line an attacker can alter (a sealed line's tag,
 * a nonce) without being refused. */
bool peerauth_is_lower_hex(const char *s, size_t n) {
        unsigned bad = 0;

        /* Without a branch per digit: digits and letters alternate at random in a tag,
         * and a mispredicted branch each costs more than the whole check. */
        for (size_t i = 0; i < n; i++) {
                unsigned c = (unsigned char) s[i];

                bad |= (c - '0' > 9U) & (c - 'a' > 5U);
        }
        return bad == 0;
}

/* Lower-case hex of the suffix, no NUL written. A nibble becomes its digit by
 * arithmetic (no table lookup, no branch on the value): the tag's spelling takes the
 * same time whatever the tag is. */
static char hex_digit(unsigned v) {
        /* v < 10: '0' + v; else 'a' + v - 10 ('a' - '0' - 10 = 39) */
        return (char) ('0' + v + (((9U - v) >> 8) & 39U));
}

static void tag_to_hex(const uint8_t tag[PEERAUTH_TAG_BYTES], char out[TAG_HEX]) {
        for (size_t i = 0; i < PEERAUTH_TAG_BYTES; i++) {
                out[2 * i] = hex_digit(tag[i] >> 4);
                out[2 * i + 1] = hex_digit(tag[i] & 15U);
        }
}

/* Constant time: every byte is looked at whatever differs first. */
static bool hex_tag_equal(const char *a, const char *b) {
        uint64_t diff = 0;

        for (size_t i = 0; i < TAG_HEX; i += sizeof(uint64_t)) {
                uint64_t x, y;

                memcpy(&x, a + i, sizeof(x));
                memcpy(&y, b + i, sizeof(y));
                diff |= x ^ y;
        }
        return diff == 0;
}

static void seq_to_hex(uint64_t seq, char out[SEQ_HEX]) {
        for (size_t i = 0; i < SEQ_HEX; i++)
                out[i] = hex_digit((unsigned) (seq >> (60 - 4 * i)) & 15U);
}

/* ---- sealed lines ---- */

/* Sealed in place, last line first: each line moves right by PEERAUTH_LINE_OVERHEAD
 * times the number of lines before it (the first one does not move), then gets its
 * suffix. Line i's sealed form ends exactly where line i + 1's begins, so no line
 * overwrites one that is still to be moved. One pass to find the lines, one
 * memmove, one Poly1305 pass: a line queued and sealed alone is never copied. */
int peerauth_seal(PeerAuth *a, Buf *b, size_t from, size_t *ret_end) {
        size_t ends_stack[128], *ends = ends_stack, n_lines = 0, cap = ELEMENTSOF(ends_stack), grow, last;
        char dir;
        int r;

        assert(a);
        assert(b);
        assert(a->state == PEERAUTH_ESTABLISHED);

        if (from >= b->len) {
                *ret_end = b->len;
                return 0;
        }

        for (const char *p = b->data + from, *e = b->data + b->len, *nl; (nl = memchr(p, '\n', (size_t) (e - p)));
             p = nl + 1) {
                if (n_lines == cap) {
                        size_t *bigger = ends == ends_stack ? malloc(2 * cap * sizeof(size_t))
                                                             : realloc(ends, 2 * cap * sizeof(size_t));

                        if (!bigger) {
                                if (ends != ends_stack)
                                        free(ends);
                                return -ENOMEM;
                        }
                        if (ends == ends_stack)
                                memcpy(bigger, ends_stack, sizeof(ends_stack));
                        ends = bigger;
                        cap *= 2;
                }
                ends[n_lines++] = (size_t) (nl - b->data);
        }
        if (n_lines == 0) {
                *ret_end = from;
                return 0;
        }

        grow = n_lines * PEERAUTH_LINE_OVERHEAD;
        r = n_lines > SIZE_MAX / PEERAUTH_LINE_OVERHEAD ? -ENOMEM : buf_reserve(b, grow);
        if (r < 0) {
                if (ends != ends_stack)
                        free(ends);
                return r;       /* b is unchanged */
        }

        /* The partial line after the last '\n' (a partial line stays unsealed and unsent until complete). */
        last = ends[n_lines - 1] + 1;
        memmove(b->data + last + grow, b->data + last, b->len - last);

        dir = a->acceptor ? DIR_S2C : DIR_C2S;
        for (size_t i = n_lines; i-- > 0;) {
                size_t start = i > 0 ? ends[i - 1] + 1 : from, len = ends[i] - start;
                char *line = b->data + start + i * PEERAUTH_LINE_OVERHEAD, *suffix = line + len;
                uint64_t seq = a->send_seq + i;
                uint8_t tag[PEERAUTH_TAG_BYTES];

                if (i > 0)
                        memmove(line, b->data + start, len);
                line_tag(a->send_key, dir, seq, line, len, tag);
                /* " #" seq (16 lower-case hex digits) tag (32) "\n" */
                suffix[0] = ' ';
                suffix[1] = '#';
                seq_to_hex(seq, suffix + 2);
                tag_to_hex(tag, suffix + 2 + SEQ_HEX);
                suffix[PEERAUTH_LINE_OVERHEAD] = '\n';
        }

        b->len += grow;
        b->data[b->len] = '\0';
        *ret_end = last + grow;
        a->send_seq += n_lines;
        if (ends != ends_stack)
                free(ends);
        return 0;
}

int peerauth_open(PeerAuth *a, char *line, size_t *len, const char **ret_reason) {
        uint8_t expect[PEERAUTH_TAG_BYTES];
        char expect_hex[TAG_HEX];
        uint64_t seq = 0;
        size_t n, content;
        char *suffix;

        assert(a);
        assert(line);
        assert(len);

        n = *len;
        if (a->state != PEERAUTH_ESTABLISHED) {
                *ret_reason = "not authenticated";
                return -EBADMSG;
        }
        if (n < PEERAUTH_LINE_OVERHEAD) {
                *ret_reason = "line without authentication tag";
                return -EBADMSG;
        }
        content = n - PEERAUTH_LINE_OVERHEAD;
        suffix = line + content;
        if (suffix[0] != ' ' || suffix[1] != '#' || !peerauth_is_lower_hex(suffix + 2, SEQ_HEX + TAG_HEX)) {
                *ret_reason = "malformed or truncated authentication tag";
                return -EBADMSG;
        }
        for (unsigned i = 0; i < SEQ_HEX; i++) {
                unsigned d = (unsigned char) suffix[2 + i] - '0';   /* '0'-'9': 0-9; 'a'-'f': 49-54, less 39 */

                d -= ((9U - d) >> 8) & 39U;
                seq = (seq << 4) | d;
        }

        /* The tag compared in its (only) spelling: the expected one encoded without
         * tables or branches on its bytes, compared in constant time. */
        line_tag(a->recv_key, a->acceptor ? DIR_C2S : DIR_S2C, seq, line, content, expect);
        tag_to_hex(expect, expect_hex);
        if (!hex_tag_equal(suffix + 2 + SEQ_HEX, expect_hex)) {
                *ret_reason = "bad authentication tag (line altered, or not from the authenticated peer)";
                return -EACCES;
        }
        if (seq != a->recv_seq) {
                *ret_reason = seq < a->recv_seq ? "replayed line (sequence number already seen)"
                                                : "reordered or dropped line (sequence number skips ahead)";
                return -EPROTO;
        }
        a->recv_seq++;
        line[content] = '\0';
        *len = content;
        return 0;
}
