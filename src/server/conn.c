/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * conn — client connections of fusion-server (see conn.h). Every reply goes
 * through the connection's output buffer; while a write waits for its
 * commit, later replies queue behind it in the connection's FIFO so that a
 * pipelining client gets its answers in request order.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "conn.h"
#include "log.h"
#include "msglog.h"
#include "replication-primary.h"
#include "request.h"
#include "server-util.h"

#define ACCEPT_BATCH 64
#define ACCEPT_RETRY_USEC (100 * USEC_PER_MSEC)

/* Client and replica sockets are edge-triggered; see conn_read(). */
#define CONN_EPOLL_FLAGS (EPOLLET | EPOLLRDHUP)

static void conn_update_events(Conn *c);
static bool conn_process(Conn *c);

static Pending *pending_free(Pending *p) {
        if (!p)
                return NULL;
        buf_done(&p->reply);
        free(p);
        return NULL;
}

Pending *conn_push(Conn *c, PendingType type) {
        Pending *p;

        p = calloc(1, sizeof(Pending));
        if (!p)
                return NULL;
        p->type = type;
        p->conn = c;
        if (c->tail)
                c->tail->next = p;
        else
                c->head = p;
        c->tail = p;
        c->n_pending++;
        return p;
}

static void conn_pop(Conn *c) {
        Pending *p = c->head;

        c->head = p->next;
        if (!c->head)
                c->tail = NULL;
        c->n_pending--;
        pending_free(p);
}

Buf *conn_reply_buf(Conn *c) {
        Pending *p;

        if (!c->head)
                return &c->out.buf;
        if (c->tail->type == PENDING_REPLY)
                return &c->tail->reply;
        p = conn_push(c, PENDING_REPLY);
        if (!p)
                return NULL;
        p->done = true;
        return &p->reply;
}

size_t conn_output_size(const Conn *c) {
        return peer_out_pending(&c->out);
}

Conn *conn_free(Conn *c) {
        if (!c)
                return NULL;
        while (c->head)
                conn_pop(c);
        sd_event_source_disable_unref(c->io);
        sd_event_source_disable_unref(c->resume_source);
        safe_close(c->fd);
        line_reader_done(&c->lr);
        peer_out_done(&c->out);
        if (c->auth) {
                peerauth_done(c->auth);
                free(c->auth);
        }
        free(c);
        return NULL;
}

const char *conn_peer(const Conn *c, char *buf, size_t size) {
        SockAddr a = { .len = sizeof(a.storage) };

        if (c->is_unix || c->fd < 0 || getpeername(c->fd, &a.sa, &a.len) < 0 ||
            sockaddr_format(&a, buf, size) < 0)
                snprintf(buf, size, "%s", c->is_unix ? "on the unix socket" : "(unknown address)");
        return buf;
}

bool conn_peer_trusted(const Conn *c) {
        return peerauth_established(c->auth) || !config_auth_applies(c->manager->config, c->is_unix);
}

void conn_leave_reserve(Conn *c) {
        if (!c->reserve)
                return;
        c->reserve = false;
        c->manager->n_reserve--;
}

void conn_log_auth(Conn *c, const char *fmt, ...) {
        Manager *m = c->manager;
        unsigned suppressed = 0;
        char msg[512];
        va_list ap;

        if (!ratelimit_pass(&m->auth_log, now_usec(), &suppressed))
                return;
        va_start(ap, fmt);
        (void) vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        if (suppressed > 0)
                log_warning("%s (%u similar messages suppressed)", msg, suppressed);
        else
                log_warning("%s", msg);
}

void conn_kill(Conn *c) {
        Manager *m = c->manager;

        if (c->dead)
                return;
        c->dead = true;

        if (c->auth && c->auth->state == PEERAUTH_CHALLENGE_SENT) {
                char peer[SOCKADDR_STRLEN];

                /* A backup that finds our CHALLENGE wrong (another key) hangs up without a PROOF. */
                conn_log_auth(c, "Authentication failed for peer %s claiming to be %s: no PROOF (it hung up or "
                              "timed out; another cluster key?); closing the connection.",
                              conn_peer(c, peer, sizeof(peer)), c->auth->name);
        }

        if (c->is_replica)
                replica_unlink(c);
        for (Pending *p = c->head; p; p = p->next)
                if (p->waiting)
                        manager_unwait_write(m, p);

        conn_leave_reserve(c);
        c->io = sd_event_source_disable_unref(c->io);
        c->resume_source = sd_event_source_disable_unref(c->resume_source);
        c->fd = safe_close(c->fd);

        if (c->prev)
                c->prev->next = c->next;
        else
                m->conns = c->next;
        if (c->next)
                c->next->prev = c->prev;
        m->n_conns--;

        c->prev = NULL;
        c->next = m->dead_conns;
        m->dead_conns = c;
        manager_schedule_gc(m);
}

