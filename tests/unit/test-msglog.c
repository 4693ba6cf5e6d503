/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-msglog — the message log: round trips, index/msgid rules, segments,
 * truncation, and recovery at open (torn tails cut at every byte, flipped
 * bits, zero tails, mid-log corruption refused without touching the file,
 * bad headers), a failed append rolled back, and a 100k-record re-open.
 */

#include "tests.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "crc32c.h"
#include "macro.h"
#include "msglog.h"
#include "util.h"

#define HDR 16      /* file header */
#define RHDR 32     /* record header */

DEFINE_CLEANUP(MsgLog, msglog_free);

/* ---- helpers ---------------------------------------------------------- */

static char *dirs[4096];
static size_t n_dirs;

static const char *tmpdir_new(void) {
        const char *base = getenv("TMPDIR");
        char *d;

        ASSERT_TRUE(asprintf(&d, "%s/test-msglog-XXXXXX", base && *base ? base : "/tmp") > 0);
        ASSERT_TRUE(mkdtemp(d) != NULL);
        ASSERT_TRUE(n_dirs < ELEMENTSOF(dirs));
        dirs[n_dirs++] = d;
        return d;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path) < 0 ? -1 : 0;
}

static void tmpdirs_cleanup(void) {
        for (size_t i = 0; i < n_dirs; i++) {
                (void) nftw(dirs[i], rm_one, 16, FTW_DEPTH | FTW_PHYS);
                free(dirs[i]);
        }
        n_dirs = 0;
}

/* In a forked child: the parent owns the directories. */
static void tmpdirs_forget(void) {
        for (size_t i = 0; i < n_dirs; i++)
                free(dirs[i]);
        n_dirs = 0;
}

static char *log_path(const char *dir) {
        char *p;
        ASSERT_TRUE(asprintf(&p, "%s/" MSGLOG_FILE, dir) > 0);
        return p;
}

static size_t read_all(const char *dir, uint8_t **ret) {
        _cleanup_(freep) char *p = log_path(dir);
        _cleanup_(closep) int fd = open(p, O_RDONLY | O_CLOEXEC);
        struct stat st;
        uint8_t *b;

        ASSERT_TRUE(fd >= 0);
        ASSERT_TRUE(fstat(fd, &st) == 0);
        b = malloc((size_t) st.st_size + 1);
        ASSERT_TRUE(b != NULL);
        ASSERT_EQ_INT(pread(fd, b, (size_t) st.st_size, 0), st.st_size);
        *ret = b;
        return (size_t) st.st_size;
}

static uint64_t file_size(const char *dir) {
        _cleanup_(freep) char *p = log_path(dir);
        struct stat st;

        ASSERT_TRUE(stat(p, &st) == 0);
        return (uint64_t) st.st_size;
}

/* A fresh directory whose message log holds exactly these bytes. */
static const char *dir_with(const void *data, size_t len) {
        const char *d = tmpdir_new();
        _cleanup_(freep) char *p = log_path(d);
        _cleanup_(closep) int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

        ASSERT_TRUE(fd >= 0);
        ASSERT_EQ_INT(write(fd, data, len), (ssize_t) len);
        return d;
}

static void append_n(MsgLog *l, uint64_t n, uint64_t term, const char *id_prefix) {
        for (uint64_t i = 0; i < n; i++) {
                uint64_t idx = msglog_last_index(l) + 1;
                char id[64], payload[64];
                int k = snprintf(payload, sizeof(payload), "payload %" PRIu64, idx);

                if (id_prefix) {
                        int m = snprintf(id, sizeof(id), "%s%" PRIu64, id_prefix, idx);
                        ASSERT_OK(msglog_append(l, idx, term, 0, id, (size_t) m, payload, (size_t) k));
                } else
                        ASSERT_OK(msglog_append(l, idx, term, 0, NULL, 0, payload, (size_t) k));
        }
}

static void check_record(MsgLog *l, uint64_t idx, uint64_t term, const char *msgid, const char *payload) {
        LogRecord r = {};

        ASSERT_OK(msglog_read(l, idx, &r));
        ASSERT_EQ_U64(r.index, idx);
        ASSERT_EQ_U64(r.term, term);
        ASSERT_STREQ(r.msgid, msgid);
        ASSERT_EQ_U64(r.msgid_len, strlen(msgid));
        ASSERT_STREQ(r.payload, payload);
        ASSERT_EQ_U64(r.payload_len, strlen(payload));
        log_record_done(&r);
        ASSERT_TRUE(r.payload == NULL);
}

static void check_payloads(MsgLog *l, uint64_t from, uint64_t to) {
        for (uint64_t i = from; i <= to; i++) {
                LogRecord r = {};
                char want[64];

                snprintf(want, sizeof(want), "payload %" PRIu64, i);
                ASSERT_OK(msglog_read(l, i, &r));
                ASSERT_STREQ(r.payload, want);
                log_record_done(&r);
        }
}

/* ---- tests ------------------------------------------------------------ */

TEST(round_trip) {
        const char *base = tmpdir_new();
        _cleanup_(freep) char *dir = NULL;
        _cleanup_(msglog_freep) MsgLog *l = NULL;
        MsgLogOpenInfo info;
        char *err = (char *) "unset";
        static const char bin[] = { 'a', 0, 'b' };
        LogRecord r = {};
        uint8_t *bytes;
        size_t n;

        /* The directory does not exist yet: open creates it and the file. */
        ASSERT_TRUE(asprintf(&dir, "%s/a/b", base) > 0);
        ASSERT_OK(msglog_open(dir, &l, &info, &err));
        ASSERT_TRUE(err == NULL);
        ASSERT_EQ_U64(info.records, 0);
        ASSERT_EQ_U64(info.cut_bytes, 0);
        ASSERT_EQ_U64(msglog_last_index(l), 0);
        ASSERT_EQ_U64(msglog_last_term(l), 0);
        ASSERT_EQ_U64(msglog_synced_index(l), 0);
        n = read_all(dir, &bytes);
        ASSERT_EQ_U64(n, HDR);
        ASSERT_TRUE(memcmp(bytes, "FUSIONLOG\0\0\0\1\0\0\0", HDR) == 0);
        free(bytes);

        ASSERT_OK(msglog_append(l, 1, 3, MSGLOG_FLAG_TERM_START, NULL, 0, NULL, 0));
        ASSERT_OK(msglog_append(l, 2, 3, 0, NULL, 0, "hello", 5));
        ASSERT_OK(msglog_append(l, 3, 3, 0, "id-3", 4, "with id", 7));
        ASSERT_OK(msglog_append(l, 4, 4, 0, "x", 1, bin, sizeof(bin)));
        /* Buffered: not in the file yet. */
        ASSERT_EQ_U64(file_size(dir), HDR);
        ASSERT_EQ_U64(msglog_written_index(l), 0);
        ASSERT_OK(msglog_flush(l));
        ASSERT_EQ_U64(file_size(dir), HDR + 4 * RHDR + 5 + 4 + 7 + 1 + 3);
        ASSERT_EQ_U64(msglog_written_index(l), 4);
        ASSERT_EQ_U64(msglog_last_index(l), 4);
        ASSERT_EQ_U64(msglog_last_term(l), 4);
        ASSERT_EQ_U64(msglog_synced_index(l), 0);
        ASSERT_OK(msglog_sync(l));
        ASSERT_EQ_U64(msglog_synced_index(l), 4);
        ASSERT_OK(msglog_sync(l));
        ASSERT_EQ_U64(msglog_synced_index(l), 4);

        for (int round = 0; round < 2; round++) {
                check_record(l, 2, 3, "", "hello");
                check_record(l, 3, 3, "id-3", "with id");
                ASSERT_OK(msglog_read(l, 1, &r));
                ASSERT_EQ_INT(r.flags, MSGLOG_FLAG_TERM_START);
                ASSERT_EQ_U64(r.payload_len, 0);
                ASSERT_STREQ(r.payload, "");
                ASSERT_STREQ(r.msgid, "");
                log_record_done(&r);
                ASSERT_OK(msglog_read(l, 4, &r));
                ASSERT_EQ_U64(r.payload_len, 3);
                ASSERT_TRUE(memcmp(r.payload, bin, 3) == 0 && r.payload[3] == 0);
                ASSERT_EQ_INT(r.flags, 0);
                log_record_done(&r);
                ASSERT_EQ_INT(msglog_read(l, 0, &r), -ENOENT);
                ASSERT_EQ_INT(msglog_read(l, 5, &r), -ENOENT);

                /* Re-open: same content, everything durable. */
                l = msglog_free(l);
                ASSERT_OK(msglog_open(dir, &l, &info, NULL));
                ASSERT_EQ_U64(info.records, 4);
                ASSERT_EQ_U64(info.cut_bytes, 0);
                ASSERT_EQ_U64(msglog_synced_index(l), 4);
                ASSERT_EQ_U64(msglog_last_term(l), 4);
        }
}

