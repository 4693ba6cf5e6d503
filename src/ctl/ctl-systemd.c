/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ctl-systemd — blocking sd-bus calls to systemd's Manager for fusionctl.
 * Jobs are waited for the way systemd's bus-wait-for-jobs does it: the
 * JobRemoved match is installed (and Subscribe called) before the job is
 * queued, and the job path from the reply is compared with each signal.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl-systemd.h"

#define SD_DEST "org.freedesktop.systemd1"
#define SD_PATH "/org/freedesktop/systemd1"
#define SD_MANAGER "org.freedesktop.systemd1.Manager"
#define SD_UNIT "org.freedesktop.systemd1.Unit"

static const char *const unit_action_table[_UNIT_ACTION_MAX] = {
        [UNIT_ACTION_KILL] = "kill",
        [UNIT_ACTION_STOP] = "stop",
        [UNIT_ACTION_RESTART] = "restart",
        [UNIT_ACTION_HANG] = "hang",
        [UNIT_ACTION_RESUME] = "resume",
};

const char *unit_action_to_string(UnitAction a) {
        return a >= 0 && a < _UNIT_ACTION_MAX ? unit_action_table[a] : NULL;
}

UnitAction unit_action_from_string(const char *s) {
        for (int i = 0; s && i < _UNIT_ACTION_MAX; i++)
                if (strcmp(s, unit_action_table[i]) == 0)
                        return (UnitAction) i;
        return _UNIT_ACTION_INVALID;
}

int ctl_bus_open(sd_bus **ret) {
        int r = sd_bus_open_system(ret);
        return r < 0 ? UNIT_ERR_NO_BUS : 0;
}

static char *strdup_printf(const char *fmt, ...) _printf_(1, 2);
static char *strdup_printf(const char *fmt, ...) {
        va_list ap;
        char *s;

        va_start(ap, fmt);
        if (vasprintf(&s, fmt, ap) < 0)
                s = NULL;
        va_end(ap);
        return s;
}

/* Turn a failed call into one of the UNIT_ERR_* codes and a message. */
static int map_bus_error(int r, const sd_bus_error *e, const char *unit, const char *what, char **ret_message) {
        if (sd_bus_error_has_name(e, "org.freedesktop.systemd1.NoSuchUnit") ||
            sd_bus_error_has_name(e, "org.freedesktop.systemd1.LoadFailed")) {
                *ret_message = strdup_printf("Unit %s not found", unit);
                return UNIT_ERR_NO_UNIT;
        }
        if (sd_bus_error_has_name(e, SD_BUS_ERROR_ACCESS_DENIED) ||
            sd_bus_error_has_name(e, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED) || r == -EACCES ||
            r == -EPERM) {
                *ret_message = strdup_printf("Permission denied: run as root or with a polkit rule allowing "
                                             "org.freedesktop.systemd1.manage-units (%s %s)",
                                             what, unit);
                return UNIT_ERR_ACCESS;
        }
        *ret_message = strdup_printf("Failed to %s %s: %s", what, unit,
                                     e && e->message ? e->message : strerror(r < 0 ? -r : EIO));
        return r < 0 ? r : -EIO;
}

static int unit_object_path(sd_bus *bus, const char *unit, char **ret) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *path;
        int r;

        r = sd_bus_call_method(bus, SD_DEST, SD_PATH, SD_MANAGER, "GetUnit", &e, &reply, "s", unit);
        if (r < 0 && sd_bus_error_has_name(&e, "org.freedesktop.systemd1.NoSuchUnit")) {
                sd_bus_error_free(&e);
                r = sd_bus_call_method(bus, SD_DEST, SD_PATH, SD_MANAGER, "LoadUnit", &e, &reply, "s", unit);
        }
        if (r < 0)
                return sd_bus_error_get_errno(&e) > 0 ? -sd_bus_error_get_errno(&e) : r;
        r = sd_bus_message_read(reply, "o", &path);
        if (r < 0)
                return r;
        *ret = strdup(path);
        return *ret ? 0 : -ENOMEM;
}

