"""Co-simulate the memory-mapped kernels (format §11): build (cached), run starts, judge bit for bit.

    from seedlm_fpga.sim.kernel_runner import generated_kernel, kernel_case, run_kernel_cases
    k = generated_kernel("seedlm-4", bus_bits=128)
    case = kernel_case([gaussian_case("seedlm-4", 8, 200, 8, seed=s) for s in ...], descriptors=True)
    r = run_kernel_cases(k, [case], latency=120, gap=0.1, write_gap=0.2)[0]
    r.ok, r.cycles, r.y, r.expected

`cycles` is the CYCLES register: from the cycle the kernel takes ap_start to the cycle it sets
ap_done. The bench counts the same start on its own (CTRL write edge to interrupt edge,
`tb_cycles`); a result is ok only if the two agree (`tb_cycles - cycles == START_TO_IRQ_EDGES`),
every Y bit matches the numpy reference, the kernel kept to the burst and buffer rules, and
CTRL/ISR behaved (ap_done and ap_idle set, ap_done clear on read, interrupt cleared by ISR).
"""
from __future__ import annotations

import functools
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from seedlm_fpga.core import progress
from seedlm_fpga.core.engine_shape import AP_DONE, AP_IDLE, COSIM_MAX_COLS, DEFAULT_EXT_MAX_ROWS, \
    DEFAULT_MAX_DESCRIPTORS, DEFAULT_MEM_LATENCY
from seedlm_fpga.core.ext_stream import ext_problems, extension_stream
from seedlm_fpga.sim import cosim_build
from seedlm_fpga.sim.axi_memory import BASE_READ_LATENCY
from seedlm_fpga.sim.cosim_runner import _designs_dir
from seedlm_fpga.sim.kernel_host import KernelGemv, KernelJob, activation_image, plan_layout
from seedlm_fpga.sim.stimulus import BASELINE, ENGINES, GemvCase

#: Edges from the CTRL write that sets ap_start to the edge the interrupt rises, beyond CYCLES:
#: the write lands in CTRL at its edge, the kernel takes the start at the next one.
START_TO_IRQ_EDGES = 1
#: Buffers are placed from 2^32 on, so the high words of every 64-bit address register matter.
BASE_ADDRESS = 1 << 32


@dataclass(frozen=True)
class Kernel:
    """A Verilog kernel with the format §11 ports, and what the bench must know of it."""

    kind: str              # "seedlm-4" | "seedlm-3" | "baseline": which reference it follows
    sources: tuple[Path, ...]
    toplevel: str
    bus_bits: int
    act_bits: int
    acts_per_beat: int
    y_bits: int
    max_cols: int
    max_burst: int
    max_descriptors: int
    mem_latency: int       # the read latency it was generated to hide
    image: str = "beat"
    extensions: bool = False  # has the extension unit (format §11.3)
    ext_max_rows: int = 0

    def build(self) -> cosim_build.SimBuild:
        return cosim_build.build(list(self.sources), self.toplevel)


def read_latency(mem_latency: int) -> int:
    """format §11.4's L_r of the bench memory at `mem_latency` (sim/axi_memory.py's N)."""
    return mem_latency + BASE_READ_LATENCY


@functools.lru_cache(maxsize=None)
def _generated(preset: str, bus_bits: int, act_bits: int, max_cols: int, image: str, mem_latency: int,
               max_burst: int | None, max_descriptors: int, extensions: bool = False,
               ext_max_rows: int = DEFAULT_EXT_MAX_ROWS) -> tuple[Path, dict]:
    from seedlm_fpga.hdl.generate import DesignConfig, KernelParams, generate

    cfg = DesignConfig(preset=preset, bus_bits=bus_bits, act_bits=act_bits, max_cols=max_cols, image=image)
    params = KernelParams(mem_latency=mem_latency, max_burst=max_burst, max_descriptors=max_descriptors,
                          extensions=extensions, ext_max_rows=ext_max_rows)
    out = Path(tempfile.mkdtemp(prefix=f"kernel-{preset}-W{bus_bits}-A{act_bits}{'-ext' if extensions else ''}-",
                                dir=_designs_dir()))
    with progress.step(f"generating the {preset} and baseline kernels (W={bus_bits}, A={act_bits}, "
                       f"max cols {max_cols}, mem latency {mem_latency})"):
        return out, generate(cfg, out, kernel=params)


