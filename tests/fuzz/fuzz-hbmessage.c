/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-hbmessage — hb_message_parse() on arbitrary lines (what the monitor
 * reads from a server and a server from the monitor). Whatever parses must
 * format (the parser accepts nothing the formatter refuses), the formatted
 * line must parse back to the same message, and formatting that again must
 * give the same bytes (one canonical spelling). The parser must not modify
 * the line.
 */

#include "fuzz.h"
#include "hbproto.h"
#include "util.h"

static bool hb_equal(const HbMessage *a, const HbMessage *b) {
        return a->type == b->type && strcmp(a->name, b->name) == 0 && a->role == b->role &&
               a->term == b->term && a->index == b->index && a->lterm == b->lterm && a->commit == b->commit &&
               a->pid == b->pid && a->seq == b->seq && a->probe == b->probe &&
               strcmp(a->primary, b->primary) == 0 && strcmp(a->address, b->address) == 0 &&
               strcmp(a->reason, b->reason) == 0;
}

static void check_terminated(const HbMessage *m) {
        FUZZ_CHECK(memchr(m->name, '\0', sizeof m->name));
        FUZZ_CHECK(memchr(m->primary, '\0', sizeof m->primary));
        FUZZ_CHECK(memchr(m->address, '\0', sizeof m->address));
        FUZZ_CHECK(memchr(m->reason, '\0', sizeof m->reason));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *line = fuzz_strndup(data, size);
        const char *reason = NULL;
        HbMessage m, again;
        Buf b1 = {}, b2 = {};
        int r;

        r = hb_message_parse(line, size, &m, &reason);
        FUZZ_CHECK(size == 0 || memcmp(line, data, size) == 0);
        if (r < 0) {
                FUZZ_CHECK(r == -EINVAL);
                FUZZ_CHECK(reason && *reason);
                free(line);
                return 0;
        }

        FUZZ_CHECK(r == 0);
        FUZZ_CHECK(hb_type_to_string(m.type));
        FUZZ_CHECK(size > strlen(hb_type_to_string(m.type)));
        check_terminated(&m);
        if (m.type == HB_HEARTBEAT) {
                FUZZ_CHECK(name_is_valid(m.name));
                FUZZ_CHECK(role_to_string(m.role));
        }
        if (m.type == HB_FOLLOW)
                FUZZ_CHECK(name_is_valid(m.primary) && strchr(m.address, ':'));

        r = hb_message_format(&m, &b1);
        if (r < 0) {
                fprintf(stderr, "parsed message does not format (%d): \"%s\"\n", r, line);
                FUZZ_CHECK(false);
        }
        FUZZ_CHECK(b1.len >= 2 && b1.data[b1.len - 1] == '\n' && !memchr(b1.data, '\n', b1.len - 1));
        b1.data[b1.len - 1] = '\0';

        reason = NULL;
        r = hb_message_parse(b1.data, b1.len - 1, &again, &reason);
        if (r < 0) {
                fprintf(stderr, "formatted message does not parse (%s): \"%s\"\n", reason, b1.data);
                FUZZ_CHECK(false);
        }
        FUZZ_CHECK(hb_equal(&m, &again));

        FUZZ_CHECK(hb_message_format(&again, &b2) >= 0);
        FUZZ_CHECK(b2.len == b1.len && memcmp(b1.data, b2.data, b1.len - 1) == 0);

        buf_done(&b1);
        buf_done(&b2);
        free(line);
        return 0;
}
