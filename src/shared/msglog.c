/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msglog — the on-disk message log (format and recovery rules in
 * doc/storage.md). The file is the truth; in memory we keep, per index, the
 * record's offset, flags and msgid length (16 bytes), the term segments (a
 * record's term is its segment's), and an open-addressing msgid -> index
 * table (linear probing, backward-shift deletion) whose slots carry 24 bits
 * of the msgid's hash beside the index, so a probe compares msgids only when
 * those match; the msgid itself is then read from the record (write buffer or
 * file), not kept in memory. Appends go to a write buffer that msglog_flush()
 * writes with one pwrite() at the end of the file (a record over
 * WBUF_DIRECT_MIN bytes is written on its own); a write that fails half-way
 * is cut off again, so a live process never leaves a torn record behind.
 * Reads of records still in the buffer are served from it.
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
#include <sys/uio.h>
#include <unistd.h>

#include "crc32c.h"
#include "macro.h"
#include "msglog.h"
#include "util.h"

#define FILE_HEADER_SIZE 16
#define FILE_VERSION 1u
#define REC_HEADER_SIZE 32
#define REC_CRC_START 8                      /* the crc covers bytes 8.. of a record */
#define REC_MAGIC "FUSR"
#define MSGLOG_PAYLOAD_MAX (64u * 1024u * 1024u)
#define MSGLOG_KNOWN_FLAGS MSGLOG_FLAG_TERM_START
#define WBUF_MAX (256u * 1024u)              /* flush before the buffer would grow past this */
#define WBUF_DIRECT_MIN (64u * 1024u)        /* records this large bypass the buffer */

/* A msgid table slot: 0 = empty, else the record index (low bits) and the
 * top 24 bits of its msgid's hash. */
#define SLOT_INDEX_BITS 40
#define SLOT_INDEX_MASK ((UINT64_C(1) << SLOT_INDEX_BITS) - 1)
#define SLOT_TAG(hash) ((hash) >> SLOT_INDEX_BITS)
#define MSGLOG_MAX_RECORDS SLOT_INDEX_MASK

typedef struct Entry {
        uint64_t offset;        /* of the record header in the file */
        uint32_t msgid_home;    /* low 32 bits of the msgid's hash: its slot is home & (n_slots - 1) */
        uint8_t msgid_len;
        uint8_t flags;
} Entry;

struct MsgLog {
        int fd;
        char *path;
        uint64_t size;          /* logical size == where the next record goes */
        uint64_t synced;        /* highest index known durable */
        int error;              /* sticky: after a failed write, fdatasync or rollback */

        /* Records appended but not yet written: the bytes for file offsets
         * [written_off, size); written_off + wbuf_len == size. */
        uint8_t *wbuf;
        size_t wbuf_len, wbuf_alloc;
        uint64_t written_off;   /* the file's size: everything before is written */
        uint64_t written;       /* highest index written to the file */

        Entry *entries;         /* entries[i] is record i + 1 */
        size_t n_entries, n_entries_alloc;

        uint64_t *slots;        /* msgid table (SLOT_*); size a power of two */
        size_t n_slots, n_slots_used;
        const uint8_t *scan_base;  /* while msglog_open() scans: the mapped file */

        LogSegment *segments;
        size_t n_segments, n_segments_alloc;
};

typedef struct RecHeader {
        char magic[4];
        uint32_t crc;
        uint64_t index;
        uint64_t term;
        uint32_t payload_len;
        uint8_t msgid_len;
        uint8_t flags;
        uint16_t reserved;
} RecHeader;

static void file_header_make(uint8_t h[static FILE_HEADER_SIZE]) {
        uint32_t v = htole32(FILE_VERSION);

        memset(h, 0, FILE_HEADER_SIZE);
        memcpy(h, "FUSIONLOG", 9);
        memcpy(h + 12, &v, 4);
}

static void rec_header_decode(const uint8_t *p, RecHeader *h) {
        memcpy(h->magic, p, 4);
        memcpy(&h->crc, p + 4, 4);
        memcpy(&h->index, p + 8, 8);
        memcpy(&h->term, p + 16, 8);
        memcpy(&h->payload_len, p + 24, 4);
        h->msgid_len = p[28];
        h->flags = p[29];
        memcpy(&h->reserved, p + 30, 2);
        h->crc = le32toh(h->crc);
        h->index = le64toh(h->index);
        h->term = le64toh(h->term);
        h->payload_len = le32toh(h->payload_len);
        h->reserved = le16toh(h->reserved);
}

