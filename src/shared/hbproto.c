/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * hbproto — parsing and formatting of fusion's internal wire formats: the
 * server <-> monitor heartbeat/role lines and the replication stream that
 * backups read from the primary's client port. The formats are described in
 * hbproto.h and doc/protocol.md. Parsers are strict (one canonical spelling
 * per message, apart from the order of heartbeat keys), never modify the
 * line, and report a static reason on -EINVAL. Formatters refuse a message
 * their parser would refuse, so that format -> parse always round-trips.
 */

#include <assert.h>
#include <inttypes.h>
#include <string.h>

#include "hbproto.h"
#include "net.h"

/* Longest decimal u64: 18446744073709551615. */
#define U64_DIGITS_MAX 20

static const char *const role_table[_ROLE_MAX] = {
        [ROLE_BACKUP] = "backup",
        [ROLE_PRIMARY] = "primary",
};

const char *role_to_string(Role r) {
        if (r < 0 || r >= _ROLE_MAX)
                return NULL;
        return role_table[r];
}

Role role_from_string(const char *s) {
        if (!s)
                return _ROLE_INVALID;
        for (int i = 0; i < _ROLE_MAX; i++)
                if (strcmp(role_table[i], s) == 0)
                        return (Role) i;
        return _ROLE_INVALID;
}

static const char *const hb_type_table[_HB_MAX] = {
        [HB_HEARTBEAT] = "HEARTBEAT",
        [HB_LEASE] = "LEASE",
        [HB_PROMOTE] = "PROMOTE",
        [HB_FOLLOW] = "FOLLOW",
        [HB_DEMOTE] = "DEMOTE",
        [HB_PROBE] = "PROBE",
        [HB_REJECT] = "REJECT",
};

const char *hb_type_to_string(HbType t) {
        if (t < 0 || t >= _HB_MAX)
                return NULL;
        return hb_type_table[t];
}

static const char *const repl_type_table[_REPL_MAX] = {
        [REPL_SYNC] = "SYNC",
        [REPL_ACK] = "ACK",
        [REPL_SYNCED] = "SYNCED",
        [REPL_ENTRY] = "ENTRY",
        [REPL_COMMIT] = "COMMIT",
};

/* A byte range of the line. */
typedef struct Span {
        const char *p;
        size_t n;
} Span;

static bool span_eq(Span s, const char *lit) {
        size_t n = strlen(lit);
        return s.n == n && memcmp(s.p, lit, n) == 0;
}

/* Take the next space-separated field off *rest. Fails on an empty field,
 * which is how double, leading and trailing spaces are refused. */
static int span_next(Span *rest, Span *ret) {
        const char *sp;

        if (rest->n == 0)
                return -EINVAL;
        sp = memchr(rest->p, ' ', rest->n);
        if (sp) {
                *ret = (Span) { rest->p, (size_t) (sp - rest->p) };
                rest->p = sp + 1;
                rest->n -= ret->n + 1;
                if (rest->n == 0)
                        return -EINVAL; /* trailing space */
        } else {
                *ret = *rest;
                *rest = (Span) { rest->p + rest->n, 0 };
        }
        return ret->n > 0 ? 0 : -EINVAL;
}

/* Copy a span into a NUL-terminated buffer of size sz, refusing longer ones. */
static int span_copy(Span s, char *buf, size_t sz) {
        if (s.n >= sz)
                return -E2BIG;
        memcpy(buf, s.p, s.n);
        buf[s.n] = '\0';
        return 0;
}

static int span_u64(Span s, uint64_t *ret) {
        char buf[U64_DIGITS_MAX + 1];

        if (span_copy(s, buf, sizeof buf) < 0)
                return -EINVAL;
        return safe_atou64(buf, ret) < 0 ? -EINVAL : 0;
}

static int fail(const char **ret_reason, const char *reason) {
        if (ret_reason)
                *ret_reason = reason;
        return -EINVAL;
}

/* ---- server <-> monitor ------------------------------------------------ */

