/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-ctl-status — parsing SERVER lines and rendering the fusionctl status
 * table (with and without colour) and JSON.
 */
#include "tests.h"

#include "ctl-status.h"
#include "ctl-systemd.h"

static ServerStatus parse(const char *text) {
        ServerStatus s;

        ASSERT_OK(server_status_parse(text, &s));
        return s;
}

TEST(parse_server) {
        ServerStatus s = parse("name=primary role=primary state=up term=3 index=42 commit=41 age_ms=80 "
                               "unit=fusion-primary.service");

        ASSERT_STREQ(s.name, "primary");
        ASSERT_STREQ(s.role, "primary");
        ASSERT_STREQ(s.state, "up");
        ASSERT_STREQ(s.term, "3");
        ASSERT_STREQ(s.index, "42");
        ASSERT_STREQ(s.commit, "41");
        ASSERT_STREQ(s.age_ms, "80");
        ASSERT_STREQ(s.unit, "fusion-primary.service");
        ASSERT_STREQ(s.unit_active, "");

        /* missing keys stay empty, unknown keys are ignored */
        s = parse("state=down name=backup2 extra=1");
        ASSERT_STREQ(s.name, "backup2");
        ASSERT_STREQ(s.state, "down");
        ASSERT_STREQ(s.commit, "");
        ASSERT_STREQ(s.role, "");

        ServerStatus t;
        ASSERT_EQ_INT(server_status_parse("role=primary state=up", &t), -EINVAL);
}

TEST(age) {
        char b[32];

        format_age(b, sizeof(b), "0");
        ASSERT_STREQ(b, "0ms");
        format_age(b, sizeof(b), "999");
        ASSERT_STREQ(b, "999ms");
        format_age(b, sizeof(b), "12345");
        ASSERT_STREQ(b, "12.3s");
        format_age(b, sizeof(b), "245000");
        ASSERT_STREQ(b, "4m05s");
        format_age(b, sizeof(b), "7980000");
        ASSERT_STREQ(b, "2h13m");
        format_age(b, sizeof(b), "");
        ASSERT_STREQ(b, "-");
        format_age(b, sizeof(b), "abc");
        ASSERT_STREQ(b, "-");
        format_age(b, sizeof(b), NULL);
        ASSERT_STREQ(b, "-");
}

static void fill(ServerStatus s[3]) {
        s[0] = parse("name=primary role=primary state=up term=3 index=42 commit=42 age_ms=80 "
                     "unit=fusion-primary.service");
        s[1] = parse("name=backup role=backup state=suspect term=3 index=40 commit=40 age_ms=250 "
                     "unit=fusion-backup.service");
        s[2] = parse("name=backup2 role=backup state=down term=2 index=7 age_ms=65000 unit=fusion-backup2.service");
        snprintf(s[2].unit_active, sizeof(s[2].unit_active), "failed");
        snprintf(s[2].unit_sub, sizeof(s[2].unit_sub), "failed");
}

TEST(table_plain) {
        ServerStatus s[3];
        StatusSummary sum = { .primary_known = true, .primary = "primary", .address = "127.0.0.1:8090", .term = 3 };
        Buf b = {};

        fill(s);
        ASSERT_OK(status_format_table(&b, &sum, s, 3, false));
        ASSERT_STREQ(b.data,
                     "primary: primary at 127.0.0.1:8090, term 3\n"
                     "NAME    ROLE    STATE   TERM INDEX COMMIT AGE   UNIT\n"
                     "primary primary up      3    42    42     80ms  fusion-primary.service\n"
                     "backup  backup  suspect 3    40    40     250ms fusion-backup.service\n"
                     "backup2 backup  down    2    7     -      1m05s fusion-backup2.service failed/failed\n");
        ASSERT_TRUE(strchr(b.data, '\x1b') == NULL);
        buf_done(&b);

        /* no servers, no primary */
        StatusSummary none = { .term = 5 };
        ASSERT_OK(status_format_table(&b, &none, NULL, 0, false));
        ASSERT_STREQ(b.data, "primary: none, term 5\nNAME ROLE STATE TERM INDEX COMMIT AGE UNIT\n");
        buf_done(&b);
}

