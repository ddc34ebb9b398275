#!/usr/bin/env python3
"""The layering rules of docs/architecture.md, checked on the built objects.

Reads every object file under BUILD (programs and libraries, not tests),
links each undefined symbol to the object that defines it, and reports:
- a call between folders that the rules do not allow (calls go down only);
- a cycle between the files of one folder.
Prints "ok - ..." / "not ok - ..." lines; exits 1 when anything is wrong.
"""
import collections
import os
import subprocess
import sys

# Which folders each folder may call (docs/architecture.md, "Who calls whom").
ALLOWED = {
    "common": set(),
    "index": {"common"},
    "fetcher": {"index", "common"},
    "fusefs": {"fetcher", "index", "common"},
    "tools/origin": {"common"},
    "tools/status": {"index", "common"},
    "tools/dvr-fake": {"common"},
    "tools/restore": {"common"},
}


def nm(args, path):
    out = subprocess.run(["nm"] + args + [path], capture_output=True,
                         text=True, check=True).stdout
    return [l.split() for l in out.splitlines() if l.strip()]


def main(build):
    objs = []
    for folder in ALLOWED:
        d = os.path.join(build, folder)
        if os.path.isdir(d):
            objs += [os.path.join(d, f) for f in sorted(os.listdir(d))
                     if f.endswith(".o")]
    defs, undefs = {}, {}
    for o in objs:
        for p in nm(["-g", "--defined-only"], o):
            if len(p) == 3:
                defs.setdefault(p[2], o)
        undefs[o] = [p[-1] for p in nm(["-u"], o)]
    edges = collections.defaultdict(set)
    for o, us in undefs.items():
        for u in us:
            if u in defs and defs[u] != o:
                edges[o].add(defs[u])
    folder = lambda p: os.path.dirname(os.path.relpath(p, build))
    name = lambda p: os.path.relpath(p, build)[:-2] + ".c"
    bad = 0
    for o in objs:
        for d in sorted(edges[o]):
            a, b = folder(o), folder(d)
            if a != b and b not in ALLOWED[a]:
                print(f"not ok - {name(o)} calls up into {name(d)}")
                bad += 1
    # Cycles inside a folder: strongly connected components (Tarjan).
    index, low, stack, on, sccs = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if folder(w) != folder(v):
                continue
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
            sccs.append(comp)

    sys.setrecursionlimit(10000)
    for o in objs:
        if o not in index:
            visit(o)
    for comp in sccs:
        if len(comp) > 1:
            print("not ok - cycle between " +
                  ", ".join(sorted(name(c) for c in comp)))
            bad += 1
    folders = sorted({folder(o) for o in objs})
    if bad == 0:
        print(f"ok - {len(objs)} objects in {len(folders)} folders: calls "
              "go down only, no cycle inside a folder")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "build"))
