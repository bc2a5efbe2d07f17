/*
 * cmd_run.c - `certfleet run`: parses its options, wires the subsystems of a run (signals, the
 * journal, the accounts of every CA with jobs, providers, outbox and writer thread, CA limits and
 * gates, worker pool, claimer), runs the claimer (claimer.c) until the queue is empty and every
 * order has ended, and prints the summary.
 */
#include <stdatomic.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "account.h"
#include "commands.h"
#include "db.h"
#include "journal.h"
#include "log.h"
#include "metrics.h"
#include "metricsd.h"
#include "outbox.h"
#include "pgarray.h"
#include "blockpool.h"
#include "calimits.h"
#include "claimer.h"
#include "provider.h"
#include "registry.h"
#include "sharedlimit.h"
#include "stopper.h"
#include "queue.h"
#include "worker.h"
#include "writer.h"

#define CLAIM_BATCH_MAX 500

/* SIGINT and SIGTERM counted (stopper.c): the claimer stops claiming at the first. */
static atomic_int stop_requested;

struct run_opts {
	long nworkers, inflight, batch, timeout_s, maxconn;
	long lease_s, retry_base_s, retry_wait_s, max_unsaved, max_validations;
	bool progress, follow, poll_only, separate;
	const char *ca_spec;      /* --ca-limits or CERTFLEET_CA_LIMITS, may be NULL */
	const char *journal;      /* --journal, NULL = journal_default_path */
	const char *directory;    /* --directory given as a flag: that CA's account alone */
	int64_t persist_until;    /* CERTFLEET_PERSIST_UNTIL, 0 = none */
	const char *metrics_listen; /* --metrics-listen ADDR:PORT, NULL = no metrics endpoint */
	struct metricsd_addr metrics_addr;
	bool help;                /* --help was printed: nothing to run */
};

/* One CA of a run: the account its jobs name, and the limits, gate and slots of its requests. */
struct run_ca {
	struct account acct;      /* with its key, opened before anything is claimed */
	struct acme_limits limits;
	struct unsaved_orders unsaved;
	struct ca_validations validations;
	struct ca_gate *gate;     /* --separate-new-orders, else NULL */
	struct worker_ca wca;     /* all of it, as the worker pool takes it */
};

/* What a run wires together; run_teardown takes it apart, whatever was set up. */
struct run {
	struct stopper *stopper;
	PGconn *c;                /* the run's connection, which the claimer uses while it runs */
	char journal_path[4096];
	struct journal_replay replay; /* what the journal held when the run began */
	struct journal *journal;
	const struct run_opts *o;
	struct run_ca **cas;      /* the CAs whose jobs this run works, one account each */
	size_t ncas;
	int64_t *account_ids;     /* the accounts of the CAs it started with */
	CURLSH *share;
	struct blockpool *blocking;
	struct sharedlimit *shared;
	struct provider_env penv;
	struct provider_registry *providers;
	struct keygen_pool *keygen;
	struct outbox ob;
	struct writer wr;
	bool outbox_ready, writer_running;
	struct worker_pool *pool;
	struct claimer *claimer;
	struct metricsd *metricsd; /* --metrics-listen */
	char owner[128];          /* this process's runner name */
};

/*
 * The defaults, chosen with `make bench` (README, Benchmarks): enough orders under way to keep a
 * CA busy while each waits out the CA's Retry-After between steps; few enough unsaved orders that
 * a crash costs little; few enough open validations that a CA does not get them as one burst.
 */
#define RUN_INFLIGHT 2048        /* orders in flight, all workers together */
#define RUN_MAX_UNSAVED 64       /* per CA */
#define RUN_MAX_VALIDATIONS 256  /* per CA */

