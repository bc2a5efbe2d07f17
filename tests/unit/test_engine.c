/*
 * test_engine.c - the order engine (workers/engine.c) driven through whole orders against a fake
 * CA that answers through struct http_transport, with no network: the happy path, badNonce, 429
 * with Retry-After, an invalid authorization, resumed orders in each state, a finalize that waits
 * for the writer to store its key, one record write shared by two orders, and the order deadline.
 * The test plays the result writer too: it drains the outbox and gives each message its stored step.
 */
#include <jansson.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "check.h"
#include "dnsauth.h"
#include "engine.h"
#include "keys.h"
#include "loop.h"
#include "cagate.h"
#include "outbox.h"
#include "persist.h"
#include "registry.h"

#define CA "https://ca.test"
#define ACCOUNT_URL CA "/acct/1"
#define ISSUER "ca.test"
#define MAX_ORDERS 8
#define MAX_NONCES 256
#define MAX_MSGS 64

/* ---- the fake CA ---- */

/* One order the CA holds, at CA/order/<i>, with one authorization CA/authz/<i>. */
struct ca_order {
	char name[64];
	const char *status;          /* pending, ready, processing, valid, invalid */
	const char *authz_status;    /* pending, valid, invalid */
	bool answered;               /* its challenge was POSTed */
	int processing_polls;        /* polls still to answer "processing" */
	char *chain_pem;             /* issued: leaf + CA */
	char serial[32];
};

struct fake_ca {
	struct loop *loop;
	/* what the engine asked: requests per endpoint */
	int n_dir, n_nonce, n_new_order, n_authz, n_chal, n_finalize, n_order_get, n_cert, n_other;
	int sent, delivered;         /* responses scheduled and handed back */
	int bad_requests;            /* JWS without the right url, kid or a fresh nonce */
	/* the script */
	int bad_nonce_new_orders;    /* newOrders answered badNonce first */
	int authz_429;               /* authorization fetches answered 429 Retry-After: 1 first */
	bool authz_turns_invalid;    /* after the challenge the authorization is invalid */
	bool authz_valid_at_once;    /* new orders come ready, their authorizations valid */
	int processing_polls;        /* polls of a finalized order that stay "processing" */
	bool alternates;             /* downloads link one alternate chain, topped by "Fake Alt Root" */
	int n_alt;                   /* alternate chains fetched */
	char profiles_sent[128];     /* the "profile" of each newOrder, space-separated ("-" for none) */
	bool never_valid;            /* a finalized order stays "processing" for ever */
	/* timing of the 429 */
	int64_t t_429, t_after_429;
	int refuse_replaces;         /* newOrders carrying replaces to answer alreadyReplaced */
	int n_replaces;              /* newOrders that carried replaces */
	char last_replaces[64];
	/* state */
	struct ca_order orders[MAX_ORDERS];
	int norders;
	char *nonces[MAX_NONCES];    /* issued and not yet used */
	int nonce_seq;
	long serial_seq;
	EVP_PKEY *ca_key;
	X509 *ca_cert;
	char *ca_pem;
	char *alt_pem;               /* the CA's certificate as "Fake Alt Root" issued it */
};

static char *
pem_of_cert(X509 *x)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *out = NULL;
	long n;

	if (b && PEM_write_bio_X509(b, x) == 1 && (n = BIO_get_mem_data(b, &data)) > 0)
		out = strndup(data, (size_t)n);
	BIO_free(b);
	return out;
}

/* A certificate for pub and name, signed by the CA's key (self-signed when pub is the CA's). */
static X509 *
ca_make_cert(struct fake_ca *ca, EVP_PKEY *pub, const char *cn, bool is_ca, long serial)
{
	X509 *x = X509_new();
	X509_NAME *subj = X509_NAME_new();
	X509_EXTENSION *ext = NULL;
	X509V3_CTX v3;
	char san[96];

	if (x == NULL || subj == NULL)
		goto fail;
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
	X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_subject_name(x, subj);
	X509_set_issuer_name(x, is_ca ? subj : X509_get_subject_name(ca->ca_cert));
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 90L * 86400);
	X509_set_pubkey(x, pub);
	X509V3_set_ctx(&v3, is_ca ? x : ca->ca_cert, x, NULL, NULL, 0);
	if (is_ca) {
		ext = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints, "critical,CA:TRUE");
	} else {
		snprintf(san, sizeof(san), "DNS:%s", cn);
		ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
	}
	if (ext == NULL || X509_add_ext(x, ext, -1) != 1 || X509_sign(x, ca->ca_key, EVP_sha256()) <= 0)
		goto fail;
	X509_EXTENSION_free(ext);
	X509_NAME_free(subj);
	return x;
fail:
	X509_EXTENSION_free(ext);
	X509_NAME_free(subj);
	X509_free(x);
	return NULL;
}

/* The alternate chain's CA certificate: the same subject and key, issued by "Fake Alt Root". */
static int
ca_make_alt(struct fake_ca *ca)
{
	X509 *x = ca_make_cert(ca, ca->ca_key, "Fake Test CA", true, 2);
	X509_NAME *root = X509_NAME_new();
	int rc = -1;

	if (x && root && X509_NAME_add_entry_by_txt(root, "CN", MBSTRING_ASC, (const unsigned char *)"Fake Alt Root",
	    -1, -1, 0) == 1 && X509_set_issuer_name(x, root) == 1 && X509_sign(x, ca->ca_key, EVP_sha256()) > 0 &&
	    (ca->alt_pem = pem_of_cert(x)) != NULL)
		rc = 0;
	X509_NAME_free(root);
	X509_free(x);
	return rc;
}

static int
ca_init(struct fake_ca *ca, struct loop *loop)
{
	cf_err err;

	memset(ca, 0, sizeof(*ca));
	ca->loop = loop;
	ca->serial_seq = 0x1000;
	if ((ca->ca_key = key_generate(KEY_EC_P256, &err)) == NULL ||
	    (ca->ca_cert = ca_make_cert(ca, ca->ca_key, "Fake Test CA", true, 1)) == NULL ||
	    (ca->ca_pem = pem_of_cert(ca->ca_cert)) == NULL || ca_make_alt(ca) != 0)
		return -1;
	return 0;
}

static void
ca_clear(struct fake_ca *ca)
{
	for (int i = 0; i < ca->norders; i++)
		free(ca->orders[i].chain_pem);
	for (int i = 0; i < MAX_NONCES; i++)
		free(ca->nonces[i]);
	EVP_PKEY_free(ca->ca_key);
	X509_free(ca->ca_cert);
	free(ca->ca_pem);
	free(ca->alt_pem);
}

/* Issues order o's certificate for pub: the leaf (serial from the CA's counter) and the CA. */
static int
ca_issue(struct fake_ca *ca, struct ca_order *o, EVP_PKEY *pub)
{
	long serial = ++ca->serial_seq;
	X509 *leaf = ca_make_cert(ca, pub, o->name, false, serial);
	char *leaf_pem = leaf ? pem_of_cert(leaf) : NULL;
	int rc = -1;

	X509_free(leaf);
	if (leaf_pem == NULL)
		return -1;
	free(o->chain_pem);
	if (asprintf(&o->chain_pem, "%s%s", leaf_pem, ca->ca_pem) < 0)
		o->chain_pem = NULL;
	else
		rc = 0;
	snprintf(o->serial, sizeof(o->serial), "%lx", serial);
	free(leaf_pem);
	return rc;
}

