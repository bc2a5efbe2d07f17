/* cmd_revoke.c - `certfleet revoke`: revokes issued certificates at their CA (RFC 8555 7.6). */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "dnsname.h"
#include "log.h"
#include "revoke.h"

#define REVOKE_SELECTORS_MAX 10000 /* of each kind; a larger set is better named by --run */

struct revoke_opts {
	struct revoke_sel sel;
	int64_t *certs, *runs;
	char **names, **serials;
	const char *reason;       /* --reason, default unspecified */
	bool dry_run;
	bool help;
};

static void
revoke_help(void)
{
	printf("usage: certfleet revoke (--certificate ID | --name NAME | --serial HEX | --run ID)...\n"
	       "                        [--reason REASON] [--dry-run] [OPTIONS]\n\n"
	       "Revokes issued certificates at the CA that issued them (the directory of the\n"
	       "certificate's account) and records the revocation in results (revoked_at,\n"
	       "revocation_reason); renew then treats them as due. Selectors add up and may repeat:\n"
	       "  --certificate ID  the current certificate of the fleet's certificate ID\n"
	       "  --name NAME       the current certificate of the fleet's certificate holding NAME\n"
	       "  --serial HEX      the issued certificate with that serial number (any, current or not)\n"
	       "  --run ID          every current certificate issued by a job of run ID\n"
	       "A selector that names no issued certificate is an error, and nothing is revoked.\n"
	       "  --reason REASON   unspecified (default, 0), keyCompromise (1), superseded (4) or\n"
	       "                    cessationOfOperation (5): the reasons Let's Encrypt accepts.\n"
	       "                    keyCompromise is signed with the certificate's own key, which proves\n"
	       "                    the compromise to the CA; the others with the account key.\n"
	       "  --dry-run         list what would be revoked, and revoke nothing\n"
	       "Certificates revoked before are reported and skipped; one the CA reports as already\n"
	       "revoked is recorded as revoked. Exit codes: 0 every selected certificate is revoked,\n"
	       "3 the CA refused some (each one is listed with the CA's problem), 1 the database or a\n"
	       "CA unreachable (that CA's certificates are listed as failed), 2 bad usage (nothing\n"
	       "revoked).\n\n%s",
	    CONFIG_COMMON_HELP);
}

static const struct option revoke_options[] = {
	{ "certificate", required_argument, NULL, 'C' },
	{ "name", required_argument, NULL, 'N' },
	{ "serial", required_argument, NULL, 'S' },
	{ "run", required_argument, NULL, 'R' },
	{ "reason", required_argument, NULL, 'W' },
	{ "dry-run", no_argument, NULL, 'D' },
	CONFIG_COMMON_OPTIONS,
	{ 0 },
};

static void
revoke_opts_free(struct revoke_opts *o)
{
	for (size_t i = 0; i < o->sel.nnames; i++)
		free(o->names[i]);
	for (size_t i = 0; i < o->sel.nserials; i++)
		free(o->serials[i]);
	free(o->certs);
	free(o->runs);
	free(o->names);
	free(o->serials);
}

static int
grow(void **arr, size_t n, size_t sz, const char *flag)
{
	return cmd_grow_selector("revoke", arr, n, sz, REVOKE_SELECTORS_MAX, flag, "(use --run for a larger set)");
}

/* A serial number as HEX ("0A:1B", "0x0a1b", "a1b") into lowercase hex without leading zeros. */
static char *
serial_normalize(const char *arg)
{
	const char *p = arg;
	char *out = malloc(strlen(arg) + 1);
	size_t n = 0;

	if (out == NULL)
		return NULL;
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
		p += 2;
	for (; *p; p++) {
		if (*p == ':')
			continue;
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') || (*p >= 'A' && *p <= 'F')) || n >= 80)
			goto bad;
		if (n == 0 && *p == '0')
			continue;
		out[n++] = (char)(*p >= 'A' && *p <= 'F' ? *p - 'A' + 'a' : *p);
	}
	if (n == 0)
		goto bad;
	out[n] = '\0';
	return out;
bad:
	free(out);
	log_error("revoke: --serial \"%s\": expected a certificate serial number in hexadecimal, at most 40 octets",
	    arg);
	return NULL;
}

/* One of revoke's own options: 1, 0 after logging a bad value, -1 when opt is not one of them. */
static int
revoke_option(struct revoke_opts *o, int opt, const char *arg)
{
	char name[DNSNAME_MAX], *s;
	cf_err err;
	long v;

	switch (opt) {
	case 'C':
	case 'R':
		if (cmd_parse_long(opt == 'C' ? "--certificate" : "--run", arg, 1, LONG_MAX, &v) != 0)
			return 0;
		if (opt == 'C') {
			if (grow((void **)&o->certs, o->sel.ncerts, sizeof(int64_t), "--certificate") != 0)
				return 0;
			o->certs[o->sel.ncerts++] = v;
		} else {
			if (grow((void **)&o->runs, o->sel.nruns, sizeof(int64_t), "--run") != 0)
				return 0;
			o->runs[o->sel.nruns++] = v;
		}
		return 1;
	case 'N':
		if (dnsname_normalize(arg, name, &err) != 0) {
			log_error("revoke: --name: %s", err.msg);
			return 0;
		}
		if (grow((void **)&o->names, o->sel.nnames, sizeof(char *), "--name") != 0 ||
		    (o->names[o->sel.nnames] = strdup(name)) == NULL)
			return 0;
		o->sel.nnames++;
		return 1;
	case 'S':
		if ((s = serial_normalize(arg)) == NULL)
			return 0;
		if (grow((void **)&o->serials, o->sel.nserials, sizeof(char *), "--serial") != 0) {
			free(s);
			return 0;
		}
		o->serials[o->sel.nserials++] = s;
		return 1;
	case 'W':
		if (revoke_reason_code(arg) < 0) {
			log_error("revoke: --reason \"%s\": not a reason Let's Encrypt accepts (unspecified, "
			    "keyCompromise, superseded, cessationOfOperation)", arg);
			return 0;
		}
		o->reason = arg;
		return 1;
	case 'D':
		o->dry_run = true;
		return 1;
	}
	return -1;
}

