/* dnsauth.c - confirming TXT records at a zone's authoritative servers (dnsauth.h), with ldns. */
#include "dnsauth.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ldns/ldns.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define DNSAUTH_MAX_ADDRS 32      /* server addresses asked per check; a zone rarely has more */
#define DNSAUTH_MAX_RESOLVERS 3   /* nameserver lines read from resolv.conf, as glibc does */
#define DNSAUTH_EDNS_SIZE 1232    /* UDP payload offered (the DNS flag day 2020 size) */
#define DNSAUTH_RESOLV_CONF "/etc/resolv.conf"

/* ---- configuration ---- */

void
dnsauth_config_default(struct dnsauth_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->enabled = true;
	cfg->ns_port = 53;
	cfg->deadline_ms = 600 * 1000;
	cfg->interval_ms = 500;
	cfg->max_interval_ms = 30 * 1000;
	cfg->timeout_ms = 2000;
	cfg->require_aa = true;
}

void
dnsauth_config_clear(struct dnsauth_config *cfg)
{
	if (cfg == NULL)
		return;
	for (size_t i = 0; i < cfg->nservers; i++)
		free(cfg->servers[i]);
	free(cfg->servers);
	free(cfg->resolver);
	cfg->servers = NULL;
	cfg->nservers = 0;
	cfg->resolver = NULL;
}

int
dnsauth_config_copy(struct dnsauth_config *dst, const struct dnsauth_config *src)
{
	struct dnsauth_config c = *src;
	int rc = -1;

	c.servers = NULL;
	c.nservers = 0;
	c.resolver = NULL;
	if (src->resolver && (c.resolver = strdup(src->resolver)) == NULL)
		goto out;
	if (src->nservers > 0) {
		if ((c.servers = calloc(src->nservers, sizeof(char *))) == NULL)
			goto out;
		for (; c.nservers < src->nservers; c.nservers++)
			if ((c.servers[c.nservers] = strdup(src->servers[c.nservers])) == NULL)
				goto out;
	}
	rc = 0;
out:
	if (rc != 0)
		dnsauth_config_clear(&c);
	*dst = c; /* on failure: src's numbers and no strings, safe to clear */
	return rc;
}

/* A JSON value in a message: at most 40 characters of its compact form. */
static void
json_brief(const json_t *v, char *out, size_t outlen)
{
	char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

	if (s == NULL) {
		snprintf(out, outlen, "?");
		return;
	}
	if (strlen(s) > 40)
		snprintf(out, outlen, "%.37s...", s);
	else
		snprintf(out, outlen, "%s", s);
	free(s);
}

/* Reads seconds (a JSON number) in (0, max_s] as milliseconds, at least 1. */
static int
parse_seconds(const json_t *v, const char *key, double max_s, const char *what, int64_t *ms, cf_err *err)
{
	char got[48];
	double s = json_number_value(v);

	if (!json_is_number(v) || !(s > 0) || s > max_s || s * 1000.0 < 1.0) {
		json_brief(v, got, sizeof(got));
		cf_errf(err, "%s: \"verify\": \"%s\" must be a number of seconds above 0 and at most %g (got %s)",
		    what, key, max_s, got);
		return -1;
	}
	*ms = (int64_t)(s * 1000.0 + 0.5);
	return 0;
}

/* Replaces cfg's servers with the array v (strings that dnsauth_addr_parse accepts). */
static int
parse_servers(struct dnsauth_config *cfg, const json_t *v, const char *what, cf_err *err)
{
	struct dnsauth_addr a;
	cf_err aerr;
	const json_t *s;
	char got[48];
	size_t i, n = json_array_size(v);
	char **list = NULL;
	int rc = -1;

	if (!json_is_array(v) || n > DNSAUTH_MAX_ADDRS) {
		json_brief(v, got, sizeof(got));
		cf_errf(err, "%s: \"verify\": \"servers\" must be an array of at most %d addresses like "
		    "\"192.0.2.53\", \"192.0.2.53:5353\" or \"[2001:db8::53]:53\" (got %s)", what, DNSAUTH_MAX_ADDRS, got);
		return -1;
	}
	if (n > 0 && (list = calloc(n, sizeof(char *))) == NULL) {
		cf_errf(err, "%s: \"verify\": out of memory", what);
		return -1;
	}
	json_array_foreach(v, i, s) {
		if (!json_is_string(s)) {
			json_brief(s, got, sizeof(got));
			cf_errf(err, "%s: \"verify\": \"servers\"[%zu] must be a string (got %s)", what, i, got);
			goto out;
		}
		if (dnsauth_addr_parse(json_string_value(s), 53, &a, &aerr) != 0) {
			cf_errf(err, "%s: \"verify\": \"servers\"[%zu]: %s", what, i, aerr.msg);
			goto out;
		}
		if ((list[i] = strdup(json_string_value(s))) == NULL) {
			cf_errf(err, "%s: \"verify\": out of memory", what);
			goto out;
		}
	}
	for (i = 0; i < cfg->nservers; i++)
		free(cfg->servers[i]);
	free(cfg->servers);
	cfg->servers = list;
	cfg->nservers = n;
	list = NULL;
	rc = 0;
out:
	if (list)
		for (i = 0; i < n; i++)
			free(list[i]);
	free(list);
	return rc;
}

static const char *const config_keys =
    "enabled, servers, resolver, ns_port, deadline, interval, max_interval, timeout";

/* Applies one key of a "verify" object to c. */
static int
parse_key(struct dnsauth_config *c, const char *key, const json_t *v, const char *what, cf_err *err)
{
	struct dnsauth_addr a;
	cf_err aerr;
	char got[48];

	if (strcmp(key, "enabled") == 0 || strcmp(key, "require_aa") == 0) {
		if (!json_is_boolean(v)) {
			json_brief(v, got, sizeof(got));
			cf_errf(err, "%s: \"verify\": \"%s\" must be true or false (got %s)", what, key, got);
			return -1;
		}
		if (key[0] == 'e')
			c->enabled = json_is_true(v);
		else
			c->require_aa = json_is_true(v);
		return 0;
	}
	if (strcmp(key, "servers") == 0)
		return parse_servers(c, v, what, err);
	if (strcmp(key, "resolver") == 0) {
		char *r = NULL;
		if (!json_is_null(v)) {
			if (!json_is_string(v)) {
				json_brief(v, got, sizeof(got));
				cf_errf(err, "%s: \"verify\": \"resolver\" must be an address like \"192.0.2.53\" or "
				    "\"[2001:db8::53]:53\", or null for the system's (got %s)", what, got);
				return -1;
			}
			if (dnsauth_addr_parse(json_string_value(v), 53, &a, &aerr) != 0) {
				cf_errf(err, "%s: \"verify\": \"resolver\": %s", what, aerr.msg);
				return -1;
			}
			if ((r = strdup(json_string_value(v))) == NULL) {
				cf_errf(err, "%s: \"verify\": out of memory", what);
				return -1;
			}
		}
		free(c->resolver);
		c->resolver = r;
		return 0;
	}
	if (strcmp(key, "ns_port") == 0) {
		json_int_t p = json_integer_value(v);
		if (!json_is_integer(v) || p < 1 || p > 65535) {
			json_brief(v, got, sizeof(got));
			cf_errf(err, "%s: \"verify\": \"ns_port\" must be a port number from 1 to 65535 (got %s)", what, got);
			return -1;
		}
		c->ns_port = (int)p;
		return 0;
	}
	if (strcmp(key, "deadline") == 0)
		return parse_seconds(v, key, 7 * 86400, what, &c->deadline_ms, err);
	if (strcmp(key, "interval") == 0)
		return parse_seconds(v, key, 3600, what, &c->interval_ms, err);
	if (strcmp(key, "max_interval") == 0)
		return parse_seconds(v, key, 3600, what, &c->max_interval_ms, err);
	if (strcmp(key, "timeout") == 0)
		return parse_seconds(v, key, 60, what, &c->timeout_ms, err);
	cf_errf(err, "%s: \"verify\": unknown key \"%.64s\" (known: %s)", what, key, config_keys);
	return -1;
}

