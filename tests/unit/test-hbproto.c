/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-hbproto — the heartbeat/role lines and the replication stream: every
 * verb, every kind of error, format/parse round trips, a seeded random
 * mutation loop, and repl_match_index on diverging logs.
 */

#include <stdint.h>

#include "hbproto.h"
#include "tests.h"

/* ---- helpers ------------------------------------------------------------- */

static int hb_parse_str(const char *s, HbMessage *ret, const char **ret_reason) {
        char buf[1024];
        size_t n = strlen(s);

        ASSERT_TRUE(n < sizeof buf);
        memcpy(buf, s, n + 1);
        return hb_message_parse(buf, n, ret, ret_reason);
}

static void hb_expect_error(const char *line, const char *reason) {
        HbMessage m;
        const char *why = NULL;

        fprintf(stderr, "   hb bad: \"%s\"\n", line);
        ASSERT_EQ_INT(hb_parse_str(line, &m, &why), -EINVAL);
        ASSERT_STREQ(why, reason);
}

static bool hb_settings_equal(const HbMessage *a, const HbMessage *b) {
        return a->lease_ms == b->lease_ms && a->dead_after_ms == b->dead_after_ms &&
               a->min_sync_replicas == b->min_sync_replicas && a->heartbeat_interval_ms == b->heartbeat_interval_ms;
}

static bool hb_equal(const HbMessage *a, const HbMessage *b) {
        if (a->type != b->type)
                return false;
        switch (a->type) {
        case HB_HEARTBEAT:
                return strcmp(a->name, b->name) == 0 && a->role == b->role && a->term == b->term &&
                       a->index == b->index && a->lterm == b->lterm && a->commit == b->commit &&
                       a->pid == b->pid && a->seq == b->seq && a->probe == b->probe &&
                       a->insync == b->insync && hb_settings_equal(a, b);
        case HB_LEASE:
                return a->term == b->term && a->seq == b->seq && a->lease_ms == b->lease_ms &&
                       strcmp(a->monitor, b->monitor) == 0;
        case HB_PROMOTE:
        case HB_DEMOTE:
                return a->term == b->term && strcmp(a->monitor, b->monitor) == 0;
        case HB_FOLLOW:
                return a->term == b->term && strcmp(a->primary, b->primary) == 0 &&
                       strcmp(a->address, b->address) == 0 && strcmp(a->monitor, b->monitor) == 0;
        case HB_PROBE:
                return a->seq == b->seq;
        case HB_REJECT:
                return strcmp(a->reason, b->reason) == 0 && hb_settings_equal(a, b);
        default:
                return false;
        }
}

/* Format m, check the text, parse it back and compare. */
static void hb_roundtrip(const HbMessage *m, const char *expected) {
        Buf b = {};
        HbMessage back;
        const char *why = NULL;

        ASSERT_OK(hb_message_format(m, &b));
        if (expected)
                ASSERT_STREQ(b.data, expected);
        ASSERT_TRUE(b.len > 0 && b.data[b.len - 1] == '\n');
        ASSERT_OK(hb_message_parse(b.data, b.len - 1, &back, &why));
        ASSERT_TRUE(hb_equal(m, &back));
        buf_done(&b);
}

static int repl_parse_str(const char *s, uint64_t max_payload, ReplMessage *ret, const char **ret_reason,
                          char *storage, size_t size) {
        size_t n = strlen(s);

        ASSERT_TRUE(n < size);
        memcpy(storage, s, n + 1);
        return repl_message_parse(storage, n, max_payload, ret, ret_reason);
}

static void repl_expect_error(const char *line, uint64_t max_payload, const char *reason) {
        char buf[8192];
        ReplMessage m;
        const char *why = NULL;

        fprintf(stderr, "   repl bad: \"%.80s\"\n", line);
        ASSERT_EQ_INT(repl_parse_str(line, max_payload, &m, &why, buf, sizeof buf), -EINVAL);
        ASSERT_STREQ(why, reason);
}

static bool repl_equal(const ReplMessage *a, const ReplMessage *b) {
        if (a->type != b->type)
                return false;
        switch (a->type) {
        case REPL_SYNC:
                if (strcmp(a->name, b->name) != 0 || a->term != b->term || a->index != b->index ||
                    a->n_segments != b->n_segments)
                        return false;
                for (size_t i = 0; i < a->n_segments; i++)
                        if (a->segments[i].term != b->segments[i].term ||
                            a->segments[i].first != b->segments[i].first)
                                return false;
                return true;
        case REPL_ACK:
                return a->index == b->index;
        case REPL_SYNCED:
                return a->index == b->index && a->term == b->term && a->commit == b->commit;
        case REPL_ENTRY:
                if (a->index != b->index || a->term != b->term || a->commit != b->commit)
                        return false;
                if (!a->msgid != !b->msgid || a->msgid_len != b->msgid_len ||
                    (a->msgid && memcmp(a->msgid, b->msgid, a->msgid_len) != 0))
                        return false;
                return a->payload_len == b->payload_len &&
                       (a->payload_len == 0 || memcmp(a->payload, b->payload, a->payload_len) == 0);
        case REPL_COMMIT:
                return a->commit == b->commit;
        default:
                return false;
        }
}

static void repl_roundtrip(const ReplMessage *m, uint64_t max_payload, const char *expected) {
        Buf b = {};
        ReplMessage back;
        const char *why = NULL;

        ASSERT_OK(repl_message_format(m, &b));
        if (expected)
                ASSERT_STREQ(b.data, expected);
        ASSERT_TRUE(b.len > 0 && b.data[b.len - 1] == '\n');
        ASSERT_OK(repl_message_parse(b.data, b.len - 1, max_payload, &back, &why));
        ASSERT_TRUE(repl_equal(m, &back));
        buf_done(&b);
}

/* ---- tables --------------------------------------------------------------- */

TEST(tables) {
        ASSERT_STREQ(role_to_string(ROLE_BACKUP), "backup");
        ASSERT_STREQ(role_to_string(ROLE_PRIMARY), "primary");
        ASSERT_TRUE(role_to_string(_ROLE_MAX) == NULL);
        ASSERT_TRUE(role_to_string(_ROLE_INVALID) == NULL);
        ASSERT_EQ_INT(role_from_string("backup"), ROLE_BACKUP);
        ASSERT_EQ_INT(role_from_string("primary"), ROLE_PRIMARY);
        ASSERT_EQ_INT(role_from_string("Primary"), -EINVAL);
        ASSERT_EQ_INT(role_from_string(""), -EINVAL);
        ASSERT_EQ_INT(role_from_string(NULL), -EINVAL);

        static const char *const names[] = { "HEARTBEAT", "LEASE", "PROMOTE", "FOLLOW",
                                             "DEMOTE",    "PROBE", "REJECT" };
        ASSERT_EQ_INT(ELEMENTSOF(names), _HB_MAX);
        for (int i = 0; i < _HB_MAX; i++)
                ASSERT_STREQ(hb_type_to_string((HbType) i), names[i]);
        ASSERT_TRUE(hb_type_to_string(_HB_MAX) == NULL);
        ASSERT_TRUE(hb_type_to_string(_HB_INVALID) == NULL);
}

/* ---- heartbeat protocol: good lines --------------------------------------- */

