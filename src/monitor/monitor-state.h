/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * monitor-state — the monitor's persisted state, <state_dir>/state:
 * "term=T\nprimary=NAME\n" (primary empty when none). Written atomically and
 * fsync'ed before any PROMOTE of that term is sent.
 *
 * <state_dir>/id holds the monitor's identity: 32 hex digits made once from
 * getrandom(2), sent in every LEASE/PROMOTE/FOLLOW/DEMOTE so that a server can
 * tell two monitors apart (doc/internals.md, "Monitor identity").
 */
#pragma once

#include <stdint.h>

#include "hbproto.h"

/* Parse the file's text. A missing primary line or an empty value gives
 * *ret_primary == NULL. -EINVAL on a missing/bad term or a bad name. */
int monitor_state_parse(const char *text, uint64_t *ret_term, char **ret_primary);
/* Format into a malloc'd string. primary may be NULL. */
int monitor_state_format(uint64_t term, const char *primary, char **ret);

/* -ENOENT when the file does not exist (a new cluster). */
int monitor_state_load(const char *path, uint64_t *ret_term, char **ret_primary);
int monitor_state_save(const char *path, uint64_t term, const char *primary);

/* Read <path>, or when it does not exist make a new identity and write it
 * (atomically, fsync). -EINVAL when the file holds no valid identity. */
int monitor_id_load_or_create(const char *path, char ret[static HB_MONITOR_ID_MAX + 1]);
