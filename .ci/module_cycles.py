#!/usr/bin/env python3
"""Fails if the production modules of a crate import each other in a cycle (issue 14).

Usage: module_cycles.py CRATE/src [CRATE/src ...]

A top-level module's dependencies are the `crate::<module>` paths in its source outside its
test module (`#[cfg(test)] mod tests` or `#[cfg(all(test, ...))] mod tests`: tests may reach
anywhere). Shared gadgets live in modules of their own, never inside a component, so that the
components depend on them and not on each other.
"""
import os
import re
import sys

TESTS = re.compile(r"#\[cfg\((?:all\()?test[^\]]*\]\s*mod tests")


def modules(root):
    mods = {}
    for f in sorted(os.listdir(root)):
        p = os.path.join(root, f)
        if f.endswith(".rs") and f != "lib.rs":
            name, src = f[:-3], open(p).read()
        elif os.path.isdir(p) and os.path.exists(os.path.join(p, "mod.rs")):
            name = f
            src = "".join(
                open(os.path.join(d, x)).read()
                for d, _, fs in os.walk(p)
                for x in fs
                if x.endswith(".rs")
            )
        else:
            continue
        src = TESTS.split(src)[0]
        deps = set(re.findall(r"crate::([a-z_0-9]+)", src))
        for group in re.findall(r"use crate::\{([^}]*)\}", src):
            deps |= set(re.findall(r"\b([a-z_0-9]+)::", group))
        mods[name] = deps - {name}
    return {m: {d for d in ds if d in mods} for m, ds in mods.items()}


def cycles(graph):
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
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
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def main():
    failed = False
    for root in sys.argv[1:]:
        found = cycles(modules(root))
        for c in found:
            print(f"{root}: import cycle among {', '.join(c)}")
        failed |= bool(found)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
