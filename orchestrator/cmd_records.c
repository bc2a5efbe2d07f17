/* cmd_records.c - `certfleet records`: the TXT records the active fleet needs, for IaC to publish. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "db.h"
#include "dnsname.h"
#include "http.h"
#include "log.h"
#include "records.h"

struct records_opts {
	enum records_format format;
	long warn_days;               /* warn when persistUntil lapses within this */
	const char *directory;        /* --directory given as a flag: that CA's accounts alone */
	int64_t persist_until;        /* CERTFLEET_PERSIST_UNTIL, 0 = none */
	bool help;
};

static void
records_help(void)
{
	printf("usage: certfleet records [--format zone|tsv|json] [--warn-days N] [OPTIONS]\n\n"
	       "Prints the dns-persist-01 TXT records of every active certificate (not retired, whatever\n"
	       "its job history: cleanup does not drop one), for infrastructure-as-code to publish. Each\n"
	       "certificate's record names its own CA and account (the account it is ordered with), so\n"
	       "a fleet on several CAs gets the records of every CA; --directory URL as an option lists\n"
	       "that CA's alone (CERTFLEET_DIRECTORY does not restrict). One record per name (a\n"
	       "wildcard's base name) and CA, with policy=wildcard when the certificate asks for the\n"
	       "wildcard too: exactly the values run writes. Each CA's directory is read once for the\n"
	       "form it speaks: draft -02 (hashed accounturi) when it lists meta.accountHashPrefix, else\n"
	       "-01 (the account URL).\n"
	       "  --format zone   (default) a comment line per CA (\"; account ID URL of the CA DIRECTORY\"),\n"
	       "                  then _validation-persist.example.com. IN TXT \"<value>\", with '\"' and\n"
	       "                  '\\' escaped, other octets outside printable ASCII as \\DDD, and a new\n"
	       "                  quoted string every 255 octets of the value\n"
	       "  --format tsv    <name>\\t<value>, one record a line\n"
	       "  --format json   an array of objects: fqdn, value, issuer, account (URL), account_id,\n"
	       "                  directory, draft, wildcard, persist_until, certificates (ids)\n"
	       "  --warn-days N   warn on standard error when persistUntil lapses within N days\n"
	       "                  (default 30)\n\n"
	       "CERTFLEET_PERSIST_UNTIL (unix seconds, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ, UTC) adds\n"
	       "persistUntil to every value, as run writes it; run must see the same setting. A name\n"
	       "where run wrote values for the account but none equal to the one printed is warned\n"
	       "about on standard error.\n\n"
	       "Exit codes: 0 printed; 1 the database or a CA's directory could not be read (nothing is\n"
	       "printed); 2 bad usage: a bad --format or --warn-days, a malformed\n"
	       "CERTFLEET_PERSIST_UNTIL or one that has already passed, a --directory with no account.\n\n%s",
	    CONFIG_COMMON_HELP);
}

/* The defaults, then the flags and the environment. EXIT_OK (check o->help) or EXIT_USAGE. */
static int
records_parse(struct config *cfg, int argc, char **argv, struct records_opts *o)
{
	static const struct option opts[] = {
		{ "format", required_argument, NULL, 'F' },
		{ "warn-days", required_argument, NULL, 'W' },
		CONFIG_COMMON_OPTIONS,
		{ 0 },
	};
	cf_err err;
	int opt;

	*o = (struct records_opts){ .format = RECORDS_ZONE, .warn_days = 30 };
	while ((opt = getopt_long(argc, argv, CONFIG_COMMON_SHORT, opts, NULL)) != -1) {
		if (opt == 'F') {
			if (records_format_parse(optarg, &o->format, &err) != 0) {
				log_error("records: %s", err.msg);
				return EXIT_USAGE;
			}
		} else if (opt == 'W') {
			if (cmd_parse_long("--warn-days", optarg, 0, 3650, &o->warn_days) != 0)
				return EXIT_USAGE;
		} else if (opt == 'h') {
			records_help();
			o->help = true;
			return EXIT_OK;
		} else if (!config_common_option(cfg, opt, optarg)) {
			return EXIT_USAGE;
		} else if (opt == 1001) {
			o->directory = optarg;
		}
	}
	if (optind != argc) {
		log_error("records: unexpected argument \"%s\"", argv[optind]);
		return EXIT_USAGE;
	}
	return config_persist_until(cfg, "records", o->warn_days, &o->persist_until);
}

