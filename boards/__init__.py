"""FPGA boards as data: one YAML file per board and the pydantic schema that validates it (`board`).

Sizing and synthesis for a board live in `seedlm_fpga.flows`.
"""