TEST(hb_heartbeat_good) {
        HbMessage m;
        const char *why = NULL;

        ASSERT_OK(hb_parse_str("HEARTBEAT name=backup2 role=backup term=3 index=120 lterm=2 commit=118 "
                               "pid=4242 seq=77 insync=0 lease=400 dead=500 minsync=1 hbint=100",
                               &m, &why));
        ASSERT_EQ_INT(m.type, HB_HEARTBEAT);
        ASSERT_STREQ(m.name, "backup2");
        ASSERT_EQ_INT(m.role, ROLE_BACKUP);
        ASSERT_EQ_U64(m.term, 3);
        ASSERT_EQ_U64(m.index, 120);
        ASSERT_EQ_U64(m.lterm, 2);
        ASSERT_EQ_U64(m.commit, 118);
        ASSERT_EQ_U64(m.pid, 4242);
        ASSERT_EQ_U64(m.seq, 77);
        ASSERT_EQ_U64(m.probe, 0);

        /* Any order, optional probe, extreme numbers. */
        ASSERT_OK(hb_parse_str("HEARTBEAT probe=9 seq=18446744073709551615 pid=1 commit=0 lterm=0 index=0 "
                               "term=0 role=primary name=A_b-9 insync=0 lease=400 dead=500 minsync=1 hbint=100",
                               &m, &why));
        ASSERT_EQ_INT(m.type, HB_HEARTBEAT);
        ASSERT_STREQ(m.name, "A_b-9");
        ASSERT_EQ_INT(m.role, ROLE_PRIMARY);
        ASSERT_EQ_U64(m.seq, UINT64_MAX);
        ASSERT_EQ_U64(m.probe, 9);
        ASSERT_EQ_U64(m.pid, 1);
        ASSERT_EQ_U64(m.term, 0);

        /* A 32-character name is the longest. */
        ASSERT_OK(hb_parse_str("HEARTBEAT name=abcdefghijklmnopqrstuvwxyz012345 role=backup term=1 index=1 "
                               "lterm=1 commit=1 pid=1 seq=1 insync=0 lease=400 dead=500 minsync=1 hbint=100",
                               &m, &why));
        ASSERT_STREQ(m.name, "abcdefghijklmnopqrstuvwxyz012345");
}

TEST(hb_other_verbs_good) {
        HbMessage m;
        const char *why = NULL;

        ASSERT_OK(hb_parse_str("LEASE term=5 seq=1001 lease=400 monitor=m1", &m, &why));
        ASSERT_EQ_INT(m.type, HB_LEASE);
        ASSERT_EQ_U64(m.term, 5);
        ASSERT_EQ_U64(m.seq, 1001);
        ASSERT_OK(hb_parse_str("LEASE seq=2 monitor=0a-b lease=1 term=6", &m, &why));
        ASSERT_EQ_U64(m.term, 6);
        ASSERT_EQ_U64(m.seq, 2);

        ASSERT_OK(hb_parse_str("PROMOTE term=7 monitor=m1", &m, &why));
        ASSERT_EQ_INT(m.type, HB_PROMOTE);
        ASSERT_EQ_U64(m.term, 7);

        ASSERT_OK(hb_parse_str("FOLLOW term=7 primary=backup address=127.0.0.1:8089 monitor=m1", &m, &why));
        ASSERT_EQ_INT(m.type, HB_FOLLOW);
        ASSERT_EQ_U64(m.term, 7);
        ASSERT_STREQ(m.primary, "backup");
        ASSERT_STREQ(m.address, "127.0.0.1:8089");
        ASSERT_OK(hb_parse_str("FOLLOW monitor=m1 address=[::1]:8090 primary=primary term=8", &m, &why));
        ASSERT_STREQ(m.address, "[::1]:8090");
        ASSERT_STREQ(m.primary, "primary");
        ASSERT_EQ_U64(m.term, 8);
        ASSERT_OK(hb_parse_str("FOLLOW term=1 primary=p address=localhost:65535 monitor=m1", &m, &why));
        ASSERT_STREQ(m.address, "localhost:65535");

        ASSERT_OK(hb_parse_str("DEMOTE term=9 monitor=m1", &m, &why));
        ASSERT_EQ_INT(m.type, HB_DEMOTE);
        ASSERT_EQ_U64(m.term, 9);

        ASSERT_OK(hb_parse_str("PROBE seq=31", &m, &why));
        ASSERT_EQ_INT(m.type, HB_PROBE);
        ASSERT_EQ_U64(m.seq, 31);

        ASSERT_OK(hb_parse_str("REJECT reason=unknown-server", &m, &why));
        ASSERT_EQ_INT(m.type, HB_REJECT);
        ASSERT_STREQ(m.reason, "unknown-server");
        ASSERT_OK(hb_parse_str("REJECT reason=x", &m, &why));
        ASSERT_STREQ(m.reason, "x");

        /* Input is not modified. */
        char line[] = "PROMOTE term=12 monitor=m1";
        ASSERT_OK(hb_message_parse(line, strlen(line), &m, &why));
        ASSERT_STREQ(line, "PROMOTE term=12 monitor=m1");

        /* The length decides, not a NUL terminator: parse a prefix. */
        char line2[] = "PROBE seq=123 garbage";
        ASSERT_OK(hb_message_parse(line2, strlen("PROBE seq=123"), &m, &why));
        ASSERT_EQ_U64(m.seq, 123);
}

/* ---- heartbeat protocol: errors ------------------------------------------- */

#define HB_GOOD                                                                                      \
        "HEARTBEAT name=primary role=primary term=1 index=2 lterm=1 commit=2 pid=100 seq=5 insync=1 lease=400 " \
        "dead=500 minsync=1 hbint=100"

TEST(hb_errors_common) {
        hb_expect_error("", "empty line");
        hb_expect_error(" ", "stray space");
        hb_expect_error(" PROMOTE term=1", "stray space");
        hb_expect_error("PROMOTE term=1 ", "stray space");
        hb_expect_error("PROMOTE  term=1", "stray space");
        hb_expect_error("promote term=1", "unknown verb");
        hb_expect_error("ELECT term=1", "unknown verb");
        hb_expect_error("HEARTBEATS name=a", "unknown verb");
        hb_expect_error("PROMOTE term", "field without '='");
        hb_expect_error("PROMOTE =1", "unknown key");
        hb_expect_error("PROMOTE TERM=1", "unknown key");
        hb_expect_error("PROMOTE term=1\r", "bad number");

        /* NUL bytes anywhere. */
        HbMessage m;
        const char *why = NULL;
        char nul[] = "PROMOTE term=1\0";
        ASSERT_EQ_INT(hb_message_parse(nul, sizeof nul - 1, &m, &why), -EINVAL);
        ASSERT_STREQ(why, "NUL byte");
        char nul2[] = "PROMOTE te\0rm=1";
        ASSERT_EQ_INT(hb_message_parse(nul2, sizeof nul2 - 1, &m, &why), -EINVAL);
        ASSERT_STREQ(why, "NUL byte");
}

