/* config.c - defaults, CERTFLEET_* environment variables and the flags every command shares. */
#include "config.h"

#include <libpq-fe.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "log.h"

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
	cfg->verbosity = CF_LOG_INFO;
	if (lvl) {
		static const char *const names[] = { "error", "warn", "info", "debug" };
		for (int i = 0; i < 4; i++)
			if (strcmp(lvl, names[i]) == 0)
				cfg->verbosity = i;
	}
	cf_log_set_level((enum cf_log_level)cfg->verbosity);
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
