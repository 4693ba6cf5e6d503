/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-peerauth-token — the rest of peerauth.h that reads input it does not
 * control: the client token (client_token_is_valid(), client_token_equal(),
 * client_token_load() from [cluster] client_token and from a
 * client_token_file), the cluster key (peerauth_key_from_bytes(),
 * peerauth_key_load() from a file) and peerauth_is_hello(). Byte 0 picks the
 * mode, byte 1 splits the rest into A and B:
 *
 *   even  token: client_token_is_valid(A) exactly for 1-128 bytes 0x21-0x7e;
 *         client_token_equal(A, B) exactly when the bytes are equal (and
 *         symmetric, reflexive); client_token_load() gives client_token
 *         as-is, and from a file holding A + B gives exactly the first line
 *         without trailing " \t\r\n" when that is a valid token, else an
 *         error naming the file (files over 4096 bytes are refused).
 *   odd   key: peerauth_key_from_bytes() refuses exactly material with fewer
 *         than 32 bytes before trailing " \t\r\n"; trailing whitespace does
 *         not change the key, any other byte does (the last one flipped);
 *         peerauth_key_load() of a file holding the material gives the same
 *         key when the file is private and at most 4096 bytes, -EPERM with a
 *         message when others may read it, -EINVAL when larger.
 *   both  peerauth_is_hello() on A exactly for "HELLO-AUTH" alone or followed by ' '.
 *
 * Files are written under /dev/shm (or $TMPDIR) in a directory made once.
 */

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "fuzz-peerauth.h"

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
        FUZZ_CHECK(snprintf(dir, sizeof dir, "%s/fuzz-peerauth-XXXXXX", base) < (int) sizeof dir);
        FUZZ_CHECK(mkdtemp(dir));
        snprintf(path, sizeof path, "%s/secret", dir);
        atexit(cleanup_dir);
}

static void write_file(const uint8_t *p, size_t n, mode_t mode) {
        int fd;

        (void) unlink(path);
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        FUZZ_CHECK(fd >= 0);
        FUZZ_CHECK(fchmod(fd, mode) == 0);
        while (n > 0) {
                ssize_t k = write(fd, p, n);
                FUZZ_CHECK(k > 0);
                p += k;
                n -= (size_t) k;
        }
        FUZZ_CHECK(close(fd) == 0);
}

