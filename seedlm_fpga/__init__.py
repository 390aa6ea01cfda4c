"""seedlm-fpga: FPGA design generator and bit-exact simulator for SeedLM.

Layers, bottom up (tests/test_import_contract.py enforces them): `seedlm_fpga.core` (the
numpy-only format core: docs/format.md in code), `seedlm_fpga.boards` (board data),
`seedlm_fpga.compressor` (seed search, readers, container), `seedlm_fpga.hdl` (Amaranth),
`seedlm_fpga.flows` (sizing, synthesis), `seedlm_fpga.evaluation` (forward pass, perplexity,
baselines), `seedlm_fpga.sim` (co-simulation, cycle model, projections), `seedlm_fpga.cli`.
"""
__version__ = "0.1.0"
