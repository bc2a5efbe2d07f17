/* db.h - PostgreSQL access shared by the commands: connecting, running statements, migrations. */
#ifndef CF_DB_H
#define CF_DB_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "cf.h"

/* Connects (url is a libpq URL or key=value string). Never puts the URL into err: it may hold a password. */
PGconn *db_connect(const char *url, cf_err *err) CF_MUST;

/*
 * Runs a statement with text parameters. Returns the result when it succeeded (tuples or command
 * ok), else NULL with err naming what (a short label) and PostgreSQL's message.
 */
PGresult *db_exec(PGconn *c, const char *what, const char *sql, int nparams,
    const char *const *params, cf_err *err) CF_MUST;

/*
 * db_exec for the statements a run repeats (claims, heartbeats, stores): prepared once per
 * connection, then executed by name, so that PostgreSQL plans them once. A failed PQprepare inside
 * a transaction aborts it, like a failed statement would.
 */
PGresult *db_exec_prepared(PGconn *c, const char *what, const char *sql, int nparams,
    const char *const *params, cf_err *err) CF_MUST;
int db_run_prepared(PGconn *c, const char *what, const char *sql, int nparams,
    const char *const *params, cf_err *err) CF_MUST;

/* Runs a statement whose result is not needed; 0 or -1. */
int db_run(PGconn *c, const char *what, const char *sql, int nparams, const char *const *params,
    cf_err *err) CF_MUST;

/* Applies every migration not yet recorded in schema_version; *applied counts them. */
int db_migrate(PGconn *c, int *applied, cf_err *err) CF_MUST;

/* Fails with a clear message when the schema is missing or older than this binary. */
int db_require_schema(PGconn *c, cf_err *err) CF_MUST;

/* The SQLSTATE of the last statement that failed on c; "" when it failed without one. */
const char *db_last_sqlstate(PGconn *c);

/*
 * True when the last failure on c may pass by itself, so that the same statement should be
 * tried again: the connection is gone or broke, or PostgreSQL refused for a reason of its own
 * state (serialization failure, deadlock, disk full or another lack of resources, too many
 * connections, shutdown, statement or lock timeout, read-only). False when the statement
 * itself is at fault (bad data, a constraint, a trigger's exception).
 */
bool db_failure_transient(PGconn *c);

/* Value of row r, column name (NULL when SQL NULL). */
const char *db_get(const PGresult *res, int row, const char *col);
int64_t db_get_i64(const PGresult *res, int row, const char *col);

#endif
