"""Write the memory image a GEMV engine streams for one tensor (format §5.3, or §5.4 with --image packed).

W-bit beats, L = floor(W / B) blocks per beat (packed: blocks back to back across beats), each
row on fresh beats (R per row), unused bits zero, beats stored one after another as
little-endian bytes. A tensor with outliers or a low-rank part (format §5.5) also gets its
extension stream (§5.6, what the kernel's extension unit reads) beside the image: OUTPUT with
`.ext.bin` in place of its suffix, or --ext-output.
"""
from __future__ import annotations

from seedlm_fpga.errors import UserError

from seedlm_fpga.compressor.container import read_container
from seedlm_fpga.core.engine_shape import MAX_BUS_BITS
from seedlm_fpga.core.ext_stream import ext_problems, ext_words, extension_stream
from seedlm_fpga.core.files import check_not_input, check_output_file, write_bytes_atomic
from seedlm_fpga.core.numeric import check_allocation, check_number
from seedlm_fpga.core.reference import (ImageLayout, PackedImageLayout, blocks_per_row, image_memory, memory_image,
                                        packed_memory_image)


def add_arguments(parser) -> None:
    parser.add_argument("input", help="the .seedlm file")
    parser.add_argument("--tensor", required=True, metavar="NAME", help="the compressed tensor to lay out")
    parser.add_argument("--bus-bits", required=True, type=int, metavar="W", help="weight-bus width in bits")
    parser.add_argument("--image", choices=("beat", "packed"), default="beat",
                        help="layout: beat (format §5.3, default) or packed (§5.4, blocks across beats)")
    parser.add_argument("-o", "--output", required=True, help="the .bin image to write")
    parser.add_argument("--ext-output", metavar="PATH",
                        help="where the extension stream goes (format §5.6; default: OUTPUT as NAME.ext.bin)")


def run(args) -> int:
    check_number("--bus-bits", args.bus_bits, 8, MAX_BUS_BITS, integer=True)
    output = check_output_file(args.output)
    check_not_input(output, [args.input])
    container = read_container(args.input)
    enc = container.compressed.get(args.tensor)
    if enc is None:
        names = list(container.compressed)
        shown = ", ".join(names[:4]) + (f", ... ({len(names)} in all)" if len(names) > 4 else "")
        what = "is carried uncompressed in" if args.tensor in container.carried else "is not in"
        raise UserError(f"tensor {args.tensor!r} {what} {args.input}; compressed tensors: {shown}")
    rows, cols = enc.shape
    ext = container.extensions.get(args.tensor)
    ext_out = None
    if ext:
        problems = ext_problems(ext, enc.shape)
        if problems:
            raise UserError(f"tensor {args.tensor!r}: the kernel's extension unit cannot take its parts: "
                            f"{'; '.join(problems)}")
        ext_out = check_output_file(args.ext_output or str(output.with_suffix(".ext.bin")), "--ext-output")
        check_not_input(ext_out, [args.input, str(output)], "--ext-output")
    packed = getattr(args, "image", "beat") == "packed"
    try:
        lay = (PackedImageLayout if packed else ImageLayout)(args.bus_bits, enc.preset.block_bits,
                                                             blocks_per_row(cols, enc.preset.C))
    except ValueError as exc:
        raise UserError(f"--bus-bits {args.bus_bits}: {exc}") from None
    check_allocation(image_memory(rows, lay.nb, args.bus_bits, enc.preset.block_bits, packed),
                     f"the {args.tensor} image")
    image = (packed_memory_image if packed else memory_image)(enc.seeds, enc.x, enc.q, enc.preset, args.bus_bits)
    write_bytes_atomic(output, image)
    if ext_out is not None:
        stream = extension_stream(ext, enc.shape)
        write_bytes_atomic(ext_out, stream)
    beats = rows * lay.beats_per_row
    print(f"{args.tensor}: {rows}x{cols}, {enc.preset.name} ({enc.preset.block_bits}-bit blocks), "
          f"{lay.nb} blocks per row")
    per_beat = "blocks packed across beats" if packed else f"L = {lay.blocks_per_beat} blocks/beat"
    print(f"bus {args.bus_bits} bits: {per_beat}, R = {lay.beats_per_row} beats/row, "
          f"{beats:,} beats, {len(image):,} bytes, {lay.bits_per_weight(cols):.3f} bits/weight")
    print(f"wrote {output}")
    if ext_out is not None:
        print(f"extension stream (format §5.6): {ext_words(ext, enc.shape):,} words, "
              f"{len(stream) // 8:,} 64-bit beats, "
              f"{len(stream):,} bytes, {len(stream) * 8 / (rows * cols):.3f} bits/weight; wrote {ext_out}")
    return 0
