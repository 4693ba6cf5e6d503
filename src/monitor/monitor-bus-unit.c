/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * monitor-bus-unit — a server's unit state as systemd shows it (see
 * monitor-bus.h): GetAll and PropertiesChanged read into the Peer's PeerUnit,
 * the unit bound to the server's own pid, a gone process reported to the
 * failover, a failed unit handed to the restarts (monitor-bus-actions.c).
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "failover.h"
#include "log.h"
#include "monitor-bus-internal.h"
#include "monitor-bus.h"
#include "monitor-manager.h"

static void unit_changed(MonitorBus *b, Peer *p);

/* ---- small helpers ---- */

static bool error_is_transient(const sd_bus_error *e, int r) {
        return sd_bus_error_has_name(e, SD_BUS_ERROR_NO_REPLY) ||
               sd_bus_error_has_name(e, SD_BUS_ERROR_DISCONNECTED) ||
               sd_bus_error_has_name(e, SD_BUS_ERROR_TIMEOUT) ||
               sd_bus_error_has_name(e, SD_BUS_ERROR_SERVICE_UNKNOWN) ||
               sd_bus_error_has_name(e, SD_BUS_ERROR_NAME_HAS_NO_OWNER) || r == -ETIMEDOUT ||
               r == -ECONNRESET || r == -ENOTCONN || r == -ESRCH;
}

static void state_copy(char *dst, size_t size, const char *src) {
        snprintf(dst, size, "%s", src ? src : "");
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

int unit_getall_handler(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
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

int unit_on_properties_changed(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error) {
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