TEST(hb_errors_heartbeat) {
        static const char *const keys[] = { "name",   "role",  "term", "index",   "lterm", "commit", "pid",
                                            "seq",    "insync", "lease", "dead", "minsync", "hbint" };
        char line[512];

        ASSERT_OK(hb_parse_str(HB_GOOD, &(HbMessage) {}, NULL));

        /* Each required key missing. */
        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                const char *k, *end;

                /* Find " key=" exactly, then cut that field out. */
                snprintf(line, sizeof line, " %s=", keys[i]);
                k = strstr(HB_GOOD, line);
                ASSERT_TRUE(k);
                end = strchr(k + 1, ' ');
                snprintf(line, sizeof line, "%.*s%s", (int) (k - HB_GOOD), HB_GOOD, end ? end : "");
                hb_expect_error(line, "missing key");
        }
        hb_expect_error("HEARTBEAT", "missing key");

        /* Each key duplicated (also with the same value). */
        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                const char *k;
                snprintf(line, sizeof line, " %s=", keys[i]);
                k = strstr(HB_GOOD, line);
                ASSERT_TRUE(k);
                const char *end = strchr(k + 1, ' ');
                size_t n = end ? (size_t) (end - k) : strlen(k);
                snprintf(line, sizeof line, "%s%.*s", HB_GOOD, (int) n, k);
                hb_expect_error(line, "duplicate key");
        }
        hb_expect_error(HB_GOOD " probe=1 probe=2", "duplicate key");

        /* Keys of other verbs, unknown keys. */
        hb_expect_error(HB_GOOD " primary=backup", "unknown key");
        hb_expect_error(HB_GOOD " address=127.0.0.1:1", "unknown key");
        hb_expect_error(HB_GOOD " reason=x", "unknown key");
        hb_expect_error(HB_GOOD " color=red", "unknown key");
        hb_expect_error(HB_GOOD " probe", "field without '='");

        /* Empty values. */
        hb_expect_error("HEARTBEAT name= role=primary term=1 index=2 lterm=1 commit=2 pid=100 seq=5",
                        "empty value");
        hb_expect_error("HEARTBEAT name=p role=primary term= index=2 lterm=1 commit=2 pid=100 seq=5",
                        "empty value");
        hb_expect_error(HB_GOOD " probe=", "empty value");

        /* Bad numbers. */
        hb_expect_error("HEARTBEAT name=p role=primary term=-1 index=2 lterm=1 commit=2 pid=100 seq=5",
                        "bad number");
        hb_expect_error("HEARTBEAT name=p role=primary term=+1 index=2 lterm=1 commit=2 pid=100 seq=5",
                        "bad number");
        hb_expect_error("HEARTBEAT name=p role=primary term=1 index=0x2 lterm=1 commit=2 pid=100 seq=5",
                        "bad number");
        hb_expect_error("HEARTBEAT name=p role=primary term=1 index=2 lterm=1a commit=2 pid=100 seq=5",
                        "bad number");
        hb_expect_error("HEARTBEAT name=p role=primary term=1 index=2 lterm=1 commit=2.0 pid=100 seq=5",
                        "bad number");
        hb_expect_error("HEARTBEAT name=p role=primary term=1 index=2 lterm=1 commit=2 pid=100 seq=5=5",
                        "bad number");
        hb_expect_error("HEARTBEAT name=p role=primary term=1 index=2 lterm=1 commit=2 pid=100 "
                        "seq=18446744073709551616",
                        "bad number");
        hb_expect_error(HB_GOOD " probe=99999999999999999999", "bad number");
        hb_expect_error(HB_GOOD " probe=000000000000000000001", "number too long");

        /* Bad names, too long names. */
        hb_expect_error("HEARTBEAT name=pri.mary role=primary term=1 index=2 lterm=1 commit=2 pid=100 seq=5",
                        "bad name");
        hb_expect_error("HEARTBEAT name=pri/mary role=primary term=1 index=2 lterm=1 commit=2 pid=100 seq=5",
                        "bad name");
        hb_expect_error("HEARTBEAT name=abcdefghijklmnopqrstuvwxyz0123456 role=primary term=1 index=2 lterm=1 "
                        "commit=2 pid=100 seq=5",
                        "name too long");

        /* Bad roles. */
        hb_expect_error("HEARTBEAT name=p role=master term=1 index=2 lterm=1 commit=2 pid=100 seq=5", "bad role");
        hb_expect_error("HEARTBEAT name=p role=PRIMARY term=1 index=2 lterm=1 commit=2 pid=100 seq=5",
                        "bad role");
}

TEST(hb_errors_other_verbs) {
        /* LEASE */
        hb_expect_error("LEASE term=1", "missing key");
        hb_expect_error("LEASE seq=1", "missing key");
        hb_expect_error("LEASE", "missing key");
        hb_expect_error("LEASE term=1 seq=1 term=1", "duplicate key");
        hb_expect_error("LEASE term=1 seq=1 probe=1", "unknown key");
        hb_expect_error("LEASE term=1 seq=", "empty value");
        hb_expect_error("LEASE term=one seq=1", "bad number");
        hb_expect_error("LEASE term=1 seq=123456789012345678901", "number too long");

        /* PROMOTE */
        hb_expect_error("PROMOTE", "missing key");
        hb_expect_error("PROMOTE term=1 term=2", "duplicate key");
        hb_expect_error("PROMOTE term=1 seq=1", "unknown key");
        hb_expect_error("PROMOTE term=", "empty value");
        hb_expect_error("PROMOTE term= 1", "empty value");
        hb_expect_error("PROMOTE term=1 1", "field without '='");
        hb_expect_error("PROMOTE term=18446744073709551616", "bad number");

        /* FOLLOW */
        hb_expect_error("FOLLOW term=1 primary=p", "missing key");
        hb_expect_error("FOLLOW term=1 address=127.0.0.1:1", "missing key");
        hb_expect_error("FOLLOW primary=p address=127.0.0.1:1", "missing key");
        hb_expect_error("FOLLOW term=1 primary=p address=127.0.0.1:1 primary=p", "duplicate key");
        hb_expect_error("FOLLOW term=1 primary=p address=127.0.0.1:1 name=p", "unknown key");
        hb_expect_error("FOLLOW term=1 primary= address=127.0.0.1:1", "empty value");
        hb_expect_error("FOLLOW term=1 primary=p address=", "empty value");
        hb_expect_error("FOLLOW term=x primary=p address=127.0.0.1:1", "bad number");
        hb_expect_error("FOLLOW term=1 primary=p! address=127.0.0.1:1", "bad name");
        hb_expect_error("FOLLOW term=1 primary=abcdefghijklmnopqrstuvwxyz0123456 address=127.0.0.1:1",
                        "name too long");
        hb_expect_error("FOLLOW term=1 primary=p address=127.0.0.1", "bad address");
        hb_expect_error("FOLLOW term=1 primary=p address=127.0.0.1:0", "bad address");
        hb_expect_error("FOLLOW term=1 primary=p address=127.0.0.1:65536", "bad address");
        hb_expect_error("FOLLOW term=1 primary=p address=127.0.0.1:http", "bad address");
        hb_expect_error("FOLLOW term=1 primary=p address=/run/fusion/primary.sock", "bad address");
        hb_expect_error("FOLLOW term=1 primary=p address=example.invalid:80", "bad address");
        hb_expect_error("FOLLOW term=1 primary=p address=:8090", "bad address");
        {
                char line[300];
                char host[140];

                memset(host, '1', sizeof host - 1);
                host[sizeof host - 1] = '\0';
                snprintf(line, sizeof line, "FOLLOW term=1 primary=p address=%s:80", host);
                hb_expect_error(line, "address too long");
        }

        /* DEMOTE */
        hb_expect_error("DEMOTE", "missing key");
        hb_expect_error("DEMOTE term=1 term=1", "duplicate key");
        hb_expect_error("DEMOTE term=1 primary=p", "unknown key");
        hb_expect_error("DEMOTE term=", "empty value");
        hb_expect_error("DEMOTE term=1x", "bad number");

        /* PROBE */
        hb_expect_error("PROBE", "missing key");
        hb_expect_error("PROBE seq=1 seq=2", "duplicate key");
        hb_expect_error("PROBE seq=1 term=1", "unknown key");
        hb_expect_error("PROBE seq=", "empty value");
        hb_expect_error("PROBE seq= ", "stray space");
        hb_expect_error("PROBE seq=-5", "bad number");

        /* REJECT */
        hb_expect_error("REJECT", "missing key");
        hb_expect_error("REJECT reason=a reason=b", "duplicate key");
        hb_expect_error("REJECT reason=a term=1", "unknown key");
        hb_expect_error("REJECT reason=", "empty value");
        hb_expect_error("REJECT reason=Unknown", "bad reason");
        hb_expect_error("REJECT reason=unknown_server", "bad reason");
        hb_expect_error("REJECT reason=a=b", "bad reason");
        hb_expect_error("REJECT reason=0123456789012345678901234567890123456789012345678901234567890123",
                        "reason too long");
        HbMessage m;
        ASSERT_OK(hb_parse_str("REJECT reason=012345678901234567890123456789012345678901234567890123456789012",
                               &m, NULL));
        ASSERT_EQ_U64(strlen(m.reason), HB_REASON_MAX);
}

/* ---- heartbeat protocol: formatting --------------------------------------- */

