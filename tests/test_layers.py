"""The package's folders are its layers, and imports only go down.

Read from the source (every import statement, those inside functions too, since a lazy import is
still a dependency): a module may import from its own folder or from a lower layer, never from a
higher one or a sibling layer; no module imports another's private (`_name`) objects; and there is
no import cycle between modules. The package's `__init__` only names lazy exports and is left out.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "chggen_plugins"

# bottom to top; layers on one line are peers that must not import each other
LAYERS = {
    "errors": 0, "lazy": 0, "allocator": 0,
    "contract": 1, "files": 1, "seeds": 1,
    "sampling": 2,
    "structures": 3,
    "evaluation": 4, "models": 4,
    "api": 5, "datasets": 5,
    "runs": 6,
    "applications": 7,
    "cli": 8,
}


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, package: Path = PACKAGE) -> list[tuple[str, list[str], int]]:
    """(imported module, names, line) for every chggen_plugins import in `path`, relative ones resolved."""
    here = module_name(path, package).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] == "chggen_plugins":
                found.append((target, [alias.name for alias in node.names], node.lineno))
        elif isinstance(node, ast.Import):
            found += [(alias.name, [], node.lineno) for alias in node.names
                      if alias.name.split(".")[0] == "chggen_plugins"]
    return found


def layer(module: str) -> str:
    return module.split(".")[1]


def sources() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p != PACKAGE / "__init__.py")


def test_every_folder_and_top_module_has_a_layer() -> None:
    tops = {p.stem if p.suffix == ".py" else p.name for p in PACKAGE.iterdir()
            if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").exists()}
    assert tops == set(LAYERS)


@pytest.mark.parametrize("path", sources(), ids=lambda p: module_name(p))
def test_imports_only_go_down(path: Path) -> None:
    source = module_name(path)
    for target, names, line in imports(path):
        if target == "chggen_plugins":  # `from chggen_plugins import x`: x is a layer or a lazy export
            targets = [f"chggen_plugins.{name}" for name in names]
        else:
            targets = [target]
        for target_module in targets:
            up, down = layer(source), layer(target_module)
            assert up == down or LAYERS[down] < LAYERS[up], (
                f"{path.name}:{line}: {source} ({up}, layer {LAYERS[up]}) imports {target_module} "
                f"({down}, layer {LAYERS[down]})")
        if target != source:
            private = [name for name in names if name.startswith("_") and not name.startswith("__")]
            assert not private, f"{path.name}:{line}: imports private {private} from {target}"


def test_no_import_cycle() -> None:
    graph: dict[str, set[str]] = {}
    modules = {module_name(p) for p in sources()}
    for path in sources():
        edges = set()
        for target, names, _ in imports(path):
            for candidate in [f"{target}.{name}" for name in names] + [target]:
                if candidate in modules:
                    edges.add(candidate)
                    break
        graph[module_name(path)] = edges - {module_name(path)}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycle = trail[trail.index(nxt):] + [nxt] if nxt in trail else [node, nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def test_the_check_catches_an_upward_import(tmp_path: Path) -> None:
    """The checker itself: a structures module importing the campaign is reported."""
    fake = tmp_path / "chggen_plugins" / "structures" / "bad.py"
    fake.parent.mkdir(parents=True)
    fake.write_text("from ..applications.campaign import Campaign\nfrom chggen_plugins.runs.shards import _x\n")
    found = imports(fake, tmp_path / "chggen_plugins")
    assert found[0][0] == "chggen_plugins.applications.campaign"
    assert LAYERS[layer(found[0][0])] > LAYERS["structures"]
    assert found[1][1] == ["_x"]
