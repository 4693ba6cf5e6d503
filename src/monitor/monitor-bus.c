/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * monitor-bus — unit states, KillUnit fencing and restarts of failed units
 * through systemd's D-Bus API (see monitor-bus.h). Every call is asynchronous;
 * matches are installed before Subscribe and before any call that acts.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "failover.h"
#include "fusion-ids.h"
#include "log.h"
#include "monitor-bus.h"
#include "monitor-manager.h"

#define SD_DEST "org.freedesktop.systemd1"
#define SD_PATH "/org/freedesktop/systemd1"
#define SD_MANAGER "org.freedesktop.systemd1.Manager"
#define SD_UNIT "org.freedesktop.systemd1.Unit"
#define SD_SERVICE "org.freedesktop.systemd1.Service"
#define SD_UNIT_PREFIX "/org/freedesktop/systemd1/unit"
#define DBUS_PROPERTIES "org.freedesktop.DBus.Properties"

#define RESYNC_MIN_USEC (100 * USEC_PER_MSEC)
#define RESYNC_MAX_USEC (5 * USEC_PER_SEC)
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

static int bus_sync(MonitorBus *b);
static void unit_changed(MonitorBus *b, Peer *p);

static bool streq(const char *a, const char *b) {
        return strcmp(a, b) == 0;
}

static void *mfree(void *p) {
        free(p);
        return NULL;
}

/* ---- small helpers ---- */

static bool error_is_transient(const sd_bus_error *e, int r) {
        return sd_bus_error_has_name(e, SD_BUS_ERROR_NO_REPLY) ||
               sd_bus_error_has_name(e, SD_BUS_ERROR_DISCONNECTED) ||
               sd_bus_error_has_name(e, SD_BUS_ERROR_TIMEOUT) ||
               sd_bus_error_has_name(e, SD_BUS_ERROR_SERVICE_UNKNOWN) ||
               sd_bus_error_has_name(e, SD_BUS_ERROR_NAME_HAS_NO_OWNER) || r == -ETIMEDOUT ||
               r == -ECONNRESET || r == -ENOTCONN || r == -ESRCH;
}

/* systemd's JobRemoved results as errno (systemd src/shared/bus-wait-for-jobs.c). */
static int job_result_to_errno(const char *result) {
        static const struct {
                const char *result;
                int error;
        } table[] = {
                { "done", 0 },          { "canceled", -ECANCELED }, { "timeout", -ETIME },
                { "failed", -EIO },     { "dependency", -EIO },     { "skipped", -EALREADY },
                { "invalid", -ENOEXEC }, { "assert", -EPROTO },     { "unsupported", -EOPNOTSUPP },
                { "once", -ESTALE },
        };

        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                if (streq(table[i].result, result))
                        return table[i].error;
        return -EIO;
}

static void state_copy(char *dst, size_t size, const char *src) {
        snprintf(dst, size, "%s", src ? src : "");
}

static const char *unit_name(const Peer *p) {
        return p->config->unit;
}

/* Is the server's connection local (same host and pid namespace as systemd's MainPID)? */
static bool peer_is_local(const Peer *p) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;

        if (!p->conn || p->pid == 0)
                return false;
        if (p->conn->is_unix)
                return p->conn->ucred_pid > 0 && (uint64_t) p->conn->ucred_pid == p->pid;
        if (getpeername(p->conn->fd, (struct sockaddr *) &ss, &sl) < 0)
                return false;
        if (ss.ss_family == AF_INET)
                return (ntohl(((struct sockaddr_in *) &ss)->sin_addr.s_addr) >> 24) == 127;
        if (ss.ss_family == AF_INET6) {
                const struct in6_addr *a = &((struct sockaddr_in6 *) &ss)->sin6_addr;

                return IN6_IS_ADDR_LOOPBACK(a) ||
                       (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
        }
        return false;
}

static Peer *peer_by_job(Manager *m, const char *job) {
        for (size_t i = 0; i < m->n_peers; i++)
                if (m->peers[i].unit.job && streq(m->peers[i].unit.job, job))
                        return m->peers + i;
        return NULL;
}