static void
run_help(void)
{
	printf("usage: certfleet run [OPTIONS]\n\n"
	       "Claims ready jobs and works them until the queue is empty: orders certificates with\n"
	       "dns-persist-01, publishes missing records through each certificate's DNS provider, and\n"
	       "writes results back to PostgreSQL. SIGINT/SIGTERM stop claiming and let orders in flight\n"
	       "finish; a second signal exits at once (exit code 6), after writing what was not stored\n"
	       "yet to the journal.\n\n"
	       "Several CAs: the run works the jobs of every account (one per CA) that has jobs queued or\n"
	       "running when it starts, each with its own key, directory, nonces, rate limits, gate and\n"
	       "unsaved-order slots, and claims from each in turn. --directory given as an option\n"
	       "restricts it to that CA's account (CERTFLEET_DIRECTORY does not). With --follow, the\n"
	       "account of jobs queued later for another CA joins the run when they are found.\n\n"
	       "Nothing issued is lost: while PostgreSQL refuses writes (away, disk full, ...) results\n"
	       "wait in memory, claims stop and new orders wait; a result PostgreSQL refuses for good goes\n"
	       "to the local journal (exit code 5), which the next run stores before it claims.\n\n"
	       "Options:\n"
	       "  -w, --workers N        worker threads (default: number of CPUs)\n"
	       "  --inflight N           orders in flight per worker (default 2048 in all, shared by the\n"
	       "                         workers, at least 64 each: a CA asks a second or more between an\n"
	       "                         order's steps, so throughput needs many orders under way)\n"
	       "  --batch N              jobs claimed per query (default 100)\n"
	       "  --order-timeout SECS   fail an order not done in this time (default 600)\n"
	       "  --max-connections N    connections per host per worker (default 8)\n"
	       "  --no-progress          no progress on standard error; by default a terminal shows one\n"
	       "                         live line (claimed, issued, failed, in flight, rate, time\n"
	       "                         left), anything else a plain line every 2 s\n"
	       "  --lease SECS           this run's lease on the jobs it claims, renewed every third of it;\n"
	       "                         the jobs of a process that died are taken over after it (default 120)\n"
	       "  --retry-base SECS      first retry of a failed attempt after this; x10 per attempt, at\n"
	       "                         most a day; Retry-After from the CA wins (default 60)\n"
	       "  --retry-wait SECS      stay for retries due within this; later ones are left to the next\n"
	       "                         run, which ends with exit code 4 (default 300)\n"
	       "  --follow               keep running when the queue is empty; wake on enqueue (NOTIFY)\n"
	       "  --poll-only            no LISTEN (for PgBouncer in transaction mode): poll instead\n"
	       "  --max-unsaved-orders N at most N orders created at a CA whose URL is not yet stored,\n"
	       "                         per CA; a crash can orphan no more orders than that (default 64;\n"
	       "                         the writer stores the URLs of all orders created meanwhile in one\n"
	       "                         commit, so newOrders overlap; 1 makes each wait for the last)\n"
	       "  --ca-limits SPEC       rate limits towards the CA (env CERTFLEET_CA_LIMITS): off,\n"
	       "                         letsencrypt, or NAME=RATE/PERIOD[:BURST],... with NAME new-nonce,\n"
	       "                         new-order, other (per endpoint, this process) or account-orders\n"
	       "                         (new orders of the account, all processes, renewals exempt);\n"
	       "                         each CA has its own buckets; default: letsencrypt for Let's\n"
	       "                         Encrypt's directories, else off (decided per CA)\n"
	       "  --max-validations N    at most N challenges answered at a CA whose verdict is not in,\n"
	       "                         per CA; 0 = no cap (default 256: a CA validates each answer at\n"
	       "                         once, and thousands at once make Pebble fail lookups)\n"
	       "  --separate-new-orders  never send newOrder while authorization fetches are in flight\n"
	       "                         (env CERTFLEET_SEPARATE_NEW_ORDERS=1): avoids a lock-order\n"
	       "                         deadlock in Pebble 2.10 under load; not needed for other CAs\n"
	       "  --journal PATH         the local journal (env CERTFLEET_JOURNAL; default\n"
	       "                         $STATE_DIRECTORY/journal, else ~/.local/state/certfleet/journal)\n"
	       "  --metrics-listen ADDR:PORT  serve Prometheus metrics at http://ADDR:PORT/metrics (e.g.\n"
	       "                         127.0.0.1:9464 or [::1]:9464); a bad address exits 2, one that\n"
	       "                         cannot be bound exits 1 (see README, Metrics)\n\n"
	       "Environment: CERTFLEET_PROVIDERS names the DNS provider accounts file (see certfleet\n"
	       "provider --help); CERTFLEET_CHALLTESTSRV_URL and CERTFLEET_CHALLTESTSRV_DNS set up the\n"
	       "built-in challtestsrv account. CERTFLEET_PERSIST_UNTIL (unix seconds, YYYY-MM-DD or\n"
	       "YYYY-MM-DDTHH:MM:SSZ, UTC) adds persistUntil to every record the run writes, as records\n"
	       "prints them; a time already past exits 2, one within 30 days is warned about.\n\n%s",
	    CONFIG_COMMON_HELP);
}

static const struct option run_options[] = {
	{ "workers", required_argument, NULL, 'w' },
	{ "inflight", required_argument, NULL, 'i' },
	{ "batch", required_argument, NULL, 'b' },
	{ "order-timeout", required_argument, NULL, 't' },
	{ "max-connections", required_argument, NULL, 'm' },
	{ "no-progress", no_argument, NULL, 'P' },
	{ "separate-new-orders", no_argument, NULL, 'S' },
	{ "lease", required_argument, NULL, 'L' },
	{ "retry-base", required_argument, NULL, 'R' },
	{ "retry-wait", required_argument, NULL, 'W' },
	{ "follow", no_argument, NULL, 'F' },
	{ "poll-only", no_argument, NULL, 'O' },
	{ "ca-limits", required_argument, NULL, 'C' },
	{ "max-unsaved-orders", required_argument, NULL, 'U' },
	{ "max-validations", required_argument, NULL, 'V' },
	{ "journal", required_argument, NULL, 'J' },
	{ "metrics-listen", required_argument, NULL, 'X' },
	CONFIG_COMMON_OPTIONS,
	{ 0 },
};