def generated_kernel(kind: str, bus_bits: int, act_bits: int = 8, max_cols: int = COSIM_MAX_COLS,
                     image: str = "beat", mem_latency: int = DEFAULT_MEM_LATENCY, max_burst: int | None = None,
                     max_descriptors: int = DEFAULT_MAX_DESCRIPTORS, preset: str = "seedlm-4",
                     extensions: bool = False, ext_max_rows: int = DEFAULT_EXT_MAX_ROWS) -> Kernel:
    """Generate both kernels with seedlm_fpga.hdl (once per process and parameters); describe one.

    `kind` is a SeedLM preset or "baseline" (then `preset` only picks the design it comes from).
    `extensions`: the SeedLM kernel gets the extension unit (Y buffer of `ext_max_rows` rows a half).
    """
    if kind not in ENGINES:
        raise ValueError(f"unknown kernel {kind!r} (choose from {', '.join(ENGINES)})")
    out, design = _generated(preset if kind == BASELINE else kind, bus_bits, act_bits, max_cols, image,
                             mem_latency, max_burst, max_descriptors, extensions, ext_max_rows)
    k = design["kernel"]
    which = "baseline" if kind == BASELINE else "seedlm"
    engine = design["baseline"] if kind == BASELINE else design
    return Kernel(kind, (out / k[which]["verilog"],), k[which]["top"], bus_bits, engine["act_bits"],
                  engine["acts_per_beat"], engine["y_bits"], engine["max_cols"], k["max_burst"],
                  k["max_descriptors"], k["mem_latency"], "beat" if kind == BASELINE else image,
                  extensions and kind != BASELINE, ext_max_rows)


@dataclass
class KernelCase:
    """One start: GEMVs sharing one activation vector (same cols)."""

    label: str
    gemvs: list[GemvCase]
    descriptors: bool = True

    @property
    def cols(self) -> int:
        return self.gemvs[0].cols


def kernel_case(gemvs: list[GemvCase], descriptors: bool = True, label: str | None = None) -> KernelCase:
    """Group GEMVs into one start; they must share cols and activations (format §11.3)."""
    first = gemvs[0]
    for g in gemvs[1:]:
        if g.engine != first.engine or g.cols != first.cols or not np.array_equal(g.acts, first.acts):
            raise ValueError(f"GEMV {g.label!r} does not share {first.label!r}'s engine, cols and activations")
    if not descriptors and len(gemvs) != 1:
        raise ValueError("several GEMVs in one start need the descriptor list")
    return KernelCase(label or "+".join(g.label for g in gemvs), list(gemvs), descriptors)


@dataclass
class KernelResult:
    label: str
    engine: str
    cols: int
    rows: list[int]
    latency: int
    gap: float
    write_gap: float
    y: list[list[int]]
    expected: list[list[int]]
    cycles: int | None          # the CYCLES register
    tb_cycles: int | None       # the bench's own count, CTRL write edge to interrupt edge
    errors: list[str] = field(default_factory=list)
    sim_cycles: int = 0
    sim_wall_s: float = 0.0

    @property
    def mismatches(self) -> list[tuple[int, int]]:
        """(GEMV, row) of every Y that differs."""
        return [(i, r) for i, (got, want) in enumerate(zip(self.y, self.expected))
                for r, (g, e) in enumerate(zip(got, want)) if g != e]

    @property
    def ok(self) -> bool:
        return not self.errors and not self.mismatches and len(self.y) == len(self.expected)

    def report(self) -> str:
        head = (f"{self.engine} kernel {self.label}: {len(self.rows)} GEMV(s), rows {self.rows}, cols {self.cols}, "
                f"latency {self.latency}, gap {self.gap}, write gap {self.write_gap}")
        if self.ok:
            return f"{head}: bit-exact, {self.cycles} cycles"
        lines = [f"{head}: FAILED"] + [f"  {e}" for e in self.errors]
        for i, r in self.mismatches[:5]:
            lines.append(f"  GEMV {i} row {r}: expected {self.expected[i][r]}, got {self.y[i][r]}")
        return "\n".join(lines)


