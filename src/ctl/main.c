/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fusionctl — administer a fusion cluster: status (monitor STATUS plus the
 * systemd unit states), watch, promote (switchover through the monitor) and
 * the failure drills kill/stop/restart/hang through systemd.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client-lib.h"
#include "ctl-status.h"
#include "ctl-systemd.h"
#include "fusion-config.h"

#define CTL_TIMEOUT_MS_DEFAULT 30000

static ClientOptions arg_opts = {
        .timeout_ms = CLIENT_TIMEOUT_MS_DEFAULT,
        .deadline_ms = CLIENT_DEADLINE_MS_DEFAULT,
};
static uint64_t arg_timeout_ms = CTL_TIMEOUT_MS_DEFAULT;
static bool arg_json = false;
static int arg_colour = -1;   /* -1: auto */

static void help(void) {
        printf("Usage: fusionctl [OPTIONS] COMMAND [NAME]\n\n"
               "Administer a fusion cluster.\n\n"
               "Commands:\n"
               "  status                 servers as the monitor sees them, with their systemd units\n"
               "  watch                  print every change of primary\n"
               "  promote NAME           switch the primary over to NAME (no loss)\n"
               "  kill NAME              SIGKILL all processes of NAME's unit (systemd restarts it)\n"
               "  stop NAME              stop NAME's unit and wait for the job\n"
               "  restart NAME           restart NAME's unit and wait for the job\n"
               "  hang NAME              SIGSTOP NAME's main process (a hung server)\n"
               "  resume NAME            SIGCONT NAME's main process\n\n"
               "Options:\n"
               "  -c --config PATH       configuration file (default %s)\n"
               "  -m --monitor ADDR      monitor client API address (host:port or socket path)\n"
               "  -t --timeout MS        how long promote and stop/restart may take (default %d)\n"
               "     --json              status as one JSON object\n"
               "     --no-color          no colours (also: NO_COLOR set)\n"
               "  -q --quiet             print less\n"
               "  -h --help  --version\n",
               FUSION_CONFIG_PATH, CTL_TIMEOUT_MS_DEFAULT);
}

static int parse_argv(int argc, char *argv[]) {
        enum { ARG_JSON = 0x100, ARG_NO_COLOR, ARG_VERSION };
        static const struct option options[] = {
                { "config", required_argument, NULL, 'c' },
                { "monitor", required_argument, NULL, 'm' },
                { "timeout", required_argument, NULL, 't' },
                { "json", no_argument, NULL, ARG_JSON },
                { "no-color", no_argument, NULL, ARG_NO_COLOR },
                { "quiet", no_argument, NULL, 'q' },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                {}
        };
        int c;

        while ((c = getopt_long(argc, argv, "c:m:t:qh", options, NULL)) >= 0) {
                switch (c) {
                case 'c': arg_opts.config_path = optarg; break;
                case 'm': arg_opts.monitor = optarg; break;
                case 't':
                        if (safe_atou64(optarg, &arg_timeout_ms) < 0 || arg_timeout_ms == 0 ||
                            arg_timeout_ms > INT32_MAX) {
                                fprintf(stderr, "fusionctl: invalid --timeout '%s'\n", optarg);
                                return -EINVAL;
                        }
                        break;
                case ARG_JSON: arg_json = true; break;
                case ARG_NO_COLOR: arg_colour = 0; break;
                case 'q': arg_opts.quiet = true; break;
                case 'h': help(); return 0;
                case ARG_VERSION: printf("fusionctl %s\n", PACKAGE_VERSION); return 0;
                default: return -EINVAL;
                }
        }
        return 1;
}

static int usage_error(const char *fmt, ...) _printf_(1, 2);
static int usage_error(const char *fmt, ...) {
        va_list ap;

        fprintf(stderr, "fusionctl: ");
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fprintf(stderr, "\nTry 'fusionctl --help'.\n");
        return EXIT_USAGE;
}

static bool use_colour(void) {
        if (arg_colour >= 0)
                return arg_colour;
        if (getenv("NO_COLOR"))
                return false;
        const char *term = getenv("TERM");
        if (term && strcmp(term, "dumb") == 0)
                return false;
        return isatty(STDOUT_FILENO);
}

