"""The layout as a rule, read from the source with `ast` (nothing is imported): one package per stage, each importing
only what sits below it, with no import cycle and every project import at module top.

Layers, bottom to top: core, the Hub (client and server apart), data, metrics, models, then the stages in pipeline
order (sft, reward, synthetic, evaluation, demo) and the inference server. A module may import its own package and
anything in a lower layer; the thin entry points (`scripts/`, `evaluation/`, `spaces/`, `benchmarks/`) sit above all.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from dialoghub.core.paths import REPO_ROOT

LAYERS = [
    ["dialoghub.core"],
    ["dialoghub.hub.client"],
    ["dialoghub.hub.server"],
    ["dialoghub.data"],
    ["dialoghub.metrics"],
    ["dialoghub.models"],
    ["dialoghub.sft"],
    ["dialoghub.reward"],
    ["dialoghub.synthetic"],
    ["dialoghub.evaluation"],
    ["dialoghub.demo", "dialoghub.inference"],
]
# The Hub server serves bytes over git: it imports nothing of the library but core.
HUB_SERVER_MAY_IMPORT = {"dialoghub.core", "dialoghub.hub.server"}
# Package roots, and `python -m dialoghub.hub serve`: the server's command line, which asks the client side whether a
# Hub already answers before it starts one (an entry point, above both).
OUTSIDE_LAYERS = {"dialoghub", "dialoghub.hub", "dialoghub.hub.__main__"}
ENTRY_POINT_FOLDERS = ("scripts", "evaluation", "spaces", "benchmarks")
FIRST_PARTY = ("dialoghub",)


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def library_files() -> list[Path]:
    return sorted((REPO_ROOT / "dialoghub").rglob("*.py"))


def entry_point_files() -> list[Path]:
    return sorted(path for folder in ENTRY_POINT_FOLDERS for path in (REPO_ROOT / folder).rglob("*.py"))


def project_imports(path: Path) -> list[tuple[str, int, bool]]:
    """(imported project module, line, at module top) for every import of a `dialoghub` module in `path`; `from
    package import name` counts as the submodule when `name` is one."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    top_level = {id(node) for node in tree.body}
    for node in tree.body:  # imports under `if __name__ == "__main__"` or `try` at module level are still top
        if isinstance(node, (ast.If, ast.Try)):
            top_level |= {id(child) for child in ast.walk(node)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = []
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                is_module = any(
                    (REPO_ROOT / Path(*candidate.split("."))).with_suffix(".py").is_file()
                    or (REPO_ROOT / Path(*candidate.split(".")) / "__init__.py").is_file()
                    for _ in [0]
                )
                names.append(candidate if is_module else node.module)
        else:
            continue
        for name in names:
            if name.split(".")[0] in FIRST_PARTY:
                found.append((name, node.lineno, id(node) in top_level))
    return found


def layer_of(module: str) -> int | None:
    for index, packages in enumerate(LAYERS):
        if any(module == package or module.startswith(f"{package}.") for package in packages):
            return index
    return None


def package_of(module: str) -> str | None:
    layer = layer_of(module)
    if layer is None:
        return None
    return next(package for package in LAYERS[layer] if module == package or module.startswith(f"{package}."))


@pytest.mark.parametrize("path", library_files() + entry_point_files(), ids=lambda path: module_name(path))
def test_project_imports_are_at_module_top(path):
    local = sorted({f"line {line}: {name}" for name, line, at_top in project_imports(path) if not at_top})
    assert not local, f"{path.relative_to(REPO_ROOT)} imports project modules inside functions: {local}"


def test_every_library_module_sits_in_a_layer():
    outside = [
        module_name(path)
        for path in library_files()
        if layer_of(module_name(path)) is None and module_name(path) not in OUTSIDE_LAYERS
    ]
    assert not outside, f"modules in no layer: {outside}"


def test_each_module_imports_only_its_own_package_or_lower_layers():
    wrong = []
    for path in library_files():
        importer = module_name(path)
        layer = layer_of(importer)
        if layer is None:
            continue
        for imported, line, _ in project_imports(path):
            target = layer_of(imported)
            if target is None:
                if imported not in ("dialoghub", "dialoghub.hub") or importer.startswith("dialoghub.hub.server"):
                    wrong.append(f"{importer}:{line} -> {imported} (in no layer)")
                continue
            same_package = package_of(imported) == package_of(importer)
            if target > layer or (target == layer and not same_package):
                wrong.append(f"{importer}:{line} -> {imported}")
            if importer.startswith("dialoghub.hub.server") and package_of(imported) not in HUB_SERVER_MAY_IMPORT:
                wrong.append(f"{importer}:{line} -> {imported} (the Hub server imports only core)")
    assert not wrong, "imports that go up or sideways:\n" + "\n".join(wrong)


def test_no_import_cycle():
    graph = {module_name(path): set() for path in library_files()}
    for path in library_files():
        for imported, _, _ in project_imports(path):
            target = imported if imported in graph else imported.rpartition(".")[0]
            if target in graph and target != module_name(path):
                graph[module_name(path)].add(target)
    visiting, done, cycles = set(), set(), []

    def visit(module: str, trail: list[str]) -> None:
        if module in done:
            return
        if module in visiting:
            cycles.append(" -> ".join(trail[trail.index(module) :] + [module]))
            return
        visiting.add(module)
        for target in sorted(graph[module]):
            visit(target, [*trail, module])
        visiting.discard(module)
        done.add(module)

    for module in sorted(graph):
        visit(module, [])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_rules_catch_what_they_forbid(tmp_path, monkeypatch):
    """The checks above fail on a local import, an upward import and a cycle (so they can fail at all)."""
    package = tmp_path / "dialoghub"
    (package / "core").mkdir(parents=True)
    (package / "models").mkdir()
    (package / "__init__.py").write_text("")
    (package / "core" / "__init__.py").write_text("")
    (package / "models" / "__init__.py").write_text("")
    (package / "core" / "a.py").write_text("from dialoghub.models import b\n")
    (package / "models" / "b.py").write_text("def f():\n    from dialoghub.core import a\n")
    monkeypatch.setitem(globals(), "REPO_ROOT", tmp_path)
    imports_b = project_imports(package / "models" / "b.py")
    assert imports_b == [("dialoghub.core.a", 2, False)]
    with pytest.raises(AssertionError, match="imports that go up"):
        test_each_module_imports_only_its_own_package_or_lower_layers()
    with pytest.raises(AssertionError, match="import cycles"):
        test_no_import_cycle()
