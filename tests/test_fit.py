"""The robust morphable-model fit (depthface.facemodel.fit): exact cases, clean and cluttered rendered frames."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from depthface.errors import InputError
from depthface.evaluation.shape import shape_errors
from depthface.facemodel.fit import (FitRegion, _solve_box, coefficients_from_vertices, fit_frame, prepare_fit_region, ray_grid,
                                     ray_grid_query)
from depthface.geometry.camera import depth_to_points
from depthface.geometry.rotations import euler_to_matrix, geodesic_angle_deg
from depthface.synth.profiles import get_profile
from depthface.synth.scenes import SceneSampler
from depthface.synth.sensor import SensorProfile
from depthface.synth.storage import render_frame


@pytest.fixture(scope="module")
def region(model) -> FitRegion:
    return prepare_fit_region(model)


def _frame(model, index: int, sensor=None):
    """A rendered SynData1 frame (near-frontal; index % 20 == 0 is the neutral expression): its full-frame
    points, the scene and the true vertices (float64)."""
    sampler = SceneSampler(model, get_profile("syndata1"), 3)
    frame, scene, _ = render_frame(sampler, sensor, 3, index)
    points = depth_to_points(torch.from_numpy(frame.astype(np.float32)), sampler.profile.intrinsics).double().numpy()
    m64 = model.to(dtype=torch.float64)
    true = m64.vertices(torch.from_numpy(scene.identity)[None], torch.from_numpy(scene.expression)[None])
    return points, scene, true, m64


def _angle(R1, R2) -> float:
    return geodesic_angle_deg(torch.from_numpy(np.asarray(R1)), torch.from_numpy(np.asarray(R2))).item()


def _rot(yaw, pitch, roll) -> np.ndarray:
    return euler_to_matrix(torch.tensor([yaw, pitch, roll], dtype=torch.float64)).numpy()


# ------------------------------------------------------------------------------------------------ exact pieces


def test_solve_box_matches_brute_force_over_active_sets():
    rng = np.random.default_rng(0)
    for _ in range(20):
        A = rng.standard_normal((12, 5))
        H = A.T @ A + 0.1 * np.eye(5)
        g = rng.standard_normal(5) * 3
        lo = np.array([-np.inf, -np.inf, 0.0, 0.0, -0.2])
        hi = np.array([np.inf, np.inf, 1.0, 1.0, 0.3])
        x = _solve_box(H, g, lo, hi)
        assert np.all(x >= lo - 1e-12) and np.all(x <= hi + 1e-12)
        best = np.inf
        for states in itertools.product(*[(None, "lo", "hi") if np.isfinite(lo[i]) else (None,) for i in range(5)]):
            fixed = np.array([s is not None for s in states])
            y = np.array([lo[i] if s == "lo" else hi[i] if s == "hi" else 0.0 for i, s in enumerate(states)])
            free = ~fixed
            y[free] = np.linalg.solve(H[np.ix_(free, free)], g[free] - H[np.ix_(free, fixed)] @ y[fixed])
            if np.all(y >= lo - 1e-12) and np.all(y <= hi + 1e-12):
                best = min(best, 0.5 * y @ H @ y - g @ y)
        assert 0.5 * x @ H @ x - g @ x == pytest.approx(best, abs=1e-9)


def test_ray_grid_keeps_the_nearest_point_of_each_ray():
    """Two points on one ray (a face before a wall): the cell keeps the nearer; another ray keeps its own."""
    pts = np.array([[10.0, 0.0, 1000.0], [5.0, 0.0, 500.0], [0.0, 50.0, 800.0]])
    grid = ray_grid(pts, depth_mm=800.0, cell_mm=2.0)
    kept = sorted(grid.cells[grid.cells >= 0].tolist())
    assert kept == [1, 2]
    d, j = ray_grid_query(grid, np.array([[5.0, 0.0, 503.0], [0.0, 50.0, 790.0]]), 20.0)
    np.testing.assert_allclose(d, [3.0, 10.0])
    assert j.tolist() == [1, 2]
    d, j = ray_grid_query(grid, np.array([[5.0, 0.0, 530.0], [300.0, 0.0, 800.0]]), 20.0)  # too far; no ray nearby
    assert np.isinf(d).all() and (j == len(grid.points)).all()


def test_ray_grid_query_equals_the_nearest_neighbour_on_a_sparse_sphere():
    """Points of a sphere cap 5 mm apart (at most one a cell of 2 mm) queried 1 mm off: the grid's answer is the
    k-d tree's, index for index."""
    from scipy.spatial import cKDTree

    u, v = np.meshgrid(np.linspace(-0.5, 0.5, 40), np.linspace(-0.5, 0.5, 40))
    dirs = np.stack((np.sin(u) * np.cos(v), np.sin(v), -np.cos(u) * np.cos(v)), -1).reshape(-1, 3)
    pts = np.array([0.0, 0.0, 900.0]) + 100.0 * dirs  # the camera-facing cap of a 100 mm sphere at 900 mm
    rng = np.random.default_rng(0)
    off = rng.normal(size=pts.shape)
    q = pts + 0.9 * off / np.linalg.norm(off, axis=1, keepdims=True)
    grid = ray_grid(pts, depth_mm=800.0, cell_mm=2.0)
    assert (grid.cells >= 0).sum() == len(pts)  # every point has a cell of its own
    d, j = ray_grid_query(grid, q, 3.0)
    d_ref, j_ref = cKDTree(pts).query(q, distance_upper_bound=3.0)
    np.testing.assert_allclose(d, d_ref, rtol=1e-12)
    assert np.array_equal(j, j_ref)


