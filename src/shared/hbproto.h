/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * hbproto — the internal wire formats, documented in doc/protocol.md:
 *
 * 1. server <-> monitor ("VERB key=value ..." lines, strict: known verbs,
 *    known keys, required keys present, no duplicates):
 *      HEARTBEAT name=N role=primary|backup term=T index=I lterm=LT commit=C pid=P seq=S
 *                insync=R lease=L dead=D minsync=M hbint=H [probe=Q]
 *                                         R: backups in sync with this primary (0 on a backup);
 *                                         L D M H: the server's [cluster] lease_ms, dead_after_ms,
 *                                         min_sync_replicas, heartbeat_interval_ms
 *      LEASE term=T seq=S lease=L monitor=ID   lease for the heartbeat numbered S, valid
 *                                         L ms from when S was sent (the monitor fences by L)
 *      PROMOTE term=T monitor=ID          become primary of term T
 *      FOLLOW term=T primary=N address=A monitor=ID  become/stay backup of N at A
 *      DEMOTE term=T monitor=ID           stop being primary (no known successor yet)
 *      PROBE seq=Q                        answer at once with a HEARTBEAT carrying probe=Q
 *      REJECT reason=R [lease=L dead=D minsync=M hbint=H]
 *                                         connection refused (unknown server, settings that
 *                                         differ: then the monitor's own settings follow)
 *    ID is the monitor's persisted identity: 1-32 of [a-z0-9-].
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
#define HB_MONITOR_ID_MAX 32

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
        uint64_t insync;                      /* HEARTBEAT: backups in sync (primary), else 0 */
        /* The safety-relevant [cluster] settings: HEARTBEAT (the server's), REJECT
         * reason=settings (the monitor's); lease_ms also in LEASE (what the monitor fences by). */
        uint64_t lease_ms;
        uint64_t dead_after_ms;
        uint64_t min_sync_replicas;
        uint64_t heartbeat_interval_ms;
        char monitor[HB_MONITOR_ID_MAX + 1];  /* LEASE PROMOTE FOLLOW DEMOTE: the sender's identity */
} HbMessage;

/* Parse one line (without line ending). -EINVAL with a static *ret_reason on
 * any deviation: unknown verb or key, duplicate or missing key, bad number
 * (decimal u64), bad name, bad role, address not host:port, value too long. */
int hb_message_parse(char *line, size_t len, HbMessage *ret, const char **ret_reason);
/* Append the message as one line ending in '\n' (only the keys its type uses;
 * probe= only when non-zero; REJECT's settings only when lease_ms is non-zero). */
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
