/*
 * rfc2136.c - the provider for DNS servers that take dynamic updates (RFC 2136) signed with TSIG
 * (RFC 8945): BIND, Knot, PowerDNS, NSD behind a signer... the operator's own primary.
 *
 * Settings: "server" ("ip[:port]", required: the primary that accepts updates), "tsig_name"
 * (required), "tsig_algorithm" [hmac-sha256], the key's base64 secret as "tsig_secret",
 * "tsig_secret_file" or "tsig_secret_env" (never printed), "ttl" (seconds) [300], "timeout"
 * (seconds, decimal) [10].
 *
 * A call is one UPDATE message for its zone, sent over TCP: ensure adds each record (class IN),
 * remove deletes exactly each record (class NONE). Both are idempotent by RFC 2136 3.4.2: adding
 * an RR that exists changes nothing (but the TTL of its RRset), deleting one that does not exist
 * is no error, and other values at the same name are never touched. The whole message applies or
 * nothing does. A call whose message would exceed 65535 octets is sent as several messages
 * (halves, then halves of those), each of them atomic.
 *
 * Known limits: TSIG algorithms are those ldns 1.8 signs with (hmac-sha256, hmac-sha512,
 * hmac-sha1, hmac-md5); the answer's time signed is not checked against the clock, only its MAC.
 */
#include <jansson.h>
#include <ldns/ldns.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base64.h"
#include "dnsauth.h"
#include "provider.h"

#define R2_BATCH_MAX 1000
#define R2_DEFAULT_TTL 300
#define R2_DEFAULT_TIMEOUT_MS 10000
#define R2_FUDGE 300              /* seconds of clock difference the server may allow (RFC 8945 5.2.3) */
#define R2_MSG_MAX 65000          /* octets of an unsigned update: its TSIG must fit below 65535 */
#define R2_STRING_MAX 255         /* octets of one TXT character-string (RFC 1035 3.3) */

/* TSIG error codes (RFC 8945 section 5.3) carried in an answer's TSIG record. */
#define R2_TSIG_BADSIG 16
#define R2_TSIG_BADKEY 17
#define R2_TSIG_BADTIME 18
#define R2_TSIG_BADTRUNC 22

/* An account's parsed settings (acct->state). */
struct r2_state {
	struct dnsauth_addr server;
	char *key_name;             /* the TSIG key's name, as the server knows it */
	const char *algorithm;      /* its algorithm as ldns names it: "hmac-sha256." */
	const char *alg_shown;      /* as the operator writes it: "hmac-sha256" */
	char *secret;               /* base64; never printed */
	uint32_t ttl;
	int64_t timeout_ms;
};

static const struct {
	const char *name;
	const char *ldns;
} r2_algorithms[] = {
	{ "hmac-sha256", "hmac-sha256." },
	{ "hmac-sha512", "hmac-sha512." },
	{ "hmac-sha1", "hmac-sha1." },
	{ "hmac-md5", "hmac-md5.sig-alg.reg.int." },
	{ "hmac-md5.sig-alg.reg.int", "hmac-md5.sig-alg.reg.int." },
};

/* ---- settings ---- */

static void
r2_state_free(struct r2_state *st)
{
	if (st == NULL)
		return;
	cf_secret_free(st->secret);
	free(st->key_name);
	free(st);
}

/*
 * True when s is padded standard base64 (RFC 4648 section 4) of at least one octet, as BIND key
 * files hold it (ldns decodes nothing else).
 */
static bool
r2_base64_ok(const char *s)
{
	size_t n = strlen(s), pad = 0;

	while (pad < 2 && n > pad && s[n - 1 - pad] == '=')
		pad++;
	if (n < 4 || n % 4 != 0)
		return false;
	for (size_t i = 0; i < n - pad; i++)
		if (b64_digit((unsigned char)s[i], false) < 0)
			return false;
	return true;
}

