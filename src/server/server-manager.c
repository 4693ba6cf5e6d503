/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * server-manager — the state and role machine of one fusion-server (see
 * server-manager.h). Safety rules kept here: a term is persisted before it
 * is acted on; a write is answered OK only when its index is committed
 * (durable here and on min_sync_replicas backups, term rule of
 * doc/internals.md) and the lease is valid at that moment.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "conn.h"
#include "fusion-ids.h"
#include "log.h"
#include "monitor-link.h"
#include "replication-backup.h"
#include "replication-primary.h"
#include "server-manager.h"
#include "server-util.h"

#define STATE_FILE "state"
#define STATE_FILE_MAX 4096

void manager_fail(Manager *m, int error, const char *what) {
        log_error_errno(error, "Failed to %s, exiting: %m", what);
        (void) sd_event_exit(m->event, error < 0 ? error : -EIO);
}

void manager_set_log_context(Manager *m) {
        log_set_context(m->self->name, role_to_string(m->role), m->term);
}

const char *manager_status(Manager *m) {
        if (m->role == ROLE_PRIMARY)
                (void) snprintf(m->status, sizeof(m->status), "primary, term %" PRIu64, m->term);
        else if (m->primary_name)
                (void) snprintf(m->status, sizeof(m->status), "backup of %s, term %" PRIu64, m->primary_name,
                                m->term);
        else
                (void) snprintf(m->status, sizeof(m->status), "backup, no primary known, term %" PRIu64, m->term);
        return m->status;
}

void manager_update_status(Manager *m) {
        char old[sizeof(m->status)];

        memcpy(old, m->status, sizeof(old));
        if (!streq(old, manager_status(m)))
                (void) sd_notifyf(false, "STATUS=%s", m->status);
}

int manager_set_primary(Manager *m, const char *name, const char *address) {
        char *n = NULL, *a = NULL;

        if (name) {
                n = strdup(name);
                a = strdup(address);
                if (!n || !a) {
                        free(n);
                        free(a);
                        return log_oom();
                }
        }
        free(m->primary_name);
        free(m->primary_address);
        m->primary_name = n;
        m->primary_address = a;
        return 0;
}

bool manager_lease_valid(const Manager *m) {
        return m->role == ROLE_PRIMARY && now_usec() < m->lease_expiry;
}

bool manager_term_is_young(const Manager *m) {
        return m->role == ROLE_PRIMARY && now_usec() < m->primary_since + m->config->sync_timeout_ms * USEC_PER_MSEC;
}

size_t manager_replicas_in_sync(const Manager *m) {
        return m->n_replicas;
}

uint64_t manager_durable_index(const Manager *m) {
        if (m->config->fsync == FSYNC_ALWAYS)
                return msglog_synced_index(m->log);
        /* batch and never: in the file, so a crash of the process loses nothing acked */
        return msglog_written_index(m->log);
}

/* Waiting writes */

static int manager_answer(Pending *p, bool committed) {
        Manager *m = p->conn->manager;

        buf_clear(&p->reply);
        if (!manager_lease_valid(m))
                return reply_err(&p->reply, ERRC_NOLEASE, "lease expired before message %" PRIu64 " was acknowledged",
                                 p->index);
        if (committed)
                return reply_ok(&p->reply, p->index);
        return reply_err(&p->reply, ERRC_NOREPLICAS, "message %" PRIu64 " not replicated within %" PRIu64 " ms",
                         p->index, m->config->sync_timeout_ms);
}

static void manager_finish(Pending *p, bool committed) {
        Conn *c = p->conn;

        if (manager_answer(p, committed) < 0) {
                /* Cannot answer in order: the client must reconnect and retry. */
                conn_kill(c);
                return;
        }
        pending_finish(p);
}

static void manager_arm_deadline(Manager *m) {
        usec_t first = USEC_INFINITY;
        int r;

        for (Pending *p = m->waiting_head; p; p = p->wnext)
                first = MIN(first, p->deadline);
        if (first == USEC_INFINITY) {
                (void) sd_event_source_set_enabled(m->deadline_timer, SD_EVENT_OFF);
                return;
        }
        r = sd_event_source_set_time(m->deadline_timer, first);
        if (r >= 0)
                r = sd_event_source_set_enabled(m->deadline_timer, SD_EVENT_ONESHOT);
        if (r < 0)
                manager_fail(m, r, "arm the write deadline timer");
}

