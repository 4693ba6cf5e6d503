/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * monitor-manager — the monitor's event loop: listening sockets, the servers'
 * heartbeat connections, leases and FOLLOWs, health, TILT, the persisted term
 * and the sd_notify status (see monitor-manager.h).
 */
#include <assert.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "client-api.h"
#include "failover.h"
#include "fusion-ids.h"
#include "log.h"
#include "monitor-auth.h"
#include "monitor-manager.h"
#include "monitor-state.h"
#include "protocol.h"

#ifndef __NR_pidfd_open
#define __NR_pidfd_open 434
#endif

/* The TILT clock: a timer that measures its own lateness. */
#define TICK_USEC (100 * USEC_PER_MSEC)

#define IN_SET(x, a, b, c) ((x) == (a) || (x) == (b) || (x) == (c))

static void hb_conn_close(HbConn *c, const char *why);

usec_t manager_ms(const Manager *m, uint64_t ms) {
        return (usec_t) ms * USEC_PER_MSEC;
}

PeerHealth manager_peer_health(const Manager *m, const Peer *p, usec_t now) {
        return election_health(p->conn != NULL, p->last_heartbeat, now,
                               manager_ms(m, m->config->heartbeat_interval_ms),
                               manager_ms(m, m->config->dead_after_ms), m->tilt);
}

Peer *manager_find_peer(Manager *m, const char *name) {
        for (size_t i = 0; i < m->n_peers; i++)
                if (strcmp(m->peers[i].config->name, name) == 0)
                        return m->peers + i;
        return NULL;
}

size_t manager_peers_up(const Manager *m, usec_t now) {
        size_t n = 0;

        for (size_t i = 0; i < m->n_peers; i++)
                if (manager_peer_health(m, m->peers + i, now) != PEER_DOWN)
                        n++;
        return n;
}

int manager_persist(Manager *m, uint64_t term, Peer *primary) {
        int r;

        r = monitor_state_save(m->state_path, term, primary ? primary->config->name : NULL);
        if (r < 0)
                return log_error_errno(r, "Failed to write %s (term %" PRIu64 "): %m", m->state_path, term);

        if (term != m->term || primary != m->primary)
                m->primary_confirmed = false;
        m->term = term;
        m->primary = primary;
        return 0;
}

static int hb_conn_identify(HbConn *c, const HbMessage *hb) {
        Manager *m = c->manager;
        Peer *p;

        p = manager_find_peer(m, hb->name);
        if (!p) {
                log_warning("Heartbeat from unknown server '%s', rejecting.", hb->name);
                (void) hb_message_format(&(HbMessage) { .type = HB_REJECT, .reason = "unknown-server" },
                                         &c->out.buf);
                (void) hb_conn_flush(c);
                return -ENOENT;
        }

        if (p->conn && p == m->primary && m->primary_confirmed && p->pid != hb->pid)
                /* Another process: the old one's fate is unknown. Fence it as a lost primary, with
                 * its own pidfd, before its connection goes. */
                hb_conn_close(p->conn, "replaced by a connection from another process");
        if (p->conn) {
                HbConn *old = p->conn;

                log_info("Server %s connected again, replacing its previous connection.", p->config->name);
                old->peer = NULL;
                p->conn = NULL;
                hb_conn_free(old);
        }

        if (c->pidfd >= 0 && (uint64_t) c->ucred_pid != hb->pid) {
                /* Another pid namespace, or not the process we think: fence by lease only. */
                log_debug("Server %s reports pid %" PRIu64 ", the socket's peer is %d; not using its pidfd.",
                          p->config->name, hb->pid, (int) c->ucred_pid);
                c->pidfd = safe_close(c->pidfd);
        }

        c->peer = p;
        p->conn = c;
        p->follow_term = 0;
        p->follow_time = 0;
        log_info("Server %s connected (pid %" PRIu64 ", %s, role %s, term %" PRIu64 ", index %" PRIu64 ").",
                 p->config->name, hb->pid, c->is_unix ? "unix" : "tcp", role_to_string(hb->role), hb->term,
                 hb->index);
        return 0;
}