/* Everything but the crc, which is computed over the encoded bytes. */
static void rec_header_encode(uint8_t *p, uint64_t index, uint64_t term, uint32_t payload_len,
                              uint8_t msgid_len, uint8_t flags) {
        uint64_t i = htole64(index), t = htole64(term);
        uint32_t n = htole32(payload_len);

        memcpy(p, REC_MAGIC, 4);
        memset(p + 4, 0, 4);
        memcpy(p + 8, &i, 8);
        memcpy(p + 16, &t, 8);
        memcpy(p + 24, &n, 4);
        p[28] = msgid_len;
        p[29] = flags;
        p[30] = p[31] = 0;
}

static void rec_header_set_crc(uint8_t *p, uint32_t crc) {
        uint32_t c = htole32(crc);
        memcpy(p + 4, &c, 4);
}

/* Is there an intact record at off: magic, reserved field, sane lengths,
 * inside the file, checksum? NULL if so, else why not. */
static const char *rec_check_intact(const uint8_t *base, uint64_t size, uint64_t off, RecHeader *ret) {
        RecHeader h;

        if (size - off < REC_HEADER_SIZE)
                return "incomplete record header";
        rec_header_decode(base + off, &h);
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

static int grow(void **p, size_t *alloc, size_t need, size_t elsize) {
        size_t n;
        void *q;

        if (need <= *alloc)
                return 0;
        n = MAX(need, MAX(*alloc * 2, (size_t) 64));
        if (n > SIZE_MAX / elsize)
                return -ENOMEM;
        q = realloc(*p, n * elsize);
        if (!q)
                return -ENOMEM;
        *p = q;
        *alloc = n;
        return 0;
}

static bool test_collide;

void msglog_test_hash_collisions(bool on) {
        test_collide = on;
}

static uint64_t msgid_hash(const char *s, size_t len) {
        uint64_t h = 0xcbf29ce484222325ull;   /* FNV-1a, then murmur3's finaliser for the high bits */

        if (test_collide)
                return 0x5a5a5a5a5a5a5a5aull;
        for (size_t i = 0; i < len; i++)
                h = (h ^ (uint8_t) s[i]) * 0x100000001b3ull;
        h ^= h >> 33;
        h *= 0xff51afd7ed558ccdull;
        h ^= h >> 33;
        h *= 0xc4ceb9fe1a85ec53ull;
        h ^= h >> 33;
        return h;
}

/* Whether record e's msgid is id (1) or not (0): from the write buffer, the
 * file being scanned by msglog_open(), or the file. Only called when the
 * slot's hash bits and the length match. */
static int entry_msgid_equals(const MsgLog *l, const Entry *e, const char *id, size_t len) {
        uint64_t off = e->offset + REC_HEADER_SIZE;
        char buf[MSGID_MAX_LEN];
        ssize_t k;

        if (e->msgid_len != len)
                return 0;
        if (l->scan_base)
                return memcmp(l->scan_base + off, id, len) == 0;
        if (e->offset >= l->written_off)
                return memcmp(l->wbuf + (off - l->written_off), id, len) == 0;
        do
                k = pread(l->fd, buf, len, (off_t) off);
        while (k < 0 && errno == EINTR);
        if (k < 0)
                return negative_errno();
        if ((size_t) k != len)
                return -EIO;
        return memcmp(buf, id, len) == 0;
}

/* 1 and the slot holding msgid, 0 if it is not in the table, or a read error. */
static int msgid_lookup(const MsgLog *l, const char *id, size_t len, uint64_t hash, size_t *ret_slot) {
        size_t mask = l->n_slots - 1;

        if (l->n_slots == 0)
                return 0;
        for (size_t i = (uint32_t) hash & mask;; i = (i + 1) & mask) {
                uint64_t s = l->slots[i];
                int r;

                if (s == 0)
                        return 0;
                if (SLOT_TAG(s) != SLOT_TAG(hash))
                        continue;
                r = entry_msgid_equals(l, &l->entries[(s & SLOT_INDEX_MASK) - 1], id, len);
                if (r != 0) {
                        *ret_slot = i;
                        return r;
                }
        }
}

/* Put a slot value into the first empty slot of its probe run. */
static void msgid_table_put(uint64_t *slots, size_t n, uint32_t home, uint64_t value) {
        size_t i = home & (n - 1);

        while (slots[i] != 0)
                i = (i + 1) & (n - 1);
        slots[i] = value;
}

static int msgid_table_reserve(MsgLog *l, size_t need) {
        size_t n = l->n_slots ? l->n_slots : 256;
        uint64_t *old = l->slots;
        size_t old_n = l->n_slots;

        if (need * 2 <= l->n_slots)
                return 0;
        while (need * 2 > n)
                n *= 2;
        l->slots = calloc(n, sizeof(uint64_t));
        if (!l->slots) {
                l->slots = old;
                return -ENOMEM;
        }
        l->n_slots = n;
        for (size_t i = 0; i < old_n; i++)
                if (old[i] != 0)
                        msgid_table_put(l->slots, n, l->entries[(old[i] & SLOT_INDEX_MASK) - 1].msgid_home,
                                        old[i]);
        free(old);
        return 0;
}

/* Remove record index's msgid (the slot that holds index, found from its home). */
static void msgid_table_delete(MsgLog *l, uint64_t index) {
        size_t mask = l->n_slots - 1, i, j;

        for (i = l->entries[index - 1].msgid_home & mask; (l->slots[i] & SLOT_INDEX_MASK) != index;
             i = (i + 1) & mask)
                assert(l->slots[i] != 0);
        l->slots[i] = 0;
        l->n_slots_used--;
        /* Backward shift: pull later members of the probe run into the hole
         * unless their home slot lies cyclically in (hole, j]. */
        for (j = (i + 1) & mask; l->slots[j] != 0; j = (j + 1) & mask) {
                size_t home = l->entries[(l->slots[j] & SLOT_INDEX_MASK) - 1].msgid_home & mask;
                bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
                if (!stays) {
                        l->slots[i] = l->slots[j];
                        l->slots[j] = 0;
                        i = j;
                }
        }
}

/* Make room for one more record so that adding it cannot fail. */
static int reserve_one(MsgLog *l, size_t msgid_len) {
        int r;

        if (l->n_entries >= MSGLOG_MAX_RECORDS)
                return -EFBIG;
        r = grow((void **) &l->entries, &l->n_entries_alloc, l->n_entries + 1, sizeof(Entry));
        if (r < 0)
                return r;
        r = grow((void **) &l->segments, &l->n_segments_alloc, l->n_segments + 1, sizeof(LogSegment));
        if (r < 0)
                return r;
        if (msgid_len == 0)
                return 0;
        return msgid_table_reserve(l, l->n_slots_used + 1);
}

/* Record the next index in memory; reserve_one() must have succeeded and
 * the msgid (if any) must not be in the table. */
static void add_entry(MsgLog *l, uint64_t offset, uint64_t term, uint8_t flags, size_t msgid_len,
                      uint64_t hash) {
        Entry *e = &l->entries[l->n_entries++];
        uint64_t index = l->n_entries;

        *e = (Entry){ .offset = offset, .msgid_home = (uint32_t) hash, .msgid_len = (uint8_t) msgid_len,
                      .flags = flags };
        if (msgid_len > 0) {
                msgid_table_put(l->slots, l->n_slots, e->msgid_home,
                                SLOT_TAG(hash) << SLOT_INDEX_BITS | index);
                l->n_slots_used++;
        }
        if (l->n_segments > 0 && l->segments[l->n_segments - 1].term == term)
                l->segments[l->n_segments - 1].last = index;
        else
                l->segments[l->n_segments++] = (LogSegment){ .term = term, .first = index, .last = index };
}

/* The term of record index (1..n_entries): its segment's. */
static uint64_t entry_term(const MsgLog *l, uint64_t index) {
        size_t lo = 0, hi = l->n_segments;

        assert(index >= 1 && index <= l->n_entries && l->n_segments > 0);
        if (l->segments[hi - 1].first <= index)
                return l->segments[hi - 1].term;
        while (hi - lo > 1) {
                size_t mid = lo + (hi - lo) / 2;
                if (l->segments[mid].first <= index)
                        lo = mid;
                else
                        hi = mid;
        }
        return l->segments[lo].term;
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
                int r = msgid_lookup(l, msgid, h->msgid_len, hash, &slot);
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
                                hash = msgid_hash(msgid, h.msgid_len);
                        reason = rec_check_fits(l, &h, msgid, hash);
                }
                if (reason) {
                        *ret_bad = off;
                        *ret_reason = reason;
                        break;
                }
                r = reserve_one(l, h.msgid_len);
                if (r < 0)
                        break;
                add_entry(l, off, h.term, h.flags, h.msgid_len, hash);
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

uint64_t msglog_last_index(const MsgLog *l) {
        return l->n_entries;
}

uint64_t msglog_last_term(const MsgLog *l) {
        return l->n_entries > 0 ? l->segments[l->n_segments - 1].term : 0;
}

int msglog_term_at(const MsgLog *l, uint64_t index, uint64_t *ret_term) {
        if (index == 0 || index > l->n_entries)
                return -ENOENT;
        *ret_term = entry_term(l, index);
        return 0;
}

uint64_t msglog_synced_index(const MsgLog *l) {
        return l->synced;
}

uint64_t msglog_written_index(const MsgLog *l) {
        return l->written;
}

size_t msglog_segments(const MsgLog *l, const LogSegment **ret) {
        *ret = l->segments;
        return l->n_segments;
}

int msglog_find_msgid(const MsgLog *l, const char *msgid, size_t msgid_len, uint64_t *ret_index) {
        size_t slot;
        int r;

        if (!msgid || msgid_len == 0 || msgid_len > MSGID_MAX_LEN)
                return 0;
        r = msgid_lookup(l, msgid, msgid_len, msgid_hash(msgid, msgid_len), &slot);
        if (r > 0 && ret_index)
                *ret_index = l->slots[slot] & SLOT_INDEX_MASK;
        return r;
}

/* Write the bytes at the file's end (written_off); on any failure cut the file back. */
/* Whether a record of rec_len bytes makes msglog_append() write the buffer out first. */
static bool wbuf_flush_first(const MsgLog *l, size_t rec_len) {
        return rec_len >= WBUF_DIRECT_MIN || l->wbuf_len + rec_len > WBUF_MAX;
}

static int write_record(MsgLog *l, struct iovec *iov, int n, size_t total) {
        uint64_t off = l->written_off;
        int r = 0;

        while (total > 0) {
                ssize_t k = pwritev(l->fd, iov, n, (off_t) off);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0) {
                        r = k < 0 ? negative_errno() : -EIO;
                        break;
                }
                off += (uint64_t) k;
                total -= (size_t) k;
                while (n > 0 && (size_t) k >= iov->iov_len) {
                        k -= (ssize_t) iov->iov_len;
                        iov++;
                        n--;
                }
                if (n > 0) {
                        iov->iov_base = (uint8_t *) iov->iov_base + k;
                        iov->iov_len -= (size_t) k;
                }
        }
        if (r < 0 && off > l->written_off && ftruncate(l->fd, (off_t) l->written_off) < 0)
                l->error = negative_errno();   /* a torn record stays: refuse further writes */
        return r;
}

