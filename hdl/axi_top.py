"""`AxiStreamTop`: a thin wrapper giving a `GemvCore` engine the format §10 port names.

Amaranth names `lib.stream` members ``<port>__payload`` / ``__valid`` / ``__ready``;
this wrapper exposes flat ports instead: ``cols``, ``s_axis_act_{tdata,tvalid,tready,tlast}``,
``s_axis_w_*``, ``m_axis_y_*`` (plus ``clk`` and ``rst`` from the sync domain).
"""
from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from seedlm_fpga.hdl.engine_core import GemvCore


def axi_port_widths(core: GemvCore) -> dict[str, int]:
    sh = core.shape
    return {
        "cols": len(core.cols),
        "s_axis_act_tdata": sh.acts_per_beat * sh.act_bits,
        "s_axis_w_tdata": sh.weight_bits,
        "m_axis_y_tdata": sh.y_bits,
    }


class AxiStreamTop(wiring.Component):
    def __init__(self, core: GemvCore):
        self.core = core
        widths = axi_port_widths(core)
        members = {"cols": In(widths["cols"])}
        for name, direction in (("s_axis_act", In), ("s_axis_w", In)):
            members[f"{name}_tdata"] = direction(widths[f"{name}_tdata"])
            members[f"{name}_tvalid"] = direction(1)
            members[f"{name}_tready"] = Out(1)
            members[f"{name}_tlast"] = direction(1)
        members["m_axis_y_tdata"] = Out(widths["m_axis_y_tdata"])
        members["m_axis_y_tvalid"] = Out(1)
        members["m_axis_y_tready"] = In(1)
        members["m_axis_y_tlast"] = Out(1)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        core = m.submodules.engine = self.core
        m.d.comb += core.cols.eq(self.cols)
        for name, port in (("s_axis_act", core.act), ("s_axis_w", core.w)):
            m.d.comb += [
                port.payload.data.eq(getattr(self, f"{name}_tdata")),
                port.payload.last.eq(getattr(self, f"{name}_tlast")),
                port.valid.eq(getattr(self, f"{name}_tvalid")),
                getattr(self, f"{name}_tready").eq(port.ready),
            ]
        m.d.comb += [
            self.m_axis_y_tdata.eq(core.y.payload.data),
            self.m_axis_y_tlast.eq(core.y.payload.last),
            self.m_axis_y_tvalid.eq(core.y.valid),
            core.y.ready.eq(self.m_axis_y_tready),
        ]
        return m
