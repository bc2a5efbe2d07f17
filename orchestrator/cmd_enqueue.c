/*
 * cmd_enqueue.c - `certfleet enqueue`: reads certificates (one per argument or input line, names
 * separated by commas or white space, or a JSON fleet), validates every name, then queues all of
 * them in one transaction, or none when any input is bad; --wait follows that batch to its end.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "account.h"
#include "batchwait.h"
#include "caoffer.h"
#include "commands.h"
#include "dnsname.h"
#include "fleetcheck.h"
#include "fleetfile.h"
#include "keys.h"
#include "log.h"
#include "provider.h"
#include "registry.h"
#include "queue.h"

#define MAX_NAMES_PER_CERT 100  /* Let's Encrypt's limit of identifiers per order */
#define MAX_LINE 65536

struct batch {
	struct queue_cert *certs;
	size_t n;
	size_t cap;
	int errors;
};

static void
batch_free(struct batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		for (size_t k = 0; k < b->certs[i].nnames; k++)
			free(b->certs[i].names[k]);
		free(b->certs[i].names);
	}
	free(b->certs);
}

/* Parses one certificate from text; bad names are reported with source and line and counted. */
static int
batch_add(struct batch *b, char *text, const char *source, int line)
{
	struct queue_cert qc = { .line = line };
	char *save = NULL;
	int bad = 0;

	for (char *tok = strtok_r(text, ", \t\r\n", &save); tok; tok = strtok_r(NULL, ", \t\r\n", &save)) {
		char norm[DNSNAME_MAX];
		cf_err err;
		bool dup = false;
		if (dnsname_normalize(tok, norm, &err) != 0) {
			log_error("%s line %d: %s", source, line, err.msg);
			bad = 1;
			continue;
		}
		for (size_t i = 0; i < qc.nnames; i++)
			dup = dup || strcmp(qc.names[i], norm) == 0;
		if (dup)
			continue;
		if (qc.nnames == MAX_NAMES_PER_CERT) {
			log_error("%s line %d: more than %d names in one certificate", source, line, MAX_NAMES_PER_CERT);
			bad = 1;
			break;
		}
		char **n = realloc(qc.names, (qc.nnames + 1) * sizeof(*n));
		if (n == NULL || (n[qc.nnames] = strdup(norm)) == NULL) {
			qc.names = n ? n : qc.names;
			goto oom;
		}
		qc.names = n;
		qc.nnames++;
	}
	if (bad || qc.nnames == 0) {
		b->errors += bad;
		for (size_t i = 0; i < qc.nnames; i++)
			free(qc.names[i]);
		free(qc.names);
		return 0;
	}
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 64;
		struct queue_cert *c = realloc(b->certs, cap * sizeof(*c));
		if (c == NULL)
			goto oom;
		b->certs = c;
		b->cap = cap;
	}
	b->certs[b->n++] = qc;
	return 0;
oom:
	for (size_t i = 0; i < qc.nnames; i++)
		free(qc.names[i]);
	free(qc.names);
	log_error("enqueue: out of memory");
	return -1;
}

static int
batch_read(struct batch *b, FILE *f, const char *source)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	int lineno = 0, rc = 0;

	while ((len = getline(&line, &cap, f)) != -1) {
		lineno++;
		if (len > MAX_LINE) {
			log_error("%s line %d: line longer than %d bytes", source, lineno, MAX_LINE);
			b->errors++;
			continue;
		}
		if (strlen(line) != (size_t)len) {
			log_error("%s line %d: contains a NUL byte", source, lineno);
			b->errors++;
			continue;
		}
		char *hash = strchr(line, '#');
		if (hash)
			*hash = '\0';
		if (batch_add(b, line, source, lineno) != 0) {
			rc = -1;
			break;
		}
	}
	if (ferror(f)) {
		log_error("enqueue: reading %s failed", source);
		rc = -1;
	}
	free(line);
	return rc;
}