/* A new order slot for name, pending with a pending authorization. */
static struct ca_order *
ca_add_order(struct fake_ca *ca, const char *name)
{
	struct ca_order *o;

	if (ca->norders == MAX_ORDERS)
		return NULL;
	o = &ca->orders[ca->norders++];
	memset(o, 0, sizeof(*o));
	snprintf(o->name, sizeof(o->name), "%s", name);
	o->status = ca->authz_valid_at_once ? "ready" : "pending";
	o->authz_status = ca->authz_valid_at_once ? "valid" : "pending";
	return o;
}

static char *
ca_new_nonce(struct fake_ca *ca)
{
	char n[32];

	snprintf(n, sizeof(n), "nonce-%d", ++ca->nonce_seq);
	for (int i = 0; i < MAX_NONCES; i++) {
		if (ca->nonces[i] == NULL) {
			ca->nonces[i] = strdup(n);
			break;
		}
	}
	return strdup(n);
}

/* True when nonce was issued and not used yet; it is used now. */
static bool
ca_use_nonce(struct fake_ca *ca, const char *nonce)
{
	for (int i = 0; nonce && i < MAX_NONCES; i++) {
		if (ca->nonces[i] && strcmp(ca->nonces[i], nonce) == 0) {
			free(ca->nonces[i]);
			ca->nonces[i] = NULL;
			return true;
		}
	}
	return false;
}

/* The decoded base64url member key of a JWS object, NUL-terminated, or NULL. */
static char *
jws_part(json_t *jws, const char *key)
{
	const char *s = json_string_value(json_object_get(jws, key));
	unsigned char *out = NULL;
	size_t len = 0;
	char *text;

	if (s == NULL || b64url_decode(s, &out, &len) != 0)
		return NULL;
	text = strndup((const char *)out, len);
	free(out);
	return text;
}

/* An answer on its way back to the engine. */
struct delivery {
	struct fake_ca *ca;
	struct http_req *req;
};

static void
ca_deliver(void *arg)
{
	struct delivery *d = arg;
	struct http_req *req = d->req;

	d->ca->delivered++;
	free(d);
	req->done(req, req->arg);
}

static void
reply(struct http_req *req, long status, const char *content_type, const char *body)
{
	req->status = status;
	req->result = CURLE_OK;
	req->content_type = content_type ? strdup(content_type) : NULL;
	if (body && cf_buf_append(&req->body, body, strlen(body)) != 0)
		req->status = 0;
}

static void
reply_json(struct http_req *req, long status, json_t *doc)
{
	char *text = json_dumps(doc, JSON_COMPACT);

	reply(req, status, "application/json", text);
	free(text);
	json_decref(doc);
}

static void
reply_problem(struct http_req *req, long status, const char *type, const char *detail)
{
	reply_json(req, status, json_pack("{s:s, s:s}", "type", type, "detail", detail));
	free(req->content_type);
	req->content_type = strdup("application/problem+json");
}

/* The order at url under prefix ("/order/"), or NULL. */
static struct ca_order *
ca_find(struct fake_ca *ca, const char *url, const char *prefix)
{
	size_t plen = strlen(CA) + strlen(prefix);
	char *end;
	long i;

	if (strncmp(url, CA, strlen(CA)) != 0 || strncmp(url + strlen(CA), prefix, strlen(prefix)) != 0)
		return NULL;
	i = strtol(url + plen, &end, 10);
	if (end == url + plen || *end != '\0' || i < 0 || i >= ca->norders)
		return NULL;
	return &ca->orders[i];
}

static json_t *
order_doc(struct fake_ca *ca, struct ca_order *o)
{
	int i = (int)(o - ca->orders);
	char authz[64], fin[64], cert[64];
	json_t *doc;

	snprintf(authz, sizeof(authz), CA "/authz/%d", i);
	snprintf(fin, sizeof(fin), CA "/finalize/%d", i);
	snprintf(cert, sizeof(cert), CA "/cert/%d", i);
	doc = json_pack("{s:s, s:[s], s:s}", "status", o->status, "authorizations", authz, "finalize", fin);
	if (strcmp(o->status, "valid") == 0)
		json_object_set_new(doc, "certificate", json_string(cert));
	if (strcmp(o->status, "invalid") == 0)
		json_object_set_new(doc, "error", json_pack("{s:s, s:s}", "type",
		    "urn:ietf:params:acme:error:unauthorized", "detail", "an authorization failed"));
	return doc;
}

static json_t *
authz_doc(struct fake_ca *ca, struct ca_order *o)
{
	int i = (int)(o - ca->orders);
	const char *chal_status = !o->answered ? "pending" : strcmp(o->authz_status, "valid") == 0 ? "valid"
	    : strcmp(o->authz_status, "invalid") == 0 ? "invalid" : "processing";
	char url[64];
	json_t *chal;

	snprintf(url, sizeof(url), CA "/chal/%d", i);
	chal = json_pack("{s:s, s:s, s:s, s:[s]}", "type", "dns-persist-01", "url", url, "status", chal_status,
	    "issuer-domain-names", ISSUER);

	if (strcmp(chal_status, "invalid") == 0)
		json_object_set_new(chal, "error", json_pack("{s:s, s:s}", "type",
		    "urn:ietf:params:acme:error:unauthorized", "detail", "no TXT record with this account found"));
	return json_pack("{s:s, s:{s:s, s:s}, s:[o]}", "status", o->authz_status, "identifier", "type", "dns",
	    "value", o->name, "challenges", chal);
}

/* finalize: checks the CSR and issues for its key; the order goes processing or valid. */
static void
ca_finalize(struct fake_ca *ca, struct ca_order *o, const char *payload, struct http_req *req)
{
	json_t *doc = json_loads(payload ? payload : "", 0, NULL);
	const char *csr_b64 = json_string_value(json_object_get(doc, "csr"));
	unsigned char *der = NULL;
	const unsigned char *p;
	size_t len = 0;
	X509_REQ *csr = NULL;
	EVP_PKEY *pub = NULL;

	if (strcmp(o->status, "ready") != 0) {
		reply_problem(req, 403, "urn:ietf:params:acme:error:orderNotReady", "order is not ready");
		goto out;
	}
	if (csr_b64 == NULL || b64url_decode(csr_b64, &der, &len) != 0 || (p = der, csr = d2i_X509_REQ(NULL, &p,
	    (long)len)) == NULL || (pub = X509_REQ_get_pubkey(csr)) == NULL || X509_REQ_verify(csr, pub) != 1 ||
	    ca_issue(ca, o, pub) != 0) {
		ca->bad_requests++;
		reply_problem(req, 400, "urn:ietf:params:acme:error:badCSR", "unreadable CSR");
		goto out;
	}
	o->processing_polls = ca->processing_polls;
	o->status = ca->never_valid || o->processing_polls > 0 ? "processing" : "valid";
	reply_json(req, 200, order_doc(ca, o));
out:
	EVP_PKEY_free(pub);
	X509_REQ_free(csr);
	free(der);
	json_decref(doc);
}

