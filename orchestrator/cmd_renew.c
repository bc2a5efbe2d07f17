/*
 * cmd_renew.c - `certfleet renew`: parses the options and wires the steps of renew.c (load, the
 * CAs' directories, ARI checks, decisions, one transaction), then prints the due certificates and
 * a summary.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commands.h"
#include "dnsname.h"
#include "log.h"
#include "queue.h"
#include "renew.h"

static void
renew_help(void)
{
	printf("usage: certfleet renew [OPTIONS]\n\n"
	       "Finds the certificates that are due for renewal and queues them as one run, for\n"
	       "`certfleet run` to work. It looks at every current certificate that has no job queued\n"
	       "or running and is not retired (by certfleet sync), whichever CA (account) it came from,\n"
	       "and asks each CA's renewalInfo (ARI, RFC 9773) about those whose next check is due.\n"
	       "A certificate is due, in this order:\n"
	       "  revoked   it was revoked (results.revoked_at);\n"
	       "  ari       the renewal time drawn at random inside the CA's suggested window has come\n"
	       "            (at once when the window has passed);\n"
	       "  lifetime  no window ever came from the CA (no renewalInfo in its directory, the CA\n"
	       "            does not know the certificate, or its answers fail), and two thirds of its\n"
	       "            lifetime have passed (half of it for lifetimes under 10 days);\n"
	       "  forced    named by --force or --force-all, and not due otherwise.\n"
	       "Each job records its reason, and the order it makes carries the CertID of the\n"
	       "certificate it replaces (newOrder \"replaces\"). The CA's Retry-After sets the next\n"
	       "check (at least 1 minute, at most 1 day; 6 hours without one; 1 hour after a failed\n"
	       "check). A failed check keeps the stored window, is recorded in results.ari_error and\n"
	       "is retried at the next check. The ARI state and the jobs are written in one transaction.\n"
	       "Output: one line per due certificate (id, primary name, reason, detail; tab-separated),\n"
	       "then a summary line; progress goes to standard error every 2 s while checking (on a\n"
	       "terminal as one live line, rewritten in place).\n\n"
	       "Options:\n"
	       "  -n, --dry-run       print the due certificates and why, with their ARI windows, and\n"
	       "                      change nothing (no ARI state is stored either)\n"
	       "  --force NAME        renew the certificate(s) holding NAME even when not due (reason\n"
	       "                      forced); repeatable; a NAME no current certificate without a job\n"
	       "                      in flight holds is an error (exit 2)\n"
	       "  --force-all         renew every current certificate\n"
	       "  --label TEXT        the run's label (default renew)\n"
	       "  --max-attempts N    attempts per job before it fails for good (default 5)\n"
	       "  --inflight N        renewalInfo requests at once (default 64)\n"
	       "  --ca-limits SPEC    rate limits towards each CA (env CERTFLEET_CA_LIMITS), as for run;\n"
	       "                      renewalInfo requests count as other\n"
	       "  --no-progress       no progress lines on standard error\n\n"
	       "Exit codes: 0 done (the due certificates queued, or none due); 1 runtime failure\n"
	       "(database unreachable, internal error; nothing stored); 2 bad usage (nothing changed);\n"
	       "3 done, but some renewalInfo checks failed (see results.ari_error; they are retried at\n"
	       "their next check, and the certificates they concern stay with their stored window or the\n"
	       "lifetime rule).\n\n%s",
	    CONFIG_COMMON_HELP);
}

struct renew_cmd_opts {
	bool dry_run;
	bool force_all;
	char **force;             /* normalized --force names */
	size_t nforce;
	const char *label;
	int max_attempts;
	int inflight;
	const char *ca_spec;
	bool no_progress;
	bool help;
};

static const struct option renew_options[] = {
	{ "dry-run", no_argument, NULL, 'n' },
	{ "force", required_argument, NULL, 'F' },
	{ "force-all", no_argument, NULL, 'A' },
	{ "label", required_argument, NULL, 'l' },
	{ "max-attempts", required_argument, NULL, 'a' },
	{ "inflight", required_argument, NULL, 'i' },
	{ "ca-limits", required_argument, NULL, 'c' },
	{ "no-progress", no_argument, NULL, 'P' },
	CONFIG_COMMON_OPTIONS,
	{ 0 },
};

