"""The shared preprocessing path (depthface.data.preprocess) and the data path around it: export of synthetic
datasets in the Biwi / ICT-3DHP layouts read back bit for bit (depthface.data.export, depthface.synth.export)
and ``depthface data inspect`` (depthface.data.inspect)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from depthface.synth.export import export_synthetic, select_indices
from depthface.cli.main import app
from depthface.data.biwi import BiwiDataset
from depthface.data.export import MANIFEST_NAME, ExportFrame, biwi_sequence_for, export_frames
from depthface.data.ict3dhp import ICT3DHP_INTRINSICS, ICT3DHPDataset
from depthface.data.inspect import detect_layout, format_summary, inspect_dataset, plot_pose_histogram
from depthface.data.localize import HeadNotFoundError, Localization
from depthface.data.preprocess import preprocess, refine
from depthface.errors import InputError
from depthface.geometry.camera import Intrinsics, project
from depthface.geometry.crop import crop_indices
from depthface.synth.profiles import get_profile
from depthface.synth.render import render_depth
from depthface.synth.scenes import SceneSampler, crop_sample
from depthface.synth.sensor import SensorProfile, simulate_kinect
from depthface.synth.storage import STREAM_SENSOR, ChunkedArrays, generate

PROFILE = get_profile("syndata2")
K = PROFILE.intrinsics
SEED = 5


@pytest.fixture(scope="module")
def sampler(model) -> SceneSampler:
    return SceneSampler(model, PROFILE, SEED)


def kinect_frame(sampler: SceneSampler, index: int, K: Intrinsics = K, window_mm: float | None = None,
                 seed: int = SEED) -> np.ndarray:
    """The full simulated Kinect frame of sample ``index`` (the storage's sensor stream), uint16."""
    scene = sampler.scene(index)
    depth = render_depth(*sampler.render_mesh(scene), K)
    rng = np.random.default_rng(np.random.SeedSequence([seed, STREAM_SENSOR, index]))
    kw = {} if window_mm == 400.0 else {"window_mm": window_mm}
    depth = simulate_kinect(depth, scene.rotation, scene.translation, K, rng, SensorProfile.preset("kinect_v1"),
                            head_vertices=sampler.head_vertices(scene), **kw)
    return np.clip(np.rint(depth), 0, 65535).astype(np.uint16)


def one_line(e: pytest.ExceptionInfo, *words: str) -> str:
    msg = str(e.value)
    assert "\n" not in msg, msg
    for w in words:
        assert w in msg, msg
    return msg


# ------------------------------------------------------------------------------------------------ preprocess


def test_ground_truth_centre_gives_the_stored_crop(sampler):
    scene = sampler.scene(0)
    frame = kinect_frame(sampler, 0)
    prep = preprocess(frame, K, scene.crop_centre)
    stored, labels = crop_sample(frame, K, scene.crop_centre)  # what a synthetic dataset stores
    assert prep.crop.shape == (160, 160) and prep.crop.dtype == np.float32
    np.testing.assert_array_equal(prep.crop, stored.astype(np.float32))
    np.testing.assert_allclose(prep.crop_intrinsics_array, labels["crop_intrinsics"], rtol=0, atol=1e-9)
    assert prep.centre_source == "ground_truth" and prep.localization is None
    np.testing.assert_array_equal(prep.crop_centre, scene.crop_centre)


def test_crop_is_centred_on_the_head_and_position_is_its_back_projection(sampler):
    scene = sampler.scene(1)
    frame = kinect_frame(sampler, 1)
    prep = preprocess(frame, K, scene.translation)
    # the head centre projects to the middle of the crop (pixel centres at integers: 79.5)
    uv = project(torch.tensor(scene.translation)[None, None], prep.crop_intrinsics)[0, 0].numpy()
    np.testing.assert_allclose(uv, [79.5, 79.5], atol=1e-6)
    assert (prep.crop[60:100, 60:100] > 0).mean() > 0.8  # the head fills the middle
    # position image = back-projection of the crop with the crop intrinsics ...
    k = prep.crop_intrinsics
    z = prep.crop.astype(np.float64)
    j, i = np.meshgrid(np.arange(160), np.arange(160))
    pos = prep.position.numpy()
    assert pos.shape == (3, 160, 160) and pos.dtype == np.float32
    np.testing.assert_allclose(pos[0], (j - k.cx) / k.fx * z, atol=1e-3)
    np.testing.assert_allclose(pos[1], (i - k.cy) / k.fy * z, atol=1e-3)
    np.testing.assert_array_equal(pos[2], prep.crop)
    # ... and of the full-frame pixels it samples: depth exact, laterally within half a source pixel
    rows, cols, inside = crop_indices(prep.window, K.width, K.height)
    src_z = frame[rows[:, None], cols[None, :]].astype(np.float64)
    assert inside.all()
    np.testing.assert_array_equal(z, src_z)
    src_x = (cols[None, :] - K.cx) / K.fx * src_z
    assert np.abs(pos[0] - src_x).max() <= 0.5 * src_z.max() / K.fx + 1e-3


def test_automatic_centre_from_the_localiser(sampler):
    scene = sampler.scene(2)
    prep = preprocess(kinect_frame(sampler, 2), K)
    assert prep.centre_source == "localizer" and isinstance(prep.localization, Localization)
    assert prep.localization.found
    np.testing.assert_array_equal(prep.crop_centre, prep.localization.centre)
    assert np.linalg.norm(prep.crop_centre - scene.translation) < 50


def test_custom_localizer_and_no_head():
    depth = np.full((K.height, K.width), 2500, np.uint16)
    with pytest.raises(HeadNotFoundError) as e:
        preprocess(depth, K)
    one_line(e, "no head found", "not a head")
    fixed = Localization(np.array([0.0, 0.0, 2400.0]), 1.0, "fixed")
    prep = preprocess(depth, K, localizer=lambda d, k: fixed)
    assert prep.localization is fixed and (prep.crop == 2500).all()
    with pytest.raises(HeadNotFoundError):
        preprocess(depth, K, localizer=lambda d, k: Localization(None, 0.0, "nothing here"))


def test_refine_recrops(sampler):
    scene = sampler.scene(3)
    frame = kinect_frame(sampler, 3)
    prep = preprocess(frame, K)
    new = refine(prep, frame, K, scene.translation)
    assert new.centre_source == "refined" and new.localization is prep.localization
    np.testing.assert_array_equal(new.crop_centre, scene.translation)
    gt = preprocess(frame, K, scene.translation)
    np.testing.assert_array_equal(new.crop, gt.crop)
    torch.testing.assert_close(new.position, gt.position)
    moved = refine(prep, frame, K, prep.crop_centre + np.array([40.0, 0.0, 0.0]))
    assert not np.array_equal(moved.crop, prep.crop)
    with pytest.raises(InputError) as e:
        refine(prep, frame, K, np.array([0.0, 0.0, -5.0]))
    one_line(e, "z > 0")


@pytest.mark.parametrize("bad, words", [
    (np.full((480, 640), np.nan, np.float32), ("NaN",)),
    (np.zeros((480, 640), np.uint16), ("0 measured pixels",)),
    (np.ones((2, 480, 640), np.float32), ("2-D",)),
    (np.ones((480,), np.float32), ("2-D",)),
    (-np.ones((480, 640), np.float32), ("negative",)),
    (np.ones((240, 320), np.uint16), ("320x240", "640x480")),
    (np.array([["a"] * 4] * 4), ("numeric",)),
])
def test_bad_depth_is_one_line_input_error(bad, words):
    with pytest.raises(InputError) as e:
        preprocess(bad, K, np.array([0.0, 0.0, 1000.0]))
    one_line(e, *words)


@pytest.mark.parametrize("centre", [[0.0, 0.0, 0.0], [np.nan, 0.0, 900.0], [1.0, 2.0]])
def test_bad_centre_is_one_line_input_error(centre):
    with pytest.raises(InputError) as e:
        preprocess(np.full((480, 640), 1000, np.uint16), K, np.array(centre))
    one_line(e, "crop centre")


# ------------------------------------------------------------------------------------------------ export


@pytest.fixture(scope="module")
def synth_dataset(tmp_path_factory, model) -> Path:
    """A tiny simulated-Kinect syndata2 dataset (6 frames, 3 identities, 2 stored full frames)."""
    root = tmp_path_factory.mktemp("synth") / "syn2"
    generate(root, PROFILE.scaled(count=6), SEED, model, SensorProfile.preset("kinect_v1"), chunk_size=3,
             n_full_frames=2, progress=False)
    return root


def _records(root: Path) -> dict[tuple[str, int], dict]:
    doc = json.loads((root / MANIFEST_NAME).read_text())
    return {(r["sequence"], r["frame"]): r for r in doc["frames"]}


def test_export_biwi_round_trip_bit_for_bit(synth_dataset, sampler, tmp_path):
    summary = export_synthetic(synth_dataset, "biwi", tmp_path / "biwi", n=4)
    assert summary.n_frames == 4 and summary.format == "biwi"
    ds = BiwiDataset(tmp_path / "biwi")
    records = _records(tmp_path / "biwi")
    labels = ChunkedArrays(synth_dataset)
    assert len(ds) == 4
    for frame in ds:
        rec = records[(frame.sequence, frame.frame_index)]
        index = rec["index"]
        scene = sampler.scene(index)
        assert frame.sequence == biwi_sequence_for(scene.identity_id) and frame.frame_index == index
        assert frame.intrinsics == K
        np.testing.assert_array_equal(frame.depth, kinect_frame(sampler, index).astype(np.float32))
        np.testing.assert_allclose(frame.rotation, scene.rotation, rtol=0, atol=1e-6)
        np.testing.assert_allclose(frame.translation, scene.translation, rtol=0, atol=1e-6)
        np.testing.assert_allclose(frame.translation, labels.get(index, "translation"), atol=1e-3)
        np.testing.assert_allclose(frame.ypr, labels.get(index, "ypr"), atol=1e-3)


def test_export_reproduces_the_stored_frames_and_crops(synth_dataset, tmp_path):
    """Full-frame exports equal the dataset's whole frames (frames/NNNNNN.npy); windowed exports give back
    the stored crops: the export re-renders exactly what the generator made."""
    labels = ChunkedArrays(synth_dataset)
    export_synthetic(synth_dataset, "biwi", tmp_path / "full", n=6)
    export_synthetic(synth_dataset, "biwi", tmp_path / "win", n=6, sensor_window=True)
    whole = 0
    for name in ("full", "win"):
        records = _records(tmp_path / name)
        for frame in BiwiDataset(tmp_path / name):
            index = records[(frame.sequence, frame.frame_index)]["index"]
            stored = synth_dataset / "frames" / f"{index:06d}.npy"
            if name == "full" and stored.exists():
                np.testing.assert_array_equal(frame.depth, np.load(stored).astype(np.float32))
                whole += 1
            if name == "win":
                crop, _ = crop_sample(frame.depth, K, labels.get(index, "crop_centre").astype(np.float64))
                np.testing.assert_array_equal(crop, labels.get(index, "depth"))
    assert whole == 2


def test_export_ict3dhp_round_trip_bit_for_bit(synth_dataset, sampler, tmp_path):
    summary = export_synthetic(synth_dataset, "ict3dhp", tmp_path / "ict", n=4)
    ds = ICT3DHPDataset(tmp_path / "ict")
    records = _records(tmp_path / "ict")
    assert len(ds) == summary.n_frames == 4
    for frame in ds:
        index = records[(frame.sequence, frame.frame_index)]["index"]
        scene = sampler.scene(index)
        assert frame.intrinsics == ICT3DHP_INTRINSICS
        np.testing.assert_array_equal(frame.depth, kinect_frame(sampler, index, ICT3DHP_INTRINSICS).astype(np.float32))
        np.testing.assert_allclose(frame.rotation, scene.rotation, rtol=0, atol=1e-6)
        np.testing.assert_allclose(frame.translation, scene.translation, rtol=0, atol=1e-6)


def test_export_cli_and_errors(synth_dataset, tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["data", "export", str(synth_dataset), "--format", "biwi", "--out", str(tmp_path / "b"),
                              "--n", "2", "--split", "train"])
    assert res.exit_code == 0, res.output
    assert "wrote 2 frames" in res.output
    train_ids = json.loads((synth_dataset / "manifest.json").read_text())["split"]["train"]
    assert all(r["identity"] in train_ids for r in _records(tmp_path / "b").values())
    with pytest.raises(InputError) as e:  # the output is not empty
        export_synthetic(synth_dataset, "biwi", tmp_path / "b", n=1)
    one_line(e, "not an empty folder")
    with pytest.raises(InputError) as e:
        export_synthetic(synth_dataset, "png", tmp_path / "c", n=1)
    one_line(e, "unknown export format")
    frame = ExportFrame(np.zeros((480, 640), np.uint16), np.eye(3), np.array([0.0, 0.0, 900.0]), 0, 0)
    with pytest.raises(InputError) as e:  # the ICT layout cannot hold another camera
        export_frames(tmp_path / "d", [frame], "ict3dhp", K)
    one_line(e, "ict3dhp camera")
    with pytest.raises(InputError) as e:
        export_frames(tmp_path / "e", [frame, frame], "biwi", K)
    one_line(e, "unique")
    assert select_indices(10, 3).tolist() == [0, 4, 9] and len(select_indices(10, None)) == 10


# ------------------------------------------------------------------------------------------------ inspect


def test_inspect_every_layout(synth_dataset, tmp_path):
    export_synthetic(synth_dataset, "biwi", tmp_path / "biwi", n=3)
    export_synthetic(synth_dataset, "ict3dhp", tmp_path / "ict", n=3)
    labels = ChunkedArrays(synth_dataset)
    for path, kind, n in [(synth_dataset, "synthetic", 6), (tmp_path / "biwi", "biwi", 3),
                          (tmp_path / "ict", "ict3dhp", 3)]:
        assert detect_layout(path) == kind
        s = inspect_dataset(path)
        assert s.kind == kind and s.n_frames == n and s.ypr.shape == (n, 3)
        text = format_summary(s)
        assert "yaw (deg)" in text and "camera" in text
        if kind == "synthetic":  # (the CLI call below plots the Biwi export)
            assert plot_pose_histogram(s, tmp_path / f"{kind}.png").stat().st_size > 1000
    np.testing.assert_allclose(inspect_dataset(synth_dataset).ypr, labels.column("ypr"), atol=1e-6)
    fw = tmp_path / "fw" / "Tester_1" / "TrainingPose"
    fw.mkdir(parents=True)
    (fw / "pose_0.obj").write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    s = inspect_dataset(tmp_path / "fw")
    assert s.kind == "facewarehouse" and s.n_frames == 1 and s.ypr is None
    assert plot_pose_histogram(s, tmp_path / "fw.png") is None
    with pytest.raises(InputError) as e:
        inspect_dataset(tmp_path / "fw" / "Tester_1")
    one_line(e, "unrecognised dataset layout")
    res = CliRunner().invoke(app, ["data", "inspect", str(tmp_path / "biwi"), "--png", str(tmp_path / "h.png")])
    assert res.exit_code == 0, res.output
    assert "Biwi" in res.output and (tmp_path / "h.png").exists()
