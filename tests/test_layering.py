"""The house's layering, read from the imports of every module (those inside functions too), so that it cannot
rot silently:

- the core (``telemon``, except its composition root ``telemon.app`` and the ``python -m telemon`` entry point)
  imports no domain and no tool;
- a domain (``ingest``, ``alerts``, ``clinician_ui``, ``clinic``, ``patient_ui``) imports the core, its own modules, and only the public
  modules of another domain (``PUBLIC``); never the composition root or a tool;
- the tools (``tools``: the simulator and replay) are clients of the service: the core only;
- no two modules import each other, directly or through others.

Only the composition root assembles the domains (``telemon.app.domains``). ``bench`` and ``tests`` may import
anything: they measure and check the whole."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("telemon", "ingest", "alerts", "clinician_ui", "clinic", "patient_ui", "records", "tools")
DOMAINS = ("ingest", "alerts", "clinician_ui", "clinic", "patient_ui", "records")
COMPOSITION_ROOT = ("telemon.app", "telemon.__main__")
# What a domain offers the others: the guideline profiles, the alerts' severities, texts and evidence the dashboard
# shows and the actions it takes on them.
PUBLIC = {
    "alerts": {
        "alerts.profiles",
        "alerts.cohort",
        "alerts.actions",
        "alerts.messages",
        "alerts.severity",
        "alerts.evidence",
        "alerts.titration",  # the teams' titration protocol the settings page edits
        "alerts.dose_review",  # a dose review suggestion applied: one way for the dashboard and the API
    },
    "ingest": set[str](),
    "clinician_ui": {
        "clinician_ui.glycaemia",  # readings judged against her targets, as the logbook shows them
        # the printed report is the patient page on paper: the same SVG charts, drawn with the same words and numbers
        "clinician_ui.charts",
        "clinician_ui.i18n",
        # the records' dashboard pages (PDF, CSV, activity) are served under the clinician's session and templates
        "clinician_ui.web",
        "clinician_ui.sessions",
    },
    "clinic": {"clinic.messages"},  # the conversation with the patient: one way for her app and the dashboard
    "patient_ui": set[str](),
    "records": set[str](),
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))}


def _imports(name: str, path: Path, known: set[str]) -> Iterator[str]:
    """The project's modules ``name`` imports: ``import a.b``, ``from a import b`` (b a module or a name in a)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield from _known(alias.name, known)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                target = f"{base}.{alias.name}"
                yield target if target in known else from_known(base, known)


def from_known(name: str, known: set[str]) -> str:
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name


def _known(name: str, known: set[str]) -> Iterator[str]:
    found = from_known(name, known)
    if found:
        yield found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: {t for t in _imports(name, path, known) if t and t != name} for name, path in modules.items()}


def _top(name: str) -> str:
    return name.split(".")[0]


def _in(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _is_core(name: str) -> bool:
    return _top(name) == "telemon" and not _in(name, COMPOSITION_ROOT)


def test_the_core_imports_no_domain_no_tool_and_not_the_composition_root() -> None:
    wrong = sorted(
        f"{name} -> {target}"
        for name, targets in _graph().items()
        if _is_core(name)
        for target in targets
        if not _is_core(target) and _top(target) in PACKAGES
    )
    assert wrong == []


def test_a_domain_uses_only_the_core_and_the_public_modules_of_another() -> None:
    wrong = []
    for name, targets in _graph().items():
        domain = _top(name)
        if domain not in DOMAINS:
            continue
        for target in targets:
            other = _top(target)
            if _is_core(target) or other == domain:
                continue
            if other in DOMAINS and target in PUBLIC[other]:
                continue
            wrong.append(f"{name} -> {target}")
    assert sorted(wrong) == []


def test_the_tools_are_clients_of_the_core_only() -> None:
    wrong = sorted(
        f"{name} -> {target}"
        for name, targets in _graph().items()
        if _top(name) == "tools"
        for target in targets
        if _top(target) != "tools" and not _is_core(target)
    )
    assert wrong == []


def test_no_import_loop() -> None:
    graph = _graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    loops: list[list[str]] = []

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for target in sorted(graph.get(name, ())):
            if state.get(target) == 1:
                loops.append([*path[path.index(target) :], target] if target in path else [name, target])
            elif target not in state:
                visit(target, [*path, target])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert loops == []


def test_the_layering_test_reads_the_house() -> None:
    """The reader finds the imports it must judge (a check that a broken reader does not pass everything)."""
    graph = _graph()
    assert "telemon.db" in graph["ingest.service"]
    assert "alerts.domain" in graph["telemon.app.domains"]
    assert "telemon.topics" in graph["tools.simulator.clients"]
