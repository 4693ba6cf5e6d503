/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* crc32c — CRC-32C (Castagnoli), the checksum of message log records. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Start with crc = 0; chain calls to checksum several buffers as one. */
uint32_t crc32c(uint32_t crc, const void *data, size_t len);
