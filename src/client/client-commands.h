/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * client-commands — the verbs of fusion-client. Each returns an exit code
 * (see client-lib.h and fusion-client(1)).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "client-lib.h"

typedef struct MsgidGen {
        char host[64];
        pid_t pid;
        usec_t start;
        uint64_t counter;
} MsgidGen;

void msgid_gen_init(MsgidGen *g);
/* Next id into buf (size > MSGID_MAX_LEN). */
int msgid_gen_next(MsgidGen *g, char *buf, size_t size);

int cmd_send(Client *c, char **msgs, unsigned n, const char *id);
int cmd_get(Client *c, const char *index);
int cmd_read(Client *c, const char *from, const char *count);
int cmd_info(Client *c);
int cmd_who(Client *c);
int cmd_interactive(Client *c);

typedef struct BenchOptions {
        unsigned clients;
        uint64_t messages;     /* per client */
        size_t size;
        unsigned pipeline;
        bool continuous;
        uint64_t duration_ms;
} BenchOptions;

int cmd_bench(Client *c, const BenchOptions *o);
