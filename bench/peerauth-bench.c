/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * peerauth-bench — what sealing and opening one replication line costs
 * (peerauth_seal(), peerauth_open()), beside libsodium's one-call
 * ChaCha20-Poly1305 AEAD that computes the same tag (the construction the
 * wire format is defined by, doc/security.md). Not a test: run on demand,
 *
 *   ninja -C /tmp/build-bench bench/peerauth-bench && /tmp/build-bench/bench/peerauth-bench
 *
 * Prints a table (ns per line, median of 5 runs) and a BENCH line per size.
 */
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "peerauth.h"
#include "util.h"

#define RUNS 5

static double now_ns(void) {
        struct timespec t;

        (void) clock_gettime(CLOCK_MONOTONIC, &t);
        return (double) t.tv_sec * 1e9 + (double) t.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;

        return x < y ? -1 : x > y;
}

static double median(double v[RUNS]) {
        qsort(v, RUNS, sizeof(double), cmp_double);
        return v[RUNS / 2];
}

/* One run: n lines of len bytes sealed by one end and opened by the other;
 * the AEAD over the same line as associated data, n times. */
static int run(size_t len, unsigned n, double *ret_seal, double *ret_open, double *ret_aead) {
        PeerAuth tx = { .state = PEERAUTH_ESTABLISHED, .acceptor = true };
        PeerAuth rx = { .state = PEERAUTH_ESTABLISHED };
        uint8_t nonce[crypto_aead_chacha20poly1305_IETF_NPUBBYTES] = { 's' }, tag[PEERAUTH_TAG_BYTES], none[1] = {};
        unsigned long long tag_len;
        _cleanup_(freep) char *line = malloc(len + 1);
        Buf b = {};
        double seal = 0, open = 0, t0;

        if (!line)
                return -1;
        memset(line, 'x', len);
        line[len] = '\n';
        randombytes_buf(tx.send_key, sizeof(tx.send_key));
        memcpy(rx.recv_key, tx.send_key, sizeof(rx.recv_key));

        for (unsigned i = 0; i < n; i++) {
                const char *reason = NULL;
                size_t end, got;

                buf_clear(&b);
                if (buf_append(&b, line, len + 1) < 0)
                        return -1;
                t0 = now_ns();
                if (peerauth_seal(&tx, &b, 0, &end) < 0)
                        return -1;
                seal += now_ns() - t0;
                got = b.len - 1;
                t0 = now_ns();
                if (peerauth_open(&rx, b.data, &got, &reason) < 0 || got != len) {
                        fprintf(stderr, "peerauth-bench: open failed: %s\n", reason ?: "wrong length");
                        return -1;
                }
                open += now_ns() - t0;
        }
        buf_done(&b);

        t0 = now_ns();
        for (unsigned i = 0; i < n; i++) {
                nonce[11] = (uint8_t) i;
                (void) crypto_aead_chacha20poly1305_ietf_encrypt_detached(none, tag, &tag_len, none, 0,
                                                                          (const unsigned char *) line, len, NULL,
                                                                          nonce, tx.send_key);
        }
        *ret_aead = (now_ns() - t0) / n;
        *ret_seal = seal / n;
        *ret_open = open / n;
        return 0;
}

int main(void) {
        static const size_t sizes[] = { 0, 100, 1000, 4096, 16384, 65536 };

        if (peerauth_init() < 0) {
                fprintf(stderr, "peerauth-bench: libsodium failed to initialise\n");
                return 1;
        }
        printf("%-8s %14s %14s %18s\n", "bytes", "seal ns/line", "open ns/line", "AEAD call ns/line");
        for (size_t i = 0; i < ELEMENTSOF(sizes); i++) {
                double seal[RUNS], open[RUNS], aead[RUNS];
                unsigned n = sizes[i] >= 16384 ? 20000 : 200000;

                for (unsigned r = 0; r < RUNS; r++)
                        if (run(sizes[i], n, &seal[r], &open[r], &aead[r]) < 0)
                                return 1;
                printf("%-8zu %14.0f %14.0f %18.0f\n", sizes[i], median(seal), median(open), median(aead));
                printf("BENCH figure=peerauth system=fusion metric=seal_ns_s%zu value=%.0f\n", sizes[i], median(seal));
                printf("BENCH figure=peerauth system=fusion metric=open_ns_s%zu value=%.0f\n", sizes[i], median(open));
                printf("BENCH figure=peerauth system=libsodium-aead metric=tag_ns_s%zu value=%.0f\n", sizes[i],
                       median(aead));
        }
        return 0;
}
