/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ctl-status — parsing the monitor's SERVER lines and rendering them as the
 * `fusionctl status` table or as JSON. No I/O.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "client-lib.h"
#include "ctl-status.h"
#include "protocol.h"

#define ANSI_GREEN "\x1b[0;32m"
#define ANSI_YELLOW "\x1b[0;33m"
#define ANSI_RED "\x1b[0;31m"
#define ANSI_BOLD "\x1b[1m"
#define ANSI_NORMAL "\x1b[0m"

static void copy_kv(const char *text, const char *key, char *dst, size_t size) {
        const char *v;
        size_t len;

        if (kv_find(text, key, &v, &len) <= 0) {
                dst[0] = 0;
                return;
        }
        len = MIN(len, size - 1);
        memcpy(dst, v, len);
        dst[len] = 0;
}

int server_status_parse(const char *text, ServerStatus *ret) {
        ServerStatus s = {};

        copy_kv(text, "name", s.name, sizeof(s.name));
        if (!s.name[0])
                return -EINVAL;
        copy_kv(text, "role", s.role, sizeof(s.role));
        copy_kv(text, "state", s.state, sizeof(s.state));
        copy_kv(text, "term", s.term, sizeof(s.term));
        copy_kv(text, "index", s.index, sizeof(s.index));
        copy_kv(text, "commit", s.commit, sizeof(s.commit));
        copy_kv(text, "age_ms", s.age_ms, sizeof(s.age_ms));
        copy_kv(text, "unit", s.unit, sizeof(s.unit));
        *ret = s;
        return 0;
}

void format_age(char *buf, size_t size, const char *age_ms) {
        uint64_t ms;

        if (!age_ms || safe_atou64(age_ms, &ms) < 0)
                snprintf(buf, size, "-");
        else if (ms < 1000)
                snprintf(buf, size, "%" PRIu64 "ms", ms);
        else if (ms < 60 * 1000)
                snprintf(buf, size, "%" PRIu64 ".%" PRIu64 "s", ms / 1000, (ms % 1000) / 100);
        else if (ms < 3600 * 1000)
                snprintf(buf, size, "%" PRIu64 "m%02" PRIu64 "s", ms / 60000, (ms / 1000) % 60);
        else
                snprintf(buf, size, "%" PRIu64 "h%02" PRIu64 "m", ms / 3600000, (ms / 60000) % 60);
}

enum { COL_NAME, COL_ROLE, COL_STATE, COL_TERM, COL_INDEX, COL_COMMIT, COL_AGE, COL_UNIT, _COL_MAX };

static const char *const col_header[_COL_MAX] = { "NAME", "ROLE", "STATE", "TERM", "INDEX", "COMMIT", "AGE", "UNIT" };

static const char *or_dash(const char *s) {
        return s && *s ? s : "-";
}

/* The visible cell texts of one row (cells point into s or into the scratch buffers). */
static void row_cells(const ServerStatus *s, char age[32], char unit[400], const char *cells[_COL_MAX]) {
        format_age(age, 32, s->age_ms);
        if (s->unit_active[0])
                snprintf(unit, 400, "%s %s%s%s", or_dash(s->unit), s->unit_active, s->unit_sub[0] ? "/" : "",
                         s->unit_sub);
        else
                snprintf(unit, 400, "%s", or_dash(s->unit));
        cells[COL_NAME] = or_dash(s->name);
        cells[COL_ROLE] = or_dash(s->role);
        cells[COL_STATE] = or_dash(s->state);
        cells[COL_TERM] = or_dash(s->term);
        cells[COL_INDEX] = or_dash(s->index);
        cells[COL_COMMIT] = or_dash(s->commit);
        cells[COL_AGE] = age;
        cells[COL_UNIT] = unit;
}

static const char *cell_colour(const ServerStatus *s, int col) {
        if (col == COL_STATE) {
                if (strcmp(s->state, "up") == 0)
                        return ANSI_GREEN;
                if (strcmp(s->state, "suspect") == 0)
                        return ANSI_YELLOW;
                if (strcmp(s->state, "down") == 0)
                        return ANSI_RED;
        }
        if (col == COL_UNIT && strcmp(s->unit_active, "failed") == 0)
                return ANSI_RED;
        if (col == COL_ROLE && strcmp(s->role, "primary") == 0)
                return ANSI_BOLD;
        return NULL;
}

