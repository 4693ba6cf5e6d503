/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * client-api — WHO, SUBSCRIBE, STATUS and PROMOTE on the monitor's client
 * endpoint (see client-api.h). A bad request gets "ERR BADCMD ..." and the
 * connection stays open; replies go out in request order (a client's requests
 * after a PROMOTE wait until the PROMOTE is answered). Clients are only ever
 * freed from their own callbacks.
 */
#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "client-api.h"
#include "monitor-bus.h"
#include "failover.h"
#include "log.h"
#include "protocol.h"

static int client_update_events(ClientConn *c) {
        uint32_t events = (c->pending || c->eof ? 0 : EPOLLIN) | (c->out.len > 0 ? EPOLLOUT : 0);

        return sd_event_source_set_io_events(c->io, events);
}

/* Write what can be written. -ENOBUFS past the bound, other -errno on a dead peer. */
static int client_flush(ClientConn *c) {
        while (c->out.len > 0) {
                ssize_t n = send(c->fd, c->out.data, c->out.len, MSG_DONTWAIT | MSG_NOSIGNAL);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                break;
                        return negative_errno();
                }
                buf_consume(&c->out, (size_t) n);
        }
        if (c->out.len > CLIENT_OUTPUT_MAX)
                return -ENOBUFS;
        return client_update_events(c);
}

static int client_on_defer(sd_event_source *s, void *userdata);

/* Finish work outside of the caller's stack (flush, free, resume after PROMOTE). */
static void client_schedule(ClientConn *c) {
        int r;

        if (!c->defer)
                r = sd_event_add_defer(c->manager->event, &c->defer, client_on_defer, c);
        else
                r = 0;
        if (r >= 0)
                r = sd_event_source_set_enabled(c->defer, SD_EVENT_ONESHOT);
        if (r < 0)
                log_warning_errno(r, "Failed to schedule client work, ignoring: %m");
}

static int status_line(Manager *m, const Peer *p, usec_t now, Buf *b) {
        char age[32] = "-", unit_state[96];
        int r;

        if (p->last_heartbeat > 0)
                snprintf(age, sizeof age, "%" PRIu64, (now - MIN(now, p->last_heartbeat)) / USEC_PER_MSEC);

        r = buf_printf(b,
                       "SERVER name=%s role=%s state=%s term=%" PRIu64 " index=%" PRIu64 " commit=%" PRIu64
                       " age_ms=%s unit=%s pid=%" PRIu64 " address=%s",
                       p->config->name, p->seen ? role_to_string(p->role) : "-",
                       peer_health_to_string(manager_peer_health(m, p, now)), p->term, p->index, p->commit, age,
                       p->config->unit, p->conn ? p->pid : (uint64_t) 0, p->config->address);
        /* ActiveState/SubState of the server's unit, when systemd told us */
        if (r >= 0 && monitor_bus_unit_state(p, unit_state, sizeof unit_state) > 0)
                r = buf_printf(b, " unit_state=%s", unit_state);
        if (r >= 0)
                r = buf_append_str(b, "\n");
        return r;
}

static int client_process_line(ClientConn *c, char *line, size_t len) {
        Manager *m = c->manager;
        const char *reason = NULL;
        MonRequest req;
        usec_t now;
        int r;

        r = mon_request_parse(line, len, &req, &reason);
        if (r < 0)
                return reply_err(&c->out, ERRC_BADCMD, "%s", reason ?: "bad request");

        switch (req.type) {
        case MONREQ_WHO:
                return manager_who(m, &c->out);
        case MONREQ_SUBSCRIBE:
                c->subscribed = true;
                return manager_who(m, &c->out);
        case MONREQ_STATUS:
                now = now_usec();
                for (size_t i = 0; i < m->n_peers; i++) {
                        r = status_line(m, m->peers + i, now, &c->out);
                        if (r < 0)
                                return r;
                }
                return reply_end(&c->out);
        case MONREQ_PROMOTE:
                r = failover_switchover(m, c, req.name, &c->out);
                if (r > 0)
                        c->pending = true;
                return r;
        default:
                return reply_err(&c->out, ERRC_BADCMD, "unknown command");
        }
}

/* Answer complete buffered lines until a PROMOTE holds the rest. */
static int client_process_input(ClientConn *c) {
        while (!c->pending) {
                char *line;
                size_t len;
                int r;

                r = line_reader_next(&c->reader, &line, &len);
                if (r != 0)
                        c->spoke = true;
                if (r == -E2BIG)
                        r = reply_err(&c->out, ERRC_TOOLONG, "request longer than %d bytes", CLIENT_LINE_MAX);
                else if (r > 0)
                        r = client_process_line(c, line, len);
                else if (r == 0)
                        break;
                if (r < 0)
                        return r;
        }
        return client_flush(c);
}

