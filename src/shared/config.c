/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * config — the Config object behind /etc/fusion/fusion.conf: names of the
 * enum values, the defaults, freeing, and the lookups the daemons make in a
 * loaded configuration. Reading the file is config-parse.c, the table of keys
 * config-items.c, the checks across keys config-validate.c.
 */
#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "net.h"

static const char *const fsync_mode_table[_FSYNC_MODE_MAX] = {
        [FSYNC_ALWAYS] = "always",
        [FSYNC_BATCH] = "batch",
        [FSYNC_NEVER] = "never",
};

const char *fsync_mode_to_string(FsyncMode m) {
        if (m < 0 || m >= _FSYNC_MODE_MAX)
                return NULL;
        return fsync_mode_table[m];
}

FsyncMode fsync_mode_from_string(const char *s) {
        if (!s)
                return _FSYNC_MODE_INVALID;
        for (FsyncMode m = 0; m < _FSYNC_MODE_MAX; m++)
                if (strcmp(s, fsync_mode_table[m]) == 0)
                        return m;
        return _FSYNC_MODE_INVALID;
}

static const char *const auth_mode_table[_AUTH_MODE_MAX] = {
        [AUTH_TCP] = "tcp",
        [AUTH_ALWAYS] = "always",
        [AUTH_NEVER] = "never",
};

const char *auth_mode_to_string(AuthMode m) {
        if (m < 0 || m >= _AUTH_MODE_MAX)
                return NULL;
        return auth_mode_table[m];
}

AuthMode auth_mode_from_string(const char *s) {
        if (!s)
                return _AUTH_MODE_INVALID;
        for (AuthMode m = 0; m < _AUTH_MODE_MAX; m++)
                if (strcmp(s, auth_mode_table[m]) == 0)
                        return m;
        return _AUTH_MODE_INVALID;
}

static int config_set_defaults(Config *c) {
        *c = (Config){
                .heartbeat_interval_ms = 100,
                .dead_after_ms = 500,
                .lease_ms = 400,
                .min_sync_replicas = 1,
                .sync_timeout_ms = 1000,
                .max_message_bytes = 65536,
                .fsync = FSYNC_ALWAYS,
                .max_clients = 1024,
                .auth = AUTH_TCP,
                .restart_failed_units = true,
        };
        c->authkey_file = strdup("/etc/fusion/authkey");
        c->monitor_listen = strdup("127.0.0.1:9000");
        c->monitor_socket = strdup("/run/fusion/monitor.sock");
        c->client_listen = strdup("127.0.0.1:9001");
        c->client_socket = strdup("/run/fusion/client.sock");
        c->monitor_address = strdup("127.0.0.1:9000");
        c->client_address = strdup("127.0.0.1:9001");
        c->state_dir = strdup("/var/lib/fusion/monitor");
        if (!c->monitor_listen || !c->monitor_socket || !c->client_listen || !c->client_socket ||
            !c->monitor_address || !c->client_address || !c->state_dir || !c->authkey_file)
                return -ENOMEM;
        return 0;
}

int config_new_default(Config **ret) {
        Config *c;
        int r;

        assert(ret);

        c = calloc(1, sizeof(Config));
        if (!c)
                return -ENOMEM;
        r = config_set_defaults(c);
        if (r < 0) {
                config_free(c);
                return r;
        }
        *ret = c;
        return 0;
}

Config *config_free(Config *c) {
        if (!c)
                return NULL;

        for (size_t i = 0; i < c->n_servers && i < CONFIG_SERVERS_MAX; i++) {
                free(c->servers[i].name);
                free(c->servers[i].address);
                free(c->servers[i].unit);
                free(c->servers[i].data_dir);
        }
        free(c->path);
        free(c->monitor_listen);
        free(c->monitor_socket);
        free(c->client_listen);
        free(c->client_socket);
        free(c->monitor_address);
        free(c->client_address);
        free(c->state_dir);
        free(c->authkey_file);
        free(c->client_token);
        free(c->client_token_file);
        free(c);
        return NULL;
}

const ServerConfig *config_find_server(const Config *c, const char *name) {
        int i;

        i = config_server_index(c, name);
        return i < 0 ? NULL : &c->servers[i];
}

bool config_auth_applies(const Config *c, bool is_unix) {
        if (!c)
                return false;
        return c->auth == AUTH_ALWAYS || (c->auth == AUTH_TCP && !is_unix);
}

bool config_auth_needed(const Config *c) {
        if (!c || c->auth == AUTH_NEVER)
                return false;
        if (c->auth == AUTH_ALWAYS)
                return true;
        if (c->monitor_listen[0] != '\0' || c->monitor_address[0] != '\0')
                return true;
        for (size_t i = 0; i < c->n_servers; i++)
                if (!sockaddr_is_unix(&c->servers[i].address_addr))
                        return true;
        return false;
}

int config_server_index(const Config *c, const char *name) {
        if (!c || !name)
                return -ENOENT;
        for (size_t i = 0; i < c->n_servers; i++)
                if (strcmp(c->servers[i].name, name) == 0)
                        return (int) i;
        return -ENOENT;
}
