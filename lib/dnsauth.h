/*
 * dnsauth.h - confirming a TXT record at a zone's authoritative servers, not at a recursive cache:
 * find the zone (SOA), its name servers (NS) and their addresses through a resolver, then ask
 * every one of them directly, without recursion, and accept only authoritative answers. Built on
 * ldns. The calls block; workers run them on a blockpool.
 */
#ifndef CF_DNSAUTH_H
#define CF_DNSAUTH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cf.h"

struct dnsauth_config {
	bool enabled;              /* false: records are not checked before the challenge */
	char **servers;            /* "servers": "ip", "ip:port" or "[v6]:port" asked as the
	                            * authoritative servers of every zone (hidden primaries, test
	                            * stacks); none = found from SOA/NS */
	size_t nservers;
	char *resolver;            /* "resolver": "ip[:port]" used to find SOA, NS and addresses;
	                            * NULL = the system's (/etc/resolv.conf) */
	int ns_port;               /* "ns_port": port of discovered name servers [53] */
	int64_t deadline_ms;       /* "deadline" (seconds): stop waiting for a record [600 s] */
	int64_t interval_ms;       /* "interval" (seconds, decimal): first re-check [0.5 s], doubling */
	int64_t max_interval_ms;   /* "max_interval" (seconds): cap of the re-check interval [30 s] */
	int64_t timeout_ms;        /* "timeout" (seconds, decimal): one query [2 s] */
	bool require_aa;           /* "require_aa": only answers with the AA flag count [true]; false
	                            * for configured servers that answer without it (test servers) */
};

/* The defaults above, enabled. */
void dnsauth_config_default(struct dnsauth_config *cfg);

/*
 * Reads a "verify" JSON object over cfg (keys above, plus "enabled": bool); unknown keys and bad
 * values are errors naming the key and what (the account) says. obj NULL leaves cfg as it is.
 */
int dnsauth_config_parse(struct dnsauth_config *cfg, const json_t *obj, const char *what, cf_err *err) CF_MUST;

/* Deep copy (dst is overwritten) and release of the strings a config owns. */
int dnsauth_config_copy(struct dnsauth_config *dst, const struct dnsauth_config *src) CF_MUST;
void dnsauth_config_clear(struct dnsauth_config *cfg);

enum dnsauth_result {
	DNSAUTH_PRESENT = 0,       /* every authoritative server answered with value at fqdn */
	DNSAUTH_ABSENT = 1,        /* at least one answered authoritatively without it: not yet */
	DNSAUTH_ERROR = -1,        /* no answer could be had (timeout, refused, SERVFAIL, no zone) */
};

/*
 * Asks each authoritative server of fqdn's zone for the TXT RRset at fqdn (case-insensitive name,
 * values compared after joining the character-strings of each TXT record). why (may be NULL)
 * receives the reason when the result is not DNSAUTH_PRESENT, naming the server and fqdn:
 * "127.0.0.1:5300 has no TXT \"...\" at _validation-persist.a.example (NXDOMAIN)".
 * The servers are cfg->servers, else every address (A and AAAA, port ns_port) of every NS of
 * the zone, found through the resolver: the zone is the owner of the SOA at fqdn or above it.
 * Each is asked over UDP without recursion (TCP when truncated) and must answer with the AA flag.
 * The first server that answers without the value makes the result DNSAUTH_ABSENT at once.
 * Known limits: an address this host has no route to (IPv6 on an IPv4-only host) is skipped when
 * another server answered; a CNAME at fqdn is not followed (the record counts as absent); at most
 * 32 addresses are asked. Thread-safe (no shared state). Blocking: at most about
 * (servers + discovery queries) x timeout. A batch of one of dnsauth_check_many.
 */
enum dnsauth_result dnsauth_check(const struct dnsauth_config *cfg, const char *fqdn, const char *value,
    char *why, size_t whylen);

/*
 * dnsauth_check for n records at once: results[i] and whys[i] (whylen octets each; whys or an
 * element may be NULL; "" when present) are what dnsauth_check would give for fqdns[i] and
 * values[i]. The records are meant to share a zone (a provider call's): its servers are found
 * once, from the first record, for every record at or below that zone (a record outside it starts
 * a group of its own; a delegation below the zone is not noticed: its records would be asked at
 * the parent's servers). Each server is asked all the group's questions over one UDP socket,
 * pipelined: every question is sent, answers are matched by id and question, the unanswered
 * ones are sent once more halfway to cfg->timeout_ms, and a truncated answer is asked again over
 * TCP for that record alone. A record one server lacks is not asked of the next. Blocking: about
 * (servers + discovery queries) x timeout, whatever n.
 */
void dnsauth_check_many(const struct dnsauth_config *cfg, size_t n, const char *const *fqdns,
    const char *const *values, enum dnsauth_result *results, char *const *whys, size_t whylen);

/*
 * The zone that holds fqdn (the owner of the closest SOA, lower case, no trailing dot), found
 * through the resolver, or through the configured servers when cfg has some. Blocking.
 */
int dnsauth_zone(const struct dnsauth_config *cfg, const char *fqdn, char *zone, size_t zonelen, cf_err *err) CF_MUST;

/* ---- the transport, shared with the RFC 2136 provider ---- */

/* A DNS server's address. */
struct dnsauth_addr {
	int family;                /* AF_INET or AF_INET6 */
	unsigned char ip[16];      /* network order; the first 4 octets for AF_INET */
	int port;
	char text[64];             /* "192.0.2.53:53", "[2001:db8::53]:53": for messages */
};

/*
 * Parses "ip", "ip:port" or "[v6]:port"; a bare IPv6 address takes default_port. Host names are
 * refused: the servers that confirm a record must not depend on the resolver being checked.
 * -1 with err quoting s and saying what is wrong.
 */
int dnsauth_addr_parse(const char *s, int default_port, struct dnsauth_addr *a, cf_err *err) CF_MUST;

/*
 * One DNS exchange with a: sends the wire-format message msg (len octets) and returns the first
 * answer that carries msg's id and the QR bit, malloc'd in *answer. Over UDP from a connected
 * socket (answers from other addresses never arrive), again over TCP when the answer is
 * truncated; tcp=true goes straight to TCP (large messages, updates). timeout_ms bounds each
 * attempt. -1 with err saying why ("timed out after 2000 ms (UDP)", "connection refused (TCP)")
 * without naming a, which the caller does.
 */
int dnsauth_exchange(const struct dnsauth_addr *a, const uint8_t *msg, size_t len, bool tcp,
    int64_t timeout_ms, uint8_t **answer, size_t *answerlen, cf_err *err) CF_MUST;

#endif
