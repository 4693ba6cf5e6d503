/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * replication-primary — the primary's side of replication (see
 * replication-primary.h and doc/internals.md).
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "log.h"
#include "msglog.h"
#include "replication-primary.h"
#include "server-util.h"

int replica_start(Conn *c, char *line, size_t len) {
        Manager *m = c->manager;
        ReplMessage msg = {}, synced = {};
        const LogSegment *segments;
        const char *reason = NULL;
        uint64_t match;
        size_t n;
        int r;

        r = repl_message_parse(line, len, m->config->max_message_bytes, &msg, &reason);
        if (r < 0 || msg.type != REPL_SYNC)
                return reply_err(&c->out.buf, ERRC_BADCMD, "%s", reason ?: "bad SYNC");

        if (msg.term > m->term) {
                uint64_t mine = m->term;

                /* A backup knows a newer term: whatever we are, we are not its primary. */
                (void) manager_observe_term(m, msg.term, msg.name);
                return reply_err(&c->out.buf, ERRC_STALE, "term %" PRIu64 " is newer than mine (%" PRIu64 ")",
                                 msg.term, mine);
        }
        if (m->role != ROLE_PRIMARY)
                return reply_err(&c->out.buf, ERRC_NOPRIMARY, "not the primary");
        if (msg.term < m->term)
                return reply_err(&c->out.buf, ERRC_STALE, "term %" PRIu64 " is older than mine (%" PRIu64 ")",
                                 msg.term, m->term);
        if (streq(msg.name, m->self->name) || !config_find_server(m->config, msg.name))
                return reply_err(&c->out.buf, ERRC_BADCMD, "unknown server '%s'", msg.name);
        /* The cluster key is shared, but a link stays with the name it authenticated as. */
        if (c->auth && !streq(msg.name, c->auth->name))
                return reply_err(&c->out.buf, ERRC_AUTH, "authenticated as '%s', not '%s'", c->auth->name, msg.name);

        /* A reconnecting backup replaces its old link. */
        for (Conn *o = m->replicas, *next; o; o = next) {
                next = o->rnext;
                if (streq(o->replica_name, msg.name))
                        conn_kill(o);
        }

        n = msglog_segments(m->log, &segments);
        match = repl_match_index(segments, n, msg.segments, msg.n_segments, msg.index);
        match = MIN(match, msglog_last_index(m->log));

        conn_leave_reserve(c);
        c->is_replica = true;
        /* Its ACKs before the client lines pending in the same wakeup: they are what
         * the waiting writes need to be answered. */
        (void) sd_event_source_set_priority(c->io, PRIORITY_REPLICATION);
        memcpy(c->replica_name, msg.name, sizeof(c->replica_name));
        c->acked = 0;
        c->next_index = match + 1;
        c->sent_commit = m->commit_index;
        c->last_input = now_usec();
        c->rprev = NULL;
        c->rnext = m->replicas;
        if (m->replicas)
                m->replicas->rprev = c;
        m->replicas = c;
        m->n_replicas++;

        log_info("Replica %s connected: its last index %" PRIu64 ", logs match up to %" PRIu64 ".", msg.name,
                 msg.index, match);

        synced = (ReplMessage){
                .type = REPL_SYNCED,
                .index = match,
                .term = m->term,
                .commit = m->commit_index,
        };
        r = repl_message_format(&synced, &c->out.buf);
        manager_update_status(m);
        return r;
}

void replica_unlink(Conn *c) {
        Manager *m = c->manager;

        if (!c->is_replica)
                return;
        if (c->rprev)
                c->rprev->rnext = c->rnext;
        else
                m->replicas = c->rnext;
        if (c->rnext)
                c->rnext->rprev = c->rprev;
        c->rprev = c->rnext = NULL;
        c->is_replica = false;
        m->n_replicas--;
        log_info("Replica %s disconnected (acked %" PRIu64 ").", c->replica_name, c->acked);
}

