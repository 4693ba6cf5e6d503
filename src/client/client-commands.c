/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * client-commands — send, get, read, info, who and the interactive mode of
 * fusion-client.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client-commands.h"

void msgid_gen_init(MsgidGen *g) {
        *g = (MsgidGen){ .pid = getpid(), .start = now_realtime_usec() };
        if (gethostname(g->host, sizeof(g->host) - 1) < 0 || !g->host[0])
                snprintf(g->host, sizeof(g->host), "host");
        g->host[sizeof(g->host) - 1] = 0;
        /* the short name is enough and leaves room for the rest */
        char *dot = strchr(g->host, '.');
        if (dot && dot != g->host)
                *dot = 0;
}

int msgid_gen_next(MsgidGen *g, char *buf, size_t size) {
        return msgid_format(buf, size, g->host, g->pid, g->start, ++g->counter);
}

static void print_failure(Client *c, const char *what, int r) {
        if (r == -ETIMEDOUT)
                fprintf(stderr, "%s: gave up: %s\n", what, c->last_error[0] ? c->last_error : "timed out");
        else if (c->last_error[0])
                fprintf(stderr, "%s: %s\n", what, c->last_error);
        else
                fprintf(stderr, "%s: %s\n", what, strerror(-r));
}

/* Send one message; prints "OK <index>" or the error. Returns 0 or -errno. */
static int send_one(Client *c, const char *msgid, const char *msg, size_t len) {
        uint64_t index;
        int r;

        r = client_put(c, msgid, msg, len, &index);
        if (r < 0) {
                print_failure(c, "send", r);
                return r;
        }
        if (!c->opts.quiet)
                printf("OK %" PRIu64 "\n", index);
        fflush(stdout);
        return 0;
}

int cmd_send(Client *c, char **msgs, unsigned n, const char *id) {
        MsgidGen g;
        int ret = 0;

        if (id && n != 1) {
                fprintf(stderr, "--id can only be used with a single message\n");
                return EXIT_USAGE;
        }
        if (id && !msgid_is_valid(id, strlen(id))) {
                fprintf(stderr, "invalid message id '%s': 1-%d characters of [A-Za-z0-9._:-]\n", id,
                        MSGID_MAX_LEN);
                return EXIT_USAGE;
        }

        msgid_gen_init(&g);
        for (unsigned i = 0; i < n; i++) {
                char buf[MSGID_MAX_LEN + 1];
                int r;

                if (!id) {
                        r = msgid_gen_next(&g, buf, sizeof(buf));
                        if (r < 0) {
                                fprintf(stderr, "cannot make a message id: %s\n", strerror(-r));
                                return EXIT_REQUEST_FAILED;
                        }
                }
                r = send_one(c, id ?: buf, msgs[i], strlen(msgs[i]));
                if (r == -ETIMEDOUT)
                        return client_exit_code(c, r);   /* the rest would wait just as long */
                if (r < 0)
                        ret = client_exit_code(c, r);
        }
        return ret;
}

/* "MSG index term payload" -> "index term payload"; other lines as they are. */
static int print_msg_line(const char *line, size_t len, void *userdata) {
        int *failed = userdata;

        if (strncmp(line, "MSG ", 4) == 0)
                fwrite(line + 4, 1, len - 4, stdout);
        else if (strcmp(line, "END") == 0)
                return 0;
        else {
                fprintf(stderr, "%s\n", line);
                *failed = 1;
                return 0;
        }
        fputc('\n', stdout);
        return 0;
}

static int print_kv_line(const char *line, size_t len, void *userdata) {
        int *failed = userdata;

        if (strcmp(line, "END") == 0)
                return 0;
        if (strncmp(line, "ERR", 3) == 0 || strncmp(line, "REDIRECT", 8) == 0) {
                fprintf(stderr, "%s\n", line);
                *failed = 1;
                return 0;
        }
        fwrite(line, 1, len, stdout);
        fputc('\n', stdout);
        return 0;
}

static int run_query(Client *c, const char *what, const char *req, bool multiline, client_line_cb cb) {
        int failed = 0, r;

        r = client_query(c, req, multiline, cb, &failed);
        fflush(stdout);
        if (r < 0) {
                print_failure(c, what, r);
                return client_exit_code(c, r);
        }
        return failed ? EXIT_REQUEST_FAILED : 0;
}

