/* config.h - certfleet's settings: defaults, then environment (CERTFLEET_*), then flags. */
#ifndef CF_CONFIG_H
#define CF_CONFIG_H

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>

struct config {
	const char *db_url;            /* CERTFLEET_DB, --db */
	const char *directory_url;     /* CERTFLEET_DIRECTORY, --directory */
	const char *ca_bundle;         /* CERTFLEET_CA_BUNDLE, --ca-bundle: trust for the CA's HTTPS */
	const char *challtestsrv_url;  /* CERTFLEET_CHALLTESTSRV_URL */
	const char *challtestsrv_dns;  /* CERTFLEET_CHALLTESTSRV_DNS: where its records are confirmed */
	const char *providers_path;    /* CERTFLEET_PROVIDERS: the provider accounts file */
	const char *provider;          /* CERTFLEET_PROVIDER, --provider: default for enqueue */
	bool allow_http_loopback;      /* CERTFLEET_ALLOW_HTTP_LOOPBACK=1, --allow-http-loopback */
	bool db_allow_plaintext;       /* CERTFLEET_DB_ALLOW_PLAINTEXT=1: a remote database unverified */
	int verbosity;                 /* CERTFLEET_LOG (error|warn|info|debug), -v, -q */
	bool log_format_bad;           /* CERTFLEET_LOG_FORMAT is neither text nor json */
	const char *persist_until;     /* CERTFLEET_PERSIST_UNTIL: persistUntil of every record, or NULL */
};

/* Exit codes that scripts can rely on. */
enum {
	EXIT_OK = 0,
	EXIT_FAILURE_RUNTIME = 1,      /* database, CA or provider unreachable; internal error */
	EXIT_USAGE = 2,                /* bad flags, bad input, bad configuration */
	EXIT_JOBS_FAILED = 3,          /* a run finished and some of its jobs failed */
	EXIT_JOBS_QUEUED = 4,          /* a run finished with jobs left queued for a later retry */
	EXIT_JOURNALLED = 5,           /* results are in the local journal, not yet in PostgreSQL */
	EXIT_INTERRUPTED = 6,          /* a run stopped at once by a second signal */
};

void config_defaults(struct config *cfg);

/* Long options every command accepts; their values start at 1000. */
#define CONFIG_COMMON_OPTIONS                                       \
	{ "db", required_argument, NULL, 1000 },                    \
	{ "directory", required_argument, NULL, 1001 },             \
	{ "ca-bundle", required_argument, NULL, 1002 },             \
	{ "allow-http-loopback", no_argument, NULL, 1003 },         \
	{ "log-format", required_argument, NULL, 1004 },            \
	{ "verbose", no_argument, NULL, 'v' },                      \
	{ "quiet", no_argument, NULL, 'q' },                        \
	{ "help", no_argument, NULL, 'h' }

#define CONFIG_COMMON_SHORT "vqh"

#define CONFIG_COMMON_HELP                                                                     \
	"Common options:\n"                                                                    \
	"  --db URL          PostgreSQL connection URL (env CERTFLEET_DB)\n"                   \
	"  --directory URL   ACME directory URL (env CERTFLEET_DIRECTORY)\n"                   \
	"  --ca-bundle FILE  CA certificates to trust for the ACME server (env CERTFLEET_CA_BUNDLE)\n" \
	"  --allow-http-loopback  allow plain http to 127.0.0.0/8, ::1 and localhost for the ACME\n" \
	"                    directory and provider APIs (env CERTFLEET_ALLOW_HTTP_LOOPBACK=1);\n" \
	"                    every other URL must be https\n"                                    \
	"  -v, --verbose     more log output (repeat for debug); -q, --quiet: errors only\n"  \
	"  --log-format FMT  text (default) or json: one JSON object per line on standard error,\n" \
	"                    with time, level, message and, where there is one, job_id,\n"      \
	"                    certificate_id, names, problem_type and detail (env\n"               \
	"                    CERTFLEET_LOG_FORMAT)\n"                                            \
	"  -h, --help        this help\n"

/* Applies a common option; returns 1 when it was one, 0 when not. */
int config_common_option(struct config *cfg, int opt, const char *arg);

/*
 * The persistUntil records carry (CERTFLEET_PERSIST_UNTIL; 0 when unset) into *until. Logs a
 * warning when it lapses within warn_days. EXIT_OK, or EXIT_USAGE after an error naming the
 * setting when it is malformed or has lapsed (a CA must not use such a record).
 */
int config_persist_until(const struct config *cfg, const char *cmd, long warn_days, int64_t *until);

/* The ACME directory URL is set and https (or allowed plain http on loopback); else logs why. */
bool config_directory_ok(const struct config *cfg, const char *cmd);

#endif