def test_region_is_an_even_subsample_of_the_face_area_with_the_narrow_face_as_core(model, region):
    assert 900 <= len(region.indices) <= 1100
    assert np.isin(region.indices, model.face_area.numpy()).all()
    assert np.array_equal(region.core, np.isin(region.indices, model.narrow_face.numpy()))
    assert 0.5 < region.core.mean() < 0.9
    assert region.basis.shape == (len(region.indices), 3, model.identity_dim + model.expression_dim)
    assert region.expression_bounded and region.n_identity == model.identity_dim
    # even (one vertex per voxel): few neighbours much closer than the typical spacing
    from scipy.spatial import cKDTree

    d = cKDTree(region.mean).query(region.mean, k=2)[0][:, 1]
    assert np.quantile(d, 0.05) > 0.4 * region.spacing_mm


def test_coefficients_from_vertices_recover_a_model_face(model, region):
    g = torch.Generator().manual_seed(4)
    alpha = model.sample_identity(1, g)
    beta = model.sample_expression(1, g, num_active=2)
    v = model.vertices(alpha, beta)[0].double().numpy()
    a, b = coefficients_from_vertices(region, v, noise_mm=0.01, expression_ridge=1e-4)
    fitted = model.to(dtype=torch.float64).vertices(torch.from_numpy(a)[None], torch.from_numpy(b)[None])[0].numpy()
    nf = model.narrow_face.numpy()
    assert np.sqrt(((fitted[nf] - v[nf]) ** 2).sum(-1).mean()) < 0.05
    assert (b >= 0).all() and (b <= 1).all()


# ------------------------------------------------------------------------------------------------ rendered frames


def test_rigid_fit_converges_back_from_10_degrees_and_20_mm(model, region):
    """Rigid-only mode (the pose refinement) with the true shape: from a 10 deg / 20 mm start back to the truth."""
    for index in (0, 21):
        points, scene, true, _ = _frame(model, index)
        R0 = _rot(10.0, 0.0, 0.0) @ scene.rotation
        t0 = scene.translation + np.array([0.0, 0.0, 20.0])
        res = fit_frame(points, region, R0, t0, mode="pose", shape0=true[0].numpy())
        assert _angle(res.R, scene.rotation) < 0.3
        assert np.linalg.norm(res.t - scene.translation) < 0.5
        assert np.allclose(res.vertices, true[0].numpy(), atol=1e-3)  # rigid mode keeps the given shape
        assert res.rms_mm < 0.5 and res.inlier_fraction > 0.8


