/*
 * dbtls.c - the rule for the database connection: a server reached over the network must be
 * verified (sslmode=verify-full), since the connection carries the account and certificate keys.
 */
#include "dbtls.h"

#include <arpa/inet.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* True when one entry of a host or hostaddr list is a socket path or a loopback host. */
static bool
dbtls_local(const char *h, size_t n)
{
	char buf[256];
	struct in_addr a4;
	struct in6_addr a6;

	if (n == 0 || h[0] == '/' || h[0] == '@')
		return true;        /* the default socket, a socket directory, an abstract socket */
	if (n >= sizeof(buf))
		return false;
	memcpy(buf, h, n);
	buf[n] = '\0';
	if (strcasecmp(buf, "localhost") == 0)
		return true;
	if (inet_pton(AF_INET, buf, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, buf, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6);
	return false;
}

/* The value of keyword in opts, or the environment variable, or NULL; "" counts as unset. */
static const char *
dbtls_value(const PQconninfoOption *opts, const char *keyword, const char *envvar)
{
	const char *v = NULL;

	for (const PQconninfoOption *o = opts; o && o->keyword; o++)
		if (strcmp(o->keyword, keyword) == 0)
			v = o->val;
	if (v == NULL || v[0] == '\0')
		v = getenv(envvar);
	return v && v[0] ? v : NULL;
}

/* The i-th entry of a comma-separated list (start and length), or an empty one past its end. */
static void
dbtls_entry(const char *list, size_t i, const char **start, size_t *len)
{
	const char *p = list ? list : "";

	for (; i > 0 && p; i--) {
		p = strchr(p, ',');
		if (p)
			p++;
	}
	*start = p ? p : "";
	*len = p ? strcspn(p, ",") : 0;
}

static size_t
dbtls_count(const char *list)
{
	size_t n = 1;

	for (const char *p = list ? list : ""; *p; p++)
		n += *p == ',';
	return n;
}

int
dbtls_check(const char *conninfo, bool allow_plaintext, cf_err *err)
{
	char *perr = NULL;
	PQconninfoOption *opts;
	const char *host, *hostaddr, *sslmode;
	size_t n, i;
	int rc = -1;

	if (allow_plaintext)
		return 0;
	if ((opts = PQconninfoParse(conninfo, &perr)) == NULL) {
		/* libpq's message quotes no value of the string */
		cf_errf(err, "CERTFLEET_DB: %s", perr ? strtok(perr, "\n") : "out of memory");
		PQfreemem(perr);
		return -1;
	}
	host = dbtls_value(opts, "host", "PGHOST");
	hostaddr = dbtls_value(opts, "hostaddr", "PGHOSTADDR");
	sslmode = dbtls_value(opts, "sslmode", "PGSSLMODE");
	n = dbtls_count(host);
	if (dbtls_count(hostaddr) > n)
		n = dbtls_count(hostaddr);
	for (i = 0; i < n; i++) {
		const char *h, *a;
		size_t hn, an;
		dbtls_entry(host, i, &h, &hn);
		dbtls_entry(hostaddr, i, &a, &an);
		/* libpq connects to hostaddr when given (host then only names the server for TLS) */
		if (an > 0 ? dbtls_local(a, an) : dbtls_local(h, hn))
			continue;
		if (sslmode != NULL && strcmp(sslmode, "verify-full") == 0)
			break;
		cf_errf(err, "the database server %.*s is not on a loopback address or a Unix socket, and "
		    "sslmode is %s: set sslmode=verify-full in CERTFLEET_DB (with sslrootcert=FILE unless "
		    "~/.postgresql/root.crt holds its CA), or CERTFLEET_DB_ALLOW_PLAINTEXT=1 to connect "
		    "without verifying it", (int)(an > 0 ? an : hn), an > 0 ? a : h,
		    sslmode ? sslmode : "not set (prefer)");
		goto out;
	}
	rc = 0;
out:
	PQconninfoFree(opts);
	return rc;
}