TEST(append_rules) {
        const char *dir = tmpdir_new();
        _cleanup_(msglog_freep) MsgLog *l = NULL;
        char long_id[66];
        uint64_t size, idx = 0;

        memset(long_id, 'a', sizeof(long_id));
        ASSERT_OK(msglog_open(dir, &l, NULL, NULL));
        /* A prefetch is only a hint: on an empty table, for no or an over-long id, it does nothing. */
        msglog_prefetch_msgid(l, "dup", 3);
        msglog_prefetch_msgid(l, NULL, 0);
        msglog_prefetch_msgid(l, long_id, 65);
        ASSERT_EQ_INT(msglog_find_msgid(l, "dup", 3, &idx), 0);
        ASSERT_EQ_INT(msglog_append(l, 0, 1, 0, NULL, 0, "x", 1), -EINVAL);
        ASSERT_EQ_INT(msglog_append(l, 2, 1, 0, NULL, 0, "x", 1), -EINVAL);
        ASSERT_OK(msglog_append(l, 1, 2, 0, "dup", 3, "x", 1));
        ASSERT_OK(msglog_flush(l));
        size = file_size(dir);

        msglog_prefetch_msgid(l, "dup", 3);
        ASSERT_EQ_INT(msglog_append(l, 2, 2, 0, "dup", 3, "y", 1), -EEXIST);
        ASSERT_EQ_INT(msglog_append(l, 1, 2, 0, NULL, 0, "y", 1), -EINVAL);      /* index already used */
        ASSERT_EQ_INT(msglog_append(l, 3, 2, 0, NULL, 0, "y", 1), -EINVAL);      /* gap */
        ASSERT_EQ_INT(msglog_append(l, 2, 0, 0, NULL, 0, "y", 1), -EINVAL);      /* term 0 */
        ASSERT_EQ_INT(msglog_append(l, 2, 1, 0, NULL, 0, "y", 1), -EINVAL);      /* term goes backwards */
        ASSERT_EQ_INT(msglog_append(l, 2, 2, 0x80, NULL, 0, "y", 1), -EINVAL);   /* unknown flag */
        ASSERT_EQ_INT(msglog_append(l, 2, 2, 0, "bad id", 6, "y", 1), -EINVAL);
        ASSERT_EQ_INT(msglog_append(l, 2, 2, 0, long_id, 65, "y", 1), -EINVAL);
        ASSERT_OK(msglog_flush(l));
        ASSERT_EQ_U64(file_size(dir), size);
        ASSERT_EQ_U64(msglog_last_index(l), 1);

        /* A 64-char msgid is the maximum and fine; a prefix of a stored id is another id. */
        ASSERT_OK(msglog_append(l, 2, 2, 0, long_id, 64, "y", 1));
        ASSERT_OK(msglog_append(l, 3, 2, 0, "du", 2, "z", 1));
        ASSERT_EQ_INT(msglog_find_msgid(l, long_id, 64, &idx), 1);
        ASSERT_EQ_U64(idx, 2);
        ASSERT_EQ_INT(msglog_find_msgid(l, long_id, 63, &idx), 0);
        ASSERT_EQ_INT(msglog_find_msgid(l, "d", 1, &idx), 0);
        ASSERT_EQ_INT(msglog_find_msgid(l, NULL, 0, &idx), 0);
        ASSERT_EQ_INT(msglog_term_at(l, 0, &idx), -ENOENT);
        ASSERT_EQ_INT(msglog_term_at(l, 4, &idx), -ENOENT);
        ASSERT_OK(msglog_term_at(l, 3, &idx));
        ASSERT_EQ_U64(idx, 2);

        /* The last term a record may carry is 2^64-2: 2^64-1 would have no next one. */
        ASSERT_EQ_INT(msglog_append(l, 4, UINT64_MAX, 0, NULL, 0, "y", 1), -EINVAL);
        ASSERT_OK(msglog_append(l, 4, MSGLOG_TERM_MAX, 0, NULL, 0, "y", 1));
        ASSERT_EQ_U64(msglog_last_term(l), UINT64_MAX - 1);
}

