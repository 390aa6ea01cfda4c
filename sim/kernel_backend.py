"""`seedlm-fpga run --engine verilator`: the format §11 kernels in Verilator, every Y checked.

Two long-lived simulators, one per kernel (SeedLM and 16-bit baseline), each started once and fed
one start per request through sim/kernel_serve_tb.py (no rebuild or restart per GEMV). Every
layer's weight image (format §5.3 / §7) is written into the run folder once; a start writes its
activation image (format §11.3) and asks the kernel to run its GEMVs with a descriptor list.
`CheckedKernels` runs each start on the reference backend too and compares every Y, SeedLM and
baseline, bit for bit: the first difference raises `KernelMismatch` with a diagnosis (layer, row,
expected and actual Y, the row's block fields), so the run's text is the kernels' own.
"""
from __future__ import annotations

import hashlib
import json
import os
import select
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seedlm_fpga.core import progress
from seedlm_fpga.core import reference as ref
from seedlm_fpga.core.ext_stream import extension_stream
from seedlm_fpga.sim import cosim_build
from seedlm_fpga.sim.kernel_host import DESCRIPTOR_BYTES, WORD_BYTES as Y_WORD_BYTES, activation_image
from seedlm_fpga.sim.kernel_runner import START_TO_IRQ_EDGES, Kernel, generated_kernel

SERVE_TB_MODULE = "seedlm_fpga.sim.kernel_serve_tb"
#: Seconds to wait for a simulator to open its request FIFO (first start of cocotb + Verilator).
STARTUP_TIMEOUT_S = 300
#: Cycles a start may take before the bench gives up: far above any stories260K-sized start.
MAX_START_CYCLES = 1 << 22


class KernelMismatch(Exception):
    """A kernel's Y differs from the reference's; the message is the diagnosis."""


@dataclass(frozen=True)
class KernelDesign:
    """The kernels a run simulates: one design (format §10/§11 parameters) and the memory's latency."""

    preset: str
    bus_bits: int
    max_cols: int
    mem_latency: int          # read latency of the simulated memory, cycles; the kernels are sized for it
    max_descriptors: int = 16
    ext_max_rows: int = 0     # > 0: the SeedLM kernel has the extension unit (format §11.3), rows a half

    def kernel(self, kind: str) -> Kernel:
        """The generated `kind` kernel ("seedlm" or "baseline") of this design (sim/kernel_runner.py)."""
        ext = {"extensions": True, "ext_max_rows": self.ext_max_rows} if self.ext_max_rows else {}
        return generated_kernel(self.preset if kind == "seedlm" else "baseline", self.bus_bits, 8, self.max_cols,
                                mem_latency=self.mem_latency, max_descriptors=self.max_descriptors,
                                preset=self.preset, **ext)


