/*
 * calimits.h - the rate limits certfleet keeps towards the CA, so that a run never earns a 429 by
 * itself: requests per second per endpoint (new-nonce, new-order, the other /acme/ calls) in this
 * process, and new orders per ACME account across every process on the database (renewals are
 * exempt, as Let's Encrypt exempts them). Let's Encrypt's published limits are the defaults for
 * its directories; other CAs get none unless configured.
 */
#ifndef CF_CALIMITS_H
#define CF_CALIMITS_H

#include "acme.h"
#include "cf.h"

/*
 * Parses spec into lims: "off", "letsencrypt", or comma-separated NAME=RATE/PERIOD[:BURST] with
 * NAME one of new-nonce, new-order, other, account-orders (ratelimit_parse syntax), starting from
 * no limit. spec NULL means "letsencrypt" when directory_url is one of Let's Encrypt's, else "off".
 * account_key names the per-account bucket; make_shared makes it (NULL: a bucket of this process).
 * Returns 0, or -1 with err quoting the bad part. Free with calimits_clear.
 */
int calimits_setup(struct acme_limits *lims, const char *spec, const char *directory_url, const char *account_key,
    struct limiter *(*make_shared)(void *arg, const char *key, double rate, double burst, cf_err *err),
    void *shared_arg, cf_err *err) CF_MUST;
void calimits_clear(struct acme_limits *lims);

/* One line describing lims, for the log. */
void calimits_describe(const struct acme_limits *lims, char *buf, size_t len);

#endif
