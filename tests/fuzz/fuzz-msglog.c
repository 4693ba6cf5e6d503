/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-msglog — msglog_open() on arbitrary files. Input byte 0 decides (bit
 * 0) whether the valid 16-byte file header is written before the remaining
 * bytes, which become <tmpdir>/messages.log, and (bit 3) whether the
 * checksums of the records are fixed up first: mutations rarely keep a CRC-32C
 * right, and without this the fuzzer would never get past the checksum to
 * the checks on indexes, terms, msgids and flags. Bits 1 and 2 shape the
 * record appended later. Then:
 *   - a refused file must be left exactly as it was, with a message naming it;
 *   - an opened one must have had only a tail cut, and every record it kept
 *     must read back with dense indexes, non-decreasing terms, its msgid found
 *     by msglog_find_msgid() at its own index, and segments that describe
 *     the same terms;
 *   - appending one record must work, and re-opening must keep everything
 *     with nothing further cut.
 * The directory is made once per process (under /dev/shm when possible, so
 * the fsyncs are cheap) and emptied between inputs.
 */

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "fuzz.h"
#include "msglog.h"
#include "util.h"

#define HEADER_SIZE 16
#define REC_HEADER_SIZE 32

static char dir[256];
static char path[300];

static void cleanup_dir(void) {
        if (path[0])
                (void) unlink(path);
        if (dir[0])
                (void) rmdir(dir);
}

static void setup_dir(void) {
        const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : (getenv("TMPDIR") ?: "/tmp");

        if (dir[0])
                return;
        FUZZ_CHECK(snprintf(dir, sizeof dir, "%s/fuzz-msglog-XXXXXX", base) < (int) sizeof dir);
        FUZZ_CHECK(mkdtemp(dir));
        snprintf(path, sizeof path, "%s/%s", dir, MSGLOG_FILE);
        atexit(cleanup_dir);
}

static void write_all(int fd, const void *p, size_t n) {
        while (n > 0) {
                ssize_t k = write(fd, p, n);
                FUZZ_CHECK(k > 0);
                p = (const uint8_t *) p + k;
                n -= (size_t) k;
        }
}

static size_t file_size(void) {
        struct stat st;

        FUZZ_CHECK(stat(path, &st) == 0);
        return (size_t) st.st_size;
}

static bool file_equals(const uint8_t *want, size_t n) {
        uint8_t *have = malloc(n ?: 1);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t k;
        bool same;

        FUZZ_CHECK(have && fd >= 0);
        k = n > 0 ? pread(fd, have, n, 0) : 0;
        same = k == (ssize_t) n && file_size() == n && (n == 0 || memcmp(have, want, n) == 0);
        close(fd);
        free(have);
        return same;
}

/* Walk the records from the file header on and give each a correct crc. */
static void fix_checksums(uint8_t *p, size_t n) {
        size_t off = HEADER_SIZE;

        while (n - off >= REC_HEADER_SIZE && memcmp(p + off, "FUSR", 4) == 0) {
                uint32_t payload_len = (uint32_t) p[off + 24] | (uint32_t) p[off + 25] << 8 |
                                       (uint32_t) p[off + 26] << 16 | (uint32_t) p[off + 27] << 24;
                size_t body = (size_t) p[off + 28] + payload_len, crc_len = REC_HEADER_SIZE - 8 + body;
                uint32_t crc;

                if (body > n - off - REC_HEADER_SIZE)
                        return;
                crc = crc32c(0, p + off + 8, crc_len);
                for (int i = 0; i < 4; i++)
                        p[off + 4 + i] = (uint8_t) (crc >> (8 * i));
                off += REC_HEADER_SIZE + body;
        }
}

static bool file_starts_with(const uint8_t *want, size_t n) {
        uint8_t have[64];
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        bool same;

        FUZZ_CHECK(fd >= 0 && n <= sizeof have);
        same = pread(fd, have, n, 0) == (ssize_t) n && memcmp(have, want, n) == 0;
        close(fd);
        return same;
}