/* Reading stops while the client has this much unread output or queued requests. */
static bool conn_input_blocked(const Conn *c) {
        if (c->is_replica)
                return false;
        return conn_output_size(c) >= CONN_OUTPUT_HIGH || c->n_pending >= CONN_PENDING_MAX;
}

static void conn_read(Conn *c);

/* Lines left over, unread bytes (edge-triggered), a READ or the replication stream to go on with. */
static int conn_on_resume(sd_event_source *s, void *userdata) {
        conn_read(userdata);
        return 0;
}

void conn_schedule_resume(Conn *c) {
        int r = 0;

        if (c->dead)
                return;
        if (!c->resume_source)
                r = sd_event_add_defer(c->manager->event, &c->resume_source, conn_on_resume, c);
        if (r >= 0)
                r = sd_event_source_set_enabled(c->resume_source, SD_EVENT_ONESHOT);
        if (r < 0) {
                log_debug_errno(r, "Failed to resume a connection, closing: %m");
                conn_kill(c);
        }
}

static void conn_update_events(Conn *c) {
        bool blocked;
        uint32_t ev = 0;
        int r = 0;

        if (c->dead)
                return;

        /* Unblocked with complete lines already buffered or unread bytes in the socket:
         * no EPOLLIN will announce them (edge-triggered). */
        blocked = conn_input_blocked(c);
        if (c->input_blocked && !blocked && !c->input_done &&
            (line_reader_pending(&c->lr) > 0 || (c->readable && !c->eof))) {
                conn_schedule_resume(c);
                if (c->dead)
                        return;
        }
        c->input_blocked = blocked;

        if (!c->eof && !blocked)
                ev |= EPOLLIN;
        if (conn_output_size(c) > 0)
                ev |= EPOLLOUT;
        if (ev == c->events)
                return;

        r = sd_event_source_set_io_events(c->io, ev | CONN_EPOLL_FLAGS);
        if (r < 0) {
                log_debug_errno(r, "Failed to update connection events, closing: %m");
                conn_kill(c);
                return;
        }
        c->events = ev;
}

void conn_write(Conn *c) {
        int r;

        if (c->dead)
                return;

        /* An authenticated link: only sealed lines go out. */
        r = peer_out_write(&c->out, c->fd, c->auth, NULL);
        if (r < 0) {
                log_debug_errno(r, "Failed to write to connection, closing: %m");
                conn_kill(c);
                return;
        }

        if (c->input_done && !c->head && c->out.buf.len == 0) {
                conn_kill(c);
                return;
        }
        conn_update_events(c);
        if (c->manager->draining)
                conn_drain(c);
}

void conn_drain(Conn *c) {
        if (c->dead || c->is_replica || c->write_shut)
                return;
        /* Not yet heard from (its first request may be on the way), something unanswered, or
         * unread: wait. conn_write() comes back here after each answer. */
        if (!c->got_request || c->head || c->out.buf.len > 0 || line_reader_pending(&c->lr) > 0)
                return;
        if (c->readable && !c->eof) {
                conn_schedule_resume(c);
                return;
        }
        if (c->eof) {
                conn_kill(c);
                return;
        }
        /* FIN after the last answer; what the client still sends is read and dropped until it closes. */
        (void) shutdown(c->fd, SHUT_WR);
        c->write_shut = true;
}

/* Stream a READ. Returns 1 when finished (END written), 0 when the output is full. */
static int conn_stream_read(Conn *c, Pending *p) {
        Manager *m = c->manager;
        int r;

        while (p->count > 0 && p->index <= m->commit_index) {
                LogRecord rec = {};

                if (conn_output_size(c) >= CONN_OUTPUT_HIGH)
                        return 0;
                r = msglog_read(m->log, p->index, &rec);
                if (r < 0) {
                        log_debug_errno(r, "Failed to read index %" PRIu64 ": %m", p->index);
                        break;
                }
                r = reply_msg(&c->out.buf, rec.index, rec.term, rec.payload, rec.payload_len);
                log_record_done(&rec);
                if (r < 0)
                        return r;
                p->index++;
                p->count--;
        }
        r = reply_end(&c->out.buf);
        return r < 0 ? r : 1;
}

