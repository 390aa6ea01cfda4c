"""Co-simulate the generated engines: build (cached), drive, compare bit for bit, count cycles.

    from seedlm_fpga.sim.cosim_runner import run_gemv
    r = run_gemv("seedlm-4", rows=64, cols=256, bus_bits=128, act_bits=8, gap=0.2)
    r.ok, r.cycles, r.weight_beats, r.act_beats, r.y, r.expected
    print(r.report())

`cycles` counts from the cycle the first activation beat is accepted to the cycle of the
last output transfer, both included: everything one GEMV costs (activation load, weight
beats, pipeline drain). `run_cases` runs many cases on one engine in one simulator
process, back to back without reset.
"""
from __future__ import annotations

import functools
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from seedlm_fpga.core.engine_shape import COSIM_MAX_COLS
from seedlm_fpga.core import progress
from seedlm_fpga.sim import cosim_build
from seedlm_fpga.sim.stimulus import BASELINE, ENGINES, GemvCase, gaussian_case, random_case

_DESIGNS: tempfile.TemporaryDirectory | None = None


@dataclass(frozen=True)
class Engine:
    """A Verilog GEMV engine with the format §10 ports, and what the testbench must know of it."""

    kind: str              # "seedlm-4" | "seedlm-3" | "baseline": which reference it follows
    sources: tuple[Path, ...]
    toplevel: str
    bus_bits: int
    act_bits: int
    acts_per_beat: int
    y_bits: int
    max_cols: int
    latency_cycles: int | None = None
    parameters: tuple[tuple[str, object], ...] = ()

    @property
    def weights_per_beat(self) -> int:
        """Baseline weights per beat (W/16): the unit of a baseline per-beat check."""
        return self.bus_bits // 16

    def build(self) -> cosim_build.SimBuild:
        return cosim_build.build(list(self.sources), self.toplevel, dict(self.parameters))


@functools.lru_cache(maxsize=1)
def _designs_dir() -> str:
    """Generated Verilog of this process (removed at exit; the Verilator builds are cached)."""
    global _DESIGNS
    _DESIGNS = tempfile.TemporaryDirectory(prefix="seedlm-designs-")
    return _DESIGNS.name


@functools.lru_cache(maxsize=None)
def generated_engine(kind: str, bus_bits: int, act_bits: int = 8,
                     max_cols: int = COSIM_MAX_COLS) -> Engine:
    """Generate the design with seedlm_fpga.hdl (once per process) and describe one engine.

    For "baseline" the SeedLM preset does not matter: seedlm-4 is used for the config.
    """
    if kind not in ENGINES:
        raise ValueError(f"unknown engine {kind!r} (choose from {', '.join(ENGINES)})")
    from seedlm_fpga.hdl.generate import DesignConfig, generate

    out = Path(tempfile.mkdtemp(prefix=f"{kind}-W{bus_bits}-A{act_bits}-", dir=_designs_dir()))
    preset = "seedlm-4" if kind == BASELINE else kind
    cfg = DesignConfig(preset=preset, bus_bits=bus_bits, act_bits=act_bits, max_cols=max_cols)  # checks first
    with progress.step(f"generating the {kind} Verilog (W={bus_bits}, A={act_bits}, max cols {max_cols})"):
        design = generate(cfg, out)
    d = design["baseline"] if kind == BASELINE else design
    return Engine(kind, (out / d["verilog"],), d["top"], bus_bits, d["act_bits"], d["acts_per_beat"],
                  d["y_bits"], d["max_cols"], d.get("latency_cycles"))


