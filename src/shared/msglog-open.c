/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msglog-open — opening a message log: create the file (its header written
 * durably) if missing, check the file header, map the file and scan every
 * record into the in-memory index, and cut a torn or corrupt tail, refusing
 * to open when intact data follows a bad record (rules in doc/storage.md).
 * Also msglog_free().
 */

#include <assert.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "macro.h"
#include "msglog-internal.h"
#include "util.h"

#define FILE_HEADER_SIZE 16
#define FILE_VERSION 1u

static void file_header_make(uint8_t h[static FILE_HEADER_SIZE]) {
        uint32_t v = htole32(FILE_VERSION);

        memset(h, 0, FILE_HEADER_SIZE);
        memcpy(h, "FUSIONLOG", 9);
        memcpy(h + 12, &v, 4);
}

/* Is there an intact record at off: magic, reserved field, sane lengths,
 * inside the file, checksum? NULL if so, else why not. */
static const char *rec_check_intact(const uint8_t *base, uint64_t size, uint64_t off, RecHeader *ret) {
        RecHeader h;

        if (size - off < REC_HEADER_SIZE)
                return "incomplete record header";
        msglog_rec_header_decode(base + off, &h);
        if (memcmp(h.magic, REC_MAGIC, 4) != 0)
                return "bad magic";
        if (h.reserved != 0)
                return "nonzero reserved field";
        if (h.msgid_len > MSGID_MAX_LEN)
                return "msgid length too large";
        if (h.payload_len > MSGLOG_PAYLOAD_MAX)
                return "payload length too large";
        if (size - off - REC_HEADER_SIZE < (uint64_t) h.msgid_len + h.payload_len)
                return "incomplete record";
        if (crc32c(0, base + off + REC_CRC_START,
                   REC_HEADER_SIZE - REC_CRC_START + (size_t) h.msgid_len + h.payload_len) != h.crc)
                return "checksum mismatch";
        *ret = h;
        return NULL;
}

/* Where the next intact record after off starts, or UINT64_MAX if none does. */
static uint64_t find_intact_after(const uint8_t *base, uint64_t size, uint64_t off) {
        for (uint64_t q = off + 1; q < size && size - q >= REC_HEADER_SIZE; q++) {
                const uint8_t *p = memmem(base + q, size - q, REC_MAGIC, 4);
                RecHeader h;

                if (!p)
                        break;
                q = (uint64_t) (p - base);
                if (!rec_check_intact(base, size, q, &h))
                        return q;
        }
        return UINT64_MAX;
}

/* Why an intact record cannot be the next one, or NULL if it can; hash is its msgid's. */
static const char *rec_check_fits(const MsgLog *l, const RecHeader *h, const char *msgid, uint64_t hash) {
        if (h->index != l->n_entries + 1)
                return "unexpected index";
        if (h->term == 0)
                return "zero term";
        if (h->term > MSGLOG_TERM_MAX)
                return "term out of range";
        if (h->term < msglog_last_term(l))
                return "term goes backwards";
        if (h->flags & ~MSGLOG_KNOWN_FLAGS)
                return "unknown flags";
        if (h->msgid_len > 0 && !msgid_is_valid(msgid, h->msgid_len))
                return "invalid msgid";
        if (h->msgid_len > 0) {
                size_t slot;
                int r = msglog_msgid_lookup(l, msgid, h->msgid_len, hash, &slot);
                assert(r >= 0);   /* only called by scan(): compares in the mapped file, never reads */
                if (r > 0)
                        return "duplicate msgid";
        }
        return NULL;
}

_printf_(3, 4) static int fail(char **ret_error, int r, const char *fmt, ...) {
        va_list ap;

        if (ret_error) {
                va_start(ap, fmt);
                if (vasprintf(ret_error, fmt, ap) < 0)
                        *ret_error = NULL;
                va_end(ap);
        }
        return r;
}

MsgLog *msglog_free(MsgLog *l) {
        if (!l)
                return NULL;
        /* Best effort: buffered records were never acknowledged, but keep what we can. */
        if (l->fd >= 0)
                (void) msglog_flush(l);
        safe_close(l->fd);
        free(l->path);
        free(l->wbuf);
        free(l->entries);
        free(l->slots);
        free(l->segments);
        free(l);
        return NULL;
}

DEFINE_CLEANUP(MsgLog, msglog_free);

