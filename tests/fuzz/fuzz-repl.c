/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-repl — the replication stream: repl_message_parse() on arbitrary
 * lines, with the format -> parse -> format round trip of fuzz-hbmessage and
 * a check that a smaller payload limit only ever refuses more. Then
 * repl_match_index() on term segments derived from the input bytes (and on
 * the segments of a parsed SYNC line), compared with a brute-force answer:
 * the highest index k at which both logs hold an entry of the same term
 * whose run of that term starts at the same index.
 */

#include <inttypes.h>

#include "fuzz.h"
#include "hbproto.h"
#include "util.h"

#define PAYLOAD_MAX 65536
#define PAYLOAD_SMALL 8
#define DERIVED_SEGMENTS_MAX 8

static bool span_equal(const char *a, size_t an, const char *b, size_t bn) {
        return an == bn && (an == 0 || memcmp(a, b, an) == 0);
}

static bool repl_equal(const ReplMessage *a, const ReplMessage *b) {
        if (a->type != b->type || strcmp(a->name, b->name) != 0 || a->term != b->term || a->index != b->index ||
            a->commit != b->commit || a->n_segments != b->n_segments)
                return false;
        for (size_t i = 0; i < a->n_segments; i++)
                if (a->segments[i].term != b->segments[i].term || a->segments[i].first != b->segments[i].first ||
                    a->segments[i].last != b->segments[i].last)
                        return false;
        if (!a->msgid != !b->msgid || !span_equal(a->msgid, a->msgid_len, b->msgid, b->msgid_len))
                return false;
        return span_equal(a->payload, a->payload_len, b->payload, b->payload_len);
}

static void check_parsed(const ReplMessage *m) {
        FUZZ_CHECK(m->type >= 0 && m->type < _REPL_MAX);
        FUZZ_CHECK(m->n_segments <= REPL_SEGMENTS_MAX);
        if (m->type == REPL_SYNC) {
                FUZZ_CHECK(name_is_valid(m->name));
                FUZZ_CHECK(m->n_segments > 0 || m->index == 0);
                for (size_t i = 0; i < m->n_segments; i++) {
                        FUZZ_CHECK(m->segments[i].term >= 1 && m->segments[i].first >= 1);
                        FUZZ_CHECK(m->segments[i].first <= m->index);
                        if (i > 0)
                                FUZZ_CHECK(m->segments[i].term > m->segments[i - 1].term &&
                                           m->segments[i].first > m->segments[i - 1].first);
                }
        }
        if (m->type == REPL_ENTRY) {
                FUZZ_CHECK(m->index >= 1 && m->term >= 1);
                FUZZ_CHECK(!m->msgid || msgid_is_valid(m->msgid, m->msgid_len));
                FUZZ_CHECK(!m->msgid || m->payload_len > 0);
                FUZZ_CHECK(m->payload_len <= PAYLOAD_MAX);
                FUZZ_CHECK(!fuzz_mem_has(m->payload, m->payload_len, '\n'));
        }
}

static void check_roundtrip(const ReplMessage *m, const char *line) {
        Buf b1 = {}, b2 = {};
        const char *reason = NULL;
        ReplMessage again;
        int r;

        r = repl_message_format(m, &b1);
        if (r < 0) {
                fprintf(stderr, "parsed message does not format (%d): \"%s\"\n", r, line);
                FUZZ_CHECK(false);
        }
        FUZZ_CHECK(b1.len >= 2 && b1.data[b1.len - 1] == '\n' && !memchr(b1.data, '\n', b1.len - 1));
        b1.data[b1.len - 1] = '\0';

        r = repl_message_parse(b1.data, b1.len - 1, PAYLOAD_MAX, &again, &reason);
        if (r < 0) {
                fprintf(stderr, "formatted message does not parse (%s): \"%s\"\n", reason, b1.data);
                FUZZ_CHECK(false);
        }
        FUZZ_CHECK(repl_equal(m, &again));
        FUZZ_CHECK(repl_message_format(&again, &b2) >= 0);
        FUZZ_CHECK(b2.len == b1.len && memcmp(b1.data, b2.data, b1.len - 1) == 0);
        buf_done(&b1);
        buf_done(&b2);
}

/* ---- repl_match_index ----------------------------------------------------- */

/* Term of index k in the primary's log (segments with .last), 0 if none. */
static uint64_t primary_term_at(const LogSegment *p, size_t n, uint64_t k, uint64_t *ret_start) {
        for (size_t j = 0; j < n; j++)
                if (p[j].first <= k && k <= p[j].last) {
                        *ret_start = p[j].first;
                        return p[j].term;
                }
        return 0;
}

/* Same for the backup, whose segments run to the next one's first, the last to last_index. */
static uint64_t backup_term_at(const LogSegment *b, size_t n, uint64_t last_index, uint64_t k,
                               uint64_t *ret_start) {
        for (size_t i = 0; i < n; i++) {
                uint64_t end = i + 1 < n ? b[i + 1].first - 1 : last_index;

                if (b[i].first <= k && k <= end) {
                        *ret_start = b[i].first;
                        return b[i].term;
                }
        }
        return 0;
}

static bool agree_at(const LogSegment *p, size_t np, const LogSegment *b, size_t nb, uint64_t blast, uint64_t k) {
        uint64_t ps = 0, bs = 0, pt, bt;

        if (k == 0)
                return false;
        pt = primary_term_at(p, np, k, &ps);
        bt = backup_term_at(b, nb, blast, k, &bs);
        return pt != 0 && pt == bt && ps == bs;
}

