"""The compiled scene builders equal generator version 1's numpy expressions bit for bit.

``depthface.synth.exact`` repeats numpy's (and OpenBLAS's) order of rounding; ``depthface.synth.meshes`` builds the
hair, neck, torso, wall and boxes with it. Compared here on random inputs against the numpy originals
(``tests/synth_v1_reference.py``), including the random stream each leaves behind.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import synth_v1_reference as v1

from depthface.geometry.camera import Intrinsics
from depthface.synth import context, exact
from depthface.synth.sensor import KINECT_V1, KINECT_V1_RANDOM, TOF_KINECT_V2


def same(a, b) -> bool:
    """Bit-identical float64 arrays (NaN payloads and signed zeros included)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return a.shape == b.shape and np.array_equal(a.view(np.int64), b.view(np.int64))


def test_small_linear_algebra_rounds_as_numpy():
    rng = np.random.default_rng(0)
    for _ in range(2000):
        A, B = rng.normal(size=(3, 3)), rng.normal(size=(3, 3))
        x = rng.normal(size=3) * 100
        assert same(exact.mat3(A, B), A @ B)
        assert same(exact.mat3_vec(A, *x), A @ x)
        P = rng.normal(size=(int(rng.integers(2, 40)), 3)) * 300  # one row is a matrix-vector product
        out = np.empty_like(P)
        exact.rigid_rows(P, A, x, out)
        assert same(out, P @ A.T + x)
        angles = rng.uniform(-190, 190, 3)
        assert same(exact.euler_rotation(*angles), v1._rotation(*angles))
        f = rng.uniform(0, 1)
        R = v1._rotation(*angles)
        assert same(exact.scaled_rotation(R, f), v1._scaled_rotation(R, f))
    assert same(exact.scaled_rotation(np.eye(3), 0.3), np.eye(3))
    R = v1._rotation(180.0, 0.0, 0.0)
    assert same(exact.scaled_rotation(R, 0.5), v1._scaled_rotation(R, 0.5))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_powers_take_numpy_fast_paths():
    rng = np.random.default_rng(1)
    x = rng.uniform(-5, 5, 4000)
    x[:3] = [-0.0, 0.0, 1e-300]
    ax = np.abs(x)
    for e in (2.0, 0.5, -1.0, 0.0, 1.0, 2.5, 0.37, 1 / 2.3):  # (0 ** -1 = inf, as numpy has it)
        assert same([exact.npy_pow(v, e) for v in ax], ax ** e)
        assert same([exact.spow(v, e) for v in x], v1._spow(x, e))


def test_rows_combination_rounds_as_blas():
    rng = np.random.default_rng(2)
    for cols in (256, 257, 258, 259):
        _check_rows_combination(rng, rng.normal(size=(20, cols)).astype(np.float32).astype(np.float64))


def _check_rows_combination(rng, M):
    for k in range(0, 13):
        for _ in range(5):
            nz = np.sort(rng.choice(20, k, replace=False)).astype(np.int64)
            a = rng.uniform(0.05, 1.0, k)
            got = np.empty(M.shape[1])
            exact.rows_combination(a, M, nz, got)
            assert same(got, a @ M[nz])


SCENES = [KINECT_V1.scene, TOF_KINECT_V2.scene, KINECT_V1_RANDOM.scene,
          replace(KINECT_V1.scene, long_hair_probability=1.0, hair_ragged_mm=(3.0, 3.0)),
          replace(KINECT_V1_RANDOM.scene, torso_yaw_deg=0.0, wall_yaw_deg=0.0, wall_probability=0.5)]


@pytest.mark.parametrize("scene", range(len(SCENES)))
def test_scene_meshes_equal_version_1(scene):
    profile = SCENES[scene]
    K = Intrinsics.preset("kinect_v1")
    for seed in range(60):
        rng = np.random.default_rng(seed)
        R = v1._rotation(*rng.uniform(-80, 80, 3))
        t = np.array([*rng.uniform(-200, 200, 2), rng.uniform(600, 1400)])
        scale = rng.uniform(0.9, 1.2)
        a, b = np.random.default_rng([seed, 1]), np.random.default_rng([seed, 1])
        for got, ref in zip(context.hair_mesh(b, profile, scale=scale), v1.hair_mesh(a, profile, scale=scale)):
            assert same(got, ref) if ref.dtype.kind == "f" else np.array_equal(got, ref)
        for got, ref in zip(context.body_mesh(R, t, b, profile), v1.body_mesh(R, t, a, profile)):
            assert same(got, ref) if np.asarray(ref).dtype.kind == "f" else np.array_equal(got, ref)
        wall, wall_ref = context.sample_wall(t, b, profile), v1.sample_wall(t, a, profile)
        assert (wall is None and wall_ref is None) or same(wall, wall_ref)
        far = profile.wall_distance_mm[1] if wall is None else float(wall[3] / wall[2])
        (xv, xt), (xv_ref, xt_ref) = context.box_meshes(t, K, b, far, profile), v1.box_meshes(t, K, a, far, profile)
        assert same(xv.reshape(-1, 3), xv_ref.reshape(-1, 3)) and np.array_equal(xt.reshape(-1, 3), xt_ref.reshape(-1, 3))
        assert a.random() == b.random()  # the same number of draws


def test_bounded_skull_scale_equals_ranking_every_vertex(model):
    """``SceneSampler.skull_scale`` ranks ~130 of 11k vertices (a bound per identity and expression) and gives
    ``skull_scale``'s value bit for bit, on SynData1's 20 expressions; a bound that does not hold falls back."""
    from depthface.synth.profiles import get_profile
    from depthface.synth.scenes import SceneSampler
    from depthface.synth.skull import SkullBound, _bounded_order_statistics, skull_bound, skull_scale

    sampler = SceneSampler(model, get_profile("syndata1"), 2)
    for sc in sampler.scenes(range(0, 3000, 31)):
        head = sampler.posed(sc)[0]
        for _ in range(2):  # the first head of an identity and expression is ranked in full, the next by its bound
            assert sampler.skull_scale(sc, head) == skull_scale(head)
    bounds = [b for b in sampler._skull_bounds.values() if b is not None]
    assert len(bounds) > 50 and max(len(b.candidates) for b in bounds) < 1000
    # the bounded ranking really ran (no fallback) on one of them
    sc = sampler.scenes([40])[0]
    head = sampler.posed(sc)[0]
    b = sampler.skull_bound(sc.identity_id, sc.expression_id)
    args = (*context.SKULL_CENTRE_MM, *context.SKULL_AXES_MM, float(context.SKULL_EXPONENT))
    assert not np.isnan(_bounded_order_statistics(head, b.candidates, b.threshold, 0.98, *args)[2])
    # a bound whose threshold the quantile's keys do not reach is caught: the head is ranked in full
    for threshold in (1e9, b.threshold * 1.5):
        assert skull_scale(head, bound=SkullBound(b.candidates, threshold, 0.98, len(head))) == skull_scale(head)
    # a head that is its own bound (no displacement) needs only the quantile's few vertices
    own = skull_bound(head, np.zeros_like(head))
    assert len(own.candidates) < 120 and skull_scale(head, bound=own) == skull_scale(head)
    # an expression stronger than the sampler's weights is ranked in full
    strong = replace(sc, expression=sc.expression * 3.0)
    assert sampler.skull_scale(strong, head) == skull_scale(head)
