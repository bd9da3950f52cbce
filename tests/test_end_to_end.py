"""The fast end-to-end path: compiled normalisation, the batch API, the exact windowed landmark match,
binary PLY export and the numpy overlay, each against the straightforward version."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from depthface.errors import InputError
from depthface.geometry.camera import Intrinsics
from depthface.inference import Reconstructor
from depthface.inference.reconstructor import _landmarks_near
from depthface.models.normalize import _normalize_torch, normalize_position
from depthface.synth.profiles import get_profile
from depthface.synth.scenes import SceneSampler
from depthface.synth.sensor import SensorProfile
from depthface.synth.storage import render_frame

K = Intrinsics.preset("kinect_v1")


@pytest.fixture(scope="module")
def rec(tiny_runs):
    return Reconstructor.from_checkpoints(*tiny_runs, min_face_score=0.0)


@pytest.fixture(scope="module")
def frames(model):
    sampler = SceneSampler(model, get_profile("syndata2"), 5)
    out = [render_frame(sampler, SensorProfile.preset("kinect_v1"), 5, i, full=True)[:2] for i in range(3)]
    return [d for d, _ in out], [s for _, s in out]


def test_compiled_normalisation_equals_the_tensor_formula():
    g = torch.Generator().manual_seed(0)
    pos = torch.randn(3, 3, 40, 50, generator=g) * 150 + torch.tensor([10.0, -20.0, 900.0]).view(1, 3, 1, 1)
    pos[:, :, :7] = 0  # unmeasured rows
    pos[1, :, :, 40:] = 0
    c = torch.tensor([[0.0, 0.0, 900.0], [30.0, 10.0, 850.0], [-5.0, 2.0, 1000.0]])
    k = torch.tensor([[300.0, 310.0, 24.5, 19.5]]).repeat(3, 1)
    fast = normalize_position(pos, c, k)
    torch.testing.assert_close(fast, _normalize_torch(pos, c, k), atol=1e-6, rtol=0)
    assert fast.abs().max() <= 1.0
    pos.requires_grad_(True)  # autograd keeps the tensor formula
    assert normalize_position(pos, c, k).grad_fn is not None


def test_windowed_landmark_match_equals_brute_force():
    rng = np.random.default_rng(1)
    h = w = 60
    kc = (120.0, 118.0, 29.5, 30.5)
    z = 900 + rng.normal(0, 30, (h, w))
    z[rng.random((h, w)) < 0.3] = 0
    u, v = np.meshgrid(np.arange(w), np.arange(h))
    pos = np.stack(((u - kc[2]) / kc[0] * z, (v - kc[3]) / kc[1] * z, z)).astype(np.float32)
    cloud = pos.reshape(3, -1).T.astype(np.float64)
    cloud = cloud[cloud[:, 2] > 0]
    pts = cloud[rng.integers(0, len(cloud), 300)] + rng.normal(0, 12, (300, 3))
    pts = np.concatenate([pts, [[0.0, 0.0, 5.0], [1e4, 0, 900.0]]])  # z below the radius; far outside
    for r in (2.0, 15.0, 40.0):
        d = np.sqrt(((pts[:, None] - cloud[None]) ** 2).sum(-1)).min(1)
        assert _landmarks_near(pos, pts, *kc, r) == int((d < r).sum())


def test_predict_batch_equals_predict_frame_by_frame(rec, frames):
    depths, scenes = frames
    wall = np.full((480, 640), 2500.0, np.float32)
    batch = depths + [wall, depths[0]]
    centres = [None, scenes[1].translation, None, None, None]
    got = rec.predict_batch(batch, K, centres, max_batch=2)
    assert len(got) == 5
    for res, d, c in zip(got, batch, centres):
        ref = rec.predict(d, K, centre=c)
        assert res.found == ref.found and res.reason == ref.reason
        if ref.rotation is None:
            assert res.rotation is None
            continue
        np.testing.assert_allclose(res.rotation, ref.rotation, atol=1e-5)
        np.testing.assert_allclose(res.translation, ref.translation, atol=1e-3)
        np.testing.assert_allclose(res.vertices_camera, ref.vertices_camera, atol=1e-2)
        np.testing.assert_allclose(res.landmarks2d, ref.landmarks2d, atol=1e-3)
        assert res.confidence == pytest.approx(ref.confidence, abs=1e-9)
        assert res.centre_source == ref.centre_source
    assert "no head" in got[3].reason


def test_predict_batch_bad_frames(rec, frames):
    bad = np.full((480, 640), np.nan, np.float32)
    with pytest.raises(InputError):
        rec.predict_batch([frames[0][0], bad], K)
    got = rec.predict_batch([frames[0][0], bad], K, on_error="result")
    assert got[0].rotation is not None and not got[1].found and got[1].reason.startswith("bad input: ")


def test_png_writer_and_overlay(tmp_path):
    import imageio.v3 as iio

    from depthface.inference.pictures import overlay_image, save_overlay, write_png

    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (7, 5, 3), dtype=np.uint8)
    np.testing.assert_array_equal(iio.imread(write_png(tmp_path / "a.png", img)), img)
    k = Intrinsics(100.0, 100.0, 31.5, 23.5, 64, 48)
    depth = np.zeros((48, 64), np.float32)
    depth[10:40, 20:50] = 900.0
    t = np.array([0.0, 0.0, 1000.0])
    plain = overlay_image(depth, k, None, None, np.eye(3), t)
    assert plain.shape == (48, 64, 3) and plain.dtype == np.uint8
    assert (plain[0, 0] == 0).all()  # no measurement: black
    # the x axis (red) runs right from the head centre's pixel (31.5, 23.5)
    assert tuple(plain[23, 36]) == (255, 0, 0) or tuple(plain[24, 36]) == (255, 0, 0)
    big = overlay_image(depth, k, np.array([[0.0, 0.0, 900.0]]), np.array([[10.0, 10.0]]), np.eye(3), t,
                        title="frame", scale=3, colorbar=True)
    assert big.shape == (14 * 3 + 48 * 3, 64 * 3 + 60 * 3, 3)
    out = save_overlay(tmp_path / "o.png", depth, k, None, None, None, None, "t")
    assert iio.imread(out).shape == (14 + 48, 64, 3)


def test_binary_ply_layout(tmp_path, model):
    v = model.mean.numpy() + 1000.0
    out = model.export_mesh(v, tmp_path / "m.ply")
    data = out.read_bytes()
    head, body = data.split(b"end_header\n", 1)
    assert b"binary_little_endian" in head and f"element vertex {model.num_vertices}".encode() in head
    nv, nf = model.num_vertices, len(model.triangles)
    assert len(body) == nv * 12 + nf * 13
    np.testing.assert_allclose(np.frombuffer(body[: nv * 12], "<f4").reshape(nv, 3), v, atol=1e-4)
    faces = np.frombuffer(body[nv * 12:], dtype=[("n", "u1"), ("i", "<i4", (3,))])
    assert (faces["n"] == 3).all() and np.array_equal(faces["i"], model.triangles.numpy())


def test_inference_threads(monkeypatch):
    import os

    from depthface.errors import DepthfaceError
    from depthface.inference.reconstructor import inference_threads
    from depthface.models.export import cpu_count

    assert inference_threads(3) == 3 and inference_threads("2") == 2
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    assert inference_threads("auto") == cpu_count()
    monkeypatch.setattr(os, "getloadavg", lambda: (cpu_count() + 3.0, 0.0, 0.0))
    assert inference_threads() == 1
    with pytest.raises(DepthfaceError):
        inference_threads(0)
