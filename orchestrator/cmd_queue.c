/*
 * cmd_queue.c - `certfleet cancel` (jobs, a run, or everything queued; the statement is the queue's)
 * and `certfleet cleanup` (retention).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "db.h"
#include "log.h"
#include "queue.h"

int
cmd_cancel(struct config *cfg, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "job", required_argument, NULL, 'j' },
		{ "run", required_argument, NULL, 'r' },
		{ "all", no_argument, NULL, 'a' },
		CONFIG_COMMON_OPTIONS,
		{ 0 },
	};
	const char *job = NULL, *run = NULL;
	bool all = false;
	PGconn *c = NULL;
	long v, now, later;
	cf_err err;
	int opt;

	while ((opt = getopt_long(argc, argv, CONFIG_COMMON_SHORT, opts, NULL)) != -1) {
		switch (opt) {
		case 'j':
			if (cmd_parse_long("--job", optarg, 1, LONG_MAX, &v) != 0)
				return EXIT_USAGE;
			job = optarg;
			break;
		case 'r':
			if (cmd_parse_long("--run", optarg, 1, LONG_MAX, &v) != 0)
				return EXIT_USAGE;
			run = optarg;
			break;
		case 'a':
			all = true;
			break;
		case 'h':
			printf("usage: certfleet cancel (--job ID | --run ID | --all) [OPTIONS]\n\n"
			       "Cancels queued and running jobs: one job, a run (the jobs one enqueue added; its id\n"
			       "is printed by enqueue), or every job not finished yet. Queued jobs are cancelled at\n"
			       "once; running ones stop at their run's next lease renewal.\n\n%s", CONFIG_COMMON_HELP);
			return EXIT_OK;
		default:
			if (!config_common_option(cfg, opt, optarg))
				return EXIT_USAGE;
		}
	}
	if (optind != argc || (job != NULL) + (run != NULL) + all != 1) {
		log_error("cancel: give exactly one of --job ID, --run ID, --all");
		return EXIT_USAGE;
	}
	if ((c = cmd_connect(cfg, true)) == NULL)
		return cmd_connect_failure();
	if (queue_cancel(c, job, run, &now, &later, &err) != 0) {
		log_error("%s", err.msg);
		PQfinish(c);
		return EXIT_FAILURE_RUNTIME;
	}
	printf("cancelled %ld queued job(s); %ld running job(s) will stop at their next lease renewal\n",
	    now, later);
	PQfinish(c);
	return EXIT_OK;
}

/* Orders go with their jobs (ON DELETE CASCADE), events are deleted here; results keep a NULL job. */
static const char *const sql_cleanup =
    "WITH d AS (DELETE FROM jobs WHERE finished_at < now() - $1::int * interval '1 day' RETURNING id), "
    "e AS (DELETE FROM events WHERE job_id IN (SELECT id FROM d)) "
    "SELECT count(*) AS jobs FROM d";

int
cmd_cleanup(struct config *cfg, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "older-than", required_argument, NULL, 'o' },
		CONFIG_COMMON_OPTIONS,
		{ 0 },
	};
	long days = 30;
	char dbuf[24];
	PGconn *c = NULL;
	PGresult *res;
	cf_err err;
	int opt;

	while ((opt = getopt_long(argc, argv, CONFIG_COMMON_SHORT, opts, NULL)) != -1) {
		if (opt == 'o') {
			if (cmd_parse_long("--older-than", optarg, 0, 36500, &days) != 0)
				return EXIT_USAGE;
		} else if (opt == 'h') {
			printf("usage: certfleet cleanup [--older-than DAYS] [OPTIONS]\n\n"
			       "Deletes finished jobs (issued, failed, cancelled) older than DAYS (default 30),\n"
			       "with their orders and events, to keep the queue small. Results stay.\n\n%s",
			    CONFIG_COMMON_HELP);
			return EXIT_OK;
		} else if (!config_common_option(cfg, opt, optarg)) {
			return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		log_error("cleanup: unexpected argument \"%s\"", argv[optind]);
		return EXIT_USAGE;
	}
	if ((c = cmd_connect(cfg, true)) == NULL)
		return cmd_connect_failure();
	snprintf(dbuf, sizeof(dbuf), "%ld", days);
	const char *p[] = { dbuf };
	res = db_exec(c, "cleanup", sql_cleanup, 1, p, &err);
	if (res == NULL) {
		log_error("%s", err.msg);
		PQfinish(c);
		return EXIT_FAILURE_RUNTIME;
	}
	printf("deleted %s finished job(s) older than %ld day(s)\n", db_get(res, 0, "jobs"), days);
	PQclear(res);
	PQfinish(c);
	return EXIT_OK;
}