/* Returns < 0 when the connection must be closed. */
static int hb_conn_process_line(HbConn *c, char *line, size_t len) {
        Manager *m = c->manager;
        const char *reason = NULL;
        bool identified;
        HbMessage hb;
        int r;

        r = hb_message_parse(line, len, &hb, &reason);
        if (r < 0) {
                log_warning("Bad line from %s: %s; closing the connection.",
                            c->peer ? c->peer->config->name : "an unidentified server", reason ?: "malformed");
                return -EBADMSG;
        }
        if (hb.type != HB_HEARTBEAT) {
                log_warning("Unexpected %s from %s; closing the connection.", hb_type_to_string(hb.type),
                            c->peer ? c->peer->config->name : "an unidentified server");
                return -EBADMSG;
        }

        if (c->auth && strcmp(hb.name, c->auth->name) != 0) {
                char peer[SOCKADDR_STRLEN];

                /* The key is the cluster's; a connection stays with the name it proved it for. */
                log_warning("Heartbeat from %s names '%s', but it authenticated as %s; closing the connection.",
                            hb_conn_peer(c, peer, sizeof peer), hb.name, c->auth->name);
                return -EACCES;
        }

        identified = c->peer == NULL;
        if (!c->peer) {
                r = hb_conn_identify(c, &hb);
                if (r < 0)
                        return r;
        } else if (strcmp(hb.name, c->peer->config->name) != 0) {
                log_warning("Heartbeat names '%s' on the connection of %s; closing it.", hb.name,
                            c->peer->config->name);
                return -EBADMSG;
        }

        manager_on_heartbeat(m, c->peer, &hb, now_usec());
        if (identified && c->peer)
                failover_peer_connected(m, c->peer);
        return 0;
}

int hb_conn_flush(HbConn *c) {
        int r;

        /* An authenticated connection: only sealed lines go out. After a write error
         * nothing is queued; the read side reports the error and closes. */
        r = peer_out_write(&c->out, c->fd, c->auth, NULL);
        if (r < 0)
                return r;
        return sd_event_source_set_io_events(c->io, EPOLLIN | (c->out.buf.len > 0 ? EPOLLOUT : 0));
}

