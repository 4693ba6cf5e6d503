/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * peerauth-internal — what peerauth.c (cluster key, handshake, client token)
 * and peerauth-tag.c (per-line tags, seal/open) share. Not part of the API:
 * include peerauth.h from anywhere else.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define DIR_C2S 'c'   /* connector to acceptor */
#define DIR_S2C 's'

/* Exactly n lower-case hex digits (peerauth-tag.c). */
bool peerauth_is_lower_hex(const char *s, size_t n);
