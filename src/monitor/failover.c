/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * failover — the failover, first-election and switchover state machine (see
 * failover.h and doc/internals.md §Failover).
 */
#include <assert.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <string.h>
#include <sys/epoll.h>

#include "client-api.h"
#include "failover.h"
#include "fusion-ids.h"
#include "log.h"
#include "msglog.h"
#include "protocol.h"

static const char *const failover_kind_table[_FAILOVER_KIND_MAX] = {
        [FAILOVER_NONE] = "none",
        [FAILOVER_LOST] = "primary-lost",
        [FAILOVER_STARTUP] = "first-election",
        [FAILOVER_SWITCHOVER] = "switchover",
};

const char *failover_kind_to_string(FailoverKind k) {
        return k >= 0 && k < _FAILOVER_KIND_MAX ? failover_kind_table[k] : NULL;
}

static const char *const failover_phase_table[_FAILOVER_PHASE_MAX] = {
        [PHASE_FENCING] = "fencing",
        [PHASE_PROBING] = "probing",
        [PHASE_PROMOTING] = "promoting",
};

const char *failover_phase_to_string(FailoverPhase p) {
        return p >= 0 && p < _FAILOVER_PHASE_MAX ? failover_phase_table[p] : NULL;
}

static void failover_check(Manager *m, usec_t now);
static void fence_check(Manager *m, usec_t now);

void failover_init(Failover *f) {
        *f = (Failover) { .kind = FAILOVER_NONE, .old_pidfd = -1 };
}

static void failover_reset(Manager *m) {
        Failover *f = &m->failover;

        sd_event_source_disable_unref(f->timer);
        sd_event_source_disable_unref(f->pidfd_source);
        safe_close(f->old_pidfd);
        failover_init(f);
}

void failover_done(Manager *m) {
        failover_reset(m);
}

bool failover_active(const Manager *m) {
        return m->failover.kind != FAILOVER_NONE;
}

static void event_server(int level, const char *id, const Peer *p, const char *role, uint64_t term,
                         const char *text) {
        log_set_context(p ? p->config->name : NULL, role, term);
        log_event(level, id, "%s", text);
        log_set_context(NULL, NULL, 0);
}

static int failover_on_timer(sd_event_source *s, uint64_t usec, void *userdata);

static void failover_arm(Manager *m, usec_t when) {
        Failover *f = &m->failover;
        int r;

        f->deadline = when;
        if (!f->timer) {
                r = sd_event_add_time(m->event, &f->timer, CLOCK_MONOTONIC, when, 1, failover_on_timer, m);
                if (r >= 0)
                        r = sd_event_source_set_priority(f->timer, SD_EVENT_PRIORITY_IMPORTANT / 2);
        } else {
                r = sd_event_source_set_time(f->timer, when);
                if (r >= 0)
                        r = sd_event_source_set_enabled(f->timer, SD_EVENT_ONESHOT);
        }
        if (r < 0)
                log_error_errno(r, "Failed to arm the failover timer: %m");
}

static void requester_reply(Manager *m, const char *line) {
        ClientConn *c = TAKE_PTR(m->failover.requester);

        if (c)
                client_promote_done(c, line);
}

/* ---- fencing (the seam for systemd unit state / KillUnit) ---- */

static int failover_on_pidfd(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Manager *m = userdata;
        Failover *f = &m->failover;

        f->old_exited = true;
        (void) sd_event_source_set_enabled(s, SD_EVENT_OFF);
        fence_check(m, now_usec());
        return 0;
}

static void fence_watch_pidfd(Manager *m, Peer *p) {
        Failover *f = &m->failover;
        int r;

        if (!p->conn || p->conn->pidfd < 0)
                return;

        f->old_pidfd = fcntl(p->conn->pidfd, F_DUPFD_CLOEXEC, 3);
        if (f->old_pidfd < 0) {
                log_warning_errno(negative_errno(), "Failed to duplicate the pidfd of %s, fencing by lease: %m",
                                  p->config->name);
                return;
        }
        r = sd_event_add_io(m->event, &f->pidfd_source, f->old_pidfd, EPOLLIN, failover_on_pidfd, m);
        if (r >= 0)
                r = sd_event_source_set_priority(f->pidfd_source, SD_EVENT_PRIORITY_IMPORTANT / 2);
        if (r < 0) {
                log_warning_errno(r, "Failed to watch the pidfd of %s, fencing by lease: %m", p->config->name);
                f->pidfd_source = sd_event_source_disable_unref(f->pidfd_source);
                f->old_pidfd = safe_close(f->old_pidfd);
        }
}

