/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-config — every key with good and bad values, every kind of error
 * (checked for file, line and key), the defaults, the checks across keys, the
 * golden files under tests/data/config/ and the shipped etc/fusion/fusion.conf.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "config-internal.h"
#include "macro.h"
#include "tests.h"

static char *mfree_str(char *p) {
        free(p);
        return NULL;
}

static void closedirp(DIR **d) {
        if (*d)
                closedir(*d);
}

#define CONFIG_DATA_DIR TEST_DATA_DIR "/config"
#define SHIPPED_CONFIG TEST_DATA_DIR "/../../etc/fusion/fusion.conf"

/* A valid three-server config with one line inserted: into [cluster] at line
 * 2, [monitor] at line 4, or [server.primary] at line 7. */
#define LINE_CLUSTER 2
#define LINE_MONITOR 4
#define LINE_PRIMARY 7

static char *make_text(const char *cluster, const char *monitor, const char *primary) {
        char *s;

        ASSERT_TRUE(asprintf(&s,
                             "[cluster]\n"
                             "%s\n"
                             "[monitor]\n"
                             "%s\n"
                             "[server.primary]\n"
                             "address = 127.0.0.1:8090\n"
                             "%s\n"
                             "[server.backup]\n"
                             "address = 127.0.0.1:8089\n"
                             "[server.backup2]\n"
                             "address = 127.0.0.1:8088\n",
                             cluster ?: "; nothing", monitor ?: "; nothing", primary ?: "; nothing") >= 0);
        return s;
}

static int load_with(const char *cluster, const char *monitor, const char *primary, Config **ret,
                     char **ret_error) {
        _cleanup_(freep) char *text = make_text(cluster, monitor, primary);

        *ret = NULL;
        *ret_error = NULL;
        return config_load_string(text, "test", ret, ret_error);
}

/* Load text that must fail with -EINVAL and exactly this message. */
static void expect_error(const char *text, const char *expected) {
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_(freep) char *err = NULL;

        ASSERT_EQ_INT(config_load_string(text, "test", &c, &err), -EINVAL);
        ASSERT_TRUE(c == NULL);
        ASSERT_STREQ(err, expected);
}

static void expect_ok(const char *text, Config **ret) {
        _cleanup_(freep) char *err = NULL;
        int r;

        r = config_load_string(text, "test", ret, &err);
        if (r < 0)
                fprintf(stderr, "unexpected error: %s\n", err ?: "(none)");
        ASSERT_OK(r);
        ASSERT_TRUE(err == NULL);
        ASSERT_TRUE(*ret != NULL);
}

static void check_defaults(const Config *c) {
        ASSERT_EQ_U64(c->heartbeat_interval_ms, 100);
        ASSERT_EQ_U64(c->dead_after_ms, 500);
        ASSERT_EQ_U64(c->lease_ms, 400);
        ASSERT_EQ_U64(c->min_sync_replicas, 1);
        ASSERT_EQ_U64(c->sync_timeout_ms, 1000);
        ASSERT_EQ_U64(c->max_message_bytes, 65536);
        ASSERT_EQ_INT(c->fsync, FSYNC_ALWAYS);
        ASSERT_EQ_U64(c->max_clients, 1024);
        ASSERT_STREQ(c->monitor_listen, "127.0.0.1:9000");
        ASSERT_STREQ(c->monitor_socket, "/run/fusion/monitor.sock");
        ASSERT_STREQ(c->client_listen, "127.0.0.1:9001");
        ASSERT_STREQ(c->client_socket, "/run/fusion/client.sock");
        ASSERT_STREQ(c->monitor_address, "127.0.0.1:9000");
        ASSERT_STREQ(c->client_address, "127.0.0.1:9001");
        ASSERT_EQ_INT(c->restart_failed_units, true);
        ASSERT_STREQ(c->state_dir, "/var/lib/fusion/monitor");
        ASSERT_EQ_INT(c->auth, AUTH_TCP);
        ASSERT_STREQ(c->authkey_file, "/etc/fusion/authkey");
        ASSERT_TRUE(c->client_token == NULL);
        ASSERT_TRUE(c->client_token_file == NULL);
}

static void check_server(const Config *c, size_t i, const char *name, const char *address, uint64_t priority,
                         unsigned line) {
        char unit[64], data_dir[64];

        ASSERT_TRUE(i < c->n_servers);
        snprintf(unit, sizeof(unit), "fusion-%s.service", name);
        snprintf(data_dir, sizeof(data_dir), "/var/lib/fusion/%s", name);
        ASSERT_STREQ(c->servers[i].name, name);
        ASSERT_STREQ(c->servers[i].address, address);
        ASSERT_EQ_U64(c->servers[i].priority, priority);
        ASSERT_STREQ(c->servers[i].unit, unit);
        ASSERT_STREQ(c->servers[i].data_dir, data_dir);
        ASSERT_EQ_INT(c->servers[i].line, line);
}

TEST(fsync_mode_strings) {
        ASSERT_STREQ(fsync_mode_to_string(FSYNC_ALWAYS), "always");
        ASSERT_STREQ(fsync_mode_to_string(FSYNC_BATCH), "batch");
        ASSERT_STREQ(fsync_mode_to_string(FSYNC_NEVER), "never");
        ASSERT_TRUE(fsync_mode_to_string(_FSYNC_MODE_MAX) == NULL);
        ASSERT_TRUE(fsync_mode_to_string(_FSYNC_MODE_INVALID) == NULL);
        ASSERT_EQ_INT(fsync_mode_from_string("always"), FSYNC_ALWAYS);
        ASSERT_EQ_INT(fsync_mode_from_string("batch"), FSYNC_BATCH);
        ASSERT_EQ_INT(fsync_mode_from_string("never"), FSYNC_NEVER);
        ASSERT_EQ_INT(fsync_mode_from_string("Always"), -EINVAL);
        ASSERT_EQ_INT(fsync_mode_from_string(""), -EINVAL);
        ASSERT_EQ_INT(fsync_mode_from_string(NULL), -EINVAL);
}

