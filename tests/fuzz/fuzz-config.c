/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-config — config_load_string() over arbitrary text. A config that loads
 * must be self-consistent (valid server names, each found by name, distinct
 * addresses and priorities, sane cluster timings); a config that does not must
 * come with a one-line message that names the file.
 */

#include "config.h"
#include "fuzz.h"
#include "util.h"

#define NAME "fuzz.conf"

static void check_loaded(const Config *c) {
        FUZZ_CHECK(c->path && strcmp(c->path, NAME) == 0);
        FUZZ_CHECK(c->n_servers >= 1 && c->n_servers <= CONFIG_SERVERS_MAX);
        FUZZ_CHECK(fsync_mode_to_string(c->fsync));
        FUZZ_CHECK(c->heartbeat_interval_ms > 0 && c->lease_ms > 0 && c->dead_after_ms > 0);
        FUZZ_CHECK(c->dead_after_ms >= c->lease_ms + c->heartbeat_interval_ms);
        FUZZ_CHECK(c->max_message_bytes > 0);
        FUZZ_CHECK(c->min_sync_replicas < c->n_servers);
        FUZZ_CHECK(c->monitor_listen && c->monitor_socket && c->client_listen && c->client_socket);
        FUZZ_CHECK(c->monitor_address && c->client_address);
        FUZZ_CHECK(*c->monitor_listen || *c->monitor_socket);
        FUZZ_CHECK(*c->client_listen || *c->client_socket);
        FUZZ_CHECK(*c->monitor_address || *c->monitor_socket);
        FUZZ_CHECK(*c->client_address || *c->client_socket);
        FUZZ_CHECK(c->state_dir);

        for (size_t i = 0; i < c->n_servers; i++) {
                const ServerConfig *s = &c->servers[i];

                FUZZ_CHECK(s->name && name_is_valid(s->name));
                FUZZ_CHECK(s->address && *s->address);
                FUZZ_CHECK(s->unit && *s->unit);
                FUZZ_CHECK(s->data_dir && *s->data_dir);
                FUZZ_CHECK(config_find_server(c, s->name) == s);
                FUZZ_CHECK(config_server_index(c, s->name) == (int) i);
                for (size_t j = 0; j < i; j++) {
                        FUZZ_CHECK(strcmp(c->servers[j].name, s->name) != 0);
                        FUZZ_CHECK(strcmp(c->servers[j].address, s->address) != 0);
                        FUZZ_CHECK(s->priority == 0 || c->servers[j].priority != s->priority);
                }
        }
        FUZZ_CHECK(!config_find_server(c, "no such server name, spaces make it invalid"));
        FUZZ_CHECK(config_server_index(c, "") == -ENOENT);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *text = fuzz_strndup(data, size), *error = NULL;
        Config *c = NULL;
        int r;

        r = config_load_string(text, NAME, &c, &error);
        if (r >= 0) {
                FUZZ_CHECK(r == 0);
                FUZZ_CHECK(c);
                check_loaded(c);
                config_free(c);
        } else {
                FUZZ_CHECK(!c);
                FUZZ_CHECK(r == -EINVAL || r == -ENOMEM);
                if (r == -EINVAL) {
                        FUZZ_CHECK(error);
                        FUZZ_CHECK(strncmp(error, NAME ":", strlen(NAME ":")) == 0);
                        FUZZ_CHECK(!strchr(error, '\n'));
                }
        }
        free(error);
        free(text);
        return 0;
}