static void
enqueue_help(void)
{
	printf("usage: certfleet enqueue [OPTIONS] [CERT]...\n\n"
	       "Adds certificates to the fleet inventory and queues a job for each. A CERT is one\n"
	       "certificate: its names separated by commas (example.com,www.example.com). With no CERT,\n"
	       "or with --file, certificates are read one per line (names separated by commas or spaces,\n"
	       "'#' starts a comment). Names are validated and normalized (IDNs become A-labels); a\n"
	       "wildcard *.example.com is allowed. If any input is bad, nothing is queued (exit 2).\n"
	       "A certificate whose job is already queued or running is not queued again.\n\n"
	       "Each certificate is ordered from one CA: the account registered for --directory (env\n"
	       "CERTFLEET_DIRECTORY) is stored with it and with its job. A certificate queued before for\n"
	       "another CA moves to this one with its new job. No account for the directory: exit 2,\n"
	       "nothing queued (register one with certfleet account register --directory URL).\n\n"
	       "--key-type and --provider change a certificate already in the fleet: its next order uses\n"
	       "them (a job already queued takes them when it starts), and with a new provider that\n"
	       "order writes the records through it (the old provider's records are left in place).\n"
	       "Without them, new certificates get the defaults and others keep theirs.\n\n"
	       "JSON input (--json FILE, '-' for standard input): {\"certificates\": [{\"names\":\n"
	       "[\"example.com\", ...], \"key_type\": ..., \"provider\": ..., \"profile\": ..., \"ca\": URL}]};\n"
	       "only names is required, the others default to the flags (ca to --directory; an account\n"
	       "must be registered for it). Also accepted: that object as one terraform output\n"
	       "({\"value\": {...}, \"type\": ..., \"sensitive\": ...}), or the outputs of\n"
	       "terraform output -json, of which the one named certfleet is read. Unknown members,\n"
	       "wrong types, a certificate without names, a bad name and two certificates with the same\n"
	       "names exit 2 naming the file, the certificate's index and the member; nothing is queued.\n\n"
	       "--wait blocks until the latest job of every certificate of this call has ended (a\n"
	       "`certfleet run --follow` or a later `certfleet run` works them), with progress on stderr.\n"
	       "--output json prints a summary on stdout: run id, counts, and per certificate its id,\n"
	       "names, job id, state, and serial and not_after once issued.\n\n"
	       "Options:\n"
	       "  -f, --file FILE     read certificates from FILE ('-' for standard input)\n"
	       "  --json FILE         read certificates from the JSON FILE ('-' for standard input)\n"
	       "  --wait              wait until this call's jobs have ended (exit codes below)\n"
	       "  --timeout SECS      with --wait: give up after SECS seconds (default: no limit)\n"
	       "  --missing-only      queue only the certificates that hold no current, unrevoked\n"
	       "                      certificate (an apply hook's enqueue then orders what is new\n"
	       "                      or failed, not the whole fleet again); --wait still follows\n"
	       "                      every certificate of the input\n"
	       "  --output FORMAT     text (default) or json (the summary; other messages go to stderr)\n"
	       "  --provider NAME     DNS provider account that publishes the records (default %s;\n"
	       "                      env CERTFLEET_PROVIDER; see certfleet provider list)\n"
	       "  --key-type TYPE     certificate key type: ec-p256 (default), ec-p384, rsa-2048, rsa-3072\n"
	       "  --label TEXT        a label for this run (the batch of jobs this call adds)\n"
	       "  --max-attempts N    attempts per job before it fails for good (default 5)\n"
	       "  --profile NAME      order these certificates with the CA's certificate profile NAME\n"
	       "                      (e.g. shortlived), which must be one of the profiles the directory\n"
	       "                      lists (else exit 2); --profile '' returns them to the CA's default.\n"
	       "                      Without it, new certificates get the default and others keep theirs\n"
	       "  --preferred-chain CN  store the alternate chain (RFC 8555 7.4.2) whose topmost\n"
	       "                      certificate was issued by Common Name CN, when the CA offers one;\n"
	       "                      else the default chain is stored and the job's events say so.\n"
	       "                      Refused (exit 2) when the account's last download showed the CA\n"
	       "                      offers no alternates; accepted when no download has shown it yet.\n"
	       "                      --preferred-chain '' returns them to the default chain\n"
	       "Both apply to every certificate of this enqueue, new or already in the fleet.\n\n"
	       "Exit codes: 0 queued (with --wait: every job issued), 1 runtime failure (database, CA),\n"
	       "2 bad input (nothing queued), 3 with --wait: some jobs failed or were cancelled,\n"
	       "4 with --wait: --timeout passed with jobs still queued or running.\n\n%s",
	    "challtestsrv", CONFIG_COMMON_HELP);
}