void conn_flush(Conn *c) {
        int r;

        if (c->dead)
                return;

        while (c->head) {
                Pending *p = c->head;

                if (p->type == PENDING_READ) {
                        r = conn_stream_read(c, p);
                        if (r < 0) {
                                conn_kill(c);
                                return;
                        }
                        if (r == 0)
                                break;
                } else if (!p->done)
                        break;
                else if (buf_append(&c->out.buf, p->reply.data, p->reply.len) < 0) {
                        conn_kill(c);
                        return;
                }
                conn_pop(c);
        }
        conn_write(c);

        /* The socket took everything and a READ has more: go on after other events,
         * since no EPOLLOUT will come for an empty buffer. */
        if (!c->dead && c->head && c->head->type == PENDING_READ && conn_output_size(c) < CONN_OUTPUT_HIGH)
                conn_schedule_resume(c);
}

void conn_flush_later(Conn *c) {
        Manager *m = c->manager;

        if (c->on_flush_list || c->dead)
                return;
        c->on_flush_list = true;
        c->flush_next = m->flush_list;
        m->flush_list = c;
}

void conn_flush_list_run(Manager *m) {
        while (m->flush_list) {
                Conn *c = m->flush_list;

                m->flush_list = c->flush_next;
                c->flush_next = NULL;
                c->on_flush_list = false;
                conn_flush(c);
        }
}

void pending_finish(Pending *p) {
        Conn *c = p->conn;

        if (p->waiting)
                manager_unwait_write(c->manager, p);
        p->done = true;
        conn_flush_later(c);
}

/* A line of a connection that sent HELLO-AUTH: the PROOF, then sealed lines.
 * 1: consumed, 0: hand the opened line on, < 0: close the connection (logged). */
static int conn_auth_line(Conn *c, char *line, size_t *len) {
        const char *reason = NULL;
        char peer[SOCKADDR_STRLEN];
        int r;

        if (c->auth->state == PEERAUTH_CHALLENGE_SENT) {
                r = peerauth_on_proof(c->auth, line, *len, &reason);
                if (r < 0) {
                        conn_log_auth(c, "Authentication failed for peer %s claiming to be %s: %s; closing the "
                                      "connection.",
                                      conn_peer(c, peer, sizeof(peer)), c->auth->name, reason);
                        return r;
                }
                /* What is queued so far (the CHALLENGE) went out in the clear; the rest is sealed. */
                peer_out_seal_from_here(&c->out);
                log_debug("Peer %s authenticated as %s.", conn_peer(c, peer, sizeof(peer)), c->auth->name);
                return 1;
        }

        r = peerauth_open(c->auth, line, len, &reason);
        if (r < 0) {
                conn_log_auth(c, "Rejecting a line from %s (authenticated as %s): %s; closing the connection.",
                              conn_peer(c, peer, sizeof(peer)), c->auth->name, reason);
                return r;
        }
        return 0;
}

/* Handle the complete lines read so far, at most CONN_LINES_PER_WAKEUP of them: one
 * busy connection must not hold the event loop (heartbeats wait behind a dispatch).
 * Returns true when it stopped at that limit; a defer source continues then. */
static bool conn_process(Conn *c) {
        unsigned n = 0;
        int r;

        while (!c->dead) {
                char *line;
                size_t len;

                if (conn_input_blocked(c)) {
                        /* conn_update_events() resumes us once the client catches up. */
                        c->input_blocked = true;
                        return false;
                }
                if (n++ >= CONN_LINES_PER_WAKEUP && line_reader_pending(&c->lr) > 0) {
                        conn_schedule_resume(c);
                        return true;
                }

                r = line_reader_next(&c->lr, &line, &len);
                if (r == 0) {
                        /* What is left can never become a line. */
                        if (c->eof)
                                c->input_done = true;
                        break;
                }
                if (c->write_shut)
                        continue;   /* draining: answered and shut for writing; dropped */
                if (r == -E2BIG) {
                        Buf *b;

                        if (c->is_replica) {
                                log_warning("Replica %s sent an over-long line, dropping the link.",
                                            c->replica_name);
                                conn_kill(c);
                                return false;
                        }
                        b = conn_reply_buf(c);
                        r = b ? reply_err(b, ERRC_TOOLONG, "line longer than %zu bytes", c->lr.max_line)
                              : -ENOMEM;
                } else if (r > 0) {
                        r = c->auth ? conn_auth_line(c, line, &len) : 0;
                        if (r == 0)
                                r = c->is_replica ? replica_handle_line(c, line, len)
                                                  : request_handle(c, line, len);
                }
                if (r < 0) {
                        log_debug_errno(r, "Closing connection: %m");
                        conn_kill(c);
                        return false;
                }
        }
        return false;
}

