/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * monitor-state — load and save <state_dir>/state (see monitor-state.h).
 */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
