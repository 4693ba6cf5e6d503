/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * config — loads /etc/fusion/fusion.conf. libinih splits the text into
 * sections and "key = value" pairs; a table maps each (section, key) to a
 * parser and a field offset. Defaults are set before parsing, the checks that
 * involve several keys run afterwards, and every error names file, line and key.
 *
 * libinih is fed through ini_parse_stream() with our own line reader instead
 * of ini_parse_file()/ini_parse_string(): Debian's shared libinih calls the
 * handler without a line number (INI_HANDLER_LINENO is 0 there), so the reader
 * is the only place that knows which line the handler is looking at. It also
 * sees lines longer than libinih's 200-byte buffer, which libinih would split
 * silently, and section headers, which libinih does not report.
 */
#include <assert.h>
#include <ini.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "macro.h"
#include "net.h"
#include "peerauth.h"
#include "util.h"

#define CONFIG_FILE_MAX (1024 * 1024)
#define DURATION_MS_MAX UINT64_C(86400000) /* one day */
#define MESSAGE_BYTES_MAX UINT64_C(16777216)
#define CLIENTS_MAX UINT64_C(1000000)
#define PRIORITY_MAX UINT64_C(4294967295)
#define UNIT_NAME_MAX 255

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

typedef enum SectionKind {
        SECTION_NONE,
        SECTION_CLUSTER,
        SECTION_MONITOR,
        SECTION_SERVER,
        _SECTION_KIND_MAX,
} SectionKind;

typedef struct ConfigItem ConfigItem;
/* Parse value into the field at base + item->offset. On a bad value return
 * -EINVAL and describe what was expected in expected[]; -ENOMEM passes up. */
typedef int (*ConfigParser)(const ConfigItem *item, const char *value, void *base, char *expected,
                            size_t size);

struct ConfigItem {
        SectionKind section;
        const char *key;
        ConfigParser parse;
        size_t offset;
        uint64_t min, max;      /* numbers only */
        const char *what;       /* numbers only: "a duration in milliseconds" */
};

static int set_string(char **field, const char *value) {
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
        return set_string((char **) ((char *) base + item->offset), value);
}

static int parse_path(const ConfigItem *item, const char *value, void *base, char *expected, size_t size) {
        if (value[0] != '/' || strlen(value) >= PATH_MAX) {
                snprintf(expected, size, "an absolute path");
                return -EINVAL;
        }
        return set_string((char **) ((char *) base + item->offset), value);
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
        return set_string((char **) ((char *) base + item->offset), value);
}

/* A TCP address, stored normalised; empty means none. */
static int parse_tcp_or_none(const ConfigItem *item, const char *value, void *base, char *expected,
                             size_t size) {
        char buf[SOCKADDR_STRLEN];
        SockAddr a;

        if (value[0] == '\0')
                return set_string((char **) ((char *) base + item->offset), "");
        if (sockaddr_parse(value, false, &a) < 0 || sockaddr_is_unix(&a) ||
            sockaddr_format(&a, buf, sizeof(buf)) < 0) {
                snprintf(expected, size,
                         "an address such as 127.0.0.1:9000, [::1]:9000 or localhost:9000, or nothing");
                return -EINVAL;
        }
        return set_string((char **) ((char *) base + item->offset), buf);
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
        return set_string((char **) ((char *) base + item->offset), value);
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
        r = set_string(&s->address, buf);
        if (r < 0)
                return r;
        s->address_addr = a;
        return 0;
}