void manager_wait_write(Manager *m, Pending *p) {
        Pending *after;
        int enabled = SD_EVENT_OFF;

        if (p->index <= m->commit_index) {
                if (manager_answer(p, true) < 0)
                        conn_kill(p->conn);
                else
                        p->done = true;
                return;
        }

        /* Keep the list in index order; only a repeated PUT lands before the tail. */
        after = m->waiting_tail;
        while (after && after->index > p->index)
                after = after->wprev;
        p->wprev = after;
        p->wnext = after ? after->wnext : m->waiting_head;
        if (p->wnext)
                p->wnext->wprev = p;
        else
                m->waiting_tail = p;
        if (after)
                after->wnext = p;
        else
                m->waiting_head = p;
        p->waiting = true;

        /* Deadlines grow with time, so an armed timer already points at the earliest. */
        (void) sd_event_source_get_enabled(m->deadline_timer, &enabled);
        if (enabled == SD_EVENT_OFF)
                manager_arm_deadline(m);
}

void manager_unwait_write(Manager *m, Pending *p) {
        if (!p->waiting)
                return;
        if (p->wprev)
                p->wprev->wnext = p->wnext;
        else
                m->waiting_head = p->wnext;
        if (p->wnext)
                p->wnext->wprev = p->wprev;
        else
                m->waiting_tail = p->wprev;
        p->wprev = p->wnext = NULL;
        p->waiting = false;
}

static int manager_on_deadline(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        usec_t now = now_usec();

        for (Pending *p = m->waiting_head, *next; p; p = next) {
                next = p->wnext;
                if (p->deadline <= now)
                        manager_finish(p, false);
        }
        conn_flush_list_run(m);
        manager_arm_deadline(m);
        return 0;
}

static void manager_resolve_writes(Manager *m) {
        while (m->waiting_head && m->waiting_head->index <= m->commit_index)
                manager_finish(m->waiting_head, true);
        conn_flush_list_run(m);
}

void manager_fail_waiting(Manager *m, ErrCode code, const char *text) {
        while (m->waiting_head) {
                Pending *p = m->waiting_head;

                buf_clear(&p->reply);
                if (reply_err(&p->reply, code, "%s", text) < 0)
                        conn_kill(p->conn);
                else
                        pending_finish(p);
        }
        conn_flush_list_run(m);
}

/* Commit and group commit */

/* Group commit: the flush runs at idle priority, once every ready event of
 * this loop iteration has been handled (all their appends share one sync);
 * the timer bounds the wait when events keep coming. */
static void manager_schedule_flush(Manager *m) {
        int enabled = SD_EVENT_OFF, r;

        if (m->flushing)
                return;
        r = sd_event_source_set_enabled(m->flush_source, SD_EVENT_ONESHOT);
        if (r >= 0)
                r = sd_event_source_get_enabled(m->flush_timer, &enabled);
        if (r >= 0 && enabled == SD_EVENT_OFF) {
                r = sd_event_source_set_time_relative(m->flush_timer, FLUSH_MAX_DELAY_USEC);
                if (r >= 0)
                        r = sd_event_source_set_enabled(m->flush_timer, SD_EVENT_ONESHOT);
        }
        if (r < 0)
                manager_fail(m, r, "schedule a log sync");
}

void manager_update_commit(Manager *m) {
        uint64_t acked[2 * CONFIG_SERVERS_MAX], commit;
        size_t n = 0;

        if (m->role != ROLE_PRIMARY)
                return;

        for (Conn *c = m->replicas; c && n < ELEMENTSOF(acked); c = c->rnext)
                acked[n++] = c->acked;
        commit = commit_index_compute(m->commit_index, manager_durable_index(m), acked, n,
                                      m->config->min_sync_replicas, m->term_first_index);
        if (commit == m->commit_index)
                return;

        m->commit_index = commit;
        manager_resolve_writes(m);
        /* Tell the backups at the end of this batch (one COMMIT line for many ACKs). */
        manager_schedule_flush(m);
}

void manager_set_commit(Manager *m, uint64_t commit) {
        commit = MIN(commit, msglog_last_index(m->log));
        if (commit > m->commit_index)
                m->commit_index = commit;
}

/* fsync=batch: what was written is synced BATCH_FSYNC_USEC later at the latest. The
 * timer is armed by the first write after a sync, so an idle server does not wake up
 * for it. */