static int
add_force(struct renew_cmd_opts *o, const char *arg)
{
	char norm[DNSNAME_MAX];
	char **f;
	cf_err err;

	if (dnsname_normalize(arg, norm, &err) != 0) {
		log_error("renew: --force: %s", err.msg);
		return 0;
	}
	if ((f = realloc(o->force, (o->nforce + 1) * sizeof(*f))) == NULL || (f[o->nforce] = strdup(norm)) == NULL) {
		o->force = f ? f : o->force;
		log_error("renew: out of memory");
		return 0;
	}
	o->force = f;
	o->nforce++;
	return 1;
}

/* One of renew's own options: 1, 0 after logging a bad value, or -1 when opt is not one of them. */
static int
renew_option(struct renew_cmd_opts *o, int opt, const char *arg)
{
	long v;

	switch (opt) {
	case 'n':
		o->dry_run = true;
		return 1;
	case 'F':
		return add_force(o, arg);
	case 'A':
		o->force_all = true;
		return 1;
	case 'l':
		o->label = arg;
		return 1;
	case 'a':
		if (cmd_parse_long("--max-attempts", arg, 1, 100, &v) != 0)
			return 0;
		o->max_attempts = (int)v;
		return 1;
	case 'i':
		if (cmd_parse_long("--inflight", arg, 1, 4096, &v) != 0)
			return 0;
		o->inflight = (int)v;
		return 1;
	case 'c':
		o->ca_spec = arg;
		return 1;
	case 'P':
		o->no_progress = true;
		return 1;
	}
	return -1;
}

