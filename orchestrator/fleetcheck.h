/*
 * fleetcheck.h - what a declared fleet (fleetfile.h) needs before it is stored: an account for
 * each CA it names, the DNS provider accounts it names, and the profiles each CA offers.
 */
#ifndef CF_FLEETCHECK_H
#define CF_FLEETCHECK_H

#include <libpq-fe.h>
#include <stdint.h>

#include "config.h"
#include "fleetfile.h"

/*
 * Checks every certificate of f (from source) against the database and the CAs: its ca (else
 * cfg's directory) has an account, which goes to account_ids[i]; its provider (else cfg's) is
 * configured; its profile is one its CA lists. EXIT_OK, or the exit code after logging why,
 * prefixed by cmd and naming source and the certificate's index.
 */
int fleet_check(const struct config *cfg, PGconn *c, const struct fleet *f, const char *source,
    const char *cmd, int64_t *account_ids);

#endif
