/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * monitor-link — the connection to fusion-monitor (see monitor-link.h and
 * doc/internals.md). When [cluster] auth applies to the connection (TCP by
 * default) it starts with HELLO-AUTH/CHALLENGE/PROOF and every line after
 * that is sealed both ways (doc/security.md); heartbeats wait until then.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "monitor-link.h"
#include "peer-link.h"
#include "server-util.h"

#define MONITOR_LINE_MAX 1024
/* A monitor that does not read this much of our heartbeats is not listening. */
#define MONITOR_OUTPUT_MAX (64U * 1024U)

struct MonitorLink {
        Manager *manager;
        SockAddr unix_addr;
        SockAddr tcp_addr;
        bool have_unix;
        bool have_tcp;
        char desc[SOCKADDR_STRLEN];

        PeerLink link;          /* fd, reader, sealed output, retry backoff */
        bool connected;
        bool via_unix;
        sd_event_source *heartbeat_timer;
        bool authenticating;    /* HELLO-AUTH sent, waiting for CHALLENGE */

        uint64_t seq;
        SeqRing sent;
};

static void monitor_connect(MonitorLink *l, bool try_unix);

static void monitor_close(MonitorLink *l) {
        peer_link_close(&l->link);
        l->connected = false;
        l->authenticating = false;
}

static void monitor_fail(MonitorLink *l, int error, const char *what) {
        int r;

        if (l->connected && error != 0)
                log_warning_errno(error, "Lost the connection to the monitor at %s (%s: %m), reconnecting.",
                                  l->desc, what);
        else if (l->connected)
                log_warning("Lost the connection to the monitor at %s (%s), reconnecting.", l->desc, what);
        else if (l->link.failures == 0 && error != 0)
                log_info_errno(error, "Cannot reach the monitor (%s: %m), retrying.", what);
        else if (l->link.failures == 0)
                log_info("Cannot reach the monitor (%s), retrying.", what);
        l->link.failures++;
        monitor_close(l);
        r = peer_link_schedule_retry(&l->link);
        if (r < 0)
                manager_fail(l->manager, r, "arm the monitor retry timer");
}

static void monitor_on_fail(void *userdata, int error, const char *what) {
        monitor_fail(userdata, error, what);
}

static void monitor_write(MonitorLink *l) {
        if (peer_link_write(&l->link) < 0)
                return;
        if (peer_out_pending(&l->link.out) > MONITOR_OUTPUT_MAX)
                monitor_fail(l, 0, "the monitor does not read");
}

void monitor_link_send_heartbeat(MonitorLink *l, uint64_t probe) {
        Manager *m;
        HbMessage hb;
        int r;

        if (!l || !l->connected || l->authenticating)
                return;
        m = l->manager;

        hb = (HbMessage){
                .type = HB_HEARTBEAT,
                .role = m->role,
                .term = m->term,
                .index = msglog_last_index(m->log),
                .lterm = msglog_last_term(m->log),
                .commit = m->commit_index,
                .pid = (uint64_t) getpid(),
                .seq = ++l->seq,
                .probe = probe,
                .insync = m->role == ROLE_PRIMARY ? manager_replicas_in_sync(m) : 0,
                .lease_ms = m->config->lease_ms,
                .dead_after_ms = m->config->dead_after_ms,
                .min_sync_replicas = m->config->min_sync_replicas,
                .heartbeat_interval_ms = m->config->heartbeat_interval_ms,
        };
        (void) snprintf(hb.name, sizeof(hb.name), "%s", m->self->name);

        /* Taken before the send: a lease never runs longer than it should. */
        seq_ring_put(&l->sent, hb.seq, now_usec());
        r = hb_message_format(&hb, &l->link.out.buf);
        if (r < 0) {
                monitor_fail(l, r, "cannot format a heartbeat");
                return;
        }
        monitor_write(l);
}

uint64_t monitor_link_next_seq(const MonitorLink *l) {
        return l ? l->seq + 1 : 1;
}

/* At most a few authentication warnings per interval: the link retries every 500 ms. */
static void monitor_log_auth(MonitorLink *l, const char *what, const char *reason) {
        unsigned suppressed = 0;

        if (!ratelimit_pass(&l->manager->auth_log, now_usec(), &suppressed))
                return;
        log_warning("Monitor at %s: %s: %s.%s", l->desc, what, reason,
                    suppressed > 0 ? " (similar messages suppressed)" : "");
}

