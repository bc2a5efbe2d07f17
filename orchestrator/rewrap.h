/*
 * rewrap.h - sealing the private keys stored in PostgreSQL in place: plain keys of a database
 * written before keys were sealed (`certfleet migrate`), and keys sealed under an older KEK
 * (`certfleet keys rotate`).
 */
#ifndef CF_REWRAP_H
#define CF_REWRAP_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "cf.h"
#include "keyring.h"

#define REWRAP_BATCH 1000 /* rows per transaction */

struct rewrap_counts {
	long accounts, orders, results;
};

/*
 * Counts the plain keys stored (*plain) and checks that kr opens every sealed one: -1 with err
 * naming the first KEK id kr lacks, and how many values it sealed (kr NULL: counts only).
 * Changes nothing.
 */
int rewrap_check(PGconn *c, const struct keyring *kr, long *plain, cf_err *err) CF_MUST;

/*
 * Seals under kr's current KEK every stored key that is plain (only_plain) or not sealed under it
 * yet, REWRAP_BATCH rows per transaction; what was sealed is counted in *out. Running it again
 * finds nothing to do. Call rewrap_check first: a key that does not open stops it with err (the
 * batches before it stay committed, and are sealed correctly).
 */
int rewrap_all(PGconn *c, const struct keyring *kr, bool only_plain, struct rewrap_counts *out, cf_err *err) CF_MUST;

#endif
