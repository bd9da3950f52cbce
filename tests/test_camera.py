"""Camera model, depth validation, Biwi calibration files and the metric crop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from depthface.errors import InputError
from depthface.geometry.camera import (
    BiwiCalibration,
    Intrinsics,
    backproject,
    depth_to_points,
    position_image,
    position_points,
    project,
    read_biwi_calibration,
    validate_depth,
    write_biwi_calibration,
)
from depthface.geometry.crop import CropWindow, crop_indices, metric_crop, metric_crop_batch

F64 = torch.float64
# Deliberately asymmetric: fx != fy, cx != cy, neither at the image centre, H != W.
K = Intrinsics(fx=520.0, fy=575.0, cx=170.3, cy=118.6, width=320, height=240)

PLANE_N = np.array([0.2, -0.3, 1.0]) / np.linalg.norm([0.2, -0.3, 1.0])
PLANE_D = 900.0  # n . X = d
SPHERE_C = np.array([30.0, -20.0, 800.0])
SPHERE_R = 120.0


def _rays(k: Intrinsics) -> np.ndarray:
    """``(H, W, 3)`` ray directions with z = 1 through each pixel centre (written independently)."""
    u, v = np.meshgrid(np.arange(k.width, dtype=np.float64), np.arange(k.height, dtype=np.float64))
    return np.stack(((u - k.cx) / k.fx, (v - k.cy) / k.fy, np.ones_like(u)), axis=-1)


def _render_plane(k: Intrinsics, n: np.ndarray = PLANE_N, d: float = PLANE_D) -> np.ndarray:
    return d / (_rays(k) @ n)


def _render_sphere(k: Intrinsics, c: np.ndarray = SPHERE_C, radius: float = SPHERE_R) -> np.ndarray:
    r = _rays(k)
    rr = (r * r).sum(-1)
    rc = r @ c
    disc = rc ** 2 - rr * (c @ c - radius ** 2)
    z = (rc - np.sqrt(np.clip(disc, 0, None))) / rr
    return np.where(disc > 0, z, 0.0)


def _pos(depth: np.ndarray, k, dtype=F64) -> np.ndarray:
    """``(H, W, 3)`` position image of one depth map as numpy."""
    return position_image(torch.as_tensor(depth, dtype=dtype)[None, None], k)[0].permute(1, 2, 0).double().numpy()


# ------------------------------------------------------------------------- position image


def test_position_image_hand_computed_pixel():
    depth = np.zeros((K.height, K.width))
    depth[20, 10] = 1000.0  # row v = 20, column u = 10
    pos = _pos(depth, K)
    np.testing.assert_allclose(pos[20, 10], [(10 - 170.3) / 520.0 * 1000, (20 - 118.6) / 575.0 * 1000, 1000.0],
                               atol=1e-9)
    assert pos.shape == (240, 320, 3)


@pytest.mark.parametrize("dtype", [F64, torch.float32])
def test_plane_backprojects_onto_plane(dtype):
    depth = _render_plane(K)
    assert (depth > 0).all()
    pts = _pos(depth, K, dtype)
    np.testing.assert_allclose(pts @ PLANE_N - PLANE_D, 0.0, atol=1e-3)
    np.testing.assert_allclose(pts[..., 2], depth, rtol=1e-6)


@pytest.mark.parametrize("dtype", [F64, torch.float32])
def test_sphere_backprojects_onto_sphere_and_invalid_pixels_are_zero(dtype):
    depth = _render_sphere(K)
    valid = depth > 0
    assert 1000 < valid.sum() < valid.size  # the sphere covers part of the image only
    pts = _pos(depth, K, dtype)
    np.testing.assert_allclose(np.linalg.norm(pts[valid] - SPHERE_C, axis=-1), SPHERE_R, atol=1e-3)
    assert (pts[~valid] == 0).all()


def test_position_image_batched_intrinsics():
    k2 = Intrinsics(610.0, 540.0, 150.9, 131.2, 320, 240)
    depth = torch.stack([torch.from_numpy(_render_plane(K)), torch.from_numpy(_render_plane(k2))])[:, None]
    ks = torch.stack([K.as_tensor(dtype=F64), k2.as_tensor(dtype=F64)])
    pos = position_image(depth, ks)
    assert pos.shape == (2, 3, 240, 320)
    for b in range(2):
        pts = pos[b].permute(1, 2, 0).numpy()
        np.testing.assert_allclose(pts @ PLANE_N - PLANE_D, 0.0, atol=1e-6)


def test_depth_to_points_row_major_valid_only():
    depth = _render_sphere(K)
    pts = depth_to_points(torch.from_numpy(depth), K)
    valid = depth > 0
    assert pts.shape == (valid.sum(), 3)
    np.testing.assert_allclose(pts.numpy(), _pos(depth, K)[valid])


def test_depth_to_points_of_a_fronto_parallel_plane_at_known_pixels():
    """Three measured pixels of a plane at z = 800 mm: X = (u - cx) Z / fx, Y = (v - cy) Z / fy, in row-major order."""
    k = Intrinsics(fx=400.0, fy=500.0, cx=2.0, cy=1.0, width=5, height=4)
    depth = torch.zeros(4, 5, dtype=F64)
    for v, u in [(0, 4), (1, 2), (3, 0)]:
        depth[v, u] = 800.0
    expected = [[(4 - 2) * 2.0, (0 - 1) * 1.6, 800.0], [0.0, 0.0, 800.0], [(0 - 2) * 2.0, (3 - 1) * 1.6, 800.0]]
    torch.testing.assert_close(depth_to_points(depth, k), torch.tensor(expected, dtype=F64), rtol=0, atol=1e-12)
    # a crop of the same frame with the crop's intrinsics gives the same points
    torch.testing.assert_close(depth_to_points(depth[1:, 2:], k.scaled(1.0, 1.0, 2, 1)),
                               torch.tensor(expected[1:2], dtype=F64), rtol=0, atol=1e-12)


def test_position_points_batched_thinned_and_checked():
    depth = torch.zeros(2, 1, 3, 4, dtype=F64)
    depth[0, 0, 1, :] = 1000.0  # 4 points in image 0, none in image 1
    pos = position_image(depth, K)
    full, empty = position_points(pos)
    assert full.shape == (4, 3) and empty.shape == (0, 3)
    np.testing.assert_allclose(full[:, 0].numpy(), (np.arange(4) - K.cx) / K.fx * 1000.0)
    np.testing.assert_allclose(full[:, 1].numpy(), (1 - K.cy) / K.fy * 1000.0)
    thin = position_points(pos, max_points=3)[0]  # every ceil(4 / 3) = 2nd point
    torch.testing.assert_close(thin, full[::2])
    assert torch.equal(position_points(pos, max_points=4)[0], full)
    for bad in (pos[0], pos[:, :2]):
        with pytest.raises(InputError, match="position"):
            position_points(bad)


# ------------------------------------------------------------------- project / backproject


def test_project_backproject_round_trip():
    g = torch.Generator().manual_seed(0)
    uv = torch.rand(2, 500, 2, generator=g, dtype=F64) * torch.tensor([320.0, 240.0], dtype=F64)
    z = 400 + torch.rand(2, 500, generator=g, dtype=F64) * 1600
    ks = torch.tensor([[520.0, 575.0, 170.3, 118.6], [610.0, 540.0, 150.9, 131.2]], dtype=F64)
    pts = backproject(uv, z, ks)
    torch.testing.assert_close(pts[..., 2], z)
    torch.testing.assert_close(project(pts, ks), uv, atol=1e-10, rtol=0)
    # with an Intrinsics object, and against the position image at integer pixels
    uv_int = torch.tensor([[[10.0, 20.0], [300.0, 5.0]]], dtype=F64)
    p = backproject(uv_int, torch.tensor([[1000.0, 750.0]], dtype=F64), K)
    depth = np.zeros((240, 320))
    depth[20, 10], depth[5, 300] = 1000.0, 750.0
    pos = _pos(depth, K)
    np.testing.assert_allclose(p[0].numpy(), [pos[20, 10], pos[5, 300]], atol=1e-9)
    torch.testing.assert_close(project(p, K), uv_int)


# ----------------------------------------------------------------------------- metric crop


def _scene(k: Intrinsics) -> np.ndarray:
    """Sphere in front of a plane, with a rectangular hole (no measurement)."""
    sphere, plane = _render_sphere(k), _render_plane(k)
    depth = np.where(sphere > 0, sphere, plane)
    depth[100:110, 200:230] = 0.0
    return depth


def test_metric_crop_round_trip_within_half_source_pixel():
    depth = _scene(K)
    crop, kc, win = metric_crop(depth, K, SPHERE_C, size_mm=250.0, size_px=160)
    assert crop.shape == (160, 160) and crop.dtype == depth.dtype
    # The crop is metric: 250 mm span 160 pixels at the centre depth, in both directions.
    assert kc.fx == pytest.approx(160 * SPHERE_C[2] / 250.0) and kc.fy == pytest.approx(160 * SPHERE_C[2] / 250.0)
    uv_c = project(torch.from_numpy(SPHERE_C)[None, None], kc.as_tensor(dtype=F64))
    torch.testing.assert_close(uv_c, torch.full((1, 1, 2), 79.5, dtype=F64))

    j = np.arange(160)
    u = win.u0 + win.su * j  # sampling positions in the source
    v = win.v0 + win.sv * j
    cols, rows = np.floor(u + 0.5).astype(int), np.floor(v + 0.5).astype(int)
    assert cols.min() >= 0 and cols.max() < K.width and rows.min() >= 0 and rows.max() < K.height
    src = _pos(depth, K)[rows[:, None], cols[None, :]]  # (160, 160, 3) corresponding source points
    pts = _pos(crop, kc)
    valid = crop > 0
    assert valid.sum() > 0.9 * valid.size and (~valid).sum() > 0  # the hole is in the crop
    np.testing.assert_array_equal(crop, depth[rows[:, None], cols[None, :]])
    np.testing.assert_array_equal(pts[..., 2], src[..., 2])  # depth exact
    z = pts[..., 2]
    dx, dy = np.abs(pts[..., 0] - src[..., 0]), np.abs(pts[..., 1] - src[..., 1])
    assert (dx <= 0.5 * z / K.fx + 1e-9).all() and (dy <= 0.5 * z / K.fy + 1e-9).all()
    assert dx.max() > 0.2 * z.max() / K.fx  # the sampling really is sub-pixel (the bound is not vacuous)
    # Exactly: crop points lie on the ray through the sampling position (u, v).
    np.testing.assert_allclose(pts[..., 0], (u[None, :] - K.cx) / K.fx * z, atol=1e-9)
    np.testing.assert_allclose(pts[..., 1], (v[:, None] - K.cy) / K.fy * z, atol=1e-9)
    assert (pts[~valid] == 0).all()


def test_crop_window_unit_step_integer_offset_gives_identical_points():
    depth = _scene(K)
    win = CropWindow(u0=37.0, v0=52.0, su=1.0, sv=1.0, size=64)
    rows, cols, inside = crop_indices(win, K.width, K.height)
    assert inside.all()
    np.testing.assert_array_equal(cols, 37 + np.arange(64))
    np.testing.assert_array_equal(rows, 52 + np.arange(64))
    crop = depth[rows[:, None], cols[None, :]]
    np.testing.assert_allclose(_pos(crop, win.intrinsics(K)), _pos(depth, K)[52:116, 37:101], atol=1e-9, rtol=0)


def test_metric_crop_unit_scale_integer_offset_gives_identical_points():
    # fx = fy and a centre depth where the window is exactly 1 source pixel per crop pixel; the
    # centre projects to a half-integer so that the window starts on a source pixel centre.
    k = Intrinsics(560.0, 560.0, 160.25, 110.75, 320, 240)
    z = 560.0 * 100.0 / 64  # 875 mm: 100 mm span 64 source pixels
    centre = np.array([(150.5 - k.cx) * z / k.fx, (120.5 - k.cy) * z / k.fy, z])
    depth = _scene(k)
    crop, kc, win = metric_crop(depth, k, centre, size_mm=100.0, size_px=64)
    assert (win.su, win.sv, win.u0, win.v0) == pytest.approx((1.0, 1.0, 119.0, 89.0))
    np.testing.assert_array_equal(crop, depth[89:153, 119:183])
    np.testing.assert_allclose(_pos(crop, kc), _pos(depth, k)[89:153, 119:183], atol=1e-9, rtol=0)


def test_metric_crop_outside_frame_is_zero():
    depth = _render_plane(K)  # every source pixel is valid
    # centre projecting 20 px left of the image: the left part of the window is outside
    z = 900.0
    centre = np.array([(-20.0 - K.cx) * z / K.fx, 0.0, z])
    crop, _, win = metric_crop(depth, K, centre, size_mm=250.0, size_px=160)
    u = np.floor(win.u0 + win.su * np.arange(160) + 0.5)
    v = np.floor(win.v0 + win.sv * np.arange(160) + 0.5)
    inside = ((v >= 0) & (v < K.height))[:, None] & ((u >= 0) & (u < K.width))[None, :]
    assert inside.any() and (~inside).any()
    assert (crop[~inside] == 0).all() and (crop[inside] > 0).all()
    # entirely outside: all zeros
    far = np.array([(-2000.0 - K.cx) * z / K.fx, 0.0, z])
    assert (metric_crop(depth, K, far)[0] == 0).all()
    with pytest.raises(ValueError):
        metric_crop(depth, K, np.array([0.0, 0.0, -10.0]))


def test_metric_crop_batch_matches_single():
    k2 = Intrinsics(610.0, 540.0, 150.9, 131.2, 320, 240)
    d1, d2 = _scene(K), _scene(k2)
    centres = torch.from_numpy(np.stack([SPHERE_C, SPHERE_C + np.array([200.0, 0, 0])]))
    crops, ks = metric_crop_batch(torch.from_numpy(np.stack([d1, d2]))[:, None], [K, k2], centres)
    assert crops.shape == (2, 1, 160, 160) and ks.shape == (2, 4)
    for b, (d, k) in enumerate(((d1, K), (d2, k2))):
        crop, kc, _ = metric_crop(d, k, centres[b].numpy())
        np.testing.assert_array_equal(crops[b, 0].numpy(), crop)
        np.testing.assert_allclose(ks[b].numpy(), kc.as_tensor(dtype=F64).numpy())


# ---------------------------------------------------------------------------- validate_depth


def test_validate_depth_accepts_and_converts():
    d = np.zeros((4, 5), dtype=np.uint16)
    d[1, 2] = 812
    out = validate_depth(d)
    assert out.dtype == np.float32 and out.shape == (4, 5) and out[1, 2] == 812.0
    assert validate_depth(d[None]).shape == (4, 5)


@pytest.mark.parametrize("bad", [
    np.array([[1.0, np.nan], [3.0, 4.0]]),
    np.array([[1.0, np.inf], [3.0, 4.0]]),
    np.array([[1.0, -2.0], [3.0, 4.0]]),
    np.zeros((3, 4)),
    np.ones((2, 3, 4)),
    np.ones((3, 4, 3)),
    np.ones(5),
    np.array([["a", "b"]]),
])
def test_validate_depth_rejects(bad):
    with pytest.raises(InputError) as err:
        validate_depth(bad, source="frame_00003_depth.bin")
    assert "frame_00003_depth.bin" in str(err.value)
    assert "\n" not in str(err.value)


# ------------------------------------------------------------------------ Biwi calibration


BIWI_DEPTH_CAL = """575.816 0 320
0 575.816 240
0 0 1