TEST(hb_format) {
        HbMessage m = { .type = HB_HEARTBEAT, .role = ROLE_PRIMARY, .term = 4, .index = 10, .lterm = 4,
                        .commit = 9, .pid = 1234, .seq = 55, .insync = 2, .lease_ms = 400, .dead_after_ms = 500,
                        .min_sync_replicas = 1, .heartbeat_interval_ms = 100 };
        Buf b = {};

        strcpy(m.name, "primary");
        hb_roundtrip(&m, "HEARTBEAT name=primary role=primary term=4 index=10 lterm=4 commit=9 pid=1234 seq=55 "
                         "insync=2 lease=400 dead=500 minsync=1 hbint=100\n");
        m.probe = 3;
        m.role = ROLE_BACKUP;
        m.insync = 0;
        hb_roundtrip(&m, "HEARTBEAT name=primary role=backup term=4 index=10 lterm=4 commit=9 pid=1234 seq=55 "
                         "insync=0 lease=400 dead=500 minsync=1 hbint=100 probe=3\n");

        hb_roundtrip(&(HbMessage) { .type = HB_LEASE, .term = 4, .seq = UINT64_MAX, .lease_ms = 400, .monitor = "m1" },
                     "LEASE term=4 seq=18446744073709551615 lease=400 monitor=m1\n");
        hb_roundtrip(&(HbMessage) { .type = HB_PROMOTE, .term = 5, .monitor = "0123456789abcdef0123456789abcdef" },
                     "PROMOTE term=5 monitor=0123456789abcdef0123456789abcdef\n");
        hb_roundtrip(&(HbMessage) { .type = HB_DEMOTE, .term = 6, .monitor = "m-2" }, "DEMOTE term=6 monitor=m-2\n");
        hb_roundtrip(&(HbMessage) { .type = HB_PROBE, .seq = 0 }, "PROBE seq=0\n");

        HbMessage f = { .type = HB_FOLLOW, .term = 7, .monitor = "m1" };
        strcpy(f.primary, "backup2");
        strcpy(f.address, "[::1]:8088");
        hb_roundtrip(&f, "FOLLOW term=7 primary=backup2 address=[::1]:8088 monitor=m1\n");

        HbMessage r = { .type = HB_REJECT };
        strcpy(r.reason, "unknown-server");
        hb_roundtrip(&r, "REJECT reason=unknown-server\n");
        HbMessage rs = { .type = HB_REJECT, .reason = "settings", .lease_ms = 200, .dead_after_ms = 300,
                         .min_sync_replicas = 2, .heartbeat_interval_ms = 50 };
        hb_roundtrip(&rs, "REJECT reason=settings lease=200 dead=300 minsync=2 hbint=50\n");

        /* Formatting appends. */
        ASSERT_OK(buf_append_str(&b, "x"));
        ASSERT_OK(hb_message_format(&(HbMessage) { .type = HB_PROMOTE, .term = 1, .monitor = "a" }, &b));
        ASSERT_STREQ(b.data, "xPROMOTE term=1 monitor=a\n");
        buf_done(&b);

        /* What the parser would refuse is not formatted. */
        HbMessage bad = m;
        strcpy(bad.name, "bad name");
        ASSERT_EQ_INT(hb_message_format(&bad, &b), -EINVAL);
        bad = m;
        bad.role = _ROLE_INVALID;
        ASSERT_EQ_INT(hb_message_format(&bad, &b), -EINVAL);
        bad = f;
        strcpy(bad.address, "/run/x.sock");
        ASSERT_EQ_INT(hb_message_format(&bad, &b), -EINVAL);
        bad = f;
        bad.primary[0] = '\0';
        ASSERT_EQ_INT(hb_message_format(&bad, &b), -EINVAL);
        bad = f;
        bad.monitor[0] = '\0';
        ASSERT_EQ_INT(hb_message_format(&bad, &b), -EINVAL);
        bad = f;
        strcpy(bad.monitor, "M1");
        ASSERT_EQ_INT(hb_message_format(&bad, &b), -EINVAL);
        ASSERT_EQ_INT(hb_message_format(&(HbMessage) { .type = HB_LEASE, .term = 1, .seq = 1 }, &b), -EINVAL);
        bad = r;
        strcpy(bad.reason, "No");
        ASSERT_EQ_INT(hb_message_format(&bad, &b), -EINVAL);
        ASSERT_EQ_INT(hb_message_format(&(HbMessage) { .type = _HB_MAX }, &b), -EINVAL);
        ASSERT_EQ_INT(hb_message_format(&(HbMessage) { .type = _HB_INVALID }, &b), -EINVAL);
        ASSERT_EQ_U64(b.len, 0);
        buf_done(&b);
}

TEST(hb_new_keys) {
        HbMessage m;
        const char *why = NULL;

        /* Settings and insync on a heartbeat. */
        ASSERT_OK(hb_parse_str(HB_GOOD, &m, &why));
        ASSERT_EQ_U64(m.insync, 1);
        ASSERT_EQ_U64(m.lease_ms, 400);
        ASSERT_EQ_U64(m.dead_after_ms, 500);
        ASSERT_EQ_U64(m.min_sync_replicas, 1);
        ASSERT_EQ_U64(m.heartbeat_interval_ms, 100);
        hb_expect_error(HB_GOOD " lease=400", "duplicate key");
        hb_expect_error(HB_GOOD " monitor=m1", "unknown key");

        /* Commands carry the monitor's identity. */
        hb_expect_error("LEASE term=1 seq=1 lease=400", "missing key");
        hb_expect_error("LEASE term=1 seq=1 monitor=m1", "missing key");
        hb_expect_error("PROMOTE term=1", "missing key");
        hb_expect_error("DEMOTE term=1", "missing key");
        hb_expect_error("FOLLOW term=1 primary=p address=127.0.0.1:1", "missing key");
        hb_expect_error("PROMOTE term=1 monitor=", "empty value");
        hb_expect_error("PROMOTE term=1 monitor=M1", "bad monitor id");
        hb_expect_error("PROMOTE term=1 monitor=a_b", "bad monitor id");
        hb_expect_error("PROMOTE term=1 monitor=0123456789abcdef0123456789abcdef0", "monitor id too long");
        hb_expect_error("PROBE seq=1 monitor=m1", "unknown key");

        /* REJECT: the settings all or none. */
        ASSERT_OK(hb_parse_str("REJECT reason=settings lease=200 dead=300 minsync=1 hbint=100", &m, &why));
        ASSERT_EQ_U64(m.lease_ms, 200);
        ASSERT_EQ_U64(m.dead_after_ms, 300);
        hb_expect_error("REJECT reason=settings lease=200", "missing key");
        hb_expect_error("REJECT reason=settings lease=200 dead=300 minsync=1", "missing key");
        hb_expect_error("REJECT reason=x insync=1", "unknown key");
}

/* ---- replication: good lines ---------------------------------------------- */

