/*
 * test_dnsauth.c - unit tests of lib/dnsauth.c: "verify" settings and server addresses
 * (rejections first), then dnsauth_check and dnsauth_zone against a scripted DNS server on
 * 127.0.0.1 that this program runs on a thread (timeouts, REFUSED, no AA, truncation, stray ids).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ldns/ldns.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "dnsauth.h"

/* ---- settings ---- */

/* True when parsing json over the defaults fails with a message holding needle, cfg untouched. */
static bool
parse_rejects(const char *json, const char *needle)
{
	struct dnsauth_config cfg, def;
	json_error_t jerr;
	json_t *obj = json_loads(json, JSON_DECODE_ANY, &jerr);
	cf_err e = { "" };
	bool ok;

	if (obj == NULL) {
		fprintf(stderr, "  bad test JSON %s: %s\n", json, jerr.text);
		return false;
	}
	dnsauth_config_default(&cfg);
	dnsauth_config_default(&def);
	ok = dnsauth_config_parse(&cfg, obj, "provider dns-prod", &e) == -1;
	if (!ok)
		fprintf(stderr, "  accepted %s\n", json);
	ok = ok && check_says(e.msg, needle) && check_says(e.msg, "provider dns-prod: \"verify\"");
	if (memcmp(&cfg, &def, sizeof(cfg)) != 0) {
		fprintf(stderr, "  %s changed the configuration although it failed\n", json);
		ok = false;
	}
	dnsauth_config_clear(&cfg);
	json_decref(obj);
	return ok;
}

static void
test_config_errors(void)
{
	CHECK(parse_rejects("[]", "\"verify\" must be an object"));
	CHECK(parse_rejects("\"yes\"", "\"verify\" must be an object"));
	CHECK(parse_rejects("{\"timout\": 2}", "unknown key \"timout\" (known: enabled, servers"));
	CHECK(parse_rejects("{\"enabled\": 1}", "\"enabled\" must be true or false (got 1)"));
	CHECK(parse_rejects("{\"enabled\": \"true\"}", "\"enabled\" must be true or false"));
	CHECK(parse_rejects("{\"timeout\": 0}", "\"timeout\" must be a number of seconds above 0 and at most 60 (got 0)"));
	CHECK(parse_rejects("{\"timeout\": -1}", "\"timeout\" must be"));
	CHECK(parse_rejects("{\"timeout\": 61}", "\"timeout\" must be"));
	CHECK(parse_rejects("{\"timeout\": 0.0001}", "\"timeout\" must be"));
	CHECK(parse_rejects("{\"timeout\": \"2\"}", "\"timeout\" must be a number of seconds above 0 and at most 60 (got \"2\")"));
	CHECK(parse_rejects("{\"deadline\": null}", "\"deadline\" must be"));
	CHECK(parse_rejects("{\"deadline\": 604801}", "\"deadline\" must be"));
	CHECK(parse_rejects("{\"interval\": 0}", "\"interval\" must be"));
	CHECK(parse_rejects("{\"max_interval\": 3601}", "\"max_interval\" must be"));
	CHECK(parse_rejects("{\"interval\": 40}", "\"interval\" (40.000 s) is longer than \"max_interval\" (30.000 s)"));
	CHECK(parse_rejects("{\"interval\": 2, \"max_interval\": 1}", "is longer than \"max_interval\""));
	CHECK(parse_rejects("{\"ns_port\": 0}", "\"ns_port\" must be a port number from 1 to 65535 (got 0)"));
	CHECK(parse_rejects("{\"ns_port\": 65536}", "\"ns_port\" must be"));
	CHECK(parse_rejects("{\"ns_port\": 53.5}", "\"ns_port\" must be"));
	CHECK(parse_rejects("{\"ns_port\": \"53\"}", "\"ns_port\" must be"));
	CHECK(parse_rejects("{\"servers\": \"192.0.2.1\"}", "\"servers\" must be an array"));
	CHECK(parse_rejects("{\"servers\": [\"192.0.2.1\", 53]}", "\"servers\"[1] must be a string (got 53)"));
	CHECK(parse_rejects("{\"servers\": [\"192.0.2.1\", \"ns1.example\"]}",
	    "\"servers\"[1]: \"ns1.example\" is not an address: give an IP address"));
	CHECK(parse_rejects("{\"servers\": [\"192.0.2.1:99999\"]}",
	    "\"servers\"[0]: \"192.0.2.1:99999\" is not an address: the port must be a number from 1 to 65535"));
	CHECK(parse_rejects("{\"servers\": [\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\",\"10\",\"11\","
	    "\"12\",\"13\",\"14\",\"15\",\"16\",\"17\",\"18\",\"19\",\"20\",\"21\",\"22\",\"23\",\"24\",\"25\",\"26\","
	    "\"27\",\"28\",\"29\",\"30\",\"31\",\"32\",\"33\"]}", "at most 32 addresses"));
	CHECK(parse_rejects("{\"resolver\": 53}", "\"resolver\" must be an address"));
	CHECK(parse_rejects("{\"resolver\": \"dns.example:53\"}", "\"resolver\": \"dns.example:53\" is not an address"));
	/* a bad key after good ones leaves everything as it was */
	CHECK(parse_rejects("{\"servers\": [\"192.0.2.1\"], \"resolver\": \"192.0.2.2\", \"timeout\": 5, \"x\": 1}",
	    "unknown key \"x\""));
}

