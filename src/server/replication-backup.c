/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * replication-backup — the backup's side of replication (see
 * replication-backup.h and doc/internals.md). Over TCP (when [cluster] auth
 * applies) the link first proves the cluster key (HELLO-AUTH, CHALLENGE,
 * PROOF; doc/security.md) and every line after that is sealed both ways.
 */
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "linereader.h"
#include "log.h"
#include "msglog.h"
#include "protocol.h"
#include "replication-backup.h"
#include "server-util.h"

typedef enum LinkState {
        LINK_WAITING,     /* retry timer armed */
        LINK_CONNECTING,
        LINK_AUTHENTICATING, /* HELLO-AUTH sent, waiting for CHALLENGE */
        LINK_SYNCING,     /* SYNC sent, waiting for SYNCED */
        LINK_STREAMING,
} LinkState;

struct BackupLink {
        Manager *manager;
        char *primary;
        char *address;
        uint64_t term;
        SockAddr addr;

        LinkState state;
        int fd;
        sd_event_source *io;
        sd_event_source *retry_timer;
        usec_t backoff;
        unsigned failures;
        usec_t last_input;      /* or when the connection attempt started */

        LineReader lr;
        Buf out;
        size_t out_pos;
        uint64_t primary_commit;

        PeerAuth auth;
        size_t sealed;          /* out is sealed up to here (auth established) */
        bool expect_token_ok;   /* AUTH <client token> sent before SYNC: skip its OK */
};

static void link_connect(BackupLink *l);

static void link_close(BackupLink *l) {
        l->io = sd_event_source_disable_unref(l->io);
        l->fd = safe_close(l->fd);
        buf_clear(&l->out);
        l->out_pos = 0;
        l->sealed = 0;
        l->expect_token_ok = false;
        peerauth_done(&l->auth);
}

/* Authentication problems are warnings, but at most a few per interval (rate-limited):
 * the link retries every 500 ms. */
static void link_log_auth(BackupLink *l, const char *what) {
        unsigned suppressed = 0;

        if (!ratelimit_pass(&l->manager->auth_log, now_usec(), &suppressed))
                return;
        log_warning("Replication from %s at %s: %s.%s", l->primary, l->address, what,
                    suppressed > 0 ? " (similar messages suppressed)" : "");
}

static int link_on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        link_connect(userdata);
        return 0;
}

static void link_schedule_retry(BackupLink *l) {
        Manager *m = l->manager;
        int r;

        l->state = LINK_WAITING;
        l->backoff = backoff_next(l->backoff);
        if (!l->retry_timer)
                r = sd_event_add_time_relative(m->event, &l->retry_timer, CLOCK_MONOTONIC, l->backoff,
                                               TIMER_ACCURACY_USEC, link_on_retry, l);
        else
                r = sd_event_source_set_time_relative(l->retry_timer, l->backoff);
        if (r >= 0)
                r = sd_event_source_set_enabled(l->retry_timer, SD_EVENT_ONESHOT);
        if (r < 0)
                manager_fail(m, r, "arm the replication retry timer");
}

/* Drop the connection and try again later. */
static void link_fail(BackupLink *l, int error, const char *fmt, ...) _printf_(3, 4);
static void link_fail(BackupLink *l, int error, const char *fmt, ...) {
        char msg[256];
        va_list ap;

        if (error != 0)
                errno = abs(error);   /* for %m */
        va_start(ap, fmt);
        (void) vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);

        /* The first failure in a row is news; the retries are not. */
        log_full_errno(l->failures == 0 ? LOG_INFO : LOG_DEBUG, error,
                       "Replication from %s at %s: %s, retrying.", l->primary, l->address, msg);
        l->failures++;
        link_close(l);
        link_schedule_retry(l);
}

static void link_write(BackupLink *l) {
        size_t limit = l->out.len;
        int r;

        if (peerauth_established(&l->auth)) {
                if (l->sealed < l->out.len &&
                    peerauth_seal(&l->auth, &l->out, MAX(l->sealed, l->out_pos), &l->sealed) < 0) {
                        link_fail(l, -ENOMEM, "cannot seal a line");
                        return;
                }
                limit = l->sealed;
        }

        while (l->out_pos < limit) {
                ssize_t n;

                n = send(l->fd, l->out.data + l->out_pos, limit - l->out_pos, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                break;
                        link_fail(l, errno, "write failed: %m");
                        return;
                }
                l->out_pos += (size_t) n;
        }
        if (l->out_pos == l->out.len) {
                buf_clear(&l->out);
                l->out_pos = 0;
                l->sealed = 0;
        }
        r = sd_event_source_set_io_events(l->io, EPOLLIN | (l->out.len > 0 ? EPOLLOUT : 0));
        if (r < 0)
                link_fail(l, r, "cannot watch the connection");
}