TEST(repl_good) {
        char buf[8192];
        ReplMessage m;
        const char *why = NULL;

        ASSERT_OK(repl_parse_str("SYNC backup 3 120 1:1,2:50,3:101", 65536, &m, &why, buf, sizeof buf));
        ASSERT_EQ_INT(m.type, REPL_SYNC);
        ASSERT_STREQ(m.name, "backup");
        ASSERT_EQ_U64(m.term, 3);
        ASSERT_EQ_U64(m.index, 120);
        ASSERT_EQ_U64(m.n_segments, 3);
        ASSERT_EQ_U64(m.segments[0].term, 1);
        ASSERT_EQ_U64(m.segments[0].first, 1);
        ASSERT_EQ_U64(m.segments[1].term, 2);
        ASSERT_EQ_U64(m.segments[1].first, 50);
        ASSERT_EQ_U64(m.segments[2].term, 3);
        ASSERT_EQ_U64(m.segments[2].first, 101);
        ASSERT_EQ_U64(m.segments[2].last, 0);

        ASSERT_OK(repl_parse_str("SYNC backup2 4 0 -", 65536, &m, &why, buf, sizeof buf));
        ASSERT_EQ_INT(m.type, REPL_SYNC);
        ASSERT_STREQ(m.name, "backup2");
        ASSERT_EQ_U64(m.term, 4);
        ASSERT_EQ_U64(m.index, 0);
        ASSERT_EQ_U64(m.n_segments, 0);

        /* A truncated segment list: oldest sent segment may start anywhere. */
        ASSERT_OK(repl_parse_str("SYNC b 9 9 7:5", 65536, &m, &why, buf, sizeof buf));
        ASSERT_EQ_U64(m.n_segments, 1);
        ASSERT_EQ_U64(m.segments[0].term, 7);
        ASSERT_EQ_U64(m.segments[0].first, 5);
        /* The newest segment may hold a single entry: first == last_index. */
        ASSERT_OK(repl_parse_str("SYNC b 9 9 7:5,8:9", 65536, &m, &why, buf, sizeof buf));
        ASSERT_EQ_U64(m.n_segments, 2);

        ASSERT_OK(repl_parse_str("ACK 77", 65536, &m, &why, buf, sizeof buf));
        ASSERT_EQ_INT(m.type, REPL_ACK);
        ASSERT_EQ_U64(m.index, 77);
        ASSERT_OK(repl_parse_str("ACK 0", 65536, &m, &why, buf, sizeof buf));
        ASSERT_EQ_U64(m.index, 0);

        ASSERT_OK(repl_parse_str("SYNCED 100 3 98", 65536, &m, &why, buf, sizeof buf));
        ASSERT_EQ_INT(m.type, REPL_SYNCED);
        ASSERT_EQ_U64(m.index, 100);
        ASSERT_EQ_U64(m.term, 3);
        ASSERT_EQ_U64(m.commit, 98);

        ASSERT_OK(repl_parse_str("COMMIT 101", 65536, &m, &why, buf, sizeof buf));
        ASSERT_EQ_INT(m.type, REPL_COMMIT);
        ASSERT_EQ_U64(m.commit, 101);

        ASSERT_OK(repl_parse_str("ENTRY 101 3 100 order-17 hello  world ", 65536, &m, &why, buf, sizeof buf));
        ASSERT_EQ_INT(m.type, REPL_ENTRY);
        ASSERT_EQ_U64(m.index, 101);
        ASSERT_EQ_U64(m.term, 3);
        ASSERT_EQ_U64(m.commit, 100);
        ASSERT_EQ_U64(m.msgid_len, 8);
        ASSERT_TRUE(memcmp(m.msgid, "order-17", 8) == 0);
        ASSERT_TRUE(m.msgid == buf + strlen("ENTRY 101 3 100 "));
        ASSERT_EQ_U64(m.payload_len, strlen("hello  world "));
        ASSERT_TRUE(memcmp(m.payload, "hello  world ", m.payload_len) == 0);
        ASSERT_TRUE(m.payload >= buf && m.payload < buf + sizeof buf);

        /* A message sent without msgid. */
        ASSERT_OK(repl_parse_str("ENTRY 5 1 4 * x", 65536, &m, &why, buf, sizeof buf));
        ASSERT_TRUE(m.msgid == NULL);
        ASSERT_EQ_U64(m.msgid_len, 0);
        ASSERT_EQ_U64(m.payload_len, 1);
        ASSERT_TRUE(m.payload[0] == 'x');

        /* A term-start record. */
        ASSERT_OK(repl_parse_str("ENTRY 6 2 5 * ", 65536, &m, &why, buf, sizeof buf));
        ASSERT_EQ_INT(m.type, REPL_ENTRY);
        ASSERT_TRUE(m.msgid == NULL);
        ASSERT_EQ_U64(m.payload_len, 0);
        ASSERT_EQ_U64(m.index, 6);
        ASSERT_EQ_U64(m.term, 2);

        /* Payload exactly max_payload; payloads are bytes (high bit, tabs, '\r'). */
        ASSERT_OK(repl_parse_str("ENTRY 1 1 0 * abcd", 4, &m, &why, buf, sizeof buf));
        ASSERT_EQ_U64(m.payload_len, 4);
        ASSERT_OK(repl_parse_str("ENTRY 1 1 0 id \xff\t\r*", 4, &m, &why, buf, sizeof buf));
        ASSERT_EQ_U64(m.payload_len, 4);
        ASSERT_TRUE((unsigned char) m.payload[0] == 0xff);

        /* 64 segments is the maximum. */
        Buf b = {};
        ASSERT_OK(buf_append_str(&b, "SYNC b 64 1000 "));
        for (unsigned i = 1; i <= REPL_SEGMENTS_MAX; i++)
                ASSERT_OK(buf_printf(&b, "%s%u:%u", i > 1 ? "," : "", i, i * 10));
        ASSERT_OK(repl_message_parse(b.data, b.len, 65536, &m, &why));
        ASSERT_EQ_U64(m.n_segments, REPL_SEGMENTS_MAX);
        ASSERT_EQ_U64(m.segments[63].term, 64);
        ASSERT_EQ_U64(m.segments[63].first, 640);
        /* ... and 65 is too many. */
        ASSERT_OK(buf_append_str(&b, ",65:650"));
        ASSERT_EQ_INT(repl_message_parse(b.data, b.len, 65536, &m, &why), -EINVAL);
        ASSERT_STREQ(why, "too many segments");
        buf_done(&b);
}

/* ---- replication: errors --------------------------------------------------- */

