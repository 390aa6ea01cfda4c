"""Named, restartable build steps (FINN's build_dataflow, for SeedLM): the runner, not the steps.

    steps = [BuildStep("size", size_fn, inputs=lambda ctx: [ctx.board_file]), ...]
    run_build(steps, BuildContext(out=Path("OUT"), params={...}), first="generate", last="synth")

Each step is a small function ``run(ctx) -> dict`` that writes what it makes under
``ctx.step_dir(name)`` and returns its report body; the runner writes that body as
``OUT/<step>/report.json`` (core.report's provenance envelope, its inputs hashed) and keeps
``OUT/manifest.json``: per step its status (``done``, ``skipped``, ``failed``), when it
finished, how long it took, its parameters and the sha256 of every input file.

A step is skipped when the manifest says it is done with the same parameters and the same
input hashes and its report is still there: inputs are files (the board YAML, the checkpoint,
earlier steps' outputs), so a changed file, flag or upstream output reruns exactly what depends
on it. ``first`` (``--from``) reruns that step even if nothing changed and does not run the steps
before it (they must be done already); ``last`` (``--to``) stops after a step. A step that
raises stops the build: the manifest records the failure and the error names the step and the
command that restarts from it.

The step lists themselves are assembled where their code may be imported (the CLI layer: some
steps use the simulator, which sits above this layer).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from seedlm_fpga.core import progress
from seedlm_fpga.core.files import write_text_atomic
from seedlm_fpga.core.report import dumps, sha256_file, write_report
from seedlm_fpga.errors import UserError

MANIFEST = "manifest.json"
REPORT = "report.json"
STATUS_DONE, STATUS_SKIPPED, STATUS_FAILED = "done", "skipped", "failed"


@dataclass
class BuildContext:
    """What every step sees: the output folder and the build's parameters (JSON-able values)."""
    out: Path
    params: dict = field(default_factory=dict)
    #: how to rerun this build from a step (the error message names it); "{step}" is filled in
    restart_hint: str = "--from {step}"

    def step_dir(self, name: str) -> Path:
        path = self.out / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def report(self, name: str) -> dict:
        """An earlier step's report body (read from its report.json)."""
        path = self.out / name / REPORT
        if not path.is_file():
            raise UserError(f"{path}: missing: run step {name!r} first")
        return json.loads(path.read_text())


@dataclass(frozen=True)
class BuildStep:
    """One step: `run(ctx)` returns the report body; `inputs(ctx)` the files it depends on;
    `params(ctx)` the build parameters it depends on (a change reruns it)."""
    name: str
    run: Callable[[BuildContext], dict]
    inputs: Callable[[BuildContext], list[Path]] = lambda ctx: []
    params: Callable[[BuildContext], dict] = lambda ctx: {}
    doc: str = ""


def load_manifest(out: Path) -> dict:
    path = out / MANIFEST
    if not path.is_file():
        return {"steps": {}}
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError):
        return {"steps": {}}  # unreadable: every step reruns (the manifest is our own cache)
    return manifest if isinstance(manifest.get("steps"), dict) else {"steps": {}}


def _hashes(ctx: BuildContext, paths: list[Path]) -> dict[str, str]:
    """sha256 per input file, keyed "OUT/<relative>" for files inside OUT (so OUT can move)."""
    keyed = {}
    for p in map(Path, paths):
        try:
            keyed["OUT/" + p.resolve().relative_to(ctx.out.resolve()).as_posix()] = p
        except ValueError:
            keyed[str(p)] = p
    missing = [k for k, p in keyed.items() if not p.is_file()]
    if missing:
        raise UserError(f"missing input(s): {', '.join(missing)}")
    return {k: sha256_file(p) for k, p in keyed.items()}


def select(steps: list[BuildStep], first: str | None, last: str | None) -> list[BuildStep]:
    names = [s.name for s in steps]
    for flag, name in (("--from", first), ("--to", last)):
        if name is not None and name not in names:
            raise UserError(f"{flag} {name}: no such step (steps: {', '.join(names)})")
    lo = names.index(first) if first else 0
    hi = names.index(last) if last else len(names) - 1
    if lo > hi:
        raise UserError(f"--from {first} comes after --to {last} (steps: {', '.join(names)})")
    return steps[lo:hi + 1]


def run_build(steps: list[BuildStep], ctx: BuildContext, first: str | None = None,
              last: str | None = None) -> dict:
    """Run the selected steps in order (see the module docstring); returns the manifest."""
    chosen = select(steps, first, last)
    ctx.out.mkdir(parents=True, exist_ok=True)
    manifest = load_manifest(ctx.out)
    manifest["steps"] = {k: v for k, v in manifest["steps"].items() if k in {s.name for s in steps}}
    manifest["order"] = [s.name for s in steps]
    before = [s.name for s in steps[:steps.index(chosen[0])]]
    not_done = [n for n in before if manifest["steps"].get(n, {}).get("status") not in (STATUS_DONE, STATUS_SKIPPED)]
    if not_done:
        raise UserError(f"--from {chosen[0].name}: earlier step(s) {', '.join(not_done)} not done in {ctx.out}")
    for step in chosen:
        entry = _run_step(step, ctx, manifest["steps"].get(step.name), force=step.name == first)
        manifest["steps"][step.name] = entry
        write_text_atomic(ctx.out / MANIFEST, dumps(manifest))
        if entry["status"] == STATUS_FAILED:
            hint = ctx.restart_hint.format(step=step.name)
            raise UserError(f"step {step.name} failed: {entry['error']}; fix it and restart with {hint}")
    return manifest


def _run_step(step: BuildStep, ctx: BuildContext, previous: dict | None, force: bool) -> dict:
    params = step.params(ctx)
    inputs = list(step.inputs(ctx))
    try:
        hashes = _hashes(ctx, inputs)
    except UserError as exc:
        return {"status": STATUS_FAILED, "error": str(exc), "params": params}
    report = ctx.out / step.name / REPORT
    unchanged = (previous is not None and previous.get("status") in (STATUS_DONE, STATUS_SKIPPED)
                 and previous.get("inputs") == hashes and previous.get("params") == params and report.is_file())
    if unchanged and not force:
        progress.cached(f"step {step.name}", "inputs unchanged")
        return {**previous, "status": STATUS_SKIPPED}
    start = time.perf_counter()
    try:
        with progress.step(f"step {step.name}"):
            ctx.step_dir(step.name)
            body = step.run(ctx)
            write_report(report, body, inputs=inputs)
    except Exception as exc:  # noqa: BLE001 - any failure of a step is reported as that step's
        why = " ".join(str(exc).split()) or type(exc).__name__
        return {"status": STATUS_FAILED, "error": why, "params": params, "inputs": hashes,
                "seconds": round(time.perf_counter() - start, 2), "finished": _now()}
    return {"status": STATUS_DONE, "params": params, "inputs": hashes,
            "seconds": round(time.perf_counter() - start, 2), "finished": _now()}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
