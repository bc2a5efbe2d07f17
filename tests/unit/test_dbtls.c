/* test_dbtls.c - which connection strings dbtls_check lets through without sslmode=verify-full. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "dbtls.h"

static int
ok(const char *conninfo)
{
	cf_err err;

	return dbtls_check(conninfo, false, &err) == 0;
}

static void
test_errors(void)
{
	cf_err err;

	CHECK(dbtls_check("host=db.example password=s3cret bogus=1", false, &err) == -1);
	CHECK(strstr(err.msg, "s3cret") == NULL);
	CHECK(dbtls_check("postgresql://u:s3cret@db.example:5432/x?nonsense=1", false, &err) == -1);
	CHECK(strstr(err.msg, "s3cret") == NULL);
}

static void
test_local(void)
{
	CHECK(ok("postgresql://certfleet@127.0.0.1:5432/certfleet"));
	CHECK(ok("postgresql://certfleet@127.9.9.9/certfleet"));
	CHECK(ok("postgresql://certfleet@[::1]:5432/certfleet"));
	CHECK(ok("postgresql://certfleet@localhost/certfleet"));
	CHECK(ok("host=127.0.0.1 port=5432 dbname=certfleet"));
	CHECK(ok("host=::1 dbname=certfleet"));
	CHECK(ok("host=localhost dbname=certfleet"));
	/* Unix sockets: a directory, the URL form, the default */
	CHECK(ok("host=/var/run/postgresql dbname=certfleet"));
	CHECK(ok("postgresql://%2Fvar%2Frun%2Fpostgresql/certfleet"));
	CHECK(ok("postgresql:///certfleet?host=/tmp"));
	CHECK(ok("dbname=certfleet"));
	CHECK(ok("postgresql:///certfleet"));
	/* a list of local hosts */
	CHECK(ok("host=127.0.0.1,/tmp,localhost dbname=x"));
}

static void
test_remote(void)
{
	cf_err err;

	CHECK(dbtls_check("postgresql://certfleet:s3cret@db.example.com:5432/certfleet", false, &err) == -1);
	CHECK(strstr(err.msg, "db.example.com") != NULL);
	CHECK(strstr(err.msg, "s3cret") == NULL);
	CHECK(strstr(err.msg, "verify-full") != NULL);
	CHECK(!ok("host=db.example.com dbname=certfleet sslmode=require"));
	CHECK(!ok("host=db.example.com dbname=certfleet sslmode=verify-ca"));
	CHECK(!ok("postgresql://u@192.0.2.10/x?sslmode=prefer"));
	CHECK(!ok("postgresql://u@[2001:db8::1]/x"));
	CHECK(!ok("host=128.0.0.1 dbname=x"));
	CHECK(!ok("host=localhost.example.com dbname=x"));
	/* one remote host in a list is enough */
	CHECK(!ok("host=127.0.0.1,db.example.com dbname=x"));
	/* hostaddr is where libpq connects: it decides, whatever host says */
	CHECK(!ok("host=localhost hostaddr=192.0.2.10 dbname=x"));
	CHECK(ok("host=db.example.com hostaddr=127.0.0.1 dbname=x"));
	/* verified: allowed, in both forms */
	CHECK(ok("postgresql://u@db.example.com/x?sslmode=verify-full"));
	CHECK(ok("host=db.example.com sslmode=verify-full sslrootcert=/etc/ca.pem dbname=x"));
	/* the operator's explicit opt-out */
	CHECK(dbtls_check("host=db.example.com dbname=x", true, &err) == 0);
}

static void
test_environment(void)
{
	/* as libpq does: what the string lacks comes from PGHOST, PGHOSTADDR, PGSSLMODE */
	setenv("PGHOST", "db.example.com", 1);
	CHECK(!ok("dbname=x"));
	CHECK(ok("host=/tmp dbname=x"));
	setenv("PGSSLMODE", "verify-full", 1);
	CHECK(ok("dbname=x"));
	CHECK(!ok("dbname=x sslmode=require"));
	unsetenv("PGSSLMODE");
	unsetenv("PGHOST");
	setenv("PGHOSTADDR", "192.0.2.1", 1);
	CHECK(!ok("postgresql:///x"));
	unsetenv("PGHOSTADDR");
	CHECK(ok("postgresql:///x"));
}

int
main(void)
{
	unsetenv("PGHOST");
	unsetenv("PGHOSTADDR");
	unsetenv("PGSSLMODE");
	RUN(test_errors);
	RUN(test_local);
	RUN(test_remote);
	RUN(test_environment);
	return CHECK_DONE();
}
