/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * protocol — parsing and formatting of the client protocol (requests on a
 * server's client port and their replies) and of the monitor's client API,
 * as fixed in DESIGN.md.
 *
 * Grammar rules shared by every parser here:
 *   - verbs are case-sensitive uppercase words;
 *   - exactly one space separates fields; an empty field (leading, trailing
 *     or doubled space) is malformed, except where a payload or text takes
 *     the rest of the line;
 *   - numbers are strict unsigned decimal (no sign, no spaces, no overflow);
 *   - a NUL byte anywhere in the line makes it malformed (as does a '\n' in a
 *     request line).
 * Parsers work in place: they may write NUL bytes into the line to terminate
 * fields (PUT terminates the msgid; reply_parse terminates name, role,
 * address, error code, key). A failed parse may leave the line modified.
 */

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "protocol.h"

/* A request line may carry this much beyond its payload: verb, msgid, spaces. */

static const char *const err_code_table[_ERRC_MAX] = {
        [ERRC_BADCMD] = "BADCMD",
        [ERRC_TOOLONG] = "TOOLONG",
        [ERRC_NOREPLICAS] = "NOREPLICAS",
        [ERRC_NOLEASE] = "NOLEASE",
        [ERRC_NOTFOUND] = "NOTFOUND",
        [ERRC_BUSY] = "BUSY",
        [ERRC_NOPRIMARY] = "NOPRIMARY",
        [ERRC_STALE] = "STALE",
        [ERRC_AUTH] = "AUTH",
        [ERRC_INTERNAL] = "INTERNAL",
};

const char *err_code_to_string(ErrCode c) {
        if (c < 0 || c >= _ERRC_MAX)
                return NULL;
        return err_code_table[c];
}

ErrCode err_code_from_string(const char *s) {
        if (!s)
                return _ERRC_INVALID;
        for (size_t i = 0; i < _ERRC_MAX; i++)
                if (strcmp(err_code_table[i], s) == 0)
                        return (ErrCode) i;
        return _ERRC_INVALID;
}

static const char *const request_type_table[_REQUEST_MAX] = {
        [REQUEST_PING] = "PING",
        [REQUEST_SEND] = "SEND",
        [REQUEST_PUT] = "PUT",
        [REQUEST_GET] = "GET",
        [REQUEST_READ] = "READ",
        [REQUEST_INFO] = "INFO",
        [REQUEST_SYNC] = "SYNC",
        [REQUEST_AUTH] = "AUTH",
};

const char *request_type_to_string(RequestType t) {
        if (t < 0 || t >= _REQUEST_MAX)
                return NULL;
        return request_type_table[t];
}

/* ---- requests ---------------------------------------------------------- */

static int request_fail(ErrCode code, const char *reason, ErrCode *ret_code, const char **ret_reason) {
        if (ret_code)
                *ret_code = code;
        if (ret_reason)
                *ret_reason = reason;
        return -EINVAL;
}

/* Strict decimal over a length-delimited field; 0 is refused when !allow_zero. */
static bool parse_number(const char *s, size_t n, bool allow_zero, uint64_t *ret) {
        uint64_t v;

        if (n == 0 || safe_atou64_n(s, n, &v) < 0)
                return false;
        if (v == 0 && !allow_zero)
                return false;
        *ret = v;
        return true;
}

/* Each parse_* gets the arguments (everything after "VERB ", or NULL when the
 * line was the bare verb) and fills *req, or returns a static reason and sets
 * *code. */
typedef const char *(*RequestArgsParser)(char *args, size_t args_len, uint64_t max_message_bytes,
                                         Request *req, ErrCode *code);

static const char *parse_no_args(char *args, size_t args_len, uint64_t max, Request *req, ErrCode *code) {
        return args ? "unexpected argument" : NULL;
}

uint64_t request_line_max(uint64_t max_message_bytes) {
        if (max_message_bytes > UINT64_MAX - REPLICATION_LINE_OVERHEAD)
                return UINT64_MAX;
        return MAX(max_message_bytes + REQUEST_LINE_OVERHEAD, (uint64_t) REQUEST_LINE_MIN);
}

uint64_t replication_line_max(uint64_t max_message_bytes) {
        if (max_message_bytes > UINT64_MAX - REPLICATION_LINE_OVERHEAD)
                return UINT64_MAX;
        return MAX(max_message_bytes + REPLICATION_LINE_OVERHEAD, (uint64_t) REQUEST_LINE_MIN);
}

static const char *parse_send(char *args, size_t args_len, uint64_t max, Request *req, ErrCode *code) {
        if (!args || args_len == 0)
                return "missing payload";
        if (args[args_len - 1] == '\r')
                return "payload ends in a carriage return";
        if (args_len > max) {
                *code = ERRC_TOOLONG;
                return "message too long";
        }
        req->payload = args;
        req->payload_len = args_len;
        return NULL;
}

static const char *parse_put(char *args, size_t args_len, uint64_t max, Request *req, ErrCode *code) {
        char *sp;
        size_t id_len;

        if (!args || args_len == 0)
                return "missing msgid";
        sp = memchr(args, ' ', args_len);
        if (!sp)
                return "missing payload";
        id_len = (size_t) (sp - args);
        if (!msgid_is_valid(args, id_len))
                return "bad msgid";
        if (args_len - id_len - 1 == 0)
                return "missing payload";
        if (args[args_len - 1] == '\r')
                return "payload ends in a carriage return";
        if (args_len - id_len - 1 > max) {
                *code = ERRC_TOOLONG;
                return "message too long";
        }
        *sp = '\0'; /* terminate the msgid in place for the caller's convenience */
        req->msgid = args;
        req->msgid_len = id_len;
        req->payload = sp + 1;
        req->payload_len = args_len - id_len - 1;
        return NULL;
}

static const char *parse_get(char *args, size_t args_len, uint64_t max, Request *req, ErrCode *code) {
        if (!args || args_len == 0)
                return "missing index";
        if (memchr(args, ' ', args_len))
                return "unexpected argument";
        if (!parse_number(args, args_len, false, &req->index))
                return "bad index";
        return NULL;
}

static const char *parse_read(char *args, size_t args_len, uint64_t max, Request *req, ErrCode *code) {
        const char *sp;
        size_t from_len;

        if (!args || args_len == 0)
                return "missing index";
        sp = memchr(args, ' ', args_len);
        from_len = sp ? (size_t) (sp - args) : args_len;
        if (!parse_number(args, from_len, false, &req->index))
                return "bad index";
        req->count = READ_COUNT_DEFAULT;
        if (sp) {
                const char *c = sp + 1;
                size_t c_len = args_len - from_len - 1;

                if (memchr(c, ' ', c_len))
                        return "unexpected argument";
                if (!parse_number(c, c_len, false, &req->count) || req->count > READ_COUNT_MAX)
                        return "bad count";
        }
        return NULL;
}

static const char *parse_sync(char *args, size_t args_len, uint64_t max, Request *req, ErrCode *code) {
        /* The replication module parses the whole line (repl_message_parse). */
        if (!args || args_len == 0)
                return "missing argument";
        return NULL;
}

static const char *parse_auth(char *args, size_t args_len, uint64_t max, Request *req, ErrCode *code) {
        if (!args || args_len == 0)
                return "missing token";
        if (memchr(args, ' ', args_len))
                return "unexpected argument";
        req->payload = args;
        req->payload_len = args_len;
        return NULL;
}

static const RequestArgsParser request_parsers[_REQUEST_MAX] = {
        [REQUEST_PING] = parse_no_args,
        [REQUEST_SEND] = parse_send,
        [REQUEST_PUT] = parse_put,
        [REQUEST_GET] = parse_get,
        [REQUEST_READ] = parse_read,
        [REQUEST_INFO] = parse_no_args,
        [REQUEST_SYNC] = parse_sync,
        [REQUEST_AUTH] = parse_auth,
};

int request_parse(char *line, size_t len, uint64_t max_message_bytes, Request *ret, ErrCode *ret_code,
                  const char **ret_reason) {
        RequestType type = _REQUEST_INVALID;
        ErrCode code = ERRC_BADCMD;
        const char *reason;
        size_t verb_len;
        char *sp, *args = NULL;
        size_t args_len = 0;
        Request req;

        assert(line || len == 0);
        assert(ret);

        /* Checked before anything else, so an over-long line costs nothing more. */
        if ((uint64_t) len > request_line_max(max_message_bytes))
                return request_fail(ERRC_TOOLONG, "line too long", ret_code, ret_reason);
        if (len > 0 && memchr(line, '\0', len))
                return request_fail(ERRC_BADCMD, "NUL byte in line", ret_code, ret_reason);
        /* Cannot come from the line reader, but a payload holding one could never be served. */
        if (len > 0 && memchr(line, '\n', len))
                return request_fail(ERRC_BADCMD, "line break in line", ret_code, ret_reason);

        sp = len > 0 ? memchr(line, ' ', len) : NULL;
        verb_len = sp ? (size_t) (sp - line) : len;
        for (size_t i = 0; i < _REQUEST_MAX; i++)
                if (strlen(request_type_table[i]) == verb_len &&
                    memcmp(request_type_table[i], line, verb_len) == 0) {
                        type = (RequestType) i;
                        break;
                }
        if (type < 0)
                return request_fail(ERRC_BADCMD, "unknown command", ret_code, ret_reason);

        if (sp) {
                args = sp + 1;
                args_len = len - verb_len - 1;
        }

        req = (Request) {
                .type = type,
        };
        reason = request_parsers[type](args, args_len, max_message_bytes, &req, &code);
        if (reason)
                return request_fail(code, reason, ret_code, ret_reason);
        if (type == REQUEST_SYNC) {
                req.line = line;
                req.line_len = len;
        }

        *ret = req;
        return 0;
}

/* ---- reply formatting --------------------------------------------------- */

static void buf_truncate(Buf *b, size_t len) {
        b->len = len;
        if (b->cap > 0)
                b->data[len] = '\0';
}

/* A field of a formatted reply: non-empty, no space, no line break. */
static bool token_is_valid(const char *s) {
        return s && *s && !strpbrk(s, " \r\n");
}

/* Append vprintf output, turning line breaks into spaces so the result stays
 * one line. Returns the number of bytes appended. */
_printf_(2, 0) static int buf_append_vline(Buf *b, const char *fmt, va_list ap) {
        va_list aq;
        int n, r;

        va_copy(aq, ap);
        n = vsnprintf(NULL, 0, fmt, aq);
        va_end(aq);
        if (n < 0)
                return -EINVAL;

        r = buf_reserve(b, (size_t) n + 1);
        if (r < 0)
                return r;
        if (vsnprintf(b->data + b->len, (size_t) n + 1, fmt, ap) != n)
                return -EINVAL;
        for (int i = 0; i < n; i++) {
                char *c = b->data + b->len + i;
                if (*c == '\n' || *c == '\r' || *c == '\0')
                        *c = ' ';
        }
        b->len += (size_t) n;
        b->data[b->len] = '\0';
        return n;
}

int reply_pong(Buf *b, const char *name, const char *role, uint64_t term) {
        assert(b);
        if (!token_is_valid(name) || !token_is_valid(role))
                return -EINVAL;
        return buf_printf(b, "PONG %s %s %" PRIu64 "\n", name, role, term);
}

/* OK 0 is written as a bare "OK" (an answer that carries no index, such as
 * the monitor's answer to PROMOTE); reply_parse maps both back to index 0. */
int reply_ok(Buf *b, uint64_t index) {
        assert(b);
        if (index == 0)
                return buf_append_str(b, "OK\n");
        return buf_append_line_u64(b, "OK", index);
}

/* An empty payload (a term-start record) still gets the separating space:
 * "MSG 5 2 ". The payload must not contain '\n' or NUL. */
int reply_msg(Buf *b, uint64_t index, uint64_t term, const void *payload, size_t len) {
        size_t saved;
        int r;

        assert(b);
        assert(payload || len == 0);
        if (len > 0 && (memchr(payload, '\n', len) || memchr(payload, '\0', len)))
                return -EINVAL;

        saved = b->len;
        r = buf_printf(b, "MSG %" PRIu64 " %" PRIu64 " ", index, term);
        if (r >= 0 && len > 0)
                r = buf_append(b, payload, len);
        if (r >= 0)
                r = buf_append(b, "\n", 1);
        if (r < 0) {
                buf_truncate(b, saved);
                return r;
        }
        return 0;
}

int reply_end(Buf *b) {
        assert(b);
        return buf_append_str(b, "END\n");
}

int reply_redirect(Buf *b, const char *address) {
        assert(b);
        if (!token_is_valid(address))
                return -EINVAL;
        return buf_printf(b, "REDIRECT %s\n", address);
}

/* "ERR CODE text"; "ERR CODE" when the text is empty. */
int reply_err(Buf *b, ErrCode code, const char *fmt, ...) {
        const char *s = err_code_to_string(code);
        size_t saved;
        va_list ap;
        int r;

        assert(b);
        assert(fmt);
        if (!s)
                return -EINVAL;

        saved = b->len;
        r = buf_printf(b, "ERR %s ", s);
        if (r >= 0) {
                va_start(ap, fmt);
                r = buf_append_vline(b, fmt, ap);
                va_end(ap);
        }
        if (r == 0) /* empty text: drop the separator */
                buf_truncate(b, b->len - 1);
        if (r >= 0)
                r = buf_append(b, "\n", 1);
        if (r < 0) {
                buf_truncate(b, saved);
                return r;
        }
        return 0;
}

/* INFO keys: a lower-case word, optionally followed by ".<server name>"
 * (per-replica keys such as "replica.backup2"), so [a-z_]+(\.[A-Za-z0-9_-]+)?. */
static bool kv_key_is_valid(const char *s, size_t n) {
        size_t i = 0;

        while (i < n && ((s[i] >= 'a' && s[i] <= 'z') || s[i] == '_'))
                i++;
        if (i == 0)
                return false;
        if (i == n)
                return true;
        if (s[i] != '.' || i + 1 == n || n - i - 1 > NAME_MAX_LEN)
                return false;
        for (i++; i < n; i++)
                if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
                      (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-'))
                        return false;
        return true;
}

int reply_kv(Buf *b, const char *key, const char *fmt, ...) {
        size_t saved;
        va_list ap;
        int r;

        assert(b);
        assert(fmt);
        if (!key || !kv_key_is_valid(key, strlen(key)))
                return -EINVAL;

        saved = b->len;
        r = buf_printf(b, "%s=", key);
        if (r >= 0) {
                va_start(ap, fmt);
                r = buf_append_vline(b, fmt, ap);
                va_end(ap);
        }
        if (r >= 0)
                r = buf_append(b, "\n", 1);
        if (r < 0) {
                buf_truncate(b, saved);
                return r;
        }
        return 0;
}

int reply_primary(Buf *b, const char *name, const char *address, uint64_t term) {
        assert(b);
        if (!token_is_valid(name) || !token_is_valid(address))
                return -EINVAL;
        return buf_printf(b, "PRIMARY %s %s %" PRIu64 "\n", name, address, term);
}

int reply_noprimary(Buf *b) {
        assert(b);
        return buf_append_str(b, "NOPRIMARY\n");
}

/* ---- reply parsing ------------------------------------------------------ */

/* Split the next field off *p at a single space: NUL-terminates it in place
 * and advances *p past the space, or sets *p to NULL at the end of the line.
 * Returns NULL when there is no field or it is empty. */
static char *field_next(char **p) {
        char *f = *p, *sp;

        if (!f || *f == '\0' || *f == ' ')
                return NULL;
        sp = strchr(f, ' ');
        if (sp) {
                *sp = '\0';
                *p = sp + 1;
        } else
                *p = NULL;
        return f;
}

static bool field_u64(char **p, uint64_t *ret) {
        const char *f = field_next(p);
        return f && safe_atou64(f, ret) >= 0;
}

/* Nothing may follow the last field (a trailing space counts as something). */
static bool fields_done(char *const *p) {
        return !*p;
}

/* Each parse_reply_* gets the text after "VERB " (NULL when the line was the
 * bare verb) and returns false when it is malformed. */
static bool parse_reply_pong(char *rest, Reply *r) {
        r->name = field_next(&rest);
        r->role = field_next(&rest);
        return r->name && r->role && field_u64(&rest, &r->term) && fields_done(&rest);
}

static bool parse_reply_ok(char *rest, Reply *r) {
        if (!rest)
                return true; /* bare OK: index 0 */
        return field_u64(&rest, &r->index) && fields_done(&rest);
}

static bool parse_reply_msg(char *rest, Reply *r) {
        if (!field_u64(&rest, &r->index) || !field_u64(&rest, &r->term))
                return false;
        /* "MSG i t payload", "MSG i t " and "MSG i t" (both empty payloads). */
        r->payload = rest ? rest : "";
        r->payload_len = strlen(r->payload);
        return true;
}

static bool parse_reply_bare(char *rest, Reply *r) {
        return !rest;
}

static bool parse_reply_redirect(char *rest, Reply *r) {
        r->address = field_next(&rest);
        return r->address && fields_done(&rest);
}

static bool parse_reply_err(char *rest, Reply *r) {
        const char *code = field_next(&rest);

        if (!code)
                return false;
        r->code = err_code_from_string(code); /* unknown: _ERRC_INVALID, still an ERR */
        r->text = rest ? rest : "";
        return true;
}

static bool parse_reply_primary(char *rest, Reply *r) {
        r->name = field_next(&rest);
        r->address = field_next(&rest);
        return r->name && r->address && field_u64(&rest, &r->term) && fields_done(&rest);
}

static bool parse_reply_server(char *rest, Reply *r) {
        if (!rest || *rest == '\0' || *rest == ' ')
                return false;
        r->text = rest;
        return true;
}

static const struct {
        const char *verb;
        bool (*parse)(char *rest, Reply *r);
} reply_parsers[_REPLY_MAX] = {
        [REPLY_PONG] = { "PONG", parse_reply_pong },
        [REPLY_OK] = { "OK", parse_reply_ok },
        [REPLY_MSG] = { "MSG", parse_reply_msg },
        [REPLY_END] = { "END", parse_reply_bare },
        [REPLY_REDIRECT] = { "REDIRECT", parse_reply_redirect },
        [REPLY_ERR] = { "ERR", parse_reply_err },
        [REPLY_KV] = { NULL, NULL }, /* recognised by its shape, see below */
        [REPLY_PRIMARY] = { "PRIMARY", parse_reply_primary },
        [REPLY_NOPRIMARY] = { "NOPRIMARY", parse_reply_bare },
        [REPLY_SERVER] = { "SERVER", parse_reply_server },
};

int reply_parse(char *line, size_t len, Reply *ret) {
        Reply r = {
                .type = _REPLY_INVALID,
                .code = _ERRC_INVALID,
        };
        size_t key_len = 0, verb_len;
        char *sp, *rest = NULL;

        assert(line || len == 0);
        assert(ret);

        if (len == 0 || memchr(line, '\0', len) || line[len] != '\0')
                return -EINVAL;

        /* key=value, key as kv_key_is_valid(); the value is the rest of the line (may be empty). */
        {
                const char *eq = memchr(line, '=', len), *space = memchr(line, ' ', len);

                if (eq && (!space || space > eq) && kv_key_is_valid(line, (size_t) (eq - line)))
                        key_len = (size_t) (eq - line);
        }
        if (key_len > 0 && key_len < len && line[key_len] == '=') {
                line[key_len] = '\0';
                r.type = REPLY_KV;
                r.key = line;
                r.value = line + key_len + 1;
                *ret = r;
                return 0;
        }

        sp = memchr(line, ' ', len);
        verb_len = sp ? (size_t) (sp - line) : len;
        if (sp) {
                *sp = '\0';
                rest = sp + 1;
        }
        for (size_t i = 0; i < _REPLY_MAX; i++) {
                if (!reply_parsers[i].verb || strlen(reply_parsers[i].verb) != verb_len ||
                    memcmp(reply_parsers[i].verb, line, verb_len) != 0)
                        continue;
                if (!reply_parsers[i].parse(rest, &r))
                        return -EINVAL;
                r.type = (ReplyType) i;
                *ret = r;
                return 0;
        }
        return -EINVAL;
}

int kv_find(const char *text, const char *key, const char **ret_value, size_t *ret_len) {
        size_t key_len;
        const char *p;

        assert(text);
        assert(key);

        key_len = strlen(key);
        for (p = text; *p;) {
                size_t tok_len = strcspn(p, " ");

                if (tok_len > key_len && memcmp(p, key, key_len) == 0 && p[key_len] == '=') {
                        if (ret_value)
                                *ret_value = p + key_len + 1;
                        if (ret_len)
                                *ret_len = tok_len - key_len - 1;
                        return 1;
                }
                p += tok_len;
                while (*p == ' ')
                        p++;
        }
        return 0;
}

/* ---- monitor client API ------------------------------------------------- */

int mon_request_parse(char *line, size_t len, MonRequest *ret, const char **ret_reason) {
        static const char *const verbs[_MONREQ_MAX] = {
                [MONREQ_WHO] = "WHO",
                [MONREQ_SUBSCRIBE] = "SUBSCRIBE",
                [MONREQ_STATUS] = "STATUS",
                [MONREQ_PROMOTE] = "PROMOTE",
        };
        MonRequest req = {
                .type = _MONREQ_INVALID,
        };
        const char *reason = NULL, *args = NULL;
        size_t verb_len;
        char *sp;

        assert(line || len == 0);
        assert(ret);

        if (len > 0 && memchr(line, '\0', len)) {
                reason = "NUL byte in line";
                goto fail;
        }

        sp = len > 0 ? memchr(line, ' ', len) : NULL;
        verb_len = sp ? (size_t) (sp - line) : len;
        if (sp)
                args = sp + 1;
        for (size_t i = 0; i < _MONREQ_MAX; i++)
                if (strlen(verbs[i]) == verb_len && memcmp(verbs[i], line, verb_len) == 0) {
                        req.type = (MonRequestType) i;
                        break;
                }
        if (req.type < 0) {
                reason = "unknown command";
                goto fail;
        }

        if (req.type == MONREQ_PROMOTE) {
                if (!args || *args == '\0')
                        reason = "missing server name";
                else if (strchr(args, ' '))
                        reason = "unexpected argument";
                else if (!name_is_valid(args))
                        reason = "bad server name";
                req.name = args;
        } else if (args)
                reason = "unexpected argument";
        if (reason)
                goto fail;

        *ret = req;
        return 0;

fail:
        if (ret_reason)
                *ret_reason = reason;
        return -EINVAL;
}