int msglog_append(MsgLog *l, uint64_t index, uint64_t term, uint8_t flags, const char *msgid,
                  size_t msgid_len, const void *payload, size_t payload_len) {
        uint8_t hdr[REC_HEADER_SIZE];
        struct iovec iov[3];
        uint64_t hash = 0;
        uint32_t crc;
        size_t rec_len;
        uint8_t *p;
        int n = 0, r;

        assert(l);
        assert(payload || payload_len == 0);

        if (l->error < 0)
                return l->error;
        if (!msgid)
                msgid_len = 0;
        if (index != l->n_entries + 1 || term == 0 || term > MSGLOG_TERM_MAX || term < msglog_last_term(l) ||
            (flags & ~MSGLOG_KNOWN_FLAGS) || (msgid_len > 0 && !msgid_is_valid(msgid, msgid_len)))
                return -EINVAL;
        if (payload_len > MSGLOG_PAYLOAD_MAX)
                return -EMSGSIZE;
        if (msgid_len > 0) {
                size_t slot;

                hash = msgid_hash(msgid, msgid_len);
                r = msgid_lookup(l, msgid, msgid_len, hash, &slot);
                if (r != 0)
                        return r > 0 ? -EEXIST : r;
        }
        r = reserve_one(l, msgid_len);
        if (r < 0)
                return r;

        rec_header_encode(hdr, index, term, (uint32_t) payload_len, (uint8_t) msgid_len, flags);
        crc = crc32c(0, hdr + REC_CRC_START, REC_HEADER_SIZE - REC_CRC_START);
        crc = crc32c(crc, msgid, msgid_len);
        crc = crc32c(crc, payload, payload_len);
        rec_header_set_crc(hdr, crc);

        rec_len = sizeof(hdr) + msgid_len + payload_len;
        if (wbuf_flush_first(l, rec_len)) {
                r = msglog_flush(l);
                if (r < 0)
                        return r;
        }
        if (rec_len >= WBUF_DIRECT_MIN) {
                /* Large: straight to the file (the buffer is empty now). */
                iov[n++] = (struct iovec){ .iov_base = hdr, .iov_len = sizeof(hdr) };
                if (msgid_len > 0)
                        iov[n++] = (struct iovec){ .iov_base = (void *) msgid, .iov_len = msgid_len };
                if (payload_len > 0)
                        iov[n++] = (struct iovec){ .iov_base = (void *) payload, .iov_len = payload_len };
                r = write_record(l, iov, n, rec_len);
                if (r < 0)
                        return r;
                add_entry(l, l->size, term, flags, msgid_len, hash);
                l->size += rec_len;
                l->written_off = l->size;
                l->written = l->n_entries;
                return 0;
        }

        r = grow((void **) &l->wbuf, &l->wbuf_alloc, l->wbuf_len + rec_len, 1);
        if (r < 0)
                return r;
        p = l->wbuf + l->wbuf_len;
        memcpy(p, hdr, sizeof(hdr));
        if (msgid_len > 0)
                memcpy(p + sizeof(hdr), msgid, msgid_len);
        if (payload_len > 0)
                memcpy(p + sizeof(hdr) + msgid_len, payload, payload_len);
        l->wbuf_len += rec_len;

        add_entry(l, l->size, term, flags, msgid_len, hash);
        l->size += rec_len;
        return 0;
}

