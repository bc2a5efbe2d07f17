/*
 * cmd_provider.c - `certfleet provider`: list the configured DNS provider accounts, and publish,
 * remove or check records through one of them by hand (to test an account before a run, or to
 * clean up after a decommissioned certificate).
 */
#include <ctype.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blockpool.h"
#include "commands.h"
#include "db.h"
#include "dnsauth.h"
#include "dnsname.h"
#include "log.h"
#include "loop.h"
#include "provider.h"
#include "registry.h"
#include "sharedlimit.h"

struct pending {
	long left;
	long failed;
};

static void
usage(void)
{
	printf("usage: certfleet provider list\n"
	       "       certfleet provider ensure|remove|verify ACCOUNT FQDN VALUE [FQDN VALUE...]\n\n"
	       "list    the provider accounts: those of the file named by CERTFLEET_PROVIDERS, plus\n"
	       "        the built-in \"challtestsrv\" (CERTFLEET_CHALLTESTSRV_URL) and \"manual\"\n"
	       "ensure  publishes each TXT VALUE at FQDN through ACCOUNT, keeping other values there\n"
	       "remove  removes exactly these values, nothing else\n"
	       "verify  asks the authoritative servers of each FQDN's zone whether VALUE is there\n\n"
	       "Records of one zone go in as few API calls as the provider allows, spaced by the\n"
	       "account's rate limit: with a database (CERTFLEET_DB), the limit the runs share.\n"
	       "Types: %s.\n"
	       "Exit codes: 0 done (verify: every record present), 1 a call failed (verify: a record\n"
	       "missing), 2 bad usage or configuration.\n\n%s",
	    provider_type_names(), CONFIG_COMMON_HELP);
}

/*
 * A record owner name as given: a first label of letters, digits, '-' and '_' (such as
 * _validation-persist or _acme-challenge) over a valid DNS name. Lower case, no trailing dot.
 */