@dataclass
class CosimResult:
    """One GEMV run on the RTL, judged against the numpy reference."""

    label: str
    engine: str
    rows: int
    cols: int
    bus_bits: int
    act_bits: int
    gap: float
    ready_gap: float
    y: list[int]
    expected: list[int]
    cycles: int | None          # first activation beat accepted .. last output, inclusive
    act_beats: int              # activation beats sent (all were accepted if ok)
    weight_beats: int           # weight beats sent
    errors: list[str] = field(default_factory=list)  # protocol, count and tlast problems
    diagnosis: str | None = None  # per-block check of the first mismatching row
    sim_cycles: int = 0         # cycles of the whole simulator run (all cases)
    sim_wall_s: float = 0.0     # wall time of the whole simulator run

    @property
    def mismatched_rows(self) -> list[int]:
        return [r for r, (g, e) in enumerate(zip(self.y, self.expected)) if g != e]

    @property
    def ok(self) -> bool:
        return not self.errors and not self.mismatched_rows and len(self.y) == len(self.expected)

    def report(self) -> str:
        head = (f"{self.engine} {self.label}: rows={self.rows} cols={self.cols} W={self.bus_bits} "
                f"A={self.act_bits} gap={self.gap} ready_gap={self.ready_gap}")
        if self.ok:
            return (f"{head}: bit-exact, {self.cycles} cycles, {self.weight_beats} weight beats, "
                    f"{self.act_beats} activation beats")
        lines = [f"{head}: FAILED"] + [f"  {e}" for e in self.errors]
        bad = self.mismatched_rows
        for r in bad[:5]:
            lines.append(f"  row {r}: expected {self.expected[r]}, got {self.y[r]}")
        if len(bad) > 5:
            lines.append(f"  ... {len(bad)} of {self.rows} rows differ")
        if self.diagnosis:
            lines.append(f"  {self.diagnosis}")
        return "\n".join(lines)


def _max_cycles(n_beats: int, rows: int, gap: float, ready_gap: float) -> int:
    """A deadlock guard, far above any sane engine's time: 8x one beat per cycle, plus slack."""
    return int(8 * (n_beats + rows) / ((1 - gap) * (1 - ready_gap))) + 20000


def _check_args(gap: float, ready_gap: float) -> None:
    for name, v in (("gap", gap), ("ready gap", ready_gap)):
        if not 0 <= v < 1:
            raise ValueError(f"{name} must lie in [0, 1), got {v}")


def _check_cases(engine: Engine, cases: list[GemvCase]) -> None:
    for case in cases:
        if case.engine != engine.kind:
            raise ValueError(f"case {case.label!r} is for {case.engine}, the engine is {engine.kind}")
        if case.cols > engine.max_cols:
            raise ValueError(f"cols {case.cols} exceeds the engine's max cols {engine.max_cols}")


def _simulate(engine: Engine, cases: list[GemvCase], gap: float, ready_gap: float, seed: int,
              built: cosim_build.SimBuild | None = None):
    stim = {"bus_bits": engine.bus_bits, "gap": gap, "ready_gap": ready_gap, "seed": seed, "cases": []}
    files = {}
    _check_cases(engine, cases)
    for i, case in enumerate(cases):
        beats = case.act_beats(engine.act_bits, engine.acts_per_beat)
        files[f"w{i}.bin"] = case.image(engine.bus_bits)
        n_w = len(files[f"w{i}.bin"]) * 8 // engine.bus_bits
        stim["cases"].append({"cols": case.cols, "rows": case.rows, "act_beats": [hex(b) for b in beats],
                              "weights_file": f"w{i}.bin",
                              "max_cycles": _max_cycles(len(beats) + n_w, case.rows, gap, ready_gap)})
    return cosim_build.simulate(built or engine.build(), stim, files)


def _judge(engine: Engine, case: GemvCase, raw: dict, gap: float, ready_gap: float,
           sim: dict) -> CosimResult:
    rows = case.rows
    y = [int(v) for v in raw["y"]]
    errors = list(raw["errors"])
    if len(y) != rows:
        errors.append(f"expected {rows} outputs, got {len(y)}"
                      + (" (lost or missing outputs)" if len(y) < rows else " (extra or duplicated outputs)"))
    lasts = [i for i, last in enumerate(raw["y_last"]) if last]
    if lasts != [rows - 1] and len(y) >= rows:
        errors.append(f"tlast on outputs {lasts}, expected only on output {rows - 1} (the last row)")
    for what, sent, got in (("activation", raw["act_sent"], raw["act_accepted"]),
                            ("weight", raw["w_sent"], raw["w_accepted"])):
        if sent != got:
            errors.append(f"{got} of {sent} {what} beats accepted")
    cycles = None
    if raw["last_y_cycle"] is not None and raw["first_act_cycle"] is not None:
        cycles = raw["last_y_cycle"] - raw["first_act_cycle"] + 1
    return CosimResult(case.label, engine.kind, rows, case.cols, engine.bus_bits, engine.act_bits, gap,
                       ready_gap, y[:rows] if len(y) >= rows else y, case.expected(), cycles,
                       raw["act_sent"], raw["w_sent"], errors,
                       sim_cycles=sim["sim_cycles"], sim_wall_s=sim["wall_s"])


