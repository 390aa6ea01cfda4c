"""Compression error and perplexity of a .seedlm file against data-free baselines.

Compares COMPRESSED with the checkpoint it came from (--reference): relative error
||W - W_hat|| / ||W|| per tensor for the file and for round-to-nearest (per row and groups
of 32/64/128, fp16 scales) and block floating point (groups of 128, 8-bit exponent) at 4
and 3 bits, all quantizing the same tensors. For a llama2.c checkpoint it also runs the
model and reports perplexity over the first N stories of --text (stories end with a line
<|endoftext|>; one pass per story, BOS + story, at most seq_len tokens): the original, the
file decoded to floats, and the file through the FPGA's exact integer GEMV (format §6, int8
activations with one scale per vector). --compare adds rows for more .seedlm files of the
same tensors (say, other presets or biases); --sweep re-encodes the tensors at seedlm-4 and
seedlm-3 with the paper's bias and ours (slow on CPU the first time; cached).
--extensions re-encodes them with 0.5% outliers, a rank-1 residual and both (format §5.5);
--budget B... adds rows that choose each tensor's variant (plain or extended, seedlm-4 or
seedlm-3) for at most B bits/weight by weight error; --plot writes perplexity against
bits/weight for every row with the Pareto front. HQQ and NF4 rows need the `quality` extra
(optimum-quanto, torchao); without it the report says so and shows RTN and BFP only.

Token ids and sweep encodings are cached in $XDG_CACHE_HOME/seedlm-fpga (or
~/.cache/seedlm-fpga; $SEEDLM_FPGA_CACHE overrides).
"""
from __future__ import annotations

import sys
from pathlib import Path

from seedlm_fpga.core.report import dumps, report_dict
from seedlm_fpga.core import progress as steps
from seedlm_fpga.core.files import check_output_file
from seedlm_fpga.errors import UserError
from seedlm_fpga.examples import MODEL

DEFAULT_TEXT = "tinystories_val.txt"


def add_arguments(parser) -> None:
    parser.add_argument("compressed", help="the .seedlm file")
    parser.add_argument("--reference", default=str(MODEL), metavar="CKPT",
                        help="the original checkpoint, llama2.c .bin for perplexity (default: the shipped "
                             "examples/stories260K.bin)")
    parser.add_argument("--text", help=f"stories for perplexity (default: {DEFAULT_TEXT} next to the reference)")
    parser.add_argument("--tokenizer", help="llama2.c tokenizer (default: tok<vocab>.bin or tokenizer.bin "
                                            "next to the reference)")
    parser.add_argument("--stories", type=int, default=100, metavar="N", help="first N stories (default 100)")
    parser.add_argument("--compare", nargs="+", default=[], metavar="SEEDLM",
                        help="more .seedlm files of the same reference, shown as rows")
    parser.add_argument("--sweep", action="store_true",
                        help="also re-encode seedlm-4/seedlm-3 with the paper's bias and ours")
    parser.add_argument("--extensions", action="store_true",
                        help="also re-encode seedlm-4/seedlm-3 with 0.5%% outliers, rank 1 and both (format §5.5)")
    parser.add_argument("--budget", type=float, nargs="+", default=[], metavar="BITS",
                        help="rows choosing each tensor's variant for at most BITS bits/weight (least weight error)")
    parser.add_argument("--plot", metavar="PNG", help="write perplexity vs bits/weight (Pareto front) to PNG")
    parser.add_argument("--device", default="cpu", help="where --sweep encodes run: cpu or cuda (default cpu)")
    parser.add_argument("--no-perplexity", action="store_true", help="tensor errors only")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")


