"""A tiny in-memory multi-view data set that follows the sample contract of docs/architecture.md.

A "person" is 17 joints of a stick figure (H36M order) standing at a random place and heading; it is
drawn as coloured discs (one colour per body part) over a fixed textured background per camera,
seen by the real Human3.6M rig of subject S1 resized to ``size x size`` (no lens distortion).
Fast (a few ms per sample) and deterministic in ``seed``; for unit tests of the model and trainer.

Example:
    >>> ds = FakeMultiView(n=4, size=64)
    >>> s = ds[0]; s["images"].shape, s["gt"]["masks"].shape
    (torch.Size([4, 3, 64, 64]), torch.Size([4, 1, 64, 64]))
"""
from __future__ import annotations

import numpy as np
import torch

from kp3d.cameras import h36m_rig, to_tensors

# A standing T-less pose (mm, z up), H36M joint order; pelvis at the origin.
_POSE = np.array([
    [0, 0, 0], [-120, 0, 0], [-120, 0, -450], [-120, 0, -880], [120, 0, 0], [120, 0, -450], [120, 0, -880],
    [0, 0, 230], [0, 0, 480], [0, 0, 580], [0, 0, 680], [180, 0, 450], [250, 0, 180], [280, 0, -60],
    [-180, 0, 450], [-250, 0, 180], [-280, 0, -60],
], dtype=np.float64)
_COLOURS = np.array([
    [0.9, 0.2, 0.2], [0.2, 0.3, 0.9], [0.2, 0.3, 0.9], [0.1, 0.1, 0.5], [0.2, 0.8, 0.3], [0.2, 0.8, 0.3],
    [0.1, 0.4, 0.1], [0.9, 0.2, 0.2], [0.9, 0.5, 0.2], [0.9, 0.8, 0.6], [0.9, 0.8, 0.6], [0.8, 0.8, 0.1],
    [0.8, 0.8, 0.1], [0.9, 0.9, 0.5], [0.6, 0.2, 0.8], [0.6, 0.2, 0.8], [0.8, 0.5, 0.9],
], dtype=np.float32)


# Where the S1 cameras' optical axes meet is about (-50, 350, 445) mm; the pelvis goes 100 mm above
# it so that the whole body is centred in every view (not a physical floor: this is a test fixture).
_CENTRE = np.array([-50.0, 350.0, 550.0])


class FakeMultiView(torch.utils.data.Dataset):
    """``n`` samples of 4 views at ``size x size``; ``with_gt=False`` drops the ``gt`` dict; ``zoom``
    scales the focal lengths (a bigger person); the person stands within ``spread_mm`` of the origin."""

    subjects = ("S1",)

    def __init__(self, n: int = 8, size: int = 64, seed: int = 0, with_gt: bool = True, zoom: float = 1.5,
                 spread_mm: float = 250.0):
        rng = np.random.default_rng(seed)
        cams = [c.without_distortion() for c in h36m_rig("S1", size, size)]
        for c in cams:  # zoom > 1: longer focal length about the principal point, a bigger person
            c.K[:2, :2] *= zoom
        self.cams = cams
        self.tensors = to_tensors(cams)
        self.size, self.n, self.with_gt = size, n, with_gt
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
        self.true_bg = np.stack([
            np.stack([0.35 + 0.15 * np.sin(xx / (3 + v) + c) * np.cos(yy / (5 + c)) for c in range(3)])
            for v in range(len(cams))
        ]).astype(np.float32)  # (V, 3, H, W) textured, different per camera
        self.est_bg = np.clip(self.true_bg + rng.normal(0, 0.01, self.true_bg.shape), 0, 1).astype(np.float32)
        self.samples = []
        for i in range(n):
            yaw = rng.uniform(0, 2 * np.pi)
            Rz = np.array([[np.cos(yaw), -np.sin(yaw), 0], [np.sin(yaw), np.cos(yaw), 0], [0, 0, 1]])
            pose = _POSE.copy()
            pose[[12, 13, 15, 16], 2] += rng.uniform(-150, 250, 4)  # arms move a little
            joints = pose @ Rz.T + _CENTRE + np.array([rng.uniform(-spread_mm, spread_mm), rng.uniform(-spread_mm, spread_mm), 0.0])
            self.samples.append(self._render(joints, xx, yy))

    def _render(self, joints, xx, yy):
        V = len(self.cams)
        images = self.true_bg.copy()
        masks = np.zeros((V, 1, self.size, self.size), np.float32)
        j2d = np.stack([c.project(joints) for c in self.cams]).astype(np.float32)  # (V, 17, 2)
        for v, cam in enumerate(self.cams):
            depth = cam.world_to_camera(joints)[:, 2]
            radius = 150.0 * cam.K[0, 0] / depth  # a 150 mm disc per joint
            for j in np.argsort(-depth):  # far first, near joints occlude
                d2 = (xx - j2d[v, j, 0]) ** 2 + (yy - j2d[v, j, 1]) ** 2
                inside = d2 <= radius[j] ** 2
                images[v][:, inside] = _COLOURS[j][:, None]
                masks[v, 0][inside] = 1.0
        return {"images": images, "masks": masks, "joints_3d": joints.astype(np.float32), "joints_2d": j2d}

    def __len__(self) -> int:
        return self.n

    def frame_info(self, i: int) -> dict:
        return {"subject": "S1", "frame": int(i)}

    def __getitem__(self, i: int) -> dict:
        s = self.samples[i]
        out = {
            "images": torch.from_numpy(s["images"]),
            "backgrounds": torch.from_numpy(self.est_bg),
            "K": self.tensors["K"], "R": self.tensors["R"], "t": self.tensors["t"],
            "index": torch.tensor(i, dtype=torch.int64),
        }
        if self.with_gt:
            out["gt"] = {
                "joints_3d": torch.from_numpy(s["joints_3d"]),
                "joints_2d": torch.from_numpy(s["joints_2d"]),
                "masks": torch.from_numpy(s["masks"]),
                "backgrounds": torch.from_numpy(self.true_bg),
            }
        return out
