/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * config-validate — the checks that look at the whole configuration once
 * config-parse.c has read every line: each [server.NAME] gets its defaults
 * and must differ from the others in address and priority, the [cluster]
 * timings must fit together, and [monitor] must keep at least one endpoint of
 * each pair. Errors point at the line of the key to blame.
 */
#include <assert.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config-internal.h"
#include "config.h"
#include "macro.h"
#include "net.h"

static unsigned item_line(const ParseState *st, const char *key) {
        for (size_t i = 0; i < ELEMENTSOF(config_items); i++)
                if (strcmp(config_items[i].key, key) == 0)
                        return st->item_line[i];
        assert(false);
        return 0;
}

/* Fill in what [server.NAME] left out. */
static int server_finish(ParseState *st, size_t i) {
        ServerConfig *s = &st->config->servers[i];
        const unsigned *lines = st->server_item_line[i];

        if (lines[SERVER_ADDRESS] == 0)
                return config_fail(st, -EINVAL, s->line, "[server.%s] address: expected an address, got none", s->name);

        if (lines[SERVER_PRIORITY] == 0) {
                if (sockaddr_is_unix(&s->address_addr))
                        return config_fail(st, -EINVAL, s->line,
                                           "[server.%s] priority: expected a priority, as the unix socket address "
                                           "'%s' has no port to take it from, got none",
                                           s->name, s->address);
                s->priority = sockaddr_port(&s->address_addr);
        }
        if (!s->unit && asprintf(&s->unit, "fusion-%s.service", s->name) < 0) {
                s->unit = NULL;
                return config_fail(st, -ENOMEM, 0, "out of memory");
        }
        if (!s->data_dir && asprintf(&s->data_dir, "/var/lib/fusion/%s", s->name) < 0) {
                s->data_dir = NULL;
                return config_fail(st, -ENOMEM, 0, "out of memory");
        }
        return 0;
}

int config_validate_servers(ParseState *st) {
        Config *c = st->config;
        int r;

        if (c->n_servers == 0)
                return config_fail(st, -EINVAL, 0, "expected at least one [server.NAME] section, got none");

        for (size_t i = 0; i < c->n_servers; i++) {
                r = server_finish(st, i);
                if (r < 0)
                        return r;
        }

        for (size_t j = 1; j < c->n_servers; j++)
                for (size_t i = 0; i < j; i++) {
                        const ServerConfig *a = &c->servers[i], *b = &c->servers[j];
                        const unsigned *lines = st->server_item_line[j];

                        if (strcmp(a->address, b->address) == 0)
                                return config_fail(st, -EINVAL, lines[SERVER_ADDRESS],
                                                   "[server.%s] address: expected an address no other "
                                                   "server uses, got '%s', also the address of [server.%s]",
                                                   b->name, b->address, a->name);

                        if (a->priority != 0 && a->priority == b->priority)
                                return config_fail(st, -EINVAL,
                                                   lines[SERVER_PRIORITY] > 0 ? lines[SERVER_PRIORITY]
                                                                       : lines[SERVER_ADDRESS],
                                                   "[server.%s] priority: expected a priority no other server has "
                                                   "(or 0), got '%" PRIu64 "'%s, also the priority of [server.%s]",
                                                   b->name, b->priority,
                                                   lines[SERVER_PRIORITY] > 0 ? "" : " (the port of its address)",
                                                   a->name);
                }
        return 0;
}

int config_validate_cluster(ParseState *st) {
        const Config *c = st->config;
        unsigned line;

        /* The lease ends before the monitor may call the primary dead as long as
         * dead_after_ms > lease_ms; a heartbeat interval on top is slack. DESIGN.md's
         * defaults (500, 400, 100) sit exactly on the bound, so it is inclusive. */
        if (c->dead_after_ms < c->lease_ms + c->heartbeat_interval_ms) {
                const char *key = "dead_after_ms";

                line = item_line(st, "dead_after_ms");
                if (line == 0 && item_line(st, "lease_ms") > 0)
                        key = "lease_ms";
                else if (line == 0 && item_line(st, "heartbeat_interval_ms") > 0)
                        key = "heartbeat_interval_ms";
                return config_fail(st, -EINVAL, item_line(st, key),
                                   "[cluster] %s: expected dead_after_ms >= lease_ms + heartbeat_interval_ms, got "
                                   "dead_after_ms = %" PRIu64 ", lease_ms = %" PRIu64
                                   ", heartbeat_interval_ms = %" PRIu64,
                                   key, c->dead_after_ms, c->lease_ms, c->heartbeat_interval_ms);
        }

        if (c->min_sync_replicas > c->n_servers - 1) {
                line = item_line(st, "min_sync_replicas");
                return config_fail(st, -EINVAL, line,
                                   "[cluster] min_sync_replicas: expected at most the number of servers "
                                   "minus one (%zu), got '%" PRIu64 "'%s",
                                   c->n_servers - 1, c->min_sync_replicas, line > 0 ? "" : " (the default)");
        }

        if (c->client_token && c->client_token_file) {
                unsigned a = item_line(st, "client_token"), b = item_line(st, "client_token_file");

                return config_fail(st, -EINVAL, MAX(a, b),
                                   "[cluster] %s: expected only one of client_token and client_token_file, "
                                   "got both",
                                   a > b ? "client_token" : "client_token_file");
        }
        return 0;
}

/* At least one of the two endpoints must remain. */
static int validate_pair(ParseState *st, const char *tcp_key, const char *tcp, const char *unix_key,
                         const char *unix_path) {
        unsigned tcp_line = item_line(st, tcp_key), unix_line = item_line(st, unix_key);

        if (tcp[0] != '\0' || unix_path[0] != '\0')
                return 0;
        return config_fail(st, -EINVAL, MAX(tcp_line, unix_line), "[monitor] %s: expected %s or %s to be set, got both empty",
                           tcp_line > unix_line ? tcp_key : unix_key, tcp_key, unix_key);
}

int config_validate_monitor(ParseState *st) {
        Config *c = st->config;
        int r;

        r = validate_pair(st, "listen", c->monitor_listen, "socket", c->monitor_socket);
        if (r < 0)
                return r;
        r = validate_pair(st, "client_listen", c->client_listen, "client_socket", c->client_socket);
        if (r < 0)
                return r;

        if (item_line(st, "address") == 0 && config_set_string(&c->monitor_address, c->monitor_listen) < 0)
                return config_fail(st, -ENOMEM, 0, "out of memory");
        if (item_line(st, "client_address") == 0 && config_set_string(&c->client_address, c->client_listen) < 0)
                return config_fail(st, -ENOMEM, 0, "out of memory");

        r = validate_pair(st, "address", c->monitor_address, "socket", c->monitor_socket);
        if (r < 0)
                return r;
        return validate_pair(st, "client_address", c->client_address, "client_socket", c->client_socket);
}
