/*
 * cmd_metrics.c - `certfleet metrics`: the fleet's gauges from PostgreSQL, served at /metrics or
 * written for node_exporter's textfile collector.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "commands.h"
#include "fleetmetrics.h"
#include "log.h"
#include "metricsd.h"

struct metrics_opts {
	const char *listen;       /* --listen ADDR:PORT */
	struct metricsd_addr addr;
	const char *textfile;     /* --textfile PATH */
	long refresh_s;           /* --refresh: scrapes within this of the last read get its answer again */
	bool help;
};

/* What the server thread keeps between scrapes: the connection and the last answer. */
struct fleet_server {
	PGconn *c;
	int64_t refresh_ms;
	pthread_mutex_t lock;
	cf_buf last;
	int64_t last_ms;          /* cf_mono_ms() of last, 0: never */
};

static void
metrics_help(void)
{
	printf("usage: certfleet metrics (--listen ADDR:PORT | --textfile PATH) [OPTIONS]\n\n"
	       "The fleet's gauges from PostgreSQL in the Prometheus text format: certificates by state,\n"
	       "certificates expiring within 7, 14 and 30 days, a histogram of days to expiry, jobs failed\n"
	       "for good in the last 24 hours by problem type, and the newest run's end time, jobs and\n"
	       "success. Every figure is an aggregate, so the series stay the same few for any fleet size.\n\n"
	       "  --listen ADDR:PORT     serve them at http://ADDR:PORT/metrics until SIGINT or SIGTERM\n"
	       "                         (e.g. 127.0.0.1:9465 or [::1]:9465)\n"
	       "  --refresh SECS         with --listen, read PostgreSQL at most every SECS, whatever the\n"
	       "                         scrape rate; scrapes between get the last answer (default 15)\n"
	       "  --textfile PATH        write them to PATH (a temporary file beside it, then a rename),\n"
	       "                         for node_exporter's textfile collector; PATH should end in .prom\n\n"
	       "Exit codes: 0 done (or stopped by a signal), 1 PostgreSQL failed or PATH cannot be\n"
	       "written or ADDR:PORT bound, 2 bad options or ADDR:PORT.\n\n%s",
	    CONFIG_COMMON_HELP);
}

