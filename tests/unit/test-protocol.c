/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-protocol — the client protocol and monitor client API of doc/design.md:
 * every request verb good and bad, the TOOLONG boundaries, every reply type
 * formatted and parsed back, and the monitor API requests.
 */

#include "tests.h"

#include <stdbool.h>
#include <stdint.h>

#include "protocol.h"

#define MAX_MSG 1000

/* A writable copy of n bytes (may contain NULs), NUL-terminated after them. */
static char *dup_line(const char *s, size_t n) {
        char *p = malloc(n + 1);
        ASSERT_TRUE(p);
        memcpy(p, s, n);
        p[n] = '\0';
        return p;
}

/* Parse s (len n) and expect success; the line copy is returned through
 * *ret_line so the Request's pointers stay valid until the caller frees it. */
static Request parse_good_n(const char *s, size_t n, uint64_t max, char **ret_line) {
        char *line = dup_line(s, n);
        Request req = {};
        ErrCode code = _ERRC_INVALID;
        const char *reason = NULL;
        int r;

        r = request_parse(line, n, max, &req, &code, &reason);
        if (r != 0)
                fprintf(stderr, "unexpected failure parsing \"%s\": %s\n", s, reason ? reason : "?");
        ASSERT_EQ_INT(r, 0);
        ASSERT_TRUE(reason == NULL);
        *ret_line = line;
        return req;
}

static Request parse_good(const char *s, char **ret_line) {
        return parse_good_n(s, strlen(s), MAX_MSG, ret_line);
}

static void expect_bad_n(const char *s, size_t n, uint64_t max, ErrCode expected) {
        char *line = dup_line(s, n);
        Request req = { .type = REQUEST_INFO, .index = 4242 };
        ErrCode code = _ERRC_INVALID;
        const char *reason = NULL;
        int r;

        r = request_parse(line, n, max, &req, &code, &reason);
        if (r != -EINVAL)
                fprintf(stderr, "unexpected success parsing \"%s\"\n", s);
        ASSERT_EQ_INT(r, -EINVAL);
        ASSERT_EQ_INT(code, expected);
        ASSERT_TRUE(reason != NULL);
        ASSERT_TRUE(strlen(reason) > 0);
        /* The output is left alone on failure. */
        ASSERT_EQ_INT(req.type, REQUEST_INFO);
        ASSERT_EQ_U64(req.index, 4242);
        free(line);
}

static void expect_bad(const char *s) {
        expect_bad_n(s, strlen(s), MAX_MSG, ERRC_BADCMD);
}

static const char *const bad_numbers[] = {
        "", "-1", "1x", "x1", "+1", " 1", "1 ", "0x10", "1.0", "99999999999999999999", "18446744073709551616",
};

TEST(tables) {
        static const char *const codes[] = { "BADCMD", "TOOLONG", "NOREPLICAS", "NOLEASE", "NOTFOUND",
                                             "BUSY",   "NOPRIMARY", "STALE",    "AUTH",    "INTERNAL" };
        static const char *const verbs[] = { "PING", "SEND", "PUT", "GET", "READ", "INFO", "SYNC", "AUTH" };

        ASSERT_EQ_INT(ELEMENTSOF(codes), _ERRC_MAX);
        for (int i = 0; i < _ERRC_MAX; i++) {
                ASSERT_STREQ(err_code_to_string((ErrCode) i), codes[i]);
                ASSERT_EQ_INT(err_code_from_string(codes[i]), i);
        }
        ASSERT_TRUE(err_code_to_string(_ERRC_MAX) == NULL);
        ASSERT_TRUE(err_code_to_string(_ERRC_INVALID) == NULL);
        ASSERT_EQ_INT(err_code_from_string("badcmd"), _ERRC_INVALID);
        ASSERT_EQ_INT(err_code_from_string(""), _ERRC_INVALID);
        ASSERT_EQ_INT(err_code_from_string("WHATEVER"), _ERRC_INVALID);
        ASSERT_EQ_INT(err_code_from_string(NULL), _ERRC_INVALID);

        ASSERT_EQ_INT(ELEMENTSOF(verbs), _REQUEST_MAX);
        for (int i = 0; i < _REQUEST_MAX; i++)
                ASSERT_STREQ(request_type_to_string((RequestType) i), verbs[i]);
        ASSERT_TRUE(request_type_to_string(_REQUEST_MAX) == NULL);
        ASSERT_TRUE(request_type_to_string(_REQUEST_INVALID) == NULL);
}

