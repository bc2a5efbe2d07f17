/* persist.h - dns-persist-01 record names and values, for draft -01 (Pebble, Boulder) and -02. */
#ifndef CF_PERSIST_H
#define CF_PERSIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cf.h"

enum persist_variant {
	PERSIST_DRAFT01 = 1, /* accounturi is the account URL itself */
	PERSIST_DRAFT02 = 2, /* accounturi is <accountHashPrefix>sha-256/<hash> */
};

/* "_validation-persist.<base name>" for a normalized identifier (a wildcard uses its base). */
int persist_record_name(const char *identifier, char *out, size_t outlen, cf_err *err) CF_MUST;

struct persist_params {
	enum persist_variant variant;
	const char *issuer;        /* issuer domain name, e.g. "letsencrypt.org" */
	const char *account_url;   /* the ACME account URL */
	bool wildcard;             /* add "; policy=wildcard" */
	int64_t persist_until;     /* unix seconds; 0 means no persistUntil */
	/* draft -02 only: */
	const char *hash_prefix;   /* directory meta accountHashPrefix */
	const char *thumbprint;    /* 43-character RFC 7638 thumbprint of the account key */
	const char *hash_domain;   /* normalized FQDN the record sits at, or "*" */
};

/*
 * The TXT value "<issuer>; accounturi=<v>[; policy=wildcard][; persistUntil=<T>]".
 * Checks every part against the allowed value characters (0x21-0x3A, 0x3C-0x7E).
 * Returns a malloc'd string, or NULL with err set.
 */
char *persist_record_value(const struct persist_params *p, cf_err *err) CF_MUST;

/*
 * Draft -02 account hash: unpadded base64url of
 * SHA-256(len(d) as one octet || d || thumbprint43 || account_url). out gets 43 chars plus NUL.
 */
int persist_account_hash(const char *domain, const char *thumbprint, const char *account_url,
    char out[44], cf_err *err) CF_MUST;

/* A record value parsed the way a CA parses it (for checking what is already published). */
struct persist_parsed {
	char issuer[256];
	char accounturi[512];
	bool policy_wildcard;
	bool has_persist_until;
	int64_t persist_until;
};

/*
 * Parses an issue-value: tags case-insensitive; duplicate tag, empty parameter, trailing ';',
 * tag without '=', bad value characters, non-integer persistUntil, missing accounturi make it
 * malformed (-1, err says why). Unknown tags are ignored; a policy other than wildcard is absent.
 */
int persist_record_parse(const char *value, struct persist_parsed *out, cf_err *err) CF_MUST;

/*
 * A persistUntil setting (what names it in messages, e.g. "CERTFLEET_PERSIST_UNTIL"): unix
 * seconds, or a UTC time as YYYY-MM-DD (midnight) or YYYY-MM-DDTHH:MM:SSZ, after 1970 and before
 * the year 10000. 0 with *out set, or -1 with err naming what and the text.
 */
int persist_until_parse(const char *what, const char *text, int64_t *out, cf_err *err) CF_MUST;

enum persist_lapse {
	PERSIST_LASTS = 0,   /* beyond the warning horizon (or no persistUntil) */
	PERSIST_LAPSING = 1, /* lapses within warn_secs of now */
	PERSIST_LAPSED = 2,  /* at or before now: a CA must no longer use the record */
};

/* Where persistUntil until (0: none) stands at now (unix seconds), warning warn_secs ahead. */
enum persist_lapse persist_until_lapse(int64_t until, int64_t now, int64_t warn_secs);

#endif