int
dnsauth_config_parse(struct dnsauth_config *cfg, const json_t *obj, const char *what, cf_err *err)
{
	struct dnsauth_config c;
	const char *key;
	json_t *v;
	char got[48];
	int rc = -1;

	if (obj == NULL)
		return 0;
	if (!json_is_object(obj)) {
		json_brief(obj, got, sizeof(got));
		cf_errf(err, "%s: \"verify\" must be an object with keys among %s (got %s)", what, config_keys, got);
		return -1;
	}
	/* work on a copy, so that cfg is left as it was when a value is bad */
	if (dnsauth_config_copy(&c, cfg) != 0) {
		cf_errf(err, "%s: \"verify\": out of memory", what);
		goto out;
	}
	json_object_foreach((json_t *)obj, key, v) {
		if (parse_key(&c, key, v, what, err) != 0)
			goto out;
	}
	if (c.interval_ms > c.max_interval_ms) {
		cf_errf(err, "%s: \"verify\": \"interval\" (%.3f s) is longer than \"max_interval\" (%.3f s)",
		    what, (double)c.interval_ms / 1000, (double)c.max_interval_ms / 1000);
		goto out;
	}
	dnsauth_config_clear(cfg);
	*cfg = c;
	memset(&c, 0, sizeof(c));
	rc = 0;
out:
	dnsauth_config_clear(&c);
	return rc;
}

/* ---- addresses ---- */

int
dnsauth_addr_parse(const char *s, int default_port, struct dnsauth_addr *a, cf_err *err)
{
	char host[64], shown[160];
	const char *port = NULL;
	size_t hlen;
	long p = default_port;
	char ipbuf[INET6_ADDRSTRLEN];

	memset(a, 0, sizeof(*a));
	cf_quote(shown, sizeof(shown), s, strlen(s), 32);
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (close == NULL || (close[1] != '\0' && close[1] != ':')) {
			cf_errf(err, "\"%s\" is not an address: \"[\" must close with \"]\" or \"]:port\"", shown);
			return -1;
		}
		hlen = (size_t)(close - s - 1);
		if (hlen >= sizeof(host))
			goto bad;
		memcpy(host, s + 1, hlen);
		host[hlen] = '\0';
		if (close[1] == ':')
			port = close + 2;
		if (inet_pton(AF_INET6, host, a->ip) != 1)
			goto bad;
		a->family = AF_INET6;
	} else if (inet_pton(AF_INET6, s, a->ip) == 1) {
		a->family = AF_INET6;      /* a bare IPv6 address: no port can follow without brackets */
	} else {
		const char *colon = strchr(s, ':');
		hlen = colon ? (size_t)(colon - s) : strlen(s);
		if (hlen >= sizeof(host))
			goto bad;
		memcpy(host, s, hlen);
		host[hlen] = '\0';
		if (colon)
			port = colon + 1;
		if (inet_pton(AF_INET, host, a->ip) != 1)
			goto bad;
		a->family = AF_INET;
	}
	if (port) {
		char *end;
		errno = 0;
		p = port[0] >= '0' && port[0] <= '9' ? strtol(port, &end, 10) : -1;
		if (p < 1 || p > 65535 || errno != 0 || *end != '\0') {
			cf_errf(err, "\"%s\" is not an address: the port must be a number from 1 to 65535", shown);
			return -1;
		}
	}
	a->port = (int)p;
	inet_ntop(a->family, a->ip, ipbuf, sizeof(ipbuf));
	if (a->family == AF_INET6)
		snprintf(a->text, sizeof(a->text), "[%s]:%d", ipbuf, a->port);
	else
		snprintf(a->text, sizeof(a->text), "%s:%d", ipbuf, a->port);
	return 0;
bad:
	memset(a, 0, sizeof(*a));
	cf_errf(err, "\"%s\" is not an address: give an IP address as \"ip\", \"ip:port\" or \"[ipv6]:port\" "
	    "(host names are not looked up)", shown);
	return -1;
}

static bool
addr_same(const struct dnsauth_addr *x, const struct dnsauth_addr *y)
{
	return x->family == y->family && x->port == y->port &&
	    memcmp(x->ip, y->ip, x->family == AF_INET ? 4 : 16) == 0;
}

static socklen_t
addr_sockaddr(const struct dnsauth_addr *a, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (a->family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)a->port);
		memcpy(&s6->sin6_addr, a->ip, 16);
		return sizeof(*s6);
	}
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	s4->sin_family = AF_INET;
	s4->sin_port = htons((uint16_t)a->port);
	memcpy(&s4->sin_addr, a->ip, 4);
	return sizeof(*s4);
}

/* ---- the transport ---- */

/* Waits for events on fd until deadline (monotonic ms): 1 ready, 0 timed out, -1 error. */
static int
wait_fd(int fd, short events, int64_t deadline)
{
	struct pollfd pfd = { .fd = fd, .events = events };

	for (;;) {
		int64_t left = deadline - cf_mono_ms();
		if (left <= 0)
			return 0;
		int n = poll(&pfd, 1, (int)(left > 60000 ? 60000 : left));
		if (n > 0)
			return 1;
		if (n < 0 && errno != EINTR)
			return -1;
	}
}

/* True when answer (n octets) answers msg: same id, QR set. */
static bool
answers(const uint8_t *msg, const uint8_t *answer, size_t n)
{
	return n >= LDNS_HEADER_SIZE && answer[0] == msg[0] && answer[1] == msg[1] && (answer[2] & 0x80);
}

/*
 * Errors that mean the address cannot be reached from this host at all (an IPv6 address on a
 * host without IPv6), as opposed to a server that does not answer.
 */
static bool
unreachable_errno(int e)
{
	return e == ENETUNREACH || e == EAFNOSUPPORT || e == EADDRNOTAVAIL || e == EHOSTUNREACH;
}

