/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * client-lib — finding the monitor and the primary, WHO, PUT with safe
 * retries, read-only queries and SUBSCRIBE (watch). Blocking I/O with poll()
 * and deadlines: this is CLI code, not daemon code.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client-lib.h"
#include "fusion-config.h"
#include "peerauth.h"

#define CLIENT_LINE_SLACK 128
#define CLIENT_STALL_CHECK_USEC (100 * USEC_PER_MSEC)

int client_new(const ClientOptions *o, Client **ret, char **ret_error) {
        _cleanup_(client_freep) Client *c = NULL;
        const char *path = o->config_path ?: FUSION_CONFIG_PATH;
        int r;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->opts = *o;
        if (c->opts.timeout_ms <= 0)
                c->opts.timeout_ms = CLIENT_TIMEOUT_MS_DEFAULT;
        if (c->opts.deadline_ms <= 0)
                c->opts.deadline_ms = CLIENT_DEADLINE_MS_DEFAULT;

        r = config_load(path, &c->config, ret_error);
        if (r == -ENOENT && !o->config_path) {
                /* no config installed: built-in defaults (local monitor) */
                if (ret_error) {
                        free(*ret_error);
                        *ret_error = NULL;
                }
                r = config_new_default(&c->config);
        }
        if (r < 0)
                return r;

        c->max_line = c->config->max_message_bytes + CLIENT_LINE_SLACK;
        *ret = TAKE_PTR(c);
        return 0;
}

Client *client_free(Client *c) {
        if (!c)
                return NULL;
        conn_free(c->server);
        conn_free(c->subscription);
        config_free(c->config);
        free(c);
        return NULL;
}

static void client_fail(Client *c, ClientFailure f, const char *fmt, ...) _printf_(3, 4);
static void client_fail(Client *c, ClientFailure f, const char *fmt, ...) {
        va_list ap;

        c->last_failure = f;
        va_start(ap, fmt);
        vsnprintf(c->last_error, sizeof(c->last_error), fmt, ap);
        va_end(ap);
}

int client_monitor_connect(Client *c, Conn **ret) {
        const char *candidates[2] = {};
        size_t n = 0;
        int r = -ENOENT;

        if (c->opts.monitor)
                candidates[n++] = c->opts.monitor;
        else {
                if (c->config->client_socket && *c->config->client_socket)
                        candidates[n++] = c->config->client_socket;
                if (c->config->client_address && *c->config->client_address)
                        candidates[n++] = c->config->client_address;
        }

        for (size_t i = 0; i < n; i++) {
                r = conn_open(candidates[i], c->opts.timeout_ms, c->max_line, ret);
                if (r >= 0) {
                        c->monitor_unreachable = false;
                        return 0;
                }
        }
        c->monitor_unreachable = true;
        if (n == 0)
                client_fail(c, CLIENT_FAIL_NO_PRIMARY, "no monitor configured (client_socket and client_listen empty)");
        else
                client_fail(c, CLIENT_FAIL_NO_PRIMARY, "monitor unreachable at %s: %s", candidates[n - 1],
                            strerror(-r));
        return r;
}

static int primary_from_reply(const Reply *rep, PrimaryInfo *ret) {
        if (rep->type == REPLY_NOPRIMARY) {
                *ret = (PrimaryInfo){};
                return 0;
        }
        if (rep->type != REPLY_PRIMARY)
                return -EBADMSG;
        *ret = (PrimaryInfo){ .known = true, .term = rep->term };
        snprintf(ret->name, sizeof(ret->name), "%s", rep->name);
        snprintf(ret->address, sizeof(ret->address), "%s", rep->address);
        return 1;
}

int client_who(Client *c, PrimaryInfo *ret) {
        _cleanup_(conn_freep) Conn *m = NULL;
        usec_t deadline = now_usec() + (usec_t) c->opts.timeout_ms * USEC_PER_MSEC;
        Reply rep;
        char *line;
        size_t len;
        int r;

        r = client_monitor_connect(c, &m);
        if (r < 0)
                return r;
        r = conn_write_line(m, "WHO", deadline);
        if (r >= 0)
                r = conn_read_line(m, deadline, &line, &len);
        if (r < 0) {
                client_fail(c, CLIENT_FAIL_NO_PRIMARY, "monitor %s: WHO failed: %s", m->address, strerror(-r));
                return r;
        }
        r = reply_parse(line, len, &rep);
        if (r >= 0)
                r = primary_from_reply(&rep, ret);
        if (r < 0) {
                client_fail(c, CLIENT_FAIL_NO_PRIMARY, "monitor %s: unexpected reply to WHO", m->address);
                return -EBADMSG;
        }
        if (r == 0)
                client_fail(c, CLIENT_FAIL_NO_PRIMARY, "no primary (monitor %s says NOPRIMARY)", m->address);
        return r;
}

