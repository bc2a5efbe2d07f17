/*
 * fuzz_persist.c - fuzz target of lib/persist.c's record parser (persist_record_parse), which
 * reads dns-persist-01 TXT values found in DNS. Any octets as a value: whatever parses must
 * compose again (persist_record_value with the parsed fields) into a value that parses to the
 * same fields. A difference aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "persist.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void __attribute__((noreturn))
fail(const char *what, const char *value)
{
	fprintf(stderr, "fuzz_persist: %s: \"%s\"\n", what, value);
	abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct persist_parsed p, q;
	struct persist_params pp;
	cf_err err = { { 0 } };
	char *value, *again;

	if ((value = malloc(size + 1)) == NULL)
		return 0;
	memcpy(value, data, size);
	value[size] = '\0';
	if (persist_record_parse(value, &p, &err) != 0) {
		if (err.msg[0] == '\0')
			fail("refused without saying why", value);
		goto out;
	}
	if (memchr(p.issuer, '\0', sizeof(p.issuer)) == NULL ||
	    memchr(p.accounturi, '\0', sizeof(p.accounturi)) == NULL || p.accounturi[0] == '\0')
		fail("parsed fields not terminated or empty accounturi", value);
	/* a persistUntil of 0 or less cannot be written (0 means none): compare the rest */
	memset(&pp, 0, sizeof(pp));
	pp.variant = PERSIST_DRAFT01;
	pp.issuer = p.issuer;
	pp.account_url = p.accounturi;
	pp.wildcard = p.policy_wildcard;
	pp.persist_until = p.has_persist_until && p.persist_until > 0 ? p.persist_until : 0;
	if ((again = persist_record_value(&pp, &err)) == NULL)
		fail("parsed fields do not compose again", value);
	if (persist_record_parse(again, &q, &err) != 0)
		fail("the composed value does not parse", again);
	if (strcmp(p.issuer, q.issuer) != 0 || strcmp(p.accounturi, q.accounturi) != 0 ||
	    p.policy_wildcard != q.policy_wildcard ||
	    q.has_persist_until != (pp.persist_until > 0) ||
	    (q.has_persist_until && q.persist_until != p.persist_until))
		fail("the composed value parses to other fields", again);
	free(again);
out:
	free(value);
	return 0;
}

#define FUZZ_TARGET_NAME "fuzz_persist"
#include "replay.h"
