#!/usr/bin/env bash
# bench.sh - `make bench`: certfleet's throughput, CPU and memory against the local Pebble, at its
# defaults and tuned, each round on a fresh stack, side by side with lego (4.9.1 and a v5 library
# client) and uacme on the same machine and the same Pebble, and a hold test with 10,000 orders in
# flight. It prints its numbers; it asserts nothing.
#
#   bench/bench.sh [-n N] [--rounds R] [--configs LIST] [--fleets LIST] [--hold N] [--peers N] ...
#
#   -n N        certificates in each throughput round (default 2000; BENCH_N; 0 skips throughput)
#   --rounds R  rounds of each throughput configuration, each on a fresh stack (default 5; BENCH_ROUNDS)
#   --configs LIST  defaults, tuned or both, comma-separated (default defaults,tuned; BENCH_CONFIGS):
#                   defaults  `certfleet run --no-progress` with no tuning flag
#                   tuned     --inflight 1024 (BENCH_INFLIGHT) --batch 500 --max-unsaved-orders 1024
#                             (BENCH_UNSAVED)
#   --fleets LIST   new, renewal or both (default new,renewal; BENCH_FLEETS):
#                   new       no record in place: certfleet publishes them through challtestsrv
#                   renewal   every record published and recorded before the run, as on a
#                             renewal night
#               A configuration is one of each (defaults/new, defaults/renewal, tuned/new,
#               tuned/renewal, run in that order). Each round prints one line: certificates/s;
#               certfleet's, Pebble's and PostgreSQL's CPU ms per certificate; peak RSS; how busy
#               the machine's CPUs were; TXT writes during the run; the writer's reports and
#               transactions; the run's exit code. Each configuration then prints the median,
#               minimum and maximum certificates/s, min/median and max/median ("UNSTABLE" when
#               below 0.8 or above 1.25), the medians of the other figures, and one line for scripts (grep
#               '^result: tool=certfleet '); last, defaults/tuned, the ratio of the medians per fleet.
#   --lego5-parallel P  orders at a time of bench/lego5.sh, the lego v5 library client, run once on
#               a fresh stack with -n N when it is there and executable (default 200;
#               BENCH_LEGO5_PARALLEL; BENCH_LEGO5 names another script); its certificates/s and CPU
#               are compared to certfleet's renewal medians
#   --no-lego5  skip it
#   --hold N    orders held in flight in the hold test (default 10000; BENCH_HOLD; 0 skips it)
#   --peers N   certificates per peer configuration (default 20; BENCH_PEERS_N; 0 skips peers)
#   --queue N   no-op jobs in the queue-only benchmark (default 100000; BENCH_QUEUE_N; 0 skips it)
#   --queue-rounds N  rounds of the queue benchmark, whose medians are printed (default 5)
#   --only-queue      the queue benchmark alone
#   --renew N   certificates issued once, then checked by `renew` (ARI) (default 10000; BENCH_RENEW_N; 0 skips it)
#   --renew-rounds N  timed `renew --dry-run` rounds, whose medians are printed (default 3)
#   --only-renew      the renew benchmark alone
#   --report N  certificates made as fixture rows, then `report` and `report --html` timed (default 100000; BENCH_REPORT_N; 0 skips it)
#   --only-report     the report benchmark alone
#   --no-metrics-pass no run with --metrics-listen (scraped every second; defaults, renewal, once)
#   --metrics-fleet N certificates made as rows for the `certfleet metrics` timing (default 100000;
#                     BENCH_METRICS_FLEET_N; 0 skips it)
#   --only-metrics    the defaults/renewal rounds (metrics off), the round with metrics on, then
#                     the `metrics` timing
#
# It runs its own stack (state in .stack-bench/ or CERTFLEET_BENCH_STACK_DIR; ports 100 above the
# demo stack's defaults, plus BENCH_PORT_OFFSET when set), started fresh for every round and pass
# and stopped at the end, so results do not depend on what an earlier run left in Pebble.
set -uo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cf=${CERTFLEET_BIN:-$repo/build/certfleet}
N=${BENCH_N:-2000}
ROUNDS=${BENCH_ROUNDS:-5}
CONFIGS=${BENCH_CONFIGS:-defaults,tuned}
FLEETS=${BENCH_FLEETS:-new,renewal}
INFLIGHT=${BENCH_INFLIGHT:-1024}
UNSAVED=${BENCH_UNSAVED:-1024}
LEGO5=${BENCH_LEGO5:-$repo/bench/lego5.sh}
LEGO5_P=${BENCH_LEGO5_PARALLEL:-200}
HOLD=${BENCH_HOLD:-10000}
QUEUE_N=${BENCH_QUEUE_N:-100000}
QUEUE_ROUNDS=${BENCH_QUEUE_ROUNDS:-5}
PEERS_N=${BENCH_PEERS_N:-20}
RENEW_N=${BENCH_RENEW_N:-10000}
RENEW_ROUNDS=${BENCH_RENEW_ROUNDS:-3}
METRICS_PASS=${BENCH_METRICS_PASS:-1}
METRICS_FLEET_N=${BENCH_METRICS_FLEET_N:-100000}
REPORT_N=${BENCH_REPORT_N:-100000}
PORT_OFFSET=${BENCH_PORT_OFFSET:-0}
# value OPTION VALUE: an option's value, or exit 2 when it has none
value() { [ $# -ge 2 ] && [ -n "$2" ] || { echo "bench: $1 needs a value" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
	case "$1" in
	-n|--rounds|--configs|--fleets|--lego5-parallel|--hold|--peers|--queue|--queue-rounds|--renew|--renew-rounds|--report|--metrics-fleet)
		value "$@" ;;
	esac
	case "$1" in
	-n) N=$2; shift 2 ;;
	--rounds) ROUNDS=$2; shift 2 ;;
	--configs) CONFIGS=$2; shift 2 ;;
	--fleets) FLEETS=$2; shift 2 ;;
	--lego5-parallel) LEGO5_P=$2; shift 2 ;;
	--no-lego5) LEGO5=""; shift ;;
	--hold) HOLD=$2; shift 2 ;;
	--peers) PEERS_N=$2; shift 2 ;;
	--no-peers) PEERS_N=0; shift ;;
	--no-hold) HOLD=0; shift ;;
	--queue) QUEUE_N=$2; shift 2 ;;
	--no-queue) QUEUE_N=0; shift ;;
	--queue-rounds) QUEUE_ROUNDS=$2; shift 2 ;;
	--only-queue) N=0; PEERS_N=0; HOLD=0; RENEW_N=0; REPORT_N=0; METRICS_FLEET_N=0; shift ;;
	--renew) RENEW_N=$2; shift 2 ;;
	--renew-rounds) RENEW_ROUNDS=$2; shift 2 ;;
	--only-renew) N=0; PEERS_N=0; HOLD=0; QUEUE_N=0; REPORT_N=0; METRICS_FLEET_N=0; shift ;;
	--report) REPORT_N=$2; shift 2 ;;
	--only-report) N=0; PEERS_N=0; HOLD=0; QUEUE_N=0; RENEW_N=0; METRICS_FLEET_N=0; shift ;;
	--no-metrics-pass) METRICS_PASS=0; shift ;;
	--metrics-fleet) METRICS_FLEET_N=$2; shift 2 ;;
	--only-metrics) CONFIGS=defaults; FLEETS=renewal; LEGO5=""; PEERS_N=0; HOLD=0; QUEUE_N=0; RENEW_N=0; REPORT_N=0; shift ;;
	-h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
	*) echo "bench: unknown argument $1" >&2; exit 2 ;;
	esac