/* CONFIG_ITEMS_N / SERVER_ITEMS_N size the key tables for ParseState: a count larger
 * than the table compiles and leaves a zeroed entry at the end. Every entry is a key. */
TEST(key_tables) {
        for (size_t i = 0; i < ELEMENTSOF(config_items); i++) {
                ASSERT_TRUE(config_items[i].key && config_items[i].key[0] && config_items[i].parse);
                ASSERT_TRUE(config_items[i].section == SECTION_CLUSTER || config_items[i].section == SECTION_MONITOR);
        }
        for (size_t i = 0; i < ELEMENTSOF(config_server_items); i++) {
                ASSERT_TRUE(config_server_items[i].key && config_server_items[i].key[0] &&
                            config_server_items[i].parse);
                ASSERT_EQ_INT(config_server_items[i].section, SECTION_SERVER);
        }
}

TEST(new_default) {
        _cleanup_(config_freep) Config *c = NULL;

        ASSERT_OK(config_new_default(&c));
        check_defaults(c);
        ASSERT_EQ_U64(c->n_servers, 0);
        ASSERT_TRUE(config_find_server(c, "primary") == NULL);
        ASSERT_EQ_INT(config_server_index(c, "primary"), -ENOENT);
        ASSERT_TRUE(config_free(NULL) == NULL);
}

TEST(defaults_and_servers) {
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_(freep) char *text = make_text(NULL, NULL, NULL);

        expect_ok(text, &c);
        check_defaults(c);
        ASSERT_STREQ(c->path, "test");
        ASSERT_EQ_U64(c->n_servers, 3);
        check_server(c, 0, "primary", "127.0.0.1:8090", 8090, 5);
        check_server(c, 1, "backup", "127.0.0.1:8089", 8089, 8);
        check_server(c, 2, "backup2", "127.0.0.1:8088", 8088, 10);
        ASSERT_EQ_INT(c->servers[0].address_addr.sa.sa_family, AF_INET);

        ASSERT_EQ_INT(config_server_index(c, "primary"), 0);
        ASSERT_EQ_INT(config_server_index(c, "backup"), 1);
        ASSERT_EQ_INT(config_server_index(c, "backup2"), 2);
        ASSERT_EQ_INT(config_server_index(c, "backup3"), -ENOENT);
        ASSERT_EQ_INT(config_server_index(c, NULL), -ENOENT);
        ASSERT_TRUE(config_find_server(c, "backup") == &c->servers[1]);
        ASSERT_TRUE(config_find_server(c, "Backup") == NULL);
}

/* A number key: good values read back, bad values rejected with the range. */
typedef struct NumberKey {
        const char *section;
        const char *key;
        size_t offset;
        uint64_t min, max;
        const char *what;
} NumberKey;

static const NumberKey number_keys[] = {
        { "cluster", "heartbeat_interval_ms", offsetof(Config, heartbeat_interval_ms), 1, 86400000,
          "a duration in milliseconds" },
        { "cluster", "dead_after_ms", offsetof(Config, dead_after_ms), 1, 86400000, "a duration in milliseconds" },
        { "cluster", "lease_ms", offsetof(Config, lease_ms), 1, 86400000, "a duration in milliseconds" },
        { "cluster", "min_sync_replicas", offsetof(Config, min_sync_replicas), 0, 15, "a number of backups" },
        { "cluster", "sync_timeout_ms", offsetof(Config, sync_timeout_ms), 1, 86400000,
          "a duration in milliseconds" },
        { "cluster", "max_message_bytes", offsetof(Config, max_message_bytes), 1, 16777216, "a size in bytes" },
        { "cluster", "max_clients", offsetof(Config, max_clients), 1, 1000000, "a number of connections" },
};

static void check_bad_value(const char *section, const char *key, const char *value, const char *expected) {
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_(freep) char *err = NULL, *line = NULL, *msg = NULL;
        unsigned n = strcmp(section, "cluster") == 0   ? LINE_CLUSTER
                     : strcmp(section, "monitor") == 0 ? LINE_MONITOR
                                                       : LINE_PRIMARY;

        ASSERT_TRUE(asprintf(&line, "%s = %s", key, value) >= 0);
        ASSERT_EQ_INT(load_with(n == LINE_CLUSTER ? line : NULL, n == LINE_MONITOR ? line : NULL,
                                n == LINE_PRIMARY ? line : NULL, &c, &err),
                      -EINVAL);
        ASSERT_TRUE(c == NULL);
        ASSERT_TRUE(asprintf(&msg, "test:%u: [%s] %s: expected %s, got '%s'", n, section, key, expected, value) >=
                    0);
        ASSERT_STREQ(err, msg);
}

TEST(number_keys) {
        for (size_t i = 0; i < ELEMENTSOF(number_keys); i++) {
                const NumberKey *k = &number_keys[i];
                _cleanup_(freep) char *expected = NULL;
                uint64_t good[] = { k->min, k->min + 1, k->max };

                for (size_t j = 0; j < ELEMENTSOF(good); j++) {
                        _cleanup_(config_freep) Config *c = NULL;
                        _cleanup_(freep) char *err = NULL, *line = NULL, *cluster = NULL;
                        uint64_t v = good[j];

                        /* Skip values the cross-key rules forbid here; cross_key covers them. */
                        if (strcmp(k->key, "dead_after_ms") == 0 && v < 500)
                                continue;
                        if ((strcmp(k->key, "lease_ms") == 0 || strcmp(k->key, "heartbeat_interval_ms") == 0) &&
                            v == k->max)
                                continue;
                        if (strcmp(k->key, "min_sync_replicas") == 0 && v > 2)
                                continue;
                        ASSERT_TRUE(asprintf(&line, "%s = %" PRIu64, k->key, v) >= 0);
                        /* keep dead_after_ms >= lease_ms + heartbeat_interval_ms */
                        if (strcmp(k->key, "lease_ms") == 0 || strcmp(k->key, "heartbeat_interval_ms") == 0)
                                ASSERT_TRUE(asprintf(&cluster, "%s\ndead_after_ms = 86400000", line) >= 0);
                        ASSERT_OK(load_with(cluster ?: line, NULL, NULL, &c, &err));
                        ASSERT_EQ_U64(*(uint64_t *) ((char *) c + k->offset), v);
                }

                ASSERT_TRUE(asprintf(&expected, "%s from %" PRIu64 " to %" PRIu64, k->what, k->min, k->max) >= 0);
                if (k->min > 0) {
                        char below[32];
                        snprintf(below, sizeof(below), "%" PRIu64, k->min - 1);
                        check_bad_value(k->section, k->key, below, expected);
                }
                char above[32];
                snprintf(above, sizeof(above), "%" PRIu64, k->max + 1);
                check_bad_value(k->section, k->key, above, expected);
                check_bad_value(k->section, k->key, "abc", expected);
                check_bad_value(k->section, k->key, "-1", expected);
                check_bad_value(k->section, k->key, "+5", expected);
                check_bad_value(k->section, k->key, "5ms", expected);
                check_bad_value(k->section, k->key, "1 2", expected);
                check_bad_value(k->section, k->key, "", expected);
                check_bad_value(k->section, k->key, "99999999999999999999999", expected);
        }
}

