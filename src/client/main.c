/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fusion-client — send messages to the fusion cluster, read them back,
 * follow failovers and measure throughput and failover time. main() only
 * parses the command line and dispatches to client-commands.c.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client-commands.h"
#include "fusion-config.h"

static ClientOptions arg_opts = {
        .timeout_ms = CLIENT_TIMEOUT_MS_DEFAULT,
        .deadline_ms = CLIENT_DEADLINE_MS_DEFAULT,
};
static BenchOptions arg_bench = {
        .clients = 1,
        .messages = 10000,
        .size = 100,
        .pipeline = 1,
        .duration_ms = 10000,
};
static const char *arg_id = NULL;
static bool arg_interactive = false;

static void help(void) {
        printf("Usage: fusion-client [OPTIONS] [COMMAND [ARGS...]]\n\n"
               "Send messages to the fusion cluster and follow its primary.\n\n"
               "Commands:\n"
               "  send MSG...            store each MSG, print \"OK <index>\" for each\n"
               "  get N                  print message N as \"index term payload\"\n"
               "  read FROM [COUNT]      print messages FROM.. (at most COUNT)\n"
               "  info                   print the server's INFO key=value lines\n"
               "  who                    print the current primary\n"
               "  watch                  print every change of primary\n"
               "  bench                  measure throughput/latency (or failover gap)\n"
               "  (none), -i             interactive: one message per stdin line, /help for commands\n\n"
               "Options:\n"
               "  -c --config PATH       configuration file (default %s)\n"
               "  -m --monitor ADDR      monitor client API address (host:port or socket path)\n"
               "  -s --server ADDR       talk to this server directly, without the monitor\n"
               "  -t --timeout MS        timeout of one attempt (default %d)\n"
               "     --deadline MS       total time for one request, retries included (default %d)\n"
               "     --retries N         at most N retries per request (default: until the deadline)\n"
               "     --id ID             message id for `send` with a single message\n"
               "  -q --quiet             print nothing on success\n"
               "  -i --interactive       interactive mode\n"
               "bench options:\n"
               "     --clients N         connections (default 1)\n"
               "     --messages M        messages in total (default 10000)\n"
               "     --size BYTES        payload size (default 100)\n"
               "     --pipeline K        outstanding PUTs per connection (default 1)\n"
               "     --continuous        one PUT at a time with retries; report the largest gap\n"
               "                         and the failover gap (last OK before, first OK after)\n"
               "     --duration MS       length of a --continuous run (default 10000)\n"
               "  -h --help  --version\n",
               FUSION_CONFIG_PATH, CLIENT_TIMEOUT_MS_DEFAULT, CLIENT_DEADLINE_MS_DEFAULT);
}

static int parse_uint(const char *opt, const char *s, uint64_t min, uint64_t max, uint64_t *ret) {
        if (safe_atou64(s, ret) < 0 || *ret < min || *ret > max) {
                fprintf(stderr, "fusion-client: invalid value '%s' for %s (expected %llu..%llu)\n", s, opt,
                        (unsigned long long) min, (unsigned long long) max);
                return -EINVAL;
        }
        return 0;
}

