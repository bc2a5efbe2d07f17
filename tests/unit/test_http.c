/* test_http.c - which URLs http_url_check lets through: https always, plain http only to a loopback host when allowed. */
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

int
main(void)
{
	RUN(test_not_http);
	RUN(test_https);
	RUN(test_http_refused);
	RUN(test_http_loopback_allowed);
	return CHECK_DONE();
}
