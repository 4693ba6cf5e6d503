/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * config-items — the table of every key fusion.conf knows: for each (section,
 * key) a parser for its value, the offset of its field in Config or
 * ServerConfig and, for numbers, the allowed range. The parsers check one
 * value each; the checks involving several keys are in config-validate.c.
 */
#include <inttypes.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config-internal.h"
#include "config.h"
#include "macro.h"
#include "net.h"
#include "peerauth.h"
#include "util.h"

#define DURATION_MS_MAX UINT64_C(86400000) /* one day */
#define MESSAGE_BYTES_MAX UINT64_C(16777216)
#define CLIENTS_MAX UINT64_C(1000000)
#define PRIORITY_MAX UINT64_C(4294967295)
#define UNIT_NAME_MAX 255

int config_set_string(char **field, const char *value) {
        char *s = strdup(value);
        if (!s)
                return -ENOMEM;
        free(*field);
        *field = s;
        return 0;
}

static int parse_u64(const ConfigItem *item, const char *value, void *base, char *expected, size_t size) {
        uint64_t v;

        if (safe_atou64(value, &v) < 0 || v < item->min || v > item->max) {
                snprintf(expected, size, "%s from %" PRIu64 " to %" PRIu64, item->what, item->min, item->max);
                return -EINVAL;
        }
        *(uint64_t *) ((char *) base + item->offset) = v;
        return 0;
}

static int parse_bool(const ConfigItem *item, const char *value, void *base, char *expected, size_t size) {
        static const char *const yes[] = { "yes", "true", "on", "1" };
        static const char *const no[] = { "no", "false", "off", "0" };
        bool *field = (bool *) ((char *) base + item->offset);

        for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
                if (strcasecmp(value, yes[i]) == 0) {
                        *field = true;
                        return 0;
                }
                if (strcasecmp(value, no[i]) == 0) {
                        *field = false;
                        return 0;
                }
        }
        snprintf(expected, size, "a boolean (yes/no, true/false, on/off, 1/0)");
        return -EINVAL;
}

static int parse_fsync(const ConfigItem *item, const char *value, void *base, char *expected, size_t size) {
        FsyncMode m = fsync_mode_from_string(value);

        if (m < 0) {
                snprintf(expected, size, "one of always, batch, never");
                return -EINVAL;
        }
        *(FsyncMode *) ((char *) base + item->offset) = m;
        return 0;
}

static int parse_auth(const ConfigItem *item, const char *value, void *base, char *expected, size_t size) {
        AuthMode m = auth_mode_from_string(value);

        if (m < 0) {
                snprintf(expected, size, "one of tcp, always, never");
                return -EINVAL;
        }
        *(AuthMode *) ((char *) base + item->offset) = m;
        return 0;
}

static int parse_token(const ConfigItem *item, const char *value, void *base, char *expected, size_t size) {
        if (!client_token_is_valid(value, strlen(value))) {
                snprintf(expected, size, "a token of 1 to %d printable characters without spaces",
                         CLIENT_TOKEN_MAX);
                return -EINVAL;
        }
        return config_set_string((char **) ((char *) base + item->offset), value);
}

static int parse_path(const ConfigItem *item, const char *value, void *base, char *expected, size_t size) {
        if (value[0] != '/' || strlen(value) >= PATH_MAX) {
                snprintf(expected, size, "an absolute path");
                return -EINVAL;
        }
        return config_set_string((char **) ((char *) base + item->offset), value);
}

static bool unit_name_is_valid(const char *s) {
        size_t n = strlen(s);
        const char *suffix = ".service";

        if (n <= strlen(suffix) || n > UNIT_NAME_MAX || strcmp(s + n - strlen(suffix), suffix) != 0)
                return false;
        for (const char *p = s; *p; p++)
                if (!strchr("abcdefghijklmnopqrstuvwxyz"
                            "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                            "0123456789:-_.\\@",
                            *p))
                        return false;
        return true;
}

static int parse_unit(const ConfigItem *item, const char *value, void *base, char *expected, size_t size) {
        if (!unit_name_is_valid(value)) {
                snprintf(expected, size, "a unit name ending in .service");
                return -EINVAL;
        }
        return config_set_string((char **) ((char *) base + item->offset), value);
}

