"""Co-simulation (cocotb + Verilator), the cycle model and projections.

- `cosim_build`, `cosim_tb`, `cosim_runner`, `stimulus`: run the generated engines (format §10)
  bit-exact against the numpy reference, with cycle counts; `rtl_measure` stores them.
- `axi_memory`, `kernel_host`, `kernel_tb`, `kernel_runner`: the same for the memory-mapped
  kernels (format §11) against an AXI memory with latency and pauses (cocotbext-axi).
- `cycle_model`: cycles of one GEMV, from `seedlm_fpga.core.engine_shape`'s rules.
- `llama_shapes`, `projection`, `projection_report`, `plots`: tokens/s for Llama-scale models on boards.
"""
