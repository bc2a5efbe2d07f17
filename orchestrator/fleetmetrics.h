/* fleetmetrics.h - the fleet's own gauges, read from PostgreSQL, for `certfleet metrics`. */
#ifndef CF_FLEETMETRICS_H
#define CF_FLEETMETRICS_H

#include <libpq-fe.h>

#include "cf.h"

/*
 * Reads the fleet from PostgreSQL (a handful of aggregate queries, whatever the fleet's size) and
 * appends the exposition of every fleet family to out. -1 with err set.
 */
int fleetmetrics_render(PGconn *c, cf_buf *out, cf_err *err) CF_MUST;

#endif
