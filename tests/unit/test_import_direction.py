"""design.md: model, protocol and codec (and the leaf gc_tuning) import nothing of ours (protocol
only its own parts); sdk and worker never import store or server; store imports only model (and
itself); server never imports sdk or worker."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "polos"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "polos":  # from polos import codec -> polos.codec
                found.update(f"polos.{alias.name}" for alias in node.names)
            else:
                found.add(node.module)
    return {name for name in found if name == "polos" or name.startswith("polos.")}


# polos/protocol.py re-exports the models of its sibling modules polos/protocol_*.py: together
# they are one layer, "protocol" (checked as a whole, like a package).
def _layer(module: str) -> str:
    parts = module.split(".")
    layer = parts[1] if len(parts) > 1 else ""
    return "protocol" if layer.startswith("protocol_") else layer


def _files(layer: str) -> list[Path]:
    target = ROOT / layer
    if target.is_dir():
        return sorted(target.rglob("*.py"))
    if layer == "protocol":
        return [ROOT / "protocol.py", *sorted(ROOT.glob("protocol_*.py"))]
    return [ROOT / f"{layer}.py"]


# layer -> the layers of ours it may import
ALLOWED: dict[str, set[str]] = {
    "model": set(),
    "protocol": {"protocol"},
    "codec": set(),
    "gc_tuning": set(),
    "store": {"model", "store"},
    "server": {"model", "protocol", "codec", "store", "server"},
    "sdk": {"model", "protocol", "codec", "sdk", "types", "worker"},
    "worker": {"model", "protocol", "codec", "gc_tuning", "sdk", "types", "worker"},
}


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layer_imports_only_what_it_may(layer: str) -> None:
    offenders = []
    for path in _files(layer):
        for module in _imports(path):
            if _layer(module) not in ALLOWED[layer]:
                offenders.append(f"{path.relative_to(ROOT.parent)} imports {module}")
    assert not offenders, "\n".join(offenders)


def test_every_package_has_an_init() -> None:
    missing = [
        str(d.relative_to(ROOT.parent))
        for d in [ROOT, *ROOT.rglob("*")]
        if d.is_dir() and any(d.glob("*.py")) and not (d / "__init__.py").exists()
    ]
    assert not missing