static int hb_conn_on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        HbConn *c = userdata;
        int r;

        if (revents & EPOLLOUT)
                (void) hb_conn_flush(c);

        if (!(revents & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                return 0;

        for (unsigned reads = 0;;) {
                char *line;
                size_t len;

                r = line_reader_next(&c->reader, &line, &len);
                if (r == -E2BIG) {
                        hb_conn_close(c, "line too long");
                        return 0;
                }
                if (r > 0) {
                        r = hb_conn_auth_line(c, line, &len);
                        if (r < 0) {
                                hb_conn_close(c, "authentication failed");
                                return 0;
                        }
                        if (r > 0)
                                continue;
                        if (hb_conn_process_line(c, line, len) < 0) {
                                hb_conn_close(c, NULL);
                                return 0;
                        }
                        continue;
                }
                if (c->reader.eof) {
                        hb_conn_close(c, "connection closed");
                        return 0;
                }
                if (reads++ >= 16)
                        return 0;
                r = line_reader_fill(&c->reader, fd);
                if (r == -EAGAIN)
                        return 0;
                if (r == 0 || (r < 0 && r != -ENOBUFS)) {
                        if (r < 0)
                                log_debug_errno(r, "Read error on a heartbeat connection: %m");
                        /* Lines already complete are still taken above, then the close. */
                        c->reader.eof = true;
                }
        }
}

void hb_conn_free(HbConn *c) {
        if (!c)
                return;
        assert(!c->peer);
        if (c->prev)
                c->prev->next = c->next;
        else if (c->manager && c->manager->hb_conns == c)
                c->manager->hb_conns = c->next;
        if (c->next)
                c->next->prev = c->prev;
        hb_conn_auth_free(c);   /* first: it may log the peer's address */
        sd_event_source_disable_unref(c->io);
        safe_close(c->fd);
        safe_close(c->pidfd);
        line_reader_done(&c->reader);
        peer_out_done(&c->out);
        free(c);
}

static void hb_conn_close(HbConn *c, const char *why) {
        Manager *m = c->manager;
        Peer *p = c->peer;

        if (p) {
                log_info("Server %s disconnected%s%s.", p->config->name, why ? ": " : "", why ?: "");
                /* Before the connection is gone: the failover takes its pidfd. */
                if (p == m->primary && m->primary_confirmed)
                        failover_primary_lost(m, p, why ?: "connection closed");
                p->conn = NULL;
                c->peer = NULL;
        }
        hb_conn_free(c);
        if (p) {
                failover_peer_disconnected(m, p);
                manager_state_changed(m);
        }
}

static int hb_conn_new(Manager *m, int fd) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        HbConn *c, *oldest = NULL;
        size_t unidentified = 0;
        int r;

        /* Bounded: the servers' connections (one each), plus HB_UNIDENTIFIED_MAX that have not
         * sent a HEARTBEAT yet. Past that the oldest of those that have not even started to
         * authenticate goes (a flood of idle or junk connections cannot lock a real server out);
         * if all of them are authenticating, the new one is refused (they end within
         * HB_IDENTIFY_USEC). */
        for (HbConn *o = m->hb_conns; o; o = o->next)
                if (!o->peer) {
                        unidentified++;
                        if (!o->auth)
                                oldest = o;     /* the list is newest first */
                }
        if (unidentified >= HB_UNIDENTIFIED_MAX) {
                if (!oldest) {
                        log_debug("Too many heartbeat connections authenticating, refusing one.");
                        safe_close(fd);
                        return -EBUSY;
                }
                log_debug("Too many unidentified heartbeat connections, closing the oldest.");
                hb_conn_free(oldest);
        }

        c = calloc(1, sizeof *c);
        if (!c) {
                safe_close(fd);
                return log_oom();
        }
        *c = (HbConn) { .manager = m, .fd = fd, .pidfd = -1, .accepted = now_usec() };

        r = line_reader_init(&c->reader, HB_LINE_MAX);
        if (r < 0)
                goto fail;

        if (getsockname(fd, (struct sockaddr *) &ss, &sl) >= 0 && ss.ss_family == AF_UNIX) {
                struct ucred cred;
                socklen_t cl = sizeof cred;

                c->is_unix = true;
                if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) >= 0 && cred.pid > 0) {
                        c->ucred_pid = cred.pid;
                        c->pidfd = (int) syscall(__NR_pidfd_open, cred.pid, 0);
                        if (c->pidfd < 0)
                                log_debug_errno(negative_errno(), "pidfd_open(%d) failed, fencing by lease only: %m",
                                                (int) cred.pid);
                }
        } else {
                int one = 1;
                (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        }

        r = sd_event_add_io(m->event, &c->io, fd, EPOLLIN, hb_conn_on_io, c);
        /* Heartbeats (and the LEASEs they earn) go before the client API. */
        if (r >= 0)
                r = sd_event_source_set_priority(c->io, SD_EVENT_PRIORITY_IMPORTANT);
        if (r < 0)
                goto fail;

        c->next = m->hb_conns;
        if (c->next)
                c->next->prev = c;
        m->hb_conns = c;
        return 0;

fail:
        log_warning_errno(r, "Failed to set up a heartbeat connection, closing it: %m");
        c->manager = NULL;
        hb_conn_free(c);
        return r;
}

