/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * protocol — the public line protocols of DESIGN.md: requests on a server's
 * client port and their replies, and the monitor's client API (WHO,
 * SUBSCRIBE, STATUS, PROMOTE). Parsers work in place on a writable,
 * NUL-terminated line without its line ending; the parsed struct points into
 * that line.
 */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

typedef enum ErrCode {
        ERRC_BADCMD,
        ERRC_TOOLONG,
        ERRC_NOREPLICAS,
        ERRC_NOLEASE,
        ERRC_NOTFOUND,
        ERRC_BUSY,
        ERRC_NOPRIMARY,
        ERRC_STALE,      /* replication from/to a lower term */
        ERRC_AUTH,       /* authentication required or failed */
        ERRC_INTERNAL,   /* I/O error on the server (disk) */
        _ERRC_MAX,
        _ERRC_INVALID = -EINVAL,
} ErrCode;

const char *err_code_to_string(ErrCode c);
ErrCode err_code_from_string(const char *s);

typedef enum RequestType {
        REQUEST_PING,
        REQUEST_SEND,
        REQUEST_PUT,
        REQUEST_GET,
        REQUEST_READ,
        REQUEST_INFO,
        REQUEST_SYNC,    /* replication: the rest of the line goes to repl_message_parse() */
        REQUEST_AUTH,
        _REQUEST_MAX,
        _REQUEST_INVALID = -EINVAL,
} RequestType;

const char *request_type_to_string(RequestType t);

#define READ_COUNT_DEFAULT 100
#define READ_COUNT_MAX 10000

typedef struct Request {
        RequestType type;
        const char *payload;   /* SEND, PUT: not NUL-free-checked beyond the line; AUTH: token */
        size_t payload_len;
        const char *msgid;     /* PUT */
        size_t msgid_len;
        uint64_t index;        /* GET; READ: from */
        uint64_t count;        /* READ: READ_COUNT_DEFAULT when omitted, at most READ_COUNT_MAX */
        char *line;            /* SYNC: the whole line, for repl_message_parse() */
        size_t line_len;
} Request;

/* The longest line a server accepts on its client port (SYNC lines carry
 * up to REPL_SEGMENTS_MAX segments, so never less than REQUEST_LINE_MIN),
 * and the longest replication line a backup accepts (an ENTRY carries a
 * msgid and three numbers besides the payload). Size line readers with these. */
#define REQUEST_LINE_OVERHEAD 80
#define REPLICATION_LINE_OVERHEAD 160
#define REQUEST_LINE_MIN 4096
uint64_t request_line_max(uint64_t max_message_bytes);
uint64_t replication_line_max(uint64_t max_message_bytes);

/* Parse one request line. len excludes the line ending. A line longer than
 * request_line_max(max_message_bytes) (max_message_bytes + 80, but never less
 * than REQUEST_LINE_MIN) or a payload longer than max_message_bytes gives
 * ERRC_TOOLONG; NUL bytes, unknown verbs, missing/extra arguments, bad
 * numbers (index 0 is bad: indexes start at 1) and bad msgids give
 * ERRC_BADCMD, and so does a payload ending in '\r' (it could not survive the
 * "\r\n" line ending on the way to a backup). On error returns -EINVAL with *ret_code and a static
 * *ret_reason ("unknown command", "bad index", ...). */
int request_parse(char *line, size_t len, uint64_t max_message_bytes, Request *ret, ErrCode *ret_code,
                  const char **ret_reason);

/* Reply formatting: each appends exactly one line ending in "\n". */
int reply_pong(Buf *b, const char *name, const char *role, uint64_t term);
int reply_ok(Buf *b, uint64_t index);
int reply_msg(Buf *b, uint64_t index, uint64_t term, const void *payload, size_t len);
int reply_end(Buf *b);
int reply_redirect(Buf *b, const char *address);
int reply_err(Buf *b, ErrCode code, const char *fmt, ...) _printf_(3, 4);
int reply_kv(Buf *b, const char *key, const char *fmt, ...) _printf_(3, 4);

typedef enum ReplyType {
        REPLY_PONG,      /* PONG name role term */
        REPLY_OK,        /* OK index  (OK alone: index 0) */
        REPLY_MSG,       /* MSG index term payload */
        REPLY_END,
        REPLY_REDIRECT,  /* REDIRECT host:port */
        REPLY_ERR,       /* ERR CODE text */
        REPLY_KV,        /* key=value (INFO) */
        REPLY_PRIMARY,   /* PRIMARY name host:port term (monitor API) */
        REPLY_NOPRIMARY,
        REPLY_SERVER,    /* SERVER k=v ... (monitor API STATUS) */
        _REPLY_MAX,
        _REPLY_INVALID = -EINVAL,
} ReplyType;

typedef struct Reply {
        ReplyType type;
        uint64_t index;
        uint64_t term;
        const char *name;      /* PONG, PRIMARY */
        const char *role;      /* PONG */
        const char *address;   /* REDIRECT, PRIMARY */
        const char *payload;   /* MSG (may be empty: a term-start record) */
        size_t payload_len;
        ErrCode code;          /* ERR; _ERRC_INVALID for a code this version does not know */
        const char *text;      /* ERR: the text after the code ("" if none); SERVER: the k=v part */
        const char *key;       /* KV */
        const char *value;     /* KV */
} Reply;

/* Parse a reply line (server or monitor API). -EINVAL if malformed. */
int reply_parse(char *line, size_t len, Reply *ret);

/* SERVER lines: find "key=value" in the k=v text; returns 1 and a pointer
 * to the value (NUL-terminated only if the text was split; ret_len gives its
 * length), 0 if absent. */
int kv_find(const char *text, const char *key, const char **ret_value, size_t *ret_len);

/* Monitor client API requests. */
typedef enum MonRequestType {
        MONREQ_WHO,
        MONREQ_SUBSCRIBE,
        MONREQ_STATUS,
        MONREQ_PROMOTE,  /* PROMOTE name: coordinated switchover (fusionctl promote) */
        _MONREQ_MAX,
        _MONREQ_INVALID = -EINVAL,
} MonRequestType;

typedef struct MonRequest {
        MonRequestType type;
        const char *name;      /* PROMOTE */
} MonRequest;

int mon_request_parse(char *line, size_t len, MonRequest *ret, const char **ret_reason);

int reply_primary(Buf *b, const char *name, const char *address, uint64_t term);
int reply_noprimary(Buf *b);
