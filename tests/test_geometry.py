"""Tests for kp3d.geometry: shapes, bad input, accuracy on the Human3.6M rig, gradients, fuzzing."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from kp3d.cameras import h36m_rig, to_tensors
from kp3d.geometry import (
    box_to_theta,
    crop_intrinsics,
    crop_patches,
    gaussian_heatmaps,
    image_to_patch,
    patch_to_image,
    project,
    soft_argmax,
    triangulate_dlt,
    uncrop_patches,
)


def rig_P(subject="S1", dtype=torch.float32, size=None):
    cams = h36m_rig(subject) if size is None else h36m_rig(subject, *size)
    return to_tensors(cams, dtype=dtype)["P"]


def random_points(n, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    # a capture volume around the H36M origin: 2 m x 2 m floor, 0-2 m height
    X = (torch.rand(n, 3, generator=g) - 0.5) * torch.tensor([2000.0, 2000.0, 0.0])
    X[:, 2] = torch.rand(n, generator=g) * 2000.0
    return X.to(dtype)


def reference_dlt_svd(P: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Homogeneous DLT by SVD in float64, one point at a time (the textbook method)."""
    V, N = x.shape[:2]
    out = np.zeros((N, 3))
    for n in range(N):
        rows = []
        for v in range(V):
            u, w = x[v, n]
            rows.append(u * P[v, 2] - P[v, 0])
            rows.append(w * P[v, 2] - P[v, 1])
        _, _, vt = np.linalg.svd(np.stack(rows))
        out[n] = vt[-1, :3] / vt[-1, 3]
    return out