class KernelServer:
    """One simulator process running one kernel, serving starts until `close`."""

    def __init__(self, kind: str, design: KernelDesign, kernel: Kernel, sim: cosim_build.SimBuild,
                 images: dict[str, bytes], mem_bytes: int):
        self.kind, self.design, self.sim = kind, design, sim
        self.dir = Path(tempfile.mkdtemp(prefix=f"seedlm-run-{kind}-"))
        self.n = 0
        req, resp = self.dir / "requests", self.dir / "responses"
        os.mkfifo(req)
        os.mkfifo(resp)
        self.acts_per_beat, self.act_bits = kernel.acts_per_beat, kernel.act_bits
        stim = {"bus_bits": design.bus_bits, "latency": design.mem_latency, "mem_bytes": mem_bytes,
                "max_cols": kernel.max_cols, "max_descriptors": kernel.max_descriptors, "max_burst": kernel.max_burst,
                "requests": str(req), "responses": str(resp)}
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._simulate, args=(stim, images), daemon=True)
        self.thread.start()
        self.requests = self._open(req, os.O_WRONLY)
        self.responses = os.fdopen(self._open(resp, os.O_RDONLY), "r")

    def _simulate(self, stim, images):
        try:
            cosim_build.simulate(self.sim, stim, images, run_dir=self.dir, test_module=SERVE_TB_MODULE)
        except BaseException as exc:  # reported by the next request
            self.error = exc

    def _open(self, path: Path, mode: int) -> int:
        """Open a FIFO end without hanging when the simulator died before opening its end."""
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            try:
                fd = os.open(path, mode | os.O_NONBLOCK)
                os.set_blocking(fd, True)
                return fd
            except OSError:  # ENXIO: no reader on the FIFO yet
                pass
            self._check_alive()
            if time.monotonic() > deadline:
                raise cosim_build.CosimError(f"the {self.kind} kernel's simulator did not start in {STARTUP_TIMEOUT_S} s")
            time.sleep(0.05)

    def _check_alive(self):
        if not self.thread.is_alive():
            raise cosim_build.CosimError(f"the {self.kind} kernel's simulator stopped: {self.error}")

    def submit(self, cols: int, acts, gemvs: list[tuple[str, int, str | None]]) -> None:
        """Ask for one start: `gemvs` are (weight image file, rows, extension stream file or None);
        `collect` returns its result."""
        name = f"acts.{self.n}.bin"
        (self.dir / name).write_bytes(activation_image(acts, self.act_bits, self.acts_per_beat, self.design.bus_bits))
        request = {"cols": int(cols), "acts_file": name, "descriptors": True, "max_cycles": MAX_START_CYCLES,
                   "gemvs": [{"weights_file": f, "rows": int(r), **({"ext_file": e} if e else {})}
                             for f, r, e in gemvs]}
        os.write(self.requests, (json.dumps(request) + "\n").encode())

    def collect(self) -> dict:
        """The bench's raw result of the start last submitted (kernel_tb's result fields)."""
        while not select.select([self.responses], [], [], 1.0)[0]:
            self._check_alive()
        line = self.responses.readline()
        if not line:
            self._check_alive()
            raise cosim_build.CosimError(f"the {self.kind} kernel's simulator closed its responses")
        (self.dir / f"acts.{self.n}.bin").unlink()
        self.n += 1
        return json.loads(line)

    def close(self) -> None:
        try:
            os.write(self.requests, b"\n")
            os.close(self.requests)
        except OSError:
            pass
        self.thread.join(timeout=60)
        self.responses.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class VerilatorKernels:
    """Both kernels of one design in Verilator, serving the starts of a decode run."""

    name = "verilator"

    def __init__(self, layers: dict[str, ref.EncodedTensor], int16: dict[str, np.ndarray], design: KernelDesign,
                 extensions: dict | None = None):
        self.design = design
        W = design.bus_bits
        seed_images = {f"{n}.seedlm.bin": ref.memory_image(e.seeds, e.x, e.q, e.preset, W) for n, e in layers.items()}
        # format §5.6 streams of the layers with parts, beside their images
        self.ext_files = {n: f"{n}.ext.bin" for n, e in (extensions or {}).items() if e}
        seed_images.update({self.ext_files[n]: extension_stream(extensions[n], layers[n].shape)
                            for n in self.ext_files})
        base_images = {f"{n}.baseline.bin": ref.baseline_image(w, W) for n, w in int16.items()}
        kernels = {kind: design.kernel(kind) for kind in ("seedlm", "baseline")}
        sims = {kind: k.build() for kind, k in kernels.items()}
        self.servers = {}
        try:
            with progress.step("starting the SeedLM and baseline kernels' simulators"):
                for kind, images in (("seedlm", seed_images), ("baseline", base_images)):
                    self.servers[kind] = KernelServer(kind, design, kernels[kind], sims[kind], images,
                                                      _memory_bytes(images, design))
        except BaseException:
            self.close()
            raise

    def run(self, cols: int, acts, names, rows) -> dict[str, tuple[list[np.ndarray], int]]:
        """One start on both kernels, simulated side by side: kind -> (Y per GEMV, CYCLES register)."""
        for kind, server in self.servers.items():
            server.submit(cols, acts, [(f"{n}.{kind}.bin", r, self.ext_files.get(n) if kind == "seedlm" else None)
                                       for n, r in zip(names, rows)])
        out = {}
        for kind, server in self.servers.items():
            raw = server.collect()
            problems = raw["errors"] + raw["memory_errors"]
            if not raw["timeout"] and raw["tb_cycles"] != raw["cycles_register"] + START_TO_IRQ_EDGES:
                problems.append(f"CYCLES register {raw['cycles_register']}, the bench counted {raw['tb_cycles']} "
                                f"edges from the start write to the interrupt")
            if raw["timeout"] or problems:
                raise KernelMismatch(f"{kind} kernel, start {', '.join(names)}: {'; '.join(problems) or 'timeout'}")
            out[kind] = ([np.array([int(v) for v in y], dtype=np.int64) for y in raw["y"]], int(raw["cycles_register"]))
        return out

    def close(self) -> None:
        for server in self.servers.values():
            server.close()


