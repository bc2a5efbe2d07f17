/*
 * cmd_run.c - `certfleet run`: the claimer (this thread) hands jobs from PostgreSQL to the worker
 * pool as slots free up, the writer thread commits what the workers report, and the run ends when
 * the queue is empty and every order has ended.
 */
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "account.h"
#include "commands.h"
#include "db.h"
#include "log.h"
#include "outbox.h"
#include "blockpool.h"
#include "calimits.h"
#include "provider.h"
#include "registry.h"
#include "sharedlimit.h"
#include "queue.h"
#include "worker.h"
#include "writer.h"

#define CLAIM_BATCH_MAX 500
#define RESCUE_EVERY_MS 5000
#define PROGRESS_EVERY_MS 2000

static volatile sig_atomic_t stop_requested;
static bool listening;           /* LISTEN is active on the claimer's connection */

static bool reconnected;          /* renew leases at once: they ran on while PostgreSQL was away */

/* After a failed statement: reconnect when the connection is gone, and LISTEN again. */
static void
run_reconnect(PGconn *c)
{
	if (PQstatus(c) == CONNECTION_OK)
		return;
	PQreset(c);
	if (PQstatus(c) != CONNECTION_OK) {
		log_warn("run: PostgreSQL unreachable; retrying (orders in flight go on)");
		return;
	}
	log_info("run: reconnected to PostgreSQL");
	reconnected = true;
	if (listening)
		PQclear(PQexec(c, "LISTEN " QUEUE_CHANNEL));
}

static void
on_signal(int sig)
{
	(void)sig;
	stop_requested++;
}

static void
run_help(void)
{
	printf("usage: certfleet run [OPTIONS]\n\n"
	       "Claims ready jobs of the account for --directory and works them until the queue is\n"
	       "empty: orders certificates with dns-persist-01, publishes missing records through each\n"
	       "certificate's DNS provider, and writes results back to PostgreSQL. SIGINT/SIGTERM stop\n"
	       "claiming and let orders in flight finish; a second signal exits at once.\n\n"
	       "Options:\n"
	       "  -w, --workers N        worker threads (default: number of CPUs)\n"
	       "  --inflight N           orders in flight per worker (default 256)\n"
	       "  --batch N              jobs claimed per query (default 100)\n"
	       "  --order-timeout SECS   fail an order not done in this time (default 600)\n"
	       "  --max-connections N    connections per host per worker (default 8)\n"
	       "  --no-progress          no progress lines on standard error\n"
	       "  --lease SECS           this run's lease on the jobs it claims, renewed every third of it;\n"
	       "                         the jobs of a process that died are taken over after it (default 120)\n"
	       "  --retry-base SECS      first retry of a failed attempt after this; x10 per attempt, at\n"
	       "                         most a day; Retry-After from the CA wins (default 60)\n"
	       "  --retry-wait SECS      stay for retries due within this; later ones are left to the next\n"
	       "                         run, which ends with exit code 4 (default 300)\n"
	       "  --follow               keep running when the queue is empty; wake on enqueue (NOTIFY)\n"
	       "  --poll-only            no LISTEN (for PgBouncer in transaction mode): poll instead\n"
	       "  --max-unsaved-orders N at most N orders created at the CA whose URL is not yet stored;\n"
	       "                         a crash can orphan no more orders than that (default 1: each\n"
	       "                         crash costs at most one extra order)\n"
	       "  --ca-limits SPEC       rate limits towards the CA (env CERTFLEET_CA_LIMITS): off,\n"
	       "                         letsencrypt, or NAME=RATE/PERIOD[:BURST],... with NAME new-nonce,\n"
	       "                         new-order, other (per endpoint, this process) or account-orders\n"
	       "                         (new orders of the account, all processes, renewals exempt);\n"
	       "                         default: letsencrypt for Let's Encrypt's directories, else off\n"
	       "  --separate-new-orders  never send newOrder while authorization fetches are in flight\n"
	       "                         (env CERTFLEET_SEPARATE_NEW_ORDERS=1): avoids a lock-order\n"
	       "                         deadlock in Pebble 2.10 under load; not needed for other CAs\n\n"
	       "Environment: CERTFLEET_PROVIDERS names the DNS provider accounts file (see certfleet\n"
	       "provider --help); CERTFLEET_CHALLTESTSRV_URL and CERTFLEET_CHALLTESTSRV_DNS set up the\n"
	       "built-in challtestsrv account.\n\n%s",
	    CONFIG_COMMON_HELP);
}

