/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz.h — helpers shared by the libFuzzer targets in tests/fuzz: a check
 * that aborts (so libFuzzer saves the input as a crash) whatever NDEBUG says,
 * exact-size copies of the input (so AddressSanitizer sees any read past the
 * line), and a small consumer that derives numbers from input bytes.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A property the code under test must keep; on violation, say which and abort. */
#define FUZZ_CHECK(expr)                                                                            \
        do {                                                                                        \
                if (!(expr)) {                                                                      \
                        fprintf(stderr, "%s:%d: %s: property violated: %s\n", __FILE__, __LINE__,   \
                                __func__, #expr);                                                   \
                        abort();                                                                    \
                }                                                                                   \
        } while (0)

/* malloc'd copy of the input with one NUL after it, exactly size + 1 bytes. */
static inline char *fuzz_strndup(const uint8_t *data, size_t size) {
        char *p = malloc(size + 1);

        if (!p)
                abort();
        if (size > 0)
                memcpy(p, data, size);
        p[size] = '\0';
        return p;
}

/* Bytes of the input taken from the front; 0 once they run out. */
typedef struct FuzzInput {
        const uint8_t *p;
        size_t n;
} FuzzInput;

static inline uint8_t fuzz_byte(FuzzInput *in) {
        uint8_t b;

        if (in->n == 0)
                return 0;
        b = in->p[0];
        in->p++;
        in->n--;
        return b;
}

static inline uint16_t fuzz_u16(FuzzInput *in) {
        uint16_t lo = fuzz_byte(in);
        return (uint16_t) (lo | (uint16_t) fuzz_byte(in) << 8);
}

static inline bool fuzz_mem_has(const void *p, size_t n, int c) {
        return n > 0 && memchr(p, c, n);
}
