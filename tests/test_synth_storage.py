"""Synthetic dataset storage: determinism, shards, resume, verify, loaders."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from depthface.errors import InputError
from depthface.geometry.camera import Intrinsics, position_image, project
from depthface.synth.datasets import SourceDataset, TargetDataset
from depthface.synth.profiles import get_profile
from depthface.synth.sensor import SensorProfile
from depthface.synth.storage import ChunkedArrays, generate, merge, verify

N, CHUNK = 24, 8


@pytest.fixture(scope="module")
def profile():
    return get_profile("syndata2").scaled(count=N)


def tree_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def reference(tmp_path_factory, model, profile):
    root = tmp_path_factory.mktemp("ref") / "ds"
    generate(root, profile, 3, model, SensorProfile.preset("kinect_v1"), chunk_size=CHUNK, progress=False)
    return root


def test_same_seed_is_byte_identical(tmp_path, model, profile, reference):
    other = generate(tmp_path / "again", profile, 3, model, SensorProfile.preset("kinect_v1"), chunk_size=CHUNK,
                     progress=False)
    assert tree_files(other) == tree_files(reference)
    different = generate(tmp_path / "seed4", profile, 4, model, SensorProfile.preset("kinect_v1"), chunk_size=CHUNK,
                         progress=False)
    assert (np.load(different / "chunks/00000/depth.npy") != np.load(reference / "chunks/00000/depth.npy")).any()


def test_two_worker_processes_give_the_same_bytes(tmp_path, model, profile, reference):
    """Worker processes are spawned (a forked child can hang in torch's inherited thread pool)."""
    other = generate(tmp_path / "w2", profile, 3, model, SensorProfile.preset("kinect_v1"), chunk_size=CHUNK,
                     workers=2, progress=False)
    assert tree_files(other) == tree_files(reference)


def test_two_shards_merge_to_single_run(tmp_path, model, profile, reference):
    for i in range(2):
        generate(tmp_path / f"s{i}", profile, 3, model, SensorProfile.preset("kinect_v1"), shard=(i, 2),
                 chunk_size=CHUNK, progress=False)
    assert verify(tmp_path / "s0")  # a lone shard is incomplete and says so
    merged = merge(tmp_path / "merged", [tmp_path / "s0", tmp_path / "s1"])
    assert tree_files(merged) == tree_files(reference)


def test_interrupted_run_resumes_to_the_same_bytes(tmp_path, model, profile, reference):
    root = tmp_path / "ds"
    generate(root, profile, 3, model, SensorProfile.preset("kinect_v1"), chunk_size=CHUNK, progress=False, stop_after=1)
    (root / "chunks" / ".tmp-00001-999").mkdir()  # a half-written chunk of a killed process
    (root / "chunks" / ".tmp-00001-999" / "depth.npy").write_bytes(b"partial")
    assert any("missing" in p for p in verify(root))
    generate(root, profile, 3, model, SensorProfile.preset("kinect_v1"), chunk_size=CHUNK, progress=False)
    assert verify(root) == []
    assert tree_files(root) == tree_files(reference)


def test_killed_process_resumes(tmp_path, profile, reference):
    """A real SIGKILL in the middle of generation, then the same command again."""
    root = tmp_path / "ds"
    code = ("import sys; from depthface.facemodel import load_face_model; from depthface.synth.profiles import get_profile;"
            "from depthface.synth.sensor import SensorProfile; from depthface.synth import storage;"
            "orig = storage.write_chunk\n"
            "def write(r, c, a, f):\n    orig(r, c, a, f)\n    import os, signal\n    c == 1 and os.kill(os.getpid(), signal.SIGKILL)\n"
            "storage.write_chunk = write\n"
            f"storage.generate({str(root)!r}, get_profile('syndata2').scaled(count={N}), 3, load_face_model(), "
            f"SensorProfile.preset('kinect_v1'), chunk_size={CHUNK}, progress=False)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True)
    assert proc.returncode != 0
    assert (root / "chunks/00001").exists() and not (root / "chunks/00002").exists()
    from depthface.facemodel import load_face_model as lf

    generate(root, profile, 3, lf(), SensorProfile.preset("kinect_v1"), chunk_size=CHUNK, progress=False)
    assert tree_files(root) == tree_files(reference)


def test_other_settings_in_existing_directory_are_refused(tmp_path, model, profile, reference):
    with pytest.raises(InputError, match="different dataset"):
        generate(reference, profile, 99, model, None, chunk_size=CHUNK, progress=False)


def test_verify_and_loader_report_corruption(tmp_path, model, profile, reference):
    import shutil

    root = tmp_path / "ds"
    shutil.copytree(reference, root)
    assert verify(root) == []
    depth = root / "chunks/00001/depth.npy"
    depth.write_bytes(depth.read_bytes()[:1000])  # truncated
    lab = root / "chunks/00002/ypr.npy"
    raw = bytearray(lab.read_bytes())
    raw[-1] ^= 0xFF  # a flipped bit: same shape, wrong checksum
    lab.write_bytes(bytes(raw))
    problems = verify(root)
    assert any("00001/depth.npy" in p for p in problems)
    assert any("00002/ypr.npy" in p and "checksum" in p for p in problems)
    ds = SourceDataset(root, split=None)
    with pytest.raises(InputError) as e:
        ds[CHUNK + 1]
    assert "depth.npy" in str(e.value) and "\n" not in str(e.value)
    (root / "manifest.json").write_text("{not json")
    with pytest.raises(InputError, match="manifest"):
        SourceDataset(root)


def test_cli_verify_exit_codes(tmp_path, reference):
    ok = subprocess.run([sys.executable, "-m", "depthface.cli.main", "data", "verify", str(reference)],
                        capture_output=True, text=True)
    assert ok.returncode == 0 and "ok:" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "depthface.cli.main", "data", "verify", str(tmp_path / "nothing")],
                         capture_output=True, text=True)
    assert bad.returncode == 1 and "no manifest" in bad.stdout


