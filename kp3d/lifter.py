"""Single-view lifter (paper Sec. 3.4, Table S2, Eq. 16): 2D keypoints of one view -> 3D keypoints.

Once the multi-view model is trained, its triangulated 3D keypoints X (T, N, 3) are the targets of a
network that sees only ONE view's 2D keypoints. Architecture (Table S2, after Martinez et al.):

    2N -> Linear(1024) -> 3 x residual block [Linear, ReLU, Linear, ReLU, + input] -> Linear(3N)

trained with MSE to the multi-view keypoints (Eq. 16). The paper lists no batch norm or dropout
in Table S2, so there is none here; optimiser settings are :class:`LifterConfig` fields (the paper
is silent; Adam lr 1e-3 as in Martinez et al.).

Frames (the paper does not say; chosen so a single view can solve the task):

- input: the view's 2D keypoints (full-image pixels, export key ``kp2d``) turned into
  camera-normalised coordinates ``K^-1 [u, v, 1]`` and centred on their mean over the N keypoints,
  so the lifter does not depend on the crop, the intrinsics, or where the person stands in the image;
- output: the 3D keypoints in **that view's camera frame**, centred on their mean over the N
  keypoints, mm: ``(X - mean_n X) R_v^T``. A single image cannot know where the world origin is,
  and with a lifter shared by all views it cannot know the world orientation either; the camera frame
  it can.
- evaluation with the same probes as the multi-view keypoints: :func:`lift` rotates the output back
  to the world frame with the view's known rotation (``X_cam_centred R_v``: the translation cancels
  after centring), so the probes of :mod:`kp3d.probes` (world frame, centred inputs ->
  pelvis-relative world-frame joints) apply unchanged. Each (frame, view) pair is one sample; the
  SV row of Table 1 averages over all test frames and views. Using the calibrated rotation at test
  time is the one piece of information a truly monocular setting would not have.

Example:
    >>> import torch
    >>> lifter = SingleViewLifter(n_keypoints=8, hidden=32)
    >>> lifter(torch.zeros(5, 8, 2)).shape
    torch.Size([5, 8, 3])
"""
from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from kp3d.config import check_profile
from kp3d.probes import torch_threads
from kp3d.profiles import LIFTER_PRESETS

__all__ = [
    "LifterConfig",
    "ResidualBlock",
    "SingleViewLifter",
    "normalize_2d",
    "camera_targets",
    "train_lifter",
    "lift",
    "lifter_config",
]


@dataclass
class LifterConfig:
    """Single-view lifter settings (Table S2 for the architecture; the rest is not in the paper)."""

    hidden: int = 1024  # Table S2
    n_blocks: int = 3  # Table S2: three residual blocks
    lr: float = 1e-3  # Adam (Martinez et al.; the paper is silent)
    batch_size: int = 256
    epochs: int = 200  # upper bound on passes over the (frame, view) samples
    max_iters: int | None = None  # optional cap on optimiser steps
    patience: int = 20  # early stopping on held-out frames (0 disables it)
    val_fraction: float = 0.1  # fraction of FRAMES held out (all their views), so no view leaks
    min_val_frames: int = 4
    seed: int = 0
    device: str = "cpu"
    cpu_threads: int = 1  # torch threads while training on CPU (see kp3d.probes.ProbeConfig); 0 = leave as is
    progress: bool = True

    def to_dict(self) -> dict:
        return asdict(self)


def lifter_config(profile: str, **overrides) -> LifterConfig:
    """The :class:`LifterConfig` of a profile (``kp3d.profiles.LIFTER_PRESETS``), with ``overrides`` applied.

    Example:
        >>> lifter_config("paper-h36m").hidden
        1024
    """
    values = dict(LIFTER_PRESETS[check_profile(profile)])
    values.update(overrides)
    return LifterConfig(**values)


class ResidualBlock(nn.Module):
    """Linear, ReLU, Linear, ReLU, then the input added (Table S2). x: (B, C) -> (B, C)."""

    def __init__(self, width: int):
        super().__init__()
        self.fc1 = nn.Linear(width, width)
        self.fc2 = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.relu(self.fc2(torch.relu(self.fc1(x))))