static int
udp_exchange(const struct dnsauth_addr *a, const uint8_t *msg, size_t len, int64_t timeout_ms,
    uint8_t **answer, size_t *answerlen, int *syserr, cf_err *err)
{
	struct sockaddr_storage ss;
	socklen_t sslen = addr_sockaddr(a, &ss);
	int64_t deadline = cf_mono_ms() + timeout_ms;
	uint8_t *buf = NULL;
	int fd = -1, rc = -1;

	if ((fd = socket(a->family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0 ||
	    connect(fd, (struct sockaddr *)&ss, sslen) != 0 || send(fd, msg, len, 0) != (ssize_t)len) {
		*syserr = errno;
		cf_errf(err, "%s (UDP)", strerror(errno));
		goto out;
	}
	if ((buf = malloc(LDNS_MAX_PACKETLEN)) == NULL) {
		cf_errf(err, "out of memory");
		goto out;
	}
	for (;;) {
		int w = wait_fd(fd, POLLIN, deadline);
		if (w == 0) {
			cf_errf(err, "timed out after %lld ms (UDP)", (long long)timeout_ms);
			goto out;
		}
		ssize_t n = w < 0 ? -1 : recv(fd, buf, LDNS_MAX_PACKETLEN, 0);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			*syserr = errno;
			cf_errf(err, "%s (UDP)", errno == ECONNREFUSED ? "connection refused: nothing listens there" : strerror(errno));
			goto out;
		}
		if (answers(msg, buf, (size_t)n)) {
			uint8_t *fit = realloc(buf, (size_t)n);
			*answer = fit ? fit : buf;
			*answerlen = (size_t)n;
			buf = NULL;
			break;
		}
		/* a late answer to an earlier query, or garbage: keep waiting */
	}
	rc = 0;
out:
	free(buf);
	if (fd >= 0)
		close(fd);
	return rc;
}

/* Sends or receives exactly n octets on the non-blocking TCP socket fd before deadline. */
static int
tcp_io(int fd, bool out, uint8_t *p, size_t n, int64_t deadline, int64_t timeout_ms, int *syserr, cf_err *err)
{
	while (n > 0) {
		ssize_t k = out ? send(fd, p, n, MSG_NOSIGNAL) : recv(fd, p, n, 0);
		if (k > 0) {
			p += k;
			n -= (size_t)k;
			continue;
		}
		if (k == 0) {
			cf_errf(err, "connection closed by the server (TCP)");
			return -1;
		}
		if (errno != EAGAIN && errno != EINTR) {
			*syserr = errno;
			cf_errf(err, "%s (TCP)", strerror(errno));
			return -1;
		}
		int w = wait_fd(fd, out ? POLLOUT : POLLIN, deadline);
		if (w <= 0) {
			if (w == 0)
				cf_errf(err, "timed out after %lld ms (TCP)", (long long)timeout_ms);
			else
				cf_errf(err, "%s (TCP)", strerror(errno));
			return -1;
		}
	}
	return 0;
}

static int
tcp_exchange(const struct dnsauth_addr *a, const uint8_t *msg, size_t len, int64_t timeout_ms,
    uint8_t **answer, size_t *answerlen, int *syserr, cf_err *err)
{
	struct sockaddr_storage ss;
	socklen_t sslen = addr_sockaddr(a, &ss);
	int64_t deadline = cf_mono_ms() + timeout_ms;
	uint8_t *out = NULL, *buf = NULL, lenbuf[2];
	int fd = -1, rc = -1, soerr = 0;
	socklen_t solen = sizeof(soerr);
	size_t n;

	if (len > LDNS_MAX_PACKETLEN) {
		cf_errf(err, "message of %zu octets is over the %d a DNS message can hold", len, LDNS_MAX_PACKETLEN);
		goto out;
	}
	if ((fd = socket(a->family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0) {
		*syserr = errno;
		cf_errf(err, "%s (TCP)", strerror(errno));
		goto out;
	}
	if (connect(fd, (struct sockaddr *)&ss, sslen) != 0) {
		if (errno != EINPROGRESS) {
			*syserr = errno;
			cf_errf(err, "%s (TCP)", errno == ECONNREFUSED ? "connection refused" : strerror(errno));
			goto out;
		}
		int w = wait_fd(fd, POLLOUT, deadline);
		if (w == 0) {
			cf_errf(err, "timed out after %lld ms connecting (TCP)", (long long)timeout_ms);
			goto out;
		}
		if (w < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &solen) != 0 || soerr != 0) {
			*syserr = soerr ? soerr : errno;
			cf_errf(err, "%s (TCP)", *syserr == ECONNREFUSED ? "connection refused" : strerror(*syserr));
			goto out;
		}
	}
	if ((out = malloc(len + 2)) == NULL) {
		cf_errf(err, "out of memory");
		goto out;
	}
	out[0] = (uint8_t)(len >> 8);
	out[1] = (uint8_t)len;
	memcpy(out + 2, msg, len);
	if (tcp_io(fd, true, out, len + 2, deadline, timeout_ms, syserr, err) != 0)
		goto out;
	for (;;) {
		if (tcp_io(fd, false, lenbuf, 2, deadline, timeout_ms, syserr, err) != 0)
			goto out;
		n = (size_t)lenbuf[0] << 8 | lenbuf[1];
		free(buf);
		if ((buf = malloc(n ? n : 1)) == NULL) {
			cf_errf(err, "out of memory");
			goto out;
		}
		if (tcp_io(fd, false, buf, n, deadline, timeout_ms, syserr, err) != 0)
			goto out;
		if (answers(msg, buf, n))
			break;
	}
	*answer = buf;
	*answerlen = n;
	buf = NULL;
	rc = 0;
out:
	free(out);
	free(buf);
	if (fd >= 0)
		close(fd);
	return rc;
}

/* dnsauth_exchange, also saying through *syserr which system error ended it (0: none). */
static int
exchange(const struct dnsauth_addr *a, const uint8_t *msg, size_t len, bool tcp, int64_t timeout_ms,
    uint8_t **answer, size_t *answerlen, int *syserr, cf_err *err)
{
	*syserr = 0;
	*answer = NULL;
	*answerlen = 0;
	if (len < LDNS_HEADER_SIZE) {
		cf_errf(err, "message of %zu octets is shorter than a DNS header", len);
		return -1;
	}
	if (!tcp && len <= 512) {
		if (udp_exchange(a, msg, len, timeout_ms, answer, answerlen, syserr, err) != 0)
			return -1;
		if (!((*answer)[2] & 0x02)) /* TC */
			return 0;
		free(*answer);
		*answer = NULL;
		*answerlen = 0;
	}
	return tcp_exchange(a, msg, len, timeout_ms, answer, answerlen, syserr, err);
}

int
dnsauth_exchange(const struct dnsauth_addr *a, const uint8_t *msg, size_t len, bool tcp,
    int64_t timeout_ms, uint8_t **answer, size_t *answerlen, cf_err *err)
{
	int syserr;

	return exchange(a, msg, len, tcp, timeout_ms, answer, answerlen, &syserr, err);
}

/* Writes a message to why (whylen octets), cut when it does not fit. */
static void whyf(char *why, size_t whylen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
whyf(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

/* ---- queries ---- */

static const char *
rcode_name(int rcode)
{
	static const char *const names[] = { "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP",
		"REFUSED", "YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH", "NOTZONE" };

	return rcode >= 0 && rcode < (int)(sizeof(names) / sizeof(names[0])) ? names[rcode] : "an unknown RCODE";
}

static const char *
type_name(ldns_rr_type t)
{
	switch (t) {
	case LDNS_RR_TYPE_SOA: return "SOA";
	case LDNS_RR_TYPE_NS: return "NS";
	case LDNS_RR_TYPE_A: return "A";
	case LDNS_RR_TYPE_AAAA: return "AAAA";
	case LDNS_RR_TYPE_TXT: return "TXT";
	default: return "?";
	}
}

/* name as text without the trailing dot ("." for the root), or "?" */
static void
name_text(const ldns_rdf *name, char *out, size_t outlen)
{
	char *s = ldns_rdf2str(name);
	size_t n = s ? strlen(s) : 0;

	if (s == NULL)
		snprintf(out, outlen, "?");
	else if (n > 1 && s[n - 1] == '.')
		snprintf(out, outlen, "%.*s", (int)(n - 1), s);
	else
		snprintf(out, outlen, "%s", s);
	free(s);
}

/*
 * Asks a for name/type (RD as given) and returns the parsed answer, whose question (when it has
 * one) must be the one asked. NULL with err naming the query and the cause; *syserr as exchange.
 */
static ldns_pkt *
query(const struct dnsauth_addr *a, const ldns_rdf *name, ldns_rr_type type, bool rd, int64_t timeout_ms,
    int *syserr, cf_err *err)
{
	ldns_pkt *q = NULL, *ans = NULL, *result = NULL;
	ldns_rdf *qname = ldns_rdf_clone(name);
	uint8_t *wire = NULL, *reply = NULL;
	size_t wlen = 0, rlen = 0;
	char shown[256];
	cf_err xerr;

	*syserr = 0;
	name_text(name, shown, sizeof(shown));
	if (qname == NULL || (q = ldns_pkt_query_new(qname, type, LDNS_RR_CLASS_IN, rd ? LDNS_RD : 0)) == NULL) {
		ldns_rdf_deep_free(qname);
		cf_errf(err, "%s: query %s %s: out of memory", a->text, type_name(type), shown);
		goto out;
	}
	ldns_pkt_set_rd(q, rd);
	ldns_pkt_set_edns_udp_size(q, DNSAUTH_EDNS_SIZE);
	if (ldns_pkt2wire(&wire, q, &wlen) != LDNS_STATUS_OK) {
		cf_errf(err, "%s: query %s %s: cannot encode the query", a->text, type_name(type), shown);
		goto out;
	}
	if (exchange(a, wire, wlen, false, timeout_ms, &reply, &rlen, syserr, &xerr) != 0) {
		cf_errf(err, "%s: query %s %s: %s", a->text, type_name(type), shown, xerr.msg);
		goto out;
	}
	if (ldns_wire2pkt(&ans, reply, rlen) != LDNS_STATUS_OK) {
		cf_errf(err, "%s: query %s %s: the answer is not a DNS message", a->text, type_name(type), shown);
		goto out;
	}
	if (ldns_pkt_qdcount(ans) > 0) {
		ldns_rr *qr = ldns_rr_list_rr(ldns_pkt_question(ans), 0);
		if (qr == NULL || ldns_rr_get_type(qr) != type || ldns_dname_compare(ldns_rr_owner(qr), name) != 0) {
			cf_errf(err, "%s: query %s %s: the answer is for another question", a->text, type_name(type), shown);
			goto out;
		}
	}
	result = ans;
	ans = NULL;
out:
	ldns_pkt_free(q);
	ldns_pkt_free(ans);
	free(wire);
	free(reply);
	return result;
}

/*
 * Asks the servers in list (in order, until one answers NOERROR or NXDOMAIN) for name/type.
 * NULL with err from the last server asked.
 */
static ldns_pkt *
ask(const struct dnsauth_addr *list, size_t n, bool rd, const ldns_rdf *name, ldns_rr_type type,
    int64_t timeout_ms, cf_err *err)
{
	char shown[256];
	int syserr;

	for (size_t i = 0; i < n; i++) {
		ldns_pkt *p = query(&list[i], name, type, rd, timeout_ms, &syserr, err);
		if (p == NULL)
			continue;
		ldns_pkt_rcode rc = ldns_pkt_get_rcode(p);
		if (rc == LDNS_RCODE_NOERROR || rc == LDNS_RCODE_NXDOMAIN)
			return p;
		name_text(name, shown, sizeof(shown));
		cf_errf(err, "%s: query %s %s: answered %s", list[i].text, type_name(type), shown, rcode_name((int)rc));
		ldns_pkt_free(p);
	}
	if (n == 0)
		cf_errf(err, "no server to ask");
	return NULL;
}

/* True when the answer section holds a CNAME owned by name. */
static bool
has_cname(const ldns_pkt *p, const ldns_rdf *name)
{
	const ldns_rr_list *an = ldns_pkt_answer(p);

	for (size_t i = 0; i < ldns_rr_list_rr_count(an); i++) {
		const ldns_rr *rr = ldns_rr_list_rr(an, i);
		if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_CNAME && ldns_dname_compare(ldns_rr_owner(rr), name) == 0)
			return true;
	}
	return false;
}

/*
 * The zone of name: the owner of an SOA at name in the answer, or of the SOA in the authority
 * section of a negative answer (when it is name or one of its ancestors); otherwise the same
 * question one label up. The servers in list are asked with RD as given.
 */
static ldns_rdf *
find_zone(const struct dnsauth_addr *list, size_t n, bool rd, const ldns_rdf *name, int64_t timeout_ms, cf_err *err)
{
	ldns_rdf *cur = ldns_rdf_clone(name), *zone = NULL;
	ldns_pkt *p = NULL;
	char shown[256];

	while (cur && ldns_dname_label_count(cur) > 0) {
		if ((p = ask(list, n, rd, cur, LDNS_RR_TYPE_SOA, timeout_ms, err)) == NULL)
			goto out;
		const ldns_rr_list *an = ldns_pkt_answer(p), *ns = ldns_pkt_authority(p);
		for (size_t i = 0; zone == NULL && i < ldns_rr_list_rr_count(an); i++) {
			const ldns_rr *rr = ldns_rr_list_rr(an, i);
			if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_SOA && ldns_dname_compare(ldns_rr_owner(rr), cur) == 0)
				zone = ldns_rdf_clone(cur);
		}
		/* with a CNAME at cur, the authority section speaks of the CNAME's target */
		for (size_t i = 0; zone == NULL && !has_cname(p, cur) && i < ldns_rr_list_rr_count(ns); i++) {
			const ldns_rr *rr = ldns_rr_list_rr(ns, i);
			const ldns_rdf *owner = ldns_rr_owner(rr);
			if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_SOA && ldns_dname_label_count(owner) > 0 &&
			    (ldns_dname_compare(owner, cur) == 0 || ldns_dname_is_subdomain(cur, owner)))
				zone = ldns_rdf_clone(owner);
		}
		ldns_pkt_free(p);
		p = NULL;
		if (zone)
			goto out;
		ldns_rdf *up = ldns_dname_left_chop(cur);
		ldns_rdf_deep_free(cur);
		cur = up;
	}
	name_text(name, shown, sizeof(shown));
	cf_errf(err, "no zone found for %s: no SOA at it or above it (asked %s%s)", shown, n ? list[0].text : "nobody",
	    n > 1 ? " and others" : "");
out:
	ldns_rdf_deep_free(cur);
	if (zone)
		ldns_dname2canonical(zone);
	return zone;
}

/* The resolvers: cfg->resolver, else the nameserver lines of resolv.conf, else 127.0.0.1:53. */
static int
resolvers(const struct dnsauth_config *cfg, struct dnsauth_addr *out, size_t *n, cf_err *err)
{
	char line[512], word[16], addr[128];
	FILE *f;
	cf_err ignored;

	*n = 0;
	if (cfg->resolver) {
		if (dnsauth_addr_parse(cfg->resolver, 53, &out[0], err) != 0)
			return -1;
		*n = 1;
		return 0;
	}
	if ((f = fopen(DNSAUTH_RESOLV_CONF, "re")) != NULL) {
		while (*n < DNSAUTH_MAX_RESOLVERS && fgets(line, sizeof(line), f)) {
			/* entries glibc accepts but that cannot be parsed here (fe80::1%eth0) are skipped */
			if (sscanf(line, "%15s %127s", word, addr) == 2 && strcmp(word, "nameserver") == 0 &&
			    dnsauth_addr_parse(addr, 53, &out[*n], &ignored) == 0)
				(*n)++;
		}
		fclose(f);
	}
	if (*n == 0 && dnsauth_addr_parse("127.0.0.1", 53, &out[(*n)++], err) != 0)
		return -1;
	return 0;
}

/* Appends a to list (n of max) unless it is there already. */
static void
add_addr(struct dnsauth_addr *list, size_t *n, size_t max, const struct dnsauth_addr *a)
{
	for (size_t i = 0; i < *n; i++)
		if (addr_same(&list[i], a))
			return;
	if (*n < max)
		list[(*n)++] = *a;
}

/* The addresses (A and AAAA, through the resolvers) of the name servers of zone, at port. */
static int
zone_servers(const struct dnsauth_addr *res, size_t nres, const ldns_rdf *zone, int port, int64_t timeout_ms,
    struct dnsauth_addr *out, size_t *nout, cf_err *err)
{
	static const ldns_rr_type types[] = { LDNS_RR_TYPE_A, LDNS_RR_TYPE_AAAA };
	ldns_pkt *nsp = NULL, *ap = NULL;
	char zshown[256], nshown[256];
	const ldns_rdf *first = NULL;   /* the first name server's name, for messages */
	size_t nnames = 0;
	int rc = -1;

	*nout = 0;
	name_text(zone, zshown, sizeof(zshown));
	if ((nsp = ask(res, nres, true, zone, LDNS_RR_TYPE_NS, timeout_ms, err)) == NULL)
		goto out;
	const ldns_rr_list *an = ldns_pkt_answer(nsp);
	for (size_t i = 0; i < ldns_rr_list_rr_count(an); i++) {
		const ldns_rr *ns = ldns_rr_list_rr(an, i);
		if (ldns_rr_get_type(ns) != LDNS_RR_TYPE_NS || ldns_dname_compare(ldns_rr_owner(ns), zone) != 0 ||
		    ldns_rr_rd_count(ns) < 1)
			continue;
		const ldns_rdf *host = ldns_rr_rdf(ns, 0);
		if (nnames++ == 0)
			first = host;
		for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
			if ((ap = ask(res, nres, true, host, types[t], timeout_ms, err)) == NULL)
				goto out;
			const ldns_rr_list *aan = ldns_pkt_answer(ap);
			for (size_t j = 0; j < ldns_rr_list_rr_count(aan); j++) {
				const ldns_rr *rr = ldns_rr_list_rr(aan, j);
				const ldns_rdf *d = ldns_rr_rd_count(rr) ? ldns_rr_rdf(rr, 0) : NULL;
				struct dnsauth_addr a;
				memset(&a, 0, sizeof(a));
				if (ldns_rr_get_type(rr) != types[t] || d == NULL)
					continue;
				if (types[t] == LDNS_RR_TYPE_A && ldns_rdf_size(d) == 4)
					a.family = AF_INET;
				else if (types[t] == LDNS_RR_TYPE_AAAA && ldns_rdf_size(d) == 16)
					a.family = AF_INET6;
				else
					continue;
				memcpy(a.ip, ldns_rdf_data(d), ldns_rdf_size(d));
				a.port = port;
				char ipbuf[INET6_ADDRSTRLEN];
				inet_ntop(a.family, a.ip, ipbuf, sizeof(ipbuf));
				snprintf(a.text, sizeof(a.text), a.family == AF_INET6 ? "[%s]:%d" : "%s:%d", ipbuf, port);
				add_addr(out, nout, DNSAUTH_MAX_ADDRS, &a);
			}
			ldns_pkt_free(ap);
			ap = NULL;
		}
	}
	if (nnames == 0) {
		cf_errf(err, "zone %s has no NS records (asked %s)", zshown, res[0].text);
		goto out;
	}
	if (*nout == 0) {
		name_text(first, nshown, sizeof(nshown));
		cf_errf(err, "no address found for any of the %zu name servers of zone %s (%s%s)", nnames, zshown,
		    nshown, nnames > 1 ? ", ..." : "");
		goto out;
	}
	rc = 0;
out:
	ldns_pkt_free(nsp);
	ldns_pkt_free(ap);
	return rc;
}

