/* main.c - certfleet's entry point: global set-up, subcommand dispatch, `migrate`. */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include "commands.h"
#include "db.h"
#include "dbtls.h"
#include "keyring.h"
#include "log.h"

struct command {
	const char *name;
	int (*fn)(struct config *cfg, int argc, char **argv);
	const char *summary;
};

static const struct command commands[] = {
	{ "migrate", cmd_migrate, "create or upgrade the database schema" },
	{ "account", cmd_account, "register an ACME account, show it, or roll its key over" },
	{ "enqueue", cmd_enqueue, "add certificates to the fleet and queue them for issuance" },
	{ "run", cmd_run, "work the queue until it is empty" },
	{ "renew", cmd_renew, "queue the certificates due for renewal (ARI, lifetime, revoked) as one run" },
	{ "status", cmd_status, "job counts by state and the latest failures" },
	{ "metrics", cmd_metrics, "the fleet's Prometheus gauges: serve them (--listen) or write a textfile" },
	{ "report", cmd_report, "the fleet at a glance: states, expiry, failures, runs; --html FILE" },
	{ "records", cmd_records, "the _validation-persist TXT records the fleet needs" },
	{ "provider", cmd_provider, "list DNS provider accounts; ensure, remove or verify records by hand" },
	{ "revoke", cmd_revoke, "revoke issued certificates at their CA, with a reason" },
	{ "sync", cmd_sync, "make the fleet the one a JSON file declares: add, change, retire" },
	{ "export", cmd_export, "write issued certificates, chains and keys into one folder each" },
	{ "deploy", cmd_deploy, "export the certificates not yet deployed and run a hook for each; --follow" },
	{ "cancel", cmd_cancel, "cancel a job, a run, or everything queued" },
	{ "cleanup", cmd_cleanup, "delete finished jobs older than a number of days" },
	{ "keys", cmd_keys, "make a key-encryption key, or re-seal the stored keys under a new one" },
};

static void
usage(FILE *f)
{
	fprintf(f, "usage: certfleet COMMAND [OPTIONS]\n\n"
		   "certfleet issues and renews large fleets of TLS certificates with ACME dns-persist-01,\n"
		   "from a job queue in PostgreSQL.\n\nCommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\nRun 'certfleet COMMAND --help' for a command's options.\n\n"
		   "Exit codes: 0 success, 1 runtime failure (database, CA, provider), 2 bad usage or input,\n"
		   "3 a run finished but some jobs failed, 4 a run finished with jobs left for a later retry.\n");
}

/* Set by cmd_connect when it refused the settings rather than failed to connect. */
static bool connect_refused;

bool
cmd_db_allowed(const struct config *cfg, const char *cmd)
{
	cf_err err;

	if (cfg->db_url == NULL || dbtls_check(cfg->db_url, cfg->db_allow_plaintext, &err) == 0)
		return true;
	log_error("%s: %s", cmd, err.msg);
	return false;
}

int
cmd_connect_failure(void)
{
	return connect_refused ? EXIT_USAGE : EXIT_FAILURE_RUNTIME;
}

PGconn *
cmd_connect(const struct config *cfg, bool need_schema)
{
	cf_err err;
	PGconn *c;

	connect_refused = false;
	if (!cmd_db_allowed(cfg, "database")) {
		connect_refused = true;
		return NULL;
	}
	if ((c = db_connect(cfg->db_url, &err)) == NULL) {
		log_error("%s", err.msg);
		return NULL;
	}
	if (need_schema && db_require_schema(c, &err) != 0) {
		log_error("%s", err.msg);
		PQfinish(c);
		return NULL;
	}
	return c;
}

int
cmd_protect_memory(const char *cmd)
{
	struct rlimit none = { 0, 0 };

	if (setrlimit(RLIMIT_CORE, &none) != 0) {
		log_error("%s: setrlimit RLIMIT_CORE 0: %s", cmd, strerror(errno));
		return EXIT_FAILURE_RUNTIME;
	}
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
		log_error("%s: prctl PR_SET_DUMPABLE 0: %s", cmd, strerror(errno));
		return EXIT_FAILURE_RUNTIME;
	}
	return EXIT_OK;
}