static int client_on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        ClientConn *c = userdata;
        int r = 0;

        if (revents & EPOLLOUT) {
                r = client_flush(c);
                if (r < 0)
                        goto drop;
        }

        if (c->pending || c->eof) {
                /* Not reading now: only a hang-up, or the last reply written after EOF, matters. */
                if (revents & (EPOLLHUP | EPOLLERR))
                        goto drop;
                if (c->eof && !c->pending && c->out.len == 0)
                        goto drop;
                return 0;
        }
        if (!(revents & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                return 0;

        for (unsigned reads = 0; reads < 16 && !c->pending; reads++) {
                r = line_reader_fill(&c->reader, fd);
                if (r == -EAGAIN)
                        break;
                if (r == 0 || (r < 0 && r != -ENOBUFS)) {
                        /* Answer what was complete, then close once it is written. */
                        c->eof = true;
                        r = client_process_input(c);
                        if (r < 0 || (c->out.len == 0 && !c->pending))
                                goto drop;
                        return 0;
                }
                r = client_process_input(c);
                if (r < 0)
                        goto drop;
        }
        return 0;

drop:
        if (r == -ENOBUFS)
                log_info("Dropping a client of the monitor API that does not read its replies.");
        client_conn_free(c);
        return 0;
}

static int client_on_defer(sd_event_source *s, void *userdata) {
        ClientConn *c = userdata;
        int r;

        r = client_process_input(c);
        if (r < 0 || (c->eof && c->out.len == 0 && !c->pending)) {
                if (r == -ENOBUFS)
                        log_info("Dropping a subscriber of the monitor API that does not read.");
                client_conn_free(c);
        }
        return 0;
}

void client_broadcast(Manager *m, const char *line) {
        for (ClientConn *c = m->clients; c; c = c->next) {
                if (!c->subscribed)
                        continue;
                if (buf_append_str(&c->out, line) < 0 || client_flush(c) < 0)
                        client_schedule(c);   /* dropped from its own callback */
        }
}

void client_promote_done(ClientConn *c, const char *line) {
        c->pending = false;
        if (buf_append_str(&c->out, line) < 0)
                log_oom();
        client_schedule(c);
}

/* At max_clients: close the oldest connection that never sent a complete line (idle or
 * slowloris), so that a flood of them cannot keep WHO from real clients. Returns
 * whether one was closed. */
static bool client_evict_idle(Manager *m) {
        ClientConn *oldest = NULL;

        for (ClientConn *c = m->clients; c; c = c->next)
                if (!c->spoke && !c->pending && (!oldest || c->accepted < oldest->accepted))
                        oldest = c;
        if (!oldest)
                return false;
        client_conn_free(oldest);
        return true;
}

int client_conn_new(Manager *m, int fd) {
        static RateLimit busy_log = RATELIMIT_INIT(10 * USEC_PER_SEC, 1);
        ClientConn *c;
        int r;

        if (m->n_clients >= m->config->max_clients && !client_evict_idle(m)) {
                if (ratelimit_pass(&busy_log, now_usec(), NULL))
                        log_warning("Too many client API connections (%zu), refusing new ones.", m->n_clients);
                safe_close(fd);
                return -EMFILE;
        }

        c = calloc(1, sizeof *c);
        if (!c) {
                safe_close(fd);
                return log_oom();
        }
        *c = (ClientConn) { .manager = m, .fd = fd, .accepted = now_usec() };

        r = line_reader_init(&c->reader, CLIENT_LINE_MAX);
        if (r >= 0)
                r = sd_event_add_io(m->event, &c->io, fd, EPOLLIN, client_on_io, c);
        if (r < 0) {
                log_warning_errno(r, "Failed to set up a client API connection, closing it: %m");
                line_reader_done(&c->reader);
                sd_event_source_disable_unref(c->io);
                safe_close(fd);
                free(c);
                return r;
        }

        c->next = m->clients;
        if (c->next)
                c->next->prev = c;
        m->clients = c;
        m->n_clients++;
        return 0;
}

ClientConn *client_conn_free(ClientConn *c) {
        Manager *m;

        if (!c)
                return NULL;
        m = c->manager;

        failover_client_gone(m, c);
        if (c->prev)
                c->prev->next = c->next;
        else
                m->clients = c->next;
        if (c->next)
                c->next->prev = c->prev;
        m->n_clients--;

        sd_event_source_disable_unref(c->io);
        sd_event_source_disable_unref(c->defer);
        safe_close(c->fd);
        line_reader_done(&c->reader);
        buf_done(&c->out);
        free(c);
        return NULL;
}