def _diagnose(engine: Engine, case: GemvCase, row: int, seed: int) -> str:
    """Re-run `row` one block (baseline: one beat) per output; name the first that differs."""
    iso = case.isolate_row(row, engine.weights_per_beat)
    raw = _simulate(engine, [iso], 0.0, 0.0, seed)["cases"][0]
    got = [int(v) for v in raw["y"]]
    want = iso.expected()
    unit = "beat" if engine.kind == BASELINE else "block"
    for j, e in enumerate(want):
        g = got[j] if j < len(got) else None
        if g != e:
            fields = case.block_fields(row, j, engine.weights_per_beat)
            return f"row {row}, first differing {unit} {j}: {fields}; its term expected {e}, got {g}"
    return f"row {row}: every {unit} alone matches; the error is in the row sum"


def run_cases(engine: Engine, cases: list[GemvCase], gap: float = 0.0, ready_gap: float = 0.0,
              seed: int = 0, diagnose: bool = True) -> list[CosimResult]:
    """Run `cases` back to back on `engine` in one simulation; judge each against the reference.

    `gap`: probability of an idle cycle before each activation and weight beat (memory
    throttle); `ready_gap`: probability that the output's tready is low in a cycle. With
    `diagnose`, the first row that differs (in the first failing case) is re-run block
    by block to name the first block that differs.
    """
    _check_args(gap, ready_gap)
    _check_cases(engine, cases)
    built = engine.build()  # before the simulation's step: a build announces itself
    what = cases[0].label if len(cases) == 1 else f"{len(cases)} cases"
    with progress.step(f"simulating {engine.kind} on {what}") as step:
        sim = _simulate(engine, cases, gap, ready_gap, seed, built)
        rate = f", {sim['sim_cycles'] / sim['wall_s']:,.0f} cycles/s" if sim.get("wall_s") else ""
        step.note(f"{sim['sim_cycles']:,} cycles{rate}")
    results = []
    for case, raw in zip(cases, sim["cases"]):
        results.append(_judge(engine, case, raw, gap, ready_gap, sim))
    for case in cases[len(results):]:  # after a timeout the testbench stops
        results.append(CosimResult(case.label, engine.kind, case.rows, case.cols, engine.bus_bits,
                                   engine.act_bits, gap, ready_gap, [], case.expected(), None, 0, 0,
                                   ["not run: an earlier case timed out"]))
    if diagnose:
        for case, res in zip(cases, results):
            if res.mismatched_rows and not any("timeout" in e for e in res.errors):
                res.diagnosis = _diagnose(engine, case, res.mismatched_rows[0], seed)
                break
    return results


def run_gemv(preset: str, rows: int, cols: int, bus_bits: int, act_bits: int = 8, gap: float = 0.0,
             ready_gap: float = 0.0, seed: int = 0, stimulus: str | GemvCase = "gaussian",
             max_cols: int | None = None) -> CosimResult:
    """One GEMV on the generated engine `preset` ("seedlm-4", "seedlm-3" or "baseline").

    `stimulus`: "gaussian" (compressed Gaussian weights), "random" (random fields) or a
    `GemvCase`. The design is generated for `max_cols` (default: COSIM_MAX_COLS, or cols if larger).
    """
    if isinstance(stimulus, GemvCase):
        case = stimulus
        rows, cols = case.rows, case.cols
    elif stimulus == "gaussian":
        case = gaussian_case(preset, rows, cols, act_bits, seed)
    elif stimulus == "random":
        case = random_case(preset, rows, cols, act_bits, seed)
    else:
        raise ValueError(f"unknown stimulus {stimulus!r} (choose from gaussian, random, or a GemvCase)")
    engine = generated_engine(preset, bus_bits, act_bits, max_cols or max(COSIM_MAX_COLS, cols))
    return run_cases(engine, [case], gap, ready_gap, seed)[0]
