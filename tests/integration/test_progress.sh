#!/usr/bin/env bash
# test_progress.sh - run's progress on standard error: on a terminal (script(1) gives it one) a
# live line rewritten in place that the summary replaces; piped, plain lines without carriage
# returns; with --log-format json, one JSON object per line, a failed job's with its fields.
. "$(dirname "$0")/lib.sh"

require_tools "packaging/deps/test.txt: bsdutils" script
require_tools "packaging/deps/test.txt: python3" python3
db_new || { not_ok "create database"; finish; exit 1; }
check "account register" register
tmp=$(mktemp -d)
trap 'cp -r "$tmp" /tmp/progress-debug; rm -rf "$tmp"' EXIT

# On a terminal: the live line, with every field, drawn in place; the summary after it.
check "enqueue for the terminal run" "$CF" enqueue "t1.$ZONE" "t2.$ZONE" "t3.$ZONE"
script -qfec "'$CF' run --workers 1" /dev/null >"$tmp/tty" </dev/null
check_eq "run on a terminal exits 0" "$?" 0
check "the terminal shows the live line in place, then only the summary" python3 - "$tmp/tty" <<'PY'
import re, sys
out = open(sys.argv[1], "rb").read().decode().replace("\r\n", "\n")  # the pty's own line ends
live = re.findall(r"\r\x1b\[K(\d+) claimed, (\d+) issued, (\d+) failed, (\d+) in flight, "
                  r"(\?|\d+\.\d)/s, (\?|[0-9hms>]+) left", out)
assert live, "no live line in %r" % out[-400:]
assert out.count("\n") < 12, "the live line was printed as lines: %r" % out  # in place, not one per update
last_erase, summary = out.rfind("\r\x1b[K"), out.find("run finished: 3 claimed, 3 issued, 0 failed")
assert 0 <= last_erase < summary, "the summary does not follow the erased live line: %r" % out[-400:]
assert "\r" not in out[summary:], "a live line after the summary: %r" % out[summary:]
# every log line starts on a line of its own: none glued to a live line
for line in out[:summary].split("\n"):
    assert " info: " not in line or re.match(r"^(\r\x1b\[K)?\d{4}-\d\d-\d\dT", line), "mangled: %r" % line
PY
check_eq "the terminal run issued them" "$(sql "SELECT count(*) FROM jobs WHERE state = 'issued'")" 3
script -qfec "stty cols 40; '$CF' run --workers 1" /dev/null >"$tmp/tty-narrow" </dev/null
check "a 40-column terminal: the live line is cut to 39 columns, not wrapped" python3 - "$tmp/tty-narrow" <<'PY'
import re, sys
out = open(sys.argv[1], "rb").read().decode()
live = re.findall(r"\r\x1b\[K(\d+ claimed[^\r\n\x1b]*)", out)
assert live and all(len(l) == 39 for l in live), live
PY
script -qfec "'$CF' run --workers 1 --no-progress" /dev/null >"$tmp/tty-quiet" </dev/null
check "--no-progress on a terminal: no live line" bash -c "! grep -q \$'\\e\\[K' '$tmp/tty-quiet' && grep -q 'run finished' '$tmp/tty-quiet'"

# Piped: plain periodic lines, as ever. A job due in 3 s keeps the run waiting past the first one.
check "enqueue for the piped run" "$CF" enqueue "p1.$ZONE" "p2.$ZONE"
sql "UPDATE jobs SET run_after = now() + interval '3 seconds' WHERE state = 'ready'
     AND certificate_id = (SELECT id FROM certificates WHERE names = ARRAY['p2.$ZONE'])" >/dev/null
"$CF" run --workers 1 >"$tmp/piped.out" 2>"$tmp/piped.err"
check_eq "piped run exits 0" "$?" 0
check "piped: plain progress lines" grep -Eq '^progress: [0-9]+ claimed, [0-9]+ issued, 0 failed, 0 to retry, [0-9]+ in flight, [0-9.]+ s$' "$tmp/piped.err"
check "piped: no carriage return or escape on stderr" bash -c "! grep -q \$'[\\r\\e]' '$tmp/piped.err'"

# JSON: every line an object; the rejected name's line carries the job, certificate, names and problem.
check "enqueue for the JSON run" "$CF" enqueue "j1.$ZONE" "blocked-domain.example"
job=$(sql "SELECT j.id FROM jobs j JOIN certificates c ON c.id = j.certificate_id WHERE c.names = ARRAY['blocked-domain.example']")
cert=$(sql "SELECT id FROM certificates WHERE names = ARRAY['blocked-domain.example']")
"$CF" run --workers 1 --log-format json >"$tmp/json.out" 2>"$tmp/json.err"
check_eq "JSON run exits 3 (a job failed)" "$?" 3
check "JSON: every stderr line is an object with time, level and message; the failure has its fields" \
	python3 - "$tmp/json.err" "$job" "$cert" <<'PY'
import json, sys
lines = open(sys.argv[1], encoding="utf-8").read().splitlines()
assert len(lines) >= 2, lines
objs = [json.loads(l) for l in lines]
for o in objs:
    assert isinstance(o, dict) and {"time", "level", "message"} <= o.keys(), o
    assert o["level"] in ("error", "warn", "info", "debug"), o
fail = [o for o in objs if o.get("job_id") == int(sys.argv[2])]
assert fail, "no line for job %s in %s" % (sys.argv[2], lines)
o = fail[0]
assert o["certificate_id"] == int(sys.argv[3]), o
assert o["names"] == ["blocked-domain.example"], o
assert o["problem_type"] == "urn:ietf:params:acme:error:rejectedIdentifier", o
assert o["detail"] and "failed" in o["message"], o
PY
check_eq "the job's stored problem is the one logged" \
	"$(sql "SELECT last_problem_type FROM jobs WHERE id = $job")" "urn:ietf:params:acme:error:rejectedIdentifier"
CERTFLEET_LOG_FORMAT=json "$CF" run --workers 1 --no-progress >/dev/null 2>"$tmp/env.err"
check "CERTFLEET_LOG_FORMAT=json: JSON lines too" python3 -c "
import json, sys
lines = open('$tmp/env.err').read().splitlines()
assert lines and all(json.loads(l)['message'] for l in lines), lines"
"$CF" enqueue --log-format json --wait --timeout 1 "w1.$ZONE" >/dev/null 2>"$tmp/wait.err"
check_eq "enqueue --wait with no run: exit 4 after --timeout" "$?" 4
check "enqueue --wait --log-format json: its waiting line is a JSON object" python3 -c "
import json
objs = [json.loads(l) for l in open('$tmp/wait.err').read().splitlines()]
assert any(o['message'] == 'waiting: 0 issued, 0 failed, 0 cancelled, 1 queued or running' for o in objs), objs"

# A bad format is refused, naming the option or the variable, with exit code 2.
"$CF" run --log-format yaml >/dev/null 2>"$tmp/bad.err"
check_eq "--log-format yaml exits 2" "$?" 2
check "--log-format yaml is named" grep -q -- '--log-format: "yaml" is neither text nor json' "$tmp/bad.err"
CERTFLEET_LOG_FORMAT=xml "$CF" status >/dev/null 2>"$tmp/badenv.err"
check_eq "CERTFLEET_LOG_FORMAT=xml exits 2" "$?" 2
check "CERTFLEET_LOG_FORMAT=xml is named" grep -q 'CERTFLEET_LOG_FORMAT: "xml"' "$tmp/badenv.err"
check_unfinished "progress runs"
finish