static int fsync_dir(const char *dir) {
        _cleanup_(closep) int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        if (fd < 0)
                return negative_errno();
        if (fsync(fd) < 0)
                return negative_errno();
        return 0;
}

static int pwrite_full(int fd, const void *p, size_t n, uint64_t off) {
        while (n > 0) {
                ssize_t k = pwrite(fd, p, n, (off_t) off);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (k == 0)
                        return -EIO;
                p = (const uint8_t *) p + k;
                n -= (size_t) k;
                off += (uint64_t) k;
        }
        return 0;
}

/* Open the file, creating it (with its header, durably) if missing. */
static int open_file(MsgLog *l, const char *dir, char **ret_error) {
        uint8_t h[FILE_HEADER_SIZE];
        int r;

        l->fd = open(l->path, O_RDWR | O_CLOEXEC | O_NOCTTY);
        if (l->fd >= 0 || errno != ENOENT)
                return l->fd >= 0 ? 0 : fail(ret_error, negative_errno(), "%s: cannot open: %m", l->path);

        l->fd = open(l->path, O_RDWR | O_CLOEXEC | O_NOCTTY | O_CREAT | O_EXCL, 0640);
        if (l->fd < 0)
                return fail(ret_error, negative_errno(), "%s: cannot create: %m", l->path);
        file_header_make(h);
        r = pwrite_full(l->fd, h, sizeof(h), 0);
        if (r >= 0 && fsync(l->fd) < 0)
                r = negative_errno();
        if (r >= 0)
                r = fsync_dir(dir);
        if (r < 0) {
                (void) unlink(l->path);
                return fail(ret_error, r, "%s: cannot create: %s", l->path, strerror(-r));
        }
        return 0;
}

/* Check the file header; a torn one (a prefix of the header, nothing more)
 * is rewritten. */
static int check_file_header(MsgLog *l, uint64_t size, MsgLogOpenInfo *info, char **ret_error) {
        uint8_t want[FILE_HEADER_SIZE], have[FILE_HEADER_SIZE];
        size_t n = (size_t) MIN(size, (uint64_t) FILE_HEADER_SIZE);
        ssize_t k;
        int r;

        file_header_make(want);
        k = pread(l->fd, have, n, 0);
        if (k < 0)
                return fail(ret_error, negative_errno(), "%s: cannot read: %m", l->path);
        if ((size_t) k != n)
                return fail(ret_error, -EIO, "%s: short read of the file header", l->path);

        if (size < FILE_HEADER_SIZE) {
                if (memcmp(have, want, n) != 0)
                        return fail(ret_error, -EBADMSG, "%s: not a fusion message log (bad file header)",
                                    l->path);
                r = ftruncate(l->fd, 0) < 0 ? negative_errno() : 0;
                if (r >= 0)
                        r = pwrite_full(l->fd, want, sizeof(want), 0);
                if (r >= 0 && fsync(l->fd) < 0)
                        r = negative_errno();
                if (r < 0)
                        return fail(ret_error, r, "%s: cannot rewrite the file header: %s", l->path,
                                    strerror(-r));
                if (size > 0)
                        *info = (MsgLogOpenInfo){ .cut_offset = 0, .cut_bytes = size,
                                                  .cut_reason = "incomplete file header" };
                return 0;
        }
        if (memcmp(have, want, 12) != 0)
                return fail(ret_error, -EBADMSG, "%s: not a fusion message log (bad file header)", l->path);
        if (memcmp(have + 12, want + 12, 4) != 0) {
                uint32_t v;
                memcpy(&v, have + 12, 4);
                return fail(ret_error, -EBADMSG, "%s: unsupported message log version %" PRIu32, l->path,
                            le32toh(v));
        }
        return 0;
}