static void
test_config_defaults(void)
{
	struct dnsauth_config cfg;
	cf_err e = { "" };

	dnsauth_config_default(&cfg);
	CHECK(cfg.enabled);
	CHECK(cfg.servers == NULL && cfg.nservers == 0);
	CHECK(cfg.resolver == NULL);
	CHECK(cfg.ns_port == 53);
	CHECK(cfg.deadline_ms == 600000);
	CHECK(cfg.interval_ms == 500);
	CHECK(cfg.max_interval_ms == 30000);
	CHECK(cfg.timeout_ms == 2000);
	/* no object: nothing changes */
	CHECK(dnsauth_config_parse(&cfg, NULL, "x", &e) == 0);
	CHECK(cfg.enabled && cfg.timeout_ms == 2000);
	dnsauth_config_clear(&cfg);
	dnsauth_config_clear(&cfg);      /* twice is harmless */
	dnsauth_config_clear(NULL);
}

static void
test_config_parse(void)
{
	struct dnsauth_config cfg, copy;
	json_t *obj = json_loads("{\"enabled\": false, \"servers\": [\"192.0.2.1\", \"[2001:db8::1]:5353\"],"
	    " \"resolver\": \"127.0.0.1:5300\", \"ns_port\": 5300, \"deadline\": 60, \"interval\": 0.25,"
	    " \"max_interval\": 4, \"timeout\": 1.5}", 0, NULL);
	json_t *over = json_loads("{\"servers\": [\"192.0.2.9:53\"], \"resolver\": null, \"enabled\": true}", 0, NULL);
	json_t *empty = json_loads("{\"servers\": []}", 0, NULL);
	cf_err e = { "" };

	CHECK(obj != NULL && over != NULL && empty != NULL);
	dnsauth_config_default(&cfg);
	CHECK(dnsauth_config_parse(&cfg, obj, "providers.json", &e) == 0);
	CHECK(!cfg.enabled);
	CHECK(cfg.nservers == 2);
	if (cfg.nservers == 2) {
		CHECK_STR(cfg.servers[0], "192.0.2.1");
		CHECK_STR(cfg.servers[1], "[2001:db8::1]:5353");
	}
	CHECK_STR(cfg.resolver, "127.0.0.1:5300");
	CHECK(cfg.ns_port == 5300);
	CHECK(cfg.deadline_ms == 60000);
	CHECK(cfg.interval_ms == 250);
	CHECK(cfg.max_interval_ms == 4000);
	CHECK(cfg.timeout_ms == 1500);

	/* a copy owns its strings */
	CHECK(dnsauth_config_copy(&copy, &cfg) == 0);
	CHECK(copy.servers != cfg.servers && copy.resolver != cfg.resolver);
	CHECK(copy.nservers == 2 && copy.timeout_ms == 1500 && !copy.enabled);

	/* an account's object over the file's: keys it names replace, others stay */
	CHECK(dnsauth_config_parse(&copy, over, "provider dns-prod", &e) == 0);
	CHECK(copy.enabled);
	CHECK(copy.nservers == 1);
	if (copy.nservers == 1)
		CHECK_STR(copy.servers[0], "192.0.2.9:53");
	CHECK(copy.resolver == NULL);
	CHECK(copy.timeout_ms == 1500 && copy.ns_port == 5300);
	CHECK(cfg.nservers == 2);
	CHECK_STR(cfg.resolver, "127.0.0.1:5300");
	CHECK(dnsauth_config_parse(&copy, empty, "provider dns-prod", &e) == 0);
	CHECK(copy.nservers == 0 && copy.servers == NULL);

	dnsauth_config_clear(&copy);
	dnsauth_config_clear(&cfg);
	json_decref(obj);
	json_decref(over);
	json_decref(empty);
}

/* ---- addresses ---- */

static bool
addr_rejects(const char *s, const char *needle)
{
	struct dnsauth_addr a;
	cf_err e = { "" };

	if (dnsauth_addr_parse(s, 53, &a, &e) == 0) {
		fprintf(stderr, "  accepted \"%s\" as %s\n", s, a.text);
		return false;
	}
	return check_says(e.msg, needle);
}

static bool
addr_gives(const char *s, int default_port, int family, int port, const char *text)
{
	struct dnsauth_addr a;
	cf_err e = { "" };

	if (dnsauth_addr_parse(s, default_port, &a, &e) != 0) {
		fprintf(stderr, "  rejected \"%s\": %s\n", s, e.msg);
		return false;
	}
	if (a.family != family || a.port != port || strcmp(a.text, text) != 0) {
		fprintf(stderr, "  \"%s\" gave family %d port %d \"%s\"\n", s, a.family, a.port, a.text);
		return false;
	}
	return true;
}