TEST(ping_info) {
        char *line;
        Request req;

        req = parse_good("PING", &line);
        ASSERT_EQ_INT(req.type, REQUEST_PING);
        ASSERT_TRUE(req.payload == NULL);
        free(line);

        req = parse_good("INFO", &line);
        ASSERT_EQ_INT(req.type, REQUEST_INFO);
        free(line);

        expect_bad("PING ");
        expect_bad("PING x");
        expect_bad("INFO ");
        expect_bad("INFO all");
        expect_bad("ping");
        expect_bad("Ping");
        expect_bad(" PING");
        expect_bad("PINGX");
        expect_bad("PIN");
        expect_bad("");
        expect_bad("HELLO");
        expect_bad_n("PING\0", 5, MAX_MSG, ERRC_BADCMD);
        expect_bad_n("\0PING", 5, MAX_MSG, ERRC_BADCMD);
}

TEST(send) {
        char *line;
        Request req;

        req = parse_good("SEND hello", &line);
        ASSERT_EQ_INT(req.type, REQUEST_SEND);
        ASSERT_EQ_U64(req.payload_len, 5);
        ASSERT_TRUE(memcmp(req.payload, "hello", 5) == 0);
        ASSERT_TRUE(req.payload == line + 5);
        free(line);

        /* The payload is everything after "SEND ", spaces included. */
        req = parse_good("SEND  two  spaces ", &line);
        ASSERT_EQ_U64(req.payload_len, 13);
        ASSERT_TRUE(memcmp(req.payload, " two  spaces ", 13) == 0);
        free(line);

        req = parse_good("SEND x", &line);
        ASSERT_EQ_U64(req.payload_len, 1);
        ASSERT_EQ_INT(req.payload[0], 'x');
        free(line);

        /* Bytes other than NUL and '\n' are payload, '\r' and high bytes included. */
        req = parse_good("SEND a\rb\tc\xff", &line);
        ASSERT_EQ_U64(req.payload_len, 6);
        free(line);

        expect_bad("SEND");
        expect_bad("SEND ");
        expect_bad("send hi");
        expect_bad("SENDhi");
        expect_bad_n("SEND a\0b", 8, MAX_MSG, ERRC_BADCMD);
        expect_bad_n("SEND ab\0", 8, MAX_MSG, ERRC_BADCMD);
        expect_bad("SEND a\nb");
        expect_bad("PUT id a\nb");
}

TEST(put) {
        char id64[MSGID_MAX_LEN + 1], line_buf[200];
        char *line;
        Request req;

        req = parse_good("PUT client-1:42 hello world", &line);
        ASSERT_EQ_INT(req.type, REQUEST_PUT);
        ASSERT_EQ_U64(req.msgid_len, 11);
        ASSERT_TRUE(memcmp(req.msgid, "client-1:42", 11) == 0);
        ASSERT_STREQ(req.msgid, "client-1:42"); /* terminated in place */
        ASSERT_EQ_U64(req.payload_len, 11);
        ASSERT_TRUE(memcmp(req.payload, "hello world", 11) == 0);
        free(line);

        req = parse_good("PUT A.b_c:d-0 x", &line);
        ASSERT_EQ_U64(req.msgid_len, 9);
        ASSERT_EQ_U64(req.payload_len, 1);
        free(line);

        /* A payload starting with a space: the first space separates. */
        req = parse_good("PUT id  p", &line);
        ASSERT_EQ_U64(req.payload_len, 2);
        ASSERT_TRUE(memcmp(req.payload, " p", 2) == 0);
        free(line);

        /* msgid of exactly 64 characters is fine, 65 is not. */
        memset(id64, 'a', MSGID_MAX_LEN);
        id64[MSGID_MAX_LEN] = '\0';
        snprintf(line_buf, sizeof(line_buf), "PUT %s p", id64);
        req = parse_good(line_buf, &line);
        ASSERT_EQ_U64(req.msgid_len, 64);
        free(line);
        snprintf(line_buf, sizeof(line_buf), "PUT %sa p", id64);
        expect_bad(line_buf);

        expect_bad("PUT");
        expect_bad("PUT ");
        expect_bad("PUT id");
        expect_bad("PUT id ");
        expect_bad("PUT  payload");      /* empty msgid */
        expect_bad("PUT bad/id payload");
        expect_bad("PUT bad#id payload");
        expect_bad("PUT \xc3\xa9 payload");
        expect_bad("put id payload");
        expect_bad_n("PUT id p\0q", 10, MAX_MSG, ERRC_BADCMD);
        expect_bad_n("PUT i\0d pq", 10, MAX_MSG, ERRC_BADCMD);
}