def _act_image(case: GemvCase, kernel: Kernel) -> bytes:
    return activation_image(case.acts, kernel.act_bits, kernel.acts_per_beat, kernel.bus_bits)


def job_of(kernel: Kernel, case: KernelCase) -> KernelJob:
    image = kernel.image if kernel.kind != BASELINE else "beat"
    gemvs = tuple(KernelGemv(g.image(kernel.bus_bits, image), g.rows,
                             extension_stream(g.ext, (g.rows, g.cols)) if g.ext else b"")
                  for g in case.gemvs)
    return KernelJob(case.cols, _act_image(case.gemvs[0], kernel), gemvs, case.descriptors)


def _max_cycles(job: KernelJob, bus_bits: int, latency: int, gap: float, write_gap: float) -> int:
    """A deadlock guard far above any sane kernel's time: 8x one beat per cycle, plus slack."""
    beats = (len(job.acts) + sum(len(g.weights) for g in job.gemvs)) * 8 // bus_bits
    beats += sum(len(g.ext) for g in job.gemvs) // 4  # the extension unit: a 32-bit word a cycle (if it binds)
    rows = sum(g.rows for g in job.gemvs)
    return int(8 * (beats + rows) / ((1 - gap) * (1 - write_gap))) + 40 * latency * (len(job.gemvs) + 1) + 20000


def _check(kernel: Kernel, cases: list[KernelCase], latency: int, gap: float, write_gap: float) -> None:
    for name, v in (("gap", gap), ("write gap", write_gap)):
        if not 0 <= v < 1:
            raise ValueError(f"{name} must lie in [0, 1), got {v}")
    if not 0 <= latency <= 10_000:
        raise ValueError(f"memory latency must lie in 0..10000 cycles, got {latency}")
    for case in cases:
        for g in case.gemvs:
            if g.engine != kernel.kind:
                raise ValueError(f"case {case.label!r} is for {g.engine}, the kernel is {kernel.kind}")
        if case.cols > kernel.max_cols:
            raise ValueError(f"cols {case.cols} exceeds the kernel's max cols {kernel.max_cols}")
        if any(g.ext for g in case.gemvs) and not kernel.extensions:
            raise ValueError(f"case {case.label!r} has extension parts; the kernel has no extension unit")
        for g in case.gemvs:
            problems = ext_problems(g.ext, (g.rows, g.cols), kernel.act_bits, kernel.y_bits) if g.ext else []
            if problems:
                raise ValueError(f"case {case.label!r}: {'; '.join(problems)}")
        if any(g.ext for g in case.gemvs) and max(g.rows for g in case.gemvs) > kernel.ext_max_rows:
            raise ValueError(f"case {case.label!r}: more rows than the extension unit's {kernel.ext_max_rows}")
        if len(case.gemvs) > kernel.max_descriptors:
            raise ValueError(f"{len(case.gemvs)} GEMVs, the kernel takes at most {kernel.max_descriptors}")


def _judge(case: KernelCase, raw: dict, res: KernelResult) -> None:
    errors = res.errors
    errors += raw["errors"] + raw["memory_errors"]
    if raw["timeout"]:
        return
    if res.tb_cycles is None:
        errors.append("the bench saw no start write or no interrupt")
    elif res.cycles is not None and res.tb_cycles - res.cycles != START_TO_IRQ_EDGES:
        errors.append(f"CYCLES register {res.cycles}, the bench counted {res.tb_cycles} edges from the start "
                      f"write to the interrupt (expected CYCLES + {START_TO_IRQ_EDGES})")
    ctrl, again = raw["ctrl_after_done"], raw["ctrl_read_again"]
    if not ctrl & AP_DONE or not ctrl & AP_IDLE:
        errors.append(f"CTRL after the interrupt is {ctrl:#x}: ap_done and ap_idle must be set")
    if again & AP_DONE:
        errors.append(f"CTRL read again is {again:#x}: ap_done must clear on read")
    if not raw["irq_cleared"]:
        errors.append("interrupt still high after writing ISR done")
    for i, (got, g) in enumerate(zip(res.y, case.gemvs)):
        if len(got) != g.rows:
            errors.append(f"GEMV {i}: {len(got)} of {g.rows} Y read back")


