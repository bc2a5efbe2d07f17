/*
 * http.h - one HTTP transfer as the worker loop runs it: a libcurl easy handle with the response
 * body and the headers ACME needs (Replay-Nonce, Location, Retry-After, Link rel=up and
 * rel=alternate, Content-Type).
 */
#ifndef CF_HTTP_H
#define CF_HTTP_H

#include <curl/curl.h>
#include <stdbool.h>

#include "cf.h"

/* The most Link rel="alternate" URLs kept per response (a certificate's alternate chains). */
#define HTTP_LINK_ALTERNATES_MAX 8

/* The longest Retry-After believed, in seconds (a day): longer ones are cut to it. */
#define HTTP_RETRY_AFTER_MAX_S 86400L

struct http_req;
typedef void (*http_done_fn)(struct http_req *req, void *arg);

struct http_settings {
	const char *ca_bundle;  /* CURLOPT_CAINFO, NULL = system store */
	long timeout_ms;        /* whole transfer */
	long connect_timeout_ms;
	CURLSH *share;          /* process-wide DNS cache, may be NULL */
	bool allow_http_loopback; /* plain http to a loopback host (a local test server or API) */
};

/*
 * Whether url may be used: https, or plain http to a loopback host (127.0.0.0/8, ::1, localhost)
 * when allow_http_loopback. 0, or -1 with err naming what (e.g. "ACME directory") and the URL.
 * http_req_new checks every URL this way, so a URL that a server hands out is held to it too.
 */
int http_url_check(const char *url, bool allow_http_loopback, const char *what, cf_err *err) CF_MUST;

/* True when url's host is a loopback address or localhost (whatever the scheme). */
bool http_url_loopback(const char *url);

struct http_req {
	CURL *easy;
	struct curl_slist *headers;
	char *url;
	char *body_out;         /* request body (owned), NULL for GET/HEAD */
	cf_buf body;            /* response body */
	long status;            /* HTTP status, 0 when no response */
	CURLcode result;        /* transport result */
	char errbuf[CURL_ERROR_SIZE];
	char *nonce;            /* Replay-Nonce */
	char *location;         /* Location */
	char *content_type;
	char *link_up;          /* Link: <...>;rel="up" */
	char **link_alternates; /* Link: <...>;rel="alternate", in the order sent (RFC 8555 7.4.2) */
	size_t nlink_alternates; /* at most HTTP_LINK_ALTERNATES_MAX; more are ignored */
	long retry_after_s;     /* Retry-After in seconds, -1 when absent, else 0..HTTP_RETRY_AFTER_MAX_S */
	http_done_fn done;
	void *arg;
};

/*
 * Where an event loop's requests go when not to its libcurl multi handle: a stand-in that
 * answers them (the order engine's unit test plays a CA this way, without a network).
 */
struct http_transport {
	/* Takes req; req->done must follow later, on the loop thread. -1 with err set: nothing sent. */
	int (*send)(void *arg, struct http_req *req, cf_err *err);
	void *arg;
};

/*
 * A request for url: GET when post_body == NULL and !head, HEAD when head, else POST of post_body
 * (copied) with content_type. Returns NULL with err set.
 */
struct http_req *http_req_new(const struct http_settings *s, const char *url, const char *post_body,
    const char *content_type, bool head, cf_err *err) CF_MUST;
void http_req_free(struct http_req *req);

/*
 * Adds a request header line ("Authorization: Bearer ..."). Header values are never logged, so a
 * credential may travel here (and only here). -1 when out of memory.
 */
int http_req_header(struct http_req *req, const char *line) CF_MUST;

/*
 * Reads one response header line (n octets, not NUL-terminated, as libcurl hands it over with its
 * CRLF) into req: Replay-Nonce, Location, Content-Type, Link rel="up" and rel="alternate",
 * Retry-After; a status line
 * forgets the headers read before it. The transfer's header callback; apart for the fuzz target.
 */
void http_req_parse_header(struct http_req *req, const char *buf, size_t n);

/* Sends with another method (PUT, PATCH, DELETE) instead of GET or POST; -1 when out of memory. */
int http_req_method(struct http_req *req, const char *method) CF_MUST;

/*
 * A share handle for all threads of the process: DNS cache and TLS sessions (never connections,
 * which stay with each worker's multi handle), with its own locks. NULL on failure.
 */
CURLSH *http_share_new(cf_err *err) CF_MUST;
void http_share_free(CURLSH *share);

/* Runs req to completion on the calling thread (CLI commands only, never in a worker). */
int http_req_perform(struct http_req *req, cf_err *err) CF_MUST;

/* A short description of the transport failure or HTTP status, for error messages. */
const char *http_req_error(const struct http_req *req, char *buf, size_t len);

#endif
