/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * util — small pure helpers: monotonic time, strict number parsing, name and
 * msgid validation, a growable byte buffer, atomic small-file writes.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "macro.h"

typedef uint64_t usec_t;
#define USEC_PER_MSEC ((usec_t) 1000ULL)
#define USEC_PER_SEC ((usec_t) 1000000ULL)
#define USEC_INFINITY ((usec_t) UINT64_MAX)

/* CLOCK_MONOTONIC in microseconds. */
usec_t now_usec(void);
/* CLOCK_REALTIME in microseconds (for printing timestamps only). */
usec_t now_realtime_usec(void);

/* Strict unsigned decimal: digits only, no sign, no spaces, no leading '+'.
 * -EINVAL on anything else, -ERANGE on overflow. */
int safe_atou64(const char *s, uint64_t *ret);
/* Same over a length-delimited buffer (need not be NUL-terminated). */
int safe_atou64_n(const char *s, size_t n, uint64_t *ret);

/* Server names: 1..32 chars of [A-Za-z0-9_-]. */
#define NAME_MAX_LEN 32
bool name_is_valid(const char *s);
/* Message ids: 1..64 chars of [A-Za-z0-9._:-]. */
#define MSGID_MAX_LEN 64
bool msgid_is_valid(const char *s, size_t len);

/* Growable byte buffer. data is always NUL-terminated when cap > 0. */
typedef struct Buf {
        char *data;
        size_t len;
        size_t cap;
} Buf;

int buf_reserve(Buf *b, size_t extra);
int buf_append(Buf *b, const void *p, size_t n);
int buf_append_str(Buf *b, const char *s);
int buf_append_u64(Buf *b, uint64_t v);
int buf_append_line_u64(Buf *b, const char *word, uint64_t v);
int buf_printf(Buf *b, const char *fmt, ...) _printf_(2, 3);
/* Drop n bytes from the front. */
void buf_consume(Buf *b, size_t n);
void buf_clear(Buf *b);
void buf_done(Buf *b);

/* Write content to path via a temp file, fsync, rename and fsync of the
 * directory: after return the new content is durable or the old one stands. */
int write_file_atomic(const char *path, const char *content);
/* Read a small file (at most max bytes) into a NUL-terminated string. */
int read_file_small(const char *path, size_t max, char **ret);
/* mkdir -p with mode for the created components. */
int mkdir_p(const char *path, mode_t mode);

/* Read "key=value" with an unsigned value out of a small state file's text
 * (one pair per line). -ENOENT if the key is absent. */
int state_get_u64(const char *text, const char *key, uint64_t *ret);
