/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * client-lib — what fusion-client and fusionctl share: blocking line
 * connections with poll() deadlines, finding the monitor from the config,
 * WHO, PUT with safe retries (same msgid, bounded exponential backoff),
 * following the primary (watch), and small pure helpers (msgid generation,
 * JSON string escaping, percentiles, ISO-8601 timestamps).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "linereader.h"
#include "net.h"
#include "protocol.h"
#include "util.h"

/* Exit codes of fusion-client (fusionctl adds 4 for unit/permission problems). */
#define EXIT_REQUEST_FAILED 1
#define EXIT_USAGE 2
#define EXIT_NO_PRIMARY 3
#define EXIT_UNIT_PROBLEM 4

#define CLIENT_TIMEOUT_MS_DEFAULT 2000
#define CLIENT_DEADLINE_MS_DEFAULT 30000
#define CLIENT_BACKOFF_MIN_USEC (5 * USEC_PER_MSEC)
#define CLIENT_BACKOFF_MAX_USEC (200 * USEC_PER_MSEC)

/* ---- pure helpers ---- */

/* "<host>-<pid>-<start_usec>-<counter>" with the host reduced to msgid
 * characters ([A-Za-z0-9._:-], others become '_') and shortened so that the
 * whole id fits MSGID_MAX_LEN. size must be > MSGID_MAX_LEN. */
int msgid_format(char *buf, size_t size, const char *host, pid_t pid, usec_t start_usec, uint64_t counter);

/* Append s as a JSON string literal (quotes included); control characters,
 * '"' and '\\' escaped, invalid UTF-8 bytes replaced by U+FFFD. */
int json_append_string(Buf *b, const char *s, size_t len);

/* Nearest-rank percentile (p in 0..100) of a sorted array; 0 when n == 0. */
uint64_t percentile_u64(const uint64_t *sorted, size_t n, double p);
void sort_u64(uint64_t *v, size_t n);

/* "2026-11-26T07:40:01.123Z" (UTC, milliseconds). size >= 25. */
int format_iso8601_ms(char *buf, size_t size, usec_t realtime_usec);

/* Next backoff: doubled, between CLIENT_BACKOFF_MIN_USEC and _MAX. */
usec_t backoff_next(usec_t cur);

/* ---- connections ---- */

typedef struct Conn {
        int fd;
        LineReader lr;
        char address[SOCKADDR_STRLEN];
} Conn;

/* Blocking connect to "host:port" or a unix path with a timeout. */
int conn_open(const char *address, int timeout_ms, size_t max_line, Conn **ret);
Conn *conn_free(Conn *c);
DEFINE_CLEANUP(Conn, conn_free)

/* Write everything before deadline (monotonic usec). -ETIMEDOUT, -EPIPE... */
int conn_write(Conn *c, const void *p, size_t n, usec_t deadline);
/* Write one line (a "\n" is added). */
int conn_write_line(Conn *c, const char *line, usec_t deadline);
/* Read the next line. -ETIMEDOUT at the deadline, -ECONNRESET at EOF,
 * -E2BIG for an over-long line. *ret_line is valid until the next read. */
int conn_read_line(Conn *c, usec_t deadline, char **ret_line, size_t *ret_len);
/* The same, but also return -ECANCELED as soon as other_fd (>= 0) is readable
 * (or hung up) while no line has come on c. */
int conn_read_line_or(Conn *c, int other_fd, usec_t deadline, char **ret_line, size_t *ret_len);

/* ---- the client context ---- */

typedef struct ClientOptions {
        const char *config_path;   /* NULL: the default path, defaults if it does not exist */
        const char *monitor;       /* --monitor ADDR */
        const char *server;        /* --server ADDR: one server, no monitor */
        int timeout_ms;            /* per attempt */
        int deadline_ms;           /* total for one request */
        unsigned retries;          /* at most this many retries per request (0: until the deadline) */
        bool quiet;
} ClientOptions;

typedef struct PrimaryInfo {
        bool known;
        char name[NAME_MAX_LEN + 1];
        char address[SOCKADDR_STRLEN];
        uint64_t term;
} PrimaryInfo;

typedef enum ClientFailure {
        CLIENT_FAIL_NONE,
        CLIENT_FAIL_NO_PRIMARY,    /* monitor unreachable, NOPRIMARY, connection failures */
        CLIENT_FAIL_SERVER,        /* the primary answered with a transient error */
} ClientFailure;

typedef struct Client {
        ClientOptions opts;
        Config *config;
        size_t max_line;
        Conn *server;              /* connection to the current primary (or --server) */
        char target[SOCKADDR_STRLEN]; /* where the next connection goes (REDIRECT); "" = ask */
        PrimaryInfo primary;
        ClientFailure last_failure;
        char last_error[256];      /* human-readable reason of the last failure */
        bool monitor_unreachable;
        Conn *subscription;        /* SUBSCRIBE to the monitor, opened at the first retry or stall: a
                                    * change of primary ends a backoff or a stalled request at once */
        PrimaryInfo announced;     /* the last primary the subscription announced */
} Client;

/* Loads the config (a missing default config means built-in defaults).
 * On a config error returns -EINVAL and a message in *ret_error (malloc'd). */
int client_new(const ClientOptions *o, Client **ret, char **ret_error);
Client *client_free(Client *c);
DEFINE_CLEANUP(Client, client_free)

/* Connect to the monitor's client API: --monitor, else client_socket when set
 * and connectable, else client_address. */
int client_monitor_connect(Client *c, Conn **ret);
/* Ask the monitor WHO. Returns 1 (primary known), 0 (NOPRIMARY), -errno. */
int client_who(Client *c, PrimaryInfo *ret);

/* PUT msgid payload with retries until opts.deadline_ms. Returns 0 and the
 * index; -EBADMSG for a permanent error (c->last_error says which);
 * -ETIMEDOUT when the deadline passed (c->last_failure/last_error say why). */
int client_put(Client *c, const char *msgid, const char *payload, size_t len, uint64_t *ret_index);

/* Send one read-only request (GET, READ, INFO, PING) to the primary (or
 * --server) and call cb for each reply line until a terminating line: for
 * multi-line requests END or ERR, else the first line. cb returns < 0 to
 * stop. Retries connection failures until the deadline. */
typedef int (*client_line_cb)(const char *line, size_t len, void *userdata);
int client_query(Client *c, const char *request, bool multiline, client_line_cb cb, void *userdata);

/* Map a client_put()/client_query() error to an exit code. */
int client_exit_code(const Client *c, int r);

/* Follow SUBSCRIBE on the monitor for ever, printing each change of primary
 * as "<ISO-8601> primary=NAME address=A term=T" or "<ISO-8601> no primary";
 * reconnects when the monitor goes away. Returns only on error (or after
 * max_events changes when max_events > 0, for tests). */
int client_watch(Client *c, unsigned max_events);