/* Checks that every provider account the queued jobs name is configured. */
static int
check_providers(PGconn *c, int64_t account_id, const struct provider_registry *reg)
{
	char acct[24];
	const char *p[] = { acct };
	PGresult *res;
	cf_err err;
	int rc = 0;

	snprintf(acct, sizeof(acct), "%lld", (long long)account_id);
	res = db_exec(c, "listing providers of queued jobs",
	    "SELECT DISTINCT ce.provider FROM jobs j JOIN certificates ce ON ce.id = j.certificate_id "
	    "WHERE j.state = 'ready' AND j.account_id = $1", 1, p, &err);
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

/* The end-of-run report: a sentence for people, then one key=value line for scripts. */
static void
run_summary(const struct worker_pool_stats *st, long claimed, int64_t wall_ms, int64_t p50, int64_t p99,
    const struct writer *wr)
{
	struct rusage ru;
	double secs = wall_ms / 1000.0, cpu_ms;
	long ended = st->issued + st->failed;

	getrusage(RUSAGE_SELF, &ru);
	cpu_ms = ru.ru_utime.tv_sec * 1000.0 + ru.ru_utime.tv_usec / 1000.0 + ru.ru_stime.tv_sec * 1000.0 +
	    ru.ru_stime.tv_usec / 1000.0;
	printf("run finished: %ld claimed, %ld issued, %ld failed in %.2f s (%.2f certificates/s)%s\n", claimed,
	    st->issued, st->failed, secs, secs > 0 ? st->issued / secs : 0.0,
	    stop_requested ? " [stopped by signal]" : "");
	if (st->retried || st->cancelled)
		printf("%ld failed attempt%s went back to the queue for a retry, %ld cancelled\n", st->retried,
		    st->retried == 1 ? "" : "s", st->cancelled);
	printf("order latency p50 %lld ms, p99 %lld ms; peak orders in flight %ld; worst event-loop lag %lld ms\n",
	    (long long)p50, (long long)p99, st->peak_inflight, (long long)st->max_lag_ms);
	printf("summary: claimed=%ld issued=%ld failed=%ld retried=%ld cancelled=%ld wall_s=%.3f certs_per_s=%.2f p50_ms=%lld p99_ms=%lld "
	       "peak_inflight=%ld max_lag_ms=%lld cpu_ms=%.0f cpu_ms_per_cert=%.3f peak_rss_mb=%.1f "
	       "db_messages=%ld db_batches=%ld\n",
	    claimed, st->issued, st->failed, st->retried, st->cancelled, secs, secs > 0 ? st->issued / secs : 0.0,
	    (long long)p50,
	    (long long)p99, st->peak_inflight, (long long)st->max_lag_ms, cpu_ms, ended ? cpu_ms / ended : 0.0,
	    ru.ru_maxrss / 1024.0, wr->committed, wr->batches);
}

/*
 * Renews the lease of this process, which covers the jobs it works (and which a claim needs), and
 * passes on cancellations. False when it could not: the caller tries again at once.
 */
static bool
run_heartbeat(PGconn *c, struct worker_pool *pool, const char *owner, int lease_s)
{
	int64_t *cancel = NULL;
	size_t ncancel = 0;
	cf_err err;

	if (queue_heartbeat(c, owner, lease_s, &cancel, &ncancel, &err) != 0) {
		log_warn("run: %s (leases expire in %d s unless renewed)", err.msg, lease_s);
		run_reconnect(c);
		return false;
	}
	for (size_t i = 0; i < ncancel; i++)
		worker_pool_cancel(pool, cancel[i]);
	free(cancel);
	return true;
}

/*
 * Waits up to wait_ms for a NOTIFY from enqueue (when listening) or for a job to end. With
 * --poll-only (PgBouncer in transaction mode has no LISTEN) it simply waits.
 */
static void
run_idle_wait(PGconn *c, struct worker_pool *pool, int wait_ms)
{
	PGnotify *note;
	int sock = PQsocket(c);

	if (listening && sock >= 0) {
		struct pollfd pfd = { .fd = sock, .events = POLLIN };
		if (poll(&pfd, 1, wait_ms) > 0) {
			PQconsumeInput(c);
			while ((note = PQnotifies(c)) != NULL)
				PQfreemem(note);
		}
		return;
	}
	worker_pool_wait(pool, wait_ms);
}

int
cmd_run(struct config *cfg, int argc, char **argv)
{
	static const struct option opts[] = {
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
		CONFIG_COMMON_OPTIONS,
		{ 0 },
	};
	long nworkers = sysconf(_SC_NPROCESSORS_ONLN), inflight = 256, batch = 100, timeout_s = 600, maxconn = 8;
	bool progress = true, follow = false, poll_only = false;
	long lease_s = 120, retry_base_s = 60, retry_wait_s = 300, max_unsaved = 1;
	struct unsaved_orders unsaved;
	int64_t last_heartbeat = 0, last_rescue = 0;
	const char *sep_env = getenv("CERTFLEET_SEPARATE_NEW_ORDERS");
	bool separate = sep_env && strcmp(sep_env, "1") == 0;
	struct ca_gate *gate = NULL;
	struct keygen_pool *keygen = NULL;
	CURLSH *share = NULL;
	struct account acct = { 0 };
	struct provider_env penv = { 0 };
	struct provider_registry *providers = NULL;
	struct blockpool *blocking = NULL;
	struct sharedlimit *shared = NULL;
	struct acme_limits ca_limits = { 0 };
	const char *ca_spec = getenv("CERTFLEET_CA_LIMITS");
	char limit_key[64], limits_text[256];
	struct worker_pool_config wc = { 0 };
	struct worker_pool *pool = NULL;
	struct worker_pool_stats st;
	struct outbox ob;
	struct writer wr;
	bool outbox_ready = false, writer_running = false;
	char owner[128], host[64];
	PGconn *c = NULL;
	cf_err err;
	int opt, rc = EXIT_USAGE;
	long claimed_total = 0;
	int64_t t0, last_progress, p50, p99;

	if (nworkers < 1)
		nworkers = 1;
	while ((opt = getopt_long(argc, argv, "w:" CONFIG_COMMON_SHORT, opts, NULL)) != -1) {
		switch (opt) {
		case 'w':
			if (cmd_parse_long("--workers", optarg, 1, 256, &nworkers) != 0)
				return EXIT_USAGE;
			break;
		case 'i':
			if (cmd_parse_long("--inflight", optarg, 1, 100000, &inflight) != 0)
				return EXIT_USAGE;
			break;
		case 'b':
			if (cmd_parse_long("--batch", optarg, 1, CLAIM_BATCH_MAX, &batch) != 0)
				return EXIT_USAGE;
			break;
		case 't':
			if (cmd_parse_long("--order-timeout", optarg, 1, 7 * 86400, &timeout_s) != 0)
				return EXIT_USAGE;
			break;
		case 'm':
			if (cmd_parse_long("--max-connections", optarg, 1, 1000, &maxconn) != 0)
				return EXIT_USAGE;
			break;
		case 'P':
			progress = false;
			break;
		case 'S':
			separate = true;
			break;
		case 'L':
			if (cmd_parse_long("--lease", optarg, 3, 86400, &lease_s) != 0)
				return EXIT_USAGE;
			break;
		case 'R':
			if (cmd_parse_long("--retry-base", optarg, 0, 86400, &retry_base_s) != 0)
				return EXIT_USAGE;
			break;
		case 'W':
			if (cmd_parse_long("--retry-wait", optarg, 0, 7 * 86400, &retry_wait_s) != 0)
				return EXIT_USAGE;
			break;
		case 'F':
			follow = true;
			break;
		case 'C':
			ca_spec = optarg;
			break;
		case 'U':
			if (cmd_parse_long("--max-unsaved-orders", optarg, 1, 100000, &max_unsaved) != 0)
				return EXIT_USAGE;
			break;
		case 'O':
			poll_only = true;
			break;
		case 'h':
			run_help();
			return EXIT_OK;
		default:
			if (!config_common_option(cfg, opt, optarg))
				return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		log_error("run: unexpected argument \"%s\"", argv[optind]);
		return EXIT_USAGE;
	}
	if ((rc = cmd_open_account(cfg, "run", &c, &acct)) != EXIT_OK)
		goto out;
	rc = EXIT_FAILURE_RUNTIME;
	if ((share = http_share_new(&err)) == NULL) {
		log_error("run: %s", err.msg);
		goto out;
	}
	if ((blocking = blockpool_new(8, &err)) == NULL || (shared = sharedlimit_new(cfg->db_url, &err)) == NULL) {
		log_error("run: %s", err.msg);
		goto out;
	}
	penv.path = cfg->providers_path;
	penv.challtestsrv_url = cfg->challtestsrv_url;
	penv.challtestsrv_dns = cfg->challtestsrv_dns;
	penv.http.timeout_ms = 30000;
	penv.http.share = share;
	penv.pool = blocking;
	penv.make_limiter = sharedlimit_limiter;
	penv.make_limiter_arg = shared;
	if ((providers = provider_registry_load(&penv, &err)) == NULL) {
		log_error("run: %s", err.msg);
		rc = EXIT_USAGE;
		goto out;
	}
	if (check_providers(c, acct.id, providers) != 0) {
		rc = EXIT_USAGE;
		goto out;
	}

	if (outbox_init(&ob) != 0) {
		log_error("run: outbox_init failed");
		goto out;
	}
	outbox_ready = true;
	if (writer_start(&wr, cfg->db_url, &ob, &err) != 0) {
		log_error("%s", err.msg);
		goto out;
	}
	writer_running = true;
	wc.nworkers = (int)nworkers;
	wc.per_worker_cap = inflight;
	wc.loop.max_host_connections = maxconn;
	wc.acme.directory_url = cfg->directory_url;
	wc.acme.account_url = acct.account_url;
	wc.acme.key_pem = acct.key_pem;
	wc.acme.issuer = acct.issuer;
	wc.acme.http.ca_bundle = cfg->ca_bundle;
	wc.acme.http.share = share;
	wc.acme.providers = providers;
	wc.acme.pool = blocking;
	wc.acme.outbox = &ob;
	wc.acme.order_timeout_ms = timeout_s * 1000;
	wc.acme.retry_base_ms = retry_base_s * 1000;
	snprintf(limit_key, sizeof(limit_key), "account-%lld", (long long)acct.id);
	if (calimits_setup(&ca_limits, ca_spec, cfg->directory_url, limit_key, sharedlimit_limiter, shared, &err) != 0) {
		log_error("run: --ca-limits: %s", err.msg);
		rc = EXIT_USAGE;
		goto out;
	}
	calimits_describe(&ca_limits, limits_text, sizeof(limits_text));
	log_info("run: rate limits towards the CA: %s", limits_text);
	wc.acme.limits = &ca_limits;
	atomic_init(&unsaved.n, 0);
	unsaved.cap = max_unsaved;
	wc.acme.unsaved = &unsaved;
	if (separate && (gate = ca_gate_new(&err)) == NULL) {
		log_error("run: %s", err.msg);
		goto out;
	}
	wc.acme.gate = gate;
	if ((keygen = keygen_pool_new(1, &err)) == NULL) {
		log_error("run: %s", err.msg);
		goto out;
	}
	wc.acme.keygen = keygen;
	pool = worker_pool_start(&wc, &err);
	if (pool == NULL) {
		log_error("run: %s", err.msg);
		goto out;
	}

	gethostname(host, sizeof(host));
	host[sizeof(host) - 1] = '\0';
	/* unique per process start, so that a restarted process never mistakes old leases for its own */
	snprintf(owner, sizeof(owner), "%s:%ld:%llx", host, (long)getpid(), (unsigned long long)cf_wall_ms());
	listening = false;
	if (!poll_only) {
		PGresult *lr = PQexec(c, "LISTEN " QUEUE_CHANNEL);
		listening = PQresultStatus(lr) == PGRES_COMMAND_OK;
		PQclear(lr);
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	t0 = last_progress = cf_mono_ms();
	log_info("run: account %s, %ld worker%s, %ld orders in flight each", acct.account_url, nworkers,
	    nworkers == 1 ? "" : "s", inflight);

	for (;;) {
		long free_slots = worker_pool_free_slots(pool);
		int n = 0;
		int64_t now = cf_mono_ms();
		if (stop_requested > 1)
			break;
		if (reconnected || last_heartbeat == 0 || now - last_heartbeat >= lease_s * 1000 / 3) {
			reconnected = false;
			last_heartbeat = run_heartbeat(c, pool, owner, (int)lease_s) ? now : 0;
		}
		if (now - last_rescue >= RESCUE_EVERY_MS) {
			long rescued = 0;
			if (queue_rescue(c, owner, &rescued, &err) != 0)
				log_warn("run: %s", err.msg);
			else if (rescued > 0)
				log_info("run: %ld job%s with an expired lease went back to the queue", rescued,
				    rescued == 1 ? "" : "s");
			last_rescue = now;
		}
		worker_pool_stats(pool, &st);
		/* Claim when a useful batch fits, or whenever the pool has run dry. */
		if (!stop_requested && (free_slots >= (batch < nworkers * inflight ? batch : 1) || st.inflight == 0)) {
			struct job *jobs = NULL;
			long want = free_slots < batch ? free_slots : batch;
			if (want > 0 && queue_claim(c, acct.id, (int)want, owner, &jobs, &n, &err) != 0) {
				log_error("run: %s", err.msg);
				run_reconnect(c);
				worker_pool_wait(pool, 1000);
				continue;
			}
			while (jobs) {
				struct job *next = jobs->next;
				jobs->next = NULL;
				worker_pool_submit(pool, jobs);
				jobs = next;
			}
			claimed_total += n;
		}
		if (progress && cf_mono_ms() - last_progress >= PROGRESS_EVERY_MS) {
			worker_pool_stats(pool, &st);
			fprintf(stderr, "progress: %ld claimed, %ld issued, %ld failed, %ld to retry, %ld in flight, %.1f s\n",
			    claimed_total, st.issued, st.failed, st.retried, st.inflight, (cf_mono_ms() - t0) / 1000.0);
			last_progress = cf_mono_ms();
		}
		worker_pool_stats(pool, &st);
		if (n == 0 && st.inflight == 0) {
			/* nothing claimable and nothing here: done, unless work is due soon or runs elsewhere */
			struct queue_outstanding qo = { 0 };
			if (stop_requested)
				break;
			if (queue_outstanding(c, acct.id, (int)retry_wait_s, &qo, &err) != 0) {
				log_error("run: %s", err.msg);
				run_reconnect(c);
			} else if (!qo.due_soon && !qo.running && !follow) {
				break;
			}
			run_idle_wait(c, pool, follow ? 5000 : 1000);
			continue;
		}
		if (n == 0 || stop_requested)
			worker_pool_wait(pool, stop_requested ? 200 : 100);
	}
	worker_pool_stats(pool, &st);
	p50 = worker_pool_latency(pool, 50);
	p99 = worker_pool_latency(pool, 99);
	worker_pool_stop(pool);
	pool = NULL;
	outbox_close(&ob);
	writer_join(&wr);
	writer_running = false;
	run_summary(&st, claimed_total, cf_mono_ms() - t0, p50, p99, &wr);
	if (queue_release(c, owner, &err) != 0)
		log_warn("run: %s (the lease ends by itself in %ld s)", err.msg, lease_s);
	if (wr.dropped > 0) {
		log_error("run: %ld result message%s could not be stored (see errors above)", wr.dropped,
		    wr.dropped == 1 ? "" : "s");
		rc = EXIT_FAILURE_RUNTIME;
	} else if (st.failed > 0) {
		rc = EXIT_JOBS_FAILED;
	} else {
		struct queue_outstanding qo = { 0 };
		rc = EXIT_OK;
		if (queue_outstanding(c, acct.id, 0, &qo, &err) == 0 && qo.ready > 0) {
			printf("%ld job%s wait%s in the queue for a later retry\n", qo.ready, qo.ready == 1 ? "" : "s",
			    qo.ready == 1 ? "s" : "");
			rc = EXIT_JOBS_QUEUED;
		}
	}
out:
	worker_pool_stop(pool);
	keygen_pool_free(keygen);
	provider_registry_free(providers);
	calimits_clear(&ca_limits);
	sharedlimit_free(shared);
	blockpool_free(blocking);
	ca_gate_free(gate);
	http_share_free(share);
	if (writer_running) {
		outbox_close(&ob);
		writer_join(&wr);
	}
	if (outbox_ready)
		outbox_destroy(&ob);
	account_clear(&acct);
	PQfinish(c);
	return rc;
}
