/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * request — the client protocol verbs of fusion-server (doc/design.md, doc/protocol.md):
 * PING, INFO, GET, READ, SEND/PUT (queued until their commit), AUTH, and
 * SYNC, which turns the connection into a replication link; HELLO-AUTH, a
 * backup proving it holds the cluster key before SYNC (doc/security.md).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "log.h"
#include "msglog.h"
#include "replication-primary.h"
#include "request.h"
#include "server-util.h"

static int request_info(Conn *c) {
        Manager *m = c->manager;
        const Config *cfg = m->config;
        Buf *b = conn_reply_buf(c);
        int r = 0;

        if (!b)
                return -ENOMEM;

        r |= reply_kv(b, "name", "%s", m->self->name);
        r |= reply_kv(b, "role", "%s", role_to_string(m->role));
        r |= reply_kv(b, "term", "%" PRIu64, m->term);
        r |= reply_kv(b, "last_index", "%" PRIu64, msglog_last_index(m->log));
        r |= reply_kv(b, "last_term", "%" PRIu64, msglog_last_term(m->log));
        r |= reply_kv(b, "commit_index", "%" PRIu64, m->commit_index);
        r |= reply_kv(b, "primary", "%s", m->primary_name ?: "-");
        r |= reply_kv(b, "primary_address", "%s", m->primary_address ?: "-");
        r |= reply_kv(b, "lease_valid", "%s", manager_lease_valid(m) ? "yes" : "no");
        r |= reply_kv(b, "replicas_in_sync", "%zu", manager_replicas_in_sync(m));
        r |= reply_kv(b, "fsync", "%s", fsync_mode_to_string(cfg->fsync));

        if (m->role == ROLE_PRIMARY)
                for (size_t i = 0; i < cfg->n_servers; i++) {
                        const char *name = cfg->servers[i].name;
                        uint64_t acked = 0;
                        bool in_sync = false;

                        if (&cfg->servers[i] == m->self)
                                continue;
                        for (Conn *rc = m->replicas; rc; rc = rc->rnext)
                                if (streq(rc->replica_name, name)) {
                                        acked = rc->acked;
                                        in_sync = true;
                                }
                        r |= buf_printf(b, "replica.%s=acked:%" PRIu64 ",in_sync:%s\n", name, acked,
                                        in_sync ? "yes" : "no");
                }
        r |= reply_end(b);
        return r < 0 ? -ENOMEM : 0;
}

static int request_get(Conn *c, uint64_t index) {
        Manager *m = c->manager;
        LogRecord rec = {};
        Buf *b = conn_reply_buf(c);
        int r;

        if (!b)
                return -ENOMEM;
        if (index > m->commit_index)
                return reply_err(b, ERRC_NOTFOUND, "no message %" PRIu64, index);

        r = msglog_read(m->log, index, &rec);
        if (r < 0) {
                log_debug_errno(r, "Failed to read index %" PRIu64 ": %m", index);
                return reply_err(b, r == -ENOENT ? ERRC_NOTFOUND : ERRC_INTERNAL, "cannot read message %" PRIu64,
                                 index);
        }
        r = reply_msg(b, rec.index, rec.term, rec.payload, rec.payload_len);
        log_record_done(&rec);
        return r;
}

