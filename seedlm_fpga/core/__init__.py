"""The format core: docs/format.md as code, numpy and the standard library only.

`lfsr` (§1-2), `reference` (presets, quantizer, block words, memory images, integer GEMV: §3-7),
`engine_shape` (lanes, bus widths, Y widths, pipeline stages and latency: §10), and the helpers
every layer shares.
"""