static void
test_addr_errors(void)
{
	CHECK(addr_rejects("", "\"\" is not an address: give an IP address as \"ip\", \"ip:port\" or \"[ipv6]:port\""));
	CHECK(addr_rejects("ns1.example", "\"ns1.example\" is not an address"));
	CHECK(addr_rejects("ns1.example:53", "host names are not looked up"));
	CHECK(addr_rejects("192.0.2.1:", "the port must be a number from 1 to 65535"));
	CHECK(addr_rejects("192.0.2.1:0", "\"192.0.2.1:0\" is not an address: the port must be"));
	CHECK(addr_rejects("192.0.2.1:65536", "the port must be"));
	CHECK(addr_rejects("192.0.2.1:53x", "the port must be"));
	CHECK(addr_rejects("192.0.2.1:+53", "the port must be"));
	CHECK(addr_rejects("192.0.2.1:-1", "the port must be"));
	CHECK(addr_rejects("192.0.2.1:99999999999999999999", "the port must be"));
	CHECK(addr_rejects("192.0.2", "is not an address"));
	CHECK(addr_rejects("192.0.2.1.5", "is not an address"));
	CHECK(addr_rejects("256.0.2.1", "is not an address"));
	CHECK(addr_rejects(" 192.0.2.1", "\" 192.0.2.1\" is not an address"));
	CHECK(addr_rejects("[2001:db8::1", "\"[2001:db8::1\" is not an address: \"[\" must close with \"]\""));
	CHECK(addr_rejects("[2001:db8::1]53", "must close with \"]\" or \"]:port\""));
	CHECK(addr_rejects("[2001:db8::1]:", "the port must be"));
	CHECK(addr_rejects("[192.0.2.1]:53", "is not an address"));
	CHECK(addr_rejects("[]:53", "is not an address"));
	CHECK(addr_rejects("2001:db8::g", "is not an address"));
	/* control characters are shown escaped, long input cut */
	CHECK(addr_rejects("192.0.2.1\n", "\"192.0.2.1\\n\" is not an address"));
	CHECK(addr_rejects("\x01\x7f", "\"\\x01\\x7f\" is not an address"));
	CHECK(addr_rejects("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\xe2\x80\xa6\" is not"));
}

static void
test_addr(void)
{
	CHECK(addr_gives("192.0.2.1", 53, AF_INET, 53, "192.0.2.1:53"));
	CHECK(addr_gives("192.0.2.1", 5300, AF_INET, 5300, "192.0.2.1:5300"));
	CHECK(addr_gives("127.0.0.1:5300", 53, AF_INET, 5300, "127.0.0.1:5300"));
	CHECK(addr_gives("192.0.2.1:1", 53, AF_INET, 1, "192.0.2.1:1"));
	CHECK(addr_gives("192.0.2.1:65535", 53, AF_INET, 65535, "192.0.2.1:65535"));
	CHECK(addr_gives("[2001:db8::1]:5353", 53, AF_INET6, 5353, "[2001:db8::1]:5353"));
	CHECK(addr_gives("[2001:DB8:0::1]", 53, AF_INET6, 53, "[2001:db8::1]:53"));
	CHECK(addr_gives("::1", 53, AF_INET6, 53, "[::1]:53"));
	/* without brackets every colon belongs to the address: this is an IPv6 address, port 53 */
	CHECK(addr_gives("2001:db8::1:53", 53, AF_INET6, 53, "[2001:db8::1:53]:53"));
	CHECK(addr_gives("::ffff:192.0.2.1", 53, AF_INET6, 53, "[::ffff:192.0.2.1]:53"));
}

/* ---- a scripted DNS server ---- */

enum fake_mode {
	FAKE_ANSWER,        /* authoritative answers from fake_txt; SOA a.example for the zone */
	FAKE_NOAA,          /* the same without the AA flag */
	FAKE_REFUSED,
	FAKE_SERVFAIL,
	FAKE_SILENT,        /* never answers */
	FAKE_TRUNC,         /* UDP: TC and no records; TCP: the whole answer */
	FAKE_STRAY,         /* first an answer with another id, then the real one */
	FAKE_LOSSY,         /* UDP: a question is lost the first time its id comes, answered the next */
};

static _Atomic int fake_mode;
static _Atomic int fake_udp_queries, fake_tcp_queries, fake_rd_queries;
static _Atomic int fake_last_port, fake_port_changes; /* the UDP source port of the last question, changes of it */
static _Atomic bool fake_stop;
static const char *fake_txt[4];   /* presentation-form rdata of the TXT records at any TXT name */
static pthread_mutex_t fake_lock = PTHREAD_MUTEX_INITIALIZER; /* over fake_txt */
static int fake_udp = -1, fake_tcp = -1, fake_port;
static pthread_t fake_thread;
static bool fake_seen[65536];     /* FAKE_LOSSY: ids that came once (the server thread's) */

/* Sets the TXT records the server has (up to three; NULL ends the list). */
static void
fake_set_txt(const char *t0, const char *t1, const char *t2)
{
	pthread_mutex_lock(&fake_lock);
	fake_txt[0] = t0;
	fake_txt[1] = t0 ? t1 : NULL;
	fake_txt[2] = t0 && t1 ? t2 : NULL;
	fake_txt[3] = NULL;
	pthread_mutex_unlock(&fake_lock);
}