TEST(fsync_key) {
        static const struct {
                const char *value;
                FsyncMode mode;
        } good[] = { { "always", FSYNC_ALWAYS }, { "batch", FSYNC_BATCH }, { "never", FSYNC_NEVER } };

        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                _cleanup_(config_freep) Config *c = NULL;
                _cleanup_(freep) char *err = NULL, *line = NULL;

                ASSERT_TRUE(asprintf(&line, "fsync = %s", good[i].value) >= 0);
                ASSERT_OK(load_with(line, NULL, NULL, &c, &err));
                ASSERT_EQ_INT(c->fsync, good[i].mode);
        }
        check_bad_value("cluster", "fsync", "sometimes", "one of always, batch, never");
        check_bad_value("cluster", "fsync", "ALWAYS", "one of always, batch, never");
        check_bad_value("cluster", "fsync", "", "one of always, batch, never");
}

TEST(bool_key) {
        static const struct {
                const char *value;
                bool b;
        } good[] = {
                { "yes", true }, { "no", false },  { "true", true }, { "false", false }, { "on", true },
                { "off", false }, { "1", true },   { "0", false },   { "YES", true },    { "Off", false },
        };
        const char *expected = "a boolean (yes/no, true/false, on/off, 1/0)";

        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                _cleanup_(config_freep) Config *c = NULL;
                _cleanup_(freep) char *err = NULL, *line = NULL;

                ASSERT_TRUE(asprintf(&line, "restart_failed_units = %s", good[i].value) >= 0);
                ASSERT_OK(load_with(NULL, line, NULL, &c, &err));
                ASSERT_EQ_INT(c->restart_failed_units, good[i].b);
        }
        check_bad_value("monitor", "restart_failed_units", "maybe", expected);
        check_bad_value("monitor", "restart_failed_units", "2", expected);
        check_bad_value("monitor", "restart_failed_units", "y", expected);
        check_bad_value("monitor", "restart_failed_units", "", expected);
}

TEST(monitor_endpoints) {
        const char *tcp = "an address such as 127.0.0.1:9000, [::1]:9000 or localhost:9000, or nothing";
        const char *unix_path = "an absolute socket path of at most 107 bytes, or nothing";
        const char *tcp_keys[] = { "listen", "client_listen", "address", "client_address" };
        const char *unix_keys[] = { "socket", "client_socket" };
        char long_path[120];

        for (size_t i = 0; i < ELEMENTSOF(tcp_keys); i++) {
                static const struct {
                        const char *value, *stored;
                } good[] = {
                        { "127.0.0.1:9100", "127.0.0.1:9100" },
                        { "localhost:9100", "127.0.0.1:9100" },
                        { "[::1]:9100", "[::1]:9100" },
                        { "0.0.0.0:1", "0.0.0.0:1" },
                };
                for (size_t j = 0; j < ELEMENTSOF(good); j++) {
                        _cleanup_(config_freep) Config *c = NULL;
                        _cleanup_(freep) char *err = NULL, *line = NULL;
                        const char *got;

                        ASSERT_TRUE(asprintf(&line, "%s = %s", tcp_keys[i], good[j].value) >= 0);
                        ASSERT_OK(load_with(NULL, line, NULL, &c, &err));
                        got = i == 0 ? c->monitor_listen
                              : i == 1 ? c->client_listen
                              : i == 2 ? c->monitor_address
                                       : c->client_address;
                        ASSERT_STREQ(got, good[j].stored);
                }
                check_bad_value("monitor", tcp_keys[i], "/run/fusion/x.sock", tcp);
                check_bad_value("monitor", tcp_keys[i], "127.0.0.1", tcp);
                check_bad_value("monitor", tcp_keys[i], "127.0.0.1:0", tcp);
                check_bad_value("monitor", tcp_keys[i], "127.0.0.1:65536", tcp);
                check_bad_value("monitor", tcp_keys[i], "example.com:9000", tcp);
                check_bad_value("monitor", tcp_keys[i], "::1:9000", tcp);
        }

        memset(long_path, 'x', sizeof(long_path) - 1);
        long_path[0] = '/';
        long_path[sizeof(long_path) - 1] = '\0';
        for (size_t i = 0; i < ELEMENTSOF(unix_keys); i++) {
                _cleanup_(config_freep) Config *c = NULL;
                _cleanup_(freep) char *err = NULL, *line = NULL;

                ASSERT_TRUE(asprintf(&line, "%s = /tmp/fusion test.sock", unix_keys[i]) >= 0);
                ASSERT_OK(load_with(NULL, line, NULL, &c, &err));
                ASSERT_STREQ(i == 0 ? c->monitor_socket : c->client_socket, "/tmp/fusion test.sock");
                check_bad_value("monitor", unix_keys[i], "run/x.sock", unix_path);
                check_bad_value("monitor", unix_keys[i], "127.0.0.1:9000", unix_path);
                check_bad_value("monitor", unix_keys[i], long_path, unix_path);
        }
}