TEST(repl_errors) {
        /* common */
        repl_expect_error("", 100, "empty line");
        repl_expect_error(" ACK 1", 100, "stray space");
        repl_expect_error("ack 1", 100, "unknown verb");
        repl_expect_error("PSYNC x 1 1 -", 100, "unknown verb");
        {
                char line[] = "ACK 1\0";
                ReplMessage m;
                const char *why = NULL;
                ASSERT_EQ_INT(repl_message_parse(line, sizeof line - 1, 100, &m, &why), -EINVAL);
                ASSERT_STREQ(why, "NUL byte");
                char line2[] = "ENTRY 1 1 0 * ab\0cd";
                ASSERT_EQ_INT(repl_message_parse(line2, sizeof line2 - 1, 100, &m, &why), -EINVAL);
                ASSERT_STREQ(why, "NUL byte");
        }

        /* SYNC */
        repl_expect_error("SYNC", 100, "wrong number of fields");
        repl_expect_error("SYNC b 1 1", 100, "wrong number of fields");
        repl_expect_error("SYNC b 1 1 1:1 x", 100, "too many fields");
        repl_expect_error("SYNC b 1 1  1:1", 100, "stray space");
        repl_expect_error("SYNC b 1 1 1:1 ", 100, "stray space");
        repl_expect_error("SYNC b! 1 1 1:1", 100, "bad name");
        repl_expect_error("SYNC abcdefghijklmnopqrstuvwxyz0123456 1 1 1:1", 100, "bad name");
        repl_expect_error("SYNC b x 1 1:1", 100, "bad number");
        repl_expect_error("SYNC b 1 -1 1:1", 100, "bad number");
        repl_expect_error("SYNC b 1 18446744073709551616 1:1", 100, "bad number");
        repl_expect_error("SYNC b 1 5 1", 100, "bad segment");
        repl_expect_error("SYNC b 1 5 1:", 100, "bad segment");
        repl_expect_error("SYNC b 1 5 :1", 100, "bad segment");
        repl_expect_error("SYNC b 1 5 1:1,", 100, "bad segment");
        repl_expect_error("SYNC b 1 5 ,1:1", 100, "bad segment");
        repl_expect_error("SYNC b 1 5 1:1,,2:3", 100, "bad segment");
        repl_expect_error("SYNC b 1 5 1-1", 100, "bad segment");
        repl_expect_error("SYNC b 1 5 1:1:1", 100, "bad segment");
        repl_expect_error("SYNC b 1 5 1:x", 100, "bad segment");
        repl_expect_error("SYNC b 1 5 --", 100, "bad segment");
        repl_expect_error("SYNC b 1 5 0:1", 100, "segment term and index must be >= 1");
        repl_expect_error("SYNC b 1 5 1:0", 100, "segment term and index must be >= 1");
        repl_expect_error("SYNC b 1 5 2:1,1:3", 100, "segments not strictly increasing");
        repl_expect_error("SYNC b 1 5 1:1,1:3", 100, "segments not strictly increasing");
        repl_expect_error("SYNC b 1 5 1:3,2:3", 100, "segments not strictly increasing");
        repl_expect_error("SYNC b 1 5 1:3,2:2", 100, "segments not strictly increasing");
        repl_expect_error("SYNC b 1 5 1:1,2:6", 100, "segment beyond last index");
        repl_expect_error("SYNC b 1 0 1:1", 100, "segment beyond last index");
        repl_expect_error("SYNC b 1 3 -", 100, "no segments for a non-empty log");

        /* ACK, COMMIT */
        repl_expect_error("ACK", 100, "wrong number of fields");
        repl_expect_error("ACK 1 2", 100, "wrong number of fields");
        repl_expect_error("ACK  1", 100, "stray space");
        repl_expect_error("ACK x", 100, "bad number");
        repl_expect_error("ACK 1.5", 100, "bad number");
        repl_expect_error("COMMIT", 100, "wrong number of fields");
        repl_expect_error("COMMIT 1 2", 100, "wrong number of fields");
        repl_expect_error("COMMIT +1", 100, "bad number");
        repl_expect_error("COMMIT 1 ", 100, "stray space");

        /* SYNCED */
        repl_expect_error("SYNCED 1 2", 100, "wrong number of fields");
        repl_expect_error("SYNCED 1 2 3 4", 100, "wrong number of fields");
        repl_expect_error("SYNCED 1 x 3", 100, "bad number");
        repl_expect_error("SYNCED 1 2 3x", 100, "bad number");

        /* ENTRY */
        repl_expect_error("ENTRY", 100, "missing or empty field");
        repl_expect_error("ENTRY 1 1", 100, "missing or empty field");
        repl_expect_error("ENTRY 1 1 0", 100, "missing payload separator");
        repl_expect_error("ENTRY 1 1 0 *", 100, "missing payload separator");
        repl_expect_error("ENTRY 1  1 0 * x", 100, "missing or empty field");
        repl_expect_error("ENTRY 0 1 0 * x", 100, "index and term must be >= 1");
        repl_expect_error("ENTRY 1 0 0 * x", 100, "index and term must be >= 1");
        repl_expect_error("ENTRY x 1 0 * x", 100, "bad number");
        repl_expect_error("ENTRY 1 1 -0 * x", 100, "bad number");
        repl_expect_error("ENTRY 1 1 0 bad/id x", 100, "bad msgid");
        repl_expect_error("ENTRY 1 1 0  x", 100, "bad msgid");
        repl_expect_error("ENTRY 1 1 0 ** x", 100, "bad msgid");
        repl_expect_error("ENTRY 1 1 0 "
                          "a12345678901234567890123456789012345678901234567890123456789012345 x",
                          100, "bad msgid");
        repl_expect_error("ENTRY 1 1 0 id ", 100, "empty payload");
        repl_expect_error("ENTRY 1 1 0 * abcde", 4, "payload too long");
        repl_expect_error("ENTRY 1 1 0 * x", 0, "payload too long");
        repl_expect_error("ENTRY 1 1 0 * a\nb", 100, "newline in payload");
}

/* ---- replication: formatting ----------------------------------------------- */

TEST(repl_format) {
        ReplMessage m = { .type = REPL_SYNC, .term = 3, .index = 120, .n_segments = 3,
                          .segments = { { 1, 1, 0 }, { 2, 50, 0 }, { 3, 101, 0 } } };
        Buf b = {};

        strcpy(m.name, "backup");
        repl_roundtrip(&m, 100, "SYNC backup 3 120 1:1,2:50,3:101\n");
        m.n_segments = 0;
        m.index = 0;
        repl_roundtrip(&m, 100, "SYNC backup 3 0 -\n");
        repl_roundtrip(&(ReplMessage) { .type = REPL_ACK, .index = 5 }, 100, "ACK 5\n");
        repl_roundtrip(&(ReplMessage) { .type = REPL_SYNCED, .index = 4, .term = 3, .commit = 2 }, 100,
                       "SYNCED 4 3 2\n");
        repl_roundtrip(&(ReplMessage) { .type = REPL_COMMIT, .commit = UINT64_MAX }, 100,
                       "COMMIT 18446744073709551615\n");
        repl_roundtrip(&(ReplMessage) { .type = REPL_ENTRY, .index = 7, .term = 3, .commit = 6, .msgid = "m-1",
                                        .msgid_len = 3, .payload = "a b  c", .payload_len = 6 },
                       100, "ENTRY 7 3 6 m-1 a b  c\n");
        repl_roundtrip(&(ReplMessage) { .type = REPL_ENTRY, .index = 8, .term = 4, .commit = 7 }, 100,
                       "ENTRY 8 4 7 * \n");
        repl_roundtrip(&(ReplMessage) { .type = REPL_ENTRY, .index = 9, .term = 4, .commit = 7,
                                        .payload = " ", .payload_len = 1 },
                       100, "ENTRY 9 4 7 *  \n");

        /* 64 segments round trip. */
        ReplMessage big = { .type = REPL_SYNC, .term = 70, .index = 700, .n_segments = REPL_SEGMENTS_MAX };
        strcpy(big.name, "b");
        for (size_t i = 0; i < REPL_SEGMENTS_MAX; i++)
                big.segments[i] = (LogSegment) { .term = i + 2, .first = i * 10 + 1 };
        repl_roundtrip(&big, 100, NULL);

        /* Refused: what the parser would refuse. */
        ReplMessage bad = m;
        strcpy(bad.name, "no good");
        ASSERT_EQ_INT(repl_message_format(&bad, &b), -EINVAL);
        bad = big;
        bad.n_segments = REPL_SEGMENTS_MAX + 1;
        ASSERT_EQ_INT(repl_message_format(&bad, &b), -EINVAL);
        bad = big;
        bad.segments[5].term = bad.segments[4].term;
        ASSERT_EQ_INT(repl_message_format(&bad, &b), -EINVAL);
        bad = big;
        bad.index = bad.segments[63].first - 1;
        ASSERT_EQ_INT(repl_message_format(&bad, &b), -EINVAL);
        bad = m;
        bad.index = 3; /* non-empty log without segments */
        ASSERT_EQ_INT(repl_message_format(&bad, &b), -EINVAL);
        ASSERT_EQ_INT(repl_message_format(&(ReplMessage) { .type = REPL_ENTRY, .index = 0, .term = 1 }, &b),
                      -EINVAL);
        ASSERT_EQ_INT(repl_message_format(&(ReplMessage) { .type = REPL_ENTRY, .index = 1, .term = 0 }, &b),
                      -EINVAL);
        ASSERT_EQ_INT(repl_message_format(&(ReplMessage) { .type = REPL_ENTRY, .index = 1, .term = 1,
                                                           .msgid = "id", .msgid_len = 2 },
                                          &b),
                      -EINVAL);
        ASSERT_EQ_INT(repl_message_format(&(ReplMessage) { .type = REPL_ENTRY, .index = 1, .term = 1,
                                                           .msgid = "i d", .msgid_len = 3, .payload = "x",
                                                           .payload_len = 1 },
                                          &b),
                      -EINVAL);
        ASSERT_EQ_INT(repl_message_format(&(ReplMessage) { .type = REPL_ENTRY, .index = 1, .term = 1,
                                                           .payload = "a\nb", .payload_len = 3 },
                                          &b),
                      -EINVAL);
        ASSERT_EQ_INT(repl_message_format(&(ReplMessage) { .type = REPL_ENTRY, .index = 1, .term = 1,
                                                           .payload = "a\0b", .payload_len = 3 },
                                          &b),
                      -EINVAL);
        ASSERT_EQ_INT(repl_message_format(&(ReplMessage) { .type = _REPL_MAX }, &b), -EINVAL);
        ASSERT_EQ_INT(repl_message_format(&(ReplMessage) { .type = _REPL_INVALID }, &b), -EINVAL);
        ASSERT_EQ_U64(b.len, 0);
        buf_done(&b);
}