/* The answer always sits at the end of a backup run or of a primary run. */
static uint64_t match_index_oracle(const LogSegment *p, size_t np, const LogSegment *b, size_t nb,
                                   uint64_t blast) {
        uint64_t best = 0;

        for (size_t i = 0; i < nb; i++) {
                uint64_t end = i + 1 < nb ? b[i + 1].first - 1 : blast;
                if (end > best && agree_at(p, np, b, nb, blast, end))
                        best = end;
        }
        for (size_t j = 0; j < np; j++)
                if (p[j].last > best && agree_at(p, np, b, nb, blast, p[j].last))
                        best = p[j].last;
        return best;
}

static void check_match(const LogSegment *p, size_t np, const LogSegment *b, size_t nb, uint64_t blast) {
        /* Exact-size heap copies: ASan reports any read past either array. */
        LogSegment *pc = malloc(sizeof(LogSegment) * (np ?: 1)), *bc = malloc(sizeof(LogSegment) * (nb ?: 1));
        uint64_t got, want;

        FUZZ_CHECK(pc && bc);
        if (np > 0)
                memcpy(pc, p, sizeof(LogSegment) * np);
        if (nb > 0)
                memcpy(bc, b, sizeof(LogSegment) * nb);
        got = repl_match_index(np > 0 ? pc : NULL, np, nb > 0 ? bc : NULL, nb, blast);
        want = match_index_oracle(p, np, b, nb, blast);
        if (got != want) {
                fprintf(stderr, "repl_match_index = %" PRIu64 ", expected %" PRIu64 "\n", got, want);
                for (size_t j = 0; j < np; j++)
                        fprintf(stderr, "  primary %" PRIu64 ":%" PRIu64 "-%" PRIu64 "\n", p[j].term,
                                p[j].first, p[j].last);
                for (size_t i = 0; i < nb; i++)
                        fprintf(stderr, "  backup %" PRIu64 ":%" PRIu64 "\n", b[i].term, b[i].first);
                fprintf(stderr, "  backup last %" PRIu64 "\n", blast);
        }
        FUZZ_CHECK(got == want);
        FUZZ_CHECK(got <= blast);
        free(pc);
        free(bc);
}

/* A primary's log as msglog_segments() gives it: from index 1, contiguous. */
static size_t derive_primary(FuzzInput *in, LogSegment *p) {
        size_t n = fuzz_byte(in) % (DERIVED_SEGMENTS_MAX + 1);
        uint64_t term = 0, first = 1;

        for (size_t j = 0; j < n; j++) {
                uint64_t len = 1 + fuzz_byte(in) % 8;

                term += 1 + fuzz_byte(in) % 3;
                p[j] = (LogSegment) { .term = term, .first = first, .last = first + len - 1 };
                first += len;
        }
        return n;
}

/* A backup's SYNC segments: often a prefix of the primary's, then its own. */
static size_t derive_backup(FuzzInput *in, const LogSegment *p, size_t np, LogSegment *b, uint64_t *ret_last) {
        size_t shared = np > 0 ? fuzz_byte(in) % (np + 1) : 0, n;
        uint64_t term = 0, first = 1 + fuzz_byte(in) % 3;

        for (n = 0; n < shared; n++) {
                b[n] = (LogSegment) { .term = p[n].term, .first = p[n].first };
                /* Sometimes a corrupt SYNC: same term, shifted start. */
                if (fuzz_byte(in) % 8 == 0)
                        b[n].first++;
                if (n > 0 && b[n].first <= b[n - 1].first)
                        break;
        }
        if (n > 0) {
                term = b[n - 1].term;
                first = b[n - 1].first;
        }
        for (size_t extra = fuzz_byte(in) % (DERIVED_SEGMENTS_MAX + 1 - n); extra > 0; extra--, n++) {
                term += 1 + fuzz_byte(in) % 3;
                if (n > 0)
                        first += 1 + fuzz_byte(in) % 8;
                b[n] = (LogSegment) { .term = term, .first = first };
        }
        *ret_last = n > 0 ? b[n - 1].first + fuzz_byte(in) % 10 : 0;
        return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *line = fuzz_strndup(data, size), *line_small = fuzz_strndup(data, size);
        LogSegment primary[DERIVED_SEGMENTS_MAX], backup[DERIVED_SEGMENTS_MAX];
        const char *reason = NULL;
        FuzzInput in = { data, size };
        ReplMessage m, small;
        size_t np, nb;
        uint64_t blast;
        int r, rs;

        r = repl_message_parse(line, size, PAYLOAD_MAX, &m, &reason);
        FUZZ_CHECK(size == 0 || memcmp(line, data, size) == 0);
        rs = repl_message_parse(line_small, size, PAYLOAD_SMALL, &small, NULL);
        if (r < 0) {
                FUZZ_CHECK(r == -EINVAL);
                FUZZ_CHECK(reason && *reason);
                FUZZ_CHECK(rs < 0);
        } else {
                FUZZ_CHECK(r == 0);
                check_parsed(&m);
                check_roundtrip(&m, line);
                /* A tighter payload limit refuses exactly the longer ENTRY payloads. */
                if (m.type == REPL_ENTRY && m.payload_len > PAYLOAD_SMALL)
                        FUZZ_CHECK(rs < 0);
                else
                        FUZZ_CHECK(rs == 0 && small.type == m.type && small.index == m.index &&
                                   small.payload_len == m.payload_len);
        }

        np = derive_primary(&in, primary);
        nb = derive_backup(&in, primary, np, backup, &blast);
        check_match(primary, np, backup, nb, blast);
        if (r == 0 && m.type == REPL_SYNC)
                check_match(primary, np, m.segments, m.n_segments, m.index);

        free(line);
        free(line_small);
        return 0;
}