/* msgids against a model, through appends, truncations and re-opens. */
TEST(msgids) {
        const char *dir = tmpdir_new();
        _cleanup_(msglog_freep) MsgLog *l = NULL;
        static uint64_t where[20001];   /* id number -> index, 0 = absent */
        uint64_t next_id = 1, seed = 12345, idx;
        char id[32];

        ASSERT_OK(msglog_open(dir, &l, NULL, NULL));
        for (int round = 0; round < 30; round++) {
                uint64_t add, keep;

                seed = seed * 6364136223846793005ull + 1442695040888963407ull;
                add = (seed >> 33) % 600;
                for (uint64_t i = 0; i < add && next_id < ELEMENTSOF(where); i++) {
                        uint64_t n = msglog_last_index(l) + 1;
                        /* Re-use ids of removed records now and then. */
                        uint64_t num = (i % 7 == 3 && next_id > 50 && where[next_id - 50] == 0) ? next_id - 50
                                                                                                  : next_id++;
                        int m = snprintf(id, sizeof(id), "id:%" PRIu64, num);
                        ASSERT_TRUE(where[num] == 0);
                        ASSERT_OK(msglog_append(l, n, 1, 0, id, (size_t) m, "p", 1));
                        where[num] = n;
                }
                seed = seed * 6364136223846793005ull + 1442695040888963407ull;
                keep = msglog_last_index(l) - (seed >> 33) % (msglog_last_index(l) / 3 + 1);
                ASSERT_OK(msglog_truncate_after(l, keep));
                for (size_t k = 0; k < next_id; k++)
                        if (where[k] > keep)
                                where[k] = 0;
                if (round % 10 == 9) {
                        l = msglog_free(l);
                        ASSERT_OK(msglog_open(dir, &l, NULL, NULL));
                }
                for (uint64_t k = 1; k < next_id; k++) {
                        int m = snprintf(id, sizeof(id), "id:%" PRIu64, k);
                        idx = 0;
                        ASSERT_EQ_INT(msglog_find_msgid(l, id, (size_t) m, &idx), where[k] ? 1 : 0);
                        ASSERT_EQ_U64(idx, where[k]);
                }
        }
        ASSERT_TRUE(next_id > 1000);

        /* A big table (grown several times, so probe runs are no longer in
         * insertion order), emptied in uneven steps. */
        const uint64_t M = 40000;
        ASSERT_OK(msglog_truncate_after(l, 0));
        append_n(l, M, 1, "big:");
        for (uint64_t keep = M; keep > 0;) {
                keep = keep > 1733 ? keep - 1733 : 0;
                ASSERT_OK(msglog_truncate_after(l, keep));
                for (uint64_t k = 1; k <= M; k++) {
                        int m = snprintf(id, sizeof(id), "big:%" PRIu64, k);
                        idx = 0;
                        ASSERT_EQ_INT(msglog_find_msgid(l, id, (size_t) m, &idx), k <= keep ? 1 : 0);
                        ASSERT_EQ_U64(idx, k <= keep ? k : 0);
                }
        }
}

/* Every msgid hashes alike: each lookup walks one long probe run and compares
 * msgids read back from the write buffer, the file, or (at open) the mapped
 * file, since the table keeps only 24 bits of the hash beside each index. */
static void collisions_check(MsgLog *l, uint64_t present, uint64_t upto) {
        char id[32];
        uint64_t idx;

        for (uint64_t k = 1; k <= upto; k++) {
                int m = snprintf(id, sizeof(id), "c:%" PRIu64, k);
                idx = 0;
                ASSERT_EQ_INT(msglog_find_msgid(l, id, (size_t) m, &idx), k <= present ? 1 : 0);
                ASSERT_EQ_U64(idx, k <= present ? k : 0);
        }
}

TEST(msgid_hash_collisions) {
        const char *dir = tmpdir_new(), *da = tmpdir_new(), *db = tmpdir_new();
        _cleanup_(freep) uint8_t *a = NULL, *b = NULL;
        _cleanup_(freep) uint8_t *mixed = NULL;
        MsgLog *l = NULL;
        MsgLogOpenInfo info;
        size_t na, nb, rec;

        msglog_test_hash_collisions(true);
        ASSERT_OK(msglog_open(dir, &l, NULL, NULL));
        for (uint64_t k = 1; k <= 300; k++) {
                char id[32];
                int m = snprintf(id, sizeof(id), "c:%" PRIu64, k);
                ASSERT_OK(msglog_append(l, k, 1, 0, id, (size_t) m, "p", 1));
                if (k % 37 == 0)
                        ASSERT_OK(msglog_flush(l));   /* some in the file, some in the buffer */
        }
        ASSERT_TRUE(msglog_written_index(l) == 296);
        collisions_check(l, 300, 310);
        ASSERT_EQ_INT(msglog_find_msgid(l, "c:1x", 4, NULL), 0);      /* same length as c:10 */
        ASSERT_EQ_INT(msglog_append(l, 301, 1, 0, "c:5", 3, "p", 1), -EEXIST);     /* in the file */
        ASSERT_EQ_INT(msglog_append(l, 301, 1, 0, "c:299", 5, "p", 1), -EEXIST);   /* buffered */

        /* Truncation deletes from the middle of the one probe run. */
        ASSERT_OK(msglog_truncate_after(l, 150));
        collisions_check(l, 150, 310);
        ASSERT_OK(msglog_append(l, 151, 2, 0, "c:151", 5, "p", 1));
        collisions_check(l, 151, 310);

        /* Re-open: the scan compares in the mapped file. */
        l = msglog_free(l);
        ASSERT_OK(msglog_open(dir, &l, &info, NULL));
        ASSERT_EQ_U64(info.records, 151);
        ASSERT_EQ_U64(info.cut_bytes, 0);
        collisions_check(l, 151, 310);
        l = msglog_free(l);

        /* A record repeating an earlier msgid at open is a bad tail: A's record 1
         * ("c:1") followed by B's record 2 ("c:1" again, index 2, intact). */
        ASSERT_OK(msglog_open(da, &l, NULL, NULL));
        ASSERT_OK(msglog_append(l, 1, 1, 0, "c:1", 3, "p", 1));
        l = msglog_free(l);
        ASSERT_OK(msglog_open(db, &l, NULL, NULL));
        ASSERT_OK(msglog_append(l, 1, 1, 0, "c:2", 3, "p", 1));
        ASSERT_OK(msglog_append(l, 2, 1, 0, "c:1", 3, "p", 1));
        l = msglog_free(l);
        na = read_all(da, &a);
        nb = read_all(db, &b);
        rec = na - HDR;
        ASSERT_EQ_U64(nb, HDR + 2 * rec);
        mixed = malloc(na + rec);
        ASSERT_TRUE(mixed != NULL);
        memcpy(mixed, a, na);
        memcpy(mixed + na, b + HDR + rec, rec);
        ASSERT_OK(msglog_open(dir_with(mixed, na + rec), &l, &info, NULL));
        ASSERT_EQ_U64(info.records, 1);
        ASSERT_EQ_U64(info.cut_offset, na);
        ASSERT_STREQ(info.cut_reason, "duplicate msgid");
        l = msglog_free(l);

        msglog_test_hash_collisions(false);
        /* The same file without collisions: the same verdict from the real hash. */
        ASSERT_OK(msglog_open(dir_with(mixed, na + rec), &l, &info, NULL));
        ASSERT_EQ_U64(info.records, 1);
        ASSERT_STREQ(info.cut_reason, "duplicate msgid");
        l = msglog_free(l);
        tmpdirs_cleanup();
}

static void check_segments(MsgLog *l, const LogSegment *want, size_t n) {
        const LogSegment *s;

        ASSERT_EQ_U64(msglog_segments(l, &s), n);
        for (size_t i = 0; i < n; i++) {
                ASSERT_EQ_U64(s[i].term, want[i].term);
                ASSERT_EQ_U64(s[i].first, want[i].first);
                ASSERT_EQ_U64(s[i].last, want[i].last);
        }
}