static bool is_space(uint8_t c) {
        return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool ref_token_valid(const uint8_t *p, size_t n) {
        if (n == 0 || n > CLIENT_TOKEN_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if (p[i] < 0x21 || p[i] > 0x7e)
                        return false;
        return true;
}

static void check_error_names_file(int r, char *error) {
        FUZZ_CHECK(r < 0);
        FUZZ_CHECK(error && strncmp(error, path, strlen(path)) == 0 && error[strlen(path)] == ':');
        FUZZ_CHECK(!strchr(error, '\n'));
        free(error);
}

static void token_mode(const uint8_t *a, size_t an, const uint8_t *b, size_t bn, const uint8_t *all, size_t n) {
        bool valid = ref_token_valid(a, an);
        Config c = {};
        char *tok = NULL, *error = NULL;
        size_t line;
        int r;

        FUZZ_CHECK(client_token_is_valid((const char *) a, an) == valid);
        FUZZ_CHECK(!client_token_is_valid(NULL, an));

        {
                bool same = an == bn && (an == 0 || memcmp(a, b, an) == 0);

                FUZZ_CHECK(client_token_equal((const char *) a, an, (const char *) b, bn) == same);
                FUZZ_CHECK(client_token_equal((const char *) b, bn, (const char *) a, an) == same);
                FUZZ_CHECK(client_token_equal((const char *) a, an, (const char *) a, an));
        }

        /* [cluster] client_token: taken as it is (the config loader checked it). */
        c.client_token = fuzz_strndup(a, an);
        c.client_token_file = (char *) "/nonexistent";
        FUZZ_CHECK(client_token_load(&c, &tok, &error) == 0 && tok && strcmp(tok, c.client_token) == 0);
        FUZZ_CHECK(!error);
        free(tok);
        free(c.client_token);
        c.client_token = NULL;

        /* Neither: no token. */
        c.client_token_file = NULL;
        tok = (char *) "x";
        FUZZ_CHECK(client_token_load(&c, &tok, &error) == 0 && tok == NULL && !error);

        /* client_token_file: the first line, trailing whitespace cut. */
        setup_dir();
        write_file(all, n, 0600);
        c.client_token_file = path;
        r = client_token_load(&c, &tok, &error);
        line = 0;
        while (line < n && all[line] != '\n')
                line++;
        while (line > 0 && is_space(all[line - 1]))
                line--;
        if (n <= 4096 && ref_token_valid(all, line)) {
                FUZZ_CHECK(r == 0 && tok && !error);
                FUZZ_CHECK(strlen(tok) == line && memcmp(tok, all, line) == 0);
                free(tok);
        } else {
                if (r == 0)
                        fprintf(stderr, "token file (%zu bytes, first line %zu) loaded as \"%s\"\n", n, line, tok);
                check_error_names_file(r, error);
        }
}

static void key_mode(const uint8_t *m, size_t n, bool public) {
        PeerAuthKey k = {}, k2 = {}, k3 = {};
        size_t trimmed = n;
        uint8_t *more;
        char *error = NULL;
        int r;

        while (trimmed > 0 && is_space(m[trimmed - 1]))
                trimmed--;
        r = peerauth_key_from_bytes(m, n, &k);
        if (trimmed < PEERAUTH_KEY_MIN) {
                FUZZ_CHECK(r == -EINVAL && !k.set);
        } else {
                FUZZ_CHECK(r == 0 && k.set);
                FUZZ_CHECK(!sodium_is_zero(k.bytes, sizeof k.bytes));

                /* Trailing whitespace does not count. */
                FUZZ_CHECK(peerauth_key_from_bytes(m, trimmed, &k2) == 0);
                FUZZ_CHECK(memcmp(k.bytes, k2.bytes, sizeof k.bytes) == 0);
                more = malloc(trimmed + 3);
                FUZZ_CHECK(more);
                memcpy(more, m, trimmed);
                memcpy(more + trimmed, " \t\n", 3);
                FUZZ_CHECK(peerauth_key_from_bytes(more, trimmed + 3, &k3) == 0);
                FUZZ_CHECK(memcmp(k.bytes, k3.bytes, sizeof k.bytes) == 0);
                /* Every other byte does. */
                more[trimmed - 1] ^= 0x01;
                if (is_space(more[trimmed - 1]))
                        more[trimmed - 1] ^= 0x40;
                FUZZ_CHECK(peerauth_key_from_bytes(more, trimmed, &k3) == 0);
                FUZZ_CHECK(memcmp(k.bytes, k3.bytes, sizeof k.bytes) != 0);
                free(more);
        }

        setup_dir();
        write_file(m, n, public ? 0644 : 0640);
        k2 = (PeerAuthKey) {};
        r = peerauth_key_load(path, &k2, &error);
        if (public) {
                FUZZ_CHECK(r == -EPERM && !k2.set);
                check_error_names_file(r, error);
        } else if (n > PEERAUTH_KEY_FILE_MAX || trimmed < PEERAUTH_KEY_MIN) {
                FUZZ_CHECK(r == -EINVAL && !k2.set);
                check_error_names_file(r, error);
        } else {
                FUZZ_CHECK(r == 0 && k2.set && !error);
                FUZZ_CHECK(memcmp(k.bytes, k2.bytes, sizeof k.bytes) == 0);
        }
        peerauth_key_wipe(&k2);
        FUZZ_CHECK(!k2.set && sodium_is_zero(k2.bytes, sizeof k2.bytes));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        FuzzInput in = { data, size };
        uint8_t mode, split;
        const uint8_t *a, *b;
        size_t an, bn;
        char *s;

        fuzz_peerauth_setup();
        mode = fuzz_byte(&in);
        split = fuzz_byte(&in);
        a = in.p;
        an = split < in.n ? split : in.n;
        b = in.p + an;
        bn = in.n - an;

        s = fuzz_strndup(a, an);
        FUZZ_CHECK(peerauth_is_hello(s, an) ==
                   (an >= 10 && memcmp(s, "HELLO-AUTH", 10) == 0 && (an == 10 || s[10] == ' ')));
        free(s);

        if (mode % 2 == 0)
                token_mode(a, an, b, bn, in.p, in.n);
        else
                key_mode(in.p, in.n, mode & 2);
        return 0;
}
