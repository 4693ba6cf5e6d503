/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * net — address parsing and formatting, listening/connecting sockets, and
 * sockets passed by systemd (sd_listen_fds_with_names).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "log.h"
#include "net.h"
#include "util.h"

static int parse_port(const char *s, bool allow_port0, uint16_t *ret) {
        uint64_t v;

        if (safe_atou64(s, &v) < 0 || v > 65535 || (v == 0 && !allow_port0))
                return -EINVAL;
        *ret = (uint16_t) v;
        return 0;
}

int sockaddr_parse(const char *s, bool allow_port0, SockAddr *ret) {
        SockAddr a = {};
        const char *colon;
        char host[INET6_ADDRSTRLEN + 1];
        uint16_t port;
        size_t hlen;

        if (!s || !*s)
                return -EINVAL;

        if (s[0] == '/') {
                size_t n = strlen(s);
                if (n >= sizeof(a.un.sun_path))
                        return -EINVAL;
                a.un.sun_family = AF_UNIX;
                memcpy(a.un.sun_path, s, n + 1);
                a.len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + n + 1);
                *ret = a;
                return 0;
        }

        if (s[0] == '[') {
                const char *end = strchr(s, ']');
                if (!end || end[1] != ':')
                        return -EINVAL;
                hlen = (size_t) (end - s - 1);
                if (hlen == 0 || hlen >= sizeof host)
                        return -EINVAL;
                memcpy(host, s + 1, hlen);
                host[hlen] = 0;
                if (parse_port(end + 2, allow_port0, &port) < 0)
                        return -EINVAL;
                a.in6.sin6_family = AF_INET6;
                if (inet_pton(AF_INET6, host, &a.in6.sin6_addr) != 1)
                        return -EINVAL;
                a.in6.sin6_port = htons(port);
                a.len = sizeof(a.in6);
                *ret = a;
                return 0;
        }

        colon = strrchr(s, ':');
        if (!colon || strchr(s, ':') != colon)
                return -EINVAL;
        hlen = (size_t) (colon - s);
        if (hlen == 0 || hlen >= sizeof host)
                return -EINVAL;
        memcpy(host, s, hlen);
        host[hlen] = 0;
        if (parse_port(colon + 1, allow_port0, &port) < 0)
                return -EINVAL;
        a.in.sin_family = AF_INET;
        if (strcmp(host, "localhost") == 0)
                a.in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        else if (inet_pton(AF_INET, host, &a.in.sin_addr) != 1)
                return -EINVAL;
        a.in.sin_port = htons(port);
        a.len = sizeof(a.in);
        *ret = a;
        return 0;
}

int sockaddr_format(const SockAddr *a, char *buf, size_t size) {
        char host[INET6_ADDRSTRLEN];
        int n;

        switch (a->sa.sa_family) {
        case AF_UNIX:
                n = snprintf(buf, size, "%s", a->un.sun_path);
                break;
        case AF_INET:
                if (!inet_ntop(AF_INET, &a->in.sin_addr, host, sizeof host))
                        return -EINVAL;
                n = snprintf(buf, size, "%s:%u", host, ntohs(a->in.sin_port));
                break;
        case AF_INET6:
                if (!inet_ntop(AF_INET6, &a->in6.sin6_addr, host, sizeof host))
                        return -EINVAL;
                n = snprintf(buf, size, "[%s]:%u", host, ntohs(a->in6.sin6_port));
                break;
        default:
                return -EAFNOSUPPORT;
        }
        if (n < 0 || (size_t) n >= size)
                return -ENOBUFS;
        return 0;
}

uint16_t sockaddr_port(const SockAddr *a) {
        switch (a->sa.sa_family) {
        case AF_INET:
                return ntohs(a->in.sin_port);
        case AF_INET6:
                return ntohs(a->in6.sin6_port);
        default:
                return 0;
        }
}

bool sockaddr_is_unix(const SockAddr *a) {
        return a->sa.sa_family == AF_UNIX;
}

