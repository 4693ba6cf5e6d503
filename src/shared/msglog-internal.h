/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msglog-internal — what the msglog*.c files share and nobody else sees: the
 * record layout, the MsgLog struct with its in-memory index, and the helpers
 * one of them defines for another. msglog.c appends, flushes, reads and
 * truncates; msglog-index.c keeps the entries, term segments and msgid table;
 * msglog-open.c opens, scans and recovers the file (and frees the log).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "msglog.h"

#define REC_HEADER_SIZE 32
#define REC_CRC_START 8                      /* the crc covers bytes 8.. of a record */
#define REC_MAGIC "FUSR"
#define MSGLOG_PAYLOAD_MAX (64u * 1024u * 1024u)
#define MSGLOG_KNOWN_FLAGS MSGLOG_FLAG_TERM_START

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

/* msglog.c */
void msglog_rec_header_decode(const uint8_t *p, RecHeader *h);

/* msglog-index.c */
int msglog_grow(void **p, size_t *alloc, size_t need, size_t elsize);
uint64_t msglog_msgid_hash(const char *s, size_t len);
void msglog_prefetch_slot(const MsgLog *l, uint64_t hash);
int msglog_msgid_lookup(const MsgLog *l, const char *id, size_t len, uint64_t hash, size_t *ret_slot);
void msglog_msgid_table_delete(MsgLog *l, uint64_t index);
int msglog_reserve_one(MsgLog *l, size_t msgid_len);
void msglog_add_entry(MsgLog *l, uint64_t offset, uint64_t term, uint8_t flags, size_t msgid_len,
                      uint64_t hash);
uint64_t msglog_entry_term(const MsgLog *l, uint64_t index);