TEST(segments_and_truncate) {
        const char *dir = tmpdir_new();
        _cleanup_(msglog_freep) MsgLog *l = NULL;
        uint64_t t, idx;

        ASSERT_OK(msglog_open(dir, &l, NULL, NULL));
        check_segments(l, NULL, 0);
        append_n(l, 3, 1, "a");
        append_n(l, 2, 2, "b");
        append_n(l, 3, 5, "c");
        check_segments(l, (LogSegment[]){ { 1, 1, 3 }, { 2, 4, 5 }, { 5, 6, 8 } }, 3);
        ASSERT_OK(msglog_term_at(l, 5, &t));
        ASSERT_EQ_U64(t, 2);
        ASSERT_OK(msglog_term_at(l, 6, &t));
        ASSERT_EQ_U64(t, 5);
        ASSERT_OK(msglog_sync(l));
        ASSERT_EQ_U64(msglog_synced_index(l), 8);

        ASSERT_OK(msglog_truncate_after(l, 8));   /* nothing to do */
        ASSERT_OK(msglog_truncate_after(l, 20));
        ASSERT_EQ_U64(msglog_last_index(l), 8);
        ASSERT_OK(msglog_truncate_after(l, 4));
        check_segments(l, (LogSegment[]){ { 1, 1, 3 }, { 2, 4, 4 } }, 2);
        ASSERT_EQ_U64(msglog_synced_index(l), 4);
        ASSERT_EQ_U64(msglog_last_term(l), 2);
        ASSERT_EQ_INT(msglog_find_msgid(l, "b5", 2, &idx), 0);
        ASSERT_EQ_INT(msglog_find_msgid(l, "c6", 2, &idx), 0);
        ASSERT_EQ_INT(msglog_find_msgid(l, "b4", 2, &idx), 1);
        ASSERT_EQ_U64(idx, 4);
        ASSERT_OK(msglog_truncate_after(l, 3));
        check_segments(l, (LogSegment[]){ { 1, 1, 3 } }, 1);
        ASSERT_OK(msglog_truncate_after(l, 2));
        check_segments(l, (LogSegment[]){ { 1, 1, 2 } }, 1);
        append_n(l, 2, 3, "d");
        check_segments(l, (LogSegment[]){ { 1, 1, 2 }, { 3, 3, 4 } }, 2);
        ASSERT_EQ_U64(msglog_synced_index(l), 2);
        check_payloads(l, 1, 4);

        l = msglog_free(l);
        ASSERT_OK(msglog_open(dir, &l, NULL, NULL));
        check_segments(l, (LogSegment[]){ { 1, 1, 2 }, { 3, 3, 4 } }, 2);
        check_payloads(l, 1, 4);
        ASSERT_EQ_INT(msglog_find_msgid(l, "d4", 2, &idx), 1);
        ASSERT_EQ_U64(idx, 4);

        /* Empty the log completely. */
        ASSERT_OK(msglog_truncate_after(l, 0));
        ASSERT_EQ_U64(msglog_last_index(l), 0);
        ASSERT_EQ_U64(msglog_last_term(l), 0);
        ASSERT_EQ_U64(msglog_synced_index(l), 0);
        check_segments(l, NULL, 0);
        ASSERT_EQ_U64(file_size(dir), HDR);
        ASSERT_EQ_INT(msglog_find_msgid(l, "a1", 2, &idx), 0);
        ASSERT_OK(msglog_append(l, 1, 1, 0, "a1", 2, "payload 1", 9));
        l = msglog_free(l);
        ASSERT_OK(msglog_open(dir, &l, NULL, NULL));
        ASSERT_EQ_U64(msglog_last_index(l), 1);
        check_payloads(l, 1, 1);
}

/* A log of n records; the last one has a msgid. Returns its directory and
 * the offset of the last record. */
static const char *make_log(uint64_t n, uint64_t *ret_last_off) {
        const char *dir = tmpdir_new();
        _cleanup_(msglog_freep) MsgLog *l = NULL;

        ASSERT_OK(msglog_open(dir, &l, NULL, NULL));
        append_n(l, n - 1, 1, NULL);
        ASSERT_OK(msglog_flush(l));
        *ret_last_off = file_size(dir);
        append_n(l, 1, 2, "last-");
        ASSERT_OK(msglog_sync(l));
        return dir;
}

/* Open a damaged copy and expect the tail from cut_off on to be cut. */
static void expect_cut(const char *dir, uint64_t records, uint64_t cut_off, uint64_t size) {
        _cleanup_(msglog_freep) MsgLog *l = NULL;
        _cleanup_(freep) char *id = NULL;
        MsgLogOpenInfo info;
        char *err = NULL;
        uint64_t idx;

        ASSERT_OK(msglog_open(dir, &l, &info, &err));
        ASSERT_TRUE(err == NULL);
        ASSERT_EQ_U64(info.records, records);
        ASSERT_EQ_U64(msglog_last_index(l), records);
        ASSERT_EQ_U64(info.cut_offset, cut_off);
        ASSERT_EQ_U64(info.cut_bytes, size - cut_off);
        ASSERT_TRUE(info.cut_reason != NULL);
        ASSERT_EQ_U64(file_size(dir), cut_off);
        check_payloads(l, 1, records);

        /* The cut record's msgid is gone; the index can be written again. */
        ASSERT_TRUE(asprintf(&id, "last-%" PRIu64, records + 1) > 0);
        ASSERT_EQ_INT(msglog_find_msgid(l, id, strlen(id), &idx), 0);
        ASSERT_OK(msglog_append(l, records + 1, 2, 0, id, strlen(id), "again", 5));
        ASSERT_OK(msglog_sync(l));
        l = msglog_free(l);
        ASSERT_OK(msglog_open(dir, &l, &info, NULL));
        ASSERT_EQ_U64(info.records, records + 1);
        ASSERT_EQ_U64(info.cut_bytes, 0);
        check_record(l, records + 1, 2, id, "again");
}

TEST(torn_tail_every_byte) {
        const uint64_t N = 6;
        uint64_t last_off, tested = 0;
        const char *dir = make_log(N, &last_off);
        _cleanup_(freep) uint8_t *bytes = NULL;
        size_t size = read_all(dir, &bytes);

        ASSERT_TRUE(size > last_off + RHDR);
        for (size_t cut = (size_t) last_off + 1; cut < size; cut++) {
                expect_cut(dir_with(bytes, cut), N - 1, last_off, cut);
                tested++;
        }
        ASSERT_EQ_U64(tested, size - last_off - 1);

        /* Cut exactly at the record boundary: a clean log of N-1 records. */
        _cleanup_(msglog_freep) MsgLog *l = NULL;
        MsgLogOpenInfo info;
        ASSERT_OK(msglog_open(dir_with(bytes, last_off), &l, &info, NULL));
        ASSERT_EQ_U64(info.records, N - 1);
        ASSERT_EQ_U64(info.cut_bytes, 0);
        tmpdirs_cleanup();
}

