"""The `seedlm-fpga` command line: one subcommand per module, imported on demand.

Each command module provides ``add_arguments(parser)`` and ``run(args) -> int``; its
docstring's first line is the command's one-line help. Modules are imported only for
the command that runs, so `seedlm-fpga project` does not pay for torch or Amaranth.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from seedlm_fpga import __version__
from seedlm_fpga.core.report import set_argv
from seedlm_fpga.errors import UserError

#: command -> (module, one-line help). Order is the order of `seedlm-fpga --help`.
COMMANDS: dict[str, tuple[str, str]] = {
    "compress": ("seedlm_fpga.cli.compress", "compress a checkpoint to a .seedlm file (data-free)"),
    "decompress": ("seedlm_fpga.cli.decompress", "rebuild a safetensors state dict from a .seedlm file"),
    "inspect": ("seedlm_fpga.cli.inspect", "show what a .seedlm file holds"),
    "image": ("seedlm_fpga.cli.image", "write the memory image a GEMV engine streams (format §5.3)"),
    "evaluate": ("seedlm_fpga.cli.evaluate", "compression error and perplexity against data-free baselines"),
    "generate": ("seedlm_fpga.cli.generate", "write Verilog of the SeedLM and 16-bit baseline GEMV engines"),
    "cosim": ("seedlm_fpga.cli.cosim", "run the generated Verilog under cocotb + Verilator, bit-exact, with cycle counts"),
    "boards": ("seedlm_fpga.cli.boards", "list the shipped FPGA boards"),
    "synth": ("seedlm_fpga.cli.synth", "synthesize / place-and-route an engine for a board with open tools"),
    "project": ("seedlm_fpga.cli.project", "project decode speedups for Llama-scale models on a board"),
    "run": ("seedlm_fpga.cli.run", "decode a compressed model token by token through the GEMV kernels"),
    "build": ("seedlm_fpga.cli.build", "build for a board in named, restartable steps (size ... deploy)"),
    "deploy": ("seedlm_fpga.cli.deploy", "what goes to a board: a ULX3S-85F bitstream or an Alveo kernel package"),
    "board-run": ("seedlm_fpga.cli.board_run", "greedy decode with a ULX3S computing every GEMV over its UART"),
}


def _top_help() -> str:
    width = max(map(len, COMMANDS))
    lines = [
        "usage: seedlm-fpga [--version] COMMAND [ARGS]",
        "",
        "FPGA design generator and bit-exact simulator for SeedLM (arXiv 2410.10714).",
        "",
        "commands:",
    ]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "Run 'seedlm-fpga COMMAND --help' for a command's options."]
    return "\n".join(lines)


def build_parser(command: str) -> tuple[argparse.ArgumentParser, object]:
    module_name, help_ = COMMANDS[command]
    module = importlib.import_module(module_name)
    doc = (module.__doc__ or help_).strip()
    parser = argparse.ArgumentParser(prog=f"seedlm-fpga {command}", description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    module.add_arguments(parser)
    return parser, module


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_top_help())
        return 0
    if argv[0] == "--version":
        print(f"seedlm-fpga {__version__}")
        return 0
    command = argv[0]
    if command not in COMMANDS:
        print(f"seedlm-fpga: error: unknown command {command!r} (choose from {', '.join(COMMANDS)})",
              file=sys.stderr)
        return 2
    set_argv(argv)  # reports name the command line they came from (core.report)
    parser, module = build_parser(command)
    args = parser.parse_args(argv[1:])
    try:
        return int(module.run(args) or 0)
    except UserError as exc:
        return _error(command, str(exc))
    except KeyboardInterrupt:
        print(f"seedlm-fpga {command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `seedlm-fpga inspect X | head`: the reader went away; stop quietly.
        import os
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (OSError, UnicodeError, RecursionError, MemoryError, OverflowError) as exc:
        # The last net under every input and output: such errors come from the user's files,
        # flags or machine (unreadable file, full disk, absurd size), never worth a traceback.
        return _error(command, _describe(exc))


def _error(command: str, message: str) -> int:
    """One line on stderr, exit status 2."""
    line = " ".join(part.strip() for part in message.splitlines() if part.strip()) or "failed"
    print(f"seedlm-fpga {command}: error: {line}", file=sys.stderr)
    return 2


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        where = exc.filename if exc.filename is not None else None
        why = exc.strerror or str(exc) or type(exc).__name__
        return f"{where}: {why}" if where is not None else why
    if isinstance(exc, MemoryError):
        return "out of memory (the input asks for more than this machine has)"
    if isinstance(exc, RecursionError):
        return "input nested too deeply"
    return f"{type(exc).__name__}: {exc}"


if __name__ == "__main__":
    sys.exit(main())
