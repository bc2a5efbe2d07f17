#!/usr/bin/env bash
# test_check_layers.sh - scripts/check-layers.py finds what it is for: an include from a layer
# above, and two modules that include each other, in small trees made here; and passes a clean one.
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
check="$repo/scripts/check-layers.py"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

ok() { echo "ok - check_layers: $1"; }
not_ok() { echo "not ok - check_layers: $1"; }

# tree NAME: an empty house with the five layer folders
tree() {
	mkdir -p "$tmp/$1"/{common,lib,providers,workers,orchestrator}
	echo "$tmp/$1"
}

t=$(tree clean)
printf '#include "b.h"\n' >"$t/lib/a.c"
printf '/* b.h */\n' >"$t/common/b.h"
printf '#include "a.h"\n' >"$t/workers/w.c"
printf '/* a.h */\n' >"$t/lib/a.h"
if out=$(python3 "$check" --root "$t" 2>&1) && [[ "$out" == "layers: ok (4 files)" ]]; then
	ok "a tree whose includes point down passes"
else
	not_ok "a tree whose includes point down passes (got: $out)"
fi

t=$(tree up)
printf '#include "engine.h"\n' >"$t/lib/loop.c"
printf '/* engine.h */\n' >"$t/workers/engine.h"
out=$(python3 "$check" --root "$t" 2>&1)
rc=$?
if [[ $rc -eq 1 && "$out" == *"lib/loop.c:1: includes workers/engine.h, a layer above lib/"* ]]; then
	ok "an include from a layer above is named"
else
	not_ok "an include from a layer above is named (rc $rc: $out)"
fi

t=$(tree circle)
printf '#include "b.h"\n' >"$t/workers/a.c"
printf '/* a.h */\n' >"$t/workers/a.h"
printf '#include "a.h"\n' >"$t/workers/b.c"
printf '/* b.h */\n' >"$t/workers/b.h"
out=$(python3 "$check" --root "$t" 2>&1)
rc=$?
if [[ $rc -eq 1 && "$out" == *"modules include each other: workers/a, workers/b"* ]]; then
	ok "two modules that include each other are named"
else
	not_ok "two modules that include each other are named (rc $rc: $out)"
fi

t=$(tree private)
printf '#include "a_int.h"\n' >"$t/workers/a.c"
printf '#include "a.h"\n' >"$t/workers/a_int.h"
printf '/* a.h */\n' >"$t/workers/a.h"
if out=$(python3 "$check" --root "$t" 2>&1); then
	ok "a module's private header belongs to the module"
else
	not_ok "a module's private header belongs to the module (got: $out)"
fi

# A call into a layer above, declared where no include shows it, is found in the objects.
t=$(tree calls)
printf 'int engine_count(void);\nint loop_count(void) { return engine_count(); }\n' >"$t/lib/loop.c"
printf 'int engine_count(void) { return 1; }\n' >"$t/workers/engine.c"
mkdir -p "$t/build/lib" "$t/build/workers"
if cc -c -o "$t/build/lib/loop.o" "$t/lib/loop.c" && cc -c -o "$t/build/workers/engine.o" "$t/workers/engine.c"; then
	out=$(python3 "$check" --root "$t" --objects "$t/build" 2>&1)
	rc=$?
	if [[ $rc -eq 1 && "$out" == *"lib/loop.c: calls engine_count, defined in workers/engine.c, a layer above lib/"* ]]; then
		ok "a call into a layer above is found in the objects"
	else
		not_ok "a call into a layer above is found in the objects (rc $rc: $out)"
	fi
else
	not_ok "a call into a layer above is found in the objects (cc failed)"
fi