TEST(flipped_bits_in_last_record) {
        const uint64_t N = 5;
        uint64_t last_off;
        const char *dir = make_log(N, &last_off);
        _cleanup_(freep) uint8_t *bytes = NULL;
        size_t size = read_all(dir, &bytes);

        /* One bit in every byte of the last record: magic, crc, index, term,
         * lengths, flags, reserved, msgid, payload. */
        for (size_t pos = (size_t) last_off; pos < size; pos++) {
                bytes[pos] ^= (uint8_t) (1u << (pos % 8));
                expect_cut(dir_with(bytes, size), N - 1, last_off, size);
                bytes[pos] ^= (uint8_t) (1u << (pos % 8));
        }
        /* The high bit of payload_len: a length far past the end of file. */
        bytes[last_off + 27] ^= 0x01;
        expect_cut(dir_with(bytes, size), N - 1, last_off, size);
        tmpdirs_cleanup();
}

TEST(corruption_in_the_middle) {
        const uint64_t N = 5;
        uint64_t last_off;
        const char *dir = make_log(N, &last_off);
        _cleanup_(freep) uint8_t *bytes = NULL;
        size_t size = read_all(dir, &bytes);
        /* Record 3 (all records before the last have the same size). */
        size_t rec_len = (size_t) (last_off - HDR) / (N - 1), off3 = HDR + 2 * rec_len;
        size_t flips[] = { 0, 3, 4, 8, 16, 24, 26, 27, 28, 29, 30, rec_len - 1 };
        char want[64];

        snprintf(want, sizeof(want), "corrupt record at offset %zu (", off3);
        for (size_t i = 0; i < ELEMENTSOF(flips); i++) {
                size_t pos = off3 + flips[i];
                _cleanup_(msglog_freep) MsgLog *l = NULL;
                _cleanup_(freep) char *err = NULL, *path = NULL;
                _cleanup_(freep) uint8_t *after = NULL;
                const char *d;
                size_t n;

                bytes[pos] ^= (uint8_t) (1u << (i % 8));
                d = dir_with(bytes, size);
                path = log_path(d);
                ASSERT_EQ_INT(msglog_open(d, &l, NULL, &err), -EBADMSG);
                ASSERT_TRUE(l == NULL);
                ASSERT_TRUE(err != NULL);
                ASSERT_TRUE(strncmp(err, path, strlen(path)) == 0);
                ASSERT_TRUE(strstr(err, want) != NULL);
                ASSERT_TRUE(strstr(err, "followed by more data; refusing to open") != NULL);
                n = read_all(d, &after);
                ASSERT_EQ_U64(n, size);
                ASSERT_TRUE(memcmp(after, bytes, size) == 0);
                bytes[pos] ^= (uint8_t) (1u << (i % 8));
        }
        tmpdirs_cleanup();
}

/* Records with a good checksum that do not fit (a repeated record). */
TEST(misplaced_records) {
        const uint64_t N = 4;
        uint64_t last_off;
        const char *dir = make_log(N, &last_off);
        _cleanup_(freep) uint8_t *bytes = NULL;
        size_t size = read_all(dir, &bytes), rec = size - (size_t) last_off;
        _cleanup_(freep) uint8_t *twice = malloc(size + 2 * rec);
        _cleanup_(msglog_freep) MsgLog *l = NULL;
        char *err = NULL;

        ASSERT_TRUE(twice != NULL);
        memcpy(twice, bytes, size);
        memcpy(twice + size, bytes + last_off, rec);
        memcpy(twice + size + rec, bytes + last_off, rec);

        /* At the end: cut. */
        {
                _cleanup_(msglog_freep) MsgLog *m = NULL;
                MsgLogOpenInfo info;
                ASSERT_OK(msglog_open(dir_with(twice, size + rec), &m, &info, NULL));
                ASSERT_EQ_U64(info.records, N);
                ASSERT_EQ_U64(info.cut_offset, size);
                ASSERT_STREQ(info.cut_reason, "unexpected index");
        }
        /* Followed by another intact record: refuse. */
        ASSERT_EQ_INT(msglog_open(dir_with(twice, size + 2 * rec), &l, NULL, &err), -EBADMSG);
        ASSERT_TRUE(strstr(err, "(unexpected index)") != NULL);
        free(err);
        tmpdirs_cleanup();
}

/* Set the term of the record at off and fix its checksum (an intact record, wrong term). */
static void set_term(uint8_t *bytes, uint64_t off, uint64_t term) {
        uint64_t le_term = htole64(term);
        uint32_t payload_len, crc;

        memcpy(bytes + off + 16, &le_term, sizeof(le_term));
        memcpy(&payload_len, bytes + off + 24, sizeof(payload_len));
        crc = htole32(crc32c(0, bytes + off + 8, RHDR - 8 + bytes[off + 28] + le32toh(payload_len)));
        memcpy(bytes + off + 4, &crc, sizeof(crc));
}

/* An intact record claiming term 2^64-1: cut at the end, refused before another record. */
TEST(term_out_of_range) {
        const uint64_t N = 4;
        uint64_t last_off, prev_off;
        const char *dir = make_log(N, &last_off);
        _cleanup_(freep) uint8_t *bytes = NULL, *same = NULL;
        size_t size = read_all(dir, &bytes);
        _cleanup_(msglog_freep) MsgLog *l = NULL;
        MsgLogOpenInfo info;
        char *err = NULL;

        /* set_term() writes what msglog writes: the last record (term 2) re-set to 2 is unchanged. */
        same = malloc(size);
        ASSERT_TRUE(same != NULL);
        memcpy(same, bytes, size);
        set_term(same, last_off, 2);
        ASSERT_EQ_INT(memcmp(same, bytes, size), 0);

        /* At the end: cut like a torn tail, the reason named. */
        set_term(same, last_off, UINT64_MAX);
        {
                _cleanup_(msglog_freep) MsgLog *m = NULL;
                ASSERT_OK(msglog_open(dir_with(same, size), &m, &info, NULL));
                ASSERT_EQ_U64(info.records, N - 1);
                ASSERT_EQ_U64(info.cut_offset, last_off);
                ASSERT_STREQ(info.cut_reason, "term out of range");
        }
        /* 2^64-2 is a term like any other. */
        set_term(same, last_off, MSGLOG_TERM_MAX);
        {
                _cleanup_(msglog_freep) MsgLog *m = NULL;
                ASSERT_OK(msglog_open(dir_with(same, size), &m, &info, NULL));
                ASSERT_EQ_U64(info.records, N);
                ASSERT_EQ_U64(info.cut_bytes, 0);
                ASSERT_EQ_U64(msglog_last_term(m), MSGLOG_TERM_MAX);
        }
        /* Before another intact record: refused, nothing cut. */
        memcpy(same, bytes, size);
        prev_off = last_off - (last_off - 16) / (N - 1);   /* the N-1 records before are of one size */
        set_term(same, prev_off, UINT64_MAX);
        ASSERT_EQ_INT(msglog_open(dir_with(same, size), &l, NULL, &err), -EBADMSG);
        ASSERT_TRUE(strstr(err, "(term out of range)") != NULL);
        free(err);
        tmpdirs_cleanup();
}

