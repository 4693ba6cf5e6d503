/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fusion-monitor — health tracking, failure detection, fencing, election and
 * promotion for a fusion cluster, and the client API that says where the
 * primary is. main() only wires the modules together; see monitor-manager.c.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <systemd/sd-daemon.h>

#include "config.h"
#include "fusion-config.h"
#include "log.h"
#include "monitor-auth.h"
#include "monitor-fds.h"
#include "monitor-manager.h"

static const char *arg_config = FUSION_CONFIG_PATH;

static void help(void) {
        printf("%s --config PATH [OPTIONS...]\n\n"
               "Watch the fusion servers, promote a backup when the primary fails, and tell\n"
               "clients where the primary is.\n\n"
               "  -h --help           Show this help\n"
               "     --version        Show the version\n"
               "  -c --config PATH    Configuration file (default: %s)\n\n"
               "See fusion-monitor(8) and fusion.conf(5).\n",
               program_invocation_short_name, FUSION_CONFIG_PATH);
}

/* 1: go on, 0: exit successfully (--help), < 0: error. */
static int parse_argv(int argc, char *argv[]) {
        enum { ARG_VERSION = 0x100 };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "config", required_argument, NULL, 'c' },
                {},
        };
        int c;

        while ((c = getopt_long(argc, argv, "hc:", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("fusion-monitor %s\n", PACKAGE_VERSION);
                        return 0;
                case 'c':
                        arg_config = optarg;
                        break;
                default:
                        return -EINVAL;
                }

        if (optind < argc) {
                log_error("Unexpected argument: %s", argv[optind]);
                return -EINVAL;
        }
        return 1;
}

static int run(int argc, char *argv[]) {
        _cleanup_(manager_freep) Manager *m = NULL;
        _cleanup_(config_freep) Config *config = NULL;
        _cleanup_(freep) char *error = NULL;
        MonitorFds fds = {};
        sigset_t mask;
        int r;

        log_setup("fusion-monitor");

        r = parse_argv(argc, argv);
        if (r <= 0)
                return r;

        r = config_load(arg_config, &config, &error);
        if (r < 0) {
                if (error)
                        log_error("%s", error);
                return log_error_errno(r, "Failed to load configuration %s: %m", arg_config);
        }
        if (config->n_servers == 0)
                return log_error_errno(-EINVAL, "%s: no [server.NAME] section.", arg_config);

        r = monitor_auth_load(config);
        if (r < 0)
                return r;

        r = monitor_fds_open(config, &fds);
        if (r < 0)
                return r;

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGPIPE);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0) {
                monitor_fds_close(&fds);
                return log_error_errno(negative_errno(), "Failed to block signals: %m");
        }

        r = manager_new(TAKE_PTR(config), &fds, &m);
        if (r < 0) {
                monitor_fds_close(&fds);
                return r;
        }
        r = manager_start(m);
        if (r < 0)
                return r;

        (void) sd_notify(false, "READY=1");
        r = manager_run(m);
        (void) sd_notify(false, "STOPPING=1\nSTATUS=Shutting down.");
        return r;
}

int main(int argc, char *argv[]) {
        return run(argc, argv) < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
