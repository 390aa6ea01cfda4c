"""The Alveo host program of the format §11 kernel: pyxrt on a card, or the Verilated kernel.

    python3 host.py --xclbin seedlm.xclbin --kernel-xml kernel.xml --model model.seedlm
    python3 host.py --verilator --kernel-xml kernel.xml --model model.seedlm --bus-bits 64

Both modes run `check_model`: each compressed tensor's rows are split over the compute units
(`flows.sizing.split_rows`), each CU's row slice (its format §5.3 image) and the activation image
are placed in that CU's bank, the CU is programmed and started through the register offsets read
from kernel.xml (`RemappedPort`), and Y is checked against `gemv_seedlm` bit for bit. On a card a
CU's bank is one pyxrt buffer in the memory `connectivity.cfg` gave it (`XrtKernelPort`; written
without a card to try it on); under Verilator the CUs share the one simulated kernel, each with its
own region of the simulated memory (`alveo_host_tb`).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seedlm_fpga.core.engine_shape import DEFAULT_MAX_DESCRIPTORS, KERNEL_REGISTERS
from seedlm_fpga.core.reference import activation_beats, gemv_seedlm, memory_image
from seedlm_fpga.flows.deploy_alveo import KERNEL, read_kernel_xml
from seedlm_fpga.flows.sizing import split_rows
from seedlm_fpga.sim.kernel_host import KernelGemv, KernelHost, KernelJob, KernelPort, plan_layout

#: bytes of each CU's bank the host uses (one buffer per CU; the largest tensor slice must fit)
BANK_BYTES = 1 << 24


class RemappedPort(KernelPort):
    """A port whose argument registers sit where kernel.xml says (the driver speaks format §11.2).

    Control registers (CTRL, GIE, IER, ISR) and CYCLES are not kernel arguments: they pass through.
    """

    def __init__(self, port: KernelPort, xml_args: dict[str, dict]):
        self.port = port
        self.offsets: dict[int, int] = {}
        for name, arg in xml_args.items():
            for word in range(arg["size"] // 4):
                self.offsets[KERNEL_REGISTERS[name] + 4 * word] = arg["offset"] + 4 * word

    def _at(self, offset: int) -> int:
        return self.offsets.get(offset, offset)

    async def write_reg(self, offset: int, value: int) -> None:
        await self.port.write_reg(self._at(offset), value)

    async def read_reg(self, offset: int) -> int:
        return await self.port.read_reg(self._at(offset))

    def write_mem(self, addr: int, data: bytes) -> None:
        self.port.write_mem(addr, data)

    def read_mem(self, addr: int, n: int) -> bytes:
        return self.port.read_mem(addr, n)

    async def wait_interrupt(self) -> None:
        await self.port.wait_interrupt()


class XrtKernelPort(KernelPort):
    """One compute unit on an Alveo card through pyxrt: its registers and one buffer in its bank."""

    def __init__(self, device, uuid, cu: str, bank_bytes: int = BANK_BYTES):
        import pyxrt
        self.pyxrt = pyxrt
        self.kernel = pyxrt.kernel(device, uuid, f"{KERNEL}:{{{cu}}}", pyxrt.kernel.cu_access_mode.exclusive)
        self.bo = pyxrt.bo(device, bank_bytes, pyxrt.bo.normal, self.kernel.group_id(0))
        self.base = self.bo.address()

    async def write_reg(self, offset: int, value: int) -> None:
        self.kernel.write_register(offset, value)

    async def read_reg(self, offset: int) -> int:
        return self.kernel.read_register(offset)

    def write_mem(self, addr: int, data: bytes) -> None:
        self.bo.write(np.frombuffer(data, dtype=np.uint8), addr - self.base)
        self.bo.sync(self.pyxrt.xclBOSyncDirection.XCL_BO_SYNC_BO_TO_DEVICE, len(data), addr - self.base)

    def read_mem(self, addr: int, n: int) -> bytes:
        self.bo.sync(self.pyxrt.xclBOSyncDirection.XCL_BO_SYNC_BO_FROM_DEVICE, n, addr - self.base)
        return bytes(self.bo.read(n, addr - self.base))


@dataclass
class ComputeUnit:
    host: KernelHost
    base: int        # first address of the CU's bank (its buffer)


def act_image(acts, act_bits: int, acts_per_beat: int, bus_bits: int) -> bytes:
    """format §11.3: word k = activation beat k in its low N·A bits."""
    return b"".join(b.to_bytes(bus_bits // 8, "little") for b in activation_beats(acts, act_bits, acts_per_beat))


async def run_tensor(cus: list[ComputeUnit], enc, acts, bus_bits: int, act_bits: int, acts_per_beat: int) -> list[int]:
    """Y = W a for one tensor, its rows split over the CUs (one start each, from the registers)."""
    rows, cols = enc.shape
    acts_bytes = act_image(acts, act_bits, acts_per_beat, bus_bits)
    y, r0 = [], 0
    for cu, n in zip(cus, split_rows(rows, len(cus))):
        if n == 0:
            continue
        part = slice(r0, r0 + n)
        weights = memory_image(enc.seeds[part], enc.x[part], enc.q[part], enc.preset, bus_bits)
        job = KernelJob(cols, acts_bytes, (KernelGemv(weights, n),), descriptors=False)
        run = await cu.host.run(job, plan_layout(job, bus_bits, base=cu.base), interrupt=False)
        y += run.y[0]
        r0 += n
    return y


async def check_model(cus: list[ComputeUnit], tensors, bus_bits: int, act_bits: int, acts_per_beat: int,
                      seed: int = 0) -> list[dict]:
    """Every tensor once, random int8 activations; each result says whether Y was bit-exact."""
    rng = np.random.default_rng(seed)
    out = []
    for name, enc in tensors:
        acts = rng.integers(-(1 << (act_bits - 1)), 1 << (act_bits - 1), enc.shape[1])
        got = await run_tensor(cus, enc, acts, bus_bits, act_bits, acts_per_beat)
        want = [int(v) for v in gemv_seedlm(enc.seeds, enc.x, enc.q, acts, enc.preset)]
        out.append({"tensor": name, "rows": enc.shape[0], "cols": enc.shape[1], "bit_exact": got == want,
                    "y": [str(v) for v in got], "expected": [str(v) for v in want]})
    return out


def model_tensors(path, limit: int | None = None) -> list:
    from seedlm_fpga.compressor.container import read_container
    tensors = sorted(read_container(path).compressed.items())
    return tensors[:limit] if limit else tensors


def run_on_card(xclbin: Path, kernel_xml: Path, model: Path, instances: int, device_index: int,
                bus_bits: int, act_bits: int, acts_per_beat: int, max_cols: int, limit: int | None) -> list[dict]:
    import pyxrt
    device = pyxrt.device(device_index)
    uuid = device.load_xclbin(str(xclbin))
    xml_args = read_kernel_xml(kernel_xml.read_text())
    cus = []
    for i in range(instances):
        port = XrtKernelPort(device, uuid, f"{KERNEL}_{i + 1}")
        cus.append(ComputeUnit(KernelHost(RemappedPort(port, xml_args), bus_bits, max_cols, DEFAULT_MAX_DESCRIPTORS),
                               port.base))
    return asyncio.run(check_model(cus, model_tensors(model, limit), bus_bits, act_bits, acts_per_beat))


def run_verilated(kernel_xml: Path, model: Path, instances: int, bus_bits: int, limit: int | None = None,
                  latency: int = 16, seed: int = 0) -> list[dict]:
    """`check_model` inside cocotb on the generated kernel (sim/alveo_host_tb.py)."""
    from seedlm_fpga.sim import cosim_build
    from seedlm_fpga.sim.kernel_runner import BASE_ADDRESS, generated_kernel

    tensors = model_tensors(model, limit)
    preset = tensors[0][1].preset.name
    max_cols = max(t.shape[1] for _, t in tensors)
    kernel = generated_kernel(preset, bus_bits, 8, max_cols=max_cols)
    stim = {"bus_bits": bus_bits, "act_bits": kernel.act_bits, "acts_per_beat": kernel.acts_per_beat,
            "max_cols": kernel.max_cols, "max_descriptors": kernel.max_descriptors, "max_burst": kernel.max_burst,
            "latency": latency, "seed": seed, "instances": instances, "bank_bytes": BANK_BYTES,
            "base": BASE_ADDRESS, "model": str(Path(model).resolve()), "limit": limit,
            "kernel_xml": Path(kernel_xml).read_text()}
    sim = cosim_build.simulate(kernel.build(), stim, test_module="seedlm_fpga.sim.alveo_host_tb")
    return sim["results"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="host.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--xclbin", type=Path, help="the card's xclbin (v++ -l output)")
    where.add_argument("--verilator", action="store_true", help="the Verilated kernel instead of a card")
    parser.add_argument("--kernel-xml", type=Path, required=True, help="kernel.xml (register offsets)")
    parser.add_argument("--model", type=Path, required=True, help="a .seedlm file")
    parser.add_argument("--design", type=Path, default=Path("rtl") / "design.json",
                        help="the kernel's design.json (bus width, activations per beat)")
    parser.add_argument("--instances", type=int, default=1, help="compute units (connectivity.cfg's nk)")
    parser.add_argument("--bus-bits", type=int, help="--verilator: the kernel's bus width (default: design.json)")
    parser.add_argument("--device", type=int, default=0, help="XRT device index")
    parser.add_argument("--tensors", type=int, help="check only the first N tensors")
    args = parser.parse_args(argv)
    if args.verilator:
        bus_bits = args.bus_bits or json.loads(args.design.read_text())["weight_bits"]
        results = run_verilated(args.kernel_xml, args.model, args.instances, bus_bits, args.tensors)
    else:
        d = json.loads(args.design.read_text())
        results = run_on_card(args.xclbin, args.kernel_xml, args.model, args.instances, args.device,
                              d["weight_bits"], d["act_bits"], d["acts_per_beat"], d["max_cols"], args.tensors)
    for r in results:
        print(f"{r['tensor']}: {r['rows']} x {r['cols']}: {'bit-exact' if r['bit_exact'] else 'MISMATCH'}")
    return 0 if all(r["bit_exact"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
