/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * hbproto — the internal wire formats, documented in doc/protocol.md:
 *
 * 1. server <-> monitor ("VERB key=value ..." lines, strict: known verbs,
 *    known keys, required keys present, no duplicates):
 *      HEARTBEAT name=N role=primary|backup term=T index=I lterm=LT commit=C pid=P seq=S [probe=Q]
 *      LEASE term=T seq=S                 lease for the heartbeat numbered S
 *      PROMOTE term=T                     become primary of term T
 *      FOLLOW term=T primary=N address=A  become/stay backup of N at A
 *      DEMOTE term=T                      stop being primary (no known successor yet)
 *      PROBE seq=Q                        answer at once with a HEARTBEAT carrying probe=Q
 *      REJECT reason=R                    connection refused (unknown server, ...)
 *
 * 2. replication on the primary's client port (positional; payload is the
 *    rest of the line):
 *      backup -> primary:  SYNC <name> <term> <last_index> <segments>
 *                          ACK <durable_index>
 *      primary -> backup:  SYNCED <match_index> <term> <commit>
 *                          ENTRY <index> <term> <commit> <msgid|*> <payload>
 *                          COMMIT <commit>
 *    <segments> lists the backup's log as term:first_index pairs, oldest
 *    first, comma separated, at most REPL_SEGMENTS_MAX (the newest), or "-"
 *    for an empty log. An ENTRY with msgid "*" and an empty payload is a
 *    term-start record written by a new primary.
 */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

typedef enum Role {
        ROLE_BACKUP,
        ROLE_PRIMARY,
        _ROLE_MAX,
        _ROLE_INVALID = -EINVAL,
} Role;

const char *role_to_string(Role r);
Role role_from_string(const char *s);

typedef enum HbType {
        HB_HEARTBEAT,
        HB_LEASE,
        HB_PROMOTE,
        HB_FOLLOW,
        HB_DEMOTE,
        HB_PROBE,
        HB_REJECT,
        _HB_MAX,
        _HB_INVALID = -EINVAL,
} HbType;

const char *hb_type_to_string(HbType t);

#define HB_ADDRESS_MAX 127
#define HB_REASON_MAX 63

typedef struct HbMessage {
        HbType type;
        char name[NAME_MAX_LEN + 1];          /* HEARTBEAT */
        Role role;                            /* HEARTBEAT */
        uint64_t term;                        /* HEARTBEAT LEASE PROMOTE FOLLOW DEMOTE */
        uint64_t index;                       /* HEARTBEAT: last log index */
        uint64_t lterm;                       /* HEARTBEAT: term of the last log entry */
        uint64_t commit;                      /* HEARTBEAT: commit index known to the server */
        uint64_t pid;                         /* HEARTBEAT */
        uint64_t seq;                         /* HEARTBEAT LEASE PROBE */
        uint64_t probe;                       /* HEARTBEAT: 0 = not an answer to a probe */
        char primary[NAME_MAX_LEN + 1];       /* FOLLOW */
        char address[HB_ADDRESS_MAX + 1];     /* FOLLOW: host:port of the primary's client port */
        char reason[HB_REASON_MAX + 1];       /* REJECT: [a-z0-9-]+ */
} HbMessage;

/* Parse one line (without line ending). -EINVAL with a static *ret_reason on
 * any deviation: unknown verb or key, duplicate or missing key, bad number
 * (decimal u64), bad name, bad role, address not host:port, value too long. */
int hb_message_parse(char *line, size_t len, HbMessage *ret, const char **ret_reason);
/* Append the message as one line ending in '\n' (only the keys its type uses;
 * probe= only when non-zero). */
int hb_message_format(const HbMessage *m, Buf *b);

/* Replication stream */
#define REPL_SEGMENTS_MAX 64

typedef struct LogSegment {
        uint64_t term;
        uint64_t first;   /* first index with this term */
        uint64_t last;    /* last index with this term (not on the wire) */
} LogSegment;

typedef enum ReplType {
        REPL_SYNC,
        REPL_ACK,
        REPL_SYNCED,
        REPL_ENTRY,
        REPL_COMMIT,
        _REPL_MAX,
        _REPL_INVALID = -EINVAL,
} ReplType;

typedef struct ReplMessage {
        ReplType type;
        char name[NAME_MAX_LEN + 1];          /* SYNC */
        uint64_t term;                        /* SYNC SYNCED ENTRY */
        uint64_t index;                       /* SYNC: last index; ACK: durable index; SYNCED: match; ENTRY */
        uint64_t commit;                      /* SYNCED ENTRY COMMIT */
        LogSegment segments[REPL_SEGMENTS_MAX]; /* SYNC: .last left 0 */
        size_t n_segments;
        const char *msgid;                    /* ENTRY: NULL for "*" */
        size_t msgid_len;
        const char *payload;                  /* ENTRY: points into the line */
        size_t payload_len;
} ReplMessage;

/* Parse one replication line. Segments must have strictly increasing terms
 * and strictly increasing first indexes, all >= 1, and the last segment's
 * first index <= last_index. ENTRY index >= 1, term >= 1, payload <=
 * max_payload bytes, msgid valid or "*"; an empty payload only with "*". */
int repl_message_parse(char *line, size_t len, uint64_t max_payload, ReplMessage *ret, const char **ret_reason);
int repl_message_format(const ReplMessage *m, Buf *b);

/* The primary's side of the SYNC handshake: given the primary's own
 * segments (with .last filled, oldest first) and the backup's (from SYNC:
 * .last unknown except that the newest segment ends at backup_last), return
 * the highest index up to which both logs hold the same entries. Pure. */
uint64_t repl_match_index(const LogSegment *primary, size_t n_primary, const LogSegment *backup,
                          size_t n_backup, uint64_t backup_last);