TEST(table_colour) {
        ServerStatus s[3];
        Buf b = {};

        fill(s);
        ASSERT_OK(status_format_table(&b, NULL, s, 3, true));
        /* the state cells are coloured and still padded to the plain width */
        ASSERT_TRUE(strstr(b.data, "\x1b[0;32mup\x1b[0m      3 ") != NULL);
        ASSERT_TRUE(strstr(b.data, "\x1b[0;33msuspect\x1b[0m 3 ") != NULL);
        ASSERT_TRUE(strstr(b.data, "\x1b[0;31mdown\x1b[0m    2 ") != NULL);
        ASSERT_TRUE(strstr(b.data, "\x1b[0;31mfusion-backup2.service failed/failed\x1b[0m\n") != NULL);
        ASSERT_TRUE(strstr(b.data, "\x1b[1mprimary\x1b[0m " ) != NULL);
        /* header never coloured */
        ASSERT_TRUE(strncmp(b.data, "NAME    ROLE    STATE   TERM", 28) == 0);
        buf_done(&b);
}

TEST(json) {
        ServerStatus s[3];
        StatusSummary sum = { .primary_known = true, .primary = "primary", .address = "127.0.0.1:8090", .term = 3 };
        Buf b = {};

        fill(s);
        ASSERT_OK(status_format_json(&b, &sum, s, 2));
        ASSERT_STREQ(b.data,
                     "{\"term\":3,\"primary\":\"primary\",\"servers\":["
                     "{\"name\":\"primary\",\"role\":\"primary\",\"state\":\"up\",\"term\":3,\"index\":42,"
                     "\"commit\":42,\"age_ms\":80,\"unit\":\"fusion-primary.service\",\"unit_active_state\":null,"
                     "\"unit_sub_state\":null},"
                     "{\"name\":\"backup\",\"role\":\"backup\",\"state\":\"suspect\",\"term\":3,\"index\":40,"
                     "\"commit\":40,\"age_ms\":250,\"unit\":\"fusion-backup.service\",\"unit_active_state\":null,"
                     "\"unit_sub_state\":null}]}\n");
        buf_done(&b);

        /* missing numbers are null, strings are escaped, no primary is null */
        ServerStatus odd = parse("name=x role=weird\"role state=up term=abc");
        snprintf(odd.unit, sizeof(odd.unit), "a\\b\n");
        snprintf(odd.unit_active, sizeof(odd.unit_active), "active");
        StatusSummary none = { .term = 9 };
        ASSERT_OK(status_format_json(&b, &none, &odd, 1));
        ASSERT_STREQ(b.data,
                     "{\"term\":9,\"primary\":null,\"servers\":["
                     "{\"name\":\"x\",\"role\":\"weird\\\"role\",\"state\":\"up\",\"term\":null,\"index\":null,"
                     "\"commit\":null,\"age_ms\":null,\"unit\":\"a\\\\b\\n\",\"unit_active_state\":\"active\","
                     "\"unit_sub_state\":null}]}\n");
        buf_done(&b);
}

TEST(unit_actions) {
        ASSERT_EQ_INT(unit_action_from_string("kill"), UNIT_ACTION_KILL);
        ASSERT_EQ_INT(unit_action_from_string("stop"), UNIT_ACTION_STOP);
        ASSERT_EQ_INT(unit_action_from_string("restart"), UNIT_ACTION_RESTART);
        ASSERT_EQ_INT(unit_action_from_string("hang"), UNIT_ACTION_HANG);
        ASSERT_EQ_INT(unit_action_from_string("resume"), UNIT_ACTION_RESUME);
        ASSERT_EQ_INT(unit_action_from_string("status"), _UNIT_ACTION_INVALID);
        ASSERT_EQ_INT(unit_action_from_string(NULL), _UNIT_ACTION_INVALID);
        ASSERT_STREQ(unit_action_to_string(UNIT_ACTION_HANG), "hang");
        ASSERT_TRUE(unit_action_to_string(_UNIT_ACTION_MAX) == NULL);
}

int main(void) {
        RUN(parse_server);
        RUN(age);
        RUN(table_plain);
        RUN(table_colour);
        RUN(json);
        RUN(unit_actions);
        return 0;
}