/* A signed POST: checks the JWS header, then answers by URL. */
static void
ca_post(struct fake_ca *ca, struct http_req *req)
{
	json_t *jws = json_loads(req->body_out, 0, NULL), *prot = NULL, *ids;
	char *prot_text = jws_part(jws, "protected"), *payload = jws_part(jws, "payload");
	struct ca_order *o;

	prot = prot_text ? json_loads(prot_text, 0, NULL) : NULL;
	if (prot == NULL || payload == NULL ||
	    strcmp(json_string_value(json_object_get(prot, "url")) ?: "", req->url) != 0 ||
	    strcmp(json_string_value(json_object_get(prot, "kid")) ?: "", ACCOUNT_URL) != 0) {
		ca->bad_requests++;
		reply_problem(req, 400, "urn:ietf:params:acme:error:malformed", "bad JWS");
		goto out;
	}
	if (!ca_use_nonce(ca, json_string_value(json_object_get(prot, "nonce")))) {
		ca->bad_requests++;
		reply_problem(req, 400, "urn:ietf:params:acme:error:badNonce", "nonce not issued or used");
		goto out;
	}
	if (strcmp(req->url, CA "/new-order") == 0) {
		json_t *p = json_loads(payload, 0, NULL);
		ca->n_new_order++;
		ids = json_object_get(p, "identifiers");
		snprintf(ca->profiles_sent + strlen(ca->profiles_sent), sizeof(ca->profiles_sent) - strlen(ca->profiles_sent),
		    "%s%s", ca->profiles_sent[0] ? " " : "", json_string_value(json_object_get(p, "profile")) ?: "-");
		const char *rep = json_string_value(json_object_get(p, "replaces"));
		if (rep != NULL) {
			ca->n_replaces++;
			snprintf(ca->last_replaces, sizeof(ca->last_replaces), "%s", rep);
		}
		if (rep != NULL && ca->refuse_replaces > 0) {
			ca->refuse_replaces--;
			reply_problem(req, 409, "urn:ietf:params:acme:error:alreadyReplaced", "already has a replacement order");
		} else if (ca->bad_nonce_new_orders > 0) {
			ca->bad_nonce_new_orders--;
			reply_problem(req, 400, "urn:ietf:params:acme:error:badNonce", "JWS has an invalid anti-replay nonce");
		} else if (json_array_size(ids) != 1 || (o = ca_add_order(ca,
		    json_string_value(json_object_get(json_array_get(ids, 0), "value")) ?: "")) == NULL) {
			ca->bad_requests++;
			reply_problem(req, 400, "urn:ietf:params:acme:error:malformed", "bad identifiers");
		} else {
			char loc[64];
			snprintf(loc, sizeof(loc), CA "/order/%d", (int)(o - ca->orders));
			req->location = strdup(loc);
			reply_json(req, 201, order_doc(ca, o));
		}
		json_decref(p);
	} else if ((o = ca_find(ca, req->url, "/authz/")) != NULL) {
		ca->n_authz++;
		if (ca->authz_429 > 0) {
			ca->authz_429--;
			ca->t_429 = cf_mono_ms();
			req->retry_after_s = 1;
			reply_problem(req, 429, "urn:ietf:params:acme:error:rateLimited", "slow down");
		} else {
			if (ca->t_429 > 0 && ca->t_after_429 == 0)
				ca->t_after_429 = cf_mono_ms();
			reply_json(req, 200, authz_doc(ca, o));
		}
	} else if ((o = ca_find(ca, req->url, "/chal/")) != NULL) {
		ca->n_chal++;
		if (strcmp(payload, "{}") != 0)
			ca->bad_requests++;
		o->answered = true;
		o->authz_status = ca->authz_turns_invalid ? "invalid" : "valid";
		o->status = ca->authz_turns_invalid ? "invalid" : "ready";
		reply_json(req, 200, json_pack("{s:s, s:s}", "type", "dns-persist-01", "status", "processing"));
	} else if ((o = ca_find(ca, req->url, "/finalize/")) != NULL) {
		ca->n_finalize++;
		ca_finalize(ca, o, payload, req);
	} else if ((o = ca_find(ca, req->url, "/order/")) != NULL) {
		ca->n_order_get++;
		if (strcmp(o->status, "processing") == 0 && !ca->never_valid && o->processing_polls-- <= 0)
			o->status = "valid";
		reply_json(req, 200, order_doc(ca, o));
	} else if ((o = ca_find(ca, req->url, "/cert/")) != NULL && o->chain_pem) {
		ca->n_cert++;
		reply(req, 200, "application/pem-certificate-chain", o->chain_pem);
		if (ca->alternates) {
			char link[96];
			snprintf(link, sizeof(link), "Link: <" CA "/alt/%d>;rel=\"alternate\"\r\n", (int)(o - ca->orders));
			http_req_parse_header(req, link, strlen(link));
		}
	} else if ((o = ca_find(ca, req->url, "/alt/")) != NULL && o->chain_pem && ca->alternates) {
		/* the same leaf, then the CA's certificate that "Fake Alt Root" issued */
		char *alt = NULL;
		ca->n_alt++;
		if (asprintf(&alt, "%.*s%s", (int)(strlen(o->chain_pem) - strlen(ca->ca_pem)), o->chain_pem, ca->alt_pem) < 0)
			alt = NULL;
		reply(req, alt ? 200 : 500, "application/pem-certificate-chain", alt);
		free(alt);
	} else {
		ca->n_other++;
		reply_problem(req, 404, "urn:ietf:params:acme:error:malformed", "no such resource");
	}
out:
	json_decref(prot);
	json_decref(jws);
	free(prot_text);
	free(payload);
}

/* struct http_transport's send: answers at once, hands the answer back on a later loop turn. */
static int
ca_send(void *arg, struct http_req *req, cf_err *err)
{
	struct fake_ca *ca = arg;
	struct delivery *d;

	if (strcmp(req->url, CA "/dir") == 0) {
		ca->n_dir++;
		reply_json(req, 200, json_pack("{s:s, s:s, s:{s:{s:s, s:s}}}", "newNonce", CA "/new-nonce",
		    "newOrder", CA "/new-order", "meta", "profiles", "default", "90 days", "shortlived", "6 days"));
	} else if (strcmp(req->url, CA "/new-nonce") == 0) {
		ca->n_nonce++;
		reply(req, 200, NULL, NULL);
	} else if (req->body_out != NULL) {
		ca_post(ca, req);
	} else {
		ca->n_other++;
		reply(req, 404, NULL, NULL);
	}
	if (strcmp(req->url, CA "/dir") != 0)
		req->nonce = ca_new_nonce(ca);
	if ((d = malloc(sizeof(*d))) != NULL) {
		d->ca = ca;
		d->req = req;
	}
	if (d == NULL || loop_post(ca->loop, ca_deliver, d) != 0) {
		free(d);
		cf_errf(err, "fake CA: out of memory");
		return -1;
	}
	ca->sent++;
	return 0;
}

/* ---- the writer and the worker around the engine ---- */

struct msg_rec {
	enum outmsg_kind kind;
	int64_t job_id;
	char state[32];
	bool key_pem_order;
	char key_order[512];         /* the key stored before finalize */
	char serial[96];
	char key_pem[512];
	char problem_type[96];
	char detail[256];
	bool retry;
	int64_t retry_in_ms;
	char fqdn[96];
	char provider[32];
	char event_kind[32];
	bool confirmed;
	bool chain_alt;              /* OUT_ISSUED: the chain stored is the alternate */
};

/* The engines' --retry-base (1 s: the tests' retries come soon); a test may set it first. */
static int64_t harness_retry_base_ms = 1000;

