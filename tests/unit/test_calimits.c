/*
 * test_calimits.c - unit tests of orchestrator/calimits.c: the CA rate limit specifications,
 * Let's Encrypt's defaults for its directories, none for other CAs, and clear errors.
 */
#include <stdio.h>
#include <string.h>

#include "calimits.h"
#include "check.h"

static struct limiter *shared_made;

static struct limiter *
make_shared(void *arg, const char *key, double rate, double burst, cf_err *err)
{
	(void)arg;
	shared_made = limiter_local_new(key, rate, burst, err);
	return shared_made;
}

static void
test_defaults(void)
{
	struct acme_limits l;
	cf_err err;

	CHECK(calimits_setup(&l, NULL, "https://acme-v02.api.letsencrypt.org/directory", "account-1", make_shared,
	    NULL, &err) == 0);
	CHECK(l.new_nonce && l.new_nonce->rate_per_s == 20 && l.new_nonce->burst == 10);
	CHECK(l.new_order && l.new_order->rate_per_s == 300 && l.new_order->burst == 200);
	CHECK(l.other && l.other->rate_per_s == 250 && l.other->burst == 125);
	/* 300 new orders per 3 hours, shared by the processes (made by make_shared) */
	CHECK(l.account_orders && l.account_orders == shared_made && l.account_orders->burst == 300);
	CHECK(l.account_orders && l.account_orders->rate_per_s > 0.0277 && l.account_orders->rate_per_s < 0.0278);
	CHECK(l.account_orders && strstr(l.account_orders->name, "account-1") != NULL);
	calimits_clear(&l);

	CHECK(calimits_setup(&l, NULL, "https://acme-staging-v02.api.letsencrypt.org/directory", "a", NULL, NULL,
	    &err) == 0);
	CHECK(l.new_order != NULL);
	calimits_clear(&l);

	/* another CA: no limit unless asked */
	CHECK(calimits_setup(&l, NULL, "https://localhost:14000/dir", "a", NULL, NULL, &err) == 0);
	CHECK(!l.new_nonce && !l.new_order && !l.other && !l.account_orders);
	calimits_clear(&l);
	/* and "off" for Let's Encrypt too */
	CHECK(calimits_setup(&l, "off", "https://acme-v02.api.letsencrypt.org/directory", "a", NULL, NULL, &err) == 0);
	CHECK(!l.new_nonce && !l.new_order && !l.other && !l.account_orders);
	calimits_clear(&l);
}

static void
test_specs(void)
{
	struct acme_limits l;
	char text[256];
	cf_err err;

	CHECK(calimits_setup(&l, "new-order=5/s:5,other=100/s", "https://ca/dir", "a", NULL, NULL, &err) == 0);
	CHECK(l.new_order && l.new_order->rate_per_s == 5 && l.new_order->burst == 5);
	CHECK(l.other && l.other->rate_per_s == 100);
	CHECK(!l.new_nonce && !l.account_orders);
	calimits_describe(&l, text, sizeof(text));
	CHECK(check_says(text, "new-order 5/s burst 5"));
	calimits_clear(&l);

	CHECK(calimits_setup(&l, "letsencrypt", "https://ca/dir", "a", NULL, NULL, &err) == 0);
	CHECK(l.new_order != NULL);
	calimits_clear(&l);

	CHECK(calimits_setup(&l, "new-orders=5/s", "https://ca/dir", "a", NULL, NULL, &err) == -1);
	CHECK(check_says(err.msg, "\"new-orders\" is not NAME=RATE"));
	CHECK(calimits_setup(&l, "new-order=fast", "https://ca/dir", "a", NULL, NULL, &err) == -1);
	CHECK(check_says(err.msg, "fast"));
	CHECK(!l.new_nonce && !l.new_order && !l.other && !l.account_orders);
	CHECK(calimits_setup(&l, "other", "https://ca/dir", "a", NULL, NULL, &err) == -1);
	calimits_describe(&l, text, sizeof(text));
	CHECK(strcmp(text, "none") == 0);
}

int
main(void)
{
	RUN(test_defaults);
	RUN(test_specs);
	return CHECK_DONE();
}