def _language_model(args):
    """(LanguageModelData or None, note): perplexity needs a llama2.c model, a tokenizer and text."""
    from seedlm_fpga.evaluation.evaluate import LanguageModelData
    from seedlm_fpga.compressor.llama2c import is_llama2c, read_llama2c_config
    from seedlm_fpga.evaluation.tokenizer import Tokenizer, encode_stories

    ref = Path(args.reference)
    if args.no_perplexity:
        return None, None
    if not (ref.is_file() and is_llama2c(ref)):
        if args.text:
            raise UserError(f"--text needs a llama2.c reference to run; {ref} is not one")
        return None, "no perplexity: the reference is not a llama2.c checkpoint"
    cfg = read_llama2c_config(ref)
    if args.stories < 1:
        raise UserError(f"--stories must be at least 1, got {args.stories}")
    text = Path(args.text) if args.text else ref.parent / DEFAULT_TEXT
    if not text.is_file():
        if args.text:
            raise UserError(f"{text}: no such file")
        return None, f"no perplexity: no --text given and no {DEFAULT_TEXT} next to the reference"
    if args.tokenizer:
        tok_path = Path(args.tokenizer)
    else:
        candidates = [ref.parent / f"tok{cfg.vocab_size}.bin", ref.parent / "tokenizer.bin"]
        tok_path = next((p for p in candidates if p.is_file()), None)
        if tok_path is None:
            raise UserError(f"no tokenizer: pass --tokenizer (looked for {', '.join(p.name for p in candidates)} "
                            f"next to {ref})")
    tok = Tokenizer.load(tok_path, cfg.vocab_size)
    stories = encode_stories(text, tok, args.stories)
    if len(stories) < args.stories:
        raise UserError(f"{text} holds {len(stories)} stories, fewer than --stories {args.stories}")
    return LanguageModelData(cfg, stories), None


def _variants(args) -> list:
    """--extensions' variants; --budget chooses among those and the plain presets."""
    from seedlm_fpga.compressor.extend import EXTENSION_VARIANTS, Variant
    from seedlm_fpga.core.reference import PRESETS

    plain = [Variant(p) for p in PRESETS] if args.budget else []
    return plain + (list(EXTENSION_VARIANTS) if args.extensions or args.budget else [])


def run(args) -> int:
    from tqdm import tqdm

    from seedlm_fpga.evaluation.evaluate import SWEEP, evaluate, format_report

    lm, note = _language_model(args)
    if args.device != "cpu" and not (args.sweep or args.extensions or args.budget):
        raise UserError("--device only applies to --sweep, --extensions and --budget encodes")
    for b in args.budget:
        if not 0 < b < 64:
            raise UserError(f"--budget must be bits/weight figures in (0, 64), got {b:g}")
    plot = None
    if args.plot:
        plot = check_output_file(args.plot)
        if lm is None:
            raise UserError("--plot needs perplexity: a llama2.c reference with its text and tokenizer")
    def progress(total: int, desc: str):
        """A live bar on a terminal; elsewhere (CI logs, pipes) a start and an end line per run."""
        if sys.stderr.isatty():
            return tqdm(total=total, desc=desc[:40], unit="story", file=sys.stderr, leave=False,
                        dynamic_ncols=True)
        return steps.StepBar(f"perplexity: {desc}", total, unit="story")

    ev = evaluate(args.compressed, args.reference, lm, compare=args.compare,
                  sweep=SWEEP if args.sweep else (), variants=_variants(args), budgets=args.budget,
                  device=args.device,
                  progress=progress, log=lambda m: print(m, file=sys.stderr))
    if note:
        ev.notes.append(note)
    if plot is not None:
        from seedlm_fpga.evaluation.pareto_plot import plot_pareto

        plot_pareto(ev.to_json(), plot, f"{Path(args.reference).name}: perplexity vs bits/weight "
                                        f"({ev.stories} stories)")
    if args.json:
        inputs = [args.compressed, *args.compare, args.reference, args.text, args.tokenizer]
        print(dumps(report_dict(ev.to_json(), inputs=inputs)), end="")
    else:
        print(format_report(ev))
    return 0