static int parse_index(const char *s, const char *what, uint64_t *ret) {
        if (safe_atou64(s, ret) < 0 || *ret == 0) {
                fprintf(stderr, "invalid %s '%s': expected a positive number\n", what, s);
                return -EINVAL;
        }
        return 0;
}

int cmd_get(Client *c, const char *index) {
        char req[64];
        uint64_t i;

        if (parse_index(index, "index", &i) < 0)
                return EXIT_USAGE;
        snprintf(req, sizeof(req), "GET %" PRIu64, i);
        return run_query(c, "get", req, false, print_msg_line);
}

int cmd_read(Client *c, const char *from, const char *count) {
        char req[80];
        uint64_t f, n = READ_COUNT_DEFAULT;

        if (parse_index(from, "index", &f) < 0 || (count && parse_index(count, "count", &n) < 0))
                return EXIT_USAGE;
        snprintf(req, sizeof(req), "READ %" PRIu64 " %" PRIu64, f, n);
        return run_query(c, "read", req, true, print_msg_line);
}

int cmd_info(Client *c) {
        return run_query(c, "info", "INFO", true, print_kv_line);
}

int cmd_who(Client *c) {
        PrimaryInfo p;
        int r;

        r = client_who(c, &p);
        if (r < 0) {
                fprintf(stderr, "who: %s\n", c->last_error[0] ? c->last_error : strerror(-r));
                return EXIT_NO_PRIMARY;
        }
        if (r == 0) {
                printf("no primary\n");
                return EXIT_NO_PRIMARY;
        }
        printf("primary=%s address=%s term=%" PRIu64 "\n", p.name, p.address, p.term);
        return 0;
}

/* One "/command args" line of the interactive mode. Returns 1 for /quit. */
static int interactive_command(Client *c, char *line, int *failed) {
        char *argv[4] = {};
        unsigned argc = 0;
        int r = 0;

        for (char *tok = strtok(line + 1, " \t"); tok && argc < ELEMENTSOF(argv); tok = strtok(NULL, " \t"))
                argv[argc++] = tok;
        if (argc == 0) {
                fprintf(stderr, "commands: /get N, /read FROM [COUNT], /info, /who, /quit\n");
                return 0;
        }
        if (strcmp(argv[0], "quit") == 0 || strcmp(argv[0], "exit") == 0 || strcmp(argv[0], "q") == 0)
                return 1;
        if (strcmp(argv[0], "get") == 0 && argc == 2)
                r = cmd_get(c, argv[1]);
        else if (strcmp(argv[0], "read") == 0 && (argc == 2 || argc == 3))
                r = cmd_read(c, argv[1], argv[2]);
        else if (strcmp(argv[0], "info") == 0 && argc == 1)
                r = cmd_info(c);
        else if (strcmp(argv[0], "who") == 0 && argc == 1)
                r = cmd_who(c);
        else {
                fprintf(stderr, "unknown command '/%s'; commands: /get N, /read FROM [COUNT], /info, /who, /quit\n",
                        argv[0]);
                r = EXIT_USAGE;
        }
        if (r != 0)
                *failed = 1;
        return 0;
}

int cmd_interactive(Client *c) {
        _cleanup_(freep) char *line = NULL;
        bool tty = isatty(STDIN_FILENO);
        size_t cap = 0;
        int failed = 0;
        MsgidGen g;

        msgid_gen_init(&g);
        for (;;) {
                char id[MSGID_MAX_LEN + 1];
                ssize_t n;

                if (tty) {
                        fputs("fusion> ", stdout);
                        fflush(stdout);
                }
                n = getline(&line, &cap, stdin);
                if (n < 0)
                        break;
                while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
                        line[--n] = 0;
                if (n == 0)
                        continue;
                if (line[0] == '/') {
                        if (interactive_command(c, line, &failed) > 0)
                                break;
                        continue;
                }
                if (msgid_gen_next(&g, id, sizeof(id)) < 0 || send_one(c, id, line, (size_t) n) < 0)
                        failed = 1;
        }
        if (tty)
                fputc('\n', stdout);
        return failed ? EXIT_REQUEST_FAILED : 0;
}