/* One of run's own options: 1, 0 after logging a bad value, or -1 when opt is not one of them. */
static int
run_option(struct run_opts *o, int opt, const char *arg)
{
	switch (opt) {
	case 'w':
		return cmd_parse_long("--workers", arg, 1, 256, &o->nworkers) == 0;
	case 'i':
		return cmd_parse_long("--inflight", arg, 1, 100000, &o->inflight) == 0;
	case 'b':
		return cmd_parse_long("--batch", arg, 1, CLAIM_BATCH_MAX, &o->batch) == 0;
	case 't':
		return cmd_parse_long("--order-timeout", arg, 1, 7 * 86400, &o->timeout_s) == 0;
	case 'm':
		return cmd_parse_long("--max-connections", arg, 1, 1000, &o->maxconn) == 0;
	case 'P':
		o->progress = false;
		return 1;
	case 'S':
		o->separate = true;
		return 1;
	case 'L':
		return cmd_parse_long("--lease", arg, 3, 86400, &o->lease_s) == 0;
	case 'R':
		return cmd_parse_long("--retry-base", arg, 0, 86400, &o->retry_base_s) == 0;
	case 'W':
		return cmd_parse_long("--retry-wait", arg, 0, 7 * 86400, &o->retry_wait_s) == 0;
	case 'F':
		o->follow = true;
		return 1;
	case 'C':
		o->ca_spec = arg;
		return 1;
	case 'U':
		return cmd_parse_long("--max-unsaved-orders", arg, 1, 100000, &o->max_unsaved) == 0;
	case 'V':
		return cmd_parse_long("--max-validations", arg, 0, 1000000, &o->max_validations) == 0;
	case 'O':
		o->poll_only = true;
		return 1;
	case 'J':
		o->journal = arg;
		return 1;
	case 'X': {
		cf_err err;
		if (metricsd_parse_addr(arg, &o->metrics_addr, &err) != 0) {
			log_error("run: --metrics-listen: %s", err.msg);
			return 0;
		}
		o->metrics_listen = arg;
		return 1;
	}
	}
	return -1;
}

/* The defaults, then the environment, then the flags. EXIT_OK (check o->help) or EXIT_USAGE. */
static int
run_parse(struct config *cfg, int argc, char **argv, struct run_opts *o)
{
	const char *sep_env = getenv("CERTFLEET_SEPARATE_NEW_ORDERS");
	int opt, ok;

	*o = (struct run_opts){ .nworkers = sysconf(_SC_NPROCESSORS_ONLN), .inflight = 0, .batch = 100,
		.timeout_s = 600, .maxconn = 8, .lease_s = 120, .retry_base_s = 60, .retry_wait_s = 300,
		.max_unsaved = RUN_MAX_UNSAVED, .max_validations = RUN_MAX_VALIDATIONS, .progress = true,
		.separate = sep_env && strcmp(sep_env, "1") == 0, .ca_spec = getenv("CERTFLEET_CA_LIMITS") };
	if (o->nworkers < 1)
		o->nworkers = 1;
	while ((opt = getopt_long(argc, argv, "w:" CONFIG_COMMON_SHORT, run_options, NULL)) != -1) {
		if (opt == 'h') {
			run_help();
			o->help = true;
			return EXIT_OK;
		}
		if (opt == 1001)
			o->directory = optarg;
		ok = run_option(o, opt, optarg);
		if (ok == 0 || (ok < 0 && !config_common_option(cfg, opt, optarg)))
			return EXIT_USAGE;
	}
	if (optind != argc) {
		log_error("run: unexpected argument \"%s\"", argv[optind]);
		return EXIT_USAGE;
	}
	if (o->inflight == 0)
		o->inflight = RUN_INFLIGHT / o->nworkers > 64 ? RUN_INFLIGHT / o->nworkers : 64;
	return config_persist_until(cfg, "run", 30, &o->persist_until);
}

