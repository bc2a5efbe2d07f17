/*
 * fleetfile.h - the JSON a fleet is declared in (enqueue --json, sync --file): certificates with
 * their names and settings, checked member by member before anything is stored.
 */
#ifndef CF_FLEETFILE_H
#define CF_FLEETFILE_H

#include <stddef.h>

#include "cf.h"

struct fleet_cert {
	char **names;            /* normalized, in the file's order, without duplicates */
	size_t nnames;
	char *names_key;         /* sorted, comma-joined: the certificate's identity */
	char *key_type;          /* NULL when the file does not say */
	char *provider;          /* NULL when the file does not say */
	char *profile;           /* NULL when the file does not say; "" the CA's default */
	char *ca;                /* the ACME directory URL; NULL when the file does not say */
	size_t index;            /* its index in the file's certificates list */
};

struct fleet {
	struct fleet_cert *certs;
	size_t n;
};

/*
 * Parses text (len octets, from source, named in messages) in one of the shapes:
 *   {"certificates": [{"names": [...], "key_type": ..., "provider": ..., "profile": ..., "ca": ...}]}
 *   {"value": <that>, "type": ..., "sensitive": ...}    one output of `terraform output -json`
 *   {"certfleet": {"value": <that>, ...}, ...}           all of them: the output named certfleet
 * Unknown members, wrong types, a certificate without names, a bad name, key type or profile
 * name, and two certificates with the same names are bad input: 1 with err naming source, the
 * certificate's index and the member. 0 on success; -1 with err when out of memory.
 */
int fleet_parse(const char *source, const char *text, size_t len, struct fleet *out, cf_err *err) CF_MUST;

/* Reads path ("-" for standard input) whole and parses it; 1 also for a file that cannot be read. */
int fleet_read(const char *path, struct fleet *out, cf_err *err) CF_MUST;

void fleet_free(struct fleet *f);

#endif
