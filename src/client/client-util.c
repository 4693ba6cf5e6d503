/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * client-util — the pure helpers of client-lib.h: msgid generation, JSON
 * string escaping, percentiles, timestamps, backoff. No I/O.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client-lib.h"

static bool msgid_char_ok(char ch) {
        return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
               ch == '_' || ch == ':' || ch == '-';
}

int msgid_format(char *buf, size_t size, const char *host, pid_t pid, usec_t start_usec, uint64_t counter) {
        char tail[80];
        size_t tail_len, host_max, n = 0;
        int k;

        if (size <= MSGID_MAX_LEN)
                return -ENOBUFS;

        k = snprintf(tail, sizeof(tail), "-%ld-%" PRIu64 "-%" PRIu64, (long) pid, (uint64_t) start_usec, counter);
        if (k < 0 || (size_t) k >= sizeof(tail))
                return -EINVAL;
        tail_len = (size_t) k;
        if (tail_len >= MSGID_MAX_LEN)
                return -ERANGE;

        host_max = MSGID_MAX_LEN - tail_len;
        if (!host || !*host)
                host = "host";
        for (; host[n] && n < host_max; n++)
                buf[n] = msgid_char_ok(host[n]) ? host[n] : '_';
        memcpy(buf + n, tail, tail_len + 1);
        return 0;
}

/* Length of a valid UTF-8 sequence at p (at most n bytes), 0 if invalid. */
static size_t utf8_seq_len(const unsigned char *p, size_t n) {
        size_t len;
        uint32_t cp;

        if (p[0] < 0x80)
                return 1;
        if ((p[0] & 0xe0) == 0xc0) {
                len = 2;
                cp = p[0] & 0x1f;
        } else if ((p[0] & 0xf0) == 0xe0) {
                len = 3;
                cp = p[0] & 0x0f;
        } else if ((p[0] & 0xf8) == 0xf0) {
                len = 4;
                cp = p[0] & 0x07;
        } else
                return 0;
        if (len > n)
                return 0;
        for (size_t i = 1; i < len; i++) {
                if ((p[i] & 0xc0) != 0x80)
                        return 0;
                cp = (cp << 6) | (p[i] & 0x3f);
        }
        /* overlong forms, surrogates, beyond U+10FFFF */
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
            (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
                return 0;
        return len;
}

int json_append_string(Buf *b, const char *s, size_t len) {
        const unsigned char *p = (const unsigned char *) s;
        int r;

        r = buf_append(b, "\"", 1);
        if (r < 0)
                return r;
        for (size_t i = 0; i < len;) {
                unsigned char ch = p[i];
                size_t l;

                if (ch == '"' || ch == '\\') {
                        char esc[2] = { '\\', (char) ch };
                        r = buf_append(b, esc, 2);
                        i++;
                } else if (ch < 0x20 || ch == 0x7f) {
                        const char *e = ch == '\n' ? "\\n" : ch == '\t' ? "\\t" : ch == '\r' ? "\\r" : NULL;
                        r = e ? buf_append_str(b, e) : buf_printf(b, "\\u%04x", ch);
                        i++;
                } else if ((l = utf8_seq_len(p + i, len - i)) > 0) {
                        r = buf_append(b, p + i, l);
                        i += l;
                } else {
                        r = buf_append_str(b, "\\ufffd");
                        i++;
                }
                if (r < 0)
                        return r;
        }
        return buf_append(b, "\"", 1);
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y ? 1 : 0;
}

void sort_u64(uint64_t *v, size_t n) {
        if (n > 1)
                qsort(v, n, sizeof(*v), cmp_u64);
}

uint64_t percentile_u64(const uint64_t *sorted, size_t n, double p) {
        double rank;
        size_t k;

        if (n == 0)
                return 0;
        if (p <= 0)
                return sorted[0];
        if (p >= 100)
                return sorted[n - 1];
        /* nearest rank: the smallest value with at least p% of the samples <= it */
        rank = p / 100.0 * (double) n;
        k = (size_t) rank;
        if ((double) k < rank)
                k++;
        if (k < 1)
                k = 1;
        return sorted[MIN(k, n) - 1];
}

int format_iso8601_ms(char *buf, size_t size, usec_t realtime_usec) {
        time_t sec = (time_t) (realtime_usec / USEC_PER_SEC);
        unsigned ms = (unsigned) ((realtime_usec % USEC_PER_SEC) / USEC_PER_MSEC);
        struct tm tm;
        int k;

        if (!gmtime_r(&sec, &tm))
                return -EINVAL;
        k = snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
        if (k < 0 || (size_t) k >= size)
                return -ENOBUFS;
        return 0;
}

usec_t backoff_next(usec_t cur) {
        if (cur < CLIENT_BACKOFF_MIN_USEC)
                return CLIENT_BACKOFF_MIN_USEC;
        if (cur >= CLIENT_BACKOFF_MAX_USEC / 2)
                return CLIENT_BACKOFF_MAX_USEC;
        return cur * 2;
}