struct harness {
	struct loop *loop;
	struct outbox outbox;
	struct fake_ca ca;
	struct http_transport transport;
	struct acme_config cfg;
	struct engine *eng;
	char *account_pem;
	char *record_value;          /* the record the engine composes for a.test */
	struct provider_registry *providers;
	/* the writer */
	struct msg_rec msgs[MAX_MSGS];
	int nmsgs;
	bool hold_finalizing;        /* keep the "finalizing" message without a stored step */
	struct outmsg *held;
	int account_reports;         /* OUT_ACCOUNT messages, not in msgs */
	bool offers_alternates;      /* what the last one said */
	/* the worker */
	int done_calls;
	enum job_outcome outcome[MAX_ORDERS];
	int64_t done_job[MAX_ORDERS];
};

static void
on_job_done(void *arg, struct job *job, enum job_outcome outcome, int64_t elapsed_ms)
{
	struct harness *h = arg;

	(void)elapsed_ms;
	if (h->done_calls < MAX_ORDERS) {
		h->outcome[h->done_calls] = outcome;
		h->done_job[h->done_calls] = job->id;
	}
	h->done_calls++;
	job_free(job);
}

static void
copy(char *dst, size_t n, const char *src)
{
	snprintf(dst, n, "%s", src ? src : "");
}

/* The writer: notes every message and gives it its stored step, but for one held back. */
static void
drain(struct harness *h)
{
	bool closed;
	struct outmsg *m = outbox_take_all(&h->outbox, 0, &closed);

	while (m) {
		struct outmsg *next = m->next;
		if (m->kind == OUT_ACCOUNT) {
			h->account_reports++;
			h->offers_alternates = m->offers_alternates;
		} else if (h->nmsgs < MAX_MSGS) {
			struct msg_rec *r = &h->msgs[h->nmsgs++];
			r->kind = m->kind;
			r->job_id = m->job_id;
			copy(r->state, sizeof(r->state), m->state);
			r->key_pem_order = m->key_pem_order != NULL;
			copy(r->key_order, sizeof(r->key_order), m->key_pem_order);
			copy(r->serial, sizeof(r->serial), m->serial);
			copy(r->key_pem, sizeof(r->key_pem), m->key_pem);
			copy(r->problem_type, sizeof(r->problem_type), m->problem_type);
			copy(r->detail, sizeof(r->detail), m->detail);
			r->retry = m->retry;
			r->retry_in_ms = m->retry_in_ms;
			copy(r->fqdn, sizeof(r->fqdn), m->fqdn);
			copy(r->provider, sizeof(r->provider), m->provider);
			copy(r->event_kind, sizeof(r->event_kind), m->event_kind);
			r->confirmed = m->confirmed;
			r->chain_alt = m->chain_pem && strcmp(m->chain_pem, h->ca.alt_pem) == 0;
		}
		m->next = NULL;
		if (h->hold_finalizing && h->held == NULL && m->kind == OUT_ORDER && m->state &&
		    strcmp(m->state, "finalizing") == 0) {
			h->held = m;
		} else {
			outmsg_stored(m, true);
			outmsg_free(m);
		}
		m = next;
	}
}

/* Runs the loop (and the writer) until n jobs are done or ms have passed; true when they are. */
static bool
run_until_done(struct harness *h, int n, int ms)
{
	int64_t until = cf_mono_ms() + ms;

	while (h->done_calls < n && cf_mono_ms() < until) {
		(void)loop_run_once(h->loop, 10);
		drain(h);
	}
	drain(h);
	return h->done_calls >= n;
}

static void
run_for(struct harness *h, int ms)
{
	int64_t until = cf_mono_ms() + ms;

	while (cf_mono_ms() < until) {
		(void)loop_run_once(h->loop, 5);
		drain(h);
	}
}

static void
harness_free(struct harness *h)
{
	CHECK(h->nmsgs < MAX_MSGS);         /* every message was noted: the counts above hold */
	engine_free(h->eng);
	loop_free(h->loop);
	outbox_destroy(&h->outbox);
	ca_clear(&h->ca);
	provider_registry_free(h->providers);
	cf_secret_free(h->account_pem);
	free(h->record_value);
	free(h);
}

/* A harness with an engine; with_manual loads the built-in accounts, "manual" without checks. */
static struct harness *
harness_new(bool with_manual, int64_t order_timeout_ms)
{
	struct harness *h = calloc(1, sizeof(*h));
	struct persist_params pp = { .variant = PERSIST_DRAFT01, .issuer = ISSUER, .account_url = ACCOUNT_URL };
	struct provider_env env = { .path = "" };
	struct provider_account *manual;
	EVP_PKEY *key = NULL;
	cf_err err = { { 0 } };

	if (h == NULL || outbox_init(&h->outbox) != 0) {
		free(h);
		return NULL;
	}
	if ((h->loop = loop_new(NULL, &err)) == NULL || ca_init(&h->ca, h->loop) != 0 ||
	    (key = key_generate(KEY_EC_P256, &err)) == NULL || (h->account_pem = key_to_pem(key, &err)) == NULL ||
	    (h->record_value = persist_record_value(&pp, &err)) == NULL)
		goto fail;
	if (with_manual) {
		if ((h->providers = provider_registry_load(&env, &err)) == NULL ||
		    (manual = provider_account_find(h->providers, "manual")) == NULL)
			goto fail;
		if (manual->verify)
			manual->verify->enabled = false; /* no DNS look-ups: nothing here serves the zone */
	}
	h->transport.send = ca_send;
	h->transport.arg = &h->ca;
	h->cfg.directory_url = CA "/dir";
	h->cfg.account_url = ACCOUNT_URL;
	h->cfg.key_pem = h->account_pem;
	h->cfg.transport = &h->transport;
	h->cfg.outbox = &h->outbox;
	h->cfg.providers = h->providers;
	h->cfg.order_timeout_ms = order_timeout_ms;
	h->cfg.retry_base_ms = harness_retry_base_ms;
	if ((h->eng = engine_new(h->loop, &h->cfg, on_job_done, h, &err)) == NULL)
		goto fail;
	EVP_PKEY_free(key);
	return h;
fail:
	fprintf(stderr, "  harness: %s\n", err.msg);
	EVP_PKEY_free(key);
	if (h)
		harness_free(h);
	return NULL;
}

/* A job for name; known: its record is known to be in place (no provider needed). */
static struct job *
make_job(struct harness *h, int64_t id, const char *name, bool known)
{
	struct job *job = job_new();

	if (job == NULL)
		return NULL;
	job->id = id;
	job->certificate_id = 100 + id;
	job->account_id = 7;
	job->attempt = 1;
	job->max_attempts = 3;
	job->key_type = KEY_EC_P256;
	job->provider = strdup("manual");
	if (job->provider == NULL || job_add_name(job, name) != 0 ||
	    (known && job_add_known_record(job, "_validation-persist.a.test", h->record_value) != 0)) {
		job_free(job);
		return NULL;
	}
	return job;
}

/* Messages of kind (and, when given, with state or event kind what). */
static int
count_msgs(const struct harness *h, enum outmsg_kind kind, const char *what)
{
	int n = 0;

	for (int i = 0; i < h->nmsgs; i++) {
		const struct msg_rec *r = &h->msgs[i];
		if (r->kind != kind)
			continue;
		if (what == NULL || (kind == OUT_ORDER && strcmp(r->state, what) == 0) ||
		    (kind == OUT_EVENT && strcmp(r->event_kind, what) == 0))
			n++;
	}
	return n;
}

