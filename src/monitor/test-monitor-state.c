/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-monitor-state — the monitor's persisted term/primary file.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests.h"

#include "monitor-state.h"
#include "util.h"

TEST(parse) {
        uint64_t term = 99;
        char *primary = NULL;
        char text[64];

        snprintf(text, sizeof text, "term=4\nprimary=backup\n");
        ASSERT_OK(monitor_state_parse(text, &term, &primary));
        ASSERT_EQ_U64(term, 4);
        ASSERT_STREQ(primary, "backup");
        free(primary);

        ASSERT_OK(monitor_state_parse("term=7\nprimary=\n", &term, &primary));
        ASSERT_EQ_U64(term, 7);
        ASSERT_TRUE(primary == NULL);

        ASSERT_OK(monitor_state_parse("primary=b2\nterm=12\n", &term, &primary));
        ASSERT_EQ_U64(term, 12);
        ASSERT_STREQ(primary, "b2");
        free(primary);

        ASSERT_OK(monitor_state_parse("term=1\n", &term, &primary));
        ASSERT_EQ_U64(term, 1);
        ASSERT_TRUE(primary == NULL);

        term = 5;
        ASSERT_EQ_INT(monitor_state_parse("primary=x\n", &term, &primary), -EINVAL);
        ASSERT_EQ_INT(monitor_state_parse("term=abc\nprimary=x\n", &term, &primary), -EINVAL);
        ASSERT_EQ_INT(monitor_state_parse("term=1\nprimary=bad name\n", &term, &primary), -EINVAL);
        ASSERT_EQ_U64(term, 5);
}

TEST(format) {
        char *s = NULL;

        ASSERT_OK(monitor_state_format(4, "backup", &s));
        ASSERT_STREQ(s, "term=4\nprimary=backup\n");
        free(s);
        ASSERT_OK(monitor_state_format(0, NULL, &s));
        ASSERT_STREQ(s, "term=0\nprimary=\n");
        free(s);
}

TEST(roundtrip) {
        char dir[] = "/tmp/test-monitor-state.XXXXXX", path[128];
        uint64_t term = 0;
        char *primary = NULL;

        ASSERT_TRUE(mkdtemp(dir) != NULL);
        snprintf(path, sizeof path, "%s/sub/state", dir);

        ASSERT_EQ_INT(monitor_state_load(path, &term, &primary), -ENOENT);
        snprintf(path, sizeof path, "%s/sub", dir);
        ASSERT_OK(mkdir_p(path, 0755));
        snprintf(path, sizeof path, "%s/sub/state", dir);
        ASSERT_OK(monitor_state_save(path, 9, "primary"));
        ASSERT_OK(monitor_state_load(path, &term, &primary));
        ASSERT_EQ_U64(term, 9);
        ASSERT_STREQ(primary, "primary");
        free(primary);
        ASSERT_OK(monitor_state_save(path, 10, NULL));
        ASSERT_OK(monitor_state_load(path, &term, &primary));
        ASSERT_EQ_U64(term, 10);
        ASSERT_TRUE(primary == NULL);

        ASSERT_OK(unlink(path));
        snprintf(path, sizeof path, "%s/sub", dir);
        ASSERT_OK(rmdir(path));
        ASSERT_OK(rmdir(dir));
}

TEST(monitor_id) {
        char dir[] = "/tmp/test-monitor-id.XXXXXX", path[128], id[HB_MONITOR_ID_MAX + 1], again[HB_MONITOR_ID_MAX + 1],
             other[HB_MONITOR_ID_MAX + 1];

        ASSERT_TRUE(mkdtemp(dir) != NULL);
        snprintf(path, sizeof path, "%s/id", dir);

        /* Made once, then read back unchanged. */
        ASSERT_OK(monitor_id_load_or_create(path, id));
        ASSERT_EQ_U64(strlen(id), 32);
        ASSERT_EQ_U64(strspn(id, "0123456789abcdef"), 32);
        ASSERT_OK(monitor_id_load_or_create(path, again));
        ASSERT_STREQ(id, again);

        /* Another state dir, another identity. */
        ASSERT_OK(unlink(path));
        ASSERT_OK(monitor_id_load_or_create(path, other));
        ASSERT_TRUE(strcmp(id, other) != 0);

        /* A damaged file is an error, not silently a new identity. */
        ASSERT_OK(write_file_atomic(path, "not an id\n"));
        ASSERT_EQ_INT(monitor_id_load_or_create(path, again), -EINVAL);
        ASSERT_OK(write_file_atomic(path, "0123456789ABCDEF0123456789abcdef\n"));
        ASSERT_EQ_INT(monitor_id_load_or_create(path, again), -EINVAL);

        ASSERT_OK(unlink(path));
        ASSERT_OK(rmdir(dir));
}

int main(void) {
        RUN(parse);
        RUN(format);
        RUN(roundtrip);
        RUN(monitor_id);
        return 0;
}
