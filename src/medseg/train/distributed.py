"""Data-parallel training with torch.distributed: launch through torchrun, set up, reduce.

``--nproc N`` re-runs the same ``medseg train`` command under
``python -m torch.distributed.run --standalone --nproc_per_node N -m medseg.cli.main train ...``;
each process then joins the group from torchrun's environment (RANK, WORLD_SIZE, MASTER_ADDR, ...),
with the gloo backend on CPU and NCCL on GPUs. Several machines: run torchrun on each yourself
(see the README).
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup() -> DistInfo:
    """Join the process group when started by torchrun with WORLD_SIZE > 1; else a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def teardown(info: DistInfo) -> None:
    if info.world > 1 and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.world > 1:
        dist.barrier()


def mean_over_ranks(values: list[float], info: DistInfo) -> list[float]:
    """Average a few floats over all processes (for logging)."""
    if info.world <= 1:
        return values
    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t)
    return (t / info.world).tolist()


def max_over_ranks(value: float, info: DistInfo) -> float:
    """The largest of one float over all processes (a step time every rank agrees on)."""
    if info.world <= 1:
        return value
    t = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return float(t.item())


def torchrun_command(nproc: int, train_args: list[str]) -> list[str]:
    """The command that runs ``medseg train <train_args>`` in ``nproc`` local processes."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
            "-m", "medseg.cli.main", "train", *train_args]


def launch(nproc: int, train_args: list[str]) -> int:
    """Run the training in ``nproc`` processes and wait; returns torchrun's exit status.

    Each process gets OMP_NUM_THREADS = cores // nproc (at least 1) unless it is set already.
    """
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    return subprocess.call(torchrun_command(nproc, train_args), env=env)


def strip_nproc(argv: list[str]) -> list[str]:
    """Remove ``--nproc N`` / ``--nproc=N`` from a command line."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            out.append(arg)
    return out