static int manager_sync_later(Manager *m) {
        int enabled = SD_EVENT_OFF, r;

        r = sd_event_source_get_enabled(m->batch_timer, &enabled);
        if (r < 0 || enabled != SD_EVENT_OFF)
                return r < 0 ? r : 0;
        r = sd_event_source_set_time_relative(m->batch_timer, BATCH_FSYNC_USEC);
        if (r < 0)
                return r;
        return sd_event_source_set_enabled(m->batch_timer, SD_EVENT_ONESHOT);
}

int manager_write_batch(Manager *m) {
        int r;

        switch (m->config->fsync) {
        case FSYNC_ALWAYS:
                return msglog_sync(m->log);
        case FSYNC_BATCH:
                r = msglog_flush(m->log);
                return r < 0 ? r : manager_sync_later(m);
        default:
                return msglog_flush(m->log);
        }
}

static void manager_flush(Manager *m) {
        int r;

        (void) sd_event_source_set_enabled(m->flush_source, SD_EVENT_OFF);
        (void) sd_event_source_set_enabled(m->flush_timer, SD_EVENT_OFF);

        /* The pumps below send new entries and COMMIT lines: no second flush for them. */
        m->flushing = true;

        /* Stream the new entries before our own sync, so that the backups' syncs run while
         * ours does. Only what is durable here and acked counts for the commit index. */
        replicas_pump_all(m);

        if (m->n_unflushed > 0) {
                r = manager_write_batch(m);
                if (r < 0) {
                        m->flushing = false;
                        manager_fail(m, r, "write the message log");
                        return;
                }
        }
        m->n_unflushed = 0;

        manager_update_commit(m);
        replicas_pump_all(m);
        m->flushing = false;
}

static int manager_on_flush(sd_event_source *s, void *userdata) {
        manager_flush(userdata);
        return 0;
}

static int manager_on_flush_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        manager_flush(userdata);
        return 0;
}

int manager_append(Manager *m, const char *msgid, size_t msgid_len, const void *payload, size_t len,
                   uint64_t *ret_index) {
        uint64_t index = msglog_last_index(m->log) + 1;
        int r;

        /* A batch larger than the log's write buffer: stream what is buffered before
         * this append writes it out, so the backups get it from memory, not preadv(). */
        if (!m->flushing && msglog_append_flushes(m->log, msgid_len, len))
                replicas_pump_all(m);

        r = msglog_append(m->log, index, m->term, 0, msgid, msgid_len, payload, len);
        if (r < 0) {
                /* The log refuses everything after an I/O error: a server that cannot store stops. */
                if (r != -EINVAL && r != -EMSGSIZE && r != -EEXIST && r != -ENOMEM)
                        manager_fail(m, r, "append to the message log");
                else
                        log_error_errno(r, "Failed to append message %" PRIu64 " to the log: %m", index);
                return r;
        }

        m->n_unflushed++;
        if (m->n_unflushed >= FLUSH_FORCE_APPENDS)
                manager_flush(m);
        else
                manager_schedule_flush(m);
        *ret_index = index;
        return 0;
}

static int manager_on_batch_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        int r;

        r = msglog_sync(m->log);
        if (r < 0)
                manager_fail(m, r, "sync the message log");
        return 0;
}

static int manager_on_tick(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        int r;

        if (m->role == ROLE_PRIMARY)
                replicas_tick(m);
        backup_link_tick(m->backup);
        conns_tick(m);

        r = sd_event_source_set_time_relative(s, m->config->heartbeat_interval_ms * USEC_PER_MSEC);
        if (r < 0)
                manager_fail(m, r, "re-arm the keepalive timer");
        return 0;
}

static int manager_on_gc(sd_event_source *s, void *userdata) {
        Manager *m = userdata;

        /* Nothing may point at a dead connection once it is freed. */
        conn_flush_list_run(m);
        while (m->dead_conns) {
                Conn *c = m->dead_conns;

                m->dead_conns = c->next;
                conn_free(c);
        }
        manager_drain_check(m);
        return 0;
}

void manager_schedule_gc(Manager *m) {
        (void) sd_event_source_set_enabled(m->gc_source, SD_EVENT_ONESHOT);
}

/* Life cycle */

