"""The layout's promises (docs/architecture.md): no import circles among damoc's modules (type-checking
imports counted), and a `select` run loads nothing from selection/baseline.py."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"


def _imports(nodes) -> set[str]:
    """The damoc modules named by the module-level imports in `nodes`, `if TYPE_CHECKING:` ones included."""
    found: set[str] = set()
    for n in nodes:
        if isinstance(n, ast.If):
            found |= _imports(n.body)
        elif isinstance(n, ast.ImportFrom) and n.module and n.module.startswith("damoc"):
            found.add(n.module)
            found.update(f"{n.module}.{a.name}" for a in n.names)
        elif isinstance(n, ast.Import):
            found.update(a.name for a in n.names if a.name.startswith("damoc"))
    return found


def _graph() -> dict[str, set[str]]:
    mods = {".".join(p.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__"): p
            for p in SRC.rglob("*.py")}
    return {name: {m for m in _imports(ast.parse(path.read_text()).body) if m in mods and m != name}
            for name, path in mods.items()}


def test_no_module_level_import_circles():
    graph = _graph()
    state: dict[str, int] = {}

    def cycle_from(v: str, path: list[str]) -> list[str] | None:
        state[v] = 1
        for w in graph[v]:
            if state.get(w) == 1:
                return path[path.index(w):] + [w] if w in path else [v, w]
            if w not in state:
                found = cycle_from(w, path + [w])
                if found:
                    return found
        state[v] = 2
        return None

    for v in sorted(graph):
        if v not in state:
            found = cycle_from(v, [v])
            assert found is None, " -> ".join(found)


def test_a_select_run_imports_nothing_from_baseline():
    code = ("import sys; import damoc.selection.pipeline, damoc.cli.runs; "
            "print('damoc.selection.baseline' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