TEST(monitor_empty_endpoints) {
        _cleanup_(config_freep) Config *c = NULL, *c2 = NULL, *c3 = NULL;
        _cleanup_(freep) char *err = NULL;

        /* Empty listen: no TCP heartbeats, and address follows it. */
        ASSERT_OK(load_with(NULL, "listen =\nclient_socket=", NULL, &c, &err));
        ASSERT_STREQ(c->monitor_listen, "");
        ASSERT_STREQ(c->monitor_address, "");
        ASSERT_STREQ(c->monitor_socket, "/run/fusion/monitor.sock");
        ASSERT_STREQ(c->client_socket, "");
        ASSERT_STREQ(c->client_listen, "127.0.0.1:9001");
        ASSERT_STREQ(c->client_address, "127.0.0.1:9001");

        /* address defaults to listen, but an explicit one stays. */
        ASSERT_OK(load_with(NULL, "listen = 0.0.0.0:9100\nclient_listen = [::]:9101\naddress = 10.0.0.1:9100", NULL,
                            &c2, &err));
        ASSERT_STREQ(c2->monitor_listen, "0.0.0.0:9100");
        ASSERT_STREQ(c2->monitor_address, "10.0.0.1:9100");
        ASSERT_STREQ(c2->client_listen, "[::]:9101");
        ASSERT_STREQ(c2->client_address, "[::]:9101");

        ASSERT_OK(load_with(NULL, "client_listen =\nclient_address = 10.0.0.1:9001", NULL, &c3, &err));
        ASSERT_STREQ(c3->client_listen, "");
        ASSERT_STREQ(c3->client_address, "10.0.0.1:9001");
}

TEST(state_dir_key) {
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_(freep) char *err = NULL;

        ASSERT_OK(load_with(NULL, "state_dir = /srv/fusion/monitor", NULL, &c, &err));
        ASSERT_STREQ(c->state_dir, "/srv/fusion/monitor");
        check_bad_value("monitor", "state_dir", "var/lib/fusion", "an absolute path");
        check_bad_value("monitor", "state_dir", "", "an absolute path");
}

TEST(server_keys) {
        _cleanup_(config_freep) Config *c = NULL, *c2 = NULL;
        _cleanup_(freep) char *err = NULL;
        const char *address = "an address such as 127.0.0.1:8090, [::1]:8090, localhost:8090 or an absolute "
                              "socket path";

        ASSERT_OK(load_with(NULL, NULL, "priority = 7\nunit = my-primary@1.service\ndata_dir = /srv/p", &c, &err));
        ASSERT_EQ_U64(c->servers[0].priority, 7);
        ASSERT_STREQ(c->servers[0].unit, "my-primary@1.service");
        ASSERT_STREQ(c->servers[0].data_dir, "/srv/p");
        ASSERT_EQ_U64(c->servers[1].priority, 8089);
        ASSERT_STREQ(c->servers[1].unit, "fusion-backup.service");
        ASSERT_STREQ(c->servers[1].data_dir, "/var/lib/fusion/backup");

        ASSERT_OK(load_with(NULL, NULL, "priority = 4294967295", &c2, &err));
        ASSERT_EQ_U64(c2->servers[0].priority, UINT64_C(4294967295));

        check_bad_value("server.primary", "priority", "4294967296",
                        "a priority (0: never promote) from 0 to 4294967295");
        check_bad_value("server.primary", "priority", "high", "a priority (0: never promote) from 0 to 4294967295");
        check_bad_value("server.primary", "unit", "fusion-primary", "a unit name ending in .service");
        check_bad_value("server.primary", "unit", ".service", "a unit name ending in .service");
        check_bad_value("server.primary", "unit", "fusion primary.service", "a unit name ending in .service");
        check_bad_value("server.primary", "unit", "a/b.service", "a unit name ending in .service");
        check_bad_value("server.primary", "data_dir", "data", "an absolute path");

        /* The address key is already set in the template: a second one is a
         * duplicate, so check bad addresses in a config of their own. */
        const char *bad[] = { "", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:8090x", "host:8090", "relative.sock" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_(freep) char *text = NULL, *msg = NULL;

                ASSERT_TRUE(asprintf(&text, "[server.a]\naddress = %s\n", bad[i]) >= 0);
                ASSERT_TRUE(asprintf(&msg, "test:2: [server.a] address: expected %s, got '%s'", address, bad[i]) >=
                            0);
                expect_error(text, msg);
        }
}

TEST(server_addresses) {
        _cleanup_(config_freep) Config *c = NULL;

        expect_ok("[cluster]\n"
                  "min_sync_replicas = 2\n"
                  "[server.a]\n"
                  "address = localhost:8090\n"
                  "[server.b]\n"
                  "address = [::1]:8089\n"
                  "[server.c]\n"
                  "address = /run/fusion/c.sock\n"
                  "priority = 5\n",
                  &c);
        ASSERT_EQ_U64(c->n_servers, 3);
        ASSERT_STREQ(c->servers[0].address, "127.0.0.1:8090");
        ASSERT_EQ_INT(c->servers[0].address_addr.sa.sa_family, AF_INET);
        ASSERT_EQ_U64(c->servers[0].priority, 8090);
        ASSERT_STREQ(c->servers[1].address, "[::1]:8089");
        ASSERT_EQ_INT(c->servers[1].address_addr.sa.sa_family, AF_INET6);
        ASSERT_EQ_U64(c->servers[1].priority, 8089);
        ASSERT_STREQ(c->servers[2].address, "/run/fusion/c.sock");
        ASSERT_EQ_INT(c->servers[2].address_addr.sa.sa_family, AF_UNIX);
        ASSERT_EQ_U64(c->servers[2].priority, 5);

        expect_error("[cluster]\nmin_sync_replicas = 0\n[server.a]\naddress = /run/fusion/a.sock\n",
                     "test:3: [server.a] priority: expected a priority, as the unix socket address "
                     "'/run/fusion/a.sock' has no port to take it from, got none");
}

