"""Re-measure the README's ULX3S-85F row: deploy the stories260K bitstream and print its figures.

    python benchmarks/deploy_ulx3s.py [--checkpoint X.seedlm] [--seed N]

About 2.5 minutes on 2 cores (compressing stories260K first when no checkpoint is given adds
about a minute). The figures come from `seedlm-fpga deploy`'s report (yosys cell counts as
`synth` counts them, nextpnr-ecp5's Fmax) and its link model (`flows.deploy_ulx3s.link_figures`).
"""
import argparse
import tempfile
from pathlib import Path

from seedlm_fpga.cli.deploy import deploy_for_board


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        r = deploy_for_board("ulx3s-85f", Path(tmp), args.checkpoint, args.seed)
    res, blocks = r["resources"], r["utilization"].get("DP16KD", {}).get("used", 0)
    print("| ULX3S-85F top | LUT | FF | DSP | EBR | Fmax | clock | tokens/s over the UART |")
    print(f"| {len(r['tensors'])} tensors, {r['weights']['kbits']:,} Kb | {res['lut']:,.0f} | {res['ff']:,.0f} | "
          f"{res['dsp']:,.0f} | {blocks} DP16KD ({res['ebr_kbits']:,.0f} Kb) | {r['fmax_mhz']} MHz | "
          f"{r['target_mhz']:g} MHz | about {r['link']['tokens_per_s']} |")


if __name__ == "__main__":
    main()
