"""Automatic head localisation (depthface.data.localize) on simulated Kinect frames with known head centres,
on Biwi-layout exports of them, and on frames with no head (a wall; a torso-like box; nothing)."""

from __future__ import annotations


import numpy as np
import pytest

from depthface.data.biwi import BiwiDataset
from depthface.data.export import ExportFrame, export_frames
from depthface.data.localize import HeadNotFoundError, LocalizerConfig, localize_head, segment_depth, subsample_depth
from depthface.errors import InputError
from depthface.synth.profiles import get_profile
from depthface.synth.render import render_depth
from depthface.synth.scenes import SceneSampler
from depthface.synth.sensor import SensorProfile, apply_sensor, simulate_kinect

PROFILE = get_profile("syndata2")
K = PROFILE.intrinsics
N_FRAMES = 20


@pytest.fixture(scope="module")
def sampler(model) -> SceneSampler:
    return SceneSampler(model, PROFILE, seed=3)


@pytest.fixture(scope="module")
def kinect_frames(sampler) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, int]]:
    """``N_FRAMES`` full simulated Kinect frames: (uint16 depth, R, t, identity)."""
    sensor = SensorProfile.preset("kinect_v1")
    out = []
    for i in range(N_FRAMES):
        scene = sampler.scene(i)
        clean = render_depth(*sampler.render_mesh(scene), K)
        rng = np.random.default_rng(1000 + i)
        depth = simulate_kinect(clean, scene.rotation, scene.translation, K, rng, sensor, window_mm=None,
                                head_vertices=sampler.head_vertices(scene))
        out.append((depth, scene.rotation, scene.translation, scene.identity_id))
    return out


def wall(z0: float = 2500.0, slope: float = 0.15) -> np.ndarray:
    """``(H, W)`` float depth of a plane tilted about the vertical axis (z = z0 at the image centre)."""
    u = np.arange(K.width)[None, :].repeat(K.height, 0)
    x = (u - K.cx) / K.fx
    return (z0 / (1 - slope * x)).astype(np.float32)


def one_line(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert "\n" not in msg and msg
    return msg


def test_finds_heads_in_simulated_kinect_frames(kinect_frames):
    errors = []
    for depth, _, t, _ in kinect_frames:
        loc = localize_head(depth, K)
        assert loc.found == (loc.centre is not None)
        errors.append(np.inf if loc.centre is None else np.linalg.norm(loc.centre - t))
        if loc.found:
            assert 0 < loc.score <= 1 and loc.reason.startswith("head at the top")
            assert loc.surface_centroid[2] < loc.centre[2]  # the centre lies behind the visible surface
    errors = np.array(errors)
    assert np.mean(errors < 50) >= 0.9, np.round(errors)
    assert np.median(errors[np.isfinite(errors)]) < 30, np.round(errors)


def test_biwi_export_gives_the_same_centres(kinect_frames, tmp_path):
    frames = [ExportFrame(d, R, t, ident, i) for i, (d, R, t, ident) in enumerate(kinect_frames[:5])]
    export_frames(tmp_path / "biwi", frames, "biwi", K)
    ds = BiwiDataset(tmp_path / "biwi")
    by_index = {f.index: f for f in frames}
    for frame in ds:
        src = by_index[frame.frame_index]
        assert np.array_equal(frame.depth, src.depth.astype(np.float32))
        a, b = localize_head(frame.depth, frame.intrinsics), localize_head(src.depth, K)
        assert (a.centre is None) == (b.centre is None)
        if a.centre is not None:
            np.testing.assert_array_equal(a.centre, b.centre)


def test_clean_render_head_only(sampler):
    hits = 0
    for i in range(8):
        scene = sampler.scene(100 + i)
        depth = render_depth(*sampler.render_mesh(scene), K)
        loc = localize_head(depth, K)
        hits += loc.found and np.linalg.norm(loc.centre - scene.translation) < 50
    assert hits >= 7


def test_wall_only_has_no_head():
    depth = np.rint(wall()).astype(np.uint16)
    loc = localize_head(depth, K)
    assert loc.centre is None and loc.score == 0
    assert "not a head" in loc.reason and "\n" not in loc.reason
    noisy = apply_sensor(wall(1800.0, -0.3), K, np.random.default_rng(0), SensorProfile.preset("kinect_v1"))
    assert localize_head(noisy, K).centre is None


def test_torso_like_box_has_no_head():
    """A 450 mm wide box from 100 mm above the optical axis to the bottom of the image, 1 m away, in front
    of a wall: person-sized, but flat and as wide as shoulders at its top."""
    depth = wall()
    v, u = np.mgrid[: K.height, : K.width]
    X, Y = (u - K.cx) / K.fx * 1000.0, (v - K.cy) / K.fy * 1000.0
    box = (np.abs(X) < 225) & (Y > -100)
    depth[box] = 1000.0
    loc = localize_head(np.rint(depth).astype(np.uint16), K)
    assert loc.centre is None
    assert "region at 1000 mm" in loc.reason and "not a head" in loc.reason
    # the same box with sensor noise, holes and shadows
    noisy = apply_sensor(depth, K, np.random.default_rng(1), SensorProfile.preset("kinect_v1"))
    assert localize_head(noisy, K).centre is None


def test_nothing_measured_or_out_of_range():
    assert "no depth between" in localize_head(np.zeros((K.height, K.width), np.uint16), K).reason
    far = np.full((K.height, K.width), 6000, np.uint16)
    assert localize_head(far, K).centre is None
    specks = np.zeros((K.height, K.width), np.uint16)
    specks[::40, ::40] = 900
    loc = localize_head(specks, K)
    assert loc.centre is None and "no surface larger than" in loc.reason


def test_bad_input_and_error_type():
    with pytest.raises(InputError) as e:
        localize_head(np.zeros((2, 4, 4)), K)
    one_line(e)
    assert issubclass(HeadNotFoundError, InputError)


def test_deterministic_and_dtype_independent(kinect_frames):
    depth = kinect_frames[0][0]
    a = localize_head(depth, K)
    b = localize_head(depth.astype(np.float32), K)
    c = localize_head(depth.astype(np.float64), K)
    np.testing.assert_array_equal(a.centre, b.centre)
    np.testing.assert_array_equal(a.centre, c.centre)


def test_segmentation_splits_by_depth_jumps():
    d = np.full((30, 40), 2000, np.float32)
    d[5:15, 5:15] = 1000  # a near square
    d[20:25, 30:35] = 1040  # a second near patch, not touching the first
    d[0, 0] = 0
    labels, n = segment_depth(d, jump_mm=50)
    assert n == 3 and labels[0, 0] == -1
    assert len(np.unique(labels[5:15, 5:15])) == 1 and labels[5, 5] != labels[20, 30] != labels[29, 39]
    sub = subsample_depth(np.where(np.arange(16)[None, :] % 2, 900, 0).repeat(8, 0).astype(np.uint16), 4, 300, 4000)
    assert sub.shape == (2, 4) and (sub == 900).all()  # block minimum fills dropouts


def test_config_is_respected(kinect_frames):
    depth, _, t, _ = kinect_frames[1]
    base = localize_head(depth, K)
    shifted = localize_head(depth, K, LocalizerConfig(behind_surface_mm=0.0, below_centroid_mm=0.0))
    np.testing.assert_allclose(shifted.centre, base.surface_centroid)