static int manager_on_listen(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Manager *m = userdata;
        bool client = false;

        for (size_t i = 0; i < m->fds.n_client; i++)
                if (m->fds.client[i] == fd)
                        client = true;

        for (unsigned i = 0; i < 32; i++) {
                int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (cfd < 0) {
                        if (errno == EAGAIN)
                                return 0;
                        if (IN_SET(errno, EINTR, ECONNABORTED, EPROTO))
                                continue;
                        /* EMFILE and friends: pause this socket; the tick turns it back on. */
                        log_warning_errno(negative_errno(), "accept() failed, pausing the socket: %m");
                        (void) sd_event_source_set_enabled(s, SD_EVENT_OFF);
                        return 0;
                }
                if (client)
                        (void) client_conn_new(m, cfd);
                else
                        (void) hb_conn_new(m, cfd);
        }
        return 0;
}

/* ---- status, WHO ---- */

int manager_who(Manager *m, Buf *b) {
        if (m->primary && m->primary_confirmed)
                return reply_primary(b, m->primary->config->name, m->primary->config->address, m->term);
        return reply_noprimary(b);
}

void manager_state_changed(Manager *m) {
        Buf b = {};
        char status[256];
        usec_t now = now_usec();

        if (manager_who(m, &b) >= 0 && b.data && (!m->who_line || strcmp(m->who_line, b.data) != 0)) {
                char *line = strdup(b.data);

                if (line) {
                        free(m->who_line);
                        m->who_line = line;
                        client_broadcast(m, line);
                }
        }
        buf_done(&b);

        if (failover_active(m))
                snprintf(status, sizeof status, "%s (%s), term %" PRIu64 ", %zu/%zu servers up",
                         m->failover.kind == FAILOVER_SWITCHOVER ? "switchover" :
                         m->failover.kind == FAILOVER_STARTUP ? "election" : "failover",
                         failover_phase_to_string(m->failover.phase), m->term, manager_peers_up(m, now),
                         m->n_peers);
        else if (m->primary && m->primary_confirmed)
                snprintf(status, sizeof status, "primary %s, term %" PRIu64 ", %zu/%zu servers up%s",
                         m->primary->config->name, m->term, manager_peers_up(m, now), m->n_peers,
                         m->tilt ? ", TILT" : "");
        else
                snprintf(status, sizeof status, "no primary, term %" PRIu64 ", %zu/%zu servers up%s", m->term,
                         manager_peers_up(m, now), m->n_peers, m->tilt ? ", TILT" : "");

        if (!m->status_text || strcmp(m->status_text, status) != 0) {
                char *t = strdup(status);

                if (t) {
                        free(m->status_text);
                        m->status_text = t;
                        (void) sd_notifyf(false, "STATUS=%s", status);
                }
        }
}

/* ---- timers: TILT, silence, start-up ---- */

static void manager_check_silence(Manager *m, usec_t now) {
        Peer *p = m->primary;
        char reason[64];

        if (m->tilt || !p || !m->primary_confirmed)
                return;
        if (manager_peer_health(m, p, now) != PEER_DOWN)
                return;

        snprintf(reason, sizeof reason, "no heartbeat for %" PRIu64 " ms",
                 (now - p->last_heartbeat) / USEC_PER_MSEC);
        failover_primary_hung(m, p, reason);
}

static void manager_check_tilt(Manager *m, usec_t now) {
        usec_t late = now > m->tick_expected ? now - m->tick_expected : 0;
        usec_t dead_after = manager_ms(m, m->config->dead_after_ms);

        if (late > dead_after / 2) {
                if (!m->tilt)
                        log_event(LOG_WARNING, FUSION_MESSAGE_MONITOR_TILT,
                                  "The monitor's event loop stalled for %" PRIu64
                                  " ms; entering TILT: no failover decision until every server is heard again.",
                                  late / USEC_PER_MSEC);
                m->tilt = true;
                m->tilt_since = now;
        } else if (m->tilt && now >= m->tilt_since + dead_after) {
                m->tilt = false;
                log_notice("Leaving TILT: %" PRIu64 " ms since the stall.", m->config->dead_after_ms);
                failover_advance(m);
        }
}