#define DURATION(k)                                                                                        \
        { SECTION_CLUSTER, #k, parse_u64, offsetof(Config, k), 1, DURATION_MS_MAX, "a duration in milliseconds" }

static const ConfigItem config_items[] = {
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

static const ConfigItem server_items[] = {
        { SECTION_SERVER, "address", parse_server_address, offsetof(ServerConfig, address) },
        { SECTION_SERVER, "priority", parse_u64, offsetof(ServerConfig, priority), 0, PRIORITY_MAX,
          "a priority (0: never promote)" },
        { SECTION_SERVER, "unit", parse_unit, offsetof(ServerConfig, unit) },
        { SECTION_SERVER, "data_dir", parse_path, offsetof(ServerConfig, data_dir) },
};

enum { SERVER_ADDRESS, SERVER_PRIORITY, SERVER_UNIT, SERVER_DATA_DIR };

typedef struct ParseState {
        Config *config;
        const char *name;               /* path or name used in messages */
        const char *text, *pos, *end;   /* the whole text, the unread rest */

        unsigned line;                  /* current physical line, 1-based */
        const char *line_text;          /* current line without its line end */
        size_t line_len;

        SectionKind section;
        ServerConfig *server;           /* current [server.NAME] */
        bool key_in_section;            /* libinih reads an indented line after a key as a continuation */
        bool bad_section;               /* an unknown section: its keys are not ours to judge */
        unsigned section_line[_SECTION_KIND_MAX];

        unsigned item_line[ELEMENTSOF(config_items)];
        unsigned server_item_line[CONFIG_SERVERS_MAX][ELEMENTSOF(server_items)];

        int r;                          /* first error, 0 if none */
        unsigned error_line;
        char *error;
} ParseState;

static const char *section_name(const ParseState *st, char *buf, size_t size) {
        switch (st->section) {
        case SECTION_CLUSTER:
                return "cluster";
        case SECTION_MONITOR:
                return "monitor";
        case SECTION_SERVER:
                snprintf(buf, size, "server.%s", st->server->name);
                return buf;
        default:
                return "";
        }
}

/* Quote text for a message: control bytes and DEL as \xNN. */
static const char *escape(const char *s, size_t n, char *buf, size_t size) {
        size_t j = 0;

        for (size_t i = 0; i < n && j + 5 < size; i++) {
                unsigned char c = (unsigned char) s[i];
                if (c < 0x20 || c == 0x7f)
                        j += (size_t) snprintf(buf + j, size - j, "\\x%02x", c);
                else
                        buf[j++] = (char) c;
        }
        buf[j] = '\0';
        return buf;
}

#define ESCAPE_MAX 1024

/* Record the first error. line 0 means the whole file. Returns st->r. */
_printf_(4, 5) static int fail(ParseState *st, int r, unsigned line, const char *fmt, ...) {
        _cleanup_(freep) char *msg = NULL;
        va_list ap;
        int k;

        if (st->r < 0)
                return st->r;
        st->r = r;
        st->error_line = line;
        if (r == -ENOMEM)
                return r;

        va_start(ap, fmt);
        k = vasprintf(&msg, fmt, ap);
        va_end(ap);
        if (k < 0) {
                msg = NULL;
                return (st->r = -ENOMEM);
        }
        if (line > 0)
                k = asprintf(&st->error, "%s:%u: %s", st->name, line, msg);
        else
                k = asprintf(&st->error, "%s: %s", st->name, msg);
        if (k < 0) {
                st->error = NULL;
                st->r = -ENOMEM;
        }
        return st->r;
}

/* libinih's find_chars_or_comment(): the first of chars, or an inline ';'
 * that follows whitespace, or the end. */
static const char *find_chars_or_comment(const char *s, const char *e, const char *chars) {
        bool was_space = false;

        for (; s < e; s++) {
                if (strchr(chars, *s) || (was_space && *s == ';'))
                        break;
                was_space = strchr(" \t\n\v\f\r", *s);
        }
        return s;
}

static void strip(const char **s, const char **e) {
        while (*s < *e && strchr(" \t\n\v\f\r", **s))
                (*s)++;
        while (*e > *s && strchr(" \t\n\v\f\r", (*e)[-1]))
                (*e)--;
}

static void start_section(ParseState *st, const char *name, size_t n) {
        const char *prefix = "server.";
        char esc[ESCAPE_MAX], esc_server[ESCAPE_MAX];
        ServerConfig *s;

        st->key_in_section = false;
        st->bad_section = true;
        escape(name, n, esc, sizeof(esc));

        if (n == strlen("cluster") && memcmp(name, "cluster", n) == 0)
                st->section = SECTION_CLUSTER;
        else if (n == strlen("monitor") && memcmp(name, "monitor", n) == 0)
                st->section = SECTION_MONITOR;
        else if (n > strlen(prefix) && memcmp(name, prefix, strlen(prefix)) == 0)
                st->section = SECTION_SERVER;
        else {
                fail(st, -EINVAL, st->line, "[%s]: unknown section, expected [cluster], [monitor] or [server.NAME]",
                     esc);
                return;
        }

        if (st->section != SECTION_SERVER) {
                if (st->section_line[st->section] > 0) {
                        fail(st, -EINVAL, st->line, "[%s]: duplicate section, first at line %u", esc,
                             st->section_line[st->section]);
                        return;
                }
                st->section_line[st->section] = st->line;
                st->bad_section = false;
                return;
        }

        _cleanup_(freep) char *server = strndup(name + strlen(prefix), n - strlen(prefix));
        if (!server) {
                fail(st, -ENOMEM, st->line, "out of memory");
                return;
        }
        if (!name_is_valid(server)) {
                fail(st, -EINVAL, st->line,
                     "[%s]: expected a server name of 1 to %d characters out of A-Z a-z 0-9 _ -, got '%s'", esc,
                     NAME_MAX_LEN, escape(server, strlen(server), esc_server, sizeof(esc_server)));
                return;
        }
        for (size_t i = 0; i < st->config->n_servers; i++)
                if (strcmp(st->config->servers[i].name, server) == 0) {
                        fail(st, -EINVAL, st->line, "[%s]: duplicate section, first at line %u", esc,
                             st->config->servers[i].line);
                        return;
                }
        if (st->config->n_servers >= CONFIG_SERVERS_MAX) {
                fail(st, -EINVAL, st->line, "[%s]: expected at most %d server sections, got more", esc,
                     CONFIG_SERVERS_MAX);
                return;
        }

        s = &st->config->servers[st->config->n_servers++];
        *s = (ServerConfig){ .name = TAKE_PTR(server), .line = st->line };
        st->server = s;
        st->bad_section = false;
}

/* A section header as libinih sees it: "[name]" with only a comment after. */
static void check_section_header(ParseState *st, bool indented) {
        const char *s = st->line_text, *e = st->line_text + st->line_len, *close, *rest;
        char esc[ESCAPE_MAX];

        if (st->line == 1 && e - s >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0)
                s += 3;
        strip(&s, &e);
        if (s == e || *s != '[' || (indented && st->key_in_section))
                return;

        close = find_chars_or_comment(s + 1, e, "]");
        if (close == e || *close != ']')
                return; /* libinih reports the line */

        rest = close + 1;
        strip(&rest, &e);
        if (rest < e && *rest != ';' && *rest != '#') {
                fail(st, -EINVAL, st->line, "expected nothing after the section header, got '%s'",
                     escape(s, (size_t) (e - s), esc, sizeof(esc)));
                return;
        }
        start_section(st, s + 1, (size_t) (close - s - 1));
}

/* fgets() for libinih over st->pos..st->end, one physical line per call. */
static char *config_reader(char *buf, int num, void *stream) {
        ParseState *st = stream;
        const char *nl;
        size_t n, content;

        if (st->r < 0 || st->pos >= st->end)
                return NULL;

        nl = memchr(st->pos, '\n', (size_t) (st->end - st->pos));
        n = nl ? (size_t) (nl - st->pos) + 1 : (size_t) (st->end - st->pos);
        content = n;
        if (content > 0 && st->pos[content - 1] == '\n')
                content--;
        if (content > 0 && st->pos[content - 1] == '\r')
                content--;

        st->line++;
        st->line_text = st->pos;
        st->line_len = content;

        /* libinih needs room for "\r\n\0" after the longest line. */
        if (num < 3 || content > (size_t) num - 3) {
                fail(st, -EINVAL, st->line, "expected a line of at most %d bytes, got %zu bytes",
                     num < 3 ? 0 : num - 3, content);
                return NULL;
        }
        if (memchr(st->pos, '\0', n)) {
                fail(st, -EINVAL, st->line, "expected text, got a NUL byte");
                return NULL;
        }

        memcpy(buf, st->pos, n);
        buf[n] = '\0';
        st->pos += n;

        check_section_header(st, content > 0 && strchr(" \t\v\f\r", st->line_text[0]));
        return buf;
}

static const ConfigItem *find_item(SectionKind section, const char *key, size_t *ret_index) {
        const ConfigItem *table = section == SECTION_SERVER ? server_items : config_items;
        size_t n = section == SECTION_SERVER ? ELEMENTSOF(server_items) : ELEMENTSOF(config_items);

        for (size_t i = 0; i < n; i++)
                if (table[i].section == section && strcmp(table[i].key, key) == 0) {
                        *ret_index = i;
                        return &table[i];
                }
        return NULL;
}

static void list_keys(SectionKind section, char *buf, size_t size) {
        const ConfigItem *table = section == SECTION_SERVER ? server_items : config_items;
        size_t n = section == SECTION_SERVER ? ELEMENTSOF(server_items) : ELEMENTSOF(config_items);
        size_t j = 0;

        buf[0] = '\0';
        for (size_t i = 0; i < n && j < size; i++)
                if (table[i].section == section)
                        j += (size_t) snprintf(buf + j, size - j, "%s%s", j > 0 ? ", " : "", table[i].key);
}

static int config_handler(void *user, const char *ini_section, const char *key, const char *value) {
        ParseState *st = user;
        char esc[ESCAPE_MAX], sect_buf[64], expected[256], keys[512];
        const char *sect;
        const ConfigItem *item;
        unsigned *line;
        size_t index;
        int r;

        if (st->r < 0)
                return 0;
        if (st->bad_section)
                return 0; /* start_section() reported it */

        if (st->line_len > 0 && strchr(" \t\v\f\r", st->line_text[0])) {
                fail(st, -EINVAL, st->line,
                     "expected a line without leading whitespace (continuation lines are not supported), "
                     "got '%s'",
                     escape(st->line_text, st->line_len, esc, sizeof(esc)));
                return 0;
        }
        st->key_in_section = true;

        if (st->section == SECTION_NONE) {
                fail(st, -EINVAL, st->line, "expected a [section] header before the first key, got '%s'",
                     escape(st->line_text, st->line_len, esc, sizeof(esc)));
                return 0;
        }

        sect = section_name(st, sect_buf, sizeof(sect_buf));
        item = find_item(st->section, key, &index);
        if (!item) {
                list_keys(st->section, keys, sizeof(keys));
                fail(st, -EINVAL, st->line, "[%s] %s: unknown key, expected one of %s", sect,
                     escape(key, strlen(key), esc, sizeof(esc)), keys);
                return 0;
        }

        line = st->section == SECTION_SERVER
                       ? &st->server_item_line[st->server - st->config->servers][index]
                       : &st->item_line[index];
        if (*line > 0) {
                fail(st, -EINVAL, st->line, "[%s] %s: duplicate key, first set at line %u", sect, key, *line);
                return 0;
        }

        r = item->parse(item, value, st->section == SECTION_SERVER ? (void *) st->server : (void *) st->config,
                        expected, sizeof(expected));
        if (r == -ENOMEM) {
                fail(st, r, st->line, "out of memory");
                return 0;
        }
        if (r < 0) {
                fail(st, -EINVAL, st->line, "[%s] %s: expected %s, got '%s'", sect, key, expected,
                     escape(value, strlen(value), esc, sizeof(esc)));
                return 0;
        }

        *line = st->line;
        return 1;
}

/* The text of line n (1-based), for quoting a line libinih rejected. */
static void line_at(const ParseState *st, unsigned n, const char **ret, size_t *ret_len) {
        const char *p = st->text, *nl;

        for (unsigned i = 1; i < n && p < st->end; i++) {
                nl = memchr(p, '\n', (size_t) (st->end - p));
                p = nl ? nl + 1 : st->end;
        }
        nl = memchr(p, '\n', (size_t) (st->end - p));
        *ret = p;
        *ret_len = nl ? (size_t) (nl - p) : (size_t) (st->end - p);
}

static void syntax_error(ParseState *st, unsigned n) {
        char esc[ESCAPE_MAX];
        const char *s, *e;
        size_t len;

        line_at(st, n, &s, &len);
        e = s + len;
        if (n == 1 && len >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0)
                s += 3;
        strip(&s, &e);

        /* Replace a later error recorded by us: libinih's comes first. */
        free(st->error);
        st->error = NULL;
        st->r = 0;
        if (s < e && *s == '[')
                fail(st, -EINVAL, n, "expected ']' to close the section header, got '%s'",
                     escape(s, (size_t) (e - s), esc, sizeof(esc)));
        else
                fail(st, -EINVAL, n, "expected 'key = value', got '%s'",
                     escape(s, (size_t) (e - s), esc, sizeof(esc)));
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
                return fail(st, -EINVAL, s->line, "[server.%s] address: expected an address, got none", s->name);

        if (lines[SERVER_PRIORITY] == 0) {
                if (sockaddr_is_unix(&s->address_addr))
                        return fail(st, -EINVAL, s->line,
                                    "[server.%s] priority: expected a priority, as the unix socket address "
                                    "'%s' has no port to take it from, got none",
                                    s->name, s->address);
                s->priority = sockaddr_port(&s->address_addr);
        }
        if (!s->unit && asprintf(&s->unit, "fusion-%s.service", s->name) < 0) {
                s->unit = NULL;
                return fail(st, -ENOMEM, 0, "out of memory");
        }
        if (!s->data_dir && asprintf(&s->data_dir, "/var/lib/fusion/%s", s->name) < 0) {
                s->data_dir = NULL;
                return fail(st, -ENOMEM, 0, "out of memory");
        }
        return 0;
}

static int validate_servers(ParseState *st) {
        Config *c = st->config;
        int r;

        if (c->n_servers == 0)
                return fail(st, -EINVAL, 0, "expected at least one [server.NAME] section, got none");

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
                                return fail(st, -EINVAL, lines[SERVER_ADDRESS],
                                            "[server.%s] address: expected an address no other server uses, "
                                            "got '%s', also the address of [server.%s]",
                                            b->name, b->address, a->name);

                        if (a->priority != 0 && a->priority == b->priority)
                                return fail(st, -EINVAL,
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

static int validate_cluster(ParseState *st) {
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
                return fail(st, -EINVAL, item_line(st, key),
                            "[cluster] %s: expected dead_after_ms >= lease_ms + heartbeat_interval_ms, got "
                            "dead_after_ms = %" PRIu64 ", lease_ms = %" PRIu64
                            ", heartbeat_interval_ms = %" PRIu64,
                            key, c->dead_after_ms, c->lease_ms, c->heartbeat_interval_ms);
        }

        if (c->min_sync_replicas > c->n_servers - 1) {
                line = item_line(st, "min_sync_replicas");
                return fail(st, -EINVAL, line,
                            "[cluster] min_sync_replicas: expected at most the number of servers minus one (%zu), "
                            "got '%" PRIu64 "'%s",
                            c->n_servers - 1, c->min_sync_replicas, line > 0 ? "" : " (the default)");
        }

        if (c->client_token && c->client_token_file) {
                unsigned a = item_line(st, "client_token"), b = item_line(st, "client_token_file");

                return fail(st, -EINVAL, MAX(a, b),
                            "[cluster] %s: expected only one of client_token and client_token_file, got both",
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
        return fail(st, -EINVAL, MAX(tcp_line, unix_line), "[monitor] %s: expected %s or %s to be set, got both empty",
                    tcp_line > unix_line ? tcp_key : unix_key, tcp_key, unix_key);
}

static int validate_monitor(ParseState *st) {
        Config *c = st->config;
        int r;

        r = validate_pair(st, "listen", c->monitor_listen, "socket", c->monitor_socket);
        if (r < 0)
                return r;
        r = validate_pair(st, "client_listen", c->client_listen, "client_socket", c->client_socket);
        if (r < 0)
                return r;

        if (item_line(st, "address") == 0 && set_string(&c->monitor_address, c->monitor_listen) < 0)
                return fail(st, -ENOMEM, 0, "out of memory");
        if (item_line(st, "client_address") == 0 && set_string(&c->client_address, c->client_listen) < 0)
                return fail(st, -ENOMEM, 0, "out of memory");

        r = validate_pair(st, "address", c->monitor_address, "socket", c->monitor_socket);
        if (r < 0)
                return r;
        return validate_pair(st, "client_address", c->client_address, "client_socket", c->client_socket);
}

static int config_parse(const char *text, size_t len, const char *name, Config **ret, char **ret_error) {
        _cleanup_(config_freep) Config *c = NULL;
        ParseState st = { .name = name, .text = text, .pos = text, .end = text + len };
        int r;

        r = config_new_default(&c);
        if (r >= 0) {
                c->path = strdup(name);
                if (!c->path)
                        r = -ENOMEM;
        }
        if (r < 0) {
                fail(&st, r, 0, "out of memory");
                goto finish;
        }
        st.config = c;

        r = ini_parse_stream(config_reader, &st, config_handler, &st);
        if (r == -2)
                fail(&st, -ENOMEM, 0, "out of memory");
        else if (r > 0 && st.r != -ENOMEM && (st.r == 0 || (unsigned) r < st.error_line))
                syntax_error(&st, (unsigned) r);
        else if (r < 0)
                fail(&st, -EINVAL, 0, "cannot parse");

        /* Each check records its error in st; stop at the first. */
        if (st.r == 0)
                validate_servers(&st);
        if (st.r == 0)
                validate_cluster(&st);
        if (st.r == 0)
                validate_monitor(&st);

finish:
        if (st.r < 0) {
                if (ret_error)
                        *ret_error = TAKE_PTR(st.error);
                free(st.error);
                return st.r;
        }
        *ret = TAKE_PTR(c);
        return 0;
}

int config_load_string(const char *text, const char *name, Config **ret, char **ret_error) {
        assert(text);
        assert(ret);

        return config_parse(text, strlen(text), name ?: "(string)", ret, ret_error);
}

int config_load(const char *path, Config **ret, char **ret_error) {
        ParseState st = { .name = path };
        _cleanup_(fclosep) FILE *f = NULL;
        _cleanup_(freep) char *text = NULL;
        size_t len;

        assert(path);
        assert(ret);

        f = fopen(path, "re");
        if (!f) {
                int r = negative_errno();
                fail(&st, r, 0, "cannot open: %s", strerror(-r));
                goto error;
        }

        text = malloc(CONFIG_FILE_MAX + 1);
        if (!text) {
                fail(&st, -ENOMEM, 0, "out of memory");
                goto error;
        }
        len = fread(text, 1, CONFIG_FILE_MAX + 1, f);
        if (ferror(f)) {
                int r = negative_errno();
                fail(&st, r, 0, "cannot read: %s", strerror(-r));
                goto error;
        }
        if (len > CONFIG_FILE_MAX) {
                fail(&st, -EINVAL, 0, "expected a file of at most %d bytes, got more", CONFIG_FILE_MAX);
                goto error;
        }

        return config_parse(text, len, path, ret, ret_error);

error:
        if (ret_error)
                *ret_error = TAKE_PTR(st.error);
        free(st.error);
        return st.r;
}
