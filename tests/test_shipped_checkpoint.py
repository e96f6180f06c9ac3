"""The shipped checkpoint (kp3d/checkpoints) still does, on freshly rendered frames, what docs/recipe.md
says it does: about a minute on 2 cores (render 7 x 120 frames into the test session's cache, export,
probes).

Where the checkpoint meets a bar of the recipe (docs/recipe.md, "The bars") the bar is asserted (spread >= 20% of the
person's height). Where it does not (duplicate keypoints, 95% on the mask, limb reach, probes), the
test asserts the figures measured on the same fresh frames when it was shipped
(``meta["fresh_figures"]``), with a small tolerance, so that it cannot silently get worse; those
unmet bars are recorded in docs/recipe.md, not loosened here.
"""
from __future__ import annotations

import pytest
import torch

from data_utils.synthetic import GENERATOR_VERSION
from kp3d.discovery_check import DiscoveryBar
from kp3d.shipped import check_data_version, measure_fresh, shipped_checkpoint, shipped_meta

BAR = DiscoveryBar()


@pytest.fixture(scope="module")
def meta():
    return shipped_meta()


@pytest.fixture(scope="module")
def fresh(tmp_path_factory, meta):
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        return measure_fresh(tmp_path_factory.mktemp("shipped"), meta["fresh_figures"]["frames_per_subject"])
    finally:  # the other test modules run with the thread count they chose
        torch.set_num_threads(threads)


def test_checkpoint_is_small_and_documented(meta):
    assert shipped_checkpoint().stat().st_size <= 15_000_000
    for key in ("command", "seed", "profile", "data_version", "figures", "fresh_figures", "train_minutes"):
        assert key in meta, f"shipped checkpoint meta lacks {key!r}"
    assert meta["profile"] == "cpu-demo" and meta["seed"] == 0
    assert str(meta["data_version"]) == str(GENERATOR_VERSION)
    check_data_version(meta)  # raises on a mismatch
    with pytest.raises(RuntimeError, match="retrain"):
        check_data_version({**meta, "data_version": "0.0"})


@pytest.mark.slow
def test_no_collapse(fresh, meta):
    assert fresh["spread_ratio"] >= BAR.min_spread_ratio, fresh
    assert fresh["close_pairs"] <= meta["fresh_figures"]["close_pairs"] + 1, fresh


@pytest.mark.slow
def test_keypoints_on_the_person(fresh, meta):
    shipped = meta["fresh_figures"]
    assert fresh["in_gt_mask"] >= shipped["in_gt_mask"] - 0.03, fresh
    assert fresh["limb_reach_mean"] >= shipped["limb_reach_mean"] - 0.05, fresh


@pytest.mark.slow
def test_probes_no_worse_than_shipped(fresh, meta):
    shipped = meta["fresh_figures"]
    assert fresh["mlp_ratio"] <= shipped["mlp_ratio"] + 0.05, fresh
    assert fresh["ridge_ratio"] <= shipped["ridge_ratio"] + 0.10, fresh