/* [cluster] client_token (or client_token_file) set: AUTH first on a new server connection.
 * A token that cannot be read or is refused is permanent: -EBADMSG. */
static int client_auth(Client *c) {
        _cleanup_(freep) char *token = NULL, *error = NULL, *req = NULL;
        usec_t deadline = now_usec() + (usec_t) c->opts.timeout_ms * USEC_PER_MSEC;
        char *line = NULL;
        size_t len;
        int r;

        r = client_token_load(c->config, &token, &error);
        if (r < 0) {
                client_fail(c, CLIENT_FAIL_SERVER, "%s", error ?: "cannot load the client token");
                c->server = conn_free(c->server);
                return -EBADMSG;
        }
        if (!token)
                return 0;
        if (asprintf(&req, "AUTH %s", token) < 0) {
                req = NULL;
                return -ENOMEM;
        }
        r = conn_write_line(c->server, req, deadline);
        if (r >= 0)
                r = conn_read_line(c->server, deadline, &line, &len);
        if (r >= 0 && strcmp(line, "OK") != 0) {
                client_fail(c, CLIENT_FAIL_SERVER, "%s refused the client token: %s", c->server->address, line);
                c->server = conn_free(c->server);
                return -EBADMSG;
        }
        if (r < 0) {
                client_fail(c, CLIENT_FAIL_NO_PRIMARY, "%s: %s", c->server->address,
                            r == -ECONNRESET ? "connection closed" : strerror(-r));
                c->server = conn_free(c->server);
        }
        return r;
}

/* Make sure c->server is connected to where requests should go. */
static int client_ensure_server(Client *c) {
        const char *addr;
        int r;

        if (c->server)
                return 0;

        if (c->target[0])
                addr = c->target;
        else if (c->opts.server)
                addr = c->opts.server;
        else {
                r = client_who(c, &c->primary);
                if (r <= 0)
                        return r < 0 ? r : -EHOSTUNREACH;
                addr = c->primary.address;
        }

        r = conn_open(addr, c->opts.timeout_ms, c->max_line, &c->server);
        if (r < 0) {
                client_fail(c, CLIENT_FAIL_NO_PRIMARY, "cannot connect to %s: %s", addr, strerror(-r));
                c->target[0] = 0;
                return r;
        }
        return client_auth(c);
}

static void client_drop_server(Client *c) {
        c->server = conn_free(c->server);
}

static bool err_is_transient(ErrCode code) {
        return code == ERRC_NOLEASE || code == ERRC_NOREPLICAS || code == ERRC_NOPRIMARY || code == ERRC_BUSY ||
               code == ERRC_INTERNAL;
}

/* A line from the subscription: remember the primary it announces. */
static void client_take_announcement(Client *c, char *line, size_t len) {
        PrimaryInfo p;
        Reply rep;

        if (reply_parse(line, len, &rep) >= 0 && primary_from_reply(&rep, &p) >= 0)
                c->announced = p;
}

/* Open the SUBSCRIBE connection to the monitor and take its first line (the
 * current primary): from then on, a line means the primary changed. 1: newly
 * opened (c->announced is the current primary), 0: already open. */
static int client_subscribe(Client *c) {
        usec_t deadline = now_usec() + (usec_t) c->opts.timeout_ms * USEC_PER_MSEC;
        char saved[sizeof(c->last_error)];
        char *line;
        size_t len;
        int r;

        if (c->subscription)
                return 0;
        memcpy(saved, c->last_error, sizeof(saved));
        r = client_monitor_connect(c, &c->subscription);
        memcpy(c->last_error, saved, sizeof(saved));   /* the request's failure is the news */
        if (r < 0)
                return r;
        r = conn_write_line(c->subscription, "SUBSCRIBE", deadline);
        if (r >= 0)
                r = conn_read_line(c->subscription, deadline, &line, &len);
        if (r < 0) {
                c->subscription = conn_free(c->subscription);
                return r;
        }
        client_take_announcement(c, line, len);
        return 1;
}

