"""How the modules depend on each other: no import cycles (between modules, or between the
sub-packages of k2m_core), inference without training code, one TOML reader, and a CLI that uses
only the core's public names. (That `k2m --help` imports no torch is tested in test_cli.py.)"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _modules(package: str) -> dict[str, Path]:
    out = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imports(name: str, path: Path) -> list[tuple[str, str | None]]:
    """(module, imported name or None) of every import in the file, at any depth (lazy imports count)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                base = ".".join(here[:len(here) - node.level + 1] + ([base] if base else []))
            found += [(base, alias.name) for alias in node.names]
    return found


def import_graph(package: str = "k2m_core") -> dict[str, set[str]]:
    """Module → the modules of ``package`` it imports."""
    modules = _modules(package)

    def resolve(target: str) -> str | None:
        while target and target not in modules:
            target = target.rpartition(".")[0]
        return target or None

    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges = set()
        for module, imported in _imports(name, path):
            target = resolve(f"{module}.{imported}" if imported and f"{module}.{imported}" in modules else module)
            if module.split(".")[0] == package and target and target != name:
                edges.add(target)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return out


def packages(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The same graph between k2m_core's sub-packages (k2m_core.train, k2m_core.eval, …)."""
    def top(name: str) -> str:
        return ".".join(name.split(".")[:2])

    out: dict[str, set[str]] = {}
    for name, edges in graph.items():
        out.setdefault(top(name), set()).update(top(e) for e in edges if top(e) != top(name))
    return out


def test_the_cycle_finder_finds_cycles():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_between_modules_or_subpackages():
    graph = import_graph()
    assert "k2m_core.loading" in graph and graph["k2m_core.generate"]
    assert cycles(graph) == []
    assert cycles(packages(graph)) == []


def test_inference_imports_no_training_code():
    graph = import_graph()
    reached, todo = set(), ["k2m_core.generate", "k2m_core.loading", "k2m_core.eval.evaluator", "k2m_core.eval.t2m"]
    while todo:
        name = todo.pop()
        if name not in reached:
            reached.add(name)
            todo += graph[name]
    assert not [name for name in reached if name.startswith("k2m_core.train")]


@pytest.mark.parametrize("package", ["k2m_core", "k2m_cli", "tests", "benchmarks", "examples"])
def test_one_toml_reader(package):
    """tomllib exists from Python 3.11 on; only k2m_core.config imports it (with the tomli fallback)."""
    for name, path in _modules(package).items():
        if name != "k2m_core.config":
            assert not [m for m, _ in _imports(name, path) if m in ("tomllib", "tomli")], path


def test_the_cli_uses_only_public_names_of_the_core():
    for name, path in _modules("k2m_cli").items():
        private = [f"{m}.{n}" for m, n in _imports(name, path) if m.startswith("k2m_core") and n and n.startswith("_")
                   and not n.startswith("__")]
        assert not private, (path, private)