/* Is the old primary fenced? Its process exited (pidfd, or its unit per systemd), or the lease of
 * every heartbeat it sent is over. */
static bool fence_done(Manager *m, usec_t now, const char **ret_how) {
        Failover *f = &m->failover;

        if (f->old && monitor_bus_pid_dead(f->old, f->old_pid, ret_how))
                return true;

        if (!f->old_exited && f->old_pidfd >= 0) {
                struct pollfd pfd = { .fd = f->old_pidfd, .events = POLLIN };

                if (poll(&pfd, 1, 0) > 0)
                        f->old_exited = true;
        }
        if (f->old_exited) {
                *ret_how = "its process exited";
                return true;
        }
        if (now >= f->fence_deadline) {
                *ret_how = "its lease expired";
                return true;
        }
        return false;
}

static void probing_begin(Manager *m, usec_t now) {
        Failover *f = &m->failover;

        f->phase = PHASE_PROBING;
        f->target = f->kind == FAILOVER_SWITCHOVER ? f->target : NULL;
        f->probe_min = ++m->probe_seq;
        f->probe_sent = now;
        f->last_verdict_logged = false;

        for (size_t i = 0; i < m->n_peers; i++)
                if (m->peers[i].conn)
                        (void) peer_send_probe(m->peers + i, f->probe_min);

        if (f->kind == FAILOVER_SWITCHOVER)
                failover_arm(m, f->started + SWITCHOVER_TIMEOUT_USEC);
        else
                failover_arm(m, now + manager_ms(m, m->config->heartbeat_interval_ms));
        manager_state_changed(m);
        failover_check(m, now);
}

static void fence_check(Manager *m, usec_t now) {
        Failover *f = &m->failover;
        const char *how;
        char text[256];

        if (f->phase != PHASE_FENCING)
                return;
        if (!fence_done(m, now, &how)) {
                failover_arm(m, f->fence_deadline);
                return;
        }

        if (f->old) {
                snprintf(text, sizeof text, "%s %s fenced: %s (%" PRIu64 " ms after the trigger).",
                         f->kind == FAILOVER_SWITCHOVER ? "Primary" : "Old primary", f->old->config->name, how,
                         (now - f->started) / USEC_PER_MSEC);
                event_server(LOG_NOTICE, FUSION_MESSAGE_FENCING, f->old, "primary", m->term, text);
        }
        probing_begin(m, now);
}

/* ---- triggers ---- */

static void failover_begin(Manager *m, FailoverKind kind, Peer *old, usec_t fence_deadline) {
        Failover *f = &m->failover;
        usec_t now = now_usec();

        failover_reset(m);
        f->kind = kind;
        f->old = old;
        f->old_pid = old ? old->pid : 0;
        f->started = now;
        f->round = 1;
        f->fence_deadline = fence_deadline;
        f->phase = PHASE_FENCING;
}

static void switchover_fail(Manager *m, const char *why) {
        Failover *f = &m->failover;
        char line[256];

        snprintf(line, sizeof line, "Switchover from %s to %s abandoned: %s.",
                 f->old ? f->old->config->name : "-", f->target ? f->target->config->name : "-", why);
        log_event(LOG_WARNING, FUSION_MESSAGE_SWITCHOVER, "%s", line);
        snprintf(line, sizeof line, "ERR BUSY switchover abandoned: %s\n", why);
        requester_reply(m, line);
        failover_reset(m);
        manager_state_changed(m);
}

void failover_primary_lost(Manager *m, Peer *p, const char *reason) {
        Failover *f = &m->failover;
        char text[256];

        if (f->kind == FAILOVER_SWITCHOVER && f->phase != PHASE_PROMOTING && p == f->old)
                switchover_fail(m, "the primary was lost");
        if (f->kind != FAILOVER_NONE)
                return;

        m->primary_confirmed = false;   /* from now on it gets no LEASE */
        snprintf(text, sizeof text, "Primary %s lost: %s (term %" PRIu64 "); starting failover.", p->config->name,
                 reason, m->term);
        event_server(LOG_NOTICE, FUSION_MESSAGE_PRIMARY_LOST, p, "primary", m->term, text);

        failover_begin(m, FAILOVER_LOST, p, p->lease_received + manager_ms(m, m->config->lease_ms));
        fence_watch_pidfd(m, p);
        manager_state_changed(m);
        fence_check(m, now_usec());
}

void failover_primary_hung(Manager *m, Peer *p, const char *reason) {
        failover_primary_lost(m, p, reason);
        /* Even when its lease already fenced it: a killed server restarts and rejoins as a backup
         * (the watchdog would take WatchdogSec=). */
        (void) monitor_bus_kill_hung(m, p);
}