int
cmd_keyring(const char *cmd, bool need_current)
{
	struct keyring *kr;
	cf_err err;

	if (keyring_load(&kr, &err) != 0) {
		log_error("%s: %s", cmd, err.msg);
		return EXIT_USAGE;
	}
	keyring_install(kr);
	if (need_current && keyring_current_id(kr) == NULL) {
		log_error("%s: no key-encryption key to seal private keys with: set %s to a file made with "
		    "'certfleet keys generate-kek FILE' (or provide the systemd credential %s)", cmd, KEYRING_ENV_FILE,
		    KEYRING_CREDENTIAL);
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

int
cmd_grow_selector(const char *cmd, void **arr, size_t n, size_t sz, size_t max, const char *flag,
    const char *hint)
{
	void *p;

	if (n >= max) {
		log_error("%s: at most %zu %s%s%s", cmd, max, flag, hint ? " " : "", hint ? hint : "");
		return -1;
	}
	if ((p = realloc(*arr, (n + 1) * sz)) == NULL) {
		log_error("%s: out of memory", cmd);
		return -1;
	}
	*arr = p;
	return 0;
}

int
cmd_parse_long(const char *flag, const char *arg, long min, long max, long *out)
{
	char *end = NULL;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (errno != 0 || end == arg || *end != '\0' || v < min || v > max) {
		log_error("%s \"%s\": expected a whole number from %ld to %ld", flag, arg, min, max);
		return -1;
	}
	*out = v;
	return 0;
}

int
cmd_migrate(struct config *cfg, int argc, char **argv)
{
	static const struct option opts[] = { CONFIG_COMMON_OPTIONS, { 0 } };
	PGconn *c;
	cf_err err;
	int opt, rc, applied = 0;

	while ((opt = getopt_long(argc, argv, CONFIG_COMMON_SHORT, opts, NULL)) != -1) {
		if (opt == 'h') {
			printf("usage: certfleet migrate [OPTIONS]\n\n"
			       "Applies the schema migrations this certfleet carries that the database lacks,\n"
			       "then seals any private key stored in plain text (by an older certfleet) under the\n"
			       "key-encryption key of CERTFLEET_KEK_FILE (see certfleet keys --help); with plain\n"
			       "keys and no key-encryption key it stops with exit code 2 and leaves them as they are.\n"
			       "Safe to run again and from several hosts at once.\n\n%s", CONFIG_COMMON_HELP);
			return EXIT_OK;
		}
		if (!config_common_option(cfg, opt, optarg))
			return EXIT_USAGE;
	}
	if (optind != argc) {
		log_error("migrate: unexpected argument \"%s\"", argv[optind]);
		return EXIT_USAGE;
	}
	if ((c = cmd_connect(cfg, false)) == NULL)
		return cmd_connect_failure();
	if (db_migrate(c, &applied, &err) != 0) {
		log_error("%s", err.msg);
		PQfinish(c);
		return EXIT_FAILURE_RUNTIME;
	}
	printf("schema up to date (%d migration%s applied)\n", applied, applied == 1 ? "" : "s");
	rc = cmd_migrate_keys(c);
	PQfinish(c);
	return rc;
}

int
main(int argc, char **argv)
{
	struct config cfg;
	int rc = EXIT_USAGE;

	config_defaults(&cfg);
	if (cfg.log_format_bad) {
		log_error("CERTFLEET_LOG_FORMAT: \"%s\" is neither text nor json", getenv("CERTFLEET_LOG_FORMAT"));
		return EXIT_USAGE;
	}
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return EXIT_OK;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "certfleet: curl_global_init failed\n");
		return EXIT_FAILURE_RUNTIME;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[1], commands[i].name) == 0) {
			rc = commands[i].fn(&cfg, argc - 1, argv + 1);
			goto out;
		}
	}
	fprintf(stderr, "certfleet: unknown command \"%s\"\n\n", argv[1]);
	usage(stderr);
out:
	keyring_install(NULL);
	curl_global_cleanup();
	return rc;
}