static int manager_load_term(Manager *m) {
        _cleanup_(freep) char *text = NULL;
        uint64_t term = 0;
        int r;

        r = read_file_small(m->state_path, STATE_FILE_MAX, &text);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return log_error_errno(r, "Failed to read %s: %m", m->state_path);
        r = state_get_u64(text, "term", &term);
        if (r < 0 && r != -ENOENT)
                return log_error_errno(r, "Failed to parse %s: %m", m->state_path);
        /* Terms end at MSGLOG_TERM_MAX: a file claiming more was not written by a
         * server. Started with it, this server would report a term no primary can
         * follow, and the monitor would promote nobody. */
        if (term > MSGLOG_TERM_MAX)
                return log_error_errno(-ERANGE,
                                       "%s is damaged, refusing to start: term %" PRIu64
                                       " is past the last term there is (%" PRIu64
                                       "). Move the data directory away, or restore the file.",
                                       m->state_path, term, (uint64_t) MSGLOG_TERM_MAX);
        m->term = term;
        return 0;
}

static int manager_open_log(Manager *m) {
        const char *dir = m->self->data_dir;
        _cleanup_(freep) char *error = NULL;
        MsgLogOpenInfo info = {};
        int r;

        r = msglog_open(dir, &m->log, &info, &error);
        if (r == -EBADMSG)
                return log_error_errno(r, "Message log is corrupt, refusing to start: %s",
                                       error ?: "corruption in the middle of the log");
        if (r < 0)
                return log_error_errno(r, "Failed to open the message log in %s: %s%s%m", dir, error ?: "",
                                       error ? ": " : "");
        if (info.cut_bytes > 0)
                log_event(LOG_WARNING, FUSION_MESSAGE_LOG_RECOVERED,
                          "Recovered the message log in %s: cut %" PRIu64 " bytes at offset %" PRIu64
                          " (%s), %" PRIu64 " records kept.",
                          dir, info.cut_bytes, info.cut_offset, info.cut_reason ?: "torn tail", info.records);
        return 0;
}

static int manager_add_timer(Manager *m, sd_event_source **ret, usec_t usec, sd_event_time_handler_t handler,
                             int enabled) {
        int r;

        r = sd_event_add_time_relative(m->event, ret, CLOCK_MONOTONIC, usec, TIMER_ACCURACY_USEC, handler, m);
        if (r < 0)
                return r;
        return sd_event_source_set_enabled(*ret, enabled);
}

