/*
 * test_provider.c - unit tests of the provider core (providers/provider.c): loading accounts
 * from a providers file with every kind of mistake, secrets and their file modes, zones, shared
 * limit keys, and a call through the manual provider on a real event loop.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blockpool.h"
#include "check.h"
#include "dnsauth.h"
#include "loop.h"
#include "provider.h"
#include "registry.h"

static char dir[] = "/tmp/certfleet-test-provider.XXXXXX";

/* Writes text to dir/name with mode; returns the path (static buffer). */
static const char *
write_file(const char *name, const char *text, mode_t mode)
{
	static char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
	chmod(path, mode);
	return path;
}

static struct provider_registry *
load(const char *json, mode_t mode, cf_err *err)
{
	struct provider_env env = { 0 };

	env.path = write_file("providers.json", json, mode);
	env.http.allow_http_loopback = true; /* the challtestsrv accounts are http on 127.0.0.1 */
	return provider_registry_load(&env, err);
}

/* Loading fails and the message says needle. */
static bool
load_fails(const char *json, const char *needle)
{
	cf_err err = { { 0 } };
	struct provider_registry *reg = load(json, 0600, &err);

	if (reg) {
		provider_registry_free(reg);
		fprintf(stderr, "  loaded: %s\n", json);
		return false;
	}
	return check_says(err.msg, needle);
}

static void
test_good_file(void)
{
	cf_err err;
	struct provider_registry *reg = load(
	    "{ \"providers\": {"
	    "  \"cts\": { \"type\": \"challtestsrv\", \"url\": \"http://127.0.0.1:1\", \"rate\": \"5/s:10\","
	    "           \"zones\": [\"Example.COM.\", \"deep.example.com\"], \"limit_key\": \"shared\" },"
	    "  \"cts2\": { \"type\": \"challtestsrv\", \"url\": \"http://127.0.0.1:2\", \"rate\": \"5/s:10\","
	    "            \"limit_key\": \"shared\", \"batch\": 1 },"
	    "  \"iac\": { \"type\": \"manual\", \"batch\": 10, \"verify\": { \"enabled\": false } } } }",
	    0600, &err);
	struct provider_account *a, *b, *m;

	CHECK(reg != NULL);
	if (reg == NULL) {
		fprintf(stderr, "  %s\n", err.msg);
		return;
	}
	a = provider_account_find(reg, "cts");
	b = provider_account_find(reg, "cts2");
	m = provider_account_find(reg, "iac");
	CHECK(a && b && m);
	CHECK(provider_account_find(reg, "manual") != NULL); /* the built-in one is still there */
	CHECK(provider_account_find(reg, "nope") == NULL);
	if (!(a && b && m))
		goto out;
	CHECK_STR(a->zones[0], "example.com");
	CHECK_STR(provider_zone_of(a, "_validation-persist.www.example.com"), "example.com");
	CHECK_STR(provider_zone_of(a, "_validation-persist.deep.example.com"), "deep.example.com");
	CHECK_STR(provider_zone_of(a, "example.com"), "example.com");
	CHECK(provider_zone_of(a, "_validation-persist.notexample.com") == NULL);
	CHECK(provider_zone_of(a, "_validation-persist.example.org") == NULL);
	CHECK(a->limit != NULL && a->limit == b->limit); /* one bucket for one limit_key */
	CHECK(a->limit && a->limit->rate_per_s == 5 && a->limit->burst == 10);
	CHECK(m->limit == NULL);
	CHECK(m->batch_max == 10);
	CHECK(m->verify && !m->verify->enabled);
	CHECK(a->verify && a->verify->enabled);
out:
	provider_registry_free(reg);
}

static void
test_bad_files(void)
{
	CHECK(load_fails("{ \"providers\": { \"x\": { \"type\": \"bind\" } } }", "provider x: \"type\" must be one of"));
	CHECK(load_fails("{ \"providers\": { \"x\": { } } }", "provider x: \"type\""));
	CHECK(load_fails("{ \"providers\": { \"x\": { \"type\": \"manual\", \"rate\": \"fast\" } } }",
	    "provider x: \"rate\""));
	CHECK(load_fails("{ \"providers\": { \"x\": { \"type\": \"manual\", \"rate\": 5 } } }", "\"rate\" must be a string"));
	CHECK(load_fails("{ \"providers\": { \"x\": { \"type\": \"manual\", \"batch\": 0 } } }", "\"batch\""));
	CHECK(load_fails("{ \"providers\": { \"x\": { \"type\": \"manual\", \"zones\": [\"bad zone\"] } } }",
	    "zones[0] is not a valid zone name"));
	CHECK(load_fails("{ \"providers\": { \"x\": { \"type\": \"manual\", \"zone\": \"a.example\" } } }",
	    "unknown setting \"zone\" for type manual"));
	CHECK(load_fails("{ \"providers\": { \"x\": { \"type\": \"challtestsrv\" } } }", "\"url\""));
	CHECK(load_fails("{ \"providers\": { \"bad name!\": { \"type\": \"manual\" } } }", "account name"));
	CHECK(load_fails("{ \"provider\": { } }", "unknown key \"provider\""));
	CHECK(load_fails("{ \"providers\": { \"x\": { \"type\": \"manual\" }, \"x\": { \"type\": \"manual\" } } }",
	    "duplicate"));
	CHECK(load_fails("{ \"providers\": [1] }", "\"providers\" must be an object"));
	CHECK(load_fails("{ \"providers\": {", "providers file"));
	CHECK(load_fails("{ \"providers\": { \"a\": { \"type\": \"manual\", \"rate\": \"1/s\", \"limit_key\": \"k\" },"
	    " \"b\": { \"type\": \"manual\", \"rate\": \"2/s\", \"limit_key\": \"k\" } } }", "two different rates"));
}