static int manager_on_tick(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        usec_t now = now_usec();

        manager_check_tilt(m, now);
        m->tick_expected = now + TICK_USEC;
        (void) sd_event_source_set_time(s, m->tick_expected);
        (void) sd_event_source_set_enabled(s, SD_EVENT_ON);

        for (size_t i = 0; i < m->n_listen_sources; i++)
                (void) sd_event_source_set_enabled(m->listen_sources[i], SD_EVENT_ON);

        for (HbConn *c = m->hb_conns, *next; c; c = next) {
                next = c->next;
                if (!c->peer && now >= c->accepted + HB_IDENTIFY_USEC) {
                        log_debug("Closing a heartbeat connection that never sent a HEARTBEAT.");
                        hb_conn_free(c);
                } else if (peer_out_pending(&c->out) > HB_OUTPUT_MAX) {
                        /* The next one may be freed too if it was c's peer's old connection: restart. */
                        hb_conn_close(c, "it does not read what the monitor sends");
                        next = m->hb_conns;
                }
        }

        manager_check_silence(m, now);
        manager_state_changed(m);
        return 0;
}

static int manager_on_startup(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        m->startup_done = true;
        if (!m->primary_confirmed && !failover_active(m))
                failover_start_election(m);
        return 0;
}

static int manager_on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;

        log_info("Received signal %u, exiting.", si->ssi_signo);
        return sd_event_exit(m->event, 0);
}

/* ---- life cycle ---- */

static int manager_load_state(Manager *m) {
        _cleanup_(freep) char *primary = NULL;
        uint64_t term = 0;
        int r;

        r = mkdir_p(m->config->state_dir, 0755);
        if (r < 0)
                return log_error_errno(r, "Failed to create state directory %s: %m", m->config->state_dir);

        r = monitor_id_load_or_create(m->id_path, m->id);
        if (r == -EINVAL)
                return log_error_errno(r, "%s holds no monitor identity (32 hex digits); remove it to make a new one.",
                                       m->id_path);
        if (r < 0)
                return log_error_errno(r, "Failed to read or create %s: %m", m->id_path);
        log_info("Monitor identity %s.", m->id);

        r = monitor_state_load(m->state_path, &term, &primary);
        if (r == -ENOENT) {
                log_info("No state in %s: a new cluster, term 0.", m->state_path);
                return 0;
        }
        if (r < 0)
                return log_error_errno(r, "Failed to read %s: %m", m->state_path);

        m->term = term;
        if (primary) {
                m->primary = manager_find_peer(m, primary);
                if (!m->primary)
                        log_warning("%s names primary '%s', which is not configured; ignoring it.",
                                    m->state_path, primary);
        }
        log_info("Loaded term %" PRIu64 ", primary %s.", m->term, m->primary ? m->primary->config->name : "none");
        return 0;
}

