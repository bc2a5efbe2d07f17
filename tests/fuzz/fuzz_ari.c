/*
 * fuzz_ari.c - fuzz target of what renew reads from outside: a renewalInfo answer (ari_parse),
 * an RFC 3339 time (ari_time_parse) and a stored leaf's CertID (certid_from_pem). Any octets.
 * A window read has end >= start and an explanation URL that is https and printable, or none;
 * a refusal says why in printable text within its buffer; a CertID is two non-empty base64url
 * parts joined by one '.'. A violation aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzz_text.h"

#include "ari.h"
#include "base64.h"
#include "certid.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void __attribute__((noreturn))
fail(const char *what)
{
	fprintf(stderr, "fuzz_ari: %s\n", what);
	abort();
}

static void
check_parse(const uint8_t *data, size_t size)
{
	struct ari_window w;
	char why[96];
	size_t n;

	memset(why, 'x', sizeof(why));
	if (ari_parse((const char *)data, size, &w, why, 64) == 0) {
		if (w.end_s < w.start_s)
			fail("ari_parse: a window that ends before it starts");
		if (w.explanation_url != NULL) {
			if (strncasecmp(w.explanation_url, "https://", 8) != 0) /* a scheme's case does not matter */
				fail("ari_parse: an explanation URL that is not https");
			for (const char *c = w.explanation_url; *c; c++)
				if (*c <= 0x20 || *c >= 0x7f)
					fail("ari_parse: an explanation URL that is not printable");
		}
		free(w.explanation_url);
		return;
	}
	if (w.explanation_url != NULL)
		fail("ari_parse: refused, but kept an explanation URL");
	if ((n = strnlen(why, 64)) == 64 || n == 0)
		fail("ari_parse: reason empty or not NUL-terminated within its buffer");
	for (size_t k = 64; k < sizeof(why); k++)
		if (why[k] != 'x')
			fail("ari_parse: wrote past its buffer");
	for (size_t k = 0; k < n; k++)
		if (!printable(why, n, k))
			fail("ari_parse: reason not printable");
}

static void
check_text(const char *s)
{
	char id[CERTID_MAX];
	int64_t t;
	cf_err err;

	if (ari_time_parse(s, &t) == 0 && strlen(s) < 20)
		fail("ari_time_parse: a time from fewer than 20 characters");
	if (certid_from_pem(s, id, &err) == 0) {
		const char *dot = strchr(id, '.');
		if (dot == NULL || dot == id || dot[1] == '\0' || strchr(dot + 1, '.') != NULL)
			fail("certid_from_pem: not two parts joined by one '.'");
		for (const char *c = id; *c; c++)
			if (*c != '.' && b64_digit((unsigned char)*c, true) < 0)
				fail("certid_from_pem: not base64url");
	} else if (id[0] != '\0') {
		fail("certid_from_pem: refused, but left a CertID");
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	check_parse(data, size);
	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	check_text(s);
	free(s);
	return 0;
}

#define FUZZ_TARGET_NAME "fuzz_ari"
#include "replay.h"
