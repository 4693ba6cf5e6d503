/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * replication-backup — a backup's link to its primary: connect (non-blocking)
 * to the primary's client port, SYNC, truncate a divergent tail, append the
 * streamed entries, make them durable per the fsync mode once per batch of
 * lines and ACK them; reconnect with backoff while following the same
 * primary in the same term.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "server-manager.h"

int backup_link_new(Manager *m, const char *primary, const char *address, uint64_t term, BackupLink **ret);
BackupLink *backup_link_free(BackupLink *l);
bool backup_link_matches(const BackupLink *l, const char *primary, const char *address, uint64_t term);
/* Every heartbeat interval: ACK keepalive, drop a silent link. */
void backup_link_tick(BackupLink *l);