/* Fill in ActiveState/SubState from systemd when a system bus is there. */
static void status_add_units(ServerStatus *s, size_t n) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;

        if (ctl_bus_open(&bus) < 0) {
                fprintf(stderr, "unit state unknown (no system bus)\n");
                return;
        }
        for (size_t i = 0; i < n; i++) {
                _cleanup_(freep) char *active = NULL, *sub = NULL;

                if (!s[i].unit[0] || unit_get_state(bus, s[i].unit, &active, &sub) < 0)
                        continue;
                snprintf(s[i].unit_active, sizeof(s[i].unit_active), "%s", active);
                snprintf(s[i].unit_sub, sizeof(s[i].unit_sub), "%s", sub);
        }
}

static int status_fetch(Client *c, ServerStatus *s, size_t *n) {
        _cleanup_(conn_freep) Conn *m = NULL;
        usec_t deadline = now_usec() + (usec_t) c->opts.timeout_ms * USEC_PER_MSEC;
        char *line;
        size_t len;
        int r;

        r = client_monitor_connect(c, &m);
        if (r < 0)
                return r;
        r = conn_write_line(m, "STATUS", deadline);
        *n = 0;
        while (r >= 0 && (r = conn_read_line(m, deadline, &line, &len)) >= 0) {
                Reply rep;

                if (strcmp(line, "END") == 0)
                        return 0;
                if (reply_parse(line, len, &rep) < 0 || rep.type != REPLY_SERVER)
                        continue;
                if (*n < CONFIG_SERVERS_MAX * 2 && server_status_parse(rep.text, &s[*n]) >= 0)
                        (*n)++;
        }
        snprintf(c->last_error, sizeof(c->last_error), "monitor %s: STATUS failed: %s", m->address,
                 r == -ECONNRESET ? "connection closed" : strerror(-r));
        return r;
}

static int cmd_status(Client *c) {
        ServerStatus s[CONFIG_SERVERS_MAX * 2];
        _cleanup_(buf_done) Buf b = {};
        StatusSummary sum = {};
        PrimaryInfo p = {};
        size_t n;
        int r;

        r = status_fetch(c, s, &n);
        if (r < 0) {
                fprintf(stderr, "fusionctl: %s\n", c->last_error);
                return EXIT_NO_PRIMARY;
        }
        if (client_who(c, &p) > 0) {
                sum.primary_known = true;
                snprintf(sum.primary, sizeof(sum.primary), "%s", p.name);
                snprintf(sum.address, sizeof(sum.address), "%s", p.address);
                sum.term = p.term;
        } else
                for (size_t i = 0; i < n; i++) {
                        uint64_t t;
                        if (safe_atou64(s[i].term, &t) >= 0)
                                sum.term = MAX(sum.term, t);
                }

        status_add_units(s, n);

        r = arg_json ? status_format_json(&b, &sum, s, n) : status_format_table(&b, &sum, s, n, use_colour());
        if (r < 0) {
                fprintf(stderr, "fusionctl: %s\n", strerror(-r));
                return EXIT_REQUEST_FAILED;
        }
        fwrite(b.data, 1, b.len, stdout);
        return 0;
}

/* PROMOTE NAME: print the monitor's reply lines until a final one. */
static int cmd_promote(Client *c, const char *name) {
        _cleanup_(conn_freep) Conn *m = NULL;
        usec_t deadline = now_usec() + arg_timeout_ms * USEC_PER_MSEC;
        char req[16 + NAME_MAX_LEN], *line;
        size_t len;
        int r;

        r = client_monitor_connect(c, &m);
        if (r < 0) {
                fprintf(stderr, "fusionctl: %s\n", c->last_error);
                return EXIT_NO_PRIMARY;
        }
        snprintf(req, sizeof(req), "PROMOTE %s", name);
        r = conn_write_line(m, req, deadline);
        while (r >= 0 && (r = conn_read_line(m, deadline, &line, &len)) >= 0) {
                bool ok = strncmp(line, "OK", 2) == 0 || strncmp(line, "PRIMARY ", 8) == 0;
                bool err = strncmp(line, "ERR", 3) == 0 || strcmp(line, "NOPRIMARY") == 0;

                if (err) {
                        fprintf(stderr, "fusionctl: promote %s: %s\n", name, line);
                        return EXIT_REQUEST_FAILED;
                }
                if (!arg_opts.quiet)
                        printf("%s\n", line);
                if (ok)
                        return 0;
        }
        fprintf(stderr, "fusionctl: promote %s: %s\n", name,
                r == -ETIMEDOUT ? "timed out waiting for the monitor" : r == -ECONNRESET ? "monitor closed the connection" : strerror(-r));
        return EXIT_REQUEST_FAILED;
}

