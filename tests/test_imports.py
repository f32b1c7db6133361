"""The project's import graph, function-level imports included: no cycle, and no production module
reaching into the development-only distribution (dev/: the local stack, the simulator)."""

import ast
from pathlib import Path

from conftest import ROOT

# Each source folder: the packages (or script folders) it holds.
SOURCES = {ROOT / "lib": ["fraud"], ROOT: ["dash_app", "emr", "jobs"],
           ROOT / "dev": ["fraud_devstack", "fraud_simulator"]}
# What only development and tests use: the embedded Kafka and PostgreSQL, the traffic generator.
DEV_ONLY = ("fraud_devstack", "fraud_simulator")


def files() -> dict[Path, Path]:
    """Every Python file of the project's code, with the folder its import names start from."""
    return {path: root for root, packages in SOURCES.items() for package in packages
            for path in sorted((root / package).rglob("*.py"))}


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_imports(path: Path, root: Path, modules: set[str]) -> set[str]:
    """The project modules ``path`` imports, at any depth of its code (functions included)."""
    found = set()
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def graph() -> dict[str, set[str]]:
    sources = files()
    modules = {module_name(p, root) for p, root in sources.items()}
    return {module_name(p, root): project_imports(p, root, modules) for p, root in sources.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_the_walker_finds_function_level_imports_and_cycles():
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(edges) == [["a", "b", "c"]]
    assert "fraud.config" in graph()["fraud.db"], "a module-level import"
    assert "fraud.secrets" in graph()["fraud.db"], "an import inside a function"
    assert "fraud_simulator.run" in graph()["fraud_simulator"], "the dev distribution is walked"


def test_no_import_cycle():
    assert cycles(graph()) == []


def test_production_code_does_not_import_the_dev_stack_or_the_simulator():
    reaching = {module: sorted(t for t in targets if t.startswith(DEV_ONLY))
                for module, targets in graph().items() if not module.startswith(DEV_ONLY)}
    assert {m: t for m, t in reaching.items() if t} == {}
