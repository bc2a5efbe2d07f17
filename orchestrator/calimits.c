/* calimits.c - rate limits towards the CA from a specification, with Let's Encrypt's defaults. */
#include "calimits.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ratelimit.h"

/*
 * Let's Encrypt's published limits (letsencrypt.org rate limits, 2026-08): requests per second per
 * IP and endpoint, and 300 new orders per account per 3 hours (renewals exempt).
 */
static const char le_spec[] = "new-nonce=20/s:10,new-order=300/s:200,other=250/s:125,account-orders=300/3h:300";

static bool
is_letsencrypt(const char *url)
{
	static const char *const hosts[] = { "https://acme-v02.api.letsencrypt.org/",
		"https://acme-staging-v02.api.letsencrypt.org/" };

	for (size_t i = 0; url && i < sizeof(hosts) / sizeof(hosts[0]); i++)
		if (strncmp(url, hosts[i], strlen(hosts[i])) == 0)
			return true;
	return false;
}

void
calimits_clear(struct acme_limits *lims)
{
	limiter_free(lims->new_nonce);
	limiter_free(lims->new_order);
	limiter_free(lims->other);
	limiter_free(lims->account_orders);
	memset(lims, 0, sizeof(*lims));
}

int
calimits_setup(struct acme_limits *lims, const char *spec, const char *directory_url, const char *account_key,
    struct limiter *(*make_shared)(void *arg, const char *key, double rate, double burst, cf_err *err),
    void *shared_arg, cf_err *err)
{
	char *copy = NULL, *save = NULL;
	int rc = -1;

	memset(lims, 0, sizeof(*lims));
	if (spec == NULL)
		spec = is_letsencrypt(directory_url) ? "letsencrypt" : "off";
	if (strcmp(spec, "off") == 0)
		return 0;
	if (strcmp(spec, "letsencrypt") == 0)
		spec = le_spec;
	if ((copy = strdup(spec)) == NULL) {
		cf_errf(err, "CA limits: out of memory");
		return -1;
	}
	for (char *part = strtok_r(copy, ",", &save); part; part = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(part, '='), key[512];
		struct limiter **slot = NULL;
		double rate, burst;
		if (eq) {
			*eq = '\0';
			if (strcmp(part, "new-nonce") == 0)
				slot = &lims->new_nonce;
			else if (strcmp(part, "new-order") == 0)
				slot = &lims->new_order;
			else if (strcmp(part, "other") == 0)
				slot = &lims->other;
			else if (strcmp(part, "account-orders") == 0)
				slot = &lims->account_orders;
		}
		if (slot == NULL) {
			cf_errf(err, "CA limits \"%.100s\": \"%.40s\" is not NAME=RATE (names: new-nonce, new-order, "
			    "other, account-orders; or say off or letsencrypt)", spec, part);
			goto out;
		}
		if (ratelimit_parse(eq + 1, &rate, &burst, err) != 0)
			goto out;
		limiter_free(*slot);
		snprintf(key, sizeof(key), "acme:%s:%s", part, slot == &lims->account_orders ? account_key : "endpoint");
		*slot = slot == &lims->account_orders && make_shared ? make_shared(shared_arg, key, rate, burst, err)
		                                                     : limiter_local_new(key, rate, burst, err);
		if (*slot == NULL)
			goto out;
	}
	rc = 0;
out:
	if (rc != 0)
		calimits_clear(lims);
	free(copy);
	return rc;
}

void
calimits_describe(const struct acme_limits *lims, char *buf, size_t len)
{
	const struct limiter *l[] = { lims->new_nonce, lims->new_order, lims->other, lims->account_orders };
	const char *names[] = { "new-nonce", "new-order", "other", "account-orders" };
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < 4 && off < len; i++) {
		if (l[i] == NULL)
			continue;
		int n = snprintf(buf + off, len - off, "%s%s %g/s burst %g", off ? ", " : "", names[i], l[i]->rate_per_s,
		    l[i]->burst);
		if (n < 0)
			break;
		off += (size_t)n;
	}
	if (off == 0)
		snprintf(buf, len, "none");
}