0 0 0 0

1 0 0
0 1 0
0 0 1

0 0 0

640 480
"""


def test_read_biwi_calibration(tmp_path):
    path = tmp_path / "depth.cal"
    path.write_text(BIWI_DEPTH_CAL)
    cal = read_biwi_calibration(path)
    assert cal.intrinsics == Intrinsics(575.816, 575.816, 320.0, 240.0, 640, 480)
    np.testing.assert_array_equal(cal.rotation, np.eye(3))
    np.testing.assert_array_equal(cal.translation, np.zeros(3))
    np.testing.assert_array_equal(cal.distortion, np.zeros(4))


def test_biwi_calibration_write_read_round_trip(tmp_path):
    cal = BiwiCalibration(Intrinsics(531.5, 533.25, 321.75, 239.125, 640, 480), np.array([0.1, -0.2, 0.001, 0.0]),
                          np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]),
                          np.array([-25.5, 1.25, 3.0]))
    path = tmp_path / "depth.cal"
    write_biwi_calibration(path, cal)
    back = read_biwi_calibration(path)
    assert back.intrinsics == cal.intrinsics
    for name in ("distortion", "rotation", "translation"):
        np.testing.assert_allclose(getattr(back, name), getattr(cal, name), atol=1e-6)


def test_read_biwi_calibration_non_numeric_line(tmp_path):
    path = tmp_path / "broken_depth.cal"
    path.write_text(BIWI_DEPTH_CAL.replace("0 575.816 240", "0 575.816 abc"))
    with pytest.raises(InputError) as err:
        read_biwi_calibration(path)
    assert "broken_depth.cal" in str(err.value) and "line 1" in str(err.value)
    assert err.value.path == path


def test_read_biwi_calibration_missing_and_truncated(tmp_path):
    with pytest.raises(InputError, match="nowhere.cal"):
        read_biwi_calibration(tmp_path / "nowhere.cal")
    path = tmp_path / "short.cal"
    path.write_text("575.816 0 320\n0 575.816 240\n")
    with pytest.raises(InputError, match="short.cal"):
        read_biwi_calibration(path)