/* Reads a number of seconds in (0, max_s] from key (absent: *ms unchanged). */
static int
r2_seconds(const struct provider_account *acct, const char *key, double max_s, int64_t *ms, cf_err *err)
{
	const json_t *v = json_object_get(acct->settings, key);
	double s = json_number_value(v);

	if (v == NULL)
		return 0;
	if (!json_is_number(v) || !(s > 0) || s > max_s || s * 1000 < 1) {
		cf_errf(err, "provider %s: \"%s\" must be a number of seconds above 0 and at most %g", acct->name, key, max_s);
		return -1;
	}
	*ms = (int64_t)(s * 1000 + 0.5);
	return 0;
}

static int
r2_open(struct provider_account *acct, cf_err *err)
{
	struct r2_state *st = calloc(1, sizeof(*st));
	const char *server = provider_setting(acct, "server"), *name = provider_setting(acct, "tsig_name");
	const char *alg = provider_setting(acct, "tsig_algorithm");
	const json_t *ttl = json_object_get(acct->settings, "ttl");
	ldns_rdf *dname = NULL;
	cf_err aerr;
	int rc = -1;

	if (st == NULL) {
		cf_errf(err, "provider %s: out of memory", acct->name);
		goto out;
	}
	st->ttl = R2_DEFAULT_TTL;
	st->timeout_ms = R2_DEFAULT_TIMEOUT_MS;
	if (server == NULL) {
		cf_errf(err, "provider %s: \"server\" is required, as a string: the address of the primary that "
		    "takes updates, \"ip\" or \"ip:port\" (\"[ipv6]:port\")", acct->name);
		goto out;
	}
	if (dnsauth_addr_parse(server, 53, &st->server, &aerr) != 0) {
		cf_errf(err, "provider %s: \"server\": %s", acct->name, aerr.msg);
		goto out;
	}
	if (name == NULL || name[0] == '\0') {
		cf_errf(err, "provider %s: \"tsig_name\" is required, as a string: the name of the TSIG key the "
		    "server knows", acct->name);
		goto out;
	}
	if (strlen(name) > 253 || ldns_str2rdf_dname(&dname, name) != LDNS_STATUS_OK) {
		cf_errf(err, "provider %s: \"tsig_name\" \"%.64s\" is not a DNS name", acct->name, name);
		goto out;
	}
	if ((st->key_name = strdup(name)) == NULL) {
		cf_errf(err, "provider %s: out of memory", acct->name);
		goto out;
	}
	if (alg == NULL && json_object_get(acct->settings, "tsig_algorithm") != NULL) {
		cf_errf(err, "provider %s: \"tsig_algorithm\" must be a string such as \"hmac-sha256\"", acct->name);
		goto out;
	}
	if (alg == NULL)
		alg = "hmac-sha256";
	for (size_t i = 0; i < sizeof(r2_algorithms) / sizeof(r2_algorithms[0]); i++) {
		size_t n = strlen(r2_algorithms[i].name);
		if (strncasecmp(alg, r2_algorithms[i].name, n) == 0 && (alg[n] == '\0' || strcmp(alg + n, ".") == 0)) {
			st->algorithm = r2_algorithms[i].ldns;
			st->alg_shown = r2_algorithms[i].name;
			break;
		}
	}
	if (st->algorithm == NULL) {
		cf_errf(err, "provider %s: \"tsig_algorithm\" \"%.40s\" is not one this build can sign with: "
		    "use hmac-sha256, hmac-sha512, hmac-sha1 or hmac-md5", acct->name, alg);
		goto out;
	}
	if ((st->secret = provider_secret(acct, "tsig_secret", true, err)) == NULL)
		goto out;
	if (!r2_base64_ok(st->secret)) {
		/* the secret itself is never shown, not even in part */
		cf_errf(err, "provider %s: \"tsig_secret\" is not padded base64 (give the secret of the BIND "
		    "key file, as tsig-keygen prints it)", acct->name);
		goto out;
	}
	if (ttl) {
		json_int_t t = json_integer_value(ttl);
		if (!json_is_integer(ttl) || t < 0 || t > 2147483647) {
			cf_errf(err, "provider %s: \"ttl\" must be a whole number of seconds from 0 to 2147483647", acct->name);
			goto out;
		}
		st->ttl = (uint32_t)t;
	}
	if (r2_seconds(acct, "timeout", 300, &st->timeout_ms, err) != 0)
		goto out;
	acct->state = st;
	st = NULL;
	rc = 0;
out:
	ldns_rdf_deep_free(dname);
	r2_state_free(st);
	return rc;
}