static int append_cell(Buf *b, const char *text, size_t width, const char *colour, bool last) {
        int r;

        if (colour) {
                r = buf_printf(b, "%s%s%s", colour, text, ANSI_NORMAL);
                if (r >= 0 && !last)
                        r = buf_printf(b, "%*s", (int) (width - strlen(text) + 1), "");
        } else if (last)
                r = buf_append_str(b, text);
        else
                r = buf_printf(b, "%-*s ", (int) width, text);
        return r;
}

static int format_summary(Buf *b, const StatusSummary *sum, bool colour) {
        if (sum->primary_known)
                return buf_printf(b, "primary: %s%s%s at %s, term %" PRIu64 "\n", colour ? ANSI_BOLD : "",
                                  sum->primary, colour ? ANSI_NORMAL : "", sum->address, sum->term);
        return buf_printf(b, "primary: %snone%s, term %" PRIu64 "\n", colour ? ANSI_RED : "",
                          colour ? ANSI_NORMAL : "", sum->term);
}

int status_format_table(Buf *b, const StatusSummary *sum, const ServerStatus *s, size_t n, bool colour) {
        size_t width[_COL_MAX];
        int r;

        for (int c = 0; c < _COL_MAX; c++)
                width[c] = strlen(col_header[c]);
        for (size_t i = 0; i < n; i++) {
                const char *cells[_COL_MAX];
                char age[32], unit[400];

                row_cells(&s[i], age, unit, cells);
                for (int c = 0; c < _COL_MAX; c++)
                        width[c] = MAX(width[c], strlen(cells[c]));
        }

        if (sum) {
                r = format_summary(b, sum, colour);
                if (r < 0)
                        return r;
        }
        for (int c = 0; c < _COL_MAX; c++) {
                r = append_cell(b, col_header[c], width[c], NULL, c == _COL_MAX - 1);
                if (r < 0)
                        return r;
        }
        r = buf_append_str(b, "\n");
        for (size_t i = 0; r >= 0 && i < n; i++) {
                const char *cells[_COL_MAX];
                char age[32], unit[400];

                row_cells(&s[i], age, unit, cells);
                for (int c = 0; r >= 0 && c < _COL_MAX; c++)
                        r = append_cell(b, cells[c], width[c], colour ? cell_colour(&s[i], c) : NULL,
                                        c == _COL_MAX - 1);
                if (r >= 0)
                        r = buf_append_str(b, "\n");
        }
        return r;
}

static int json_field_str(Buf *b, const char *key, const char *value, bool comma) {
        int r = buf_printf(b, "%s\"%s\":", comma ? "," : "", key);

        if (r < 0)
                return r;
        if (!value || !*value)
                return buf_append_str(b, "null");
        return json_append_string(b, value, strlen(value));
}

static int json_field_num(Buf *b, const char *key, const char *value) {
        uint64_t v;

        if (value && safe_atou64(value, &v) >= 0)
                return buf_printf(b, ",\"%s\":%" PRIu64, key, v);
        return buf_printf(b, ",\"%s\":null", key);
}

int status_format_json(Buf *b, const StatusSummary *sum, const ServerStatus *s, size_t n) {
        int r;

        r = buf_printf(b, "{\"term\":%" PRIu64, sum->term);
        if (r >= 0)
                r = json_field_str(b, "primary", sum->primary_known ? sum->primary : NULL, true);
        if (r >= 0)
                r = buf_append_str(b, ",\"servers\":[");
        for (size_t i = 0; r >= 0 && i < n; i++) {
                r = buf_append_str(b, i > 0 ? ",{" : "{");
                if (r >= 0)
                        r = json_field_str(b, "name", s[i].name, false);
                if (r >= 0)
                        r = json_field_str(b, "role", s[i].role, true);
                if (r >= 0)
                        r = json_field_str(b, "state", s[i].state, true);
                if (r >= 0)
                        r = json_field_num(b, "term", s[i].term);
                if (r >= 0)
                        r = json_field_num(b, "index", s[i].index);
                if (r >= 0)
                        r = json_field_num(b, "commit", s[i].commit);
                if (r >= 0)
                        r = json_field_num(b, "age_ms", s[i].age_ms);
                if (r >= 0)
                        r = json_field_str(b, "unit", s[i].unit, true);
                if (r >= 0)
                        r = json_field_str(b, "unit_active_state", s[i].unit_active, true);
                if (r >= 0)
                        r = json_field_str(b, "unit_sub_state", s[i].unit_sub, true);
                if (r >= 0)
                        r = buf_append_str(b, "}");
        }
        if (r >= 0)
                r = buf_append_str(b, "]}\n");
        return r;
}
