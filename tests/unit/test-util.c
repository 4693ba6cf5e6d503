/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests for src/shared/util.c. */
#include "tests.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

TEST(atou64) {
        uint64_t v = 7;

        ASSERT_OK(safe_atou64("0", &v));
        ASSERT_EQ_U64(v, 0);
        ASSERT_OK(safe_atou64("18446744073709551615", &v));
        ASSERT_EQ_U64(v, UINT64_MAX);
        ASSERT_EQ_INT(safe_atou64("18446744073709551616", &v), -ERANGE);
        ASSERT_EQ_INT(safe_atou64("99999999999999999999", &v), -ERANGE);
        ASSERT_EQ_INT(safe_atou64("", &v), -EINVAL);
        ASSERT_EQ_INT(safe_atou64("-1", &v), -EINVAL);
        ASSERT_EQ_INT(safe_atou64("+1", &v), -EINVAL);
        ASSERT_EQ_INT(safe_atou64(" 1", &v), -EINVAL);
        ASSERT_EQ_INT(safe_atou64("1x", &v), -EINVAL);
        ASSERT_EQ_INT(safe_atou64("0x10", &v), -EINVAL);
        ASSERT_EQ_INT(safe_atou64("123456789012345678901", &v), -EINVAL);
        ASSERT_OK(safe_atou64_n("42abc", 2, &v));
        ASSERT_EQ_U64(v, 42);
        ASSERT_EQ_INT(safe_atou64_n("42", 0, &v), -EINVAL);
}

TEST(names) {
        char long_name[NAME_MAX_LEN + 2];

        ASSERT_TRUE(name_is_valid("primary"));
        ASSERT_TRUE(name_is_valid("backup_2-a"));
        ASSERT_TRUE(!name_is_valid(""));
        ASSERT_TRUE(!name_is_valid("a b"));
        ASSERT_TRUE(!name_is_valid("a.b"));
        ASSERT_TRUE(!name_is_valid(NULL));
        memset(long_name, 'a', sizeof long_name - 1);
        long_name[NAME_MAX_LEN] = 0;
        ASSERT_TRUE(name_is_valid(long_name));
        long_name[NAME_MAX_LEN] = 'a';
        long_name[NAME_MAX_LEN + 1] = 0;
        ASSERT_TRUE(!name_is_valid(long_name));

        ASSERT_TRUE(msgid_is_valid("a.b_c:d-e9", 10));
        ASSERT_TRUE(!msgid_is_valid("a b", 3));
        ASSERT_TRUE(!msgid_is_valid("", 0));
        ASSERT_TRUE(!msgid_is_valid("a/b", 3));
        ASSERT_TRUE(msgid_is_valid("0123456789012345678901234567890123456789012345678901234567890123", 64));
        ASSERT_TRUE(!msgid_is_valid("01234567890123456789012345678901234567890123456789012345678901234", 65));
}

TEST(buf) {
        Buf b = {};

        ASSERT_OK(buf_append_str(&b, "hello"));
        ASSERT_OK(buf_printf(&b, " %d %s", 42, "world"));
        ASSERT_STREQ(b.data, "hello 42 world");
        ASSERT_EQ_U64(b.len, 14);
        buf_consume(&b, 6);
        ASSERT_STREQ(b.data, "42 world");
        for (int i = 0; i < 10000; i++)
                ASSERT_OK(buf_append(&b, "x", 1));
        ASSERT_EQ_U64(b.len, 8 + 10000);
        ASSERT_TRUE(b.data[b.len] == 0);
        buf_consume(&b, b.len + 5);
        ASSERT_EQ_U64(b.len, 0);
        buf_clear(&b);
        buf_done(&b);
        ASSERT_TRUE(b.data == NULL);

        /* buf_printf() formats into the spare room when it fits, else grows and
         * formats again: every length around the capacity comes out whole. */
        for (size_t pre = 0; pre < 300; pre++)
                for (int w = 0; w < 12; w++) {
                        Buf c = {};
                        char want[700];

                        for (size_t i = 0; i < pre; i++)
                                ASSERT_OK(buf_append(&c, "p", 1));
                        ASSERT_OK(buf_printf(&c, "%0*d|%s", w * 30, 7, "end"));
                        memset(want, 'p', pre);
                        snprintf(want + pre, sizeof(want) - pre, "%0*d|%s", w * 30, 7, "end");
                        ASSERT_STREQ(c.data, want);
                        ASSERT_EQ_U64(c.len, strlen(want));
                        ASSERT_TRUE(c.cap > c.len);
                        buf_done(&c);
                }

        /* buf_append_u64() writes what PRIu64 does, at every digit count. */
        uint64_t vals[] = { 0, 1, 9, 10, 99, 100, 4294967295u, 4294967296u, 10000000000000000000u, UINT64_MAX };
        for (size_t i = 0; i < ELEMENTSOF(vals); i++) {
                Buf c = {};
                char want[32];

                ASSERT_OK(buf_append_str(&c, "n="));
                ASSERT_OK(buf_append_u64(&c, vals[i]));
                snprintf(want, sizeof(want), "n=%" PRIu64, vals[i]);
                ASSERT_STREQ(c.data, want);
                ASSERT_EQ_U64(c.len, strlen(want));
                buf_done(&c);
        }
        for (uint64_t v = 1; v < UINT64_MAX / 7; v = v * 7 + 3) {
                Buf c = {};
                char want[32];

                ASSERT_OK(buf_append_u64(&c, v));
                snprintf(want, sizeof(want), "%" PRIu64, v);
                ASSERT_STREQ(c.data, want);
                buf_done(&c);
        }
}

TEST(files) {
        char dir[] = "/tmp/fusion-test-util-XXXXXX", path[256], deep[256];
        _cleanup_(freep) char *text = NULL, *text2 = NULL;
        uint64_t v = 0;

        ASSERT_TRUE(mkdtemp(dir) != NULL);
        snprintf(path, sizeof path, "%s/state", dir);
        ASSERT_OK(write_file_atomic(path, "term=5\nprimary=backup\n"));
        ASSERT_EQ_INT(read_file_small(path, 4096, &text), 22);
        ASSERT_STREQ(text, "term=5\nprimary=backup\n");
        ASSERT_OK(state_get_u64(text, "term", &v));
        ASSERT_EQ_U64(v, 5);
        ASSERT_EQ_INT(state_get_u64(text, "ter", &v), -ENOENT);
        ASSERT_EQ_INT(state_get_u64(text, "primary", &v), -EINVAL);
        ASSERT_EQ_INT(read_file_small(path, 10, &text2), -EFBIG);
        ASSERT_OK(write_file_atomic(path, "term=6\n"));
        free(text);
        text = NULL;
        ASSERT_OK(read_file_small(path, 4096, &text));
        ASSERT_STREQ(text, "term=6\n");

        snprintf(deep, sizeof deep, "%s/a/b/c", dir);
        ASSERT_OK(mkdir_p(deep, 0755));
        ASSERT_OK(mkdir_p(deep, 0755));
        ASSERT_TRUE(access(deep, F_OK) == 0);

        unlink(path);
        snprintf(path, sizeof path, "rm -rf '%s'", dir);
        ASSERT_EQ_INT(system(path), 0);
}

TEST(time) {
        usec_t a = now_usec(), b = now_usec();

        ASSERT_TRUE(a > 0);
        ASSERT_TRUE(b >= a);
        ASSERT_TRUE(now_realtime_usec() > 1600000000ULL * USEC_PER_SEC);
}

int main(void) {
        RUN(atou64);
        RUN(names);
        RUN(buf);
        RUN(files);
        RUN(time);
        return 0;
}