TEST(error_kinds) {
        /* unknown section */
        expect_error("[cluster]\nlease_ms = 300\n[clutser]\nlease_ms = 300\n",
                     "test:3: [clutser]: unknown section, expected [cluster], [monitor] or [server.NAME]");
        expect_error("[]\n", "test:1: []: unknown section, expected [cluster], [monitor] or [server.NAME]");
        expect_error("[server.]\n", "test:1: [server.]: unknown section, expected [cluster], [monitor] or "
                                    "[server.NAME]");
        /* an empty unknown section is still an error */
        expect_error("[cluster]\n[extra]\n",
                     "test:2: [extra]: unknown section, expected [cluster], [monitor] or [server.NAME]");
        /* unknown keys, per section */
        expect_error("[cluster]\nleese_ms = 300\n",
                     "test:2: [cluster] leese_ms: unknown key, expected one of heartbeat_interval_ms, "
                     "dead_after_ms, lease_ms, min_sync_replicas, sync_timeout_ms, max_message_bytes, fsync, "
                     "max_clients, auth, authkey_file, client_token, client_token_file");
        expect_error("[monitor]\n; c\nLISTEN = 127.0.0.1:9000\n",
                     "test:3: [monitor] LISTEN: unknown key, expected one of listen, socket, client_listen, "
                     "client_socket, address, client_address, restart_failed_units, state_dir");
        expect_error("[server.x]\naddress = 127.0.0.1:1\nport = 1\n",
                     "test:3: [server.x] port: unknown key, expected one of address, priority, unit, data_dir");
        /* a [cluster] key in [monitor] */
        expect_error("[monitor]\nlease_ms = 300\n",
                     "test:2: [monitor] lease_ms: unknown key, expected one of listen, socket, client_listen, "
                     "client_socket, address, client_address, restart_failed_units, state_dir");
        /* duplicate key and section */
        expect_error("[cluster]\nlease_ms = 300\n\nlease_ms = 300\n",
                     "test:4: [cluster] lease_ms: duplicate key, first set at line 2");
        expect_error("[server.a]\naddress = 127.0.0.1:1\naddress: 127.0.0.1:2\n",
                     "test:3: [server.a] address: duplicate key, first set at line 2");
        expect_error("[cluster]\n[monitor]\n[cluster]\n", "test:3: [cluster]: duplicate section, first at line 1");
        expect_error("[server.a]\naddress = 127.0.0.1:1\n[server.a]\n",
                     "test:3: [server.a]: duplicate section, first at line 1");
        /* bad server names */
        expect_error("[server.a.b]\n", "test:1: [server.a.b]: expected a server name of 1 to 32 characters out "
                                      "of A-Z a-z 0-9 _ -, got 'a.b'");
        expect_error("[server.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]\n",
                     "test:1: [server.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]: expected a server name of 1 to 32 "
                     "characters out of A-Z a-z 0-9 _ -, got 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'");
        /* missing address names the section header's line */
        expect_error("[cluster]\nmin_sync_replicas = 0\n\n[server.a]\npriority = 3\n",
                     "test:4: [server.a] address: expected an address, got none");
        expect_error("[cluster]\nmin_sync_replicas = 0\n[server.a]\n",
                     "test:3: [server.a] address: expected an address, got none");
        /* keys before any section */
        expect_error("lease_ms = 300\n[cluster]\n",
                     "test:1: expected a [section] header before the first key, got 'lease_ms = 300'");
        /* lines libinih rejects */
        expect_error("[cluster]\nlease_ms 300\n", "test:2: expected 'key = value', got 'lease_ms 300'");
        expect_error("[cluster\nlease_ms = 300\n", "test:1: expected ']' to close the section header, got "
                                                  "'[cluster'");
        expect_error("[cluster ; x]\n", "test:1: expected ']' to close the section header, got '[cluster ; x]'");
        /* libinih's error comes first even when a later line is bad too */
        expect_error("[cluster]\nnonsense\nbogus = 1\n", "test:2: expected 'key = value', got 'nonsense'");
        expect_error("[cluster] junk\n", "test:1: expected nothing after the section header, got '[cluster] junk'");
        /* an indented line after a key would be a continuation in libinih */
        expect_error("[cluster]\nlease_ms = 300\n  dead_after_ms = 900\n",
                     "test:3: expected a line without leading whitespace (continuation lines are not "
                     "supported), got '  dead_after_ms = 900'");
        expect_error("[cluster]\n  lease_ms = 300\n",
                     "test:2: expected a line without leading whitespace (continuation lines are not "
                     "supported), got '  lease_ms = 300'");
        /* control bytes are quoted */
        expect_error("[cluster]\nfsync = al\x01ways\n",
                     "test:2: [cluster] fsync: expected one of always, batch, never, got 'al\\x01ways'");
        /* no servers at all */
        expect_error("", "test: expected at least one [server.NAME] section, got none");
        expect_error("; only a comment\n[cluster]\nlease_ms = 300\n",
                     "test: expected at least one [server.NAME] section, got none");
}

TEST(syntax_accepted) {
        _cleanup_(config_freep) Config *c = NULL;

        /* BOM, CRLF, comments of both kinds, inline comments, ':' separator,
         * a comment after a header, no final newline. */
        expect_ok("\xef\xbb\xbf"
                  "# comment\r\n"
                  "; comment\r\n"
                  "[cluster] ; the cluster\r\n"
                  "lease_ms = 300 ; inline\r\n"
                  "min_sync_replicas: 0\r\n"
                  "    ; indented comment\r\n"
                  "\r\n"
                  "[server.only]\r\n"
                  "address=127.0.0.1:7000",
                  &c);
        ASSERT_EQ_U64(c->lease_ms, 300);
        ASSERT_EQ_U64(c->min_sync_replicas, 0);
        ASSERT_EQ_U64(c->n_servers, 1);
        check_server(c, 0, "only", "127.0.0.1:7000", 7000, 8);
}

TEST(long_lines) {
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_(freep) char *ok = NULL, *bad = NULL;
        char pad[200];

        /* "# " plus 195 bytes: 197 is the longest line libinih's buffer holds. */
        memset(pad, 'x', sizeof(pad));
        ASSERT_TRUE(asprintf(&ok, "[server.a]\n# %.*s\r\naddress = 127.0.0.1:1\n[cluster]\nmin_sync_replicas=0\n",
                             195, pad) >= 0);
        expect_ok(ok, &c);
        ASSERT_TRUE(asprintf(&bad, "[server.a]\naddress = 127.0.0.1:1\n# %.*s\n[cluster]\n", 196, pad) >= 0);
        expect_error(bad, "test:3: expected a line of at most 197 bytes, got 198 bytes");
}

