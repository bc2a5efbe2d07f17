/*
 * provider.h - the DNS provider function table: publish dns-persist-01 TXT records through a
 * provider's API from a worker's event loop. One file per provider implements it.
 */
#ifndef CF_PROVIDER_H
#define CF_PROVIDER_H

#include <stdbool.h>

#include "cf.h"
#include "http.h"
#include "loop.h"

/* Settings every provider may read; filled from configuration (never from the command line). */
struct provider_config {
	const char *challtestsrv_url; /* pebble-challtestsrv management API, e.g. http://127.0.0.1:8055 */
	struct http_settings http;
};

/* Called exactly once per ensure, on the loop thread; error is NULL on success. */
typedef void (*provider_done_fn)(void *arg, const char *error);

struct provider_ops {
	const char *name;
	/* Checks the configuration; returns -1 with err naming what is missing. */
	int (*check)(const struct provider_config *cfg, cf_err *err);
	/*
	 * Publishes the TXT value at fqdn (no trailing dot) without removing other values there.
	 * Asynchronous: returns 0 when started (done follows), -1 with err when it could not start.
	 */
	int (*ensure)(const struct provider_config *cfg, struct loop *loop, const char *fqdn,
	    const char *value, provider_done_fn done, void *arg, cf_err *err);
};

/* The provider called name, or NULL. */
const struct provider_ops *provider_find(const char *name);

/* Comma-separated names of all providers, for help texts. */
const char *provider_names(void);

extern const struct provider_ops provider_challtestsrv;

#endif
