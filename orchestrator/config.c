/* config.c - defaults, CERTFLEET_* environment variables and the flags every command shares. */
#include "config.h"

#include <libpq-fe.h>

#include <stdbool.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "http.h"
#include "log.h"
#include "persist.h"

static const char *
env(const char *name)
{
	const char *v = getenv(name);

	return v && v[0] ? v : NULL;
}

void
config_defaults(struct config *cfg)
{
	const char *lvl = env("CERTFLEET_LOG");

	memset(cfg, 0, sizeof(*cfg));
	cfg->db_url = env("CERTFLEET_DB");
	cfg->directory_url = env("CERTFLEET_DIRECTORY");
	cfg->ca_bundle = env("CERTFLEET_CA_BUNDLE");
	cfg->challtestsrv_url = env("CERTFLEET_CHALLTESTSRV_URL");
	cfg->challtestsrv_dns = env("CERTFLEET_CHALLTESTSRV_DNS");
	cfg->providers_path = env("CERTFLEET_PROVIDERS");
	cfg->provider = env("CERTFLEET_PROVIDER") ? env("CERTFLEET_PROVIDER") : "challtestsrv";
	cfg->allow_http_loopback = env("CERTFLEET_ALLOW_HTTP_LOOPBACK") &&
	    strcmp(env("CERTFLEET_ALLOW_HTTP_LOOPBACK"), "1") == 0;
	cfg->db_allow_plaintext = env("CERTFLEET_DB_ALLOW_PLAINTEXT") &&
	    strcmp(env("CERTFLEET_DB_ALLOW_PLAINTEXT"), "1") == 0;
	cfg->persist_until = env("CERTFLEET_PERSIST_UNTIL");
	cfg->verbosity = CF_LOG_INFO;
	if (lvl) {
		static const char *const names[] = { "error", "warn", "info", "debug" };
		for (int i = 0; i < 4; i++)
			if (strcmp(lvl, names[i]) == 0)
				cfg->verbosity = i;
	}
	cf_log_set_level((enum cf_log_level)cfg->verbosity);
	if (env("CERTFLEET_LOG_FORMAT")) {
		enum cf_log_format fmt;
		cfg->log_format_bad = cf_log_parse_format(env("CERTFLEET_LOG_FORMAT"), &fmt) != 0;
		if (!cfg->log_format_bad)
			cf_log_set_format(fmt);
	}
}

/* True when a libpq connection string carries a password. */
static bool
conninfo_has_password(const char *conninfo)
{
	PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
	bool has = false;

	for (PQconninfoOption *o = opts; o && o->keyword; o++)
		if (strcmp(o->keyword, "password") == 0 && o->val && o->val[0])
			has = true;
	PQconninfoFree(opts);
	return has;
}

int
config_common_option(struct config *cfg, int opt, const char *arg)
{
	switch (opt) {
	case 1000:
		if (conninfo_has_password(arg)) {
			log_error("--db: the connection string holds a password, which other users can read on "
			    "the command line: put it in CERTFLEET_DB, PGPASSWORD or ~/.pgpass instead");
			return 0;
		}
		cfg->db_url = arg;
		return 1;
	case 1001:
		cfg->directory_url = arg;
		return 1;
	case 1002:
		cfg->ca_bundle = arg;
		return 1;
	case 1003:
		cfg->allow_http_loopback = true;
		return 1;
	case 1004: {
		enum cf_log_format fmt;
		if (cf_log_parse_format(arg, &fmt) != 0) {
			log_error("--log-format: \"%s\" is neither text nor json", arg);
			return 0;
		}
		cf_log_set_format(fmt);
		return 1;
	}
	case 'v':
		if (cfg->verbosity < CF_LOG_DEBUG)
			cfg->verbosity++;
		cf_log_set_level((enum cf_log_level)cfg->verbosity);
		return 1;
	case 'q':
		cfg->verbosity = CF_LOG_ERROR;
		cf_log_set_level(CF_LOG_ERROR);
		return 1;
	default:
		return 0;
	}
}

bool
config_directory_ok(const struct config *cfg, const char *cmd)
{
	cf_err err;

	if (cfg->directory_url == NULL) {
		log_error("%s: no ACME directory: set CERTFLEET_DIRECTORY or pass --directory", cmd);
		return false;
	}
	if (http_url_check(cfg->directory_url, cfg->allow_http_loopback, "ACME directory", &err) != 0) {
		log_error("%s: %s", cmd, err.msg);
		return false;
	}
	return true;
}

int
config_persist_until(const struct config *cfg, const char *cmd, long warn_days, int64_t *until)
{
	cf_err err;
	int64_t now = cf_wall_ms() / 1000;
	char when[32];
	time_t t;
	struct tm tm;

	*until = 0;
	if (cfg->persist_until == NULL)
		return EXIT_OK;
	if (persist_until_parse("CERTFLEET_PERSIST_UNTIL", cfg->persist_until, until, &err) != 0) {
		log_error("%s: %s", cmd, err.msg);
		return EXIT_USAGE;
	}
	t = (time_t)*until;
	if (gmtime_r(&t, &tm) == NULL || strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(when, sizeof(when), "%lld", (long long)*until);
	switch (persist_until_lapse(*until, now, (int64_t)warn_days * 86400)) {
	case PERSIST_LAPSED:
		log_error("%s: CERTFLEET_PERSIST_UNTIL %s (%s) has passed: a CA must not use a record with that "
		    "persistUntil; set a later time (and publish the records again) or unset it", cmd,
		    cfg->persist_until, when);
		return EXIT_USAGE;
	case PERSIST_LAPSING:
		log_warn("%s: CERTFLEET_PERSIST_UNTIL %s (%s) lapses in %lld day(s): set a later time and publish "
		    "the records again before then", cmd, cfg->persist_until, when,
		    (long long)((*until - now + 86399) / 86400));
		break;
	case PERSIST_LASTS:
		break;
	}
	return EXIT_OK;
}