void failover_unit_dead(Manager *m, Peer *p, const char *reason) {
        Failover *f = &m->failover;

        if (p == m->primary && m->primary_confirmed && !failover_active(m)) {
                failover_primary_lost(m, p, reason);
                return;
        }
        if (f->kind != FAILOVER_NONE && f->phase == PHASE_FENCING && f->old == p)
                fence_check(m, now_usec());
}

void failover_start_election(Manager *m) {
        log_notice("No primary confirmed within %" PRIu64 " ms of start (recorded: %s, term %" PRIu64
                   "); electing one.",
                   m->config->dead_after_ms, m->primary ? m->primary->config->name : "none", m->term);

        /* A previous monitor's leases ended lease_ms after we started at the latest. */
        failover_begin(m, FAILOVER_STARTUP, m->primary, m->start_time + manager_ms(m, m->config->lease_ms));
        manager_state_changed(m);
        fence_check(m, now_usec());
}

int failover_switchover(Manager *m, ClientConn *requester, const char *name, Buf *reply) {
        Failover *f = &m->failover;
        Peer *old = m->primary, *t;
        usec_t now = now_usec();

        t = manager_find_peer(m, name);
        if (!t)
                return reply_err(reply, ERRC_NOTFOUND, "unknown server %s", name);
        if (failover_active(m))
                return reply_err(reply, ERRC_BUSY, "a %s is in progress", failover_kind_to_string(f->kind));
        if (!old || !m->primary_confirmed)
                return reply_err(reply, ERRC_NOPRIMARY, "no primary to hand over from");
        if (t == old)
                return reply_err(reply, ERRC_BADCMD, "%s is already the primary", name);
        if (t->config->priority == 0)
                return reply_err(reply, ERRC_BADCMD, "%s has priority 0 and is never promoted", name);
        if (manager_peer_health(m, t, now) != PEER_UP)
                return reply_err(reply, ERRC_BUSY, "%s is %s", name,
                                 peer_health_to_string(manager_peer_health(m, t, now)));

        log_event(LOG_NOTICE, FUSION_MESSAGE_SWITCHOVER,
                  "Switchover from %s to %s requested (term %" PRIu64 "); pausing leases.", old->config->name,
                  name, m->term);

        /* Leases stop now (failover_active()); writes pause once the last one ends. */
        failover_begin(m, FAILOVER_SWITCHOVER, old, old->lease_received + manager_ms(m, m->config->lease_ms));
        f->target = t;
        f->requester = requester;
        manager_state_changed(m);
        fence_check(m, now);
        return 1;
}

/* ---- choosing and promoting ---- */

static void promote(Manager *m, Peer *c, usec_t now) {
        Failover *f = &m->failover;
        uint64_t term, highest = MAX(m->term, m->term_floor);
        int r;

        /* No term after MSGLOG_TERM_MAX (2^64-2) a log can hold, and none at all after
         * 2^64-1: only a server with a damaged log or state file reports such a term.
         * Refuse rather than wrap to term 0, and say what to fix. */
        if (highest >= MSGLOG_TERM_MAX) {
                if (!f->last_term_logged)
                        log_error("Cannot promote %s: term %" PRIu64 " (reported by a server) is the last one "
                                  "there is. Its data (message log or term file) is damaged; stop it and move its "
                                  "data directory away.",
                                  c->config->name, highest);
                f->last_term_logged = true;
                failover_arm(m, now + manager_ms(m, m->config->dead_after_ms));
                return;
        }
        term = highest + 1;

        /* Persisted before anyone hears of the term; on failure retry later. */
        r = manager_persist(m, term, c);
        if (r < 0) {
                failover_arm(m, now + manager_ms(m, m->config->dead_after_ms));
                return;
        }

        f->phase = PHASE_PROMOTING;
        f->target = c;
        f->promote_term = term;
        r = peer_send(c, &(HbMessage) { .type = HB_PROMOTE, .term = term });
        log_info("%s: sent PROMOTE term=%" PRIu64 " to %s (lterm %" PRIu64 ", index %" PRIu64 ", %" PRIu64
                 " ms after the trigger).",
                 failover_kind_to_string(f->kind), term, c->config->name, c->lterm, c->index,
                 (now - f->started) / USEC_PER_MSEC);
        if (r < 0)
                log_warning_errno(r, "Sending PROMOTE to %s failed: %m", c->config->name);
        failover_arm(m, now + manager_ms(m, m->config->dead_after_ms));
        manager_state_changed(m);
}