int msglog_flush(MsgLog *l) {
        struct iovec iov;
        int r;

        assert(l);

        if (l->error < 0)
                return l->error;
        if (l->wbuf_len == 0)
                return 0;
        assert(l->written_off + l->wbuf_len == l->size);

        iov = (struct iovec){ .iov_base = l->wbuf, .iov_len = l->wbuf_len };
        r = write_record(l, &iov, 1, l->wbuf_len);
        if (r < 0) {
                /* The buffered records are in memory only and may have been streamed or
                 * answered from: refuse everything from here on. */
                l->error = r;
                return r;
        }
        l->written_off = l->size;
        l->wbuf_len = 0;
        l->written = l->n_entries;
        return 0;
}

int msglog_sync(MsgLog *l) {
        int r;

        r = msglog_flush(l);
        if (r < 0)
                return r;
        if (l->synced >= l->n_entries)
                return 0;
        if (fdatasync(l->fd) < 0) {
                /* The kernel may have dropped the dirty pages: never claim them durable. */
                l->error = negative_errno();
                return l->error;
        }
        l->synced = l->n_entries;
        return 0;
}

void log_record_done(LogRecord *r) {
        if (!r)
                return;
        if (!r->borrowed)
                free(r->payload);
        r->payload = NULL;
        r->payload_len = 0;
        r->borrowed = false;
}

