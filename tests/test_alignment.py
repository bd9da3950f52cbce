"""Weighted Umeyama alignment."""

from __future__ import annotations

import torch

from depthface.geometry.alignment import apply_similarity, umeyama
from depthface.geometry.rotations import geodesic_angle_deg, random_rotation

F64 = torch.float64


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _problem(b: int = 8, n: int = 60, seed: int = 0, dtype=F64):
    g = _gen(seed)
    src = torch.randn(b, n, 3, generator=g, dtype=dtype) * 80.0  # face-sized, mm
    R = random_rotation(b, generator=g, dtype=dtype)
    t = (torch.rand(b, 3, generator=g, dtype=dtype) - 0.5) * 400 + torch.tensor([0, 0, 900.0], dtype=dtype)
    s = 0.5 + torch.rand(b, generator=g, dtype=dtype)
    return src, R, t, s


def test_exact_rigid_recovery():
    src, R, t, _ = _problem()
    dst = apply_similarity(src, R, t)
    R_est, t_est, s_est = umeyama(src, dst)
    torch.testing.assert_close(R_est, R, atol=1e-10, rtol=0)
    torch.testing.assert_close(t_est, t, atol=1e-8, rtol=0)
    torch.testing.assert_close(s_est, torch.ones(8, dtype=F64))
    torch.testing.assert_close(torch.linalg.det(R_est), torch.ones(8, dtype=F64))


def test_exact_similarity_recovery():
    src, R, t, s = _problem(seed=1)
    dst = apply_similarity(src, R, t, s)
    R_est, t_est, s_est = umeyama(src, dst, scale=True)
    torch.testing.assert_close(R_est, R, atol=1e-10, rtol=0)
    torch.testing.assert_close(t_est, t, atol=1e-8, rtol=0)
    torch.testing.assert_close(s_est, s, atol=1e-12, rtol=0)
    torch.testing.assert_close(apply_similarity(src, R_est, t_est, s_est), dst, atol=1e-8, rtol=0)


def test_minimal_three_points_and_float32():
    src, R, t, _ = _problem(b=4, n=3, seed=2, dtype=torch.float32)
    dst = apply_similarity(src, R, t)
    R_est, t_est, s_est = umeyama(src, dst)
    assert R_est.dtype == torch.float32 and t_est.dtype == torch.float32 and s_est.shape == (4,)
    assert geodesic_angle_deg(R_est.double(), R.double()).max() < 1e-3
    torch.testing.assert_close(t_est, t, atol=1e-2, rtol=0)


def test_noisy_recovery():
    src, R, t, s = _problem(n=400, seed=3)
    dst = apply_similarity(src, R, t, s)
    dst = dst + torch.randn(dst.shape, generator=_gen(4), dtype=F64) * 1.0  # 1 mm noise
    R_est, t_est, s_est = umeyama(src, dst, scale=True)
    assert geodesic_angle_deg(R_est, R).max() < 0.2
    assert (t_est - t).norm(dim=-1).max() < 3.0
    assert (s_est - s).abs().max() < 5e-3


def test_reflection_corrected():
    # dst is a mirror image of src: the best proper rotation must still have det = +1.
    src, _, _, _ = _problem(b=3, seed=5)
    dst = src * torch.tensor([-1.0, 1.0, 1.0], dtype=F64)
    R_est, _, _ = umeyama(src, dst)
    torch.testing.assert_close(torch.linalg.det(R_est), torch.ones(3, dtype=F64))


def test_weights_reject_outliers():
    src, R, t, _ = _problem(n=100, seed=6)
    dst = apply_similarity(src, R, t)
    outliers = torch.zeros(8, 100, dtype=torch.bool)
    outliers[:, ::4] = True  # a quarter of the correspondences are garbage
    dst = torch.where(outliers[..., None], dst + torch.randn(dst.shape, generator=_gen(7), dtype=F64) * 200, dst)
    R_bad, _, _ = umeyama(src, dst)
    assert geodesic_angle_deg(R_bad, R).min() > 0.5  # unweighted fit is spoiled by the outliers
    R_est, t_est, _ = umeyama(src, dst, weights=(~outliers).to(F64))
    torch.testing.assert_close(R_est, R, atol=1e-10, rtol=0)
    torch.testing.assert_close(t_est, t, atol=1e-8, rtol=0)


def test_weights_equal_repeating_points():
    # An integer weight is the same as repeating the point that many times.
    src, R, t, _ = _problem(b=2, n=20, seed=8)
    dst = apply_similarity(src, R, t) + torch.randn(2, 20, 3, generator=_gen(9), dtype=F64) * 5
    w = torch.randint(1, 4, (2, 20), generator=_gen(10)).to(F64)
    R_w, t_w, s_w = umeyama(src, dst, weights=w, scale=True)
    for b in range(2):
        rep = w[b].long()
        R_r, t_r, s_r = umeyama(src[b].repeat_interleave(rep, 0)[None], dst[b].repeat_interleave(rep, 0)[None],
                                scale=True)
        torch.testing.assert_close(R_w[b], R_r[0])
        torch.testing.assert_close(t_w[b], t_r[0])
        torch.testing.assert_close(s_w[b], s_r[0])


def test_gradient_flows():
    src, R, t, _ = _problem(b=2, n=30, seed=11)
    dst = (apply_similarity(src, R, t) + torch.randn(2, 30, 3, generator=_gen(12), dtype=F64)).requires_grad_()
    R_est, t_est, _ = umeyama(src, dst)
    (R_est.sum() + t_est.sum()).backward()
    assert torch.isfinite(dst.grad).all() and dst.grad.abs().sum() > 0
