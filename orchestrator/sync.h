/*
 * sync.h - the declared fleet against the stored one: a plan of certificates to add (+), change
 * (~) and retire (-), and its application in one transaction.
 */
#ifndef CF_SYNC_H
#define CF_SYNC_H

#include <libpq-fe.h>
#include <stdint.h>
#include <stdio.h>

#include "cf.h"
#include "fleetfile.h"

enum sync_kind {
	SYNC_ADD = '+',          /* not in the fleet, or retired from it */
	SYNC_CHANGE = '~',       /* key type, provider, profile or CA differ */
	SYNC_RETIRE = '-',       /* active, not in the file */
};

struct sync_item {
	enum sync_kind kind;
	const struct fleet_cert *fc; /* SYNC_ADD, SYNC_CHANGE: the file's certificate */
	int64_t account_id;      /* SYNC_ADD, SYNC_CHANGE: the account of its CA */
	int64_t certificate_id;  /* SYNC_CHANGE, SYNC_RETIRE; SYNC_ADD after sync_apply */
	char *names;             /* comma-separated, for the plan */
	char *what;              /* SYNC_CHANGE: what changed ("key type ec-p256 -> rsa-2048, ...") */
};

struct sync_plan {
	struct sync_item *items;
	size_t n;
	long added, changed, retired;
	int64_t run_id;          /* after sync_apply: the run of the jobs it queued, 0 when none */
	long jobs_added;
	long jobs_cancelled;     /* after sync_apply: jobs of retired certificates cancelled */
};

/* What a certificate gets when the file does not say. */
struct sync_defaults {
	const char *provider;
};

/*
 * The plan for f against the database: account_ids[i] is the account of f's certificate i (as
 * fleet_check resolved it). Items come in the file's order, then the retired by id.
 */
int sync_plan_make(PGconn *c, const struct fleet *f, const int64_t *account_ids, const struct sync_defaults *d,
    struct sync_plan *out, cf_err *err) CF_MUST;

/* One line per item: "+ names", "~ names: what", "- names". */
void sync_plan_print(FILE *out, const struct sync_plan *p);

/*
 * Applies p in one transaction: the added and changed certificates are queued (one run; every
 * setting of the file stored, a retired certificate returns), the retired ones get retired_at
 * and their unfinished jobs are cancelled (a running one at its run's next lease renewal). All or
 * nothing.
 */
int sync_apply(PGconn *c, struct sync_plan *p, const struct sync_defaults *d, int max_attempts,
    const char *label, cf_err *err) CF_MUST;

void sync_plan_free(struct sync_plan *p);

#endif
