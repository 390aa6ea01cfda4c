"""What a tensor's extension stream (format §5.6) adds to one engine's GEMV on the §11 kernel, for the
projections, from a file header's counts (nnz and rank; no per-row counts). numpy-free.

The kernel reads the stream on `m_axi_io` beside the weights and its extension unit takes a word per
cycle (format §11.3, §11.4):

- bytes: the stream (padded to 64-bit words) shares the memory channel with the weight image;
- cycles: the unit runs beside the engine. No row's sum exists before the header and the right
  factors (H words) are in, and the engine runs at most `depth` rows ahead of the Ys it has sent
  (its Y FIFO: at least `ext_y_rows` = 2E in such a kernel), so H holds it back by H - depth * R'
  cycles where that is positive (R': the engine's cycles per row; with a memory that keeps up,
  never); a unit slower per row than the engine sets the pace instead:

      added = max(0, H - depth * R', H + rows * w - weight_cycles)

  with w the stream words per row. §11.4's recurrence (`core.engine_shape.kernel_cycles` with
  streams) is exact and matches the RTL; tests/test_ext_kernel.py holds this estimate to it.

Outlier words are bounded by nnz + rows (one per outlier, one per row without any), spread evenly
over the rows.
"""
from __future__ import annotations

from dataclasses import dataclass

from seedlm_fpga.core.engine_shape import IO_BITS, ext_y_rows, y_fifo_depth
from seedlm_fpga.core.ext_stream import ext_words_bound, io_beats


@dataclass(frozen=True)
class InstanceStream:
    """The part of a tensor's stream one engine reads: every header and right-factor word (`head`),
    and its share of the row words (`row_words` over `rows` rows)."""

    head: int
    row_words: int
    rows: int

    @property
    def words(self) -> int:
        return self.head + self.row_words

    @property
    def io_bytes(self) -> int:
        return io_beats(self.words) * IO_BITS // 8


def instance_stream(rows: int, cols: int, nnz: int, rank: int, rows_per_instance: int) -> InstanceStream:
    """One engine's stream for `rows_per_instance` of the tensor's `rows` (format §5.6 layout)."""
    head = ext_words_bound(0, cols, 0, rank)  # the header and every right factor
    total_row_words = ext_words_bound(rows, cols, nnz, rank) - head
    share = min(rows, rows_per_instance)
    return InstanceStream(head, -(-total_row_words * share // rows), share)


def extension_cycles(stream: InstanceStream, weight_cycles: float, latency_cycles: int, weights_per_beat: int) -> float:
    """Cycles the stream adds to an engine whose weights take `weight_cycles` (module text)."""
    per_row = weight_cycles / stream.rows
    held = stream.head - y_fifo_depth(latency_cycles, ext_y_rows(weights_per_beat)) * per_row
    paced = stream.words - weight_cycles
    return max(0.0, held, paced)


def stream_beat_share(stream: InstanceStream, bus_bits: int) -> float:
    """The stream's bytes in W-bit weight beats: what it takes from the channel the weights share."""
    return stream.io_bytes * 8 / bus_bits