/* The octets of a TXT record's character-strings joined, compared with value. */
static bool
txt_equals(const ldns_rr *rr, const char *value, size_t vlen)
{
	size_t off = 0;

	for (size_t i = 0; i < ldns_rr_rd_count(rr); i++) {
		const ldns_rdf *d = ldns_rr_rdf(rr, i);
		const uint8_t *p = ldns_rdf_data(d);
		size_t sz = ldns_rdf_size(d);
		if (sz < 1 || (size_t)p[0] + 1 != sz)
			return false;
		if (off + p[0] > vlen || memcmp(value + off, p + 1, p[0]) != 0)
			return false;
		off += p[0];
	}
	return off == vlen;
}

enum check_outcome {
	CHECK_PRESENT,
	CHECK_ABSENT,
	CHECK_ERROR,
	CHECK_UNREACHABLE,          /* the address cannot be reached from this host (no route) */
};

/* What a's answer p to the TXT question at name says of value (rules of dnsauth_check). */
static enum check_outcome
judge(const struct dnsauth_addr *a, const ldns_rdf *name, const char *value, const ldns_pkt *p, bool require_aa,
    char *why, size_t whylen)
{
	char shown[256], quoted[4 * 64 + 8];
	size_t vlen = strlen(value), others = 0;

	name_text(name, shown, sizeof(shown));
	cf_quote(quoted, sizeof(quoted), value, vlen, 64);
	ldns_pkt_rcode rc = ldns_pkt_get_rcode(p);
	if (rc != LDNS_RCODE_NOERROR && rc != LDNS_RCODE_NXDOMAIN) {
		whyf(why, whylen, "%s answered %s to TXT %s", a->text, rcode_name((int)rc), shown);
		return CHECK_ERROR;
	}
	if (!ldns_pkt_aa(p) && require_aa) {
		whyf(why, whylen, "%s is not authoritative for %s (its %s answer lacks the AA flag)", a->text,
		    shown, rcode_name((int)rc));
		return CHECK_ERROR;
	}
	const ldns_rr_list *an = ldns_pkt_answer(p);
	for (size_t i = 0; i < ldns_rr_list_rr_count(an); i++) {
		const ldns_rr *rr = ldns_rr_list_rr(an, i);
		if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_TXT || ldns_dname_compare(ldns_rr_owner(rr), name) != 0)
			continue;
		if (txt_equals(rr, value, vlen))
			return CHECK_PRESENT;
		others++;
	}
	if (rc == LDNS_RCODE_NXDOMAIN)
		whyf(why, whylen, "%s has no TXT \"%s\" at %s (NXDOMAIN)", a->text, quoted, shown);
	else if (has_cname(p, name))
		whyf(why, whylen, "%s has no TXT \"%s\" at %s (a CNAME is there; it is not followed)", a->text,
		    quoted, shown);
	else if (others > 0)
		whyf(why, whylen, "%s has no TXT \"%s\" at %s (%zu other TXT value%s)", a->text, quoted, shown,
		    others, others == 1 ? "" : "s");
	else
		whyf(why, whylen, "%s has no TXT \"%s\" at %s (no TXT record)", a->text, quoted, shown);
	return CHECK_ABSENT;
}

