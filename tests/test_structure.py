"""The package's shape, read from its source with `ast`: no import cycle, no module reaching
into another module's private names, a public API that does not move."""

from __future__ import annotations

import ast
from pathlib import Path

import keras_tflite

PACKAGE = Path(keras_tflite.__file__).parent


def _modules() -> dict[str, ast.Module]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = ast.parse(path.read_text(), str(path))
    return found


MODULES = _modules()


def _resolve(module: str, node: ast.ImportFrom) -> str | None:
    if node.level == 0:
        return node.module
    is_package = (PACKAGE / Path(*module.split(".")[1:]) / "__init__.py").exists()
    parts = module.split(".") if is_package else module.split(".")[:-1]
    parts = parts[: len(parts) - (node.level - 1)]
    return ".".join(parts + ([node.module] if node.module else []))


def _imports(module: str, tree: ast.Module) -> list[tuple[str, str | None]]:
    """(imported module, imported name or None) for every import, at any depth."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(module, node)
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                found.append((submodule, None) if submodule in MODULES else (source, alias.name))
    return [(m, n) for m, n in found if m and m.split(".")[0] == "keras_tflite"]


def _graph() -> dict[str, set[str]]:
    return {
        module: {target for target, _ in _imports(module, tree) if target != module}
        for module, tree in MODULES.items()
    }


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

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
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in graph:
        if node not in index:
            visit(node)
    return groups


def test_the_package_has_no_import_cycle():
    assert _cycles(_graph()) == []


def test_no_module_imports_another_modules_private_names():
    private = [
        f"{module} imports {name} from {source}"
        for module, tree in MODULES.items()
        for source, name in _imports(module, tree)
        if name is not None and name.startswith("_") and source != module
    ]
    assert private == []


def test_no_module_reaches_into_another_modules_private_attributes():
    reaches = []
    for module, tree in MODULES.items():
        aliases = {
            alias.asname or alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom)
            for alias in node.names
            if f"{_resolve(module, node)}.{alias.name}" in MODULES
        }
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
                and node.attr.startswith("_")
            ):
                reaches.append(f"{module}: {node.value.id}.{node.attr}")
    assert reaches == []


def test_the_public_api_is_what_the_readme_promises():
    assert sorted(keras_tflite.__all__) == sorted(
        [
            "Attempt",
            "ConversionError",
            "ConversionResult",
            "DEFAULT_NUM_SAMPLES",
            "MIN_RECOMMENDED_SAMPLES",
            "MicroModel",
            "QUANTIZATION_MODES",
            "QuantizedTensor",
            "STRATEGIES",
            "StreamingModel",
            "TARGETS",
            "TFLiteExportCallback",
            "TFLiteExportHook",
            "TFLiteModel",
            "Target",
            "convert",
            "convert_session",
            "prepare_qat",
        ]
    )
    for name in keras_tflite.__all__:
        assert getattr(keras_tflite, name) is not None
    assert callable(keras_tflite.convert)  # the function, not the module `conversion`


def test_the_callback_is_thin():
    path = PACKAGE / "callbacks" / "export_callback.py"
    assert len(path.read_text().splitlines()) <= 250


def test_the_documentation_points_only_at_files_that_exist():
    import re

    root = PACKAGE.parent
    missing = []
    for page in [root / "README.md", *sorted((root / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#\s]+)", page.read_text()):
            if "://" not in target and not (page.parent / target).exists():
                missing.append(f"{page.relative_to(root)} -> {target}")
    assert missing == []
