/*
 * fleetcheck.c - a declared fleet's references, checked before anything is stored: each CA
 * (directory URL) once, each provider account once, each profile once per CA.
 */
#include "fleetcheck.h"

#include <stdlib.h>
#include <string.h>

#include "account.h"
#include "caoffer.h"
#include "http.h"
#include "log.h"
#include "registry.h"

static const char *
cert_ca(const struct config *cfg, const struct fleet_cert *c)
{
	return c->ca ? c->ca : cfg->directory_url;
}

/* The account of certificate i's CA into ids[i], loaded once per directory. EXIT_OK or the code. */
static int
check_ca(const struct config *cfg, PGconn *c, const struct fleet *f, size_t i, const char *source,
    const char *cmd, int64_t *ids)
{
	const char *url = cert_ca(cfg, &f->certs[i]);
	struct account a = { 0 };
	cf_err err;
	int found;

	if (url == NULL) {
		log_error("%s: %s: certificates[%zu]: no \"ca\" and no ACME directory (set CERTFLEET_DIRECTORY or "
		    "pass --directory)", cmd, source, f->certs[i].index);
		return EXIT_USAGE;
	}
	for (size_t k = 0; k < i; k++) {
		if (strcmp(cert_ca(cfg, &f->certs[k]), url) == 0) {
			ids[i] = ids[k];
			return EXIT_OK;
		}
	}
	if (http_url_check(url, cfg->allow_http_loopback, "ACME directory", &err) != 0) {
		log_error("%s: %s: certificates[%zu].ca: %s", cmd, source, f->certs[i].index, err.msg);
		return EXIT_USAGE;
	}
	if ((found = account_load(c, url, &a, &err)) < 0) {
		log_error("%s: %s", cmd, err.msg);
		return EXIT_FAILURE_RUNTIME;
	}
	if (found == 0) {
		log_error("%s: %s: certificates[%zu].ca: no account for %s: register one for that CA first "
		    "(certfleet account register --directory %s)", cmd, source, f->certs[i].index, url, url);
		return EXIT_USAGE;
	}
	ids[i] = a.id;
	account_clear(&a);
	return EXIT_OK;
}

/* Certificate i's profile, asked of its CA once per (CA, profile). EXIT_OK or the code. */
static int
check_profile(const struct config *cfg, const struct fleet *f, size_t i, const char *source, const char *cmd)
{
	const struct fleet_cert *fc = &f->certs[i];
	struct http_settings hs = { .ca_bundle = cfg->ca_bundle, .allow_http_loopback = cfg->allow_http_loopback };
	cf_err err;
	int r;

	if (fc->profile == NULL || fc->profile[0] == '\0')
		return EXIT_OK;
	for (size_t k = 0; k < i; k++)
		if (f->certs[k].profile && strcmp(f->certs[k].profile, fc->profile) == 0 &&
		    strcmp(cert_ca(cfg, &f->certs[k]), cert_ca(cfg, fc)) == 0)
			return EXIT_OK;
	if ((r = caoffer_check_profile(&hs, cert_ca(cfg, fc), fc->profile, &err)) != 0) {
		log_error("%s: %s: certificates[%zu].profile: %s", cmd, source, fc->index, err.msg);
		return r > 0 ? EXIT_USAGE : EXIT_FAILURE_RUNTIME;
	}
	return EXIT_OK;
}

int
fleet_check(const struct config *cfg, PGconn *c, const struct fleet *f, const char *source,
    const char *cmd, int64_t *account_ids)
{
	struct provider_env env = { 0 };
	struct provider_registry *reg;
	cf_err err;
	int rc = EXIT_USAGE;

	env.path = cfg->providers_path;
	env.challtestsrv_url = cfg->challtestsrv_url;
	env.challtestsrv_dns = cfg->challtestsrv_dns;
	env.names_only = true; /* the account's name, not its credentials */
	if ((reg = provider_registry_load(&env, &err)) == NULL) {
		log_error("%s: %s", cmd, err.msg);
		return EXIT_USAGE;
	}
	for (size_t i = 0; i < f->n; i++) {
		const char *p = f->certs[i].provider ? f->certs[i].provider : cfg->provider;
		if (provider_account_find(reg, p) == NULL) {
			log_error("%s: %s: certificates[%zu].provider: no DNS provider account \"%s\" (see certfleet "
			    "provider list)", cmd, source, f->certs[i].index, p);
			goto out;
		}
		if ((rc = check_ca(cfg, c, f, i, source, cmd, account_ids)) != EXIT_OK ||
		    (rc = check_profile(cfg, f, i, source, cmd)) != EXIT_OK)
			goto out;
	}
	rc = EXIT_OK;
out:
	provider_registry_free(reg);
	return rc;
}