/* One record of a batch: its verdict so far, and its question to the server being asked. */
struct brec {
	ldns_rdf *name;            /* NULL: fqdn is no domain name */
	const char *fqdn;
	const char *value;
	enum dnsauth_result res;
	bool settled;              /* the verdict is final: no more servers are asked */
	bool grouped;              /* its servers were looked for */
	size_t answered;           /* servers that have the value */
	char first_error[512];     /* the first server's error */
	char unreachable[512];     /* the first unreachable address */
	char why[512];             /* the verdict's reason */
	/* the question to the current server */
	uint8_t *wire;
	size_t wlen;
	bool done;                 /* answered (or given up) at this server */
	bool truncated;            /* the UDP answer was truncated: asked again over TCP */
	int sends;                 /* times sent over UDP (at most 2) */
	int64_t sent_at;           /* when first sent (monotonic ms) */
	enum check_outcome out;
	char said[512];            /* out's reason */
};

/* The TXT question at name without RD, with EDNS, id set, as wire format (malloc'd). */
static int
encode_txt_query(const ldns_rdf *name, uint16_t id, uint8_t **wire, size_t *wlen)
{
	ldns_rdf *qname = ldns_rdf_clone(name);
	ldns_pkt *q = qname ? ldns_pkt_query_new(qname, LDNS_RR_TYPE_TXT, LDNS_RR_CLASS_IN, 0) : NULL;
	int rc = -1;

	*wire = NULL;
	if (q == NULL) {
		ldns_rdf_deep_free(qname);
		return -1;
	}
	ldns_pkt_set_id(q, id);
	ldns_pkt_set_rd(q, false);
	ldns_pkt_set_edns_udp_size(q, DNSAUTH_EDNS_SIZE);
	if (ldns_pkt2wire(wire, q, wlen) == LDNS_STATUS_OK)
		rc = 0;
	ldns_pkt_free(q);
	return rc;
}

