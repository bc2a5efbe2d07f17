#!/usr/bin/env python3
"""check-layers.py - checks that certfleet's layers point one way and that no modules depend on
each other in a circle.

    scripts/check-layers.py [--root DIR] [--objects BUILD_DIR]

The layers, from the top: orchestrator/, workers/, providers/, lib/, common/. A file may include
headers of its own layer and of the layers below it, never of a layer above. A module is a .c
file with its headers (x.c, x.h and a private x_int.h); no two modules may depend on each other,
directly or through others.

Dependencies are read from the #include lines. With --objects, the compiled objects under
BUILD_DIR are read too (nm): a call from one object to a function that only an object of a layer
above defines, or a circle of calls between modules, is a violation as well. That catches what
include lines cannot show: a function declared in a lower layer's header and defined above it.

Prints one line per violation and "layers: ok (...)" when there is none; exits 1 on a violation.
"""
import os
import re
import subprocess
import sys

LAYERS = ["common", "lib", "providers", "workers", "orchestrator"]  # bottom first
RANK = {name: i for i, name in enumerate(LAYERS)}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def module_of(path):
    """'workers/acme_int.h' -> 'workers/acme'."""
    folder, name = os.path.split(path)
    base = os.path.splitext(name)[0]
    if base.endswith("_int"):
        base = base[: -len("_int")]
    return f"{folder}/{base}"


def sources(root):
    out = []
    for layer in LAYERS:
        d = os.path.join(root, layer)
        for name in sorted(os.listdir(d)):
            if name.endswith((".c", ".h")):
                out.append(f"{layer}/{name}")
    return out


def resolve(root, including, header):
    """Where a quoted include lands: the including file's folder first, then -I order."""
    own = os.path.dirname(including)
    for folder in [own] + LAYERS:
        if os.path.isfile(os.path.join(root, folder, header)):
            return f"{folder}/{header}"
    return None  # a system or generated header


def find_cycles(edges):
    """The strongly connected components of more than one node (Tarjan), each sorted."""
    index, low, stack, on, comps = {}, {}, [], set(), []
    counter = [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return comps


def depend(edges, why, problems, path, target, above, tie):
    """Records that path depends on target: above (a message) when target is a layer above, and
    the edge between their modules, with tie saying how, for the circles."""
    layer, tlayer = path.split("/")[0], target.split("/")[0]
    if RANK[tlayer] > RANK[layer]:
        problems.append(f"{above}, a layer above {layer}/")
    a, b = module_of(path), module_of(target)
    if a != b:
        edges.setdefault(a, set()).add(b)
        why.setdefault((a, b), tie)


def report_cycles(edges, why, verb, problems):
    for comp in find_cycles(edges):
        ties = [why[(a, b)] for a in comp for b in sorted(edges.get(a, ())) if b in comp]
        problems.append(f"modules {verb} each other: " + ", ".join(comp) + " (" + "; ".join(ties) + ")")


def check_includes(root, problems):
    edges = {}
    why = {}
    files = sources(root)
    for path in files:
        with open(os.path.join(root, path), encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                m = INCLUDE.match(line)
                if not m:
                    continue
                target = resolve(root, path, m.group(1))
                if target is None:
                    continue
                depend(edges, why, problems, path, target, f"{path}:{lineno}: includes {target}",
                       f"{path}:{lineno} includes {target}")
    report_cycles(edges, why, "include", problems)
    return len(files)


def nm_symbols(obj):
    out = subprocess.run(["nm", "-P", obj], check=True, capture_output=True, text=True).stdout
    defined, undefined = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        name, kind = parts[0], parts[1]
        if kind == "U":
            undefined.add(name)
        elif kind in ("T", "D", "B", "R"):  # global definitions only: static ones are private
            defined.add(name)
    return defined, undefined


def check_objects(root, build, problems):
    owner = {}
    needs = {}
    for path in sources(root):
        if not path.endswith(".c"):
            continue
        obj = os.path.join(build, os.path.splitext(path)[0] + ".o")
        if not os.path.isfile(obj):
            problems.append(f"{obj}: missing (build first)")
            continue
        defined, undefined = nm_symbols(obj)
        for s in defined:
            owner[s] = path
        needs[path] = undefined
    edges = {}
    why = {}
    for path, undefined in needs.items():
        for s in sorted(undefined):
            target = owner.get(s)
            if target is None:
                continue
            if path == "orchestrator/main.c":
                continue
            depend(edges, why, problems, path, target, f"{path}: calls {s}, defined in {target}",
                   f"{path} calls {s} ({target})")
    report_cycles(edges, why, "call", problems)
    return len(needs)


def main():
    root = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    args = sys.argv[1:]
    build = None
    while args:
        if args[0] in ("--root", "--objects") and len(args) >= 2:
            if args[0] == "--root":
                root = args[1]
            else:
                build = args[1]
            args = args[2:]
        else:
            print(__doc__.split("\n\n")[1], file=sys.stderr)
            return 2
    problems = []
    nfiles = check_includes(root, problems)
    nobjs = check_objects(root, build, problems) if build else 0
    for p in problems:
        print(p)
    if problems:
        print(f"layers: {len(problems)} violation(s)")
        return 1
    print(f"layers: ok ({nfiles} files" + (f", {nobjs} objects" if build else "") + ")")
    return 0


if __name__ == "__main__":
    sys.exit(main())