/*
 * The provider account must be configured before anything is queued; its credentials are the
 * run's business, so they need not be readable here.
 */
static int
check_provider(const struct config *cfg)
{
	struct provider_env env = { 0 };
	struct provider_registry *reg;
	cf_err err;
	int rc = -1;

	env.path = cfg->providers_path;
	env.challtestsrv_url = cfg->challtestsrv_url;
	env.challtestsrv_dns = cfg->challtestsrv_dns;
	env.names_only = true; /* enqueue needs the account's name, not its credentials */
	if ((reg = provider_registry_load(&env, &err)) == NULL)
		log_error("enqueue: %s", err.msg);
	else if (provider_account_find(reg, cfg->provider) == NULL)
		log_error("enqueue: no DNS provider account \"%s\" (see certfleet provider list)", cfg->provider);
	else
		rc = 0;
	provider_registry_free(reg);
	return rc;
}

struct enqueue_opts {
	const char *file;         /* --file, NULL when not given */
	const char *json;         /* --json, NULL when not given */
	const char *key_type;     /* --key-type as given, NULL when not given */
	bool provider_given;      /* --provider was given */
	bool wait;                /* --wait */
	long timeout;             /* --timeout, 0 = none */
	bool output_json;         /* --output json */
	struct queue_enqueue_opts eo; /* --label and --max-attempts */
	bool help;                /* --help was printed: nothing to queue */
};

static const struct option enqueue_options[] = {
	{ "file", required_argument, NULL, 'f' },
	{ "provider", required_argument, NULL, 'p' },
	{ "key-type", required_argument, NULL, 'k' },
	{ "label", required_argument, NULL, 'l' },
	{ "max-attempts", required_argument, NULL, 'a' },
	{ "profile", required_argument, NULL, 'P' },
	{ "preferred-chain", required_argument, NULL, 'C' },
	{ "json", required_argument, NULL, 'J' },
	{ "wait", no_argument, NULL, 'W' },
	{ "timeout", required_argument, NULL, 'T' },
	{ "output", required_argument, NULL, 'O' },
	{ "missing-only", no_argument, NULL, 'M' },
	CONFIG_COMMON_OPTIONS,
	{ 0 },
};

/* One of enqueue's own options: 1, 0 after logging a bad value, or -1 when opt is not one of them. */
static int
enqueue_option(struct config *cfg, struct enqueue_opts *o, int opt, const char *arg)
{
	long v;

	switch (opt) {
	case 'f':
		o->file = arg;
		return 1;
	case 'p':
		cfg->provider = arg;
		o->provider_given = true;
		return 1;
	case 'J':
		o->json = arg;
		return 1;
	case 'W':
		o->wait = true;
		return 1;
	case 'M':
		o->eo.missing_only = true;
		return 1;
	case 'T':
		if (cmd_parse_long("--timeout", arg, 1, 31L * 86400, &v) != 0)
			return 0;
		o->timeout = v;
		return 1;
	case 'O':
		if (strcmp(arg, "json") != 0 && strcmp(arg, "text") != 0) {
			log_error("enqueue: --output \"%s\": not text or json", arg);
			return 0;
		}
		o->output_json = strcmp(arg, "json") == 0;
		return 1;
	case 'k':
		o->key_type = arg;
		return 1;
	case 'l':
		o->eo.label = arg;
		return 1;
	case 'a':
		if (cmd_parse_long("--max-attempts", arg, 1, 100, &v) != 0)
			return 0;
		o->eo.max_attempts = (int)v;
		return 1;
	case 'P':
		o->eo.profile = arg;
		return 1;
	case 'C':
		o->eo.preferred_chain = arg;
		return 1;
	}
	return -1;
}

