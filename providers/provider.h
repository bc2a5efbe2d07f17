/*
 * provider.h - DNS providers: how certfleet publishes, checks and removes its TXT records through
 * the API of whoever serves a zone. One file per provider implements struct provider_ops; the
 * core (provider.c) spaces the API requests with each account's rate limit and runs blocking
 * work on a thread pool, so that a provider never blocks a worker's event loop. The accounts are
 * loaded by registry.h.
 *
 * Configuration: a JSON file named by CERTFLEET_PROVIDERS (it must not be readable by group or
 * others when it holds a secret), for example
 *
 *   { "providers": {
 *       "dns-prod": { "type": "rfc2136", "server": "192.0.2.53:53", "zones": ["example.com"],
 *                     "tsig_name": "certfleet", "tsig_algorithm": "hmac-sha256",
 *                     "tsig_secret_file": "/etc/certfleet/tsig.secret",
 *                     "rate": "20/s:40",
 *                     "verify": { "deadline": 600 } } } }
 *
 * Each key of "providers" is an account name that certificates refer to (enqueue --provider).
 * Settings every account understands (provider.c reads them): "type", "zones", "rate",
 * "limit_key", "batch", "verify", "timeout" (seconds one request to the API may take: the HTTP
 * timeout; types that do not speak HTTP read it themselves). Everything else belongs to the type.
 * Without a file, the accounts "challtestsrv" (CERTFLEET_CHALLTESTSRV_URL) and "manual" exist.
 */
#ifndef CF_PROVIDER_H
#define CF_PROVIDER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blockpool.h"
#include "cf.h"
#include "http.h"
#include "limiter.h"
#include "loop.h"

struct provider_ops;
struct dnsauth_config;

/* One configured provider account ("dns-prod" above). Immutable once loaded; shared by threads. */
struct provider_account {
	char *name;                     /* the account's name in the configuration */
	const struct provider_ops *ops;
	json_t *settings;               /* the account's JSON object (read it with provider_setting) */
	void *state;                    /* the provider's parsed settings, made by ops->open */
	char **zones;                   /* "zones", lower case, no trailing dot; may be empty */
	size_t nzones;
	size_t batch_max;               /* records per call: min("batch", ops->batch_max) */
	struct limiter *limit;          /* requests to this account's API; NULL = unlimited */
	struct http_settings http;      /* for HTTP APIs (CA bundle, timeouts, share) */
	struct blockpool *pool;         /* for provider_blocking */
	struct dnsauth_config *verify;  /* how records are confirmed (dnsauth.h); NULL = not checked */
	const char *source;             /* the providers file it came from, NULL when built in */
	bool source_private;            /* that file is not readable by group or others */
};

enum provider_action {
	PROVIDER_ENSURE,                /* publish these values; keep every other value at the name */
	PROVIDER_REMOVE,                /* remove these values (only these) */
};

struct provider_record {
	char *fqdn;                     /* lower case, no trailing dot: _validation-persist.example.com */
	char *value;                    /* the TXT value, without DNS quoting */
};

/*
 * One call: an action on records that all belong to one zone. The core makes it, the provider
 * works it and ends it exactly once with provider_call_done (on the loop thread).
 */
struct provider_call {
	struct provider_account *acct;
	struct loop *loop;
	enum provider_action action;
	const char *zone;               /* the zone of every record, lower case, no trailing dot */
	struct provider_record *recs;
	size_t nrec;
	void *pdata;                    /* the provider's own state for this call */

	/* outcome, set with provider_call_fail (first failure wins) */
	bool failed;
	bool retryable;                 /* a later try may succeed (5xx, timeout, 429, network) */
	int64_t retry_after_ms;         /* the provider's Retry-After, -1 when none */
	char error[512];                /* names the account, the zone or record and the cause */

	/* the core's */
	bool turn_held;                 /* the caller took a turn of acct->limit for the first request */
	void (*done)(struct provider_call *call);
	void *arg;
	struct limiter_wait wait;
	loop_fn work;
	void (*http_done)(struct provider_call *call, struct http_req *req);
	struct http_req *req;
	int http_tries;
};

struct provider_ops {
	const char *type;               /* "rfc2136" */
	const char *summary;            /* one line for --help */
	size_t batch_max;               /* most records one call may carry (1 when the API takes one) */
	bool zoneless;                  /* the API needs no zone: records are not grouped by zone and
	                                 * call->zone is "" unless the account configures zones */
	const char *default_rate;       /* the documented API limit, ratelimit_parse syntax; NULL = none */
	/*
	 * The settings this type reads, NULL-terminated (a secret "k" also admits "k_file" and
	 * "k_env"); the core rejects any other key but the common ones, naming it. NULL = no check.
	 */
	const char *const *settings;
	/*
	 * Parses acct->settings into acct->state, loads credentials (provider_secret); -1 with err
	 * naming the account and the setting. Optional.
	 */
	int (*open)(struct provider_account *acct, cf_err *err);
	void (*close)(struct provider_account *acct);
	/* Works call, on its loop thread; ends with provider_call_done, now or later. */
	void (*start)(struct provider_call *call);
};

/* ---- for provider implementations ---- */

/* The string setting key of acct, or NULL when absent or not a string. */
const char *provider_setting(const struct provider_account *acct, const char *key);

/*
 * A secret setting: "<key>" in the file itself, "<key>_file" (a file, which must not be readable
 * by group or others; its first line) or "<key>_env" (an environment variable's name). Returns
 * a malloc'd string, or NULL with err naming the account and key (never the secret). When none of
 * the three is given: NULL with err set if required, else NULL with err->msg empty.
 */
char *provider_secret(const struct provider_account *acct, const char *key, bool required, cf_err *err);

/*
 * Whether the URL of setting key may be used: https, or plain http to a loopback host when the
 * operator allowed it (acct->http.allow_http_loopback). -1 with err naming the account and URL.
 */
int provider_url_check(const struct provider_account *acct, const char *key, const char *url,
    cf_err *err) CF_MUST;

/* name in lower case, without a trailing dot, in a new string; NULL when out of memory. */
char *provider_zone_name(const char *name);

/* Records a failure of call (the first one wins); safe on any thread that owns the call. */
void provider_call_fail(struct provider_call *call, bool retryable, int64_t retry_after_ms,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Ends call (success unless provider_call_fail was called), on the loop thread. */
void provider_call_done(struct provider_call *call);

/*
 * Sends req when the account's rate limit allows, then calls done(call, req) on the loop thread;
 * done owns req. On 429 (or 503 with Retry-After) the limit is penalized and the request sent
 * again, up to 4 times, before done sees the answer.
 */
void provider_http(struct provider_call *call, struct http_req *req,
    void (*done)(struct provider_call *call, struct http_req *req));

/*
 * Runs work(call) on a pool thread when the account's rate limit allows (one turn per call),
 * then ends the call with provider_call_done on the loop thread. work reports failures with
 * provider_call_fail and must not touch the loop.
 */
void provider_blocking(struct provider_call *call, loop_fn work);

/* ---- for the core ---- */

/* The configured zone that holds fqdn (longest match), or NULL when no configured zone does. */
const char *provider_zone_of(const struct provider_account *acct, const char *fqdn);

/*
 * Starts call (filled: acct, loop, action, zone, recs, nrec, done, arg). done runs on the loop
 * thread, never inside this call.
 */
void provider_call_start(struct provider_call *call);

#endif