/* Load every record; stop at the first bad one and say where and why. */
static int scan(MsgLog *l, const uint8_t *base, uint64_t size, uint64_t *ret_bad, const char **ret_reason) {
        uint64_t off = FILE_HEADER_SIZE;
        int r = 0;

        *ret_bad = UINT64_MAX;
        *ret_reason = NULL;
        l->scan_base = base;
        while (off < size) {
                const char *reason, *msgid = (const char *) base + off + REC_HEADER_SIZE;
                uint64_t hash = 0;
                RecHeader h;

                reason = rec_check_intact(base, size, off, &h);
                if (!reason) {
                        /* Hashed once, for the duplicate check and the table. */
                        if (h.msgid_len > 0)
                                hash = msglog_msgid_hash(msgid, h.msgid_len);
                        reason = rec_check_fits(l, &h, msgid, hash);
                }
                if (reason) {
                        *ret_bad = off;
                        *ret_reason = reason;
                        break;
                }
                r = msglog_reserve_one(l, h.msgid_len);
                if (r < 0)
                        break;
                msglog_add_entry(l, off, h.term, h.flags, h.msgid_len, hash);
                off += REC_HEADER_SIZE + (uint64_t) h.msgid_len + h.payload_len;
        }
        l->scan_base = NULL;
        return r;
}

static int load(MsgLog *l, uint64_t size, MsgLogOpenInfo *info, char **ret_error) {
        const char *reason = NULL;
        uint64_t bad = UINT64_MAX, next = UINT64_MAX;
        void *map = NULL;
        int r = 0;

        if (size > FILE_HEADER_SIZE) {
                if (size > SIZE_MAX)
                        return fail(ret_error, -EFBIG, "%s: file too large to map", l->path);
                map = mmap(NULL, (size_t) size, PROT_READ, MAP_PRIVATE, l->fd, 0);
                if (map == MAP_FAILED)
                        return fail(ret_error, negative_errno(), "%s: cannot map: %m", l->path);
                (void) madvise(map, (size_t) size, MADV_SEQUENTIAL);
                r = scan(l, map, size, &bad, &reason);
                if (r >= 0 && bad != UINT64_MAX)
                        next = find_intact_after(map, size, bad);
                (void) munmap(map, (size_t) size);
        }
        if (r < 0)
                return fail(ret_error, r, "%s: cannot load: %s", l->path, strerror(-r));

        if (bad != UINT64_MAX && next != UINT64_MAX)
                return fail(ret_error, -EBADMSG,
                            "%s: corrupt record at offset %" PRIu64
                            " (%s), followed by more data; refusing to open",
                            l->path, bad, reason);
        if (bad != UINT64_MAX) {
                if (ftruncate(l->fd, (off_t) bad) < 0 || fsync(l->fd) < 0)
                        return fail(ret_error, negative_errno(),
                                    "%s: cannot cut the tail at offset %" PRIu64 ": %m", l->path, bad);
                *info = (MsgLogOpenInfo){ .cut_offset = bad, .cut_bytes = size - bad, .cut_reason = reason };
                size = bad;
        } else if (fdatasync(l->fd) < 0) {
                /* Whatever an earlier process left in the page cache is durable from here on. */
                return fail(ret_error, negative_errno(), "%s: cannot sync: %m", l->path);
        }
        l->size = size;
        return 0;
}

int msglog_open(const char *dir, MsgLog **ret, MsgLogOpenInfo *ret_info, char **ret_error) {
        _cleanup_(msglog_freep) MsgLog *l = NULL;
        MsgLogOpenInfo info = {};
        struct stat st;
        int r;

        assert(dir);
        assert(ret);

        l = calloc(1, sizeof(MsgLog));
        if (!l)
                return -ENOMEM;
        l->fd = -1;
        if (asprintf(&l->path, "%s/%s", dir, MSGLOG_FILE) < 0) {
                l->path = NULL;
                return -ENOMEM;
        }

        r = mkdir_p(dir, 0750);
        if (r < 0)
                return fail(ret_error, r, "%s: cannot create directory: %s", dir, strerror(-r));
        r = open_file(l, dir, ret_error);
        if (r < 0)
                return r;
        if (fstat(l->fd, &st) < 0)
                return fail(ret_error, negative_errno(), "%s: cannot stat: %m", l->path);
        if (!S_ISREG(st.st_mode))
                return fail(ret_error, -EBADMSG, "%s: not a regular file", l->path);

        r = check_file_header(l, (uint64_t) st.st_size, &info, ret_error);
        if (r < 0)
                return r;
        r = load(l, (uint64_t) MAX(st.st_size, (off_t) FILE_HEADER_SIZE), &info, ret_error);
        if (r < 0)
                return r;

        l->synced = l->written = l->n_entries;
        l->written_off = l->size;
        info.records = l->n_entries;
        if (ret_info)
                *ret_info = info;
        if (ret_error)
                *ret_error = NULL;
        *ret = TAKE_PTR(l);
        return 0;
}