TEST(server_limits) {
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_(freep) char *text = NULL, *more = NULL;
        char *p;
        size_t size = 4096;

        text = p = malloc(size);
        ASSERT_TRUE(text);
        for (int i = 0; i < CONFIG_SERVERS_MAX; i++)
                p += snprintf(p, size - (size_t) (p - text), "[server.s%d]\naddress = 127.0.0.1:%d\n", i, 7000 + i);
        expect_ok(text, &c);
        ASSERT_EQ_U64(c->n_servers, CONFIG_SERVERS_MAX);
        check_server(c, 15, "s15", "127.0.0.1:7015", 7015, 31);

        ASSERT_TRUE(asprintf(&more, "%s[server.s16]\naddress = 127.0.0.1:7016\n", text) >= 0);
        expect_error(more, "test:33: [server.s16]: expected at most 16 server sections, got more");
}

TEST(cross_key) {
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_(freep) char *err = NULL;

        /* dead_after_ms >= lease_ms + heartbeat_interval_ms, blaming a key that is set */
        expect_error("[cluster]\nlease_ms = 400\ndead_after_ms = 499\n[server.a]\naddress = 127.0.0.1:1\n",
                     "test:3: [cluster] dead_after_ms: expected dead_after_ms >= lease_ms + "
                     "heartbeat_interval_ms, got dead_after_ms = 499, lease_ms = 400, heartbeat_interval_ms = 100");
        expect_error("[cluster]\nheartbeat_interval_ms = 101\n[server.a]\naddress = 127.0.0.1:1\n",
                     "test:2: [cluster] heartbeat_interval_ms: expected dead_after_ms >= lease_ms + "
                     "heartbeat_interval_ms, got dead_after_ms = 500, lease_ms = 400, heartbeat_interval_ms = 101");
        expect_error("[cluster]\nheartbeat_interval_ms = 50\nlease_ms = 451\n[server.a]\naddress = 127.0.0.1:1\n",
                     "test:3: [cluster] lease_ms: expected dead_after_ms >= lease_ms + "
                     "heartbeat_interval_ms, got dead_after_ms = 500, lease_ms = 451, heartbeat_interval_ms = 50");
        ASSERT_OK(load_with("heartbeat_interval_ms = 50\nlease_ms = 450", NULL, NULL, &c, &err));
        ASSERT_EQ_U64(c->lease_ms, 450);

        /* min_sync_replicas <= servers - 1 */
        expect_error("[cluster]\nmin_sync_replicas = 2\n[server.a]\naddress = 127.0.0.1:1\n"
                     "[server.b]\naddress = 127.0.0.1:2\n",
                     "test:2: [cluster] min_sync_replicas: expected at most the number of servers minus one (1), "
                     "got '2'");
        expect_error("[server.a]\naddress = 127.0.0.1:1\n",
                     "test: [cluster] min_sync_replicas: expected at most the number of servers minus one (0), "
                     "got '1' (the default)");

        /* unique addresses and priorities */
        expect_error("[server.a]\naddress = 127.0.0.1:1\n[server.b]\naddress = localhost:1\n",
                     "test:4: [server.b] address: expected an address no other server uses, got '127.0.0.1:1', "
                     "also the address of [server.a]");
        expect_error("[server.a]\naddress = 127.0.0.1:1\n[server.b]\naddress = 127.0.0.2:2\npriority = 1\n",
                     "test:5: [server.b] priority: expected a priority no other server has (or 0), got '1', "
                     "also the priority of [server.a]");
        expect_error("[server.a]\naddress = 10.0.0.1:8090\n[server.b]\naddress = 10.0.0.2:8090\n",
                     "test:4: [server.b] priority: expected a priority no other server has (or 0), got '8090' "
                     "(the port of its address), also the priority of [server.a]");
        {
                _cleanup_(config_freep) Config *z = NULL;

                /* several servers may have priority 0 */
                expect_ok("[server.a]\naddress = 10.0.0.1:8090\npriority = 0\n[server.b]\naddress = "
                          "10.0.0.2:8090\npriority = 0\n[server.c]\naddress = 10.0.0.3:8090\n",
                          &z);
                ASSERT_EQ_U64(z->servers[0].priority, 0);
                ASSERT_EQ_U64(z->servers[1].priority, 0);
                ASSERT_EQ_U64(z->servers[2].priority, 8090);
        }

        /* at least one endpoint of each pair remains */
        expect_error("[monitor]\nlisten =\nsocket =\n[server.a]\naddress = 127.0.0.1:1\n"
                     "[cluster]\nmin_sync_replicas = 0\n",
                     "test:3: [monitor] socket: expected listen or socket to be set, got both empty");
        expect_error("[monitor]\nclient_socket=\nclient_listen=\n[server.a]\naddress = 127.0.0.1:1\n"
                     "[cluster]\nmin_sync_replicas = 0\n",
                     "test:3: [monitor] client_listen: expected client_listen or client_socket to be set, got "
                     "both empty");
        expect_error("[monitor]\nsocket =\naddress =\n[server.a]\naddress = 127.0.0.1:1\n"
                     "[cluster]\nmin_sync_replicas = 0\n",
                     "test:3: [monitor] address: expected address or socket to be set, got both empty");
        expect_error("[monitor]\nclient_address =\nclient_socket =\n[server.a]\naddress = 127.0.0.1:1\n"
                     "[cluster]\nmin_sync_replicas = 0\n",
                     "test:3: [monitor] client_socket: expected client_address or client_socket to be set, got "
                     "both empty");
}

