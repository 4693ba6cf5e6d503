/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * monitor-auth — HELLO-AUTH/CHALLENGE/PROOF and sealed lines on the monitor's
 * heartbeat connections (see monitor-auth.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"
#include "monitor-auth.h"
#include "peerauth.h"

static PeerAuthKey cluster_key;
static RateLimit auth_log = RATELIMIT_INIT(10 * USEC_PER_SEC, 10);

int monitor_auth_load(const Config *c) {
        _cleanup_(freep) char *error = NULL;
        int r;

        r = peerauth_init();
        if (r < 0)
                return log_error_errno(r, "Failed to initialize libsodium: %m");
        if (!config_auth_needed(c))
                return 0;
        r = peerauth_key_load(c->authkey_file, &cluster_key, &error);
        if (r < 0) {
                if (error)
                        log_error("%s", error);
                return log_error_errno(r, "The cluster key is needed for [cluster] auth = %s.",
                                       auth_mode_to_string(c->auth));
        }
        return 0;
}

const char *hb_conn_peer(const HbConn *c, char *buf, size_t size) {
        SockAddr a = { .len = sizeof(a.storage) };

        if (c->is_unix || c->fd < 0 || getpeername(c->fd, &a.sa, &a.len) < 0 ||
            sockaddr_format(&a, buf, size) < 0)
                snprintf(buf, size, "%s", c->is_unix ? "on the unix socket" : "(unknown address)");
        return buf;
}

_printf_(1, 2) static void log_auth(const char *fmt, ...) {
        unsigned suppressed = 0;
        char msg[512];
        va_list ap;

        if (!ratelimit_pass(&auth_log, now_usec(), &suppressed))
                return;
        va_start(ap, fmt);
        (void) vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        if (suppressed > 0)
                log_warning("%s (%u similar messages suppressed)", msg, suppressed);
        else
                log_warning("%s", msg);
}

int hb_conn_auth_line(HbConn *c, char *line, size_t *len) {
        const char *reason = NULL;
        char peer[SOCKADDR_STRLEN];
        int r;

        if (!c->auth) {
                if (!config_auth_applies(c->manager->config, c->is_unix))
                        return 0;
                if (!peerauth_is_hello(line, *len)) {
                        log_auth("Refusing heartbeat connection from %s: authentication required (it sent no "
                                 "HELLO-AUTH); closing it.",
                                 hb_conn_peer(c, peer, sizeof(peer)));
                        return -EACCES;
                }
                if (!cluster_key.set) {
                        log_auth("Refusing heartbeat connection from %s: no cluster key loaded.",
                                 hb_conn_peer(c, peer, sizeof(peer)));
                        return -ENOKEY;
                }
                c->auth = calloc(1, sizeof(PeerAuth));
                if (!c->auth)
                        return log_oom();
                r = peerauth_on_hello(c->auth, &cluster_key, line, *len, &c->out.buf, &reason);
                if (r < 0) {
                        log_auth("Authentication failed for peer %s: %s; closing the connection.",
                                 hb_conn_peer(c, peer, sizeof(peer)), reason);
                        return r;
                }
                if (!manager_find_peer(c->manager, c->auth->name)) {
                        log_auth("Authentication refused for peer %s claiming to be %s: not a configured server; "
                                 "closing the connection.",
                                 hb_conn_peer(c, peer, sizeof(peer)), c->auth->name);
                        c->auth->state = PEERAUTH_FAILED;
                        return -EACCES;
                }
                /* The CHALLENGE goes out in the clear. */
                peer_out_seal_from_here(&c->out);
                (void) hb_conn_flush(c);
                return 1;
        }

        if (c->auth->state == PEERAUTH_CHALLENGE_SENT) {
                r = peerauth_on_proof(c->auth, line, *len, &reason);
                if (r < 0) {
                        log_auth("Authentication failed for peer %s claiming to be %s: %s; closing the connection.",
                                 hb_conn_peer(c, peer, sizeof(peer)), c->auth->name, reason);
                        return r;
                }
                peer_out_seal_from_here(&c->out);
                log_debug("Heartbeat peer %s authenticated as %s.", hb_conn_peer(c, peer, sizeof(peer)),
                          c->auth->name);
                return 1;
        }

        r = peerauth_open(c->auth, line, len, &reason);
        if (r < 0) {
                log_auth("Rejecting a heartbeat line from %s (authenticated as %s): %s; closing the connection.",
                         hb_conn_peer(c, peer, sizeof(peer)), c->auth->name, reason);
                return r;
        }
        return 0;
}

void hb_conn_auth_free(HbConn *c) {
        char peer[SOCKADDR_STRLEN];

        if (!c->auth)
                return;
        if (c->auth->state == PEERAUTH_CHALLENGE_SENT)
                /* A server that finds our CHALLENGE wrong (another key) hangs up without a PROOF. */
                log_auth("Authentication failed for peer %s claiming to be %s: no PROOF (it hung up or timed out; "
                         "another cluster key?); closing the connection.",
                         hb_conn_peer(c, peer, sizeof(peer)), c->auth->name);
        peerauth_done(c->auth);
        free(c->auth);
        c->auth = NULL;
}