/* The socket is edge-triggered (EPOLLET): an EPOLLIN comes once per arrival, not
 * on every epoll_wait() while bytes are unread, so a loop with many ready
 * connections does not re-poll all of them for every event it dispatches. Hence
 * read until the socket is drained (c->readable), at most CONN_READS_PER_WAKEUP
 * times; what is left goes on from the defer source like left-over lines. */
static void conn_read(Conn *c) {
        unsigned reads = 0;
        bool more;
        int r;

        /* Lines left from the last wakeup first; at the limit the defer source goes on (no read now). */
        more = conn_process(c);
        if (c->dead)
                return;
        while (!more && c->readable && !conn_input_blocked(c) && !c->eof) {
                if (reads++ >= CONN_READS_PER_WAKEUP) {
                        conn_schedule_resume(c);
                        break;
                }
                r = line_reader_fill(&c->lr, c->fd);
                if (r == 0 && c->is_replica) {
                        conn_kill(c);
                        return;
                }
                if (r == 0)
                        c->eof = true;
                else if (r < 0 && r != -EAGAIN && r != -ENOBUFS && r != -EINTR) {
                        log_debug_errno(r, "Failed to read from connection, closing: %m");
                        conn_kill(c);
                        return;
                }
                /* A short read means no more bytes for now, but a FIN may have come with them
                 * (its edge already taken): after EPOLLRDHUP only EOF or EAGAIN ends it. */
                if (r == -EAGAIN || (r > 0 && c->lr.drained && !c->rdhup))
                        c->readable = false;
                if (r > 0 && c->is_replica)
                        c->last_input = now_usec();
                more = conn_process(c);
                if (c->dead)
                        return;
        }
        if (c->is_replica)
                replica_pump(c);
        else
                conn_flush(c);
}

static int conn_on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Conn *c = userdata;

        if (revents & EPOLLOUT) {
                conn_write(c);
                if (c->dead)
                        return 0;
                /* room again: continue a READ or the replication stream */
                if (c->is_replica)
                        replica_pump(c);
                else if (c->head)
                        conn_flush(c);
        }
        if (c->dead)
                return 0;
        if (revents & EPOLLRDHUP)
                c->rdhup = true;
        if (revents & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
                c->readable = true;
                if (c->events & EPOLLIN)
                        conn_read(c);
                else if (revents & (EPOLLHUP | EPOLLERR))
                        conn_kill(c);
        }
        return 0;
}

static int conn_new(Manager *m, int fd, bool reserve) {
        Conn *c;
        int r;

        c = calloc(1, sizeof(Conn));
        if (!c)
                return -ENOMEM;
        c->manager = m;
        c->fd = fd;
        c->accepted = now_usec();
        c->is_unix = m->listen_is_unix;

        r = line_reader_init(&c->lr, request_line_max(m->config->max_message_bytes));
        if (r < 0) {
                c->fd = -1;
                conn_free(c);
                return r;
        }
        r = sd_event_add_io(m->event, &c->io, fd, EPOLLIN | CONN_EPOLL_FLAGS, conn_on_io, c);
        if (r < 0) {
                c->fd = -1;
                conn_free(c);
                return r;
        }
        c->events = EPOLLIN;
        c->readable = true;     /* bytes may have come before we watched the socket */

        c->next = m->conns;
        if (m->conns)
                m->conns->prev = c;
        m->conns = c;
        m->n_conns++;
        if (reserve) {
                c->reserve = true;
                m->n_reserve++;
        }
        return 0;
}

/* Room for a new connection? 1: as a client; 0: in the reserve for replication links
 * (max_clients reached); -EBUSY: none. Replication links do not count against
 * max_clients (there is at most one per configured server). When the reserve is full,
 * its oldest connection that has not even started HELLO-AUTH (or AUTH, or SYNC) is
 * closed, so that a flood of idle or junk connections cannot lock a backup out; one
 * that is authenticating is left to finish (CONN_HANDSHAKE_USEC at most). */
