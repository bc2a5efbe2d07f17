/*
 * test_http.c - which URLs http_url_check lets through: https always, plain http only to a
 * loopback host when allowed; and the Link headers a response's header lines leave in the request.
 */
#include <string.h>

#include "check.h"
#include "http.h"

static void
test_not_http(void)
{
	cf_err err;

	CHECK(http_url_check("ftp://ca.example/dir", true, "ACME directory", &err) == -1);
	CHECK(strstr(err.msg, "ftp://ca.example/dir") != NULL);
	CHECK(http_url_check("ca.example/dir", true, "ACME directory", &err) == -1);
	CHECK(http_url_check("", true, "ACME directory", &err) == -1);
}

static void
test_https(void)
{
	cf_err err;

	CHECK(http_url_check("https://acme-v02.api.letsencrypt.org/directory", false, "x", &err) == 0);
	CHECK(http_url_check("HTTPS://ca.example/dir", false, "x", &err) == 0);
	CHECK(http_url_check("https://127.0.0.1:14000/dir", false, "x", &err) == 0);
}

static void
test_http_refused(void)
{
	cf_err err;

	/* not loopback: refused with or without the option, naming what and the URL */
	CHECK(http_url_check("http://ca.example/dir", false, "ACME directory", &err) == -1);
	CHECK(strstr(err.msg, "ACME directory http://ca.example/dir") != NULL);
	CHECK(http_url_check("http://ca.example/dir", true, "x", &err) == -1);
	CHECK(http_url_check("http://128.0.0.1/dir", true, "x", &err) == -1);
	CHECK(http_url_check("http://[::2]/dir", true, "x", &err) == -1);
	CHECK(http_url_check("http://localhost.example/dir", true, "x", &err) == -1);
	CHECK(http_url_check("http://127.0.0.1.example/dir", true, "x", &err) == -1);
	/* userinfo that looks like a loopback host does not make one */
	CHECK(http_url_check("http://127.0.0.1@ca.example/dir", true, "x", &err) == -1);
	/* loopback without the option: refused, and the message says how to allow it */
	CHECK(http_url_check("http://127.0.0.1:8055", false, "x", &err) == -1);
	CHECK(strstr(err.msg, "--allow-http-loopback") != NULL);
}

static void
test_http_loopback_allowed(void)
{
	cf_err err;

	CHECK(http_url_check("http://127.0.0.1:8055", true, "x", &err) == 0);
	CHECK(http_url_check("http://127.1.2.3/x", true, "x", &err) == 0);
	CHECK(http_url_check("http://[::1]:8081/api", true, "x", &err) == 0);
	CHECK(http_url_check("http://localhost:14000/dir", true, "x", &err) == 0);
	CHECK(http_url_check("http://LOCALHOST/dir", true, "x", &err) == 0);
	CHECK(http_url_loopback("https://[::1]/"));
	CHECK(!http_url_loopback("https://[::ffff:8.8.8.8]/"));
	CHECK(!http_url_loopback("not a url"));
}

static void
header(struct http_req *req, const char *line)
{
	http_req_parse_header(req, line, strlen(line));
}

/* rel="up" and every rel="alternate" (RFC 8555 7.4.2), in order; other relations ignored. */
static void
test_link_alternates(void)
{
	static const struct http_settings s = { .timeout_ms = 1000 };
	cf_err err;
	struct http_req *req = http_req_new(&s, "https://ca.example/cert/1", NULL, NULL, false, &err);

	CHECK(req != NULL);
	if (req == NULL)
		return;
	header(req, "HTTP/2 200\r\n");
	header(req, "Link: <https://ca.example/dir>;rel=\"index\"\r\n");
	header(req, "Link: <https://ca.example/cert/1/1>;rel=\"alternate\", <https://ca.example/up>; rel=\"up\"\r\n");
	header(req, "link: <https://ca.example/cert/1/2>; rel=alternate\r\n");
	header(req, "Link: <https://ca.example/x>;rel=\"alternates\"\r\n");
	header(req, "Link: <https://ca.example/cert/1/3>;rel=\"index alternate\"\r\n");
	CHECK(req->nlink_alternates == 3);
	if (req->nlink_alternates == 3) {
		CHECK(strcmp(req->link_alternates[0], "https://ca.example/cert/1/1") == 0);
		CHECK(strcmp(req->link_alternates[1], "https://ca.example/cert/1/2") == 0);
		CHECK(strcmp(req->link_alternates[2], "https://ca.example/cert/1/3") == 0);
	}
	CHECK(req->link_up != NULL && strcmp(req->link_up, "https://ca.example/up") == 0);
	for (int i = 0; i < HTTP_LINK_ALTERNATES_MAX + 3; i++)
		header(req, "Link: <https://ca.example/more>;rel=\"alternate\"\r\n");
	CHECK(req->nlink_alternates == HTTP_LINK_ALTERNATES_MAX);
	header(req, "HTTP/2 200\r\n"); /* a new response forgets the links */
	CHECK(req->nlink_alternates == 0 && req->link_alternates == NULL && req->link_up == NULL);
	http_req_free(req);
}

int
main(void)
{
	RUN(test_not_http);
	RUN(test_https);
	RUN(test_http_refused);
	RUN(test_http_loopback_allowed);
	RUN(test_link_alternates);
	return CHECK_DONE();
}