static void
r2_close(struct provider_account *acct)
{
	r2_state_free(acct->state);
	acct->state = NULL;
}

/* ---- the update ---- */

/* The TXT RR of rec: class IN with ttl (to add) or class NONE with TTL 0 (to delete). */
static ldns_rr *
r2_txt_rr(const struct provider_record *rec, bool add, uint32_t ttl)
{
	ldns_rr *rr = ldns_rr_new();
	ldns_rdf *owner = NULL;
	size_t len = strlen(rec->value), off = 0;
	uint8_t buf[R2_STRING_MAX + 1];

	if (rr == NULL || ldns_str2rdf_dname(&owner, rec->fqdn) != LDNS_STATUS_OK)
		goto fail;
	ldns_rr_set_owner(rr, owner);
	ldns_rr_set_type(rr, LDNS_RR_TYPE_TXT);
	ldns_rr_set_class(rr, add ? LDNS_RR_CLASS_IN : LDNS_RR_CLASS_NONE);
	ldns_rr_set_ttl(rr, add ? ttl : 0);
	/* values over 255 octets become several character-strings, always cut the same way */
	do {
		size_t n = len - off > R2_STRING_MAX ? R2_STRING_MAX : len - off;
		buf[0] = (uint8_t)n;
		memcpy(buf + 1, rec->value + off, n);
		ldns_rdf *s = ldns_rdf_new_frm_data(LDNS_RDF_TYPE_STR, n + 1, buf);
		if (s == NULL || !ldns_rr_push_rdf(rr, s)) {
			ldns_rdf_deep_free(s);
			goto fail;
		}
		off += n;
	} while (off < len);
	return rr;
fail:
	ldns_rr_free(rr); /* with its owner and strings */
	return NULL;
}

static const char *
r2_rcode_name(int rcode)
{
	static const char *const names[] = { "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP",
		"REFUSED", "YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH", "NOTZONE" };

	return rcode >= 0 && rcode < (int)(sizeof(names) / sizeof(names[0])) ? names[rcode] : "an unknown RCODE";
}

/*
 * Judges the answer to an update (wire: its octets) signed with query_mac: 0 when the server
 * applied it, -1 after provider_call_fail. where is "update of zone Z at S" for messages.
 */
