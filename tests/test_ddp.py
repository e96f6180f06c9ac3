"""A 2-process DistributedDataParallel run on CPU (gloo), compared with the same run in 1 process.

With dropout off, DDP's gradient averaging over 2 x 1 samples equals one process on the same 2
samples (every loss is a mean over equal-sized parts), and ResumableSampler hands the ranks the
two halves of the single process's batches; so the weights must agree to float precision.
"""
from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from fakes import FakeMultiView
from kp3d.checkpoint import load_checkpoint
from kp3d.profiles import get_config
from kp3d.train import read_metrics, train


def _cfg():
    return get_config("smoke", amp="none", max_iters=6, warmup_iters=2, log_every=3, ckpt_every=3,
                      decoder_dropout=0.0, batch_size=2)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, run_dir: str) -> None:
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    train(_cfg(), run_dir=run_dir, dataset=FakeMultiView(n=6, size=64), progress=False, device="cpu")


@pytest.mark.timeout(120)
def test_ddp_two_processes_match_one(tmp_path, monkeypatch):
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(k, raising=False)
    ddp_dir = tmp_path / "ddp"
    mp.spawn(_worker, args=(2, _free_port(), str(ddp_dir)), nprocs=2, join=True)
    state = load_checkpoint(ddp_dir)
    assert state["step"] == 6 and state["world_size"] == 2 and len(state["rng"]) == 2
    assert read_metrics(ddp_dir)["step"].tolist() == [3, 6]

    torch.set_num_threads(1)
    single = train(_cfg(), run_dir=tmp_path / "single", dataset=FakeMultiView(n=6, size=64), progress=False, device="cpu")
    ref = load_checkpoint(single)
    for k, v in ref["model"].items():
        torch.testing.assert_close(state["model"][k], v, rtol=1e-4, atol=1e-5, msg=k)


def test_ddp_batch_must_divide():
    os.environ.pop("WORLD_SIZE", None)
    from kp3d.distributed import ResumableSampler

    with pytest.raises(ValueError, match="smaller than one global batch"):
        ResumableSampler(3, batch_size=2, world_size=2)
    s = ResumableSampler(10, batch_size=2, seed=0, rank=1, world_size=2)
    assert s.batches_per_epoch == 2 and len(s.indices(0, 1)) == 2
    both = ResumableSampler(10, 2, 0, 0, 2).indices(3) + s.indices(3)
    assert len(set(both)) == 8  # the ranks see disjoint samples