TEST(get) {
        char *line, buf[64];
        Request req;

        req = parse_good("GET 1", &line);
        ASSERT_EQ_INT(req.type, REQUEST_GET);
        ASSERT_EQ_U64(req.index, 1);
        free(line);

        req = parse_good("GET 18446744073709551615", &line);
        ASSERT_EQ_U64(req.index, UINT64_MAX);
        free(line);

        req = parse_good("GET 007", &line);
        ASSERT_EQ_U64(req.index, 7);
        free(line);

        expect_bad("GET");
        expect_bad("GET 0");
        expect_bad("GET 00");
        expect_bad("GET 1 2");
        expect_bad("GET 1 ");
        expect_bad("get 1");
        for (size_t i = 0; i < ELEMENTSOF(bad_numbers); i++) {
                snprintf(buf, sizeof(buf), "GET %s", bad_numbers[i]);
                expect_bad(buf);
        }
        expect_bad_n("GET 1\0", 6, MAX_MSG, ERRC_BADCMD);
}

TEST(read) {
        char *line, buf[64];
        Request req;

        req = parse_good("READ 5", &line);
        ASSERT_EQ_INT(req.type, REQUEST_READ);
        ASSERT_EQ_U64(req.index, 5);
        ASSERT_EQ_U64(req.count, READ_COUNT_DEFAULT);
        free(line);

        req = parse_good("READ 1 1", &line);
        ASSERT_EQ_U64(req.index, 1);
        ASSERT_EQ_U64(req.count, 1);
        free(line);

        snprintf(buf, sizeof(buf), "READ 3 %d", READ_COUNT_MAX);
        req = parse_good(buf, &line);
        ASSERT_EQ_U64(req.index, 3);
        ASSERT_EQ_U64(req.count, READ_COUNT_MAX);
        free(line);

        snprintf(buf, sizeof(buf), "READ 3 %d", READ_COUNT_MAX + 1);
        expect_bad(buf);
        expect_bad("READ 3 0");
        expect_bad("READ 0");
        expect_bad("READ 0 5");
        expect_bad("READ");
        expect_bad("READ ");
        expect_bad("READ 1 ");
        expect_bad("READ 1  2");
        expect_bad("READ 1 2 3");
        expect_bad("READ 1 2 ");
        expect_bad("read 1");
        for (size_t i = 0; i < ELEMENTSOF(bad_numbers); i++) {
                snprintf(buf, sizeof(buf), "READ %s", bad_numbers[i]);
                expect_bad(buf);
                snprintf(buf, sizeof(buf), "READ 1 %s", bad_numbers[i]);
                expect_bad(buf);
        }
        expect_bad_n("READ 1 2\0", 9, MAX_MSG, ERRC_BADCMD);
}

TEST(sync_auth) {
        const char *s = "SYNC backup 3 17 1:1,3:12";
        char *line;
        Request req;

        req = parse_good(s, &line);
        ASSERT_EQ_INT(req.type, REQUEST_SYNC);
        ASSERT_TRUE(req.line == line);
        ASSERT_EQ_U64(req.line_len, strlen(s));
        ASSERT_STREQ(req.line, s); /* left whole for repl_message_parse() */
        free(line);

        expect_bad("SYNC");
        expect_bad("SYNC ");
        expect_bad("sync x");
        expect_bad_n("SYNC a\0b", 8, MAX_MSG, ERRC_BADCMD);

        req = parse_good("AUTH s3cr3t", &line);
        ASSERT_EQ_INT(req.type, REQUEST_AUTH);
        ASSERT_EQ_U64(req.payload_len, 6);
        ASSERT_TRUE(memcmp(req.payload, "s3cr3t", 6) == 0);
        free(line);

        expect_bad("AUTH");
        expect_bad("AUTH ");
        expect_bad("AUTH a b");
        expect_bad("auth x");
        expect_bad_n("AUTH a\0", 7, MAX_MSG, ERRC_BADCMD);
}

/* Build "PREFIX" + n bytes of 'x'. */
static char *make_line(const char *prefix, size_t n, size_t *ret_len) {
        size_t p = strlen(prefix);
        char *s = malloc(p + n + 1);

        ASSERT_TRUE(s);
        memcpy(s, prefix, p);
        memset(s + p, 'x', n);
        s[p + n] = '\0';
        *ret_len = p + n;
        return s;
}

