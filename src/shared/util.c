/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * util — monotonic time, strict number parsing, validation of names and
 * msgids, the growable Buf, and durable small-file writes.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

static usec_t clock_usec(clockid_t id) {
        struct timespec ts;

        if (clock_gettime(id, &ts) < 0)
                return 0;
        return (usec_t) ts.tv_sec * USEC_PER_SEC + (usec_t) ts.tv_nsec / 1000;
}

usec_t now_usec(void) {
        return clock_usec(CLOCK_MONOTONIC);
}

usec_t now_realtime_usec(void) {
        return clock_usec(CLOCK_REALTIME);
}

int safe_atou64_n(const char *s, size_t n, uint64_t *ret) {
        uint64_t v = 0;

        if (!s || n == 0 || n > 20)
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                unsigned d;

                if (s[i] < '0' || s[i] > '9')
                        return -EINVAL;
                d = (unsigned) (s[i] - '0');
                if (v > (UINT64_MAX - d) / 10)
                        return -ERANGE;
                v = v * 10 + d;
        }
        if (ret)
                *ret = v;
        return 0;
}

int safe_atou64(const char *s, uint64_t *ret) {
        if (!s)
                return -EINVAL;
        return safe_atou64_n(s, strlen(s), ret);
}

bool name_is_valid(const char *s) {
        size_t n;

        if (!s)
                return false;
        n = strlen(s);
        if (n == 0 || n > NAME_MAX_LEN)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                      c == '-'))
                        return false;
        }
        return true;
}

bool msgid_is_valid(const char *s, size_t len) {
        if (!s || len == 0 || len > MSGID_MAX_LEN)
                return false;
        for (size_t i = 0; i < len; i++) {
                char c = s[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                      c == '_' || c == ':' || c == '-'))
                        return false;
        }
        return true;
}

int buf_reserve(Buf *b, size_t extra) {
        size_t need, cap;
        char *p;

        if (extra > SIZE_MAX - b->len - 1)
                return -ENOMEM;
        need = b->len + extra + 1;
        if (need <= b->cap)
                return 0;
        cap = b->cap ? b->cap : 256;
        while (cap < need)
                cap = cap > SIZE_MAX / 2 ? need : cap * 2;
        p = realloc(b->data, cap);
        if (!p)
                return -ENOMEM;
        b->data = p;
        b->cap = cap;
        return 0;
}

int buf_append(Buf *b, const void *p, size_t n) {
        int r = buf_reserve(b, n);
        if (r < 0)
                return r;
        if (n > 0)
                memcpy(b->data + b->len, p, n);
        b->len += n;
        b->data[b->len] = 0;
        return 0;
}

/* Decimal, without printf: the per-request replies and replication lines
 * ("OK <index>", "ENTRY <index> <term> <commit> ", "ACK <index>") ran one
 * vsnprintf() per number. */
int buf_append_u64(Buf *b, uint64_t v) {
        char tmp[20];
        size_t n = sizeof(tmp);

        do {
                tmp[--n] = (char) ('0' + v % 10);
                v /= 10;
        } while (v > 0);
        return buf_append(b, tmp + n, sizeof(tmp) - n);
}

/* "<word> <v>\n", all or nothing. */
int buf_append_line_u64(Buf *b, const char *word, uint64_t v) {
        size_t n = strlen(word);

        if (buf_reserve(b, n + 1 + 20 + 1) < 0)   /* then nothing below fails half-way */
                return -ENOMEM;
        (void) buf_append(b, word, n);
        (void) buf_append(b, " ", 1);
        (void) buf_append_u64(b, v);
        return buf_append(b, "\n", 1);
}

int buf_append_str(Buf *b, const char *s) {
        return buf_append(b, s, strlen(s));
}