class SingleViewLifter(nn.Module):
    """Table S2 lifter. forward: x (B, N, 2) normalised 2D -> (B, N, 3) camera frame, centred, mm.

    Input and output standardisation statistics are buffers (set by :func:`train_lifter`), so a
    saved state dict is self-contained. Defaults (zero mean, unit std) make the raw network usable.
    """

    def __init__(self, n_keypoints: int, hidden: int = 1024, n_blocks: int = 3):
        super().__init__()
        if n_keypoints < 1:
            raise ValueError(f"n_keypoints must be >= 1, got {n_keypoints}")
        self.n_keypoints = n_keypoints
        self.inp = nn.Linear(2 * n_keypoints, hidden)
        self.blocks = nn.Sequential(*[ResidualBlock(hidden) for _ in range(n_blocks)])
        self.out = nn.Linear(hidden, 3 * n_keypoints)
        self.register_buffer("x_mean", torch.zeros(2 * n_keypoints))
        self.register_buffer("x_std", torch.ones(2 * n_keypoints))
        self.register_buffer("y_mean", torch.zeros(3 * n_keypoints))
        self.register_buffer("y_std", torch.ones(3 * n_keypoints))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.n_keypoints
        if x.ndim != 3 or x.shape[1:] != (n, 2):
            raise ValueError(f"x: expected shape (B, {n}, 2) camera-normalised 2D keypoints, got {tuple(x.shape)}")
        z = (x.reshape(len(x), -1) - self.x_mean) / self.x_std
        y = self.out(self.blocks(self.inp(z)))
        return (y * self.y_std + self.y_mean).reshape(len(x), n, 3)


def _np(x, name) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name}: expected a numpy array or torch tensor, got {type(x).__name__}")
    return x.astype(np.float64)


def normalize_2d(kp2d, K) -> np.ndarray:
    """Lifter inputs: pixels -> camera-normalised coordinates, centred per image.

    Args:
        kp2d: (T, V, N, 2) pixels (OpenCV centre convention).
        K: (T, V, 3, 3) or (V, 3, 3) pixel intrinsics.

    Returns:
        (T, V, N, 2) float64, ``K^-1 [u, v, 1]`` (first two entries) minus its mean over N.
    """
    kp2d, K = _np(kp2d, "kp2d"), _np(K, "K")
    if kp2d.ndim != 4 or kp2d.shape[-1] != 2:
        raise ValueError(f"kp2d: expected shape (T, V, N, 2), got {tuple(kp2d.shape)}")
    T, V = kp2d.shape[:2]
    if K.shape == (V, 3, 3):
        K = np.broadcast_to(K, (T, V, 3, 3))
    if K.shape != (T, V, 3, 3):
        raise ValueError(f"K: expected shape ({T}, {V}, 3, 3) or ({V}, 3, 3), got {tuple(K.shape)}")
    hom = np.concatenate([kp2d, np.ones(kp2d.shape[:-1] + (1,))], axis=-1)  # (T, V, N, 3)
    ray = np.einsum("tvij,tvnj->tvni", np.linalg.inv(K), hom)
    xy = ray[..., :2] / ray[..., 2:3]
    return xy - xy.mean(axis=2, keepdims=True)


def camera_targets(kp3d, R) -> np.ndarray:
    """Lifter targets: multi-view keypoints in each view's camera frame, centred per frame.

    Args:
        kp3d: (T, N, 3) world mm (export key ``kp3d``).
        R: (T, V, 3, 3) or (V, 3, 3) world-to-camera rotations.

    Returns:
        (T, V, N, 3) float64, ``(X - mean_n X) R_v^T`` mm.
    """
    kp3d, R = _np(kp3d, "kp3d"), _np(R, "R")
    if kp3d.ndim != 3 or kp3d.shape[-1] != 3:
        raise ValueError(f"kp3d: expected shape (T, N, 3), got {tuple(kp3d.shape)}")
    T = len(kp3d)
    if R.ndim == 3:
        R = np.broadcast_to(R, (T,) + R.shape)
    if R.ndim != 4 or R.shape[0] != T or R.shape[2:] != (3, 3):
        raise ValueError(f"R: expected shape ({T}, V, 3, 3) or (V, 3, 3), got {tuple(R.shape)}")
    xc = kp3d - kp3d.mean(axis=1, keepdims=True)
    return np.einsum("tvij,tnj->tvni", R, xc)


def train_lifter(kp2d, kp3d, K, R, cfg: LifterConfig | None = None) -> SingleViewLifter:
    """Train the lifter on the multi-view keypoints of the training frames (Eq. 16).

    Args:
        kp2d: (T, V, N, 2) pixels, soft-argmax keypoints per view (export key ``kp2d``).
        kp3d: (T, N, 3) world mm, triangulated keypoints (export key ``kp3d``): the targets.
        K: (T, V, 3, 3) or (V, 3, 3); R: (T, V, 3, 3) or (V, 3, 3).
        cfg: :class:`LifterConfig`.

    Returns:
        the trained :class:`SingleViewLifter` (eval mode, best validation weights).
    """
    cfg = cfg or LifterConfig()

    with torch_threads(cfg.cpu_threads if cfg.device == "cpu" else 0):
        return _train_lifter(kp2d, kp3d, K, R, cfg)


