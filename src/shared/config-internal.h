/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * config-internal.h — what the config*.c files share with each other and with
 * nothing else: the key table (config-items.c), the parser state that records
 * the first error (config-parse.c) and the checks over the whole configuration
 * (config-validate.c). Other modules use config.h only.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "macro.h"

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

/* The number of entries in config_items[] and config_server_items[] (config-items.c),
 * so that ParseState below can size its arrays. Keep them equal to the tables:
 * an extra table entry does not compile with -Werror, a missing one leaves a
 * zeroed entry behind, which test-config's key_tables test catches. */
#define CONFIG_ITEMS_N 20
#define SERVER_ITEMS_N 4

extern const ConfigItem config_items[CONFIG_ITEMS_N];
extern const ConfigItem config_server_items[SERVER_ITEMS_N];

/* Indexes into config_server_items[]. */
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
        unsigned server_item_line[CONFIG_SERVERS_MAX][ELEMENTSOF(config_server_items)];

        int r;                          /* first error, 0 if none */
        unsigned error_line;
        char *error;
} ParseState;

/* config-items.c: replace the string *field with a copy of value. */
int config_set_string(char **field, const char *value);

/* config-parse.c: record the first error. line 0 means the whole file. Returns st->r. */
_printf_(4, 5) int config_fail(ParseState *st, int r, unsigned line, const char *fmt, ...);

/* config-validate.c: the checks that involve several keys, run after parsing.
 * Each records its error in st and returns st->r. */
int config_validate_servers(ParseState *st);
int config_validate_cluster(ParseState *st);
int config_validate_monitor(ParseState *st);
