"""Compress a checkpoint to a .seedlm file (data-free: no calibration data).

Reads a .safetensors file, a Hugging Face model folder, a torch state dict (.pt/.bin) or a
llama2.c checkpoint. By default every 2-D floating tensor with at least C columns is
compressed, except embeddings and the output head; --include/--exclude (regexes searched in
tensor names) change that. Everything else is carried into the container unchanged.

Work is cut into row chunks of tensors (compressor/job.py); each finished chunk is kept in
OUT.partial/ while the run goes on: after an interruption (Ctrl-C, SIGKILL), --resume
continues without redoing them. OUT itself appears only when complete. --ray spreads the
chunks over Ray tasks (compressor/ray_executor.py); the output bytes are the same.

--outliers F keeps the fraction F of each tensor's largest weights in a sparse part and --rank R
a rank-R product beside the blocks (format §5.5; the file becomes format_version 2). --budget BITS
picks, per tensor, seedlm-4 or seedlm-3, each plain, with outliers, with a low-rank part or with
both, so that the compressed tensors average at most BITS bits/weight (everything stored counted)
with the least weight error; it encodes every tensor once per candidate, in memory.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

from typing import TYPE_CHECKING

import numpy as np

from seedlm_fpga import __version__
from seedlm_fpga.core.files import check_not_input, check_output_file, read_input_text, write_text_atomic
from seedlm_fpga.core.numeric import relative_error
from seedlm_fpga.core.reference import PRESETS, bias_range, get_preset
from seedlm_fpga.core.text import format_table
from seedlm_fpga.errors import UserError, UserOSError

if TYPE_CHECKING:  # torch and the readers load when the command runs, not for --help
    import torch

    from seedlm_fpga.compressor.checkpoints import Checkpoint


def add_arguments(parser) -> None:
    parser.add_argument("input", help="checkpoint: .safetensors, HF model folder, .pt/.bin state dict, llama2.c .bin")
    parser.add_argument("-o", "--output", required=True, help="the .seedlm file to write")
    parser.add_argument("--preset", default="seedlm-4", help=f"one of {', '.join(PRESETS)} (default seedlm-4)")
    parser.add_argument("--bias", default="auto",
                        help="per-tensor exponent bias: 'auto' (the largest block exponent lands at x=15), "
                             "'paper' (b=-10, the paper's absolute exponent) or an integer (default auto)")
    parser.add_argument("--device", default="cpu", help="where the seed search runs: cpu or cuda (default cpu)")
    parser.add_argument("--include", metavar="RE", help="compress exactly the 2-D floating tensors whose name matches RE")
    parser.add_argument("--exclude", metavar="RE", help="do not compress tensors whose name matches RE")
    parser.add_argument("--outliers", type=float, metavar="F",
                        help="keep the fraction F (0 < F <= 0.5, e.g. 0.005) of each tensor's largest-magnitude "
                             "weights in a sparse part (int16 codes in CSR, format §5.5); SeedLM encodes the rest")
    parser.add_argument("--rank", type=int, metavar="R",
                        help="store a rank-R product (int8 factors, format §5.5) and SeedLM-encode the residual")
    parser.add_argument("--budget", type=float, metavar="BITS",
                        help="choose each tensor's preset and extensions (with --outliers/--rank as their sizes; "
                             "default 0.5%% and rank 1) to average at most BITS bits/weight, least weight error; "
                             "--preset is then ignored")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run from OUT.partial/")
    parser.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                        help="run the chunks as Ray tasks: on an embedded local Ray (no ADDRESS), or on the "
                             "running cluster at ADDRESS ('auto', 'ray://host:10001', ...); needs the [ray] "
                             "extra, and every node must see INPUT and OUT.partial/ at the same paths")


def _parse_bias(text: str):
    if text in ("auto", "paper"):
        return text
    from seedlm_fpga.compressor.encoder import resolve_bias

    try:
        value = int(text)
    except ValueError:
        raise UserError(f"--bias must be 'auto', 'paper' or an integer, got {text!r}") from None
    return resolve_bias(value, np.zeros((1, 1)), get_preset("seedlm-4"))  # checks the range


def _check_device(device: str) -> None:
    if device != "cpu" and not device.startswith("cuda"):
        raise UserError(f"--device must be cpu or cuda, got {device!r}")
    import torch

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {device}: no CUDA device available (torch.cuda.is_available() is False)")


def _check_finite(name: str, bad: int) -> None:
    if bad:
        raise UserError(f"tensor {name!r} has {bad} NaN/Inf weight{'s' if bad > 1 else ''}")


def _check_bias(name: str, bias, t: torch.Tensor) -> None:
    """An explicit bias must suit the tensor's dtype (format §3.2), checked before any encoding."""
    if isinstance(bias, str):
        return
    dtype = str(t.dtype).removeprefix("torch.")
    lo, hi = bias_range(dtype)
    if not lo <= bias <= hi:
        raise UserError(f"--bias {bias}: out of range {lo}..{hi} for tensor {name!r} ({dtype}, format §3.2)")


