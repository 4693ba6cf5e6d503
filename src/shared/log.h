/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * log — daemon logging. Under journald (JOURNAL_STREAM matches stderr) lines go
 * to sd-journal with structured fields FUSION_SERVER=, FUSION_ROLE=,
 * FUSION_TERM=, PRIORITY= and, for events, MESSAGE_ID=; otherwise plain
 * "ident: message" lines on stderr.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <syslog.h>

#include "macro.h"

/* ident: program name for stderr lines. */
void log_setup(const char *ident);
void log_set_max_level(int level);
int log_get_max_level(void);
bool log_to_journal(void);
/* Context attached to every line from now on (NULL/0 leaves a field out). */
void log_set_context(const char *server, const char *role, uint64_t term);

/* Returns -abs(error) (or 0 when error == 0) so callers can
 * `return log_error_errno(r, "...: %m");`. errno is set to abs(error) while
 * formatting, so %m prints strerror(error). message_id may be NULL. */
int log_internal(int level, int error, const char *message_id, const char *file, int line, const char *func,
                 const char *fmt, ...) _printf_(7, 8);

#define log_full_errno(level, error, ...) \
        log_internal((level), (error), NULL, __FILE__, __LINE__, __func__, __VA_ARGS__)
#define log_debug(...) log_full_errno(LOG_DEBUG, 0, __VA_ARGS__)
#define log_info(...) log_full_errno(LOG_INFO, 0, __VA_ARGS__)
#define log_notice(...) log_full_errno(LOG_NOTICE, 0, __VA_ARGS__)
#define log_warning(...) log_full_errno(LOG_WARNING, 0, __VA_ARGS__)
#define log_error(...) log_full_errno(LOG_ERR, 0, __VA_ARGS__)
#define log_debug_errno(e, ...) log_full_errno(LOG_DEBUG, (e), __VA_ARGS__)
#define log_info_errno(e, ...) log_full_errno(LOG_INFO, (e), __VA_ARGS__)
#define log_warning_errno(e, ...) log_full_errno(LOG_WARNING, (e), __VA_ARGS__)
#define log_error_errno(e, ...) log_full_errno(LOG_ERR, (e), __VA_ARGS__)
/* An event with a fixed MESSAGE_ID (see fusion-ids.h). */
#define log_event(level, message_id, ...) \
        log_internal((level), 0, (message_id), __FILE__, __LINE__, __func__, __VA_ARGS__)
#define log_oom() log_error_errno(-ENOMEM, "Out of memory.")