static int
r2_judge(struct provider_call *call, const struct r2_state *st, const char *where, const uint8_t *wire,
    size_t len, const ldns_rdf *query_mac)
{
	const char *acct = call->acct->name;
	ldns_pkt *ans = NULL;
	ldns_rr *tsig;
	int tsig_error = 0, rcode, rc = -1;
	bool signed_ok = false;

	if (ldns_wire2pkt(&ans, wire, len) != LDNS_STATUS_OK) {
		provider_call_fail(call, true, -1, "rfc2136 %s: %s: the answer is not a DNS message", acct, where);
		goto out;
	}
	rcode = (int)ldns_pkt_get_rcode(ans);
	if ((tsig = ldns_pkt_tsig(ans)) != NULL) {
		if (ldns_rr_rd_count(tsig) > 5)
			tsig_error = ldns_rdf2native_int16(ldns_rr_rdf(tsig, 5));
		if (tsig_error == 0) {
			signed_ok = ldns_pkt_tsig_verify(ans, wire, len, st->key_name, st->secret, query_mac);
			/* ldns drops the TSIG record from the packet when it cannot compute a MAC */
			if (ldns_pkt_tsig(ans) == NULL)
				ldns_pkt_set_tsig(ans, tsig);
		}
	}
	switch (tsig_error) {
	case 0:
		break;
	case R2_TSIG_BADKEY:
		provider_call_fail(call, false, -1, "rfc2136 %s: %s refused: %s, TSIG error BADKEY (TSIG key rejected: "
		    "the server knows no key \"%s\" with algorithm %s; check tsig_name and tsig_algorithm)", acct, where,
		    r2_rcode_name(rcode), st->key_name, st->alg_shown);
		goto out;
	case R2_TSIG_BADSIG:
		provider_call_fail(call, false, -1, "rfc2136 %s: %s refused: %s, TSIG error BADSIG (TSIG key rejected: "
		    "the signature does not match key \"%s\"; check tsig_secret and tsig_algorithm)", acct, where,
		    r2_rcode_name(rcode), st->key_name);
		goto out;
	case R2_TSIG_BADTIME:
		provider_call_fail(call, false, -1, "rfc2136 %s: %s refused: %s, TSIG error BADTIME (the clocks of "
		    "this host and the server differ by more than %d s; fix the clock)", acct, where,
		    r2_rcode_name(rcode), R2_FUDGE);
		goto out;
	default:
		provider_call_fail(call, false, -1, "rfc2136 %s: %s refused: %s, TSIG error %d%s", acct, where,
		    r2_rcode_name(rcode), tsig_error, tsig_error == R2_TSIG_BADTRUNC ? " (BADTRUNC)" : "");
		goto out;
	}
	if (rcode == LDNS_RCODE_NOERROR && !signed_ok) {
		/* RFC 8945 5.3.3: an answer that does not verify must not be trusted */
		provider_call_fail(call, false, -1, "rfc2136 %s: %s: the answer's TSIG %s; the update may or may not "
		    "have been applied", acct, where, tsig ? "does not verify with the key" : "is missing");
		goto out;
	}
	switch (rcode) {
	case LDNS_RCODE_NOERROR:
		rc = 0;
		break;
	case LDNS_RCODE_SERVFAIL:
		provider_call_fail(call, true, -1, "rfc2136 %s: %s failed: SERVFAIL (the server could not apply it; "
		    "its log says why)", acct, where);
		break;
	case LDNS_RCODE_NOTAUTH:
		provider_call_fail(call, false, -1, "rfc2136 %s: %s refused: NOTAUTH (TSIG key rejected, or the "
		    "server is not authoritative for the zone; check tsig_name, tsig_secret and \"server\")", acct, where);
		break;
	case LDNS_RCODE_REFUSED:
		provider_call_fail(call, false, -1, "rfc2136 %s: %s refused: REFUSED (the server's policy does not let "
		    "key \"%s\" change these TXT records; see its allow-update or update-policy)", acct, where,
		    st->key_name);
		break;
	case LDNS_RCODE_NOTZONE:
		provider_call_fail(call, false, -1, "rfc2136 %s: %s refused: NOTZONE (a record is outside the zone)",
		    acct, where);
		break;
	case LDNS_RCODE_NOTIMPL:
		provider_call_fail(call, false, -1, "rfc2136 %s: %s refused: NOTIMP (the server takes no dynamic "
		    "updates for this zone; is \"server\" its primary?)", acct, where);
		break;
	default:
		provider_call_fail(call, false, -1, "rfc2136 %s: %s refused: %s", acct, where, r2_rcode_name(rcode));
		break;
	}
out:
	ldns_pkt_free(ans);
	return rc;
}

