/* dbtls.h - whether a PostgreSQL connection string may be used without a verified TLS connection. */
#ifndef CF_DBTLS_H
#define CF_DBTLS_H

#include <stdbool.h>

#include "cf.h"

/*
 * 0 when conninfo (a URL or key=value string) reaches only Unix sockets and loopback hosts
 * (127.0.0.0/8, ::1, localhost), or asks for sslmode=verify-full, or allow_plaintext is set.
 * Otherwise -1 with err naming the first other host and the sslmode, never the password. Like
 * libpq, a host, hostaddr or sslmode missing from conninfo comes from PGHOST, PGHOSTADDR or
 * PGSSLMODE, and no host at all means the default Unix socket.
 */
int dbtls_check(const char *conninfo, bool allow_plaintext, cf_err *err) CF_MUST;

#endif