/* ---- line length limits (documented in doc/protocol.md) -------------------- */

TEST(limits) {
        Buf b = {};
        HbMessage m = { .type = HB_HEARTBEAT, .role = ROLE_PRIMARY, .term = UINT64_MAX, .index = UINT64_MAX,
                        .lterm = UINT64_MAX, .commit = UINT64_MAX, .pid = UINT64_MAX, .seq = UINT64_MAX,
                        .probe = UINT64_MAX, .insync = UINT64_MAX, .lease_ms = UINT64_MAX,
                        .dead_after_ms = UINT64_MAX, .min_sync_replicas = UINT64_MAX,
                        .heartbeat_interval_ms = UINT64_MAX };

        /* The longest heartbeat-protocol line: 382 bytes + '\n' -> 512 is enough. */
        memset(m.name, 'n', NAME_MAX_LEN);
        m.name[NAME_MAX_LEN] = '\0';
        ASSERT_OK(hb_message_format(&m, &b));
        ASSERT_EQ_U64(b.len - 1, 382);
        buf_clear(&b);

        HbMessage f = { .type = HB_FOLLOW, .term = UINT64_MAX };
        memset(f.monitor, 'm', HB_MONITOR_ID_MAX);
        memset(f.primary, 'p', NAME_MAX_LEN);
        memset(f.address, '1', HB_ADDRESS_MAX - 6);
        memcpy(f.address + HB_ADDRESS_MAX - 6, ":65535", 7);
        /* Not a valid address (too many digits), but any valid one is no longer. */
        ASSERT_EQ_INT(hb_message_format(&f, &b), -EINVAL);
        strcpy(f.address, "[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:65535");
        ASSERT_OK(hb_message_format(&f, &b));
        ASSERT_TRUE(b.len - 1 - strlen(f.address) + HB_ADDRESS_MAX <= 382);
        buf_clear(&b);

        /* ENTRY adds at most 134 bytes to its payload. */
        char id[MSGID_MAX_LEN];
        memset(id, 'i', sizeof id);
        ReplMessage e = { .type = REPL_ENTRY, .index = UINT64_MAX, .term = UINT64_MAX, .commit = UINT64_MAX,
                          .msgid = id, .msgid_len = sizeof id, .payload = "x", .payload_len = 1 };
        ASSERT_OK(repl_message_format(&e, &b));
        ASSERT_EQ_U64(b.len - 1 - 1, 134);
        buf_clear(&b);

        /* The longest SYNC line: 2767 bytes. */
        ReplMessage sy = { .type = REPL_SYNC, .term = UINT64_MAX, .index = UINT64_MAX,
                           .n_segments = REPL_SEGMENTS_MAX };
        memset(sy.name, 'n', NAME_MAX_LEN);
        for (size_t i = 0; i < REPL_SEGMENTS_MAX; i++)
                sy.segments[i] = (LogSegment) { .term = UINT64_MAX - 63 + i, .first = UINT64_MAX - 63 + i };
        ASSERT_OK(repl_message_format(&sy, &b));
        ASSERT_EQ_U64(b.len - 1, 2767);
        buf_done(&b);
}

/* ---- random mutation loop --------------------------------------------------- */

static uint64_t rng_state;

static uint64_t rng(void) {
        /* xorshift64* */
        rng_state ^= rng_state >> 12;
        rng_state ^= rng_state << 25;
        rng_state ^= rng_state >> 27;
        return rng_state * 2685821657736338717ULL;
}

static const char *const corpus[] = {
        "HEARTBEAT name=primary role=primary term=4 index=10 lterm=4 commit=9 pid=1234 seq=55",
        "HEARTBEAT seq=1 name=b role=backup term=0 index=0 lterm=0 commit=0 pid=1 probe=2",
        "LEASE term=4 seq=55",
        "PROMOTE term=5",
        "FOLLOW term=5 primary=backup address=127.0.0.1:8089",
        "FOLLOW term=5 primary=backup address=[::1]:8089",
        "DEMOTE term=6",
        "PROBE seq=9",
        "REJECT reason=unknown-server",
        "SYNC backup 3 120 1:1,2:50,3:101",
        "SYNC backup2 4 0 -",
        "ACK 77",
        "SYNCED 100 3 98",
        "COMMIT 101",
        "ENTRY 101 3 100 order-17 hello world",
        "ENTRY 6 2 5 * ",
        "ENTRY 7 2 5 * payload with  spaces",
};

static const char interesting[] = " =:,*-01289aZ\0\n\r[]./_";

static size_t mutate(char *buf, size_t len, size_t cap) {
        unsigned n_edits = 1 + (unsigned) (rng() % 4);

        for (unsigned e = 0; e < n_edits; e++) {
                size_t pos = len > 0 ? (size_t) (rng() % (len + 1)) : 0;
                char c = (rng() & 1) ? (char) (rng() & 0xff) : interesting[rng() % (sizeof interesting - 1)];

                switch (rng() % 5) {
                case 0: /* replace */
                        if (pos < len)
                                buf[pos] = c;
                        break;
                case 1: /* insert */
                        if (len + 1 < cap) {
                                memmove(buf + pos + 1, buf + pos, len - pos);
                                buf[pos] = c;
                                len++;
                        }
                        break;
                case 2: /* delete */
                        if (pos < len) {
                                memmove(buf + pos, buf + pos + 1, len - pos - 1);
                                len--;
                        }
                        break;
                case 3: { /* duplicate a chunk */
                        size_t from = len > 0 ? (size_t) (rng() % len) : 0;
                        size_t want = (size_t) (rng() % 16);
                        size_t n = MIN(want, len - from); /* MIN evaluates twice: no rng() in it */

                        if (len + n < cap) {
                                memmove(buf + pos + n, buf + pos, len - pos);
                                memmove(buf + pos, buf + (from >= pos ? from + n : from), n);
                                len += n;
                        }
                        break;
                }
                default: /* truncate */
                        len = pos;
                        break;
                }
        }
        return len;
}

