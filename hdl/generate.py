"""Write the Verilog of both engines and `design.json`, the machine-readable description.

    from seedlm_fpga.hdl.generate import DesignConfig, generate
    design = generate(DesignConfig(preset="seedlm-4", bus_bits=512), "build/")

writes ``seedlm_gemv.v`` (top module ``seedlm_gemv``), ``baseline_gemv.v``
(``baseline_gemv``) and ``design.json``; each file is written to a temporary file in
the same folder and renamed, so a failure leaves no half-written file. With
``kernel=KernelParams(...)`` also ``seedlm_kernel.v`` and ``baseline_kernel.v`` (format §11) and
a ``kernel`` section in design.json (`kernel_describe`).
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import amaranth
from amaranth.back import verilog
from amaranth.hdl import Shape
from amaranth.lib.wiring import In

from seedlm_fpga import __version__
from seedlm_fpga.hdl.axi_top import AxiStreamTop, axi_port_widths
from seedlm_fpga.hdl.baseline_engine import BaselineEngine
from seedlm_fpga.core.engine_shape import DESCRIPTOR_WORDS, KERNEL_REGISTERS, KERNEL_TIMING, DesignConfig
from seedlm_fpga.core.files import write_text_atomic
from seedlm_fpga.core.report import dumps, report_dict
from seedlm_fpga.hdl.engine_core import GemvCore
from seedlm_fpga.hdl.gemv_engine import GemvEngine
from seedlm_fpga.hdl.kernel import KINDS, GemvKernel, KernelParams

__all__ = ["DesignConfig", "KernelParams", "generate", "describe", "SEEDLM_TOP", "BASELINE_TOP"]

SEEDLM_TOP = "seedlm_gemv"
BASELINE_TOP = "baseline_gemv"


def _timing(core: GemvCore) -> dict:
    """The exact no-stall cycle counts (see `engine_core`); the cycle model must match them."""
    sh, lat = core.shape, core.latency_cycles
    n, e = sh.acts_per_beat, sh.acts_per_word
    R = f"ceil(cols / {e})"
    if sh.packing:  # format §5.4: the beat that completes the row's last block ends it
        R = f"ceil(ceil(cols / {sh.packing.block_acts}) * {sh.packing.block_bits} / {sh.weight_bits})"
    return {
        "act_load_cycles": f"ceil(cols / {n})",
        "weight_beats_per_row": R,
        "latency_cycles": lat,
        "first_weight_beat": "accepted in the cycle after the act beat with tlast (at the earliest)",
        "first_weight_beat_to_first_y": f"{R} - 1 + {lat}",
        "formula": f"cycles = ceil(cols / {n}) + rows * {R} + {lat}",
        "formula_note": ("no stalls; cycle 0 is the cycle the first act beat is accepted and the last Y "
                         "transfer is in cycle (cycles - 1); weight beats are accepted back to back; "
                         "Y[r] is valid latency_cycles cycles after the cycle the last weight beat of "
                         "row r is accepted"),
    }


def _engine_dict(core: GemvCore, top: str) -> dict:
    sh = core.shape
    return {
        "top": top,
        "verilog": f"{top}.v",
        "weight_bits": sh.weight_bits,
        "act_bits": sh.act_bits,
        "acts_per_beat": sh.acts_per_beat,
        "acts_per_weight_beat": sh.acts_per_word,
        "y_bits": sh.y_bits,
        "max_cols": sh.max_cols,
        "latency_cycles": core.latency_cycles,
        "y_fifo_depth": core.y_fifo_depth,
        "act_buffer": {"words": sh.buffer_words, "word_bits": sh.acts_per_word * sh.act_bits,
                       "bits": sh.buffer_words * sh.acts_per_word * sh.act_bits},
        "ports": axi_port_widths(core),
    }


def describe(cfg: DesignConfig, seedlm: GemvEngine | None = None,
             baseline: BaselineEngine | None = None) -> dict:
    """The `design.json` content for `cfg` (without generating Verilog)."""
    if seedlm is None or baseline is None:
        seedlm, baseline = GemvEngine(cfg), BaselineEngine(cfg)
        # only their parameters are read here: not elaborating them is intended
        seedlm._MustUse__silence = baseline._MustUse__silence = True
    p = cfg.preset_obj
    design = _engine_dict(seedlm, SEEDLM_TOP)
    if cfg.image != "beat":  # (the default adds no key: beat designs' design.json unchanged)
        design["image"] = cfg.image
        design["act_buffer"]["banks"] = cfg.blocks_per_beat  # one block of C activations per bank word
    design.update({
        "blocks_per_beat": cfg.blocks_per_beat,
        "block_bits": p.block_bits,
        "preset": p.as_dict(),
        "pipeline": seedlm.pipeline_stages(),
        "timing": _timing(seedlm),
    })
    base = _engine_dict(baseline, BASELINE_TOP)
    base.update({
        "weights_per_beat": cfg.bus_bits // 16,
        "pipeline": baseline.pipeline_stages(),
        "timing": _timing(baseline),
    })
    design["baseline"] = base
    design["generator"] = {"seedlm_fpga": __version__, "amaranth": amaranth.__version__,
                           "config": {"preset": cfg.preset, "bus_bits": cfg.bus_bits,
                                      "act_bits": cfg.act_bits, "max_cols": cfg.max_cols}}
    if cfg.image != "beat":
        design["generator"]["config"]["image"] = cfg.image
    return design


KERNEL_TOPS = {"seedlm": "seedlm_kernel", "baseline": "baseline_kernel"}


def _kernel_formula(k: GemvKernel) -> dict:
    """Format §11.4 with this kernel's numbers; L_r, L_w: read and write-response latency."""
    sh, t = k.shape, KERNEL_TIMING
    R = _timing(k.engine)["weight_beats_per_row"]
    lat = k.engine.latency_cycles
    tail = t.read_fifo - 1 + lat + t.done
    return {
        "act_beats": f"ceil(cols / {sh.acts_per_beat})",
        "weight_beats_per_row": R,
        "latency_cycles": lat,
        "formula": f"cycles = {t.launch} + L_r + ceil(cols / {sh.acts_per_beat}) + rows * {R} + {tail} + L_w",
        "formula_descriptors": (f"S = {t.launch} + L_r + ceil(cols / {sh.acts_per_beat}); for d in 0..n-1: "
                                f"S = max(S, {t.desc_launch + t.desc_to_weights} + 2 * L_r + {DESCRIPTOR_WORDS} * d)"
                                f" + rows_d * {R}; cycles = S + {tail} + L_w"),
    }


