/*
 * fleetfile.c - the declared fleet's JSON: finds the certificates list in either of the shapes
 * (certfleet's own, or terraform output -json around it), then checks each certificate's members
 * (names, key_type, provider, profile, ca) with the same rules as enqueue's flags.
 */
#include "fleetfile.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caoffer.h"
#include "dnsname.h"
#include "keys.h"

#define FLEET_MAX_NAMES 100      /* Let's Encrypt's limit of identifiers per order, as enqueue */
#define FLEET_MAX_BYTES (64 << 20)

void
fleet_free(struct fleet *f)
{
	if (f == NULL)
		return;
	for (size_t i = 0; i < f->n; i++) {
		struct fleet_cert *c = &f->certs[i];
		for (size_t k = 0; k < c->nnames; k++)
			free(c->names[k]);
		free(c->names);
		free(c->names_key);
		free(c->key_type);
		free(c->provider);
		free(c->profile);
		free(c->ca);
	}
	free(f->certs);
	memset(f, 0, sizeof(*f));
}

/* s for a message: at most n - 1 octets, control characters as '?'. */
static const char *
shown(const char *s, char *out, size_t n)
{
	size_t i;

	for (i = 0; s[i] && i + 1 < n; i++)
		out[i] = (unsigned char)s[i] < 0x20 || (unsigned char)s[i] == 0x7f ? '?' : s[i];
	out[i] = '\0';
	return out;
}

/* Whether o has only members among allowed (NULL-terminated); 1 with err naming the first other. */
static int
only_members(const json_t *o, const char *const *allowed, const char *source, const char *where, cf_err *err)
{
	const char *k;
	json_t *v;

	json_object_foreach((json_t *)o, k, v) {
		bool ok = false;
		for (size_t i = 0; allowed[i]; i++)
			ok = ok || strcmp(k, allowed[i]) == 0;
		if (!ok) {
			char show[61];
			cf_errf(err, "%s: %s: unknown member \"%s\"", source, where, shown(k, show, sizeof(show)));
			return 1;
		}
	}
	return 0;
}

/*
 * The certificates array of root in one of the documented shapes, or NULL with err saying which
 * shape was expected.
 */
static json_t *
find_certificates(json_t *root, const char *source, cf_err *err)
{
	static const char *const own[] = { "certificates", NULL };
	static const char *const output[] = { "value", "type", "sensitive", NULL };
	json_t *v;

	if (!json_is_object(root)) {
		cf_errf(err, "%s: not a JSON object (expected {\"certificates\": [...]} or terraform output -json)", source);
		return NULL;
	}
	if (json_object_get(root, "value") != NULL) {
		if (only_members(root, output, source, "terraform output", err) != 0)
			return NULL;
		return find_certificates(json_object_get(root, "value"), source, err);
	}
	if ((v = json_object_get(root, "certfleet")) != NULL && json_object_get(root, "certificates") == NULL) {
		if (!json_is_object(v) || json_object_get(v, "value") == NULL) {
			cf_errf(err, "%s: the output \"certfleet\" is not a terraform output ({\"value\": ...})", source);
			return NULL;
		}
		return find_certificates(v, source, err);
	}
	if (only_members(root, own, source, "top level", err) != 0)
		return NULL;
	v = json_object_get(root, "certificates");
	if (!json_is_array(v)) {
		cf_errf(err, "%s: %s", source, v ? "\"certificates\" is not an array"
		    : "no \"certificates\" member (expected {\"certificates\": [...]}, or terraform output -json "
		      "with an output named certfleet)");
		return NULL;
	}
	return v;
}

/* A string member into *out (NULL when absent). 1 with err for another type, -1 out of memory. */
static int
opt_string(const json_t *o, const char *member, char **out, const char *source, size_t idx, cf_err *err)
{
	json_t *v = json_object_get(o, member);

	*out = NULL;
	if (v == NULL)
		return 0;
	if (!json_is_string(v)) {
		cf_errf(err, "%s: certificates[%zu].%s: not a string", source, idx, member);
		return 1;
	}
	for (const char *p = json_string_value(v); p < json_string_value(v) + json_string_length(v); p++) {
		if ((unsigned char)*p < 0x20 || (unsigned char)*p == 0x7f) {
			cf_errf(err, "%s: certificates[%zu].%s: contains a control character", source, idx, member);
			return 1;
		}
	}
	if ((*out = strdup(json_string_value(v))) == NULL) {
		cf_errf(err, "%s: out of memory", source);
		return -1;
	}
	return 0;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The names of certificate idx into c (normalized, duplicates dropped) and its names_key. */
static int
parse_names(const json_t *o, struct fleet_cert *c, const char *source, size_t idx, cf_err *err)
{
	json_t *arr = json_object_get(o, "names"), *v;
	const char **sorted = NULL;
	cf_buf key = { 0 };
	size_t i;
	int rc = -1;

	if (arr == NULL || !json_is_array(arr) || json_array_size(arr) == 0) {
		cf_errf(err, "%s: certificates[%zu].names: %s", source, idx,
		    arr == NULL ? "missing (a certificate needs at least one name)"
		    : !json_is_array(arr) ? "not an array of names" : "empty (a certificate needs at least one name)");
		return 1;
	}
	if (json_array_size(arr) > FLEET_MAX_NAMES) {
		cf_errf(err, "%s: certificates[%zu].names: more than %d names", source, idx, FLEET_MAX_NAMES);
		return 1;
	}
	if ((c->names = calloc(json_array_size(arr), sizeof(*c->names))) == NULL)
		goto oom;
	json_array_foreach(arr, i, v) {
		char norm[DNSNAME_MAX];
		cf_err nerr;
		bool dup = false;
		if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v)) {
			cf_errf(err, "%s: certificates[%zu].names[%zu]: not a name (a string)", source, idx, i);
			return 1;
		}
		if (dnsname_normalize(json_string_value(v), norm, &nerr) != 0) {
			cf_errf(err, "%s: certificates[%zu].names[%zu]: %s", source, idx, i, nerr.msg);
			return 1;
		}
		for (size_t k = 0; k < c->nnames; k++)
			dup = dup || strcmp(c->names[k], norm) == 0;
		if (dup)
			continue;
		if ((c->names[c->nnames] = strdup(norm)) == NULL)
			goto oom;
		c->nnames++;
	}
	if ((sorted = malloc(c->nnames * sizeof(*sorted))) == NULL)
		goto oom;
	memcpy(sorted, c->names, c->nnames * sizeof(*sorted));
	qsort(sorted, c->nnames, sizeof(*sorted), cmp_str);
	for (i = 0; i < c->nnames; i++)
		if (cf_buf_printf(&key, "%s%s", i ? "," : "", sorted[i]) != 0)
			goto oom;
	if ((c->names_key = strdup(key.data)) == NULL)
		goto oom;
	rc = 0;
	goto out;
