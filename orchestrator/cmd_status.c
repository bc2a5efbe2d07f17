/* cmd_status.c - `certfleet status`: queue counts, per CA, and the latest failures. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "db.h"
#include "log.h"

int
cmd_status(struct config *cfg, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "failures", required_argument, NULL, 'f' },
		CONFIG_COMMON_OPTIONS,
		{ 0 },
	};
	long nfail = 20;
	PGconn *c = NULL;
	PGresult *res = NULL;
	cf_err err;
	int opt, rc = EXIT_FAILURE_RUNTIME;
	char lim[24];

	while ((opt = getopt_long(argc, argv, CONFIG_COMMON_SHORT, opts, NULL)) != -1) {
		if (opt == 'f') {
			if (cmd_parse_long("--failures", optarg, 0, 100000, &nfail) != 0)
				return EXIT_USAGE;
		} else if (opt == 'h') {
			printf("usage: certfleet status [--failures N] [OPTIONS]\n\n"
			       "Prints the number of jobs in each state, the jobs queued or running per CA (its\n"
			       "directory and account), and the N latest failed jobs (default 20) with the CA's\n"
			       "problem type and detail.\n\n%s", CONFIG_COMMON_HELP);
			return EXIT_OK;
		} else if (!config_common_option(cfg, opt, optarg)) {
			return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		log_error("status: unexpected argument \"%s\"", argv[optind]);
		return EXIT_USAGE;
	}
	if ((c = cmd_connect(cfg, true)) == NULL)
		return cmd_connect_failure();
	res = db_exec(c, "counting jobs",
	    "SELECT s.state, count(j.id) AS n FROM unnest(ARRAY['ready','running','issued','failed','cancelled']) "
	    "WITH ORDINALITY AS s(state, ord) LEFT JOIN jobs j ON j.state = s.state GROUP BY s.state, s.ord "
	    "ORDER BY s.ord", 0, NULL, &err);
	if (res == NULL)
		goto fail;
	printf("jobs by state:\n");
	for (int r = 0; r < PQntuples(res); r++)
		printf("  %-10s %s\n", PQgetvalue(res, r, 0), PQgetvalue(res, r, 1));
	PQclear(res);
	res = db_exec(c, "counting unfinished jobs per CA",
	    "SELECT a.id, a.directory_url, count(*) FILTER (WHERE j.state = 'ready') AS ready, "
	    "count(*) FILTER (WHERE j.state = 'running') AS running FROM unfinished_jobs u "
	    "JOIN jobs j ON j.id = u.job_id JOIN accounts a ON a.id = u.account_id "
	    "GROUP BY a.id, a.directory_url ORDER BY a.id", 0, NULL, &err);
	if (res == NULL)
		goto fail;
	if (PQntuples(res) > 0)
		printf("queued or running by CA:\n");
	for (int r = 0; r < PQntuples(res); r++)
		printf("  %s (account %s): %s ready, %s running\n", db_get(res, r, "directory_url"), db_get(res, r, "id"),
		    db_get(res, r, "ready"), db_get(res, r, "running"));
	PQclear(res);
	snprintf(lim, sizeof(lim), "%ld", nfail);
	const char *p[] = { lim };
	res = db_exec(c, "listing failures",
	    "SELECT j.id, array_to_string(ce.names, ',') AS names, j.attempts, coalesce(j.last_problem_type, '') AS type, "
	    "coalesce(j.last_error, '') AS detail FROM jobs j JOIN certificates ce ON ce.id = j.certificate_id "
	    "WHERE j.state = 'failed' ORDER BY j.finished_at DESC NULLS LAST, j.id DESC LIMIT $1::int",
	    1, p, &err);
	if (res == NULL)
		goto fail;
	if (PQntuples(res) > 0)
		printf("latest failures:\n");
	for (int r = 0; r < PQntuples(res); r++) {
		/* the type and detail may be the CA's or a provider's words: quoted for the terminal */
		const char *type = db_get(res, r, "type"), *detail = db_get(res, r, "detail");
		char qtype[4 * 120 + 8], qdetail[4 * 600 + 8];
		cf_quote(qtype, sizeof(qtype), type, strlen(type), 120);
		cf_quote(qdetail, sizeof(qdetail), detail, strlen(detail), 600);
		printf("  job %s [%s] after %s attempt(s): %s: %s\n", db_get(res, r, "id"), db_get(res, r, "names"),
		    db_get(res, r, "attempts"), qtype, qdetail);
	}
	rc = EXIT_OK;
	goto out;
fail:
	log_error("status: %s", err.msg);
out:
	PQclear(res);
	PQfinish(c);
	return rc;
}