done
# count NAME VALUE [MIN]: exit 2 unless VALUE is a whole number of at least MIN (default 0)
count() {
	[[ $2 =~ ^[0-9]+$ ]] && [ "$((10#$2))" -ge "${3:-0}" ] ||
		{ echo "bench: $1 must be a whole number${3:+ of at least $3}, not '$2'" >&2; exit 2; }
}
count "-n (BENCH_N)" "$N"
count "--rounds (BENCH_ROUNDS)" "$ROUNDS" 1
count "--lego5-parallel (BENCH_LEGO5_PARALLEL)" "$LEGO5_P" 1
count BENCH_INFLIGHT "$INFLIGHT" 1
count BENCH_UNSAVED "$UNSAVED" 1
count "--hold (BENCH_HOLD)" "$HOLD"
count "--peers (BENCH_PEERS_N)" "$PEERS_N"
count "--queue (BENCH_QUEUE_N)" "$QUEUE_N"
count "--queue-rounds (BENCH_QUEUE_ROUNDS)" "$QUEUE_ROUNDS" 1
count "--renew (BENCH_RENEW_N)" "$RENEW_N"
count "--renew-rounds (BENCH_RENEW_ROUNDS)" "$RENEW_ROUNDS" 1
count "--report (BENCH_REPORT_N)" "$REPORT_N"
count "--metrics-fleet (BENCH_METRICS_FLEET_N)" "$METRICS_FLEET_N"
count BENCH_PORT_OFFSET "$PORT_OFFSET"
# pick NAME LIST ALLOWED...: the allowed words LIST names, in the order of ALLOWED; exit 2 on any other
pick() {
	local name=$1 list=$2 w out=""
	shift 2
	for w in ${list//,/ }; do
		[[ " $* " == *" $w "* ]] || { echo "bench: $name: unknown '$w' (one or more of: $*, comma-separated)" >&2; exit 2; }
	done
	for w in "$@"; do [[ ",$list," == *",$w,"* ]] && out="$out $w"; done
	[ -n "$out" ] || { echo "bench: $name is empty (one or more of: $*)" >&2; exit 2; }
	echo "$out"
}
configs=$(pick "--configs (BENCH_CONFIGS)" "$CONFIGS" defaults tuned) || exit 2
fleets=$(pick "--fleets (BENCH_FLEETS)" "$FLEETS" new renewal) || exit 2

export CERTFLEET_STACK_DIR=${CERTFLEET_BENCH_STACK_DIR:-$repo/.stack-bench}
export CERTFLEET_PG_PORT=$((25532 + PORT_OFFSET)) CERTFLEET_PEBBLE_PORT=$((14100 + PORT_OFFSET))
export CERTFLEET_PEBBLE_MGMT_PORT=$((15100 + PORT_OFFSET)) CERTFLEET_DNS_PORT=$((8153 + PORT_OFFSET))
export CERTFLEET_CHALLTESTSRV_PORT=$((8155 + PORT_OFFSET))
stack() { "$repo/scripts/stack.sh" "$@"; }
tmp=$(mktemp -d)
# the runs' own journal: a journal left by another run (the user's, or one stopped at once) would
# be replayed into the bench's databases, and its entries from elsewhere make every run exit 5
export CERTFLEET_JOURNAL=$tmp/journal
# the key-encryption key the runs seal their keys under (each start_stack begins a new database)
export CERTFLEET_KEK_FILE=$tmp/kek
"$cf" keys generate-kek "$CERTFLEET_KEK_FILE" >/dev/null || exit 1
cleanup() { stack stop >/dev/null 2>&1; rm -rf "$tmp"; }
trap cleanup EXIT

say() { echo "bench: $*"; }
# CPU milliseconds (utime+stime) of a pid, from /proc (clock ticks of 10 ms).
cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%d", ($14 + $15) * 1000 / hz }' "/proc/$1/stat" 2>/dev/null || echo 0; }
pebble_pid() { head -n1 "$CERTFLEET_STACK_DIR/run/pebble.pid"; }
# the CPU time the machine was busy and its whole CPU time, in clock ticks (/proc/stat)
busy() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 }' /proc/stat; }
# PostgreSQL's CPU: the postmaster with its reaped children (cutime, cstime) and its live backends.
pg_cpu_ms() {
	local pm t p
	pm=$(head -n1 "$CERTFLEET_STACK_DIR/run/postgres.pid" 2>/dev/null) || { echo 0; return; }
	t=$(awk -v hz="$(getconf CLK_TCK)" '{ printf "%d", ($14 + $15 + $16 + $17) * 1000 / hz }' "/proc/$pm/stat" 2>/dev/null || echo 0)
	for p in $(ps --ppid "$pm" -o pid= 2>/dev/null); do t=$((t + $(cpu_ms "$p"))); done
	echo "$t"
}
kv() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }

start_stack() {
	stack stop >/dev/null 2>&1
	stack start >"$tmp/stack.log" 2>&1 || { cat "$tmp/stack.log"; exit 1; }
	eval "$(stack env)"
	"$cf" migrate >"$tmp/migrate.log" 2>&1 || { cat "$tmp/migrate.log"; exit 1; }
	"$cf" account register --agree-tos >/dev/null || exit 1
}

# publish and record every persistent record of the fleet, as after an earlier night's run
publish_records() {
	"$cf" records --format tsv >"$tmp/records"
	# one curl for all of them (a config block per record, 8 at a time over kept-alive
	# connections): a process per record took a third of a renewal round's set-up
	# (record values never hold a quote or a backslash: certfleet checks their characters)
	awk -F'\t' -v url="$CERTFLEET_CHALLTESTSRV_URL/set-txt" '{
		printf "%surl = \"%s\"\nfail\nsilent\nshow-error\noutput = \"/dev/null\"\ndata = \"{\\\"host\\\":\\\"%s.\\\",\\\"value\\\":\\\"%s\\\"}\"\n", (NR > 1 ? "next\n" : ""), url, $1, $2
	}' "$tmp/records" >"$tmp/records.curl"
	curl -s -Z --parallel-max 8 -K "$tmp/records.curl" || { say "publishing records failed"; exit 1; }
	psql -q "$CERTFLEET_DB" -v ON_ERROR_STOP=1 -c "CREATE TEMP TABLE r (fqdn text, value text)" \
		-c "\\copy r FROM '$tmp/records'" \
		-c "INSERT INTO records (account_id, fqdn, value, issuer, wildcard, variant, provider, written_at)
		    SELECT a.id, r.fqdn, r.value, a.issuer_domain, r.value LIKE '%policy=wildcard%', 1, 'challtestsrv', now()
		    FROM r, accounts a" >/dev/null || exit 1
}

echo "bench: machine: $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
echo "bench: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"

# ---- the crypto each certificate needs, alone ----
if [ -x "${CERTFLEET_BENCH_CRYPTO:-$repo/build/bench_crypto}" ]; then
	say "crypto per certificate (old OpenSSL-only paths beside the ones certfleet uses):"
	"${CERTFLEET_BENCH_CRYPTO:-$repo/build/bench_crypto}" 2000 2>&1 | sed 's/^/bench:   /'
fi

# ---- throughput: each configuration, round after round, each round on a fresh stack ----
# A round's figures; throughput_round sets them.
r_rate="" r_cpu="" r_pebble="" r_pg="" r_rss="" r_busy="" r_tx="" r_ok=0 r_issued=0 r_rc=0
# The figures of each configuration's rounds ("config/fleet" -> space-separated values); a round
# whose run printed no summary counts 0 certificates/s and nothing else.
declare -A all_rate all_cpu all_pebble all_pg all_rss all_busy all_tx all_failed

# throughput_round CONFIG FLEET LABEL [RUN OPTION...]: N certificates on a fresh stack, run with
# CONFIG's flags (and the options given); prints one line, LABEL first
throughput_round() {
	local config=$1 fleet=$2 label=$3 flags=() rc summary writes0 writes1 pp p0 p1 g0 g1 b0 b1 t0 t1 issued wall
	shift 3
	[ "$config" = tuned ] && flags=(--inflight "$INFLIGHT" --batch 500 --max-unsaved-orders "$UNSAVED")
	start_stack
	"$cf" enqueue --file "$tmp/fleet" >/dev/null || exit 1
	[ "$fleet" = renewal ] && publish_records
	writes0=$(grep -c 'Added TXT' "$CERTFLEET_STACK_DIR/logs/challtestsrv.log")
	pp=$(pebble_pid); p0=$(cpu_ms "$pp"); g0=$(pg_cpu_ms); read -r b0 t0 <<<"$(busy)"
	"$cf" run "${flags[@]}" --no-progress "$@" >"$tmp/run.out" 2>"$tmp/run.err"
	rc=$?
	r_rc=$rc
	p1=$(cpu_ms "$pp"); g1=$(pg_cpu_ms); read -r b1 t1 <<<"$(busy)"
	writes1=$(grep -c 'Added TXT' "$CERTFLEET_STACK_DIR/logs/challtestsrv.log")
	summary=$(grep '^summary:' "$tmp/run.out")
	r_ok=0 r_issued=0 r_rate=0 r_cpu="" r_pebble="" r_pg="" r_rss="" r_busy="" r_tx=""
	if [ -z "$summary" ]; then
		say "$label: run failed (exit $rc), no summary; counted as 0 certificates/s"
		tail -5 "$tmp/run.err" | sed 's/^/bench:   /'
		return
	fi
	r_ok=1
	issued=$(kv "$summary" issued)
	r_issued=$issued
	wall=$(kv "$summary" wall_s)
	r_rate=$(kv "$summary" certs_per_s)
	r_cpu=$(kv "$summary" cpu_ms_per_cert)
	r_rss=$(kv "$summary" peak_rss_mb)
	r_pebble=$(awk -v a="$p0" -v b="$p1" -v n="$issued" 'BEGIN { printf "%.2f", n ? (b - a) / n : 0 }')
	r_pg=$(awk -v a="$g0" -v b="$g1" -v n="$issued" 'BEGIN { printf "%.2f", n ? (b - a) / n : 0 }')
	r_busy=$(awk -v a="$b0" -v b="$b1" -v c="$t0" -v d="$t1" 'BEGIN { printf "%.0f", (d > c ? 100 * (b - a) / (d - c) : 0) }')
	r_tx=$(awk -v t="$(kv "$summary" db_batches)" -v n="$issued" 'BEGIN { printf "%.2f", n ? t / n : 0 }')
	say "$label: $issued/$N issued in $wall s: $r_rate certs/s; CPU ms/cert certfleet $r_cpu, Pebble $r_pebble, PostgreSQL $r_pg; peak RSS $r_rss MB; machine $r_busy% busy; $((writes1 - writes0)) TXT writes; db $(kv "$summary" db_messages) reports in $(kv "$summary" db_batches) transactions ($r_tx/cert); p50/p99 $(kv "$summary" p50_ms)/$(kv "$summary" p99_ms) ms, peak in flight $(kv "$summary" peak_inflight); exit $rc"
	[ "$issued" -lt "$N" ] && "$cf" status --failures 5 | sed 's/^/bench:   /'
}

