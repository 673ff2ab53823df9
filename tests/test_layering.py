"""Imports run one way: contract → inventory → collectors → sinks/alerts/derived → dashboards/reports → commands.

Every module of the project is parsed with :mod:`ast` (nothing is imported);
every ``import`` counts, at module level or inside a function.  Two rules:

1. a package imports only packages at its own layer or below (:data:`LAYERS`);
2. no import cycle between modules (Tarjan's strongly connected components).

A failure names the file, the line and the import, so it reads like a linter.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: layer of each top-level package: an import may only go to the same layer or a lower one
LAYERS: dict[str, int] = {
    "contract": 0,       # the shared names; imports nothing from the project
    "inventory": 1,      # the site model
    "collectors": 2,     # protocols, scheduler, samples
    "sinks": 3, "alerts": 3, "derived": 3, "storage": 3,  # consumers of samples
    "simulator": 3,      # the twin: real protocol endpoints driven by the model (uses collectors' codecs)
    "dashboards": 4, "reports": 4,
    "localservers": 4,   # local influxd, mosquitto, the twin launcher: for the demo, tests and benches
    "dcim": 5,           # the command-line entry points and the service
    "testkit": 6,        # test-only servers and helpers
    "bench": 7, "tests": 7, "scripts": 7,
}
ORDER = "contract → inventory → collectors → sinks/alerts/derived/storage/simulator → dashboards/reports/localservers → dcim"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    """Every module of the ranked packages below the test/bench layer."""
    out: dict[str, Path] = {}
    for package, layer in LAYERS.items():
        if layer >= LAYERS["tests"] or not (ROOT / package).is_dir():
            continue
        for path in sorted((ROOT / package).rglob("*.py")):
            out[_module_name(path)] = path
    return out


def imports(path: Path, module: str, known: set[str]) -> list[tuple[int, str]]:
    """``(line, imported module)`` for every import in the file (relative ones resolved)."""
    is_package = path.name == "__init__.py"
    out: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:  # ``from a.b import c``: module a.b.c if it is one, else a name in a.b
                sub = f"{target}.{alias.name}"
                out.append((node.lineno, sub if sub in known else target))
    return list(dict.fromkeys(out))


def _graph() -> tuple[dict[str, Path], dict[str, list[tuple[int, str]]]]:
    mods = project_modules()
    known = set(mods)
    return mods, {m: imports(p, m, known) for m, p in mods.items()}


def upward_imports() -> list[str]:
    mods, graph = _graph()
    problems = []
    for mod, edges in graph.items():
        here = mod.split(".")[0]
        for line, target in edges:
            there = target.split(".")[0]
            if there in LAYERS and there != here and LAYERS[there] > LAYERS[here]:
                problems.append(f"{mods[mod].relative_to(ROOT)}:{line}: imports {target}: {there} is above {here} "
                                f"(imports run {ORDER})")
    return problems


def import_cycles() -> list[str]:
    """One message per cycle: every import that takes part in it, with file and line."""
    mods, graph = _graph()
    edges = {m: sorted({t for _, t in e if t in mods and t != m}) for m, e in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def strongconnect(v: str) -> None:  # Tarjan, iterative over the successors of one node at a time
        work = [(v, iter(edges[v]))]
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        while work:
            node, successors = work[-1]
            for w in successors:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(edges[w])))
                    break
                if w in on_stack:
                    low[node] = min(low[node], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == node:
                            break
                    if len(comp) > 1:
                        components.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            strongconnect(v)
    out = []
    for comp in components:
        members = set(comp)
        lines = [f"{mods[m].relative_to(ROOT)}:{line}: imports {t}" for m in comp for line, t in graph[m] if t in members]
        out.append("import cycle between " + ", ".join(comp) + ":\n  " + "\n  ".join(lines))
    return out


def test_no_package_imports_one_above_it():
    problems = upward_imports()
    assert not problems, "\n".join(problems)


def test_no_import_cycles():
    cycles = import_cycles()
    assert not cycles, "\n".join(cycles)


def test_the_checks_see_the_project():
    """The rules only mean something if the walk finds the modules and their imports."""
    mods, graph = _graph()
    assert {"contract", "inventory.loader", "collectors.scheduler", "dcim.cli"} <= set(mods)
    assert ("inventory.model" in {t for _, t in graph["inventory.loader"]})
    assert all(p.is_file() for p in mods.values())