typedef enum HbKey {
        KEY_NAME,
        KEY_ROLE,
        KEY_TERM,
        KEY_INDEX,
        KEY_LTERM,
        KEY_COMMIT,
        KEY_PID,
        KEY_SEQ,
        KEY_PROBE,
        KEY_PRIMARY,
        KEY_ADDRESS,
        KEY_REASON,
        KEY_INSYNC,
        KEY_LEASE,
        KEY_DEAD,
        KEY_MINSYNC,
        KEY_HBINT,
        KEY_MONITOR,
        _KEY_MAX,
} HbKey;

static const char *const key_table[_KEY_MAX] = {
        [KEY_NAME] = "name",       [KEY_ROLE] = "role",       [KEY_TERM] = "term",
        [KEY_INDEX] = "index",     [KEY_LTERM] = "lterm",     [KEY_COMMIT] = "commit",
        [KEY_PID] = "pid",         [KEY_SEQ] = "seq",         [KEY_PROBE] = "probe",
        [KEY_PRIMARY] = "primary", [KEY_ADDRESS] = "address", [KEY_REASON] = "reason",
        [KEY_INSYNC] = "insync",   [KEY_LEASE] = "lease",     [KEY_DEAD] = "dead",
        [KEY_MINSYNC] = "minsync", [KEY_HBINT] = "hbint",     [KEY_MONITOR] = "monitor",
};

#define K(k) (1u << (k))
#define K_SETTINGS (K(KEY_LEASE) | K(KEY_DEAD) | K(KEY_MINSYNC) | K(KEY_HBINT))

/* Keys each verb must carry, and may carry in addition. */
static const struct {
        unsigned required;
        unsigned optional;
} hb_keys[_HB_MAX] = {
        [HB_HEARTBEAT] = { K(KEY_NAME) | K(KEY_ROLE) | K(KEY_TERM) | K(KEY_INDEX) | K(KEY_LTERM) |
                                   K(KEY_COMMIT) | K(KEY_PID) | K(KEY_SEQ) | K(KEY_INSYNC) | K_SETTINGS,
                           K(KEY_PROBE) },
        [HB_LEASE] = { K(KEY_TERM) | K(KEY_SEQ) | K(KEY_LEASE) | K(KEY_MONITOR), 0 },
        [HB_PROMOTE] = { K(KEY_TERM) | K(KEY_MONITOR), 0 },
        [HB_FOLLOW] = { K(KEY_TERM) | K(KEY_PRIMARY) | K(KEY_ADDRESS) | K(KEY_MONITOR), 0 },
        [HB_DEMOTE] = { K(KEY_TERM) | K(KEY_MONITOR), 0 },
        [HB_PROBE] = { K(KEY_SEQ), 0 },
        [HB_REJECT] = { K(KEY_REASON), K_SETTINGS },   /* the settings: all or none, checked below */
};

static bool token_is_valid(const char *s, size_t max) {
        size_t n = strlen(s);

        if (n == 0 || n > max)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
                        return false;
        return true;
}

static bool reason_is_valid(const char *s) {
        return token_is_valid(s, HB_REASON_MAX);
}

static bool monitor_id_is_valid(const char *s) {
        return token_is_valid(s, HB_MONITOR_ID_MAX);
}

/* FOLLOW's address: a host:port that sockaddr_parse() accepts, never a unix
 * path (backups connect to the primary's client port over TCP), no spaces. */
static bool address_is_valid(const char *s) {
        SockAddr sa;
        size_t n = strlen(s);

        if (n == 0 || n > HB_ADDRESS_MAX || s[0] == '/' || !strchr(s, ':') || strchr(s, ' '))
                return false;
        if (sockaddr_parse(s, false, &sa) < 0)
                return false;
        return !sockaddr_is_unix(&sa);
}

static int hb_set_key(HbMessage *m, HbKey k, Span v, const char **ret_reason) {
        char buf[HB_ADDRESS_MAX + 1];
        uint64_t *num = NULL;

        switch (k) {
        case KEY_NAME:
        case KEY_PRIMARY:
                if (span_copy(v, buf, NAME_MAX_LEN + 1) < 0)
                        return fail(ret_reason, "name too long");
                if (!name_is_valid(buf))
                        return fail(ret_reason, "bad name");
                strcpy(k == KEY_NAME ? m->name : m->primary, buf);
                return 0;
        case KEY_ROLE:
                if (span_copy(v, buf, sizeof buf) < 0 || (m->role = role_from_string(buf)) < 0)
                        return fail(ret_reason, "bad role");
                return 0;
        case KEY_ADDRESS:
                if (span_copy(v, buf, HB_ADDRESS_MAX + 1) < 0)
                        return fail(ret_reason, "address too long");
                if (!address_is_valid(buf))
                        return fail(ret_reason, "bad address");
                strcpy(m->address, buf);
                return 0;
        case KEY_REASON:
                if (span_copy(v, buf, HB_REASON_MAX + 1) < 0)
                        return fail(ret_reason, "reason too long");
                if (!reason_is_valid(buf))
                        return fail(ret_reason, "bad reason");
                strcpy(m->reason, buf);
                return 0;
        case KEY_MONITOR:
                if (span_copy(v, buf, HB_MONITOR_ID_MAX + 1) < 0)
                        return fail(ret_reason, "monitor id too long");
                if (!monitor_id_is_valid(buf))
                        return fail(ret_reason, "bad monitor id");
                strcpy(m->monitor, buf);
                return 0;
        case KEY_INSYNC: num = &m->insync; break;
        case KEY_LEASE: num = &m->lease_ms; break;
        case KEY_DEAD: num = &m->dead_after_ms; break;
        case KEY_MINSYNC: num = &m->min_sync_replicas; break;
        case KEY_HBINT: num = &m->heartbeat_interval_ms; break;
        case KEY_TERM: num = &m->term; break;
        case KEY_INDEX: num = &m->index; break;
        case KEY_LTERM: num = &m->lterm; break;
        case KEY_COMMIT: num = &m->commit; break;
        case KEY_PID: num = &m->pid; break;
        case KEY_SEQ: num = &m->seq; break;
        case KEY_PROBE: num = &m->probe; break;
        default: return fail(ret_reason, "unknown key");
        }
        if (v.n > U64_DIGITS_MAX)
                return fail(ret_reason, "number too long");
        if (span_u64(v, num) < 0)
                return fail(ret_reason, "bad number");
        return 0;
}

int hb_message_parse(char *line, size_t len, HbMessage *ret, const char **ret_reason) {
        HbMessage m = { .type = _HB_INVALID, .role = _ROLE_INVALID };
        Span rest = { line, len }, verb;
        unsigned seen = 0;
        int r;

        assert(line || len == 0);
        assert(ret);

        if (len == 0)
                return fail(ret_reason, "empty line");
        if (memchr(line, '\0', len))
                return fail(ret_reason, "NUL byte");
        if (span_next(&rest, &verb) < 0)
                return fail(ret_reason, "stray space");
        for (int i = 0; i < _HB_MAX; i++)
                if (span_eq(verb, hb_type_table[i]))
                        m.type = (HbType) i;
        if (m.type < 0)
                return fail(ret_reason, "unknown verb");

        while (rest.n > 0) {
                Span field, key, value;
                const char *eq;
                int k = -1;

                if (span_next(&rest, &field) < 0)
                        return fail(ret_reason, "stray space");
                eq = memchr(field.p, '=', field.n);
                if (!eq)
                        return fail(ret_reason, "field without '='");
                key = (Span) { field.p, (size_t) (eq - field.p) };
                value = (Span) { eq + 1, field.n - key.n - 1 };
                for (int i = 0; i < _KEY_MAX; i++)
                        if (span_eq(key, key_table[i]))
                                k = i;
                if (k < 0 || !((hb_keys[m.type].required | hb_keys[m.type].optional) & K(k)))
                        return fail(ret_reason, "unknown key");
                if (seen & K(k))
                        return fail(ret_reason, "duplicate key");
                seen |= K(k);
                if (value.n == 0)
                        return fail(ret_reason, "empty value");
                r = hb_set_key(&m, (HbKey) k, value, ret_reason);
                if (r < 0)
                        return r;
        }

        if ((seen & hb_keys[m.type].required) != hb_keys[m.type].required)
                return fail(ret_reason, "missing key");
        if (m.type == HB_REJECT && (seen & K_SETTINGS) != 0 && (seen & K_SETTINGS) != K_SETTINGS)
                return fail(ret_reason, "missing key");

        *ret = m;
        return 0;
}

static int format_settings(const HbMessage *m, Buf *b) {
        return buf_printf(b, " lease=%" PRIu64 " dead=%" PRIu64 " minsync=%" PRIu64 " hbint=%" PRIu64, m->lease_ms,
                          m->dead_after_ms, m->min_sync_replicas, m->heartbeat_interval_ms);
}

static int format_heartbeat(const HbMessage *m, Buf *b) {
        const char *role = role_to_string(m->role);
        int r;

        if (!memchr(m->name, '\0', sizeof m->name) || !name_is_valid(m->name) || !role)
                return -EINVAL;
        r = buf_printf(b,
                       "HEARTBEAT name=%s role=%s term=%" PRIu64 " index=%" PRIu64 " lterm=%" PRIu64
                       " commit=%" PRIu64 " pid=%" PRIu64 " seq=%" PRIu64 " insync=%" PRIu64,
                       m->name, role, m->term, m->index, m->lterm, m->commit, m->pid, m->seq, m->insync);
        if (r < 0)
                return r;
        r = format_settings(m, b);
        if (r < 0)
                return r;
        if (m->probe > 0) {
                r = buf_printf(b, " probe=%" PRIu64, m->probe);
                if (r < 0)
                        return r;
        }
        return buf_printf(b, "\n");
}

/* The line of a command from the monitor, up to its monitor= key. */
static int format_command(const HbMessage *m, Buf *b) {
        switch (m->type) {
        case HB_LEASE:
                return buf_printf(b, "LEASE term=%" PRIu64 " seq=%" PRIu64 " lease=%" PRIu64, m->term, m->seq,
                                  m->lease_ms);
        case HB_PROMOTE:
                return buf_printf(b, "PROMOTE term=%" PRIu64, m->term);
        case HB_FOLLOW:
                if (!name_is_valid(m->primary) || !memchr(m->address, '\0', sizeof m->address) ||
                    !address_is_valid(m->address))
                        return -EINVAL;
                return buf_printf(b, "FOLLOW term=%" PRIu64 " primary=%s address=%s", m->term, m->primary,
                                  m->address);
        case HB_DEMOTE:
                return buf_printf(b, "DEMOTE term=%" PRIu64, m->term);
        default:
                return -EINVAL;
        }
}

static int format_message(const HbMessage *m, Buf *b) {
        int r;

        switch (m->type) {
        case HB_HEARTBEAT:
                return format_heartbeat(m, b);
        case HB_LEASE:
        case HB_PROMOTE:
        case HB_FOLLOW:
        case HB_DEMOTE:
                if (!memchr(m->monitor, '\0', sizeof m->monitor) || !monitor_id_is_valid(m->monitor))
                        return -EINVAL;
                r = format_command(m, b);
                if (r < 0)
                        return r;
                return buf_printf(b, " monitor=%s\n", m->monitor);
        case HB_PROBE:
                return buf_printf(b, "PROBE seq=%" PRIu64 "\n", m->seq);
        case HB_REJECT:
                if (!memchr(m->reason, '\0', sizeof m->reason) || !reason_is_valid(m->reason))
                        return -EINVAL;
                r = buf_printf(b, "REJECT reason=%s", m->reason);
                if (r >= 0 && m->lease_ms > 0)
                        r = format_settings(m, b);
                if (r < 0)
                        return r;
                return buf_printf(b, "\n");
        default:
                return -EINVAL;
        }
}

int hb_message_format(const HbMessage *m, Buf *b) {
        size_t len;
        int r;

        assert(m);
        assert(b);

        /* A line is written in pieces: on failure take back what was appended. */
        len = b->len;
        r = format_message(m, b);
        if (r < 0)
                b->len = len;
        return r;
}

/* ---- replication -------------------------------------------------------- */

/* "-" or "term:first,term:first,...", oldest first. */
static int segments_parse(Span s, uint64_t last_index, ReplMessage *m, const char **ret_reason) {
        m->n_segments = 0;

        if (span_eq(s, "-")) {
                if (last_index != 0)
                        return fail(ret_reason, "no segments for a non-empty log");
                return 0;
        }

        for (;;) {
                const char *comma = memchr(s.p, ',', s.n), *colon;
                Span seg = { s.p, comma ? (size_t) (comma - s.p) : s.n };
                LogSegment *ls;

                if (m->n_segments >= REPL_SEGMENTS_MAX)
                        return fail(ret_reason, "too many segments");
                colon = memchr(seg.p, ':', seg.n);
                if (!colon)
                        return fail(ret_reason, "bad segment");
                ls = &m->segments[m->n_segments];
                *ls = (LogSegment) { 0 };
                if (span_u64((Span) { seg.p, (size_t) (colon - seg.p) }, &ls->term) < 0 ||
                    span_u64((Span) { colon + 1, seg.n - (size_t) (colon - seg.p) - 1 }, &ls->first) < 0)
                        return fail(ret_reason, "bad segment");
                if (ls->term < 1 || ls->first < 1)
                        return fail(ret_reason, "segment term and index must be >= 1");
                if (m->n_segments > 0 &&
                    (ls->term <= ls[-1].term || ls->first <= ls[-1].first))
                        return fail(ret_reason, "segments not strictly increasing");
                m->n_segments++;

                if (!comma)
                        break;
                s.n -= seg.n + 1;
                s.p = comma + 1;
        }

        if (m->segments[m->n_segments - 1].first > last_index)
                return fail(ret_reason, "segment beyond last index");
        return 0;
}

static int repl_parse_entry(Span rest, uint64_t max_payload, ReplMessage *m, const char **ret_reason) {
        Span f[3], msgid;

        for (size_t i = 0; i < 3; i++)
                if (span_next(&rest, &f[i]) < 0)
                        return fail(ret_reason, "missing or empty field");
        /* msgid is followed by exactly one space and the payload, which may
         * be empty and may contain spaces. */
        {
                const char *sp = memchr(rest.p, ' ', rest.n);

                if (!sp)
                        return fail(ret_reason, "missing payload separator");
                msgid = (Span) { rest.p, (size_t) (sp - rest.p) };
                m->payload = sp + 1;
                m->payload_len = rest.n - msgid.n - 1;
        }
        if (span_u64(f[0], &m->index) < 0 || span_u64(f[1], &m->term) < 0 || span_u64(f[2], &m->commit) < 0)
                return fail(ret_reason, "bad number");
        if (m->index < 1 || m->term < 1)
                return fail(ret_reason, "index and term must be >= 1");
        if (span_eq(msgid, "*")) {
                m->msgid = NULL;
                m->msgid_len = 0;
        } else {
                if (!msgid_is_valid(msgid.p, msgid.n))
                        return fail(ret_reason, "bad msgid");
                m->msgid = msgid.p;
                m->msgid_len = msgid.n;
                if (m->payload_len == 0)
                        return fail(ret_reason, "empty payload");
        }
        if (m->payload_len > max_payload)
                return fail(ret_reason, "payload too long");
        if (memchr(m->payload, '\n', m->payload_len))
                return fail(ret_reason, "newline in payload");
        return 0;
}

int repl_message_parse(char *line, size_t len, uint64_t max_payload, ReplMessage *ret,
                       const char **ret_reason) {
        ReplMessage m = { .type = _REPL_INVALID };
        Span rest = { line, len }, verb, f[4];
        size_t nf = 0;
        int r;

        assert(line || len == 0);
        assert(ret);

        if (len == 0)
                return fail(ret_reason, "empty line");
        if (memchr(line, '\0', len))
                return fail(ret_reason, "NUL byte");
        if (span_next(&rest, &verb) < 0)
                return fail(ret_reason, "stray space");
        for (int i = 0; i < _REPL_MAX; i++)
                if (span_eq(verb, repl_type_table[i]))
                        m.type = (ReplType) i;
        if (m.type < 0)
                return fail(ret_reason, "unknown verb");

        if (m.type == REPL_ENTRY) {
                r = repl_parse_entry(rest, max_payload, &m, ret_reason);
                if (r < 0)
                        return r;
                *ret = m;
                return 0;
        }

        while (rest.n > 0) {
                if (nf >= ELEMENTSOF(f))
                        return fail(ret_reason, "too many fields");
                if (span_next(&rest, &f[nf++]) < 0)
                        return fail(ret_reason, "stray space");
        }

        switch (m.type) {
        case REPL_SYNC:
                if (nf != 4)
                        return fail(ret_reason, "wrong number of fields");
                if (span_copy(f[0], m.name, sizeof m.name) < 0 || !name_is_valid(m.name))
                        return fail(ret_reason, "bad name");
                if (span_u64(f[1], &m.term) < 0 || span_u64(f[2], &m.index) < 0)
                        return fail(ret_reason, "bad number");
                r = segments_parse(f[3], m.index, &m, ret_reason);
                if (r < 0)
                        return r;
                break;
        case REPL_ACK:
        case REPL_COMMIT:
                if (nf != 1)
                        return fail(ret_reason, "wrong number of fields");
                if (span_u64(f[0], m.type == REPL_ACK ? &m.index : &m.commit) < 0)
                        return fail(ret_reason, "bad number");
                break;
        case REPL_SYNCED:
                if (nf != 3)
                        return fail(ret_reason, "wrong number of fields");
                if (span_u64(f[0], &m.index) < 0 || span_u64(f[1], &m.term) < 0 ||
                    span_u64(f[2], &m.commit) < 0)
                        return fail(ret_reason, "bad number");
                break;
        default:
                assert(false);
                return fail(ret_reason, "unknown verb");
        }

        *ret = m;
        return 0;
}

static bool segments_are_valid(const ReplMessage *m) {
        if (m->n_segments > REPL_SEGMENTS_MAX)
                return false;
        if (m->n_segments == 0)
                return m->index == 0;
        for (size_t i = 0; i < m->n_segments; i++) {
                const LogSegment *s = &m->segments[i];

                if (s->term < 1 || s->first < 1)
                        return false;
                if (i > 0 && (s->term <= s[-1].term || s->first <= s[-1].first))
                        return false;
        }
        return m->segments[m->n_segments - 1].first <= m->index;
}

static int repl_format_sync(const ReplMessage *m, Buf *b) {
        size_t old_len = b->len;
        int r;

        if (!memchr(m->name, '\0', sizeof m->name) || !name_is_valid(m->name) || !segments_are_valid(m))
                return -EINVAL;
        r = buf_printf(b, "SYNC %s %" PRIu64 " %" PRIu64 " ", m->name, m->term, m->index);
        for (size_t i = 0; r >= 0 && i < m->n_segments; i++)
                r = buf_printf(b, "%s%" PRIu64 ":%" PRIu64, i > 0 ? "," : "", m->segments[i].term,
                               m->segments[i].first);
        if (r >= 0)
                r = buf_append_str(b, m->n_segments == 0 ? "-\n" : "\n");
        if (r < 0) {
                /* Leave no half line behind. */
                b->len = old_len;
                if (b->cap > 0)
                        b->data[old_len] = '\0';
                return r;
        }
        return 0;
}