# stat_of median|min|max VALUES...: that figure of the values (a median of an even count averages
# the middle two); NA when there is none
stat_of() {
	local what=$1
	shift
	tr ' ' '\n' <<<"$*" | sed '/^$/d' | sort -g | awk -v w="$what" '{ v[NR] = $1 }
		END {
			if (NR == 0) { print "NA"; exit }
			if (w == "min") print v[1]; else if (w == "max") print v[NR]
			else if (NR % 2) print v[(NR + 1) / 2]
			else { m = sprintf("%.2f", (v[NR / 2] + v[NR / 2 + 1]) / 2); sub(/\.?0+$/, "", m); print m }
		}'
}
# ratio A B: A/B to two decimals, NA when either is missing or B is 0
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "NA" || b == "NA" || a == "" || b == "" || b + 0 == 0) print "NA"; else printf "%.2f", a / b }'; }

if [ "$N" -gt 0 ]; then
	seq 1 "$N" | sed 's/^/host/; s/$/.bench.example/' >"$tmp/fleet"
	rounds_text="$ROUNDS rounds"
	[ "$ROUNDS" -eq 1 ] && rounds_text="1 round"
	for config in $configs; do
		for fleet in $fleets; do
			key=$config/$fleet
			case $config in
			defaults) what="no tuning flag" ;;
			tuned) what="--inflight $INFLIGHT --batch 500 --max-unsaved-orders $UNSAVED" ;;
			esac
			case $fleet in
			new) what="$what, a new fleet (certfleet publishes the records during the run)" ;;
			renewal) what="$what, a renewal (the records in place before the run)" ;;
			esac
			say "throughput, $config/$fleet: $N certificates, $what; $rounds_text, each on a fresh stack"
			all_failed[$key]=0
			for round in $(seq 1 "$ROUNDS"); do
				throughput_round "$config" "$fleet" "$key round $round/$ROUNDS"
				all_rate[$key]+=" $r_rate"
				if [ "$r_ok" -eq 1 ]; then
					all_cpu[$key]+=" $r_cpu" all_pebble[$key]+=" $r_pebble" all_pg[$key]+=" $r_pg"
					all_rss[$key]+=" $r_rss" all_busy[$key]+=" $r_busy" all_tx[$key]+=" $r_tx"
				else
					all_failed[$key]=$((all_failed[$key] + 1))
				fi
			done
			med=$(stat_of median ${all_rate[$key]}) lo=$(stat_of min ${all_rate[$key]}) hi=$(stat_of max ${all_rate[$key]})
			spread=$(ratio "$lo" "$med") top=$(ratio "$hi" "$med")
			cpu=$(stat_of median ${all_cpu[$key]:-}) pebble=$(stat_of median ${all_pebble[$key]:-}) pg=$(stat_of median ${all_pg[$key]:-})
			rss=$(stat_of median ${all_rss[$key]:-}) busy=$(stat_of median ${all_busy[$key]:-}) tx=$(stat_of median ${all_tx[$key]:-})
			say "$key: median $med certificates/s, minimum $lo, maximum $hi over $rounds_text (rates:${all_rate[$key]}); min/median $spread, max/median $top"
			awk -v s="$spread" 'BEGIN { exit !(s == "NA" || s < 0.8) }' && say "$key: UNSTABLE: minimum below 0.8 of the median"
			# most rounds stalled: the median is the stall, and only the maximum shows it
			awk -v s="$top" 'BEGIN { exit !(s != "NA" && s > 1.25) }' && say "$key: UNSTABLE: maximum above 1.25 of the median"
			[ "${all_failed[$key]}" -gt 0 ] && say "$key: ${all_failed[$key]} of $ROUNDS rounds failed without a summary"
			say "$key: medians: CPU ms/cert certfleet $cpu, Pebble $pebble, PostgreSQL $pg; peak RSS $rss MB; machine $busy% busy; $tx writer transactions/cert"
			echo "result: tool=certfleet config=$config fleet=$fleet n=$N rounds=$ROUNDS median_certs_per_s=$med min_certs_per_s=$lo max_certs_per_s=$hi min_over_median=$spread cpu_ms_per_cert=$cpu pebble_cpu_ms_per_cert=$pebble pg_cpu_ms_per_cert=$pg peak_rss_mb=$rss machine_busy_pct=$busy tx_per_cert=$tx max_over_median=$top"
		done
	done
	# defaults against tuned, fleet by fleet: the issue asks for at least 0.9
	if [[ $configs == *defaults* && $configs == *tuned* ]]; then
		say "defaults against tuned (median certificates/s):"
		printf 'bench:   %-8s %10s %10s %15s\n' fleet defaults tuned defaults/tuned
		lines=""
		for fleet in $fleets; do
			d=$(stat_of median ${all_rate[defaults/$fleet]}) t=$(stat_of median ${all_rate[tuned/$fleet]})
			r=$(ratio "$d" "$t")
			printf 'bench:   %-8s %10s %10s %15s%s\n' "$fleet" "$d" "$t" "$r" \
				"$(awk -v r="$r" 'BEGIN { if (r == "NA" || r < 0.9) print "  (below 0.9)" }')"
			lines+="result: tool=certfleet-defaults-vs-tuned fleet=$fleet n=$N rounds=$ROUNDS defaults_median_certs_per_s=$d tuned_median_certs_per_s=$t ratio=$r"$'\n'
		done
		printf '%s' "$lines"
	fi