bool msglog_append_flushes(const MsgLog *l, size_t msgid_len, size_t payload_len) {
        assert(l);
        return l->wbuf_len > 0 && wbuf_flush_first(l, REC_HEADER_SIZE + msgid_len + payload_len);
}

/* Record index's entry and its length in the log (header, msgid and payload). */
static int record_span(const MsgLog *l, uint64_t index, const Entry **ret_e, uint64_t *ret_len) {
        const Entry *e;
        uint64_t end;

        if (index == 0 || index > l->n_entries)
                return -ENOENT;
        e = &l->entries[index - 1];
        end = index < l->n_entries ? l->entries[index].offset : l->size;
        if (end - e->offset < REC_HEADER_SIZE + (uint64_t) e->msgid_len)
                return -EBADMSG;
        *ret_e = e;
        *ret_len = end - e->offset;
        return 0;
}

int msglog_read_buffered(MsgLog *l, uint64_t index, LogRecord *ret) {
        const Entry *e;
        const uint8_t *p;
        uint64_t len;
        RecHeader h;
        int r;

        assert(l);
        assert(ret);

        r = record_span(l, index, &e, &len);
        if (r < 0)
                return r;
        if (e->offset < l->written_off)
                return msglog_read(l, index, ret);
        if (e->offset + len - l->written_off > l->wbuf_len)
                return -EBADMSG;
        p = l->wbuf + (e->offset - l->written_off);
        rec_header_decode(p, &h);
        /* Our own bytes, so a mismatch would be a bug here; refuse rather than stream it. */
        if (h.index != index || h.term != entry_term(l, index) || h.msgid_len != e->msgid_len ||
            h.flags != e->flags || len != (uint64_t) REC_HEADER_SIZE + h.msgid_len + h.payload_len)
                return -EBADMSG;

        *ret = (LogRecord){ .index = index, .term = h.term, .flags = h.flags, .msgid_len = h.msgid_len,
                            .payload = (char *) p + REC_HEADER_SIZE + h.msgid_len, .payload_len = h.payload_len,
                            .borrowed = true };
        memcpy(ret->msgid, p + REC_HEADER_SIZE, h.msgid_len);
        ret->msgid[h.msgid_len] = 0;
        return 0;
}