/* The answer to query (qlen octets) in the current mode; NULL for none. */
static uint8_t *
fake_answer(const uint8_t *query, size_t qlen, bool tcp, size_t *alen)
{
	ldns_pkt *q = NULL, *a = NULL;
	ldns_rr *rr = NULL;
	uint8_t *wire = NULL;
	char text[600];
	int mode = fake_mode;
	const char *txt[4];

	pthread_mutex_lock(&fake_lock);
	memcpy(txt, fake_txt, sizeof(txt));
	pthread_mutex_unlock(&fake_lock);

	if (mode == FAKE_SILENT || ldns_wire2pkt(&q, query, qlen) != LDNS_STATUS_OK || ldns_pkt_qdcount(q) != 1)
		goto out;
	if (ldns_pkt_rd(q))
		fake_rd_queries++;
	const ldns_rr *question = ldns_rr_list_rr(ldns_pkt_question(q), 0);
	char *qname = ldns_rdf2str(ldns_rr_owner(question));
	ldns_rr_type qtype = ldns_rr_get_type(question);
	a = ldns_pkt_new();
	ldns_pkt_set_id(a, ldns_pkt_id(q));
	ldns_pkt_set_qr(a, true);
	ldns_pkt_set_aa(a, mode != FAKE_NOAA);
	ldns_pkt_push_rr(a, LDNS_SECTION_QUESTION, ldns_rr_clone(question));
	if (mode == FAKE_REFUSED || mode == FAKE_SERVFAIL) {
		ldns_pkt_set_rcode(a, mode == FAKE_REFUSED ? LDNS_RCODE_REFUSED : LDNS_RCODE_SERVFAIL);
	} else if (mode == FAKE_TRUNC && !tcp) {
		ldns_pkt_set_tc(a, true);
	} else if (qtype == LDNS_RR_TYPE_SOA || txt[0] == NULL || strncasecmp(qname, "_validation-persist.none.", 25) == 0) {
		/* a.example. is the zone; below it nothing but TXT records exists */
		snprintf(text, sizeof(text), "a.example. 300 IN SOA ns1.a.example. h.a.example. 1 2 3 4 5");
		bool apex = qtype == LDNS_RR_TYPE_SOA && strcasecmp(qname, "a.example.") == 0;
		if (ldns_rr_new_frm_str(&rr, text, 0, NULL, NULL) == LDNS_STATUS_OK)
			ldns_pkt_push_rr(a, apex ? LDNS_SECTION_ANSWER : LDNS_SECTION_AUTHORITY, rr);
		if (!apex && (txt[0] == NULL || qtype == LDNS_RR_TYPE_TXT))
			ldns_pkt_set_rcode(a, LDNS_RCODE_NXDOMAIN);
	} else if (qtype == LDNS_RR_TYPE_TXT) {
		for (int i = 0; i < 4 && txt[i]; i++) {
			snprintf(text, sizeof(text), "%s 300 IN TXT %s", qname, txt[i]);
			if (ldns_rr_new_frm_str(&rr, text, 0, NULL, NULL) == LDNS_STATUS_OK)
				ldns_pkt_push_rr(a, LDNS_SECTION_ANSWER, rr);
		}
	}
	free(qname);
	if (ldns_pkt2wire(&wire, a, alen) != LDNS_STATUS_OK)
		wire = NULL;
out:
	ldns_pkt_free(q);
	ldns_pkt_free(a);
	return wire;
}

static void
fake_serve_tcp(int fd)
{
	uint8_t buf[4096], lenbuf[2];
	struct pollfd p = { .fd = fd, .events = POLLIN };
	size_t got = 0, want = 2, alen = 0;
	uint8_t *answer = NULL;

	/* one query per connection; 2 s to send it */
	while (got < want && poll(&p, 1, 2000) == 1) {
		ssize_t n = recv(fd, buf + got, want - got, 0);
		if (n <= 0)
			return;
		got += (size_t)n;
		if (got == 2 && want == 2)
			want = 2 + ((size_t)buf[0] << 8 | buf[1]);
		if (want > sizeof(buf))
			return;
	}
	if (got < want)
		return;
	fake_tcp_queries++;
	if ((answer = fake_answer(buf + 2, want - 2, true, &alen)) != NULL) {
		lenbuf[0] = (uint8_t)(alen >> 8);
		lenbuf[1] = (uint8_t)alen;
		if (send(fd, lenbuf, 2, MSG_NOSIGNAL) == 2)
			(void)!send(fd, answer, alen, MSG_NOSIGNAL);
	}
	free(answer);
}

static void *
fake_main(void *arg)
{
	struct pollfd p[2] = { { .fd = fake_udp, .events = POLLIN }, { .fd = fake_tcp, .events = POLLIN } };
	uint8_t buf[4096];

	(void)arg;
	while (!fake_stop) {
		if (poll(p, 2, 50) <= 0)
			continue;
		if (p[0].revents & POLLIN) {
			struct sockaddr_storage from;
			socklen_t flen = sizeof(from);
			ssize_t n = recvfrom(fake_udp, buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen);
			size_t alen = 0;
			uint8_t *answer;
			if (n <= 0)
				continue;
			fake_udp_queries++;
			if (fake_mode == FAKE_LOSSY && n >= 2 && !fake_seen[buf[0] << 8 | buf[1]]) {
				fake_seen[buf[0] << 8 | buf[1]] = true;
				continue;
			}
			int port = ntohs(((struct sockaddr_in *)&from)->sin_port);
			if (port != fake_last_port) {
				fake_last_port = port;
				fake_port_changes++;
			}
			if ((answer = fake_answer(buf, (size_t)n, false, &alen)) == NULL)
				continue;
			if (fake_mode == FAKE_STRAY) {
				answer[1] ^= 0x5a;
				(void)!sendto(fake_udp, answer, alen, 0, (struct sockaddr *)&from, flen);
				answer[1] ^= 0x5a;
			}
			(void)!sendto(fake_udp, answer, alen, 0, (struct sockaddr *)&from, flen);
			free(answer);
		}
		if (p[1].revents & POLLIN) {
			int c = accept(fake_tcp, NULL, NULL);
			if (c >= 0) {
				fake_serve_tcp(c);
				close(c);
			}
		}
	}
	return NULL;
}

