#!/usr/bin/env python3
"""The import graph of production code (`src/`, test modules left out), checked against the
declared layers: no circle between files, no module importing a module of a higher layer, and
no inner library (`reader/log`) importing the module around it.

Edges are `crate::…` and `super::…` paths, resolved to the file that defines the longest prefix
(`crate::reader::stream::X` is `src/reader/stream.rs`); a file's `#[cfg(test)] mod tests` and
everything after it are left out (tests come last). A module's own children are not edges
(declaring `mod x;` is structure, not an import). Run by `.ci/run`; exits 1 with every circle and
every arrow up named.
"""

import collections
import os
import re
import sys

SRC = "src"

# Bottom first. A module may import its own layer and the layers below it, never above.
LAYERS = [
    ["allocator", "call", "text", "secret", "input", "untrusted", "model"],
    ["logs", "pipeline"],
    ["triage"],
    ["report", "fit", "hud"],
    ["storage", "http", "buildkite", "github", "owners"],
    ["reader"],
    ["watch"],
    ["config"],
    ["services"],
    ["mcp", "fixtures", "demo"],
    ["lib", "main"],
]
LAYER_OF = {module: rank for rank, modules in enumerate(LAYERS) for module in modules}

# Rooms inside a module that are libraries of their own: they import nothing of the module
# around them (the reader's log layer knows no plan, no pytest, no coverage).
INNER_LIBRARIES = {"reader/log": "reader"}

TEST_MODULE = re.compile(r"\n#\[cfg\(test\)\]\s*\nmod tests\b")
PATH = re.compile(r"\b(crate|super)((?:::\w+)+)")
GROUP = re.compile(r"\b(crate|super)((?:::\w+)*)::\{([^}]*)\}")


def modules():
    """Module path (`reader/stream`) -> file, for every file of `src/`."""
    found = {}
    for directory, _, names in os.walk(SRC):
        for name in names:
            if name.endswith(".rs"):
                path = os.path.join(directory, name)
                module = path[len(SRC) + 1 : -3]
                found[module[: -len("/mod")] if module.endswith("/mod") else module] = path
    return found


def edges(found):
    """Module -> the modules it imports (itself and its own children left out)."""
    def resolve(parts):
        for n in range(len(parts), 0, -1):
            candidate = "/".join(parts[:n])
            if candidate in found:
                return candidate
        return None

    graph = collections.defaultdict(set)
    for module, path in found.items():
        with open(path, encoding="utf-8") as source:
            text = source.read()
        cut = TEST_MODULE.search(text)
        if cut:
            text = text[: cut.start()]
        # `super` is the parent module: for `a/b.rs` and for `a/mod.rs` alike, one step up.
        parent = module.split("/")[:-1]

        def add(head, parts):
            target = resolve((parent if head == "super" else []) + parts)
            if target and target != module and not target.startswith(module + "/"):
                graph[module].add(target)

        for match in PATH.finditer(text):
            add(match.group(1), match.group(2).split("::")[1:])
        for match in GROUP.finditer(text):
            prefix = [p for p in match.group(2).split("::") if p]
            for item in match.group(3).split(","):
                name = item.strip().split("::")[0].split(" ")[0]
                if name and name != "self":
                    add(match.group(1), prefix + [name])
    return graph


def circles(graph):
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    counter = [0]
    sys.setrecursionlimit(10_000)

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in list(graph):
        if node not in index:
            visit(node)
    return found


def main():
    found = modules()
    graph = edges(found)
    problems = []
    tops = collections.defaultdict(set)
    for module, targets in graph.items():
        for target in targets:
            source_top, target_top = module.split("/")[0], target.split("/")[0]
            if source_top != target_top:
                tops[source_top].add(target_top)
    for circle in circles(graph) + circles(tops):
        problems.append("circle: " + " -> ".join(circle + circle[:1]))
    for library, outer in INNER_LIBRARIES.items():
        for module, targets in sorted(graph.items()):
            if not (module + "/").startswith(library + "/"):
                continue
            for target in sorted(targets):
                inside = (target + "/").startswith(library + "/")
                if not inside and (target + "/").startswith(outer + "/"):
                    problems.append(f"arrow up: {module} (in the library {library}) imports {target}")
    for top in sorted({m.split("/")[0] for m in found}):
        if top not in LAYER_OF:
            problems.append(f"{top}: no declared layer (add it to LAYERS in {sys.argv[0]})")
    for source, targets in sorted(tops.items()):
        for target in sorted(targets):
            if source in LAYER_OF and target in LAYER_OF and LAYER_OF[target] > LAYER_OF[source]:
                problems.append(f"arrow up: {source} (layer {LAYER_OF[source]}) imports {target} (layer {LAYER_OF[target]})")
    if problems:
        print("\n".join(problems))
        return 1
    print(f"layers: {len(found)} files, {sum(map(len, graph.values()))} imports, no circle, no arrow up")
    return 0


if __name__ == "__main__":
    sys.exit(main())
