"""Baselines that need the images: an untrained network's encoder features, and the supervised upper
bound (the same encoder trained end to end with the 3D labels; docs/recipe.md, "What does supervision reach on this data set?").

Both are probed like the keypoints (:mod:`kp3d.probes`: pelvis-relative joints, world frame, mm);
:mod:`kp3d.evaluate` puts their rows beside the keypoints' rows.

Example:
    >>> even_subset(10, 4)
    [0, 3, 6, 9]
"""
from __future__ import annotations

import logging
from collections import deque

import numpy as np
import torch
from tqdm.auto import tqdm

from kp3d import geometry, losses
from kp3d import probes as P
from kp3d.model import KeypointModel

log = logging.getLogger(__name__)

__all__ = ["even_subset", "encoder_features", "untrained_baseline", "supervised_upper_bound"]


def even_subset(n: int, max_frames: int | None) -> list[int]:
    """All of range(n), or at most ``max_frames`` evenly spaced indices of it."""
    if max_frames is None or n <= max_frames:
        return list(range(n))
    return np.unique(np.linspace(0, n - 1, max_frames).round().astype(int)).tolist()


def _to_device(batch: dict, views: tuple, device) -> tuple:
    sel = list(views)
    out = [batch[k][:, sel].to(device, torch.float32) for k in ("images", "backgrounds", "K", "R", "t")]
    return tuple(out), batch["gt"]["joints_3d"].to(torch.float64)


def _encode(model, images: torch.Tensor, backgrounds: torch.Tensor, crop: str = "detector") -> torch.Tensor:
    """Crop -> encoder. images, backgrounds (B, V, 3, H, W) -> latent (B, V, D).

    ``crop="detector"``: the model's detector box (``KeypointModel.detect``, which reads the
    backgrounds when ``cfg.detector_input`` is |I - B|); ``"foreground"``: the box around |I - B|
    (``kp3d.losses.foreground_box`` with the model's threshold and margin).
    """

    B, V = images.shape[:2]
    img = images.reshape(B * V, *images.shape[2:])
    bg = backgrounds.reshape(B * V, *backgrounds.shape[2:])
    if crop == "detector":
        box = model.detect(img, bg)
    else:
        box = losses.foreground_box(img, bg, model.cfg.box_prior_threshold, model.cfg.box_prior_margin,
                             cleanup=model.cfg.foreground_cleanup, shadow_chroma=model.cfg.shadow_chroma)
    patch = geometry.crop_patches(img, box.to(img.dtype), model.cfg.patch_size)
    return model.encoder(patch).reshape(B, V, -1)


