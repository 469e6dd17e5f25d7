"""The `Accelerator` of a DKI run, built from how the run was launched, and its experiment trackers.

Why this module: accelerate picks its distributed backend from the launch environment, and on a machine without a
GPU it only forms a process group when told to use the CPU. `torchrun --nproc_per_node N` (and `accelerate launch
--multi_gpu --num_processes N`) on such a machine set RANK / WORLD_SIZE / LOCAL_RANK, yet `Accelerator()` answers
"1 process" on every rank (it looks for a GPU backend, finds none, and falls back to a single process), so N
processes each trained alone and wrote the same folder. Here a multi-process launch without CUDA asks accelerate for
the CPU explicitly, which makes it a gloo process group (DistributedType.MULTI_CPU).

`accelerate launch --cpu --num_processes N` is another matter, and accelerate's: with `--cpu` its launcher runs the
script once (several CPU processes only through MPI, `--mpirun_hostfile`), so there is nothing to join. We detect
that launch (ACCELERATE_USE_CPU with MASTER_ADDR set but no WORLD_SIZE) and say what to run instead.

Trackers are accelerate's (`log_with`, as diffusers' example scripts pass `--report_to`): "tensorboard" writes under
OUT/logs, "wandb" uses the user's wandb setup, "none" logs nothing besides the loss curve PNG and the run record.
This module trains nothing.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from .errors import DKIError

REPORT_TO = ("none", "tensorboard", "wandb")
LOG_DIR = "logs"  # OUT/logs/<project>/: TensorBoard event files
_TRACKER_PACKAGES = {"tensorboard": ("tensorboard", "tensorboardX"), "wandb": ("wandb",)}
_CPU_LAUNCH_NOTE = (
    "`accelerate launch --cpu` started this command once: accelerate runs several CPU processes on one machine only "
    "through MPI (--mpirun_hostfile), so --num_processes was not applied and this run is 1 process. For N CPU "
    "processes run `torchrun --nproc_per_node N -m r2r.cli ...` or `accelerate launch --multi_gpu --num_processes N "
    "-m r2r.cli ...` (without --cpu: on a machine without a GPU the run uses gloo on the CPU)."
)


def launched_processes(env: os._Environ | dict | None = None) -> int:
    """How many processes the launcher (torchrun, accelerate, MPI) says this run has; 1 when not launched."""
    env = os.environ if env is None else env
    for name in ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE"):
        value = env.get(name)
        if value:
            try:
                return max(1, int(value))
            except ValueError:
                raise DKIError(f"{name}={value!r} in the environment is not a number of processes") from None
    return 1


def lone_cpu_launch(env: os._Environ | dict | None = None) -> bool:
    """Whether `accelerate launch --cpu --num_processes N>1` ran this single process (see the module docstring)."""
    env = os.environ if env is None else env
    use_cpu = env.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes")
    return use_cpu and "MASTER_ADDR" in env and launched_processes(env) == 1


def tracker_available(report_to: str) -> bool:
    return any(importlib.util.find_spec(pkg) is not None for pkg in _TRACKER_PACKAGES.get(report_to, ()))


def make_accelerator(*, mixed_precision: str, report_to: str = "none", out: str | Path | None = None):
    """The run's Accelerator: CPU process group for a multi-process launch without CUDA, trackers if asked."""
    import torch
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration

    if report_to not in REPORT_TO:
        raise DKIError(f"--report-to {report_to!r}: choose {', '.join(REPORT_TO)}")
    if report_to != "none" and not tracker_available(report_to):
        extra = " (pip install 'synfashion[tensorboard]')" if report_to == "tensorboard" else ""
        raise DKIError(f"--report-to {report_to} needs the {report_to} package, which is not installed{extra}; "
                       "install it or pass --report-to none")
    kw: dict = {"mixed_precision": mixed_precision}
    if launched_processes() > 1 and not torch.cuda.is_available():
        kw["cpu"] = True  # accelerate forms the gloo group only when told to use the CPU (module docstring)
    if report_to != "none":
        kw["log_with"] = report_to
        if out is not None:
            kw["project_config"] = ProjectConfiguration(project_dir=str(out), logging_dir=str(Path(out) / LOG_DIR))
    try:
        return Accelerator(**kw)
    except ValueError as e:  # e.g. fp16 without a GPU
        raise DKIError(f"--mixed-precision {mixed_precision}: {e}") from None


def flat_config(d: dict, prefix: str = "") -> dict:
    """A nested settings dict as the flat scalars trackers accept (TensorBoard's hparams take no lists or None)."""
    out: dict = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flat_config(v, f"{key}."))
        elif isinstance(v, (bool, int, float, str)):
            out[key] = v
        elif v is None:
            out[key] = "none"
        else:
            out[key] = str(v)
    return out
