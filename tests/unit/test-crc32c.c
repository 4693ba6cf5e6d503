/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-crc32c — known vectors, chaining, and software vs hardware agreement. */

#include "tests.h"

#include <stdint.h>

#include "crc32c.h"

/* Internal to crc32c.c, exported for this test only. */
uint32_t crc32c_sw(uint32_t crc, const void *data, size_t len);
uint32_t crc32c_hw(uint32_t crc, const void *data, size_t len);
int crc32c_hw_available(void);

TEST(vectors) {
        static const uint8_t zeros[32] = { 0 };
        uint8_t ones[32], incr[32], decr[32];

        for (unsigned i = 0; i < 32; i++) {
                ones[i] = 0xff;
                incr[i] = (uint8_t) i;
                decr[i] = (uint8_t) (31 - i);
        }

        ASSERT_EQ_U64(crc32c(0, "123456789", 9), 0xE3069283u);
        ASSERT_EQ_U64(crc32c(0, "", 0), 0);
        ASSERT_EQ_U64(crc32c(0, NULL, 0), 0);
        /* RFC 3720 (iSCSI) B.4 test vectors. */
        ASSERT_EQ_U64(crc32c(0, zeros, sizeof(zeros)), 0x8A9136AAu);
        ASSERT_EQ_U64(crc32c(0, ones, sizeof(ones)), 0x62A8AB43u);
        ASSERT_EQ_U64(crc32c(0, incr, sizeof(incr)), 0x46DD794Eu);
        ASSERT_EQ_U64(crc32c(0, decr, sizeof(decr)), 0x113FDB5Cu);
        ASSERT_EQ_U64(crc32c(0, "a", 1), 0xC1D04330u);

        ASSERT_EQ_U64(crc32c_sw(0, "123456789", 9), 0xE3069283u);
        ASSERT_EQ_U64(crc32c_sw(0, zeros, sizeof(zeros)), 0x8A9136AAu);
        ASSERT_EQ_U64(crc32c_hw(0, "123456789", 9), 0xE3069283u);
        ASSERT_EQ_U64(crc32c_hw(0, zeros, sizeof(zeros)), 0x8A9136AAu);
        /* Empty input leaves a running crc as it is. */
        ASSERT_EQ_U64(crc32c(0x12345678u, "", 0), 0x12345678u);
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint8_t rnd8(void) {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        return (uint8_t) (rng_state >> 24);
}

/* Every split point, every start alignment: chained calls equal one call,
 * and software equals hardware. */
TEST(chaining_and_alignment) {
        uint8_t buf[300];

        for (size_t i = 0; i < sizeof(buf); i++)
                buf[i] = rnd8();

        for (size_t start = 0; start < 9; start++) {
                size_t len = sizeof(buf) - start;
                uint32_t whole = crc32c(0, buf + start, len);

                ASSERT_EQ_U64(crc32c_sw(0, buf + start, len), whole);
                ASSERT_EQ_U64(crc32c_hw(0, buf + start, len), whole);
                for (size_t cut = 0; cut <= len; cut++) {
                        uint32_t c = crc32c(0, buf + start, cut);
                        ASSERT_EQ_U64(crc32c(c, buf + start + cut, len - cut), whole);
                        c = crc32c_sw(0, buf + start, cut);
                        ASSERT_EQ_U64(crc32c_sw(c, buf + start + cut, len - cut), whole);
                }
        }

        /* Three pieces, as msglog checksums header, msgid and payload. */
        ASSERT_EQ_U64(crc32c(crc32c(crc32c(0, "1234", 4), "5", 1), "6789", 4), 0xE3069283u);
}

TEST(lengths) {
        static uint8_t buf[5 * 4096 + 16];

        for (size_t i = 0; i < sizeof(buf); i++)
                buf[i] = rnd8();
        for (size_t len = 0; len <= 4096; len += (len < 64 ? 1 : 61))
                ASSERT_EQ_U64(crc32c_sw(0, buf + 3, len), crc32c_hw(0, buf + 3, len));
        /* The hardware path's three lanes (3 x 1360 bytes at a time): every length
         * around one, two and five blocks of them, at every alignment, any state. */
        for (size_t len = 3 * 1360 - 20; len <= 5 * 4096; len += (len % 4080 < 4060 && len % 4080 > 20 ? 997 : 1))
                for (size_t start = 0; start < 9; start += 4) {
                        uint32_t state = (uint32_t) len * 2654435761u;

                        ASSERT_EQ_U64(crc32c_sw(state, buf + start, len), crc32c_hw(state, buf + start, len));
                }
        ASSERT_EQ_U64(crc32c_hw(0, buf, 0), 0);
        memset(buf, 0, 4096);
        ASSERT_EQ_U64(crc32c_hw(0, buf, 4096), crc32c_sw(0, buf, 4096));
}

TEST(single_bit_changes) {
        uint8_t buf[64];

        for (size_t i = 0; i < sizeof(buf); i++)
                buf[i] = rnd8();
        uint32_t ref = crc32c(0, buf, sizeof(buf));
        for (size_t bit = 0; bit < sizeof(buf) * 8; bit++) {
                buf[bit / 8] ^= (uint8_t) (1u << (bit % 8));
                ASSERT_TRUE(crc32c(0, buf, sizeof(buf)) != ref);
                buf[bit / 8] ^= (uint8_t) (1u << (bit % 8));
        }
        ASSERT_EQ_U64(crc32c(0, buf, sizeof(buf)), ref);
}

int main(void) {
        fprintf(stderr, "crc32c: hardware path %s\n", crc32c_hw_available() ? "available" : "not available");
        RUN(vectors);
        RUN(chaining_and_alignment);
        RUN(lengths);
        RUN(single_bit_changes);
        return 0;
}
