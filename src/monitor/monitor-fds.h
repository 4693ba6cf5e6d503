/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * monitor-fds — the monitor's listening sockets: those systemd passed by
 * FileDescriptorName= ("heartbeat" and "client", each possibly several times:
 * TCP and unix), else bound from the [monitor] keys. net.h's listen_fds_take()
 * hands out one fd per name; the monitor needs all of them.
 */
#pragma once

#include <stddef.h>

#include "config.h"

#define MONITOR_FDS_MAX 8

typedef struct MonitorFds {
        int heartbeat[MONITOR_FDS_MAX];
        size_t n_heartbeat;
        int client[MONITOR_FDS_MAX];
        size_t n_client;
        bool heartbeat_passed;   /* came from systemd */
        bool client_passed;
} MonitorFds;

/* Take the passed sockets (unsets $LISTEN_FDS), then bind whatever group
 * systemd did not pass from the config. Errors are logged, naming the
 * address. At least one socket per group is required. */
int monitor_fds_open(const Config *c, MonitorFds *ret);
void monitor_fds_close(MonitorFds *fds);
