/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fdbroker.h: the one header of libfdbroker-client.
 *
 *     #include <fdbroker/fdbroker.h>
 *
 * and link with `pkg-config --cflags --libs fdbroker-client`. FdbClient is the
 * API for applications; the generated FdbBroker1 proxy (one C function per
 * bus method, fd lists by hand) is there for what FdbClient does not cover. */
#pragma once

#define FDBROKER_INSIDE

#include <fdbroker/fdb-version.h>
#include <fdbroker/fdb-error.h>
#include <fdbroker/fdb-enum-types.h>
#include <fdbroker/fdb-options.h>
#include <fdbroker/fdb-entry-info.h>
#include <fdbroker/fdb-broker1-generated.h>
#include <fdbroker/fdb-client.h>

#undef FDBROKER_INSIDE
