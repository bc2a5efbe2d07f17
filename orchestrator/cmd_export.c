/* cmd_export.c - `certfleet export` and `certfleet deploy`: issued certificates into folders for servers. */
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "deploy.h"
#include "dnsname.h"
#include "export.h"
#include "log.h"

#define EXPORT_SELECTORS_MAX 10000 /* of each kind; a larger set is better named by --run */

#define EXPORT_LAYOUT_HELP \
	"Each certificate gets a folder in DIR named by its primary name (the first one\n" \
	"enqueued), a wildcard \"*.example.com\" as \"_wildcard.example.com\"; where an older\n" \
	"certificate has the same primary name, \"_\" and the certificate's id follow. The folder\n" \
	"holds cert.pem (the leaf), chain.pem (the intermediates), fullchain.pem (leaf then\n" \
	"chain), key.pem (the private key, 0600) and haproxy.pem (fullchain then key, 0600, for\n" \
	"HAProxy's crt). DIR is made when missing. A file is written to a temporary file beside\n" \
	"it, fsynced and renamed, and only when its content or mode differs: an unchanged file\n" \
	"keeps its mtime. DIR, a certificate's folder or one of its files that is a symbolic link\n" \
	"is refused (exit 2, nothing written). On a write error (full disk, read-only folder) the\n" \
	"error names the file and the old files stay as they were.\n"

struct export_opts {
	struct export_sel sel;
	int64_t *runs;
	char **names;
	const char *dir;
	bool help;
};

static void
export_help(void)
{
	printf("usage: certfleet export DIR (--all | --name NAME | --run ID | --changed-since TIME)...\n"
	       "                        [OPTIONS]\n\n"
	       "Writes the current certificate of each selected certificate of the fleet (retired ones\n"
	       "excluded) with its chain and key into DIR, for servers to read. Selectors add up and\n"
	       "may repeat:\n"
	       "  --all                every current certificate\n"
	       "  --name NAME          the certificate holding NAME (one no current certificate holds\n"
	       "                       is an error, and nothing is written)\n"
	       "  --run ID             the certificates issued by a job of run ID\n"
	       "  --changed-since TIME the certificates stored since TIME (as PostgreSQL reads a\n"
	       "                       timestamptz: 2026-12-01, '2026-12-01 12:00+00')\n\n"
	       EXPORT_LAYOUT_HELP
	       "\nPrints one line per certificate (changed or unchanged, its folder, ids and serial),\n"
	       "then a summary. Needs the key-encryption key (CERTFLEET_KEK_FILE) that sealed the keys.\n"
	       "Exit codes: 0 every selected certificate written, 1 a write or the database failed\n"
	       "(the error names the file), 2 bad usage, a selector naming nothing, or a symbolic link\n"
	       "(nothing written).\n\n%s",
	    CONFIG_COMMON_HELP);
}

static const struct option export_options[] = {
	{ "all", no_argument, NULL, 'A' },
	{ "name", required_argument, NULL, 'N' },
	{ "run", required_argument, NULL, 'R' },
	{ "changed-since", required_argument, NULL, 'S' },
	CONFIG_COMMON_OPTIONS,
	{ 0 },
};

static void
export_opts_free(struct export_opts *o)
{
	for (size_t i = 0; i < o->sel.nnames; i++)
		free(o->names[i]);
	free(o->names);
	free(o->runs);
}

static int
grow(void **arr, size_t n, size_t sz, const char *flag)
{
	return cmd_grow_selector("export", arr, n, sz, EXPORT_SELECTORS_MAX, flag, NULL);
}

/* One of export's options: 1, 0 after logging a bad value, -1 when opt is not one of them. */
static int
export_option(struct export_opts *o, int opt, const char *arg)
{
	char name[DNSNAME_MAX];
	cf_err err;
	long v;

	switch (opt) {
	case 'A':
		o->sel.all = true;
		return 1;
	case 'R':
		if (cmd_parse_long("--run", arg, 1, LONG_MAX, &v) != 0 ||
		    grow((void **)&o->runs, o->sel.nruns, sizeof(int64_t), "--run") != 0)
			return 0;
		o->runs[o->sel.nruns++] = v;
		return 1;
	case 'N':
		if (dnsname_normalize(arg, name, &err) != 0) {
			log_error("export: --name: %s", err.msg);
			return 0;
		}
		if (grow((void **)&o->names, o->sel.nnames, sizeof(char *), "--name") != 0 ||
		    (o->names[o->sel.nnames] = strdup(name)) == NULL)
			return 0;
		o->sel.nnames++;
		return 1;
	case 'S':
		o->sel.since = arg;
		return 1;
	}
	return -1;
}

