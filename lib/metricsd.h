/*
 * metricsd.h - serves GET /metrics over HTTP on a thread of its own (libmicrohttpd), so that a
 * scrape never waits on, or holds up, an event loop.
 */
#ifndef CF_METRICSD_H
#define CF_METRICSD_H

#include <sys/socket.h>

#include "cf.h"

struct metricsd_addr {
	struct sockaddr_storage ss;
	socklen_t len;
};

/* Parses "ADDR:PORT" (numeric IPv4, or [IPv6]:PORT; port 1-65535); -1 with err naming spec. */
int metricsd_parse_addr(const char *spec, struct metricsd_addr *out, cf_err *err) CF_MUST;

/* Appends the exposition to out (on the server's thread); -1 answers 500. */
typedef int (*metricsd_render_fn)(void *arg, cf_buf *out);

struct metricsd;

/* Binds addr and starts serving; NULL with err naming the address when it cannot bind. */
struct metricsd *metricsd_start(const struct metricsd_addr *addr, const char *spec, metricsd_render_fn fn,
    void *arg, cf_err *err) CF_MUST;
/* Stops the server and waits for its thread. */
void metricsd_free(struct metricsd *d);

#endif