static int cmd_unit(Client *c, UnitAction a, const char *name) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(freep) char *msg = NULL;
        const ServerConfig *sc = config_find_server(c->config, name);
        int r;

        r = ctl_bus_open(&bus);
        if (r < 0) {
                fprintf(stderr, "fusionctl: no system bus: fusionctl %s needs systemd\n", unit_action_to_string(a));
                return EXIT_UNIT_PROBLEM;
        }
        r = unit_action(bus, a, sc->unit, arg_timeout_ms * USEC_PER_MSEC, &msg);
        if (r < 0) {
                fprintf(stderr, "fusionctl: %s\n", msg ?: strerror(-r));
                return r == UNIT_ERR_NO_UNIT || r == UNIT_ERR_ACCESS ? EXIT_UNIT_PROBLEM : EXIT_REQUEST_FAILED;
        }
        if (!arg_opts.quiet)
                printf("%s %s: done\n", unit_action_to_string(a), sc->unit);
        return 0;
}

static int check_name(const Client *c, const char *name) {
        _cleanup_(buf_done) Buf b = {};

        if (config_find_server(c->config, name))
                return 0;
        for (size_t i = 0; i < c->config->n_servers; i++)
                (void) buf_printf(&b, "%s%s", i > 0 ? ", " : "", c->config->servers[i].name);
        fprintf(stderr, "fusionctl: unknown server '%s' in %s; configured: %s\n", name,
                c->config->path ?: "the built-in configuration", b.len > 0 ? b.data : "(none)");
        return -ENOENT;
}

int main(int argc, char *argv[]) {
        _cleanup_(client_freep) Client *c = NULL;
        _cleanup_(freep) char *error = NULL;
        const char *verb;
        int r, nargs;

        r = parse_argv(argc, argv);
        if (r <= 0)
                return r < 0 ? EXIT_USAGE : 0;
        if (optind >= argc)
                return usage_error("missing command");
        verb = argv[optind];
        nargs = argc - optind - 1;

        bool with_name = strcmp(verb, "promote") == 0 || unit_action_from_string(verb) >= 0;
        if (!with_name && strcmp(verb, "status") != 0 && strcmp(verb, "watch") != 0)
                return usage_error("unknown command '%s'", verb);
        if (nargs != (with_name ? 1 : 0))
                return usage_error(with_name ? "usage: fusionctl %s NAME" : "'%s' takes no arguments", verb);

        r = client_new(&arg_opts, &c, &error);
        if (r < 0) {
                fprintf(stderr, "fusionctl: %s\n", error ?: strerror(-r));
                return EXIT_REQUEST_FAILED;
        }

        if (strcmp(verb, "status") == 0)
                return cmd_status(c);
        if (strcmp(verb, "watch") == 0)
                return client_watch(c, 0) < 0 ? EXIT_REQUEST_FAILED : 0;
        /* promote: the monitor knows the names even when no config is installed here */
        bool check = strcmp(verb, "promote") != 0 || c->config->n_servers > 0;
        if (check && check_name(c, argv[optind + 1]) < 0)
                return EXIT_USAGE;
        if (strcmp(verb, "promote") == 0)
                return cmd_promote(c, argv[optind + 1]);
        return cmd_unit(c, unit_action_from_string(verb), argv[optind + 1]);
}
