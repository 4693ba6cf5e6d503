/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * net — socket addresses ("127.0.0.1:8090", "[::1]:8090", "localhost:8090",
 * "/run/fusion/x.sock"), listening and connecting sockets, and taking
 * sockets passed by systemd by FileDescriptorName=.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>

typedef struct SockAddr {
        union {
                struct sockaddr sa;
                struct sockaddr_in in;
                struct sockaddr_in6 in6;
                struct sockaddr_un un;
                struct sockaddr_storage storage;
        };
        socklen_t len;
} SockAddr;

/* Numeric IPv4 "a.b.c.d:port", IPv6 "[addr]:port", "localhost:port"
 * (127.0.0.1), or an absolute path for AF_UNIX. Port 1..65535 (0 allowed
 * only when allow_port0). -EINVAL on anything else. No DNS. */
int sockaddr_parse(const char *s, bool allow_port0, SockAddr *ret);
/* "127.0.0.1:8090", "[::1]:8090" or the unix path. */
int sockaddr_format(const SockAddr *a, char *buf, size_t size);
#define SOCKADDR_STRLEN 128
uint16_t sockaddr_port(const SockAddr *a);
bool sockaddr_is_unix(const SockAddr *a);

/* Non-blocking, close-on-exec listening socket (SO_REUSEADDR; a stale unix
 * socket file is replaced, its directory created). Returns fd or -errno. */
int socket_listen(const SockAddr *a, int backlog);
/* Non-blocking connect; returns fd (connection may still be in progress). */
int socket_connect(const SockAddr *a);
/* Blocking connect with a timeout in ms, for CLIs and tests. */
int socket_connect_blocking(const SockAddr *a, int timeout_ms);

/* Take a socket systemd passed with FileDescriptorName=name (checked to be
 * a listening stream socket, made non-blocking). Several sockets may share a
 * name: each call returns the next one. Returns the fd, -ENOENT when no
 * (further) socket of that name was passed, -ENOTSOCK when the passed fd is
 * not a listening stream socket. Call listen_fds_init() once first; it reads
 * LISTEN_FDS and unsets the variables; it returns the number passed. */
int listen_fds_init(void);
int listen_fds_take(const char *name);
/* Fds passed but never taken are closed with a warning. */
void listen_fds_done(void);

int fd_set_nonblock(int fd, bool nonblock);
