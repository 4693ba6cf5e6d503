/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * resp-bench — the Redis side of bench/run's write benchmarks, built the same
 * way as `fusion-client bench`: N non-blocking connections in one epoll
 * loop, each with one request outstanding, latency from writing the request
 * to reading its (last) reply.
 *
 *   resp-bench --port P [--host H] --clients N --messages M --size S [--wait K]
 *
 * Each request is `SET bench:<conn> <S bytes>`; with --wait K it is followed,
 * in the same write, by `WAIT K 0`, and the request counts as acknowledged
 * only when WAIT answers >= K. Prints one line:
 *
 *   bench clients=N size=S msgs=M ops_per_s=X p50_us=.. p99_us=.. max_us=.. errors=E
 *
 * Bounded: gives up after --timeout-ms (default 60000) without progress.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_us(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

typedef struct RConn {
        int fd;
        char *req;
        size_t req_len, req_off;
        char in[4096];
        size_t in_len;
        unsigned replies_left; /* of the outstanding request */
        bool failed;           /* some reply of the outstanding request was bad */
        uint64_t quota, done;
        uint64_t sent_at;
        bool dead;
        bool watched, want_out; /* in the epoll set; EPOLLOUT asked for */
} RConn;

typedef struct Totals {
        uint64_t *lat, n_lat, errors, done;
        unsigned wait_k;
        bool err_printed;
} Totals;

static bool rconn_active(const RConn *r) {
        return !r->dead && r->done < r->quota;
}

static void rconn_kill(RConn *r, Totals *t, const char *why) {
        if (why && !t->err_printed)
                fprintf(stderr, "resp-bench: %s\n", why);
        if (why)
                t->err_printed = true;
        r->dead = true;
        t->errors += r->quota - r->done;
}

/* Start the next request if none is outstanding, send what the socket takes,
 * and watch the connection for what it waits for now. */
static int rconn_step(RConn *r, Totals *t, int ep, unsigned id) {
        struct epoll_event ev = { .data.u32 = id };

        if (!r->dead && r->replies_left == 0 && r->req_off == 0 && r->done < r->quota) {
                r->replies_left = t->wait_k > 0 ? 2 : 1;
                r->failed = false;
                r->sent_at = now_us();
        }
        while (!r->dead && r->replies_left > 0 && r->req_off < r->req_len) {
                ssize_t k = send(r->fd, r->req + r->req_off, r->req_len - r->req_off, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (k < 0) {
                        if (errno != EAGAIN && errno != EINTR)
                                rconn_kill(r, t, NULL);
                        break;
                }
                r->req_off += (size_t) k;
        }
        if (r->dead) {
                if (r->watched)
                        (void) epoll_ctl(ep, EPOLL_CTL_DEL, r->fd, NULL);
                r->watched = false;
                return 0;
        }
        bool want_out = r->replies_left > 0 && r->req_off < r->req_len;
        if (r->watched && r->want_out == want_out)
                return 0;
        ev.events = EPOLLIN | (want_out ? EPOLLOUT : 0);
        if (epoll_ctl(ep, r->watched ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, r->fd, &ev) < 0)
                return -errno;
        r->watched = true;
        r->want_out = want_out;
        return 0;
}

static void rconn_on_readable(RConn *r, Totals *t) {
        ssize_t k = recv(r->fd, r->in + r->in_len, sizeof(r->in) - r->in_len, MSG_DONTWAIT);
        if (k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR)) {
                rconn_kill(r, t, "connection lost");
                return;
        }
        if (k < 0)
                return;
        r->in_len += (size_t) k;
        char *p = r->in, *end = r->in + r->in_len, *nl;
        while ((nl = memchr(p, '\n', (size_t) (end - p)))) {
                /* SET answers +OK, WAIT :N, errors -ERR ...: all one line */
                if (*p == '-' || (*p == ':' && strtoull(p + 1, NULL, 10) < t->wait_k)) {
                        if (!t->err_printed)
                                fprintf(stderr, "resp-bench: reply %.*s\n", (int) (nl - p), p);
                        t->err_printed = true;
                        r->failed = true;
                }
                p = nl + 1;
                if (r->replies_left > 0 && --r->replies_left == 0) {
                        r->done++;
                        t->done++;
                        r->req_off = 0;
                        if (r->failed)
                                t->errors++;
                        else
                                t->lat[t->n_lat++] = now_us() - r->sent_at;
                }
        }
        memmove(r->in, p, (size_t) (end - p));
        r->in_len = (size_t) (end - p);
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

static uint64_t pct(const uint64_t *v, uint64_t n, unsigned p) {
        if (n == 0)
                return 0;
        uint64_t i = (n * p + 99) / 100;
        return v[i > 0 ? i - 1 : 0];
}

int main(int argc, char **argv) {
        const char *host = "127.0.0.1";
        unsigned port = 0, clients = 1, wait_k = 0;
        uint64_t messages = 10000, timeout_ms = 60000;
        size_t size = 100;
        static const struct option opts[] = {
                { "host", required_argument, NULL, 'H' },     { "port", required_argument, NULL, 'p' },
                { "clients", required_argument, NULL, 'c' },  { "messages", required_argument, NULL, 'n' },
                { "size", required_argument, NULL, 'd' },     { "wait", required_argument, NULL, 'w' },
                { "timeout-ms", required_argument, NULL, 't' }, {}
        };
        int o;

        while ((o = getopt_long(argc, argv, "H:p:c:n:d:w:t:", opts, NULL)) >= 0)
                switch (o) {
                case 'H': host = optarg; break;
                case 'p': port = (unsigned) strtoul(optarg, NULL, 10); break;
                case 'c': clients = (unsigned) strtoul(optarg, NULL, 10); break;
                case 'n': messages = strtoull(optarg, NULL, 10); break;
                case 'd': size = strtoull(optarg, NULL, 10); break;
                case 'w': wait_k = (unsigned) strtoul(optarg, NULL, 10); break;
                case 't': timeout_ms = strtoull(optarg, NULL, 10); break;
                default: fprintf(stderr, "usage: resp-bench --port P [--clients N] [--messages M] [--size S] [--wait K]\n"); return 2;
                }
        if (port == 0 || clients == 0 || clients > 100000 || messages == 0) {
                fprintf(stderr, "resp-bench: bad arguments\n");
                return 2;
        }

        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < clients + 64) {
                rl.rlim_cur = rl.rlim_max;
                (void) setrlimit(RLIMIT_NOFILE, &rl);
        }

        RConn *c = calloc(clients, sizeof(RConn));
        uint64_t *lat = calloc(messages, sizeof(uint64_t));
        struct epoll_event *evs = calloc(clients, sizeof(struct epoll_event));
        char *payload = malloc(size + 1);
        if (!c || !lat || !evs || !payload)
                return 1;
        memset(payload, 'x', size);
        payload[size] = 0;

        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t) port) };
        if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
                fprintf(stderr, "resp-bench: bad host %s\n", host);
                return 2;
        }
        for (unsigned i = 0; i < clients; i++) {
                char key[32];
                int kl = snprintf(key, sizeof(key), "bench:%u", i);
                char *w = NULL;
                size_t wl = 0;
                FILE *f = open_memstream(&w, &wl);
                if (!f)
                        return 1;
                fprintf(f, "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%zu\r\n", kl, key, size);
                fwrite(payload, 1, size, f);
                fputs("\r\n", f);
                if (wait_k > 0) {
                        char k[16];
                        int l = snprintf(k, sizeof(k), "%u", wait_k);
                        fprintf(f, "*3\r\n$4\r\nWAIT\r\n$%d\r\n%s\r\n$1\r\n0\r\n", l, k);
                }
                fclose(f);
                c[i].req = w;
                c[i].req_len = wl;
                c[i].quota = messages / clients + (i < messages % clients ? 1 : 0);
                c[i].fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (c[i].fd < 0 || connect(c[i].fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                        fprintf(stderr, "resp-bench: connect %s:%u: %m\n", host, port);
                        return 1;
                }
                int one = 1;
                (void) setsockopt(c[i].fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        }

        /* One epoll set, not poll(): poll() of all N sockets at every wakeup costs the
         * load generator work per request that grows with N (1000 connections in
         * figure 7). Only the connections that are ready are touched. */
        int ep = epoll_create1(EPOLL_CLOEXEC);
        if (ep < 0)
                return 1;
        Totals t = { .lat = lat, .wait_k = wait_k };
        uint64_t t0 = now_us(), last_progress = t0, last_done = 0;
        unsigned n_active = 0;
        for (unsigned i = 0; i < clients; i++) {
                if (rconn_step(&c[i], &t, ep, i) < 0)
                        return 1;
                n_active += rconn_active(&c[i]);
        }
        while (n_active > 0) {
                uint64_t now = now_us();
                if (t.done != last_done) {
                        last_done = t.done;
                        last_progress = now;
                } else if (now - last_progress > timeout_ms * 1000) {
                        fprintf(stderr, "resp-bench: no progress for %" PRIu64 " ms, giving up\n", timeout_ms);
                        break;
                }
                int n = epoll_wait(ep, evs, (int) clients, 100);
                if (n < 0 && errno != EINTR)
                        return 1;
                for (int k = 0; k < n; k++) {
                        unsigned i = evs[k].data.u32;
                        bool was_active = rconn_active(&c[i]);
                        if (evs[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                                rconn_on_readable(&c[i], &t);
                        if (rconn_step(&c[i], &t, ep, i) < 0)
                                return 1;
                        if (was_active && !rconn_active(&c[i]))
                                n_active--;
                }
        }
        uint64_t n_lat = t.n_lat, errors = t.errors;
        uint64_t elapsed = now_us() - t0;
        qsort(lat, n_lat, sizeof(uint64_t), cmp_u64);
        printf("bench clients=%u size=%zu msgs=%" PRIu64 " ops_per_s=%.0f p50_us=%" PRIu64 " p99_us=%" PRIu64
               " max_us=%" PRIu64 " wait=%u errors=%" PRIu64 "\n",
               clients, size, n_lat, elapsed ? (double) n_lat * 1e6 / (double) elapsed : 0.0, pct(lat, n_lat, 50),
               pct(lat, n_lat, 99), n_lat ? lat[n_lat - 1] : 0, wait_k, errors);
        return errors > 0 || n_lat < messages ? 1 : 0;
}