def test_labels_are_consistent(reference, model):
    arrays = ChunkedArrays(reference)
    m = json.loads((reference / "manifest.json").read_text())
    assert sorted(sum(m["split"].values(), [])) == list(range(m["n_identities"]))
    k_full = Intrinsics(**m["intrinsics"])
    for i in range(0, N, 5):
        lm = torch.from_numpy(arrays.get(i, "landmarks3d")).double()
        t = arrays.get(i, "translation").astype(np.float64)
        c2d = project(torch.from_numpy(t)[None, None], k_full)[0, 0].numpy()
        np.testing.assert_allclose(c2d, arrays.get(i, "centre_2d"), atol=1e-3)
        # the crop's position image holds the face: landmarks on the nose are near measured points
        depth = arrays.get(i, "depth").astype(np.float32)
        pos = position_image(torch.from_numpy(depth)[None, None], torch.from_numpy(arrays.get(i, "crop_intrinsics")).float())
        pts = pos[0].permute(1, 2, 0).reshape(-1, 3)
        pts = pts[pts[:, 2] > 0].double()
        nose = lm[30]
        assert torch.cdist(nose[None], pts).min() < 25.0  # sensor noise, hair and occlusion allow some slack
        np.testing.assert_allclose(np.linalg.norm(arrays.get(i, "quaternion")), 1.0, atol=1e-5)


def test_source_and_target_datasets(reference):
    src = SourceDataset(reference, split="train")
    tgt = TargetDataset(reference, split="train", repeat=3)
    assert len(tgt) == 3 * len(src)
    item = src[0]
    assert item["position"].shape == (3, 160, 160) and item["position"].dtype == torch.float32
    assert {"quaternion", "translation", "identity", "expression", "landmarks3d"} <= set(item)
    t_item = tgt[0]
    assert not ({"quaternion", "translation", "identity", "expression", "landmarks3d", "ypr"} & set(t_item))
    assert torch.equal(t_item["position"], item["position"])
    train_ids = set(ChunkedArrays(reference).column("identity_id")[src.index].tolist())
    test_ids = set(ChunkedArrays(reference).column("identity_id")[SourceDataset(reference, "test").index].tolist())
    assert train_ids and test_ids and not (train_ids & test_ids)


def test_full_frames_crop_to_the_stored_crops(reference):
    """Frames kept whole are simulated over the whole image; inside the crop they equal the stored crops."""
    from depthface.synth.scenes import crop_sample
    from depthface.synth.storage import iter_full_frames

    arrays = ChunkedArrays(reference)
    k = Intrinsics(**arrays.manifest["intrinsics"])
    n = 0
    for i, frame in iter_full_frames(reference):
        crop, _ = crop_sample(frame, k, arrays.get(i, "crop_centre").astype(np.float64))
        np.testing.assert_array_equal(crop, arrays.get(i, "depth"))
        n += 1
    assert n == arrays.manifest["n_full_frames"] > 0
