"""Greedy decode of a llama2.c model with a board computing every GEMV of its compressed layers.

The board (a ULX3S-85F programmed with `seedlm-fpga deploy`) holds the model's weights; over its
USB UART (format §12) the host sends each int8 activation vector and reads back the exact integer
Y (format §6). The host does the rest in float: embedding, RMSNorm, RoPE, attention, SwiGLU and
the classifier, with a KV cache (the decode loop of `seedlm-fpga run`, its GEMV backend being the
board). It first asks the board for its image id (INFO) and stops if the bitstream holds another
model. The tokens are those of `seedlm-fpga run`'s integer reference.

--simulate runs the same host code against the board's top in Amaranth's simulator instead of
a serial port (no board needed; slow: keep --steps small).

example:
  seedlm-fpga board-run deploy-ulx3s/model.seedlm --port /dev/ttyUSB0 --prompt "Once upon a time"
  seedlm-fpga board-run deploy-ulx3s/model.seedlm --simulate --steps 2
"""
from __future__ import annotations

import argparse
import time

from seedlm_fpga.core.board_protocol import BAUD
from seedlm_fpga.errors import UserError

DEFAULT_BOARD = "ulx3s-85f"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL.seedlm", help="the model the board was deployed with")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", metavar="DEV", help="the board's serial port (e.g. /dev/ttyUSB0)")
    where.add_argument("--simulate", action="store_true",
                       help="no board: the board's top in Amaranth's simulator (slow)")
    parser.add_argument("--baud", type=int, default=BAUD, help=f"UART rate (default {BAUD}, format §12)")
    parser.add_argument("--board", default=DEFAULT_BOARD, help=f"the board (default {DEFAULT_BOARD})")
    parser.add_argument("--prompt", default="", help="text to continue (default: none, start from BOS)")
    parser.add_argument("--steps", type=int, default=32, help="tokens to generate at most (default 32)")
    parser.add_argument("--tokenizer", metavar="FILE",
                        help="llama2.c tokenizer (default: the shipped tok512.bin)")


class BoardBackend:
    """`run`'s GEMV backend (evaluation.decode.GemvBackend) on the board: each GEMV of a start is one
    format §12 frame. The board has no 16-bit baseline engine: `baseline_Y` stays empty."""

    name = "board"

    def __init__(self, client, tensors: list):
        self.client = client
        self.index = {name: i for i, (name, _) in enumerate(tensors)}
        self.gemvs = 0

    def run(self, start):
        import numpy as np
        from seedlm_fpga.evaluation.decode import StartResult

        Y = [np.asarray(self.client.gemv(self.index[n], start.acts), dtype=np.int64) for n in start.names]
        self.gemvs += len(Y)
        return StartResult(Y, [])

    def close(self) -> None:
        pass


def open_port(args):
    if args.simulate:
        from seedlm_fpga.sim.board_sim import SimulatedBoardPort
        return lambda image: SimulatedBoardPort(image)
    try:
        import serial
    except ImportError:
        raise UserError("pyserial is needed to talk to the board: pip install pyserial") from None
    try:
        port = serial.Serial(args.port, args.baud, timeout=2.0)
    except (serial.SerialException, ValueError) as exc:
        raise UserError(f"{args.port}: {exc}") from None
    port.reset_input_buffer()
    return lambda image: port


def decode(path, port_for, board: str, prompt: str, steps: int, tokenizer_path=None) -> dict:
    """Run the decode; returns the tokens, the text and the link statistics."""
    from seedlm_fpga.cli.deploy import board_image, board_tensors
    from seedlm_fpga.compressor.container import read_container
    from seedlm_fpga.core.board_protocol import BoardClient, BoardError
    from seedlm_fpga.evaluation.decode import greedy_decode, load_decode_model
    from seedlm_fpga.evaluation.tokenizer import Tokenizer
    from seedlm_fpga.examples import EXAMPLES_DIR

    model = load_decode_model(path)
    tensors = board_tensors(read_container(path))
    image = board_image(tensors, board, path)
    client = BoardClient(port_for(image), image)
    try:
        client.check_info()
    except BoardError as exc:
        raise UserError(f"{path}: {exc}") from None
    backend = BoardBackend(client, tensors)
    tok = Tokenizer.load(tokenizer_path or EXAMPLES_DIR / "tok512.bin", model.cfg.vocab_size)
    ids = tok.encode(prompt, bos=True)
    start = time.perf_counter()
    try:
        new = greedy_decode(model, backend, ids, steps)
    except BoardError as exc:
        raise UserError(f"board: {exc}") from None
    seconds = time.perf_counter() - start
    return {"tokens": ids + new, "text": tok.decode(ids + new), "new_tokens": len(new),
            "gemvs": backend.gemvs, "seconds": round(seconds, 3)}


def run(args) -> int:
    from seedlm_fpga.core.files import check_input_file

    check_input_file(args.model, "model")
    if args.steps < 0:
        raise UserError(f"--steps must be >= 0, got {args.steps}")
    result = decode(args.model, open_port(args), args.board, args.prompt, args.steps, args.tokenizer)
    print(result["text"])
    print(f"{result['new_tokens']} tokens, {result['gemvs']} GEMVs on the board, {result['seconds']:.1f} s")
    return 0