TEST(toolong) {
        char *s, *line;
        size_t len;
        Request req;

        /* SEND payload: max is fine, max + 1 is TOOLONG. */
        s = make_line("SEND ", MAX_MSG, &len);
        req = parse_good_n(s, len, MAX_MSG, &line);
        ASSERT_EQ_U64(req.payload_len, MAX_MSG);
        free(line);
        free(s);
        s = make_line("SEND ", MAX_MSG + 1, &len);
        expect_bad_n(s, len, MAX_MSG, ERRC_TOOLONG);
        free(s);

        /* PUT payload, same boundary. */
        s = make_line("PUT id ", MAX_MSG, &len);
        req = parse_good_n(s, len, MAX_MSG, &line);
        ASSERT_EQ_U64(req.payload_len, MAX_MSG);
        free(line);
        free(s);
        s = make_line("PUT id ", MAX_MSG + 1, &len);
        expect_bad_n(s, len, MAX_MSG, ERRC_TOOLONG);
        free(s);

        /* The whole line: request_line_max() is looked at (here: a bad command),
         * one more byte is TOOLONG before anything else, even with a NUL byte in it.
         * The limit never drops below REQUEST_LINE_MIN, so SYNC lines always fit. */
        ASSERT_EQ_U64(request_line_max(MAX_MSG), REQUEST_LINE_MIN);
        ASSERT_EQ_U64(request_line_max(65536), 65536 + REQUEST_LINE_OVERHEAD);
        ASSERT_EQ_U64(replication_line_max(65536), 65536 + REPLICATION_LINE_OVERHEAD);
        ASSERT_EQ_U64(request_line_max(UINT64_MAX), UINT64_MAX);
        s = make_line("", request_line_max(MAX_MSG), &len);
        expect_bad_n(s, len, MAX_MSG, ERRC_BADCMD);
        free(s);
        s = make_line("", request_line_max(MAX_MSG) + 1, &len);
        expect_bad_n(s, len, MAX_MSG, ERRC_TOOLONG);
        s[3] = '\0';
        expect_bad_n(s, len, MAX_MSG, ERRC_TOOLONG);
        free(s);

        /* A line of exactly max + 80 carrying a valid request of max bytes. */
        s = make_line("PUT ", MAX_MSG + 76, &len);
        memset(s + 4, 'i', 64);
        s[68] = ' ';
        memset(s + 69, 'p', MAX_MSG + 11);
        ASSERT_EQ_U64(len, MAX_MSG + 80);
        expect_bad_n(s, len, MAX_MSG, ERRC_TOOLONG); /* payload max + 11 */
        free(s);

        /* A payload ending in a carriage return could not reach a backup intact. */
        expect_bad_n("SEND ab\r", 8, MAX_MSG, ERRC_BADCMD);
        expect_bad_n("PUT id ab\r", 10, MAX_MSG, ERRC_BADCMD);
        req = parse_good_n("SEND a\rb", 8, MAX_MSG, &line);
        ASSERT_EQ_U64(req.payload_len, 3);
        free(line);

        /* A huge max_message_bytes does not overflow the line limit. */
        req = parse_good_n("SEND x", 6, UINT64_MAX, &line);
        ASSERT_EQ_U64(req.payload_len, 1);
        free(line);
        req = parse_good_n("SEND x", 6, UINT64_MAX - 79, &line);
        ASSERT_EQ_U64(req.payload_len, 1);
        free(line);

        /* max 0: every payload is too long. */
        expect_bad_n("SEND x", 6, 0, ERRC_TOOLONG);
        req = parse_good_n("PING", 4, 0, &line);
        ASSERT_EQ_INT(req.type, REQUEST_PING);
        free(line);
}

TEST(optional_outputs) {
        char line[] = "NOPE";
        Request req;

        /* ret_code and ret_reason may be NULL. */
        ASSERT_EQ_INT(request_parse(line, strlen(line), MAX_MSG, &req, NULL, NULL), -EINVAL);
}

/* Format with f into a fresh Buf, check the exact text, parse it back. */
static Reply roundtrip(Buf *b, const char *expected, ReplyType type) {
        Reply rep = {};

        ASSERT_STREQ(b->data, expected);
        ASSERT_EQ_U64(b->len, strlen(expected));
        ASSERT_TRUE(b->len > 0 && b->data[b->len - 1] == '\n');
        ASSERT_TRUE(memchr(b->data, '\n', b->len) == b->data + b->len - 1);
        b->data[--b->len] = '\0'; /* strip the line ending, as the line reader does */
        ASSERT_EQ_INT(reply_parse(b->data, b->len, &rep), 0);
        ASSERT_EQ_INT(rep.type, type);
        return rep;
}

