/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * config-parse — reads fusion.conf (config_load(), config_load_string()).
 * libinih splits the text into sections and "key = value" pairs; each key is
 * looked up in config-items.c's table and its value parsed into the field it
 * names. Defaults are set before parsing, config-validate.c's checks run
 * afterwards, and every error names file, line and key.
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
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config-internal.h"
#include "config.h"
#include "macro.h"
#include "util.h"

#define CONFIG_FILE_MAX (1024 * 1024)

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
_printf_(4, 5) int config_fail(ParseState *st, int r, unsigned line, const char *fmt, ...) {
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
                config_fail(st, -EINVAL, st->line, "[%s]: unknown section, expected [cluster], [monitor] or [server.NAME]",
                            esc);
                return;
        }

        if (st->section != SECTION_SERVER) {
                if (st->section_line[st->section] > 0) {
                        config_fail(st, -EINVAL, st->line, "[%s]: duplicate section, first at line %u", esc,
                                    st->section_line[st->section]);
                        return;
                }
                st->section_line[st->section] = st->line;
                st->bad_section = false;
                return;
        }

        _cleanup_(freep) char *server = strndup(name + strlen(prefix), n - strlen(prefix));
        if (!server) {
                config_fail(st, -ENOMEM, st->line, "out of memory");
                return;
        }
        if (!name_is_valid(server)) {
                config_fail(st, -EINVAL, st->line,
                            "[%s]: expected a server name of 1 to %d characters out of A-Z a-z 0-9 _ -, "
                            "got '%s'",
                            esc, NAME_MAX_LEN, escape(server, strlen(server), esc_server, sizeof(esc_server)));
                return;
        }
        for (size_t i = 0; i < st->config->n_servers; i++)
                if (strcmp(st->config->servers[i].name, server) == 0) {
                        config_fail(st, -EINVAL, st->line, "[%s]: duplicate section, first at line %u", esc,
                                    st->config->servers[i].line);
                        return;
                }
        if (st->config->n_servers >= CONFIG_SERVERS_MAX) {
                config_fail(st, -EINVAL, st->line, "[%s]: expected at most %d server sections, got more", esc,
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
                config_fail(st, -EINVAL, st->line, "expected nothing after the section header, got '%s'",
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
                config_fail(st, -EINVAL, st->line, "expected a line of at most %d bytes, got %zu bytes",
                            num < 3 ? 0 : num - 3, content);
                return NULL;
        }
        if (memchr(st->pos, '\0', n)) {
                config_fail(st, -EINVAL, st->line, "expected text, got a NUL byte");
                return NULL;
        }

        memcpy(buf, st->pos, n);
        buf[n] = '\0';
        st->pos += n;

        check_section_header(st, content > 0 && strchr(" \t\v\f\r", st->line_text[0]));
        return buf;
}

static const ConfigItem *find_item(SectionKind section, const char *key, size_t *ret_index) {
        const ConfigItem *table = section == SECTION_SERVER ? config_server_items : config_items;
        size_t n = section == SECTION_SERVER ? ELEMENTSOF(config_server_items) : ELEMENTSOF(config_items);

        for (size_t i = 0; i < n; i++)
                if (table[i].section == section && strcmp(table[i].key, key) == 0) {
                        *ret_index = i;
                        return &table[i];
                }
        return NULL;
}

static void list_keys(SectionKind section, char *buf, size_t size) {
        const ConfigItem *table = section == SECTION_SERVER ? config_server_items : config_items;
        size_t n = section == SECTION_SERVER ? ELEMENTSOF(config_server_items) : ELEMENTSOF(config_items);
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
                config_fail(st, -EINVAL, st->line,
                            "expected a line without leading whitespace (continuation lines are not supported), "
                            "got '%s'",
                            escape(st->line_text, st->line_len, esc, sizeof(esc)));
                return 0;
        }
        st->key_in_section = true;

        if (st->section == SECTION_NONE) {
                config_fail(st, -EINVAL, st->line, "expected a [section] header before the first key, got '%s'",
                            escape(st->line_text, st->line_len, esc, sizeof(esc)));
                return 0;
        }

        sect = section_name(st, sect_buf, sizeof(sect_buf));
        item = find_item(st->section, key, &index);
        if (!item) {
                list_keys(st->section, keys, sizeof(keys));
                config_fail(st, -EINVAL, st->line, "[%s] %s: unknown key, expected one of %s", sect,
                            escape(key, strlen(key), esc, sizeof(esc)), keys);
                return 0;
        }

        line = st->section == SECTION_SERVER
                       ? &st->server_item_line[st->server - st->config->servers][index]
                       : &st->item_line[index];
        if (*line > 0) {
                config_fail(st, -EINVAL, st->line, "[%s] %s: duplicate key, first set at line %u", sect, key, *line);
                return 0;
        }

        r = item->parse(item, value, st->section == SECTION_SERVER ? (void *) st->server : (void *) st->config,
                        expected, sizeof(expected));
        if (r == -ENOMEM) {
                config_fail(st, r, st->line, "out of memory");
                return 0;
        }
        if (r < 0) {
                config_fail(st, -EINVAL, st->line, "[%s] %s: expected %s, got '%s'", sect, key, expected,
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
                config_fail(st, -EINVAL, n, "expected ']' to close the section header, got '%s'",
                            escape(s, (size_t) (e - s), esc, sizeof(esc)));
        else
                config_fail(st, -EINVAL, n, "expected 'key = value', got '%s'",
                            escape(s, (size_t) (e - s), esc, sizeof(esc)));
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
                config_fail(&st, r, 0, "out of memory");
                goto finish;
        }
        st.config = c;

        r = ini_parse_stream(config_reader, &st, config_handler, &st);
        if (r == -2)
                config_fail(&st, -ENOMEM, 0, "out of memory");
        else if (r > 0 && st.r != -ENOMEM && (st.r == 0 || (unsigned) r < st.error_line))
                syntax_error(&st, (unsigned) r);
        else if (r < 0)
                config_fail(&st, -EINVAL, 0, "cannot parse");

        /* Each check records its error in st; stop at the first. */
        if (st.r == 0)
                config_validate_servers(&st);
        if (st.r == 0)
                config_validate_cluster(&st);
        if (st.r == 0)
                config_validate_monitor(&st);

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
                config_fail(&st, r, 0, "cannot open: %s", strerror(-r));
                goto error;
        }

        text = malloc(CONFIG_FILE_MAX + 1);
        if (!text) {
                config_fail(&st, -ENOMEM, 0, "out of memory");
                goto error;
        }
        len = fread(text, 1, CONFIG_FILE_MAX + 1, f);
        if (ferror(f)) {
                int r = negative_errno();
                config_fail(&st, r, 0, "cannot read: %s", strerror(-r));
                goto error;
        }
        if (len > CONFIG_FILE_MAX) {
                config_fail(&st, -EINVAL, 0, "expected a file of at most %d bytes, got more", CONFIG_FILE_MAX);
                goto error;
        }

        return config_parse(text, len, path, ret, ret_error);

error:
        if (ret_error)
                *ret_error = TAKE_PTR(st.error);
        free(st.error);
        return st.r;
}