static bool peer_answered(Manager *m, Peer *p, usec_t now) {
        return p->conn && p->probe_answered >= m->failover.probe_min &&
               manager_peer_health(m, p, now) != PEER_DOWN;
}

static void switchover_check(Manager *m, usec_t now) {
        Failover *f = &m->failover;
        Peer *old = f->old, *t = f->target;

        if (!f->old_index_known && peer_answered(m, old, now)) {
                /* Sent after its lease ended: holds every acknowledged write. */
                f->old_index = old->index;
                f->old_lterm = old->lterm;
                f->old_index_known = true;
        }
        if (!f->old_index_known || !peer_answered(m, t, now))
                return;
        if (!election_caught_up(t->lterm, t->index, f->old_lterm, f->old_index))
                return;

        log_info("Switchover: %s caught up with %s at index %" PRIu64 ".", t->config->name, old->config->name,
                 f->old_index);
        promote(m, t, now);
}

static void election_log(Manager *m, const ElectionResult *res, usec_t now) {
        Failover *f = &m->failover;

        if (f->last_verdict_logged && f->last_verdict == res->verdict)
                return;
        f->last_verdict_logged = true;
        f->last_verdict = res->verdict;

        switch (res->verdict) {
        case ELECTION_NO_QUORUM:
                log_warning("Not promoting: only %zu of the %zu servers needed (not counting the old primary) "
                            "answered a probe; an acknowledged write could be missing. Waiting.",
                            res->n_answered, res->n_needed);
                break;
        case ELECTION_NO_CANDIDATE:
                log_warning("Not promoting: no server with priority > 0 answered. Waiting.");
                break;
        case ELECTION_BEHIND:
                log_warning("Not promoting: %s holds entries (lterm %" PRIu64 ", index %" PRIu64
                            ") that no promotable server has. Waiting.",
                            m->peers[res->most_advanced].config->name, m->peers[res->most_advanced].lterm,
                            m->peers[res->most_advanced].index);
                break;
        default:
                break;
        }
}

static void failover_check(Manager *m, usec_t now) {
        Failover *f = &m->failover;
        ElectionView views[CONFIG_SERVERS_MAX];
        ElectionResult res;
        size_t pending = 0;

        if (f->kind == FAILOVER_NONE || f->phase != PHASE_PROBING)
                return;
        if (m->tilt)
                return;   /* no failover decision in TILT */
        if (f->kind == FAILOVER_SWITCHOVER) {
                switchover_check(m, now);
                return;
        }

        for (size_t i = 0; i < m->n_peers; i++) {
                Peer *p = m->peers + i;
                bool is_old = p == f->old;

                views[i] = (ElectionView) {
                        .name = p->config->name,
                        .priority = p->config->priority,
                        .port = sockaddr_port(&p->config->address_addr),
                        .lterm = p->lterm,
                        .index = p->index,
                        .answered = peer_answered(m, p, now),
                        /* The old primary never counts toward the quorum; after a lost primary it is
                         * not a candidate either (internals.md §Failover 3-4). At a first election the
                         * recorded primary, if it is back, is an ordinary candidate. */
                        .counts = !is_old,
                        .candidate = !is_old || f->kind == FAILOVER_STARTUP,
                };
                if (!views[i].answered && (views[i].counts || views[i].candidate) && p->conn &&
                    manager_peer_health(m, p, now) != PEER_DOWN)
                        pending++;
        }

        if (election_decide(views, m->n_peers, m->config->min_sync_replicas, &res) < 0)
                return;

        /* Wait briefly for every live server's answer, for the best choice. */
        if (res.verdict == ELECTION_CHOSEN && (pending == 0 || now >= f->probe_sent +
                                               manager_ms(m, m->config->heartbeat_interval_ms))) {
                promote(m, m->peers + res.chosen, now);
                return;
        }
        if (res.verdict != ELECTION_CHOSEN &&
            now >= f->probe_sent + manager_ms(m, m->config->heartbeat_interval_ms))
                election_log(m, &res, now);
}

static void next_round(Manager *m, const char *why, usec_t now) {
        Failover *f = &m->failover;

        log_warning("%s round %u: %s; starting another round.", failover_kind_to_string(f->kind), f->round, why);
        if (f->kind == FAILOVER_SWITCHOVER) {
                char line[256];

                snprintf(line, sizeof line, "ERR BUSY %s; electing a primary\n", why);
                requester_reply(m, line);
                /* The old primary's lease is over: from here on this is an election like the first
                 * one, the old primary being a candidate (it is alive and holds every acknowledged
                 * write) that does not count toward the quorum. */
                f->kind = FAILOVER_STARTUP;
        }
        f->round++;
        f->target = NULL;
        probing_begin(m, now);
}