static int conn_slot(Manager *m) {
        size_t clients = m->n_conns - m->n_replicas - m->n_reserve;
        size_t reserve_max = MAX((size_t) CONN_RESERVE_MIN, m->config->n_servers);
        Conn *oldest = NULL;

        if (clients < m->config->max_clients)
                return 1;
        if (m->n_reserve < reserve_max)
                return 0;
        for (Conn *o = m->conns; o; o = o->next)
                if (o->reserve && !o->auth && !o->got_request && (!oldest || o->accepted < oldest->accepted))
                        oldest = o;
        if (!oldest)
                return -EBUSY;
        log_debug("Reserve connections full, closing the oldest.");
        conn_kill(oldest);
        return 0;
}

void conns_tick(Manager *m) {
        usec_t now = now_usec();

        for (Conn *c = m->conns, *next; c; c = next) {
                next = c->next;
                if (c->is_replica)
                        continue;
                if (c->auth && !peerauth_established(c->auth) && now > c->accepted + CONN_HANDSHAKE_USEC)
                        conn_kill(c);   /* logged there */
                else if (c->reserve && now > c->accepted + CONN_HANDSHAKE_USEC) {
                        log_debug("Closing a connection accepted past max_clients that did not start replication.");
                        conn_kill(c);
                } else if (!c->got_request && now > c->accepted + CONN_FIRST_LINE_USEC) {
                        log_debug("Closing a connection that sent no request in %" PRIu64 " s.",
                                  CONN_FIRST_LINE_USEC / USEC_PER_SEC);
                        conn_kill(c);
                }
        }
}

static void conn_refuse_busy(int fd) {
        _cleanup_(buf_done) Buf b = {};
        char scratch[4096];

        if (reply_err(&b, ERRC_BUSY, "too many connections") >= 0)
                (void) send(fd, b.data, b.len, MSG_NOSIGNAL | MSG_DONTWAIT);
        /* Drain what the client already sent so that close() does not reset the connection. */
        for (unsigned i = 0; i < 16; i++)
                if (recv(fd, scratch, sizeof(scratch), MSG_DONTWAIT) <= 0)
                        break;
        (void) shutdown(fd, SHUT_WR);
        safe_close(fd);
}

/* The connection went away before accept() took it: try the next one. */
static bool accept_error_is_transient(int error) {
        return error == EINTR || error == ECONNABORTED || error == EPROTO || error == EPERM;
}

static int listen_on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        (void) sd_event_source_set_enabled(m->listen_source, SD_EVENT_ON);
        return 0;
}

static void listen_pause(Manager *m, int error) {
        int r;

        log_warning_errno(error, "Failed to accept a connection, pausing for 100 ms: %m");
        (void) sd_event_source_set_enabled(m->listen_source, SD_EVENT_OFF);
        if (!m->accept_retry_timer)
                r = sd_event_add_time_relative(m->event, &m->accept_retry_timer, CLOCK_MONOTONIC,
                                               ACCEPT_RETRY_USEC, TIMER_ACCURACY_USEC, listen_on_retry, m);
        else
                r = sd_event_source_set_time_relative(m->accept_retry_timer, ACCEPT_RETRY_USEC);
        if (r >= 0)
                r = sd_event_source_set_enabled(m->accept_retry_timer, SD_EVENT_ONESHOT);
        if (r < 0)
                (void) sd_event_source_set_enabled(m->listen_source, SD_EVENT_ON);
}

static int listen_on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Manager *m = userdata;
        static const int one = 1;
        int r, slot;

        for (unsigned i = 0; i < ACCEPT_BATCH; i++) {
                int cfd;

                cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (cfd < 0) {
                        if (accept_error_is_transient(errno))
                                continue;
                        if (errno != EAGAIN)
                                listen_pause(m, errno);
                        return 0;
                }

                slot = conn_slot(m);
                if (slot < 0) {
                        conn_refuse_busy(cfd);
                        continue;
                }
                if (!m->listen_is_unix)
                        (void) setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                r = conn_new(m, cfd, slot == 0);
                if (r < 0) {
                        safe_close(cfd);
                        log_warning_errno(r, "Failed to set up a client connection, ignoring: %m");
                }
        }
        return 0;
}

int conn_listen_start(Manager *m) {
        SockAddr a = { .len = sizeof(a.storage) };

        m->listen_is_unix = getsockname(m->listen_fd, &a.sa, &a.len) >= 0 && a.sa.sa_family == AF_UNIX;
        return sd_event_add_io(m->event, &m->listen_source, m->listen_fd, EPOLLIN, listen_on_io, m);
}

void conn_listen_stop(Manager *m) {
        m->listen_source = sd_event_source_disable_unref(m->listen_source);
        m->accept_retry_timer = sd_event_source_disable_unref(m->accept_retry_timer);
}