static const struct msg_rec *
find_msg(const struct harness *h, enum outmsg_kind kind)
{
	for (int i = 0; i < h->nmsgs; i++)
		if (h->msgs[i].kind == kind)
			return &h->msgs[i];
	return NULL;
}

/* The messages in order, one word each: "order:created event:challenge verified ...". */
static const char *
trace(const struct harness *h)
{
	static char buf[1024];
	size_t len = 0;

	buf[0] = '\0';
	for (int i = 0; i < h->nmsgs && len < sizeof(buf) - 64; i++) {
		const struct msg_rec *r = &h->msgs[i];
		const char *sep = i ? " " : "";
		int n = 0;
		switch (r->kind) {
		case OUT_ORDER: n = snprintf(buf + len, sizeof(buf) - len, "%sorder:%s", sep, r->state); break;
		case OUT_RECORD_WRITTEN: n = snprintf(buf + len, sizeof(buf) - len, "%swritten", sep); break;
		case OUT_RECORD_VERIFIED: n = snprintf(buf + len, sizeof(buf) - len, "%sverified", sep); break;
		case OUT_ISSUED: n = snprintf(buf + len, sizeof(buf) - len, "%sissued", sep); break;
		case OUT_FAILED: n = snprintf(buf + len, sizeof(buf) - len, "%sfailed", sep); break;
		case OUT_EVENT: n = snprintf(buf + len, sizeof(buf) - len, "%sevent:%s", sep, r->event_kind); break;
		case OUT_ACCOUNT: break; /* drain counts them apart */
		}
		len += (size_t)n;
	}
	return buf;
}

/* ---- the cases ---- */

static void
test_happy_path(void)
{
	struct harness *h = harness_new(false, 60000);
	struct fake_ca *ca;
	const struct msg_rec *issued, *fin;

	CHECK(h != NULL);
	if (h == NULL)
		return;
	ca = &h->ca;
	engine_order_start(h->eng, make_job(h, 1, "a.test", true));
	CHECK(engine_orders(h->eng) == 1);
	CHECK(run_until_done(h, 1, 5000));
	run_for(h, 20); /* nothing more comes */
	CHECK(h->done_calls == 1 && h->outcome[0] == JOB_ISSUED && h->done_job[0] == 1);
	CHECK(ca->n_dir == 1);
	CHECK(ca->n_new_order == 1);
	CHECK(ca->n_authz == 2);        /* pending, then valid after the challenge */
	CHECK(ca->n_chal == 1);
	CHECK(ca->n_finalize == 1);
	CHECK(ca->n_order_get == 0);    /* finalize answered valid */
	CHECK(ca->n_cert == 1);
	CHECK(ca->n_nonce == 1);        /* every later nonce came with an answer */
	CHECK(ca->n_other == 0 && ca->bad_requests == 0);
	CHECK(ca->sent == 8);
	CHECK_STR(trace(h), "order:created event:challenge verified order:finalizing issued");
	fin = &h->msgs[3];
	CHECK(fin->kind == OUT_ORDER && fin->key_pem_order);
	issued = find_msg(h, OUT_ISSUED);
	CHECK(issued != NULL);
	if (issued) {
		CHECK_STR(issued->serial, ca->orders[0].serial);
		CHECK(strstr(issued->key_pem, "PRIVATE KEY") != NULL);
		CHECK_STR(issued->key_pem, fin->key_order); /* issued for the key stored before finalize */
		CHECK(issued->job_id == 1);
	}
	CHECK(count_msgs(h, OUT_RECORD_WRITTEN, NULL) == 0); /* the record was known */
	CHECK(h->account_reports == 1 && !h->offers_alternates); /* the download linked no alternate */
	CHECK(engine_idle(h->eng) && engine_orders(h->eng) == 0);
	harness_free(h);
}

static void
test_bad_nonce(void)
{
	struct harness *h = harness_new(false, 60000);

	CHECK(h != NULL);
	if (h == NULL)
		return;
	h->ca.bad_nonce_new_orders = 1;
	engine_order_start(h->eng, make_job(h, 2, "a.test", true));
	CHECK(run_until_done(h, 1, 5000));
	CHECK(h->done_calls == 1 && h->outcome[0] == JOB_ISSUED);
	CHECK(h->ca.n_new_order == 2);      /* the refused one and its retry */
	CHECK(h->ca.norders == 1);          /* one order created */
	CHECK(h->ca.n_finalize == 1 && h->ca.n_cert == 1);
	CHECK(h->ca.bad_requests == 0);     /* the retry used the fresh nonce, none twice */
	CHECK(count_msgs(h, OUT_ORDER, "created") == 1);
	CHECK(count_msgs(h, OUT_ISSUED, NULL) == 1 && count_msgs(h, OUT_FAILED, NULL) == 0);
	CHECK(engine_idle(h->eng));
	harness_free(h);
}

static void
test_rate_limited_retry_after(void)
{
	struct harness *h = harness_new(false, 60000);
	int64_t waited;

	CHECK(h != NULL);
	if (h == NULL)
		return;
	h->ca.authz_429 = 1;
	engine_order_start(h->eng, make_job(h, 3, "a.test", true));
	CHECK(run_until_done(h, 1, 5000));
	CHECK(h->done_calls == 1 && h->outcome[0] == JOB_ISSUED);
	waited = h->ca.t_after_429 - h->ca.t_429;
	CHECK(h->ca.t_429 > 0 && waited >= 1000 && waited < 2000);
	CHECK(h->ca.n_authz == 3);          /* 429, pending, valid */
	CHECK(h->ca.n_new_order == 1 && h->ca.n_finalize == 1 && h->ca.bad_requests == 0);
	CHECK(count_msgs(h, OUT_FAILED, NULL) == 0);
	CHECK(engine_idle(h->eng));
	harness_free(h);
}

