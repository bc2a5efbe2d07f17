/* osslerr.c - OpenSSL's error queue turned into a cf_err message. */
#include "osslerr.h"

#include <openssl/err.h>
#include <stdarg.h>
#include <stdio.h>

/*
 * Leaves "<what>: <last OpenSSL error>" in err and empties this thread's OpenSSL error queue, so
 * that a stale error never shows up in the message of a later, unrelated failure.
 */
void
ossl_errf(cf_err *err, const char *fmt, ...)
{
	char what[256], reason[256];
	unsigned long code;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	code = ERR_peek_last_error();
	if (code != 0)
		ERR_error_string_n(code, reason, sizeof(reason));
	else
		snprintf(reason, sizeof(reason), "no OpenSSL error reported");
	cf_errf(err, "%s: %s", what, reason);
	ERR_clear_error();
}
