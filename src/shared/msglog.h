/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msglog — each server's on-disk message store: one append-only file
 * "<data_dir>/messages.log" of checksummed records (index, term, msgid,
 * payload), indexes dense from 1. Kept in memory: each record's offset and
 * term (for reads and for the replication handshake) and a msgid -> index
 * table for PUT de-duplication, rebuilt from the file at open.
 *
 * At open a torn or corrupt tail (the last record incomplete or failing its
 * checksum) is cut and reported; a corrupt record followed by valid data is
 * an error naming its offset, and nothing is cut.
 *
 * Record layout, little-endian (doc/storage.md):
 *   u32 magic "FUSR" | u32 crc32c of everything after this field
 *   u64 index | u64 term | u32 payload_len | u8 msgid_len | u8 flags | u16 0
 *   msgid bytes | payload bytes
 * File header: 16 bytes "FUSIONLOG\0\0\0" + u32 version (1).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hbproto.h"

#define MSGLOG_FILE "messages.log"
#define MSGLOG_FLAG_TERM_START 0x01   /* empty record a new primary writes first */
/* The highest term a record may carry: a term has a next one (the monitor promotes
 * term + 1), so 2^64-1 is never written, and a record claiming it is damaged. */
#define MSGLOG_TERM_MAX (UINT64_MAX - 1)

typedef struct MsgLog MsgLog;

typedef struct MsgLogOpenInfo {
        uint64_t records;         /* valid records kept */
        uint64_t cut_offset;      /* where a torn/corrupt tail was cut (valid if cut_bytes > 0) */
        uint64_t cut_bytes;       /* bytes removed from the tail, 0 if none */
        const char *cut_reason;   /* "incomplete record", "checksum mismatch", ... */
} MsgLogOpenInfo;

typedef struct LogRecord {
        uint64_t index;
        uint64_t term;
        uint8_t flags;
        char msgid[65];           /* "" when none */
        size_t msgid_len;
        char *payload;            /* malloc'd, NUL-terminated, payload_len bytes; or borrowed */
        size_t payload_len;
        bool borrowed;            /* payload points into the log's write buffer, not NUL-terminated */
} LogRecord;

void log_record_done(LogRecord *r);

/* Open (creating dir and file if missing). On mid-log corruption returns
 * -EBADMSG and, if ret_error is non-NULL, a malloc'd message naming the file
 * and offset. */
int msglog_open(const char *dir, MsgLog **ret, MsgLogOpenInfo *ret_info, char **ret_error);
MsgLog *msglog_free(MsgLog *l);

uint64_t msglog_last_index(const MsgLog *l);
uint64_t msglog_last_term(const MsgLog *l);       /* 0 for an empty log */
/* Term of record index (1..last); -ENOENT outside. */
int msglog_term_at(const MsgLog *l, uint64_t index, uint64_t *ret_term);

/* Append record index = last_index + 1 (else -EINVAL). msgid may be NULL.
 * A msgid already present gives -EEXIST. The record may only be buffered in
 * memory (msglog_read() sees it): it is in the file after msglog_flush() and
 * durable after msglog_sync(). An append that has to flush first can fail
 * with that write's error, which, like any failed flush, is sticky. */
int msglog_append(MsgLog *l, uint64_t index, uint64_t term, uint8_t flags, const char *msgid,
                  size_t msgid_len, const void *payload, size_t payload_len);
/* Write buffered records to the file (one write; no fdatasync). */
int msglog_flush(MsgLog *l);
/* Flush, then fdatasync if anything was appended since the last sync. */
int msglog_sync(MsgLog *l);
/* Highest index known durable (after the last successful msglog_sync). */
uint64_t msglog_synced_index(const MsgLog *l);
/* Highest index written to the file (survives the process, not the machine). */
uint64_t msglog_written_index(const MsgLog *l);

int msglog_read(MsgLog *l, uint64_t index, LogRecord *ret);
/* As msglog_read(), but a record still in the write buffer is not copied:
 * ret->payload points into the buffer (ret->borrowed; not NUL-terminated),
 * valid until the next call that changes the log (append, flush, sync,
 * truncate), and its CRC is not checked again (msglog_append() computed it
 * from these very bytes). For streaming entries right after they were
 * appended. */
int msglog_read_buffered(MsgLog *l, uint64_t index, LogRecord *ret);
/* Whether appending a record of this size would first write out the records
 * buffered now (after which msglog_read_buffered() has to read them back from
 * the file). */
bool msglog_append_flushes(const MsgLog *l, size_t msgid_len, size_t payload_len);
/* Remove every record after index (index may be 0: empty the log); durable
 * on return. msgids of removed records are forgotten. */
int msglog_truncate_after(MsgLog *l, uint64_t index);
/* 1 and the index if msgid is stored, 0 if not; a negative errno if a
 * candidate record's msgid could not be read back from the file to compare
 * (msgids are not kept in memory, only 24 bits of their hash). */
int msglog_find_msgid(const MsgLog *l, const char *msgid, size_t msgid_len, uint64_t *ret_index);
/* Start loading what msglog_find_msgid() of this msgid reads first (its slot in the
 * msgid table: megabytes, mostly in no cache under load), to overlap other work. */
void msglog_prefetch_msgid(const MsgLog *l, const char *msgid, size_t msgid_len);
/* Tests: every msgid hashes alike, so every lookup compares msgids read back
 * from the write buffer or the file. */
void msglog_test_hash_collisions(bool on);

/* The log as term segments, oldest first (.last filled). Returns the count;
 * *ret points into the log's memory, valid until the next change. */
size_t msglog_segments(const MsgLog *l, const LogSegment **ret);