@torch.no_grad()
def encoder_features(model, dataset, views=(0, 1, 2, 3), batch_size: int = 16, max_frames: int | None = None,
                     progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Encoder features of every frame of a data set (samples per docs/architecture.md).

    Args:
        model: a ``kp3d.model.KeypointModel`` (its detector and encoder are used).
        dataset: a torch Dataset with ``gt.joints_3d``.
        views: view indices to encode (concatenated in this order).

    Returns:
        features (T, V*D) float64 and joints (T, 17, 3) world mm.
    """
    idx = even_subset(len(dataset), max_frames)
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(dataset, idx), batch_size=batch_size)
    model.eval()
    dev = next(model.parameters()).device
    feats, joints = [], []
    for batch in tqdm(loader, desc="encoder features", disable=not progress, leave=False):
        (images, backgrounds, *_), j = _to_device(batch, tuple(views), dev)
        feats.append(_encode(model, images, backgrounds).flatten(1).double().cpu().numpy())
        joints.append(j.numpy())
    return np.concatenate(feats), np.concatenate(joints)


def untrained_baseline(cfg, train_ds, test_ds, fractions=(1.0,), kinds=("linear", "mlp"),
                       probe_cfg: P.ProbeConfig | None = None, max_frames: int | None = None,
                       progress: bool = True) -> list[dict]:
    """Probes on the encoder features of an untrained network (random init, seed ``cfg.seed``)."""
    torch.manual_seed(cfg.seed)
    model = KeypointModel(cfg)
    views = tuple(cfg.views)
    x_tr, j_tr = encoder_features(model, train_ds, views, max_frames=max_frames, progress=progress)
    x_te, j_te = encoder_features(model, test_ds, views, max_frames=max_frames, progress=progress)
    rows = P.label_fraction_sweep(x_tr, P.pose_targets(j_tr), x_te, P.pose_targets(j_te), fractions, kinds,
                                  probe_cfg or P.probe_config(cfg.profile), name="untrained", progress=progress)
    for r in rows:
        r.update(key="untrained", setting="untrained encoder features", paper=None)
    return rows


def supervised_upper_bound(cfg, train_ds, test_ds, iters: int = 2000, lr: float = 1e-3, batch_size: int = 8,
                           hidden: int = 512, max_frames: int | None = None, progress: bool = True,
                           crop: str = "foreground", device: str | torch.device = "cpu", num_workers: int = 0,
                           eval_every: int = 0) -> dict:
    """Upper bound: the same encoder trained with 3D labels, end to end.

    A head (2 hidden layers of ``hidden``, ReLU) maps the per-view encoder features, concatenated
    over ``cfg.views``, to the 17 pelvis-relative joints; encoder and head are trained with MSE on
    z-scored targets (the head outputs z-scores, so it starts near the mean pose), Adam ``lr``.
    ``crop``: "foreground" crops each view around |I - B| (``kp3d.losses.foreground_box``, no labels:
    the box the cpu-demo detector is pulled towards), "detector" trains the model's detector with
    the rest. A detector trained from scratch by the pose loss alone did not find the person within
    1,500 steps on the cpu-demo data (the bound then sat at the mean pose, 168.0 mm), hence the
    default. The paper does not train this model; the project uses it as the ceiling that
    the probes on the same encoder should not beat. It is only a ceiling when trained long enough:
    report its ``iters`` with it.

    ``device``: where to train ("cuda" on a GPU machine; the initialisation and the order of the
    batches are those of a CPU run, the arithmetic differs, so figures agree only roughly).
    ``num_workers``: DataLoader processes (large images load slower than a GPU step).
    ``eval_every`` > 0 also measures the test error every that many steps, returned as ``history``
    (a list of dicts step, train_loss, mpjpe, n_mpjpe, p_mpjpe): whether the bound has stopped
    improving, i.e. whether ``iters`` was long enough to call it a ceiling.

    Returns:
        one row dict(key="supervised", mpjpe, n_mpjpe, p_mpjpe, ..., history) on the test set.
    """
    if crop not in ("foreground", "detector"):
        raise ValueError(f"crop={crop!r}: expected 'foreground' (box around |I - B|) or 'detector'")
    if eval_every < 0 or num_workers < 0:
        raise ValueError(f"eval_every={eval_every}, num_workers={num_workers}: expected numbers >= 0")
    dev = torch.device(device)
    torch.manual_seed(cfg.seed)
    model = KeypointModel(cfg).to(dev)
    views = tuple(cfg.views)
    head = torch.nn.Sequential(
        torch.nn.Linear(len(views) * cfg.latent_dim, hidden), torch.nn.ReLU(),
        torch.nn.Linear(hidden, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 51)).to(dev)
    params = list(model.encoder.parameters()) + list(head.parameters())
    if crop == "detector":
        params += list(model.detector.parameters())
    opt = torch.optim.Adam(params, lr=lr)
    # target statistics from the labels of the training set (cheap: no images needed)
    sub = even_subset(len(train_ds), max_frames)
    ys = np.stack([P.pose_targets(np.asarray(train_ds[i]["gt"]["joints_3d"])[None])[0] for i in sub[:: max(1, len(sub) // 256)]])
    y_mean = torch.as_tensor(ys.mean(0), dtype=torch.float32, device=dev)
    y_std = torch.as_tensor(ys.std(0) + 1.0, dtype=torch.float32, device=dev)  # +1 mm: the pelvis columns are 0
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(train_ds, sub), batch_size=batch_size,
                                         shuffle=True, drop_last=len(sub) > batch_size, num_workers=num_workers,
                                         persistent_workers=num_workers > 0)
    test_loader = torch.utils.data.DataLoader(torch.utils.data.Subset(test_ds, even_subset(len(test_ds), max_frames)),
                                              batch_size=16, num_workers=num_workers)

    def test_errors() -> dict:
        model.eval(); head.eval()
        preds, gts = [], []
        with torch.no_grad():
            for batch in test_loader:
                (images, backgrounds, *_), j = _to_device(batch, views, dev)
                preds.append((head(_encode(model, images, backgrounds, crop).flatten(1)) * y_std + y_mean).double().cpu().numpy())
                gts.append(P.pose_targets(j.numpy()))
        model.train(); head.train()
        return P.pose_errors(np.concatenate(preds), np.concatenate(gts))

    model.train(); head.train()
    history: list[dict] = []
    step, recent = 0, deque(maxlen=50)  # the last 50 training losses
    bar = tqdm(total=iters, desc="supervised upper bound", disable=not progress, leave=False)
    while step < iters:
        for batch in loader:
            (images, backgrounds, *_), j = _to_device(batch, views, dev)
            y = torch.as_tensor(P.pose_targets(j.numpy()), dtype=torch.float32, device=dev)
            z = head(_encode(model, images, backgrounds, crop).flatten(1))  # the head predicts z-scored joints
            loss = ((z - (y - y_mean) / y_std) ** 2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            recent.append(float(loss.detach()))
            bar.update(1)
            bar.set_postfix(loss=recent[-1])
            if eval_every and step % eval_every == 0 and step < iters:
                history.append(dict(step=step, train_loss=float(np.mean(recent)), **test_errors()))
                log.info("supervised upper bound, step %d: train loss %.3f, test MPJPE %.1f mm", step,
                         history[-1]["train_loss"], history[-1]["mpjpe"])
            if step >= iters:
                break
    bar.close()
    final = test_errors()
    if eval_every:
        history.append(dict(step=step, train_loss=float(np.mean(recent)) if recent else float("nan"), **final))
    return dict(key="supervised", setting="upper bound: encoder trained with 3D labels", features="images",
                probe="supervised", fraction=1.0, n_train=len(sub), iters=iters, crop=crop, paper=None,
                history=history, **final)
