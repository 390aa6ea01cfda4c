"""seedlm-fpga: FPGA design generator and bit-exact simulator for SeedLM.

Subpackages: `seedlm_fpga.compressor` (numpy reference, encoder, checkpoints,
container), `seedlm_fpga.hdl` (Amaranth components), `seedlm_fpga.sim`
(co-simulation, cycle model, projections), `seedlm_fpga.boards` (board files).
"""
__version__ = "0.1.0"
