"""The house keeps its layout: the engine's stages import downward only, nothing imports in a circle,
and the engine knows no specific source. Built from the source text (every import, at module level or
inside a function), so a lazy import cannot hide an arrow."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Lowest first. A module may import its own stage and the stages before it, never a later one. Stages
# that share a rank are siblings at the top and do not import each other.
STAGES: list[tuple[str, int]] = [
    ("sources.errors", 0), ("sources.registry", 0),  # the contract between the sources and the engine
    ("sources", 1),  # every source; sources.catalogue registers them all
    ("flows.core", 2),
    ("flows.templating", 3),
    ("flows.plan", 4),
    ("flows.gather", 5),
    ("flows.render", 6),
    ("flows.delivery", 7),
    ("flows.orchestrator", 8),
    ("flows.steps", 9),  # the heavy steps as Prefect tasks, and a sharded run's shards
    ("flows.send_rate", 9),  # a sharded run's send rate, shared by its workers
    ("flows.flow", 10),
    ("flows.operate", 11), ("flows.trigger", 11),
    ("flows.devtools", 12),
    ("flows", 0),  # the package itself: its docstring only
]
# What of sources/ the engine may import: the contract, and the catalogue that registers every source.
ENGINE_MAY_IMPORT_FROM_SOURCES = {"sources.errors", "sources.registry", "sources.catalogue"}


def stage_of(module: str) -> tuple[str, int]:
    """The most specific stage whose name is the module or a package above it."""
    for name, rank in sorted(STAGES, key=lambda stage: -len(stage[0])):
        if module == name or module.startswith(name + "."):
            return name, rank
    raise KeyError(module)


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_graph(root: Path, packages: tuple[str, ...] = ("flows", "sources")) -> dict[str, set[str]]:
    """module -> the project modules it imports (``from a.b import c`` names a.b.c when that is a module)."""
    files = {module_name(path, root): path for package in packages for path in (root / package).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    submodule = f"{node.module}.{alias.name}"
                    targets.add(submodule if submodule in files else node.module)
        graph[module] = {target for target in targets if target in files and target != module}
    return graph


def upward_arrows(graph: dict[str, set[str]]) -> list[str]:
    problems = []
    for module, targets in sorted(graph.items()):
        stage, rank = stage_of(module)
        for target in sorted(targets):
            target_stage, target_rank = stage_of(target)
            if module.startswith("flows") and target.startswith("sources") and \
                    target not in ENGINE_MAY_IMPORT_FROM_SOURCES:
                problems.append(f"{module} imports the specific source {target}: the engine knows sources only "
                                f"through {', '.join(sorted(ENGINE_MAY_IMPORT_FROM_SOURCES))}")
            elif target_rank > rank or (target_rank == rank and target_stage != stage and rank > 0):
                problems.append(f"{module} ({stage}) imports {target} ({target_stage}), a later stage")
    return problems


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
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

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


@pytest.fixture(scope="module")
def project_graph() -> dict[str, set[str]]:
    return import_graph(PROJECT_ROOT)


def test_every_module_belongs_to_a_stage(project_graph):
    for module in project_graph:
        stage_of(module)  # raises KeyError for a module outside every stage


def test_no_stage_imports_a_later_one_and_the_engine_knows_no_specific_source(project_graph):
    assert upward_arrows(project_graph) == []


def test_no_import_cycle(project_graph):
    assert cycles(project_graph) == []


def test_sources_never_import_the_engine(project_graph):
    assert [(module, sorted(t for t in targets if t.startswith("flows")))
            for module, targets in sorted(project_graph.items())
            if module.startswith("sources") and any(t.startswith("flows") for t in targets)] == []


def test_the_checks_catch_an_upward_arrow_a_cycle_and_a_specific_source(tmp_path):
    # A small tree with each kind of mistake: the checks must name all three.
    for relative, text in {
        "flows/__init__.py": "",
        "flows/core/__init__.py": "",
        "flows/core/config.py": "from flows.render.report import build_report\n",
        "flows/render/__init__.py": "",
        "flows/render/report.py": "def f():\n    from sources.ledger import books\n",
        "flows/plan/__init__.py": "",
        "flows/plan/a.py": "from flows.plan import b\n",
        "flows/plan/b.py": "import flows.plan.a\n",
        "sources/__init__.py": "",
        "sources/ledger/__init__.py": "",
        "sources/ledger/books.py": "",
    }.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text)
    graph = import_graph(tmp_path)
    problems = upward_arrows(graph)
    assert any("flows.core.config (flows.core) imports flows.render.report" in p for p in problems)
    assert any("flows.render.report imports the specific source sources.ledger.books" in p for p in problems)
    assert cycles(graph) == [["flows.plan.a", "flows.plan.b"]]


def test_no_module_over_450_lines():
    lengths = {path.relative_to(PROJECT_ROOT).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
               for package in ("flows", "sources") for path in (PROJECT_ROOT / package).rglob("*.py")}
    assert {path: lines for path, lines in lengths.items() if lines > 450} == {}