def _train_lifter(kp2d, kp3d, K, R, cfg: LifterConfig) -> SingleViewLifter:
    x = normalize_2d(kp2d, K)  # (T, V, N, 2)
    y = camera_targets(kp3d, R)  # (T, V, N, 3)
    T, V, N, _ = x.shape
    if y.shape[:3] != (T, V, N):
        raise ValueError(f"kp2d gives (T, V, N) = {(T, V, N)} but kp3d/R give {y.shape[:3]}")
    if T < 2:
        raise ValueError(f"need at least 2 frames to train the lifter, got {T}")
    gen = np.random.default_rng(cfg.seed)
    torch.manual_seed(cfg.seed)
    order = gen.permutation(T)
    n_val = int(round(cfg.val_fraction * T))
    use_val = cfg.patience > 0 and n_val >= cfg.min_val_frames and T - n_val >= 2
    val_f, tr_f = (order[:n_val], order[n_val:]) if use_val else (order[:0], order)

    dev = torch.device(cfg.device)
    xt = torch.as_tensor(x.reshape(T * V, N, 2), dtype=torch.float32, device=dev)
    yt = torch.as_tensor(y.reshape(T * V, N, 3), dtype=torch.float32, device=dev)
    tr = (tr_f[:, None] * V + np.arange(V)).ravel()
    va = (val_f[:, None] * V + np.arange(V)).ravel()

    model = SingleViewLifter(N, cfg.hidden, cfg.n_blocks).to(dev)
    xs, ys = xt[tr].reshape(len(tr), -1), yt[tr].reshape(len(tr), -1)
    model.x_mean.copy_(xs.mean(0)); model.x_std.copy_(xs.std(0).clamp_min(1e-6))
    model.y_mean.copy_(ys.mean(0)); model.y_std.copy_(ys.std(0).clamp_min(1e-3))
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)

    def loss_of(idx):  # MSE in standardised units, so the scale of mm does not set the step size
        return (((model(xt[idx]) - yt[idx]).reshape(len(idx), -1) / model.y_std) ** 2).mean()

    best, best_state, bad, step = math.inf, None, 0, 0
    bs = max(1, min(cfg.batch_size, len(tr)))
    bar = tqdm(range(cfg.epochs), desc="lifter", disable=not cfg.progress, leave=False)
    for _ in bar:
        model.train()
        perm = tr[gen.permutation(len(tr))]
        for i in range(0, len(perm), bs):
            loss = loss_of(torch.as_tensor(perm[i : i + bs], device=dev))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            if cfg.max_iters is not None and step >= cfg.max_iters:
                break
        post = {"loss": float(loss.detach())}
        if use_val:
            model.eval()
            with torch.no_grad():
                val = float(loss_of(torch.as_tensor(va, device=dev)))
            post["val"] = val
            if val < best - 1e-7:
                best, bad, best_state = val, 0, copy.deepcopy(model.state_dict())
            else:
                bad += 1
        bar.set_postfix({k: round(v, 4) for k, v in post.items()})
        if (use_val and bad >= cfg.patience) or (cfg.max_iters is not None and step >= cfg.max_iters):
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    return model.eval()


@torch.no_grad()
def lift(model: SingleViewLifter, kp2d, K, R, frame: str = "world") -> np.ndarray:
    """Lift every view of every frame independently.

    Args:
        model: a trained :class:`SingleViewLifter`.
        kp2d: (T, V, N, 2) pixels; K, R: (T, V, 3, 3) or (V, 3, 3).
        frame: "world" (default; rotated back with R_v so the probes of :mod:`kp3d.probes` apply)
            or "camera" (the lifter's own output frame). Both are centred on the keypoint mean.

    Returns:
        (T, V, N, 3) float64 mm.
    """
    if frame not in ("world", "camera"):
        raise ValueError(f"frame must be 'world' or 'camera', got {frame!r}")
    x = normalize_2d(kp2d, K)
    T, V, N, _ = x.shape
    dev = next(model.parameters()).device
    xt = torch.as_tensor(x.reshape(T * V, N, 2), dtype=torch.float32, device=dev)
    y = torch.cat([model(xt[i : i + 4096]) for i in range(0, len(xt), 4096)]).cpu().numpy()
    y = y.astype(np.float64).reshape(T, V, N, 3)
    if frame == "camera":
        return y
    R = _np(R, "R")
    if R.ndim == 3:
        R = np.broadcast_to(R, (T,) + R.shape)
    return np.einsum("tvji,tvnj->tvni", R, y)  # R^T x per point
