/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fusion-server — one server of a fusion cluster. This file only wires the
 * modules together: arguments, configuration, the client socket (passed by
 * systemd as FileDescriptorName=client, or bound here), signals, the
 * manager, sd_notify and the event loop.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "fusion-config.h"
#include "log.h"
#include "net.h"
#include "peerauth.h"
#include "server-manager.h"

static const char *arg_config = FUSION_CONFIG_PATH;
static const char *arg_name = NULL;

static void help(void) {
        printf("%s --name NAME [--config PATH]\n\n"
               "Run one server of a fusion cluster.\n\n"
               "  -h --help           Show this help\n"
               "     --version        Show the version\n"
               "  -c --config PATH    Configuration file (default: %s)\n"
               "  -n --name NAME      This server's [server.NAME] section\n",
               program_invocation_short_name, FUSION_CONFIG_PATH);
}

/* > 0: run; 0: done (help, version); < 0: error. */
static int parse_argv(int argc, char *argv[]) {
        enum { ARG_VERSION = 0x100 };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "config", required_argument, NULL, 'c' },
                { "name", required_argument, NULL, 'n' },
                {},
        };
        int c;

        while ((c = getopt_long(argc, argv, "hc:n:", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("fusion-server %s\n", PACKAGE_VERSION);
                        return 0;
                case 'c':
                        arg_config = optarg;
                        break;
                case 'n':
                        arg_name = optarg;
                        break;
                default:
                        return -EINVAL;
                }

        if (optind < argc) {
                log_error("Unexpected argument '%s'.", argv[optind]);
                return -EINVAL;
        }
        if (!arg_name) {
                log_error("--name NAME is required.");
                return -EINVAL;
        }
        return 1;
}

static int load_config(Config **ret, const ServerConfig **ret_self) {
        _cleanup_(freep) char *error = NULL;
        const ServerConfig *self;
        Config *config = NULL;
        int r;

        r = config_load(arg_config, &config, &error);
        if (r < 0) {
                if (error) {
                        log_error("%s", error);
                        return r;
                }
                return log_error_errno(r, "Failed to load %s: %m", arg_config);
        }
        self = config_find_server(config, arg_name);
        if (!self) {
                log_error("%s: no [server.%s] section.", arg_config, arg_name);
                config_free(config);
                return -EINVAL;
        }
        *ret = config;
        *ret_self = self;
        return 0;
}

/* The cluster key (when some link needs it) and the client token (when set): a
 * missing or unsafe file is an error at start-up, naming the file. */
static int load_secrets(const Config *config, PeerAuthKey *ret_key, char **ret_token) {
        _cleanup_(freep) char *error = NULL;
        int r;

        r = peerauth_init();
        if (r < 0)
                return log_error_errno(r, "Failed to initialize libsodium: %m");
        if (config_auth_needed(config)) {
                r = peerauth_key_load(config->authkey_file, ret_key, &error);
                if (r < 0) {
                        if (error)
                                log_error("%s", error);
                        return log_error_errno(r, "The cluster key is needed for [cluster] auth = %s.",
                                               auth_mode_to_string(config->auth));
                }
        }
        r = client_token_load(config, ret_token, &error);
        if (r < 0) {
                log_error("%s", error ?: "cannot load the client token");
                return r;
        }
        return 0;
}

static int take_client_socket(const ServerConfig *self) {
        int fd, r;

        r = listen_fds_init();
        if (r < 0)
                return log_error_errno(r, "Failed to read the sockets passed by systemd: %m");
        fd = listen_fds_take("client");
        listen_fds_done();
        if (fd >= 0)
                return fd;
        if (fd != -ENOENT)
                return log_error_errno(fd, "Failed to take the 'client' socket passed by systemd: %m");

        fd = socket_listen(&self->address_addr, SOMAXCONN);
        if (fd < 0)
                return log_error_errno(fd, "Failed to listen on %s: %m", self->address);
        return fd;
}

static int on_stop_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        manager_shutdown(userdata);
        return 0;
}

static int run(int argc, char *argv[]) {
        _cleanup_(config_freep) Config *config = NULL;
        _cleanup_(manager_freep) Manager *m = NULL;
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        const ServerConfig *self = NULL;
        _cleanup_(peerauth_key_wipe) PeerAuthKey key = {};
        _cleanup_(freep) char *token = NULL;
        sigset_t mask;
        int fd, r;

        log_setup("fusion-server");

        r = parse_argv(argc, argv);
        if (r <= 0)
                return r;
        r = load_config(&config, &self);
        if (r < 0)
                return r;
        r = load_secrets(config, &key, &token);
        if (r < 0)
                return r;

        fd = take_client_socket(self);
        if (fd < 0)
                return fd;

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0) {
                safe_close(fd);
                return log_error_errno(errno, "Failed to block signals: %m");
        }
        (void) signal(SIGPIPE, SIG_IGN);

        /* Not sd_event_default(): its loop calls gettid() on every iteration to check
         * the thread, one syscall per dispatched event (a request, at 64 clients). */
        r = sd_event_new(&e);
        if (r < 0) {
                safe_close(fd);
                return log_error_errno(r, "Failed to allocate the event loop: %m");
        }
        (void) sd_event_set_watchdog(e, true);

        r = manager_new(e, config, self, fd, &m);
        if (r < 0) {
                safe_close(fd);
                return log_oom();
        }
        /* Graceful: answer what clients already sent, then stop (a second signal: at once). */
        r = sd_event_add_signal(e, NULL, SIGTERM, on_stop_signal, m);
        if (r >= 0)
                r = sd_event_add_signal(e, NULL, SIGINT, on_stop_signal, m);
        if (r < 0)
                return log_error_errno(r, "Failed to watch signals: %m");
        m->authkey = key;
        m->client_token = TAKE_PTR(token);
        r = manager_start(m);
        if (r < 0)
                return r;

        (void) sd_notifyf(false, "READY=1\nSTATUS=%s", manager_status(m));
        r = sd_event_loop(e);
        (void) sd_notify(false, "STOPPING=1\nSTATUS=Shutting down.");
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m");
        return 0;
}

int main(int argc, char *argv[]) {
        return run(argc, argv) < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