/* Checks that every provider account the queued jobs of the run's accounts name is configured. */
static int
check_providers(PGconn *c, const int64_t *account_ids, size_t naccounts, const struct provider_registry *reg)
{
	struct pgarray ids = { 0 };
	const char *p[1];
	PGresult *res;
	cf_err err;
	int rc = 0;

	for (size_t i = 0; i < naccounts; i++)
		pgarray_add_i64(&ids, account_ids[i]);
	if ((p[0] = pgarray_finish(&ids)) == NULL) {
		pgarray_free(&ids);
		log_error("run: listing providers of queued jobs: out of memory");
		return -1;
	}
	res = db_exec(c, "listing providers of queued jobs",
	    "SELECT DISTINCT ce.provider FROM jobs j JOIN certificates ce ON ce.id = j.certificate_id "
	    "WHERE j.state = 'ready' AND j.account_id = ANY ($1::bigint[])", 1, p, &err);
	pgarray_free(&ids);
	if (res == NULL) {
		log_error("%s", err.msg);
		return -1;
	}
	for (int r = 0; r < PQntuples(res); r++) {
		const char *name = PQgetvalue(res, r, 0);
		if (provider_account_find(reg, name) == NULL) {
			log_error("run: queued jobs use DNS provider account \"%s\", which is not configured "
			    "(see certfleet provider list, CERTFLEET_PROVIDERS)", name);
			rc = -1;
		}
	}
	PQclear(res);
	return rc;
}

/*
 * The end-of-run report: a sentence for people, then one key=value line for scripts. "issued"
 * counts the certificates committed to PostgreSQL, "ca_issued" those the CA issued.
 */
static void
run_summary(const struct worker_pool_stats *st, long claimed, int64_t wall_ms, int64_t p50, int64_t p99,
    const struct writer *wr, long peak_outbox)
{
	struct rusage ru;
	double secs = wall_ms / 1000.0, cpu_ms;
	long ended = st->issued + st->failed;

	getrusage(RUSAGE_SELF, &ru);
	cpu_ms = ru.ru_utime.tv_sec * 1000.0 + ru.ru_utime.tv_usec / 1000.0 + ru.ru_stime.tv_sec * 1000.0 +
	    ru.ru_stime.tv_usec / 1000.0;
	printf("run finished: %ld claimed, %ld issued, %ld failed in %.2f s (%.2f certificates/s)%s\n", claimed,
	    wr->issued, st->failed, secs, secs > 0 ? wr->issued / secs : 0.0,
	    atomic_load(&stop_requested) ? " [stopped by signal]" : "");
	if (wr->issued != st->issued || wr->journalled || wr->lost)
		printf("the CA issued %ld; %ld stored, %ld message%s kept in the journal, %ld lost\n", st->issued,
		    wr->issued, wr->journalled, wr->journalled == 1 ? "" : "s", wr->lost);
	if (wr->waits)
		printf("PostgreSQL refused writes for up to %.1f s (%ld waits); at most %ld messages waited in memory\n",
		    wr->longest_wait_ms / 1000.0, wr->waits, peak_outbox);
	if (st->retried || st->cancelled)
		printf("%ld failed attempt%s went back to the queue for a retry, %ld cancelled\n", st->retried,
		    st->retried == 1 ? "" : "s", st->cancelled);
	printf("order latency p50 %lld ms, p99 %lld ms; peak orders in flight %ld; worst event-loop lag %lld ms\n",
	    (long long)p50, (long long)p99, st->peak_inflight, (long long)st->max_lag_ms);
	printf("summary: claimed=%ld issued=%ld failed=%ld retried=%ld cancelled=%ld wall_s=%.3f certs_per_s=%.2f p50_ms=%lld p99_ms=%lld "
	       "peak_inflight=%ld max_lag_ms=%lld cpu_ms=%.0f cpu_ms_per_cert=%.3f peak_rss_mb=%.1f "
	       "db_messages=%ld db_batches=%ld ca_issued=%ld journalled=%ld lost=%ld db_waits=%ld "
	       "db_longest_wait_s=%.1f peak_outbox=%ld\n",
	    claimed, wr->issued, st->failed, st->retried, st->cancelled, secs, secs > 0 ? wr->issued / secs : 0.0,
	    (long long)p50,
	    (long long)p99, st->peak_inflight, (long long)st->max_lag_ms, cpu_ms, ended ? cpu_ms / ended : 0.0,
	    ru.ru_maxrss / 1024.0, wr->committed, wr->batches, st->issued, wr->journalled, wr->lost, wr->waits,
	    wr->longest_wait_ms / 1000.0, peak_outbox);
}

