/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fusion-ids — the fixed journal MESSAGE_IDs of fusion's events. The catalog
 * (units/fusion.catalog) explains each; `journalctl MESSAGE_ID=<id>` finds them.
 */
#pragma once

#define FUSION_MESSAGE_PRIMARY_LOST   "e043017d962c4e40bbc43755b9d1d47c"
#define FUSION_MESSAGE_PROMOTION      "d64db1b5024949868179f34b90865a1e"
#define FUSION_MESSAGE_DEMOTION       "5638c9671e01438faca32557840451f7"
#define FUSION_MESSAGE_UNIT_RESTARTED "09d1614ca97b42528d5f17d14d9cbf8e"
#define FUSION_MESSAGE_FENCING        "1a4a058e29fb41a38ec1ce7ec9e4526c"
#define FUSION_MESSAGE_MONITOR_TILT   "e71b391e652244788db9acc0ebf9e135"
#define FUSION_MESSAGE_LOG_RECOVERED  "e692c91cfd684959a896a4831df76b9d"
#define FUSION_MESSAGE_SWITCHOVER     "6f0ff69aac5a4b21bd463df42fa73878"
