/*
 * cmd_sync.c - `certfleet sync`: the fleet a JSON file declares, applied: the plan first, then
 * new and changed certificates queued and the ones gone from the file retired, in one
 * transaction; --revoke-retired then revokes what the retired ones hold.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "db.h"
#include "fleetcheck.h"
#include "fleetfile.h"
#include "log.h"
#include "pgarray.h"
#include "revoke.h"
#include "sync.h"

struct sync_opts {
	const char *file;
	bool dry_run;
	bool revoke_retired;
	const char *label;
	int max_attempts;
	bool help;
};

static void
sync_help(void)
{
	printf("usage: certfleet sync --file FILE [--dry-run] [--revoke-retired] [OPTIONS]\n\n"
	       "Makes the fleet the one FILE declares ('-' for standard input), in the JSON of\n"
	       "certfleet enqueue --json (see its --help: {\"certificates\": [...]}, or terraform output\n"
	       "-json). A certificate is known by its set of names. The plan comes first, one line each:\n"
	       "  + NAMES           new (or retired before): added and queued\n"
	       "  ~ NAMES: WHAT     its key type, provider, profile or CA differ: stored, and a new\n"
	       "                    order queued (a new provider publishes the records itself: the\n"
	       "                    old provider's records are left for you to remove)\n"
	       "  - NAMES           in the fleet, not in FILE: retired (certificates.retired_at): no\n"
	       "                    longer renewed nor listed by records; its rows stay for reports\n"
	       "A member the file leaves out means the default: key_type ec-p256, provider the\n"
	       "default provider (env CERTFLEET_PROVIDER, else challtestsrv), profile the CA's\n"
	       "default, ca --directory. Then the plan is applied in one transaction (jobs in one\n"
	       "run); a second sync of the same file finds nothing to do. The unfinished job of a\n"
	       "retired certificate is cancelled (a running one at its run's next lease renewal).\n"
	       "Bad input (see enqueue --json; two certificates with the same names, naming both\n"
	       "indexes) changes nothing; neither does a file with no certificates, which would\n"
	       "retire the whole fleet.\n\n"
	       "Options:\n"
	       "  --file FILE         the declared fleet (required)\n"
	       "  --dry-run           print the plan only\n"
	       "  --revoke-retired    after applying, revoke the current certificates of the retired\n"
	       "                      ones at their CA (reason cessationOfOperation)\n"
	       "  --label TEXT        a label for the run of the queued jobs\n"
	       "  --max-attempts N    attempts per job before it fails for good (default 5)\n\n"
	       "Exit codes: 0 applied (or nothing to do), 1 runtime failure (database, CA; nothing\n"
	       "applied when it came before the commit), 2 bad input (nothing changed), 3 applied but\n"
	       "some revocations failed.\n\n%s", CONFIG_COMMON_HELP);
}

static const struct option sync_options[] = {
	{ "file", required_argument, NULL, 'f' },
	{ "dry-run", no_argument, NULL, 'D' },
	{ "revoke-retired", no_argument, NULL, 'R' },
	{ "label", required_argument, NULL, 'l' },
	{ "max-attempts", required_argument, NULL, 'a' },
	CONFIG_COMMON_OPTIONS,
	{ 0 },
};

/* The flags: EXIT_OK (check o->help) or EXIT_USAGE. */
static int
sync_parse(struct config *cfg, int argc, char **argv, struct sync_opts *o)
{
	int opt;
	long v;

	*o = (struct sync_opts){ 0 };
	while ((opt = getopt_long(argc, argv, "f:" CONFIG_COMMON_SHORT, sync_options, NULL)) != -1) {
		switch (opt) {
		case 'h':
			sync_help();
			o->help = true;
			return EXIT_OK;
		case 'f':
			o->file = optarg;
			break;
		case 'D':
			o->dry_run = true;
			break;
		case 'R':
			o->revoke_retired = true;
			break;
		case 'l':
			o->label = optarg;
			break;
		case 'a':
			if (cmd_parse_long("--max-attempts", optarg, 1, 100, &v) != 0)
				return EXIT_USAGE;
			o->max_attempts = (int)v;
			break;
		default:
			if (!config_common_option(cfg, opt, optarg))
				return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		log_error("sync: unexpected argument \"%s\"", argv[optind]);
		return EXIT_USAGE;
	}
	if (o->file == NULL) {
		log_error("sync: no --file: name the declared fleet (a JSON file, '-' for standard input)");
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

static const char *const sql_revocable =
    "SELECT DISTINCT certificate_id FROM results WHERE certificate_id = ANY ($1::bigint[]) "
    "AND is_current AND revoked_at IS NULL";

/* Revokes the current results of the retired certificates of p. EXIT_OK, or the exit code. */
static int
sync_revoke(const struct config *cfg, PGconn *c, const struct sync_plan *p)
{
	struct http_settings hs = { .ca_bundle = cfg->ca_bundle, .allow_http_loopback = cfg->allow_http_loopback };
	struct revoke_sel sel = { 0 };
	struct revoke_target *t = NULL;
	struct pgarray ids = { 0 };
	PGresult *res = NULL;
	int64_t *certs = NULL;
	size_t n = 0, failed = 0, done = 0;
	bool unreachable = false;
	cf_err err;
	int rc = EXIT_FAILURE_RUNTIME;

	for (size_t i = 0; i < p->n; i++)
		if (p->items[i].kind == SYNC_RETIRE)
			pgarray_add_i64(&ids, p->items[i].certificate_id);
	const char *pr[] = { pgarray_finish(&ids) };
	if (pr[0] == NULL || (res = db_exec(c, "sync: finding the retired certificates' results", sql_revocable, 1, pr,
	    &err)) == NULL)
		goto fail;
	if (PQntuples(res) == 0) {
		rc = EXIT_OK;
		goto out;
	}
	if ((certs = calloc((size_t)PQntuples(res), sizeof(*certs))) == NULL) {
		log_error("sync: --revoke-retired: out of memory");
		goto out;
	}
	for (int r = 0; r < PQntuples(res); r++)
		certs[r] = db_get_i64(res, r, "certificate_id");
	sel.certs = certs;
	sel.ncerts = (size_t)PQntuples(res);
	if (revoke_select(c, &sel, &t, &n, &err) != 0 ||
	    revoke_run(c, t, n, "cessationOfOperation", &hs, &unreachable, &err) != 0)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		failed += t[i].state == REVOKE_FAILED;
		done += t[i].state == REVOKE_DONE;
		if (t[i].state == REVOKE_FAILED)
			log_error("sync: revoking certificate %" PRId64 " serial %s (%s): %s", t[i].certificate_id,
			    t[i].serial, t[i].names, t[i].why);
	}
	printf("revoked %zu certificate%s of the retired (reason cessationOfOperation), %zu failed\n", done,
	    done == 1 ? "" : "s", failed);
	rc = unreachable ? EXIT_FAILURE_RUNTIME : failed ? EXIT_JOBS_FAILED : EXIT_OK;
	goto out;
fail:
	log_error("sync: --revoke-retired: %s", pr[0] ? err.msg : "out of memory");
out:
	revoke_targets_free(t, n);
	free(certs);
	PQclear(res);
	pgarray_free(&ids);
	return rc;
}

int
cmd_sync(struct config *cfg, int argc, char **argv)
{
	struct sync_opts o;
	struct fleet f = { 0 };
	struct sync_plan p = { 0 };
	struct sync_defaults d;
	int64_t *accts = NULL;
	PGconn *c = NULL;
	const char *source;
	cf_err err;
	int rc, r;

	if ((rc = sync_parse(cfg, argc, argv, &o)) != EXIT_OK || o.help)
		return rc;
	d.provider = cfg->provider;
	source = strcmp(o.file, "-") == 0 ? "stdin" : o.file;
	if ((r = fleet_read(o.file, &f, &err)) != 0) {
		log_error("sync: %s: nothing changed", err.msg);
		return r > 0 ? EXIT_USAGE : EXIT_FAILURE_RUNTIME;
	}
	rc = EXIT_USAGE;
	if (f.n == 0) {
		log_error("sync: %s: no certificates: that would retire the whole fleet; nothing changed", source);
		goto out;
	}
	if (o.revoke_retired && !o.dry_run &&
	    ((rc = cmd_protect_memory("sync")) != EXIT_OK || (rc = cmd_keyring("sync", false)) != EXIT_OK))
		goto out;
	rc = EXIT_FAILURE_RUNTIME;
	if ((accts = calloc(f.n, sizeof(*accts))) == NULL) {
		log_error("sync: out of memory");
		goto out;
	}
	if ((c = cmd_connect(cfg, true)) == NULL) {
		rc = cmd_connect_failure();
		goto out;
	}
	if ((rc = fleet_check(cfg, c, &f, source, "sync", accts)) != EXIT_OK)
		goto out;
	rc = EXIT_FAILURE_RUNTIME;
	if (sync_plan_make(c, &f, accts, &d, &p, &err) != 0) {
		log_error("%s: nothing changed", err.msg);
		goto out;
	}
	sync_plan_print(stdout, &p);
	if (p.n == 0) {
		printf("no changes: the fleet matches %s\n", source);
		rc = EXIT_OK;
		goto out;
	}
	if (o.dry_run) {
		printf("dry run: %ld to add, %ld to change, %ld to retire; nothing changed\n", p.added, p.changed, p.retired);
		rc = EXIT_OK;
		goto out;
	}
	if (sync_apply(c, &p, &d, o.max_attempts, o.label, &err) != 0) {
		log_error("%s: nothing changed", err.msg);
		goto out;
	}
	printf("applied: %ld added, %ld changed, %ld retired; %ld job%s queued", p.added, p.changed, p.retired,
	    p.jobs_added, p.jobs_added == 1 ? "" : "s");
	if (p.run_id)
		printf(" in run %" PRId64, p.run_id);
	if (p.jobs_cancelled)
		printf("; %ld job%s of retired certificates cancelled", p.jobs_cancelled, p.jobs_cancelled == 1 ? "" : "s");
	printf("\n");
	fflush(stdout);
	rc = EXIT_OK;
	if (o.revoke_retired && p.retired > 0)
		rc = sync_revoke(cfg, c, &p);
out:
	sync_plan_free(&p);
	free(accts);
	PQfinish(c);
	fleet_free(&f);
	return rc;
}