int msglog_read(MsgLog *l, uint64_t index, LogRecord *ret) {
        uint8_t hdr[REC_HEADER_SIZE];
        char msgid[MSGID_MAX_LEN + 1];
        _cleanup_(freep) char *payload = NULL;
        const Entry *e;
        uint64_t len;
        size_t payload_len;
        RecHeader h;
        ssize_t k;
        int r;

        assert(l);
        assert(ret);

        r = record_span(l, index, &e, &len);
        if (r < 0)
                return r;
        payload_len = (size_t) (len - REC_HEADER_SIZE - e->msgid_len);

        payload = malloc(payload_len + 1);
        if (!payload)
                return -ENOMEM;
        struct iovec iov[3] = {
                { .iov_base = hdr, .iov_len = sizeof(hdr) },
                { .iov_base = msgid, .iov_len = e->msgid_len },
                { .iov_base = payload, .iov_len = payload_len },
        };
        if (e->offset >= l->written_off) {
                /* Still in the write buffer (a record never straddles its start). */
                const uint8_t *p = l->wbuf + (e->offset - l->written_off);

                assert(e->offset + len - l->written_off <= l->wbuf_len);
                memcpy(hdr, p, sizeof(hdr));
                memcpy(msgid, p + sizeof(hdr), e->msgid_len);
                memcpy(payload, p + sizeof(hdr) + e->msgid_len, payload_len);
        } else {
                do
                        k = preadv(l->fd, iov, 3, (off_t) e->offset);
                while (k < 0 && errno == EINTR);
                if (k < 0)
                        return negative_errno();
                if ((uint64_t) k != len)
                        return -EBADMSG;
        }

        rec_header_decode(hdr, &h);
        if (memcmp(h.magic, REC_MAGIC, 4) != 0 || h.index != index || h.term != entry_term(l, index) ||
            h.msgid_len != e->msgid_len || h.payload_len != payload_len || h.flags != e->flags)
                return -EBADMSG;
        if (crc32c(crc32c(crc32c(0, hdr + REC_CRC_START, REC_HEADER_SIZE - REC_CRC_START), msgid, h.msgid_len),
                   payload, payload_len) != h.crc)
                return -EBADMSG;

        msgid[h.msgid_len] = 0;
        payload[payload_len] = 0;
        *ret = (LogRecord){ .index = index, .term = h.term, .flags = h.flags, .msgid_len = h.msgid_len,
                            .payload = TAKE_PTR(payload), .payload_len = payload_len };
        memcpy(ret->msgid, msgid, h.msgid_len + 1);
        return 0;
}

int msglog_truncate_after(MsgLog *l, uint64_t index) {
        uint64_t new_size;
        int r;

        assert(l);

        if (l->error < 0)
                return l->error;
        if (index >= l->n_entries)
                return 0;
        /* Rare (a new term's conflicting suffix): write out the buffer, then cut the file. */
        r = msglog_flush(l);
        if (r < 0)
                return r;
        new_size = l->entries[index].offset;
        if (ftruncate(l->fd, (off_t) new_size) < 0)
                return negative_errno();

        /* The file is shorter now: forget the removed records whatever happens next. */
        l->size = l->written_off = new_size;
        l->written = MIN(l->written, index);
        while (l->n_entries > index) {
                const Entry *e = &l->entries[l->n_entries - 1];
                if (e->msgid_len > 0)
                        msgid_table_delete(l, l->n_entries);
                l->n_entries--;
        }
        while (l->n_segments > 0 && l->segments[l->n_segments - 1].first > index)
                l->n_segments--;
        if (l->n_segments > 0)
                l->segments[l->n_segments - 1].last = index;
        l->synced = MIN(l->synced, index);

        if (fdatasync(l->fd) < 0) {
                l->error = negative_errno();
                return l->error;
        }
        l->synced = index;
        return 0;
}
