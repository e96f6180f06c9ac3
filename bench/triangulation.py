"""Benchmark kp3d.geometry.triangulate_dlt against the ways public code triangulates.

Prints points per second for B frames x N keypoints x V views (float32, CPU by default):
- kp3d.geometry.triangulate_dlt, forward only and forward + backward;
- (a) a per-point Python loop over numpy SVD (the homogeneous DLT as several public
  implementations of this method write it), timed on a subset and reported per point;
- (b) cv2.triangulatePoints over view pairs (OpenCV handles two views; we call it for every
  pair of views, each call vectorised over all points), if OpenCV is installed.

Usage: python bench/triangulation.py [--frames 1024] [--keypoints 32] [--views 4] [--threads 0] [--device cpu]
"""
from __future__ import annotations

import argparse
import itertools
import time

import numpy as np
import torch

from kp3d.cameras import h36m_rig, to_tensors
from kp3d.geometry import project, triangulate_dlt


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def svd_loop(P: np.ndarray, x: np.ndarray) -> np.ndarray:
    """x: (V, M, 2) -> (M, 3), one numpy SVD per point."""
    V, M = x.shape[:2]
    out = np.empty((M, 3))
    for m in range(M):
        A = np.empty((2 * V, 4))
        for v in range(V):
            A[2 * v] = x[v, m, 0] * P[v, 2] - P[v, 0]
            A[2 * v + 1] = x[v, m, 1] * P[v, 2] - P[v, 1]
        vt = np.linalg.svd(A)[2]
        out[m] = vt[-1, :3] / vt[-1, 3]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=1024)
    ap.add_argument("--keypoints", type=int, default=32)
    ap.add_argument("--views", type=int, default=4)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    B, N, V = args.frames, args.keypoints, args.views
    cams = (h36m_rig("S1") * ((V + 3) // 4))[:V]
    P = to_tensors(cams)["P"].to(dev)
    g = torch.Generator().manual_seed(0)
    X = ((torch.rand(B, N, 3, generator=g) - 0.5) * torch.tensor([2000.0, 2000.0, 2000.0]) + torch.tensor([0, 0, 1000.0])).to(dev)
    x = project(P, X) + torch.randn(B, V, N, 2, generator=g).to(dev) * 1.0  # (B, V, N, 2)
    total = B * N
    sync = (lambda: torch.cuda.synchronize()) if dev.type == "cuda" else (lambda: None)
    print(f"triangulate_dlt benchmark: B={B} frames x N={N} keypoints x V={V} views, float32, "
          f"device={dev}{' (' + torch.cuda.get_device_name(dev) + ')' if dev.type == 'cuda' else ''}, "
          f"torch threads={torch.get_num_threads()}")

    def fwd():
        triangulate_dlt(P, x, validate=False)
        sync()

    fwd()
    t_fwd = best_of(fwd, args.repeats)
    xg = x.clone().requires_grad_(True)

    def fwd_bwd():
        triangulate_dlt(P, xg, validate=False).sum().backward()
        sync()

    fwd_bwd()
    t_fb = best_of(fwd_bwd, args.repeats)

    def fwd_validated():
        triangulate_dlt(P, x)
        sync()

    t_val = best_of(fwd_validated, args.repeats)
    print(f"kp3d triangulate_dlt forward:            {total / t_fwd:14,.0f} points/s ({t_fwd * 1e3:8.2f} ms per batch)")
    print(f"kp3d triangulate_dlt forward (validated): {total / t_val:13,.0f} points/s ({t_val * 1e3:8.2f} ms per batch)")
    print(f"kp3d triangulate_dlt forward + backward: {total / t_fb:14,.0f} points/s ({t_fb * 1e3:8.2f} ms per batch)")

    # (a) per-point numpy SVD loop, timed on a subset
    Pn = P.double().cpu().numpy()
    xs = x.double().cpu().numpy().transpose(1, 0, 2, 3).reshape(V, B * N, 2)
    subset = min(2048, B * N)
    t_loop = best_of(lambda: svd_loop(Pn, xs[:, :subset]), 2) * (total / subset)
    print(f"(a) per-point numpy SVD loop:            {total / t_loop:14,.0f} points/s  -> kp3d is {t_loop / t_fwd:,.0f}x faster")

    # (b) cv2.triangulatePoints over every view pair
    try:
        import cv2
    except ImportError:
        print("(b) cv2.triangulatePoints: OpenCV not installed, skipped (pip install opencv-python-headless)")
    else:
        pairs = list(itertools.combinations(range(V), 2))

        def cv_pairs():
            for a, b in pairs:
                cv2.triangulatePoints(Pn[a], Pn[b], xs[a].T, xs[b].T)

        t_cv = best_of(cv_pairs, args.repeats)
        t_cv_pair = t_cv / len(pairs)
        print(f"(b) cv2.triangulatePoints, one view pair:{total / t_cv_pair:14,.0f} points/s  (2 views only)")
        print(f"(b) cv2.triangulatePoints, all {len(pairs)} pairs:  {total / t_cv:14,.0f} points/s  -> kp3d ({V} views at once) is {t_cv / t_fwd:,.1f}x faster")
        # the same 2-view problem with kp3d, for a like-for-like ratio
        P2, x2 = P[:2], x[:, :2].contiguous()
        t_k2 = best_of(lambda: (triangulate_dlt(P2, x2, validate=False), sync()), args.repeats)
        print(f"kp3d on one view pair:                   {total / t_k2:14,.0f} points/s  -> {t_cv_pair / t_k2:,.2f}x cv2")


if __name__ == "__main__":
    main()
