"""Nearest neighbours, landmark Chamfer (eq. 7) and fitting error (eq. 8)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from depthface.geometry import chamfer
from depthface.geometry.chamfer import fitting_error, fitting_errors, landmark_chamfer, nearest_neighbors
from depthface.geometry.rotations import euler_to_matrix

F64 = torch.float64


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _brute_nn(q: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    return ((q.double()[:, None, :] - r.double()[None, :, :]) ** 2).sum(-1).argmin(dim=1)


def _plane(z: float = 1000.0, half: int = 60, step: float = 1.0, dtype=F64) -> torch.Tensor:
    """A dense square grid in the plane Z = z (camera frame, mm)."""
    a = torch.arange(-half, half + 1, dtype=dtype) * step
    x, y = torch.meshgrid(a, a, indexing="xy")
    return torch.stack((x.flatten(), y.flatten(), torch.full_like(x.flatten(), z)), dim=-1)


# ------------------------------------------------------------------------- nearest neighbours


def test_nearest_neighbors_matches_brute_force():
    g = _gen(0)
    q = torch.randn(500, 3, generator=g) * 50
    r = torch.randn(700, 3, generator=g) * 50 + torch.tensor([0, 0, 800.0])
    q = q + torch.tensor([0, 0, 800.0])
    idx = nearest_neighbors(q, r)
    assert idx.dtype == torch.int64 and idx.shape == (500,)
    assert torch.equal(idx, _brute_nn(q, r))


def test_nearest_neighbors_batched_tensor_and_list():
    g = _gen(1)
    q = torch.randn(3, 200, 3, generator=g, dtype=F64) * 40
    refs = [torch.randn(m, 3, generator=g, dtype=F64) * 40 for m in (150, 1, 321)]
    idx = nearest_neighbors(q, refs)
    assert idx.shape == (3, 200)
    for b in range(3):
        assert torch.equal(idx[b], _brute_nn(q[b], refs[b]))
    same = torch.randn(3, 90, 3, generator=g, dtype=F64) * 40
    idx2 = nearest_neighbors(q, same)
    for b in range(3):
        assert torch.equal(idx2[b], _brute_nn(q[b], same[b]))


def test_cdist_path_matches_brute_force_with_tiny_blocks():
    # The CUDA path (chunked cdist), run here on CPU with blocks smaller than one row block.
    g = _gen(2)
    q = torch.randn(257, 3, generator=g) * 60 + torch.tensor([10.0, -20.0, 900.0])
    r = torch.randn(1000, 3, generator=g) * 60 + torch.tensor([10.0, -20.0, 900.0])
    for block in (1, 999, 5000, 1 << 24):
        assert torch.equal(chamfer._nn_cdist(q.double(), r.double(), block_elements=block), _brute_nn(q, r))
    # float32 far from the origin: centring keeps the distances exact enough to find the same points
    assert (chamfer._nn_cdist(q, r, block_elements=5000) != _brute_nn(q, r)).sum() == 0


def test_nearest_neighbors_rejects_empty_reference():
    with pytest.raises(ValueError, match="empty"):
        nearest_neighbors(torch.zeros(4, 3), torch.zeros(0, 3))


def test_nearest_neighbors_has_no_gradient_but_gather_does():
    q = torch.randn(20, 3, generator=_gen(3), dtype=F64).requires_grad_()
    r = torch.randn(30, 3, generator=_gen(4), dtype=F64)
    idx = nearest_neighbors(q, r)
    assert not idx.requires_grad
    d2 = ((q - r[idx]) ** 2).sum(-1)
    d2.sum().backward()
    torch.testing.assert_close(q.grad, 2 * (q - r[idx]).detach())


# ----------------------------------------------------------------------------- landmark Chamfer


def _naive_landmark_chamfer(landmarks, clouds, eps, reduction):
    losses, valids = [], []
    for lm, cloud in zip(landmarks.tolist(), [c.tolist() for c in clouds]):
        total, count, valid = 0.0, 0, []
        for p in lm:
            if not cloud:
                valid.append(False)
                continue
            best = min(sum((a - b) ** 2 for a, b in zip(p, c)) for c in cloud)
            ok = math.sqrt(best) <= eps
            valid.append(ok)
            if ok:
                total += best
                count += 1
        losses.append(total / max(count, 1) if reduction == "mean" else total)
        valids.append(valid)
    return torch.tensor(losses, dtype=F64), torch.tensor(valids)


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_landmark_chamfer_matches_naive_loop(reduction):
    g = _gen(5)
    landmarks = torch.randn(4, 12, 3, generator=g, dtype=F64) * 40
    clouds = [torch.randn(m, 3, generator=g, dtype=F64) * 40 for m in (300, 17, 0, 90)]
    loss, valid = landmark_chamfer(landmarks, clouds, eps_mm=15.0, reduction=reduction)
    exp_loss, exp_valid = _naive_landmark_chamfer(landmarks, clouds, 15.0, reduction)
    assert loss.shape == (4,) and valid.shape == (4, 12) and valid.dtype == torch.bool
    assert torch.equal(valid, exp_valid)
    assert 0 < int(valid.sum()) < 36  # both kept and excluded pairs occur
    torch.testing.assert_close(loss, exp_loss)


def test_known_pose_gives_zero_loss():
    g = _gen(6)
    face = torch.randn(2000, 3, generator=g, dtype=F64) * torch.tensor([60.0, 80.0, 30.0], dtype=F64)
    lm_idx = torch.randint(0, 2000, (68,), generator=g)
    R = euler_to_matrix(torch.tensor([[25.0, -10.0, 5.0], [-40.0, 15.0, -8.0]], dtype=F64))
    t = torch.tensor([[30.0, -20.0, 850.0], [-50.0, 10.0, 1000.0]], dtype=F64)
    clouds = [face @ R[b].T + t[b] for b in range(2)]
    landmarks = face[lm_idx] @ R.transpose(1, 2) + t[:, None, :]
    loss, valid = landmark_chamfer(landmarks, clouds)
    assert valid.all()
    torch.testing.assert_close(loss, torch.zeros(2, dtype=F64), atol=1e-18, rtol=0)


def test_ten_mm_shift_off_plane_costs_100_mm2_per_landmark():
    plane = _plane()
    g = _gen(7)
    xy = torch.randint(-50, 51, (2, 10, 2), generator=g).to(F64)
    landmarks = torch.cat((xy, torch.full((2, 10, 1), 1010.0, dtype=F64)), dim=-1).requires_grad_()
    loss, valid = landmark_chamfer(landmarks, [plane, plane])
    assert valid.all()
    torch.testing.assert_close(loss, torch.full((2,), 1000.0, dtype=F64), atol=1e-9, rtol=0)
    loss.sum().backward()
    expected_grad = torch.zeros(2, 10, 3, dtype=F64)
    expected_grad[..., 2] = 20.0  # d/dz (z - 1000)^2 at z = 1010
    torch.testing.assert_close(landmarks.grad, expected_grad)
    mean, _ = landmark_chamfer(landmarks.detach(), [plane, plane], reduction="mean")
    torch.testing.assert_close(mean, torch.full((2,), 100.0, dtype=F64), atol=1e-9, rtol=0)


def test_far_landmark_excluded_with_eps_30():
    plane = _plane()
    lm = torch.tensor([[[0.0, 0.0, 1010.0], [5.0, 5.0, 1040.0], [-3.0, 2.0, 1029.5], [1.0, 1.0, 970.0]]],
                      dtype=F64, requires_grad=True)
    loss, valid = landmark_chamfer(lm, [plane], eps_mm=30.0)
    assert valid.tolist() == [[True, False, True, True]]  # 10, 40 (excluded), 29.5, 30 (kept: <= eps)
    torch.testing.assert_close(loss, torch.tensor([100.0 + 29.5 ** 2 + 900.0], dtype=F64))
    loss.sum().backward()
    assert lm.grad[0, 1].abs().sum() == 0 and lm.grad[0, 0, 2] == 20.0
    loss_all, valid_all = landmark_chamfer(lm.detach(), [plane], eps_mm=None)
    assert valid_all.all()
    torch.testing.assert_close(loss_all, torch.tensor([100.0 + 1600.0 + 29.5 ** 2 + 900.0], dtype=F64))


def test_empty_cloud_and_no_valid_pair_give_zero_without_nan():
    lm = torch.tensor([[[0.0, 0.0, 500.0]], [[0.0, 0.0, 1000.0]]], requires_grad=True)
    clouds = [torch.zeros(0, 3), _plane(z=1100.0, half=3).float()]  # empty; and 100 mm away
    for reduction in ("sum", "mean"):
        loss, valid = landmark_chamfer(lm, clouds, reduction=reduction)
        assert not valid.any()
        assert torch.equal(loss, torch.zeros(2))
        loss.sum().backward()
        assert torch.isfinite(lm.grad).all() and lm.grad.abs().sum() == 0
        lm.grad = None


def test_landmark_chamfer_float32_and_tensor_clouds():
    plane = _plane().float()
    lm = torch.tensor([[[3.0, -4.0, 1005.0], [10.0, 20.0, 996.0]]], requires_grad=True)
    loss, valid = landmark_chamfer(lm, plane[None])
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, torch.tensor([25.0 + 16.0]))
    loss.backward()
    assert torch.isfinite(lm.grad).all()
    torch.testing.assert_close(lm.grad, torch.tensor([[[0.0, 0.0, 10.0], [0.0, 0.0, -8.0]]]))


# --------------------------------------------------------------------------------- fitting error


def _naive_fitting_error(pred: np.ndarray, gt: np.ndarray, eps: float) -> dict:
    def one_way(a, b):
        d2 = [min(float(((p - q) ** 2).sum()) for q in b) for p in a]
        ok = [d for d in d2 if math.sqrt(d) <= eps]
        return ok, len(d2) - len(ok)

    ok_p, fly_p = one_way(pred, gt)
    ok_g, fly_g = one_way(gt, pred)
    ok = ok_p + ok_g
    return {"mse": sum(ok) / len(ok), "mean": sum(math.sqrt(d) for d in ok) / len(ok), "n": len(ok),
            "n_p": len(ok_p), "n_g": len(ok_g), "fly_p": fly_p, "fly_g": fly_g}


def test_fitting_error_matches_naive_loop():
    rng = np.random.default_rng(8)
    gt = rng.normal(size=(150, 3)) * 30
    pred = gt[:120] + rng.normal(size=(120, 3)) * 2.0
    pred = np.concatenate((pred, rng.normal(size=(15, 3)) * 30 + 200))  # flying predicted points
    eps = 8.0
    res = fitting_error(torch.from_numpy(pred), torch.from_numpy(gt), eps)
    exp = _naive_fitting_error(pred, gt, eps)
    assert res.n_flying_pred >= 15 and res.n_flying_gt > 0  # both directions have flying pairs
    assert (res.n_valid, res.n_valid_pred, res.n_valid_gt) == (exp["n"], exp["n_p"], exp["n_g"])
    assert (res.n_flying_pred, res.n_flying_gt) == (exp["fly_p"], exp["fly_g"])
    assert res.n_valid_pred + res.n_flying_pred == 135 and res.n_valid_gt + res.n_flying_gt == 150
    assert res.mean_squared_mm2 == pytest.approx(exp["mse"], rel=1e-12)
    assert res.mean_distance_mm == pytest.approx(exp["mean"], rel=1e-12)
    # numpy input works the same
    assert fitting_error(pred, gt, eps) == res


def test_fitting_error_analytic_plane_offset():
    plane = _plane(half=20)
    res = fitting_error(plane + torch.tensor([0, 0, 2.0], dtype=F64), plane, eps_mm=5.0)
    assert res.mean_squared_mm2 == pytest.approx(4.0) and res.mean_distance_mm == pytest.approx(2.0)
    assert res.n_valid == 2 * plane.shape[0] and res.n_flying_pred == res.n_flying_gt == 0
    none = fitting_error(plane + torch.tensor([0, 0, 2.0], dtype=F64), plane, eps_mm=1.0)
    assert none.n_valid == 0 and math.isnan(none.mean_squared_mm2)
    assert none.n_flying_pred == none.n_flying_gt == plane.shape[0]


def test_fitting_errors_batched_by_loop():
    plane = _plane(half=10)
    out = fitting_errors([plane, plane + torch.tensor([0, 0, 3.0], dtype=F64)], [plane, plane], eps_mm=None)
    assert len(out) == 2 and out[0].mean_squared_mm2 == 0.0
    assert out[1].mean_squared_mm2 == pytest.approx(9.0) and out[1].n_valid == 2 * plane.shape[0]
