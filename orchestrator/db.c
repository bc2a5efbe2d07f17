/* db.c - PostgreSQL connections, statements with parameters, and the migration runner. */
#include "db.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <libpq-events.h>
#include <string.h>

#include "log.h"
#include "migrate.h"

#define MIGRATE_LOCK_KEY "7238411931" /* advisory lock: one migrate at a time */

/*
 * The statements prepared on a connection, as hashes of their text: libpq keeps this with the
 * connection (instance data of an event procedure), forgets it when the connection is reset and
 * frees it with the connection.
 */
struct db_prepared {
	uint64_t *hashes;
	size_t n;
	size_t cap;
	char sqlstate[6];         /* of the last statement that failed; "" when it had none */
};

static int
db_event(PGEventId id, void *info, void *pass)
{
	(void)pass;
	if (id == PGEVT_REGISTER) {
		PGEventRegister *e = info;
		struct db_prepared *p = calloc(1, sizeof(*p));
		return p != NULL && PQsetInstanceData(e->conn, db_event, p);
	}
	if (id == PGEVT_CONNRESET) {
		PGEventConnReset *e = info;
		struct db_prepared *p = PQinstanceData(e->conn, db_event);
		if (p)
			p->n = 0; /* a new session: nothing is prepared any more */
	} else if (id == PGEVT_CONNDESTROY) {
		PGEventConnDestroy *e = info;
		struct db_prepared *p = PQinstanceData(e->conn, db_event);
		if (p) {
			free(p->hashes);
			free(p);
		}
	}
	return 1;
}

static uint64_t
sql_hash(const char *s)
{
	uint64_t h = 14695981039346656037ULL; /* FNV-1a */

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
	return h;
}

PGconn *
db_connect(const char *url, cf_err *err)
{
	PGconn *c;

	if (url == NULL || url[0] == '\0') {
		cf_errf(err, "no database: set CERTFLEET_DB or pass --db (a libpq connection URL)");
		return NULL;
	}
	c = PQconnectdb(url);
	if (c == NULL || PQstatus(c) != CONNECTION_OK) {
		const char *m = c ? PQerrorMessage(c) : "out of memory";
		char msg[400];
		snprintf(msg, sizeof(msg), "%s", m);
		msg[strcspn(msg, "\n")] = '\0';
		cf_errf(err, "connecting to PostgreSQL (CERTFLEET_DB): %s", msg);
		PQfinish(c);
		return NULL;
	}
	PQsetErrorVerbosity(c, PQERRORS_TERSE);
	if (!PQregisterEventProc(c, db_event, "certfleet", NULL)) {
		cf_errf(err, "connecting to PostgreSQL: cannot register the statement cache");
		PQfinish(c);
		return NULL;
	}
	return c;
}


/* res when it succeeded, else NULL with err set (and res cleared). */
static PGresult *
db_result(PGconn *c, PGresult *res, const char *what, cf_err *err)
{
	ExecStatusType st = PQresultStatus(res);
	struct db_prepared *p = PQinstanceData(c, db_event);
	const char *code;

	if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
		return res;
	code = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	if (p)
		snprintf(p->sqlstate, sizeof(p->sqlstate), "%s", code ? code : "");
	char msg[400];
	snprintf(msg, sizeof(msg), "%s", res ? PQresultErrorMessage(res) : PQerrorMessage(c));
	msg[strcspn(msg, "\n")] = '\0';
	cf_errf(err, "%s: %s", what, msg);
	PQclear(res);
	return NULL;
}

PGresult *
db_exec(PGconn *c, const char *what, const char *sql, int nparams, const char *const *params,
    cf_err *err)
{
	return db_result(c, PQexecParams(c, sql, nparams, NULL, params, NULL, NULL, 0), what, err);
}

PGresult *
db_exec_prepared(PGconn *c, const char *what, const char *sql, int nparams, const char *const *params,
    cf_err *err)
{
	struct db_prepared *p = PQinstanceData(c, db_event);
	uint64_t h = sql_hash(sql);
	char name[24];
	size_t i;

	if (p == NULL)
		return db_exec(c, what, sql, nparams, params, err);
	snprintf(name, sizeof(name), "cf_%016llx", (unsigned long long)h);
	for (i = 0; i < p->n && p->hashes[i] != h; i++)
		;
	if (i == p->n) {
		if (p->n == p->cap) {
			size_t cap = p->cap ? 2 * p->cap : 16;
			uint64_t *grown = realloc(p->hashes, cap * sizeof(*grown));
			if (grown == NULL)
				return db_exec(c, what, sql, nparams, params, err);
			p->hashes = grown;
			p->cap = cap;
		}
		PGresult *prep = db_result(c, PQprepare(c, name, sql, nparams, NULL), what, err);
		if (prep == NULL)
			return NULL;
		PQclear(prep);
		p->hashes[p->n++] = h;
	}
	return db_result(c, PQexecPrepared(c, name, nparams, params, NULL, NULL, 0), what, err);
}

int
db_run_prepared(PGconn *c, const char *what, const char *sql, int nparams, const char *const *params,
    cf_err *err)
{
	PGresult *res = db_exec_prepared(c, what, sql, nparams, params, err);

	if (res == NULL)
		return -1;
	PQclear(res);
	return 0;
}

