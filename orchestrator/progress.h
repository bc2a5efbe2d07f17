/* progress.h - a run's progress figures: the recent rate of ended orders, the time left, and the live line. */
#ifndef CF_PROGRESS_H
#define CF_PROGRESS_H

#include <stddef.h>
#include <stdint.h>

#define PROGRESS_SAMPLES 21       /* at the live line's 500 ms: the last 10 s */

/* The last samples of (time, orders ended), oldest first once the ring is full. */
struct progress {
	int64_t t[PROGRESS_SAMPLES];  /* cf_mono_ms() of each sample */
	long ended[PROGRESS_SAMPLES]; /* orders ended (issued or failed) by then */
	size_t n;                     /* samples held */
	size_t next;                  /* where the next one goes */
};

/* Records that ended orders had ended at now_ms. */
void progress_sample(struct progress *p, int64_t now_ms, long ended);

/* Orders ended per second over the samples held; -1 while they span less than a second. */
double progress_rate(const struct progress *p);

/* The time left for left orders at rate ("1h02m", "3m05s", "12s"), "?" when rate is unknown or 0. */
void progress_eta(char *buf, size_t len, double rate, long left);

/*
 * The live line: claimed, issued, failed, in flight, rate and time left (queued < 0: the queue's
 * depth is not known yet). Short enough for an 80-column terminal.
 */
void progress_line(char *buf, size_t len, long claimed, long issued, long failed, long inflight,
    const struct progress *p, long queued);

#endif
