"""Multi-GPU / multi-node helpers for torchrun + DistributedDataParallel.

Launch (one node, 4 GPUs; add ``--nnodes``/``--rdzv-endpoint`` for several nodes):
    torchrun --nproc_per_node 4 -m kp3d.cli --profile paper-h36m --set data=h36m:/data/h36m
torchrun sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT; :func:`init_distributed` reads
them (NCCL on CUDA, gloo on CPU). Without them everything runs as a single process.

Data order: :class:`ResumableSampler` draws the same per-epoch permutation as
``torch.utils.data.DistributedSampler`` (seeded by ``seed + epoch``, split across ranks) and can
start mid-epoch, so a resumed run sees exactly the batches the interrupted one would have.

Example:
    >>> s = ResumableSampler(10, batch_size=2, seed=0)
    >>> len(s.indices(epoch=0, offset_batches=3))   # 5 batches per epoch, 3 already done
    4
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.utils.data import DistributedSampler, Sampler


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str | None = None) -> DistInfo:
    """Join the process group described by torchrun's environment (if any) and pick the device.

    Args:
        device: "cpu", "cuda" or None (CUDA when available). Under torchrun with CUDA each process
            takes ``cuda:LOCAL_RANK``.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda":
        dev = torch.device("cuda", local if world > 1 else (dev.index or 0))
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return DistInfo(rank, world, local, dev)


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def broadcast_object(obj, info: DistInfo):
    """Rank 0's ``obj`` on every rank."""
    if not info.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_objects(obj, info: DistInfo) -> list:
    """Every rank's ``obj``, in rank order, on every rank."""
    if not info.distributed:
        return [obj]
    out = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


class ResumableSampler(Sampler[int]):
    """Per-epoch shuffled indices of this rank, optionally skipping the batches already done.

    Args:
        n: data set length.
        batch_size: per-process batch size (incomplete batches at the end of an epoch are dropped).
        seed: base seed; epoch e uses the permutation of ``DistributedSampler(seed=seed)`` at e.
        rank, world_size: this process's share.
    """

    def __init__(self, n: int, batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1, shuffle: bool = True):
        if n < batch_size * world_size:
            raise ValueError(
                f"data set of {n} samples is smaller than one global batch ({batch_size} x {world_size} processes); "
                "lower batch_size or use a larger data set"
            )
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.rank, self.world_size, self.shuffle = rank, world_size, shuffle
        self.epoch, self.offset_batches = 0, 0

    def _base(self):
        return DistributedSampler(range(self.n), num_replicas=self.world_size, rank=self.rank,
                                  shuffle=self.shuffle, seed=self.seed, drop_last=True)

    @property
    def batches_per_epoch(self) -> int:
        return len(self._base()) // self.batch_size

    def indices(self, epoch: int, offset_batches: int = 0) -> list[int]:
        base = self._base()
        base.set_epoch(epoch)
        idx = list(iter(base))[: self.batches_per_epoch * self.batch_size]
        return idx[offset_batches * self.batch_size:]

    def set_position(self, epoch: int, offset_batches: int) -> None:
        self.epoch, self.offset_batches = epoch, offset_batches

    def __iter__(self):
        return iter(self.indices(self.epoch, self.offset_batches))

    def __len__(self) -> int:
        return (self.batches_per_epoch - self.offset_batches) * self.batch_size
