/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * replication-primary — the primary's side of replication: a client
 * connection whose first request is SYNC becomes a replication link. The
 * handshake finds where the backup's log matches ours (repl_match_index),
 * then entries are streamed from a cursor as they become durable here,
 * bounded by the link's output buffer; ACKs feed the commit index.
 */
#pragma once

#include "conn.h"
#include "server-manager.h"

/* Handle the SYNC line that opened the connection. */
int replica_start(Conn *c, char *line, size_t len);
/* A line from a backup after SYNC (ACK). Negative: drop the link. */
int replica_handle_line(Conn *c, char *line, size_t len);
/* Stream what is durable and not yet sent, or a COMMIT when only the commit index moved. */
void replica_pump(Conn *c);
void replicas_pump_all(Manager *m);
/* Every heartbeat interval: COMMIT keepalives, drop links silent for dead_after_ms. */
void replicas_tick(Manager *m);
void replicas_kill_all(Manager *m);
/* Take a connection off the replica list (when it closes). */
void replica_unlink(Conn *c);