/* Gives every question of r (n) that is not done the outcome out, for cause ("timed out ..."). */
static void
fail_rest(struct brec **r, size_t n, const struct dnsauth_addr *a, enum check_outcome out, const char *cause)
{
	char shown[256];

	for (size_t k = 0; k < n; k++) {
		if (r[k]->done)
			continue;
		name_text(r[k]->name, shown, sizeof(shown));
		r[k]->out = out;
		whyf(r[k]->said, sizeof(r[k]->said), "%s: query TXT %s: %s", a->text, shown, cause);
		r[k]->done = true;
	}
}

/* The parsed answer to r's question when buf (len octets) is one: same question, or none. */
static ldns_pkt *
answer_of(const struct brec *r, const uint8_t *buf, size_t len)
{
	ldns_pkt *p = NULL;

	if (ldns_wire2pkt(&p, buf, len) != LDNS_STATUS_OK)
		return NULL;
	if (ldns_pkt_qdcount(p) > 0) {
		ldns_rr *qr = ldns_rr_list_rr(ldns_pkt_question(p), 0);
		if (qr == NULL || ldns_rr_get_type(qr) != LDNS_RR_TYPE_TXT || ldns_dname_compare(ldns_rr_owner(qr), r->name) != 0) {
			ldns_pkt_free(p);
			return NULL;
		}
	}
	return p;
}

/* Asks r's question again over TCP (its UDP answer was truncated). */
static void
ask_tcp(const struct dnsauth_addr *a, struct brec *r, int64_t timeout_ms, bool require_aa)
{
	uint8_t *reply = NULL;
	size_t rlen = 0;
	int syserr = 0;
	ldns_pkt *p = NULL;
	char shown[256];
	cf_err xerr;

	name_text(r->name, shown, sizeof(shown));
	r->out = CHECK_ERROR;
	if (exchange(a, r->wire, r->wlen, true, timeout_ms, &reply, &rlen, &syserr, &xerr) != 0) {
		whyf(r->said, sizeof(r->said), "%s: query TXT %s: %s", a->text, shown, xerr.msg);
		if (unreachable_errno(syserr))
			r->out = CHECK_UNREACHABLE;
	} else if ((p = answer_of(r, reply, rlen)) == NULL) {
		whyf(r->said, sizeof(r->said), "%s: query TXT %s: the answer over TCP is not a DNS message for this question",
		    a->text, shown);
	} else {
		r->out = judge(a, r->name, r->value, p, require_aa, r->said, sizeof(r->said));
	}
	ldns_pkt_free(p);
	free(reply);
}

#define DNSAUTH_WINDOW 64 /* questions out at once on one socket: a burst of hundreds overflows the
                           * receive buffer of a server that reads one datagram at a time */

/* Sends q's question on fd (waiting for room up to timeout_ms). -1 with errno on failure. */
static int
send_question(int fd, const struct brec *q, int64_t timeout_ms)
{
	int64_t until = cf_mono_ms() + timeout_ms;

	while (send(fd, q->wire, q->wlen, 0) != (ssize_t)q->wlen) {
		if (errno != EAGAIN && errno != ENOBUFS && errno != EINTR)
			return -1;
		if (wait_fd(fd, POLLOUT, until) <= 0) {
			errno = ETIMEDOUT;
			return -1;
		}
	}
	return 0;
}

