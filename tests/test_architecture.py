"""The package's shape: no import cycle between modules of vfi/, and no module imports a layer above its own.

Every import counts: module level, inside functions and under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from pathlib import Path

VFI = Path(__file__).resolve().parent.parent / "vfi"

#: The layers the front ends (app and CLI) build on.
LIBRARY = {"vfi.errors", "vfi.io", "vfi.qwen", "vfi.backends", "vfi.interpolate", "vfi.quality", "vfi.modes"}
LIBRARY |= {"vfi.manifest", "vfi.run_spec", "vfi.distributed"}
#: What each part of vfi/ may import besides itself (a part: a subpackage, or a top-level module).
LAYERS = {
    "vfi": {"vfi.errors"},
    "vfi.errors": set(),
    "vfi.signals": set(),
    "vfi.io": {"vfi.errors"},
    "vfi.qwen": {"vfi.errors", "vfi.io"},
    "vfi.backends": {"vfi.errors", "vfi.io", "vfi.qwen"},
    "vfi.interpolate": {"vfi.errors", "vfi.backends"},
    "vfi.distributed": {"vfi.errors", "vfi.interpolate"},
    "vfi.quality": {"vfi.errors", "vfi.io", "vfi.backends", "vfi.interpolate", "vfi.distributed"},
    "vfi.modes": {"vfi.errors", "vfi.io", "vfi.backends", "vfi.interpolate", "vfi.quality", "vfi.distributed"},
    "vfi.manifest": {"vfi.errors", "vfi.io", "vfi.qwen", "vfi.backends", "vfi.interpolate", "vfi.modes"},
    "vfi.run_spec": {"vfi.errors", "vfi.qwen", "vfi.backends", "vfi.modes"},
    "vfi.testing": {"vfi.errors", "vfi.io", "vfi.qwen"},
    "vfi.training": {"vfi.errors", "vfi.io", "vfi.qwen", "vfi.backends", "vfi.quality", "vfi.modes"},
    "vfi.app": {"vfi.signals", *LIBRARY},
    "vfi.cli": {"vfi.signals", "vfi.testing", *LIBRARY},
    "vfi.__main__": {"vfi.cli"},
}


def _modules() -> dict[str, Path]:
    modules = {}
    for path in VFI.rglob("*.py"):
        parts = list(path.relative_to(VFI.parent).with_suffix("").parts)
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The vfi modules ``path`` imports, anywhere in it (``from P import m`` counts as the module ``P.m``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            while name not in modules and "." in name:
                name = name.rsplit(".", 1)[0]
            if name in modules:
                found.add(name)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, modules) - {name} for name, path in modules.items()}


def _part(module: str) -> str | None:
    """The entry of :data:`LAYERS` that ``module`` belongs to (None: a new part, missing from the table)."""
    parts = [part for part in LAYERS if module == part or (part != "vfi" and module.startswith(part + "."))]
    return parts[0] if parts else None


def test_every_part_of_vfi_is_in_the_layer_table() -> None:
    assert [module for module in _graph() if _part(module) is None] == []


def test_nothing_imports_upwards() -> None:
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in _graph().items()
        for target in targets
        if _part(target) != _part(module) and _part(target) not in LAYERS[_part(module)]
    )
    assert wrong == []


def test_no_import_cycle() -> None:
    graph = _graph()
    cycles, state = [], {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                cycles.append(" → ".join([*path[path.index(target) :], target]))
            elif target not in state:
                visit(target, [*path, target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []
