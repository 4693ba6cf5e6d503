/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * peerauth — the cluster key, the mutual handshake of fusion's internal
 * links, the client token and a log rate limiter (see peerauth.h and
 * doc/security.md). The per-line tags and seal/open are in peerauth-tag.c.
 *
 * Every MAC input is fixed-length fields followed by one length-prefixed
 * variable field (the name, or the line), under a label that says what the
 * MAC is for, so no two different messages share an input: a CHALLENGE MAC
 * cannot be replayed as a PROOF, a tag of one direction or position cannot
 * be used for another.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"
#include "peerauth-internal.h"
#include "peerauth.h"

#define LABEL_KEY "fusion-peerauth-1 cluster-key"
#define LABEL_S "fusion-peerauth-1 s"
#define LABEL_C "fusion-peerauth-1 c"
#define LABEL_SESSION "fusion-peerauth-1 session"

#define NONCE_HEX (2 * PEERAUTH_NONCE_BYTES)
#define MAC_HEX (2 * PEERAUTH_MAC_BYTES)

static_assert(crypto_auth_hmacsha512256_BYTES == PEERAUTH_MAC_BYTES, "HMAC-SHA-512-256 output size");
static_assert(crypto_auth_hmacsha512256_KEYBYTES == PEERAUTH_KEY_BYTES, "HMAC-SHA-512-256 key size");

int peerauth_init(void) {
        return sodium_init() < 0 ? -EIO : 0;
}

static bool is_space(char c) {
        return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int peerauth_key_from_bytes(const void *data, size_t n, PeerAuthKey *ret) {
        const char *p = data;

        assert(ret);
        while (n > 0 && is_space(p[n - 1]))
                n--;
        if (n < PEERAUTH_KEY_MIN)
                return -EINVAL;

        /* Keyed by a fixed label: the same material used elsewhere gives another key. */
        if (crypto_generichash(ret->bytes, sizeof(ret->bytes), data, n, (const unsigned char *) LABEL_KEY,
                               strlen(LABEL_KEY)) < 0)
                return -EIO;
        ret->set = true;
        return 0;
}

void peerauth_key_wipe(PeerAuthKey *k) {
        if (k)
                sodium_memzero(k, sizeof(*k));
}

_printf_(2, 3) static int set_error(char **ret_error, const char *fmt, ...) {
        va_list ap;
        int k;

        if (!ret_error)
                return 0;
        va_start(ap, fmt);
        k = vasprintf(ret_error, fmt, ap);
        va_end(ap);
        if (k < 0)
                *ret_error = NULL;
        return 0;
}

int peerauth_key_load(const char *path, PeerAuthKey *ret, char **ret_error) {
        uint8_t buf[PEERAUTH_KEY_FILE_MAX + 1];
        _cleanup_(closep) int fd = -1;
        struct stat st;
        size_t n = 0;
        int r;

        assert(path);
        assert(ret);

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                r = negative_errno();
                set_error(ret_error, "%s: cannot open the cluster key: %s%s", path, strerror(-r),
                          r == -ENOENT ? " (create it, see fusion.conf(5), or set [cluster] auth = never)" : "");
                return r;
        }
        if (fstat(fd, &st) < 0) {
                r = negative_errno();
                set_error(ret_error, "%s: cannot stat the cluster key: %s", path, strerror(-r));
                return r;
        }
        if (!S_ISREG(st.st_mode)) {
                set_error(ret_error, "%s: the cluster key must be a regular file", path);
                return -EINVAL;
        }
        if (st.st_mode & S_IROTH) {
                set_error(ret_error,
                          "%s: the cluster key is readable by everyone (mode %04o); refusing to use it "
                          "(chmod o-rwx %s)",
                          path, (unsigned) (st.st_mode & 07777), path);
                return -EPERM;
        }

        for (;;) {
                ssize_t k = read(fd, buf + n, sizeof(buf) - n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        r = negative_errno();
                        sodium_memzero(buf, sizeof(buf));
                        set_error(ret_error, "%s: cannot read the cluster key: %s", path, strerror(-r));
                        return r;
                }
                if (k == 0)
                        break;
                n += (size_t) k;
                if (n == sizeof(buf))
                        break;
        }
        if (n > PEERAUTH_KEY_FILE_MAX) {
                sodium_memzero(buf, sizeof(buf));
                set_error(ret_error, "%s: the cluster key file is larger than %d bytes", path,
                          PEERAUTH_KEY_FILE_MAX);
                return -EINVAL;
        }

        r = peerauth_key_from_bytes(buf, n, ret);
        sodium_memzero(buf, sizeof(buf));
        if (r == -EINVAL)
                set_error(ret_error, "%s: the cluster key must hold at least %d bytes of key material",
                          path, PEERAUTH_KEY_MIN);
        else if (r < 0)
                set_error(ret_error, "%s: cannot derive the cluster key", path);
        return r;
}

void peerauth_done(PeerAuth *a) {
        if (a)
                sodium_memzero(a, sizeof(*a));
}

/* ---- MACs ---- */

/* HMAC(key, label | nc | ns | len(name) | name) */
static void handshake_mac(const uint8_t key[PEERAUTH_KEY_BYTES], const char *label, const PeerAuth *a,
                          uint8_t out[PEERAUTH_MAC_BYTES]) {
        crypto_auth_hmacsha512256_state st;
        uint8_t name_len = (uint8_t) strlen(a->name);

        crypto_auth_hmacsha512256_init(&st, key, PEERAUTH_KEY_BYTES);
        crypto_auth_hmacsha512256_update(&st, (const unsigned char *) label, strlen(label) + 1);
        crypto_auth_hmacsha512256_update(&st, a->nc, sizeof(a->nc));
        crypto_auth_hmacsha512256_update(&st, a->ns, sizeof(a->ns));
        crypto_auth_hmacsha512256_update(&st, &name_len, 1);
        crypto_auth_hmacsha512256_update(&st, (const unsigned char *) a->name, name_len);
        crypto_auth_hmacsha512256_final(&st, out);
        sodium_memzero(&st, sizeof(st));
}

static void session_key(const PeerAuth *a, char dir, uint8_t out[PEERAUTH_KEY_BYTES]) {
        char label[sizeof(LABEL_SESSION) + 2];

        snprintf(label, sizeof(label), "%s %c", LABEL_SESSION, dir);
        handshake_mac(a->key, label, a, out);
}

static void establish(PeerAuth *a) {
        uint8_t c2s[PEERAUTH_KEY_BYTES], s2c[PEERAUTH_KEY_BYTES];

        session_key(a, DIR_C2S, c2s);
        session_key(a, DIR_S2C, s2c);
        memcpy(a->send_key, a->acceptor ? s2c : c2s, PEERAUTH_KEY_BYTES);
        memcpy(a->recv_key, a->acceptor ? c2s : s2c, PEERAUTH_KEY_BYTES);
        sodium_memzero(c2s, sizeof(c2s));
        sodium_memzero(s2c, sizeof(s2c));
        /* The long-term key is not needed on this connection any more. */
        sodium_memzero(a->key, sizeof(a->key));
        a->send_seq = a->recv_seq = 0;
        a->state = PEERAUTH_ESTABLISHED;
}

/* ---- handshake ---- */

static int hex_field(const char *s, size_t n, uint8_t *out, size_t out_len) {
        size_t bin_len = 0;

        if (n != 2 * out_len || !peerauth_is_lower_hex(s, n))
                return -EINVAL;
        if (sodium_hex2bin(out, out_len, s, n, NULL, &bin_len, NULL) < 0 || bin_len != out_len)
                return -EINVAL;
        return 0;
}

/* Split "VERB f1 f2 ..." into exactly n fields after the verb (single spaces). */
static int split_fields(const char *line, size_t len, const char *verb, const char **fields, size_t *lens,
                        size_t n) {
        size_t vl = strlen(verb), pos, k = 0;

        if (len <= vl || memcmp(line, verb, vl) != 0 || line[vl] != ' ')
                return -EINVAL;
        pos = vl + 1;
        while (k < n) {
                const char *sp = memchr(line + pos, ' ', len - pos);
                size_t end = sp ? (size_t) (sp - line) : len;

                if (end == pos)
                        return -EINVAL;     /* empty field */
                fields[k] = line + pos;
                lens[k] = end - pos;
                k++;
                if (!sp)
                        break;
                pos = end + 1;
                if (k == n)
                        return -EINVAL;     /* extra field */
        }
        return k == n ? 0 : -EINVAL;
}

static int append_hex_line(Buf *out, const char *prefix, const uint8_t *a, size_t an, const uint8_t *b, size_t bn,
                           const char *name) {
        char ha[2 * 64 + 1], hb[2 * 64 + 1];

        assert(an <= 64 && bn <= 64);
        sodium_bin2hex(ha, sizeof(ha), a, an);
        if (b)
                sodium_bin2hex(hb, sizeof(hb), b, bn);
        if (name)
                return buf_printf(out, "%s %s %s\n", prefix, name, ha);
        if (b)
                return buf_printf(out, "%s %s %s\n", prefix, ha, hb);
        return buf_printf(out, "%s %s\n", prefix, ha);
}

int peerauth_hello(PeerAuth *a, const PeerAuthKey *key, const char *name, Buf *out) {
        int r;

        assert(a);
        assert(key && key->set);
        assert(out);

        if (!name_is_valid(name))
                return -EINVAL;
        *a = (PeerAuth) { .acceptor = false };
        memcpy(a->key, key->bytes, sizeof(a->key));
        snprintf(a->name, sizeof(a->name), "%s", name);
        randombytes_buf(a->nc, sizeof(a->nc));

        r = append_hex_line(out, PEERAUTH_HELLO_VERB, a->nc, sizeof(a->nc), NULL, 0, a->name);
        if (r < 0)
                return r;
        a->state = PEERAUTH_HELLO_SENT;
        return 0;
}

bool peerauth_is_hello(const char *line, size_t len) {
        size_t vl = strlen(PEERAUTH_HELLO_VERB);

        return len >= vl && memcmp(line, PEERAUTH_HELLO_VERB, vl) == 0 && (len == vl || line[vl] == ' ');
}

int peerauth_on_hello(PeerAuth *a, const PeerAuthKey *key, const char *line, size_t len, Buf *out,
                      const char **ret_reason) {
        const char *f[2];
        size_t fl[2];
        uint8_t mac[PEERAUTH_MAC_BYTES];
        int r;

        assert(a);
        assert(key && key->set);
        assert(out);

        *a = (PeerAuth) { .acceptor = true, .state = PEERAUTH_FAILED };
        if (split_fields(line, len, PEERAUTH_HELLO_VERB, f, fl, 2) < 0) {
                *ret_reason = "malformed HELLO-AUTH";
                return -EBADMSG;
        }
        /* A NUL would cut the name short: "a\0b" must not pass as "a". */
        if (fl[0] > NAME_MAX_LEN || memchr(f[0], '\0', fl[0])) {
                *ret_reason = "bad name in HELLO-AUTH";
                return -EBADMSG;
        }
        memcpy(a->name, f[0], fl[0]);
        a->name[fl[0]] = '\0';
        if (!name_is_valid(a->name)) {
                a->name[0] = '\0';
                *ret_reason = "bad name in HELLO-AUTH";
                return -EBADMSG;
        }
        if (hex_field(f[1], fl[1], a->nc, sizeof(a->nc)) < 0) {
                *ret_reason = "bad nonce in HELLO-AUTH";
                return -EBADMSG;
        }

        memcpy(a->key, key->bytes, sizeof(a->key));
        randombytes_buf(a->ns, sizeof(a->ns));
        handshake_mac(a->key, LABEL_S, a, mac);
        r = append_hex_line(out, "CHALLENGE", a->ns, sizeof(a->ns), mac, sizeof(mac), NULL);
        if (r < 0)
                return r;
        a->state = PEERAUTH_CHALLENGE_SENT;
        return 0;
}

