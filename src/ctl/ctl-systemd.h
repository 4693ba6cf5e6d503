/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ctl-systemd — fusionctl's blocking calls to systemd over the system bus:
 * unit ActiveState/SubState for `status`, and the failure drills (KillUnit,
 * StopUnit, RestartUnit with the job waited for).
 */
#pragma once

#include <errno.h>
#include <stddef.h>

#include <systemd/sd-bus.h>

#include "util.h"

typedef enum UnitAction {
        UNIT_ACTION_KILL,      /* KillUnit(unit, "all", SIGKILL) */
        UNIT_ACTION_STOP,      /* StopUnit(unit, "replace"), job waited for */
        UNIT_ACTION_RESTART,   /* RestartUnit(unit, "replace"), job waited for */
        UNIT_ACTION_HANG,      /* KillUnit(unit, "main", SIGSTOP) */
        UNIT_ACTION_RESUME,    /* KillUnit(unit, "main", SIGCONT) */
        _UNIT_ACTION_MAX,
        _UNIT_ACTION_INVALID = -EINVAL,
} UnitAction;

const char *unit_action_to_string(UnitAction a);
UnitAction unit_action_from_string(const char *s);

/* Errors a user must see explained; unit_action() and unit_get_state()
 * return these and fill *ret_message (malloc'd). */
#define UNIT_ERR_NO_BUS (-ENOTCONN)
#define UNIT_ERR_NO_UNIT (-ENOENT)
#define UNIT_ERR_ACCESS (-EACCES)

int ctl_bus_open(sd_bus **ret);

/* ActiveState/SubState of a unit ("not-found"/"" when systemd has no such
 * unit file). */
int unit_get_state(sd_bus *bus, const char *unit, char **ret_active, char **ret_sub);

/* Run an action; for stop/restart wait for the job until timeout. */
int unit_action(sd_bus *bus, UnitAction a, const char *unit, usec_t timeout, char **ret_message);