TEST(fuzz) {
        unsigned n_hb_ok = 0, n_repl_ok = 0;
        Buf b = {};

        rng_state = 0x5eed1234abcdULL;
        for (unsigned it = 0; it < 200000; it++) {
                char line[512], copy[512];
                const char *src = corpus[rng() % ELEMENTSOF(corpus)];
                size_t len = strlen(src);
                HbMessage hm, hm2;
                ReplMessage rm, rm2;
                const char *why;

                memcpy(line, src, len);
                len = mutate(line, len, sizeof line - 1);
                line[len] = '\0';
                memcpy(copy, line, len + 1);

                why = NULL;
                if (hb_message_parse(line, len, &hm, &why) >= 0) {
                        n_hb_ok++;
                        buf_clear(&b);
                        ASSERT_OK(hb_message_format(&hm, &b));
                        ASSERT_TRUE(b.len > 0 && b.data[b.len - 1] == '\n');
                        ASSERT_OK(hb_message_parse(b.data, b.len - 1, &hm2, &why));
                        ASSERT_TRUE(hb_equal(&hm, &hm2));
                        /* The canonical form is a fixed point. */
                        {
                                Buf b2 = {};

                                ASSERT_OK(hb_message_format(&hm2, &b2));
                                ASSERT_STREQ(b2.data, b.data);
                                buf_done(&b2);
                        }
                } else
                        ASSERT_TRUE(why && why[0]);
                /* The parser never writes to the line. */
                ASSERT_TRUE(memcmp(line, copy, len + 1) == 0);

                why = NULL;
                if (repl_message_parse(line, len, 40, &rm, &why) >= 0) {
                        Buf b2 = {};

                        n_repl_ok++;
                        buf_clear(&b);
                        ASSERT_OK(repl_message_format(&rm, &b));
                        ASSERT_TRUE(b.len > 0 && b.data[b.len - 1] == '\n');
                        ASSERT_OK(repl_message_parse(b.data, b.len - 1, 40, &rm2, &why));
                        ASSERT_TRUE(repl_equal(&rm, &rm2));
                        /* The canonical form is a fixed point. */
                        ASSERT_OK(repl_message_format(&rm2, &b2));
                        ASSERT_STREQ(b2.data, b.data);
                        buf_done(&b2);
                } else
                        ASSERT_TRUE(why && why[0]);
                ASSERT_TRUE(memcmp(line, copy, len + 1) == 0);
        }
        buf_done(&b);
        fprintf(stderr, "   fuzz: %u heartbeat and %u replication lines parsed out of 200000 mutants\n",
                n_hb_ok, n_repl_ok);
        /* The mutants are near misses, so some must still parse and most must not. */
        ASSERT_TRUE(n_hb_ok > 1000 && n_hb_ok < 100000);
        ASSERT_TRUE(n_repl_ok > 1000 && n_repl_ok < 100000);
}

/* ---- repl_match_index ------------------------------------------------------- */

/* Primary segments carry .last; the backup's (as read from SYNC) do not. */
TEST(match_index) {
        /* Identical logs. */
        const LogSegment p1[] = { { 1, 1, 4 }, { 2, 5, 9 }, { 3, 10, 12 } };
        const LogSegment b1[] = { { 1, 1, 0 }, { 2, 5, 0 }, { 3, 10, 0 } };
        ASSERT_EQ_U64(repl_match_index(p1, 3, b1, 3, 12), 12);

        /* Backup behind, in the newest term and in an older one. */
        ASSERT_EQ_U64(repl_match_index(p1, 3, b1, 3, 11), 11);
        ASSERT_EQ_U64(repl_match_index(p1, 3, b1, 2, 7), 7);
        ASSERT_EQ_U64(repl_match_index(p1, 3, b1, 1, 3), 3);

        /* Backup ahead in the same term (it saw entries of term 3 that this
         * view of the primary's log does not hold): match at the primary's end. */
        ASSERT_EQ_U64(repl_match_index(p1, 3, b1, 3, 20), 12);

        /* Backup diverged in an abandoned term: primary [1:1, 3:6], backup
         * [1:1, 2:6] last 9 -> the term-1 run 1..5 is shared. */
        const LogSegment p2[] = { { 1, 1, 5 }, { 3, 6, 8 } };
        const LogSegment b2[] = { { 1, 1, 0 }, { 2, 6, 0 } };
        ASSERT_EQ_U64(repl_match_index(p2, 2, b2, 2, 9), 5);
        /* ... and when the backup's term-1 run is the shorter one. */
        const LogSegment b2s[] = { { 1, 1, 0 }, { 2, 4, 0 } };
        ASSERT_EQ_U64(repl_match_index(p2, 2, b2s, 2, 9), 3);

        /* Same term, different first index (inconsistent): not a match, older
         * segments are tried. */
        const LogSegment b3[] = { { 1, 1, 0 }, { 3, 7, 0 } };
        ASSERT_EQ_U64(repl_match_index(p2, 2, b3, 2, 8), 5);
        const LogSegment b3b[] = { { 1, 2, 0 } };
        ASSERT_EQ_U64(repl_match_index(p2, 2, b3b, 1, 8), 0);

        /* Empty backup, empty primary, both empty. */
        ASSERT_EQ_U64(repl_match_index(p1, 3, NULL, 0, 0), 0);
        ASSERT_EQ_U64(repl_match_index(NULL, 0, b1, 3, 12), 0);
        ASSERT_EQ_U64(repl_match_index(NULL, 0, NULL, 0, 0), 0);

        /* A backup whose log is all from abandoned terms. */
        const LogSegment b4[] = { { 2, 1, 0 } };
        ASSERT_EQ_U64(repl_match_index(p2, 2, b4, 1, 4), 0);

        /* Backup segments truncated to the newest 64, none of them known to
         * the primary: 0, the backup re-reads everything. */
        LogSegment bt[REPL_SEGMENTS_MAX];
        for (size_t i = 0; i < REPL_SEGMENTS_MAX; i++)
                bt[i] = (LogSegment) { .term = 100 + i, .first = 1000 + i * 10 };
        const LogSegment pt[] = { { 1, 1, 999 }, { 500, 1000, 2000 } };
        ASSERT_EQ_U64(repl_match_index(pt, 2, bt, REPL_SEGMENTS_MAX, 1700), 0);
        /* ... while a match in the oldest sent segment still counts. */
        const LogSegment pt2[] = { { 1, 1, 999 }, { 100, 1000, 1004 }, { 500, 1005, 2000 } };
        ASSERT_EQ_U64(repl_match_index(pt2, 3, bt, REPL_SEGMENTS_MAX, 1700), 1004);

        /* The "figure 8" case (Raft paper, figure 8). Servers S1..S5, term-1
         * entry at index 1 everywhere. S1 leads term 2 and writes (2,2) to S1
         * and S2 only; S5 leads term 3 and writes (2,3) to itself only; S1
         * leads term 4, writes its start record (3,4) and re-replicates (2,2)
         * to S3 — (2,2) is on a majority but is NOT committed, because it is
         * not of S1's current term. */
        const LogSegment s1_t4[] = { { 1, 1, 1 }, { 2, 2, 2 }, { 4, 3, 3 } };
        const LogSegment s5_wire[] = { { 1, 1, 0 }, { 3, 2, 0 } };
        /* S5 syncing to S1 (term 4): its (2,3) is cut, match 1. */
        ASSERT_EQ_U64(repl_match_index(s1_t4, 3, s5_wire, 2, 2), 1);
        /* If S1 crashes before (3,4) is on a majority, S5 may lead term 5
         * (its lterm 3 beats S2/S3's lterm 2). It writes (3,5). Then S1 and S3
         * syncing to S5 must lose (2,2) and (3,4): match 1, never 2. */
        const LogSegment s5_t5[] = { { 1, 1, 1 }, { 3, 2, 2 }, { 5, 3, 3 } };
        const LogSegment s1_wire[] = { { 1, 1, 0 }, { 2, 2, 0 }, { 4, 3, 0 } };
        const LogSegment s3_wire[] = { { 1, 1, 0 }, { 2, 2, 0 } };
        ASSERT_EQ_U64(repl_match_index(s5_t5, 3, s1_wire, 3, 3), 1);
        ASSERT_EQ_U64(repl_match_index(s5_t5, 3, s3_wire, 2, 2), 1);
        /* Had S1's term-4 start record reached S2 and S3 (committing (2,2)
         * with it), S5 could not have won term 5; S2 syncing to S1 matches all. */
        const LogSegment s2_wire[] = { { 1, 1, 0 }, { 2, 2, 0 }, { 4, 3, 0 } };
        ASSERT_EQ_U64(repl_match_index(s1_t4, 3, s2_wire, 3, 3), 3);
}

int main(void) {
        RUN(tables);
        RUN(hb_heartbeat_good);
        RUN(hb_other_verbs_good);
        RUN(hb_errors_common);
        RUN(hb_errors_heartbeat);
        RUN(hb_errors_other_verbs);
        RUN(hb_format);
        RUN(hb_new_keys);
        RUN(repl_good);
        RUN(repl_errors);
        RUN(repl_format);
        RUN(limits);
        RUN(fuzz);
        RUN(match_index);
        return 0;
}
