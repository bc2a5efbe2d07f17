/*
 * route53.c - the Amazon Route 53 DNS provider (REST API 2013-04-01, signed with SigV4): per
 * call, the TXT record sets at the call's names are read with ListResourceRecordSets, one
 * ChangeResourceRecordSets request rewrites the sets that need it, and the call ends when
 * GetChange reports the change INSYNC (polled on loop timers, each poll rate-limited).
 *
 * Settings: "hosted_zone_ids" {"example.com": "Z0123..."} (else looked up once per zone with
 * ListHostedZonesByName, public zones only), "endpoint" [https://route53.amazonaws.com],
 * "region" [us-east-1], secrets "access_key_id", "secret_access_key" and optionally
 * "session_token" (each also as "<key>_file" or "<key>_env"), "ttl" [300] for new record sets,
 * "insync_timeout" [600] seconds to wait for INSYNC.
 *
 * A set that already exists is replaced by DELETE of its exact listed values and CREATE of the
 * new set in one (atomic) request, rather than by UPSERT: if anyone changed the set after it was
 * read, Route 53 refuses the batch instead of dropping their value, and the call fails retryable.
 * Known limit: alias, weighted and other routing-policy TXT sets are refused, never edited.
 */
#include "route53.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "sigv4.h"
#include "txtdata.h"
#include "xmlmini.h"
#include "zoneids.h"

#define R53_DEFAULT_ENDPOINT "https://route53.amazonaws.com"
#define R53_DEFAULT_REGION "us-east-1"  /* Route 53 is global; its signing region is us-east-1 */
#define R53_SERVICE "route53"
#define R53_XMLNS "https://route53.amazonaws.com/doc/2013-04-01/"
#define R53_DEFAULT_TTL 300
#define R53_DEFAULT_INSYNC_S 600
#define R53_LIST_MAX 300         /* record sets per ListResourceRecordSets page: the API's most */
#define R53_THROTTLE_TRIES 4     /* sends of one request answered Throttling/PriorRequestNotComplete */
#define R53_THROTTLE_FIRST_MS 1000 /* then doubling */
#define R53_POLL_FIRST_MS 1000   /* first GetChange after the change, growing by half each time */
#define R53_POLL_MAX_MS 10000
#define R53_KEY_MAX 512          /* a name's listing key (names are at most 253 octets) */
/*
 * Records per call: a dns-persist-01 value is about 100 characters, and replacing a set counts
 * its values twice (DELETE and CREATE), so 150 records stay within 32,000 characters and 1,000
 * ResourceRecord elements in one request; longer values or many foreign values at the names
 * make the provider split the batch into several requests, each waited for.
 */
#define R53_BATCH_MAX 150

/* ---- pure parts (route53.h) ---- */

/* Writes the listing key of name: labels reversed, each followed by '.', lower case. */
static void
r53_key(const char *name, char out[R53_KEY_MAX])
{
	size_t n = strlen(name), o = 0, end, start, i;

	if (n > 0 && name[n - 1] == '.')
		n--;
	for (end = n; end > 0; end = start - 1) {
		for (start = end; start > 0 && name[start - 1] != '.'; start--)
			;
		for (i = start; i < end && o + 2 < R53_KEY_MAX; i++)
			out[o++] = (char)tolower((unsigned char)name[i]);
		if (o + 1 < R53_KEY_MAX)
			out[o++] = '.';
		if (start == 0)
			break;
	}
	out[o] = '\0';
}

int
route53_name_cmp(const char *a, const char *b)
{
	char ka[R53_KEY_MAX], kb[R53_KEY_MAX];

	r53_key(a, ka);
	r53_key(b, kb);
	return strcmp(ka, kb);
}