static int request_write(Conn *c, const Request *req) {
        Manager *m = c->manager;
        const Config *cfg = m->config;
        const char *msgid = req->type == REQUEST_PUT ? req->msgid : NULL;
        size_t msgid_len = msgid ? req->msgid_len : 0;
        size_t in_sync;
        uint64_t index;
        Pending *p;
        Buf *b;
        int r;

        if (m->role != ROLE_PRIMARY) {
                b = conn_reply_buf(c);
                if (!b)
                        return -ENOMEM;
                if (m->primary_address)
                        return reply_redirect(b, m->primary_address);
                return reply_err(b, ERRC_NOPRIMARY, "no primary known");
        }

        if (!manager_lease_valid(m)) {
                b = conn_reply_buf(c);
                return b ? reply_err(b, ERRC_NOLEASE, "no valid lease from the monitor") : -ENOMEM;
        }

        r = msgid ? msglog_find_msgid(m->log, msgid, msgid_len, &index) : 0;
        if (r < 0) {
                /* The log could not be read back: a server that cannot read its log stops. */
                manager_fail(m, r, "read a msgid back from the message log");
                b = conn_reply_buf(c);
                return b ? reply_err(b, ERRC_INTERNAL, "cannot read the message log") : -ENOMEM;
        }
        if (r > 0 && index <= m->commit_index) {
                b = conn_reply_buf(c);
                return b ? reply_ok(b, index) : -ENOMEM;
        }

        /* Too few backups: at once, unless this primary is new and its backups are still
         * connecting (a write right after a failover waits for them like any other). */
        in_sync = manager_replicas_in_sync(m);
        if (in_sync < cfg->min_sync_replicas && !manager_term_is_young(m)) {
                b = conn_reply_buf(c);
                return b ? reply_err(b, ERRC_NOREPLICAS, "%zu of %" PRIu64 " required backups in sync", in_sync,
                                     cfg->min_sync_replicas)
                         : -ENOMEM;
        }

        if (r <= 0) {
                r = manager_append(m, msgid, msgid_len, req->payload, req->payload_len, &index);
                if (r < 0) {
                        b = conn_reply_buf(c);
                        return b ? reply_err(b, ERRC_INTERNAL, "cannot store the message") : -ENOMEM;
                }
        }

        p = conn_push(c, PENDING_WRITE);
        if (!p)
                return -ENOMEM;
        p->index = index;
        p->deadline = now_usec() + cfg->sync_timeout_ms * USEC_PER_MSEC;
        manager_wait_write(m, p);
        return 0;
}

/* HELLO-AUTH <name> <nonce>: the first line of a backup that proves it holds the
 * cluster key; answered with CHALLENGE, then the PROOF is checked in conn.c. */
static int request_hello(Conn *c, char *line, size_t len, bool first) {
        Manager *m = c->manager;
        const char *reason = NULL;
        char peer[SOCKADDR_STRLEN];
        Buf *b;
        int r;

        if (!m->authkey.set) {
                b = conn_reply_buf(c);
                return b ? reply_err(b, ERRC_AUTH, "no cluster key configured here ([cluster] auth = never)")
                         : -ENOMEM;
        }
        if (!first || c->auth || c->head || conn_output_size(c) > 0) {
                b = conn_reply_buf(c);
                return b ? reply_err(b, ERRC_BADCMD, "HELLO-AUTH must be the first request") : -ENOMEM;
        }

        c->auth = calloc(1, sizeof(PeerAuth));
        if (!c->auth)
                return -ENOMEM;
        r = peerauth_on_hello(c->auth, &m->authkey, line, len, &c->out.buf, &reason);
        if (r == -EBADMSG) {
                conn_log_auth(c, "Authentication failed for peer %s: %s; closing the connection.",
                              conn_peer(c, peer, sizeof(peer)), reason);
                return r;
        }
        if (r < 0)
                return r;
        if (streq(c->auth->name, m->self->name) || !config_find_server(m->config, c->auth->name)) {
                conn_log_auth(c, "Authentication refused for peer %s claiming to be %s: not a configured server; "
                              "closing the connection.",
                              conn_peer(c, peer, sizeof(peer)), c->auth->name);
                c->auth->state = PEERAUTH_FAILED;
                return -EACCES;
        }
        c->sync_allowed = true;
        return 0;
}

/* Verbs a connection may use before it is trusted with everything. */
static bool request_allowed_untrusted(RequestType t) {
        return t == REQUEST_AUTH || t == REQUEST_SYNC;
}