static int
export_parse(struct config *cfg, int argc, char **argv, struct export_opts *o)
{
	int opt, ok;

	while ((opt = getopt_long(argc, argv, CONFIG_COMMON_SHORT, export_options, NULL)) != -1) {
		if (opt == 'h') {
			export_help();
			o->help = true;
			return EXIT_OK;
		}
		ok = export_option(o, opt, optarg);
		if (ok == 0 || (ok < 0 && !config_common_option(cfg, opt, optarg)))
			return EXIT_USAGE;
	}
	if (optind + 1 != argc) {
		log_error(optind == argc ? "export: name the folder to export into" : "export: unexpected argument \"%s\"",
		    argv[optind + (optind < argc)]);
		return EXIT_USAGE;
	}
	o->dir = argv[optind];
	if (!o->sel.all && o->sel.nnames + o->sel.nruns == 0 && o->sel.since == NULL) {
		log_error("export: name what to export with --all, --name, --run or --changed-since");
		return EXIT_USAGE;
	}
	o->sel.names = (const char *const *)o->names;
	o->sel.runs = o->runs;
	return EXIT_OK;
}

int
cmd_export(struct config *cfg, int argc, char **argv)
{
	struct export_opts o = { 0 };
	struct export_cert *t = NULL;
	PGconn *c = NULL;
	size_t n = 0, changed_n = 0, done = 0;
	int dfd = -1, rc, r;
	cf_err err;

	if ((rc = export_parse(cfg, argc, argv, &o)) != EXIT_OK || o.help)
		goto out;
	if ((rc = cmd_protect_memory("export")) != EXIT_OK || (rc = cmd_keyring("export", false)) != EXIT_OK)
		goto out;
	if ((c = cmd_connect(cfg, true)) == NULL) {
		rc = cmd_connect_failure();
		goto out;
	}
	if ((r = export_select(c, &o.sel, &t, &n, &err)) != 0) {
		log_error("export: %s", err.msg);
		rc = r > 0 ? EXIT_USAGE : EXIT_FAILURE_RUNTIME;
		goto out;
	}
	if ((r = export_dir_open(o.dir, &dfd, &err)) != 0 || (r = export_check(dfd, o.dir, t, n, &err)) != 0) {
		log_error("export: %s", err.msg);
		rc = r > 0 ? EXIT_USAGE : EXIT_FAILURE_RUNTIME;
		goto out;
	}
	rc = EXIT_OK;
	for (size_t i = 0; i < n; i++) {
		bool changed;
		if ((r = export_write(dfd, o.dir, &t[i], &changed, &err)) != 0) {
			log_error("export: certificate %" PRId64 " (%s): %s", t[i].certificate_id, t[i].names, err.msg);
			rc = r > 0 ? EXIT_USAGE : EXIT_FAILURE_RUNTIME;
			break;
		}
		printf("%s: %s/%s certificate %" PRId64 " result %" PRId64 " serial %s\n", changed ? "changed" : "unchanged",
		    o.dir, t[i].folder, t[i].certificate_id, t[i].result_id, t[i].serial);
		changed_n += changed;
		done++;
	}
	printf("export: %zu certificates, %zu changed, %zu unchanged", n, changed_n, done - changed_n);
	if (done < n)
		printf(", 1 failed, %zu not written", n - done - 1);
	printf("\n");
out:
	if (dfd >= 0)
		close(dfd);
	export_certs_free(t, n);
	export_opts_free(&o);
	PQfinish(c);
	return rc;
}

static volatile sig_atomic_t deploy_stop;

static void
deploy_on_signal(int sig)
{
	(void)sig;
	deploy_stop = 1;
}

static PGconn *
deploy_connect(const void *arg, bool *refused)
{
	PGconn *c = cmd_connect(arg, true);

	*refused = c == NULL && cmd_connect_failure() == EXIT_USAGE;
	return c;
}