def run_kernel_cases(kernel: Kernel, cases: list[KernelCase], latency: int = 0, gap: float = 0.0,
                     write_gap: float = 0.0, seed: int = 0, interrupt: bool = True,
                     skew: int | None = None) -> list[KernelResult]:
    """Run `cases` (one start each) back to back on `kernel` in one simulation; judge each.

    `latency`: the memory's read latency in cycles; `gap`: probability of an R pause per cycle
    (memory throttle); `write_gap`: probability of a W/B pause per cycle (output back-pressure);
    `interrupt` False makes the host poll CTRL; `skew` bytes before each image (default one
    beat, so images start off 4 KB boundaries).
    """
    _check(kernel, cases, latency, gap, write_gap)
    skew = kernel.bus_bits // 8 if skew is None else skew
    files: dict[str, bytes] = {}
    stim_cases = []
    span = 0
    for n, case in enumerate(cases):
        job = job_of(kernel, case)
        span = max(span, plan_layout(job, kernel.bus_bits, 0, skew).end)
        files[f"a{n}.bin"] = job.acts
        gemvs = []
        for i, g in enumerate(job.gemvs):
            files[f"w{n}.{i}.bin"] = g.weights
            gemvs.append({"weights_file": f"w{n}.{i}.bin", "rows": g.rows})
            if g.ext:
                files[f"e{n}.{i}.bin"] = g.ext
                gemvs[-1]["ext_file"] = f"e{n}.{i}.bin"
        stim_cases.append({"cols": case.cols, "acts_file": f"a{n}.bin", "descriptors": case.descriptors,
                           "gemvs": gemvs,
                           "max_cycles": _max_cycles(job, kernel.bus_bits, latency, gap, write_gap)})
    mem_bytes = 1 << max(16, (span - 1).bit_length())
    stim = {"bus_bits": kernel.bus_bits, "latency": latency, "gap": gap, "write_gap": write_gap, "seed": seed,
            "interrupt": interrupt, "mem_bytes": mem_bytes, "base": BASE_ADDRESS, "skew": skew,
            "max_cols": kernel.max_cols, "max_descriptors": kernel.max_descriptors, "max_burst": kernel.max_burst,
            "cases": stim_cases}
    built = kernel.build()
    what = cases[0].label if len(cases) == 1 else f"{len(cases)} starts"
    with progress.step(f"simulating the {kernel.kind} kernel on {what} (memory latency {latency})") as step:
        sim = cosim_build.simulate(built, stim, files, test_module=cosim_build.KERNEL_TB_MODULE)
        rate = f", {sim['sim_cycles'] / sim['wall_s']:,.0f} cycles/s" if sim.get("wall_s") else ""
        step.note(f"{sim['sim_cycles']:,} cycles{rate}")
    results = []
    for n, case in enumerate(cases):
        rows = [g.rows for g in case.gemvs]
        expected = [g.expected() for g in case.gemvs]
        res = KernelResult(case.label, kernel.kind, case.cols, rows, latency, gap, write_gap, [], expected, None,
                           None, sim_cycles=sim["sim_cycles"], sim_wall_s=sim["wall_s"])
        if n >= len(sim["cases"]):
            res.errors.append("not run: an earlier start timed out")
        else:
            raw = sim["cases"][n]
            res.y = [[int(v) for v in ys] for ys in raw["y"]]
            res.cycles, res.tb_cycles = raw["cycles_register"], raw["tb_cycles"]
            _judge(case, raw, res)
        results.append(res)
    return results
