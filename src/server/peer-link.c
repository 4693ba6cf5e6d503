/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * peer-link — the event-loop side of the server's outgoing connections (see
 * peer-link.h).
 */
#include <errno.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "macro.h"
#include "peer-link.h"
#include "server-manager.h"
#include "server-util.h"

void peer_link_init(PeerLink *p, sd_event *event, const PeerLinkOps *ops, void *userdata) {
        *p = (PeerLink){
                .event = event,
                .ops = ops,
                .userdata = userdata,
                .fd = -1,
        };
}

void peer_link_set_priority(PeerLink *p, int64_t priority) {
        p->priority = priority;
        if (p->io)
                (void) sd_event_source_set_priority(p->io, priority);
        if (p->retry_timer)
                (void) sd_event_source_set_priority(p->retry_timer, priority);
}

void peer_link_close(PeerLink *p) {
        p->io = sd_event_source_disable_unref(p->io);
        p->fd = safe_close(p->fd);
        p->connecting = false;
        peer_out_clear(&p->out);
        peerauth_done(&p->auth);
}

void peer_link_done(PeerLink *p) {
        peer_link_close(p);
        p->retry_timer = sd_event_source_disable_unref(p->retry_timer);
        line_reader_done(&p->lr);
        peer_out_done(&p->out);
}

int peer_link_reset(PeerLink *p, size_t max_line) {
        peer_link_close(p);
        line_reader_done(&p->lr);
        return line_reader_init(&p->lr, max_line);
}

static int peer_link_on_connected(PeerLink *p) {
        int error = 0;
        socklen_t len = sizeof(error);

        if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &error, &len) < 0)
                error = errno;
        p->connecting = false;
        p->ops->connected(p->userdata, error);
        return 0;
}

/* Read once, then hand every complete line to the owner. */
static void peer_link_read(PeerLink *p) {
        const char *reason = NULL;
        char *line = NULL;
        size_t len = 0;
        int r;

        r = peer_read(&p->lr, p->fd);
        if (r == 0) {
                p->ops->fail(p->userdata, 0, "connection closed");
                return;
        }
        if (r < 0 && r != -EAGAIN) {
                p->ops->fail(p->userdata, r, "read failed");
                return;
        }
        if (r > 0)
                p->last_input = now_usec();

        while ((r = peer_read_line(&p->lr, &p->auth, &line, &len, &reason)) != 0)
                /* Stop when the owner says so or dropped the connection. */
                if (p->ops->line(p->userdata, r, line, len, reason) < 0 || p->fd < 0)
                        return;
        if (p->ops->read_done)
                p->ops->read_done(p->userdata);
}

static int peer_link_on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        PeerLink *p = userdata;

        if (p->connecting)
                return peer_link_on_connected(p);
        if (revents & EPOLLOUT) {
                (void) peer_link_write(p);
                if (p->fd < 0)
                        return 0;
        }
        if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR))
                peer_link_read(p);
        return 0;
}

int peer_link_watch(PeerLink *p, int fd) {
        int r;

        p->fd = fd;
        r = sd_event_add_io(p->event, &p->io, p->fd, EPOLLOUT, peer_link_on_io, p);
        if (r >= 0)
                r = sd_event_source_set_priority(p->io, p->priority);
        if (r < 0)
                return r;
        p->connecting = true;
        return 0;
}

static int peer_link_on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        PeerLink *p = userdata;

        p->ops->retry(p->userdata);
        return 0;
}

int peer_link_schedule_retry(PeerLink *p) {
        int r;

        p->backoff = backoff_next(p->backoff);
        if (!p->retry_timer) {
                r = sd_event_add_time_relative(p->event, &p->retry_timer, CLOCK_MONOTONIC, p->backoff,
                                               TIMER_ACCURACY_USEC, peer_link_on_retry, p);
                if (r >= 0)
                        r = sd_event_source_set_priority(p->retry_timer, p->priority);
        }
        else
                r = sd_event_source_set_time_relative(p->retry_timer, p->backoff);
        if (r < 0)
                return r;
        return sd_event_source_set_enabled(p->retry_timer, SD_EVENT_ONESHOT);
}

int peer_link_write(PeerLink *p) {
        const char *what = NULL;
        int r;

        r = peer_out_write(&p->out, p->fd, &p->auth, &what);
        if (r >= 0) {
                what = "cannot watch the connection";
                r = sd_event_source_set_io_events(p->io, EPOLLIN | (p->out.buf.len > 0 ? EPOLLOUT : 0));
        }
        if (r < 0) {
                p->ops->fail(p->userdata, r, what);
                return r;
        }
        return 0;
}
