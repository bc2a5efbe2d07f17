/* osslerr.h - OpenSSL's error queue turned into a cf_err message. */
#ifndef CF_OSSLERR_H
#define CF_OSSLERR_H

#include "cf.h"

/*
 * Leaves "<what>: <last OpenSSL error>" in err and empties this thread's OpenSSL error queue, so
 * that a stale error never shows up in the message of a later, unrelated failure.
 */
void ossl_errf(cf_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
