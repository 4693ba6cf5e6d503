/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * request — handles one request line of a client connection (see request.c).
 */
#pragma once

#include <stddef.h>

#include "conn.h"

/* Answer (or queue) one request. Negative: close the connection. */
int request_handle(Conn *c, char *line, size_t len);