/* The DNS provider accounts, with the threads and shared rate limits they use. An exit code. */
static int
run_wire_providers(const struct config *cfg, struct run *r)
{
	cf_err err;

	if ((r->share = http_share_new(&err)) == NULL) {
		log_error("run: %s", err.msg);
		return EXIT_FAILURE_RUNTIME;
	}
	if ((r->blocking = blockpool_new(8, &err)) == NULL || (r->shared = sharedlimit_new(cfg->db_url, &err)) == NULL) {
		log_error("run: %s", err.msg);
		return EXIT_FAILURE_RUNTIME;
	}
	r->penv.path = cfg->providers_path;
	r->penv.challtestsrv_url = cfg->challtestsrv_url;
	r->penv.challtestsrv_dns = cfg->challtestsrv_dns;
	r->penv.http.timeout_ms = 30000;
	r->penv.http.share = r->share;
	r->penv.http.allow_http_loopback = cfg->allow_http_loopback;
	r->penv.pool = r->blocking;
	r->penv.make_limiter = sharedlimit_limiter;
	r->penv.make_limiter_arg = r->shared;
	if ((r->providers = provider_registry_load(&r->penv, &err)) == NULL) {
		log_error("run: %s", err.msg);
		return EXIT_USAGE;
	}
	if (check_providers(r->c, r->account_ids, r->ncas, r->providers) != 0)
		return EXIT_USAGE;
	return EXIT_OK;
}

/*
 * The journal: what an earlier run could not store goes to PostgreSQL first, before anything is
 * claimed; then it is opened for this run's writer. An exit code.
 */