static char *read_text(const char *path) {
        _cleanup_(fclosep) FILE *f = fopen(path, "re");
        char *buf;
        size_t n;

        ASSERT_TRUE(f);
        buf = calloc(1, 65536);
        ASSERT_TRUE(buf);
        n = fread(buf, 1, 65535, f);
        ASSERT_TRUE(!ferror(f) && n < 65535);
        while (n > 0 && buf[n - 1] == '\n')
                buf[--n] = '\0';
        return buf;
}

TEST(files) {
        char dir[] = "/tmp/test-config-XXXXXX", path[64];
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_(freep) char *err = NULL, *expected = NULL;
        FILE *f;

        ASSERT_TRUE(mkdtemp(dir));

        /* a missing file */
        snprintf(path, sizeof(path), "%s/missing.conf", dir);
        ASSERT_EQ_INT(config_load(path, &c, &err), -ENOENT);
        ASSERT_TRUE(c == NULL);
        ASSERT_TRUE(asprintf(&expected, "%s: cannot open: %s", path, strerror(ENOENT)) >= 0);
        ASSERT_STREQ(err, expected);
        err = mfree_str(err);

        /* a directory */
        ASSERT_TRUE(config_load(dir, &c, &err) == -EISDIR);
        ASSERT_TRUE(err && strncmp(err, dir, strlen(dir)) == 0);
        err = mfree_str(err);

        /* a good file; the path is kept */
        snprintf(path, sizeof(path), "%s/good.conf", dir);
        f = fopen(path, "we");
        ASSERT_TRUE(f);
        fputs("[server.a]\naddress = 127.0.0.1:1\n[cluster]\nmin_sync_replicas = 0\n", f);
        ASSERT_EQ_INT(fclose(f), 0);
        ASSERT_OK(config_load(path, &c, &err));
        ASSERT_STREQ(c->path, path);
        ASSERT_EQ_U64(c->n_servers, 1);
        c = config_free(c);

        /* unreadable: as root, check it from a child that dropped to nobody */
        ASSERT_EQ_INT(chmod(path, 0), 0);
        free(expected);
        ASSERT_TRUE(asprintf(&expected, "%s: cannot open: %s", path, strerror(EACCES)) >= 0);
        if (geteuid() != 0) {
                ASSERT_EQ_INT(config_load(path, &c, &err), -EACCES);
                ASSERT_STREQ(err, expected);
                err = mfree_str(err);
        } else {
                int status;
                pid_t pid = fork();

                ASSERT_TRUE(pid >= 0);
                if (pid == 0) {
                        ASSERT_EQ_INT(setgroups(0, NULL), 0);
                        ASSERT_EQ_INT(setresgid(65534, 65534, 65534), 0);
                        ASSERT_EQ_INT(setresuid(65534, 65534, 65534), 0);
                        ASSERT_EQ_INT(config_load(path, &c, &err), -EACCES);
                        ASSERT_STREQ(err, expected);
                        _exit(EXIT_SUCCESS);
                }
                ASSERT_EQ_INT(waitpid(pid, &status, 0), pid);
                ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == EXIT_SUCCESS);
        }
        ASSERT_EQ_INT(unlink(path), 0);

        /* a NUL byte, which only a file can hold */
        snprintf(path, sizeof(path), "%s/nul.conf", dir);
        f = fopen(path, "we");
        ASSERT_TRUE(f);
        fwrite("[cluster]\nlease_ms = 3\0\n", 1, 24, f);
        ASSERT_EQ_INT(fclose(f), 0);
        ASSERT_EQ_INT(config_load(path, &c, &err), -EINVAL);
        free(expected);
        ASSERT_TRUE(asprintf(&expected, "%s:2: expected text, got a NUL byte", path) >= 0);
        ASSERT_STREQ(err, expected);
        err = mfree_str(err);
        ASSERT_EQ_INT(unlink(path), 0);

        /* a NULL ret_error is fine */
        ASSERT_EQ_INT(config_load_string("[bogus]\n", "x", &c, NULL), -EINVAL);
        ASSERT_TRUE(c == NULL);

        ASSERT_EQ_INT(rmdir(dir), 0);
}

TEST(auth_keys) {
        static const struct {
                const char *value;
                AuthMode mode;
        } good[] = { { "tcp", AUTH_TCP }, { "always", AUTH_ALWAYS }, { "never", AUTH_NEVER } };
        const char *token_expected = "a token of 1 to 128 printable characters without spaces";
        char long_token[130];

        ASSERT_STREQ(auth_mode_to_string(AUTH_TCP), "tcp");
        ASSERT_STREQ(auth_mode_to_string(AUTH_ALWAYS), "always");
        ASSERT_STREQ(auth_mode_to_string(AUTH_NEVER), "never");
        ASSERT_TRUE(auth_mode_to_string(_AUTH_MODE_MAX) == NULL);
        ASSERT_EQ_INT(auth_mode_from_string("TCP"), _AUTH_MODE_INVALID);

        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                _cleanup_(config_freep) Config *c = NULL;
                _cleanup_(freep) char *err = NULL, *line = NULL;

                ASSERT_TRUE(asprintf(&line, "auth = %s", good[i].value) >= 0);
                ASSERT_OK(load_with(line, NULL, NULL, &c, &err));
                ASSERT_EQ_INT(c->auth, good[i].mode);
                /* tcp: only TCP links; always: unix too; never: none */
                ASSERT_EQ_INT(config_auth_applies(c, false), good[i].mode != AUTH_NEVER);
                ASSERT_EQ_INT(config_auth_applies(c, true), good[i].mode == AUTH_ALWAYS);
                /* the test config's servers listen on TCP: the key is needed unless never */
                ASSERT_EQ_INT(config_auth_needed(c), good[i].mode != AUTH_NEVER);
        }
        check_bad_value("cluster", "auth", "yes", "one of tcp, always, never");
        check_bad_value("cluster", "auth", "", "one of tcp, always, never");

        {
                _cleanup_(config_freep) Config *c = NULL;
                _cleanup_(freep) char *err = NULL;

                ASSERT_OK(load_with("authkey_file = /srv/key\nclient_token = s3cr3t-T0ken", NULL, NULL, &c, &err));
                ASSERT_STREQ(c->authkey_file, "/srv/key");
                ASSERT_STREQ(c->client_token, "s3cr3t-T0ken");
        }
        {
                _cleanup_(config_freep) Config *c = NULL;
                _cleanup_(freep) char *err = NULL;

                ASSERT_OK(load_with("client_token_file = /etc/fusion/token", NULL, NULL, &c, &err));
                ASSERT_STREQ(c->client_token_file, "/etc/fusion/token");
                ASSERT_TRUE(c->client_token == NULL);
        }
        check_bad_value("cluster", "authkey_file", "relative/key", "an absolute path");
        check_bad_value("cluster", "authkey_file", "", "an absolute path");
        check_bad_value("cluster", "client_token_file", "token", "an absolute path");
        check_bad_value("cluster", "client_token", "two words", token_expected);
        check_bad_value("cluster", "client_token", "", token_expected);
        memset(long_token, 'a', 129);
        long_token[129] = '\0';
        check_bad_value("cluster", "client_token", long_token, token_expected);
        long_token[128] = '\0';
        {
                _cleanup_(config_freep) Config *c = NULL;
                _cleanup_(freep) char *err = NULL, *line = NULL;

                ASSERT_TRUE(asprintf(&line, "client_token = %s", long_token) >= 0);
                ASSERT_OK(load_with(line, NULL, NULL, &c, &err));
                ASSERT_EQ_U64(strlen(c->client_token), 128);
        }

        /* both token keys: an error at the later one */
        expect_error("[cluster]\nclient_token = a\nclient_token_file = /t\nmin_sync_replicas = 0\n"
                     "[server.p]\naddress = 127.0.0.1:1\n",
                     "test:3: [cluster] client_token_file: expected only one of client_token and "
                     "client_token_file, got both");

        /* only unix sockets everywhere: auth = tcp needs no key */
        {
                _cleanup_(config_freep) Config *c = NULL;

                expect_ok("[cluster]\nmin_sync_replicas = 0\n[monitor]\nlisten =\naddress =\n"
                          "[server.p]\naddress = /run/p.sock\npriority = 1\n",
                          &c);
                ASSERT_TRUE(!config_auth_needed(c));
                ASSERT_TRUE(config_auth_applies(c, false));
                ASSERT_TRUE(!config_auth_applies(c, true));
        }
}

