"""Tracking: the filters on analytic signals, the tracker's states on a rendered static head, the
sequence outputs (CSV, GIF) and `depthface track`."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from depthface.data.frames import write_depth_png16
from depthface.errors import DepthfaceError
from depthface.geometry.camera import Intrinsics
from depthface.geometry.rotations import matrix_to_quaternion
from depthface.inference import Reconstructor
from depthface.inference.filters import ConstantVelocityFilter, OneEuroFilter, PoseFilter
from depthface.inference.tracking import Tracker, TrackerConfig, file_sequence, track_sequence
from depthface.synth.profiles import get_profile
from depthface.synth.scenes import SceneSampler
from depthface.synth.sensor import SensorProfile
from depthface.synth.storage import render_frame

K = Intrinsics.preset("kinect_v1")


# ----------------------------------------------------------------------------------------- filters


def test_one_euro_constant_first_sample_and_ramp_lag():
    f = OneEuroFilter(min_cutoff=1.0, beta=0.0)
    x0 = np.array([3.0, -2.0])
    for i in range(50):
        np.testing.assert_array_equal(f(x0, i / 30), x0)  # a constant passes exactly (first sample too)
    # beta = 0: an exponential smoother with a = 1 / (1 + 1 / (2 pi fc dt)); on a ramp of slope s its
    # steady-state lag is s dt (1 - a) / a
    f = OneEuroFilter(min_cutoff=2.0, beta=0.0)
    dt, s = 1 / 30, 10.0
    a = 1 / (1 + 1 / (2 * math.pi * 2.0 * dt))
    for i in range(400):
        y = f(np.array([s * i * dt]), i * dt)
    assert s * 399 * dt - y[0] == pytest.approx(s * dt * (1 - a) / a, rel=1e-6)
    # a high beta follows a fast move with less lag
    g = OneEuroFilter(min_cutoff=2.0, beta=1.0)
    for i in range(400):
        z = g(np.array([s * i * dt]), i * dt)
    assert s * 399 * dt - z[0] < 0.2 * (s * 399 * dt - y[0])
    with pytest.raises(DepthfaceError):
        OneEuroFilter(min_cutoff=0.0)


def test_constant_velocity_follows_a_ramp_without_lag_and_reduces_noise():
    f = ConstantVelocityFilter(alpha=0.5, beta=0.1)
    dt = 1 / 30
    for i in range(300):
        y = f(np.array([5.0 + 20.0 * i * dt]), i * dt)
    assert y[0] == pytest.approx(5.0 + 20.0 * 299 * dt, abs=1e-6)
    np.testing.assert_allclose(f.predict(300 * dt), [5.0 + 20.0 * 300 * dt], atol=1e-6)
    # white noise of unit variance: steady-state variance (2a^2 + 2b - 3ab) / (a (4 - 2a - b))
    alpha, beta = 0.4, 0.05
    f = ConstantVelocityFilter(alpha, beta)
    noise = np.random.default_rng(0).normal(0, 1, (40000, 1))
    out = np.array([f(z, i * dt)[0] for i, z in enumerate(noise)])[1000:]
    expect = (2 * alpha ** 2 + 2 * beta - 3 * alpha * beta) / (alpha * (4 - 2 * alpha - beta))
    assert out.var() == pytest.approx(expect, rel=0.05)
    with pytest.raises(DepthfaceError):
        ConstantVelocityFilter(alpha=0.5, beta=3.5)


def test_pose_filter_treats_q_and_minus_q_alike():
    f = PoseFilter(lambda: OneEuroFilter(1.0, 0.0))
    q = np.array([0.9, 0.1, -0.3, 0.2])
    q /= np.linalg.norm(q)
    for i in range(20):
        qf, tf = f(q if i % 2 == 0 else -q, np.array([0.0, 0.0, 900.0]), i / 30)
        assert abs(abs(qf @ q) - 1) < 1e-12
        np.testing.assert_allclose(tf, [0, 0, 900.0])


# ----------------------------------------------------------------------------------------- tracker


class FixedPose(nn.Module):
    """A stand-in pose network: always the same rotation, the head at the crop centre."""

    def __init__(self, q: np.ndarray) -> None:
        super().__init__()
        self.q = torch.as_tensor(q, dtype=torch.float32)

    def forward(self, x):
        return self.q.expand(len(x), 4), torch.zeros(len(x), 3)


@pytest.fixture(scope="module")
def static(tmp_path_factory, model):
    """A static head: the same scene with new sensor noise per frame, then a frame without a head."""
    sampler = SceneSampler(model, get_profile("syndata2"), 3)
    frames, scene = [], None
    for seed in range(4):
        depth, scene, _ = render_frame(sampler, SensorProfile.preset("kinect_v1"), seed, 2, full=True)
        frames.append(depth)
    q = matrix_to_quaternion(torch.as_tensor(scene.rotation)).numpy()
    root = tmp_path_factory.mktemp("seq")
    for i, d in enumerate(frames + [np.full((480, 640), 2500, np.uint16)] + frames[:2]):
        write_depth_png16(root / f"f{i:02d}.png", d)
    (root / "f99.png").write_bytes(b"not a png")
    return model, q, scene, root, frames


def test_tracker_states_localise_only_at_start_and_after_a_loss(static):
    model, q, scene, root, _ = static
    rec = Reconstructor(FixedPose(q), None, model, min_face_score=0.1)
    frames = list(file_sequence([root], K))
    assert len(frames) == 8 and frames[-1].depth is None and "f99.png" in frames[-1].error
    tr = Tracker(rec, TrackerConfig())
    states = [tr.step(f.depth, f.intrinsics, f.time_s).state for f in frames[:7]]
    assert states == ["localised", "tracked", "tracked", "tracked", "lost", "localised", "tracked"]
    # tracked frames crop around the previous head (the fixed network keeps it where it was localised)
    tr = Tracker(rec, TrackerConfig())
    first = tr.step(frames[0].depth, K, 0.0)
    second = tr.step(frames[1].depth, K, 1 / 30)
    np.testing.assert_allclose(second.result.crop_centre, first.result.translation)
    assert second.result.centre_source == "previous_frame" and "previous frame" in second.reason
    assert np.linalg.norm(first.translation - scene.translation) < 40  # the localiser found the head


def test_track_sequence_writes_csv_and_gif(static, tmp_path):
    import imageio.v3 as iio

    model, q, _, root, _ = static
    rec = Reconstructor(FixedPose(q), None, model, min_face_score=0.1)
    s = track_sequence(rec, file_sequence([root], K), TrackerConfig(filter="one-euro"), out=tmp_path,
                       video=tmp_path / "track.gif")
    assert s.counts == {"localised": 2, "tracked": 4, "relocalised": 0, "lost": 1, "unreadable": 1}
    rows = list(csv.DictReader((tmp_path / "track.csv").open()))
    assert [r["state"] for r in rows][-2:] == ["tracked", "unreadable"] and rows[4]["yaw_deg"] == ""
    assert float(rows[1]["time_s"]) == pytest.approx(1 / 30, abs=1e-4)
    assert iio.imread(tmp_path / "track.gif", index=None).shape[0] == 7  # the readable frames
    with pytest.raises(DepthfaceError):
        track_sequence(rec, [], video=tmp_path / "x.avi")


def test_track_cli(static, tmp_path, tiny_runs):
    from depthface.cli.main import app

    _, _, _, root, _ = static
    pose = tiny_runs[0]
    r = CliRunner().invoke(app, ["track", str(root), "--pose", str(pose), "--out", str(tmp_path / "t"),
                                 "--filter", "constant-velocity"])
    assert r.exit_code == 0, r.output
    assert "8 frame(s)" in r.output and (tmp_path / "t" / "track.csv").exists()
    r = CliRunner().invoke(app, ["track", "--pose", str(pose), "--out", str(tmp_path / "t")])
    assert isinstance(r.exception, DepthfaceError) and "\n" not in str(r.exception)


def test_camera_presets():
    from depthface.geometry.camera import PRESETS

    assert Intrinsics.preset("kinect_v2") == Intrinsics(365.0, 365.0, 256.0, 212.0, 512, 424)
    for name in ("azure_kinect_nfov", "azure_kinect_wfov", "realsense_d415", "realsense_d435", "realsense_d455",
                 "realsense_l515", "orbbec_astra"):
        k = Intrinsics.preset(name)
        assert k.cx == k.width / 2 and k.cy == k.height / 2 and k.fx > 0 and k.fy > 0
        assert Intrinsics.parse(name.upper()) == k
    d435 = PRESETS["realsense_d435"]  # 87 deg across 848 pixels
    assert 2 * math.degrees(math.atan(d435.width / 2 / d435.fx)) == pytest.approx(87.0, abs=1e-3)
    assert (d435.width, d435.height) == (848, 480)


def test_first_frame_protocol_crops_at_the_truth_then_follows(static, tmp_path):
    from depthface.data.biwi import BiwiDataset, write_biwi_depth_calibration, write_biwi_frame
    from depthface.evaluation.real_pose import evaluate_real_pose

    model, q, scene, _, depths = static
    seq = tmp_path / "hpdb" / "01"
    write_biwi_depth_calibration(seq, K)
    for i in range(3):
        write_biwi_frame(seq, i, depths[i], scene.rotation, scene.translation)
    frames = BiwiDataset(tmp_path)
    rec = Reconstructor(FixedPose(q), None, model, min_face_score=0.1, refine="none")  # the network's pose alone
    ev = evaluate_real_pose(rec, frames, np.arange(3), first_frame=True, progress=False)
    assert ev.status == ["ok"] * 3 and "first frame" in ev.crop
    # the fixed network puts the head at the crop centre: the truth on frame 0, then the previous head
    np.testing.assert_allclose(ev.errors()["translation_err_mm"], 0.0, atol=1e-6)
    auto = evaluate_real_pose(rec, frames, np.arange(3), progress=False)
    assert auto.errors()["translation_err_mm"].min() > 0.1
    with pytest.raises(DepthfaceError):
        evaluate_real_pose(rec, frames, np.arange(3), gt_crop=True, first_frame=True)


def test_gif_palette_writer(tmp_path):
    import imageio.v3 as iio

    from depthface.inference.pictures import GifWriter, colour_table, overlay_palette, to_palette

    pal, lut = overlay_palette()
    assert pal.shape == (256, 3) and lut.shape == (32768,)
    img = np.zeros((4, 6, 3), np.uint8)
    img[0] = (255, 0, 255)
    img[1] = colour_table("turbo")[255]
    np.testing.assert_array_equal(pal[to_palette(img)][0], img[0])  # exact palette colours map to themselves
    assert np.abs(pal[to_palette(img)].astype(int) - img).max() <= 8
    w = GifWriter(tmp_path / "a.gif", 10)
    for i in range(3):
        img[3] = (0, 0, 80 * i)  # Pillow merges identical consecutive frames
        w.append_data(img)
    w.close()
    assert iio.imread(tmp_path / "a.gif", index=None).shape[:3] == (3, 4, 6)
