/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * peerauth — mutual authentication of fusion's internal links (server ->
 * monitor heartbeats, backup -> primary replication) with a cluster key
 * shared by every host, and a MAC on every line that follows. libsodium's
 * HMAC-SHA-512-256 (crypto_auth_hmacsha512256), BLAKE2b (crypto_generichash)
 * and ChaCha20-Poly1305 (line tags); no hand-written primitives. Also: the optional
 * client token (AUTH <token>) and a small log rate limiter. Pure logic, no
 * I/O but reading the key and token files. doc/security.md has the design.
 *
 * Handshake (C: the side that connects, S: the side that accepts):
 *   C: HELLO-AUTH <name> <nc>           nc: 32 random bytes, hex
 *   S: CHALLENGE <ns> <mac_s>           mac_s = HMAC(K, "fusion-peerauth-1 s" | nc | ns | name)
 *   C: PROOF <mac_c>                    mac_c = HMAC(K, "fusion-peerauth-1 c" | nc | ns | name)
 * Each side checks the other's MAC; then one key per direction is derived
 * from K, nc, ns and name, and every further line on the connection is
 * "<line> #<seq><tag>": seq 16 hex digits (0, 1, 2, ... per direction), tag
 * the first 16 bytes of HMAC(direction key, direction | seq | line), hex.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "util.h"

#define PEERAUTH_KEY_BYTES 32       /* the derived cluster key and the session keys */
#define PEERAUTH_KEY_MIN 32         /* key material in the key file, at least */
#define PEERAUTH_KEY_FILE_MAX 4096
#define PEERAUTH_NONCE_BYTES 32
#define PEERAUTH_MAC_BYTES 32       /* handshake MACs */
#define PEERAUTH_TAG_BYTES 16       /* per-line tags (ChaCha20-Poly1305 over the line as associated data) */
/* " #" + 16 hex digits of seq + 32 hex digits of tag, added to every sealed line. */
#define PEERAUTH_LINE_OVERHEAD (2 + 16 + 2 * PEERAUTH_TAG_BYTES)
/* The longest handshake line (HELLO-AUTH with a 32-character name). */
#define PEERAUTH_HANDSHAKE_LINE_MAX 160
#define PEERAUTH_HELLO_VERB "HELLO-AUTH"

/* Call once before anything else here (sodium_init). -EIO if libsodium cannot start. */
int peerauth_init(void);

typedef struct PeerAuthKey {
        uint8_t bytes[PEERAUTH_KEY_BYTES];
        bool set;
} PeerAuthKey;

/* The cluster key from key material: the bytes with trailing whitespace
 * (" \t\r\n") removed, at least PEERAUTH_KEY_MIN of them, hashed with BLAKE2b.
 * The material is used as-is, never decoded: 64 hex digits and 32 raw bytes
 * are both fine. -EINVAL if too short. */
int peerauth_key_from_bytes(const void *data, size_t n, PeerAuthKey *ret);
/* Read the key file: a regular file, not readable by others (mode & 0004
 * is refused), at most PEERAUTH_KEY_FILE_MAX bytes. On error returns -errno
 * and a malloc'd message naming the file in *ret_error. */
int peerauth_key_load(const char *path, PeerAuthKey *ret, char **ret_error);
void peerauth_key_wipe(PeerAuthKey *k);

typedef enum PeerAuthState {
        PEERAUTH_IDLE,
        PEERAUTH_HELLO_SENT,      /* connector: waiting for CHALLENGE */
        PEERAUTH_CHALLENGE_SENT,  /* acceptor: waiting for PROOF */
        PEERAUTH_ESTABLISHED,     /* every line is sealed and opened */
        PEERAUTH_FAILED,
} PeerAuthState;

typedef struct PeerAuth {
        PeerAuthState state;
        bool acceptor;
        uint8_t key[PEERAUTH_KEY_BYTES];
        char name[NAME_MAX_LEN + 1];     /* who the connector claims to be */
        uint8_t nc[PEERAUTH_NONCE_BYTES];
        uint8_t ns[PEERAUTH_NONCE_BYTES];
        uint8_t send_key[PEERAUTH_KEY_BYTES];
        uint8_t recv_key[PEERAUTH_KEY_BYTES];
        uint64_t send_seq;
        uint64_t recv_seq;
} PeerAuth;

/* Wipe the keys; the struct may be reused. */
void peerauth_done(PeerAuth *a);
static inline bool peerauth_established(const PeerAuth *a) {
        return a && a->state == PEERAUTH_ESTABLISHED;
}

/* Connector: append "HELLO-AUTH <name> <nc>\n" to out. */
int peerauth_hello(PeerAuth *a, const PeerAuthKey *key, const char *name, Buf *out);
/* Connector: check the CHALLENGE line; append "PROOF <mac_c>\n" to out.
 * -EBADMSG: not a well-formed CHALLENGE; -EACCES: the acceptor does not hold
 * our key. *ret_reason says which (static string). */
int peerauth_on_challenge(PeerAuth *a, const char *line, size_t len, Buf *out, const char **ret_reason);

/* Does the line start with the HELLO-AUTH verb? */
bool peerauth_is_hello(const char *line, size_t len);
/* Acceptor: parse HELLO-AUTH (a->name is then set); append "CHALLENGE ...\n". -EBADMSG if malformed. */
int peerauth_on_hello(PeerAuth *a, const PeerAuthKey *key, const char *line, size_t len, Buf *out,
                      const char **ret_reason);
/* Acceptor: check PROOF. -EBADMSG if malformed, -EACCES if the MAC is wrong (another key). */
int peerauth_on_proof(PeerAuth *a, const char *line, size_t len, const char **ret_reason);

/* Seal every complete line ("...\n") of b from offset from on: insert the
 * " #<seq><tag>" suffix before each '\n'. A trailing partial line is left
 * alone. *ret_end: the offset up to which b is now sealed (the next from).
 * -ENOMEM: b is unchanged. */
int peerauth_seal(PeerAuth *a, Buf *b, size_t from, size_t *ret_end);
/* Check and strip the suffix of a received line (without its line ending), in
 * place: *len shrinks and line[*len] becomes NUL. -EBADMSG: no or a truncated
 * suffix; -EACCES: the tag is wrong (tampered, or another key); -EPROTO: a
 * good tag with an unexpected seq (replayed or reordered). Nothing is consumed
 * on error; the connection must be closed. */
int peerauth_open(PeerAuth *a, char *line, size_t *len, const char **ret_reason);

/* The client token: [cluster] client_token, or the first line of
 * client_token_file. *ret is NULL (and 0 returned) when neither is set.
 * A token is 1-128 printable characters without spaces. On error returns
 * -errno with a malloc'd message in *ret_error. */
#define CLIENT_TOKEN_MAX 128
int client_token_load(const Config *c, char **ret, char **ret_error);
bool client_token_is_valid(const char *s, size_t n);
/* Constant-time comparison (of BLAKE2b digests, so the length leaks nothing either). */
bool client_token_equal(const char *a, size_t an, const char *b, size_t bn);

/* At most burst events per interval; the rest are counted and reported with
 * the next one let through. */
typedef struct RateLimit {
        usec_t interval;
        unsigned burst;
        usec_t begin;
        unsigned n;
        unsigned suppressed;
} RateLimit;

#define RATELIMIT_INIT(interval_usec, burst_n) { .interval = (interval_usec), .burst = (burst_n) }
/* true: log this one; *ret_suppressed is how many were dropped before it. */
bool ratelimit_pass(RateLimit *rl, usec_t now, unsigned *ret_suppressed);