/* Reads ca's directory for the record form its CA speaks. An exit code. */
static int
records_read_ca(const struct config *cfg, struct records_ca *ca)
{
	struct http_settings hs = { .ca_bundle = cfg->ca_bundle, .allow_http_loopback = cfg->allow_http_loopback };
	struct http_req *req = NULL;
	cf_err err;
	int rc = EXIT_FAILURE_RUNTIME;

	if (http_url_check(ca->directory_url, cfg->allow_http_loopback, "ACME directory", &err) != 0) {
		log_error("records: account %lld: %s", (long long)ca->account_id, err.msg);
		return EXIT_USAGE;
	}
	if ((req = http_req_new(&hs, ca->directory_url, NULL, NULL, false, &err)) == NULL ||
	    http_req_perform(req, &err) != 0)
		goto fail;
	if (req->status != 200) {
		cf_errf(&err, "ACME directory %s: HTTP %ld", ca->directory_url, req->status);
		goto fail;
	}
	if (records_ca_read_directory(ca, req->body.data ? req->body.data : "", req->body.len, &err) != 0)
		goto fail;
	rc = EXIT_OK;
	goto out;
fail:
	log_error("records: reading the record form of account %lld's CA: %s", (long long)ca->account_id, err.msg);
out:
	http_req_free(req);
	return rc;
}

/* --directory names a CA with an account (a CA without certificates lists nothing). An exit code. */
static int
records_directory_known(PGconn *c, const char *directory)
{
	const char *p[] = { directory };
	PGresult *res;
	cf_err err;
	int rc = EXIT_OK;

	res = db_exec(c, "looking for the directory's account", "SELECT 1 FROM accounts WHERE directory_url = $1",
	    1, p, &err);
	if (res == NULL) {
		log_error("records: %s", err.msg);
		return EXIT_FAILURE_RUNTIME;
	}
	if (PQntuples(res) == 0) {
		log_error("records: no account for %s: register one for that CA first (certfleet account register "
		    "--directory %s)", directory, directory);
		rc = EXIT_USAGE;
	}
	PQclear(res);
	return rc;
}

/*
 * Active certificates that name no CA: account_id NULL (a row from before migration 008) and no
 * job left to take it from. They cannot be listed; a warning counts them. An exit code.
 */
static int
records_warn_unplaced(PGconn *c)
{
	PGresult *res;
	cf_err err;

	res = db_exec(c, "counting certificates without a CA",
	    "SELECT count(*) AS n, min(array_to_string(ce.names, ',')) AS example FROM certificates ce "
	    "WHERE ce.retired_at IS NULL AND ce.account_id IS NULL "
	    "AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.certificate_id = ce.id)", 0, NULL, &err);
	if (res == NULL) {
		log_error("records: %s", err.msg);
		return EXIT_FAILURE_RUNTIME;
	}
	if (strcmp(db_get(res, 0, "n"), "0") != 0)
		log_warn("records: %s active certificate(s) name no CA (no account_id and no job), e.g. %s: not "
		    "listed; enqueue them again with --directory of their CA", db_get(res, 0, "n"),
		    db_get(res, 0, "example"));
	PQclear(res);
	return EXIT_OK;
}

int
cmd_records(struct config *cfg, int argc, char **argv)
{
	struct records_opts o;
	struct records_ca *cas = NULL;
	struct records_entry *entries = NULL;
	size_t nca = 0, n = 0;
	long differ = 0;
	char example[DNSNAME_MAX + 1200];
	cf_buf out = { 0 };
	PGconn *c = NULL;
	cf_err err;
	int rc;

	if ((rc = records_parse(cfg, argc, argv, &o)) != EXIT_OK || o.help)
		return rc;
	if ((c = cmd_connect(cfg, true)) == NULL)
		return cmd_connect_failure();
	rc = EXIT_FAILURE_RUNTIME;
	if (records_load(c, o.directory, &cas, &nca, &entries, &n, &err) != 0) {
		log_error("records: %s", err.msg);
		goto out;
	}
	if (o.directory && nca == 0 && (rc = records_directory_known(c, o.directory)) != EXIT_OK)
		goto out;
	if (o.directory == NULL && (rc = records_warn_unplaced(c)) != EXIT_OK)
		goto out;
	for (size_t i = 0; i < nca; i++)
		if ((rc = records_read_ca(cfg, &cas[i])) != EXIT_OK)
			goto out;
	rc = EXIT_FAILURE_RUNTIME;
	if (records_compare_written(c, entries, n, o.persist_until, &differ, example, sizeof(example), &err) != 0) {
		log_error("records: %s", err.msg);
		goto out;
	}
	if (differ > 0)
		log_warn("records: at %ld name(s) the value differs from every one run wrote for that account (%s); "
		    "a run with other settings (CERTFLEET_PERSIST_UNTIL), or one that has not ordered since they "
		    "changed?", differ, example);
	/* all or nothing: a zone synced from half a list would delete the other half's records */
	if (records_write(&out, o.format, entries, n, o.persist_until, &err) != 0) {
		log_error("records: %s", err.msg);
		goto out;
	}
	if (out.len > 0 && (fwrite(out.data, 1, out.len, stdout) != out.len || fflush(stdout) != 0)) {
		log_error("records: writing to standard output failed");
		goto out;
	}
	rc = EXIT_OK;
out:
	cf_buf_free(&out);
	records_free(cas, nca, entries, n);
	PQfinish(c);
	return rc;
}