fi

# ---- lego5: the lego v5 library client, once, on a fresh stack ----
if [ "$N" -gt 0 ] && [ -n "$LEGO5" ]; then
	if [ ! -x "$LEGO5" ]; then
		say "lego5: skipped: $LEGO5 is not there or not executable"
	else
		say "lego5: $N certificates, $LEGO5_P orders at a time, on a fresh stack"
		start_stack
		"$LEGO5" -n "$N" -p "$LEGO5_P" >"$tmp/lego5.out" 2>"$tmp/lego5.err"
		lrc=$?
		line=$(grep -m1 '^peer=lego5 ' "$tmp/lego5.out")
		if [ "$lrc" -ne 0 ] || [ -z "$line" ]; then
			say "lego5: skipped: $LEGO5 exited $lrc$([ -n "$line" ] || echo ", without a peer=lego5 line")"
			tail -5 "$tmp/lego5.err" | sed 's/^/bench:   /'
		else
			echo "$line" >"$tmp/lego5.peer"
			echo "result: $line"
			lrate=$(kv "$line" certs_per_s) lcpu=$(kv "$line" cpu_ms_per_cert)
			say "lego5: $(kv "$line" ok)/$N issued, $lrate certificates/s, $lcpu ms CPU/certificate, Pebble $(kv "$line" pebble_cpu_ms_per_cert) ms/certificate"
			[[ $fleets == *renewal* ]] || say "lego5: no renewal configuration ran, nothing to compare it with"
			for config in $configs; do
				[[ $fleets == *renewal* ]] || break
				key=$config/renewal
				cr=$(stat_of median ${all_rate[$key]}) cc=$(stat_of median ${all_cpu[$key]:-})
				say "lego5: certfleet $key over lego5: throughput $(ratio "$cr" "$lrate")x ($cr vs $lrate certificates/s, medians); lego5's CPU per certificate $(ratio "$lcpu" "$cc")x certfleet's ($lcpu vs $cc ms)"
				echo "result: tool=certfleet-vs-lego5 config=$config fleet=renewal n=$N throughput_ratio=$(ratio "$cr" "$lrate") cpu_ratio=$(ratio "$lcpu" "$cc")"
			done
		fi
	fi
fi

# ---- the defaults, renewal round again with --metrics-listen, scraped every second, on a fresh stack ----
if [ "$N" -gt 0 ] && [ "$METRICS_PASS" -gt 0 ]; then
	say "throughput with metrics: $N certificates, defaults/renewal, run --metrics-listen scraped every second"
	mport=$((20000 + RANDOM % 10000))
	( while sleep 1; do curl -sf -o /dev/null "http://127.0.0.1:$mport/metrics" && echo scrape; done ) >"$tmp/scrapes" 2>&1 &
	scraper=$!
	throughput_round defaults renewal "metrics pass" --metrics-listen "127.0.0.1:$mport"
	kill "$scraper" 2>/dev/null
	wait "$scraper" 2>/dev/null
	if [ -n "${all_rate[defaults/renewal]:-}" ]; then
		say "metrics off: $(stat_of median ${all_rate[defaults/renewal]}) certificates/s, certfleet CPU $(stat_of median ${all_cpu[defaults/renewal]:-}) ms/certificate (defaults/renewal medians)"
	fi
	say "metrics on:  $r_rate certificates/s, certfleet CPU ${r_cpu:-NA} ms/certificate ($r_issued/$N issued, run exit $r_rc, $(grep -c scrape "$tmp/scrapes") scrapes)"
	[ "$r_ok" -eq 1 ] && echo "result: tool=certfleet-metrics n=$N ok=$r_issued certs_per_s=$r_rate cpu_ms_per_cert=$r_cpu"
fi

# ---- certfleet metrics on a large fleet made as rows ----
if [ "$METRICS_FLEET_N" -gt 0 ]; then
say "certfleet metrics: $METRICS_FLEET_N certificates made as rows (results spread over 0-90 days to expiry, 5% failed jobs)"
start_stack
psql -q "$CERTFLEET_DB" -v ON_ERROR_STOP=1 -v n="$METRICS_FLEET_N" >/dev/null <<'SQL' || { say "fixture failed"; exit 1; }
INSERT INTO runs (label) VALUES ('bench');
INSERT INTO certificates (names, names_key, provider)
    SELECT ARRAY['m' || i || '.bench.example'], 'm' || i || '.bench.example', 'challtestsrv' FROM generate_series(1, :n) i;
INSERT INTO jobs (certificate_id, account_id, state, attempts, last_problem_type, finished_at, run_id)
    SELECT c.id, a.id, CASE WHEN c.id % 20 = 0 THEN 'failed' ELSE 'issued' END, 1,
           CASE WHEN c.id % 20 = 0 THEN (ARRAY['urn:ietf:params:acme:error:rateLimited',
               'urn:ietf:params:acme:error:dns', 'certfleet:provider'])[1 + c.id % 3] END,
           now() - (c.id % 48) * interval '1 hour', (SELECT max(id) FROM runs)
    FROM certificates c, accounts a;