static uint64_t link_durable_index(const BackupLink *l) {
        return manager_durable_index(l->manager);
}

static int link_send_ack(BackupLink *l) {
        ReplMessage ack = {
                .type = REPL_ACK,
                .index = link_durable_index(l),
        };

        return repl_message_format(&ack, &l->out);
}

static int link_send_sync(BackupLink *l) {
        Manager *m = l->manager;
        const LogSegment *segments;
        ReplMessage sync = {
                .type = REPL_SYNC,
                .term = l->term,
                .index = msglog_last_index(m->log),
        };
        size_t n;

        n = msglog_segments(m->log, &segments);
        n = segments_newest(segments, n, REPL_SEGMENTS_MAX, &segments);
        for (size_t i = 0; i < n; i++)
                sync.segments[i] = (LogSegment){ .term = segments[i].term, .first = segments[i].first };
        sync.n_segments = n;
        (void) snprintf(sync.name, sizeof(sync.name), "%s", m->self->name);
        return repl_message_format(&sync, &l->out);
}

static int link_on_synced(BackupLink *l, const ReplMessage *msg) {
        Manager *m = l->manager;
        uint64_t last = msglog_last_index(m->log);
        int r;

        if (msg->term != l->term) {
                (void) manager_observe_term(m, msg->term, l->primary);
                link_fail(l, 0, "primary is in term %" PRIu64 ", not %" PRIu64, msg->term, l->term);
                return -ESTALE;
        }
        if (msg->index > last) {
                link_fail(l, 0, "SYNCED %" PRIu64 " beyond my last index %" PRIu64, msg->index, last);
                return -EBADMSG;
        }
        if (msg->index < last) {
                log_notice("Log diverged from primary %s after index %" PRIu64 ": dropping %" PRIu64
                           " entries (last index %" PRIu64 ").",
                           l->primary, msg->index, last - msg->index, last);
                r = msglog_truncate_after(m->log, msg->index);
                if (r < 0) {
                        manager_fail(m, r, "truncate the message log");
                        return r;
                }
                if (m->commit_index > msg->index) {
                        log_warning("Commit index %" PRIu64 " was beyond the match with the primary (%" PRIu64
                                    "), lowering it.",
                                    m->commit_index, msg->index);
                        m->commit_index = msg->index;
                }
        }

        log_info("Replicating from %s at %s in term %" PRIu64 " from index %" PRIu64 ".", l->primary,
                 l->address, l->term, msg->index + 1);
        l->state = LINK_STREAMING;
        l->backoff = 0;
        l->failures = 0;
        l->primary_commit = msg->commit;
        return 1;
}

static int link_on_entry(BackupLink *l, const ReplMessage *msg) {
        Manager *m = l->manager;
        uint64_t last = msglog_last_index(m->log);
        uint8_t flags = 0;
        int r;

        if (msg->index != last + 1) {
                link_fail(l, 0, "ENTRY %" PRIu64 " does not follow my last index %" PRIu64, msg->index, last);
                return -EBADMSG;
        }
        if (msg->term > l->term || msg->term < msglog_last_term(m->log)) {
                link_fail(l, 0, "ENTRY %" PRIu64 " has an impossible term %" PRIu64, msg->index, msg->term);
                return -EBADMSG;
        }
        if (!msg->msgid && msg->payload_len == 0)
                flags |= MSGLOG_FLAG_TERM_START;

        r = msglog_append(m->log, msg->index, msg->term, flags, msg->msgid, msg->msgid_len, msg->payload,
                          msg->payload_len);
        if (r == -EEXIST) {
                link_fail(l, r, "ENTRY %" PRIu64 " repeats a stored msgid", msg->index);
                return r;
        }
        if (r < 0) {
                manager_fail(m, r, "append to the message log");
                return r;
        }
        l->primary_commit = MAX(l->primary_commit, msg->commit);
        return 1;
}

/* The CHALLENGE: check that the primary holds the cluster key, answer PROOF, then SYNC (sealed). */
static int link_on_challenge(BackupLink *l, char *line, size_t len) {
        const char *reason = NULL;
        char what[256];
        int r;

        r = peerauth_on_challenge(&l->auth, line, len, &l->out, &reason);
        if (r < 0) {
                snprintf(what, sizeof(what), "authentication failed: %s", reason);
                link_log_auth(l, what);
                link_fail(l, 0, "authentication failed");
                return r;
        }
        /* The PROOF goes out in the clear; everything after it is sealed. */
        l->sealed = l->out.len;
        r = link_send_sync(l);
        if (r < 0) {
                link_fail(l, r, "cannot queue SYNC");
                return r;
        }
        l->state = LINK_SYNCING;
        link_write(l);
        return l->fd < 0 ? -EPIPE : 1;
}

