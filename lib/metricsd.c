/* metricsd.c - the /metrics HTTP endpoint on libmicrohttpd's own polling thread. */
#include "metricsd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct metricsd {
	struct MHD_Daemon *mhd;
	metricsd_render_fn fn;
	void *arg;
};

int
metricsd_parse_addr(const char *spec, struct metricsd_addr *out, cf_err *err)
{
	char host[64];
	const char *colon, *hs = spec, *he;
	char *end;
	long port;

	memset(out, 0, sizeof(*out));
	if (spec[0] == '[') {
		hs = spec + 1;
		he = strchr(hs, ']');
		colon = he && he[1] == ':' ? he + 1 : NULL;
	} else {
		colon = strrchr(spec, ':');
		he = colon;
	}
	if (colon == NULL || he == NULL || he == hs || (size_t)(he - hs) >= sizeof(host)) {
		cf_errf(err, "metrics address %s: expected ADDR:PORT (e.g. 127.0.0.1:9464 or [::1]:9464)", spec);
		return -1;
	}
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end != '\0' || errno != 0 || port < 1 || port > 65535) {
		cf_errf(err, "metrics address %s: port must be a number from 1 to 65535", spec);
		return -1;
	}
	memcpy(host, hs, (size_t)(he - hs));
	host[he - hs] = '\0';
	struct sockaddr_in *v4 = (struct sockaddr_in *)&out->ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&out->ss;
	if (spec[0] != '[' && inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons((uint16_t)port);
		out->len = sizeof(*v4);
	} else if (spec[0] == '[' && inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons((uint16_t)port);
		out->len = sizeof(*v6);
	} else {
		cf_errf(err, "metrics address %s: %s is not a numeric IPv4 address or a bracketed IPv6 one", spec, host);
		return -1;
	}
	return 0;
}

static enum MHD_Result
answer(void *cls, struct MHD_Connection *conn, const char *url, const char *method, const char *version,
    const char *upload, size_t *upload_len, void **req_cls)
{
	struct metricsd *d = cls;
	struct MHD_Response *resp;
	cf_buf body = { 0 };
	unsigned int code = MHD_HTTP_OK;
	enum MHD_Result rc;

	(void)version;
	(void)upload;
	(void)upload_len;
	(void)req_cls;
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		code = MHD_HTTP_METHOD_NOT_ALLOWED;
		if (cf_buf_printf(&body, "only GET\n") != 0)
			return MHD_NO;
	} else if (strcmp(url, "/metrics") != 0) {
		code = MHD_HTTP_NOT_FOUND;
		if (cf_buf_printf(&body, "not found: the metrics are at /metrics\n") != 0)
			return MHD_NO;
	} else if (d->fn(d->arg, &body) != 0) {
		cf_buf_reset(&body);
		code = MHD_HTTP_INTERNAL_SERVER_ERROR;
		if (cf_buf_printf(&body, "cannot render the metrics (see certfleet's log)\n") != 0)
			return MHD_NO;
	}
	resp = MHD_create_response_from_buffer(body.len, body.data ? body.data : (char *)"", MHD_RESPMEM_MUST_COPY);
	cf_buf_free(&body);
	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	rc = MHD_queue_response(conn, code, resp);
	MHD_destroy_response(resp);
	return rc;
}

struct metricsd *
metricsd_start(const struct metricsd_addr *addr, const char *spec, metricsd_render_fn fn, void *arg, cf_err *err)
{
	struct metricsd *d = calloc(1, sizeof(*d));
	int fd = -1, one = 1;

	if (d == NULL) {
		cf_errf(err, "metrics %s: out of memory", spec);
		return NULL;
	}
	d->fn = fn;
	d->arg = arg;
	/* bound here rather than by libmicrohttpd, so that a failure names its cause */
	fd = socket(addr->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, (const struct sockaddr *)&addr->ss, addr->len) != 0 || listen(fd, 64) != 0) {
		cf_errf(err, "metrics: cannot listen on %s: %s", spec, strerror(errno));
		goto fail;
	}
	d->mhd = MHD_start_daemon(MHD_USE_POLL_INTERNAL_THREAD | (addr->ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
	    0, NULL, NULL, answer, d, MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT, 16U,
	    MHD_OPTION_CONNECTION_TIMEOUT, 10U, MHD_OPTION_END);
	if (d->mhd == NULL) {
		cf_errf(err, "metrics: cannot start the HTTP server on %s", spec);
		goto fail;
	}
	return d;
fail:
	if (fd >= 0)
		close(fd);
	free(d);
	return NULL;
}

void
metricsd_free(struct metricsd *d)
{
	if (d == NULL)
		return;
	MHD_stop_daemon(d->mhd); /* closes the listening socket too */
	free(d);
}