INSERT INTO results (certificate_id, job_id, leaf_pem, chain_pem, key_pem, serial, not_before, not_after, issuer)
    SELECT j.certificate_id, j.id, 'x', 'x', 'x', to_hex(j.id), now() - interval '1 day',
           now() + (j.id % 2160) * interval '1 hour', 'bench'
    FROM jobs j WHERE j.state = 'issued';
ANALYZE runs, certificates, jobs, results;
SQL
best=""
for round in 1 2 3; do
	t0=$(date +%s%N)
	"$cf" metrics --textfile "$tmp/fleet.prom" || { say "metrics failed"; exit 1; }
	ms=$((($(date +%s%N) - t0) / 1000000))
	say "  round $round: ${ms} ms"
	[ -z "$best" ] || [ "$ms" -lt "$best" ] && best=$ms
done
say "certfleet metrics on $METRICS_FLEET_N certificates: best of 3 ${best} ms, $(grep -vc '^#' "$tmp/fleet.prom") series"
echo "result: tool=certfleet-metrics-fleet n=$METRICS_FLEET_N ms=$best series=$(grep -vc '^#' "$tmp/fleet.prom")"
fi

# ---- peers, on the same Pebble ----
if [ "$PEERS_N" -gt 0 ] && [ "$N" -gt 0 ]; then
	say "peers: lego and uacme, $PEERS_N certificates each, one after another and 20 at a time"
	N=$PEERS_N PARALLEL=20 PEERS_KEEP_STACK=1 "$repo/bench/peers.sh" >"$tmp/peers.out" 2>"$tmp/peers.err"
	prc=$?
	grep '^peer=' "$tmp/peers.out" | sed 's/^/result: /'
	[ "$prc" -eq 0 ] || { say "peers.sh exited $prc"; tail -20 "$tmp/peers.err"; }
fi
# the best peer of all those measured (peers.sh's and lego5), against certfleet's renewal medians
# (its new-fleet ones when no renewal ran)
if [ "$N" -gt 0 ]; then
	cat "$tmp/peers.out" "$tmp/lego5.peer" 2>/dev/null | grep '^peer=' >"$tmp/all-peers"
	best_rate=$(awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^certs_per_s=/) { split($i, a, "="); if (a[2] > m) { m = a[2]; w = $1 " " $2 } } } END { print m, w }' "$tmp/all-peers")
	best_cpu=$(awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^cpu_ms_per_cert=/) { split($i, a, "="); if (a[2] != "NA" && (m == "" || a[2] < m)) { m = a[2]; w = $1 " " $2 } } } END { print m, w }' "$tmp/all-peers")
	read -r br bw1 bw2 <<<"$best_rate"
	read -r bc cw1 cw2 <<<"$best_cpu"
	cmp_fleet=renewal
	[[ $fleets == *renewal* ]] || cmp_fleet=new
	if [ -n "${br:-}" ]; then
		for config in $configs; do
			key=$config/$cmp_fleet
			cr=$(stat_of median ${all_rate[$key]}) cc=$(stat_of median ${all_cpu[$key]:-})
			say "throughput ratio certfleet $key (median, $cr/s)/best peer ($bw1 $bw2, $br/s): $(ratio "$cr" "$br")x"
			[ -n "${bc:-}" ] && say "CPU per certificate, certfleet $key (median, $cc ms) / best peer ($cw1 $cw2, $bc ms): $(ratio "$cc" "$bc") (below 1: certfleet spends less)"
		done
	fi
fi

