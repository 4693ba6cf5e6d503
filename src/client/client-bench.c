/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * client-bench — `fusion-client bench`: N non-blocking connections to the
 * primary in one epoll loop, each keeping up to K PUTs outstanding, with
 * throughput and latency percentiles; and --continuous, one PUT at a time
 * with retries, reporting the largest gap between consecutive OKs and the
 * largest gap after which the OKs came from another server (the failover
 * time a client sees). Both send AUTH <token> first when the
 * configuration has a client token.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client-commands.h"

typedef struct BenchConn {
        Conn *conn;
        Buf out;
        usec_t *sent_at;       /* ring of K send times */
        unsigned head, outstanding;
        uint64_t quota, sent, done;
        unsigned id;
        bool dead;
        bool watched, want_out; /* in the epoll set; EPOLLOUT asked for */
} BenchConn;

typedef struct Bench {
        const BenchOptions *o;
        BenchConn *conns;
        uint64_t *lat;         /* latencies in usec, one per OK */
        uint64_t n_lat, errors, n_done;
        char *payload;
        usec_t start;
        bool error_printed;
} Bench;

static void bench_error(Bench *b, const char *what) {
        b->errors++;
        if (!b->error_printed)
                fprintf(stderr, "bench: %s (further errors are only counted)\n", what);
        b->error_printed = true;
}

static int bench_queue(Bench *b, BenchConn *bc) {
        while (!bc->dead && bc->outstanding < b->o->pipeline && bc->sent < bc->quota) {
                /* The payload is appended, not formatted: vsnprintf("%s") of a
                 * 4 KiB payload (twice, to size and to write) cost this load
                 * generator more CPU than the primary spent on the request. */
                int r = buf_printf(&bc->out, "PUT bench-%ld-%" PRIu64 "-%u-%" PRIu64 " ", (long) getpid(),
                                   (uint64_t) b->start, bc->id, bc->sent);
                if (r >= 0)
                        r = buf_append(&bc->out, b->payload, b->o->size);
                if (r >= 0)
                        r = buf_append(&bc->out, "\n", 1);
                if (r < 0)
                        return r;
                bc->sent_at[(bc->head + bc->outstanding) % b->o->pipeline] = now_usec();
                bc->outstanding++;
                bc->sent++;
        }
        return 0;
}

static void bench_kill(Bench *b, BenchConn *bc, const char *why) {
        if (!b->error_printed)
                fprintf(stderr, "bench: connection lost: %s\n", why);
        b->error_printed = true;
        b->errors += bc->outstanding + (bc->quota - bc->sent);
        bc->dead = true;
        bc->outstanding = 0;
}

static void bench_on_readable(Bench *b, BenchConn *bc) {
        char *line;
        size_t len;
        int r;

        r = line_reader_fill(&bc->conn->lr, bc->conn->fd);
        if (r == 0 || (r < 0 && r != -EAGAIN && r != -EINTR && r != -ENOBUFS)) {
                bench_kill(b, bc, r == 0 ? "connection closed" : strerror(-r));
                return;
        }
        while (!bc->dead && line_reader_next(&bc->conn->lr, &line, &len) > 0) {
                if (bc->outstanding == 0) {
                        bench_kill(b, bc, "unexpected reply");
                        return;
                }
                usec_t t = bc->sent_at[bc->head];
                bc->head = (bc->head + 1) % b->o->pipeline;
                bc->outstanding--;
                bc->done++;
                b->n_done++;
                if (strncmp(line, "OK", 2) == 0)
                        b->lat[b->n_lat++] = now_usec() - t;
                else
                        bench_error(b, line);
        }
}

static int bench_flush(BenchConn *bc) {
        while (bc->out.len > 0) {
                ssize_t k = send(bc->conn->fd, bc->out.data, bc->out.len, MSG_NOSIGNAL);
                if (k < 0)
                        return errno == EAGAIN || errno == EINTR ? 0 : negative_errno();
                buf_consume(&bc->out, (size_t) k);
        }
        return 0;
}

static void bench_report(Bench *b, usec_t elapsed) {
        const BenchOptions *o = b->o;
        uint64_t total = o->messages;
        double secs = (double) elapsed / (double) USEC_PER_SEC;
        double ops = secs > 0 ? (double) b->n_lat / secs : 0;
        uint64_t p50, p99, max;

        sort_u64(b->lat, b->n_lat);
        p50 = percentile_u64(b->lat, b->n_lat, 50);
        p99 = percentile_u64(b->lat, b->n_lat, 99);
        max = b->n_lat ? b->lat[b->n_lat - 1] : 0;

        printf("%-8s %-8s %-8s %-10s %-8s %-12s %-10s %-10s %s\n", "CLIENTS", "PIPELINE", "SIZE", "MSGS",
               "ERRORS", "OPS/S", "P50_US", "P99_US", "MAX_US");
        printf("%-8u %-8u %-8zu %-10" PRIu64 " %-8" PRIu64 " %-12.0f %-10" PRIu64 " %-10" PRIu64 " %" PRIu64 "\n",
               o->clients, o->pipeline, o->size, total, b->errors, ops, p50, p99, max);
        printf("bench clients=%u size=%zu msgs=%" PRIu64 " ops_per_s=%.0f p50_us=%" PRIu64 " p99_us=%" PRIu64
               " max_us=%" PRIu64 " pipeline=%u errors=%" PRIu64 "\n",
               o->clients, o->size, b->n_lat, ops, p50, p99, max, o->pipeline, b->errors);
        fflush(stdout);
}