static int
renew_parse(struct config *cfg, int argc, char **argv, struct renew_cmd_opts *o)
{
	int opt, ok;

	*o = (struct renew_cmd_opts){ .label = "renew", .max_attempts = 5, .inflight = 64,
		.ca_spec = getenv("CERTFLEET_CA_LIMITS") };
	while ((opt = getopt_long(argc, argv, "n" CONFIG_COMMON_SHORT, renew_options, NULL)) != -1) {
		if (opt == 'h') {
			renew_help();
			o->help = true;
			return EXIT_OK;
		}
		ok = renew_option(o, opt, optarg);
		if (ok == 0 || (ok < 0 && !config_common_option(cfg, opt, optarg)))
			return EXIT_USAGE;
	}
	if (optind < argc) {
		log_error("renew: unexpected argument \"%s\" (certificates are named with --force)", argv[optind]);
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

static void
fmt_time(char *buf, size_t len, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, len, "%" PRId64, t);
}

/* One tab-separated line for a due certificate: id, primary name, reason, detail. */
static void
print_due(const struct renew_cert *rc)
{
	char a[32], b[32], t[32];
	size_t plen = strcspn(rc->names, " ");

	printf("%" PRId64 "\t%.*s\t%s\t", rc->certificate_id, (int)plen, rc->names, renew_reason_name(rc->reason));
	switch (rc->reason) {
	case RENEW_REVOKED:
		fmt_time(t, sizeof(t), rc->revoked_at);
		printf("revoked at %s", t);
		break;
	case RENEW_ARI:
		fmt_time(a, sizeof(a), rc->win_start);
		fmt_time(b, sizeof(b), rc->win_end);
		fmt_time(t, sizeof(t), rc->renew_at);
		printf("window %s..%s, renew at %s", a, b, t);
		if (rc->explanation_url)
			printf(", explanation %s", rc->explanation_url);
		break;
	case RENEW_LIFETIME:
		fmt_time(t, sizeof(t), rc->due_at);
		fmt_time(b, sizeof(b), rc->not_after);
		printf("%s of its lifetime passed at %s (not after %s)",
		    rc->not_after - rc->not_before < RENEW_SHORT_LIFETIME_S ? "half" : "two thirds", t, b);
		break;
	case RENEW_FORCED:
	case RENEW_NOT_DUE:
		printf("forced");
		break;
	}
	putchar('\n');
}

/* Marks the forced certificates; every --force name must be held by one of those loaded. */
static int
check_forced(const struct renew_cmd_opts *o, struct renew_set *s)
{
	bool *matched = o->nforce ? calloc(o->nforce, sizeof(*matched)) : NULL;
	int bad = 0;

	if (o->nforce && matched == NULL) {
		log_error("renew: out of memory");
		return -1;
	}
	renew_force(s, o->force, o->nforce, o->force_all, matched);
	for (size_t k = 0; k < o->nforce; k++)
		if (!matched[k]) {
			log_error("renew: --force %s: no current certificate without a job queued or running holds this name",
			    o->force[k]);
			bad++;
		}
	free(matched);
	return bad ? -1 : 0;
}

static int
renew_work(const struct config *cfg, const struct renew_cmd_opts *o, PGconn *c, struct renew_set *s)
{
	struct renew_options ro = { 0 };
	struct queue_renew_result qr = { 0 };
	size_t ndue;
	cf_err err;

	if (renew_load(c, s, &err) != 0) {
		log_error("%s", err.msg);
		return EXIT_FAILURE_RUNTIME;
	}
	if (check_forced(o, s) != 0)
		return EXIT_USAGE;
	ro.http.ca_bundle = cfg->ca_bundle;
	ro.http.timeout_ms = 30000;
	ro.http.connect_timeout_ms = 10000;
	ro.http.allow_http_loopback = cfg->allow_http_loopback;
	ro.ca_spec = o->ca_spec;
	ro.max_inflight = o->inflight;
	ro.progress = !o->no_progress;
	ro.now = cf_wall_ms() / 1000;
	if (renew_directories(s, &ro, &err) != 0) {
		log_error("renew: %s", err.msg);
		return EXIT_USAGE;
	}
	if (renew_check(s, &ro, &err) != 0) {
		log_error("%s: nothing was stored", err.msg);
		return EXIT_FAILURE_RUNTIME;
	}
	renew_decide(s, ro.now);
	for (size_t i = 0; i < s->n; i++)
		if (s->certs[i].reason != RENEW_NOT_DUE)
			print_due(&s->certs[i]);
	ndue = s->n - s->due[RENEW_NOT_DUE];
	if (!o->dry_run && renew_store(c, s, o->label, o->max_attempts, &qr, &err) != 0) {
		log_error("%s: nothing was stored", err.msg);
		return EXIT_FAILURE_RUNTIME;
	}
	printf("renew: %zu current certificates, %zu renewalInfo checks (%zu ok, %zu unknown to the CA, %zu failed), "
	       "%zu due (ari %zu, lifetime %zu, revoked %zu, forced %zu); ",
	    s->n, s->checks, s->checks_ok, s->checks_unknown, s->checks_failed, ndue, s->due[RENEW_ARI],
	    s->due[RENEW_LIFETIME], s->due[RENEW_REVOKED], s->due[RENEW_FORCED]);
	if (o->dry_run)
		printf("dry run: nothing changed\n");
	else if (qr.run_id == 0)
		printf("nothing queued\n");
	else
		printf("queued %ld job%s in run %" PRId64 " (%ld already queued or running)\n", qr.jobs_added,
		    qr.jobs_added == 1 ? "" : "s", qr.run_id, qr.jobs_already_queued);
	return s->checks_failed > 0 ? EXIT_JOBS_FAILED : EXIT_OK;
}

int
cmd_renew(struct config *cfg, int argc, char **argv)
{
	struct renew_cmd_opts o;
	struct renew_set s = { 0 };
	PGconn *c = NULL;
	int rc;

	if ((rc = renew_parse(cfg, argc, argv, &o)) != EXIT_OK || o.help)
		goto out;
	if ((c = cmd_connect(cfg, true)) == NULL) {
		rc = cmd_connect_failure();
		goto out;
	}
	rc = renew_work(cfg, &o, c, &s);
out:
	renew_set_free(&s);
	PQfinish(c);
	for (size_t k = 0; k < o.nforce; k++)
		free(o.force[k]);
	free(o.force);
	return rc;
}