/* A listed name as the provider compares it: \ooo decoded, lower case, no trailing dot. */
static char *
r53_name_decode(const char *s)
{
	size_t n = strlen(s), i, o = 0;
	char *d = malloc(n + 1);

	if (d == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		if (s[i] == '\\' && i + 3 < n + 1 && s[i + 1] >= '0' && s[i + 1] <= '3' &&
		    s[i + 2] >= '0' && s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
			d[o++] = (char)((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
			i += 3;
		} else {
			d[o++] = (char)tolower((unsigned char)s[i]);
		}
	}
	if (o > 0 && d[o - 1] == '.')
		o--;
	d[o] = '\0';
	return d;
}

static void
r53_rrset_clear(struct route53_rrset *s)
{
	free(s->name);
	free(s->type);
	for (size_t i = 0; i < s->nvalues; i++)
		free(s->values[i]);
	free(s->values);
	memset(s, 0, sizeof(*s));
}

void
route53_page_clear(struct route53_page *page)
{
	if (page == NULL)
		return;
	for (size_t i = 0; i < page->nsets; i++)
		r53_rrset_clear(&page->sets[i]);
	free(page->sets);
	memset(page, 0, sizeof(*page));
}

/* Reads one <ResourceRecordSet> into s. */
static int
r53_parse_set(const struct xmlmini_node *n, struct route53_rrset *s, cf_err *err)
{
	struct xmlmini_node c, rr, v;
	size_t pos = 0, rpos;
	char *text = NULL, **vals;
	int r;

	s->ttl = -1;
	s->simple = true;
	while ((r = xmlmini_next(n, &pos, &c, err)) == 1) {
		if (xmlmini_is(&c, "ResourceRecords")) {
			for (rpos = 0; (r = xmlmini_next(&c, &rpos, &rr, err)) == 1;) {
				if (!xmlmini_is(&rr, "ResourceRecord") ||
				    (r = xmlmini_child(&rr, "Value", &v, err)) != 1) {
					if (r == 0 || xmlmini_is(&rr, "ResourceRecord"))
						cf_errf(err, "route53: a ResourceRecord without a Value");
					return -1;
				}
				if ((vals = realloc(s->values, (s->nvalues + 1) * sizeof(*vals))) == NULL)
					goto oom;
				s->values = vals;
				if ((vals[s->nvalues] = xmlmini_text(&v, NULL, err)) == NULL)
					return -1;
				s->nvalues++;
			}
			if (r < 0)
				return -1;
			continue;
		}
		if (!xmlmini_is(&c, "Name") && !xmlmini_is(&c, "Type") && !xmlmini_is(&c, "TTL")) {
			s->simple = false; /* SetIdentifier, AliasTarget, Weight, Region, Failover... */
			continue;
		}
		if ((text = xmlmini_text(&c, NULL, err)) == NULL)
			return -1;
		if (xmlmini_is(&c, "Name")) {
			free(s->name);
			if ((s->name = r53_name_decode(text)) == NULL)
				goto oom;
		} else if (xmlmini_is(&c, "Type")) {
			free(s->type);
			s->type = text;
			text = NULL;
		} else {
			char *end;

			s->ttl = strtoll(text, &end, 10);
			if (end == text || *end != '\0' || s->ttl < 0) {
				cf_errf(err, "route53: a TTL that is not a number");
				free(text);
				return -1;
			}
		}
		free(text);
		text = NULL;
	}
	if (r < 0)
		return -1;
	if (s->name == NULL || s->type == NULL) {
		cf_errf(err, "route53: a ResourceRecordSet without a Name or a Type");
		return -1;
	}
	return 0;
oom:
	cf_errf(err, "route53: out of memory for the record sets");
	return -1;
}

int
route53_parse_rrsets(const char *xml, size_t len, struct route53_page *page, cf_err *err)
{
	struct xmlmini_node root, sets, n;
	struct route53_rrset *grown;
	size_t pos = 0;
	char *trunc = NULL;
	int r, rc = -1;

	memset(page, 0, sizeof(*page));
	if (xmlmini_root(xml, len, &root, err) != 0)
		return -1;
	if (!xmlmini_is(&root, "ListResourceRecordSetsResponse")) {
		cf_errf(err, "route53: the answer is not a ListResourceRecordSetsResponse");
		return -1;
	}
	if ((r = xmlmini_child(&root, "ResourceRecordSets", &sets, err)) != 1) {
		if (r == 0)
			cf_errf(err, "route53: the answer has no ResourceRecordSets");
		return -1;
	}
	while ((r = xmlmini_next(&sets, &pos, &n, err)) == 1) {
		if (!xmlmini_is(&n, "ResourceRecordSet"))
			continue;
		if ((grown = realloc(page->sets, (page->nsets + 1) * sizeof(*grown))) == NULL) {
			cf_errf(err, "route53: out of memory for the record sets");
			goto out;
		}
		page->sets = grown;
		memset(&grown[page->nsets], 0, sizeof(*grown));
		page->nsets++;
		if (r53_parse_set(&n, &grown[page->nsets - 1], err) != 0)
			goto out;
	}
	if (r < 0)
		goto out;
	trunc = xmlmini_child_text(&root, "IsTruncated", err);
	if (trunc == NULL && err != NULL && err->msg[0] != '\0')
		goto out;
	page->truncated = trunc != NULL && strcmp(trunc, "true") == 0;
	rc = 0;
out:
	free(trunc);
	if (rc != 0)
		route53_page_clear(page);
	return rc;
}

void
route53_edits_free(struct route53_edit *edits, size_t n)
{
	for (size_t i = 0; edits != NULL && i < n; i++) {
		for (size_t j = 0; j < edits[i].nold; j++)
			free(edits[i].old_values[j]);
		for (size_t j = 0; j < edits[i].nnew; j++)
			free(edits[i].new_values[j]);
		free(edits[i].old_values);
		free(edits[i].new_values);
		free(edits[i].name);
	}
	free(edits);
}

/* Appends a copy of s (or, quote, s as Route 53 TXT data) to the n strings at *v. */
static int
r53_push(char ***v, size_t *n, const char *s, bool quote, cf_err *err)
{
	char **grown = realloc(*v, (*n + 1) * sizeof(**v));
	cf_buf b = { 0 };

	if (grown == NULL)
		goto oom;
	*v = grown;
	if (quote) {
		if (txtdata_quote(&b, s, err) != 0)
			return -1;
		grown[*n] = b.data;
	} else if ((grown[*n] = strdup(s)) == NULL) {
		goto oom;
	}
	(*n)++;
	return 0;
oom:
	cf_errf(err, "route53: out of memory for the change batch");
	return -1;
}

/* Whether value is among the call's values at name (recs). */
static bool
r53_is_ours(const struct provider_record *recs, size_t nrec, const char *name, const char *listed)
{
	for (size_t i = 0; i < nrec; i++)
		if (strcasecmp(recs[i].fqdn, name) == 0 &&
		    txtdata_equal(listed, strlen(listed), TXTDATA_ROUTE53, recs[i].value))
			return true;
	return false;
}

/* Whether the set (may be NULL) holds value. */
static bool
r53_set_holds(const struct route53_rrset *set, const char *value)
{
	for (size_t i = 0; set != NULL && i < set->nvalues; i++)
		if (txtdata_equal(set->values[i], strlen(set->values[i]), TXTDATA_ROUTE53, value))
			return true;
	return false;
}

/* Fills e for one name; e->nold == e->nnew == 0 when the name needs nothing. */
static int
r53_plan_name(enum provider_action action, const struct provider_record *recs, size_t nrec,
    const struct route53_current *cur, long long ttl, struct route53_edit *e, cf_err *err)
{
	const struct route53_rrset *set = cur->set;
	size_t i, j, kept = 0;
	bool changed = false;

	if (set != NULL && (!set->simple || set->ttl < 0)) {
		cf_errf(err, "record %s: its TXT record set has a routing policy or is an alias; "
		    "certfleet edits only simple TXT record sets", cur->name);
		return -1;
	}
	if (set != NULL)
		for (i = 0; i < set->nvalues; i++)
			if (!r53_is_ours(recs, nrec, cur->name, set->values[i]))
				kept++;
	if (action == PROVIDER_ENSURE) {
		for (i = 0; i < nrec; i++) {
			bool dup = false;

			if (strcasecmp(recs[i].fqdn, cur->name) != 0 || r53_set_holds(set, recs[i].value))
				continue;
			for (j = 0; j < i && !dup; j++)
				dup = strcasecmp(recs[j].fqdn, cur->name) == 0 &&
				    strcmp(recs[j].value, recs[i].value) == 0;
			if (dup)
				continue;
			if (!changed && set != NULL)
				for (j = 0; j < set->nvalues; j++)
					if (r53_push(&e->new_values, &e->nnew, set->values[j], false, err) != 0)
						return -1;
			changed = true;
			if (r53_push(&e->new_values, &e->nnew, recs[i].value, true, err) != 0) {
				cf_errf(err, "record %s: the value cannot be written as TXT data",
				    cur->name);
				return -1;
			}
		}
	} else if (set != NULL && kept < set->nvalues) {
		changed = true;
		for (i = 0; i < set->nvalues; i++)
			if (!r53_is_ours(recs, nrec, cur->name, set->values[i]) &&
			    r53_push(&e->new_values, &e->nnew, set->values[i], false, err) != 0)
				return -1;
	}
	if (!changed)
		return 0;
	if ((e->name = strdup(cur->name)) == NULL) {
		cf_errf(err, "route53: out of memory for the change batch");
		return -1;
	}
	e->new_ttl = set != NULL ? set->ttl : ttl;
	if (set != NULL) {
		e->old_ttl = set->ttl;
		for (i = 0; i < set->nvalues; i++)
			if (r53_push(&e->old_values, &e->nold, set->values[i], false, err) != 0)
				return -1;
	}
	return 0;
}

int
route53_plan(enum provider_action action, const struct provider_record *recs, size_t nrec,
    const struct route53_current *cur, size_t ncur, long long ttl, struct route53_edit **edits,
    size_t *nedits, cf_err *err)
{
	struct route53_edit *e = NULL;
	size_t n = 0;

	*edits = NULL;
	*nedits = 0;
	if (ncur > 0 && (e = calloc(ncur, sizeof(*e))) == NULL) {
		cf_errf(err, "route53: out of memory for the change batch");
		return -1;
	}
	for (size_t i = 0; i < ncur; i++) {
		if (r53_plan_name(action, recs, nrec, &cur[i], ttl, &e[n], err) != 0) {
			route53_edits_free(e, n + 1);
			return -1;
		}
		if (e[n].nold > 0 || e[n].nnew > 0)
			n++;
	}
	*edits = e;
	*nedits = n;
	return 0;
}

void
route53_edit_cost(const struct route53_edit *e, size_t *records, size_t *chars)
{
	size_t c = 0, i;

	for (i = 0; i < e->nold; i++)
		c += strlen(e->old_values[i]);
	for (i = 0; i < e->nnew; i++)
		c += strlen(e->new_values[i]);
	*records = e->nold + e->nnew;
	*chars = c;
}

/* Appends one <Change>. */
static int
r53_change_xml(cf_buf *b, const char *action, const char *name, long long ttl, char *const *values,
    size_t n)
{
	if (cf_buf_printf(b, "<Change><Action>%s</Action><ResourceRecordSet><Name>", action) != 0 ||
	    xmlmini_escape(b, name, strlen(name)) != 0 ||
	    cf_buf_printf(b, ".</Name><Type>TXT</Type><TTL>%lld</TTL><ResourceRecords>", ttl) != 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (cf_buf_printf(b, "<ResourceRecord><Value>") != 0 ||
		    xmlmini_escape(b, values[i], strlen(values[i])) != 0 ||
		    cf_buf_printf(b, "</Value></ResourceRecord>") != 0)
			return -1;
	return cf_buf_printf(b, "</ResourceRecords></ResourceRecordSet></Change>");
}

int
route53_change_batch(cf_buf *out, const struct route53_edit *edits, size_t n, cf_err *err)
{
	if (cf_buf_printf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	    "<ChangeResourceRecordSetsRequest xmlns=\"%s\"><ChangeBatch><Changes>", R53_XMLNS) != 0)
		goto oom;
	for (size_t i = 0; i < n; i++) {
		const struct route53_edit *e = &edits[i];

		if ((e->nold > 0 && r53_change_xml(out, "DELETE", e->name, e->old_ttl, e->old_values,
		    e->nold) != 0) || (e->nnew > 0 && r53_change_xml(out, "CREATE", e->name,
		    e->new_ttl, e->new_values, e->nnew) != 0))
			goto oom;
	}
	if (cf_buf_printf(out, "</Changes></ChangeBatch></ChangeResourceRecordSetsRequest>") != 0)
		goto oom;
	return 0;
oom:
	cf_errf(err, "route53: out of memory for the change batch");
	return -1;
}

static bool
r53_code_in(const char *code, const char *const *set)
{
	for (; *set != NULL; set++)
		if (strcmp(code, *set) == 0)
			return true;
	return false;
}

enum route53_verdict
route53_judge(long status, const char *body, size_t len, char *why, size_t whylen)
{
	static const char *const throttled[] = { "Throttling", "ThrottlingException",
		"PriorRequestNotComplete", "RequestLimitExceeded", "TooManyRequestsException", NULL };
	static const char *const refused[] = { "InvalidClientTokenId", "SignatureDoesNotMatch",
		"AccessDenied", "AccessDeniedException", "IncompleteSignature",
		"MissingAuthenticationToken", "ExpiredToken", "InvalidSignatureException",
		"UnrecognizedClientException", "InvalidAccessKeyId", "AuthFailure", "RequestExpired",
		NULL };
	struct xmlmini_node root, e;
	char *code = NULL, *msg = NULL, qc[4 * 64 + 8], qm[4 * 160 + 8];
	enum route53_verdict v;

	if (body != NULL && status >= 300 && xmlmini_root(body, len, &root, NULL) == 0) {
		if (xmlmini_is(&root, "InvalidChangeBatch")) {
			struct xmlmini_node msgs;

			code = strdup("InvalidChangeBatch");
			if (xmlmini_child(&root, "Messages", &msgs, NULL) == 1)
				msg = xmlmini_child_text(&msgs, "Message", NULL);
			if (msg == NULL)
				msg = xmlmini_child_text(&root, "Message", NULL);
		} else {
			if (!xmlmini_is(&root, "ErrorResponse") ||
			    xmlmini_child(&root, "Error", &e, NULL) != 1)
				e = root; /* <Error><Code>...</Code></Error> alone */
			code = xmlmini_child_text(&e, "Code", NULL);
			msg = xmlmini_child_text(&e, "Message", NULL);
		}
	}
	cf_quote(qc, sizeof(qc), code ? code : "", code ? strlen(code) : 0, 64);
	cf_quote(qm, sizeof(qm), msg ? msg : "", msg ? strlen(msg) : 0, 160);
	if (code != NULL)
		snprintf(why, whylen, "HTTP %ld, %s: %s", status, qc, qm);
	else
		snprintf(why, whylen, "HTTP %ld", status);
	if (status >= 200 && status < 300)
		v = ROUTE53_OK;
	else if (code != NULL && r53_code_in(code, throttled))
		v = ROUTE53_THROTTLED;
	else if ((code != NULL && r53_code_in(code, refused)) || status == 401 || status == 403)
		v = ROUTE53_CREDENTIALS;
	else if (code != NULL && strcmp(code, "InvalidChangeBatch") == 0 && msg != NULL &&
	    (strcasestr(msg, "already exists") != NULL || strcasestr(msg, "not found") != NULL ||
	    strcasestr(msg, "do not match") != NULL))
		v = ROUTE53_RETRYABLE; /* the set changed since it was read: read it again */
	else if (status == 0 || status == 429 || status >= 500)
		v = ROUTE53_RETRYABLE;
	else
		v = ROUTE53_FAILED;
	free(code);
	free(msg);
	return v;
}

/* ---- settings ---- */

/* An account's parsed settings (acct->state). */
struct r53_state {
	char *endpoint;         /* scheme://authority, no trailing '/' */
	char *host;             /* the authority: sent as Host and signed */
	char *region;
	char *akid, *secret, *token; /* secrets, wiped on close; token may be NULL */
	long long ttl;
	int64_t insync_ms;
	struct zone_ids zones;  /* zone name (lower case, no trailing dot) -> id "Z0123..." */
};

static void
r53_state_free(struct r53_state *st)
{
	if (st == NULL)
		return;
	free(st->endpoint);
	free(st->host);
	free(st->region);
	cf_secret_free(st->akid);
	cf_secret_free(st->secret);
	cf_secret_free(st->token);
	zone_ids_clear(&st->zones);
	free(st);
}

/* A hosted zone id without its "/hostedzone/" prefix; NULL when it is not one. */
static const char *
r53_zone_id(const char *id)
{
	if (id == NULL)
		return NULL;
	if (strncmp(id, "/hostedzone/", 12) == 0)
		id += 12;
	if (*id == '\0' || strlen(id) > 32)
		return NULL;
	for (const char *p = id; *p; p++)
		if (!isalnum((unsigned char)*p))
			return NULL;
	return id;
}

/* Adds (name, id) to the account's zones, name decoded; -1 when out of memory. */
static int
r53_zone_add(struct r53_state *st, const char *name, const char *id)
{
	char *k = r53_name_decode(name);
	int rc = k ? zone_ids_add(&st->zones, k, id) : -1;

	free(k);
	return rc;
}

/* Loads a secret into *out; required=false leaves NULL when none is configured. */
static int
r53_secret(struct provider_account *acct, const char *key, bool required, char **out, cf_err *err)
{
	err->msg[0] = '\0';
	*out = provider_secret(acct, key, required, err);
	if (*out == NULL && (required || err->msg[0] != '\0'))
		return -1;
	for (const char *p = *out; p != NULL && *p; p++) {
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f) {
			cf_errf(err, "provider account \"%s\" (route53): %s has a control or non-ASCII "
			    "character", acct->name, key);
			return -1;
		}
	}
	return 0;
}

/* The message of every setting that could not be stored for want of memory. */
static int
r53_oom(const struct provider_account *acct, cf_err *err)
{
	cf_errf(err, "provider account \"%s\" (route53): out of memory", acct->name);
	return -1;
}

/* "endpoint": st->endpoint is scheme://authority, st->host the authority in lower case. */
static int
r53_parse_endpoint(struct provider_account *acct, struct r53_state *st, cf_err *err)
{
	const char *ep = provider_setting(acct, "endpoint");
	const char *auth, *slash;

	if (ep == NULL)
		ep = R53_DEFAULT_ENDPOINT;
	auth = strstr(ep, "://");
	if ((strncmp(ep, "https://", 8) != 0 && strncmp(ep, "http://", 7) != 0) || auth == NULL ||
	    strpbrk(ep, " \t\r\n?#@") != NULL) {
		cf_errf(err, "provider account \"%s\" (route53): \"endpoint\" must be an http(s) URL "
		    "without spaces, user, query or fragment", acct->name);
		return -1;
	}
	if (provider_url_check(acct, "endpoint", ep, err) != 0)
		return -1;
	auth += 3;
	slash = strchr(auth, '/');
	if (slash == auth || (slash != NULL && strspn(slash, "/") != strlen(slash))) {
		cf_errf(err, "provider account \"%s\" (route53): \"endpoint\" must be scheme://host[:port] "
		    "without a path", acct->name);
		return -1;
	}
	if ((st->endpoint = strndup(ep, slash ? (size_t)(slash - ep) : strlen(ep))) == NULL ||
	    (st->host = strndup(auth, slash ? (size_t)(slash - auth) : strlen(auth))) == NULL)
		return r53_oom(acct, err);
	for (char *p = st->host; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return 0;
}

/* "region": lower-case letters, digits and '-'. */
static int
r53_parse_region(struct provider_account *acct, struct r53_state *st, cf_err *err)
{
	const char *region = provider_setting(acct, "region");

	if ((st->region = strdup(region ? region : R53_DEFAULT_REGION)) == NULL)
		return r53_oom(acct, err);
	if (strspn(st->region, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(st->region) ||
	    st->region[0] == '\0') {
		cf_errf(err, "provider account \"%s\" (route53): \"region\" must be a region name such as "
		    "us-east-1", acct->name);
		return -1;
	}
	return 0;
}

/* "ttl" of new record sets and "insync_timeout", each with its default. */
static int
r53_parse_times(struct provider_account *acct, struct r53_state *st, cf_err *err)
{
	const json_t *ttl = json_object_get(acct->settings, "ttl");
	const json_t *wait = json_object_get(acct->settings, "insync_timeout");

	st->ttl = R53_DEFAULT_TTL;
	if (ttl != NULL) {
		if (!json_is_integer(ttl) || json_integer_value(ttl) < 0 ||
		    json_integer_value(ttl) > 2147483647) {
			cf_errf(err, "provider account \"%s\" (route53): \"ttl\" must be 0 to 2147483647 "
			    "seconds", acct->name);
			return -1;
		}
		st->ttl = json_integer_value(ttl);
	}
	st->insync_ms = (int64_t)R53_DEFAULT_INSYNC_S * 1000;
	if (wait != NULL) {
		if (!json_is_number(wait) || json_number_value(wait) <= 0 ||
		    json_number_value(wait) > 86400) {
			cf_errf(err, "provider account \"%s\" (route53): \"insync_timeout\" must be a number "
			    "of seconds above 0 and at most 86400", acct->name);
			return -1;
		}
		st->insync_ms = (int64_t)(json_number_value(wait) * 1000);
	}
	return 0;
}

/* "hosted_zone_ids": the zones whose ids need no ListHostedZonesByName. */
static int
r53_parse_zone_ids(struct provider_account *acct, struct r53_state *st, cf_err *err)
{
	const json_t *ids = json_object_get(acct->settings, "hosted_zone_ids");
	const char *key;
	json_t *val;

	if (ids != NULL && !json_is_object(ids)) {
		cf_errf(err, "provider account \"%s\" (route53): \"hosted_zone_ids\" must be an object "
		    "{\"zone\": \"Z...\"}", acct->name);
		return -1;
	}
	json_object_foreach((json_t *)ids, key, val) {
		const char *id = r53_zone_id(json_string_value(val));

		if (id == NULL) {
			char q[4 * 64 + 8];

			cf_quote(q, sizeof(q), key, strlen(key), 64);
			cf_errf(err, "provider account \"%s\" (route53): \"hosted_zone_ids\" of \"%s\" must "
			    "be a hosted zone id such as Z0123456789ABC", acct->name, q);
			return -1;
		}
		if (r53_zone_add(st, key, id) != 0)
			return r53_oom(acct, err);
	}
	return 0;
}

/* The access key id, the secret key and the optional session token. */
static int
r53_parse_secrets(struct provider_account *acct, struct r53_state *st, cf_err *err)
{
	if (r53_secret(acct, "access_key_id", true, &st->akid, err) != 0 ||
	    r53_secret(acct, "secret_access_key", true, &st->secret, err) != 0 ||
	    r53_secret(acct, "session_token", false, &st->token, err) != 0)
		return -1;
	if (st->akid[0] == '\0' || st->secret[0] == '\0' || strpbrk(st->akid, " ,/;") != NULL) {
		cf_errf(err, "provider account \"%s\" (route53): access_key_id or secret_access_key is "
		    "empty, or the key id has a space, ',', '/' or ';'", acct->name);
		return -1;
	}
	return 0;
}

/* The settings, one group after the other (the first bad one is reported), into acct->state. */
static int
r53_open(struct provider_account *acct, cf_err *err)
{
	struct r53_state *st = calloc(1, sizeof(*st));
	int rc = -1;

	if (st == NULL || zone_ids_init(&st->zones) != 0) {
		free(st);
		return r53_oom(acct, err);
	}
	if (r53_parse_endpoint(acct, st, err) != 0 || r53_parse_region(acct, st, err) != 0 ||
	    r53_parse_times(acct, st, err) != 0 || r53_parse_zone_ids(acct, st, err) != 0 ||
	    r53_parse_secrets(acct, st, err) != 0)
		goto out;
	acct->state = st;
	st = NULL;
	rc = 0;
out:
	r53_state_free(st);
	return rc;
}

static void
r53_close(struct provider_account *acct)
{
	struct r53_state *st = acct->state;

	if (st == NULL)
		return;
	r53_state_free(st);
	acct->state = NULL;
}

/* ---- one call ---- */

enum r53_seen {
	R53_UNKNOWN,            /* not read yet */
	R53_ABSENT,             /* no TXT set at the name */
	R53_PRESENT,            /* set holds it */
};

struct r53_name {
	const char *name;       /* into call->recs */
	enum r53_seen seen;
	bool gone;              /* the page being read shows there is no set (r53_take_page) */
	struct route53_rrset set;
};

struct r53_work;
typedef void (*r53_answer_fn)(struct r53_work *w, const char *body, size_t len);

/* One call's progress (call->pdata). */
struct r53_work {
	struct provider_call *call;
	struct r53_state *st;
	char *zone_id;
	struct r53_name *names; /* the call's distinct names, in Route 53's listing order */
	size_t nnames;
	struct route53_edit *edits;
	size_t nedits;
	size_t edit_i, edit_n;  /* the edits of the request in flight: [edit_i, edit_i + edit_n) */
	char *change_id;
	int64_t poll_ms;        /* next GetChange interval */
	int64_t deadline_ms;    /* cf_mono_ms() by which the change must be INSYNC */
	struct loop_timer timer;
	/* the request in flight, kept so that a throttled one is signed and sent again */
	const char *method;
	char *path;             /* wire form, without the query */
	char *query;            /* wire form without '?', may be NULL */
	char *body;             /* may be NULL */
	r53_answer_fn on_ok;
	int tries;
	char what[200];         /* "GET /2013-04-01/..." for messages */
};

static void
r53_work_free(struct r53_work *w)
{
	if (w == NULL)
		return;
	for (size_t i = 0; i < w->nnames; i++)
		r53_rrset_clear(&w->names[i].set);
	free(w->names);
	route53_edits_free(w->edits, w->nedits);
	free(w->zone_id);
	free(w->change_id);
	free(w->path);
	free(w->query);
	free(w->body);
	free(w);
}

/* Ends the call: w is freed, and so may be the call. */
static void
r53_finish(struct r53_work *w)
{
	struct provider_call *call = w->call;

	loop_timer_cancel(call->loop, &w->timer);
	call->pdata = NULL;
	r53_work_free(w);
	provider_call_done(call);
}

/* Fails the call with "route53 account "A", zone Z: <message>" and ends it. */
static void __attribute__((format(printf, 4, 5)))
r53_fail(struct r53_work *w, bool retryable, int64_t retry_after_ms, const char *fmt, ...)
{
	char msg[440];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	provider_call_fail(w->call, retryable, retry_after_ms, "route53 account \"%s\", zone %s: %s",
	    w->call->acct->name, w->call->zone, msg);
	r53_finish(w);
}

static void r53_http_done(struct provider_call *call, struct http_req *req);

/* Adds the header "name: value" to req; the line is wiped (it may hold a secret). */
static int
r53_header(struct http_req *req, const char *name, const char *value)
{
	char *line = NULL;
	int rc;

	if (asprintf(&line, "%s: %s", name, value) < 0)
		return -1;
	rc = http_req_header(req, line);
	cf_secret_free(line);
	return rc;
}

/* Signs and sends the request kept in w. */
static void
r53_send(struct r53_work *w)
{
	struct r53_state *st = w->st;
	struct sigv4_credentials cred = { st->akid, st->secret, st->token };
	struct sigv4_request sreq = { 0 };
	struct http_req *req = NULL;
	char *auth = NULL, *date = NULL, *url = NULL;
	cf_err err = { { 0 } };

	sreq.method = w->method;
	sreq.host = st->host;
	sreq.path = w->path;
	sreq.query = w->query;
	sreq.payload = w->body;
	sreq.payload_len = w->body ? strlen(w->body) : 0;
	w->tries++;
	if (sigv4_sign(&sreq, &cred, st->region, R53_SERVICE, time(NULL), &auth, &date, &err) != 0)
		goto fail;
	if (asprintf(&url, "%s%s%s%s", st->endpoint, w->path, w->query ? "?" : "",
	    w->query ? w->query : "") < 0) {
		url = NULL;
		goto oom;
	}
	if ((req = http_req_new(&w->call->acct->http, url, w->body, "application/xml", false,
	    &err)) == NULL)
		goto fail;
	if (r53_header(req, "Host", st->host) != 0 || r53_header(req, "X-Amz-Date", date) != 0 ||
	    (st->token != NULL && r53_header(req, "X-Amz-Security-Token", st->token) != 0) ||
	    r53_header(req, "Authorization", auth) != 0 ||
	    (strcmp(w->method, "GET") != 0 && strcmp(w->method, "POST") != 0 &&
	    http_req_method(req, w->method) != 0))
		goto oom;
	provider_http(w->call, req, r53_http_done);
	req = NULL;
	goto out;
oom:
	cf_errf(&err, "out of memory");
fail:
	http_req_free(req);
	r53_fail(w, true, -1, "%s: %s", w->what, err.msg);
out:
	free(auth);
	free(date);
	free(url);
}

/*
 * Starts the request method path?query with body (taken over, may be NULL): on_ok gets the body
 * of a 2xx answer; every other answer fails the call, after a few tries when throttled.
 */
static void
r53_request(struct r53_work *w, const char *method, char *path, char *query, char *body,
    r53_answer_fn on_ok)
{
	free(w->path);
	free(w->query);
	free(w->body);
	w->method = method;
	w->path = path;
	w->query = query;
	w->body = body;
	w->on_ok = on_ok;
	w->tries = 0;
	snprintf(w->what, sizeof(w->what), "%s %s", method, path ? path : "(no path)");
	if (path == NULL) {
		r53_fail(w, true, -1, "%s: out of memory", method);
		return;
	}
	r53_send(w);
}

static void
r53_resend(void *arg)
{
	r53_send(arg);
}

static void
r53_http_done(struct provider_call *call, struct http_req *req)
{
	struct r53_work *w = call->pdata;
	char why[600];
	int64_t delay;
	enum route53_verdict v;

	if (req->result != CURLE_OK) {
		http_req_error(req, why, sizeof(why));
		http_req_free(req);
		r53_fail(w, true, -1, "%s: %s", w->what, why);
		return;
	}
	v = route53_judge(req->status, req->body.data, req->body.len, why, sizeof(why));
	switch (v) {
	case ROUTE53_OK:
		w->on_ok(w, req->body.data ? req->body.data : "", req->body.len);
		break;
	case ROUTE53_THROTTLED:
		delay = (int64_t)R53_THROTTLE_FIRST_MS << (w->tries - 1);
		if (req->retry_after_s > 0 && req->retry_after_s * 1000 > delay)
			delay = req->retry_after_s * 1000;
		if (w->tries >= R53_THROTTLE_TRIES) {
			r53_fail(w, true, delay, "%s: %s, %d times", w->what, why, w->tries);
			break;
		}
		/* Throttling is the account's request rate: slow every call down. PriorRequestNotComplete
		 * is this zone's previous change still being applied: only this call waits. */
		if (strstr(why, "PriorRequestNotComplete") == NULL)
			limiter_penalize(call->acct->limit, delay);
		if (loop_timer_arm(call->loop, &w->timer, delay, r53_resend, w) != 0)
			r53_fail(w, true, delay, "%s: %s; cannot arm a timer to try again", w->what, why);
		break;
	case ROUTE53_CREDENTIALS:
		r53_fail(w, false, -1, "%s: credentials rejected (%s)", w->what, why);
		break;
	case ROUTE53_RETRYABLE:
		r53_fail(w, true, req->retry_after_s >= 0 ? req->retry_after_s * 1000 : -1,
		    "%s: %s", w->what, why);
		break;
	case ROUTE53_FAILED:
		r53_fail(w, false, -1, "%s: %s", w->what, why);
		break;
	}
	http_req_free(req);
}

/* "name=<v>" percent-encoded the SigV4 way; appended to b with a leading '&' unless first. */
static int
r53_param(cf_buf *b, const char *name, const char *v)
{
	return cf_buf_printf(b, "%s%s=", b->len > 0 ? "&" : "", name) != 0 ||
	    sigv4_uri_encode(b, v, strlen(v), 0) != 0 ? -1 : 0;
}

static void r53_read_next(struct r53_work *w);
static void r53_write_next(struct r53_work *w);
static int r53_cost_fits(const struct r53_work *w, size_t from, size_t *n);

static void
r53_zone_done(struct r53_work *w, const char *body, size_t len)
{
	struct xmlmini_node root, zones, z, cfg;
	size_t pos = 0;
	const char *id = NULL;
	char *name = NULL, *zid = NULL, *priv = NULL;
	cf_err err = { { 0 } };
	int r = -1;

	if (xmlmini_root(body, len, &root, &err) != 0 ||
	    !xmlmini_is(&root, "ListHostedZonesByNameResponse") ||
	    xmlmini_child(&root, "HostedZones", &zones, &err) != 1) {
		r53_fail(w, true, -1, "%s: the answer is not a list of hosted zones %s", w->what, err.msg);
		return;
	}
	while (id == NULL && (r = xmlmini_next(&zones, &pos, &z, &err)) == 1) {
		char *key;

		free(name);
		free(zid);
		free(priv);
		priv = NULL;
		name = xmlmini_child_text(&z, "Name", &err);
		zid = xmlmini_child_text(&z, "Id", &err);
		if (xmlmini_child(&z, "Config", &cfg, &err) == 1)
			priv = xmlmini_child_text(&cfg, "PrivateZone", &err);
		if (name == NULL || zid == NULL || (key = r53_name_decode(name)) == NULL)
			continue;
		if (strcmp(key, w->call->zone) == 0 && (priv == NULL || strcmp(priv, "true") != 0))
			id = r53_zone_id(zid);
		free(key);
	}
	if (id == NULL) {
		r53_fail(w, false, -1, "%s: no public hosted zone of that name is visible to these "
		    "credentials (set \"hosted_zone_ids\" or check the IAM policy)", w->what);
		goto out;
	}
	(void)r53_zone_add(w->st, w->call->zone, id); /* without memory, looked up again next time */
	if ((w->zone_id = strdup(id)) == NULL) {
		r53_fail(w, true, -1, "out of memory");
		goto out;
	}
	r53_read_next(w);
out:
	free(name);
	free(zid);
	free(priv);
}

/* The call's name equal to name, or NULL. */
static struct r53_name *
r53_find(struct r53_work *w, const char *name)
{
	for (size_t i = 0; i < w->nnames; i++)
		if (strcasecmp(w->names[i].name, name) == 0)
			return &w->names[i];
	return NULL;
}

/*
 * Takes in a listing page that started at x (the first unread name): TXT sets at the call's
 * names are read; x is absent when the page does not hold its set (the page starts at x's TXT
 * set if there is one); another name is absent when Route 53's order puts it strictly inside the
 * page, or after x on a last page. The order is trusted only when the page follows it.
 */
static void
r53_take_page(struct r53_work *w, struct r53_name *x, struct route53_page *page)
{
	bool ordered = true;
	size_t i, last = page->nsets - 1;

	for (i = 1; i < page->nsets; i++)
		if (route53_name_cmp(page->sets[i - 1].name, page->sets[i].name) > 0)
			ordered = false;
	for (i = 0; i < w->nnames; i++) {
		struct r53_name *y = &w->names[i];
		bool inside = page->nsets > 0 && route53_name_cmp(page->sets[0].name, y->name) < 0 &&
		    route53_name_cmp(y->name, page->sets[last].name) < 0;

		y->gone = ordered && y != x && y->seen == R53_UNKNOWN &&
		    (inside || (!page->truncated && route53_name_cmp(x->name, y->name) < 0));
	}
	for (i = 0; i < page->nsets; i++) {
		struct r53_name *n;

		if (strcmp(page->sets[i].type, "TXT") != 0 ||
		    (n = r53_find(w, page->sets[i].name)) == NULL || n->seen != R53_UNKNOWN)
			continue;
		n->seen = R53_PRESENT;
		n->set = page->sets[i];
		memset(&page->sets[i], 0, sizeof(page->sets[i]));
	}
	if (x->seen == R53_UNKNOWN)
		x->seen = R53_ABSENT;
	for (i = 0; i < w->nnames; i++)
		if (w->names[i].gone && w->names[i].seen == R53_UNKNOWN)
			w->names[i].seen = R53_ABSENT;
}

static void
r53_read_done(struct r53_work *w, const char *body, size_t len)
{
	struct route53_page page;
	cf_err err = { { 0 } };
	size_t i;

	for (i = 0; i < w->nnames && w->names[i].seen != R53_UNKNOWN; i++)
		;
	if (route53_parse_rrsets(body, len, &page, &err) != 0) {
		r53_fail(w, true, -1, "%s: %s", w->what, err.msg);
		return;
	}
	r53_take_page(w, &w->names[i], &page);
	route53_page_clear(&page);
	r53_read_next(w);
}

/* Reads the next unread name, or plans and writes when every name is read. */
static void
r53_read_next(struct r53_work *w)
{
	struct route53_current *cur;
	cf_buf q = { 0 };
	char *path = NULL, *fq = NULL;
	cf_err err = { { 0 } };
	size_t i;
	int rc;

	for (i = 0; i < w->nnames && w->names[i].seen != R53_UNKNOWN; i++)
		;
	if (i < w->nnames) {
		if (asprintf(&path, "/2013-04-01/hostedzone/%s/rrset", w->zone_id) < 0)
			path = NULL;
		if (asprintf(&fq, "%s.", w->names[i].name) < 0)
			fq = NULL;
		if (fq == NULL || r53_param(&q, "name", fq) != 0 || r53_param(&q, "type", "TXT") != 0 ||
		    cf_buf_printf(&q, "&maxitems=%d", R53_LIST_MAX) != 0) {
			free(path);
			path = NULL;
		}
		free(fq);
		r53_request(w, "GET", path, q.data, NULL, r53_read_done);
		return;
	}
	if ((cur = calloc(w->nnames, sizeof(*cur))) == NULL) {
		r53_fail(w, true, -1, "out of memory");
		return;
	}
	for (i = 0; i < w->nnames; i++) {
		cur[i].name = w->names[i].name;
		cur[i].set = w->names[i].seen == R53_PRESENT ? &w->names[i].set : NULL;
	}
	rc = route53_plan(w->call->action, w->call->recs, w->call->nrec, cur, w->nnames, w->st->ttl,
	    &w->edits, &w->nedits, &err);
	free(cur);
	if (rc != 0) {
		r53_fail(w, false, -1, "%s", err.msg);
		return;
	}
	if (w->nedits == 0) {
		r53_finish(w); /* every set already as it should be: no write */
		return;
	}
	w->edit_i = 0;
	r53_write_next(w);
}

/* How many edits from 'from' fit in one request (*n); -1 when even the first does not. */
static int
r53_cost_fits(const struct r53_work *w, size_t from, size_t *n)
{
	size_t records = 0, chars = 0, r, c, i;

	for (i = from; i < w->nedits; i++) {
		route53_edit_cost(&w->edits[i], &r, &c);
		if (records + r > ROUTE53_MAX_RECORDS || chars + c > ROUTE53_MAX_CHARS)
			break;
		records += r;
		chars += c;
	}
	*n = i - from;
	return *n > 0 ? 0 : -1;
}

static void r53_poll(void *arg);

/* Takes in a ChangeInfo (of a change or of GetChange): done when INSYNC, else polls again. */
static void
r53_change_info(struct r53_work *w, const char *body, size_t len, const char *root_name)
{
	struct xmlmini_node root, info;
	char *id = NULL, *status = NULL;
	const char *bare;
	cf_err err = { { 0 } };

	if (xmlmini_root(body, len, &root, &err) != 0 || !xmlmini_is(&root, root_name) ||
	    xmlmini_child(&root, "ChangeInfo", &info, &err) != 1 ||
	    (id = xmlmini_child_text(&info, "Id", &err)) == NULL ||
	    (status = xmlmini_child_text(&info, "Status", &err)) == NULL) {
		r53_fail(w, true, -1, "%s: the answer is not a %s with a ChangeInfo %s", w->what,
		    root_name, err.msg);
		goto out;
	}
	bare = strncmp(id, "/change/", 8) == 0 ? id + 8 : id;
	if (*bare == '\0' || strspn(bare, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789") != strlen(bare)) {
		r53_fail(w, true, -1, "%s: the change id is not of letters and digits", w->what);
		goto out;
	}
	if (strcmp(status, "INSYNC") == 0) {
		w->edit_i += w->edit_n;
		if (w->edit_i < w->nedits)
			r53_write_next(w);
		else
			r53_finish(w);
		goto out;
	}
	if (strcmp(status, "PENDING") != 0) {
		r53_fail(w, true, -1, "%s: change %s has the unknown status %.20s", w->what, bare,
		    status);
		goto out;
	}
	if (cf_mono_ms() + w->poll_ms > w->deadline_ms) {
		r53_fail(w, true, -1, "%s: change %s still PENDING after %lld s", w->what,
		    bare, (long long)(w->st->insync_ms / 1000));
		goto out;
	}
	free(w->change_id);
	if ((w->change_id = strdup(bare)) == NULL) {
		r53_fail(w, true, -1, "out of memory");
		goto out;
	}
	if (loop_timer_arm(w->call->loop, &w->timer, w->poll_ms, r53_poll, w) != 0) {
		r53_fail(w, true, -1, "change %s: cannot arm a timer to poll it", bare);
		goto out;
	}
	w->poll_ms = w->poll_ms * 3 / 2 < R53_POLL_MAX_MS ? w->poll_ms * 3 / 2 : R53_POLL_MAX_MS;
out:
	free(id);
	free(status);
}

static void
r53_poll_done(struct r53_work *w, const char *body, size_t len)
{
	r53_change_info(w, body, len, "GetChangeResponse");
}

static void
r53_poll(void *arg)
{
	struct r53_work *w = arg;
	char *path = NULL;

	if (asprintf(&path, "/2013-04-01/change/%s", w->change_id) < 0)
		path = NULL;
	r53_request(w, "GET", path, NULL, NULL, r53_poll_done);
}

static void
r53_write_done(struct r53_work *w, const char *body, size_t len)
{
	r53_change_info(w, body, len, "ChangeResourceRecordSetsResponse");
}

static void
r53_write_next(struct r53_work *w)
{
	cf_buf xml = { 0 };
	char *path = NULL;
	cf_err err = { { 0 } };

	if (r53_cost_fits(w, w->edit_i, &w->edit_n) != 0) {
		r53_fail(w, false, -1, "record %s: its new TXT record set alone exceeds %d records or "
		    "%d characters per request", w->edits[w->edit_i].name, ROUTE53_MAX_RECORDS,
		    ROUTE53_MAX_CHARS);
		return;
	}
	if (route53_change_batch(&xml, &w->edits[w->edit_i], w->edit_n, &err) != 0) {
		cf_buf_free(&xml);
		r53_fail(w, true, -1, "%s", err.msg);
		return;
	}
	w->poll_ms = R53_POLL_FIRST_MS;
	w->deadline_ms = cf_mono_ms() + w->st->insync_ms;
	if (asprintf(&path, "/2013-04-01/hostedzone/%s/rrset/", w->zone_id) < 0)
		path = NULL;
	r53_request(w, "POST", path, NULL, xml.data, r53_write_done);
}

static int
r53_name_order(const void *a, const void *b)
{
	return route53_name_cmp(((const struct r53_name *)a)->name, ((const struct r53_name *)b)->name);
}

static void
r53_start(struct provider_call *call)
{
	struct r53_state *st = call->acct->state;
	struct r53_work *w = calloc(1, sizeof(*w));
	cf_buf q = { 0 };
	char *path = NULL;
	size_t i;

	if (w == NULL || (w->names = calloc(call->nrec ? call->nrec : 1, sizeof(*w->names))) == NULL) {
		free(w);
		provider_call_fail(call, true, -1, "route53 account \"%s\", zone %s: out of memory",
		    call->acct->name, call->zone);
		provider_call_done(call);
		return;
	}
	w->call = call;
	w->st = st;
	loop_timer_init(&w->timer);
	call->pdata = w;
	for (i = 0; i < call->nrec; i++) {
		if (!txtdata_value_ok(call->recs[i].value)) {
			r53_fail(w, false, -1, "record %s: the value is empty, longer than 4000 octets or "
			    "not printable ASCII", call->recs[i].fqdn);
			return;
		}
		if (r53_find(w, call->recs[i].fqdn) == NULL)
			w->names[w->nnames++].name = call->recs[i].fqdn;
	}
	if (w->nnames == 0) {
		r53_finish(w);
		return;
	}
	qsort(w->names, w->nnames, sizeof(*w->names), r53_name_order);
	w->zone_id = zone_ids_find(&st->zones, call->zone);
	if (w->zone_id != NULL) {
		r53_read_next(w);
		return;
	}
	if ((path = strdup("/2013-04-01/hostedzonesbyname")) == NULL ||
	    r53_param(&q, "dnsname", call->zone) != 0 || cf_buf_printf(&q, "&maxitems=10") != 0) {
		free(path);
		path = NULL;
	}
	r53_request(w, "GET", path, q.data, NULL, r53_zone_done);
}

/*
 * default_rate: Route 53 allows 10 requests per second per AWS account (burst 50), shared by
 * everything that uses the account, and answers a request over it with 400 Throttling (not
 * 429, so the core's 429 handling does not see it; this provider backs off itself). "8/s:40"
 * keeps a fifth of the rate and burst for the console, infrastructure-as-code runs and other
 * tools of the same account; GetChange polls count against it too.
 */
static const char *const r53_settings[] = { "hosted_zone_ids", "endpoint", "region",
	"access_key_id", "secret_access_key", "session_token", "ttl", "insync_timeout", NULL };

const struct provider_ops provider_route53 = {
	.type = "route53",
	.summary = "Amazon Route 53 (SigV4): one atomic change batch per zone and call, waited for INSYNC",
	.batch_max = R53_BATCH_MAX,
	.default_rate = "8/s:40",
	.settings = r53_settings,
	.open = r53_open,
	.close = r53_close,
	.start = r53_start,
};
