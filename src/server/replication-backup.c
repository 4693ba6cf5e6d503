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

#include "log.h"
#include "msglog.h"
#include "peer-link.h"
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
        PeerLink link;          /* fd, reader, sealed output, retry backoff; last_input is also
                                 * set when a connection attempt starts */
        uint64_t primary_commit;
        bool appended;          /* the lines of this read appended entries */
        bool ack_due;           /* ... or synced: ACK after them */
        bool expect_token_ok;   /* AUTH <client token> sent before SYNC: skip its OK */
};

static void link_connect(BackupLink *l);

static void link_close(BackupLink *l) {
        peer_link_close(&l->link);
        l->expect_token_ok = false;
        l->appended = l->ack_due = false;
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

/* Drop the connection and try again later. */
static void link_fail(BackupLink *l, int error, const char *fmt, ...) _printf_(3, 4);
static void link_fail(BackupLink *l, int error, const char *fmt, ...) {
        char msg[256];
        va_list ap;
        int r;

        if (error != 0)
                errno = abs(error);   /* for %m */
        va_start(ap, fmt);
        (void) vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);

        /* The first failure in a row is news; the retries are not. */
        log_full_errno(l->link.failures == 0 ? LOG_INFO : LOG_DEBUG, error,
                       "Replication from %s at %s: %s, retrying.", l->primary, l->address, msg);
        l->link.failures++;
        link_close(l);
        l->state = LINK_WAITING;
        r = peer_link_schedule_retry(&l->link);
        if (r < 0)
                manager_fail(l->manager, r, "arm the replication retry timer");
}

/* The connection broke: "read failed: <error>" and the like. */
static void link_on_fail(void *userdata, int error, const char *what) {
        if (error == 0)         /* only a hang-up comes without one */
                link_fail(userdata, 0, "primary closed the connection");
        else
                link_fail(userdata, error, "%s: %m", what);
}

static uint64_t link_durable_index(const BackupLink *l) {
        return manager_durable_index(l->manager);
}

static int link_send_ack(BackupLink *l) {
        ReplMessage ack = {
                .type = REPL_ACK,
                .index = link_durable_index(l),
        };

        return repl_message_format(&ack, &l->link.out.buf);
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
        return repl_message_format(&sync, &l->link.out.buf);
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
        l->link.backoff = 0;
        l->link.failures = 0;
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

        r = peerauth_on_challenge(&l->link.auth, line, len, &l->link.out.buf, &reason);
        if (r < 0) {
                snprintf(what, sizeof(what), "authentication failed: %s", reason);
                link_log_auth(l, what);
                link_fail(l, 0, "authentication failed");
                return r;
        }
        /* The PROOF goes out in the clear; everything after it is sealed. */
        peer_out_seal_from_here(&l->link.out);
        r = link_send_sync(l);
        if (r < 0) {
                link_fail(l, r, "cannot queue SYNC");
                return r;
        }
        l->state = LINK_SYNCING;
        return peer_link_write(&l->link) < 0 ? -EPIPE : 1;
}

/* Handle one line. > 0: handled; 0: ignored; < 0: the link was dropped. */
static int link_handle_line(BackupLink *l, char *line, size_t len) {
        Manager *m = l->manager;
        const char *reason = NULL;
        ReplMessage msg = {};
        int r;

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
                        l->ack_due = true;
                return r;
        }

        switch (msg.type) {
        case REPL_ENTRY:
                r = link_on_entry(l, &msg);
                if (r > 0)
                        l->appended = true;
                return r;
        case REPL_COMMIT:
                l->primary_commit = MAX(l->primary_commit, msg.commit);
                return 1;
        default:
                link_fail(l, 0, "unexpected %s line", line);
                return -EBADMSG;
        }
}

static int link_on_line(void *userdata, int r, char *line, size_t len, const char *reason) {
        BackupLink *l = userdata;

        if (r == -E2BIG) {
                link_fail(l, r, "over-long line from the primary");
                return r;
        }
        if (r < 0) {
                char what[256];

                snprintf(what, sizeof(what), "rejecting a line: %s", reason);
                link_log_auth(l, what);
                link_fail(l, r, "bad authentication tag");
                return r;
        }
        return link_handle_line(l, line, len);
}