/* The cause of a failed send or recv on a UDP socket, for messages. */
static void
udp_cause(int e, char *cause, size_t len)
{
	snprintf(cause, len, "%s (UDP)", e == ECONNREFUSED ? "connection refused: nothing listens there" : strerror(e));
}

/*
 * Asks a the questions of r (n records, at most 65536: the ids must stay apart) over one UDP
 * socket, pipelined: up to DNSAUTH_WINDOW questions are out at once, the answers are matched by
 * id and question as they come, a question unanswered halfway to timeout_ms is sent once more,
 * and a truncated answer is asked again over TCP for that record alone. A question that times
 * out while the server has said nothing since it was sent ends the exchange: the server does not
 * answer, and the questions left fail with it (a dead server costs one timeout, not one per
 * window). Each record gets out and said.
 */
static void
ask_many(const struct dnsauth_addr *a, struct brec **r, size_t n, int64_t timeout_ms, bool require_aa)
{
	struct sockaddr_storage ss;
	socklen_t sslen = addr_sockaddr(a, &ss);
	uint16_t base = (uint16_t)ldns_get_random();
	uint8_t *buf = NULL;
	size_t left = 0, next = 0, oldest = 0, inflight = 0;
	int64_t last_answer = -1;
	char cause[160], shown[256];
	int fd = -1;

	for (size_t k = 0; k < n; k++) {
		r[k]->done = r[k]->truncated = false;
		r[k]->out = CHECK_ERROR;
		r[k]->sends = 0;
		free(r[k]->wire);
		r[k]->wire = NULL;
		if (encode_txt_query(r[k]->name, (uint16_t)(base + k), &r[k]->wire, &r[k]->wlen) != 0) {
			whyf(r[k]->said, sizeof(r[k]->said), "%s: query TXT %s: cannot encode the query", a->text, r[k]->fqdn);
			r[k]->done = true;
		} else {
			left++;
		}
	}
	snprintf(cause, sizeof(cause), "timed out after %lld ms (UDP, sent twice)", (long long)timeout_ms);
	if ((buf = malloc(LDNS_MAX_PACKETLEN)) == NULL) {
		fail_rest(r, n, a, CHECK_ERROR, "out of memory");
		goto tcp;
	}
	if ((fd = socket(a->family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0 ||
	    connect(fd, (struct sockaddr *)&ss, sslen) != 0)
		goto syserr;
	while (left > 0) {
		int64_t now = cf_mono_ms(), wake = INT64_MAX;
		while (inflight < DNSAUTH_WINDOW && next < n) {
			struct brec *q = r[next++];
			if (q->done)
				continue;
			if (send_question(fd, q, timeout_ms) != 0)
				goto syserr;
			q->sent_at = now;
			q->sends = 1;
			inflight++;
		}
		while (oldest < next && r[oldest]->done)
			oldest++;
		for (size_t k = oldest; k < next; k++) {
			struct brec *q = r[k];
			if (q->done)
				continue;
			if (now >= q->sent_at + timeout_ms) {
				if (last_answer < q->sent_at) {
					fail_rest(r, n, a, CHECK_ERROR, cause);
					goto tcp;
				}
				name_text(q->name, shown, sizeof(shown));
				whyf(q->said, sizeof(q->said), "%s: query TXT %s: %s", a->text, shown, cause);
				q->done = true;
				left--;
				inflight--;
				continue;
			}
			if (q->sends == 1 && now >= q->sent_at + timeout_ms / 2) {
				if (send_question(fd, q, timeout_ms) != 0)
					goto syserr;
				q->sends = 2;
			}
			int64_t due = q->sent_at + (q->sends == 1 ? timeout_ms / 2 : timeout_ms);
			if (due < wake)
				wake = due;
		}
		int w = left > 0 && inflight > 0 ? wait_fd(fd, POLLIN, wake) : 1;
		if (w < 0)
			goto syserr;
		if (left == 0 || w == 0)
			continue;
		for (;;) {
			ssize_t got = recv(fd, buf, LDNS_MAX_PACKETLEN, 0);
			if (got < 0) {
				if (errno == EINTR)
					continue;
				if (errno == EAGAIN)
					break;
				goto syserr;
			}
			if (got < LDNS_HEADER_SIZE || !(buf[2] & 0x80))
				continue;
			size_t k = (uint16_t)(((size_t)buf[0] << 8 | buf[1]) - base);
			if (k >= next || r[k]->done)
				continue; /* a late answer to an earlier question, or garbage */
			ldns_pkt *p = answer_of(r[k], buf, (size_t)got);
			if (p == NULL)
				continue; /* another question under a used id: not the answer */
			if (ldns_pkt_tc(p))
				r[k]->truncated = true;
			else
				r[k]->out = judge(a, r[k]->name, r[k]->value, p, require_aa, r[k]->said, sizeof(r[k]->said));
			ldns_pkt_free(p);
			r[k]->done = true;
			left--;
			inflight--;
			last_answer = cf_mono_ms();
		}
	}
	goto tcp;
syserr:
	udp_cause(errno, cause, sizeof(cause));
	fail_rest(r, n, a, unreachable_errno(errno) ? CHECK_UNREACHABLE : CHECK_ERROR, cause);
tcp:
	if (fd >= 0)
		close(fd);
	free(buf);
	for (size_t k = 0; k < n; k++) {
		if (r[k]->truncated)
			ask_tcp(a, r[k], timeout_ms, require_aa);
		free(r[k]->wire);
		r[k]->wire = NULL;
	}
}

/* Counts a's word on each record of r (n) as dnsauth_check does: one authoritative "no" settles it. */
static void
tally(struct brec **r, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		switch (r[k]->out) {
		case CHECK_PRESENT:
			r[k]->answered++;
			break;
		case CHECK_ABSENT:
			whyf(r[k]->why, sizeof(r[k]->why), "%s", r[k]->said);
			r[k]->res = DNSAUTH_ABSENT;
			r[k]->settled = true;
			break;
		case CHECK_UNREACHABLE:
			if (r[k]->unreachable[0] == '\0')
				snprintf(r[k]->unreachable, sizeof(r[k]->unreachable), "%s", r[k]->said);
			break;
		case CHECK_ERROR:
			if (r[k]->first_error[0] == '\0')
				snprintf(r[k]->first_error, sizeof(r[k]->first_error), "%s", r[k]->said);
			break;
		}
	}
}

#define DNSAUTH_PIPELINE 1024 /* questions in flight on one socket (ids must stay apart) */

/*
 * The servers of the group that starts at r[first]: cfg's (every record not yet grouped), or
 * those of the zone found for r[first] (every record not yet grouped at or below it). The
 * group's records are marked grouped and listed in group; on failure they get the error.
 */
static size_t
next_group(const struct dnsauth_config *cfg, struct brec *r, size_t n, size_t first, struct brec **group,
    struct dnsauth_addr *servers, size_t *nservers)
{
	struct dnsauth_addr res[DNSAUTH_MAX_RESOLVERS];
	size_t nres, ng = 0;
	ldns_rdf *zone = NULL;
	cf_err err = { "" };
	int rc = -1;

	*nservers = 0;
	if (cfg->nservers > 0) {
		for (size_t i = 0; i < cfg->nservers && *nservers < DNSAUTH_MAX_ADDRS; i++) {
			struct dnsauth_addr a;
			if (dnsauth_addr_parse(cfg->servers[i], 53, &a, &err) != 0)
				goto out;
			add_addr(servers, nservers, DNSAUTH_MAX_ADDRS, &a);
		}
	} else {
		if (resolvers(cfg, res, &nres, &err) != 0)
			goto out;
		if ((zone = find_zone(res, nres, true, r[first].name, cfg->timeout_ms, &err)) == NULL)
			goto out;
		if (zone_servers(res, nres, zone, cfg->ns_port, cfg->timeout_ms, servers, nservers, &err) != 0)
			goto out;
	}
	rc = 0;
out:
	for (size_t i = first; i < n; i++) {
		if (r[i].grouped || r[i].name == NULL)
			continue;
		/* records outside the zone found form groups of their own; when finding it failed,
		 * the records of the batch (one zone, as the caller says) share the failure */
		if (rc == 0 && zone && ldns_dname_compare(r[i].name, zone) != 0 && !ldns_dname_is_subdomain(r[i].name, zone))
			continue;
		r[i].grouped = true;
		if (rc != 0) {
			whyf(r[i].why, sizeof(r[i].why), "finding the servers of %s: %s", r[i].fqdn, err.msg);
			r[i].settled = true;
			continue;
		}
		group[ng++] = &r[i];
	}
	ldns_rdf_deep_free(zone);
	return ng;
}

void
dnsauth_check_many(const struct dnsauth_config *cfg, size_t n, const char *const *fqdns, const char *const *values,
    enum dnsauth_result *results, char *const *whys, size_t whylen)
{
	struct dnsauth_addr servers[DNSAUTH_MAX_ADDRS];
	struct brec *r = calloc(n ? n : 1, sizeof(*r));
	struct brec **group = calloc(n ? n : 1, sizeof(*group)), **ask = calloc(n ? n : 1, sizeof(*ask));
	char shown[160];
	size_t ns;

	if (r == NULL || group == NULL || ask == NULL) {
		for (size_t i = 0; i < n; i++) {
			results[i] = DNSAUTH_ERROR;
			if (whys && whys[i] && whylen)
				whyf(whys[i], whylen, "checking %s: out of memory", fqdns[i]);
		}
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		r[i].fqdn = fqdns[i];
		r[i].value = values[i];
		r[i].res = DNSAUTH_ERROR;
		if (ldns_str2rdf_dname(&r[i].name, fqdns[i]) != LDNS_STATUS_OK || ldns_dname_label_count(r[i].name) == 0) {
			ldns_rdf_deep_free(r[i].name);
			r[i].name = NULL;
			cf_quote(shown, sizeof(shown), fqdns[i], strlen(fqdns[i]), 32);
			whyf(r[i].why, sizeof(r[i].why), "\"%s\" is not a domain name", shown);
			r[i].settled = r[i].grouped = true;
		}
	}
	for (size_t first = 0; first < n; first++) {
		if (r[first].grouped)
			continue;
		size_t ng = next_group(cfg, r, n, first, group, servers, &ns);
		for (size_t s = 0; s < ns; s++) {
			size_t na = 0;
			for (size_t g = 0; g < ng; g++)
				if (!group[g]->settled)
					ask[na++] = group[g];
			for (size_t off = 0; off < na; off += DNSAUTH_PIPELINE) {
				size_t chunk = na - off < DNSAUTH_PIPELINE ? na - off : DNSAUTH_PIPELINE;
				ask_many(&servers[s], ask + off, chunk, cfg->timeout_ms, cfg->require_aa);
				tally(ask + off, chunk);
			}
		}
		for (size_t g = 0; g < ng; g++) {
			struct brec *b = group[g];
			if (b->settled)
				continue;
			if (b->first_error[0])
				whyf(b->why, sizeof(b->why), "%s", b->first_error);
			else if (b->answered == 0) /* every address unreachable from here: nothing was confirmed */
				whyf(b->why, sizeof(b->why), "%s", b->unreachable[0] ? b->unreachable : "no server to ask");
			else
				b->res = DNSAUTH_PRESENT;
		}
	}
	for (size_t i = 0; i < n; i++) {
		results[i] = r[i].res;
		if (whys && whys[i] && whylen)
			whyf(whys[i], whylen, "%s", r[i].res == DNSAUTH_PRESENT ? "" : r[i].why);
	}
out:
	for (size_t i = 0; r && i < n; i++) {
		ldns_rdf_deep_free(r[i].name);
		free(r[i].wire);
	}
	free(r);
	free(group);
	free(ask);
}

enum dnsauth_result
dnsauth_check(const struct dnsauth_config *cfg, const char *fqdn, const char *value, char *why, size_t whylen)
{
	enum dnsauth_result res;
	char scratch[512];
	char *whys[1] = { why };

	if (why == NULL || whylen == 0) {
		whys[0] = scratch;
		whylen = sizeof(scratch);
	}
	dnsauth_check_many(cfg, 1, &fqdn, &value, &res, whys, whylen);
	return res;
}

int
dnsauth_zone(const struct dnsauth_config *cfg, const char *fqdn, char *zone, size_t zonelen, cf_err *err)
{
	struct dnsauth_addr list[DNSAUTH_MAX_ADDRS];
	size_t n = 0;
	ldns_rdf *name = NULL, *z = NULL;
	char text[256], shown[160];
	int rc = -1;

	if (ldns_str2rdf_dname(&name, fqdn) != LDNS_STATUS_OK || ldns_dname_label_count(name) == 0) {
		cf_quote(shown, sizeof(shown), fqdn, strlen(fqdn), 32);
		cf_errf(err, "dnsauth zone: \"%s\" is not a domain name", shown);
		goto out;
	}
	if (cfg->nservers > 0) {
		for (size_t i = 0; i < cfg->nservers && n < DNSAUTH_MAX_ADDRS; i++)
			if (dnsauth_addr_parse(cfg->servers[i], 53, &list[n++], err) != 0)
				goto out;
		z = find_zone(list, n, false, name, cfg->timeout_ms, err);
	} else {
		if (resolvers(cfg, list, &n, err) != 0)
			goto out;
		z = find_zone(list, n, true, name, cfg->timeout_ms, err);
	}
	if (z == NULL) {
		if (err) {
			cf_err why = *err;
			cf_errf(err, "dnsauth zone of %s: %s", fqdn, why.msg);
		}
		goto out;
	}
	name_text(z, text, sizeof(text));
	if (strlen(text) >= zonelen) {
		cf_errf(err, "dnsauth zone of %s: %s does not fit in %zu octets", fqdn, text, zonelen);
		goto out;
	}
	for (char *c = text; *c; c++)
		if (*c >= 'A' && *c <= 'Z')
			*c = (char)(*c - 'A' + 'a');
	memcpy(zone, text, strlen(text) + 1);
	rc = 0;
out:
	ldns_rdf_deep_free(name);
	ldns_rdf_deep_free(z);
	return rc;
}
