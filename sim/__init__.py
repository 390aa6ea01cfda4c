"""Co-simulation (cocotb + Verilator), the cycle model and projections.

- `cosim_build`, `cosim_tb`, `cosim_runner`, `axi_stream`, `stimulus`: run the generated Verilog
  bit-exact against the numpy reference, with cycle counts; `rtl_measure` stores them.
- `cycle_model`: cycles of one GEMV, from `seedlm_fpga.core.engine_shape`'s rules.
- `llama_shapes`, `projection`, `projection_report`, `plots`: tokens/s for Llama-scale models on boards.
"""
