"""The Kinect v1 simulator: scene context and sensor effects against their physical models."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from depthface.errors import InputError
from depthface.geometry.camera import Intrinsics
from depthface.synth.render import render_depth
from depthface.synth.sensor import (KINECT_V1, LABEL_BODY, LABEL_HAIR, LABEL_SUBJECT, LABEL_WALL, SKULL_AXES_MM,
                                    SKULL_CENTRE_MM, SensorProfile, _rotation, add_scene_context, apply_sensor,
                                    body_mesh, hair_mesh, head_window,
                                    simulate_kinect)

from depthface.facemodel.loaders import PACKAGED_MODEL  # noqa: E402

K = Intrinsics.preset("kinect_v1")
IDEAL = SensorProfile.preset("ideal")
FACE_MODEL = PACKAGED_MODEL


def plane_depth(n: np.ndarray, p0: np.ndarray, K_: Intrinsics = K) -> np.ndarray:
    """(H, W) exact depth of the plane through p0 with normal n (0 where the ray misses it)."""
    u, v = np.meshgrid(np.arange(K_.width), np.arange(K_.height))
    den = n[0] * (u - K_.cx) / K_.fx + n[1] * (v - K_.cy) / K_.fy + n[2]
    z = (n @ p0) / den
    return np.where(z > 0, z, 0).astype(np.float32)


def plate_scene(z_fg: float = 1000.0, z_bg: float = 2000.0) -> np.ndarray:
    """A 100 x 100 px plate at z_fg in front of a wall at z_bg (columns 270-369, rows 190-289)."""
    d = np.full((480, 640), z_bg, np.float32)
    d[190:290, 270:370] = z_fg
    return d


@pytest.fixture(scope="module")
def head():
    if not FACE_MODEL.exists():
        pytest.skip("face model not available")
    m = np.load(FACE_MODEL)
    v = m["mean"].astype(np.float64) * 10 * np.array([1.0, -1.0, -1.0])
    v -= v[m["landmarks68"][[36, 39, 42, 45]]].mean(0) + np.array([0.0, 0.0, 90.0])
    return v, m["triangles"]


def test_presets_and_validation():
    assert SensorProfile.preset("kinect_v1") is KINECT_V1
    assert SensorProfile.preset("KINECT_V1") is KINECT_V1
    with pytest.raises(InputError):
        SensorProfile.preset("kinect_v9")
    with pytest.raises(InputError):
        replace(KINECT_V1, min_range_mm=5000.0)
    with pytest.raises(InputError):
        replace(KINECT_V1, wall_distance_mm=(3000.0, 2000.0))
    with pytest.raises(InputError):
        replace(KINECT_V1, edge_dropout=(1.5,))
    # noise + quantisation reproduce Khoshelham's total: sigma_d^2 + q^2 / 12 = (c f b)^2
    p = KINECT_V1
    total = p.depth_noise_coeff * p.focal_px * p.baseline_mm * 1e-3
    assert np.isclose(p.disparity_noise_px() ** 2 + (1 / 8) ** 2 / 12, total**2)


def test_deterministic_given_the_generator(head):
    v, t = head
    R, tr = _rotation(25, -10, 5), np.array([20.0, -30.0, 950.0])
    clean = render_depth(v @ R.T + tr, t, K)
    a = simulate_kinect(clean, R, tr, K, np.random.default_rng(7))
    b = simulate_kinect(clean, R, tr, K, np.random.default_rng(7))
    c = simulate_kinect(clean, R, tr, K, np.random.default_rng(8))
    assert a.dtype == np.uint16 and a.shape == (480, 640)
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()


@pytest.mark.parametrize("z", [1000.0, 2000.0])
def test_flat_wall_noise_matches_khoshelham(z):
    depth = np.full((480, 640), z, np.float32)
    out = apply_sensor(depth, K, np.random.default_rng(1)).astype(float)
    centre = out[120:360, 160:480]  # within 20 deg of the axis: no angle term
    valid = centre[centre > 0]
    assert valid.size > 0.95 * centre.size
    expected = 1.425e-3 * (z / 1000) ** 2 * 1000  # mm
    assert abs(valid.std() / expected - 1) < 0.2
    assert abs(valid.mean() - z) < 0.5


def test_quantisation_step_at_one_metre():
    # a gently tilted plane spanning ~950-1050 mm without noise: depth comes in disparity steps of 1/8 px
    p = replace(IDEAL, disparity_subpixel=8)
    depth = plane_depth(np.array([0.18, 0.0, -1.0]), np.array([0.0, 0.0, 1000.0]))
    out = apply_sensor(depth, K, np.random.default_rng(0), p)
    levels = np.unique(out[out > 0]).astype(float)
    near = levels[(levels > 985) & (levels < 1015)]
    step = 1000.0**2 / (8 * p.focal_px * p.baseline_mm)  # z^2 / (8 f b) = 2.87 mm
    assert 2.8 < step < 2.95
    np.testing.assert_allclose(np.diff(near), step, atol=1.0)  # levels are rounded to whole mm
    assert abs((near[-1] - near[0]) / (len(near) - 1) - step) < 0.3
    fb8 = 8 * p.focal_px * p.baseline_mm
    k = np.round(fb8 / levels)
    assert np.abs(levels - fb8 / k).max() <= 0.5  # every output is a quantised disparity level


def test_range_cut_off():
    for z, any_valid in ((350.0, False), (420.0, True), (3900.0, True), (4300.0, False)):
        out = apply_sensor(np.full((480, 640), z, np.float32), K, np.random.default_rng(0), IDEAL)
        assert (out > 0).any() == any_valid, z


@pytest.mark.parametrize("b", [75.0, -75.0])
def test_projector_shadow_on_the_documented_side(b):
    p = replace(IDEAL, projector_offset_mm=b)
    out = apply_sensor(plate_scene(), K, np.random.default_rng(0), p)
    rows = slice(200, 280)
    width = K.fx * abs(b) * (1 / 1000 - 1 / 2000)  # 21.6 px
    shadow_side = slice(int(270 - width) + 1, 270) if b > 0 else slice(370, int(370 + width))
    lit_side = slice(370, 400) if b > 0 else slice(240, 270)
    assert (out[rows, shadow_side] == 0).all()
    assert (out[rows, lit_side] > 0).all()
    assert (out[rows, 270:370] > 0).all()  # the plate itself is lit
    edge = 269 - int(width) - 1 if b > 0 else 370 + int(width) + 1
    assert (out[rows, edge] > 0).all()  # the shadow is no wider than f b (1/z_fg - 1/z_bg)


def test_grazing_angle_dropout():
    p = replace(KINECT_V1, holes_per_frame=0.0)
    for angle, lo, hi in ((30.0, 0.97, 1.0), (82.0, 0.0, 0.15)):
        a = np.radians(angle)
        # plane through (0, 0, 1000), normal rotated about y: incidence ~angle near the image centre
        n = np.array([np.sin(a), 0.0, -np.cos(a)])
        out = apply_sensor(plane_depth(n, np.array([0.0, 0.0, 1000.0])), K, np.random.default_rng(0), p)
        frac = (out[200:280, 300:340] > 0).mean()
        assert lo <= frac <= hi, (angle, frac)


def test_output_zero_where_nothing_and_never_nan():
    depth = plate_scene(1000.0, 0.0)  # nothing behind the plate
    out = apply_sensor(depth, K, np.random.default_rng(3))
    assert out.dtype == np.uint16
    assert (out[depth == 0] == 0).mean() > 0.99  # jitter and flying pixels may leak 1-2 px past the plate
    far = np.ones_like(depth, bool)
    far[187:293, 267:373] = False
    assert (out[far] == 0).all()
    assert (out[200:280, 280:360] > 0).mean() > 0.9
    bad = depth.copy()
    bad[0, 0] = np.nan
    with pytest.raises(InputError):
        apply_sensor(bad, K, np.random.default_rng(3))
    with pytest.raises(InputError):
        apply_sensor(depth[:, :100], K, np.random.default_rng(3))


def test_edges_flying_pixels_and_lateral_noise():
    base = replace(IDEAL, flying_pixel_probability=1.0)
    out = apply_sensor(plate_scene(), K, np.random.default_rng(0), base).astype(float)
    between = (out > 1010) & (out < 1990)
    assert between.sum() > 100  # silhouette pixels read between the plate and the wall
    assert not between[195:285, 275:365].any() and not between[:150].any()
    jitter = replace(IDEAL, lateral_noise_px=0.8, lateral_noise_angle_px=0.035)
    out = apply_sensor(plate_scene(), K, np.random.default_rng(0), jitter)
    left_edge = [int(np.argmax(row < 1500)) for row in out[200:280, 200:400].astype(float)]
    assert len(set(left_edge)) >= 3  # a ragged silhouette
    drop = replace(IDEAL, edge_dropout=(0.5,))
    out = apply_sensor(plate_scene(), K, np.random.default_rng(0), drop)
    frac = (out[200:280, 269:271] == 0).mean()
    assert 0.3 < frac < 0.7
    assert (out[200:280, 300:340] > 0).all()


def test_window_matches_full_frame_inside():
    p = replace(KINECT_V1, holes_per_frame=30.0)
    depth = plate_scene()
    full = apply_sensor(depth, K, np.random.default_rng(5), p)
    win = (230, 150, 420, 330)
    part = apply_sensor(depth, K, np.random.default_rng(5), p, window=win)
    np.testing.assert_array_equal(part[150:330, 230:420], full[150:330, 230:420])
    part[150:330, 230:420] = 0
    assert (part == 0).all()


def test_scene_context_adds_hair_body_and_background(head):
    v, t = head
    R, tr = _rotation(-30, 15, 0), np.array([0.0, 0.0, 1000.0])
    clean = render_depth(v @ R.T + tr, t, K)
    p = replace(KINECT_V1, hair_probability=1.0, wall_probability=1.0)
    scene, labels = add_scene_context(clean, R, tr, K, np.random.default_rng(2), p, return_labels=True)
    clean_copy = clean.copy()
    scene, labels = add_scene_context(clean, R, tr, K, np.random.default_rng(2), p, return_labels=True)
    np.testing.assert_array_equal(clean, clean_copy)  # the input is not modified
    assert scene.dtype == np.float32 and np.isfinite(scene).all() and (scene >= 0).all()
    assert set(np.unique(labels)) >= {LABEL_SUBJECT, LABEL_HAIR, LABEL_BODY, LABEL_WALL}
    was_empty = clean == 0
    assert (scene[was_empty] > 0).mean() > 0.99  # the wall fills the background
    assert (scene <= np.where(clean > 0, clean, np.inf)).all()  # context only occludes, z-min
    rows, cols = np.nonzero(labels == LABEL_HAIR)
    hv = K.fy * tr[1] / tr[2] + K.cy
    assert rows.min() < hv - 70  # hair on top of the head (the skull top is ~110 mm above the centre)
    assert np.nonzero(labels == LABEL_BODY)[0].max() == 479  # the torso reaches the bottom of the frame
    out = simulate_kinect(clean, R, tr, K, np.random.default_rng(2), p)
    win = head_window(tr, K)
    inside = np.zeros_like(was_empty)
    inside[win[1]:win[3], win[0]:win[2]] = True
    assert (out[was_empty & inside] > 0).mean() > 0.5  # measured context around the head (minus shadow, holes)
    assert (out[~inside] == 0).all()


def test_context_meshes_are_closed_outward_surfaces():
    rng = np.random.default_rng(0)
    for _ in range(3):
        hv, ht = hair_mesh(rng)
        a, b, c = hv[ht[:, 0]], hv[ht[:, 1]], hv[ht[:, 2]]
        n = np.cross(b - a, c - a)
        centre = np.array([0.0, -15.0, -12.0])
        big = np.linalg.norm(n, axis=1) > 1e-6
        out = np.einsum("ij,ij->i", n, (a + b + c) / 3 - centre)[big]
        assert (out > 0).mean() > 0.97
        # the hair lies outside the ICT skull model (super-ellipsoid radius > 1), except at the closed pole
        d = (hv - np.array(SKULL_CENTRE_MM)) / np.array(SKULL_AXES_MM)
        f = (np.hypot(d[:, 0], d[:, 2]) ** 2.5 + np.abs(d[:, 1]) ** 2.5) ** (1 / 2.5)
        assert np.mean(f > 1.0) > 0.9
        bv, bt, n_neck = body_mesh(np.eye(3), np.array([0.0, 0.0, 1000.0]), rng)
        a, b, c = bv[bt[:, 0]], bv[bt[:, 1]], bv[bt[:, 2]]
        n = np.cross(b - a, c - a)
        big = np.linalg.norm(n, axis=1) > 1e-6
        torso_centre = bv[bt[n_neck:].ravel()].mean(0)
        out = np.einsum("ij,ij->i", n[n_neck:], (a + b + c)[n_neck:] / 3 - torso_centre)[big[n_neck:]]
        assert (out > 0).mean() > 0.97


def test_head_outside_the_image_gives_an_empty_frame():
    clean = np.zeros((480, 640), np.float32)
    out = simulate_kinect(clean, np.eye(3), np.array([3000.0, 0.0, 1000.0]), K, np.random.default_rng(0))
    assert out.dtype == np.uint16 and not out.any()
    with pytest.raises(InputError):
        simulate_kinect(clean, np.eye(3), np.array([0.0, 0.0, -5.0]), K, np.random.default_rng(0))