int fd_set_nonblock(int fd, bool nonblock) {
        int flags = fcntl(fd, F_GETFL);

        if (flags < 0)
                return negative_errno();
        flags = nonblock ? flags | O_NONBLOCK : flags & ~O_NONBLOCK;
        if (fcntl(fd, F_SETFL, flags) < 0)
                return negative_errno();
        return 0;
}

int socket_listen(const SockAddr *a, int backlog) {
        _cleanup_(closep) int fd = -1;
        int one = 1;

        fd = socket(a->sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return negative_errno();
        if (a->sa.sa_family == AF_UNIX) {
                _cleanup_(freep) char *dir = strdup(a->un.sun_path);
                char *slash;

                if (!dir)
                        return -ENOMEM;
                slash = strrchr(dir, '/');
                if (slash && slash != dir) {
                        *slash = 0;
                        (void) mkdir_p(dir, 0755);
                }
                (void) unlink(a->un.sun_path);
        } else {
                if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
                        return negative_errno();
                if (a->sa.sa_family == AF_INET6)
                        (void) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
        }
        if (bind(fd, &a->sa, a->len) < 0)
                return negative_errno();
        if (listen(fd, backlog) < 0)
                return negative_errno();
        return TAKE_FD(fd);
}

int socket_connect(const SockAddr *a) {
        _cleanup_(closep) int fd = -1;

        fd = socket(a->sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return negative_errno();
        if (connect(fd, &a->sa, a->len) < 0 && errno != EINPROGRESS)
                return negative_errno();
        return TAKE_FD(fd);
}

int socket_connect_blocking(const SockAddr *a, int timeout_ms) {
        _cleanup_(closep) int fd = -1;
        struct pollfd p;
        int err = 0, r;
        socklen_t len = sizeof err;

        fd = socket_connect(a);
        if (fd < 0)
                return fd;
        p = (struct pollfd){ .fd = fd, .events = POLLOUT };
        do
                r = poll(&p, 1, timeout_ms);
        while (r < 0 && errno == EINTR);
        if (r < 0)
                return negative_errno();
        if (r == 0)
                return -ETIMEDOUT;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
                return negative_errno();
        if (err != 0)
                return -err;
        r = fd_set_nonblock(fd, false);
        if (r < 0)
                return r;
        return TAKE_FD(fd);
}

/* Sockets passed by systemd, and whether each was taken. */
static int passed_n;
static char **passed_names;
static bool *passed_taken;

int listen_fds_init(void) {
        char **names = NULL;
        int n;

        n = sd_listen_fds_with_names(true, &names);
        if (n <= 0) {
                free(names);
                return n < 0 ? n : 0;
        }
        passed_n = n;
        passed_names = names;
        passed_taken = calloc((size_t) n, sizeof(bool));
        if (!passed_taken)
                return -ENOMEM;
        return n;
}

int listen_fds_take(const char *name) {
        for (int i = 0; i < passed_n; i++) {
                int fd = SD_LISTEN_FDS_START + i, r;

                if (passed_taken[i] || !passed_names || strcmp(passed_names[i], name) != 0)
                        continue;
                passed_taken[i] = true;
                r = sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1);
                if (r < 0)
                        return r;
                if (r == 0)
                        return -ENOTSOCK;
                r = fd_set_nonblock(fd, true);
                if (r < 0)
                        return r;
                (void) fcntl(fd, F_SETFD, FD_CLOEXEC);
                return fd;
        }
        return -ENOENT;
}

void listen_fds_done(void) {
        for (int i = 0; i < passed_n; i++) {
                if (!passed_taken[i]) {
                        log_warning("Socket passed as '%s' (fd %d) is not used, closing.",
                                    passed_names && passed_names[i] ? passed_names[i] : "?", SD_LISTEN_FDS_START + i);
                        close(SD_LISTEN_FDS_START + i);
                }
                if (passed_names)
                        free(passed_names[i]);
        }
        free(passed_names);
        free(passed_taken);
        passed_names = NULL;
        passed_taken = NULL;
        passed_n = 0;
}