/* Sends one signed update for recs[0..n) of the call, split in halves when it is too large. */
static int
r2_update(struct provider_call *call, const struct r2_state *st, struct provider_record *recs, size_t n)
{
	const char *acct = call->acct->name;
	bool add = call->action == PROVIDER_ENSURE;
	ldns_rr_list *ups = ldns_rr_list_new();
	ldns_rdf *zone = NULL;
	ldns_pkt *pkt = NULL;
	uint8_t *wire = NULL, *answer = NULL;
	size_t wlen = 0, alen = 0;
	char where[512];
	cf_err xerr;
	int rc = -1;

	snprintf(where, sizeof(where), "update of zone %s at %s", call->zone, st->server.text);
	if (ups == NULL || ldns_str2rdf_dname(&zone, call->zone) != LDNS_STATUS_OK) {
		provider_call_fail(call, false, -1, "rfc2136 %s: %s: \"%.64s\" is not a zone name", acct, where, call->zone);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		ldns_rr *rr = r2_txt_rr(&recs[i], add, st->ttl);
		if (rr == NULL || !ldns_rr_list_push_rr(ups, rr)) {
			ldns_rr_free(rr);
			provider_call_fail(call, false, -1, "rfc2136 %s: %s: record %s is not a DNS name (or out of memory)",
			    acct, where, recs[i].fqdn);
			goto out;
		}
		const ldns_rdf *owner = ldns_rr_owner(rr);
		if (ldns_dname_compare(owner, zone) != 0 && !ldns_dname_is_subdomain(owner, zone)) {
			provider_call_fail(call, false, -1, "rfc2136 %s: %s: record %s is not in the zone", acct, where,
			    recs[i].fqdn);
			goto out;
		}
	}
	/* ldns_update_pkt_new takes zone and copies the list */
	pkt = ldns_update_pkt_new(zone, LDNS_RR_CLASS_IN, NULL, ups, NULL);
	zone = NULL;
	if (pkt == NULL) {
		provider_call_fail(call, true, -1, "rfc2136 %s: %s: out of memory", acct, where);
		goto out;
	}
	ldns_pkt_set_rd(pkt, false);    /* no meaning in an UPDATE (RFC 2136 2.2: zero) */
	if (ldns_pkt2wire(&wire, pkt, &wlen) != LDNS_STATUS_OK) {
		provider_call_fail(call, false, -1, "rfc2136 %s: %s: cannot encode the message", acct, where);
		goto out;
	}
	if (wlen > R2_MSG_MAX) {
		if (n == 1) {
			provider_call_fail(call, false, -1, "rfc2136 %s: %s: the record at %s alone makes a %zu-octet "
			    "message, over what DNS can carry", acct, where, recs[0].fqdn, wlen);
			goto out;
		}
		rc = r2_update(call, st, recs, n / 2) == 0 && r2_update(call, st, recs + n / 2, n - n / 2) == 0 ? 0 : -1;
		goto out;
	}
	free(wire);
	wire = NULL;
	ldns_status s = ldns_pkt_tsig_sign(pkt, st->key_name, st->secret, R2_FUDGE, st->algorithm, NULL);
	if (s != LDNS_STATUS_OK || ldns_pkt_tsig(pkt) == NULL || ldns_pkt2wire(&wire, pkt, &wlen) != LDNS_STATUS_OK) {
		provider_call_fail(call, false, -1, "rfc2136 %s: %s: TSIG signing with key \"%s\" (%s) failed: %s",
		    acct, where, st->key_name, st->alg_shown, ldns_get_errorstr_by_id(s));
		goto out;
	}
	if (dnsauth_exchange(&st->server, wire, wlen, true, st->timeout_ms, &answer, &alen, &xerr) != 0) {
		provider_call_fail(call, true, -1, "rfc2136 %s: %s failed: %s", acct, where, xerr.msg);
		goto out;
	}
	rc = r2_judge(call, st, where, answer, alen, ldns_rr_rdf(ldns_pkt_tsig(pkt), 3));
out:
	ldns_rr_list_deep_free(ups);
	ldns_rdf_deep_free(zone);
	ldns_pkt_free(pkt);
	free(wire);
	free(answer);
	return rc;
}

/* On a pool thread: the call's update, start to end. */
static void
r2_work(void *arg)
{
	struct provider_call *call = arg;

	(void)r2_update(call, call->acct->state, call->recs, call->nrec);
}

static void
r2_start(struct provider_call *call)
{
	provider_blocking(call, r2_work);
}

static const char *const rfc2136_settings[] = { "server", "tsig_name", "tsig_algorithm", "tsig_secret", "ttl",
	"timeout", NULL };

const struct provider_ops provider_rfc2136 = {
	.type = "rfc2136",
	.summary = "DNS UPDATE (RFC 2136) signed with TSIG, to the operator's primary (BIND, Knot, PowerDNS)",
	.batch_max = R2_BATCH_MAX,
	.default_rate = NULL,
	.open = r2_open,
	.close = r2_close,
	.settings = rfc2136_settings,
	.start = r2_start,
};
