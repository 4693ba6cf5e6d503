/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * monitor-state — load and save <state_dir>/state (see monitor-state.h).
 */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "monitor-state.h"
#include "util.h"

#define STATE_FILE_MAX 4096

int monitor_state_parse(const char *text, uint64_t *ret_term, char **ret_primary) {
        _cleanup_(freep) char *primary = NULL;
        uint64_t term;
        const char *p;
        int r;

        assert(text);
        assert(ret_term);
        assert(ret_primary);

        r = state_get_u64(text, "term", &term);
        if (r < 0)
                return -EINVAL;

        /* "primary=" at the start of a line */
        for (p = text; p; p = strchr(p, '\n')) {
                if (*p == '\n')
                        p++;
                if (strncmp(p, "primary=", 8) == 0)
                        break;
        }
        if (p) {
                size_t n;

                p += 8;
                n = strcspn(p, "\r\n");
                if (n > 0) {
                        primary = strndup(p, n);
                        if (!primary)
                                return -ENOMEM;
                        if (!name_is_valid(primary))
                                return -EINVAL;
                }
        }

        *ret_term = term;
        *ret_primary = TAKE_PTR(primary);
        return 0;
}

int monitor_state_format(uint64_t term, const char *primary, char **ret) {
        char *s;

        assert(ret);

        if (asprintf(&s, "term=%" PRIu64 "\nprimary=%s\n", term, primary ?: "") < 0)
                return -ENOMEM;
        *ret = s;
        return 0;
}

int monitor_state_load(const char *path, uint64_t *ret_term, char **ret_primary) {
        _cleanup_(freep) char *text = NULL;
        int r;

        assert(path);

        r = read_file_small(path, STATE_FILE_MAX, &text);
        if (r < 0)
                return r;
        return monitor_state_parse(text, ret_term, ret_primary);
}

int monitor_state_save(const char *path, uint64_t term, const char *primary) {
        _cleanup_(freep) char *text = NULL;
        int r;

        assert(path);

        r = monitor_state_format(term, primary, &text);
        if (r < 0)
                return r;
        return write_file_atomic(path, text);
}

static bool monitor_id_is_hex(const char *s) {
        size_t n = strlen(s);

        if (n != 32)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
                        return false;
        return true;
}

int monitor_id_load_or_create(const char *path, char ret[static HB_MONITOR_ID_MAX + 1]) {
        _cleanup_(freep) char *text = NULL;
        char id[HB_MONITOR_ID_MAX + 2];
        uint8_t raw[16];
        ssize_t n;
        int r;

        assert(path);

        r = read_file_small(path, STATE_FILE_MAX, &text);
        if (r >= 0) {
                text[strcspn(text, "\n")] = 0;
                if (!monitor_id_is_hex(text))
                        return -EINVAL;
                memcpy(ret, text, 33);
                return 0;
        }
        if (r != -ENOENT)
                return r;

        n = getrandom(raw, sizeof raw, 0);
        if (n < 0)
                return -errno;
        if ((size_t) n != sizeof raw)
                return -EIO;
        for (size_t i = 0; i < sizeof raw; i++)
                (void) snprintf(id + 2 * i, 3, "%02x", raw[i]);
        id[32] = '\n';
        id[33] = 0;
        r = write_file_atomic(path, id);
        if (r < 0)
                return r;
        memcpy(ret, id, 32);
        ret[32] = 0;
        return 0;
}
