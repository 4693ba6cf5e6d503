/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * macro.h — the few macros the whole tree shares: scope-bound cleanup
 * (_cleanup_), ownership transfer (TAKE_PTR/TAKE_FD) and array sizes.
 * Deliberately small; this is not systemd's macro dialect.
 */
#pragma once

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* Run f(&var) when var leaves scope. */
#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _likely_(x) __builtin_expect(!!(x), 1)
#define _unlikely_(x) __builtin_expect(!!(x), 0)

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

/* Define name##p(type **p) calling func(*p) when *p is non-NULL. */
#define DEFINE_CLEANUP(type, func)                      \
        static inline void func##p(type **p) {          \
                if (*p)                                 \
                        func(*p);                       \
        }

static inline void freep(void *p) {
        free(*(void **) p);
}

/* Close an fd if it is valid; always returns -1 so it can reset a variable. */
static inline int safe_close(int fd) {
        if (fd >= 0) {
                int saved = errno;
                close(fd);
                errno = saved;
        }
        return -1;
}

static inline void closep(int *fd) {
        safe_close(*fd);
}

static inline void fclosep(FILE **f) {
        if (*f)
                fclose(*f);
}

/* Hand a pointer's ownership over, leaving NULL behind. */
#define TAKE_PTR(p)                             \
        ({                                      \
                __typeof__(p) _p = (p);         \
                (p) = NULL;                     \
                _p;                             \
        })

/* Hand an fd's ownership over, leaving -1 behind. */
#define TAKE_FD(fd)                             \
        ({                                      \
                int _fd = (fd);                 \
                (fd) = -1;                      \
                _fd;                            \
        })

/* Map a libc-style -1/errno result to -errno. */
#define negative_errno() (errno > 0 ? -errno : -EIO)
