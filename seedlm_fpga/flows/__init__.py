"""Flows for a board: `sizing` (bus width, engines that fit) and `synth` (yosys / nextpnr)."""