static void
test_secrets(void)
{
	cf_err err;
	struct provider_registry *reg;
	struct provider_account *a;
	char *s;
	const char *path;

	/* inline in a private file: fine */
	reg = load("{ \"providers\": { \"x\": { \"type\": \"manual\", \"verify\": { \"enabled\": false } } } }", 0600, &err);
	CHECK(reg != NULL);
	if (reg == NULL)
		return;
	provider_registry_free(reg);

	/* the forms of a secret, on an account loaded from a file others may read */
	char private_path[256];
	snprintf(private_path, sizeof(private_path), "%s", write_file("token-private", "s3cret-token\n", 0600));
	path = private_path;
	reg = load("{ \"providers\": { \"x\": { \"type\": \"challtestsrv\", \"url\": \"https://h\" } } }", 0644, &err);
	CHECK(reg != NULL);
	if (reg == NULL)
		return;
	a = provider_account_find(reg, "x");
	/* provider_secret reads the settings object: add the forms to test to it */
	json_object_set_new(a->settings, "t_file", json_string(path));
	json_object_set_new(a->settings, "u", json_string("inline-secret"));
	json_object_set_new(a->settings, "v_env", json_string("CERTFLEET_TEST_UNSET_VAR"));
	s = provider_secret(a, "t", true, &err);
	CHECK_STR(s, "s3cret-token");
	free(s);
	/* inline secret in a file others may read: refused, without the secret in the message */
	CHECK(provider_secret(a, "u", true, &err) == NULL);
	CHECK(check_says(err.msg, "chmod 600"));
	CHECK(strstr(err.msg, "inline-secret") == NULL);
	unsetenv("CERTFLEET_TEST_UNSET_VAR");
	CHECK(provider_secret(a, "v", true, &err) == NULL);
	CHECK(check_says(err.msg, "CERTFLEET_TEST_UNSET_VAR"));
	setenv("CERTFLEET_TEST_UNSET_VAR", "from-env", 1);
	s = provider_secret(a, "v", true, &err);
	CHECK_STR(s, "from-env");
	free(s);
	CHECK(provider_secret(a, "w", false, &err) == NULL && err.msg[0] == '\0');
	CHECK(provider_secret(a, "w", true, &err) == NULL);
	CHECK(check_says(err.msg, "w_file"));
	/* a secret file others may read is refused */
	path = write_file("token-public", "s3cret-token\n", 0644);
	json_object_set_new(a->settings, "t_file", json_string(path));
	CHECK(provider_secret(a, "t", true, &err) == NULL);
	CHECK(check_says(err.msg, "readable by group or others"));
	CHECK(strstr(err.msg, "s3cret") == NULL);
	provider_registry_free(reg);
}

struct outcome {
	int done;
	bool failed;
	char error[512];
};

static bool started_returned;

static void
on_done(struct provider_call *call)
{
	struct outcome *o = call->arg;

	CHECK(started_returned); /* never inside provider_call_start */
	o->done++;
	o->failed = call->failed;
	snprintf(o->error, sizeof(o->error), "%s", call->error);
}

/* Starts call and runs loop until it ends (at most 10 s). */
static void
run_call(struct provider_call *call, struct loop *loop, struct outcome *out)
{
	out->done = 0;
	started_returned = false;
	provider_call_start(call);
	started_returned = true;
	for (int i = 0; i < 100 && out->done == 0; i++)
		CHECK(loop_run_once(loop, 100) >= 0);
}

static void
test_manual_call(void)
{
	struct loop_options lo = { 0 };
	struct loop *loop = loop_new(&lo, NULL);
	cf_err err;
	struct provider_registry *reg = load("{ \"providers\": { \"iac\": { \"type\": \"manual\" } } }", 0600, &err);
	struct provider_record rec = { "_validation-persist.a.example", "ca.example; accounturi=https://ca/acct/1" };
	struct provider_call call = { 0 };
	struct outcome out = { 0 };

	CHECK(loop && reg);
	if (!(loop && reg))
		goto out;
	call.acct = provider_account_find(reg, "iac");
	call.loop = loop;
	call.action = PROVIDER_ENSURE;
	call.zone = "a.example";
	call.recs = &rec;
	call.nrec = 1;
	call.done = on_done;
	call.arg = &out;
	run_call(&call, loop, &out);
	CHECK(out.done == 1 && !out.failed);

	call.action = PROVIDER_REMOVE;
	run_call(&call, loop, &out);
	CHECK(out.done == 1 && out.failed);
	CHECK(check_says(out.error, "iac"));

	/* more records than the account's batch: refused by the core */
	call.action = PROVIDER_ENSURE;
	call.nrec = 1001;
	run_call(&call, loop, &out);
	CHECK(out.done == 1 && out.failed);
	CHECK(check_says(out.error, "1001 records in one call"));
out:
	provider_registry_free(reg);
	loop_free(loop);
}

int
main(void)
{
	if (mkdtemp(dir) == NULL)
		return 1;
	RUN(test_good_file);
	RUN(test_bad_files);
	RUN(test_secrets);
	RUN(test_manual_call);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return CHECK_DONE();
}
