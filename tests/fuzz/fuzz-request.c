/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-request — request_parse() on arbitrary lines, with the default
 * max_message_bytes (65536) and a tiny one (64) so that the TOOLONG paths are
 * reached with short inputs (the line limit is request_line_max(): at least
 * REQUEST_LINE_MIN, so that a SYNC always fits). Every parsed field must lie inside the line and
 * obey the grammar of doc/protocol.md; SYNC lines go on to
 * repl_message_parse(), as the server does.
 */

#include "fuzz.h"
#include "hbproto.h"
#include "protocol.h"
#include "util.h"

static bool inside(const char *p, size_t n, const char *line, size_t len) {
        return p >= line && p <= line + len && n <= (size_t) (line + len - p);
}

static void check_request(const uint8_t *data, size_t size, uint64_t max) {
        char *line = fuzz_strndup(data, size);
        const char *reason = NULL, *verb;
        ErrCode code = _ERRC_INVALID;
        Request req;
        int r;

        r = request_parse(line, size, max, &req, &code, &reason);
        if (r < 0) {
                FUZZ_CHECK(r == -EINVAL);
                FUZZ_CHECK(code == ERRC_BADCMD || code == ERRC_TOOLONG);
                FUZZ_CHECK(reason && *reason);
                /* An over-long line is TOOLONG whatever it holds. */
                if (size > request_line_max(max))
                        FUZZ_CHECK(code == ERRC_TOOLONG);
                free(line);
                return;
        }

        FUZZ_CHECK(r == 0);
        FUZZ_CHECK(size <= request_line_max(max));
        FUZZ_CHECK(!fuzz_mem_has(data, size, '\0') && !fuzz_mem_has(data, size, '\n'));
        verb = request_type_to_string(req.type);
        FUZZ_CHECK(size >= strlen(verb) && memcmp(data, verb, strlen(verb)) == 0);
        FUZZ_CHECK(size == strlen(verb) || data[strlen(verb)] == ' ');

        switch (req.type) {
        case REQUEST_PING:
        case REQUEST_INFO:
                FUZZ_CHECK(size == strlen(request_type_to_string(req.type)));
                break;
        case REQUEST_PUT:
                FUZZ_CHECK(req.msgid && inside(req.msgid, req.msgid_len, line, size));
                FUZZ_CHECK(msgid_is_valid(req.msgid, req.msgid_len));
                FUZZ_CHECK(req.msgid[req.msgid_len] == '\0');
                FUZZ_CHECK(req.payload == req.msgid + req.msgid_len + 1);
                __attribute__((fallthrough));
        case REQUEST_SEND:
                FUZZ_CHECK(req.payload && inside(req.payload, req.payload_len, line, size));
                FUZZ_CHECK(req.payload_len >= 1 && req.payload_len <= max);
                FUZZ_CHECK(req.payload + req.payload_len == line + size);
                /* It must survive the "\r\n" line ending on its way to a backup. */
                FUZZ_CHECK(req.payload[req.payload_len - 1] != '\r');
                FUZZ_CHECK(memcmp(req.payload, data + (req.payload - line), req.payload_len) == 0);
                break;
        case REQUEST_GET:
                FUZZ_CHECK(req.index >= 1);
                break;
        case REQUEST_READ:
                FUZZ_CHECK(req.index >= 1);
                FUZZ_CHECK(req.count >= 1 && req.count <= READ_COUNT_MAX);
                break;
        case REQUEST_AUTH:
                FUZZ_CHECK(req.payload && inside(req.payload, req.payload_len, line, size));
                FUZZ_CHECK(req.payload_len >= 1 && !memchr(req.payload, ' ', req.payload_len));
                break;
        case REQUEST_SYNC: {
                ReplMessage m;

                FUZZ_CHECK(req.line == line && req.line_len == size);
                /* The server hands the whole line to the replication parser. */
                if (repl_message_parse(req.line, req.line_len, max, &m, &reason) >= 0)
                        FUZZ_CHECK(m.type == REPL_SYNC);
                else
                        FUZZ_CHECK(reason && *reason);
                break;
        }
        default:
                FUZZ_CHECK(false);
        }
        free(line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        check_request(data, size, 65536);
        check_request(data, size, 64);
        return 0;
}