int peerauth_on_challenge(PeerAuth *a, const char *line, size_t len, Buf *out, const char **ret_reason) {
        uint8_t mac[PEERAUTH_MAC_BYTES], expect[PEERAUTH_MAC_BYTES];
        const char *f[2];
        size_t fl[2];
        int r;

        assert(a);
        assert(out);

        if (a->state != PEERAUTH_HELLO_SENT) {
                *ret_reason = "unexpected CHALLENGE";
                return -EBADMSG;
        }
        a->state = PEERAUTH_FAILED;
        if (split_fields(line, len, "CHALLENGE", f, fl, 2) < 0 ||
            hex_field(f[0], fl[0], a->ns, sizeof(a->ns)) < 0 || hex_field(f[1], fl[1], mac, sizeof(mac)) < 0) {
                *ret_reason = "malformed CHALLENGE";
                return -EBADMSG;
        }

        handshake_mac(a->key, LABEL_S, a, expect);
        if (sodium_memcmp(mac, expect, sizeof(mac)) != 0) {
                *ret_reason = "the peer does not hold this cluster key";
                return -EACCES;
        }

        handshake_mac(a->key, LABEL_C, a, mac);
        r = append_hex_line(out, "PROOF", mac, sizeof(mac), NULL, 0, NULL);
        if (r < 0)
                return r;
        establish(a);
        return 0;
}

int peerauth_on_proof(PeerAuth *a, const char *line, size_t len, const char **ret_reason) {
        uint8_t mac[PEERAUTH_MAC_BYTES], expect[PEERAUTH_MAC_BYTES];
        const char *f[1];
        size_t fl[1];

        assert(a);

        if (a->state != PEERAUTH_CHALLENGE_SENT) {
                *ret_reason = "unexpected PROOF";
                return -EBADMSG;
        }
        a->state = PEERAUTH_FAILED;
        if (split_fields(line, len, "PROOF", f, fl, 1) < 0 || hex_field(f[0], fl[0], mac, sizeof(mac)) < 0) {
                *ret_reason = "malformed PROOF";
                return -EBADMSG;
        }
        handshake_mac(a->key, LABEL_C, a, expect);
        if (sodium_memcmp(mac, expect, sizeof(mac)) != 0) {
                *ret_reason = "wrong key";
                return -EACCES;
        }
        establish(a);
        return 0;
}

/* ---- client token ---- */

bool client_token_is_valid(const char *s, size_t n) {
        if (!s || n == 0 || n > CLIENT_TOKEN_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) s[i] <= 0x20 || (unsigned char) s[i] >= 0x7f)
                        return false;
        return true;
}

int client_token_load(const Config *c, char **ret, char **ret_error) {
        _cleanup_(freep) char *text = NULL;
        bool nul;
        size_t n;
        int r;

        assert(c);
        assert(ret);

        if (c->client_token) {
                char *t = strdup(c->client_token);
                if (!t)
                        return -ENOMEM;
                *ret = t;
                return 0;
        }
        if (!c->client_token_file) {
                *ret = NULL;
                return 0;
        }

        r = read_file_small(c->client_token_file, 4096, &text);
        if (r < 0) {
                set_error(ret_error, "%s: cannot read the client token: %s", c->client_token_file, strerror(-r));
                return r;
        }
        n = strcspn(text, "\n");
        /* A NUL in the first line is not its end: "abc\0def" must not become the token "abc". */
        nul = n < (size_t) r && text[n] == '\0';
        while (n > 0 && is_space(text[n - 1]))
                n--;
        text[n] = '\0';
        if (nul || !client_token_is_valid(text, n)) {
                set_error(ret_error, "%s: expected a token of 1 to %d printable characters without spaces",
                          c->client_token_file, CLIENT_TOKEN_MAX);
                return -EINVAL;
        }
        *ret = TAKE_PTR(text);
        return 0;
}

bool client_token_equal(const char *a, size_t an, const char *b, size_t bn) {
        uint8_t ha[32], hb[32];

        crypto_generichash(ha, sizeof(ha), (const unsigned char *) a, an, NULL, 0);
        crypto_generichash(hb, sizeof(hb), (const unsigned char *) b, bn, NULL, 0);
        return sodium_memcmp(ha, hb, sizeof(ha)) == 0;
}

/* ---- rate limit ---- */

bool ratelimit_pass(RateLimit *rl, usec_t now, unsigned *ret_suppressed) {
        assert(rl);

        if (rl->begin == 0 || now >= rl->begin + rl->interval) {
                rl->begin = now;
                rl->n = 0;
        }
        if (rl->n < rl->burst) {
                rl->n++;
                if (ret_suppressed)
                        *ret_suppressed = rl->suppressed;
                rl->suppressed = 0;
                return true;
        }
        rl->suppressed++;
        return false;
}
