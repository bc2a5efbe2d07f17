/*
 * caoffer.h - what a CA offers beyond plain issuance, checked before enqueue stores a wish for
 * it: the certificate profiles of its directory (meta.profiles) and, as the account's downloads
 * have shown, alternate chains.
 */
#ifndef CF_CAOFFER_H
#define CF_CAOFFER_H

#include <libpq-fe.h>
#include <stdint.h>

#include "cf.h"
#include "http.h"

/* The form the schema allows for a profile name ([A-Za-z0-9._-], 1 to 64); else -1 with err. */
int caoffer_profile_syntax(const char *profile, cf_err *err) CF_MUST;

/* A preferred chain: an issuer Common Name of 1 to 256 octets, no control characters. */
int caoffer_chain_syntax(const char *chain, cf_err *err) CF_MUST;

/*
 * Fetches the directory and looks for profile among its meta.profiles: 0 offered; 1 not offered
 * (err names the profile and those the CA offers, or says it offers none); -1 the directory could
 * not be read (err says why).
 */
int caoffer_check_profile(const struct http_settings *hs, const char *directory_url, const char *profile,
    cf_err *err) CF_MUST;

/*
 * Whether the account's CA may serve a preferred chain: 0 it offered alternates, or it is not
 * known yet (no download seen); 1 its last download offered none (err says so); -1 on a database
 * error.
 */
int caoffer_check_alternates(PGconn *c, int64_t account_id, cf_err *err) CF_MUST;

#endif