int request_handle(Conn *c, char *line, size_t len) {
        Manager *m = c->manager;
        const char *reason = NULL;
        ErrCode code = ERRC_BADCMD;
        Request req = {};
        bool first;
        Pending *p;
        Buf *b;

        first = !c->got_request;
        c->got_request = true;

        if (peerauth_is_hello(line, len))
                return request_hello(c, line, len, first);

        /* A PUT's msgid slot is mostly in no cache (see msglog_prefetch_msgid()): start
         * loading it while request_parse() reads the whole line. */
        if (m->role == ROLE_PRIMARY && len > 4 && memcmp(line, "PUT ", 4) == 0) {
                const char *sp = memchr(line + 4, ' ', MIN(len - 4, (size_t) MSGID_MAX_LEN + 1));

                if (sp)
                        msglog_prefetch_msgid(m->log, line + 4, (size_t) (sp - line - 4));
        }
        if (request_parse(line, len, m->config->max_message_bytes, &req, &code, &reason) < 0) {
                b = conn_reply_buf(c);
                return b ? reply_err(b, code, "%s", reason ?: "bad request") : -ENOMEM;
        }

        /* Past max_clients only replication links are let in (conn.c's reserve). */
        if (c->reserve && !request_allowed_untrusted(req.type)) {
                b = conn_reply_buf(c);
                if (!b || reply_err(b, ERRC_BUSY, "too many connections") < 0)
                        return -ENOMEM;
                conn_write(c);
                return -EBUSY;
        }
        /* With a client token, nothing but AUTH (and replication, which has its own checks)
         * before the token. A peer that proved the cluster key needs no token. */
        if (m->client_token && !c->token_ok && !peerauth_established(c->auth) &&
            !request_allowed_untrusted(req.type)) {
                b = conn_reply_buf(c);
                return b ? reply_err(b, ERRC_AUTH, "authentication required: AUTH <token> first") : -ENOMEM;
        }

        switch (req.type) {
        case REQUEST_PING:
                b = conn_reply_buf(c);
                return b ? reply_pong(b, m->self->name, role_to_string(m->role), m->term) : -ENOMEM;
        case REQUEST_INFO:
                return request_info(c);
        case REQUEST_GET:
                return request_get(c, req.index);
        case REQUEST_READ:
                p = conn_push(c, PENDING_READ);
                if (!p)
                        return -ENOMEM;
                p->index = req.index;
                p->count = req.count;
                return 0;
        case REQUEST_SEND:
        case REQUEST_PUT:
                return request_write(c, &req);
        case REQUEST_SYNC:
                /* Allowed after HELLO-AUTH/PROOF and after AUTH: nothing else may come first. */
                if (!conn_peer_trusted(c)) {
                        b = conn_reply_buf(c);
                        return b ? reply_err(b, ERRC_AUTH,
                                             "replication over TCP requires the cluster key (HELLO-AUTH)")
                                 : -ENOMEM;
                }
                if (m->client_token && !c->token_ok && !peerauth_established(c->auth)) {
                        b = conn_reply_buf(c);
                        return b ? reply_err(b, ERRC_AUTH, "authentication required: AUTH <token> first")
                                 : -ENOMEM;
                }
                if ((first || c->sync_allowed) && !c->head)
                        return replica_start(c, req.line, req.line_len);
                b = conn_reply_buf(c);
                return b ? reply_err(b, ERRC_BADCMD, "SYNC must be the first request") : -ENOMEM;
        case REQUEST_AUTH:
                b = conn_reply_buf(c);
                if (!b)
                        return -ENOMEM;
                /* Only AUTH and HELLO-AUTH may come before a SYNC. */
                c->sync_allowed = first || c->sync_allowed;
                if (!m->client_token) {
                        /* No token configured: any token is fine (doc/protocol.md). */
                        c->token_ok = true;
                        return reply_ok(b, 0);
                }
                if (!client_token_equal(req.payload, req.payload_len, m->client_token, strlen(m->client_token))) {
                        c->token_ok = false;
                        return reply_err(b, ERRC_AUTH, "bad token");
                }
                c->token_ok = true;
                return reply_ok(b, 0);
        default:
                b = conn_reply_buf(c);
                return b ? reply_err(b, ERRC_BADCMD, "unknown command") : -ENOMEM;
        }
}
