"""Rebuild a safetensors state dict from a .seedlm file.

Compressed tensors are decoded (W_hat, padding dropped) and cast to --dtype, by default
each tensor's original dtype; carried tensors come back exactly as they were stored.
"""
from __future__ import annotations

from seedlm_fpga.core.extensions import decode_extended
from seedlm_fpga.compressor.container import read_container, torch_dtype, write_safetensors
from seedlm_fpga.core.files import check_not_input, check_output_file
from seedlm_fpga.core.numeric import check_allocation
from seedlm_fpga.core.reference import blocks_per_row, decode_memory
from seedlm_fpga.errors import UserError


def add_arguments(parser) -> None:
    parser.add_argument("input", help="the .seedlm file")
    parser.add_argument("-o", "--output", required=True, help="the .safetensors file to write")
    parser.add_argument("--dtype", help="float32, float16 or bfloat16 for the decoded tensors "
                                        "(default: each tensor's original dtype)")


def decompress(container, dtype: str | None = None) -> dict:
    """The full state dict (name -> torch.Tensor): decoded compressed tensors plus the carried ones."""
    import torch

    out = {}
    for name, enc in container.compressed.items():
        rows, cols = enc.shape
        check_allocation(decode_memory(rows, blocks_per_row(cols, enc.preset.C), enc.preset),
                         f"decoding tensor {name!r}")
        target = torch_dtype(dtype or container.dtypes.get(name, "float32"))
        out[name] = torch.from_numpy(decode_extended(enc, container.extensions.get(name))).to(target)
    out.update(container.carried)
    return out


def run(args) -> int:
    if args.dtype is not None and args.dtype not in ("float32", "float16", "bfloat16"):
        raise UserError(f"--dtype must be float32, float16 or bfloat16, got {args.dtype!r}")
    output = check_output_file(args.output)
    check_not_input(output, [args.input])
    container = read_container(args.input)
    tensors = decompress(container, args.dtype)
    write_safetensors(output, tensors, {"format": "pt"})
    print(f"wrote {output}: {len(container.compressed)} decoded and {len(container.carried)} carried tensors "
          f"({output.stat().st_size:,} bytes)")
    return 0