/* Starts the server on one free port, UDP and TCP. */
static bool
fake_start(void)
{
	for (int tries = 0; tries < 50; tries++) {
		struct sockaddr_in sa = { .sin_family = AF_INET };
		socklen_t len = sizeof(sa);
		int one = 1;

		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		fake_udp = socket(AF_INET, SOCK_DGRAM, 0);
		fake_tcp = socket(AF_INET, SOCK_STREAM, 0);
		setsockopt(fake_tcp, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (fake_udp >= 0 && fake_tcp >= 0 && bind(fake_udp, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
		    getsockname(fake_udp, (struct sockaddr *)&sa, &len) == 0 &&
		    bind(fake_tcp, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(fake_tcp, 8) == 0) {
			fake_port = ntohs(sa.sin_port);
			return pthread_create(&fake_thread, NULL, fake_main, NULL) == 0;
		}
		close(fake_udp);
		close(fake_tcp);
	}
	return false;
}

static void
fake_end(void)
{
	fake_stop = true;
	pthread_join(fake_thread, NULL);
	close(fake_udp);
	close(fake_tcp);
}

/* A configuration that asks the fake server directly, with short timeouts. */
static void
fake_config(struct dnsauth_config *cfg, char *server, size_t len)
{
	dnsauth_config_default(cfg);
	snprintf(server, len, "127.0.0.1:%d", fake_port);
	cfg->servers = calloc(1, sizeof(char *));
	cfg->servers[0] = strdup(server);
	cfg->nservers = 1;
	cfg->timeout_ms = 300;
}

/* dnsauth_check of value at _validation-persist.x.a.example in mode, with its why. */
static enum dnsauth_result
fake_check(int mode, const char *value, char *why, size_t whylen)
{
	struct dnsauth_config cfg;
	char server[64];
	enum dnsauth_result r;

	fake_mode = mode;
	fake_config(&cfg, server, sizeof(server));
	r = dnsauth_check(&cfg, "_validation-persist.x.a.example", value, why, whylen);
	dnsauth_config_clear(&cfg);
	return r;
}

static void
test_check_errors(void)
{
	char why[512], want[128];
	int64_t t0;

	fake_set_txt("\"v1\"", NULL, NULL);
	/* a name that is no name never reaches the network */
	CHECK(dnsauth_check(&(struct dnsauth_config){ .timeout_ms = 100 }, "a..example", "v", why, sizeof(why)) ==
	    DNSAUTH_ERROR);
	CHECK(check_says(why, "\"a..example\" is not a domain name"));
	CHECK(dnsauth_check(&(struct dnsauth_config){ .timeout_ms = 100 }, "", "v", NULL, 0) == DNSAUTH_ERROR);

	t0 = cf_mono_ms();
	CHECK(fake_check(FAKE_SILENT, "v1", why, sizeof(why)) == DNSAUTH_ERROR);
	snprintf(want, sizeof(want), "127.0.0.1:%d: query TXT _validation-persist.x.a.example: timed out after 300 ms (UDP, sent twice)",
	    fake_port);
	CHECK(check_says(why, want));
	CHECK(cf_mono_ms() - t0 >= 290 && cf_mono_ms() - t0 < 2000);

	CHECK(fake_check(FAKE_REFUSED, "v1", why, sizeof(why)) == DNSAUTH_ERROR);
	snprintf(want, sizeof(want), "127.0.0.1:%d answered REFUSED to TXT _validation-persist.x.a.example", fake_port);
	CHECK(check_says(why, want));
	CHECK(fake_check(FAKE_SERVFAIL, "v1", why, sizeof(why)) == DNSAUTH_ERROR);
	CHECK(check_says(why, "answered SERVFAIL"));
	/* the value is there, but from a server that does not say it is authoritative */
	CHECK(fake_check(FAKE_NOAA, "v1", why, sizeof(why)) == DNSAUTH_ERROR);
	CHECK(check_says(why, "is not authoritative for _validation-persist.x.a.example (its NOERROR answer lacks the AA flag)"));

	/* nothing listens: UDP says connection refused at once */
	struct dnsauth_config cfg;
	char *closed = "127.0.0.1:1";
	dnsauth_config_default(&cfg);
	cfg.servers = &closed;
	cfg.nservers = 1;
	cfg.timeout_ms = 300;
	CHECK(dnsauth_check(&cfg, "_validation-persist.x.a.example", "v1", why, sizeof(why)) == DNSAUTH_ERROR);
	CHECK(check_says(why, "127.0.0.1:1: query TXT _validation-persist.x.a.example:"));
}

static void
test_check(void)
{
	char why[512], want[160];
	int udp0, tcp0;

	/* RD is never set on a question to an authoritative server */
	fake_rd_queries = 0;
	fake_set_txt("\"v1\"", "\"other\"", NULL);
	CHECK(fake_check(FAKE_ANSWER, "v1", why, sizeof(why)) == DNSAUTH_PRESENT);
	CHECK(fake_check(FAKE_ANSWER, "other", why, sizeof(why)) == DNSAUTH_PRESENT);
	CHECK(fake_check(FAKE_ANSWER, "v", why, sizeof(why)) == DNSAUTH_ABSENT);
	snprintf(want, sizeof(want), "127.0.0.1:%d has no TXT \"v\" at _validation-persist.x.a.example (2 other TXT values)",
	    fake_port);
	CHECK(check_says(why, want));
	CHECK(fake_rd_queries == 0);

	/* the character-strings of one record are joined; each record is compared whole */
	fake_set_txt("\"letsencrypt.org; accounturi=https://ca.example/acct/1\" \"; policy=wildcard\"", NULL, NULL);
	CHECK(fake_check(FAKE_ANSWER, "letsencrypt.org; accounturi=https://ca.example/acct/1; policy=wildcard", why,
	    sizeof(why)) == DNSAUTH_PRESENT);
	CHECK(fake_check(FAKE_ANSWER, "letsencrypt.org; accounturi=https://ca.example/acct/1", why, sizeof(why)) ==
	    DNSAUTH_ABSENT);
	CHECK(check_says(why, "(1 other TXT value)"));
	/* a value with a quote is shown escaped */
	CHECK(fake_check(FAKE_ANSWER, "a\"b", why, sizeof(why)) == DNSAUTH_ABSENT);
	CHECK(check_says(why, "has no TXT \"a\\\"b\" at"));

	/* no record at all */
	fake_set_txt(NULL, NULL, NULL);
	CHECK(fake_check(FAKE_ANSWER, "v1", why, sizeof(why)) == DNSAUTH_ABSENT);
	snprintf(want, sizeof(want), "127.0.0.1:%d has no TXT \"v1\" at _validation-persist.x.a.example (NXDOMAIN)",
	    fake_port);
	CHECK(check_says(why, want));

	/* truncated over UDP: asked again over TCP */
	fake_set_txt("\"v1\"", NULL, NULL);
	udp0 = fake_udp_queries;
	tcp0 = fake_tcp_queries;
	CHECK(fake_check(FAKE_TRUNC, "v1", why, sizeof(why)) == DNSAUTH_PRESENT);
	CHECK(fake_udp_queries - udp0 == 1);
	CHECK(fake_tcp_queries - tcp0 == 1);

	/* an answer with another id is not taken for the answer */
	CHECK(fake_check(FAKE_STRAY, "v1", why, sizeof(why)) == DNSAUTH_PRESENT);
	fake_set_txt("\"other\"", NULL, NULL);
	CHECK(fake_check(FAKE_STRAY, "v1", why, sizeof(why)) == DNSAUTH_ABSENT);
}

/* A UDP socket on 127.0.0.1 that never answers; *port gets its port. */
static int
silent_socket(int *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	*port = ntohs(sa.sin_port);
	return fd;
}

/* Datagrams waiting on fd, read away. */
static int
drain(int fd)
{
	uint8_t buf[4096];
	int n = 0;

	while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		n++;
	return n;
}

#define POLICY_VALUE "letsencrypt.org; accounturi=https://ca.example/acct/1; policy=wildcard"

static void
test_check_many_errors(void)
{
	struct dnsauth_config cfg;
	char server[64], w0[128], w1[128];
	char *whys[2] = { w0, w1 };
	const char *fqdns[2] = { "a..example", "_validation-persist.x.a.example" }, *values[2] = { "v1", "v1" };
	enum dnsauth_result res[2] = { DNSAUTH_PRESENT, DNSAUTH_PRESENT };
	int udp0 = fake_udp_queries;

	/* no records: nothing asked, nothing written */
	fake_mode = FAKE_ANSWER;
	fake_set_txt("\"v1\"", NULL, NULL);
	fake_config(&cfg, server, sizeof(server));
	dnsauth_check_many(&cfg, 0, fqdns, values, res, whys, sizeof(w0));
	CHECK(res[0] == DNSAUTH_PRESENT && fake_udp_queries == udp0);
	/* a bad name fails alone; whys may be NULL */
	dnsauth_check_many(&cfg, 2, fqdns, values, res, whys, sizeof(w0));
	CHECK(res[0] == DNSAUTH_ERROR && res[1] == DNSAUTH_PRESENT);
	CHECK(check_says(w0, "\"a..example\" is not a domain name"));
	CHECK_STR(w1, "");
	CHECK(fake_udp_queries - udp0 == 1);
	dnsauth_check_many(&cfg, 2, fqdns, values, res, NULL, 0);
	CHECK(res[0] == DNSAUTH_ERROR && res[1] == DNSAUTH_PRESENT);
	/* a why too short for the reason is cut, not overrun */
	fqdns[1] = "_validation-persist.none.a.example";
	dnsauth_check_many(&cfg, 2, fqdns, values, res, whys, 8);
	CHECK(res[1] == DNSAUTH_ABSENT && strlen(w1) == 7);
	dnsauth_config_clear(&cfg);
}

/* One batch: every kind of answer, one socket, one question per record. */
static void
test_check_many(void)
{
	enum { N = 6 };
	struct dnsauth_config cfg;
	char server[64], why[N][512], want[200];
	char *whys[N];
	const char *fqdns[N] = {
		"_validation-persist.p.a.example",     /* present */
		"_validation-persist.q.a.example",     /* another value there */
		"_validation-persist.none.a.example",  /* nothing there */
		"_validation-persist.w.a.example",     /* the wildcard policy value, in two strings */
		"_validation-persist.P.A.example.",    /* present, name in other case, absolute */
		"_validation-persist.r.a.example",     /* a prefix of a value there is not the value */
	};
	const char *values[N] = { "v1", "v2", "v1", POLICY_VALUE, "v1", "letsencrypt.org; accounturi=https://ca.example/acct/1" };
	enum dnsauth_result res[N];
	int udp0, tcp0, changes0;

	for (int i = 0; i < N; i++)
		whys[i] = why[i];
	fake_mode = FAKE_ANSWER;
	fake_set_txt("\"v1\"", "\"letsencrypt.org; accounturi=https://ca.example/acct/1\" \"; policy=wildcard\"", NULL);
	fake_config(&cfg, server, sizeof(server));
	udp0 = fake_udp_queries;
	changes0 = fake_port_changes;
	dnsauth_check_many(&cfg, N, fqdns, values, res, whys, sizeof(why[0]));
	CHECK(res[0] == DNSAUTH_PRESENT && res[3] == DNSAUTH_PRESENT && res[4] == DNSAUTH_PRESENT);
	CHECK_STR(why[0], "");
	CHECK(res[1] == DNSAUTH_ABSENT);
	snprintf(want, sizeof(want), "127.0.0.1:%d has no TXT \"v2\" at _validation-persist.q.a.example (2 other TXT values)",
	    fake_port);
	CHECK(check_says(why[1], want));
	CHECK(res[2] == DNSAUTH_ABSENT);
	CHECK(check_says(why[2], "has no TXT \"v1\" at _validation-persist.none.a.example (NXDOMAIN)"));
	CHECK(res[5] == DNSAUTH_ABSENT && check_says(why[5], "(2 other TXT values)"));
	/* one question per record, all from one socket (one source port) */
	CHECK(fake_udp_queries - udp0 == N);
	CHECK(fake_port_changes - changes0 <= 1);

	/* the same answers, one dnsauth_check at a time */
	for (int i = 0; i < N; i++) {
		char one[512];
		CHECK(dnsauth_check(&cfg, fqdns[i], values[i], one, sizeof(one)) == res[i]);
		CHECK_STR(one, why[i]);
	}

	/* truncated answers: each record asked again over TCP, alone */
	udp0 = fake_udp_queries;
	tcp0 = fake_tcp_queries;
	fake_mode = FAKE_TRUNC;
	dnsauth_check_many(&cfg, N, fqdns, values, res, whys, sizeof(why[0]));
	CHECK(res[0] == DNSAUTH_PRESENT && res[1] == DNSAUTH_ABSENT && res[2] == DNSAUTH_ABSENT && res[3] == DNSAUTH_PRESENT);
	CHECK(fake_udp_queries - udp0 == N && fake_tcp_queries - tcp0 == N);

	/* answers under other ids come first: each record still gets its own answer */
	fake_mode = FAKE_STRAY;
	dnsauth_check_many(&cfg, N, fqdns, values, res, whys, sizeof(why[0]));
	CHECK(res[0] == DNSAUTH_PRESENT && res[1] == DNSAUTH_ABSENT && res[2] == DNSAUTH_ABSENT && res[3] == DNSAUTH_PRESENT &&
	    res[4] == DNSAUTH_PRESENT && res[5] == DNSAUTH_ABSENT);

	/* every question lost once: each is sent again halfway to the timeout and answered then */
	memset(fake_seen, 0, sizeof(fake_seen));
	udp0 = fake_udp_queries;
	fake_mode = FAKE_LOSSY;
	int64_t t0 = cf_mono_ms();
	dnsauth_check_many(&cfg, N, fqdns, values, res, whys, sizeof(why[0]));
	CHECK(cf_mono_ms() - t0 >= 140 && cf_mono_ms() - t0 < 300);
	CHECK(res[0] == DNSAUTH_PRESENT && res[1] == DNSAUTH_ABSENT && res[2] == DNSAUTH_ABSENT && res[3] == DNSAUTH_PRESENT &&
	    res[4] == DNSAUTH_PRESENT && res[5] == DNSAUTH_ABSENT);
	CHECK(fake_udp_queries - udp0 == 2 * N);

	/* answers without AA count only when require_aa is false */
	fake_mode = FAKE_NOAA;
	dnsauth_check_many(&cfg, N, fqdns, values, res, whys, sizeof(why[0]));
	CHECK(res[0] == DNSAUTH_ERROR && check_says(why[0], "lacks the AA flag"));
	cfg.require_aa = false;
	dnsauth_check_many(&cfg, N, fqdns, values, res, whys, sizeof(why[0]));
	CHECK(res[0] == DNSAUTH_PRESENT && res[1] == DNSAUTH_ABSENT);
	dnsauth_config_clear(&cfg);
}

/*
 * Two servers, the second silent: the records the first has are asked of the second and fail
 * naming it, each question sent twice, the whole batch in one timeout; the records the first
 * lacks are absent without asking the second.
 */
static void
test_check_many_silent(void)
{
	enum { N = 40 };
	struct dnsauth_config cfg;
	char server[64], silent[64], fq[N][64], why[N][512], want[200];
	char *whys[N];
	const char *fqdns[N], *values[N];
	enum dnsauth_result res[N];
	int port, fd = silent_socket(&port);
	int64_t t0;

	CHECK(fd >= 0);
	if (fd < 0)
		return;
	for (int i = 0; i < N; i++) {
		snprintf(fq[i], sizeof(fq[i]), "_validation-persist.%s%d.a.example", i % 2 ? "none." : "h", i);
		fqdns[i] = fq[i];
		values[i] = "v1";
		whys[i] = why[i];
	}
	fake_mode = FAKE_ANSWER;
	fake_set_txt("\"v1\"", NULL, NULL);
	fake_config(&cfg, server, sizeof(server));
	snprintf(silent, sizeof(silent), "127.0.0.1:%d", port);
	cfg.servers = realloc(cfg.servers, 2 * sizeof(char *));
	cfg.servers[1] = strdup(silent);
	cfg.nservers = 2;
	t0 = cf_mono_ms();
	dnsauth_check_many(&cfg, N, fqdns, values, res, whys, sizeof(why[0]));
	CHECK(cf_mono_ms() - t0 >= 290 && cf_mono_ms() - t0 < 1500);
	for (int i = 0; i < N; i++) {
		if (i % 2) {
			CHECK(res[i] == DNSAUTH_ABSENT && check_says(why[i], "(NXDOMAIN)"));
		} else {
			CHECK(res[i] == DNSAUTH_ERROR);
			snprintf(want, sizeof(want), "%s: query TXT %s: timed out after 300 ms (UDP, sent twice)", silent, fq[i]);
			CHECK(check_says(why[i], want));
		}
	}
	CHECK(drain(fd) == N); /* N / 2 questions, each twice */
	close(fd);
	dnsauth_config_clear(&cfg);
}

/* More records than one socket carries at once (1024): every one answered, in two exchanges. */
static void
test_check_many_large(void)
{
	enum { N = 1500 };
	struct dnsauth_config cfg;
	char server[64];
	char (*fq)[64] = calloc(N, sizeof(*fq));
	const char **fqdns = calloc(N, sizeof(*fqdns)), **values = calloc(N, sizeof(*values));
	enum dnsauth_result *res = calloc(N, sizeof(*res));
	int udp0 = fake_udp_queries, present = 0, absent = 0;

	for (int i = 0; i < N; i++) {
		snprintf(fq[i], sizeof(fq[i]), "_validation-persist.%s%d.a.example", i % 3 ? "h" : "none.", i);
		fqdns[i] = fq[i];
		values[i] = "v1";
	}
	fake_mode = FAKE_ANSWER;
	fake_set_txt("\"v1\"", NULL, NULL);
	fake_config(&cfg, server, sizeof(server));
	cfg.timeout_ms = 2000;
	dnsauth_check_many(&cfg, N, fqdns, values, res, NULL, 0);
	for (int i = 0; i < N; i++) {
		present += res[i] == DNSAUTH_PRESENT && i % 3;
		absent += res[i] == DNSAUTH_ABSENT && i % 3 == 0;
	}
	CHECK(present == N - N / 3 && absent == N / 3);
	CHECK(fake_udp_queries - udp0 >= N); /* lost ones are sent again */
	dnsauth_config_clear(&cfg);
	free(fq);
	free(fqdns);
	free(values);
	free(res);
}

/* dnsauth_zone through servers: the SOA's owner, from the answer or from a negative answer. */
static void
test_zone(void)
{
	struct dnsauth_config cfg;
	char server[64], zone[256], small[4];
	cf_err e = { "" };

	fake_mode = FAKE_ANSWER;
	fake_set_txt(NULL, NULL, NULL);
	fake_config(&cfg, server, sizeof(server));
	CHECK(dnsauth_zone(&cfg, "_validation-persist.x.a.example", zone, sizeof(zone), &e) == 0);
	CHECK_STR(zone, "a.example");
	CHECK(dnsauth_zone(&cfg, "A.Example.", zone, sizeof(zone), &e) == 0);
	CHECK_STR(zone, "a.example");
	CHECK(dnsauth_zone(&cfg, "_validation-persist.x.a.example", small, sizeof(small), &e) == -1);
	CHECK(check_says(e.msg, "does not fit in 4 octets"));
	CHECK(dnsauth_zone(&cfg, "a..example", zone, sizeof(zone), &e) == -1);
	CHECK(check_says(e.msg, "\"a..example\" is not a domain name"));
	fake_mode = FAKE_REFUSED;
	CHECK(dnsauth_zone(&cfg, "_validation-persist.x.a.example", zone, sizeof(zone), &e) == -1);
	CHECK(check_says(e.msg, "dnsauth zone of _validation-persist.x.a.example: "));
	CHECK(check_says(e.msg, "answered REFUSED"));
	dnsauth_config_clear(&cfg);
}

/* Several threads check at once (the pool does): each gets its own answer. */
struct racer {
	const char *value;
	int present, absent, error;
};

static void *
race(void *arg)
{
	struct racer *r = arg;
	struct dnsauth_config cfg;
	char server[64], why[512];

	fake_config(&cfg, server, sizeof(server));
	cfg.timeout_ms = 2000;
	for (int i = 0; i < 20; i++) {
		switch (dnsauth_check(&cfg, "_validation-persist.x.a.example", r->value, why, sizeof(why))) {
		case DNSAUTH_PRESENT: r->present++; break;
		case DNSAUTH_ABSENT: r->absent++; break;
		case DNSAUTH_ERROR: r->error++; fprintf(stderr, "  %s\n", why); break;
		}
	}
	dnsauth_config_clear(&cfg);
	return NULL;
}

static void
test_threads(void)
{
	struct racer r[4] = { { "v1", 0, 0, 0 }, { "v2", 0, 0, 0 }, { "v3", 0, 0, 0 }, { "v4", 0, 0, 0 } };
	pthread_t t[4];

	fake_mode = FAKE_ANSWER;
	fake_set_txt("\"v1\"", "\"v3\"", NULL);
	for (int i = 0; i < 4; i++)
		CHECK(pthread_create(&t[i], NULL, race, &r[i]) == 0);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	CHECK(r[0].present == 20 && r[2].present == 20);
	CHECK(r[1].absent == 20 && r[3].absent == 20);
	CHECK(r[0].error + r[1].error + r[2].error + r[3].error == 0);
}

int
main(void)
{
	RUN(test_config_errors);
	RUN(test_config_defaults);
	RUN(test_config_parse);
	RUN(test_addr_errors);
	RUN(test_addr);
	if (!fake_start()) {
		printf("not ok - start the scripted DNS server on 127.0.0.1: %s\n", strerror(errno));
		return 1;
	}
	RUN(test_check_errors);
	RUN(test_check);
	RUN(test_check_many_errors);
	RUN(test_check_many);
	RUN(test_check_many_silent);
	RUN(test_check_many_large);
	RUN(test_zone);
	RUN(test_threads);
	fake_end();
	return CHECK_DONE();
}