static int repl_format_entry(const ReplMessage *m, Buf *b) {
        const uint64_t nums[] = { m->index, m->term, m->commit };
        size_t old_len = b->len;
        int r;

        if (m->index < 1 || m->term < 1)
                return -EINVAL;
        if (m->msgid ? !msgid_is_valid(m->msgid, m->msgid_len) || m->payload_len == 0 : false)
                return -EINVAL;
        if (m->payload_len > 0 && (!m->payload || memchr(m->payload, '\n', m->payload_len) ||
                                   memchr(m->payload, '\0', m->payload_len)))
                return -EINVAL;

        r = buf_append(b, "ENTRY ", 6);
        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(nums); i++) {
                r = buf_append_u64(b, nums[i]);
                if (r >= 0)
                        r = buf_append(b, " ", 1);
        }
        if (r >= 0)
                r = m->msgid ? buf_append(b, m->msgid, m->msgid_len) : buf_append_str(b, "*");
        if (r >= 0)
                r = buf_append_str(b, " ");
        if (r >= 0 && m->payload_len > 0)
                r = buf_append(b, m->payload, m->payload_len);
        if (r >= 0)
                r = buf_append_str(b, "\n");
        if (r < 0) {
                b->len = old_len;
                if (b->cap > 0)
                        b->data[old_len] = '\0';
                return r;
        }
        return 0;
}

int repl_message_format(const ReplMessage *m, Buf *b) {
        assert(m);
        assert(b);

        switch (m->type) {
        case REPL_SYNC:
                return repl_format_sync(m, b);
        case REPL_ACK:
                return buf_append_line_u64(b, "ACK", m->index);
        case REPL_SYNCED:
                return buf_printf(b, "SYNCED %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", m->index, m->term,
                                  m->commit);
        case REPL_ENTRY:
                return repl_format_entry(m, b);
        case REPL_COMMIT:
                return buf_printf(b, "COMMIT %" PRIu64 "\n", m->commit);
        default:
                return -EINVAL;
        }
}

/*
 * Why comparing segments is enough (the Log Matching property of Raft, in
 * fusion's terms):
 *
 * - There is at most one primary per term: the monitor raises the term for
 *   every promotion and persists it before sending PROMOTE. So every entry
 *   of term T was first written by that one primary, at an index it chose.
 * - A primary never rewrites or truncates its own log while it is primary,
 *   so its term-T entries form one fixed sequence L_T, which only grows.
 * - A backup takes entries only as ENTRY lines from the primary of the
 *   current term, after SYNC established where its log agrees with the
 *   primary's, and only at index last+1. So any log holding the term-T entry
 *   at index k holds exactly L_T[1..k] up to k: the entry and everything
 *   before it.
 *
 * Hence when the backup and the primary both hold entries of term T, and
 * their term-T runs start at the same index (which consistency implies: it
 * is the term-start record of T; checking it guards against a corrupt
 * SYNC), both logs are identical up to the end of the shorter run. Walking
 * the backup's segments from the newest gives the highest such index. A
 * backup segment whose term the primary does not have belongs to an
 * abandoned term (a primary that wrote it was replaced before it was
 * committed) and must be cut. If no segment matches — also when the backup
 * sent only its newest REPL_SEGMENTS_MAX segments and none of them matches —
 * the answer is 0 and the backup re-reads everything, which is safe.
 */
uint64_t repl_match_index(const LogSegment *primary, size_t n_primary, const LogSegment *backup,
                          size_t n_backup, uint64_t backup_last) {
        assert(primary || n_primary == 0);
        assert(backup || n_backup == 0);

        for (size_t i = n_backup; i-- > 0;) {
                uint64_t blast = i + 1 < n_backup ? backup[i + 1].first - 1 : backup_last;

                for (size_t j = 0; j < n_primary; j++) {
                        if (primary[j].term != backup[i].term)
                                continue;
                        if (primary[j].first == backup[i].first && blast >= backup[i].first)
                                return MIN(blast, primary[j].last);
                        break;
                }
        }
        return 0;
}