TEST(reply_roundtrip) {
        Buf b = {};
        Reply r;

        ASSERT_OK(reply_pong(&b, "primary", "primary", 7));
        r = roundtrip(&b, "PONG primary primary 7\n", REPLY_PONG);
        ASSERT_STREQ(r.name, "primary");
        ASSERT_STREQ(r.role, "primary");
        ASSERT_EQ_U64(r.term, 7);
        buf_clear(&b);

        ASSERT_OK(reply_pong(&b, "backup2", "backup", UINT64_MAX));
        r = roundtrip(&b, "PONG backup2 backup 18446744073709551615\n", REPLY_PONG);
        ASSERT_STREQ(r.name, "backup2");
        ASSERT_STREQ(r.role, "backup");
        ASSERT_EQ_U64(r.term, UINT64_MAX);
        buf_clear(&b);

        ASSERT_OK(reply_ok(&b, 42));
        r = roundtrip(&b, "OK 42\n", REPLY_OK);
        ASSERT_EQ_U64(r.index, 42);
        buf_clear(&b);

        ASSERT_OK(reply_ok(&b, 0));
        r = roundtrip(&b, "OK\n", REPLY_OK);
        ASSERT_EQ_U64(r.index, 0);
        buf_clear(&b);

        ASSERT_OK(reply_msg(&b, 5, 2, "hello world", 11));
        r = roundtrip(&b, "MSG 5 2 hello world\n", REPLY_MSG);
        ASSERT_EQ_U64(r.index, 5);
        ASSERT_EQ_U64(r.term, 2);
        ASSERT_EQ_U64(r.payload_len, 11);
        ASSERT_TRUE(memcmp(r.payload, "hello world", 11) == 0);
        buf_clear(&b);

        ASSERT_OK(reply_msg(&b, 5, 2, "", 0));
        r = roundtrip(&b, "MSG 5 2 \n", REPLY_MSG);
        ASSERT_EQ_U64(r.index, 5);
        ASSERT_EQ_U64(r.term, 2);
        ASSERT_EQ_U64(r.payload_len, 0);
        ASSERT_STREQ(r.payload, "");
        buf_clear(&b);

        ASSERT_OK(reply_msg(&b, 9, 3, "  lead", 6));
        r = roundtrip(&b, "MSG 9 3   lead\n", REPLY_MSG);
        ASSERT_EQ_U64(r.payload_len, 6);
        ASSERT_TRUE(memcmp(r.payload, "  lead", 6) == 0);
        buf_clear(&b);

        ASSERT_OK(reply_end(&b));
        roundtrip(&b, "END\n", REPLY_END);
        buf_clear(&b);

        ASSERT_OK(reply_redirect(&b, "127.0.0.1:8089"));
        r = roundtrip(&b, "REDIRECT 127.0.0.1:8089\n", REPLY_REDIRECT);
        ASSERT_STREQ(r.address, "127.0.0.1:8089");
        buf_clear(&b);

        for (int c = 0; c < _ERRC_MAX; c++) {
                char expected[128];

                snprintf(expected, sizeof(expected), "ERR %s bad thing %d\n", err_code_to_string((ErrCode) c), c);
                ASSERT_OK(reply_err(&b, (ErrCode) c, "bad thing %d", c));
                r = roundtrip(&b, expected, REPLY_ERR);
                ASSERT_EQ_INT(r.code, c);
                snprintf(expected, sizeof(expected), "bad thing %d", c);
                ASSERT_STREQ(r.text, expected);
                buf_clear(&b);
        }

        ASSERT_OK(reply_err(&b, ERRC_NOTFOUND, "%s", ""));
        r = roundtrip(&b, "ERR NOTFOUND\n", REPLY_ERR);
        ASSERT_EQ_INT(r.code, ERRC_NOTFOUND);
        ASSERT_STREQ(r.text, "");
        buf_clear(&b);

        /* Line breaks in the text cannot split the reply. */
        ASSERT_OK(reply_err(&b, ERRC_BADCMD, "a\nb\r%s", "c\n"));
        r = roundtrip(&b, "ERR BADCMD a b c \n", REPLY_ERR);
        ASSERT_STREQ(r.text, "a b c ");
        buf_clear(&b);

        ASSERT_OK(reply_kv(&b, "commit_index", "%d", 17));
        r = roundtrip(&b, "commit_index=17\n", REPLY_KV);
        ASSERT_STREQ(r.key, "commit_index");
        ASSERT_STREQ(r.value, "17");
        buf_clear(&b);

        ASSERT_OK(reply_kv(&b, "replicas", "%s", "backup backup2"));
        r = roundtrip(&b, "replicas=backup backup2\n", REPLY_KV);
        ASSERT_STREQ(r.key, "replicas");
        ASSERT_STREQ(r.value, "backup backup2");
        buf_clear(&b);

        ASSERT_OK(reply_kv(&b, "empty", "%s", ""));
        r = roundtrip(&b, "empty=\n", REPLY_KV);
        ASSERT_STREQ(r.key, "empty");
        ASSERT_STREQ(r.value, "");
        buf_clear(&b);

        /* per-replica INFO keys carry a server name after a dot */
        ASSERT_OK(reply_kv(&b, "replica.backup2", "%s", "acked:5,in_sync:yes"));
        r = roundtrip(&b, "replica.backup2=acked:5,in_sync:yes\n", REPLY_KV);
        ASSERT_STREQ(r.key, "replica.backup2");
        ASSERT_STREQ(r.value, "acked:5,in_sync:yes");
        buf_clear(&b);
        ASSERT_EQ_INT(reply_kv(&b, "replica.", "%d", 1), -EINVAL);
        ASSERT_EQ_INT(reply_kv(&b, "replica.a.b", "%d", 1), -EINVAL);
        ASSERT_EQ_INT(reply_kv(&b, ".backup", "%d", 1), -EINVAL);

        ASSERT_OK(reply_primary(&b, "backup", "127.0.0.1:8089", 4));
        r = roundtrip(&b, "PRIMARY backup 127.0.0.1:8089 4\n", REPLY_PRIMARY);
        ASSERT_STREQ(r.name, "backup");
        ASSERT_STREQ(r.address, "127.0.0.1:8089");
        ASSERT_EQ_U64(r.term, 4);
        buf_clear(&b);

        ASSERT_OK(reply_noprimary(&b));
        roundtrip(&b, "NOPRIMARY\n", REPLY_NOPRIMARY);
        buf_clear(&b);

        ASSERT_OK(buf_append_str(&b, "SERVER name=primary role=primary state=up term=3 index=10 age_ms=12 "
                                     "unit=fusion-primary.service\n"));
        r = roundtrip(&b,
                      "SERVER name=primary role=primary state=up term=3 index=10 age_ms=12 "
                      "unit=fusion-primary.service\n",
                      REPLY_SERVER);
        ASSERT_TRUE(strncmp(r.text, "name=primary ", 13) == 0);
        buf_clear(&b);

        buf_done(&b);
}