/* After the lines of one read. */
static void link_on_read_done(void *userdata) {
        BackupLink *l = userdata;
        Manager *m = l->manager;
        bool appended = l->appended, ack = l->ack_due;
        int r;

        l->appended = l->ack_due = false;
        /* Group commit: one write (and with fsync=always one sync) for everything this read
         * brought; the ACK below reports manager_durable_index(). */
        if (appended) {
                r = manager_write_batch(m);
                if (r < 0) {
                        manager_fail(m, r, "write the message log");
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
        (void) peer_link_write(&l->link);
}

static void link_on_connected(void *userdata, int error) {
        BackupLink *l = userdata;
        Manager *m = l->manager;
        int r;

        if (error != 0) {
                link_fail(l, error, "cannot connect: %m");
                return;
        }

        l->link.last_input = now_usec();
        if (config_auth_applies(m->config, sockaddr_is_unix(&l->addr))) {
                if (!m->authkey.set) {
                        link_fail(l, -ENOKEY, "no cluster key loaded");
                        return;
                }
                r = peerauth_hello(&l->link.auth, &m->authkey, m->self->name, &l->link.out.buf);
                if (r < 0) {
                        link_fail(l, r, "cannot queue HELLO-AUTH");
                        return;
                }
                l->state = LINK_AUTHENTICATING;
                (void) peer_link_write(&l->link);
                return;
        }

        /* A link that does not use the cluster key shows the client token, when one is set. */
        if (m->client_token) {
                r = buf_printf(&l->link.out.buf, "AUTH %s\n", m->client_token);
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
        (void) peer_link_write(&l->link);
}

static void link_connect(BackupLink *l) {
        Manager *m = l->manager;
        static const int one = 1;
        int fd, r;

        link_close(l);
        l->link.last_input = now_usec();

        /* A fresh reader: nothing of the previous connection may leak into this one. */
        r = peer_link_reset(&l->link, replication_line_max(m->config->max_message_bytes) + PEERAUTH_LINE_OVERHEAD);
        if (r < 0) {
                link_fail(l, r, "cannot allocate a line buffer");
                return;
        }

        fd = socket_connect(&l->addr);
        if (fd < 0) {
                link_fail(l, fd, "cannot connect: %m");
                return;
        }
        (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

        r = peer_link_watch(&l->link, fd);
        if (r < 0) {
                link_fail(l, r, "cannot watch the connection");
                return;
        }
        l->state = LINK_CONNECTING;
}

static void link_on_retry(void *userdata) {
        link_connect(userdata);
}

static const PeerLinkOps link_ops = {
        .connected = link_on_connected,
        .line = link_on_line,
        .read_done = link_on_read_done,
        .retry = link_on_retry,
        .fail = link_on_fail,
};

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
        if (now > l->link.last_input + silent) {
                link_fail(l, 0, "nothing from the primary for %" PRIu64 " ms",
                          (now - l->link.last_input) / USEC_PER_MSEC);
                return;
        }
        if (l->state != LINK_STREAMING || l->link.out.buf.len > 0)
                return;
        /* Keepalive: tells the primary this backup is alive. */
        if (link_send_ack(l) < 0) {
                link_fail(l, -ENOMEM, "cannot queue ACK");
                return;
        }
        (void) peer_link_write(&l->link);
}

bool backup_link_matches(const BackupLink *l, const char *primary, const char *address, uint64_t term) {
        return l && l->term == term && streq(l->primary, primary) && streq(l->address, address);
}

BackupLink *backup_link_free(BackupLink *l) {
        if (!l)
                return NULL;
        peer_link_done(&l->link);
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
                .primary = strdup(primary),
                .address = strdup(address),
        };
        peer_link_init(&l->link, m->event, &link_ops, l);
        peer_link_set_priority(&l->link, PRIORITY_REPLICATION);
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
