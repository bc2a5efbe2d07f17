/*
 * deploy.h - delivering issued certificates: export the current results not yet deployed, run a
 * deploy hook for each (no shell, an allowlisted environment, a timeout), record each attempt in
 * deploy_events and set results.deployed_at when it succeeded; with follow, LISTEN on
 * certfleet_issued and deliver as results arrive.
 *
 * store.c sends NOTIFY certfleet_issued with the payload "<certificate id> <result id>" for each
 * result it writes, in the transaction that writes it.
 */
#ifndef CF_DEPLOY_H
#define CF_DEPLOY_H

#include <signal.h>
#include <stdbool.h>

#include "config.h"
#include "export.h"

#define DEPLOY_CHANNEL "certfleet_issued"
#define DEPLOY_EXCERPT_MAX 4096 /* octets of a hook's output kept in deploy_events.detail */

struct deploy_opts {
	const char *dir;        /* the export folder */
	const char *hook;       /* the program run for each certificate delivered, or NULL */
	int timeout;            /* seconds a hook may run before it is killed */
	bool follow;            /* keep running: LISTEN, deliver as results arrive */
	int retry_after;        /* follow: seconds before a failed delivery is tried again */
};

/* Counts of a deploy, for its summary. */
struct deploy_counts {
	long deployed, unchanged, failed;
};

/*
 * Whether path can be a hook: a regular file this process may execute. 1 with err naming path
 * when not.
 */
int deploy_hook_check(const char *path, cf_err *err) CF_MUST;

/*
 * Runs hook for t, exported into folder: argv is { hook, folder }, the environment only PATH and
 * the CERTFLEET_* variables of the README's "Deployment" section, standard input /dev/null,
 * standard output and error into a pipe of which the first DEPLOY_EXCERPT_MAX - 1 octets are
 * kept in excerpt. After timeout seconds its process group is killed. *status is its exit code,
 * 128 + the signal when a signal ended it. -1 with err when it could not be started.
 */
int deploy_hook_run(const char *hook, const char *folder, const struct export_cert *t, bool changed, int timeout,
    int *status, char excerpt[DEPLOY_EXCERPT_MAX], cf_err *err) CF_MUST;

/*
 * The deploy: one pass over the results not yet deployed, or with o->follow, passes until *stop
 * is set (a pass at start, at each NOTIFY, and every o->retry_after seconds; a lost connection is
 * made again). An exit code: EXIT_OK, EXIT_JOBS_FAILED when some deliveries of the one pass
 * failed, EXIT_USAGE for a folder or settings refused, EXIT_FAILURE_RUNTIME; with follow, EXIT_OK
 * once *stop is set.
 */
/*
 * How deploy_run connects: a connection with the schema checked, or NULL after logging why, with
 * *refused set when the settings were refused (no use trying again).
 */
typedef PGconn *deploy_connect_fn(const void *arg, bool *refused);

int deploy_run(deploy_connect_fn *connect, const void *arg, const struct deploy_opts *o,
    volatile sig_atomic_t *stop, struct deploy_counts *counts);

#endif