/* Everything the open log holds must read back consistently. */
static void check_log(MsgLog *l) {
        const LogSegment *seg;
        uint64_t last = msglog_last_index(l), prev_term = 0, t;
        size_t n_seg = msglog_segments(l, &seg), s = 0;

        FUZZ_CHECK(msglog_synced_index(l) == last);
        FUZZ_CHECK(msglog_term_at(l, 0, &t) == -ENOENT);
        FUZZ_CHECK(msglog_term_at(l, last + 1, &t) == -ENOENT);
        FUZZ_CHECK((n_seg == 0) == (last == 0));
        FUZZ_CHECK(n_seg == 0 || (seg[0].first == 1 && seg[n_seg - 1].last == last));
        FUZZ_CHECK(msglog_last_term(l) == (n_seg > 0 ? seg[n_seg - 1].term : 0));

        for (uint64_t i = 1; i <= last; i++) {
                LogRecord rec = {};
                uint64_t found = 0;

                FUZZ_CHECK(msglog_read(l, i, &rec) == 0);
                FUZZ_CHECK(rec.index == i);
                FUZZ_CHECK(msglog_term_at(l, i, &t) == 0 && t == rec.term);
                FUZZ_CHECK(rec.term >= 1 && rec.term >= prev_term);
                prev_term = rec.term;
                FUZZ_CHECK((rec.flags & ~MSGLOG_FLAG_TERM_START) == 0);
                FUZZ_CHECK(rec.payload && rec.payload[rec.payload_len] == '\0');
                FUZZ_CHECK(rec.msgid_len <= MSGID_MAX_LEN && rec.msgid[rec.msgid_len] == '\0');
                if (rec.msgid_len > 0) {
                        FUZZ_CHECK(msgid_is_valid(rec.msgid, rec.msgid_len));
                        FUZZ_CHECK(msglog_find_msgid(l, rec.msgid, rec.msgid_len, &found) == 1);
                        FUZZ_CHECK(found == i);
                }

                /* The segment holding i has i's term. */
                while (s < n_seg && seg[s].last < i)
                        s++;
                FUZZ_CHECK(s < n_seg && seg[s].first <= i && seg[s].term == rec.term);
                FUZZ_CHECK(s == 0 || seg[s].first == seg[s - 1].last + 1);
                FUZZ_CHECK(s == 0 || seg[s].term > seg[s - 1].term);
                log_record_done(&rec);
        }
        FUZZ_CHECK(msglog_read(l, last + 1, &(LogRecord) {}) == -ENOENT);
}