TEST(zero_and_short_tails) {
        const uint64_t N = 3;
        uint64_t last_off;
        const char *dir = make_log(N, &last_off);
        _cleanup_(freep) uint8_t *bytes = NULL;
        size_t size = read_all(dir, &bytes);
        _cleanup_(freep) uint8_t *big = calloc(1, size + 8192);
        _cleanup_(msglog_freep) MsgLog *l = NULL;
        MsgLogOpenInfo info;
        const char *d;

        ASSERT_TRUE(big != NULL);
        memcpy(big, bytes, size);
        /* Zeros after the last record, as a file system may leave after a crash. */
        d = dir_with(big, size + 8192);
        ASSERT_OK(msglog_open(d, &l, &info, NULL));
        ASSERT_EQ_U64(info.records, N);
        ASSERT_EQ_U64(info.cut_offset, size);
        ASSERT_EQ_U64(info.cut_bytes, 8192);
        ASSERT_STREQ(info.cut_reason, "bad magic");
        ASSERT_EQ_U64(file_size(d), size);
        l = msglog_free(l);

        /* A few stray bytes, fewer than a record header. */
        memcpy(big + size, "FUSR\1\2", 6);
        d = dir_with(big, size + 6);
        ASSERT_OK(msglog_open(d, &l, &info, NULL));
        ASSERT_EQ_U64(info.records, N);
        ASSERT_EQ_U64(info.cut_bytes, 6);
        ASSERT_STREQ(info.cut_reason, "incomplete record header");
        tmpdirs_cleanup();
}

TEST(file_headers) {
        static const uint8_t header[HDR] = "FUSIONLOG\0\0\0\1\0\0";
        _cleanup_(msglog_freep) MsgLog *l = NULL;
        MsgLogOpenInfo info;
        uint8_t garbage[200];
        char *err = NULL;
        const char *d;
        uint8_t *b;

        /* Empty file: the header is written. */
        d = dir_with("", 0);
        ASSERT_OK(msglog_open(d, &l, &info, &err));
        ASSERT_EQ_U64(info.records, 0);
        ASSERT_EQ_U64(info.cut_bytes, 0);
        ASSERT_EQ_U64(read_all(d, &b), HDR);
        ASSERT_TRUE(memcmp(b, header, HDR) == 0);
        free(b);
        ASSERT_OK(msglog_append(l, 1, 1, 0, NULL, 0, "payload 1", 9));
        l = msglog_free(l);

        /* A torn header (every proper prefix): rewritten. */
        for (size_t n = 1; n < HDR; n++) {
                d = dir_with(header, n);
                ASSERT_OK(msglog_open(d, &l, &info, NULL));
                ASSERT_EQ_U64(info.records, 0);
                ASSERT_EQ_U64(info.cut_bytes, n);
                ASSERT_EQ_U64(file_size(d), HDR);
                l = msglog_free(l);
        }

        /* Garbage, short or long, and a wrong version: refused, untouched. */
        for (size_t i = 0; i < sizeof(garbage); i++)
                garbage[i] = (uint8_t) (i * 37 + 11);
        const struct {
                const void *data;
                size_t len;
                const char *what;
        } bad[] = {
                { "hello", 5, "bad file header" },
                { garbage, sizeof(garbage), "bad file header" },
                { garbage, 16, "bad file header" },
                { "FUSIONLOG\0\0\0\2\0\0\0", HDR, "version 2" },
                { "FUSIONLOG\0\0\0\1\0\0\0x", HDR + 1, NULL },   /* header fine, 1 byte tail: cut */
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_(freep) char *path = NULL;
                _cleanup_(freep) uint8_t *after = NULL;

                d = dir_with(bad[i].data, bad[i].len);
                path = log_path(d);
                err = NULL;
                if (!bad[i].what) {
                        ASSERT_OK(msglog_open(d, &l, &info, &err));
                        ASSERT_EQ_U64(info.cut_bytes, 1);
                        l = msglog_free(l);
                        continue;
                }
                ASSERT_EQ_INT(msglog_open(d, &l, &info, &err), -EBADMSG);
                ASSERT_TRUE(err && strncmp(err, path, strlen(path)) == 0);
                ASSERT_TRUE(strstr(err, bad[i].what) != NULL);
                free(err);
                ASSERT_EQ_U64(read_all(d, &after), bad[i].len);
                ASSERT_TRUE(memcmp(after, bad[i].data, bad[i].len) == 0);
        }
        tmpdirs_cleanup();
}

/* msglog_read checks the checksum again: damage under a live log is seen. */
TEST(read_verifies) {
        const char *dir = tmpdir_new();
        _cleanup_(msglog_freep) MsgLog *l = NULL;
        _cleanup_(freep) char *path = log_path(dir);
        _cleanup_(closep) int fd = -1;
        LogRecord r = {};
        uint64_t off2;

        ASSERT_OK(msglog_open(dir, &l, NULL, NULL));
        append_n(l, 1, 1, NULL);
        ASSERT_OK(msglog_flush(l));
        off2 = file_size(dir);
        append_n(l, 2, 1, NULL);
        ASSERT_OK(msglog_flush(l));
        fd = open(path, O_RDWR | O_CLOEXEC);
        ASSERT_TRUE(fd >= 0);
        ASSERT_EQ_INT(pwrite(fd, "X", 1, (off_t) off2 + RHDR), 1);
        ASSERT_EQ_INT(msglog_read(l, 2, &r), -EBADMSG);
        ASSERT_TRUE(r.payload == NULL);
        check_payloads(l, 1, 1);
        check_payloads(l, 3, 3);
}

/* An append that fails half-way leaves no torn record behind. */
TEST(failed_append_rolls_back) {
        const char *dir = tmpdir_new();
        _cleanup_(freep) char *big = malloc(100000);
        pid_t pid;
        int status;

        ASSERT_TRUE(big != NULL);
        memset(big, 'q', 100000);
        pid = fork();
        ASSERT_TRUE(pid >= 0);
        if (pid == 0) {
                MsgLog *l = NULL;
                struct rlimit rl;
                uint64_t size;
                int r;

                ASSERT_OK(msglog_open(dir, &l, NULL, NULL));
                append_n(l, 3, 1, "k");
                ASSERT_OK(msglog_flush(l));
                size = file_size(dir);
                /* Writes past size + 1000 fail with EFBIG (SIGXFSZ ignored). */
                signal(SIGXFSZ, SIG_IGN);
                ASSERT_TRUE(getrlimit(RLIMIT_FSIZE, &rl) == 0);
                rl.rlim_cur = size + 1000;
                ASSERT_TRUE(setrlimit(RLIMIT_FSIZE, &rl) == 0);
                r = msglog_append(l, 4, 1, 0, "big", 3, big, 100000);
                ASSERT_EQ_INT(r, -EFBIG);
                ASSERT_EQ_U64(file_size(dir), size);
                ASSERT_EQ_U64(msglog_last_index(l), 3);
                ASSERT_EQ_INT(msglog_find_msgid(l, "big", 3, NULL), 0);
                /* A small record still fits and goes where the big one failed. */
                ASSERT_OK(msglog_append(l, 4, 1, 0, "big", 3, "payload 4", 9));
                ASSERT_OK(msglog_sync(l));
                msglog_free(l);
                free(TAKE_PTR(big));
                tmpdirs_forget();
                _exit(0);
        }
        ASSERT_EQ_INT(waitpid(pid, &status, 0), pid);
        ASSERT_TRUE(WIFEXITED(status));
        ASSERT_EQ_INT(WEXITSTATUS(status), 0);

        _cleanup_(msglog_freep) MsgLog *l = NULL;
        MsgLogOpenInfo info;
        ASSERT_OK(msglog_open(dir, &l, &info, NULL));
        ASSERT_EQ_U64(info.records, 4);
        ASSERT_EQ_U64(info.cut_bytes, 0);
        check_payloads(l, 1, 4);
}