static void
deploy_help(void)
{
	printf("usage: certfleet deploy DIR [--hook PATH] [--timeout SECS] [--follow] [--retry-after SECS]\n"
	       "                        [OPTIONS]\n\n"
	       "Delivers the current certificates not deployed yet (results.deployed_at empty; retired\n"
	       "certificates excluded): exports each into DIR as `certfleet export` does, runs the hook\n"
	       "for it, records each step in deploy_events (exported; hook with its exit code and the\n"
	       "first 4 KiB of its output; failed) and sets results.deployed_at when the hook exits 0.\n"
	       "A failed hook leaves the issuance as it is: the result stays undeployed and the next\n"
	       "deploy tries it again (its files are then unchanged; the hook still runs).\n"
	       "  --hook PATH       the program to run for each certificate, without a shell, as\n"
	       "                    PATH FOLDER, standard input /dev/null, and an environment of PATH\n"
	       "                    and these alone: CERTFLEET_DEPLOY_DIR (the folder),\n"
	       "                    CERTFLEET_CERT_FILE, CERTFLEET_CHAIN_FILE, CERTFLEET_FULLCHAIN_FILE,\n"
	       "                    CERTFLEET_KEY_FILE, CERTFLEET_HAPROXY_FILE, CERTFLEET_NAME (primary),\n"
	       "                    CERTFLEET_NAMES (space-separated), CERTFLEET_SERIAL (hex),\n"
	       "                    CERTFLEET_NOT_AFTER (RFC 3339, UTC), CERTFLEET_CERTIFICATE_ID,\n"
	       "                    CERTFLEET_RESULT_ID, CERTFLEET_CHANGED (1 when a file was written).\n"
	       "                    A PATH that is not an executable file: exit 2, nothing done.\n"
	       "                    Without --hook, a certificate is deployed once exported.\n"
	       "  --timeout SECS    a hook still running after SECS (default 60) is ended, with its\n"
	       "                    process group (SIGTERM, SIGKILL 2 s later), and counts as failed\n"
	       "  --follow          keep running: LISTEN on certfleet_issued (run sends a NOTIFY for\n"
	       "                    each certificate it stores) and deliver as certificates arrive;\n"
	       "                    catches up at start and after a lost connection, which it makes\n"
	       "                    again; SIGINT or SIGTERM ends it after the hook running\n"
	       "  --retry-after SECS  with --follow: a failed delivery is tried again after SECS\n"
	       "                    (default 60), not at every NOTIFY\n\n"
	       EXPORT_LAYOUT_HELP
	       "\nPrints one line per certificate (deployed or failed). Needs the key-encryption key\n"
	       "(CERTFLEET_KEK_FILE) that sealed the keys; the hook does not get it.\n"
	       "Exit codes: 0 every certificate deployed (--follow: stopped by a signal), 1 the\n"
	       "database failed (without --follow), 2 bad usage, a hook that is not executable, or a\n"
	       "symbolic link in DIR (nothing done), 3 some deliveries failed (a hook exited non-zero\n"
	       "or timed out, or a write failed; tried again by the next deploy).\n\n%s",
	    CONFIG_COMMON_HELP);
}

static const struct option deploy_options[] = {
	{ "hook", required_argument, NULL, 'H' },
	{ "timeout", required_argument, NULL, 'T' },
	{ "follow", no_argument, NULL, 'F' },
	{ "retry-after", required_argument, NULL, 'R' },
	CONFIG_COMMON_OPTIONS,
	{ 0 },
};

static int
deploy_parse(struct config *cfg, int argc, char **argv, struct deploy_opts *o, bool *help)
{
	int opt;
	long v;
	cf_err err;

	o->timeout = 60;
	o->retry_after = 60;
	while ((opt = getopt_long(argc, argv, CONFIG_COMMON_SHORT, deploy_options, NULL)) != -1) {
		switch (opt) {
		case 'h':
			deploy_help();
			*help = true;
			return EXIT_OK;
		case 'H':
			o->hook = optarg;
			break;
		case 'F':
			o->follow = true;
			break;
		case 'T':
		case 'R':
			if (cmd_parse_long(opt == 'T' ? "--timeout" : "--retry-after", optarg, 1, 86400, &v) != 0)
				return EXIT_USAGE;
			*(opt == 'T' ? &o->timeout : &o->retry_after) = (int)v;
			break;
		default:
			if (!config_common_option(cfg, opt, optarg))
				return EXIT_USAGE;
		}
	}
	if (optind + 1 != argc) {
		log_error(optind == argc ? "deploy: name the folder to export into" : "deploy: unexpected argument \"%s\"",
		    argv[optind + (optind < argc)]);
		return EXIT_USAGE;
	}
	o->dir = argv[optind];
	if (o->hook && deploy_hook_check(o->hook, &err) != 0) {
		log_error("deploy: %s", err.msg);
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

int
cmd_deploy(struct config *cfg, int argc, char **argv)
{
	struct deploy_opts o = { 0 };
	struct deploy_counts n = { 0 };
	struct sigaction sa;
	bool help = false;
	int rc;

	if ((rc = deploy_parse(cfg, argc, argv, &o, &help)) != EXIT_OK || help)
		return rc;
	if ((rc = cmd_protect_memory("deploy")) != EXIT_OK || (rc = cmd_keyring("deploy", false)) != EXIT_OK)
		return rc;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = deploy_on_signal; /* no SA_RESTART: a wait ends at once */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	rc = deploy_run(deploy_connect, cfg, &o, &deploy_stop, &n);
	printf("deploy: %ld deployed (%ld unchanged), %ld failed\n", n.deployed, n.unchanged, n.failed);
	return rc;
}