/* EXIT_OK (check o->help) or EXIT_USAGE. */
static int
metrics_parse(struct config *cfg, int argc, char **argv, struct metrics_opts *o)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "textfile", required_argument, NULL, 'T' },
		{ "refresh", required_argument, NULL, 'r' },
		CONFIG_COMMON_OPTIONS,
		{ 0 },
	};
	int opt;
	cf_err err;

	*o = (struct metrics_opts){ .refresh_s = 15 };
	while ((opt = getopt_long(argc, argv, CONFIG_COMMON_SHORT, opts, NULL)) != -1) {
		if (opt == 'h') {
			metrics_help();
			o->help = true;
			return EXIT_OK;
		} else if (opt == 'l') {
			if (metricsd_parse_addr(optarg, &o->addr, &err) != 0) {
				log_error("metrics: --listen: %s", err.msg);
				return EXIT_USAGE;
			}
			o->listen = optarg;
		} else if (opt == 'r') {
			if (cmd_parse_long("--refresh", optarg, 0, 86400, &o->refresh_s) != 0)
				return EXIT_USAGE;
		} else if (opt == 'T') {
			if (optarg[0] == '\0') {
				log_error("metrics: --textfile: an empty path");
				return EXIT_USAGE;
			}
			o->textfile = optarg;
		} else if (!config_common_option(cfg, opt, optarg)) {
			return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		log_error("metrics: unexpected argument \"%s\"", argv[optind]);
		return EXIT_USAGE;
	}
	if ((o->listen == NULL) == (o->textfile == NULL)) {
		log_error("metrics: give one of --listen ADDR:PORT or --textfile PATH (see certfleet metrics --help)");
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

/* Writes text to path atomically: path.tmp.PID, fsync, rename. An exit code. */
static int
write_textfile(const char *path, const cf_buf *text)
{
	char tmp[4096];
	int fd;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= sizeof(tmp)) {
		log_error("metrics: --textfile %s: path too long", path);
		return EXIT_USAGE;
	}
	/* 0644: node_exporter runs as its own user; the gauges hold no secret */
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		log_error("metrics: cannot create %s: %s", tmp, strerror(errno));
		return EXIT_FAILURE_RUNTIME;
	}
	size_t off = 0;
	while (off < text->len) {
		ssize_t n = write(fd, text->data + off, text->len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	if (off != text->len || fsync(fd) != 0 || close(fd) != 0) {
		log_error("metrics: cannot write %s: %s", tmp, strerror(errno));
		if (off != text->len)
			close(fd);
		unlink(tmp);
		return EXIT_FAILURE_RUNTIME;
	}
	if (rename(tmp, path) != 0) {
		log_error("metrics: cannot rename %s to %s: %s", tmp, path, strerror(errno));
		unlink(tmp);
		return EXIT_FAILURE_RUNTIME;
	}
	return EXIT_OK;
}

/* A scrape, on the server's thread: the last answer when it is fresh, else a new read. */
static int
fleet_render(void *arg, cf_buf *out)
{
	struct fleet_server *s = arg;
	int64_t now = cf_mono_ms();
	int rc = 0;
	cf_err err;

	pthread_mutex_lock(&s->lock);
	if (s->last_ms == 0 || now - s->last_ms >= s->refresh_ms) {
		cf_buf fresh = { 0 };
		if (PQstatus(s->c) != CONNECTION_OK)
			PQreset(s->c);
		if (fleetmetrics_render(s->c, &fresh, &err) != 0) {
			log_error("metrics: %s", err.msg);
			cf_buf_free(&fresh);
			rc = -1;
		} else {
			cf_buf_free(&s->last);
			s->last = fresh;
			s->last_ms = now;
		}
	}
	if (rc == 0 && cf_buf_append(out, s->last.data, s->last.len) != 0)
		rc = -1;
	pthread_mutex_unlock(&s->lock);
	return rc;
}

/* Serves until SIGINT or SIGTERM. An exit code. */
static int
serve(const struct metrics_opts *o, PGconn *c)
{
	struct fleet_server s = { .c = c, .refresh_ms = o->refresh_s * 1000 };
	struct metricsd *d;
	sigset_t set;
	int sig;
	cf_err err;

	/* blocked before the server's thread starts, so that it inherits the mask and sigwait gets them */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	pthread_mutex_init(&s.lock, NULL);
	if ((d = metricsd_start(&o->addr, o->listen, fleet_render, &s, &err)) == NULL) {
		log_error("metrics: --listen: %s", err.msg);
		pthread_mutex_destroy(&s.lock);
		return EXIT_FAILURE_RUNTIME;
	}
	log_info("metrics: serving the fleet's gauges at http://%s/metrics", o->listen);
	while (sigwait(&set, &sig) != 0)
		;
	metricsd_free(d);
	cf_buf_free(&s.last);
	pthread_mutex_destroy(&s.lock);
	return EXIT_OK;
}

int
cmd_metrics(struct config *cfg, int argc, char **argv)
{
	struct metrics_opts o;
	PGconn *c = NULL;
	cf_buf text = { 0 };
	cf_err err;
	int rc;

	if ((rc = metrics_parse(cfg, argc, argv, &o)) != EXIT_OK || o.help)
		return rc;
	if ((c = cmd_connect(cfg, true)) == NULL)
		return cmd_connect_failure();
	if (o.listen) {
		rc = serve(&o, c);
	} else if (fleetmetrics_render(c, &text, &err) != 0) {
		log_error("metrics: %s", err.msg);
		rc = EXIT_FAILURE_RUNTIME;
	} else {
		rc = write_textfile(o.textfile, &text);
	}
	cf_buf_free(&text);
	PQfinish(c);
	return rc;
}
