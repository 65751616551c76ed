"""The package's imports flow one way: every import of an xcloud module, at module level or
inside a function, goes to a lower layer or stays inside its own (sub)package, and no modules
import each other in a circle."""

from __future__ import annotations

import ast
from pathlib import Path

import xcloud

PKG = Path(xcloud.__file__).parent

#: Layers from the bottom up, by module-name prefix (the longest prefix decides).
LAYERS: list[tuple[str, ...]] = [
    ("xcloud._version", "xcloud.errors", "xcloud.bands", "xcloud.device"),
    ("xcloud.models",),
    ("xcloud.peers",),  # adapters to other maskers, registered as models
    ("xcloud.inference",),  # the array core: numpy / dask, no xarray
    ("xcloud.reflectance",),  # reading reflectance from xarray objects
    ("xcloud.masking", "xcloud.analysis", "xcloud.plot"),  # the xarray adapter
    ("xcloud.io", "xcloud.data"),  # STAC in, Zarr / COG / STAC out, the jobs that write them
    ("xcloud.accessor", "xcloud.cli", "xcloud"),  # what users touch (xcloud/__init__.py)
    ("xcloud.train",),  # on top: imported by nothing in the library
]
#: Imports that may run up, each with its reason.
ALLOWED_UP = {
    # the console script dispatches `xcloud train ...` to the training CLI, lazily
    ("xcloud.cli", "xcloud.train.cli"),
}


def _module(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    modules = {_module(p): p for p in PKG.rglob("*.py")}
    out: dict[str, set[str]] = {}
    for mod, path in modules.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for n in names:
                while n not in modules and "." in n:
                    n = n.rsplit(".", 1)[0]
                if n in modules and n != mod:
                    found.add(n)
        out[mod] = found
    return out


def _layer(mod: str) -> int:
    best, rank = -1, None
    for i, prefixes in enumerate(LAYERS):
        for p in prefixes:
            if (mod == p or mod.startswith(p + ".")) and len(p) > best:
                best, rank = len(p), i
    assert rank is not None, f"{mod} is in no layer: add it to LAYERS"
    return rank


def _package(mod: str) -> str:
    return mod.rsplit(".", 1)[0] if mod.count(".") >= 2 else mod


def test_every_module_has_a_layer():
    for mod in _imports():
        _layer(mod)


def test_no_import_runs_up_a_layer():
    up = []
    for mod, targets in _imports().items():
        for t in targets:
            if _layer(t) > _layer(mod) and (mod, t) not in ALLOWED_UP:
                up.append(f"{mod} (layer {_layer(mod)}) imports {t} (layer {_layer(t)})")
    assert not up, "\n".join(sorted(up))


def test_no_import_circle():
    graph = _imports()
    graph["xcloud"] = set()  # every module's parent package runs first: not a dependency
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        path.append(m)
        for t in sorted(graph.get(m, ())):
            if t == "xcloud" or t == _package(m):
                continue  # a package's __init__ re-exporting its own modules
            if state.get(t) == 1:
                raise AssertionError(" -> ".join(path[path.index(t) :] + [t]))
            if t not in state:
                visit(t)
        path.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_the_layer_test_can_fail():
    assert _layer("xcloud.models.builtin") < _layer("xcloud.inference.core")
    assert _layer("xcloud.train.cli") == len(LAYERS) - 1
