/* test_renew.c - unit tests of orchestrator/renew.c's decisions: the lifetime rule, the renewal time drawn in a window, who is due and why. */
#include "check.h"
#include "renew.h"

#define DAY 86400

static void
test_lifetime_due(void)
{
	/* 90 days: two thirds, at day 60; 6 days: half, at day 3; 10 days exactly: two thirds */
	CHECK(renew_lifetime_due(1000, 1000 + 90 * DAY) == 1000 + 60 * DAY);
	CHECK(renew_lifetime_due(1000, 1000 + 6 * DAY) == 1000 + 3 * DAY);
	CHECK(renew_lifetime_due(0, 10 * DAY) == 10 * DAY * 2 / 3);
	CHECK(renew_lifetime_due(0, 10 * DAY - 1) == (10 * DAY - 1) / 2);
}

static void
test_pick_time(void)
{
	int64_t lo = 1000000, hi = lo + 3600, min = hi, max = lo;
	bool all_inside = true;

	for (int i = 0; i < 2000; i++) {
		int64_t t = renew_pick_time(lo, hi, false, 0);
		all_inside = all_inside && t >= lo && t <= hi;
		min = t < min ? t : min;
		max = t > max ? t : max;
	}
	CHECK(all_inside);
	/* uniform: 2000 draws come near both ends of the hour */
	CHECK(min < lo + 60 && max > hi - 60);
	/* the same window keeps the time drawn before; a new one, or a time outside it, draws again */
	CHECK(renew_pick_time(lo, hi, true, lo + 5) == lo + 5);
	CHECK(renew_pick_time(lo, hi, true, hi + 5) != hi + 5);
	CHECK(renew_pick_time(lo, lo, false, 0) == lo);
}

static struct renew_cert
cert(int64_t nb, int64_t na)
{
	struct renew_cert c;
	memset(&c, 0, sizeof(c));
	c.not_before = nb;
	c.not_after = na;
	return c;
}

static void
test_decide(void)
{
	const int64_t now = 100 * DAY;
	struct renew_cert certs[7];
	struct renew_set s = { .certs = certs, .n = 7 };

	certs[0] = cert(now - 10 * DAY, now + 80 * DAY);           /* not due */
	certs[1] = cert(now - 61 * DAY, now + 29 * DAY);           /* lifetime: past two thirds */
	certs[2] = cert(now - 61 * DAY, now + 29 * DAY);           /* a window (not yet) beats the lifetime */
	certs[2].has_window = true;
	certs[2].renew_at = now + DAY;
	certs[3] = cert(now - 10 * DAY, now + 80 * DAY);           /* the window's time has come */
	certs[3].has_window = true;
	certs[3].renew_at = now;
	certs[4] = cert(now - 10 * DAY, now + 80 * DAY);           /* revoked beats the rest */
	certs[4].has_window = true;
	certs[4].renew_at = now - 1;
	certs[4].revoked_at = now - 5;
	certs[4].forced = true;
	certs[5] = cert(now - 10 * DAY, now + 80 * DAY);           /* forced, due for nothing else */
	certs[5].forced = true;
	certs[6] = cert(now - 4 * DAY, now + 2 * DAY);             /* 6 days, past half */
	renew_decide(&s, now);
	CHECK(certs[0].reason == RENEW_NOT_DUE);
	CHECK(certs[1].reason == RENEW_LIFETIME && certs[1].due_at == now - DAY);
	CHECK(certs[2].reason == RENEW_NOT_DUE);
	CHECK(certs[3].reason == RENEW_ARI && certs[3].due_at == now);
	CHECK(certs[4].reason == RENEW_REVOKED && certs[4].due_at == now - 5);
	CHECK(certs[5].reason == RENEW_FORCED);
	CHECK(certs[6].reason == RENEW_LIFETIME && certs[6].due_at == now - DAY);
	CHECK(s.due[RENEW_NOT_DUE] == 2 && s.due[RENEW_LIFETIME] == 2 && s.due[RENEW_ARI] == 1 &&
	    s.due[RENEW_REVOKED] == 1 && s.due[RENEW_FORCED] == 1);
	CHECK_STR(renew_reason_name(RENEW_LIFETIME), "lifetime");
	CHECK_STR(renew_reason_name(RENEW_NOT_DUE), "");
}

static void
test_force(void)
{
	struct renew_cert certs[3];
	struct renew_set s = { .certs = certs, .n = 3 };
	char *names[] = { "b.example", "nowhere.example" };
	bool matched[2];

	memset(certs, 0, sizeof(certs));
	certs[0].names = "a.example b.example";
	certs[1].names = "xb.example";     /* holds "b.example" only as a suffix */
	certs[2].names = "b.example.org";
	renew_force(&s, names, 2, false, matched);
	CHECK(certs[0].forced && !certs[1].forced && !certs[2].forced);
	CHECK(matched[0] && !matched[1]);
	renew_force(&s, NULL, 0, true, NULL);
	CHECK(certs[0].forced && certs[1].forced && certs[2].forced);
}

int
main(void)
{
	RUN(test_lifetime_due);
	RUN(test_pick_time);
	RUN(test_decide);
	RUN(test_force);
	return CHECK_DONE();
}