static void failover_complete(Manager *m, Peer *p, const HbMessage *hb, usec_t now) {
        Failover *f = &m->failover;
        FailoverKind kind = f->kind;
        char text[256];

        snprintf(text, sizeof text, "Promoted %s to primary of term %" PRIu64 " (%s, %" PRIu64
                 " ms after the trigger).",
                 p->config->name, f->promote_term, failover_kind_to_string(kind), (now - f->started) / USEC_PER_MSEC);
        event_server(LOG_NOTICE, FUSION_MESSAGE_PROMOTION, p, "primary", f->promote_term, text);
        if (kind == FAILOVER_SWITCHOVER) {
                log_event(LOG_NOTICE, FUSION_MESSAGE_SWITCHOVER, "Switchover from %s to %s completed, term %" PRIu64 ".",
                          f->old->config->name, p->config->name, f->promote_term);
                requester_reply(m, "OK\n");
        }
        failover_reset(m);
        manager_primary_confirmed(m, p, hb, now);
}

/* ---- events ---- */

bool failover_on_heartbeat(Manager *m, Peer *p, const HbMessage *hb, usec_t now) {
        Failover *f = &m->failover;

        if (f->kind == FAILOVER_NONE)
                return false;

        if (f->phase == PHASE_PROMOTING && p == f->target) {
                if (hb->role == ROLE_PRIMARY && hb->term == f->promote_term)
                        failover_complete(m, p, hb, now);
                return true;
        }

        /* A restarted monitor: the recorded primary was just late. Nothing was promoted yet. */
        if (f->kind == FAILOVER_STARTUP && f->phase != PHASE_PROMOTING && p == f->old && p == m->primary &&
            hb->role == ROLE_PRIMARY && hb->term == m->term) {
                log_info("Recorded primary %s reports term %" PRIu64 " after all; no election needed.",
                         p->config->name, m->term);
                failover_reset(m);
        }
        return false;
}

void failover_after_heartbeat(Manager *m, Peer *p, const HbMessage *hb, usec_t now) {
        Failover *f = &m->failover;

        if (f->kind == FAILOVER_NONE || f->phase != PHASE_PROBING)
                return;
        if (hb->probe >= f->probe_min || f->kind == FAILOVER_SWITCHOVER)
                failover_check(m, now);
}

void failover_peer_connected(Manager *m, Peer *p) {
        Failover *f = &m->failover;

        /* Any probe sent after the trigger counts. */
        if (f->kind != FAILOVER_NONE && f->phase == PHASE_PROBING)
                (void) peer_send_probe(p, ++m->probe_seq);
}

void failover_peer_disconnected(Manager *m, Peer *p) {
        Failover *f = &m->failover;
        usec_t now = now_usec();

        if (f->kind == FAILOVER_NONE)
                return;

        if (f->kind == FAILOVER_SWITCHOVER && f->phase != PHASE_PROMOTING && p == f->target) {
                switchover_fail(m, "the target disconnected");
                return;
        }
        if (f->phase == PHASE_PROMOTING && p == f->target) {
                /* It got no LEASE: nothing to fence. */
                next_round(m, "the promoted server disconnected", now);
                return;
        }
        failover_check(m, now);
}

void failover_client_gone(Manager *m, ClientConn *c) {
        if (m->failover.requester == c)
                m->failover.requester = NULL;
}

void failover_advance(Manager *m) {
        usec_t now = now_usec();

        if (m->failover.phase == PHASE_FENCING)
                fence_check(m, now);
        else
                failover_check(m, now);
}

static int failover_on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        Failover *f = &m->failover;
        usec_t now = now_usec();

        if (f->kind == FAILOVER_NONE)
                return 0;

        switch (f->phase) {
        case PHASE_FENCING:
                if (f->kind == FAILOVER_SWITCHOVER && now >= f->started + SWITCHOVER_TIMEOUT_USEC)
                        switchover_fail(m, "timeout");
                else
                        fence_check(m, now);
                break;
        case PHASE_PROBING:
                if (f->kind == FAILOVER_SWITCHOVER) {
                        if (now >= f->started + SWITCHOVER_TIMEOUT_USEC)
                                switchover_fail(m, "the target did not catch up in time");
                        else
                                failover_arm(m, f->started + SWITCHOVER_TIMEOUT_USEC);
                } else
                        failover_check(m, now);
                break;
        case PHASE_PROMOTING:
                if (now >= f->deadline)
                        next_round(m, "no confirmation of the promotion", now);
                else
                        failover_arm(m, f->deadline);
                break;
        default:
                break;
        }
        return 0;
}