def test_rigid_fit_of_the_mean_face_from_a_perturbed_start(model, region):
    """Rigid-only with the mean face (what the refinement starts from without a shape network): the pose comes
    comes back from 11 deg / 24 mm to within the bias of a face 4 mm (RMS) off the person's."""
    points, scene, _, _ = _frame(model, 0)
    R0 = _rot(-10.0, 5.0, 0.0) @ scene.rotation
    res = fit_frame(points, region, R0, scene.translation + np.array([10.0, -10.0, 20.0]), mode="pose")
    assert _angle(res.R, scene.rotation) < 0.4 * _angle(R0, scene.rotation)
    assert np.linalg.norm(res.t - scene.translation) < 6.0


@pytest.mark.parametrize("search", ["rays", "kdtree"])
def test_full_fit_recovers_a_clean_rendered_face(model, region, search):
    """Pose + identity + expression from a perturbed start on a clean frame of known coefficients."""
    points, scene, true, m64 = _frame(model, 0)
    R0 = _rot(5.0, -3.0, 2.0) @ scene.rotation
    res = fit_frame(points, region, R0, scene.translation + np.array([5.0, -5.0, 8.0]), search=search)
    e = shape_errors(m64, torch.from_numpy(res.vertices).double()[None], true)[0]
    e_mean = shape_errors(m64, m64.mean[None], true)[0]
    assert e["rms_mm"] < 1.0 and e["rms_mm"] < 0.25 * e_mean["rms_mm"]
    assert e["mean_distance_mm"] < 0.7
    assert _angle(res.R, scene.rotation) < 0.5
    assert (res.expression >= 0).all() and (res.expression <= 1).all()
    assert res.identity.shape == (model.identity_dim,) and res.vertices.shape == (model.num_vertices, 3)


def test_full_fit_is_not_pulled_by_hair_neck_and_background(model, region):
    """The same face with hair, neck, torso, boxes and a wall (the simulator's scene context, no sensor noise)."""
    ideal = SensorProfile.preset("ideal")
    points, scene, true, m64 = _frame(model, 0, ideal)
    from scipy.spatial import cKDTree

    face_cam = true[0].numpy() @ scene.rotation.T + scene.translation
    off_face = cKDTree(face_cam).query(points, distance_upper_bound=10.0)[0] > 10.0
    assert off_face.mean() > 0.2  # the context is really there (hair, neck, torso, background)
    R0 = _rot(5.0, -3.0, 2.0) @ scene.rotation
    res = fit_frame(points, region, R0, scene.translation + np.array([5.0, -5.0, 8.0]))
    e = shape_errors(m64, torch.from_numpy(res.vertices).double()[None], true)[0]
    assert e["rms_mm"] < 1.8 and _angle(res.R, scene.rotation) < 1.0


def test_fit_rejects_bad_arguments(region):
    pts = np.random.default_rng(0).normal(size=(50, 3)) + [0, 0, 800]
    with pytest.raises(InputError, match="fit mode"):
        fit_frame(pts, region, np.eye(3), [0, 0, 800], mode="shape")
    with pytest.raises(InputError, match="points"):
        fit_frame(pts[:, :2], region, np.eye(3), [0, 0, 800])
    with pytest.raises(InputError, match="rotation"):
        fit_frame(pts, region, 2 * np.eye(3), [0, 0, 800])
    with pytest.raises(InputError, match="search"):
        fit_frame(pts, region, np.eye(3), [0, 0, 800], search="octree")
    with pytest.raises(InputError, match="identity0"):
        fit_frame(pts, region, np.eye(3), [0, 0, 800], identity0=np.zeros(3))
    # too few points, or none in front of the camera (invalid depth read as z = 0): the start comes back unchanged
    for bad in (pts[:5], np.zeros((50, 3))):
        res = fit_frame(bad, region, np.eye(3), [0, 0, 800])
        assert res.n_pairs == 0 and np.array_equal(res.R, np.eye(3))