/* A renewal's newOrder carries the CertID it replaces; refused, the order is made again without it. */
static void
replaces_case(int refuse)
{
	struct harness *h = harness_new(false, 60000);
	struct job *j;

	CHECK(h != NULL);
	if (h == NULL)
		return;
	h->ca.refuse_replaces = refuse;
	j = make_job(h, 4, "a.test", true);
	j->replaces = strdup("aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
	engine_order_start(h->eng, j);
	CHECK(run_until_done(h, 1, 5000));
	CHECK(h->done_calls == 1 && h->outcome[0] == JOB_ISSUED);
	CHECK(h->ca.n_replaces == 1);
	CHECK_STR(h->ca.last_replaces, "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
	CHECK(h->ca.n_new_order == 1 + refuse);  /* the refused one, then one without replaces */
	CHECK(h->ca.norders == 1 && h->ca.n_finalize == 1 && h->ca.bad_requests == 0);
	CHECK(count_msgs(h, OUT_ORDER, "created") == 1 && count_msgs(h, OUT_FAILED, NULL) == 0);
	CHECK(engine_idle(h->eng));
	harness_free(h);
}

static void
test_replaces_sent(void)
{
	replaces_case(0);
}

static void
test_replaces_refused(void)
{
	replaces_case(1);
}

/* The authorization turns invalid; attempt of max_attempts 3 decides the outcome. */
static void
invalid_authz(int attempt, enum job_outcome want)
{
	struct harness *h;
	struct job *job;
	const struct msg_rec *f;

	harness_retry_base_ms = 60000; /* the default: a second look must not wait for it */
	h = harness_new(false, 60000);
	harness_retry_base_ms = 1000;
	CHECK(h != NULL);
	if (h == NULL)
		return;
	h->ca.authz_turns_invalid = true;
	job = make_job(h, 4, "a.test", true);
	job->attempt = attempt;
	engine_order_start(h->eng, job);
	CHECK(run_until_done(h, 1, 5000));
	run_for(h, 20);
	CHECK(h->done_calls == 1 && h->outcome[0] == want);
	CHECK(h->ca.n_chal == 1 && h->ca.n_authz == 2);
	CHECK(h->ca.n_finalize == 0 && h->ca.n_cert == 0);
	CHECK(count_msgs(h, OUT_FAILED, NULL) == 1 && count_msgs(h, OUT_ISSUED, NULL) == 0);
	CHECK(count_msgs(h, OUT_ORDER, "failed") == 1 && count_msgs(h, OUT_ORDER, "finalizing") == 0);
	f = find_msg(h, OUT_FAILED);
	if (f) {
		CHECK_STR(f->problem_type, "urn:ietf:params:acme:error:unauthorized");
		CHECK(check_says(f->detail, "no TXT record with this account found"));
		CHECK(check_says(f->detail, "a.test"));
		CHECK(f->retry == (want == JOB_RETRY));
		/* the second look comes within seconds, not after the minute's back-off */
		if (want == JOB_RETRY)
			CHECK(f->retry_in_ms >= 5000 && f->retry_in_ms <= 6000);
	}
	CHECK(engine_idle(h->eng));
	harness_free(h);
}

static void
test_invalid_authz_second_look(void)
{
	invalid_authz(1, JOB_RETRY);
}

static void
test_invalid_authz_last_attempt(void)
{
	invalid_authz(3, JOB_FAILED);
}

/*
 * Resumes the CA's order 0, left in status by an earlier attempt; for processing and valid the
 * earlier attempt's key is stored and the CA issued for it.
 */
static void
resume(const char *status, bool with_key, int new_orders, int finalizes, int challenges)
{
	struct harness *h = harness_new(false, 60000);
	struct ca_order *o;
	struct job *job;
	EVP_PKEY *key = NULL;
	char *key_pem = NULL;
	const struct msg_rec *issued;
	cf_err err;

	CHECK(h != NULL);
	if (h == NULL)
		return;
	o = ca_add_order(&h->ca, "a.test");
	o->status = status;
	job = make_job(h, 5, "a.test", true);
	job->resume_url = strdup(CA "/order/0");
	if (strcmp(status, "pending") != 0) {
		o->authz_status = "valid";
		o->answered = true;
	}
	if (with_key && (strcmp(status, "processing") == 0 || strcmp(status, "valid") == 0)) {
		key = key_generate(KEY_EC_P256, &err);
		key_pem = key ? key_to_pem(key, &err) : NULL;
		CHECK(key_pem != NULL && ca_issue(&h->ca, o, key) == 0);
		job->resume_key_pem = key_pem ? strdup(key_pem) : NULL;
		o->processing_polls = 1;
	}
	engine_order_start(h->eng, job);
	CHECK(run_until_done(h, 1, 5000));
	CHECK(h->done_calls == 1 && h->outcome[0] == JOB_ISSUED);
	CHECK(h->ca.n_new_order == new_orders);
	CHECK(h->ca.n_finalize == finalizes);
	CHECK(h->ca.n_chal == challenges);
	CHECK(h->ca.n_cert == 1 && h->ca.bad_requests == 0);
	CHECK(count_msgs(h, OUT_EVENT, "resume") == 1);
	CHECK(count_msgs(h, OUT_ORDER, "created") == new_orders);
	CHECK(count_msgs(h, OUT_ORDER, "finalizing") == finalizes);
	issued = find_msg(h, OUT_ISSUED);
	CHECK(issued != NULL);
	if (issued && key_pem) {
		CHECK_STR(issued->key_pem, key_pem); /* issued with the stored key */
		CHECK_STR(issued->serial, o->serial);
	}
	if (with_key && strcmp(status, "processing") == 0)
		CHECK(h->ca.n_order_get == 2);  /* the resume fetch (processing), then a poll (valid) */
	if (with_key && strcmp(status, "valid") == 0)
		CHECK(h->ca.n_order_get == 1);  /* the resume fetch alone: downloads at once */
	CHECK(engine_idle(h->eng));
	EVP_PKEY_free(key);
	cf_secret_free(key_pem);
	harness_free(h);
}

static void
test_resume_pending(void)
{
	resume("pending", false, 0, 1, 1);
}

static void
test_resume_ready(void)
{
	resume("ready", false, 0, 1, 0);
}

static void
test_resume_processing(void)
{
	resume("processing", true, 0, 0, 0);
}

static void
test_resume_valid(void)
{
	resume("valid", true, 0, 0, 0);
}

static void
test_resume_invalid(void)
{
	resume("invalid", false, 1, 1, 1);
}

/* A processing order whose key was not stored cannot give a usable certificate: a new order. */
static void
test_resume_processing_without_key(void)
{
	resume("processing", false, 1, 1, 1);
}

/* finalize waits for the writer's word that the key is stored; stored says which word. */
static void
finalize_waits(bool stored)
{
	struct harness *h = harness_new(false, 60000);
	const struct msg_rec *f;

	CHECK(h != NULL);
	if (h == NULL)
		return;
	h->hold_finalizing = true;
	engine_order_start(h->eng, make_job(h, 6, "a.test", true));
	for (int i = 0; i < 500 && h->held == NULL; i++) {
		(void)loop_run_once(h->loop, 10);
		drain(h);
	}
	CHECK(h->held != NULL && h->held->key_pem_order != NULL);
	run_for(h, 300);
	CHECK(h->ca.n_finalize == 0);       /* nothing goes while the key is not stored */
	CHECK(h->done_calls == 0 && engine_orders(h->eng) == 1);
	if (h->held) {
		outmsg_stored(h->held, stored);
		outmsg_free(h->held);
		h->held = NULL;
	}
	CHECK(run_until_done(h, 1, 5000));
	run_for(h, 20);
	CHECK(h->done_calls == 1);
	if (stored) {
		CHECK(h->outcome[0] == JOB_ISSUED);
		CHECK(h->ca.n_finalize == 1 && h->ca.n_cert == 1);
	} else {
		CHECK(h->outcome[0] == JOB_RETRY);
		CHECK(h->ca.n_finalize == 0 && h->ca.n_cert == 0);
		f = find_msg(h, OUT_FAILED);
		CHECK(f != NULL);
		if (f) {
			CHECK_STR(f->problem_type, "certfleet:store");
			CHECK(f->retry);
		}
	}
	CHECK(engine_idle(h->eng));
	harness_free(h);
}

static void
test_finalize_waits_for_key(void)
{
	finalize_waits(true);
}

static void
test_finalize_never_without_key(void)
{
	finalize_waits(false);
}

/* Two orders need the same unknown record at once: the manual account writes it once. */
static void
test_record_written_once(void)
{
	struct harness *h = harness_new(true, 60000);
	const struct msg_rec *w;

	CHECK(h != NULL);
	if (h == NULL)
		return;
	engine_order_start(h->eng, make_job(h, 10, "a.test", false));
	engine_order_start(h->eng, make_job(h, 11, "a.test", false));
	CHECK(engine_orders(h->eng) == 2);
	CHECK(run_until_done(h, 2, 5000));
	CHECK(h->done_calls == 2 && h->outcome[0] == JOB_ISSUED && h->outcome[1] == JOB_ISSUED);
	CHECK(h->ca.n_new_order == 2 && h->ca.n_chal == 2 && h->ca.n_finalize == 2);
	CHECK(count_msgs(h, OUT_RECORD_WRITTEN, NULL) == 1);
	CHECK(count_msgs(h, OUT_EVENT, "record") == 2); /* both orders waited for that one write */
	w = find_msg(h, OUT_RECORD_WRITTEN);
	if (w) {
		CHECK_STR(w->fqdn, "_validation-persist.a.test");
		CHECK_STR(w->provider, "manual");
		CHECK(!w->confirmed);           /* verify is off */
	}
	/* a later order finds the record in place: no write, no wait */
	engine_order_start(h->eng, make_job(h, 12, "a.test", false));
	CHECK(run_until_done(h, 3, 5000));
	CHECK(h->done_calls == 3 && h->outcome[2] == JOB_ISSUED);
	CHECK(count_msgs(h, OUT_RECORD_WRITTEN, NULL) == 1);
	CHECK(count_msgs(h, OUT_EVENT, "record") == 2);
	CHECK(h->ca.n_chal == 3 && h->ca.bad_requests == 0);
	CHECK(engine_idle(h->eng));
	harness_free(h);
}

/* Without a provider account the unknown record cannot be written: the order fails for good. */
static void
test_record_without_provider(void)
{
	struct harness *h = harness_new(false, 60000);
	const struct msg_rec *f;

	CHECK(h != NULL);
	if (h == NULL)
		return;
	engine_order_start(h->eng, make_job(h, 13, "a.test", false));
	CHECK(run_until_done(h, 1, 5000));
	CHECK(h->done_calls == 1 && h->outcome[0] == JOB_FAILED);
	CHECK(h->ca.n_chal == 0 && h->ca.n_finalize == 0);
	f = find_msg(h, OUT_FAILED);
	CHECK(f != NULL);
	if (f) {
		CHECK_STR(f->problem_type, "certfleet:provider-rejected");
		CHECK(check_says(f->detail, "manual"));
	}
	CHECK(engine_idle(h->eng));
	harness_free(h);
}

/* The CA validates at once (the record was looked up when the order was made): no challenge. */
static void
test_authz_valid_at_once(void)
{
	struct harness *h = harness_new(false, 60000);

	CHECK(h != NULL);
	if (h == NULL)
		return;
	h->ca.authz_valid_at_once = true;
	engine_order_start(h->eng, make_job(h, 15, "a.test", false));
	CHECK(run_until_done(h, 1, 5000));
	CHECK(h->done_calls == 1 && h->outcome[0] == JOB_ISSUED);
	CHECK(h->ca.n_new_order == 1 && h->ca.n_authz == 0 && h->ca.n_chal == 0 && h->ca.n_finalize == 1);
	CHECK_STR(trace(h), "order:created order:finalizing issued");
	CHECK(engine_idle(h->eng));
	harness_free(h);
}

/* Cancelled while finalize waits for its key: ends at once, and the late stored step sends nothing. */
static void
test_cancel_while_key_stored(void)
{
	struct harness *h = harness_new(false, 60000);
	const struct msg_rec *f;

	CHECK(h != NULL);
	if (h == NULL)
		return;
	h->hold_finalizing = true;
	engine_order_start(h->eng, make_job(h, 16, "a.test", true));
	for (int i = 0; i < 500 && h->held == NULL; i++) {
		(void)loop_run_once(h->loop, 10);
		drain(h);
	}
	CHECK(h->held != NULL);
	engine_order_cancel(h->eng, 999);   /* another job: nothing happens */
	CHECK(h->done_calls == 0 && engine_orders(h->eng) == 1);
	engine_order_cancel(h->eng, 16);
	CHECK(h->done_calls == 1 && h->outcome[0] == JOB_CANCELLED);
	CHECK(engine_orders(h->eng) == 0);
	/*
	 * Not idle yet: the writer's stored step will post to this loop and land in the order, so
	 * a worker that freed its engine and loop now would leave the writer a freed loop.
	 */
	CHECK(!engine_idle(h->eng));
	if (h->held) {
		outmsg_stored(h->held, true);
		outmsg_free(h->held);
		h->held = NULL;
	}
	run_for(h, 100);
	CHECK(h->done_calls == 1);
	CHECK(h->ca.n_finalize == 0);
	f = find_msg(h, OUT_FAILED);
	CHECK(f != NULL);
	if (f) {
		CHECK_STR(f->problem_type, "certfleet:cancelled");
		CHECK(!f->retry);
	}
	CHECK(engine_idle(h->eng));
	harness_free(h);
}

/* Cancelled with newOrder in flight: its answer is dropped, nothing more is sent. */
static void
test_cancel_with_request_in_flight(void)
{
	struct harness *h = harness_new(false, 60000);
	int sent;

	CHECK(h != NULL);
	if (h == NULL)
		return;
	engine_order_start(h->eng, make_job(h, 17, "a.test", true));
	for (int i = 0; i < 500 && h->ca.n_new_order == 0; i++)
		(void)loop_run_once(h->loop, 10);
	CHECK(h->ca.n_new_order == 1 && h->ca.delivered == h->ca.sent - 1); /* its answer is on the way */
	sent = h->ca.sent;
	engine_order_cancel(h->eng, 17);
	CHECK(h->done_calls == 1 && h->outcome[0] == JOB_CANCELLED);
	run_for(h, 100);
	CHECK(h->ca.delivered == h->ca.sent);
	CHECK(h->done_calls == 1 && h->ca.sent == sent);
	CHECK(count_msgs(h, OUT_ORDER, "created") == 0);
	CHECK(count_msgs(h, OUT_FAILED, NULL) == 1);
	CHECK(engine_idle(h->eng));
	harness_free(h);
}

/* The CA never finishes the order: the deadline ends it, retryable. */
static void
test_order_deadline(void)
{
	struct harness *h = harness_new(false, 400);
	const struct msg_rec *f;
	int64_t t0 = cf_mono_ms();

	CHECK(h != NULL);
	if (h == NULL)
		return;
	h->ca.never_valid = true;
	engine_order_start(h->eng, make_job(h, 14, "a.test", true));
	CHECK(run_until_done(h, 1, 5000));
	CHECK(cf_mono_ms() - t0 >= 400);
	CHECK(h->done_calls == 1 && h->outcome[0] == JOB_RETRY);
	CHECK(h->ca.n_finalize == 1 && h->ca.n_order_get >= 1 && h->ca.n_cert == 0);
	f = find_msg(h, OUT_FAILED);
	CHECK(f != NULL);
	if (f) {
		CHECK_STR(f->problem_type, "certfleet:timeout");
		CHECK(f->retry);
	}
	CHECK(engine_idle(h->eng));
	harness_free(h);
}

/*
 * The validation slots of a CA: an answer waits while another worker holds the only slot (no
 * challenge goes out), an order cancelled while it waits leaves the line, and when the slot comes
 * back the answers go one at a time; every slot is given back at the end.
 */
static void
test_validation_slots(void)
{
	struct harness *h = harness_new(false, 60000);
	struct ca_validations v = { .cap = 1 };
	cf_err err = { { 0 } };

	CHECK(h != NULL);
	if (h == NULL)
		return;
	atomic_init(&v.n, 0);
	engine_free(h->eng);
	h->cfg.validations = &v;
	h->eng = engine_new(h->loop, &h->cfg, on_job_done, h, &err);
	CHECK(h->eng != NULL);
	if (h->eng == NULL) {
		harness_free(h);
		return;
	}
	CHECK(ca_validations_take(&v));           /* another worker's answer holds the slot */
	engine_order_start(h->eng, make_job(h, 21, "a.test", true));
	engine_order_start(h->eng, make_job(h, 22, "a.test", true));
	engine_order_start(h->eng, make_job(h, 23, "a.test", true));
	run_for(h, 300);
	CHECK(h->ca.n_chal == 0);                 /* nobody answered */
	CHECK(h->ca.n_authz == 3);                /* each fetched its authorization and waits */
	CHECK(h->done_calls == 0 && engine_orders(h->eng) == 3);
	engine_order_cancel(h->eng, 22);          /* leaves the line */
	CHECK(h->done_calls == 1 && h->outcome[0] == JOB_CANCELLED && h->done_job[0] == 22);
	CHECK(atomic_load(&v.n) == 1);            /* the cancelled order held no slot */
	ca_validations_release(&v);
	CHECK(run_until_done(h, 3, 5000));
	CHECK(h->ca.n_chal == 2);                 /* the two left answered, the cancelled one never */
	CHECK(count_msgs(h, OUT_ISSUED, NULL) == 2);
	CHECK(atomic_load(&v.n) == 0);            /* both slots came back with the verdicts */
	CHECK(engine_idle(h->eng) && engine_orders(h->eng) == 0);
	harness_free(h);
}

/*
 * A profile the directory offers goes out in newOrder; one it lacks fails its job for good with
 * certfleet:profile before any newOrder, naming the profile and those offered; no profile, none sent.
 */
static void
test_profiles(void)
{
	struct harness *h = harness_new(false, 60000);
	struct job *a, *b, *c;
	const struct msg_rec *f;

	CHECK(h != NULL);
	if (h == NULL)
		return;
	a = make_job(h, 1, "a.test", true);
	b = make_job(h, 2, "a.test", true);
	c = make_job(h, 3, "a.test", true);
	CHECK(a && b && c);
	if (a == NULL || b == NULL || c == NULL || (a->profile = strdup("shortlived")) == NULL ||
	    (b->profile = strdup("retired")) == NULL) {
		job_free(a);
		job_free(b);
		job_free(c);
		harness_free(h);
		return;
	}
	engine_order_start(h->eng, a);
	CHECK(run_until_done(h, 1, 5000));
	engine_order_start(h->eng, b);
	CHECK(run_until_done(h, 2, 5000));
	engine_order_start(h->eng, c);
	CHECK(run_until_done(h, 3, 5000));
	CHECK(h->done_calls == 3);
	CHECK(h->outcome[0] == JOB_ISSUED && h->outcome[1] == JOB_FAILED && h->outcome[2] == JOB_ISSUED);
	CHECK(h->ca.n_new_order == 2);  /* none for the profile the CA lacks */
	CHECK_STR(h->ca.profiles_sent, "shortlived -");
	f = find_msg(h, OUT_FAILED);
	CHECK(f != NULL);
	if (f) {
		CHECK(f->job_id == 2);
		CHECK_STR(f->problem_type, "certfleet:profile");
		CHECK(!f->retry);
		CHECK(strstr(f->detail, "\"retired\"") != NULL && strstr(f->detail, "default, shortlived") != NULL);
	}
	harness_free(h);
}

/* The job of id with preferred chain pref (NULL: none), run to its end. */
static void
run_preferring(struct harness *h, int64_t id, const char *pref)
{
	struct job *j = make_job(h, id, "a.test", true);

	CHECK(j != NULL);
	if (j == NULL || (pref && (j->preferred_chain = strdup(pref)) == NULL)) {
		job_free(j);
		return;
	}
	engine_order_start(h->eng, j);
	CHECK(run_until_done(h, (int)id, 5000));
}

/* The stored chain of job id: 'a' alternate, 'd' default, '-' none issued. */
static char
chain_of(const struct harness *h, int64_t id)
{
	for (int i = 0; i < h->nmsgs; i++)
		if (h->msgs[i].kind == OUT_ISSUED && h->msgs[i].job_id == id)
			return h->msgs[i].chain_alt ? 'a' : 'd';
	return '-';
}

/*
 * Preferred chains: an alternate whose topmost certificate the preferred CN issued is fetched
 * and stored; a default that matches, or no preference, costs no other request; no match stores
 * the default with a "chain" event. Whether the CA offers alternates is reported once.
 */
static void
test_preferred_chain(void)
{
	struct harness *h = harness_new(false, 60000);
	int alt_after[4];

	CHECK(h != NULL);
	if (h == NULL)
		return;
	h->ca.alternates = true;
	run_preferring(h, 1, "Fake Alt Root");
	alt_after[0] = h->ca.n_alt;
	run_preferring(h, 2, "Fake Test CA");  /* the default chain's self-signed top */
	alt_after[1] = h->ca.n_alt;
	run_preferring(h, 3, "No Such Root");
	alt_after[2] = h->ca.n_alt;
	run_preferring(h, 4, NULL);
	alt_after[3] = h->ca.n_alt;
	CHECK(h->done_calls == 4);
	for (int i = 0; i < 4 && i < h->done_calls; i++)
		CHECK(h->outcome[i] == JOB_ISSUED);
	CHECK(alt_after[0] == 1 && alt_after[1] == 1 && alt_after[2] == 2 && alt_after[3] == 2);
	CHECK(h->ca.n_cert == 4 && h->ca.bad_requests == 0 && h->ca.n_other == 0);
	CHECK(chain_of(h, 1) == 'a' && chain_of(h, 2) == 'd' && chain_of(h, 3) == 'd' && chain_of(h, 4) == 'd');
	CHECK(count_msgs(h, OUT_EVENT, "chain") == 2); /* the alternate stored, and the one without a match */
	for (int i = 0; i < h->nmsgs; i++) {
		const struct msg_rec *r = &h->msgs[i];
		if (r->kind == OUT_EVENT && strcmp(r->event_kind, "chain") == 0)
			CHECK((r->job_id == 1 && strstr(r->detail, "stored the alternate chain") != NULL) ||
			    (r->job_id == 3 && strstr(r->detail, "\"No Such Root\"") != NULL));
	}
	CHECK(h->account_reports == 1 && h->offers_alternates);
	harness_free(h);
}

int
main(void)
{
	RUN(test_happy_path);
	RUN(test_bad_nonce);
	RUN(test_rate_limited_retry_after);
	RUN(test_replaces_sent);
	RUN(test_replaces_refused);
	RUN(test_invalid_authz_second_look);
	RUN(test_invalid_authz_last_attempt);
	RUN(test_resume_pending);
	RUN(test_resume_ready);
	RUN(test_resume_processing);
	RUN(test_resume_valid);
	RUN(test_resume_invalid);
	RUN(test_resume_processing_without_key);
	RUN(test_finalize_waits_for_key);
	RUN(test_finalize_never_without_key);
	RUN(test_record_written_once);
	RUN(test_record_without_provider);
	RUN(test_authz_valid_at_once);
	RUN(test_cancel_while_key_stored);
	RUN(test_cancel_with_request_in_flight);
	RUN(test_order_deadline);
	RUN(test_validation_slots);
	RUN(test_profiles);
	RUN(test_preferred_chain);
	return CHECK_DONE();
}