TEST(reply_appends) {
        Buf b = {};

        /* Replies append: several lines accumulate in one Buf. */
        ASSERT_OK(reply_msg(&b, 1, 1, "a", 1));
        ASSERT_OK(reply_msg(&b, 2, 1, "b", 1));
        ASSERT_OK(reply_end(&b));
        ASSERT_STREQ(b.data, "MSG 1 1 a\nMSG 2 1 b\nEND\n");

        /* Refused arguments leave the buffer untouched. */
        ASSERT_EQ_INT(reply_msg(&b, 3, 1, "x\ny", 3), -EINVAL);
        ASSERT_EQ_INT(reply_msg(&b, 3, 1, "x\0y", 3), -EINVAL);
        ASSERT_EQ_INT(reply_pong(&b, "two words", "primary", 1), -EINVAL);
        ASSERT_EQ_INT(reply_pong(&b, "", "primary", 1), -EINVAL);
        ASSERT_EQ_INT(reply_pong(&b, "p", "a\nb", 1), -EINVAL);
        ASSERT_EQ_INT(reply_redirect(&b, ""), -EINVAL);
        ASSERT_EQ_INT(reply_redirect(&b, NULL), -EINVAL);
        ASSERT_EQ_INT(reply_primary(&b, "p", "h p", 1), -EINVAL);
        ASSERT_EQ_INT(reply_kv(&b, "Bad", "%d", 1), -EINVAL);
        ASSERT_EQ_INT(reply_kv(&b, "", "%d", 1), -EINVAL);
        ASSERT_EQ_INT(reply_kv(&b, "a-b", "%d", 1), -EINVAL);
        ASSERT_EQ_INT(reply_err(&b, _ERRC_MAX, "x"), -EINVAL);
        ASSERT_EQ_INT(reply_err(&b, _ERRC_INVALID, "x"), -EINVAL);
        ASSERT_STREQ(b.data, "MSG 1 1 a\nMSG 2 1 b\nEND\n");
        ASSERT_EQ_U64(b.len, strlen("MSG 1 1 a\nMSG 2 1 b\nEND\n"));

        buf_done(&b);
}

