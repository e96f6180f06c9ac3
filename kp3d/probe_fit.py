"""One probe, fitted and scored: its configuration (:class:`ProbeConfig`, a profile's in
``kp3d.profiles.PROBE_PRESETS``), its inputs and targets, the linear (ridge) and MLP probes, and
the pose errors. ``kp3d.probes`` runs them in the paper's protocols; its docstring states the
conventions."""
from __future__ import annotations

import contextlib
import copy
import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from kp3d import metrics
from kp3d.config import check_profile
from kp3d.profiles import PROBE_PRESETS

N_JOINTS = 17  # Human3.6M joints, docs/architecture.md order; joint 0 is the pelvis
ROOT_JOINT = 0


@dataclass
class ProbeConfig:
    """Probe hyper-parameters. Defaults are the paper's (S.1.2) unless a comment says otherwise."""

    kind: str = "mlp"  # "linear" (closed-form ridge) or "mlp" (2 hidden layers)
    # ridge penalty of the linear probe on z-scored inputs; None = chosen from alpha_grid on
    # held-out frames (the paper: plain least squares, i.e. alpha -> 0)
    alpha: float | None = None
    alpha_grid: tuple = (1e-6, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)  # candidates when alpha is None
    hidden: int = 2048  # width of each hidden layer of the MLP probe (paper: 2048)
    n_hidden_layers: int = 2  # paper: "2-hidden-layer MLP"
    dropout: float = 0.5  # after each hidden ReLU (paper: 50 %)
    lr: float = 1e-4  # Adam (paper)
    batch_size: int = 256  # paper
    weight_decay: float = 0.0  # not in the paper
    epochs: int = 200  # upper bound on passes over the labelled frames (paper: 200K iterations)
    max_iters: int | None = None  # optional cap on optimiser steps (None: epochs decide)
    patience: int = 20  # early stopping: epochs without validation improvement (0 disables it)
    val_fraction: float = 0.1  # labelled frames held out for early stopping (0 disables it)
    min_val_frames: int = 8  # below this many held-out frames, early stopping is off
    seed: int = 0
    device: str = "cpu"
    # torch threads while fitting on CPU: these small MLPs run fastest on one (thread sync costs
    # more than the math, 50x more on a busy 2-core machine); 0 = leave torch's setting
    cpu_threads: int = 1
    progress: bool = False  # tqdm bar over epochs

    def to_dict(self) -> dict:
        return asdict(self)


def probe_config(profile: str, **overrides) -> ProbeConfig:
    """The :class:`ProbeConfig` of a profile (``kp3d.profiles.PROBE_PRESETS``), with ``overrides`` applied.

    Example:
        >>> probe_config("paper-h36m").hidden
        2048
    """
    values = dict(PROBE_PRESETS[check_profile(profile)])
    values.update(overrides)
    return ProbeConfig(**values)


# ----------------------------------------------------------------------------------------------
# inputs and targets


@contextlib.contextmanager
def torch_threads(n: int):
    """Temporarily run torch CPU ops on ``n`` threads (0: leave the current setting)."""
    old = torch.get_num_threads()
    if n > 0:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _as_np(x, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name}: expected a numpy array or torch tensor, got {type(x).__name__}")
    return x


def keypoint_features(kp3d) -> np.ndarray:
    """Probe inputs from discovered 3D keypoints: centred per frame and flattened.

    Args:
        kp3d: (T, N, 3) world mm, the multi-view (or lifted) 3D keypoints.

    Returns:
        (T, 3N) float64, ``kp3d - kp3d.mean(axis=1)`` flattened (world frame, centred).

    Example:
        >>> keypoint_features(np.ones((2, 4, 3))).shape
        (2, 12)
    """
    kp3d = _as_np(kp3d, "kp3d")
    if kp3d.ndim != 3 or kp3d.shape[-1] != 3:
        raise ValueError(f"kp3d: expected shape (T, N, 3), got {tuple(kp3d.shape)}")
    x = kp3d.astype(np.float64)
    x = x - x.mean(axis=1, keepdims=True)
    return x.reshape(len(x), -1)


