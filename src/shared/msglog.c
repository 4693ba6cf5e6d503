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
 *
 * This file: the record encoding, appends, flush and sync, reads and
 * truncation. The entries, term segments and msgid table are in
 * msglog-index.c; opening, scanning and recovery in msglog-open.c; what they
 * share in msglog-internal.h.
 */

#include <assert.h>
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "crc32c.h"
#include "macro.h"
#include "msglog-internal.h"
#include "util.h"

#define WBUF_MAX (256u * 1024u)              /* flush before the buffer would grow past this */
#define WBUF_DIRECT_MIN (64u * 1024u)        /* records this large bypass the buffer */

void msglog_rec_header_decode(const uint8_t *p, RecHeader *h) {
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
        /* The msgid's slot is most often not in any cache (the table is megabytes, and
         * the payloads stream through the caches): start loading it, checksum the
         * record meanwhile, then look. */
        if (msgid_len > 0) {
                hash = msglog_msgid_hash(msgid, msgid_len);
                msglog_prefetch_slot(l, hash);
        }
        rec_header_encode(hdr, index, term, (uint32_t) payload_len, (uint8_t) msgid_len, flags);
        crc = crc32c(0, hdr + REC_CRC_START, REC_HEADER_SIZE - REC_CRC_START);
        crc = crc32c(crc, msgid, msgid_len);
        crc = crc32c(crc, payload, payload_len);
        rec_header_set_crc(hdr, crc);

        if (msgid_len > 0) {
                size_t slot;

                r = msglog_msgid_lookup(l, msgid, msgid_len, hash, &slot);
                if (r != 0)
                        return r > 0 ? -EEXIST : r;
        }
        r = msglog_reserve_one(l, msgid_len);
        if (r < 0)
                return r;

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
                msglog_add_entry(l, l->size, term, flags, msgid_len, hash);
                l->size += rec_len;
                l->written_off = l->size;
                l->written = l->n_entries;
                return 0;
        }

        r = msglog_grow((void **) &l->wbuf, &l->wbuf_alloc, l->wbuf_len + rec_len, 1);
        if (r < 0)
                return r;
        p = l->wbuf + l->wbuf_len;
        memcpy(p, hdr, sizeof(hdr));
        if (msgid_len > 0)
                memcpy(p + sizeof(hdr), msgid, msgid_len);
        if (payload_len > 0)
                memcpy(p + sizeof(hdr) + msgid_len, payload, payload_len);
        l->wbuf_len += rec_len;

        msglog_add_entry(l, l->size, term, flags, msgid_len, hash);
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

uint64_t msglog_synced_index(const MsgLog *l) {
        return l->synced;
}

uint64_t msglog_written_index(const MsgLog *l) {
        return l->written;
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
        msglog_rec_header_decode(p, &h);
        /* Our own bytes, so a mismatch would be a bug here; refuse rather than stream it. */
        if (h.index != index || h.term != msglog_entry_term(l, index) || h.msgid_len != e->msgid_len ||
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

        msglog_rec_header_decode(hdr, &h);
        if (memcmp(h.magic, REC_MAGIC, 4) != 0 || h.index != index || h.term != msglog_entry_term(l, index) ||
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
                        msglog_msgid_table_delete(l, l->n_entries);
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
