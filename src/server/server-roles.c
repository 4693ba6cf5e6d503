/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * server-roles — terms and role changes of fusion-server, as the monitor
 * orders them (doc/internals.md): a term is persisted in <data_dir>/state
 * before it is acted on; PROMOTE writes and syncs a term-start record before
 * the server calls itself primary; a primary that sees a newer term, or is
 * told to follow another server, stops at once.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fusion-ids.h"
#include "log.h"
#include "monitor-link.h"
#include "msglog.h"
#include "replication-backup.h"
#include "replication-primary.h"
#include "server-manager.h"
#include "server-util.h"

static int manager_persist_term(Manager *m, uint64_t term) {
        char text[64];
        int r;

        (void) snprintf(text, sizeof(text), "term=%" PRIu64 "\n", term);
        r = write_file_atomic(m->state_path, text);
        if (r < 0)
                return log_error_errno(r, "Failed to persist term %" PRIu64 " in %s: %m", term, m->state_path);
        return 0;
}

void manager_demote(Manager *m, const char *reason) {
        if (m->role != ROLE_PRIMARY)
                return;

        m->role = ROLE_BACKUP;
        m->lease_expiry = 0;
        m->term_first_index = 0;
        (void) manager_set_primary(m, NULL, NULL);
        manager_set_log_context(m);
        log_event(LOG_NOTICE, FUSION_MESSAGE_DEMOTION, "Demoted from primary in term %" PRIu64 ": %s.", m->term,
                  reason);

        replicas_kill_all(m);
        manager_fail_waiting(m, ERRC_NOPRIMARY, "no longer the primary");
        manager_update_status(m);
        monitor_link_send_heartbeat(m->monitor, 0);
}

int manager_observe_term(Manager *m, uint64_t term, const char *source) {
        int r;

        if (term <= m->term)
                return 0;

        r = manager_persist_term(m, term);
        if (r < 0) {
                /* Not acting on the new term, but a primary must stop at once either way. */
                manager_demote(m, "a newer term exists");
                return r;
        }
        log_info("Term %" PRIu64 " -> %" PRIu64 " (from %s).", m->term, term, source);
        if (m->role == ROLE_PRIMARY)
                manager_demote(m, "a newer term exists");
        m->term = term;
        manager_set_log_context(m);
        manager_update_status(m);
        return 1;
}

void manager_on_lease(Manager *m, uint64_t term, uint64_t seq, usec_t sent) {
        usec_t expiry;

        if (term != m->term || m->role != ROLE_PRIMARY || seq < m->lease_first_seq) {
                log_debug("Ignoring LEASE term=%" PRIu64 " seq=%" PRIu64 " (term %" PRIu64 ", %s).", term, seq,
                          m->term, role_to_string(m->role));
                return;
        }
        expiry = sent + m->config->lease_ms * USEC_PER_MSEC;
        if (expiry > m->lease_expiry)
                m->lease_expiry = expiry;
}

void manager_on_promote(Manager *m, uint64_t term) {
        uint64_t index;
        int r;

        if (term <= m->term) {
                log_full_errno(m->role == ROLE_PRIMARY && term == m->term ? LOG_DEBUG : LOG_INFO, 0,
                               "Ignoring PROMOTE for term %" PRIu64 " (my term is %" PRIu64 ").", term, m->term);
                return;
        }
        if (term > MSGLOG_TERM_MAX) {
                log_warning("Ignoring PROMOTE for term %" PRIu64 ": past the last term a log can hold.", term);
                return;
        }

        if (manager_persist_term(m, term) < 0) {
                manager_demote(m, "cannot persist a newer term");
                return;
        }
        m->term = term;

        /* Links of an older term are stale either way. */
        m->backup = backup_link_free(m->backup);
        replicas_kill_all(m);

        index = msglog_last_index(m->log) + 1;
        r = msglog_append(m->log, index, term, MSGLOG_FLAG_TERM_START, NULL, 0, "", 0);
        if (r >= 0)
                r = msglog_sync(m->log);
        if (r < 0) {
                manager_fail(m, r, "write the term-start record");
                return;
        }

        m->role = ROLE_PRIMARY;
        m->term_first_index = index;
        m->primary_since = now_usec();
        m->lease_expiry = 0;
        m->lease_first_seq = monitor_link_next_seq(m->monitor);
        (void) manager_set_primary(m, m->self->name, m->self->address);
        manager_set_log_context(m);
        log_event(LOG_NOTICE, FUSION_MESSAGE_PROMOTION,
                  "Promoted to primary in term %" PRIu64 " (term starts at index %" PRIu64 ", commit %" PRIu64 ").",
                  term, index, m->commit_index);
        manager_update_status(m);
        monitor_link_send_heartbeat(m->monitor, 0);
        manager_update_commit(m);
}

void manager_on_follow(Manager *m, uint64_t term, const char *primary, const char *address) {
        int r;

        if (term < m->term) {
                log_debug("Ignoring FOLLOW %s for term %" PRIu64 " (my term is %" PRIu64 ").", primary, term,
                          m->term);
                return;
        }
        if (streq(primary, m->self->name)) {
                if (m->role != ROLE_PRIMARY || term != m->term)
                        log_warning("Told to follow myself in term %" PRIu64 ", ignoring.", term);
                return;
        }

        r = manager_observe_term(m, term, "monitor");
        if (r < 0)
                return;
        if (m->role == ROLE_PRIMARY)
                manager_demote(m, "the monitor named another primary");

        if (backup_link_matches(m->backup, primary, address, term) && streq_ptr(m->primary_name, primary))
                return;

        m->backup = backup_link_free(m->backup);
        if (manager_set_primary(m, primary, address) < 0)
                return;
        log_info("Following %s at %s in term %" PRIu64 ".", primary, address, term);
        (void) backup_link_new(m, primary, address, term, &m->backup);
        manager_update_status(m);
}

void manager_on_demote(Manager *m, uint64_t term) {
        int r;

        if (term < m->term) {
                log_debug("Ignoring DEMOTE for term %" PRIu64 " (my term is %" PRIu64 ").", term, m->term);
                return;
        }
        r = manager_observe_term(m, term, "monitor");
        if (r < 0)
                return;
        if (m->role == ROLE_PRIMARY)
                manager_demote(m, "the monitor demoted this server");
        else if (r > 0) {
                /* The primary we followed belongs to an older term. */
                m->backup = backup_link_free(m->backup);
                (void) manager_set_primary(m, NULL, NULL);
                manager_update_status(m);
        }
}