def kernel_describe(kernels: dict[str, GemvKernel]) -> dict:
    """design.json's ``kernel`` section (format §11): parameters, ports, registers, cycle formulas."""
    any_k = next(iter(kernels.values()))
    out = {
        "mem_latency": any_k.mem_latency, "max_burst": any_k.max_burst, "max_descriptors": any_k.max_descriptors,
        "read_buffer_beats": any_k.read_depth,
        **({"extensions": True, "ext_max_rows": any_k.ext_max_rows,
            "extension_streams": ("a GEMV whose descriptor names an extension stream (format §5.6) has it read on "
                                  "m_axi_io beside its weights, a 32-bit word per cycle; a row's Y waits for its "
                                  "sum (format §11.4, core.engine_shape.extension_last_y)")}
           if any(k.extensions for k in kernels.values()) else {}),
        "registers": {name: f"0x{off:02X}" for name, off in KERNEL_REGISTERS.items()},
        "timing": {**asdict(KERNEL_TIMING), "note": (
            "cycles from the cycle ap_start is taken to the first cycle CTRL reads ap_done = 1 (= CYCLES), "
            "for a memory answering each AR L_r cycles after its handshake (L_r <= mem_latency, R never "
            "paused), AR/AW/W always ready and B L_w cycles after its burst's last W beat (format §11.4)")},
    }
    for kind, k in kernels.items():
        ports = {name: {"dir": "in" if member.flow == In else "out", "bits": Shape.cast(member.shape).width}
                 for name, member in k.signature.members.items()}
        out[kind] = {"top": KERNEL_TOPS[kind], "verilog": f"{KERNEL_TOPS[kind]}.v", "ports": ports,
                     "timing": _kernel_formula(k)}
    return out


def verilog_text(core: GemvCore, top: str, platform=None) -> str:
    return verilog.convert(AxiStreamTop(core), name=top, emit_src=False, platform=platform)


def generate(cfg: DesignConfig, out_dir, board: dict | None = None, inputs=(),
             kernel: KernelParams | None = None, platform=None) -> dict:
    """Write both engines' Verilog and design.json into `out_dir` (created); return the design.

    `kernel`: also both kernels (format §11) and design["kernel"].

    `board` (optional) is recorded under ``design["board"]`` (what the design was sized for).
    design.json is the design plus core.report's "provenance" (`inputs`: files it came from,
    e.g. a board .yaml); the returned design has no provenance. `platform`: vendor primitives
    to elaborate with (`hdl.dsp48e2.DSP48E2_TARGET`; None: generic Verilog).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    seedlm, baseline = GemvEngine(cfg), BaselineEngine(cfg)
    design = describe(cfg, seedlm, baseline)
    if board is not None:
        design["board"] = dict(board)
    texts = {
        f"{SEEDLM_TOP}.v": verilog_text(seedlm, SEEDLM_TOP, platform),
        f"{BASELINE_TOP}.v": verilog_text(baseline, BASELINE_TOP, platform),
    }
    if kernel is not None:
        kernels = {kind: GemvKernel(cfg, kind, **kernel.as_dict()) for kind in KINDS}
        design["kernel"] = kernel_describe(kernels)
        for kind, k in kernels.items():
            top = KERNEL_TOPS[kind]
            texts[f"{top}.v"] = verilog.convert(k, name=top, emit_src=False, platform=platform)
    texts["design.json"] = dumps(report_dict(design, inputs))
    for name, text in texts.items():
        write_text_atomic(out / name, text)
    return design
