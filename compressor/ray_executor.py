"""Run compression units (compressor/job.py) as Ray tasks: local cores, GPUs, or a cluster.

Imported only for `compress --ray`; Ray is an optional extra (``pip install 'seedlm-fpga[ray]'``).

- Each unit is one task (`max_retries` = 3: a worker process or node that dies mid-unit is
  retried by Ray, and since only the driver writes, nothing half-written lands anywhere).
- A task gets the checkpoint's *path* and the unit's row range, opens the checkpoint itself
  (headers only for safetensors / HF shards) and reads just its rows: nothing large travels
  through the object store but the results. On a cluster every node must therefore see the
  checkpoint at the same path (a shared file system), and have seedlm-fpga installed.
- The driver keeps a bounded number of tasks in flight (2 per CPU, or per GPU with
  --device cuda), saves each result to OUT.partial/ as `ray.wait` hands it over, and feeds
  one progress bar.
- --device cuda: each task asks Ray for one GPU (num_gpus=1) and searches on it; Ray points
  the worker's CUDA_VISIBLE_DEVICES at that GPU. CPU tasks ask for one CPU and run numba
  on one thread (Ray sets the parallelism, not numba).

Without an address, `ray.init()` starts an embedded local Ray on this machine (or joins the
cluster named by RAY_ADDRESS, Ray's own rule); if this process already called ray.init()
that session is used and left running.
"""
from __future__ import annotations

import os
import signal
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from seedlm_fpga.core.reference import Preset
from seedlm_fpga.errors import UserError

#: Ray retries a task whose worker died this many times before the run fails (then --resume).
MAX_RETRIES = 3
#: Fault injection for tests: a path; the first task to create it SIGKILLs its own worker.
KILL_ONCE_ENV = "SEEDLM_FPGA_TEST_KILL_WORKER_ONCE"


@lru_cache(maxsize=2)
def _tensors(path: str):
    from seedlm_fpga.compressor.checkpoints import load_checkpoint

    return load_checkpoint(path).tensors


def _encode_task(path: str, unit, preset: Preset, device: str):
    """A Ray task: one unit's blocks (EncodedTensor), read and encoded on the worker."""
    marker = os.environ.get(KILL_ONCE_ENV)
    if marker:
        try:
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            os.kill(os.getpid(), signal.SIGKILL)
        except FileExistsError:
            pass
    if device == "cpu":
        try:
            import numba

            numba.set_num_threads(1)
        except (ImportError, ValueError):  # pragma: no cover
            pass
    from seedlm_fpga.compressor.job import encode_unit

    try:
        return encode_unit(_tensors(path), unit, preset, device)
    except ValueError as exc:
        raise UserError(f"tensor {unit.name!r}: {exc}") from None


def _ray():
    try:
        import ray
    except ImportError:
        raise UserError("--ray needs Ray: pip install 'seedlm-fpga[ray]' (or pip install 'ray>=2,<3')") from None
    return ray


@contextmanager
def ray_executor(path: str | Path, preset: Preset, device: str = "cpu", address: str | None = None,
                 max_retries: int = MAX_RETRIES, max_in_flight: int | None = None):
    """An executor (see compressor.job) running each unit as a Ray task; `with` starts Ray if
    needed (embedded local, or the cluster at `address`) and shuts down only what it started."""
    ray = _ray()
    started = False
    if not ray.is_initialized():
        try:
            ray.init(address=address, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise UserError(f"--ray {address or ''}: cannot start or reach Ray ({str(exc).splitlines()[0]})") from None
        started = True
    gpu = device != "cpu"
    resource = "GPU" if gpu else "CPU"
    slots = int(ray.cluster_resources().get(resource, 0))
    if slots < 1:
        raise UserError(f"--ray with --device {device}: the Ray cluster has no {resource}")
    limit = max_in_flight or 2 * slots
    task = ray.remote(_encode_task).options(max_retries=max_retries, retry_exceptions=False,
                                            num_cpus=0 if gpu else 1, num_gpus=1 if gpu else 0)
    path = str(Path(path).resolve())

    def execute(units, on_done) -> None:
        pending = iter(units)
        in_flight = {}
        try:
            while True:
                while len(in_flight) < limit:
                    unit = next(pending, None)
                    if unit is None:
                        break
                    in_flight[task.remote(path, unit, preset, "cuda" if gpu else "cpu")] = unit
                if not in_flight:
                    return
                ready, _ = ray.wait(list(in_flight), num_returns=1)
                for ref in ready:
                    unit = in_flight.pop(ref)
                    try:
                        enc = ray.get(ref)
                    except ray.exceptions.RayTaskError as exc:
                        cause = exc.cause if isinstance(getattr(exc, "cause", None), BaseException) else None
                        if isinstance(cause, UserError):
                            raise UserError(str(cause)) from None
                        raise
                    on_done(unit, enc)
        finally:
            for ref in in_flight:  # stop what is still running (interrupt, error)
                ray.cancel(ref, force=True)

    try:
        yield execute
    finally:
        if started:
            ray.shutdown()
