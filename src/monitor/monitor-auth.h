/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * monitor-auth — the monitor's side of peer authentication on the heartbeat
 * endpoint (doc/security.md): where [cluster] auth applies (TCP by default),
 * a connection must open with HELLO-AUTH and PROOF before its first
 * HEARTBEAT, and every line after that is sealed both ways. The cluster key
 * and the log rate limit are process-wide (one monitor, one key), kept here
 * so the manager's structures only carry the per-connection state.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "monitor-manager.h"

/* At start-up: libsodium, and the cluster key when config_auth_needed(). Logs errors. */
int monitor_auth_load(const Config *c);

/* A line of a heartbeat connection, before hb_conn_process_line(): the
 * handshake lines, or a sealed line to open (in place). 1: consumed by the
 * handshake; 0: hand the (opened) line on; < 0: close the connection (logged,
 * rate-limited). */
int hb_conn_auth_line(HbConn *c, char *line, size_t *len);
void hb_conn_auth_free(HbConn *c);
/* "10.0.0.2:41234" or "the unix socket". */
const char *hb_conn_peer(const HbConn *c, char *buf, size_t size);
