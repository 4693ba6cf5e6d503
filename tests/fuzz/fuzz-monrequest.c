/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-monrequest — mon_request_parse() (the monitor's client API: WHO,
 * SUBSCRIBE, STATUS, PROMOTE NAME) on arbitrary lines. A parsed request is
 * exactly one of the four spellings; anything else has a reason.
 */

#include "fuzz.h"
#include "protocol.h"
#include "util.h"

static bool data_is(const uint8_t *data, size_t size, const char *s) {
        return size == strlen(s) && memcmp(data, s, size) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *line = fuzz_strndup(data, size);
        const char *reason = NULL;
        MonRequest req;
        int r;

        r = mon_request_parse(line, size, &req, &reason);
        if (r < 0) {
                FUZZ_CHECK(r == -EINVAL);
                FUZZ_CHECK(reason && *reason);
                free(line);
                return 0;
        }

        FUZZ_CHECK(r == 0);
        FUZZ_CHECK(!fuzz_mem_has(data, size, '\0'));
        switch (req.type) {
        case MONREQ_WHO:
                FUZZ_CHECK(data_is(data, size, "WHO"));
                break;
        case MONREQ_SUBSCRIBE:
                FUZZ_CHECK(data_is(data, size, "SUBSCRIBE"));
                break;
        case MONREQ_STATUS:
                FUZZ_CHECK(data_is(data, size, "STATUS"));
                break;
        case MONREQ_PROMOTE:
                FUZZ_CHECK(size > 8 && memcmp(data, "PROMOTE ", 8) == 0);
                FUZZ_CHECK(req.name == line + 8);
                FUZZ_CHECK(name_is_valid(req.name));
                FUZZ_CHECK(strlen(req.name) == size - 8);
                break;
        default:
                FUZZ_CHECK(false);
        }
        free(line);
        return 0;
}
