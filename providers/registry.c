/*
 * registry.c - the provider accounts: the table of provider types, the accounts loaded from the
 * providers file (or built in), their common settings and rate limits.
 */
#include "registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dnsauth.h"
#include "dnsname.h"
#include "ratelimit.h"

static const struct provider_ops *const types[] = {
	&provider_challtestsrv,
	&provider_manual,
	&provider_exec,
	&provider_rfc2136,
	&provider_powerdns,
	&provider_cloudflare,
	&provider_route53,
};
#define NTYPES (sizeof(types) / sizeof(types[0]))

struct limit_entry {
	char *key;
	struct limiter *lim;
	struct limit_entry *next;
};

struct provider_registry {
	struct provider_account **accts;
	size_t naccts;
	struct limit_entry *limits;
	char *path;
	bool file_private;              /* the file is not readable by group or others */
};

const struct provider_ops *
provider_type_find(const char *type)
{
	for (size_t i = 0; i < NTYPES; i++)
		if (strcmp(types[i]->type, type) == 0)
			return types[i];
	return NULL;
}

const char *
provider_type_names(void)
{
	return "challtestsrv, manual, exec, rfc2136, powerdns, cloudflare, route53";
}

/* ---- the registry ---- */

static struct limiter *
registry_limiter(struct provider_registry *reg, const struct provider_env *env, const char *key,
    double rate, double burst, cf_err *err)
{
	struct limit_entry *e;

	for (e = reg->limits; e; e = e->next) {
		if (strcmp(e->key, key) == 0) {
			if (e->lim->rate_per_s != rate || e->lim->burst != burst) {
				cf_errf(err, "providers: limit_key \"%s\" is used with two different rates", key);
				return NULL;
			}
			return e->lim;
		}
	}
	if ((e = calloc(1, sizeof(*e))) == NULL || (e->key = strdup(key)) == NULL) {
		free(e);
		cf_errf(err, "providers: out of memory");
		return NULL;
	}
	e->lim = env->make_limiter ? env->make_limiter(env->make_limiter_arg, key, rate, burst, err)
	                           : limiter_local_new(key, rate, burst, err);
	if (e->lim == NULL) {
		free(e->key);
		free(e);
		return NULL;
	}
	e->next = reg->limits;
	reg->limits = e;
	return e->lim;
}

static const char *const common_keys[] = { "type", "zones", "rate", "limit_key", "batch", "verify", "timeout",
	NULL };

static bool
key_in(const char *const *list, const char *k, bool secret_forms)
{
	for (size_t i = 0; list[i]; i++) {
		size_t n = strlen(list[i]);
		if (strcmp(list[i], k) == 0)
			return true;
		if (secret_forms && strncmp(list[i], k, n) == 0 &&
		    (strcmp(k + n, "_file") == 0 || strcmp(k + n, "_env") == 0))
			return true;
	}
	return false;
}

/* Every setting of a must be a common one or one its type reads. */
static int
check_keys(const struct provider_account *a, cf_err *err)
{
	const char *k;
	json_t *v;

	if (a->ops->settings == NULL)
		return 0;
	json_object_foreach(a->settings, k, v) {
		if (!key_in(common_keys, k, false) && !key_in(a->ops->settings, k, true)) {
			cf_errf(err, "provider %s: unknown setting \"%.64s\" for type %s", a->name, k, a->ops->type);
			return -1;
		}
	}
	return 0;
}

