/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-reply — reply_parse() on arbitrary lines (what a client or fusionctl
 * reads from a server or the monitor), kv_find() over SERVER lines, and for
 * every reply a formatter can write: format it again, parse that, and compare.
 */

#include <inttypes.h>

#include "fuzz.h"
#include "protocol.h"
#include "util.h"

static bool streq_opt(const char *a, const char *b) {
        if (!a || !b)
                return a == b;
        return strcmp(a, b) == 0;
}

/* kv_find must point into text at "key=" and stop at the end of the token. */
static void check_kv_find(const char *text, const char *key) {
        const char *value = NULL;
        size_t len = SIZE_MAX, text_len = strlen(text), key_len = strlen(key);
        int r;

        r = kv_find(text, key, &value, &len);
        FUZZ_CHECK(r == 0 || r == 1);
        if (r == 0)
                return;
        FUZZ_CHECK(value >= text + key_len + 1 && value <= text + text_len);
        FUZZ_CHECK(len <= (size_t) (text + text_len - value));
        FUZZ_CHECK(memcmp(value - key_len - 1, key, key_len) == 0 && value[-1] == '=');
        FUZZ_CHECK(value - key_len - 1 == text || *(value - key_len - 2) == ' ');
        FUZZ_CHECK(!memchr(value, ' ', len));
        FUZZ_CHECK(value[len] == '\0' || value[len] == ' ');
}

static void check_server_text(const char *text) {
        static const char *const keys[] = { "name", "role", "state", "term", "index", "age_ms", "unit", "x" };
        char key[32];
        size_t n;

        for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                check_kv_find(text, keys[i]);
        /* And the first key the text itself uses, whatever it is. */
        n = strcspn(text, "= ");
        if (n > 0 && n < sizeof key && text[n] == '=') {
                memcpy(key, text, n);
                key[n] = '\0';
                FUZZ_CHECK(kv_find(text, key, NULL, NULL) == 1);
                check_kv_find(text, key);
        }
}

/* Write r back with its formatter; 0 if there is none or it refuses. */
static int format_reply(const Reply *r, Buf *b) {
        switch (r->type) {
        case REPLY_PONG:
                return reply_pong(b, r->name, r->role, r->term);
        case REPLY_OK:
                return reply_ok(b, r->index);
        case REPLY_MSG:
                return reply_msg(b, r->index, r->term, r->payload, r->payload_len);
        case REPLY_END:
                return reply_end(b);
        case REPLY_REDIRECT:
                return reply_redirect(b, r->address);
        case REPLY_ERR:
                if (r->code < 0 || strpbrk(r->text, "\r\n"))
                        return -EINVAL; /* unknown code; or text the formatter would rewrite */
                return reply_err(b, r->code, "%s", r->text);
        case REPLY_KV:
                if (strpbrk(r->value, "\r\n"))
                        return -EINVAL;
                return reply_kv(b, r->key, "%s", r->value);
        case REPLY_PRIMARY:
                return reply_primary(b, r->name, r->address, r->term);
        case REPLY_NOPRIMARY:
                return reply_noprimary(b);
        default:
                return -EINVAL;
        }
}

static bool reply_equal(const Reply *a, const Reply *b) {
        return a->type == b->type && a->index == b->index && a->term == b->term && streq_opt(a->name, b->name) &&
               streq_opt(a->role, b->role) && streq_opt(a->address, b->address) &&
               a->payload_len == b->payload_len &&
               (a->payload_len == 0 || memcmp(a->payload, b->payload, a->payload_len) == 0) &&
               a->code == b->code && streq_opt(a->text, b->text) && streq_opt(a->key, b->key) &&
               streq_opt(a->value, b->value);
}

static void check_roundtrip(const Reply *r) {
        Buf b = {};
        Reply again;
        size_t len;

        if (format_reply(r, &b) < 0) {
                buf_done(&b);
                return;
        }
        FUZZ_CHECK(b.len >= 1 && b.data[b.len - 1] == '\n');
        len = b.len - 1;
        FUZZ_CHECK(!memchr(b.data, '\n', len));
        b.data[len] = '\0';
        if (reply_parse(b.data, len, &again) < 0) {
                fprintf(stderr, "formatted reply does not parse: \"%s\"\n", b.data);
                FUZZ_CHECK(false);
        }
        FUZZ_CHECK(reply_equal(r, &again));
        buf_done(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *line = fuzz_strndup(data, size);
        Reply r;

        if (reply_parse(line, size, &r) >= 0) {
                FUZZ_CHECK(r.type >= 0 && r.type < _REPLY_MAX);
                FUZZ_CHECK(!fuzz_mem_has(data, size, '\0'));
                switch (r.type) {
                case REPLY_MSG:
                        FUZZ_CHECK(r.payload && r.payload_len == strlen(r.payload));
                        break;
                case REPLY_ERR:
                        FUZZ_CHECK(r.text);
                        FUZZ_CHECK(r.code == _ERRC_INVALID || err_code_to_string(r.code));
                        break;
                case REPLY_KV:
                        FUZZ_CHECK(r.key && *r.key && r.value);
                        /* [a-z_]+ optionally followed by ".<server name>" (replica.NAME) */
                        {
                                size_t word = strspn(r.key, "abcdefghijklmnopqrstuvwxyz_");
                                FUZZ_CHECK(word > 0);
                                if (r.key[word] != '\0') {
                                        FUZZ_CHECK(r.key[word] == '.');
                                        FUZZ_CHECK(name_is_valid(r.key + word + 1));
                                }
                                /* and reply_kv writes it back identically */
                                {
                                        Buf kb = {};
                                        FUZZ_CHECK(reply_kv(&kb, r.key, "%s", r.value) == 0);
                                        buf_done(&kb);
                                }
                        }
                        break;
                case REPLY_SERVER:
                        FUZZ_CHECK(r.text && *r.text && *r.text != ' ');
                        check_server_text(r.text);
                        break;
                default:
                        break;
                }
                check_roundtrip(&r);
        }

        /* kv_find on any text, parsed or not. */
        memcpy(line, data, size);
        line[size] = '\0';
        check_server_text(line);

        free(line);
        return 0;
}