int unit_get_state(sd_bus *bus, const char *unit, char **ret_active, char **ret_sub) {
        _cleanup_(freep) char *path = NULL, *load = NULL, *active = NULL, *sub = NULL;
        int r;

        r = unit_object_path(bus, unit, &path);
        if (r < 0)
                return r;
        r = sd_bus_get_property_string(bus, SD_DEST, path, SD_UNIT, "LoadState", NULL, &load);
        if (r < 0)
                return r;
        if (strcmp(load, "not-found") == 0) {
                *ret_active = TAKE_PTR(load);
                *ret_sub = strdup("");
                return *ret_sub ? 0 : -ENOMEM;
        }
        r = sd_bus_get_property_string(bus, SD_DEST, path, SD_UNIT, "ActiveState", NULL, &active);
        if (r >= 0)
                r = sd_bus_get_property_string(bus, SD_DEST, path, SD_UNIT, "SubState", NULL, &sub);
        if (r < 0)
                return r;
        *ret_active = TAKE_PTR(active);
        *ret_sub = TAKE_PTR(sub);
        return 0;
}

typedef struct JobWait {
        const char *path;      /* the job we wait for; NULL until the reply came */
        char *result;          /* set when its JobRemoved arrived */
} JobWait;

static int on_job_removed(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        JobWait *w = userdata;
        const char *path, *unit, *result;
        uint32_t id;

        if (sd_bus_message_read(m, "uoss", &id, &path, &unit, &result) < 0)
                return 0;
        if (w->path && !w->result && strcmp(path, w->path) == 0)
                w->result = strdup(result);
        return 0;
}

static int wait_for_job(sd_bus *bus, JobWait *w, usec_t timeout) {
        usec_t deadline = now_usec() + timeout;
        int r;

        while (!w->result) {
                r = sd_bus_process(bus, NULL);
                if (r < 0)
                        return r;
                if (r > 0)
                        continue;
                usec_t n = now_usec();
                if (n >= deadline)
                        return -ETIMEDOUT;
                r = sd_bus_wait(bus, deadline - n);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int unit_job(sd_bus *bus, UnitAction a, const char *unit, usec_t timeout, char **ret_message) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        const char *method = a == UNIT_ACTION_STOP ? "StopUnit" : "RestartUnit";
        JobWait w = {};
        int r;

        r = sd_bus_match_signal(bus, &slot, SD_DEST, SD_PATH, SD_MANAGER, "JobRemoved", on_job_removed, &w);
        if (r < 0)
                return map_bus_error(r, NULL, unit, unit_action_to_string(a), ret_message);
        /* without a subscriber systemd may not emit job signals; failure is not fatal */
        (void) sd_bus_call_method(bus, SD_DEST, SD_PATH, SD_MANAGER, "Subscribe", NULL, NULL, NULL);

        r = sd_bus_call_method(bus, SD_DEST, SD_PATH, SD_MANAGER, method, &e, &reply, "ss", unit, "replace");
        if (r < 0)
                return map_bus_error(r, &e, unit, unit_action_to_string(a), ret_message);
        r = sd_bus_message_read(reply, "o", &w.path);
        if (r < 0)
                return map_bus_error(r, NULL, unit, unit_action_to_string(a), ret_message);

        r = wait_for_job(bus, &w, timeout);
        if (r == -ETIMEDOUT) {
                *ret_message = strdup_printf("Timed out waiting for the %s job of %s (%s)",
                                             unit_action_to_string(a), unit, w.path);
                return r;
        }
        if (r < 0) {
                free(w.result);
                return map_bus_error(r, NULL, unit, unit_action_to_string(a), ret_message);
        }
        if (strcmp(w.result, "done") != 0) {
                *ret_message = strdup_printf("Job for %s %s: %s (see 'systemctl status %s' and "
                                             "'journalctl -xeu %s')",
                                             unit, strcmp(w.result, "failed") == 0 ? "failed" : "did not finish",
                                             w.result, unit, unit);
                free(w.result);
                return -EIO;
        }
        free(w.result);
        return 0;
}

int unit_action(sd_bus *bus, UnitAction a, const char *unit, usec_t timeout, char **ret_message) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        const char *who = "all";
        int sig = SIGKILL, r;

        switch (a) {
        case UNIT_ACTION_STOP:
        case UNIT_ACTION_RESTART:
                return unit_job(bus, a, unit, timeout, ret_message);
        case UNIT_ACTION_KILL:
                break;
        case UNIT_ACTION_HANG:
                who = "main";
                sig = SIGSTOP;
                break;
        case UNIT_ACTION_RESUME:
                who = "main";
                sig = SIGCONT;
                break;
        default:
                return -EINVAL;
        }

        r = sd_bus_call_method(bus, SD_DEST, SD_PATH, SD_MANAGER, "KillUnit", &e, NULL, "ssi", unit, who, sig);
        if (r < 0)
                return map_bus_error(r, &e, unit, unit_action_to_string(a), ret_message);
        return 0;
}