def _memory_bytes(images: dict[str, bytes], design: KernelDesign) -> int:
    """A power of two that holds the largest start's buffers (kernel_host.plan_layout packs them):
    the activation image, the descriptors, and per GEMV its image and its Y (8 bytes per row, a row
    being at least one beat of the image), each aligned."""
    align = design.bus_bits // 8
    # a GEMV with parts also reads its extension stream: count two buffers per descriptor
    largest = sorted((len(b) for b in images.values()), reverse=True)[:2 * design.max_descriptors]
    need = (design.max_cols + 2) * align + DESCRIPTOR_BYTES * design.max_descriptors \
        + sum(b + Y_WORD_BYTES * (b // align) + 2 * align for b in largest)
    size = 1 << 12
    while size < need:
        size *= 2
    return size


class CheckedKernels:
    """The decode backend of `--engine verilator`: each start on the reference and on both kernels,
    every Y compared bit for bit; the result carries the kernels' Y and their CYCLES registers."""

    name = "verilator"

    def __init__(self, reference, kernels: VerilatorKernels, layers: dict[str, ref.EncodedTensor],
                 int16: dict[str, np.ndarray]):
        self.reference, self.kernels, self.layers, self.int16 = reference, kernels, layers, int16
        self.starts = 0

    def run(self, start):
        expected = self.reference.run(start)
        got = self.kernels.run(start.cols, start.acts, start.names, start.rows)
        for kind, want in (("seedlm", expected.Y), ("baseline", expected.baseline_Y)):
            ys, cycles = got[kind]
            for name, y, w in zip(start.names, ys, want):
                bad = np.flatnonzero(np.asarray(y) != np.asarray(w))
                if len(y) != len(w) or len(bad):
                    row = int(bad[0]) if len(bad) else min(len(y), len(w))
                    raise KernelMismatch(self._diagnose(kind, name, row, w, y, start))
        self.starts += 1
        return type(expected)(got["seedlm"][0], got["baseline"][0], got["seedlm"][1], got["baseline"][1])

    def _diagnose(self, kind, name, row, want, got, start) -> str:
        exp = int(want[row]) if row < len(want) else "none"
        act = int(got[row]) if row < len(got) else "none"
        head = (f"{kind} kernel, start {self.starts} ({', '.join(start.names)}; cols {start.cols}): layer {name} "
                f"row {row}: expected Y {exp}, kernel Y {act}")
        if kind == "seedlm":
            e = self.layers[name]
            blocks = "; ".join(f"block {j}: seed {int(e.seeds[row, j]):#06x} x {int(e.x[row, j])} "
                               f"q {[int(v) for v in e.q[row, j]]}" for j in range(e.seeds.shape[1]))
            return f"{head}; {blocks}"
        w = self.int16[name][row]
        return f"{head}; int16 weights of the row: {[int(v) for v in w[:16]]}{' ...' if len(w) > 16 else ''}"

    def close(self) -> None:
        self.kernels.close()


def checked_kernel_backend(model, reference, design: KernelDesign) -> CheckedKernels:
    """`--engine verilator` for a decode model (seedlm_fpga.evaluation.decode.DecodeModel)."""
    int16 = {n: model.baseline_weights(n) for n in model.compressed}
    return CheckedKernels(reference, VerilatorKernels(model.compressed, int16, design, model.extensions),
                          model.compressed, int16)
