/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * config — /etc/fusion/fusion.conf (INI, parsed with libinih). Table-driven:
 * every key of DESIGN.md with its type and default; unknown keys, bad values
 * and inconsistent settings are errors naming file, line and key.
 */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net.h"

typedef enum FsyncMode {
        FSYNC_ALWAYS,
        FSYNC_BATCH,
        FSYNC_NEVER,
        _FSYNC_MODE_MAX,
        _FSYNC_MODE_INVALID = -EINVAL,
} FsyncMode;

const char *fsync_mode_to_string(FsyncMode m);
FsyncMode fsync_mode_from_string(const char *s);

/* Which internal links (heartbeats, replication) must authenticate with the cluster key. */
typedef enum AuthMode {
        AUTH_TCP,        /* every TCP link; unix sockets are trusted by their file permissions */
        AUTH_ALWAYS,     /* unix sockets too */
        AUTH_NEVER,
        _AUTH_MODE_MAX,
        _AUTH_MODE_INVALID = -EINVAL,
} AuthMode;

const char *auth_mode_to_string(AuthMode m);
AuthMode auth_mode_from_string(const char *s);

#define CONFIG_SERVERS_MAX 16

typedef struct ServerConfig {
        char *name;            /* from [server.NAME] */
        char *address;         /* "127.0.0.1:8090" as written (normalised by sockaddr_format) */
        SockAddr address_addr;
        uint64_t priority;     /* default: the address's port; 0 = never promote */
        char *unit;            /* default "fusion-NAME.service" */
        char *data_dir;        /* default "/var/lib/fusion/NAME" */
        unsigned line;         /* line of the section header */
} ServerConfig;

typedef struct Config {
        char *path;

        /* [cluster] */
        uint64_t heartbeat_interval_ms;  /* 100 */
        uint64_t dead_after_ms;          /* 500 */
        uint64_t lease_ms;               /* 400 */
        uint64_t min_sync_replicas;      /* 1 */
        uint64_t sync_timeout_ms;        /* 1000 */
        uint64_t max_message_bytes;      /* 65536 */
        FsyncMode fsync;                 /* always */
        uint64_t max_clients;            /* 1024: connections per server port */
        AuthMode auth;                   /* tcp */
        char *authkey_file;              /* "/etc/fusion/authkey" */
        char *client_token;              /* NULL: clients need no AUTH */
        char *client_token_file;         /* NULL: none; read by peerauth.h's client_token_load() */

        /* [monitor] — an empty string means "none" for the four endpoints */
        char *monitor_listen;            /* "127.0.0.1:9000" */
        char *monitor_socket;            /* "/run/fusion/monitor.sock" */
        char *client_listen;             /* "127.0.0.1:9001" */
        char *client_socket;             /* "/run/fusion/client.sock" */
        char *monitor_address;           /* where servers/clients reach the monitor over TCP; default: listen */
        char *client_address;            /* where clients reach the client API over TCP; default: client_listen */
        bool restart_failed_units;       /* yes */
        char *state_dir;                 /* "/var/lib/fusion/monitor" */

        ServerConfig servers[CONFIG_SERVERS_MAX];
        size_t n_servers;
} Config;

/* Load and validate. On error returns -EINVAL (or -ENOENT/-EACCES/-ENOMEM for
 * the file itself) and, when ret_error is non-NULL, a malloc'd message such as
 * "/etc/fusion/fusion.conf:12: [cluster] lease_ms: expected a duration in
 * milliseconds, got 'abc'". */
int config_load(const char *path, Config **ret, char **ret_error);
/* Same over an in-memory text; name is used in messages in place of a path. */
int config_load_string(const char *text, const char *name, Config **ret, char **ret_error);
/* Defaults only, no servers (tests). */
int config_new_default(Config **ret);
Config *config_free(Config *c);

const ServerConfig *config_find_server(const Config *c, const char *name);
/* Must a link over this kind of socket authenticate with the cluster key? */
bool config_auth_applies(const Config *c, bool is_unix);
/* Does any link of this configuration need the key (so it must be loaded at start)? */
bool config_auth_needed(const Config *c);
/* Index of the server in c->servers, or -ENOENT. */
int config_server_index(const Config *c, const char *name);

static inline void config_freep(Config **c) {
        if (*c)
                config_free(*c);
}