int replica_handle_line(Conn *c, char *line, size_t len) {
        Manager *m = c->manager;
        const char *reason = NULL;
        ReplMessage msg = {};
        uint64_t acked;
        int r;

        r = repl_message_parse(line, len, m->config->max_message_bytes, &msg, &reason);
        if (r < 0 || msg.type != REPL_ACK) {
                log_warning("Replica %s sent a bad line (%s), dropping the link.", c->replica_name,
                            r < 0 ? reason ?: "unparsable" : "not an ACK");
                return -EBADMSG;
        }

        /* A backup can only have made durable what it was sent. */
        acked = MIN(msg.index, c->next_index - 1);
        if (acked > c->acked) {
                c->acked = acked;
                manager_update_commit(m);
        }
        return 0;
}

static int replica_send_commit(Conn *c) {
        Manager *m = c->manager;
        ReplMessage msg = {
                .type = REPL_COMMIT,
                .commit = m->commit_index,
        };

        c->sent_commit = m->commit_index;
        return repl_message_format(&msg, &c->out.buf);
}

void replica_pump(Conn *c) {
        Manager *m = c->manager;
        /* Every entry written, durable here or not (doc/internals.md): the backup's sync
         * overlaps ours, and commit_index_compute() still takes our durable index. */
        uint64_t limit = msglog_last_index(m->log);
        bool sent_entry = false;
        size_t start;
        int r;

        if (c->dead || !c->is_replica)
                return;

        /* One call queues at most REPLICA_PUMP_BYTES: a catching-up backup does not hold the loop. */
        start = c->out.buf.len;
        while (c->next_index <= limit && conn_output_size(c) < REPLICA_OUTPUT_HIGH &&
               c->out.buf.len - start < REPLICA_PUMP_BYTES) {
                LogRecord rec = {};
                ReplMessage e;

                r = msglog_read_buffered(m->log, c->next_index, &rec);
                if (r < 0) {
                        log_error_errno(r, "Failed to read index %" PRIu64 " for replica %s, dropping the link: %m",
                                        c->next_index, c->replica_name);
                        conn_kill(c);
                        return;
                }
                e = (ReplMessage){
                        .type = REPL_ENTRY,
                        .index = rec.index,
                        .term = rec.term,
                        .commit = m->commit_index,
                        .msgid = rec.msgid_len > 0 ? rec.msgid : NULL,
                        .msgid_len = rec.msgid_len,
                        .payload = rec.payload ?: "",
                        .payload_len = rec.payload_len,
                };
                r = repl_message_format(&e, &c->out.buf);
                log_record_done(&rec);
                if (r >= 0)
                        r = peer_out_seal(&c->out, c->auth);    /* one line at a time: sealed where it is */
                if (r < 0) {
                        conn_kill(c);
                        return;
                }
                c->next_index++;
                c->sent_commit = m->commit_index;
                sent_entry = true;
        }

        if (sent_entry)
                log_debug("Streamed to %s up to %" PRIu64 " (commit %" PRIu64 ").", c->replica_name,
                          c->next_index - 1, m->commit_index);
        if (!sent_entry && c->sent_commit < m->commit_index && replica_send_commit(c) < 0) {
                conn_kill(c);
                return;
        }
        conn_write(c);

        /* Catching up and the socket took everything: no EPOLLOUT will come, go on later. */
        if (!c->dead && c->next_index <= limit && conn_output_size(c) < REPLICA_OUTPUT_HIGH)
                conn_schedule_resume(c);
}

void replicas_pump_all(Manager *m) {
        for (Conn *c = m->replicas, *next; c; c = next) {
                next = c->rnext;
                replica_pump(c);
        }
}

void replicas_tick(Manager *m) {
        usec_t now = now_usec(), silent = m->config->dead_after_ms * USEC_PER_MSEC;

        for (Conn *c = m->replicas, *next; c; c = next) {
                next = c->rnext;

                if (now > c->last_input + silent) {
                        log_warning("Replica %s silent for %" PRIu64 " ms, dropping the link.", c->replica_name,
                                    (now - c->last_input) / USEC_PER_MSEC);
                        conn_kill(c);
                        continue;
                }
                if (conn_output_size(c) > 0)
                        continue;
                if (replica_send_commit(c) < 0) {
                        conn_kill(c);
                        continue;
                }
                conn_write(c);
        }
}

void replicas_kill_all(Manager *m) {
        while (m->replicas)
                conn_kill(m->replicas);
}