static void check_record(MsgLog *l, uint64_t index, uint64_t term, uint8_t flags, const char *msgid,
                         const uint8_t *payload, size_t payload_len) {
        LogRecord rec = {};

        FUZZ_CHECK(msglog_read(l, index, &rec) == 0);
        FUZZ_CHECK(rec.index == index && rec.term == term && rec.flags == flags);
        FUZZ_CHECK(strcmp(rec.msgid, msgid ?: "") == 0);
        FUZZ_CHECK(rec.payload_len == payload_len && memcmp(rec.payload, payload, payload_len) == 0);
        log_record_done(&rec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const uint8_t header[HEADER_SIZE] = { 'F', 'U', 'S', 'I', 'O', 'N', 'L', 'O', 'G', 0, 0, 0, 1, 0, 0, 0 };
        uint8_t *content;
        size_t content_len, body_len, expect_size;
        MsgLogOpenInfo info = {};
        const char *msgid;
        char *error = NULL;
        uint64_t last, term, found;
        uint8_t flags;
        MsgLog *l = NULL;
        bool with_header;
        int fd, r;

        setup_dir();
        (void) unlink(path);
        if (size == 0)
                return 0;

        with_header = data[0] & 1;
        body_len = size - 1;
        content_len = (with_header ? HEADER_SIZE : 0) + body_len;
        content = malloc(content_len ?: 1);
        FUZZ_CHECK(content);
        if (with_header)
                memcpy(content, header, HEADER_SIZE);
        if (body_len > 0)
                memcpy(content + (with_header ? HEADER_SIZE : 0), data + 1, body_len);
        if ((data[0] & 0x08) && content_len >= HEADER_SIZE)
                fix_checksums(content, content_len);

        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
        FUZZ_CHECK(fd >= 0);
        write_all(fd, content, content_len);
        close(fd);

        r = msglog_open(dir, &l, &info, &error);
        if (r < 0) {
                FUZZ_CHECK(!l);
                FUZZ_CHECK(r == -EBADMSG);
                FUZZ_CHECK(error && strstr(error, path));
                /* A refused log is never touched. */
                FUZZ_CHECK(file_equals(content, content_len));
                goto out;
        }
        FUZZ_CHECK(r == 0 && l);
        FUZZ_CHECK(!error);

        /* Only a tail goes, and the file keeps its header. */
        if (content_len < HEADER_SIZE) {
                FUZZ_CHECK(info.cut_bytes == content_len);
                expect_size = HEADER_SIZE;
        } else {
                FUZZ_CHECK(info.cut_bytes <= content_len - HEADER_SIZE);
                expect_size = content_len - info.cut_bytes;
                if (info.cut_bytes > 0)
                        FUZZ_CHECK(info.cut_offset == expect_size);
        }
        FUZZ_CHECK(info.cut_bytes == 0 || (info.cut_reason && *info.cut_reason));
        FUZZ_CHECK(file_size() == expect_size);
        FUZZ_CHECK(file_starts_with(header, HEADER_SIZE));
        FUZZ_CHECK(info.records == msglog_last_index(l));
        check_log(l);

        /* Append one record: a term-start record half the time, else a message. */
        last = msglog_last_index(l);
        term = msglog_last_term(l) ?: 1;
        /* A new term half the time; a log at MSGLOG_TERM_MAX has no next term. */
        if (((data[0] >> 1) & 1) && term < MSGLOG_TERM_MAX)
                term++;
        flags = (data[0] >> 2) & 1 ? MSGLOG_FLAG_TERM_START : 0;
        msgid = flags ? NULL : "fuzz.append-1";
        if (msgid && msglog_find_msgid(l, msgid, strlen(msgid), &found) == 1) {
                FUZZ_CHECK(msglog_append(l, last + 1, term, flags, msgid, strlen(msgid), "x", 1) == -EEXIST);
                msgid = NULL;
        }
        FUZZ_CHECK(msglog_append(l, last + 2, term, flags, NULL, 0, "", 0) == -EINVAL);
        r = msglog_append(l, last + 1, term, flags, msgid, msgid ? strlen(msgid) : 0, data + 1,
                          flags ? 0 : MIN(body_len, (size_t) 32));
        FUZZ_CHECK(r == 0);
        /* Still in the write buffer: read from there. */
        check_record(l, last + 1, term, flags, msgid, data + 1, flags ? 0 : MIN(body_len, (size_t) 32));
        FUZZ_CHECK(msglog_sync(l) == 0);
        FUZZ_CHECK(msglog_written_index(l) == last + 1);
        FUZZ_CHECK(msglog_last_index(l) == last + 1 && msglog_synced_index(l) == last + 1);
        check_record(l, last + 1, term, flags, msgid, data + 1, flags ? 0 : MIN(body_len, (size_t) 32));
        if (msgid)
                FUZZ_CHECK(msglog_find_msgid(l, msgid, strlen(msgid), &found) == 1 && found == last + 1);
        l = msglog_free(l);

        /* Re-open: everything stays, nothing more is cut. */
        info = (MsgLogOpenInfo) {};
        r = msglog_open(dir, &l, &info, &error);
        if (r < 0)
                fprintf(stderr, "re-open failed: %s\n", error ?: "(no message)");
        FUZZ_CHECK(r == 0);
        FUZZ_CHECK(info.cut_bytes == 0);
        FUZZ_CHECK(info.records == last + 1 && msglog_last_index(l) == last + 1);
        check_log(l);
        check_record(l, last + 1, term, flags, msgid, data + 1, flags ? 0 : MIN(body_len, (size_t) 32));
        l = msglog_free(l);

out:
        free(error);
        free(content);
        (void) unlink(path);
        return 0;
}