/* CHALLENGE: check that the monitor holds the cluster key, answer PROOF, then heartbeats. */
static void monitor_on_challenge(MonitorLink *l, char *line, size_t len) {
        const char *reason = NULL;
        int r;

        r = peerauth_on_challenge(&l->link.auth, line, len, &l->link.out.buf, &reason);
        if (r < 0) {
                monitor_log_auth(l, "authentication failed", reason);
                l->link.backoff = BACKOFF_MAX_USEC;
                monitor_fail(l, 0, "authentication failed");
                return;
        }
        peer_out_seal_from_here(&l->link.out);
        l->authenticating = false;
        log_debug("Authenticated with the monitor at %s.", l->desc);
        monitor_link_send_heartbeat(l, 0);
}

static void monitor_handle_line(MonitorLink *l, char *line, size_t len) {
        Manager *m = l->manager;
        const char *reason = NULL;
        HbMessage msg;
        usec_t sent;

        if (l->authenticating) {
                monitor_on_challenge(l, line, len);
                return;
        }

        if (hb_message_parse(line, len, &msg, &reason) < 0) {
                log_warning("Ignoring a bad line from the monitor: %s", reason ?: "unparsable");
                return;
        }

        switch (msg.type) {
        case HB_LEASE:
                if (seq_ring_get(&l->sent, msg.seq, &sent) < 0) {
                        log_debug("LEASE for unknown heartbeat %" PRIu64 ", ignoring.", msg.seq);
                        return;
                }
                manager_on_lease(m, msg.term, msg.seq, sent);
                return;
        case HB_PROMOTE:
                manager_on_promote(m, msg.term);
                return;
        case HB_FOLLOW:
                manager_on_follow(m, msg.term, msg.primary, msg.address);
                return;
        case HB_DEMOTE:
                manager_on_demote(m, msg.term);
                return;
        case HB_PROBE:
                monitor_link_send_heartbeat(l, msg.seq);
                return;
        case HB_REJECT:
                log_error("The monitor refused this server: %s", msg.reason);
                /* Retry slowly: the monitor's configuration may be fixed and it restarted. */
                l->link.backoff = BACKOFF_MAX_USEC;
                monitor_fail(l, 0, "rejected");
                return;
        default:
                log_debug("Ignoring %s from the monitor.", hb_type_to_string(msg.type));
                return;
        }
}

static int monitor_on_line(void *userdata, int r, char *line, size_t len, const char *reason) {
        MonitorLink *l = userdata;

        if (r == -E2BIG) {
                log_warning("Ignoring an over-long line from the monitor.");
                return 0;
        }
        if (r < 0) {
                monitor_log_auth(l, "rejecting a line", reason);
                monitor_fail(l, 0, "bad authentication tag");
                return r;
        }
        /* A REJECT (or a failed heartbeat) closes the connection: the link stops reading then. */
        monitor_handle_line(l, line, len);
        return 0;
}

static void monitor_on_connected(void *userdata, int error) {
        MonitorLink *l = userdata;

        if (error != 0) {
                if (l->via_unix && l->have_tcp) {
                        /* The socket file exists but nobody listens: TCP next. */
                        log_debug_errno(error, "Monitor socket not connectable: %m");
                        monitor_connect(l, false);
                        return;
                }
                monitor_fail(l, error, "connect failed");
                return;
        }

        l->connected = true;
        (void) sockaddr_format(l->via_unix ? &l->unix_addr : &l->tcp_addr, l->desc, sizeof(l->desc));
        log_full_errno(l->link.failures > 0 ? LOG_NOTICE : LOG_INFO, 0, "Connected to the monitor at %s.",
                       l->desc);
        l->link.failures = 0;
        if (l->link.backoff < BACKOFF_MAX_USEC)
                l->link.backoff = 0;

        if (config_auth_applies(l->manager->config, l->via_unix)) {
                int r = -ENOKEY;

                if (l->manager->authkey.set)
                        r = peerauth_hello(&l->link.auth, &l->manager->authkey, l->manager->self->name,
                                           &l->link.out.buf);
                if (r < 0) {
                        monitor_fail(l, r, "cannot start authentication");
                        return;
                }
                l->authenticating = true;
                monitor_write(l);
                return;
        }
        monitor_link_send_heartbeat(l, 0);
}