def pose_targets(joints_3d) -> np.ndarray:
    """Probe targets: pelvis-relative ground-truth joints, flattened.

    Args:
        joints_3d: (T, 17, 3) world mm, Human3.6M joint order (joint 0 = pelvis).

    Returns:
        (T, 51) float64, ``joints_3d - joints_3d[:, :1]`` flattened (world frame, pelvis at 0).
    """
    j = _as_np(joints_3d, "joints_3d")
    if j.ndim != 3 or j.shape[1:] != (N_JOINTS, 3):
        raise ValueError(f"joints_3d: expected shape (T, {N_JOINTS}, 3), got {tuple(j.shape)}")
    j = j.astype(np.float64)
    return (j - j[:, ROOT_JOINT : ROOT_JOINT + 1]).reshape(len(j), -1)


def _check_xy(x, y, name_x="x", name_y="y") -> tuple[np.ndarray, np.ndarray]:
    x = _as_np(x, name_x).astype(np.float64)
    y = _as_np(y, name_y).astype(np.float64)
    if x.ndim != 2:
        raise ValueError(f"{name_x}: expected shape (T, F), got {tuple(x.shape)}; flatten features first")
    if y.ndim != 2:
        raise ValueError(f"{name_y}: expected shape (T, D), got {tuple(y.shape)}; flatten targets first")
    if len(x) != len(y):
        raise ValueError(f"{name_x} and {name_y} have different frame counts: {len(x)} vs {len(y)}")
    if len(x) < 2:
        raise ValueError(f"need at least 2 labelled frames to fit a probe, got {len(x)}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError(f"{name_x} or {name_y} contains NaN/inf: drop those frames first")
    return x, y


class _Standardizer:
    """z-score with training statistics; constant columns keep scale 1 (no division by zero)."""

    def __init__(self, a: np.ndarray):
        self.mean = a.mean(axis=0)
        std = a.std(axis=0)
        self.std = np.where(std > 1e-8 * max(1.0, float(np.abs(a).max(initial=0.0))), std, 1.0)

    def __call__(self, a: np.ndarray) -> np.ndarray:
        return (a - self.mean) / self.std

    def inverse(self, a: np.ndarray) -> np.ndarray:
        return a * self.std + self.mean


# ----------------------------------------------------------------------------------------------
# probes


class LinearProbe:
    """Affine probe ``y = x W + b`` by closed-form ridge regression on z-scored inputs.

    Args:
        alpha: ridge penalty (on z-scored inputs, so it is unit-free); 0 = least squares (solved
            with ``lstsq``, minimum-norm when rank deficient).

    Example:
        >>> x = np.random.default_rng(1).normal(size=(50, 3))
        >>> LinearProbe(0.0).fit(x, 2 * x).predict(x[:2]).shape
        (2, 3)
    """

    kind = "linear"

    def __init__(self, alpha: float = 0.0):
        if alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {alpha}")
        self.alpha = float(alpha)
        self.weight: np.ndarray | None = None  # (F, D) in original units
        self.bias: np.ndarray | None = None  # (D,)

    def fit(self, x, y) -> "LinearProbe":
        """x: (T, F) features; y: (T, D) targets. Returns self."""
        x, y = _check_xy(x, y)
        sx = _Standardizer(x)
        xs = sx(x)
        ym = y.mean(axis=0)
        yc = y - ym
        if self.alpha == 0.0:
            w, *_ = np.linalg.lstsq(xs, yc, rcond=None)
        else:
            f = xs.shape[1]
            gram = xs.T @ xs + self.alpha * len(xs) * np.eye(f)
            w = np.linalg.solve(gram, xs.T @ yc)
        # fold the standardisation into the weights so predict() is one affine map
        self.weight = w / sx.std[:, None]
        self.bias = ym - (sx.mean / sx.std) @ w
        return self

    def predict(self, x) -> np.ndarray:
        """x: (T, F) -> (T, D)."""
        if self.weight is None:
            raise RuntimeError("LinearProbe.predict called before fit()")
        x = _as_np(x, "x").astype(np.float64)
        if x.ndim != 2 or x.shape[1] != self.weight.shape[0]:
            raise ValueError(f"x: expected shape (T, {self.weight.shape[0]}), got {tuple(x.shape)}")
        return x @ self.weight + self.bias


def _mlp(n_in: int, n_out: int, cfg: ProbeConfig) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = n_in
    for _ in range(cfg.n_hidden_layers):
        layers += [nn.Linear(width, cfg.hidden), nn.ReLU(), nn.Dropout(cfg.dropout)]
        width = cfg.hidden
    layers.append(nn.Linear(width, n_out))
    return nn.Sequential(*layers)


class MLPProbe:
    """The paper's MLP probe (S.1.2): ``n_hidden_layers`` x (Linear(hidden), ReLU, Dropout) + Linear.

    Trained with MSE (Eq. 17) on z-scored inputs and targets, Adam, mini-batches; keeps the weights
    of the best validation epoch when early stopping is on.

    Example:
        >>> x = np.random.default_rng(0).normal(size=(64, 4))
        >>> cfg = ProbeConfig(hidden=16, epochs=2)
        >>> MLPProbe(cfg).fit(x, x ** 2).predict(x).shape
        (64, 4)
    """

    kind = "mlp"

    def __init__(self, cfg: ProbeConfig | None = None):
        self.cfg = cfg or ProbeConfig()
        self.net: nn.Sequential | None = None
        self.history: list[dict] = []

    def fit(self, x, y) -> "MLPProbe":
        """x: (T, F) features; y: (T, D) targets. Returns self."""
        with torch_threads(self.cfg.cpu_threads if self.cfg.device == "cpu" else 0):
            return self._fit(x, y)

    def _fit(self, x, y) -> "MLPProbe":
        cfg = self.cfg
        x, y = _check_xy(x, y)
        gen = np.random.default_rng(cfg.seed)
        torch.manual_seed(cfg.seed)
        self.sx, self.sy = _Standardizer(x), _Standardizer(y)

        order = gen.permutation(len(x))
        n_val = int(round(cfg.val_fraction * len(x)))
        use_val = cfg.patience > 0 and n_val >= cfg.min_val_frames and len(x) - n_val >= 2
        val_idx, tr_idx = (order[:n_val], order[n_val:]) if use_val else (order[:0], order)

        dev = torch.device(cfg.device)
        xt = torch.as_tensor(self.sx(x), dtype=torch.float32, device=dev)
        yt = torch.as_tensor(self.sy(y), dtype=torch.float32, device=dev)
        self.net = _mlp(x.shape[1], y.shape[1], cfg).to(dev)
        opt = torch.optim.Adam(self.net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

        best, best_state, bad, step = math.inf, None, 0, 0
        bs = max(1, min(cfg.batch_size, len(tr_idx)))
        bar = tqdm(range(cfg.epochs), desc="mlp probe", disable=not cfg.progress, leave=False)
        for epoch in bar:
            self.net.train()
            perm = tr_idx[gen.permutation(len(tr_idx))]
            total = 0.0
            for i in range(0, len(perm), bs):
                b = torch.as_tensor(perm[i : i + bs], device=dev)
                loss = ((self.net(xt[b]) - yt[b]) ** 2).mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(b)
                step += 1
                if cfg.max_iters is not None and step >= cfg.max_iters:
                    break
            rec = {"epoch": epoch, "train_mse": total / len(perm)}
            if use_val:
                self.net.eval()
                with torch.no_grad():
                    vb = torch.as_tensor(val_idx, device=dev)
                    val = float(((self.net(xt[vb]) - yt[vb]) ** 2).mean())
                rec["val_mse"] = val
                if val < best - 1e-6:
                    best, bad = val, 0
                    best_state = copy.deepcopy(self.net.state_dict())
                else:
                    bad += 1
            self.history.append(rec)
            bar.set_postfix({k: round(v, 4) for k, v in rec.items() if k != "epoch"})
            if (use_val and bad >= cfg.patience) or (cfg.max_iters is not None and step >= cfg.max_iters):
                break
        if best_state is not None:
            self.net.load_state_dict(best_state)
        self.net.eval()
        return self

    def predict(self, x) -> np.ndarray:
        """x: (T, F) -> (T, D) in the targets' units."""
        if self.net is None:
            raise RuntimeError("MLPProbe.predict called before fit()")
        x = _as_np(x, "x").astype(np.float64)
        n_in = self.net[0].in_features
        if x.ndim != 2 or x.shape[1] != n_in:
            raise ValueError(f"x: expected shape (T, {n_in}), got {tuple(x.shape)}")
        dev = next(self.net.parameters()).device
        out = []
        with torch.no_grad():
            for i in range(0, len(x), 4096):
                xb = torch.as_tensor(self.sx(x[i : i + 4096]), dtype=torch.float32, device=dev)
                out.append(self.net(xb).cpu().numpy().astype(np.float64))
        y = np.concatenate(out) if out else np.zeros((0, self.net[-1].out_features))
        return self.sy.inverse(y)


def select_ridge(x, y, alphas=(1e-6, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0), val_fraction: float = 0.1,
                 seed: int = 0) -> LinearProbe:
    """A :class:`LinearProbe` whose ``alpha`` minimises the MSE on a held-out ``val_fraction`` of the
    frames (at least 2 of them), refitted on all frames. Falls back to the smallest alpha when there
    are too few frames to hold any out.

    Example:
        >>> x = np.random.default_rng(0).normal(size=(100, 5))
        >>> select_ridge(x, x @ np.ones((5, 2))).alpha
        1e-06
    """
    x, y = _check_xy(x, y)
    alphas = sorted(float(a) for a in alphas)
    n_val = max(2, int(round(val_fraction * len(x))))
    if len(x) - n_val < 2:
        return LinearProbe(alphas[0]).fit(x, y)
    order = np.random.default_rng(seed).permutation(len(x))
    va, tr = order[:n_val], order[n_val:]
    errs = [((LinearProbe(a).fit(x[tr], y[tr]).predict(x[va]) - y[va]) ** 2).mean() for a in alphas]
    return LinearProbe(alphas[int(np.argmin(errs))]).fit(x, y)


def fit_probe(x, y, cfg: ProbeConfig | None = None, kind: str | None = None):
    """Fit a probe of ``kind`` (default ``cfg.kind``): x (T, F) features -> y (T, D) targets."""
    cfg = cfg or ProbeConfig()
    kind = kind or cfg.kind
    if kind == "linear":
        if cfg.alpha is not None:
            return LinearProbe(cfg.alpha).fit(x, y)
        return select_ridge(x, y, cfg.alpha_grid, cfg.val_fraction, cfg.seed)
    if kind == "mlp":
        return MLPProbe(cfg).fit(x, y)
    raise ValueError(f"unknown probe kind {kind!r}: expected 'linear' or 'mlp'")


# ----------------------------------------------------------------------------------------------
# metrics


def pose_errors(pred, gt) -> dict[str, float]:
    """MPJPE, N-MPJPE and P-MPJPE (mm) from :mod:`kp3d.metrics`.

    Args:
        pred: (T, 17, 3) or (T, 51) predicted pelvis-relative joints.
        gt: same shape, ground truth.
    """
    p = _as_np(pred, "pred").astype(np.float64).reshape(len(pred), -1, 3)
    g = _as_np(gt, "gt").astype(np.float64).reshape(len(gt), -1, 3)
    if p.shape != g.shape:
        raise ValueError(f"pred {p.shape} and gt {g.shape} differ")
    return {
        "mpjpe": float(metrics.mpjpe(p, g)),
        "n_mpjpe": float(metrics.n_mpjpe(p, g)),
        "p_mpjpe": float(metrics.p_mpjpe(p, g)),
    }


def evaluate_probe(probe, x, y) -> dict[str, float]:
    """Errors of ``probe`` on features x (T, F) against flattened pelvis-relative targets y (T, 51)."""
    return pose_errors(probe.predict(x), y)


