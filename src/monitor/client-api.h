/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * client-api — the monitor's public client API (doc/design.md, fusion-monitor(8)):
 * WHO, SUBSCRIBE, STATUS and PROMOTE over TCP or a unix stream. Every
 * connection has a bounded line reader and a bounded output buffer; a
 * subscriber that does not read is dropped past CLIENT_OUTPUT_MAX.
 */
#pragma once

#include "monitor-manager.h"

#define CLIENT_LINE_MAX 256
#define CLIENT_OUTPUT_MAX (1024U * 1024U)

int client_conn_new(Manager *m, int fd);
ClientConn *client_conn_free(ClientConn *c);

/* Send one line (with its "\n") to every SUBSCRIBEd client. */
void client_broadcast(Manager *m, const char *line);
/* Answer a pending PROMOTE: r >= 0 → "OK", else the "ERR ..." line in err. */
void client_promote_done(ClientConn *c, const char *line);