# --- resumable partial state ---------------------------------------------------------------------

class PartialState:
    """OUT.partial/: state.json (what is being compressed, with which flags) + one mini
    .seedlm per finished chunk (compressor.job.ChunkStore). Same input and flags resume; anything else is refused.

    The folder is ours only if it holds our marker (state.json with MARKER); a user's own
    folder, a file or a symlink of that name is never touched. A run holds an exclusive lock
    on OUT.partial/lock while it works, so a second run on the same output is refused instead
    of deleting the first one's state.
    """

    MARKER = "seedlm-fpga compress partial state"

    def __init__(self, output: Path, fingerprint: dict):
        self.dir = output.with_name(output.name + ".partial")
        self.fingerprint = {"marker": self.MARKER, **fingerprint}
        self._lock = None

    def _found(self):
        """The fingerprint in an existing OUT.partial/, after checking the folder is ours."""
        if self.dir.is_symlink() or (os.path.lexists(self.dir) and not self.dir.is_dir()):
            raise UserError(f"{self.dir} exists and is not a folder this tool made; move it away")
        state = self.dir / "state.json"
        try:
            found = json.loads(read_input_text(state, "partial state", 1 << 24))
        except (UserError, ValueError, RecursionError):
            found = None
        if not isinstance(found, dict) or found.get("marker") != self.MARKER:
            raise UserError(f"{self.dir} exists and was not made by seedlm-fpga compress; move it away "
                            f"or choose another output")
        return found

    def _take_lock(self) -> None:
        import fcntl

        try:
            fd = os.open(self.dir / "lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666)
        except OSError as exc:
            raise UserOSError(f"{self.dir}: cannot lock ({exc.strerror or exc})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise UserError(f"another seedlm-fpga compress is writing {self.dir.name[:-len('.partial')]} "
                            f"(it holds {self.dir}); wait for it or choose another output") from None
        self._lock = fd

    def start(self, resume: bool) -> None:
        if os.path.lexists(self.dir):
            found = self._found()
            self._take_lock()
            if resume and found == self.fingerprint:
                return
            if resume:
                self._release()
                raise UserError(f"{self.dir} holds a run with another input or other flags; "
                                f"delete it or run without --resume")
            self.remove()  # ours, and no run holds it: start over
        try:
            self.dir.mkdir()
        except FileExistsError:
            raise UserError(f"another seedlm-fpga compress started on {self.dir} at the same time; "
                            f"wait for it or choose another output") from None
        except OSError as exc:
            raise UserOSError(f"{self.dir}: cannot create ({exc.strerror or exc})") from None
        self._take_lock()
        write_text_atomic(self.dir / "state.json", json.dumps(self.fingerprint, sort_keys=True))

    def _release(self) -> None:
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def remove(self) -> None:
        """Delete OUT.partial/ (only ever called once it is known to be ours, lock held)."""
        if self.dir.is_dir() and not self.dir.is_symlink():
            shutil.rmtree(self.dir)
        self._release()

    def keep(self) -> None:
        self._release()


def _fingerprint(ckpt: Checkpoint, args, names: list[str]) -> dict:
    root = ckpt.path
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
    stats = [[str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns] for p in files]
    from seedlm_fpga.compressor.job import CHUNK_BLOCKS

    extensions = {"outliers": args.outliers, "rank": args.rank} if args.outliers or args.rank else {}
    return {"input": stats, "preset": args.preset, "bias": args.bias, "tensors": names,
            "chunk_blocks": CHUNK_BLOCKS, "version": __version__, **extensions}


def _check_extension_args(args) -> None:
    from seedlm_fpga.core.extensions import MAX_OUTLIER_FRACTION

    if args.outliers is not None and not 0 < args.outliers <= MAX_OUTLIER_FRACTION:
        raise UserError(f"--outliers must be a fraction in (0, {MAX_OUTLIER_FRACTION}], got {args.outliers}")
    if args.rank is not None and args.rank < 1:
        raise UserError(f"--rank must be at least 1, got {args.rank}")
    if args.budget is not None and not 0 < args.budget < 64:
        raise UserError(f"--budget must be a bits/weight figure in (0, 64), got {args.budget}")
    extended = args.outliers is not None or args.rank is not None or args.budget is not None
    if extended and args.ray is not None:
        raise UserError("--outliers, --rank and --budget need whole tensors in this process; drop --ray")
    if args.budget is not None and args.resume:
        raise UserError("--budget encodes in memory and cannot --resume")


# --- the command ---------------------------------------------------------------------------------

def run(args) -> int:
    from seedlm_fpga.compressor.checkpoints import load_checkpoint, select_tensors
    from seedlm_fpga.compressor.container import Deferred, write_container
    from seedlm_fpga.compressor.job import scan_tensor, tensor_bias

    try:
        preset = get_preset(args.preset)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    bias = _parse_bias(args.bias)
    _check_extension_args(args)
    _check_device(args.device)
    output = check_output_file(args.output)
    ckpt = load_checkpoint(args.input)  # headers only where the format allows (safetensors, HF shards)
    partial_dir = output.with_name(output.name + ".partial")
    check_not_input(output, ckpt.files)
    check_not_input(partial_dir, [ckpt.path, *ckpt.files])
    names = select_tensors(ckpt.tensors, preset.C, args.include, args.exclude)
    biases = {}
    for name in names:  # one streaming pass: NaN/Inf and max |w| (the "auto" bias), before any encoding
        wmax, bad = scan_tensor(ckpt.tensors, name)
        _check_finite(name, bad)
        _check_bias(name, bias, ckpt.tensors.meta(name))
        biases[name] = tensor_bias(bias, wmax, preset)
    if args.budget is not None:
        return _compress_budget(ckpt, names, bias, args, output)
    tensors, extensions = _split(ckpt, names, preset, bias, biases, args)

    partial = PartialState(output, _fingerprint(ckpt, args, names))
    partial.start(args.resume)
    try:
        compressed = _compress_all(ckpt, tensors, names, preset, biases, args, partial)
        chosen = set(names)
        carried = {n: Deferred(ckpt.tensors.meta(n), lambda n=n: ckpt.tensors[n])  # streamed, one at a time
                   for n in ckpt.tensors if n not in chosen}
        dtypes = {n: str(ckpt.tensors.meta(n).dtype).removeprefix("torch.") for n in names}
        extra = {"seedlm.source": ckpt.path.name, "seedlm.source_format": ckpt.kind,
                 "seedlm.generator": f"seedlm-fpga {__version__}"}
        extra |= {f"seedlm.{k}": v for k, v in ckpt.info.items()}
        write_container(output, compressed, carried, extra_metadata=extra, dtypes=dtypes, extensions=extensions)
    except UserError:
        partial.remove()  # bad input: nothing worth resuming
        raise
    except BaseException:
        if sys.exc_info()[0] is KeyboardInterrupt:
            print(f"finished tensors are kept in {partial.dir}; rerun with --resume to continue",
                  file=sys.stderr)
        partial.keep()
        raise
    partial.remove()
    _print_report(ckpt, compressed, carried, output, extensions)
    return 0


def _split(ckpt, names, preset, bias, biases, args):
    """(the tensors to encode, extensions): with --outliers/--rank each tensor is split in memory
    (format §5.5) and its bias becomes that of its dense residual."""
    from seedlm_fpga.compressor.extend import ResidualTensors, Variant, check_rank, split_variant
    from seedlm_fpga.compressor.job import as_weights

    if args.outliers is None and args.rank is None:
        return ckpt.tensors, {}
    variant = Variant(preset.name, args.outliers or 0.0, args.rank or 0)
    parts, extensions = {}, {}
    for name in names:  # one tensor in memory at a time; only its (small) parts are kept
        w = as_weights(ckpt.tensors[name])
        try:
            check_rank(variant.rank, w.shape, name)
            _, biases[name], extensions[name] = split_variant(w, variant, bias)
        except ValueError as exc:
            raise UserError(f"tensor {name!r}: {exc}") from None
        parts[name] = (extensions[name], biases[name], preset.K)
    return ResidualTensors(ckpt.tensors, parts), extensions


def _compress_budget(ckpt, names, bias, args, output: Path) -> int:
    from seedlm_fpga.compressor.container import Deferred, write_container
    from seedlm_fpga.compressor.extend import budget_variants, choose_variants
    from seedlm_fpga.compressor.job import as_weights

    variants = budget_variants(args.outliers, args.rank)

    def progress(name, v):
        print(f"encoding {name} as {v.label} ...", file=sys.stderr)

    try:
        choices = choose_variants(names, lambda n: as_weights(ckpt.tensors[n]), variants, args.budget, bias,
                                  progress=progress, shapes={n: tuple(ckpt.tensors.meta(n).shape) for n in names},
                                  encode=lambda w, p, b: _encode(w, p, b, args.device))
    except ValueError as exc:
        raise UserError(f"--budget {args.budget}: {exc}") from None
    compressed = {n: c.enc for n, c in choices.items()}
    extensions = {n: c.ext for n, c in choices.items() if c.ext}
    carried = {n: Deferred(ckpt.tensors.meta(n), lambda n=n: ckpt.tensors[n]) for n in ckpt.tensors if n not in choices}
    dtypes = {n: str(ckpt.tensors.meta(n).dtype).removeprefix("torch.") for n in names}
    extra = {"seedlm.source": ckpt.path.name, "seedlm.source_format": ckpt.kind,
             "seedlm.generator": f"seedlm-fpga {__version__}", "seedlm.budget": str(args.budget)}
    write_container(output, compressed, carried, extra_metadata=extra, dtypes=dtypes, extensions=extensions)
    _print_report(ckpt, compressed, carried, output, extensions, {n: c.variant.label for n, c in choices.items()})
    return 0


def _encode(w, preset, bias, device):
    from seedlm_fpga.compressor.encoder import encode_tensor

    try:
        return encode_tensor(w, preset, bias=bias, device=device)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def _compress_all(ckpt, tensors, names, preset, biases, args, partial: PartialState) -> dict:
    from tqdm import tqdm

    from seedlm_fpga.compressor.job import ChunkStore, local_executor, run_job, tensor_units

    units = [u for n in names for u in tensor_units(n, tuple(ckpt.tensors.meta(n).shape), preset, biases[n])]
    with tqdm(total=sum(u.blocks for u in units), unit="block", unit_scale=True, file=sys.stderr,
              disable=None, dynamic_ncols=True, desc=f"{len(names)} tensors, {len(units)} chunks") as bar:
        if args.ray is None:
            return run_job(units, preset, ChunkStore(partial.dir), local_executor(tensors, preset, args.device),
                           bar.update)
        from seedlm_fpga.compressor.ray_executor import ray_executor

        address = None if args.ray == "local" else args.ray
        with ray_executor(ckpt.path, preset, args.device, address=address) as execute:
            return run_job(units, preset, ChunkStore(partial.dir), execute, bar.update)


def _print_report(ckpt, compressed, carried, output: Path, extensions=None, labels=None) -> None:
    import torch

    from seedlm_fpga.compressor.container import bits_per_weight, natural_key, packed_bytes
    from seedlm_fpga.core.extensions import decode_extended

    extensions = extensions or {}
    rows = []
    for name, enc in sorted(compressed.items(), key=lambda item: natural_key(item[0])):
        ext = extensions.get(name)
        err = relative_error(ckpt.tensors[name].to(torch.float64).numpy(), decode_extended(enc, ext))
        what = labels[name] if labels else enc.preset.name
        if ext and not labels:
            what += "".join([f" + {ext.sparse.nnz} outliers" if ext.sparse else "",
                             f" + rank {ext.lowrank.rank}" if ext.lowrank else ""])
        rows.append([name, "x".join(map(str, enc.shape)), what, str(enc.bias),
                     f"{bits_per_weight(enc, ext):.3f}", f"{err:.4f}"])
    head = ["tensor", "shape", "preset", "bias", "bits/weight", "rel.error"]
    print(format_table(head, rows, right={1, 3, 4, 5}))
    n_w = sum(e.shape[0] * e.shape[1] for e in compressed.values())
    metas = {n: ckpt.tensors.meta(n) for n in ckpt.tensors}
    orig = sum(metas[n].numel() * metas[n].element_size() for n in compressed)
    packed = sum(packed_bytes(e, extensions.get(n)) for n, e in compressed.items())
    carried_bytes = sum(metas[n].numel() * metas[n].element_size() for n in carried)
    print(f"\ncompressed {len(compressed)} tensors, {n_w:,} weights: {packed * 8 / n_w:.3f} bits/weight "
          f"(padding counted), {orig:,} -> {packed:,} bytes")
    print(f"carried {len(carried)} tensors unchanged: {carried_bytes:,} bytes")
    print(f"wrote {output} ({output.stat().st_size:,} bytes)")