/* Unix socket first (when set and connectable), else TCP. */
static void monitor_connect(MonitorLink *l, bool try_unix) {
        int r;

        monitor_close(l);
        r = peer_link_reset(&l->link, MONITOR_LINE_MAX);
        if (r < 0) {
                monitor_fail(l, r, "out of memory");
                return;
        }

        r = -ENOENT;
        if (l->have_unix && try_unix) {
                r = socket_connect(&l->unix_addr);
                l->via_unix = r >= 0;
        }
        if (r < 0 && l->have_tcp) {
                r = socket_connect(&l->tcp_addr);
                l->via_unix = false;
        }
        if (r < 0) {
                monitor_fail(l, r, "connect failed");
                return;
        }
        r = peer_link_watch(&l->link, r);
        if (r < 0)
                monitor_fail(l, r, "cannot watch the connection");
}

static void monitor_on_retry(void *userdata) {
        monitor_connect(userdata, true);
}

static const PeerLinkOps monitor_link_ops = {
        .connected = monitor_on_connected,
        .line = monitor_on_line,
        .retry = monitor_on_retry,
        .fail = monitor_on_fail,
};

static int monitor_on_heartbeat(sd_event_source *s, uint64_t usec, void *userdata) {
        MonitorLink *l = userdata;
        int r;

        monitor_link_send_heartbeat(l, 0);
        r = sd_event_source_set_time_relative(s, l->manager->config->heartbeat_interval_ms * USEC_PER_MSEC);
        if (r < 0)
                manager_fail(l->manager, r, "re-arm the heartbeat timer");
        return 0;
}

int monitor_link_start(MonitorLink *l) {
        Manager *m = l->manager;
        int r;

        if (!l->have_unix && !l->have_tcp) {
                log_warning("No monitor endpoint configured: this server never gets a lease.");
                return 0;
        }
        r = sd_event_add_time_relative(m->event, &l->heartbeat_timer, CLOCK_MONOTONIC,
                                       m->config->heartbeat_interval_ms * USEC_PER_MSEC, TIMER_ACCURACY_USEC,
                                       monitor_on_heartbeat, l);
        if (r < 0)
                return r;
        /* Heartbeats and LEASEs go before any client work (server-manager.h). */
        r = sd_event_source_set_priority(l->heartbeat_timer, PRIORITY_MONITOR);
        if (r < 0)
                return r;
        r = sd_event_source_set_enabled(l->heartbeat_timer, SD_EVENT_ON);
        if (r < 0)
                return r;
        monitor_connect(l, true);
        return 0;
}

MonitorLink *monitor_link_free(MonitorLink *l) {
        if (!l)
                return NULL;
        peer_link_done(&l->link);
        sd_event_source_disable_unref(l->heartbeat_timer);
        free(l);
        return NULL;
}

int monitor_link_new(Manager *m, MonitorLink **ret) {
        const Config *c = m->config;
        MonitorLink *l;
        int r;

        l = calloc(1, sizeof(MonitorLink));
        if (!l)
                return -ENOMEM;
        l->manager = m;
        peer_link_init(&l->link, m->event, &monitor_link_ops, l);
        peer_link_set_priority(&l->link, PRIORITY_MONITOR);

        if (c->monitor_socket && c->monitor_socket[0]) {
                r = sockaddr_parse(c->monitor_socket, false, &l->unix_addr);
                if (r < 0) {
                        monitor_link_free(l);
                        return log_error_errno(r, "Bad monitor socket '%s': %m", c->monitor_socket);
                }
                l->have_unix = true;
        }
        if (c->monitor_address && c->monitor_address[0]) {
                r = sockaddr_parse(c->monitor_address, false, &l->tcp_addr);
                if (r < 0) {
                        monitor_link_free(l);
                        return log_error_errno(r, "Bad monitor address '%s': %m", c->monitor_address);
                }
                l->have_tcp = true;
        }

        *ret = l;
        return 0;
}
