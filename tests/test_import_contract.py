"""The import contract: which layer may import which, checked on every import statement.

Layers, bottom to top (a layer may import those below it, never those above or beside it):

    core        the numpy-only format core: presets, LFSR, block codec, images, integer GEMV,
                engine-shape rules (lanes, stages, latency), files, reports, text tables
    boards      board YAML and its schema (data only)
    compressor  seed search, checkpoint readers, the .seedlm container
    hdl         Amaranth components and Verilog generation
    flows       sizing and synthesis (boards + hdl)
    evaluation  forward pass, tokenizer, baselines, perplexity (uses compressor)
    sim         co-simulation, cycle model, projections (uses everything below it)
    cli         the command line, imported by nothing

Imports inside functions count too: a lazy import is still a dependency. `seedlm_fpga` itself
(__version__), `seedlm_fpga.errors` and the example data may be imported by every layer.
Static ast walk rather than import-linter: grimp discovers a package by walking its folder,
and ours maps several top-level folders (compressor/, hdl/, sim/, boards/) into one namespace.
"""
from __future__ import annotations

import ast
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ANYWHERE = {"seedlm_fpga", "seedlm_fpga.errors", "seedlm_fpga.examples"}
#: layer -> the layers it may import (besides itself and ANYWHERE).
ALLOWED = {
    "core": set(),
    "boards": {"core"},
    "compressor": {"core"},
    "hdl": {"core"},
    "flows": {"core", "boards", "hdl"},
    "evaluation": {"core", "compressor"},
    "sim": {"core", "boards", "compressor", "hdl", "flows"},
    "cli": {"core", "boards", "compressor", "hdl", "flows", "evaluation", "sim"},
}
#: Third-party packages a layer may import (stdlib is always allowed).
THIRD_PARTY = {
    "core": {"numpy"},
    "boards": {"numpy", "yaml", "pydantic"},
}
STDLIB = set(sys.stdlib_module_names)


def package_dirs() -> dict[str, Path]:
    """Import name -> folder, from pyproject's package-dir (the one place that maps them)."""
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    return {name: ROOT / folder for name, folder in cfg["package-dir"].items()}


def module_files() -> dict[str, Path]:
    """Every module of the distribution: dotted name -> file."""
    dirs = package_dirs()
    out = {}
    for pkg, folder in dirs.items():
        for path in folder.glob("*.py"):
            out[pkg if path.stem == "__init__" else f"{pkg}.{path.stem}"] = path
        for sub in folder.iterdir():  # subpackages that pyproject does not map separately
            name = f"{pkg}.{sub.name}"
            if sub.is_dir() and (sub / "__init__.py").is_file() and name not in dirs:
                for path in sub.glob("*.py"):
                    out[name if path.stem == "__init__" else f"{name}.{path.stem}"] = path
    return out


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "seedlm_fpga" and parts[1] in ALLOWED else None


def imports_of(source: str, module: str) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in `source`, at any depth."""
    package = module.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            found.append((node.lineno, target))
    return found


def violations(module: str, source: str) -> list[str]:
    """The contract's complaints about one module's imports."""
    layer = layer_of(module)
    if layer is None:
        return []
    bad = []
    for line, target in imports_of(source, module):
        top = target.split(".")[0]
        where = f"{module}:{line} imports {target}"
        if top == "seedlm_fpga":
            if any(target == a or target.startswith(a + ".") for a in ANYWHERE - {"seedlm_fpga"}) \
                    or target == "seedlm_fpga":
                continue
            other = layer_of(target)
            if other is not None and other != layer and other not in ALLOWED[layer]:
                bad.append(f"{where}: layer '{layer}' may not import layer '{other}'")
        elif layer in THIRD_PARTY and top not in STDLIB and top not in THIRD_PARTY[layer]:
            bad.append(f"{where}: layer '{layer}' may import only {sorted(THIRD_PARTY[layer])} "
                       f"beside the standard library")
    return bad


def test_every_module_belongs_to_a_layer():
    unplaced = [m for m in module_files() if layer_of(m) is None and m not in ANYWHERE]
    assert unplaced == []


def test_the_code_keeps_the_contract():
    bad = [v for m, path in sorted(module_files().items()) for v in violations(m, path.read_text())]
    assert bad == [], "\n".join(bad)


@pytest.mark.parametrize("module, source", [
    ("seedlm_fpga.core.reference", "import torch"),
    ("seedlm_fpga.core.lfsr", "def f():\n    from amaranth.hdl import Signal"),
    ("seedlm_fpga.core.engine_shape", "from seedlm_fpga.hdl.pipeline import adder_tree"),
    ("seedlm_fpga.boards.board", "from seedlm_fpga.flows.sizing import size_for_board"),
    ("seedlm_fpga.compressor.encoder", "from seedlm_fpga.sim import stimulus"),
    ("seedlm_fpga.hdl.generate", "from seedlm_fpga.compressor.container import read_container"),
    ("seedlm_fpga.sim.projection", "from seedlm_fpga.cli.project import format_table"),
    ("seedlm_fpga.evaluation.evaluate", "from ..sim import cycle_model"),
    ("seedlm_fpga.flows.synth", "import seedlm_fpga.sim.cosim_runner"),
])
def test_a_forbidden_import_is_caught(module, source):
    assert violations(module, source), f"{source!r} in {module} should break the contract"


@pytest.mark.parametrize("module, source", [
    ("seedlm_fpga.core.reference", "import numpy as np\nimport json"),
    ("seedlm_fpga.sim.projection", "from seedlm_fpga.flows.sizing import SLACK"),
    ("seedlm_fpga.hdl.lfsr", "from ..core.lfsr import default_taps\nfrom seedlm_fpga.errors import UserError"),
])
def test_an_allowed_import_passes(module, source):
    assert violations(module, source) == []