/* Handle one line. > 0: handled; 0: ignored; < 0: the link was dropped. */
static int link_handle_line(BackupLink *l, char *line, size_t len, bool *appended, bool *ack) {
        Manager *m = l->manager;
        const char *reason = NULL;
        ReplMessage msg = {};
        int r;

        if (peerauth_established(&l->auth)) {
                r = peerauth_open(&l->auth, line, &len, &reason);
                if (r < 0) {
                        char what[256];

                        snprintf(what, sizeof(what), "rejecting a line: %s", reason);
                        link_log_auth(l, what);
                        link_fail(l, r, "bad authentication tag");
                        return r;
                }
        }

        if (m->term > l->term) {
                /* A newer term is known: this primary is not the one to follow any more. */
                link_fail(l, 0, "term %" PRIu64 " is over", l->term);
                return -ESTALE;
        }
        if (len >= 4 && memcmp(line, "ERR ", 4) == 0) {
                if (len >= 8 && memcmp(line, "ERR AUTH", 8) == 0)
                        link_log_auth(l, line);
                link_fail(l, 0, "refused: %s", line + 4);
                return -ECONNREFUSED;
        }
        if (l->state == LINK_AUTHENTICATING)
                return link_on_challenge(l, line, len);
        if (l->state == LINK_SYNCING && l->expect_token_ok && streq(line, "OK")) {
                l->expect_token_ok = false;
                return 0;
        }

        r = repl_message_parse(line, len, m->config->max_message_bytes, &msg, &reason);
        if (r < 0) {
                link_fail(l, r, "bad line from the primary (%s)", reason ?: "unparsable");
                return r;
        }

        if (l->state == LINK_SYNCING) {
                if (msg.type != REPL_SYNCED) {
                        link_fail(l, 0, "expected SYNCED");
                        return -EBADMSG;
                }
                r = link_on_synced(l, &msg);
                if (r > 0)
                        *ack = true;
                return r;
        }

        switch (msg.type) {
        case REPL_ENTRY:
                r = link_on_entry(l, &msg);
                if (r > 0)
                        *appended = true;
                return r;
        case REPL_COMMIT:
                l->primary_commit = MAX(l->primary_commit, msg.commit);
                return 1;
        default:
                link_fail(l, 0, "unexpected %s line", line);
                return -EBADMSG;
        }
}

static void link_read(BackupLink *l) {
        Manager *m = l->manager;
        bool appended = false, ack = false;
        int r;

        r = line_reader_fill(&l->lr, l->fd);
        if (r == 0) {
                link_fail(l, 0, "primary closed the connection");
                return;
        }
        if (r < 0 && r != -EAGAIN && r != -ENOBUFS && r != -EINTR) {
                link_fail(l, r, "read failed: %m");
                return;
        }
        if (r > 0)
                l->last_input = now_usec();

        for (;;) {
                char *line;
                size_t len;

                r = line_reader_next(&l->lr, &line, &len);
                if (r == 0)
                        break;
                if (r == -E2BIG) {
                        link_fail(l, r, "over-long line from the primary");
                        return;
                }
                if (r < 0)
                        return;
                r = link_handle_line(l, line, len, &appended, &ack);
                if (r < 0)
                        return;
        }

        /* Group commit: one sync for everything this read brought. */
        if (appended && m->config->fsync == FSYNC_ALWAYS) {
                r = msglog_sync(m->log);
                if (r < 0) {
                        manager_fail(m, r, "sync the message log");
                        return;
                }
        }
        manager_set_commit(m, l->primary_commit);
        if (appended)
                log_debug("Replicated up to %" PRIu64 ", primary commit %" PRIu64 ", commit %" PRIu64 ".",
                          msglog_last_index(m->log), l->primary_commit, m->commit_index);
        if (!appended && !ack)
                return;
        if (link_send_ack(l) < 0) {
                link_fail(l, -ENOMEM, "cannot queue ACK");
                return;
        }
        link_write(l);
}

static void link_on_connected(BackupLink *l) {
        Manager *m = l->manager;
        int error = 0, r;
        socklen_t len = sizeof(error);

        if (getsockopt(l->fd, SOL_SOCKET, SO_ERROR, &error, &len) < 0)
                error = errno;
        if (error != 0) {
                link_fail(l, error, "cannot connect: %m");
                return;
        }

        l->last_input = now_usec();
        if (config_auth_applies(m->config, sockaddr_is_unix(&l->addr))) {
                if (!m->authkey.set) {
                        link_fail(l, -ENOKEY, "no cluster key loaded");
                        return;
                }
                r = peerauth_hello(&l->auth, &m->authkey, m->self->name, &l->out);
                if (r < 0) {
                        link_fail(l, r, "cannot queue HELLO-AUTH");
                        return;
                }
                l->state = LINK_AUTHENTICATING;
                link_write(l);
                return;
        }

        /* A link that does not use the cluster key shows the client token, when one is set. */
        if (m->client_token) {
                r = buf_printf(&l->out, "AUTH %s\n", m->client_token);
                if (r < 0) {
                        link_fail(l, r, "cannot queue AUTH");
                        return;
                }
                l->expect_token_ok = true;
        }
        r = link_send_sync(l);
        if (r < 0) {
                link_fail(l, r, "cannot queue SYNC");
                return;
        }
        l->state = LINK_SYNCING;
        link_write(l);
}

static int link_on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        BackupLink *l = userdata;

        if (l->state == LINK_CONNECTING) {
                link_on_connected(l);
                return 0;
        }
        if (revents & EPOLLOUT) {
                link_write(l);
                if (l->fd < 0)
                        return 0;
        }
        if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR))
                link_read(l);
        return 0;
}

static void link_connect(BackupLink *l) {
        Manager *m = l->manager;
        static const int one = 1;
        int r;

        link_close(l);
        l->last_input = now_usec();

        /* A fresh reader: nothing of the previous connection may leak into this one. */
        line_reader_done(&l->lr);
        r = line_reader_init(&l->lr, replication_line_max(m->config->max_message_bytes) + PEERAUTH_LINE_OVERHEAD);
        if (r < 0) {
                link_fail(l, r, "cannot allocate a line buffer");
                return;
        }

        r = socket_connect(&l->addr);
        if (r < 0) {
                link_fail(l, r, "cannot connect: %m");
                return;
        }
        l->fd = r;
        (void) setsockopt(l->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

        r = sd_event_add_io(m->event, &l->io, l->fd, EPOLLOUT, link_on_io, l);
        if (r < 0) {
                link_fail(l, r, "cannot watch the connection");
                return;
        }
        l->state = LINK_CONNECTING;
}

void backup_link_tick(BackupLink *l) {
        usec_t now, silent;

        if (!l || l->state == LINK_WAITING)
                return;
        now = now_usec();
        silent = l->manager->config->dead_after_ms * USEC_PER_MSEC;
        /* Connecting and authenticating may wait in a busy primary's accept queue: give it
         * as long as the primary gives a handshake. */
        if (l->state != LINK_STREAMING)
                silent = MAX(silent, CONN_HANDSHAKE_USEC);
        if (now > l->last_input + silent) {
                link_fail(l, 0, "nothing from the primary for %" PRIu64 " ms",
                          (now - l->last_input) / USEC_PER_MSEC);
                return;
        }
        if (l->state != LINK_STREAMING || l->out.len > 0)
                return;
        /* Keepalive: tells the primary this backup is alive. */
        if (link_send_ack(l) < 0) {
                link_fail(l, -ENOMEM, "cannot queue ACK");
                return;
        }
        link_write(l);
}

bool backup_link_matches(const BackupLink *l, const char *primary, const char *address, uint64_t term) {
        return l && l->term == term && streq(l->primary, primary) && streq(l->address, address);
}

BackupLink *backup_link_free(BackupLink *l) {
        if (!l)
                return NULL;
        link_close(l);
        sd_event_source_disable_unref(l->retry_timer);
        line_reader_done(&l->lr);
        buf_done(&l->out);
        free(l->primary);
        free(l->address);
        free(l);
        return NULL;
}

int backup_link_new(Manager *m, const char *primary, const char *address, uint64_t term, BackupLink **ret) {
        BackupLink *l;
        int r;

        l = calloc(1, sizeof(BackupLink));
        if (!l)
                return -ENOMEM;
        *l = (BackupLink){
                .manager = m,
                .term = term,
                .fd = -1,
                .primary = strdup(primary),
                .address = strdup(address),
        };
        if (!l->primary || !l->address) {
                backup_link_free(l);
                return -ENOMEM;
        }
        r = sockaddr_parse(address, false, &l->addr);
        if (r < 0) {
                backup_link_free(l);
                return log_error_errno(r, "Primary %s has a bad address '%s': %m", primary, address);
        }
        link_connect(l);
        *ret = l;
        return 0;
}
