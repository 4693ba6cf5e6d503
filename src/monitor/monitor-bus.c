/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * monitor-bus — the connection to systemd's D-Bus API (see monitor-bus.h):
 * matches installed before Subscribe and the reads of every unit's state,
 * reconnecting and re-reading with backoff after a disconnect or a
 * daemon-reload. Unit states are in monitor-bus-unit.c, restarts and fencing
 * in monitor-bus-actions.c. Every call is asynchronous.
 */
#include <assert.h>
#include <stdlib.h>

#include "log.h"
#include "monitor-bus-internal.h"
#include "monitor-bus.h"
#include "monitor-manager.h"

#define RESYNC_MIN_USEC (100 * USEC_PER_MSEC)
#define RESYNC_MAX_USEC (5 * USEC_PER_SEC)

static int bus_sync(MonitorBus *b);

/* ---- reconnecting and re-reading ---- */

static int bus_on_resync_timer(sd_event_source *s, uint64_t usec, void *userdata);
static int bus_connect(MonitorBus *b);

static void bus_forget_states(MonitorBus *b) {
        Manager *m = b->manager;

        for (size_t i = 0; i < m->n_peers; i++)
                m->peers[i].unit.known = false;
}

/* Re-read (or reconnect, when reconnect) after a backoff: 100 ms doubling to 5 s. */
void bus_schedule_resync(MonitorBus *b, bool reconnect) {
        Manager *m = b->manager;
        usec_t when;
        int r;

        b->resync_reconnect = b->resync_reconnect || reconnect;
        if (b->resync_timer && sd_event_source_get_enabled(b->resync_timer, NULL) > 0)
                return;   /* already scheduled */

        b->resync_backoff = b->resync_backoff == 0 ? RESYNC_MIN_USEC : MIN(2 * b->resync_backoff, RESYNC_MAX_USEC);
        when = now_usec() + b->resync_backoff;
        if (!b->resync_timer)
                r = sd_event_add_time(m->event, &b->resync_timer, CLOCK_MONOTONIC, when, USEC_PER_MSEC,
                                      bus_on_resync_timer, b);
        else {
                r = sd_event_source_set_time(b->resync_timer, when);
                if (r >= 0)
                        r = sd_event_source_set_enabled(b->resync_timer, SD_EVENT_ONESHOT);
        }
        if (r < 0)
                log_warning_errno(r, "Failed to schedule a systemd resync, unit states stay unknown: %m");
}

static void bus_drop(MonitorBus *b) {
        b->bus = sd_bus_close_unref(b->bus);
        b->subscribed = false;
        bus_forget_states(b);
}

static int bus_on_resync_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        MonitorBus *b = userdata;
        int r;

        if (b->resync_reconnect || !b->bus) {
                bus_drop(b);
                r = bus_connect(b);
                if (r < 0) {
                        log_debug_errno(r, "Reconnecting to the system bus failed, retrying: %m");
                        bus_schedule_resync(b, true);
                        return 0;
                }
                b->resync_reconnect = false;
                log_info("Reconnected to the system bus.");
                return 0;
        }
        (void) bus_sync(b);
        return 0;
}

static int bus_on_disconnected(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error) {
        MonitorBus *b = userdata;

        if (reply_is_stale(b, msg))
                return 0;
        log_warning("Lost the connection to the system bus; unit states unknown until it is back.");
        bus_forget_states(b);
        b->subscribed = false;
        bus_schedule_resync(b, true);
        return 0;
}

static int bus_on_reloading(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error) {
        MonitorBus *b = userdata;
        int active = 0, r;

        r = sd_bus_message_read(msg, "b", &active);
        if (r < 0)
                return 0;
        b->reloading = active;
        if (active) {
                /* daemon-reload or -reexec: no decision on states from before it. */
                log_info("systemd is reloading; unit states unknown until it is done.");
                bus_forget_states(b);
                b->resync_backoff = 0;
                bus_schedule_resync(b, false);   /* in case no Reloading(false) comes (reexec) */
        } else {
                b->resync_backoff = 0;
                (void) bus_sync(b);
        }
        return 0;
}

/* ---- connection ---- */

static int bus_subscribe_handler(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        MonitorBus *b = userdata;
        const sd_bus_error *e;

        if (reply_is_stale(b, reply))
                return 0;
        e = sd_bus_message_get_error(reply);
        if (e && !sd_bus_error_has_name(e, "org.freedesktop.systemd1.AlreadySubscribed")) {
                /* No systemd on this bus (yet: at boot the bus may come up before systemd is on it).
                 * Say it once; keep trying quietly. */
                if (!b->subscribe_error_logged)
                        log_info("no systemd on the system bus (%s): watching heartbeats only, retrying in the "
                                 "background",
                                 e->message ?: e->name);
                else
                        log_debug("Subscribe to systemd failed: %s; retrying.", e->message ?: e->name);
                b->subscribe_error_logged = true;
                bus_schedule_resync(b, false);
                return 0;
        }
        b->subscribe_error_logged = false;
        if (!b->ever_subscribed)
                log_info("Following %zu units through systemd.", b->manager->n_peers);
        b->subscribed = b->ever_subscribed = true;
        b->resync_backoff = 0;
        return 0;
}