static int manager_add_sources(Manager *m) {
        const Config *c = m->config;
        int r;

        r = sd_event_add_defer(m->event, &m->flush_source, manager_on_flush, m);
        if (r >= 0)
                r = sd_event_source_set_enabled(m->flush_source, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_source_set_priority(m->flush_source, SD_EVENT_PRIORITY_IDLE);
        if (r >= 0)
                r = manager_add_timer(m, &m->flush_timer, FLUSH_MAX_DELAY_USEC, manager_on_flush_timer,
                                      SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_add_defer(m->event, &m->gc_source, manager_on_gc, m);
        if (r >= 0)
                r = sd_event_source_set_enabled(m->gc_source, SD_EVENT_OFF);
        if (r >= 0)
                r = manager_add_timer(m, &m->tick_timer, c->heartbeat_interval_ms * USEC_PER_MSEC, manager_on_tick,
                                      SD_EVENT_ON);
        if (r >= 0)
                r = manager_add_timer(m, &m->deadline_timer, USEC_PER_SEC, manager_on_deadline, SD_EVENT_OFF);
        if (r >= 0 && c->fsync == FSYNC_BATCH)
                r = manager_add_timer(m, &m->batch_timer, BATCH_FSYNC_USEC, manager_on_batch_timer, SD_EVENT_OFF);
        if (r < 0)
                return log_error_errno(r, "Failed to set up event sources: %m");
        return 0;
}

int manager_start(Manager *m) {
        const char *dir = m->self->data_dir;
        int r;

        r = mkdir_p(dir, 0750);
        if (r < 0)
                return log_error_errno(r, "Failed to create %s: %m", dir);
        if (asprintf(&m->state_path, "%s/%s", dir, STATE_FILE) < 0) {
                m->state_path = NULL;
                return log_oom();
        }
        r = manager_load_term(m);
        if (r < 0)
                return r;
        r = manager_open_log(m);
        if (r < 0)
                return r;
        if (msglog_last_term(m->log) > m->term) {
                log_warning("Log holds term %" PRIu64 " but %s says %" PRIu64 ", using the log's.",
                            msglog_last_term(m->log), m->state_path, m->term);
                m->term = msglog_last_term(m->log);
        }

        m->role = ROLE_BACKUP;
        manager_set_log_context(m);

        r = manager_add_sources(m);
        if (r < 0)
                return r;
        r = conn_listen_start(m);
        if (r < 0)
                return log_error_errno(r, "Failed to watch the client socket: %m");
        r = monitor_link_new(m, &m->monitor);
        if (r < 0)
                return r;
        r = monitor_link_start(m->monitor);
        if (r < 0)
                return log_error_errno(r, "Failed to start the monitor link: %m");

        (void) manager_status(m);
        log_info("Started with %" PRIu64 " messages (last term %" PRIu64 "), term %" PRIu64 ", fsync=%s.",
                 msglog_last_index(m->log), msglog_last_term(m->log), m->term,
                 fsync_mode_to_string(m->config->fsync));
        return 0;
}

static void conn_list_free(Conn *c) {
        while (c) {
                Conn *next = c->next;

                conn_free(c);
                c = next;
        }
}

/* Graceful stop */

static size_t manager_client_conns(const Manager *m) {
        size_t n = 0;

        for (const Conn *c = m->conns; c; c = c->next)
                n += !c->is_replica;
        return n;
}

static int manager_on_drain_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        log_info("Stopping with %zu client connection(s) still open after %" PRIu64 " ms.", manager_client_conns(m),
                 SHUTDOWN_GRACE_USEC / USEC_PER_MSEC);
        (void) sd_event_exit(m->event, 0);
        return 0;
}

void manager_drain_check(Manager *m) {
        if (!m->draining || manager_client_conns(m) > 0)
                return;
        log_debug("Every client connection answered and closed, stopping.");
        (void) sd_event_exit(m->event, 0);
}

void manager_shutdown(Manager *m) {
        int r;

        if (m->draining) {
                (void) sd_event_exit(m->event, 0);   /* asked twice: now */
                return;
        }
        m->draining = true;
        (void) sd_notify(false, "STOPPING=1\nSTATUS=Stopping: answering the requests already received.");
        /* What waits in the listen queue stays there for the next instance (systemd holds the socket). */
        conn_listen_stop(m);
        r = sd_event_add_time_relative(m->event, &m->drain_timer, CLOCK_MONOTONIC, SHUTDOWN_GRACE_USEC,
                                       TIMER_ACCURACY_USEC, manager_on_drain_timeout, m);
        if (r < 0) {
                (void) sd_event_exit(m->event, 0);
                return;
        }
        for (Conn *c = m->conns, *next; c; c = next) {
                next = c->next;
                if (!c->is_replica)
                        conn_drain(c);
        }
        manager_drain_check(m);
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;

        m->monitor = monitor_link_free(m->monitor);
        m->backup = backup_link_free(m->backup);
        conn_listen_stop(m);
        conn_list_free(m->conns);
        conn_list_free(m->dead_conns);

        sd_event_source_disable_unref(m->flush_source);
        sd_event_source_disable_unref(m->flush_timer);
        sd_event_source_disable_unref(m->batch_timer);
        sd_event_source_disable_unref(m->tick_timer);
        sd_event_source_disable_unref(m->deadline_timer);
        sd_event_source_disable_unref(m->gc_source);
        sd_event_source_disable_unref(m->drain_timer);

        if (m->log) {
                (void) msglog_sync(m->log);
                msglog_free(m->log);
        }
        safe_close(m->listen_fd);
        free(m->state_path);
        free(m->primary_name);
        free(m->primary_address);
        peerauth_key_wipe(&m->authkey);
        free(m->client_token);
        sd_event_unref(m->event);
        free(m);
        return NULL;
}

int manager_new(sd_event *e, const Config *config, const ServerConfig *self, int listen_fd, Manager **ret) {
        Manager *m;

        m = calloc(1, sizeof(Manager));
        if (!m)
                return -ENOMEM;
        *m = (Manager){
                .event = sd_event_ref(e),
                .config = config,
                .self = self,
                .listen_fd = listen_fd,
                .role = ROLE_BACKUP,
                .auth_log = RATELIMIT_INIT(10 * USEC_PER_SEC, 10),
        };
        *ret = m;
        return 0;
}
