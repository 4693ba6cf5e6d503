/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ctl-status — `fusionctl status`: one server's row parsed from the
 * monitor's STATUS line, and the table / JSON renderings (pure, tested).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define STATUS_FIELD_MAX 64

typedef struct ServerStatus {
        char name[NAME_MAX_LEN + 1];
        char role[STATUS_FIELD_MAX];
        char state[STATUS_FIELD_MAX];
        char term[STATUS_FIELD_MAX];      /* as the monitor wrote them; "" when absent */
        char index[STATUS_FIELD_MAX];
        char commit[STATUS_FIELD_MAX];
        char age_ms[STATUS_FIELD_MAX];
        char unit[256];
        char unit_active[STATUS_FIELD_MAX]; /* "" = unknown */
        char unit_sub[STATUS_FIELD_MAX];
} ServerStatus;

/* Parse the "k=v ..." text of a SERVER line. -EINVAL without name=. */
int server_status_parse(const char *text, ServerStatus *ret);

/* "850ms", "12.3s", "4m05s", "2h13m", "-" for a missing or bad value. */
void format_age(char *buf, size_t size, const char *age_ms);

typedef struct StatusSummary {
        bool primary_known;
        char primary[NAME_MAX_LEN + 1];
        char address[128];
        uint64_t term;
} StatusSummary;

/* The table: a summary line, then NAME ROLE STATE TERM INDEX COMMIT AGE UNIT.
 * With colour, STATE is green (up), yellow (suspect) or red (down) and a
 * failed unit red; padding counts only visible characters. */
int status_format_table(Buf *b, const StatusSummary *sum, const ServerStatus *s, size_t n, bool colour);

/* {"term":T,"primary":"name"|null,"servers":[{...}]}\n */
int status_format_json(Buf *b, const StatusSummary *sum, const ServerStatus *s, size_t n);