/* Subscribe (again) and read every unit's state. */
static int bus_sync(MonitorBus *b) {
        Manager *m = b->manager;
        int r;

        if (!b->bus)
                return -ENOTCONN;
        /* systemd 252 may not send Reloading(false) to us (its subscriber list is restored after it):
         * a re-read ends the reload for us. */
        b->reloading = false;
        r = sd_bus_call_method_async(b->bus, NULL, SD_DEST, SD_PATH, SD_MANAGER, "Subscribe",
                                     bus_subscribe_handler, b, NULL);
        for (size_t i = 0; r >= 0 && i < m->n_peers; i++) {
                Peer *p = m->peers + i;

                if (!p->unit.path)
                        continue;
                /* Service first: the Unit reply (ActiveState) completes the picture. */
                r = sd_bus_call_method_async(b->bus, NULL, SD_DEST, p->unit.path, DBUS_PROPERTIES, "GetAll",
                                             unit_getall_handler, p, "s", SD_SERVICE);
                if (r >= 0)
                        r = sd_bus_call_method_async(b->bus, NULL, SD_DEST, p->unit.path, DBUS_PROPERTIES,
                                                     "GetAll", unit_getall_handler, p, "s", SD_UNIT);
        }
        if (r < 0) {
                log_warning_errno(r, "Failed to query systemd, retrying: %m");
                bus_schedule_resync(b, true);
        }
        return r;
}

static int bus_connect(MonitorBus *b) {
        Manager *m = b->manager;
        _cleanup_(sd_bus_close_unrefp) sd_bus *bus = NULL;
        int r;

        r = sd_bus_open_system(&bus);
        if (r < 0)
                return r;
        r = sd_bus_attach_event(bus, m->event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return r;

        /* Matches first (floating: they go with the connection), then Subscribe and the reads. */
        r = sd_bus_match_signal_async(bus, NULL, "org.freedesktop.DBus.Local", "/org/freedesktop/DBus/Local",
                                      "org.freedesktop.DBus.Local", "Disconnected", bus_on_disconnected, NULL, b);
        if (r >= 0)
                r = sd_bus_match_signal_async(bus, NULL, SD_DEST, SD_PATH, SD_MANAGER, "JobRemoved",
                                              bus_on_job_removed, NULL, b);
        if (r >= 0)
                r = sd_bus_match_signal_async(bus, NULL, SD_DEST, SD_PATH, SD_MANAGER, "Reloading",
                                              bus_on_reloading, NULL, b);
        for (size_t i = 0; r >= 0 && i < m->n_peers; i++)
                if (m->peers[i].unit.path)
                        r = sd_bus_match_signal_async(bus, NULL, SD_DEST, m->peers[i].unit.path, DBUS_PROPERTIES,
                                                      "PropertiesChanged", unit_on_properties_changed, NULL,
                                                      m->peers + i);
        if (r < 0)
                return r;

        b->bus = TAKE_PTR(bus);
        b->subscribed = false;
        b->reloading = false;
        (void) bus_sync(b);   /* on failure it schedules a retry */
        return 0;
}

int monitor_bus_new(Manager *m, MonitorBus **ret) {
        _cleanup_(freep) MonitorBus *b = NULL;
        size_t n = 0;
        int r;

        assert(m);
        assert(ret);

        for (size_t i = 0; i < m->n_peers; i++) {
                Peer *p = m->peers + i;

                if (!p->config->unit || !p->config->unit[0])
                        continue;
                r = sd_bus_path_encode(SD_UNIT_PREFIX, p->config->unit, &p->unit.path);
                if (r < 0)
                        return log_error_errno(r, "Failed to build the D-Bus path of unit %s: %m", p->config->unit);
                n++;
        }

        b = calloc(1, sizeof *b);
        if (!b)
                return log_oom();
        *b = (MonitorBus) { .manager = m };

        if (n == 0) {
                log_info("No unit configured: watching heartbeats only.");
                *ret = NULL;
                return 0;
        }

        m->bus = b;   /* the handlers find it there */
        r = bus_connect(b);
        if (r < 0) {
                m->bus = NULL;
                bus_drop(b);
                log_info("no system bus: watching heartbeats only");
                log_debug_errno(r, "sd_bus_open_system: %m");
                *ret = NULL;
                return 0;
        }
        *ret = TAKE_PTR(b);
        return 0;
}

MonitorBus *monitor_bus_free(MonitorBus *b) {
        if (!b)
                return NULL;
        for (size_t i = 0; i < b->manager->n_peers; i++)
                peer_unit_done(&b->manager->peers[i].unit);
        sd_event_source_disable_unref(b->resync_timer);
        sd_bus_close_unref(b->bus);
        free(b);
        return NULL;
}

void peer_unit_done(PeerUnit *u) {
        u->restart_timer = sd_event_source_disable_unref(u->restart_timer);
        u->job = mfree(u->job);
        u->path = mfree(u->path);
}
