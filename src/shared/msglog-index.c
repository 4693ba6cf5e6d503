/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msglog-index — a message log's in-memory index: per record its Entry
 * (offset, flags, msgid length and hash), the term segments, and the
 * open-addressing msgid -> index table (linear probing, backward-shift
 * deletion; a slot keeps 24 bits of the msgid's hash beside the index, and a
 * probe whose bits match compares the msgid read back from the record).
 * Also the accessors that answer from memory alone.
 */

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "macro.h"
#include "msglog-internal.h"
#include "util.h"

/* A msgid table slot: 0 = empty, else the record index (low bits) and the
 * top 24 bits of its msgid's hash. */
#define SLOT_INDEX_BITS 40
#define SLOT_INDEX_MASK ((UINT64_C(1) << SLOT_INDEX_BITS) - 1)
#define SLOT_TAG(hash) ((hash) >> SLOT_INDEX_BITS)
#define MSGLOG_MAX_RECORDS SLOT_INDEX_MASK

int msglog_grow(void **p, size_t *alloc, size_t need, size_t elsize) {
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

/* Eight bytes at a time, each word folded in by a multiply and a shift, the
 * length in the seed, then murmur3's finaliser for the high bits (the slot
 * tag). A byte-at-a-time FNV-1a took ~40 ns for a 30-byte msgid, and a PUT
 * hashes its msgid three times on the primary. In memory only: the table is
 * rebuilt at open, so the function may change. */
uint64_t msglog_msgid_hash(const char *s, size_t len) {
        uint64_t h = 0xcbf29ce484222325ull ^ len, w;
        size_t i = 0;

        if (test_collide)
                return 0x5a5a5a5a5a5a5a5aull;
        for (; i + 8 <= len; i += 8) {
                memcpy(&w, s + i, 8);
                h = (h ^ w) * 0x9e3779b97f4a7c15ull;
                h ^= h >> 29;
        }
        if (i < len) {
                w = 0;
                memcpy(&w, s + i, len - i);
                h = (h ^ w) * 0x9e3779b97f4a7c15ull;
                h ^= h >> 29;
        }
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

/* Start loading the home slot of a msgid with this hash (a lookup soon after finds it in cache). */
void msglog_prefetch_slot(const MsgLog *l, uint64_t hash) {
        if (l->n_slots > 0)
                __builtin_prefetch(&l->slots[(uint32_t) hash & (l->n_slots - 1)]);
}

/* 1 and the slot holding msgid, 0 if it is not in the table, or a read error. */
int msglog_msgid_lookup(const MsgLog *l, const char *id, size_t len, uint64_t hash, size_t *ret_slot) {
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
void msglog_msgid_table_delete(MsgLog *l, uint64_t index) {
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
int msglog_reserve_one(MsgLog *l, size_t msgid_len) {
        int r;

        if (l->n_entries >= MSGLOG_MAX_RECORDS)
                return -EFBIG;
        r = msglog_grow((void **) &l->entries, &l->n_entries_alloc, l->n_entries + 1, sizeof(Entry));
        if (r < 0)
                return r;
        r = msglog_grow((void **) &l->segments, &l->n_segments_alloc, l->n_segments + 1, sizeof(LogSegment));
        if (r < 0)
                return r;
        if (msgid_len == 0)
                return 0;
        return msgid_table_reserve(l, l->n_slots_used + 1);
}

/* Record the next index in memory; msglog_reserve_one() must have succeeded and
 * the msgid (if any) must not be in the table. */
void msglog_add_entry(MsgLog *l, uint64_t offset, uint64_t term, uint8_t flags, size_t msgid_len,
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
uint64_t msglog_entry_term(const MsgLog *l, uint64_t index) {
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

uint64_t msglog_last_index(const MsgLog *l) {
        return l->n_entries;
}

uint64_t msglog_last_term(const MsgLog *l) {
        return l->n_entries > 0 ? l->segments[l->n_segments - 1].term : 0;
}

int msglog_term_at(const MsgLog *l, uint64_t index, uint64_t *ret_term) {
        if (index == 0 || index > l->n_entries)
                return -ENOENT;
        *ret_term = msglog_entry_term(l, index);
        return 0;
}

size_t msglog_segments(const MsgLog *l, const LogSegment **ret) {
        *ret = l->segments;
        return l->n_segments;
}

void msglog_prefetch_msgid(const MsgLog *l, const char *msgid, size_t msgid_len) {
        if (msgid && msgid_len > 0 && msgid_len <= MSGID_MAX_LEN)
                msglog_prefetch_slot(l, msglog_msgid_hash(msgid, msgid_len));
}

int msglog_find_msgid(const MsgLog *l, const char *msgid, size_t msgid_len, uint64_t *ret_index) {
        size_t slot;
        int r;

        if (!msgid || msgid_len == 0 || msgid_len > MSGID_MAX_LEN)
                return 0;
        r = msglog_msgid_lookup(l, msgid, msgid_len, msglog_msgid_hash(msgid, msgid_len), &slot);
        if (r > 0 && ret_index)
                *ret_index = l->slots[slot] & SLOT_INDEX_MASK;
        return r;
}
