#!/usr/bin/env python3
"""The import graph of cachet-core's top-level modules, and its checks.

Reads every `crate::<module>` path in each top-level module's files (code
and tests alike), then checks the layering ARCHITECTURE.md states:

- no import cycle among the top-level modules except the handle and its
  engine steps (`cache`, `engine`);
- `protocol` imports only leaf modules;
- `store` imports neither `protocol` nor `config`;
- nothing below the handle imports `persistence` or `values`.

Prints the graph; exits 1 naming each broken rule.
"""

import os
import re
import sys

ROOT = os.path.join(os.path.dirname(__file__), "..", "crates", "cachet-core", "src")
# Modules that import no other module of the crate.
LEAVES = {"clock", "weight", "request", "identity"}
# The handle and its steps: the one cycle allowed.
KNOT = {"cache", "engine"}
# What may sit below the handle.
BELOW_HANDLE = {"protocol", "store", "config", "stats", "clock", "weight", "request", "identity"}


def modules():
    found = {}
    for entry in sorted(os.listdir(ROOT)):
        path = os.path.join(ROOT, entry)
        name = entry[:-3] if entry.endswith(".rs") else entry
        if name in ("lib", "test_support"):
            continue
        files = []
        if os.path.isdir(path):
            for base, _, names in os.walk(path):
                files += [os.path.join(base, n) for n in names if n.endswith(".rs")]
        elif entry.endswith(".rs"):
            files = [path]
        found[name] = files
    return found


def imports(files, names):
    used = set()
    pattern = re.compile(r"crate::(\w+)")
    brace = re.compile(r"crate::\{([^}]*)\}")
    for file in files:
        text = open(file, encoding="utf-8").read()
        # Only code: doc comments name modules without importing them.
        code = "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("//"))
        used.update(m for m in pattern.findall(code) if m in names)
        for group in brace.findall(code):
            used.update(p.strip().split("::")[0] for p in group.split(",") if p.strip().split("::")[0] in names)
    return used


def cycles(graph):
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(component)

    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            visit(v)
    return out


def main():
    found = modules()
    names = set(found)
    graph = {name: sorted(imports(files, names) - {name}) for name, files in found.items()}
    for name in sorted(graph):
        print(f"{name:12} -> {', '.join(graph[name]) or '(leaf)'}")
    broken = []
    for component in cycles(graph):
        if not component <= KNOT:
            broken.append(f"an import cycle beyond the handle and its steps: {', '.join(sorted(component))}")
    extra = set(graph.get("protocol", [])) - LEAVES
    if extra:
        broken.append(f"protocol imports more than leaves: {', '.join(sorted(extra))}")
    for forbidden in ("protocol", "config"):
        if forbidden in graph.get("store", []):
            broken.append(f"store imports {forbidden}")
    for name in sorted(BELOW_HANDLE & names):
        for upper in ("persistence", "values", "cache", "engine", "adapter"):
            if upper in graph[name]:
                broken.append(f"{name} (below the handle) imports {upper}")
    for line in broken:
        print(f"module graph: {line}", file=sys.stderr)
    sys.exit(1 if broken else 0)


if __name__ == "__main__":
    main()