/* Take the subscription's next line, waiting until deadline: 0 when one came;
 * -ETIMEDOUT when none did; another error closes the subscription. */
static int client_read_announcement(Client *c, usec_t deadline) {
        char *line;
        size_t len;
        int r;

        r = conn_read_line(c->subscription, deadline, &line, &len);
        if (r >= 0) {
                client_take_announcement(c, line, len);
                return 0;
        }
        if (r != -ETIMEDOUT)
                c->subscription = conn_free(c->subscription);
        return r;
}

/* Take what the subscription has to say now (without waiting). true when the
 * primary it announces is known and is not at address. */
static bool client_announced_elsewhere(Client *c, const char *address) {
        while (c->subscription && client_read_announcement(c, now_usec()) >= 0)
                ;
        return c->announced.known && strcmp(c->announced.address, address) != 0;
}

/* Wait until deadline, or until the monitor announces a change of primary
 * (then return at once: the retry goes to the new primary without waiting out
 * the backoff). Without a monitor connection this is a plain sleep. */
static void client_wait_for_change(Client *c, usec_t deadline) {
        struct timespec ts;
        usec_t n;

        if (!c->opts.server) {
                int r = client_subscribe(c);

                /* Just subscribed and the primary is already another one than we used: go. */
                if (r > 0 && c->primary.known && client_announced_elsewhere(c, c->primary.address))
                        return;
                if (r >= 0 && client_read_announcement(c, deadline) >= 0)
                        return;   /* PRIMARY/NOPRIMARY: something moved */
        }
        n = now_usec();
        if (n >= deadline)
                return;
        ts = (struct timespec){ .tv_sec = (time_t) ((deadline - n) / USEC_PER_SEC),
                                .tv_nsec = (long) (((deadline - n) % USEC_PER_SEC) * 1000) };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

/* Wait the backoff (cut short by a change of primary) unless it would pass
 * the deadline or the retry budget. -ETIMEDOUT then. */
static int client_backoff(Client *c, unsigned *attempts, usec_t *backoff, usec_t deadline) {
        usec_t n = now_usec();

        *backoff = backoff_next(*backoff);
        if (n >= deadline)
                return -ETIMEDOUT;
        if (attempts && c->opts.retries > 0 && ++*attempts > c->opts.retries)
                return -ETIMEDOUT;
        client_wait_for_change(c, n + MIN(*backoff, deadline - n));
        return now_usec() >= deadline ? -ETIMEDOUT : 0;
}

/* While a reply is slow in coming, ask the monitor every
 * CLIENT_STALL_CHECK_USEC whether the primary moved elsewhere (a hung
 * primary keeps its connections open): true when it did. */
static bool client_primary_moved(Client *c) {
        char saved[sizeof(c->last_error)];
        PrimaryInfo p;
        bool moved;

        if (c->opts.server)
                return false;
        memcpy(saved, c->last_error, sizeof(saved));
        moved = client_who(c, &p) > 0 && strcmp(p.address, c->server->address) != 0;
        memcpy(c->last_error, saved, sizeof(saved));   /* a failed WHO here is no news */
        if (moved)
                client_fail(c, CLIENT_FAIL_NO_PRIMARY, "%s does not answer; the primary is now %s at %s",
                            c->server->address, p.name, p.address);
        return moved;
}

/* One attempt: send the request line and read the first reply line.
 * Returns 0 with *rep parsed, or -errno (connection dropped). */
static int client_attempt(Client *c, const char *req, size_t req_len, usec_t deadline, Reply *rep) {
        usec_t attempt = MIN(deadline, now_usec() + (usec_t) c->opts.timeout_ms * USEC_PER_MSEC);
        char *line;
        size_t len;
        int r;

        r = conn_write(c->server, req, req_len, attempt);
        while (r >= 0) {
                int watch = c->subscription ? c->subscription->fd : -1;

                r = conn_read_line_or(c->server, watch, MIN(attempt, now_usec() + CLIENT_STALL_CHECK_USEC), &line,
                                      &len);
                if (r == -ECANCELED) {
                        /* The monitor announced a change while we wait: a hung primary never answers. */
                        if (client_announced_elsewhere(c, c->server->address)) {
                                client_fail(c, CLIENT_FAIL_NO_PRIMARY, "%s does not answer; the primary is now %s at %s",
                                            c->server->address, c->announced.name, c->announced.address);
                                client_drop_server(c);
                                c->target[0] = 0;
                                return -EAGAIN;
                        }
                        r = 0;
                        continue;
                }
                if (r != -ETIMEDOUT || now_usec() >= attempt)
                        break;
                if (client_primary_moved(c)) {
                        client_drop_server(c);
                        c->target[0] = 0;
                        return -EAGAIN;
                }
                /* Slow: from now on hear of a change of primary the moment the monitor makes it. */
                if (!c->opts.server)
                        (void) client_subscribe(c);
                r = 0;
        }
        if (r >= 0 && reply_parse(line, len, rep) < 0)
                r = -EBADMSG;
        if (r < 0) {
                client_fail(c, CLIENT_FAIL_NO_PRIMARY, "%s: %s", c->server->address,
                            r == -ECONNRESET ? "connection closed" : strerror(-r));
                client_drop_server(c);
                c->target[0] = 0;
        }
        return r;
}

/* Handle a non-OK reply: 1 = retry now (REDIRECT), 0 = retry after backoff,
 * -EBADMSG = permanent. */
static int client_handle_reply(Client *c, const Reply *rep, unsigned *redirects) {
        if (rep->type == REPLY_REDIRECT) {
                /* rep points into the connection's buffer: copy before dropping it */
                client_fail(c, CLIENT_FAIL_NO_PRIMARY, "%s redirects to %s", c->server->address, rep->address);
                snprintf(c->target, sizeof(c->target), "%s", rep->address);
                client_drop_server(c);
                if (c->opts.server || ++*redirects <= 3)
                        return 1;
                c->target[0] = 0;   /* redirect loop: ask the monitor after a pause */
                return 0;
        }
        if (rep->type == REPLY_ERR && err_is_transient(rep->code)) {
                client_fail(c, rep->code == ERRC_NOPRIMARY ? CLIENT_FAIL_NO_PRIMARY : CLIENT_FAIL_SERVER,
                            "%s: ERR %s %s", c->server->address, err_code_to_string(rep->code), rep->text);
                client_drop_server(c);
                c->target[0] = 0;
                return 0;
        }
        if (rep->type == REPLY_ERR)
                client_fail(c, CLIENT_FAIL_SERVER, "ERR %s %s",
                            rep->code >= 0 ? err_code_to_string(rep->code) : "?", rep->text);
        else
                client_fail(c, CLIENT_FAIL_SERVER, "%s: unexpected reply", c->server->address);
        return -EBADMSG;
}

int client_put(Client *c, const char *msgid, const char *payload, size_t len, uint64_t *ret_index) {
        usec_t deadline = now_usec() + (usec_t) c->opts.deadline_ms * USEC_PER_MSEC;
        _cleanup_(buf_done) Buf req = {};
        usec_t backoff = 0;
        unsigned redirects = 0, attempts = 0;
        int r;

        if (memchr(payload, '\n', len) || memchr(payload, '\0', len)) {
                client_fail(c, CLIENT_FAIL_SERVER, "message contains a newline or NUL byte");
                return -EBADMSG;
        }
        r = buf_printf(&req, "PUT %s ", msgid);
        if (r >= 0)
                r = buf_append(&req, payload, len);
        if (r >= 0)
                r = buf_append(&req, "\n", 1);
        if (r < 0)
                return r;

        for (;;) {
                Reply rep;

                r = client_ensure_server(c);
                if (r == -EBADMSG)
                        return r;   /* the client token was refused */
                if (r >= 0)
                        r = client_attempt(c, req.data, req.len, deadline, &rep);
                if (r >= 0) {
                        if (rep.type == REPLY_OK) {
                                c->last_failure = CLIENT_FAIL_NONE;
                                *ret_index = rep.index;
                                return 0;
                        }
                        r = client_handle_reply(c, &rep, &redirects);
                        if (r == -EBADMSG)
                                return r;
                        if (r == 1)
                                continue;
                }
                if (client_backoff(c, &attempts, &backoff, deadline) < 0)
                        return -ETIMEDOUT;
        }
}

static bool is_terminal_reply(const char *line, bool multiline) {
        if (!multiline)
                return true;
        return strcmp(line, "END") == 0 || strncmp(line, "ERR ", 4) == 0 || strcmp(line, "ERR") == 0 ||
               strncmp(line, "REDIRECT ", 9) == 0;
}

int client_query(Client *c, const char *request, bool multiline, client_line_cb cb, void *userdata) {
        usec_t deadline = now_usec() + (usec_t) c->opts.deadline_ms * USEC_PER_MSEC;
        usec_t backoff = 0;
        unsigned attempts = 0;
        int r;

        for (;;) {
                bool output = false;
                usec_t attempt;
                char *line;
                size_t len;

                r = client_ensure_server(c);
                if (r == -EBADMSG)
                        return r;   /* the client token was refused */
                if (r < 0)
                        goto retry;
                attempt = MIN(deadline, now_usec() + (usec_t) c->opts.timeout_ms * USEC_PER_MSEC);
                r = conn_write_line(c->server, request, attempt);
                while (r >= 0) {
                        r = conn_read_line(c->server, attempt, &line, &len);
                        if (r < 0)
                                break;
                        bool last = is_terminal_reply(line, multiline);
                        int k = cb(line, len, userdata);
                        output = true;
                        if (k < 0)
                                return k;
                        if (last)
                                return 0;
                        attempt = MIN(deadline, now_usec() + (usec_t) c->opts.timeout_ms * USEC_PER_MSEC);
                }
                client_fail(c, CLIENT_FAIL_NO_PRIMARY, "%s: %s", c->server->address,
                            r == -ECONNRESET ? "connection closed" : strerror(-r));
                client_drop_server(c);
                /* a reply cut in the middle is not retried: its first part was printed */
                if (output || r == -E2BIG) {
                        c->last_failure = CLIENT_FAIL_SERVER;
                        return r;
                }
        retry:
                if (client_backoff(c, &attempts, &backoff, deadline) < 0)
                        return -ETIMEDOUT;
        }
}

int client_exit_code(const Client *c, int r) {
        if (r >= 0)
                return 0;
        if (r == -ETIMEDOUT && c->last_failure == CLIENT_FAIL_NO_PRIMARY)
                return EXIT_NO_PRIMARY;
        return EXIT_REQUEST_FAILED;
}

static void watch_print(const PrimaryInfo *p) {
        char ts[32];

        if (format_iso8601_ms(ts, sizeof(ts), now_realtime_usec()) < 0)
                snprintf(ts, sizeof(ts), "?");
        if (p->known)
                printf("%s primary=%s address=%s term=%" PRIu64 "\n", ts, p->name, p->address, p->term);
        else
                printf("%s no primary\n", ts);
        fflush(stdout);
}

int client_watch(Client *c, unsigned max_events) {
        PrimaryInfo last = {};
        bool printed = false, lost_reported = false;
        unsigned events = 0;
        usec_t backoff = 0;
        int r;

        for (;;) {
                _cleanup_(conn_freep) Conn *m = NULL;
                char *line;
                size_t len;

                r = client_monitor_connect(c, &m);
                if (r >= 0)
                        r = conn_write_line(m, "SUBSCRIBE", now_usec() + (usec_t) c->opts.timeout_ms * USEC_PER_MSEC);
                if (r < 0) {
                        if (!lost_reported && !c->opts.quiet)
                                fprintf(stderr, "%s, retrying\n", c->last_error[0] ? c->last_error : "monitor unreachable");
                        lost_reported = true;
                        (void) client_backoff(c, NULL, &backoff, USEC_INFINITY);
                        continue;
                }
                backoff = 0;
                lost_reported = false;

                while ((r = conn_read_line(m, USEC_INFINITY, &line, &len)) >= 0) {
                        PrimaryInfo p;
                        Reply rep;

                        if (reply_parse(line, len, &rep) < 0 || primary_from_reply(&rep, &p) < 0)
                                continue;   /* not ours: ignore */
                        if (printed && p.known == last.known && p.term == last.term &&
                            strcmp(p.name, last.name) == 0 && strcmp(p.address, last.address) == 0)
                                continue;   /* repeated after a reconnect */
                        watch_print(&p);
                        last = p;
                        printed = true;
                        if (max_events > 0 && ++events >= max_events)
                                return 0;
                }
                if (!c->opts.quiet)
                        fprintf(stderr, "monitor %s: %s, reconnecting\n", m->address,
                                r == -ECONNRESET ? "connection closed" : strerror(-r));
                lost_reported = true;
        }
}
