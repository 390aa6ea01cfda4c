"""The format §1 LFSR in hardware: M consecutive states per cycle, a new seed every cycle.

The LFSR is linear over GF(2): every bit of the state n steps after the seed is an XOR
of seed bits. `sequence_masks` computes, at elaboration time, which seed bits; since
the register shifts, consecutive states share all but one bit, so M states cost M XOR
functions (not M*K). `LFSR` is a single stage of XOR trees (no iteration, no feedback
loop in the circuit): it takes a fresh seed every cycle and delivers the M states that
FOLLOW it (the seed itself excluded, format §2).

Each component sits beside the reference it must equal (`reference`), in the manner of
Glasgow's LFSR: the tests compare the two over the whole period.
"""
from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from seedlm_fpga.core.lfsr import default_taps, lfsr_states


def sequence_masks(K: int, taps: tuple[int, ...], M: int) -> list[int]:
    """masks[n]: the seed bits (a K-bit mask) whose XOR is bit z_n of the output sequence.

    A right-shifting Fibonacci LFSR is a window on one bit sequence: z_0 .. z_(K-1) are
    the seed bits, z_(K+n) = XOR_(j in taps) z_(n+j) is the n-th feedback bit, and
    state i is z_i .. z_(i+K-1) (bit k of state i = z_(i+k)). So M states need only M
    new bits, each an XOR of seed bits (the GF(2) map, flattened: 2 LUT levels for K=16).
    """
    masks = [1 << k for k in range(K)]
    for n in range(M):
        feedback = 0
        for j in taps:
            feedback ^= masks[n + j]
        masks.append(feedback)
    return masks


def xor_of(seed, mask: int):
    """XOR of the bits of `seed` selected by `mask` (0 when the mask is empty)."""
    terms = [seed[j] for j in range(len(seed)) if mask >> j & 1]
    out = terms[0] if terms else 0
    for t in terms[1:]:
        out = out ^ t
    return out


class LFSR(wiring.Component):
    """M states of the format §1 LFSR following `seed`, one seed per cycle, registered.

    Ports: ``seed`` (stream of K-bit seeds, always ready) and ``states`` (stream of M
    K-bit states, ``states.payload[i]`` = state i + 1 after the seed), one cycle later.
    """

    latency = 1

    def __init__(self, K: int = 16, taps: tuple[int, ...] | None = None, M: int = 1):
        self.K, self.M = K, M
        self.taps = default_taps(K) if taps is None else tuple(taps)
        super().__init__({
            "seed": In(stream.Signature(K, always_ready=True)),
            "states": Out(stream.Signature(data.ArrayLayout(K, M), always_ready=True)),
        })

    def reference(self, seed: int) -> list[int]:
        """What `states` must carry for `seed` (the numpy reference of format §1)."""
        return [int(s) for s in lfsr_states(seed, self.M, self.K, self.taps)]

    def elaborate(self, platform):
        m = Module()
        K, M = self.K, self.M
        masks = sequence_masks(K, self.taps, M)
        feedback = Signal(M, name="feedback")  # z_K .. z_(K+M-1)
        for n in range(M):
            m.d.comb += feedback[n].eq(xor_of(self.seed.payload, masks[K + n]))
        z = Cat(self.seed.payload, feedback)
        m.d.sync += self.states.valid.eq(self.seed.valid)
        for i in range(M):
            m.d.sync += self.states.payload[i].eq(z[i + 1:i + 1 + K])
        return m


class LFSRBank(wiring.Component):
    """L `LFSR` units side by side, one per block lane: ``seeds[l]`` -> ``states[l][i]``."""

    latency = LFSR.latency

    def __init__(self, L: int, K: int = 16, taps: tuple[int, ...] | None = None, M: int = 1):
        self.L, self.K, self.M = L, K, M
        self.taps = default_taps(K) if taps is None else tuple(taps)
        super().__init__({
            "seeds": In(stream.Signature(data.ArrayLayout(K, L), always_ready=True)),
            "states": Out(stream.Signature(data.ArrayLayout(data.ArrayLayout(K, M), L), always_ready=True)),
        })

    def reference(self, seeds) -> list[list[int]]:
        return [[int(s) for s in lfsr_states(int(seed), self.M, self.K, self.taps)] for seed in seeds]

    def elaborate(self, platform):
        m = Module()
        for lane in range(self.L):
            unit = m.submodules[f"lfsr_{lane}"] = LFSR(self.K, self.taps, self.M)
            m.d.comb += [
                unit.seed.payload.eq(self.seeds.payload[lane]),
                unit.seed.valid.eq(self.seeds.valid),
                self.states.payload[lane].eq(unit.states.payload),
            ]
            if lane == 0:
                m.d.comb += self.states.valid.eq(unit.states.valid)
        return m