int
db_run(PGconn *c, const char *what, const char *sql, int nparams, const char *const *params,
    cf_err *err)
{
	PGresult *res = db_exec(c, what, sql, nparams, params, err);

	if (res == NULL)
		return -1;
	PQclear(res);
	return 0;
}

const char *
db_get(const PGresult *res, int row, const char *col)
{
	int f = PQfnumber(res, col);

	if (f < 0 || PQgetisnull(res, row, f))
		return NULL;
	return PQgetvalue(res, row, f);
}

int64_t
db_get_i64(const PGresult *res, int row, const char *col)
{
	const char *v = db_get(res, row, col);

	return v ? strtoll(v, NULL, 10) : 0;
}

static int
schema_version(PGconn *c, int *version, cf_err *err)
{
	PGresult *res = db_exec(c, "checking for schema_version",
	    "SELECT to_regclass('schema_version') IS NOT NULL AS present", 0, NULL, err);
	bool present;

	if (res == NULL)
		return -1;
	present = strcmp(db_get(res, 0, "present"), "t") == 0;
	PQclear(res);
	*version = 0;
	if (!present)
		return 0;
	res = db_exec(c, "reading schema_version",
	    "SELECT coalesce(max(version), 0) AS v FROM schema_version", 0, NULL, err);
	if (res == NULL)
		return -1;
	*version = atoi(db_get(res, 0, "v"));
	PQclear(res);
	return 0;
}

int
db_require_schema(PGconn *c, cf_err *err)
{
	int v = 0, want = migrations[migrations_count - 1].version;

	if (schema_version(c, &v, err) != 0)
		return -1;
	if (v < want) {
		cf_errf(err, "database schema is at version %d, this certfleet needs %d: run 'certfleet migrate'",
		    v, want);
		return -1;
	}
	return 0;
}

int
db_migrate(PGconn *c, int *applied, cf_err *err)
{
	int rc = -1, have = 0;

	*applied = 0;
	if (db_run(c, "taking the migration lock", "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")", 0, NULL, err) != 0)
		return -1;
	if (db_run(c, "creating schema_version",
	    "CREATE TABLE IF NOT EXISTS schema_version (version integer PRIMARY KEY, name text NOT NULL, "
	    "applied_at timestamptz NOT NULL DEFAULT now())", 0, NULL, err) != 0)
		goto out;
	if (schema_version(c, &have, err) != 0)
		goto out;
	for (int i = 0; i < migrations_count; i++) {
		const struct migration *m = &migrations[i];
		char ver[16];
		const char *params[2] = { ver, m->name };
		if (m->version <= have)
			continue;
		snprintf(ver, sizeof(ver), "%d", m->version);
		if (db_run(c, "BEGIN", "BEGIN", 0, NULL, err) != 0)
			goto out;
		PGresult *res = PQexec(c, m->sql);
		if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
			char msg[400];
			snprintf(msg, sizeof(msg), "%s", PQresultErrorMessage(res));
			msg[strcspn(msg, "\n")] = '\0';
			cf_errf(err, "migration %s: %s", m->name, msg);
			PQclear(res);
			PQclear(PQexec(c, "ROLLBACK"));
			goto out;
		}
		PQclear(res);
		if (db_run(c, "recording the migration", "INSERT INTO schema_version (version, name) VALUES ($1, $2)",
		    2, params, err) != 0 || db_run(c, "COMMIT", "COMMIT", 0, NULL, err) != 0) {
			PQclear(PQexec(c, "ROLLBACK"));
			goto out;
		}
		log_info("applied migration %s", m->name);
		(*applied)++;
	}
	rc = 0;
out:
	PQclear(PQexec(c, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")"));
	return rc;
}

const char *
db_last_sqlstate(PGconn *c)
{
	struct db_prepared *p = c ? PQinstanceData(c, db_event) : NULL;

	return p ? p->sqlstate : "";
}

bool
db_failure_transient(PGconn *c)
{
	/* classes and codes that describe the server's state, not the statement */
	static const char *const codes[] = {
		"40001", /* serialization_failure */
		"40P01", /* deadlock_detected */
		"55P03", /* lock_not_available (lock_timeout) */
		"57014", /* query_canceled (statement_timeout) */
		"57P01", /* admin_shutdown */
		"57P02", /* crash_shutdown */
		"57P03", /* cannot_connect_now */
		"58000", /* system_error */
		"58030", /* io_error */
		"25P03", /* idle_in_transaction_session_timeout */
		"25006", /* read_only_sql_transaction: a standby, or a primary made read-only for a while */
	};
	const char *code = db_last_sqlstate(c);

	if (c == NULL || PQstatus(c) != CONNECTION_OK || code[0] == '\0')
		return true;
	/* 08: connection exception; 53: insufficient resources (disk full, out of memory, too many connections) */
	if (strncmp(code, "08", 2) == 0 || strncmp(code, "53", 2) == 0)
		return true;
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (strcmp(code, codes[i]) == 0)
			return true;
	return false;
}