/* Records in the write buffer are read from it, flushed in one piece, cut by
 * truncate_after like written ones; big records bypass the buffer, and a full
 * buffer is written out before it grows past its cap. */
TEST(write_buffer) {
        const char *dir = tmpdir_new();
        _cleanup_(msglog_freep) MsgLog *l = NULL;
        _cleanup_(freep) char *big = malloc(70000);
        char chunk[1000];
        MsgLogOpenInfo info;
        uint64_t size, idx;

        ASSERT_TRUE(big != NULL);
        ASSERT_OK(msglog_open(dir, &l, NULL, NULL));
        append_n(l, 3, 1, "w");
        ASSERT_OK(msglog_flush(l));
        size = file_size(dir);
        ASSERT_EQ_U64(size, HDR + 3 * (RHDR + 2 + 9));      /* "wN", "payload N" */
        append_n(l, 4, 1, "w");                       /* 4..7 buffered */
        ASSERT_EQ_U64(file_size(dir), size);
        ASSERT_EQ_U64(msglog_written_index(l), 3);
        check_payloads(l, 1, 7);                      /* 1..3 from the file, 4..7 from the buffer */
        ASSERT_EQ_INT(msglog_find_msgid(l, "w6", 2, &idx), 1);
        ASSERT_EQ_U64(idx, 6);
        ASSERT_EQ_INT(msglog_append(l, 8, 1, 0, "w5", 2, "x", 1), -EEXIST);   /* buffered ids count */

        /* Cut inside the buffer, then inside the file. */
        ASSERT_OK(msglog_truncate_after(l, 5));
        ASSERT_EQ_U64(msglog_last_index(l), 5);
        ASSERT_EQ_U64(msglog_written_index(l), 5);
        ASSERT_EQ_U64(msglog_synced_index(l), 5);
        ASSERT_EQ_INT(msglog_find_msgid(l, "w6", 2, &idx), 0);
        append_n(l, 2, 2, "v");                       /* 6..7 in term 2, buffered */
        ASSERT_OK(msglog_truncate_after(l, 2));
        ASSERT_EQ_U64(file_size(dir), HDR + 2 * (RHDR + 2 + 9));
        ASSERT_EQ_U64(msglog_written_index(l), 2);
        check_payloads(l, 1, 2);
        ASSERT_EQ_INT(msglog_read(l, 3, &(LogRecord){}), -ENOENT);

        /* A record of 64 KiB or more goes to the file at once, after what was buffered. */
        append_n(l, 1, 2, NULL);                      /* 3 buffered */
        memset(big, 'b', 70000);
        ASSERT_OK(msglog_append(l, 4, 2, 0, "big", 3, big, 70000));
        ASSERT_EQ_U64(msglog_written_index(l), 4);
        ASSERT_EQ_U64(file_size(dir), HDR + 2 * (RHDR + 2 + 9) + RHDR + 9 + RHDR + 3 + 70000);

        /* Many small records: the buffer is written whenever the next one would take it past 256 KiB. */
        memset(chunk, 'c', sizeof(chunk));
        for (uint64_t i = 5; i < 5 + 600; i++)
                ASSERT_OK(msglog_append(l, i, 2, 0, NULL, 0, chunk, sizeof(chunk)));
        ASSERT_TRUE(msglog_written_index(l) > 4);
        ASSERT_TRUE(msglog_written_index(l) < 604);
        ASSERT_EQ_U64(file_size(dir), HDR + 2 * (RHDR + 2 + 9) + RHDR + 9 + RHDR + 3 + 70000 +
                                              (msglog_written_index(l) - 4) * (RHDR + 1000));
        ASSERT_TRUE(msglog_written_index(l) - 4 >= 256 * 1024 / (RHDR + 1000) - 1);

        /* Freeing the log writes what is still buffered. */
        l = msglog_free(l);
        ASSERT_OK(msglog_open(dir, &l, &info, NULL));
        ASSERT_EQ_U64(info.records, 604);
        ASSERT_EQ_U64(info.cut_bytes, 0);
        check_payloads(l, 1, 3);
        tmpdirs_cleanup();
}

/* msglog_read_buffered(): records in the write buffer are lent, not copied;
 * written ones are read from the file like msglog_read(). */
TEST(read_buffered) {
        const char *dir = tmpdir_new();
        _cleanup_(msglog_freep) MsgLog *l = NULL;
        char chunk[4000];
        LogRecord rec = {};
        uint64_t i;

        ASSERT_OK(msglog_open(dir, &l, NULL, NULL));
        ASSERT_TRUE(!msglog_append_flushes(l, 10, 1000000));   /* nothing buffered: nothing to write out */
        append_n(l, 2, 1, "r");
        ASSERT_OK(msglog_flush(l));
        append_n(l, 2, 1, "r");                               /* 1..2 in the file, 3..4 buffered */

        ASSERT_OK(msglog_read_buffered(l, 2, &rec));
        ASSERT_TRUE(!rec.borrowed);
        ASSERT_EQ_U64(rec.payload_len, 9);
        ASSERT_TRUE(memcmp(rec.payload, "payload 2", 9) == 0);
        ASSERT_STREQ(rec.msgid, "r2");
        log_record_done(&rec);

        ASSERT_OK(msglog_read_buffered(l, 4, &rec));
        ASSERT_TRUE(rec.borrowed);
        ASSERT_EQ_U64(rec.index, 4);
        ASSERT_EQ_U64(rec.term, 1);
        ASSERT_EQ_U64(rec.payload_len, 9);
        ASSERT_TRUE(memcmp(rec.payload, "payload 4", 9) == 0);
        ASSERT_STREQ(rec.msgid, "r4");
        log_record_done(&rec);
        ASSERT_TRUE(rec.payload == NULL && !rec.borrowed);
        ASSERT_EQ_INT(msglog_read_buffered(l, 5, &rec), -ENOENT);
        ASSERT_EQ_INT(msglog_read_buffered(l, 0, &rec), -ENOENT);

        /* A term-start record (no msgid, empty payload) from the buffer. */
        ASSERT_OK(msglog_append(l, 5, 2, MSGLOG_FLAG_TERM_START, NULL, 0, "", 0));
        ASSERT_OK(msglog_read_buffered(l, 5, &rec));
        ASSERT_TRUE(rec.borrowed);
        ASSERT_EQ_U64(rec.flags, MSGLOG_FLAG_TERM_START);
        ASSERT_EQ_U64(rec.payload_len, 0);
        ASSERT_STREQ(rec.msgid, "");
        log_record_done(&rec);

        /* msglog_append_flushes() says exactly when the next append writes the buffer out. */
        memset(chunk, 'c', sizeof(chunk));
        for (i = 6; i < 6 + 200; i++) {
                uint64_t written = msglog_written_index(l);
                bool flushes = msglog_append_flushes(l, 0, sizeof(chunk));

                ASSERT_OK(msglog_append(l, i, 2, 0, NULL, 0, chunk, sizeof(chunk)));
                ASSERT_EQ_INT(msglog_written_index(l) > written, flushes);
                ASSERT_OK(msglog_read_buffered(l, i, &rec));
                ASSERT_TRUE(rec.borrowed);
                ASSERT_EQ_U64(rec.payload_len, sizeof(chunk));
                ASSERT_TRUE(memcmp(rec.payload, chunk, sizeof(chunk)) == 0);
                log_record_done(&rec);
        }
        ASSERT_TRUE(msglog_written_index(l) > 5);
        ASSERT_TRUE(msglog_append_flushes(l, 0, 70000));     /* large records go straight to the file */
        check_payloads(l, 1, 4);
        tmpdirs_cleanup();
}