static Reply reply_good(const char *s, ReplyType type) {
        static char line[512];
        Reply r = {};

        ASSERT_TRUE(strlen(s) < sizeof(line));
        strcpy(line, s);
        int rv = reply_parse(line, strlen(s), &r);

        if (rv != 0)
                fprintf(stderr, "unexpected failure parsing reply \"%s\"\n", s);
        ASSERT_EQ_INT(rv, 0);
        ASSERT_EQ_INT(r.type, type);
        return r;
}

static void reply_bad_n(const char *s, size_t n) {
        char *line = dup_line(s, n);
        Reply r = { .type = REPLY_END };

        int rv = reply_parse(line, n, &r);

        if (rv != -EINVAL)
                fprintf(stderr, "unexpected success parsing reply \"%s\"\n", s);
        ASSERT_EQ_INT(rv, -EINVAL);
        ASSERT_EQ_INT(r.type, REPLY_END); /* untouched */
        free(line);
}

static void reply_bad(const char *s) {
        reply_bad_n(s, strlen(s));
}

TEST(reply_parse_edges) {
        Reply r;

        /* MSG with no separating space after the term: empty payload too. */
        r = reply_good("MSG 5 2", REPLY_MSG);
        ASSERT_EQ_U64(r.index, 5);
        ASSERT_EQ_U64(r.term, 2);
        ASSERT_EQ_U64(r.payload_len, 0);

        /* An error code this version does not know is still an ERR. */
        r = reply_good("ERR FUTURE something new", REPLY_ERR);
        ASSERT_EQ_INT(r.code, _ERRC_INVALID);
        ASSERT_STREQ(r.text, "something new");
        r = reply_good("ERR BUSY", REPLY_ERR);
        ASSERT_EQ_INT(r.code, ERRC_BUSY);
        ASSERT_STREQ(r.text, "");

        r = reply_good("OK 0", REPLY_OK);
        ASSERT_EQ_U64(r.index, 0);

        r = reply_good("last_index=12", REPLY_KV);
        ASSERT_STREQ(r.key, "last_index");
        ASSERT_STREQ(r.value, "12");
        r = reply_good("name=a=b", REPLY_KV);
        ASSERT_STREQ(r.key, "name");
        ASSERT_STREQ(r.value, "a=b");

        reply_bad("");
        reply_bad("PONG");
        reply_bad("PONG a b");
        reply_bad("PONG a b c");
        reply_bad("PONG a b 1 2");
        reply_bad("PONG a  b 1");
        reply_bad("PONG a b -1");
        reply_bad("OK ");
        reply_bad("OK x");
        reply_bad("OK 1 2");
        reply_bad("OK -1");
        reply_bad("ok 1");
        reply_bad("MSG");
        reply_bad("MSG 1");
        reply_bad("MSG 1 ");
        reply_bad("MSG x 1 p");
        reply_bad("MSG 1 x p");
        reply_bad("MSG 1  2 p");
        reply_bad("END ");
        reply_bad("END x");
        reply_bad("REDIRECT");
        reply_bad("REDIRECT ");
        reply_bad("REDIRECT a b");
        reply_bad("ERR");
        reply_bad("ERR ");
        reply_bad("ERR  text");
        reply_bad("PRIMARY a b");
        reply_bad("PRIMARY a b x");
        reply_bad("PRIMARY a b 1 2");
        reply_bad("NOPRIMARY x");
        reply_bad("SERVER");
        reply_bad("SERVER ");
        reply_bad("SERVER  name=x");
        reply_bad("=value");
        reply_bad("Key=value");
        reply_bad("key-x=value");
        reply_bad("HELLO");
        reply_bad("SYNCED 1 2 3");
        reply_bad_n("OK 1\0", 5);
        reply_bad_n("MSG 1 2 a\0b", 11);
}

