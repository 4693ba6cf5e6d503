/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-client-util — the pure helpers of fusion-client: msgid generation,
 * JSON string escaping, percentiles, ISO-8601 timestamps and backoff.
 */
#include "tests.h"

#include "client-lib.h"

static bool valid_id(const char *s) {
        size_t n = strlen(s);

        if (n < 1 || n > MSGID_MAX_LEN)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-", s[i]))
                        return false;
        return true;
}

TEST(msgid_basic) {
        char buf[MSGID_MAX_LEN + 1];

        ASSERT_OK(msgid_format(buf, sizeof(buf), "node1", 1234, 1700000000123456ULL, 7));
        ASSERT_STREQ(buf, "node1-1234-1700000000123456-7");
        ASSERT_TRUE(valid_id(buf));
        ASSERT_TRUE(msgid_is_valid(buf, strlen(buf)));
}

TEST(msgid_sanitises_and_truncates) {
        char buf[MSGID_MAX_LEN + 1];
        char longhost[200];

        ASSERT_OK(msgid_format(buf, sizeof(buf), "my host/ä", 5, 10, 1));
        ASSERT_TRUE(valid_id(buf));
        ASSERT_TRUE(strncmp(buf, "my_host_", 8) == 0);
        ASSERT_TRUE(strcmp(buf + strlen(buf) - strlen("-5-10-1"), "-5-10-1") == 0);

        memset(longhost, 'h', sizeof(longhost) - 1);
        longhost[sizeof(longhost) - 1] = 0;
        ASSERT_OK(msgid_format(buf, sizeof(buf), longhost, 4194304, 1700000000123456ULL, UINT64_MAX));
        ASSERT_EQ_INT(strlen(buf), MSGID_MAX_LEN);
        ASSERT_TRUE(valid_id(buf));
        /* the unique tail is always kept whole */
        ASSERT_TRUE(strstr(buf, "-4194304-1700000000123456-18446744073709551615") != NULL);

        ASSERT_OK(msgid_format(buf, sizeof(buf), "", 1, 2, 3));
        ASSERT_STREQ(buf, "host-1-2-3");
        ASSERT_OK(msgid_format(buf, sizeof(buf), NULL, 1, 2, 3));
        ASSERT_STREQ(buf, "host-1-2-3");

        ASSERT_EQ_INT(msgid_format(buf, MSGID_MAX_LEN, "a", 1, 2, 3), -ENOBUFS);
}

TEST(msgid_distinct) {
        char a[MSGID_MAX_LEN + 1], b[MSGID_MAX_LEN + 1];

        ASSERT_OK(msgid_format(a, sizeof(a), "h", 1, 2, 1));
        ASSERT_OK(msgid_format(b, sizeof(b), "h", 1, 2, 2));
        ASSERT_TRUE(strcmp(a, b) != 0);
        ASSERT_OK(msgid_format(b, sizeof(b), "h", 12, 2, 1));
        ASSERT_TRUE(strcmp(a, b) != 0);
}

static void check_json(const char *in, size_t len, const char *expected) {
        Buf b = {};

        ASSERT_OK(json_append_string(&b, in, len));
        ASSERT_EQ_INT(b.len, strlen(expected));
        ASSERT_STREQ(b.data, expected);
        buf_done(&b);
}

TEST(json_escape) {
        check_json("", 0, "\"\"");
        check_json("primary", 7, "\"primary\"");
        check_json("a\"b\\c", 5, "\"a\\\"b\\\\c\"");
        check_json("l1\nl2\tx\r", 8, "\"l1\\nl2\\tx\\r\"");
        check_json("\x01\x1f\x7f", 3, "\"\\u0001\\u001f\\u007f\"");
        check_json("caf\xc3\xa9", 5, "\"caf\xc3\xa9\"");                /* valid UTF-8 kept */
        check_json("\xe2\x82\xac", 3, "\"\xe2\x82\xac\"");
        check_json("\xf0\x9f\x98\x80", 4, "\"\xf0\x9f\x98\x80\"");
        check_json("a\xff" "b", 3, "\"a\\ufffdb\"");                    /* invalid byte */
        check_json("\xc3", 1, "\"\\ufffd\"");                           /* truncated sequence */
        check_json("\xc0\xaf", 2, "\"\\ufffd\\ufffd\"");                /* overlong */
        check_json("\xed\xa0\x80", 3, "\"\\ufffd\\ufffd\\ufffd\"");     /* surrogate */
        check_json("x\0y", 3, "\"x\\u0000y\"");
}

TEST(percentiles) {
        uint64_t v[100] = {};

        ASSERT_EQ_U64(percentile_u64(v, 0, 50), 0);

        for (unsigned i = 0; i < 100; i++)
                v[i] = 100 - i;   /* 100..1, unsorted */
        sort_u64(v, 100);
        ASSERT_EQ_U64(v[0], 1);
        ASSERT_EQ_U64(v[99], 100);
        ASSERT_EQ_U64(percentile_u64(v, 100, 50), 50);
        ASSERT_EQ_U64(percentile_u64(v, 100, 99), 99);
        ASSERT_EQ_U64(percentile_u64(v, 100, 99.5), 100);
        ASSERT_EQ_U64(percentile_u64(v, 100, 100), 100);
        ASSERT_EQ_U64(percentile_u64(v, 100, 0), 1);
        ASSERT_EQ_U64(percentile_u64(v, 100, 1), 1);

        uint64_t one[1] = { 42 };
        ASSERT_EQ_U64(percentile_u64(one, 1, 50), 42);
        ASSERT_EQ_U64(percentile_u64(one, 1, 99), 42);

        uint64_t three[3] = { 30, 10, 20 };
        sort_u64(three, 3);
        ASSERT_EQ_U64(percentile_u64(three, 3, 50), 20);
        ASSERT_EQ_U64(percentile_u64(three, 3, 99), 30);
        ASSERT_EQ_U64(percentile_u64(three, 3, 33), 10);
        ASSERT_EQ_U64(percentile_u64(three, 3, 34), 20);
}

TEST(iso8601) {
        char buf[32];

        ASSERT_OK(format_iso8601_ms(buf, sizeof(buf), 0));
        ASSERT_STREQ(buf, "1970-01-01T00:00:00.000Z");
        /* 2026-11-26T07:40:01.123Z */
        ASSERT_OK(format_iso8601_ms(buf, sizeof(buf), 1795678801123456ULL));
        ASSERT_STREQ(buf, "2026-11-26T07:40:01.123Z");
        ASSERT_EQ_INT(format_iso8601_ms(buf, 10, 0), -ENOBUFS);
}

TEST(backoff) {
        usec_t b = 0;
        usec_t expected[] = { 5000, 10000, 20000, 40000, 80000, 160000, 200000, 200000 };

        for (size_t i = 0; i < ELEMENTSOF(expected); i++) {
                b = backoff_next(b);
                ASSERT_EQ_U64(b, expected[i]);
        }
}

int main(void) {
        RUN(msgid_basic);
        RUN(msgid_sanitises_and_truncates);
        RUN(msgid_distinct);
        RUN(json_escape);
        RUN(percentiles);
        RUN(iso8601);
        RUN(backoff);
        return 0;
}
