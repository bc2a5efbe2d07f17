/* progress.c - a run's recent rate, its time left and the live line a terminal shows. */
#include "progress.h"

#include <stdio.h>

void
progress_sample(struct progress *p, int64_t now_ms, long ended)
{
	p->t[p->next] = now_ms;
	p->ended[p->next] = ended;
	p->next = (p->next + 1) % PROGRESS_SAMPLES;
	if (p->n < PROGRESS_SAMPLES)
		p->n++;
}

double
progress_rate(const struct progress *p)
{
	size_t newest, oldest;
	int64_t span;

	if (p->n < 2)
		return -1;
	newest = (p->next + PROGRESS_SAMPLES - 1) % PROGRESS_SAMPLES;
	oldest = p->n < PROGRESS_SAMPLES ? 0 : p->next;
	span = p->t[newest] - p->t[oldest];
	if (span < 1000)
		return -1;
	return (double)(p->ended[newest] - p->ended[oldest]) * 1000.0 / (double)span;
}

void
progress_eta(char *buf, size_t len, double rate, long left)
{
	double s;

	if (left <= 0) {
		snprintf(buf, len, "0s");
		return;
	}
	if (rate <= 0) {
		snprintf(buf, len, "?");
		return;
	}
	s = left / rate + 0.5;
	if (s >= 100 * 3600.0)
		snprintf(buf, len, ">99h");
	else if (s >= 3600)
		snprintf(buf, len, "%ldh%02ldm", (long)s / 3600, (long)s % 3600 / 60);
	else if (s >= 60)
		snprintf(buf, len, "%ldm%02lds", (long)s / 60, (long)s % 60);
	else
		snprintf(buf, len, "%lds", (long)s);
}

void
progress_line(char *buf, size_t len, long claimed, long issued, long failed, long inflight,
    const struct progress *p, long queued)
{
	double rate = progress_rate(p);
	char r[32], eta[16];

	if (rate < 0)
		snprintf(r, sizeof(r), "?/s");
	else
		snprintf(r, sizeof(r), "%.1f/s", rate);
	if (queued < 0)
		snprintf(eta, sizeof(eta), "?");
	else
		progress_eta(eta, sizeof(eta), rate, queued + inflight);
	snprintf(buf, len, "%ld claimed, %ld issued, %ld failed, %ld in flight, %s, %s left", claimed, issued,
	    failed, inflight, r, eta);
}