int manager_new(Config *config, MonitorFds *fds, Manager **ret) {
        _cleanup_(manager_freep) Manager *m = NULL;
        int r;

        assert(config);
        assert(fds);
        assert(ret);

        m = calloc(1, sizeof *m);
        if (!m)
                return log_oom();
        m->config = config;
        m->fds = *fds;
        *fds = (MonitorFds) {};
        failover_init(&m->failover);
        m->start_time = now_usec();

        if (asprintf(&m->id_path, "%s/id", config->state_dir) < 0)
                return -ENOMEM;
        if (asprintf(&m->state_path, "%s/state", config->state_dir) < 0)
                return log_oom();

        m->n_peers = config->n_servers;
        for (size_t i = 0; i < m->n_peers; i++)
                m->peers[i] = (Peer) {
                        .manager = m,
                        .config = config->servers + i,
                        .idx = i,
                        .lease_received = m->start_time,
                };

        r = manager_load_state(m);
        if (r < 0)
                return r;

        r = sd_event_new(&m->event);   /* not _default(): no gettid() per iteration */
        if (r < 0)
                return log_error_errno(r, "Failed to allocate the event loop: %m");
        r = sd_event_set_watchdog(m->event, true);
        if (r < 0)
                log_warning_errno(r, "Failed to enable the watchdog, ignoring: %m");
        r = sd_event_add_signal(m->event, NULL, SIGTERM, manager_on_signal, m);
        if (r >= 0)
                r = sd_event_add_signal(m->event, NULL, SIGINT, manager_on_signal, m);
        if (r < 0)
                return log_error_errno(r, "Failed to watch signals: %m");

        *ret = TAKE_PTR(m);
        return 0;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;

        failover_done(m);
        m->bus = monitor_bus_free(m->bus);
        for (size_t i = 0; i < m->n_peers; i++)
                peer_unit_done(&m->peers[i].unit);
        while (m->clients)
                client_conn_free(m->clients);
        for (size_t i = 0; i < m->n_peers; i++)
                if (m->peers[i].conn) {
                        m->peers[i].conn->peer = NULL;
                        m->peers[i].conn = NULL;
                }
        while (m->hb_conns)
                hb_conn_free(m->hb_conns);
        for (size_t i = 0; i < m->n_listen_sources; i++)
                sd_event_source_disable_unref(m->listen_sources[i]);
        monitor_fds_close(&m->fds);
        sd_event_source_disable_unref(m->tick);
        sd_event_source_disable_unref(m->startup_timer);
        sd_event_unref(m->event);
        config_free(m->config);
        free(m->state_path);
        free(m->id_path);
        free(m->who_line);
        free(m->status_text);
        free(m);
        return NULL;
}

int manager_start(Manager *m) {
        int r;

        for (size_t i = 0; i < m->fds.n_heartbeat + m->fds.n_client; i++) {
                int fd = i < m->fds.n_heartbeat ? m->fds.heartbeat[i] : m->fds.client[i - m->fds.n_heartbeat];

                r = sd_event_add_io(m->event, &m->listen_sources[m->n_listen_sources], fd, EPOLLIN,
                                    manager_on_listen, m);
                if (r >= 0 && i < m->fds.n_heartbeat)
                        r = sd_event_source_set_priority(m->listen_sources[m->n_listen_sources],
                                                         SD_EVENT_PRIORITY_IMPORTANT);
                if (r < 0)
                        return log_error_errno(r, "Failed to watch a listening socket: %m");
                m->n_listen_sources++;
        }

        m->tick_expected = now_usec() + TICK_USEC;
        r = sd_event_add_time(m->event, &m->tick, CLOCK_MONOTONIC, m->tick_expected, USEC_PER_MSEC,
                              manager_on_tick, m);
        /* After pending heartbeats (a server is not declared down with its heartbeat unread),
         * before the client API. */
        if (r >= 0)
                r = sd_event_source_set_priority(m->tick, SD_EVENT_PRIORITY_IMPORTANT / 2);
        if (r < 0)
                return log_error_errno(r, "Failed to add the health timer: %m");
        (void) sd_event_source_set_enabled(m->tick, SD_EVENT_ON);

        r = sd_event_add_time(m->event, &m->startup_timer, CLOCK_MONOTONIC,
                              m->start_time + manager_ms(m, m->config->dead_after_ms), 1, manager_on_startup, m);
        if (r < 0)
                return log_error_errno(r, "Failed to add the start-up timer: %m");

        /* systemd over D-Bus when there is a system bus; never fatal. */
        r = monitor_bus_new(m, &m->bus);
        if (r < 0)
                log_warning_errno(r, "Failed to set up the systemd link, watching heartbeats only: %m");

        log_info("Watching %zu servers (term %" PRIu64 ", recorded primary %s); waiting %" PRIu64
                 " ms for heartbeats.",
                 m->n_peers, m->term, m->primary ? m->primary->config->name : "none", m->config->dead_after_ms);
        manager_state_changed(m);
        return 0;
}

int manager_run(Manager *m) {
        int r;

        r = sd_event_loop(m->event);
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m");
        return 0;
}
