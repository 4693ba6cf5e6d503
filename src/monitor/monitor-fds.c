/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * monitor-fds — collect the monitor's listening sockets (see monitor-fds.h).
 */
#include <assert.h>
#include <fcntl.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "log.h"
#include "monitor-fds.h"
#include "net.h"

static int fds_add(int *array, size_t *n, int fd) {
        if (*n >= MONITOR_FDS_MAX)
                return -E2BIG;
        array[(*n)++] = fd;
        return 0;
}

static int take_passed(MonitorFds *fds) {
        char **names = NULL;
        int n, r = 0;

        n = sd_listen_fds_with_names(/* unset_environment= */ true, &names);
        if (n < 0)
                return log_error_errno(n, "Failed to read the sockets passed by systemd: %m");

        for (int i = 0; i < n; i++) {
                int fd = SD_LISTEN_FDS_START + i, k;
                const char *name = names && names[i] ? names[i] : "unknown";
                bool hb = strcmp(name, "heartbeat") == 0, client = strcmp(name, "client") == 0;

                if (!hb && !client) {
                        log_warning("Closing socket passed by systemd with unknown FileDescriptorName=%s.", name);
                        safe_close(fd);
                        continue;
                }
                k = sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, /* listening= */ 1);
                if (k <= 0) {
                        log_warning_errno(k, "Socket passed as '%s' is not a listening stream socket, closing.",
                                          name);
                        safe_close(fd);
                        continue;
                }
                k = fd_set_nonblock(fd, true);
                if (k >= 0)
                        k = fcntl(fd, F_SETFD, FD_CLOEXEC) < 0 ? negative_errno() : 0;
                if (k >= 0)
                        k = fds_add(hb ? fds->heartbeat : fds->client, hb ? &fds->n_heartbeat : &fds->n_client, fd);
                if (k < 0) {
                        log_warning_errno(k, "Cannot use socket passed as '%s', closing: %m", name);
                        safe_close(fd);
                        continue;
                }
                if (hb)
                        fds->heartbeat_passed = true;
                else
                        fds->client_passed = true;
        }

        for (int i = 0; names && i < n; i++)
                free(names[i]);
        free(names);
        return r;
}

static int bind_one(const char *what, const char *address, int *array, size_t *n) {
        SockAddr a;
        int fd, r;

        if (!address || !*address)
                return 0;

        r = sockaddr_parse(address, /* allow_port0= */ false, &a);
        if (r < 0)
                return log_error_errno(r, "Bad %s address '%s': %m", what, address);
        fd = socket_listen(&a, 128);
        if (fd < 0)
                return log_error_errno(fd, "Failed to listen on %s %s: %m", what, address);
        r = fds_add(array, n, fd);
        if (r < 0) {
                safe_close(fd);
                return log_error_errno(r, "Too many %s sockets.", what);
        }
        log_debug("Listening for %s on %s.", what, address);
        return 0;
}

int monitor_fds_open(const Config *c, MonitorFds *ret) {
        MonitorFds fds = {};
        int r;

        assert(c);
        assert(ret);

        r = take_passed(&fds);
        if (r < 0)
                goto fail;

        if (!fds.heartbeat_passed) {
                r = bind_one("heartbeats", c->monitor_listen, fds.heartbeat, &fds.n_heartbeat);
                if (r >= 0)
                        r = bind_one("heartbeats", c->monitor_socket, fds.heartbeat, &fds.n_heartbeat);
                if (r < 0)
                        goto fail;
        }
        if (!fds.client_passed) {
                r = bind_one("the client API", c->client_listen, fds.client, &fds.n_client);
                if (r >= 0)
                        r = bind_one("the client API", c->client_socket, fds.client, &fds.n_client);
                if (r < 0)
                        goto fail;
        }

        if (fds.n_heartbeat == 0) {
                r = log_error_errno(-EINVAL, "No heartbeat endpoint: [monitor] listen and socket are both empty.");
                goto fail;
        }
        if (fds.n_client == 0)
                log_warning("No client API endpoint: [monitor] client_listen and client_socket are both empty.");

        *ret = fds;
        return 0;

fail:
        monitor_fds_close(&fds);
        return r;
}

void monitor_fds_close(MonitorFds *fds) {
        if (!fds)
                return;
        for (size_t i = 0; i < fds->n_heartbeat; i++)
                fds->heartbeat[i] = safe_close(fds->heartbeat[i]);
        for (size_t i = 0; i < fds->n_client; i++)
                fds->client[i] = safe_close(fds->client[i]);
        fds->n_heartbeat = fds->n_client = 0;
}
