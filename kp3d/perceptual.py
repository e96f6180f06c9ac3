"""Perceptual features of Eq. 10: the first three stages of an ImageNet ResNet18 (frozen).

Nothing is downloaded. The ImageNet weights are read from, in order:
1. ``Config.perceptual_weights`` (a path to a torchvision ``resnet18`` state dict), when set;
2. torchvision's hub cache, ``$TORCH_HOME/hub/checkpoints/resnet18-f37072fd.pth``
   (``~/.cache/torch/hub/checkpoints/...`` by default).
When neither exists the fallback ``Config.perceptual_fallback`` applies and ``logging.warning``
says so: ``"random"`` uses a ResNet18 initialised with a fixed seed (0), whose features still
compare local structure but not ImageNet semantics; ``"off"`` drops the term. The trainer writes
:attr:`PerceptualFeatures.source` into its metrics and config (``perceptual_source``).

Example:
    >>> import torch
    >>> feats = PerceptualFeatures(weights_path="", fallback="random")   # doctest: +SKIP
    >>> [f.shape[1] for f in feats(torch.rand(1, 3, 64, 64))]            # doctest: +SKIP
    [64, 128, 256]
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
import torch.nn as nn
import torchvision

log = logging.getLogger(__name__)

RESNET18_FILE = "resnet18-f37072fd.pth"
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


def default_weights_path() -> Path:
    """torchvision's cache location of the ImageNet ResNet18 weights (may not exist)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / RESNET18_FILE


def find_weights(weights_path: str = "") -> Path | None:
    """The weights file to use, or None. A non-empty ``weights_path`` that does not exist raises."""
    if weights_path:
        p = Path(os.path.expanduser(weights_path))
        if not p.is_file():
            raise FileNotFoundError(
                f"perceptual_weights={weights_path!r} does not exist; point it at a torchvision "
                f"resnet18 state dict ({RESNET18_FILE}) or set it to '' to use the cache/fallback"
            )
        return p
    p = default_weights_path()
    return p if p.is_file() else None


class PerceptualFeatures(nn.Module):
    """Frozen ResNet18 stem + layer1..layer3 -> the three feature maps Res_1..Res_3 of Eq. 10.

    Args (forward):
        x: (B, 3, H, W) float in [0, 1] (ImageNet normalisation is applied inside).
    Returns:
        list of 3 tensors (B, 64, H/4, W/4), (B, 128, H/8, W/8), (B, 256, H/16, W/16).

    Attributes:
        source: "imagenet:<path>" or "random-seed0" (the fallback).
    """

    def __init__(self, weights_path: str = "", fallback: str = "random"):
        super().__init__()
        path = find_weights(weights_path)
        if path is None and fallback == "off":
            raise ValueError("PerceptualFeatures: no ImageNet weights and fallback='off'; build it only when the term is on")
        with torch.random.fork_rng(devices=[]):  # the fixed init must not consume the training RNG
            torch.manual_seed(0)
            net = torchvision.models.resnet18(weights=None)
        if path is not None:
            net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            self.source = f"imagenet:{path}"
        else:
            self.source = "random-seed0"
            log.warning(
                "PERCEPTUAL LOSS FALLBACK: no ImageNet ResNet18 weights at %s (and Config.perceptual_weights "
                "is unset); using a fixed randomly initialised ResNet18 (seed 0). Its features compare "
                "structure, not ImageNet semantics. Copy %s there to use the paper's features.",
                default_weights_path(), RESNET18_FILE,
            )
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        self.stages = nn.ModuleList([net.layer1, net.layer2, net.layer3])
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "PerceptualFeatures":
        # always eval: BatchNorm statistics of the reference network must not drift
        return super().train(False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"x: expected (B, 3, H, W), got {tuple(x.shape)}")
        y = self.stem((x - self.mean) / self.std)
        feats = []
        for stage in self.stages:
            y = stage(y)
            feats.append(y)
        return feats


def build_perceptual(weights_path: str, fallback: str) -> PerceptualFeatures | None:
    """The features module, or None when no weights exist and the fallback is "off" (logged)."""
    if find_weights(weights_path) is None and fallback == "off":
        log.warning(
            "PERCEPTUAL LOSS OFF: no ImageNet ResNet18 weights at %s and perceptual_fallback='off'; "
            "Eq. 10 is trained with its pixel term only.", default_weights_path(),
        )
        return None
    return PerceptualFeatures(weights_path, fallback)