def reference_dlt_lstsq(P: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Inhomogeneous DLT (X_4 = 1) by numpy least squares in float64, one point at a time.

    Rows are scaled to unit norm in a world normalised by the camera centres (as the library does).
    """
    V, N = x.shape[:2]
    C = np.stack([-np.linalg.solve(P[v, :, :3], P[v, :, 3]) for v in range(V)])
    c = C.mean(0)
    s = np.linalg.norm(C - c, axis=1).mean()
    T = np.eye(4)
    T[:3, :3] *= s
    T[:3, 3] = c
    out = np.zeros((N, 3))
    for n in range(N):
        rows = []
        for v in range(V):
            u, w = x[v, n]
            for r in (u * P[v, 2] - P[v, 0], w * P[v, 2] - P[v, 1]):
                rows.append(r / np.linalg.norm(r @ T))
        A = np.stack(rows)
        out[n] = np.linalg.lstsq(A[:, :3], -A[:, 3], rcond=None)[0]
    return out


# ---------------------------------------------------------------- shape
class TestShapes:
    def test_project_shape(self):
        P = rig_P()
        X = random_points(5)
        assert project(P, X).shape == (4, 5, 2)
        assert project(P.expand(2, 3, 4, 3, 4), X.expand(2, 3, 5, 3)).shape == (2, 3, 4, 5, 2)

    @pytest.mark.parametrize("V", [2, 3, 4])
    def test_triangulate_any_views(self, V):
        P = rig_P()[:V]
        X = random_points(7)
        x = project(P, X)
        assert triangulate_dlt(P, x).shape == (7, 3)

    def test_triangulate_batched(self):
        P = rig_P().expand(2, 3, 4, 3, 4)
        X = random_points(6).expand(2, 3, 6, 3)
        x = project(P, X)
        assert x.shape == (2, 3, 4, 6, 2)
        assert triangulate_dlt(P, x).shape == (2, 3, 6, 3)
        assert triangulate_dlt(P, x, torch.ones(2, 3, 4, 6)).shape == (2, 3, 6, 3)
        # P shared across a batch of points: broadcasting of leading dims
        assert triangulate_dlt(rig_P(), x).shape == (2, 3, 6, 3)

    def test_heatmaps_and_soft_argmax_shapes(self):
        x = torch.rand(3, 8, 2) * 15
        h = gaussian_heatmaps(x, (16, 20), 1.5)
        assert h.shape == (3, 8, 16, 20)
        assert soft_argmax(h).shape == (3, 8, 2)

    def test_crop_shapes(self):
        img = torch.rand(2, 3, 40, 50)
        box = torch.tensor([[0.5, 0.5, 0.0, 0.0], [0.3, 0.4, 0.1, -0.2]])
        assert box_to_theta(box).shape == (2, 2, 3)
        assert crop_patches(img, box, 16).shape == (2, 3, 16, 16)
        assert uncrop_patches(torch.rand(2, 1, 16, 16), box, (40, 50)).shape == (2, 1, 40, 50)
        K = torch.eye(3).expand(2, 3, 3)
        assert crop_intrinsics(K, box, 16, (40, 50)).shape == (2, 3, 3)


# ---------------------------------------------------------------- bad input
class TestBadInput:
    def test_one_view(self):
        P = rig_P()[:1]
        with pytest.raises(ValueError, match="at least 2 views"):
            triangulate_dlt(P, torch.zeros(1, 3, 2))

    def test_mismatched_views(self):
        with pytest.raises(ValueError, match=r"x has V=3 views"):
            triangulate_dlt(rig_P(), torch.zeros(3, 5, 2))

    def test_wrong_last_dims(self):
        with pytest.raises(ValueError, match=r"x must have shape \(\.\.\., V, N, 2\)"):
            triangulate_dlt(rig_P(), torch.zeros(4, 5, 3))
        with pytest.raises(ValueError, match=r"P must have shape \(\.\.\., V, 3, 4\)"):
            triangulate_dlt(torch.zeros(4, 4, 4), torch.zeros(4, 5, 2))
        with pytest.raises(ValueError, match=r"X must have shape \(\.\.\., N, 3\)"):
            project(rig_P(), torch.zeros(5, 2))

    def test_non_finite(self):
        x = project(rig_P(), random_points(3))
        x[1, 2, 0] = float("nan")
        with pytest.raises(ValueError, match="x contains NaN or inf"):
            triangulate_dlt(rig_P(), x)
        P = rig_P()
        P[0, 0, 0] = float("inf")
        with pytest.raises(ValueError, match="P contains NaN or inf"):
            triangulate_dlt(P, torch.zeros(4, 3, 2))

    def test_wrong_dtype(self):
        with pytest.raises(TypeError, match="x must be a floating-point tensor"):
            triangulate_dlt(rig_P(), torch.zeros(4, 3, 2, dtype=torch.int64))
        with pytest.raises(TypeError, match="P must be a torch.Tensor"):
            triangulate_dlt(np.zeros((4, 3, 4)), torch.zeros(4, 3, 2))

    def test_weights(self):
        x = project(rig_P(), random_points(3))
        with pytest.raises(ValueError, match=r"weights must have shape \(\.\.\., V, N\)"):
            triangulate_dlt(rig_P(), x, torch.ones(4, 2))
        with pytest.raises(ValueError, match="non-negative"):
            triangulate_dlt(rig_P(), x, -torch.ones(4, 3))

    def test_non_broadcasting_batch(self):
        P = rig_P().expand(2, 4, 3, 4)
        x = torch.zeros(3, 4, 5, 2)
        with pytest.raises(ValueError, match="do not broadcast"):
            triangulate_dlt(P, x)

    def test_bad_crop_args(self):
        with pytest.raises(ValueError, match="patch_size"):
            crop_intrinsics(torch.eye(3), torch.tensor([0.5, 0.5, 0, 0.0]), 0, (10, 10))
        with pytest.raises(ValueError, match=r"box must have shape"):
            crop_intrinsics(torch.eye(3), torch.tensor([0.5, 0.5, 0.0]), 8, (10, 10))
        with pytest.raises(ValueError, match="temperature"):
            soft_argmax(torch.zeros(1, 4, 4), temperature=0.0)


# ---------------------------------------------------------------- accuracy
class TestAccuracy:
    @pytest.mark.parametrize("subject", ["S1", "S9", "S11"])
    def test_float32_noise_free_h36m(self, subject):
        P = rig_P(subject)
        X = random_points(2000, seed=1)
        Xr = triangulate_dlt(P, project(P, X))
        assert Xr.dtype == torch.float32
        assert (Xr - X).norm(dim=-1).max() < 0.5  # mm

    def test_float32_resized_rig(self):
        P = rig_P("S5", size=(128, 128))
        X = random_points(500, seed=2)
        assert (triangulate_dlt(P, project(P, X)) - X).norm(dim=-1).max() < 0.5

    @pytest.mark.parametrize("V", [2, 3, 4])
    def test_noisy_matches_float64_reference(self, V):
        """float32 and float64 results agree with a per-point float64 least-squares reference."""
        P64 = rig_P("S9", torch.float64)[:V]
        X = random_points(200, seed=3, dtype=torch.float64)
        g = torch.Generator().manual_seed(4)
        x64 = project(P64, X) + torch.randn(V, 200, 2, generator=g, dtype=torch.float64) * 3.0
        ref = reference_dlt_lstsq(P64.numpy(), x64.numpy())
        assert np.abs(triangulate_dlt(P64, x64).numpy() - ref).max() < 1e-3
        assert np.abs(triangulate_dlt(P64.float(), x64.float()).double().numpy() - ref).max() < 0.05

    @pytest.mark.parametrize("V", [2, 3, 4])
    def test_noise_free_matches_svd_dlt(self, V):
        P64 = rig_P("S11", torch.float64)[:V]
        X = random_points(100, seed=10, dtype=torch.float64)
        ref = reference_dlt_svd(P64.numpy(), project(P64, X).numpy())
        assert np.abs(triangulate_dlt(P64.float(), project(P64, X).float()).double().numpy() - ref).max() < 0.5

    @pytest.mark.parametrize("noise", [0.0, 0.5, 2.0])
    def test_two_views_match_opencv(self, noise):
        """2-view results agree with cv2.triangulatePoints (homogeneous SVD DLT, float64).

        The two solve slightly different algebraic problems (fixed X_4 = 1 versus |X| = 1), so with
        noisy pixels they agree to a fraction of the error both make against the truth.
        """
        cv2 = pytest.importorskip("cv2")
        P = rig_P("S1", torch.float64)
        X = random_points(300, seed=5, dtype=torch.float64)
        g = torch.Generator().manual_seed(6)
        x = project(P, X) + torch.randn(4, 300, 2, generator=g, dtype=torch.float64) * noise
        for a, b in [(0, 1), (0, 2), (1, 3), (2, 3)]:
            Xh = cv2.triangulatePoints(P[a].numpy(), P[b].numpy(), x[a].numpy().T, x[b].numpy().T)
            ref = (Xh[:3] / Xh[3]).T
            ours = triangulate_dlt(P[[a, b]].float(), x[[a, b]].float()).double().numpy()
            err_cv = np.linalg.norm(ref - X.numpy(), axis=1).mean()
            err_ours = np.linalg.norm(ours - X.numpy(), axis=1).mean()
            # noise-free: the same point to 0.01 mm; noisy: within 30% of the error both make
            tol = 0.01 if noise == 0 else 0.3 * err_cv
            assert np.abs(ours - ref).max() < tol, (a, b)
            assert err_ours <= 1.02 * err_cv + 1e-3, (a, b, err_ours, err_cv)

    def test_weights_select_views(self):
        """Zero weight on a view with a gross outlier removes its influence."""
        P = rig_P()
        X = random_points(20, seed=7)
        x = project(P, X)
        x[3] += 80.0
        w = torch.ones(4, 20)
        w[3] = 0.0
        assert (triangulate_dlt(P, x, w) - X).norm(dim=-1).max() < 0.5
        assert (triangulate_dlt(P, x) - X).norm(dim=-1).max() > 5.0

    def test_soft_argmax_recovers_gaussian_centres(self):
        x = torch.tensor([[[5.3, 7.8], [20.0, 3.5], [12.25, 12.75]]])
        h = gaussian_heatmaps(x, (24, 26), 1.0)
        # log of a Gaussian is a quadratic score: a sharp softmax sits at the centre
        est = soft_argmax(torch.log(h + 1e-30))
        assert torch.allclose(est, x, atol=1e-3)

    def test_soft_argmax_flat_is_centre(self):
        est = soft_argmax(torch.zeros(1, 2, 9, 12))
        assert torch.allclose(est, torch.tensor([[[5.5, 4.0], [5.5, 4.0]]]))

    def test_soft_argmax_spread(self):
        h = torch.full((1, 2, 9, 12), -1e4)
        h[0, 0, 3, 7] = 0.0  # a one-pixel peak: no spread
        h[0, 1] = 0.0  # flat: the RMS radius of a uniform 9 x 12 grid around its centre
        x, spread = soft_argmax(h, return_spread=True)
        assert x.shape == (1, 2, 2) and spread.shape == (1, 2)
        assert torch.allclose(x[0, 0], torch.tensor([7.0, 3.0]))
        flat = ((12 ** 2 - 1) / 12 + (9 ** 2 - 1) / 12) ** 0.5
        assert spread[0, 0] < 1e-3 and torch.isclose(spread[0, 1], torch.tensor(flat), atol=1e-4)
        assert torch.equal(soft_argmax(h), x)

    def test_patch_image_round_trip(self):
        box = torch.tensor([[0.4, 0.6, 0.2, -0.1]])
        x = torch.rand(1, 10, 2) * 100
        back = patch_to_image(image_to_patch(x, box, 32, (100, 120)), box, 32, (100, 120))
        assert torch.allclose(back, x, atol=1e-4)

    @pytest.mark.parametrize(
        "box", [(0.5, 0.5, 0.0, 0.0), (0.3, 0.45, 0.15, -0.2), (0.62, 0.4, -0.3, 0.25)]
    )
    def test_crop_intrinsics_dot(self, box):
        """Render a dot, crop it with the spatial transformer, find it where K_p projects it."""
        H, W, Pz = 256, 240, 64
        cams = h36m_rig("S1", W, H)
        cam = cams[1]
        X = torch.tensor([[150.0, -120.0, 1100.0]], dtype=torch.float64)
        Pfull = to_tensors([cam], dtype=torch.float64)["P"]
        uv = project(Pfull, X)[0, 0]  # full-image pixels
        # the dot: a narrow Gaussian blob centred at the projected point
        img = gaussian_heatmaps(uv.view(1, 1, 2), (H, W), 2.5).float()  # (1, 1, H, W)
        boxt = torch.tensor([box], dtype=torch.float32)
        # move the box so that the dot is inside it
        centre_norm = (2 * uv + 1) / torch.tensor([W, H], dtype=torch.float64) - 1
        boxt[0, 2:] = centre_norm.float() + boxt[0, 2:] * 0.5 * boxt[0, :2]
        patch = crop_patches(img, boxt, Pz)[0, 0].double()
        # centre of mass of the cropped blob (OpenCV pixel centres)
        vs, us = torch.meshgrid(torch.arange(Pz, dtype=torch.float64), torch.arange(Pz, dtype=torch.float64), indexing="ij")
        found = torch.stack([(patch * us).sum() / patch.sum(), (patch * vs).sum() / patch.sum()])
        Kp = crop_intrinsics(torch.tensor(cam.K), boxt[0].double(), Pz, (H, W))
        Pp = Kp @ torch.cat([torch.tensor(cam.R), torch.tensor(cam.t)[:, None]], 1)
        predicted = project(Pp[None], X)[0, 0]
        assert (found - predicted).norm() < 0.5, (found, predicted)
        # and image_to_patch agrees with K_p
        assert torch.allclose(image_to_patch(uv.view(1, 2), boxt[0].double(), Pz, (H, W))[0], predicted, atol=1e-6)

    def test_uncrop_inverts_crop(self):
        img = torch.zeros(1, 1, 64, 64)
        img[0, 0, 20:40, 24:44] = 1.0
        box = torch.tensor([[0.5, 0.5, 0.05, 0.0]])
        patch = crop_patches(img, box, 64)  # same pixel density: scale 0.5 of 64 -> 32 px wide box
        back = uncrop_patches(patch, box, (64, 64))
        # inside the box the round trip is close (bilinear twice), outside it is zero
        inner = back[0, 0, 22:38, 26:42]
        assert (inner - 1).abs().max() < 1e-3
        assert back[0, 0, :, :6].abs().max() == 0


# ---------------------------------------------------------------- gradients and degenerate input
def degenerate_cases():
    """(P, x, weights) float64 triples that break naive DLT implementations."""
    P = rig_P("S1", torch.float64)
    X = torch.tensor([[100.0, 50.0, 1000.0], [-300.0, 200.0, 500.0]], dtype=torch.float64)
    x = project(P, X)
    cases = {}
    # two identical cameras: coincident rays
    Pdup = torch.stack([P[0], P[0]])
    cases["coincident_rays"] = (Pdup, project(Pdup, X), None)
    # a point near a camera's principal plane (depth ~ 1e-3 mm)
    C = torch.tensor(h36m_rig("S1")[0].center)
    R0 = torch.tensor(h36m_rig("S1")[0].R)
    near = (C + R0[0] * 400.0 + R0[2] * 1e-3).view(1, 3)
    cases["near_camera_plane"] = (P, project(P, near), None)
    # all weights zero but two views
    w = torch.zeros(4, 2, dtype=torch.float64)
    w[1] = 1.0
    w[3] = 1.0
    cases["two_weights"] = (P, x, w)
    # all weights zero
    cases["all_weights_zero"] = (P, x, torch.zeros(4, 2, dtype=torch.float64))
    return cases


class TestGradients:
    @pytest.mark.parametrize("name", list(degenerate_cases().keys()))
    def test_degenerate_finite(self, name):
        P, x, w = degenerate_cases()[name]
        x = x.clone().requires_grad_(True)
        Pg = P.clone().requires_grad_(True)
        X = triangulate_dlt(Pg, x, w)
        assert torch.isfinite(X).all()
        X.sum().backward()
        assert torch.isfinite(x.grad).all() and torch.isfinite(Pg.grad).all()
        # float32 too
        x32 = x.detach().float().requires_grad_(True)
        X32 = triangulate_dlt(P.float(), x32, None if w is None else w.float())
        X32.square().sum().backward()
        assert torch.isfinite(X32).all() and torch.isfinite(x32.grad).all()

    def test_gradcheck_regular(self):
        P = rig_P("S9", torch.float64)[:3]
        X = random_points(3, seed=8, dtype=torch.float64)
        x = (project(P, X) + 0.7).requires_grad_(True)
        w = torch.rand(3, 3, dtype=torch.float64).add(0.5).requires_grad_(True)
        assert torch.autograd.gradcheck(lambda x_, w_: triangulate_dlt(P, x_, w_), (x, w))
        Pv = P.clone().requires_grad_(True)
        assert torch.autograd.gradcheck(lambda p_: triangulate_dlt(p_, x.detach()), (Pv,))

    @pytest.mark.parametrize("name", ["coincident_rays", "two_weights", "near_camera_plane"])
    def test_gradcheck_degenerate(self, name):
        P, x, w = degenerate_cases()[name]
        if name == "coincident_rays":
            # exactly coincident rays are singular; gradients are finite, check them slightly off it
            x = x + torch.tensor([0.0, 0.3], dtype=torch.float64)
        xg = x.clone().requires_grad_(True)
        assert torch.autograd.gradcheck(lambda x_: triangulate_dlt(P, x_, w), (xg,), atol=1e-5, rtol=1e-3)

    def test_gradcheck_project_and_crop(self):
        P = rig_P("S1", torch.float64).requires_grad_(True)
        X = random_points(2, seed=9, dtype=torch.float64).requires_grad_(True)
        assert torch.autograd.gradcheck(project, (P, X))
        K = torch.tensor(h36m_rig("S1", 128, 128)[0].K).requires_grad_(True)
        box = torch.tensor([0.4, 0.5, 0.1, -0.1], dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(lambda k, b: crop_intrinsics(k, b, 32, (128, 128)), (K, box))

    def test_gradcheck_soft_argmax_heatmaps(self):
        h = torch.randn(2, 5, 6, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(lambda h_: soft_argmax(h_, 1.5), (h,))
        assert torch.autograd.gradcheck(lambda h_: soft_argmax(h_, 1.5, return_spread=True)[1], (h,))
        x = (torch.rand(2, 2, dtype=torch.float64) * 5).requires_grad_(True)
        assert torch.autograd.gradcheck(lambda x_: gaussian_heatmaps(x_, (6, 7), 1.2), (x,))


def random_rigs(n: int, V: int, seed: int):
    """n random calibrated rigs of V cameras looking roughly at the origin (float32)."""
    g = torch.Generator().manual_seed(seed)
    f = 50 + torch.rand(n, V, generator=g) * 3000
    K = torch.zeros(n, V, 3, 3)
    K[..., 0, 0] = f
    K[..., 1, 1] = f * (0.8 + 0.4 * torch.rand(n, V, generator=g))
    K[..., 0, 2] = torch.rand(n, V, generator=g) * 2000
    K[..., 1, 2] = torch.rand(n, V, generator=g) * 2000
    K[..., 2, 2] = 1
    A = torch.randn(n, V, 3, 3, generator=g)
    Q, Rr = torch.linalg.qr(A)
    Q = Q * torch.sign(torch.diagonal(Rr, dim1=-2, dim2=-1)).unsqueeze(-2)
    Q = Q * torch.sign(torch.linalg.det(Q))[..., None, None]
    t = torch.randn(n, V, 3, generator=g) * 10 ** (torch.rand(n, V, 1, generator=g) * 4)
    t[..., 2] = t[..., 2].abs() + 10  # mostly in front, sometimes barely
    P = K @ torch.cat([Q, t.unsqueeze(-1)], -1)
    return P


@pytest.mark.slow
def test_fuzz_random_rigs_no_nan():
    """>= 10,000 random rigs with random and degenerate pixels: values and gradients stay finite."""
    total = 0
    for V, seed in [(2, 0), (3, 1), (4, 2), (5, 3)]:
        n = 2600
        P = random_rigs(n, V, seed)
        g = torch.Generator().manual_seed(100 + seed)
        X = torch.randn(n, 8, 3, generator=g) * 10 ** (torch.rand(n, 1, 1, generator=g) * 4)
        x = project(P, X)
        # random outliers, exact duplicates of one view, points at the principal point
        x = x + torch.randn_like(x) * torch.rand(n, 1, 1, 1, generator=g) * 50
        x[: n // 4, 1] = x[: n // 4, 0]
        P[: n // 8, 1] = P[: n // 8, 0]
        x = torch.nan_to_num(x, nan=0.0, posinf=1e6, neginf=-1e6).clamp(-1e7, 1e7)
        w = (torch.rand(n, V, 8, generator=g) > 0.3).float()
        w[: n // 10] = 0
        xg = x.clone().requires_grad_(True)
        wg = w.clone().requires_grad_(True)
        Pg = P.clone().requires_grad_(True)
        Xr = triangulate_dlt(Pg, xg, wg)
        assert torch.isfinite(Xr).all(), f"non-finite output for V={V}"
        (Xr / (1 + Xr.detach().abs())).sum().backward()
        for name, grad in [("x", xg.grad), ("weights", wg.grad), ("P", Pg.grad)]:
            assert torch.isfinite(grad).all(), f"non-finite gradient wrt {name} for V={V}"
        total += n
    assert total >= 10_000