/* Answer to the PING that opens a bench connection: PONG, else keep the line for the message. */
static int bench_on_pong(const char *line, size_t len, void *userdata) {
        char *reply = userdata;

        if (len >= 5 && memcmp(line, "PONG ", 5) == 0)
                return 0;
        snprintf(reply, 128, "%.*s", (int) MIN(len, (size_t) 127), line);
        return -EBADMSG;
}

/* Each connection is opened by the client library, through client_query() of
 * a PING: it finds the primary (or takes --server), connects, and when the
 * configuration has a client token sends AUTH <token> first (client-lib.c's
 * client_auth(), the path every fusion-client command takes), so a refused
 * token fails here at once with the library's message. The connection is then
 * taken over; the others go to the same server. */
static int bench_connect(Client *c, Bench *b) {
        for (unsigned i = 0; i < b->o->clients; i++) {
                BenchConn *bc = &b->conns[i];
                char reply[128] = "";
                int r;

                bc->id = i;
                bc->quota = b->o->messages / b->o->clients + (i < b->o->messages % b->o->clients ? 1 : 0);
                bc->sent_at = calloc(b->o->pipeline, sizeof(usec_t));
                if (!bc->sent_at)
                        return -ENOMEM;
                r = client_query(c, "PING", false, bench_on_pong, reply);
                if (r < 0) {
                        if (reply[0])
                                fprintf(stderr, "bench: %s: unexpected reply to PING: %s\n",
                                        c->server ? c->server->address : "server", reply);
                        else
                                fprintf(stderr, "bench: %s\n", c->last_error);
                        return r;
                }
                assert(c->server);
                bc->conn = TAKE_PTR(c->server);
                if (!c->target[0])
                        snprintf(c->target, sizeof(c->target), "%s", bc->conn->address);
        }
        return 0;
}

static bool bench_conn_active(const BenchConn *bc) {
        return !bc->dead && (bc->outstanding > 0 || bc->sent < bc->quota);
}

/* Queue what the connection may send, send what the socket takes, and watch
 * it for what it waits for now (EPOLLOUT only while a request is half sent). */
static int bench_conn_step(Bench *b, BenchConn *bc, int ep) {
        struct epoll_event ev = { .data.u32 = bc->id };
        int r;

        r = bench_queue(b, bc);
        if (r < 0)
                return r;
        if (!bc->dead && bench_flush(bc) < 0)
                bench_kill(b, bc, "write failed");
        if (bc->dead) {
                if (bc->watched)
                        (void) epoll_ctl(ep, EPOLL_CTL_DEL, bc->conn->fd, NULL);
                bc->watched = false;
                return 0;
        }
        if (bc->watched && bc->want_out == (bc->out.len > 0))
                return 0;
        ev.events = EPOLLIN | (bc->out.len > 0 ? EPOLLOUT : 0);
        if (epoll_ctl(ep, bc->watched ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, bc->conn->fd, &ev) < 0)
                return negative_errno();
        bc->watched = true;
        bc->want_out = bc->out.len > 0;
        return 0;
}

/* One epoll set, not poll(): handing poll() all N sockets at every wakeup cost
 * this load generator ~0.3 us per request at 64 connections, which the
 * machine then did not have for the servers. Only the connections that are
 * ready are touched. */
