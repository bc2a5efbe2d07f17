/* http.c - HTTP transfers on libcurl easy handles: request set-up and response header capture. */
#include "http.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define HTTP_MAX_BODY (16L * 1024 * 1024) /* an ACME response larger than this is refused */

static size_t
on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct http_req *req = userdata;
	size_t n = size * nmemb;

	if (req->body.len + n > HTTP_MAX_BODY)
		return 0;
	if (cf_buf_append(&req->body, ptr, n) != 0)
		return 0;
	return n;
}

bool
http_url_loopback(const char *url)
{
	CURLU *u = curl_url();
	char *host = NULL;
	bool loopback = false;
	struct in_addr a4;
	struct in6_addr a6;

	if (u == NULL || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
		goto out;
	size_t n = strlen(host);
	if (n > 2 && host[0] == '[' && host[n - 1] == ']') {
		host[n - 1] = '\0';
		loopback = inet_pton(AF_INET6, host + 1, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
	} else if (inet_pton(AF_INET, host, &a4) == 1) {
		loopback = (ntohl(a4.s_addr) >> 24) == 127;
	} else {
		loopback = strcasecmp(host, "localhost") == 0 || strcasecmp(host, "localhost.") == 0;
	}
out:
	curl_free(host);
	curl_url_cleanup(u);
	return loopback;
}

int
http_url_check(const char *url, bool allow_http_loopback, const char *what, cf_err *err)
{
	if (strncasecmp(url, "https://", 8) == 0)
		return 0;
	if (strncasecmp(url, "http://", 7) != 0) {
		cf_errf(err, "%s %s: not an https:// URL", what, url);
		return -1;
	}
	if (allow_http_loopback && http_url_loopback(url))
		return 0;
	if (http_url_loopback(url))
		cf_errf(err, "%s %s: plain http is refused; use https, or allow plain http to this loopback "
		    "host with --allow-http-loopback or CERTFLEET_ALLOW_HTTP_LOOPBACK=1", what, url);
	else
		cf_errf(err, "%s %s: plain http is refused; use https (plain http is allowed only to a "
		    "loopback host, with --allow-http-loopback or CERTFLEET_ALLOW_HTTP_LOOPBACK=1)", what, url);
	return -1;
}

/*
 * Copies a header value without surrounding white space; NULL when a CR or LF is left inside it
 * (RFC 9112 2.2: a bare CR makes the field invalid), so that none reaches a URL or a JWS header.
 */
static char *
header_value(const char *v, size_t len)
{
	while (len > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		len--;
	}
	while (len > 0 && isspace((unsigned char)v[len - 1]))
		len--;
	if (memchr(v, '\r', len) != NULL || memchr(v, '\n', len) != NULL)
		return NULL;
	return strndup(v, len);
}

/* True when the link-params after a link's '>' say rel=NAME (quoted or not, alone or in a list). */
static bool
link_rel_is(const char *params, const char *name)
{
	const char *rel = strstr(params, "rel=");
	size_t n = strlen(name), len;

	if (rel == NULL)
		return false;
	rel += 4;
	if (*rel == '"') {
		const char *end = strchr(++rel, '"');
		len = end ? (size_t)(end - rel) : strlen(rel);
	} else {
		len = strcspn(rel, "; \t\r\n");
	}
	/* a quoted value may list several relation types, separated by spaces */
	for (size_t i = 0; i + n <= len; i++) {
		if ((i == 0 || rel[i - 1] == ' ') && strncmp(rel + i, name, n) == 0 && (i + n == len || rel[i + n] == ' '))
			return true;
	}
	return false;
}

static void
parse_link(struct http_req *req, const char *v, size_t len)
{
	/* Link: <https://ca/acme/dir>;rel="up" (one header may carry several links) */
	char *copy = strndup(v, len), *save = NULL;

	if (copy == NULL)
		return;
	for (char *part = strtok_r(copy, ",", &save); part; part = strtok_r(NULL, ",", &save)) {
		char *lt = strchr(part, '<'), *gt = lt ? strchr(lt, '>') : NULL;
		if (gt == NULL || strcspn(lt + 1, "\r\n>") != (size_t)(gt - lt - 1))
			continue;
		if (req->link_up == NULL && link_rel_is(gt, "up")) {
			req->link_up = strndup(lt + 1, (size_t)(gt - lt - 1));
		} else if (link_rel_is(gt, "alternate") && req->nlink_alternates < HTTP_LINK_ALTERNATES_MAX) {
			char **a = realloc(req->link_alternates, (req->nlink_alternates + 1) * sizeof(*a));
			if (a == NULL)
				break;
			req->link_alternates = a;
			if ((a[req->nlink_alternates] = strndup(lt + 1, (size_t)(gt - lt - 1))) != NULL)
				req->nlink_alternates++;
		}
	}
	free(copy);
}

static void
links_clear(struct http_req *req)
{
	free(req->link_up);
	req->link_up = NULL;
	for (size_t i = 0; i < req->nlink_alternates; i++)
		free(req->link_alternates[i]);
	free(req->link_alternates);
	req->link_alternates = NULL;
	req->nlink_alternates = 0;
}

void
http_req_parse_header(struct http_req *req, const char *buf, size_t n)
{
	const char *colon = memchr(buf, ':', n);
	size_t nlen, vlen;

	if (n >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
		/* a new response (after a 100 or a redirect): forget the previous headers */
		free(req->nonce);
		free(req->location);
		free(req->content_type);
		links_clear(req);
		req->nonce = req->location = req->content_type = NULL;
		req->retry_after_s = -1;
		return;
	}
	if (colon == NULL)
		return;
	nlen = (size_t)(colon - buf);
	vlen = n - nlen - 1;
#define IS(name) (nlen == sizeof(name) - 1 && strncasecmp(buf, name, nlen) == 0)
	if (IS("replay-nonce")) {
		free(req->nonce);
		req->nonce = header_value(colon + 1, vlen);
	} else if (IS("location")) {
		free(req->location);
		req->location = header_value(colon + 1, vlen);
	} else if (IS("content-type")) {
		free(req->content_type);
		req->content_type = header_value(colon + 1, vlen);
	} else if (IS("retry-after")) {
		/*
		 * delay-seconds or an HTTP-date (RFC 9110 10.2.3), clamped to [0, HTTP_RETRY_AFTER_MAX_S]
		 * here, where it is read, so that no absurd value reaches a timer or a shared rate limit;
		 * an unreadable value means 1 s
		 */
		char *v = header_value(colon + 1, vlen);
		char *end = NULL;
		long long s;
		errno = 0;
		s = v ? strtoll(v, &end, 10) : -1;
		if (v && end != v && *end == '\0' && (s >= 0 || errno == ERANGE)) {
			req->retry_after_s = s < 0 || s > HTTP_RETRY_AFTER_MAX_S ? HTTP_RETRY_AFTER_MAX_S : (long)s;
		} else if (v && end != v && *end == '\0') {
			req->retry_after_s = 0; /* a negative delay: now */
		} else {
			time_t when = v ? curl_getdate(v, NULL) : -1;
			time_t now = time(NULL);
			long long d = when < 0 ? 1 : (when > now ? (long long)when - (long long)now : 0);
			req->retry_after_s = d > HTTP_RETRY_AFTER_MAX_S ? HTTP_RETRY_AFTER_MAX_S : (long)d;
		}
		free(v);
	} else if (IS("link")) {
		parse_link(req, colon + 1, vlen);
	}
#undef IS
}

static size_t
on_header(char *buf, size_t size, size_t nitems, void *userdata)
{
	size_t n = size * nitems;

	http_req_parse_header(userdata, buf, n);
	return n;
}

struct http_req *
http_req_new(const struct http_settings *s, const char *url, const char *post_body,
    const char *content_type, bool head, cf_err *err)
{
	struct http_req *req = NULL;
	char ct[128];

	if (http_url_check(url, s && s->allow_http_loopback, "request to", err) != 0)
		return NULL;
	if ((req = calloc(1, sizeof(*req))) == NULL)
		goto oom;
	req->retry_after_s = -1;
	req->url = strdup(url);
	req->easy = curl_easy_init();
	if (req->url == NULL || req->easy == NULL)
		goto oom;
	curl_easy_setopt(req->easy, CURLOPT_URL, req->url);
	curl_easy_setopt(req->easy, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(req->easy, CURLOPT_WRITEDATA, req);
	curl_easy_setopt(req->easy, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(req->easy, CURLOPT_HEADERDATA, req);
	curl_easy_setopt(req->easy, CURLOPT_ERRORBUFFER, req->errbuf);
	curl_easy_setopt(req->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(req->easy, CURLOPT_USERAGENT, "certfleet/0.1");
	curl_easy_setopt(req->easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	curl_easy_setopt(req->easy, CURLOPT_PIPEWAIT, 1L);
	/* ACME answers are small; curl's 16 KiB default receive buffer per transfer would cost
	 * 160 MB with 10,000 polls in flight */
	curl_easy_setopt(req->easy, CURLOPT_BUFFERSIZE, 4096L);
	curl_easy_setopt(req->easy, CURLOPT_PROTOCOLS_STR, "https,http");
	curl_easy_setopt(req->easy, CURLOPT_TIMEOUT_MS, s && s->timeout_ms > 0 ? s->timeout_ms : 60000L);
	curl_easy_setopt(req->easy, CURLOPT_CONNECTTIMEOUT_MS,
	    s && s->connect_timeout_ms > 0 ? s->connect_timeout_ms : 10000L);
	if (s && s->ca_bundle)
		curl_easy_setopt(req->easy, CURLOPT_CAINFO, s->ca_bundle);
	if (s && s->share)
		curl_easy_setopt(req->easy, CURLOPT_SHARE, s->share);
	if (head) {
		curl_easy_setopt(req->easy, CURLOPT_NOBODY, 1L);
	} else if (post_body) {
		req->body_out = strdup(post_body);
		if (req->body_out == NULL)
			goto oom;
		curl_easy_setopt(req->easy, CURLOPT_POSTFIELDS, req->body_out);
		curl_easy_setopt(req->easy, CURLOPT_POSTFIELDSIZE, (long)strlen(req->body_out));
		snprintf(ct, sizeof(ct), "Content-Type: %s", content_type ? content_type : "application/json");
		req->headers = curl_slist_append(req->headers, ct);
		/* no "Expect: 100-continue" round trip */
		req->headers = curl_slist_append(req->headers, "Expect:");
		if (req->headers == NULL)
			goto oom;
		curl_easy_setopt(req->easy, CURLOPT_HTTPHEADER, req->headers);
	}
	return req;
oom:
	cf_errf(err, "http_req_new %s: out of memory", url);
	http_req_free(req);
	return NULL;
}

int
http_req_header(struct http_req *req, const char *line)
{
	struct curl_slist *l = curl_slist_append(req->headers, line);

	if (l == NULL)
		return -1;
	req->headers = l;
	curl_easy_setopt(req->easy, CURLOPT_HTTPHEADER, req->headers);
	return 0;
}

int
http_req_method(struct http_req *req, const char *method)
{
	return curl_easy_setopt(req->easy, CURLOPT_CUSTOMREQUEST, method) == CURLE_OK ? 0 : -1;
}

void
http_req_free(struct http_req *req)
{
	if (req == NULL)
		return;
	if (req->easy)
		curl_easy_cleanup(req->easy);
	curl_slist_free_all(req->headers);
	free(req->url);
	free(req->body_out);
	cf_buf_free(&req->body);
	free(req->nonce);
	free(req->location);
	free(req->content_type);
	links_clear(req);
	free(req);
}

int
http_req_perform(struct http_req *req, cf_err *err)
{
	req->result = curl_easy_perform(req->easy);
	curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &req->status);
	if (req->result != CURLE_OK) {
		char b[CURL_ERROR_SIZE + 64];
		cf_errf(err, "%s: %s", req->url, http_req_error(req, b, sizeof(b)));
		return -1;
	}
	return 0;
}

const char *
http_req_error(const struct http_req *req, char *buf, size_t len)
{
	if (req->result != CURLE_OK)
		snprintf(buf, len, "%s", req->errbuf[0] ? req->errbuf : curl_easy_strerror(req->result));
	else
		snprintf(buf, len, "HTTP %ld", req->status);
	return buf;
}

/* One lock per kind of shared data; a share handle is process-wide, so these are too. */
static pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
static pthread_once_t share_locks_once = PTHREAD_ONCE_INIT;

static void
share_locks_init(void)
{
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&share_locks[i], NULL);
}

static void
share_lock(CURL *handle, curl_lock_data data, curl_lock_access access, void *userptr)
{
	(void)handle;
	(void)access;
	(void)userptr;
	pthread_mutex_lock(&share_locks[data]);
}

static void
share_unlock(CURL *handle, curl_lock_data data, void *userptr)
{
	(void)handle;
	(void)userptr;
	pthread_mutex_unlock(&share_locks[data]);
}

CURLSH *
http_share_new(cf_err *err)
{
	CURLSH *sh;

	pthread_once(&share_locks_once, share_locks_init);
	sh = curl_share_init();
	if (sh == NULL || curl_share_setopt(sh, CURLSHOPT_LOCKFUNC, share_lock) != CURLSHE_OK ||
	    curl_share_setopt(sh, CURLSHOPT_UNLOCKFUNC, share_unlock) != CURLSHE_OK ||
	    curl_share_setopt(sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK ||
	    curl_share_setopt(sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK) {
		cf_errf(err, "curl_share_init: cannot share DNS cache and TLS sessions");
		if (sh)
			curl_share_cleanup(sh);
		return NULL;
	}
	return sh;
}

void
http_share_free(CURLSH *share)
{
	if (share)
		curl_share_cleanup(share);
}