int buf_printf(Buf *b, const char *fmt, ...) {
        va_list ap;
        size_t room = b->cap > b->len ? b->cap - b->len : 0;
        int n, r;

        /* Straight into the spare room (the usual case: one vsnprintf); measure and
         * format again only when it does not fit. On failure b is unchanged. */
        va_start(ap, fmt);
        n = vsnprintf(room > 0 ? b->data + b->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0) {
                if (room > 0)
                        b->data[b->len] = 0;
                return -EINVAL;
        }
        if ((size_t) n < room) {
                b->len += (size_t) n;
                return 0;
        }
        if (room > 0)
                b->data[b->len] = 0;
        r = buf_reserve(b, (size_t) n);
        if (r < 0)
                return r;
        va_start(ap, fmt);
        vsnprintf(b->data + b->len, (size_t) n + 1, fmt, ap);
        va_end(ap);
        b->len += (size_t) n;
        return 0;
}

void buf_consume(Buf *b, size_t n) {
        if (n >= b->len) {
                b->len = 0;
                if (b->data)
                        b->data[0] = 0;
                return;
        }
        memmove(b->data, b->data + n, b->len - n);
        b->len -= n;
        b->data[b->len] = 0;
}

void buf_clear(Buf *b) {
        b->len = 0;
        if (b->data)
                b->data[0] = 0;
}

void buf_done(Buf *b) {
        free(b->data);
        *b = (Buf){};
}

static int fsync_parent_dir(const char *path) {
        _cleanup_(freep) char *copy = strdup(path);
        int fd, r = 0;

        if (!copy)
                return -ENOMEM;
        fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        if (fsync(fd) < 0)
                r = negative_errno();
        safe_close(fd);
        return r;
}

int write_file_atomic(const char *path, const char *content) {
        _cleanup_(freep) char *tmp = NULL;
        size_t len = strlen(content), done = 0;
        int fd, r;

        if (asprintf(&tmp, "%s.tmp.%d", path, (int) getpid()) < 0)
                return -ENOMEM;
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
        if (fd < 0)
                return negative_errno();
        while (done < len) {
                ssize_t n = write(fd, content + done, len - done);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        r = negative_errno();
                        goto fail;
                }
                done += (size_t) n;
        }
        if (fsync(fd) < 0) {
                r = negative_errno();
                goto fail;
        }
        fd = safe_close(fd);
        if (rename(tmp, path) < 0) {
                r = negative_errno();
                unlink(tmp);
                return r;
        }
        return fsync_parent_dir(path);
fail:
        safe_close(fd);
        unlink(tmp);
        return r;
}

int read_file_small(const char *path, size_t max, char **ret) {
        _cleanup_(closep) int fd = -1;
        _cleanup_(freep) char *data = NULL;
        size_t len = 0;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        data = malloc(max + 1);
        if (!data)
                return -ENOMEM;
        for (;;) {
                ssize_t n;

                if (len == max) {
                        char c;
                        n = read(fd, &c, 1);
                        if (n > 0)
                                return -EFBIG;
                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n < 0)
                                return negative_errno();
                        break;
                }
                n = read(fd, data + len, max - len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (n == 0)
                        break;
                len += (size_t) n;
        }
        data[len] = 0;
        *ret = TAKE_PTR(data);
        return (int) MIN(len, (size_t) INT_MAX);
}

int mkdir_p(const char *path, mode_t mode) {
        _cleanup_(freep) char *p = strdup(path);

        if (!p)
                return -ENOMEM;
        for (char *s = p + 1; *s; s++) {
                if (*s != '/')
                        continue;
                *s = 0;
                if (mkdir(p, mode) < 0 && errno != EEXIST)
                        return negative_errno();
                *s = '/';
        }
        if (mkdir(p, mode) < 0 && errno != EEXIST)
                return negative_errno();
        return 0;
}

int state_get_u64(const char *text, const char *key, uint64_t *ret) {
        size_t klen = strlen(key);

        for (const char *line = text; line && *line;) {
                const char *eol = strchr(line, '\n');
                size_t len = eol ? (size_t) (eol - line) : strlen(line);

                if (len > klen && strncmp(line, key, klen) == 0 && line[klen] == '=')
                        return safe_atou64_n(line + klen + 1, len - klen - 1, ret);
                line = eol ? eol + 1 : NULL;
        }
        return -ENOENT;
}
