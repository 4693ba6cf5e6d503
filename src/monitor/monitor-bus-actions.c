/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * monitor-bus-actions — what the monitor asks systemd to do to a unit (see
 * monitor-bus.h): restart a unit that stays failed (ResetFailedUnit +
 * RestartUnit after a capped backoff, the job followed through JobRemoved)
 * and fence a hung primary with KillUnit(unit, "all", SIGKILL).
 */
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "fusion-ids.h"
#include "log.h"
#include "monitor-bus-internal.h"
#include "monitor-bus.h"
#include "monitor-manager.h"

/* ---- small helpers ---- */

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

static Peer *peer_by_job(Manager *m, const char *job) {
        for (size_t i = 0; i < m->n_peers; i++)
                if (m->peers[i].unit.job && streq(m->peers[i].unit.job, job))
                        return m->peers + i;
        return NULL;
}

/* ---- restarting failed units ---- */

static int unit_restart_handler(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error);

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

void unit_schedule_restart(MonitorBus *b, Peer *p) {
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

int bus_on_job_removed(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error) {
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

/* ---- fencing a hung primary ---- */

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
