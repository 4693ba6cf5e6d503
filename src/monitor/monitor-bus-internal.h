/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * monitor-bus-internal — what the monitor-bus*.c files share, and nothing else
 * includes: the connection state, systemd's D-Bus names, the restart backoff
 * and the handlers one of them installs for another.
 *   monitor-bus.c          the connection: matches, Subscribe and the reads,
 *                          reconnecting, re-reading after a daemon-reload
 *   monitor-bus-unit.c     a unit's state: GetAll / PropertiesChanged, binding
 *                          it to the server's pid, the manager's questions
 *   monitor-bus-actions.c  acting on units: restarting failed ones (the job
 *                          followed through JobRemoved), KillUnit fencing
 */
#pragma once

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>

#include "monitor-bus.h"
#include "monitor-manager.h"

#define SD_DEST "org.freedesktop.systemd1"
#define SD_PATH "/org/freedesktop/systemd1"
#define SD_MANAGER "org.freedesktop.systemd1.Manager"
#define SD_UNIT "org.freedesktop.systemd1.Unit"
#define SD_SERVICE "org.freedesktop.systemd1.Service"
#define SD_UNIT_PREFIX "/org/freedesktop/systemd1/unit"
#define DBUS_PROPERTIES "org.freedesktop.DBus.Properties"

#define RESTART_MIN_USEC (1 * USEC_PER_SEC)
#define RESTART_MAX_USEC (30 * USEC_PER_SEC)
#define RESTART_RESET_USEC (60 * USEC_PER_SEC)

struct MonitorBus {
        Manager *manager;
        sd_bus *bus;            /* NULL while disconnected */
        bool subscribed;        /* Subscribe answered since the last connection */
        bool ever_subscribed;
        bool subscribe_error_logged;
        bool reloading;         /* between Reloading(true) and Reloading(false) */
        sd_event_source *resync_timer;
        bool resync_reconnect;  /* the timer reconnects (else it only re-reads) */
        usec_t resync_backoff;
};

static inline bool streq(const char *a, const char *b) {
        return strcmp(a, b) == 0;
}

static inline void *mfree(void *p) {
        free(p);
        return NULL;
}

static inline const char *unit_name(const Peer *p) {
        return p->config->unit;
}

/* A reply to a call made on an earlier connection: ignore it. */
static inline bool reply_is_stale(MonitorBus *b, sd_bus_message *reply) {
        return !b->bus || sd_bus_message_get_bus(reply) != b->bus;
}

/* monitor-bus.c */
void bus_schedule_resync(MonitorBus *b, bool reconnect);

/* monitor-bus-unit.c: GetAll and PropertiesChanged of a unit, userdata is its Peer. */
int unit_getall_handler(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error);
int unit_on_properties_changed(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error);

/* monitor-bus-actions.c */
void unit_schedule_restart(MonitorBus *b, Peer *p);
int bus_on_job_removed(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error);