TEST(kv_find) {
        const char *text = "name=primary role=primary state=up term=3 index=10 age_ms= unit=fusion-primary.service";
        const char *v;
        size_t n;

        ASSERT_EQ_INT(kv_find(text, "name", &v, &n), 1);
        ASSERT_EQ_U64(n, 7);
        ASSERT_TRUE(strncmp(v, "primary", n) == 0);
        ASSERT_EQ_INT(kv_find(text, "state", &v, &n), 1);
        ASSERT_EQ_U64(n, 2);
        ASSERT_TRUE(strncmp(v, "up", n) == 0);
        ASSERT_EQ_INT(kv_find(text, "unit", &v, &n), 1);
        ASSERT_STREQ(v, "fusion-primary.service");
        ASSERT_EQ_U64(n, strlen("fusion-primary.service"));
        ASSERT_EQ_INT(kv_find(text, "age_ms", &v, &n), 1);
        ASSERT_EQ_U64(n, 0);

        /* Whole keys only: neither prefixes nor suffixes match. */
        ASSERT_EQ_INT(kv_find(text, "nam", &v, &n), 0);
        ASSERT_EQ_INT(kv_find(text, "ame", &v, &n), 0);
        ASSERT_EQ_INT(kv_find(text, "names", &v, &n), 0);
        ASSERT_EQ_INT(kv_find(text, "primary", &v, &n), 0); /* a value, not a key */
        ASSERT_EQ_INT(kv_find(text, "missing", &v, &n), 0);
        ASSERT_EQ_INT(kv_find("", "name", &v, &n), 0);
        ASSERT_EQ_INT(kv_find(text, "term", NULL, NULL), 1);
}

static void mon_good(const char *s, MonRequestType type, const char *name) {
        char *line = dup_line(s, strlen(s));
        MonRequest req = {};
        const char *reason = NULL;

        ASSERT_EQ_INT(mon_request_parse(line, strlen(s), &req, &reason), 0);
        ASSERT_EQ_INT(req.type, type);
        if (name)
                ASSERT_STREQ(req.name, name);
        else
                ASSERT_TRUE(req.name == NULL);
        free(line);
}

static void mon_bad_n(const char *s, size_t n) {
        char *line = dup_line(s, n);
        MonRequest req = { .type = MONREQ_STATUS };
        const char *reason = NULL;
        int r = mon_request_parse(line, n, &req, &reason);

        if (r != -EINVAL)
                fprintf(stderr, "unexpected success parsing \"%s\"\n", s);
        ASSERT_EQ_INT(r, -EINVAL);
        ASSERT_TRUE(reason != NULL);
        ASSERT_EQ_INT(req.type, MONREQ_STATUS);
        free(line);
}

static void mon_bad(const char *s) {
        mon_bad_n(s, strlen(s));
}

TEST(mon_request) {
        MonRequest req;
        char line[] = "NOPE";

        mon_good("WHO", MONREQ_WHO, NULL);
        mon_good("SUBSCRIBE", MONREQ_SUBSCRIBE, NULL);
        mon_good("STATUS", MONREQ_STATUS, NULL);
        mon_good("PROMOTE backup2", MONREQ_PROMOTE, "backup2");
        mon_good("PROMOTE abcdefghijklmnopqrstuvwxyz012345", MONREQ_PROMOTE, "abcdefghijklmnopqrstuvwxyz012345");

        mon_bad("");
        mon_bad("who");
        mon_bad("WHO ");
        mon_bad("WHO x");
        mon_bad("SUBSCRIBE now");
        mon_bad("STATUS ");
        mon_bad("PROMOTE");
        mon_bad("PROMOTE ");
        mon_bad("PROMOTE a b");
        mon_bad("PROMOTE  a");
        mon_bad("PROMOTE bad.name");
        mon_bad("PROMOTE abcdefghijklmnopqrstuvwxyz0123456"); /* 33 chars */
        mon_bad("PING");
        mon_bad_n("WHO\0", 4);
        mon_bad_n("PROMOTE a\0b", 11);

        ASSERT_EQ_INT(mon_request_parse(line, strlen(line), &req, NULL), -EINVAL);
}

int main(void) {
        RUN(tables);
        RUN(ping_info);
        RUN(send);
        RUN(put);
        RUN(get);
        RUN(read);
        RUN(sync_auth);
        RUN(toolong);
        RUN(optional_outputs);
        RUN(reply_roundtrip);
        RUN(reply_appends);
        RUN(reply_parse_edges);
        RUN(kv_find);
        RUN(mon_request);
        return 0;
}