/* A reply to a call made on an earlier connection: ignore it. */
static bool reply_is_stale(MonitorBus *b, sd_bus_message *reply) {
        return !b->bus || sd_bus_message_get_bus(reply) != b->bus;
}

/* ---- reconnecting and re-reading ---- */

static int bus_on_resync_timer(sd_event_source *s, uint64_t usec, void *userdata);
static int bus_connect(MonitorBus *b);

static void bus_forget_states(MonitorBus *b) {
        Manager *m = b->manager;

        for (size_t i = 0; i < m->n_peers; i++)
                m->peers[i].unit.known = false;
}

/* Re-read (or reconnect, when reconnect) after a backoff: 100 ms doubling to 5 s. */
static void bus_schedule_resync(MonitorBus *b, bool reconnect) {
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

/* ---- unit properties ---- */

/* Reads an a{sv} of Unit or Service properties into p's unit state. */
static int unit_read_properties(Peer *p, sd_bus_message *msg) {
        PeerUnit *u = &p->unit;
        int r;

        r = sd_bus_message_enter_container(msg, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(msg, 'e', "sv")) > 0) {
                const char *key, *s;

                r = sd_bus_message_read(msg, "s", &key);
                if (r < 0)
                        return r;
                if (streq(key, "ActiveState") || streq(key, "SubState") || streq(key, "Result") ||
                    streq(key, "LoadState")) {
                        r = sd_bus_message_read(msg, "v", "s", &s);
                        if (r < 0)
                                return r;
                        if (streq(key, "ActiveState")) {
                                state_copy(u->active, sizeof u->active, s);
                                u->known = true;
                        } else if (streq(key, "SubState"))
                                state_copy(u->sub, sizeof u->sub, s);
                        else if (streq(key, "Result"))
                                state_copy(u->result, sizeof u->result, s);
                        else
                                u->loaded = streq(s, "loaded");
                } else if (streq(key, "MainPID")) {
                        r = sd_bus_message_read(msg, "v", "u", &u->main_pid);
                        if (r < 0)
                                return r;
                } else {
                        r = sd_bus_message_skip(msg, "v");
                        if (r < 0)
                                return r;
                }
                r = sd_bus_message_exit_container(msg);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(msg);
}

static int unit_getall_handler(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Peer *p = userdata;
        MonitorBus *b = p->manager->bus;
        const sd_bus_error *e;
        int r;

        if (!b || reply_is_stale(b, reply))
                return 0;
        e = sd_bus_message_get_error(reply);
        if (e) {
                /* Transient: unknown until the next read; else (no such unit) nothing to follow. */
                log_debug("Reading the state of unit %s failed: %s", unit_name(p), e->message ?: e->name);
                if (error_is_transient(e, 0))
                        bus_schedule_resync(b, false);
                return 0;
        }
        r = unit_read_properties(p, reply);
        if (r < 0) {
                log_warning_errno(r, "Bad properties of unit %s, ignoring: %m", unit_name(p));
                return 0;
        }
        if (p->unit.known)
                unit_changed(b, p);
        return 0;
}

static int unit_on_properties_changed(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error) {
        Peer *p = userdata;
        MonitorBus *b = p->manager->bus;
        const char *iface;
        int r;

        if (!b || reply_is_stale(b, msg))
                return 0;
        r = sd_bus_message_read(msg, "s", &iface);
        if (r < 0 || (!streq(iface, SD_UNIT) && !streq(iface, SD_SERVICE)))
                return 0;
        /* Values of a unit we have not read yet would be half a picture. */
        if (!p->unit.known && streq(iface, SD_SERVICE))
                return 0;
        r = unit_read_properties(p, msg);
        if (r < 0) {
                log_warning_errno(r, "Bad PropertiesChanged of unit %s, ignoring: %m", unit_name(p));
                return 0;
        }
        if (p->unit.known)
                unit_changed(b, p);
        return 0;
}

static bool unit_pid_gone(const PeerUnit *u, uint32_t pid, const char **ret_how) {
        const char *how = NULL;

        if (!u->known || !u->loaded || pid == 0 || u->bound_pid != pid)
                return false;
        if (streq(u->active, "inactive"))
                how = "its unit is inactive";
        else if (streq(u->active, "failed"))
                how = "its unit failed";
        else if (streq(u->sub, "auto-restart") || streq(u->sub, "failed") || streq(u->sub, "dead"))
                how = "its unit's main process is gone (auto-restart)";
        else if (u->main_pid != pid)
                how = "its unit's main process exited";
        if (how && ret_how)
                *ret_how = how;
        return how != NULL;
}

/* ---- restarting failed units ---- */

static int unit_restart_handler(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error);
static void unit_schedule_restart(MonitorBus *b, Peer *p);

static int unit_reset_failed_handler(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Peer *p = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(reply);

        if (e)
                log_debug("ResetFailedUnit %s: %s, ignoring.", unit_name(p), e->message ?: e->name);
        return 0;
}

static int unit_on_restart_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Peer *p = userdata;
        Manager *m = p->manager;
        MonitorBus *b = m->bus;
        PeerUnit *u = &p->unit;
        int r;

        if (!b || !b->bus || !b->subscribed || !u->known || !streq(u->active, "failed") || u->job)
                return 0;   /* state unknown or no longer failed: the next change decides */
        if (now_usec() < u->state_since + u->restart_delay) {
                /* Failed again after passing through other states (a Restart= loop): it must stay
                 * failed for the whole backoff. */
                (void) sd_event_source_set_time(s, u->state_since + u->restart_delay);
                (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
                return 0;
        }

        log_notice("Unit %s of %s stays failed (Result=%s): ResetFailedUnit + RestartUnit after a %" PRIu64
                   " ms backoff.", unit_name(p), p->config->name, u->result,
                   (u->backoff ? u->backoff : RESTART_MIN_USEC) / USEC_PER_MSEC);
        u->backoff = MIN(2 * (u->backoff ? u->backoff : RESTART_MIN_USEC), RESTART_MAX_USEC);
        r = sd_bus_call_method_async(b->bus, NULL, SD_DEST, SD_PATH, SD_MANAGER, "ResetFailedUnit",
                                     unit_reset_failed_handler, p, "s", unit_name(p));
        if (r >= 0)
                /* Queued after ResetFailedUnit on the same connection: systemd handles them in order. */
                r = sd_bus_call_method_async(b->bus, NULL, SD_DEST, SD_PATH, SD_MANAGER, "RestartUnit",
                                             unit_restart_handler, p, "ss", unit_name(p), "replace");
        if (r < 0) {
                log_warning_errno(r, "Failed to ask systemd to restart %s, retrying later: %m", unit_name(p));
                unit_schedule_restart(b, p);
        }
        return 0;
}

static void unit_schedule_restart(MonitorBus *b, Peer *p) {
        Manager *m = b->manager;
        PeerUnit *u = &p->unit;
        usec_t delay;
        int r;

        if (u->restart_timer && sd_event_source_get_enabled(u->restart_timer, NULL) > 0)
                return;
        delay = u->backoff ? u->backoff : RESTART_MIN_USEC;
        u->restart_delay = delay;

        if (!u->restart_timer)
                r = sd_event_add_time(m->event, &u->restart_timer, CLOCK_MONOTONIC, now_usec() + delay,
                                      USEC_PER_MSEC, unit_on_restart_timer, p);
        else {
                r = sd_event_source_set_time(u->restart_timer, now_usec() + delay);
                if (r >= 0)
                        r = sd_event_source_set_enabled(u->restart_timer, SD_EVENT_ONESHOT);
        }
        if (r < 0) {
                log_warning_errno(r, "Failed to schedule the restart of %s, ignoring: %m", unit_name(p));
                return;
        }
        /* Quietly: with Restart= systemd passes through "failed" on its way to auto-restart; the
         * timer acts only if the unit is still failed by then. */
        log_debug("Unit %s of %s is failed (Result=%s); restarting it in %" PRIu64 " ms unless it recovers.",
                  unit_name(p), p->config->name, u->result, delay / USEC_PER_MSEC);
}

static int unit_restart_handler(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Peer *p = userdata;
        MonitorBus *b = p->manager->bus;
        PeerUnit *u = &p->unit;
        const sd_bus_error *e;
        const char *job;
        int r;

        if (!b || reply_is_stale(b, reply))
                return 0;
        e = sd_bus_message_get_error(reply);
        if (e) {
                log_warning("Restarting unit %s failed: %s; retrying later.", unit_name(p), e->message ?: e->name);
                unit_schedule_restart(b, p);
                return 0;
        }
        r = sd_bus_message_read(reply, "o", &job);
        if (r < 0) {
                log_warning_errno(r, "Bad reply to RestartUnit %s, ignoring: %m", unit_name(p));
                return 0;
        }
        free(u->job);
        u->job = strdup(job);
        if (!u->job)
                (void) log_oom();
        log_debug("RestartUnit %s: job %s.", unit_name(p), job);
        return 0;
}

static int bus_on_job_removed(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error) {
        MonitorBus *b = userdata;
        const char *job, *unit, *result;
        uint32_t id;
        Peer *p;
        int r;

        if (reply_is_stale(b, msg))
                return 0;
        r = sd_bus_message_read(msg, "uoss", &id, &job, &unit, &result);
        if (r < 0)
                return 0;
        p = peer_by_job(b->manager, job);
        if (!p)
                return 0;

        p->unit.job = mfree(p->unit.job);
        r = job_result_to_errno(result);
        if (r == 0) {
                p->unit.restarts++;
                log_set_context(p->config->name, NULL, 0);
                log_event(LOG_NOTICE, FUSION_MESSAGE_UNIT_RESTARTED,
                          "Restarted failed unit %s of %s (restart %u by the monitor).", unit, p->config->name,
                          p->unit.restarts);
                log_set_context(NULL, NULL, 0);
                return 0;
        }
        log_warning_errno(r, "Restart job of unit %s ended with result '%s' (%m); backing off.", unit, result);
        if (p->unit.known && streq(p->unit.active, "failed"))
                unit_schedule_restart(b, p);
        return 0;
}

/* ---- reacting to a unit's state ---- */

static void unit_changed(MonitorBus *b, Peer *p) {
        Manager *m = b->manager;
        PeerUnit *u = &p->unit;
        usec_t now = now_usec();
        char prev[sizeof u->prev_active];
        const char *how;

        log_debug("Unit %s: %s/%s result=%s main_pid=%" PRIu32 ".", unit_name(p), u->active, u->sub, u->result,
                  u->main_pid);
        state_copy(prev, sizeof prev, u->prev_active);
        state_copy(u->prev_active, sizeof u->prev_active, u->active);
        if (!streq(prev, u->active))
                u->state_since = now;

        if (streq(u->active, "active")) {
                if (u->active_since == 0)
                        u->active_since = now;
        } else if (u->active_since != 0) {
                if (now >= u->active_since + RESTART_RESET_USEC)
                        u->backoff = 0;   /* it ran long enough: the next failure restarts after 1 s */
                u->active_since = 0;
        }

        monitor_bus_peer_heartbeat(m, p);

        if (u->bound_pid && u->dead_pid != u->bound_pid && unit_pid_gone(u, u->bound_pid, &how)) {
                char reason[160];

                u->dead_pid = u->bound_pid;
                if (u->kill_sent)
                        log_info("Unit %s of %s: process %" PRIu32 " gone %" PRIu64 " ms after KillUnit (%s/%s).",
                                 unit_name(p), p->config->name, u->bound_pid,
                                 (now - u->kill_sent) / USEC_PER_MSEC, u->active, u->sub);
                else
                        log_info("Unit %s of %s: process %" PRIu32 " gone (%s/%s, result %s).", unit_name(p),
                                 p->config->name, u->bound_pid, u->active, u->sub, u->result);
                u->kill_sent = 0;
                snprintf(reason, sizeof reason, "%s (%s %s/%s)", how, unit_name(p), u->active, u->sub);
                failover_unit_dead(m, p, reason);
        }

        /* An admin's stop comes from active/deactivating; auto-restart passes through inactive too,
         * but from failed/activating. */
        if (u->loaded && streq(u->active, "inactive") && streq(u->result, "success") && !u->stopped_logged &&
            (streq(prev, "active") || streq(prev, "deactivating"))) {
                /* Stopped cleanly: an admin's (or a dependency's) stop job, never restarted by us. */
                u->stopped_logged = true;
                log_info("Unit %s of %s was stopped (inactive, Result=success); leaving it stopped.",
                         unit_name(p), p->config->name);
        } else if (!streq(u->active, "inactive"))
                u->stopped_logged = false;

        if (!u->loaded || !m->config->restart_failed_units)
                return;
        if (streq(u->active, "failed")) {
                if (!u->job)
                        unit_schedule_restart(b, p);
        } else if (u->restart_timer)
                /* Running again, or stopped by an admin (inactive): no restart by us. */
                (void) sd_event_source_set_enabled(u->restart_timer, SD_EVENT_OFF);
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

/* ---- the manager's and the failover's questions ---- */

void monitor_bus_peer_heartbeat(Manager *m, Peer *p) {
        PeerUnit *u = &p->unit;

        if (!m->bus || !u->known || !u->loaded || u->main_pid == 0 || u->main_pid == u->bound_pid)
                return;
        if ((uint64_t) u->main_pid != p->pid || !peer_is_local(p))
                return;
        log_debug("Unit %s runs server %s (pid %" PRIu32 ").", unit_name(p), p->config->name, u->main_pid);
        u->bound_pid = u->main_pid;
        u->kill_sent = 0;
}

static int unit_kill_handler(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Peer *p = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(reply);

        if (e)
                log_warning("KillUnit %s failed: %s; fencing %s by its lease only.", unit_name(p),
                            e->message ?: e->name, p->config->name);
        return 0;
}

int monitor_bus_kill_hung(Manager *m, Peer *p) {
        MonitorBus *b = m->bus;
        PeerUnit *u = &p->unit;
        int r;

        if (!b || !b->bus || !b->subscribed || !u->known || !u->loaded || u->bound_pid == 0)
                return 0;
        if (u->bound_pid != p->pid || u->main_pid != u->bound_pid || u->kill_sent)
                return 0;
        if (!streq(u->active, "active") && !streq(u->active, "reloading"))
                return 0;

        log_set_context(p->config->name, "primary", m->term);
        log_event(LOG_WARNING, FUSION_MESSAGE_FENCING,
                  "Primary %s sends no heartbeats but its unit %s is still %s/%s (main pid %" PRIu32
                  "): killing it through systemd (KillUnit all SIGKILL).",
                  p->config->name, unit_name(p), u->active, u->sub, u->main_pid);
        log_set_context(NULL, NULL, 0);

        r = sd_bus_call_method_async(b->bus, NULL, SD_DEST, SD_PATH, SD_MANAGER, "KillUnit", unit_kill_handler, p,
                                     "ssi", unit_name(p), "all", (int32_t) SIGKILL);
        if (r < 0)
                return log_warning_errno(r, "Failed to send KillUnit %s, fencing by lease only: %m", unit_name(p));
        u->kill_sent = now_usec();
        return 1;
}

bool monitor_bus_pid_dead(const Peer *p, uint64_t pid, const char **ret_how) {
        const PeerUnit *u = &p->unit;

        if (!p->manager->bus || pid == 0 || pid > UINT32_MAX)
                return false;
        if (u->dead_pid != 0 && u->dead_pid == pid) {
                if (ret_how)
                        *ret_how = "systemd shows its unit's process gone";
                return true;
        }
        return unit_pid_gone(u, (uint32_t) pid, ret_how);
}

int monitor_bus_unit_state(const Peer *p, char *buf, size_t size) {
        const PeerUnit *u = &p->unit;

        if (!p->manager->bus || !u->known)
                return 0;
        snprintf(buf, size, "%s/%s", u->active, u->sub);
        return 1;
}