oom:
	cf_errf(err, "%s: out of memory", source);
out:
	free(sorted);
	cf_buf_free(&key);
	return rc;
}

/* Certificate idx of the list into c. 0, 1 with err for bad input, -1 out of memory. */
static int
parse_cert(const json_t *o, struct fleet_cert *c, const char *source, size_t idx, cf_err *err)
{
	static const char *const members[] = { "names", "key_type", "provider", "profile", "ca", NULL };
	char where[48];
	enum key_type kt;
	cf_err perr;
	int r;

	c->index = idx;
	snprintf(where, sizeof(where), "certificates[%zu]", idx);
	if (!json_is_object(o)) {
		cf_errf(err, "%s: %s: not an object", source, where);
		return 1;
	}
	if ((r = only_members(o, members, source, where, err)) != 0 ||
	    (r = parse_names(o, c, source, idx, err)) != 0 ||
	    (r = opt_string(o, "key_type", &c->key_type, source, idx, err)) != 0 ||
	    (r = opt_string(o, "provider", &c->provider, source, idx, err)) != 0 ||
	    (r = opt_string(o, "profile", &c->profile, source, idx, err)) != 0 ||
	    (r = opt_string(o, "ca", &c->ca, source, idx, err)) != 0)
		return r;
	if (c->key_type && key_type_parse(c->key_type, &kt) != 0) {
		char show[41];
		cf_errf(err, "%s: %s.key_type: unknown key type \"%s\" (known: ec-p256, ec-p384, rsa-2048, "
		    "rsa-3072)", source, where, shown(c->key_type, show, sizeof(show)));
		return 1;
	}
	if (c->provider && c->provider[0] == '\0') {
		cf_errf(err, "%s: %s.provider: empty", source, where);
		return 1;
	}
	if (c->profile && c->profile[0] && caoffer_profile_syntax(c->profile, &perr) != 0) {
		cf_errf(err, "%s: %s.profile: %s", source, where, perr.msg);
		return 1;
	}
	if (c->ca && c->ca[0] == '\0') {
		cf_errf(err, "%s: %s.ca: empty (a directory URL)", source, where);
		return 1;
	}
	return 0;
}

int
fleet_parse(const char *source, const char *text, size_t len, struct fleet *out, cf_err *err)
{
	json_error_t jerr;
	json_t *root, *list, *v;
	size_t i;
	int rc = 1;

	memset(out, 0, sizeof(*out));
	if ((root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr)) == NULL) {
		cf_errf(err, "%s line %d: not JSON: %s", source, jerr.line, jerr.text);
		return 1;
	}
	if ((list = find_certificates(root, source, err)) == NULL)
		goto out;
	if (json_array_size(list) > 0 && (out->certs = calloc(json_array_size(list), sizeof(*out->certs))) == NULL) {
		cf_errf(err, "%s: out of memory", source);
		rc = -1;
		goto out;
	}
	json_array_foreach(list, i, v) {
		int r = parse_cert(v, &out->certs[i], source, i, err);
		out->n = i + 1;
		if (r != 0) {
			rc = r;
			goto out;
		}
		for (size_t k = 0; k < i; k++) {
			if (strcmp(out->certs[k].names_key, out->certs[i].names_key) == 0) {
				cf_errf(err, "%s: certificates[%zu] and certificates[%zu] have the same names (%.200s)",
				    source, k, i, out->certs[i].names_key);
				goto out;
			}
		}
	}
	rc = 0;
out:
	json_decref(root);
	if (rc != 0)
		fleet_free(out);
	return rc;
}

int
fleet_read(const char *path, struct fleet *out, cf_err *err)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	const char *source = f == stdin ? "stdin" : path;
	cf_buf b = { 0 };
	char chunk[8192];
	size_t got;
	int rc = 1;

	memset(out, 0, sizeof(*out));
	if (f == NULL) {
		cf_errf(err, "cannot open %s: %s", path, strerror(errno));
		return 1;
	}
	while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (b.len + got > FLEET_MAX_BYTES) {
			cf_errf(err, "%s: larger than %d MiB", source, FLEET_MAX_BYTES >> 20);
			goto out;
		}
		if (cf_buf_append(&b, chunk, got) != 0) {
			cf_errf(err, "%s: out of memory", source);
			rc = -1;
			goto out;
		}
	}
	if (ferror(f)) {
		cf_errf(err, "reading %s failed: %s", source, strerror(errno));
		goto out;
	}
	rc = fleet_parse(source, b.data ? b.data : "", b.len, out, err);
out:
	if (f != stdin)
		fclose(f);
	cf_buf_free(&b);
	return rc;
}
