"""Write synthesizable Verilog of the SeedLM GEMV engine and of the 16-bit baseline engine.

Writes DIR/seedlm_gemv.v (module seedlm_gemv), DIR/baseline_gemv.v (module baseline_gemv)
and DIR/design.json (bus widths, lanes, latency, exact cycle formula). Ports follow
format §10: clk, rst, cols, s_axis_act_*, s_axis_w_*, m_axis_y_*.
With --kernel also DIR/seedlm_kernel.v and DIR/baseline_kernel.v: the engines as memory-mapped
Vitis-style RTL kernels (format §11: ap_clk, ap_rst_n, s_axi_control, m_axi_gmem, m_axi_io,
interrupt), and a "kernel" section in design.json (parameters, ports, registers, cycle formula).

example:
  seedlm-fpga generate --bus-bits 512 -o build/
  seedlm-fpga generate --bus-bits 128 --preset seedlm-3 -o build/
  seedlm-fpga generate --bus-bits 512 --kernel --mem-latency 128 -o build/
"""
from __future__ import annotations

from pathlib import Path

from seedlm_fpga.core.reference import PRESETS
from seedlm_fpga.errors import UserError
from seedlm_fpga.core.engine_shape import (ACT_BITS, DEFAULT_MAX_COLS, DEFAULT_MAX_DESCRIPTORS,
                                           DEFAULT_MEM_LATENCY, IMAGE_LAYOUTS)
KERNEL_OPTIONS = ("mem_latency", "max_burst", "max_descriptors", "extensions", "ext_max_rows")


def add_arguments(parser):
    parser.add_argument("--bus-bits", type=int, metavar="W",
                        help="weight-bus width W in bits (multiple of 8, >= the block size)")
    parser.add_argument("--preset", choices=list(PRESETS), default="seedlm-4",
                        help="SeedLM configuration (default: seedlm-4)")
    parser.add_argument("--act-bits", type=int, choices=ACT_BITS, default=8,
                        help="activation width A (default: 8)")
    parser.add_argument("--image", choices=IMAGE_LAYOUTS, default="beat",
                        help="weight image the SeedLM engine streams: beat (format §5.3, default) or "
                             "packed (§5.4: blocks back to back across beats, fewer bits per weight)")
    parser.add_argument("--max-cols", type=int, metavar="N", default=None,
                        help=f"longest row (in_features) the engine accepts; sizes the activation buffer "
                             f"(default: {DEFAULT_MAX_COLS}, Llama 70B down_proj)")
    parser.add_argument("--board", metavar="NAME",
                        help="size the design for a board (see `seedlm-fpga boards`): W from the board's "
                             "memory bandwidth and resources; an explicit --bus-bits wins")
    parser.add_argument("--kernel", action="store_true",
                        help="also write the memory-mapped kernels seedlm_kernel.v and baseline_kernel.v "
                             "(format §11; W must be a power of two, 32..1024)")
    parser.add_argument("--mem-latency", type=int, metavar="N", default=None,
                        help=f"read latency in cycles the kernel hides at one beat per clock: sizes its read "
                             f"buffer (default: {DEFAULT_MEM_LATENCY}; needs --kernel)")
    parser.add_argument("--max-burst", type=int, metavar="B", default=None,
                        help="beats per AXI burst, <= 256 and <= 4096 bytes (default: min(64, 4096 bytes); "
                             "needs --kernel)")
    parser.add_argument("--max-descriptors", type=int, metavar="D", default=None,
                        help=f"GEMVs one start may run from a descriptor list (default: {DEFAULT_MAX_DESCRIPTORS}; "
                             f"needs --kernel)")
    parser.add_argument("--extensions", action="store_const", const=True, default=None,
                        help="give the SeedLM kernel the extension unit: outliers and low-rank parts added "
                             "into Y (format §5.6, §11.3; needs --kernel)")
    parser.add_argument("--ext-max-rows", type=int, metavar="N", default=None,
                        help="rows of a GEMV with extension parts, a power of two (default 16384; needs "
                             "--extensions)")
    parser.add_argument("-o", "--output", metavar="DIR", required=True, help="output folder (created)")


def _board_sizing(args) -> dict:
    from seedlm_fpga.flows.sizing import size_for_board
    try:
        return size_for_board(args.board, args.preset, args.act_bits)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def _kernel_params(args, cfg):
    from seedlm_fpga.hdl.kernel import KINDS, KernelParams, check_kernel

    given = {k: getattr(args, k) for k in KERNEL_OPTIONS if getattr(args, k) is not None}
    if not args.kernel:
        if given:
            raise UserError(f"--{next(iter(given)).replace('_', '-')} needs --kernel")
        return None
    if "ext_max_rows" in given and not args.extensions:
        raise UserError("--ext-max-rows needs --extensions")
    params = KernelParams(**given)
    try:
        for kind in KINDS:
            check_kernel(cfg, kind, params)
    except ValueError as exc:
        raise UserError(f"--kernel: {exc}") from None
    return params


def run(args) -> int:
    from seedlm_fpga.hdl.generate import DesignConfig, generate

    bus_bits, max_cols, board = args.bus_bits, args.max_cols, None
    if args.board is not None:
        sized = _board_sizing(args)
        bus_bits = sized["bus_bits"] if bus_bits is None else bus_bits
        if max_cols is None and "max_cols" in sized:
            max_cols = sized["max_cols"]
        board = dict(sized)  # the whole sizing, derivation included, goes into design.json
    if bus_bits is None:
        raise UserError("give --bus-bits W (or --board NAME)")
    try:
        cfg = DesignConfig(preset=args.preset, bus_bits=bus_bits, act_bits=args.act_bits,
                           max_cols=DEFAULT_MAX_COLS if max_cols is None else max_cols, image=args.image)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    kernel = _kernel_params(args, cfg)
    try:
        design = generate(cfg, args.output, board=board, inputs=[args.board], kernel=kernel)
    except OSError as exc:
        raise UserError(f"cannot write to {args.output}: {exc.strerror or exc}") from None
    except Exception as exc:  # the Wasm yosys reports a failed write (full disk, file-size limit) its own way
        os_error = [ln for ln in str(exc).splitlines() if "(os error" in ln]
        if type(exc).__module__.split(".")[0] not in ("wasmtime", "amaranth") or not os_error:
            raise
        import warnings
        warnings.simplefilter("ignore")  # the half-built engines' UnusedElaboratable notes are noise now
        raise UserError(f"cannot write ({os_error[-1].split(': ', 1)[-1].strip()})") from None
    base, out = design["baseline"], Path(args.output)
    image = "" if cfg.image == "beat" else f", {cfg.image} image"
    print(f"wrote {out / 'seedlm_gemv.v'} ({cfg.preset}{image}, W={cfg.bus_bits}, L={design['blocks_per_beat']}, "
          f"A={cfg.act_bits}, N={design['acts_per_beat']}, latency {design['latency_cycles']} cycles)")
    print(f"wrote {out / 'baseline_gemv.v'} (16-bit weights, {base['weights_per_beat']} per beat, "
          f"latency {base['latency_cycles']} cycles)")
    if kernel is not None:
        k = design["kernel"]
        for kind in ("seedlm", "baseline"):
            print(f"wrote {out / k[kind]['verilog']} (memory-mapped kernel, format §11: mem latency "
                  f"{k['mem_latency']}, bursts <= {k['max_burst']} beats, <= {k['max_descriptors']} descriptors)")
    print(f"wrote {out / 'design.json'}")
    return 0