static int
record_name(const char *in, char out[DNSNAME_MAX], cf_err *err)
{
	const char *dot = strchr(in, '.');
	char rest[DNSNAME_MAX];
	size_t n = dot ? (size_t)(dot - in) : 0;

	if (dot == NULL || n == 0 || n > 63) {
		cf_errf(err, "record name \"%.80s\": needs a first label and a zone", in);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (!isalnum((unsigned char)in[i]) && in[i] != '-' && in[i] != '_') {
			cf_errf(err, "record name \"%.80s\": bad character in its first label", in);
			return -1;
		}
	}
	if (dnsname_normalize(dot + 1, rest, err) != 0)
		return -1;
	if (n + 1 + strlen(rest) >= DNSNAME_MAX) {
		cf_errf(err, "record name \"%.80s\" is longer than 253 octets", in);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		out[i] = (char)tolower((unsigned char)in[i]);
	out[n] = '.';
	strcpy(out + n + 1, rest);
	return 0;
}

static void
call_done(struct provider_call *call)
{
	struct pending *p = call->arg;

	if (call->failed) {
		log_error("%s%s", call->error, call->retryable ? " (a later try may succeed)" : "");
		p->failed++;
	} else {
		for (size_t i = 0; i < call->nrec; i++)
			printf("%s %s %s \"%s\"\n", call->action == PROVIDER_ENSURE ? "ensured" : "removed",
			    call->acct->name, call->recs[i].fqdn, call->recs[i].value);
	}
	p->left--;
}

static int
list_accounts(const struct provider_registry *reg)
{
	for (size_t i = 0; i < provider_registry_count(reg); i++) {
		const struct provider_account *a = provider_registry_at(reg, i);
		printf("%-20s type=%s", a->name, a->ops->type);
		if (a->limit)
			printf(" rate=%g/s burst=%g key=%s", a->limit->rate_per_s, a->limit->burst, a->limit->name);
		else
			printf(" rate=unlimited");
		printf(" batch=%zu verify=%s", a->batch_max, a->verify && a->verify->enabled ? "authoritative" : "off");
		for (size_t z = 0; z < a->nzones; z++)
			printf("%s%s", z ? "," : " zones=", a->zones[z]);
		printf("\n");
	}
	return EXIT_OK;
}

static int
verify_records(struct provider_account *a, struct provider_record *recs, size_t n)
{
	int rc = EXIT_OK;
	char why[512];

	if (a->verify == NULL || !a->verify->enabled) {
		log_error("provider verify: verification is off for account %s (its \"verify\" settings)", a->name);
		return EXIT_USAGE;
	}
	for (size_t i = 0; i < n; i++) {
		enum dnsauth_result r = dnsauth_check(a->verify, recs[i].fqdn, recs[i].value, why, sizeof(why));
		if (r == DNSAUTH_PRESENT) {
			printf("present %s \"%s\"\n", recs[i].fqdn, recs[i].value);
		} else {
			printf("%s %s \"%s\": %s\n", r == DNSAUTH_ABSENT ? "absent" : "unknown", recs[i].fqdn,
			    recs[i].value, why);
			rc = EXIT_FAILURE_RUNTIME;
		}
	}
	return rc;
}

/* Groups the records per zone, in calls of at most batch_max, and runs them to the end. */
static int
change_records(struct provider_account *a, enum provider_action action, struct provider_record *recs, size_t n)
{
	struct loop_options lo = { 0 };
	struct loop *loop = NULL;
	struct provider_call *calls = NULL;
	struct pending p = { 0, 0 };
	char (*zones)[DNSNAME_MAX] = NULL;
	bool *used = NULL;
	size_t ncalls = 0;
	int rc = EXIT_FAILURE_RUNTIME;
	cf_err err;

	zones = calloc(n, sizeof(*zones));
	used = calloc(n, sizeof(*used));
	calls = calloc(n, sizeof(*calls));
	if (zones == NULL || used == NULL || calls == NULL || (loop = loop_new(&lo, &err)) == NULL) {
		log_error("provider: out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const char *z = provider_zone_of(a, recs[i].fqdn);
		if (z || a->ops->zoneless) {
			snprintf(zones[i], DNSNAME_MAX, "%s", z ? z : "");
		} else if (dnsauth_zone(a->verify, recs[i].fqdn, zones[i], DNSNAME_MAX, &err) != 0) {
			log_error("provider %s: no configured zone holds %s, and finding it in DNS failed: %s",
			    a->name, recs[i].fqdn, err.msg);
			goto out;
		}
	}
	/* records are sorted into calls: same zone, in order, at most batch_max each */
	struct provider_record *sorted = calloc(n, sizeof(*sorted));
	size_t k = 0;
	if (sorted == NULL) {
		log_error("provider: out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (used[i])
			continue;
		struct provider_call *call = &calls[ncalls++];
		call->acct = a;
		call->loop = loop;
		call->action = action;
		call->zone = zones[i];
		call->recs = &sorted[k];
		call->done = call_done;
		call->arg = &p;
		for (size_t j = i; j < n && call->nrec < a->batch_max; j++) {
			if (!used[j] && strcmp(zones[j], zones[i]) == 0) {
				used[j] = true;
				sorted[k++] = recs[j];
				call->nrec++;
			}
		}
	}
	p.left = (long)ncalls;
	for (size_t i = 0; i < ncalls; i++)
		provider_call_start(&calls[i]);
	while (p.left > 0)
		if (loop_run_once(loop, 1000) < 0) {
			log_error("provider: the event loop failed");
			break;
		}
	free(sorted);
	rc = p.left == 0 && p.failed == 0 ? EXIT_OK : EXIT_FAILURE_RUNTIME;
out:
	loop_free(loop);
	free(calls);
	free(used);
	free(zones);
	return rc;
}

/* True when CERTFLEET_DB reaches a database with certfleet's schema. */
static bool
schema_ready(const struct config *cfg)
{
	PGconn *c;
	cf_err err;
	bool ok;

	if (cfg->db_url == NULL || (c = db_connect(cfg->db_url, &err)) == NULL)
		return false;
	ok = db_require_schema(c, &err) == 0;
	if (!ok)
		log_debug("provider: %s; rate limits are this process's own", err.msg);
	PQfinish(c);
	return ok;
}

/* What an ensure, remove or verify works with; provider_cmd_clear frees whatever was set up. */
struct provider_cmd {
	struct provider_env env;
	struct provider_registry *reg;
	struct sharedlimit *shared;   /* the limits the runs share; NULL without a database */
	struct provider_record *recs; /* the FQDN VALUE pairs given */
	size_t n;
};

static void
provider_cmd_clear(struct provider_cmd *p)
{
	for (size_t i = 0; p->recs && i < p->n; i++) {
		free(p->recs[i].fqdn);
		free(p->recs[i].value);
	}
	free(p->recs);
	provider_registry_free(p->reg);
	sharedlimit_free(p->shared);
	blockpool_free(p->env.pool);
}

/* The flags and the action, leaving optind after it. EXIT_OK (check *help) or EXIT_USAGE. */
static int
provider_parse(struct config *cfg, int argc, char **argv, const char **action, bool *help)
{
	static const struct option opts[] = { CONFIG_COMMON_OPTIONS, { 0 } };
	int opt;

	*help = false;
	while ((opt = getopt_long(argc, argv, "+" CONFIG_COMMON_SHORT, opts, NULL)) != -1) {
		if (opt == 'h') {
			usage();
			*help = true;
			return EXIT_OK;
		}
		if (!config_common_option(cfg, opt, optarg))
			return EXIT_USAGE;
	}
	if (optind >= argc) {
		log_error("provider: say list, ensure, remove or verify (certfleet provider --help)");
		return EXIT_USAGE;
	}
	*action = argv[optind++];
	if (strcmp(*action, "list") != 0 && strcmp(*action, "ensure") != 0 && strcmp(*action, "remove") != 0 &&
	    strcmp(*action, "verify") != 0) {
		log_error("provider: unknown action \"%s\" (list, ensure, remove, verify)", *action);
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

/* Loads the provider accounts, with the shared rate limits when they apply. */
static int
provider_wire(const struct config *cfg, const char *action, struct provider_cmd *p)
{
	cf_err err;

	p->env.path = cfg->providers_path;
	p->env.challtestsrv_url = cfg->challtestsrv_url;
	p->env.challtestsrv_dns = cfg->challtestsrv_dns;
	p->env.http.timeout_ms = 60000;
	p->env.http.allow_http_loopback = cfg->allow_http_loopback;
	/*
	 * With a database that has certfleet's schema, the accounts' limits are the ones the runs
	 * share, so a call made by hand counts against them; otherwise a bucket of this process.
	 */
	if (strcmp(action, "list") != 0 && strcmp(action, "verify") != 0 && schema_ready(cfg)) {
		if ((p->shared = sharedlimit_new(cfg->db_url, &err)) == NULL) {
			log_error("provider: %s", err.msg);
			return EXIT_FAILURE_RUNTIME;
		}
		p->env.make_limiter = sharedlimit_limiter;
		p->env.make_limiter_arg = p->shared;
	}
	if ((p->env.pool = blockpool_new(4, &err)) == NULL ||
	    (p->reg = provider_registry_load(&p->env, &err)) == NULL) {
		log_error("provider: %s", err.msg);
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

/* The ACCOUNT argument of ensure, remove and verify, leaving optind after it. */
static int
provider_account_arg(const struct provider_cmd *p, const char *action, int argc, char **argv,
    struct provider_account **a)
{
	if (optind >= argc || (*a = provider_account_find(p->reg, argv[optind])) == NULL) {
		log_error("provider %s: %s%s%s (see certfleet provider list)", action,
		    optind >= argc ? "name an account" : "no account called \"", optind >= argc ? "" : argv[optind],
		    optind >= argc ? "" : "\"");
		return EXIT_USAGE;
	}
	optind++;
	return EXIT_OK;
}

/* The FQDN VALUE pairs from optind on, checked, into p->recs. */
static int
provider_records(struct provider_cmd *p, const char *action, int argc, char **argv)
{
	cf_err err;

	if (optind >= argc || (argc - optind) % 2 != 0) {
		log_error("provider %s: give records as FQDN VALUE pairs", action);
		return EXIT_USAGE;
	}
	p->n = (size_t)(argc - optind) / 2;
	if ((p->recs = calloc(p->n, sizeof(*p->recs))) == NULL) {
		log_error("provider: out of memory");
		return EXIT_FAILURE_RUNTIME;
	}
	for (size_t i = 0; i < p->n; i++) {
		char name[DNSNAME_MAX];
		const char *value = argv[optind + 2 * i + 1];
		if (record_name(argv[optind + 2 * i], name, &err) != 0) {
			log_error("provider %s: %s", action, err.msg);
			return EXIT_USAGE;
		}
		if (value[0] == '\0' || strlen(value) > 4000) {
			log_error("provider %s: the value for %s must be 1 to 4000 octets", action, name);
			return EXIT_USAGE;
		}
		if ((p->recs[i].fqdn = strdup(name)) == NULL || (p->recs[i].value = strdup(value)) == NULL)
			return EXIT_FAILURE_RUNTIME;
	}
	return EXIT_OK;
}

int
cmd_provider(struct config *cfg, int argc, char **argv)
{
	struct provider_cmd p = { 0 };
	struct provider_account *a = NULL;
	const char *action;
	bool help;
	int rc;

	if ((rc = provider_parse(cfg, argc, argv, &action, &help)) != EXIT_OK || help)
		return rc;
	if (!cmd_db_allowed(cfg, "provider"))
		return EXIT_USAGE;
	/* the accounts' credentials are read into memory */
	if ((rc = cmd_protect_memory("provider")) != EXIT_OK)
		return rc;
	if ((rc = provider_wire(cfg, action, &p)) != EXIT_OK)
		goto out;
	if (strcmp(action, "list") == 0) {
		rc = optind == argc ? list_accounts(p.reg) : EXIT_USAGE;
		if (rc == EXIT_USAGE)
			log_error("provider list: unexpected argument \"%s\"", argv[optind]);
		goto out;
	}
	if ((rc = provider_account_arg(&p, action, argc, argv, &a)) != EXIT_OK ||
	    (rc = provider_records(&p, action, argc, argv)) != EXIT_OK)
		goto out;
	if (strcmp(action, "verify") == 0)
		rc = verify_records(a, p.recs, p.n);
	else
		rc = change_records(a, strcmp(action, "ensure") == 0 ? PROVIDER_ENSURE : PROVIDER_REMOVE, p.recs, p.n);
out:
	provider_cmd_clear(&p);
	return rc;
}
