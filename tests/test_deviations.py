"""Tests of kp3d.deviations: the table of where a profile departs from the paper (notebook 04)."""
from __future__ import annotations

import pytest

from kp3d import deviations
from kp3d.config import Config
from kp3d.profiles import get_config
from kp3d.profiles import PROFILES


@pytest.mark.parametrize("profile", PROFILES)
def test_every_departure_of_every_profile_is_explained(profile):
    rows = deviations.profile_table(profile)
    assert all(set(r) == {"component", "paper", "profile", "why", "evidence"} and r["why"] and r["evidence"] for r in rows)
    assert (rows == []) == (profile == "paper-h36m")


def test_the_table_shows_both_values_of_what_differs():
    row = next(r for r in deviations.profile_table("cpu-demo") if r["component"] == "mask target")
    assert row["paper"] == "mask_target=predicted" and row["profile"] == f"mask_target={get_config('cpu-demo').mask_target}"
    text = deviations.format_profile_table("cpu-demo")
    assert text.count("\n") == len(deviations.profile_table("cpu-demo")) + 1 and "\\|I - B\\|" in text


def test_an_unexplained_departure_is_an_error(monkeypatch):
    kept = tuple(d for d in deviations.DEVIATIONS if "shadow_chroma" not in d.fields)
    monkeypatch.setattr(deviations, "DEVIATIONS", kept)
    with pytest.raises(ValueError, match=r"departs from 'paper-h36m' in \['box_prior_threshold', 'foreground_cleanup', 'shadow_chroma'\]"):
        deviations.profile_table("cpu-demo")


def test_every_named_field_exists():
    names = {f for d in deviations.DEVIATIONS for f in d.fields}
    assert names <= set(Config.__dataclass_fields__)