static int
run_wire_journal(const struct run_opts *o, struct run *r)
{
	cf_err err;

	if (o->journal)
		snprintf(r->journal_path, sizeof(r->journal_path), "%s", o->journal);
	else if (journal_default_path(r->journal_path, sizeof(r->journal_path), &err) != 0) {
		log_error("run: %s", err.msg);
		return EXIT_USAGE;
	}
	if (journal_replay(r->c, r->journal_path, &r->replay, &err) != 0) {
		log_error("run: %s", err.msg);
		return EXIT_FAILURE_RUNTIME;
	}
	if (r->replay.stored)
		log_info("run: stored %ld entr%s of the journal %s", r->replay.stored, r->replay.stored == 1 ? "y" : "ies",
		    r->journal_path);
	if (r->replay.kept)
		log_error("run: %ld entr%s of the journal %s could not be stored yet (see above); they stay there",
		    r->replay.kept, r->replay.kept == 1 ? "y" : "ies", r->journal_path);
	if ((r->journal = journal_open(r->journal_path, r->c, &err)) == NULL) {
		log_error("run: %s", err.msg);
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

static long
abandon_writer(void *arg)
{
	return writer_abandon(arg);
}

/* The outbox the workers report to, and the writer thread that commits it. An exit code. */
static int
run_wire_writer(const struct config *cfg, struct run *r)
{
	cf_err err;

	if (outbox_init(&r->ob) != 0) {
		log_error("run: outbox_init failed");
		return EXIT_FAILURE_RUNTIME;
	}
	r->outbox_ready = true;
	if (writer_start(&r->wr, cfg->db_url, &r->ob, r->journal, &err) != 0) {
		log_error("%s", err.msg);
		return EXIT_FAILURE_RUNTIME;
	}
	r->writer_running = true;
	stopper_set_abandon(r->stopper, abandon_writer, &r->wr);
	return EXIT_OK;
}

/*
 * A CA's rate limits (buckets of its own; the default decided by its directory), its CA gate and
 * its unsaved-order slots, so that one CA's limits or troubles never hold another's orders; and
 * ca->wca, which hands them to the worker pool. An exit code.
 */
static int
run_ca_wire(const struct run_opts *o, struct run *r, struct run_ca *ca)
{
	char limit_key[64], limits_text[256];
	cf_err err;

	snprintf(limit_key, sizeof(limit_key), "account-%lld", (long long)ca->acct.id);
	if (calimits_setup(&ca->limits, o->ca_spec, ca->acct.directory_url, limit_key, sharedlimit_limiter, r->shared,
	    &err) != 0) {
		log_error("run: --ca-limits: %s", err.msg);
		return EXIT_USAGE;
	}
	calimits_describe(&ca->limits, limits_text, sizeof(limits_text));
	log_info("run: rate limits towards the CA: %s (%s)", limits_text, ca->acct.directory_url);
	atomic_init(&ca->unsaved.n, 0);
	ca->unsaved.cap = o->max_unsaved;
	atomic_init(&ca->validations.n, 0);
	ca->validations.cap = o->max_validations;
	if (o->separate && (ca->gate = ca_gate_new(&err)) == NULL) {
		log_error("run: %s", err.msg);
		return EXIT_FAILURE_RUNTIME;
	}
	ca->wca = (struct worker_ca){ .account_id = ca->acct.id, .directory_url = ca->acct.directory_url,
		.account_url = ca->acct.account_url, .key_pem = ca->acct.key_pem, .issuer = ca->acct.issuer,
		.gate = ca->gate, .limits = &ca->limits, .unsaved = &ca->unsaved, .validations = &ca->validations };
	return EXIT_OK;
}

/* The worker pool, with an engine per CA in each worker and the key threads its orders use. An exit code. */
static int
run_wire_pool(const struct config *cfg, const struct run_opts *o, struct run *r)
{
	struct worker_pool_config wc = { 0 };
	struct worker_ca *wcas;
	cf_err err;
	int rc;

	for (size_t i = 0; i < r->ncas; i++)
		if ((rc = run_ca_wire(o, r, r->cas[i])) != EXIT_OK)
			return rc;
	if ((wcas = calloc(r->ncas, sizeof(*wcas))) == NULL) {
		log_error("run: out of memory");
		return EXIT_FAILURE_RUNTIME;
	}
	for (size_t i = 0; i < r->ncas; i++)
		wcas[i] = r->cas[i]->wca;
	wc.nworkers = (int)o->nworkers;
	wc.per_worker_cap = o->inflight;
	wc.loop.max_host_connections = o->maxconn;
	wc.cas = wcas;
	wc.ncas = r->ncas;
	wc.acme.http.ca_bundle = cfg->ca_bundle;
	wc.acme.http.share = r->share;
	wc.acme.http.allow_http_loopback = cfg->allow_http_loopback;
	wc.acme.providers = r->providers;
	wc.acme.pool = r->blocking;
	wc.acme.outbox = &r->ob;
	wc.acme.order_timeout_ms = o->timeout_s * 1000;
	wc.acme.retry_base_ms = o->retry_base_s * 1000;
	wc.acme.persist_until = o->persist_until;
	if ((r->keygen = keygen_pool_new(1, &err)) == NULL) {
		log_error("run: %s", err.msg);
		free(wcas);
		return EXIT_FAILURE_RUNTIME;
	}
	wc.acme.keygen = r->keygen;
	r->pool = worker_pool_start(&wc, &err);
	free(wcas); /* copied by the pool */
	if (r->pool == NULL) {
		log_error("run: %s", err.msg);
		return EXIT_FAILURE_RUNTIME;
	}
	return EXIT_OK;
}

static void
run_ca_free(struct run_ca *ca)
{
	if (ca == NULL)
		return;
	calimits_clear(&ca->limits);
	ca_gate_free(ca->gate);
	account_clear(&ca->acct);
	free(ca);
}

/*
 * The claimer's add_account, for run --follow: the CA of an account whose first jobs came after
 * the run started joins the run, with its key opened, limits, gate and slots of its own.
 */
static int
run_add_account(void *arg, const struct account *a)
{
	struct run *r = arg;
	struct run_ca *ca = calloc(1, sizeof(*ca)), **cas;
	cf_err err;

	if (ca == NULL || account_copy(&ca->acct, a) != 0 ||
	    (cas = realloc(r->cas, (r->ncas + 1) * sizeof(*cas))) == NULL) {
		log_error("run: adding account %lld: out of memory", (long long)a->id);
		run_ca_free(ca);
		return -1;
	}
	r->cas = cas;
	r->cas[r->ncas++] = ca; /* freed with the run from here on */
	if (account_load_key(r->c, &ca->acct, &err) != 0) {
		log_error("run: %s", err.msg);
		return -1;
	}
	if (run_ca_wire(r->o, r, ca) != EXIT_OK)
		return -1;
	if (worker_pool_add_ca(r->pool, &ca->wca, &err) != 0) {
		log_error("run: %s", err.msg);
		return -1;
	}
	log_info("run: account %s at %s (its jobs came after the run started)", a->account_url, a->directory_url);
	return 0;
}

/* The claimer, under a runner name of this process's own. An exit code. */
static int
run_wire_claimer(const struct run_opts *o, struct run *r)
{
	struct claimer_config cc = { 0 };
	char host[64];
	cf_err err;

	gethostname(host, sizeof(host));
	host[sizeof(host) - 1] = '\0';
	/* unique per process start, so that a restarted process never mistakes old leases for its own */
	snprintf(r->owner, sizeof(r->owner), "%s:%ld:%llx", host, (long)getpid(), (unsigned long long)cf_wall_ms());
	cc.account_ids = r->account_ids;
	cc.naccounts = r->ncas;
	cc.add_account = run_add_account;
	cc.add_arg = r;
	cc.owner = r->owner;
	cc.batch = o->batch;
	cc.nworkers = o->nworkers;
	cc.inflight = o->inflight;
	cc.lease_s = o->lease_s;
	cc.retry_wait_s = o->retry_wait_s;
	cc.follow = o->follow;
	cc.listen = !o->poll_only;
	cc.progress = o->progress;
	cc.queue_metrics = o->metrics_listen != NULL;
	cc.live = o->progress && isatty(STDERR_FILENO) && cf_log_get_format() == CF_LOG_TEXT;
	cc.stop = &stop_requested;
	if ((r->claimer = claimer_new(&cc, r->c, r->pool, &err)) == NULL) {
		log_error("run: %s", err.msg);
		return EXIT_FAILURE_RUNTIME;
	}
	return EXIT_OK;
}

static int
run_render_metrics(void *arg, cf_buf *out)
{
	(void)arg;
	return metrics_render_run(out);
}

/* The /metrics endpoint of --metrics-listen, first, so that a port in use stops the run before it claims. */
static int
run_wire_metrics(const struct run_opts *o, struct run *r)
{
	cf_err err;

	if (o->metrics_listen == NULL)
		return EXIT_OK;
	if ((r->metricsd = metricsd_start(&o->metrics_addr, o->metrics_listen, run_render_metrics, r, &err)) == NULL) {
		log_error("run: --metrics-listen: %s", err.msg);
		return EXIT_FAILURE_RUNTIME;
	}
	log_info("run: metrics at http://%s/metrics", o->metrics_listen);
	return EXIT_OK;
}

/* Everything a run needs, in the order each part needs the ones before. An exit code. */
static int
run_wire(const struct config *cfg, const struct run_opts *o, struct run *r)
{
	int rc;

	if ((rc = run_wire_metrics(o, r)) != EXIT_OK || (rc = run_wire_journal(o, r)) != EXIT_OK || (rc = run_wire_providers(cfg, r)) != EXIT_OK ||
	    (rc = run_wire_writer(cfg, r)) != EXIT_OK ||
	    (rc = run_wire_pool(cfg, o, r)) != EXIT_OK || (rc = run_wire_claimer(o, r)) != EXIT_OK)
		return rc;
	return EXIT_OK;
}

/*
 * After the claimer: lets the orders in flight end and the writer commit them, prints the
 * summary, ends the lease, and says how the run went (the exit code).
 */
static int
run_finish(const struct run_opts *o, struct run *r, int64_t t0)
{
	struct worker_pool_stats st;
	int64_t p50, p99;
	cf_err err;

	worker_pool_stats(r->pool, &st);
	st.failed += claimer_failed(r->claimer); /* rows the claim could not parse failed too */
	p50 = worker_pool_latency(r->pool, 50);
	p99 = worker_pool_latency(r->pool, 99);
	worker_pool_stop(r->pool);
	r->pool = NULL;
	outbox_close(&r->ob);
	stopper_set_abandon(r->stopper, NULL, NULL);
	writer_join(&r->wr);
	r->writer_running = false;
	run_summary(&st, claimer_claimed(r->claimer), cf_mono_ms() - t0, p50, p99, &r->wr, r->ob.peak);
	if (queue_release(r->c, r->owner, &err) != 0)
		log_warn("run: %s (the lease ends by itself in %ld s)", err.msg, o->lease_s);
	if (r->wr.lost > 0 || r->wr.dropped > 0) {
		log_error("run: %ld message%s could not be stored, nor kept in the journal (see errors above)",
		    r->wr.lost + r->wr.dropped, r->wr.lost + r->wr.dropped == 1 ? "" : "s");
		return EXIT_FAILURE_RUNTIME;
	}
	if (r->wr.journalled > 0 || r->replay.kept > 0) {
		log_error("run: %ld result%s wait%s in the journal %s for the next run to store",
		    r->wr.journalled + r->replay.kept, r->wr.journalled + r->replay.kept == 1 ? "" : "s",
		    r->wr.journalled + r->replay.kept == 1 ? "s" : "", r->journal_path);
		return EXIT_JOURNALLED;
	}
	if (st.failed > 0)
		return EXIT_JOBS_FAILED;
	struct queue_outstanding qo = { 0 };
	size_t nids;
	const int64_t *ids = claimer_accounts(r->claimer, &nids);
	if (queue_outstanding(r->c, ids, nids, 0, &qo, &err) == 0 && qo.ready > 0) {
		printf("%ld job%s wait%s in the queue for a later retry\n", qo.ready, qo.ready == 1 ? "" : "s",
		    qo.ready == 1 ? "s" : "");
		return EXIT_JOBS_QUEUED;
	}
	return EXIT_OK;
}

/* Takes apart whatever run_wire set up, threads first. */
static void
run_teardown(struct run *r)
{
	claimer_free(r->claimer);
	worker_pool_stop(r->pool);
	keygen_pool_free(r->keygen);
	provider_registry_free(r->providers);
	for (size_t i = 0; i < r->ncas; i++)
		run_ca_free(r->cas[i]);
	free(r->cas);
	free(r->account_ids);
	sharedlimit_free(r->shared);
	blockpool_free(r->blocking);
	http_share_free(r->share);
	if (r->writer_running) {
		stopper_set_abandon(r->stopper, NULL, NULL);
		outbox_close(&r->ob);
		writer_join(&r->wr);
	}
	if (r->outbox_ready)
		outbox_destroy(&r->ob);
	journal_close(r->journal);
	PQfinish(r->c);
	metricsd_free(r->metricsd);
	stopper_free(r->stopper);
}

/*
 * The accounts whose jobs the run works: the one of --directory given as an option, else every
 * account with jobs queued or unfinished, else (nothing queued anywhere) the account of
 * CERTFLEET_DIRECTORY, so that the run still stores what the journal holds and, with --follow,
 * waits for that CA's jobs. Their keys are opened here, before anything is claimed or replayed:
 * a wrong KEK changes nothing. An exit code.
 */
static int
run_load_accounts(const struct config *cfg, const struct run_opts *o, struct run *r)
{
	struct account *busy = NULL;
	size_t nbusy = 0;
	const char *dir = o->directory ? o->directory : cfg->directory_url;
	cf_err err;
	int found;

	if (o->directory == NULL && account_load_busy(r->c, NULL, 0, &busy, &nbusy, &err) != 0) {
		log_error("run: %s", err.msg);
		return EXIT_FAILURE_RUNTIME;
	}
	if (nbusy == 0) {
		if (dir == NULL) {
			log_error("run: no account has jobs queued, and no ACME directory is set to wait for: set "
			    "CERTFLEET_DIRECTORY or pass --directory");
			return EXIT_USAGE;
		}
		if ((busy = calloc(1, sizeof(*busy))) == NULL) {
			log_error("run: out of memory");
			return EXIT_FAILURE_RUNTIME;
		}
		if ((found = account_load(r->c, dir, busy, &err)) != 1) {
			if (found < 0)
				log_error("run: %s", err.msg);
			else
				log_error("run: no account for %s: run 'certfleet account register' first", dir);
			free(busy);
			return found < 0 ? EXIT_FAILURE_RUNTIME : EXIT_USAGE;
		}
		nbusy = 1;
	}
	r->cas = calloc(nbusy, sizeof(*r->cas));
	r->account_ids = calloc(nbusy, sizeof(*r->account_ids));
	for (size_t i = 0; i < nbusy; i++) {
		if (r->cas && (r->cas[i] = calloc(1, sizeof(**r->cas))) != NULL) {
			r->cas[i]->acct = busy[i]; /* moved */
			r->ncas = i + 1;
		} else {
			account_clear(&busy[i]);
		}
	}
	free(busy);
	if (r->cas == NULL || r->account_ids == NULL || r->ncas != nbusy) {
		log_error("run: out of memory");
		return EXIT_FAILURE_RUNTIME;
	}
	for (size_t i = 0; i < r->ncas; i++) {
		struct account *a = &r->cas[i]->acct;
		r->account_ids[i] = a->id;
		if (account_load_key(r->c, a, &err) != 0) {
			log_error("run: %s", err.msg);
			return EXIT_USAGE;
		}
		log_info("run: account %s at %s", a->account_url, a->directory_url);
	}
	return EXIT_OK;
}

int
cmd_run(struct config *cfg, int argc, char **argv)
{
	struct run_opts o;
	struct run r = { 0 };
	int64_t t0;
	int rc;

	cf_err err;

	if ((rc = run_parse(cfg, argc, argv, &o)) != EXIT_OK || o.help)
		return rc;
	r.o = &o;
	/* the directory set, as an option or in the environment, must be a URL run may use */
	if (cfg->directory_url && !config_directory_ok(cfg, "run"))
		return EXIT_USAGE;
	if ((rc = cmd_protect_memory("run")) != EXIT_OK)
		return rc;
	/* before any thread starts, so that every thread leaves the signals to it */
	if ((r.stopper = stopper_start(&stop_requested, EXIT_INTERRUPTED, &err)) == NULL) {
		log_error("run: %s", err.msg);
		return EXIT_FAILURE_RUNTIME;
	}
	if ((rc = cmd_keyring("run", true)) != EXIT_OK)
		goto out;
	if ((r.c = cmd_connect(cfg, true)) == NULL) {
		rc = cmd_connect_failure();
		goto out;
	}
	if ((rc = run_load_accounts(cfg, &o, &r)) != EXIT_OK || (rc = run_wire(cfg, &o, &r)) != EXIT_OK)
		goto out;
	t0 = cf_mono_ms();
	log_info("run: %zu CA%s, %ld worker%s, %ld orders in flight each", r.ncas, r.ncas == 1 ? "" : "s",
	    o.nworkers, o.nworkers == 1 ? "" : "s", o.inflight);
	claimer_run(r.claimer);
	rc = run_finish(&o, &r, t0);
out:
	run_teardown(&r);
	return rc;
}