static int parse_argv(int argc, char *argv[]) {
        enum {
                ARG_DEADLINE = 0x100, ARG_RETRIES, ARG_ID, ARG_CLIENTS, ARG_MESSAGES, ARG_SIZE, ARG_PIPELINE,
                ARG_CONTINUOUS, ARG_DURATION, ARG_VERSION,
        };
        static const struct option options[] = {
                { "config", required_argument, NULL, 'c' },
                { "monitor", required_argument, NULL, 'm' },
                { "server", required_argument, NULL, 's' },
                { "timeout", required_argument, NULL, 't' },
                { "deadline", required_argument, NULL, ARG_DEADLINE },
                { "retries", required_argument, NULL, ARG_RETRIES },
                { "id", required_argument, NULL, ARG_ID },
                { "quiet", no_argument, NULL, 'q' },
                { "interactive", no_argument, NULL, 'i' },
                { "clients", required_argument, NULL, ARG_CLIENTS },
                { "messages", required_argument, NULL, ARG_MESSAGES },
                { "size", required_argument, NULL, ARG_SIZE },
                { "pipeline", required_argument, NULL, ARG_PIPELINE },
                { "continuous", no_argument, NULL, ARG_CONTINUOUS },
                { "duration", required_argument, NULL, ARG_DURATION },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                {}
        };
        uint64_t v;
        int c;

        while ((c = getopt_long(argc, argv, "c:m:s:t:qih", options, NULL)) >= 0) {
                int r = 0;

                switch (c) {
                case 'c': arg_opts.config_path = optarg; break;
                case 'm': arg_opts.monitor = optarg; break;
                case 's': arg_opts.server = optarg; break;
                case 't':
                        r = parse_uint("--timeout", optarg, 1, INT32_MAX, &v);
                        arg_opts.timeout_ms = (int) v;
                        break;
                case ARG_DEADLINE:
                        r = parse_uint("--deadline", optarg, 1, INT32_MAX, &v);
                        arg_opts.deadline_ms = (int) v;
                        break;
                case ARG_RETRIES:
                        r = parse_uint("--retries", optarg, 0, UINT32_MAX, &v);
                        arg_opts.retries = (unsigned) v;
                        break;
                case ARG_ID: arg_id = optarg; break;
                case 'q': arg_opts.quiet = true; break;
                case 'i': arg_interactive = true; break;
                case ARG_CLIENTS:
                        r = parse_uint("--clients", optarg, 1, 10000, &v);
                        arg_bench.clients = (unsigned) v;
                        break;
                case ARG_MESSAGES: r = parse_uint("--messages", optarg, 1, 1000000000, &arg_bench.messages); break;
                case ARG_SIZE:
                        r = parse_uint("--size", optarg, 0, 1 << 26, &v);
                        arg_bench.size = (size_t) v;
                        break;
                case ARG_PIPELINE:
                        r = parse_uint("--pipeline", optarg, 1, 100000, &v);
                        arg_bench.pipeline = (unsigned) v;
                        break;
                case ARG_CONTINUOUS: arg_bench.continuous = true; break;
                case ARG_DURATION: r = parse_uint("--duration", optarg, 1, UINT32_MAX, &arg_bench.duration_ms); break;
                case 'h': help(); return 0;
                case ARG_VERSION: printf("fusion-client %s\n", PACKAGE_VERSION); return 0;
                default: return -EINVAL;
                }
                if (r < 0)
                        return r;
        }
        return 1;
}

static int usage_error(const char *fmt, ...) _printf_(1, 2);
static int usage_error(const char *fmt, ...) {
        va_list ap;

        fprintf(stderr, "fusion-client: ");
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fprintf(stderr, "\nTry 'fusion-client --help'.\n");
        return EXIT_USAGE;
}

static int dispatch(Client *c, int argc, char **argv) {
        const char *verb = argv[0];
        int nargs = argc - 1;

        if (strcmp(verb, "send") == 0)
                return nargs >= 1 ? cmd_send(c, argv + 1, (unsigned) nargs, arg_id)
                                  : usage_error("send needs a message");
        if (strcmp(verb, "get") == 0)
                return nargs == 1 ? cmd_get(c, argv[1]) : usage_error("usage: get N");
        if (strcmp(verb, "read") == 0)
                return nargs == 1 || nargs == 2 ? cmd_read(c, argv[1], nargs == 2 ? argv[2] : NULL)
                                                : usage_error("usage: read FROM [COUNT]");
        if (nargs > 0)
                return usage_error("too many arguments for '%s'", verb);
        if (strcmp(verb, "info") == 0)
                return cmd_info(c);
        if (strcmp(verb, "who") == 0)
                return cmd_who(c);
        if (strcmp(verb, "watch") == 0)
                return client_watch(c, 0) < 0 ? EXIT_REQUEST_FAILED : 0;
        if (strcmp(verb, "bench") == 0)
                return cmd_bench(c, &arg_bench);
        return usage_error("unknown command '%s'", verb);
}

int main(int argc, char *argv[]) {
        _cleanup_(client_freep) Client *c = NULL;
        _cleanup_(freep) char *error = NULL;
        int r;

        r = parse_argv(argc, argv);
        if (r <= 0)
                return r < 0 ? EXIT_USAGE : 0;
        if (arg_interactive && optind < argc)
                return usage_error("--interactive takes no command");

        r = client_new(&arg_opts, &c, &error);
        if (r < 0) {
                fprintf(stderr, "fusion-client: %s\n", error ?: strerror(-r));
                return EXIT_REQUEST_FAILED;
        }

        if (optind >= argc)
                return cmd_interactive(c);
        return dispatch(c, argc - optind, argv + optind);
}