# ---- the queue alone ----
# Rounds alternate certfleet and the baseline, each from a freshly rewritten table, and the
# medians are printed: one burst of 100,000 jobs takes a few seconds, and an autovacuum or a
# checkpoint landing in one of them moves it by a fifth. The ratio is the median of the rounds'
# ratios: each round compares the two a few seconds apart, while the machine's own speed drifts
# by a third across a benchmark.
if [ "$QUEUE_N" -gt 0 ]; then
	rounds=$QUEUE_ROUNDS
	[ "$N" -gt 0 ] || start_stack
	say "queue: $QUEUE_N no-op jobs claimed and completed, then claimed alone, by certfleet's own queue code (2 processes, batches of 50), beside a plain SQL baseline (pgbench, 2 clients, a batched SKIP LOCKED claim in certfleet's order: priority, then due time) and a minimal one (claim by id); median of $rounds rounds"
	acct=$(psql -qAt "$CERTFLEET_DB" -c "SELECT id FROM accounts ORDER BY id LIMIT 1")
	qjobs="SELECT j.id FROM jobs j JOIN certificates c ON c.id = j.certificate_id WHERE c.names_key LIKE 'q%.queue.example'"
	psql -q "$CERTFLEET_DB" -v ON_ERROR_STOP=1 \
		-c "INSERT INTO certificates (names, names_key, provider) SELECT ARRAY['q' || g || '.queue.example'], 'q' || g || '.queue.example', 'challtestsrv' FROM generate_series(1, $QUEUE_N) g" \
		-c "INSERT INTO jobs (certificate_id, account_id) SELECT id, $acct FROM certificates WHERE names_key LIKE 'q%.queue.example'" \
		-c "CREATE TABLE bq (id bigserial PRIMARY KEY, priority integer NOT NULL DEFAULT 0, run_after timestamptz NOT NULL DEFAULT now(), state text NOT NULL DEFAULT 'ready')" \
		-c "CREATE INDEX bq_ready ON bq (priority DESC, run_after, id) WHERE state = 'ready'" \
		-c "CREATE TABLE bq0 (id bigserial PRIMARY KEY, state text NOT NULL DEFAULT 'ready')" \
		-c "CREATE INDEX bq0_ready ON bq0 (id) WHERE state = 'ready'" >/dev/null || exit 1
	# every queue job ready again, on freshly written pages, the queue's and unfinished_jobs' rows
	# in enqueue order as enqueue writes them
	queue_reset() {
		psql -q "$CERTFLEET_DB" -v ON_ERROR_STOP=1 \
			-c "UPDATE jobs SET state = 'ready', attempts = 0, finished_at = NULL, locked_by = NULL WHERE id IN ($qjobs)" \
			-c "DELETE FROM job_queue WHERE job_id IN ($qjobs)" \
			-c "INSERT INTO job_queue (job_id, account_id, priority, run_after) SELECT id, account_id, priority, run_after FROM jobs WHERE id IN ($qjobs) ORDER BY id" \
			-c "DELETE FROM unfinished_jobs WHERE job_id IN ($qjobs)" \
			-c "INSERT INTO unfinished_jobs (job_id, certificate_id, account_id) SELECT id, certificate_id, account_id FROM jobs WHERE id IN ($qjobs) ORDER BY id" \
			-c "VACUUM FULL jobs" -c "VACUUM FULL job_queue" -c "VACUUM FULL unfinished_jobs" \
			-c "ANALYZE jobs" -c "ANALYZE job_queue" -c "ANALYZE unfinished_jobs" >/dev/null ||
			{ say "queue: resetting the jobs failed"; exit 1; }
		checkpoint
	}
	# bq_reset TABLE
	bq_reset() {
		psql -q "$CERTFLEET_DB" -v ON_ERROR_STOP=1 -c "TRUNCATE $1" \
			-c "INSERT INTO $1 (state) SELECT 'ready' FROM generate_series(1, $QUEUE_N)" -c "VACUUM ANALYZE $1" >/dev/null ||
			{ say "queue: resetting the baseline's table failed"; exit 1; }
		checkpoint
	}
	# baseline SCRIPT: jobs per second of pgbench's 2 clients claiming batches of 50
	baseline() {
		local tps
		tps=$(/usr/lib/postgresql/15/bin/pgbench -n -c 2 -j 2 -t $((QUEUE_N / 100)) -f "$1" "$CERTFLEET_DB" 2>/dev/null |
			sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -1)
		awk -v t="${tps:-0}" 'BEGIN { printf "%.0f", t * 50 }'
	}
	# the pages a reset dirtied are written out before a pass, not during it (the stack's
	# cluster trusts loopback connections, so the superuser may run CHECKPOINT)
	checkpoint() { psql -q "postgresql://postgres@${CERTFLEET_DB#*@}" -c CHECKPOINT >/dev/null || say "queue: CHECKPOINT failed"; }
	# runs two bench_queue processes; prints jobs per second, counting the jobs left in state $1
	bq="${CERTFLEET_BENCH_QUEUE:-$repo/build/bench_queue}"
	queue_pass() {
		local t0 t1 n
		t0=$(date +%s.%N)
		"$bq" 50 "$acct" ${2:-} >"$tmp/q1" 2>&1 &
		"$bq" 50 "$acct" ${2:-} >"$tmp/q2" 2>&1
		wait
		t1=$(date +%s.%N)
		n=$(psql -qAt "$CERTFLEET_DB" -c "SELECT count(*) FROM jobs WHERE state = '$1' AND id IN ($qjobs)")
		[ "$n" -eq "$QUEUE_N" ] || { say "queue: $n of $QUEUE_N jobs ended $1" >&2; cat "$tmp/q1" "$tmp/q2" >&2; }
		awk -v n="$n" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", n / (b - a) }'
	}
	# the baseline claims as certfleet does: the due jobs by priority, then due time; the minimal
	# one, for comparison, claims by id from a table of two columns
	printf 'WITH c AS (SELECT id FROM bq WHERE state = %s AND run_after <= now() ORDER BY priority DESC, run_after, id LIMIT 50 FOR UPDATE SKIP LOCKED) UPDATE bq SET state = %s FROM c WHERE bq.id = c.id;\n' "'ready'" "'done'" >"$tmp/claim.sql"
	printf 'WITH c AS (SELECT id FROM bq0 WHERE state = %s ORDER BY id LIMIT 50 FOR UPDATE SKIP LOCKED) UPDATE bq0 SET state = %s FROM c WHERE bq0.id = c.id;\n' "'ready'" "'done'" >"$tmp/claim0.sql"
	ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
	cf_all="" cl_all="" base_all="" min_all="" rq_all="" rc_all="" rm_all=""
	for r in $(seq 1 "$rounds"); do
		queue_reset
		cf_q=$(queue_pass failed)
		bq_reset bq
		base=$(baseline "$tmp/claim.sql")
		queue_reset
		cf_c=$(queue_pass running claim-only)
		bq_reset bq0
		bmin=$(baseline "$tmp/claim0.sql")
		say "queue: round $r: claimed and completed $cf_q jobs/s ($(ratio "$cf_q" "$base")), claimed only $cf_c jobs/s ($(ratio "$cf_c" "$base")), baseline $base jobs/s; minimal baseline $bmin jobs/s (claimed and completed $(ratio "$cf_q" "$bmin") of it)"
		cf_all="$cf_all $cf_q" cl_all="$cl_all $cf_c" base_all="$base_all $base" min_all="$min_all $bmin"
		rq_all="$rq_all $(ratio "$cf_q" "$base")" rc_all="$rc_all $(ratio "$cf_c" "$base")" rm_all="$rm_all $(ratio "$cf_q" "$bmin")"
	done
	median() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
	cf_q=$(median "$cf_all") cf_c=$(median "$cl_all") base=$(median "$base_all") bmin=$(median "$min_all")
	rq=$(median "$rq_all") rc=$(median "$rc_all") rm=$(median "$rm_all")
	echo "bench: queue: claimed and completed: certfleet $cf_q jobs/s, SQL baseline (claim only) $base jobs/s (medians); $rq of the baseline (median of the rounds' ratios:$rq_all)"
	echo "bench: queue: claimed only: certfleet $cf_c jobs/s; $rc of the baseline (median of the rounds' ratios:$rc_all)"
	echo "bench: queue: minimal baseline (claim by id, two columns) $bmin jobs/s; claimed and completed $rm of it (median of the rounds' ratios:$rm_all)"
	echo "result: tool=queue certfleet_jobs_per_s=$cf_q certfleet_claim_only_jobs_per_s=$cf_c baseline_jobs_per_s=$base ratio=$rq claim_only_ratio=$rc minimal_baseline_jobs_per_s=$bmin minimal_ratio=$rm rounds=$rounds"