/* A TCP address, stored normalised; empty means none. */
static int parse_tcp_or_none(const ConfigItem *item, const char *value, void *base, char *expected,
                             size_t size) {
        char buf[SOCKADDR_STRLEN];
        SockAddr a;

        if (value[0] == '\0')
                return config_set_string((char **) ((char *) base + item->offset), "");
        if (sockaddr_parse(value, false, &a) < 0 || sockaddr_is_unix(&a) ||
            sockaddr_format(&a, buf, sizeof(buf)) < 0) {
                snprintf(expected, size,
                         "an address such as 127.0.0.1:9000, [::1]:9000 or localhost:9000, or nothing");
                return -EINVAL;
        }
        return config_set_string((char **) ((char *) base + item->offset), buf);
}

/* A unix socket path; empty means none. */
static int parse_unix_or_none(const ConfigItem *item, const char *value, void *base, char *expected,
                              size_t size) {
        SockAddr a;

        if (value[0] != '\0' &&
            (value[0] != '/' || sockaddr_parse(value, false, &a) < 0 || !sockaddr_is_unix(&a))) {
                snprintf(expected, size, "an absolute socket path of at most %zu bytes, or nothing",
                         sizeof(a.un.sun_path) - 1);
                return -EINVAL;
        }
        return config_set_string((char **) ((char *) base + item->offset), value);
}

static int parse_server_address(const ConfigItem *item, const char *value, void *base, char *expected,
                                 size_t size) {
        ServerConfig *s = base;
        char buf[SOCKADDR_STRLEN];
        SockAddr a;
        int r;

        if (sockaddr_parse(value, false, &a) < 0 || sockaddr_format(&a, buf, sizeof(buf)) < 0) {
                snprintf(expected, size,
                         "an address such as 127.0.0.1:8090, [::1]:8090, localhost:8090 or an absolute "
                         "socket path");
                return -EINVAL;
        }
        r = config_set_string(&s->address, buf);
        if (r < 0)
                return r;
        s->address_addr = a;
        return 0;
}

#define DURATION(k)                                                                                        \
        { SECTION_CLUSTER, #k, parse_u64, offsetof(Config, k), 1, DURATION_MS_MAX, "a duration in milliseconds" }

const ConfigItem config_items[] = {
        DURATION(heartbeat_interval_ms),
        DURATION(dead_after_ms),
        DURATION(lease_ms),
        { SECTION_CLUSTER, "min_sync_replicas", parse_u64, offsetof(Config, min_sync_replicas), 0,
          CONFIG_SERVERS_MAX - 1, "a number of backups" },
        DURATION(sync_timeout_ms),
        { SECTION_CLUSTER, "max_message_bytes", parse_u64, offsetof(Config, max_message_bytes), 1,
          MESSAGE_BYTES_MAX, "a size in bytes" },
        { SECTION_CLUSTER, "fsync", parse_fsync, offsetof(Config, fsync) },
        { SECTION_CLUSTER, "max_clients", parse_u64, offsetof(Config, max_clients), 1, CLIENTS_MAX,
          "a number of connections" },
        { SECTION_CLUSTER, "auth", parse_auth, offsetof(Config, auth) },
        { SECTION_CLUSTER, "authkey_file", parse_path, offsetof(Config, authkey_file) },
        { SECTION_CLUSTER, "client_token", parse_token, offsetof(Config, client_token) },
        { SECTION_CLUSTER, "client_token_file", parse_path, offsetof(Config, client_token_file) },

        { SECTION_MONITOR, "listen", parse_tcp_or_none, offsetof(Config, monitor_listen) },
        { SECTION_MONITOR, "socket", parse_unix_or_none, offsetof(Config, monitor_socket) },
        { SECTION_MONITOR, "client_listen", parse_tcp_or_none, offsetof(Config, client_listen) },
        { SECTION_MONITOR, "client_socket", parse_unix_or_none, offsetof(Config, client_socket) },
        { SECTION_MONITOR, "address", parse_tcp_or_none, offsetof(Config, monitor_address) },
        { SECTION_MONITOR, "client_address", parse_tcp_or_none, offsetof(Config, client_address) },
        { SECTION_MONITOR, "restart_failed_units", parse_bool, offsetof(Config, restart_failed_units) },
        { SECTION_MONITOR, "state_dir", parse_path, offsetof(Config, state_dir) },
};

const ConfigItem config_server_items[] = {
        { SECTION_SERVER, "address", parse_server_address, offsetof(ServerConfig, address) },
        { SECTION_SERVER, "priority", parse_u64, offsetof(ServerConfig, priority), 0, PRIORITY_MAX,
          "a priority (0: never promote)" },
        { SECTION_SERVER, "unit", parse_unit, offsetof(ServerConfig, unit) },
        { SECTION_SERVER, "data_dir", parse_path, offsetof(ServerConfig, data_dir) },
};