/* Reads the settings every account has, then lets the type open the account. */
static int
account_open(struct provider_registry *reg, const struct provider_env *env, struct provider_account *a,
    const struct dnsauth_config *verify_default, cf_err *err)
{
	json_t *zones = json_object_get(a->settings, "zones"), *batch = json_object_get(a->settings, "batch");
	json_t *rate = json_object_get(a->settings, "rate"), *v;
	const char *key = provider_setting(a, "limit_key"), *type = provider_setting(a, "type");
	char defkey[256], what[96];
	size_t i;
	double r, b;

	snprintf(what, sizeof(what), "provider %s", a->name);

	if (type == NULL || (a->ops = provider_type_find(type)) == NULL) {
		cf_errf(err, "provider %s: \"type\" must be one of %s", a->name, provider_type_names());
		return -1;
	}
	if (check_keys(a, err) != 0)
		return -1;
	if (zones && !json_is_array(zones)) {
		cf_errf(err, "provider %s: \"zones\" must be an array of zone names", a->name);
		return -1;
	}
	a->nzones = json_array_size(zones);
	if (a->nzones && (a->zones = calloc(a->nzones, sizeof(char *))) == NULL)
		goto oom;
	json_array_foreach(zones, i, v) {
		char norm[DNSNAME_MAX];
		if (!json_is_string(v) || dnsname_normalize(json_string_value(v), norm, NULL) != 0) {
			cf_errf(err, "provider %s: zones[%zu] is not a valid zone name", a->name, i);
			return -1;
		}
		if ((a->zones[i] = provider_zone_name(norm)) == NULL)
			goto oom;
	}
	a->batch_max = a->ops->batch_max ? a->ops->batch_max : 1;
	if (batch) {
		json_int_t n = json_integer_value(batch);
		if (!json_is_integer(batch) || n < 1) {
			cf_errf(err, "provider %s: \"batch\" must be a whole number of at least 1", a->name);
			return -1;
		}
		if ((size_t)n < a->batch_max)
			a->batch_max = (size_t)n;
	}
	if (rate && !json_is_string(rate)) {
		cf_errf(err, "provider %s: \"rate\" must be a string like \"10/s:50\" or \"off\"", a->name);
		return -1;
	}
	const char *spec = rate ? json_string_value(rate) : a->ops->default_rate;
	if (spec && strcmp(spec, "off") != 0) {
		cf_err perr;
		if (ratelimit_parse(spec, &r, &b, &perr) != 0) {
			cf_errf(err, "provider %s: \"rate\": %s", a->name, perr.msg);
			return -1;
		}
		snprintf(defkey, sizeof(defkey), "%s:%s", a->ops->type, a->name);
		if (!env->names_only && (a->limit = registry_limiter(reg, env, key ? key : defkey, r, b, err)) == NULL)
			return -1;
	}
	if ((a->verify = calloc(1, sizeof(*a->verify))) == NULL ||
	    dnsauth_config_copy(a->verify, verify_default) != 0)
		goto oom;
	if (dnsauth_config_parse(a->verify, json_object_get(a->settings, "verify"), what, err) != 0)
		return -1;
	a->http = env->http;
	a->pool = env->pool;
	if ((v = json_object_get(a->settings, "timeout")) != NULL) {
		double t = json_number_value(v);
		if (!json_is_number(v) || !(t > 0 && t <= 3600)) {
			cf_errf(err, "provider %s: \"timeout\" must be a number of seconds above 0 and at most 3600",
			    a->name);
			return -1;
		}
		a->http.timeout_ms = (long)(t * 1000);
		if (a->http.connect_timeout_ms <= 0 || a->http.connect_timeout_ms > a->http.timeout_ms)
			a->http.connect_timeout_ms = a->http.timeout_ms;
	}
	if (!env->names_only && a->ops->open && a->ops->open(a, err) != 0)
		return -1;
	return 0;
oom:
	cf_errf(err, "provider %s: out of memory", a->name);
	return -1;
}

static struct provider_account *
registry_add(struct provider_registry *reg, const char *name, json_t *settings, cf_err *err)
{
	struct provider_account *p = calloc(1, sizeof(*p));
	struct provider_account **grown = realloc(reg->accts, (reg->naccts + 1) * sizeof(*grown));

	if (grown)
		reg->accts = grown;
	if (p == NULL || grown == NULL || (p->name = strdup(name)) == NULL) {
		free(p);
		json_decref(settings);
		cf_errf(err, "providers: out of memory");
		return NULL;
	}
	p->source = reg->path;
	p->source_private = reg->file_private;
	p->settings = settings;
	reg->accts[reg->naccts++] = p;
	return p;
}

/* The accounts that exist without a file: challtestsrv (when its URL is known) and manual. */
static int
registry_builtins(struct provider_registry *reg, const struct provider_env *env,
    const struct dnsauth_config *verify_default, cf_err *err)
{
	struct provider_account *p;

	if (env->challtestsrv_url && provider_account_find(reg, "challtestsrv") == NULL) {
		/* challtestsrv answers without the AA flag: its answers count all the same */
		json_t *s = json_pack("{s:s, s:s, s:{s:b, s:b}}", "type", "challtestsrv", "url", env->challtestsrv_url,
		    "verify", "enabled", env->challtestsrv_dns != NULL, "require_aa", 0);
		if (s && env->challtestsrv_dns)
			json_object_set_new(json_object_get(s, "verify"), "servers", json_pack("[s]", env->challtestsrv_dns));
		if (s == NULL || (p = registry_add(reg, "challtestsrv", s, err)) == NULL ||
		    account_open(reg, env, p, verify_default, err) != 0)
			return -1;
	}
	if (provider_account_find(reg, "manual") == NULL) {
		json_t *s = json_pack("{s:s}", "type", "manual");
		if (s == NULL || (p = registry_add(reg, "manual", s, err)) == NULL ||
		    account_open(reg, env, p, verify_default, err) != 0)
			return -1;
	}
	return 0;
}

