/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * crc32c — CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum
 * of message log records. Software slicing-by-8 everywhere; on x86-64 the
 * SSE4.2 crc32 instruction when the CPU has it (checked once at start-up).
 * Both give the same result: the state is inverted on entry and exit, so
 * crc32c(crc32c(0, a), b) == crc32c(0, a || b).
 */

#include <string.h>

#include "crc32c.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CRC32C_HAVE_SSE42 1
#include <nmmintrin.h>
#else
#define CRC32C_HAVE_SSE42 0
#endif

#define CRC32C_POLY 0x82F63B78u

/* Not in crc32c.h: the two implementations, exported for test-crc32c only. */
uint32_t crc32c_sw(uint32_t crc, const void *data, size_t len);
uint32_t crc32c_hw(uint32_t crc, const void *data, size_t len);
int crc32c_hw_available(void);

static uint32_t crc32c_table[8][256];
static int crc32c_use_hw;

static void crc32c_table_init(void) {
        for (unsigned i = 0; i < 256; i++) {
                uint32_t c = i;
                for (unsigned k = 0; k < 8; k++)
                        c = (c >> 1) ^ (CRC32C_POLY & (0u - (c & 1u)));
                crc32c_table[0][i] = c;
        }
        for (unsigned i = 0; i < 256; i++)
                for (unsigned t = 1; t < 8; t++)
                        crc32c_table[t][i] = (crc32c_table[t - 1][i] >> 8) ^
                                             crc32c_table[0][crc32c_table[t - 1][i] & 0xff];
}

int crc32c_hw_available(void) {
#if CRC32C_HAVE_SSE42
        __builtin_cpu_init();
        return __builtin_cpu_supports("sse4.2") ? 1 : 0;
#else
        return 0;
#endif
}

/* Runs before main(), before any thread exists, so no locking is needed. */
__attribute__((constructor)) static void crc32c_init(void) {
        crc32c_table_init();
        crc32c_use_hw = crc32c_hw_available();
}

static inline uint64_t load_le64(const uint8_t *p) {
        uint64_t v;
        memcpy(&v, p, sizeof(v));
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        v = __builtin_bswap64(v);
#endif
        return v;
}

uint32_t crc32c_sw(uint32_t crc, const void *data, size_t len) {
        const uint8_t *p = data;

        crc = ~crc;
        /* Bytewise up to 8-byte alignment, then 8 bytes per step. */
        while (len > 0 && ((uintptr_t) p & 7) != 0) {
                crc = (crc >> 8) ^ crc32c_table[0][(crc ^ *p++) & 0xff];
                len--;
        }
        while (len >= 8) {
                uint64_t v = load_le64(p) ^ crc;
                crc = crc32c_table[7][v & 0xff] ^ crc32c_table[6][(v >> 8) & 0xff] ^
                      crc32c_table[5][(v >> 16) & 0xff] ^ crc32c_table[4][(v >> 24) & 0xff] ^
                      crc32c_table[3][(v >> 32) & 0xff] ^ crc32c_table[2][(v >> 40) & 0xff] ^
                      crc32c_table[1][(v >> 48) & 0xff] ^ crc32c_table[0][v >> 56];
                p += 8;
                len -= 8;
        }
        while (len > 0) {
                crc = (crc >> 8) ^ crc32c_table[0][(crc ^ *p++) & 0xff];
                len--;
        }
        return ~crc;
}

#if CRC32C_HAVE_SSE42
__attribute__((target("sse4.2"))) static uint32_t crc32c_sse42(uint32_t crc, const void *data, size_t len) {
        const uint8_t *p = data;
        uint64_t c = ~crc;

        while (len > 0 && ((uintptr_t) p & 7) != 0) {
                c = _mm_crc32_u8((uint32_t) c, *p++);
                len--;
        }
        while (len >= 8) {
                uint64_t v;
                memcpy(&v, p, sizeof(v));
                c = _mm_crc32_u64(c, v);
                p += 8;
                len -= 8;
        }
        while (len > 0) {
                c = _mm_crc32_u8((uint32_t) c, *p++);
                len--;
        }
        return ~(uint32_t) c;
}
#endif

/* The hardware path if this CPU has one, else the software one. */
uint32_t crc32c_hw(uint32_t crc, const void *data, size_t len) {
#if CRC32C_HAVE_SSE42
        if (crc32c_use_hw)
                return crc32c_sse42(crc, data, len);
#endif
        return crc32c_sw(crc, data, len);
}

uint32_t crc32c(uint32_t crc, const void *data, size_t len) {
        if (len == 0)
                return crc;
        return crc32c_hw(crc, data, len);
}