/* The flags: EXIT_OK (check o->help) or EXIT_USAGE. */
static int
revoke_parse(struct config *cfg, int argc, char **argv, struct revoke_opts *o)
{
	int opt, ok;

	o->reason = "unspecified";
	while ((opt = getopt_long(argc, argv, CONFIG_COMMON_SHORT, revoke_options, NULL)) != -1) {
		if (opt == 'h') {
			revoke_help();
			o->help = true;
			return EXIT_OK;
		}
		ok = revoke_option(o, opt, optarg);
		if (ok == 0 || (ok < 0 && !config_common_option(cfg, opt, optarg)))
			return EXIT_USAGE;
	}
	if (optind != argc) {
		log_error("revoke: unexpected argument \"%s\"", argv[optind]);
		return EXIT_USAGE;
	}
	if (o->sel.ncerts + o->sel.nnames + o->sel.nserials + o->sel.nruns == 0) {
		log_error("revoke: name what to revoke with --certificate, --name, --serial or --run");
		return EXIT_USAGE;
	}
	o->sel.certs = o->certs;
	o->sel.runs = o->runs;
	o->sel.names = (const char *const *)o->names;
	o->sel.serials = (const char *const *)o->serials;
	return EXIT_OK;
}

/* Prints each target with how it went; the exit code their states give. */
static int
revoke_report(const struct revoke_target *t, size_t n, const char *reason, bool dry_run)
{
	size_t done = 0, already = 0, failed = 0, pending = 0;

	for (size_t i = 0; i < n; i++) {
		const char *what = t[i].state == REVOKE_DONE ? "revoked" : t[i].state == REVOKE_ALREADY ?
		    "already revoked" : t[i].state == REVOKE_FAILED ? "FAILED" : dry_run ? "would revoke" : "not reached";

		printf("%s: certificate %" PRId64 " serial %s (%s), result %" PRId64 "%s%s\n", what, t[i].certificate_id,
		    t[i].serial, t[i].names, t[i].result_id, t[i].state == REVOKE_FAILED ? ": " : "", t[i].why);
		done += t[i].state == REVOKE_DONE;
		already += t[i].state == REVOKE_ALREADY;
		failed += t[i].state == REVOKE_FAILED;
		pending += t[i].state == REVOKE_PENDING;
	}
	if (dry_run) {
		printf("%zu would be revoked (reason %s), %zu revoked already\n", pending, reason, already);
		return EXIT_OK;
	}
	printf("%zu revoked (reason %s), %zu revoked already, %zu failed\n", done, reason, already, failed);
	return failed ? EXIT_JOBS_FAILED : EXIT_OK;
}

int
cmd_revoke(struct config *cfg, int argc, char **argv)
{
	struct revoke_opts o = { 0 };
	struct revoke_target *t = NULL;
	struct http_settings hs = { 0 };
	PGconn *c = NULL;
	size_t n = 0;
	bool unreachable = false;
	cf_err err;
	int rc;

	if ((rc = revoke_parse(cfg, argc, argv, &o)) != EXIT_OK || o.help)
		goto out;
	if (!o.dry_run && ((rc = cmd_protect_memory("revoke")) != EXIT_OK || (rc = cmd_keyring("revoke", false)) != EXIT_OK))
		goto out;
	if ((c = cmd_connect(cfg, true)) == NULL) {
		rc = cmd_connect_failure();
		goto out;
	}
	rc = revoke_select(c, &o.sel, &t, &n, &err);
	if (rc != 0) {
		log_error("revoke: %s", err.msg);
		rc = rc > 0 ? EXIT_USAGE : EXIT_FAILURE_RUNTIME;
		goto out;
	}
	if (!o.dry_run) {
		hs.ca_bundle = cfg->ca_bundle;
		hs.allow_http_loopback = cfg->allow_http_loopback;
		if (revoke_run(c, t, n, o.reason, &hs, &unreachable, &err) != 0) {
			revoke_report(t, n, o.reason, false);
			log_error("revoke: %s", err.msg);
			rc = EXIT_FAILURE_RUNTIME;
			goto out;
		}
	}
	rc = revoke_report(t, n, o.reason, o.dry_run);
	if (unreachable) {
		log_error("revoke: a CA gave no answer: its certificates are listed as FAILED; run revoke again");
		rc = EXIT_FAILURE_RUNTIME;
	}
out:
	revoke_targets_free(t, n);
	revoke_opts_free(&o);
	PQfinish(c);
	return rc;
}