fi

# ---- renew: ARI checks for a whole fleet ----
# median VALUES...: the middle value (the lower middle for an even count)
median() { tr ' ' '\n' <<<"$*" | sed '/^$/d' | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
if [ "$RENEW_N" -gt 0 ]; then
	say "renew: $RENEW_N certificates issued once, then renewalInfo asked for each by one renew"
	start_stack
	seq 1 "$RENEW_N" | sed 's/^/ari/; s/$/.bench.example/' | "$cf" enqueue >/dev/null || exit 1
	publish_records
	"$cf" run --inflight 1024 --batch 500 --max-unsaved-orders 1024 --no-progress >"$tmp/renew-run.out" 2>&1
	have=$(psql -qAt "$CERTFLEET_DB" -c "SELECT count(*) FROM results WHERE is_current")
	say "renew:   $have of $RENEW_N issued"
	rates="" cpus="" walls=""
	# --dry-run stores nothing, so every round asks about every certificate again
	for i in $(seq 1 "$RENEW_ROUNDS"); do
		/usr/bin/time -f '%e %U %S' -o "$tmp/renew.time" "$cf" renew --dry-run >"$tmp/renew.out" 2>"$tmp/renew.err"
		read -r w u sy <"$tmp/renew.time"
		checks=$(sed -n 's/.*, \([0-9]*\) renewalInfo checks (\([0-9]*\) ok.*/\1 \2/p' "$tmp/renew.out")
		read -r nchecks nok <<<"$checks"
		rate=$(awk -v n="${nok:-0}" -v w="$w" 'BEGIN { printf "%.0f", (w > 0 ? n / w : 0) }')
		cpu=$(awk -v u="$u" -v s="$sy" 'BEGIN { printf "%.2f", u + s }')
		say "renew:   round $i: ${nchecks:-0} checks (${nok:-0} ok) in $w s: $rate checks/s, certfleet CPU $cpu s"
		rates="$rates $rate" cpus="$cpus $cpu" walls="$walls $w"
	done
	# the real one also stores the $RENEW_N windows in one statement
	/usr/bin/time -f '%e %U %S' -o "$tmp/renew.time" "$cf" renew >"$tmp/renew.out" 2>"$tmp/renew.err"
	read -r sw su ss <"$tmp/renew.time"
	stored=$(psql -qAt "$CERTFLEET_DB" -c "SELECT count(*) FROM results WHERE ari_window_start IS NOT NULL")
	cat <<EOT
bench: renew: $(median $rates) renewalInfo checks/s (median of $RENEW_ROUNDS dry runs of $RENEW_N), $(median $walls) s, certfleet CPU $(median $cpus) s ($(awk -v c="$(median $cpus)" -v n="$RENEW_N" 'BEGIN { printf "%.0f", (n ? c * 1e6 / n : 0) }') us per check)
bench:   renew storing the windows: $sw s, certfleet CPU $(awk -v u="$su" -v s="$ss" 'BEGIN { printf "%.2f", u + s }') s; $stored windows stored
EOT
	echo "result: tool=certfleet-renew n=$RENEW_N checks_per_s=$(median $rates) wall_s=$(median $walls) cpu_s=$(median $cpus) store_wall_s=$sw"
fi

# ---- report: the reporting views on a large fleet of fixture rows ----
if [ "$REPORT_N" -gt 0 ]; then
	say "report: $REPORT_N certificates as fixture rows, then report and report --html"
	start_stack
	CERTFLEET_BIN=$cf "$repo/bench/report.sh" "$REPORT_N" || say "report: failed"
fi

# ---- hold: many orders in flight at once ----
if [ "$HOLD" -gt 0 ]; then
	say "hold: $HOLD orders in flight (Pebble validates after up to 300 s and asks for polls every 20 s; orders end at the 90 s order timeout)"
	stack stop >/dev/null 2>&1
	PEBBLE_VA_NOSLEEP=0 PEBBLE_VA_SLEEPTIME=300 CERTFLEET_PEBBLE_RETRY_AFTER=20 start_stack
	seq 1 "$HOLD" | sed 's/^/hold/; s/$/.bench.example/' | "$cf" enqueue >/dev/null || exit 1
	"$cf" run --workers 2 --inflight $(((HOLD + 1) / 2)) --batch 500 --max-unsaved-orders $HOLD --order-timeout 90 --retry-wait 0 \
		>"$tmp/hold.out" 2>"$tmp/hold.err"
	summary=$(grep '^summary:' "$tmp/hold.out")
	grep '^progress:' "$tmp/hold.err" | awk 'NR % 5 == 0' | sed 's/^/bench:   /' | head -20
	cat <<EOT
bench: hold: peak orders in flight $(kv "$summary" peak_inflight), peak RSS $(kv "$summary" peak_rss_mb) MB, worst event-loop lag $(kv "$summary" max_lag_ms) ms
bench:   ($(kv "$summary" issued) validated within the timeout; $(kv "$summary" retried) ended by it and went back to the queue)
EOT
	echo "result: tool=certfleet-hold peak_inflight=$(kv "$summary" peak_inflight) peak_rss_mb=$(kv "$summary" peak_rss_mb) max_lag_ms=$(kv "$summary" max_lag_ms)"
fi
