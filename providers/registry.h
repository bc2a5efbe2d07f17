/*
 * registry.h - the configured DNS provider accounts: loaded from the providers file (see
 * provider.h for its format) or built in, each opened by its provider type.
 */
#ifndef CF_REGISTRY_H
#define CF_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>

#include "blockpool.h"
#include "cf.h"
#include "http.h"
#include "limiter.h"
#include "provider.h"

struct provider_registry;

struct provider_env {
	const char *path;               /* the JSON file, NULL = CERTFLEET_PROVIDERS or built-ins only */
	const char *challtestsrv_url;   /* the built-in challtestsrv account's URL, may be NULL */
	const char *challtestsrv_dns;   /* its DNS server "ip:port", where records are confirmed */
	struct http_settings http;
	struct blockpool *pool;
	bool names_only;                /* check the file and the common settings, but open no account:
	                                 * no credential is read and no limiter made (for enqueue) */
	/* makes the limiter of an account (NULL: a bucket of this process) */
	struct limiter *(*make_limiter)(void *arg, const char *key, double rate_per_s, double burst, cf_err *err);
	void *make_limiter_arg;
};

/* Loads the accounts; NULL with err naming the file, account and setting at fault. */
struct provider_registry *provider_registry_load(const struct provider_env *env, cf_err *err) CF_MUST;
void provider_registry_free(struct provider_registry *reg);

/* The account called name, or NULL. */
struct provider_account *provider_account_find(const struct provider_registry *reg, const char *name);

/* The accounts in load order, for listing. */
size_t provider_registry_count(const struct provider_registry *reg);
struct provider_account *provider_registry_at(const struct provider_registry *reg, size_t i);

/* The provider type called type, or NULL; and all types, comma-separated, for help texts. */
const struct provider_ops *provider_type_find(const char *type);
const char *provider_type_names(void);

extern const struct provider_ops provider_challtestsrv;
extern const struct provider_ops provider_manual;
extern const struct provider_ops provider_exec;
extern const struct provider_ops provider_rfc2136;
extern const struct provider_ops provider_powerdns;
extern const struct provider_ops provider_cloudflare;
extern const struct provider_ops provider_route53;

#endif
