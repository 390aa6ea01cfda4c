"""seedlm_fpga package."""
