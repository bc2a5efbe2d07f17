/* test_progress.c - a run's recent rate, its time left and the live line. */
#include "check.h"
#include "progress.h"

static void
test_unknown(void)
{
	struct progress p = { 0 };
	char buf[128];

	CHECK(progress_rate(&p) < 0);
	progress_sample(&p, 1000, 0);
	CHECK(progress_rate(&p) < 0);
	progress_sample(&p, 1500, 5); /* less than a second: not yet a rate */
	CHECK(progress_rate(&p) < 0);
	progress_line(buf, sizeof(buf), 10, 3, 1, 6, &p, -1);
	CHECK_STR(buf, "10 claimed, 3 issued, 1 failed, 6 in flight, ?/s, ? left");
	progress_eta(buf, sizeof(buf), 0, 10);
	CHECK_STR(buf, "?");
	progress_eta(buf, sizeof(buf), -1, 10);
	CHECK_STR(buf, "?");
	progress_eta(buf, sizeof(buf), -1, 0);
	CHECK_STR(buf, "0s");
}

static void
test_rate_window(void)
{
	struct progress p = { 0 };
	char buf[128];

	progress_sample(&p, 0, 0);
	progress_sample(&p, 2000, 20);
	CHECK(progress_rate(&p) > 9.99 && progress_rate(&p) < 10.01);
	/* a fast start forgotten: the window keeps the last PROGRESS_SAMPLES samples only */
	for (int i = 2; i < 2 + PROGRESS_SAMPLES; i++)
		progress_sample(&p, i * 1000, 20 + (i - 1) * 2);
	CHECK(progress_rate(&p) > 1.99 && progress_rate(&p) < 2.01);
	progress_line(buf, sizeof(buf), 100, 60, 2, 8, &p, 112);
	CHECK_STR(buf, "100 claimed, 60 issued, 2 failed, 8 in flight, 2.0/s, 1m00s left");
	CHECK(strlen(buf) < 80);
}

static void
test_eta(void)
{
	char buf[16];

	progress_eta(buf, sizeof(buf), 2, 9);
	CHECK_STR(buf, "5s");
	progress_eta(buf, sizeof(buf), 1, 185);
	CHECK_STR(buf, "3m05s");
	progress_eta(buf, sizeof(buf), 1, 3720);
	CHECK_STR(buf, "1h02m");
	progress_eta(buf, sizeof(buf), 0.001, 100000000);
	CHECK_STR(buf, ">99h");
}

int
main(void)
{
	RUN(test_unknown);
	RUN(test_rate_window);
	RUN(test_eta);
	return CHECK_DONE();
}