TEST(golden) {
        _cleanup_(closedirp) DIR *d = NULL;
        unsigned n_good = 0, n_bad = 0;
        struct dirent *de;

        if (chdir(CONFIG_DATA_DIR) < 0) {
                fprintf(stderr, "%s: %s\n", CONFIG_DATA_DIR, strerror(errno));
                ASSERT_TRUE(false);
        }
        d = opendir(".");
        ASSERT_TRUE(d);

        while ((de = readdir(d))) {
                _cleanup_(config_freep) Config *c = NULL;
                _cleanup_(freep) char *err = NULL, *err_path = NULL, *expected = NULL;
                size_t n = strlen(de->d_name);
                int r;

                if (n < 5 || strcmp(de->d_name + n - 5, ".conf") != 0)
                        continue;
                r = config_load(de->d_name, &c, &err);
                fprintf(stderr, "   %s: %s\n", de->d_name, r < 0 ? err : "ok");

                if (strncmp(de->d_name, "good-", 5) == 0) {
                        ASSERT_OK(r);
                        ASSERT_TRUE(c->n_servers > 0);
                        n_good++;
                } else {
                        ASSERT_TRUE(strncmp(de->d_name, "bad-", 4) == 0);
                        ASSERT_EQ_INT(r, -EINVAL);
                        ASSERT_TRUE(asprintf(&err_path, "%.*s.err", (int) (n - 5), de->d_name) >= 0);
                        expected = read_text(err_path);
                        ASSERT_STREQ(err, expected);
                        n_bad++;
                }
        }
        ASSERT_TRUE(n_good >= 4);
        ASSERT_TRUE(n_bad >= 15);
}

TEST(shipped) {
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_(freep) char *err = NULL;
        int r;

        if (access(SHIPPED_CONFIG, R_OK) < 0) {
                fprintf(stderr, "%s: %s\n", SHIPPED_CONFIG, strerror(errno));
                ASSERT_TRUE(false);
        }
        r = config_load(SHIPPED_CONFIG, &c, &err);
        if (r < 0)
                fprintf(stderr, "%s\n", err);
        ASSERT_OK(r);
        check_defaults(c);
        ASSERT_EQ_U64(c->n_servers, 3);
        ASSERT_STREQ(c->servers[0].name, "primary");
        ASSERT_STREQ(c->servers[0].address, "127.0.0.1:8090");
        ASSERT_EQ_U64(c->servers[0].priority, 8090);
        ASSERT_STREQ(c->servers[0].unit, "fusion-primary.service");
        ASSERT_STREQ(c->servers[0].data_dir, "/var/lib/fusion/primary");
        ASSERT_STREQ(c->servers[1].name, "backup");
        ASSERT_STREQ(c->servers[1].address, "127.0.0.1:8089");
        ASSERT_EQ_U64(c->servers[1].priority, 8089);
        ASSERT_STREQ(c->servers[1].unit, "fusion-backup.service");
        ASSERT_STREQ(c->servers[2].name, "backup2");
        ASSERT_STREQ(c->servers[2].address, "127.0.0.1:8088");
        ASSERT_EQ_U64(c->servers[2].priority, 8088);
        ASSERT_STREQ(c->servers[2].data_dir, "/var/lib/fusion/backup2");
}

int main(void) {
        RUN(fsync_mode_strings);
        RUN(key_tables);
        RUN(new_default);
        RUN(defaults_and_servers);
        RUN(number_keys);
        RUN(fsync_key);
        RUN(bool_key);
        RUN(monitor_endpoints);
        RUN(monitor_empty_endpoints);
        RUN(state_dir_key);
        RUN(server_keys);
        RUN(server_addresses);
        RUN(error_kinds);
        RUN(syntax_accepted);
        RUN(long_lines);
        RUN(server_limits);
        RUN(cross_key);
        RUN(auth_keys);
        RUN(files);
        RUN(shipped);
        RUN(golden); /* last: it changes the working directory */
        return 0;
}
