/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * connect-loop — figure 6 of bench/run: connect, send one PING line, read
 * the first reply line, close; again, as fast as possible, until SIGTERM or
 * --duration-ms. Counts how each attempt ended:
 *
 *   connect-loop attempts=N ok=N refused=N reset=N eof=N timeout=N other=N max_ms=X down_ms=Y
 *
 * ok: a reply line arrived; refused: connect() got ECONNREFUSED; reset:
 * ECONNRESET/EPIPE on send or receive; eof: closed without a reply; timeout:
 * no connection or no reply within --timeout-ms (default 5000). max_ms: the
 * longest successful attempt (how long a client waited during a restart);
 * down_ms: the total time from a failed attempt to the next successful one.
 * Built statically by bench/restart-container so it runs in the container.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;
static void on_term(int sig) {
        (void) sig;
        stop = 1;
}

static int64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

enum { OK, REFUSED, RESET, EOF_, TIMEOUT, OTHER, N_RESULTS };

static int wait_fd(int fd, short ev, int timeout_ms) {
        struct pollfd p = { .fd = fd, .events = ev };
        int r;
        do
                r = poll(&p, 1, timeout_ms);
        while (r < 0 && errno == EINTR && !stop);
        return r;
}

static int attempt(const struct sockaddr_in *sa, const char *req, int timeout_ms) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), ret = OTHER;
        char buf[512];
        size_t len = 0;

        if (fd < 0)
                return OTHER;
        if (connect(fd, (const struct sockaddr *) sa, sizeof(*sa)) < 0) {
                if (errno == ECONNREFUSED) {
                        ret = REFUSED;
                        goto out;
                }
                if (errno != EINPROGRESS)
                        goto out;
                if (wait_fd(fd, POLLOUT, timeout_ms) <= 0) {
                        ret = TIMEOUT;
                        goto out;
                }
                int err = 0;
                socklen_t el = sizeof(err);
                (void) getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
                if (err) {
                        ret = err == ECONNREFUSED ? REFUSED : err == ECONNRESET ? RESET : OTHER;
                        goto out;
                }
        }
        if (send(fd, req, strlen(req), MSG_NOSIGNAL) < 0) {
                ret = errno == ECONNRESET || errno == EPIPE ? RESET : OTHER;
                goto out;
        }
        for (;;) {
                if (wait_fd(fd, POLLIN, timeout_ms) <= 0) {
                        ret = TIMEOUT;
                        goto out;
                }
                ssize_t k = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
                if (k == 0) {
                        ret = EOF_;
                        goto out;
                }
                if (k < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                continue;
                        ret = errno == ECONNRESET ? RESET : OTHER;
                        goto out;
                }
                len += (size_t) k;
                if (memchr(buf, '\n', len) || len >= sizeof(buf) - 1) {
                        ret = OK;
                        goto out;
                }
        }
out:
        close(fd);
        return ret;
}

int main(int argc, char **argv) {
        int port = 0, timeout_ms = 5000;
        int64_t duration_ms = 600000;
        const char *req = "PING\r\n";

        for (int i = 1; i + 1 < argc; i += 2) {
                if (!strcmp(argv[i], "--port"))
                        port = atoi(argv[i + 1]);
                else if (!strcmp(argv[i], "--duration-ms"))
                        duration_ms = atoll(argv[i + 1]);
                else if (!strcmp(argv[i], "--timeout-ms"))
                        timeout_ms = atoi(argv[i + 1]);
                else {
                        fprintf(stderr, "usage: connect-loop --port P [--duration-ms D] [--timeout-ms T]\n");
                        return 2;
                }
        }
        if (port <= 0)
                return 2;
        struct sigaction sa_term = { .sa_handler = on_term };
        sigaction(SIGTERM, &sa_term, NULL);
        sigaction(SIGINT, &sa_term, NULL);

        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t) port) };
        inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
        unsigned long n[N_RESULTS] = {}, attempts = 0;
        int64_t end = now_ms() + duration_ms, max_ok = 0, down_since = -1, down_ms = 0;
        while (!stop && now_ms() < end) {
                int64_t t = now_ms();
                int r = attempt(&sa, req, timeout_ms);
                if (stop && r != OK)
                        break;
                n[r]++;
                attempts++;
                if (r != OK && down_since < 0)
                        down_since = t;
                if (r == OK && down_since >= 0) {
                        down_ms += now_ms() - down_since;
                        down_since = -1;
                }
                if (r == OK && now_ms() - t > max_ok)
                        max_ok = now_ms() - t;
        }
        if (down_since >= 0)
                down_ms += now_ms() - down_since;
        printf("connect-loop attempts=%lu ok=%lu refused=%lu reset=%lu eof=%lu timeout=%lu other=%lu max_ms=%lld "
               "down_ms=%lld\n",
               attempts, n[OK], n[REFUSED], n[RESET], n[EOF_], n[TIMEOUT], n[OTHER], (long long) max_ok,
               (long long) down_ms);
        return 0;
}