struct provider_registry *
provider_registry_load(const struct provider_env *env, cf_err *err)
{
	struct provider_registry *reg = calloc(1, sizeof(*reg));
	struct dnsauth_config verify_default;
	const char *path = env->path ? env->path : getenv("CERTFLEET_PROVIDERS");
	json_t *doc = NULL, *accts, *settings;
	json_error_t jerr;
	const char *name, *key;
	struct stat st;

	dnsauth_config_default(&verify_default);
	if (reg == NULL) {
		cf_errf(err, "providers: out of memory");
		return NULL;
	}
	if (path && path[0]) {
		if ((reg->path = strdup(path)) == NULL) {
			cf_errf(err, "providers: out of memory");
			goto fail;
		}
		if ((doc = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr)) == NULL) {
			cf_errf(err, "providers file %s: line %d: %s", path, jerr.line, jerr.text);
			goto fail;
		}
		reg->file_private = stat(path, &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO)) == 0;
		if (!json_is_object(doc)) {
			cf_errf(err, "providers file %s: the top level must be an object", path);
			goto fail;
		}
		json_object_foreach(doc, key, settings) {
			if (strcmp(key, "providers") != 0 && strcmp(key, "verify") != 0) {
				cf_errf(err, "providers file %s: unknown key \"%s\" (known: providers, verify)", path, key);
				goto fail;
			}
		}
		if (dnsauth_config_parse(&verify_default, json_object_get(doc, "verify"), path, err) != 0)
			goto fail;
		accts = json_object_get(doc, "providers");
		if (accts && !json_is_object(accts)) {
			cf_errf(err, "providers file %s: \"providers\" must be an object of accounts", path);
			goto fail;
		}
		json_object_foreach(accts, name, settings) {
			struct provider_account *p;
			if (!json_is_object(settings)) {
				cf_errf(err, "providers file %s: provider %s must be an object", path, name);
				goto fail;
			}
			if (name[0] == '\0' || strlen(name) > 64 || strspn(name, "abcdefghijklmnopqrstuvwxyz"
			    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") != strlen(name)) {
				cf_errf(err, "providers file %s: account name \"%.64s\" must be 1 to 64 letters, "
				    "digits, '-', '_' or '.'", path, name);
				goto fail;
			}
			if ((p = registry_add(reg, name, json_incref(settings), err)) == NULL ||
			    account_open(reg, env, p, &verify_default, err) != 0)
				goto fail;
		}
	}
	if (registry_builtins(reg, env, &verify_default, err) != 0)
		goto fail;
	dnsauth_config_clear(&verify_default);
	json_decref(doc);
	return reg;
fail:
	dnsauth_config_clear(&verify_default);
	json_decref(doc);
	provider_registry_free(reg);
	return NULL;
}

void
provider_registry_free(struct provider_registry *reg)
{
	if (reg == NULL)
		return;
	for (size_t i = 0; i < reg->naccts; i++) {
		struct provider_account *a = reg->accts[i];
		if (a->ops && a->ops->close && a->state)
			a->ops->close(a);
		for (size_t z = 0; z < a->nzones; z++)
			free(a->zones[z]);
		free(a->zones);
		if (a->verify)
			dnsauth_config_clear(a->verify);
		free(a->verify);
		json_decref(a->settings);
		free(a->name);
		free(a);
	}
	while (reg->limits) {
		struct limit_entry *e = reg->limits;
		reg->limits = e->next;
		limiter_free(e->lim);
		free(e->key);
		free(e);
	}
	free(reg->accts);
	free(reg->path);
	free(reg);
}

struct provider_account *
provider_account_find(const struct provider_registry *reg, const char *name)
{
	for (size_t i = 0; i < reg->naccts; i++)
		if (strcmp(reg->accts[i]->name, name) == 0)
			return reg->accts[i];
	return NULL;
}

size_t
provider_registry_count(const struct provider_registry *reg)
{
	return reg->naccts;
}

struct provider_account *
provider_registry_at(const struct provider_registry *reg, size_t i)
{
	return i < reg->naccts ? reg->accts[i] : NULL;
}