/* The flags, leaving optind at the first CERT argument. EXIT_OK (check o->help) or EXIT_USAGE. */
static int
enqueue_parse(struct config *cfg, int argc, char **argv, struct enqueue_opts *o)
{
	int opt, ok;

	*o = (struct enqueue_opts){ 0 };
	while ((opt = getopt_long(argc, argv, "f:" CONFIG_COMMON_SHORT, enqueue_options, NULL)) != -1) {
		if (opt == 'h') {
			enqueue_help();
			o->help = true;
			return EXIT_OK;
		}
		ok = enqueue_option(cfg, o, opt, optarg);
		if (ok == 0 || (ok < 0 && !config_common_option(cfg, opt, optarg)))
			return EXIT_USAGE;
	}
	if (o->json && (o->file || optind < argc)) {
		log_error("enqueue: --json takes the certificates from its file: no --file or CERT with it");
		return EXIT_USAGE;
	}
	if (o->timeout && !o->wait) {
		log_error("enqueue: --timeout needs --wait");
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

/*
 * The certificates of --file, or of standard input when no CERT argument was given (but not
 * from a terminal). EXIT_OK, or the exit code after logging why; bad names are only counted.
 */
static int
enqueue_read_input(struct batch *b, const char *file)
{
	FILE *f = stdin;
	const char *source = "stdin";
	int r;

	if (file && strcmp(file, "-") != 0) {
		f = fopen(file, "r");
		source = file;
		if (f == NULL) {
			log_error("enqueue: cannot open %s: %m", file);
			return EXIT_USAGE;
		}
	} else if (isatty(STDIN_FILENO)) {
		log_error("enqueue: no certificates given (pass names, --file, or pipe them in)");
		return EXIT_USAGE;
	}
	r = batch_read(b, f, source);
	if (f != stdin)
		fclose(f);
	return r != 0 ? EXIT_FAILURE_RUNTIME : EXIT_OK;
}

/* The CERT arguments, then the file or standard input. EXIT_OK, or the exit code after logging. */
static int
enqueue_collect(struct batch *b, const char *file, int argc, char **argv)
{
	int first = optind;

	for (int i = first; i < argc; i++) {
		char *copy = strdup(argv[i]);
		int r = copy ? batch_add(b, copy, "argument", i - first + 1) : -1;
		free(copy);
		if (r != 0)
			return EXIT_USAGE;
	}
	if (file || first == argc)
		return enqueue_read_input(b, file);
	return EXIT_OK;
}

/* The forms of --profile and --preferred-chain ('' resets either). EXIT_OK or EXIT_USAGE. */
static int
enqueue_check_syntax(const struct queue_enqueue_opts *eo)
{
	cf_err err;

	if ((eo->profile && eo->profile[0] && caoffer_profile_syntax(eo->profile, &err) != 0) ||
	    (eo->preferred_chain && eo->preferred_chain[0] && caoffer_chain_syntax(eo->preferred_chain, &err) != 0)) {
		log_error("enqueue: %s: nothing was queued", err.msg);
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

/*
 * Whether the account's CA can grant --profile (its directory lists it) and --preferred-chain
 * (its downloads have not shown it offers no alternates). EXIT_OK, or the exit code after logging.
 */
static int
enqueue_check_ca(const struct config *cfg, PGconn *c, const struct account *acct, const struct queue_enqueue_opts *eo)
{
	struct http_settings hs = { .ca_bundle = cfg->ca_bundle, .allow_http_loopback = cfg->allow_http_loopback };
	cf_err err;
	int r;

	if (eo->profile && eo->profile[0] &&
	    (r = caoffer_check_profile(&hs, acct->directory_url, eo->profile, &err)) != 0) {
		log_error("enqueue: %s: nothing was queued", err.msg);
		return r > 0 ? EXIT_USAGE : EXIT_FAILURE_RUNTIME;
	}
	if (eo->preferred_chain && eo->preferred_chain[0] && (r = caoffer_check_alternates(c, acct->id, &err)) != 0) {
		log_error("enqueue: %s: nothing was queued", err.msg);
		return r > 0 ? EXIT_USAGE : EXIT_FAILURE_RUNTIME;
	}
	return EXIT_OK;
}

/*
 * The batch stored: the queued line (on stderr with --output json), then with --wait its end, and
 * the JSON summary. The exit code.
 */
static int
enqueue_report(PGconn *c, const struct enqueue_opts *o, const struct queue_enqueue_result *res,
    const struct queue_cert *certs, size_t n, const char *ca)
{
	FILE *f = o->output_json ? stderr : stdout;
	struct queue_job_state *st = calloc(n, sizeof(*st));
	int64_t *ids = calloc(n, sizeof(*ids));
	struct batchwait_counts k = { 0 };
	cf_err err;
	int rc = EXIT_FAILURE_RUNTIME, r = 0;

	fprintf(f, "queued %ld job%s in run %lld for %s (%ld new certificate%s, %ld already queued or running)",
	    res->jobs_added, res->jobs_added == 1 ? "" : "s", (long long)res->run_id, ca,
	    res->certificates_new, res->certificates_new == 1 ? "" : "s", res->jobs_already_queued);
	if (res->certificates_current > 0)
		fprintf(f, "; %ld certificate%s already current (--missing-only)", res->certificates_current,
		    res->certificates_current == 1 ? "" : "s");
	if (res->certificates_changed > 0)
		fprintf(f, "; %ld certificate%s changed settings (key type, provider, profile or preferred chain) "
		    "or returned to the fleet", res->certificates_changed, res->certificates_changed == 1 ? "" : "s");
	fprintf(f, "\n");
	fflush(f);
	if (!o->wait && !o->output_json) {
		rc = EXIT_OK;
		goto out;
	}
	if (st == NULL || ids == NULL) {
		log_error("enqueue: out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		ids[i] = certs[i].certificate_id;
	if (o->wait)
		r = batchwait_run(c, ids, n, o->timeout, true, st, &err);
	else
		r = queue_batch_state(c, ids, n, st, &err);
	if (r < 0) {
		log_error("enqueue: %s", err.msg);
		goto out;
	}
	if (o->output_json && batchwait_print_json(stdout, res->run_id, certs, st, n) != 0) {
		log_error("enqueue: out of memory for the summary");
		goto out;
	}
	batchwait_count(st, n, &k);
	rc = EXIT_OK;
	if (o->wait && r == 1) {
		log_error("enqueue: --timeout %ld passed with %ld job%s queued or running", o->timeout, k.pending,
		    k.pending == 1 ? "" : "s");
		rc = EXIT_JOBS_QUEUED;
	} else if (o->wait && k.failed + k.cancelled > 0) {
		log_error("enqueue: %ld job%s failed, %ld cancelled (see certfleet status)", k.failed,
		    k.failed == 1 ? "" : "s", k.cancelled);
		rc = EXIT_JOBS_FAILED;
	}
out:
	free(st);
	free(ids);
	return rc;
}

/* Queues every certificate of b for the account of --directory (its CA) in one transaction. */
static int
enqueue_store(struct config *cfg, const struct enqueue_opts *o, const struct batch *b, struct queue_enqueue_opts *eo)
{
	struct account acct = { 0 };
	struct queue_enqueue_result res;
	PGconn *c = NULL;
	cf_err err;
	int rc;

	if ((rc = cmd_open_account(cfg, "enqueue", &c, &acct)) != EXIT_OK ||
	    (rc = enqueue_check_ca(cfg, c, &acct, eo)) != EXIT_OK)
		goto out;
	rc = EXIT_FAILURE_RUNTIME;
	if (queue_enqueue(c, acct.id, eo, b->certs, b->n, &res, &err) != 0) {
		log_error("enqueue: %s: nothing was queued", err.msg);
		goto out;
	}
	rc = enqueue_report(c, o, &res, b->certs, b->n, acct.directory_url);
out:
	account_clear(&acct);
	PQfinish(c);
	return rc;
}

/* --profile for the certificates of the file that name none, so that their CAs are asked too. */
static int
enqueue_json_flags(struct fleet *f, const struct queue_enqueue_opts *eo)
{
	for (size_t i = 0; eo->profile && i < f->n; i++) {
		if (f->certs[i].profile == NULL && (f->certs[i].profile = strdup(eo->profile)) == NULL) {
			log_error("enqueue: out of memory");
			return EXIT_FAILURE_RUNTIME;
		}
	}
	return EXIT_OK;
}

/* --preferred-chain: each account the file's certificates use, as enqueue_check_ca asks one. */
static int
enqueue_json_chains(PGconn *c, const struct fleet *f, const int64_t *accts, const struct queue_enqueue_opts *eo)
{
	cf_err err;
	int r;

	for (size_t i = 0; eo->preferred_chain && eo->preferred_chain[0] && i < f->n; i++) {
		bool seen = false;
		for (size_t k = 0; k < i; k++)
			seen = seen || accts[k] == accts[i];
		if (!seen && (r = caoffer_check_alternates(c, accts[i], &err)) != 0) {
			log_error("enqueue: certificates[%zu]: %s: nothing was queued", f->certs[i].index, err.msg);
			return r > 0 ? EXIT_USAGE : EXIT_FAILURE_RUNTIME;
		}
	}
	return EXIT_OK;
}

/*
 * --json: the fleet of the file, each certificate with its own CA, provider, key type and profile
 * where the file says, else the flags'; all checked before one transaction queues them.
 */
static int
enqueue_json(struct config *cfg, const struct enqueue_opts *o, struct queue_enqueue_opts *eo)
{
	struct fleet f = { 0 };
	struct queue_cert *qc = NULL;
	struct queue_enqueue_result res;
	int64_t *accts = NULL;
	const char *source = strcmp(o->json, "-") == 0 ? "stdin" : o->json;
	PGconn *c = NULL;
	cf_err err;
	int rc, r;

	if ((r = fleet_read(o->json, &f, &err)) != 0) {
		log_error("enqueue: %s: nothing was queued", err.msg);
		return r > 0 ? EXIT_USAGE : EXIT_FAILURE_RUNTIME;
	}
	rc = EXIT_USAGE;
	if (f.n == 0) {
		log_error("enqueue: %s: no certificates: nothing was queued", source);
		goto out;
	}
	rc = EXIT_FAILURE_RUNTIME;
	if ((qc = calloc(f.n, sizeof(*qc))) == NULL || (accts = calloc(f.n, sizeof(*accts))) == NULL) {
		log_error("enqueue: out of memory");
		goto out;
	}
	if ((c = cmd_connect(cfg, true)) == NULL) {
		rc = cmd_connect_failure();
		goto out;
	}
	if ((rc = enqueue_json_flags(&f, eo)) != EXIT_OK ||
	    (rc = fleet_check(cfg, c, &f, source, "enqueue", accts)) != EXIT_OK ||
	    (rc = enqueue_json_chains(c, &f, accts, eo)) != EXIT_OK)
		goto out;
	for (size_t i = 0; i < f.n; i++) {
		qc[i] = (struct queue_cert){ .names = f.certs[i].names, .nnames = f.certs[i].nnames,
			.line = (int)f.certs[i].index, .account_id = accts[i], .key_type = f.certs[i].key_type,
			.provider = f.certs[i].provider, .profile = f.certs[i].profile };
	}
	rc = EXIT_FAILURE_RUNTIME;
	if (queue_enqueue(c, 0, eo, qc, f.n, &res, &err) != 0) {
		log_error("enqueue: %s: nothing was queued", err.msg);
		goto out;
	}
	rc = enqueue_report(c, o, &res, qc, f.n, source);
out:
	PQfinish(c);
	free(qc);
	free(accts);
	fleet_free(&f);
	return rc;
}

int
cmd_enqueue(struct config *cfg, int argc, char **argv)
{
	struct enqueue_opts o;
	struct batch b = { 0 };
	enum key_type kt;
	int rc;

	if ((rc = enqueue_parse(cfg, argc, argv, &o)) != EXIT_OK || o.help)
		return rc;
	if ((rc = enqueue_check_syntax(&o.eo)) != EXIT_OK)
		return rc;
	if (cfg->directory_url && !config_directory_ok(cfg, "enqueue"))
		return EXIT_USAGE;
	if (o.key_type && key_type_parse(o.key_type, &kt) != 0) {
		log_error("enqueue: unknown key type \"%s\" (known: ec-p256, ec-p384, rsa-2048, rsa-3072)",
		    o.key_type);
		return EXIT_USAGE;
	}
	o.eo.key_type = o.key_type;
	o.eo.provider = o.provider_given ? cfg->provider : NULL;
	o.eo.default_provider = cfg->provider;
	if (o.json)
		return enqueue_json(cfg, &o, &o.eo);
	if (check_provider(cfg) != 0)
		return EXIT_USAGE;
	if ((rc = enqueue_collect(&b, o.file, argc, argv)) != EXIT_OK)
		goto out;
	rc = EXIT_USAGE;
	if (b.errors > 0) {
		log_error("enqueue: %d bad input%s: nothing was queued", b.errors, b.errors == 1 ? "" : "s");
		goto out;
	}
	if (b.n == 0) {
		log_error("enqueue: no certificates in the input: nothing was queued");
		goto out;
	}
	rc = enqueue_store(cfg, &o, &b, &o.eo);
out:
	batch_free(&b);
	return rc;
}