static int bench_loop(Client *c, Bench *b) {
        const BenchOptions *o = b->o;
        _cleanup_(closep) int ep = epoll_create1(EPOLL_CLOEXEC);
        _cleanup_(freep) struct epoll_event *evs = calloc(o->clients, sizeof(struct epoll_event));
        usec_t last_progress = now_usec();
        uint64_t last_done = 0;
        unsigned n_active = 0;
        int r;

        if (ep < 0)
                return negative_errno();
        if (!evs)
                return -ENOMEM;
        for (unsigned i = 0; i < o->clients; i++) {
                r = bench_conn_step(b, &b->conns[i], ep);
                if (r < 0)
                        return r;
                n_active += bench_conn_active(&b->conns[i]);
        }
        while (n_active > 0) {
                if (b->n_done != last_done) {
                        last_done = b->n_done;
                        last_progress = now_usec();
                } else if (now_usec() - last_progress > (usec_t) c->opts.deadline_ms * USEC_PER_MSEC) {
                        fprintf(stderr, "bench: no reply for %d ms, giving up\n", c->opts.deadline_ms);
                        return -ETIMEDOUT;
                }

                int n = epoll_wait(ep, evs, (int) o->clients, 100);
                if (n < 0 && errno != EINTR)
                        return negative_errno();
                for (int k = 0; k < n; k++) {
                        BenchConn *bc = &b->conns[evs[k].data.u32];
                        bool was_active = bench_conn_active(bc);

                        if (evs[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                                bench_on_readable(b, bc);
                        r = bench_conn_step(b, bc, ep);
                        if (r < 0)
                                return r;
                        if (was_active && !bench_conn_active(bc))
                                n_active--;
                }
        }
        return 0;
}

static int bench_continuous(Client *c, const BenchOptions *o) {
        usec_t start = now_usec(), end = start + o->duration_ms * USEC_PER_MSEC, last_ok = 0, max_gap = 0;
        usec_t max_gap_at = 0, fo_gap = 0, fo_gap_at = 0;
        uint64_t oks = 0, failed = 0, failovers = 0;
        char last_server[SOCKADDR_STRLEN] = "";
        _cleanup_(freep) char *payload = malloc(o->size + 1);
        MsgidGen g;

        if (!payload)
                return EXIT_REQUEST_FAILED;
        memset(payload, 'x', o->size);
        payload[o->size] = 0;
        msgid_gen_init(&g);

        while (now_usec() < end) {
                char id[MSGID_MAX_LEN + 1];
                uint64_t index;
                int r;

                if (msgid_gen_next(&g, id, sizeof(id)) < 0)
                        return EXIT_REQUEST_FAILED;
                r = client_put(c, id, payload, o->size, &index);
                if (r < 0) {
                        failed++;
                        if (!c->opts.quiet)
                                fprintf(stderr, "bench: %s\n", c->last_error);
                        if (r == -EBADMSG)
                                return EXIT_REQUEST_FAILED;
                        continue;
                }
                usec_t t = now_usec();
                if (last_ok > 0 && t - last_ok > max_gap) {
                        max_gap = t - last_ok;
                        max_gap_at = now_realtime_usec();
                }
                /* The OK came from another server than the last one: this gap holds a failover. */
                if (c->server) {
                        if (last_server[0] && strcmp(last_server, c->server->address) != 0) {
                                failovers++;
                                if (t - last_ok >= fo_gap) {
                                        fo_gap = t - last_ok;
                                        fo_gap_at = now_realtime_usec();
                                }
                        }
                        snprintf(last_server, sizeof(last_server), "%s", c->server->address);
                }
                last_ok = t;
                oks++;
        }

        char ts[32] = "-", fo_ts[32] = "-", fo_ms[32] = "-";
        if (max_gap_at > 0)
                (void) format_iso8601_ms(ts, sizeof(ts), max_gap_at);
        if (failovers > 0) {
                (void) format_iso8601_ms(fo_ts, sizeof(fo_ts), fo_gap_at);
                (void) snprintf(fo_ms, sizeof(fo_ms), "%.3f", (double) fo_gap / USEC_PER_MSEC);
        }
        /* failover_gap_ms: the largest gap after which the OKs came from another server
         * ("-" when they all came from one); failovers: how many such switches. */
        printf("bench continuous size=%zu msgs=%" PRIu64 " failed=%" PRIu64 " duration_ms=%" PRIu64
               " max_gap_ms=%.3f max_gap_end=%s failovers=%" PRIu64 " failover_gap_ms=%s failover_gap_end=%s\n",
               o->size, oks, failed, (now_usec() - start) / USEC_PER_MSEC, (double) max_gap / USEC_PER_MSEC, ts,
               failovers, fo_ms, fo_ts);
        fflush(stdout);
        return oks > 0 && failed == 0 ? 0 : EXIT_REQUEST_FAILED;
}

int cmd_bench(Client *c, const BenchOptions *o) {
        Bench b = { .o = o };
        int r, ret;

        if (o->size > c->config->max_message_bytes) {
                fprintf(stderr, "bench: --size %zu is larger than max_message_bytes (%" PRIu64 ")\n", o->size,
                        c->config->max_message_bytes);
                return EXIT_USAGE;
        }
        if (o->continuous)
                return bench_continuous(c, o);

        b.start = now_realtime_usec();
        b.conns = calloc(o->clients, sizeof(BenchConn));
        b.lat = calloc(o->messages ? o->messages : 1, sizeof(uint64_t));
        b.payload = malloc(o->size + 1);
        if (!b.conns || !b.lat || !b.payload) {
                ret = EXIT_REQUEST_FAILED;
                goto finish;
        }
        memset(b.payload, 'x', o->size);
        b.payload[o->size] = 0;

        r = bench_connect(c, &b);
        if (r < 0) {
                ret = client_exit_code(c, r);
                goto finish;
        }
        usec_t t0 = now_usec();
        r = bench_loop(c, &b);
        bench_report(&b, now_usec() - t0);
        ret = r < 0 || b.errors > 0 ? EXIT_REQUEST_FAILED : 0;

finish:
        for (unsigned i = 0; b.conns && i < o->clients; i++) {
                conn_free(b.conns[i].conn);
                buf_done(&b.conns[i].out);
                free(b.conns[i].sent_at);
        }
        free(b.conns);
        free(b.lat);
        free(b.payload);
        return ret;
}
