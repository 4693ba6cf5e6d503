/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * log — journald when stderr is connected to the journal (JOURNAL_STREAM),
 * plain stderr lines otherwise. See log.h.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>

#include "log.h"
#include "util.h"

static const char *log_ident = "fusion";
static int log_max_level = LOG_INFO;
static bool log_journal;
static char ctx_server[64];
static char ctx_role[32];
static uint64_t ctx_term;

static bool stderr_is_journal(void) {
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;

        if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
                return false;
        if (fstat(STDERR_FILENO, &st) < 0)
                return false;
        return (unsigned long long) st.st_dev == dev && (unsigned long long) st.st_ino == ino;
}

void log_setup(const char *ident) {
        const char *lvl = getenv("FUSION_LOG_LEVEL");

        if (ident)
                log_ident = ident;
        log_journal = stderr_is_journal();
        if (lvl) {
                if (strcmp(lvl, "debug") == 0)
                        log_max_level = LOG_DEBUG;
                else if (strcmp(lvl, "info") == 0)
                        log_max_level = LOG_INFO;
                else if (strcmp(lvl, "notice") == 0)
                        log_max_level = LOG_NOTICE;
                else if (strcmp(lvl, "warning") == 0)
                        log_max_level = LOG_WARNING;
                else if (strcmp(lvl, "err") == 0 || strcmp(lvl, "error") == 0)
                        log_max_level = LOG_ERR;
        }
}

void log_set_max_level(int level) {
        log_max_level = level;
}

int log_get_max_level(void) {
        return log_max_level;
}

bool log_to_journal(void) {
        return log_journal;
}

void log_set_context(const char *server, const char *role, uint64_t term) {
        snprintf(ctx_server, sizeof ctx_server, "%s", server ? server : "");
        snprintf(ctx_role, sizeof ctx_role, "%s", role ? role : "");
        ctx_term = term;
}

static void log_write_journal(int level, int error, const char *message_id, const char *file, int line,
                              const char *func, const char *msg) {
        char f_msg[8192], f_prio[16], f_file[256], f_line[32], f_func[128], f_server[96], f_role[64],
                f_term[48], f_mid[64], f_errno[32], f_ident[96];
        struct iovec iov[12];
        size_t n = 0;

#define ADD(buf, ...)                                                  \
        do {                                                           \
                int _k = snprintf(buf, sizeof buf, __VA_ARGS__);       \
                if (_k < 0)                                            \
                        break;                                         \
                iov[n++] = (struct iovec){ buf, MIN((size_t) _k, sizeof buf - 1) }; \
        } while (0)

        ADD(f_msg, "MESSAGE=%s", msg);
        ADD(f_prio, "PRIORITY=%d", level);
        ADD(f_ident, "SYSLOG_IDENTIFIER=%s", log_ident);
        ADD(f_file, "CODE_FILE=%s", file);
        ADD(f_line, "CODE_LINE=%d", line);
        ADD(f_func, "CODE_FUNC=%s", func);
        if (ctx_server[0])
                ADD(f_server, "FUSION_SERVER=%s", ctx_server);
        if (ctx_role[0])
                ADD(f_role, "FUSION_ROLE=%s", ctx_role);
        if (ctx_term > 0)
                ADD(f_term, "FUSION_TERM=%" PRIu64, ctx_term);
        if (message_id)
                ADD(f_mid, "MESSAGE_ID=%s", message_id);
        if (error != 0)
                ADD(f_errno, "ERRNO=%d", error < 0 ? -error : error);
#undef ADD
        if (sd_journal_sendv(iov, (int) n) < 0)
                fprintf(stderr, "%s: %s\n", log_ident, msg);
}

int log_internal(int level, int error, const char *message_id, const char *file, int line, const char *func,
                 const char *fmt, ...) {
        char msg[4096];
        int saved = errno, e = error < 0 ? -error : error;
        va_list ap;

        if (level > log_max_level)
                return -e;

        errno = e;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);

        if (log_journal)
                log_write_journal(level, e, message_id, file, line, func, msg);
        else if (ctx_server[0])
                fprintf(stderr, "%s[%s]: %s\n", log_ident, ctx_server, msg);
        else
                fprintf(stderr, "%s: %s\n", log_ident, msg);

        errno = saved;
        return -e;
}
