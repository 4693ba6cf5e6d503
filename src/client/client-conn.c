/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * client-conn — blocking line connections for the CLIs: connect with a
 * timeout, write and read whole lines with poll() against a deadline.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "client-lib.h"

static int remaining_ms(usec_t deadline) {
        usec_t n = now_usec();

        if (deadline == USEC_INFINITY)
                return -1;
        if (n >= deadline)
                return 0;
        /* round up so that we never spin on a sub-millisecond remainder */
        return (int) MIN((deadline - n + USEC_PER_MSEC - 1) / USEC_PER_MSEC, (usec_t) INT32_MAX);
}

int conn_open(const char *address, int timeout_ms, size_t max_line, Conn **ret) {
        _cleanup_(conn_freep) Conn *c = NULL;
        SockAddr sa;
        int r;

        r = sockaddr_parse(address, false, &sa);
        if (r < 0)
                return r;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->fd = -1;
        r = line_reader_init(&c->lr, max_line);
        if (r < 0) {
                c->lr.buf = NULL;
                return r;
        }
        snprintf(c->address, sizeof(c->address), "%s", address);

        r = socket_connect_blocking(&sa, timeout_ms);
        if (r < 0)
                return r;
        c->fd = r;
        /* poll() drives all waiting; the socket itself is non-blocking */
        r = fd_set_nonblock(c->fd, true);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(c);
        return 0;
}

Conn *conn_free(Conn *c) {
        if (!c)
                return NULL;
        safe_close(c->fd);
        if (c->lr.buf)
                line_reader_done(&c->lr);
        free(c);
        return NULL;
}

int conn_write(Conn *c, const void *p, size_t n, usec_t deadline) {
        const char *q = p;

        while (n > 0) {
                ssize_t k = send(c->fd, q, n, MSG_NOSIGNAL);
                if (k > 0) {
                        q += k;
                        n -= (size_t) k;
                        continue;
                }
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0 && errno != EAGAIN)
                        return negative_errno();

                struct pollfd pfd = { .fd = c->fd, .events = POLLOUT };
                int t = remaining_ms(deadline);
                if (t == 0)
                        return -ETIMEDOUT;
                int pr = poll(&pfd, 1, t);
                if (pr < 0 && errno != EINTR)
                        return negative_errno();
                if (pr == 0)
                        return -ETIMEDOUT;
        }
        return 0;
}

int conn_write_line(Conn *c, const char *line, usec_t deadline) {
        _cleanup_(buf_done) Buf b = {};
        int r;

        r = buf_append_str(&b, line);
        if (r >= 0)
                r = buf_append(&b, "\n", 1);
        if (r < 0)
                return r;
        return conn_write(c, b.data, b.len, deadline);
}

int conn_read_line(Conn *c, usec_t deadline, char **ret_line, size_t *ret_len) {
        return conn_read_line_or(c, -1, deadline, ret_line, ret_len);
}

int conn_read_line_or(Conn *c, int other_fd, usec_t deadline, char **ret_line, size_t *ret_len) {
        int r;

        for (;;) {
                r = line_reader_next(&c->lr, ret_line, ret_len);
                if (r != 0)
                        return r < 0 ? r : 0;
                if (c->lr.eof)
                        return -ECONNRESET;

                r = line_reader_fill(&c->lr, c->fd);
                if (r > 0)
                        continue;
                if (r == 0)
                        return -ECONNRESET;
                if (r == -EINTR)
                        continue;
                if (r != -EAGAIN)
                        return r;

                struct pollfd pfd[2] = { { .fd = c->fd, .events = POLLIN }, { .fd = other_fd, .events = POLLIN } };
                int t = remaining_ms(deadline);
                if (t == 0)
                        return -ETIMEDOUT;
                int pr = poll(pfd, other_fd >= 0 ? 2 : 1, t);
                if (pr < 0 && errno != EINTR)
                        return negative_errno();
                if (pr == 0)
                        return -ETIMEDOUT;
                if (other_fd >= 0 && pfd[1].revents != 0 && pfd[0].revents == 0)
                        return -ECANCELED;
        }
}