/* A failed write of the buffer is cut back and sticky: nothing more is accepted. */
TEST(failed_flush_is_sticky) {
        const char *dir = tmpdir_new();
        pid_t pid;
        int status;

        pid = fork();
        ASSERT_TRUE(pid >= 0);
        if (pid == 0) {
                MsgLog *l = NULL;
                struct rlimit rl;
                uint64_t size;

                ASSERT_OK(msglog_open(dir, &l, NULL, NULL));
                append_n(l, 3, 1, "k");
                ASSERT_OK(msglog_sync(l));
                size = file_size(dir);
                signal(SIGXFSZ, SIG_IGN);
                ASSERT_TRUE(getrlimit(RLIMIT_FSIZE, &rl) == 0);
                rl.rlim_cur = size + 60;
                ASSERT_TRUE(setrlimit(RLIMIT_FSIZE, &rl) == 0);
                append_n(l, 4, 1, "k");                 /* buffered: fine for now */
                check_payloads(l, 4, 7);
                ASSERT_EQ_INT(msglog_flush(l), -EFBIG);
                ASSERT_EQ_U64(file_size(dir), size);   /* the partial write was cut off */
                ASSERT_EQ_U64(msglog_written_index(l), 3);
                ASSERT_EQ_INT(msglog_append(l, 8, 1, 0, NULL, 0, "x", 1), -EFBIG);
                ASSERT_EQ_INT(msglog_sync(l), -EFBIG);
                ASSERT_EQ_U64(msglog_synced_index(l), 3);
                ASSERT_EQ_INT(msglog_truncate_after(l, 1), -EFBIG);
                msglog_free(l);
                ASSERT_EQ_U64(file_size(dir), size);
                tmpdirs_forget();
                _exit(0);
        }
        ASSERT_EQ_INT(waitpid(pid, &status, 0), pid);
        ASSERT_TRUE(WIFEXITED(status));
        ASSERT_EQ_INT(WEXITSTATUS(status), 0);

        _cleanup_(msglog_freep) MsgLog *l = NULL;
        MsgLogOpenInfo info;
        ASSERT_OK(msglog_open(dir, &l, &info, NULL));
        ASSERT_EQ_U64(info.records, 3);
        ASSERT_EQ_U64(info.cut_bytes, 0);
        check_payloads(l, 1, 3);
}

static double now_s(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

TEST(hundred_thousand) {
        const uint64_t N = 100000;
        const char *dir = tmpdir_new();
        _cleanup_(msglog_freep) MsgLog *l = NULL;
        MsgLogOpenInfo info;
        char id[32], payload[128];
        uint64_t seed = 42, idx;
        double t0, t1, t2;

        ASSERT_OK(msglog_open(dir, &l, NULL, NULL));
        t0 = now_s();
        for (uint64_t i = 1; i <= N; i++) {
                int k = snprintf(payload, sizeof(payload), "message number %" PRIu64 " with some text", i);
                int m = snprintf(id, sizeof(id), "msg-%" PRIu64, i);
                /* Every other record has a msgid. */
                ASSERT_OK(msglog_append(l, i, 1 + i / 30000, 0, i % 2 ? id : NULL, i % 2 ? (size_t) m : 0,
                                        payload, (size_t) k));
        }
        ASSERT_OK(msglog_sync(l));
        t1 = now_s();
        l = msglog_free(l);

        ASSERT_OK(msglog_open(dir, &l, &info, NULL));
        t2 = now_s();
        fprintf(stderr, "appended %" PRIu64 " records in %.3f s; re-opened %" PRIu64 " bytes in %.3f s\n", N,
                t1 - t0, file_size(dir), t2 - t1);
        ASSERT_EQ_U64(info.records, N);
        ASSERT_EQ_U64(info.cut_bytes, 0);
        ASSERT_EQ_U64(msglog_last_index(l), N);
        ASSERT_EQ_U64(msglog_last_term(l), 1 + N / 30000);
        ASSERT_EQ_U64(msglog_segments(l, &(const LogSegment *){ NULL }), 1 + N / 30000);

        for (int j = 0; j < 50; j++) {
                LogRecord r = {};
                uint64_t i;

                seed = seed * 6364136223846793005ull + 1442695040888963407ull;
                i = 1 + (seed >> 33) % N;
                snprintf(payload, sizeof(payload), "message number %" PRIu64 " with some text", i);
                snprintf(id, sizeof(id), "msg-%" PRIu64, i);
                ASSERT_OK(msglog_read(l, i, &r));
                ASSERT_EQ_U64(r.index, i);
                ASSERT_EQ_U64(r.term, 1 + i / 30000);
                ASSERT_STREQ(r.payload, payload);
                ASSERT_STREQ(r.msgid, i % 2 ? id : "");
                log_record_done(&r);

                ASSERT_EQ_INT(msglog_find_msgid(l, id, strlen(id), &idx), i % 2 ? 1 : 0);
                if (i % 2)
                        ASSERT_EQ_U64(idx, i);
        }
        ASSERT_EQ_INT(msglog_find_msgid(l, "msg-99999", 9, &idx), 1);
        ASSERT_EQ_U64(idx, 99999);
        ASSERT_EQ_INT(msglog_find_msgid(l, "msg-100000", 10, &idx), 0);
        ASSERT_EQ_INT(msglog_find_msgid(l, "msg-100001", 10, &idx), 0);
        tmpdirs_cleanup();
}

int main(void) {
        RUN(round_trip);
        RUN(append_rules);
        RUN(msgids);
        RUN(msgid_hash_collisions);
        RUN(segments_and_truncate);
        RUN(torn_tail_every_byte);
        RUN(flipped_bits_in_last_record);
        RUN(corruption_in_the_middle);
        RUN(misplaced_records);
        RUN(term_out_of_range);
        RUN(zero_and_short_tails);
        RUN(file_headers);
        RUN(read_verifies);
        RUN(failed_append_rolls_back);
        RUN(write_buffer);
        RUN(read_buffered);
        RUN(failed_flush_is_sticky);
        RUN(hundred_thousand);
        tmpdirs_cleanup();
        return 0;
}
