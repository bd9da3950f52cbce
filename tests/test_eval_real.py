"""`depthface eval pose --biwi/--ict3dhp`: real-dataset layouts (written by `data export`) through the
product's per-frame path, with exact expectations from a constant-output network."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from depthface.synth.export import export_synthetic
from depthface.cli.main import app
from depthface.data.biwi import BiwiDataset, write_biwi_frame
from depthface.errors import DepthfaceError
from depthface.geometry.rotations import euler_to_quaternion, matrix_to_euler, quaternion_to_matrix
from depthface.inference import Reconstructor
from depthface.data.splits import open_real_split
from depthface.evaluation.real_pose import evaluate_real_pose, write_real_pose_csv
from depthface.synth.profiles import get_profile
from depthface.synth.sensor import SensorProfile
from depthface.synth.storage import generate

FIXED_YPR = torch.tensor([10.0, -5.0, 3.0], dtype=torch.float64)


class ConstantPose(torch.nn.Module):
    """A "network" that always answers rotation FIXED_YPR and head centre = crop centre."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q = euler_to_quaternion(FIXED_YPR).float()
        return q.expand(x.shape[0], 4), torch.zeros(x.shape[0], 3)


@pytest.fixture(scope="module")
def layouts(tmp_path_factory, model) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("real")
    syn = generate(root / "syn", get_profile("syndata2").scaled(count=6), 3, model, SensorProfile.preset("kinect_v1"),
                   chunk_size=3, n_full_frames=0, progress=False)
    export_synthetic(syn, "biwi", root / "biwi", n=5)
    export_synthetic(syn, "ict3dhp", root / "ict", n=4)
    return root / "biwi", root / "ict"


def test_gt_crop_with_a_constant_network_gives_exact_errors(layouts, model):
    """With the crop on the true head centre and t_rel = 0, the translation error is exactly 0 and the
    angle errors are |true - fixed| of the reader's own labels: pins centring, composition and angles."""
    for kind, root in zip(("biwi", "ict3dhp"), layouts):
        frames, idx = open_real_split(kind, root, "all")
        ev = evaluate_real_pose(Reconstructor(ConstantPose(), None, model, refine="none"), frames, idx, gt_crop=True,
                                progress=False)
        assert ev.status == ["ok" if c >= 0.3 else "low face score" for c in ev.face_score]
        e = ev.errors()
        np.testing.assert_allclose(e["translation_err_mm"], 0.0, atol=1e-9)
        truth = np.stack([frames[int(i)].ypr for i in idx])
        np.testing.assert_allclose(np.stack([e["yaw_true"], e["pitch_true"], e["roll_true"]], 1), truth, atol=1e-9)
        fixed = matrix_to_euler(quaternion_to_matrix(euler_to_quaternion(FIXED_YPR).float().double())).numpy()
        np.testing.assert_allclose(e["yaw_err"], np.abs(truth[:, 0] - fixed[0]), atol=1e-3)
        np.testing.assert_allclose(e["pitch_err"], np.abs(truth[:, 1] - fixed[1]), atol=1e-3)


def test_auto_crop_counts_frames_without_a_head_and_unreadable_files(layouts, model, tmp_path):
    import shutil

    biwi = tmp_path / "biwi"
    shutil.copytree(layouts[0], biwi)
    ds = BiwiDataset(biwi)
    seq = biwi / "hpdb" / ds.keys[0].sequence
    write_biwi_frame(seq, 900, np.full((480, 640), 2400, np.uint16), np.eye(3), np.array([0.0, 0.0, 1000.0]))  # a wall
    broken = ds.paths(1)[0]
    broken.write_bytes(broken.read_bytes()[:100])  # truncated
    frames, idx = open_real_split("biwi", biwi, "all")
    ev = evaluate_real_pose(Reconstructor(ConstantPose(), None, model), frames, idx, progress=False)
    assert len(ev.status) == 6 and ev.counts["no head"] == 1 and ev.counts["unreadable"] == 1
    assert ev.status[[k[2] for k in ev.keys].index(900)] == "no head"
    bad = [s for s in ev.status if s.startswith("unreadable")][0]
    assert str(broken) in bad and "\n" not in bad
    assert ev.summary()["frames"] == 4
    write_real_pose_csv(tmp_path / "frames.csv", ev)
    rows = list(csv.DictReader((tmp_path / "frames.csv").open()))
    assert len(rows) == 6 and sum(r["yaw_err"] == "" for r in rows) == 2


def test_eval_pose_cli_on_biwi_and_ict(layouts, tmp_path, tiny_runs):
    pose = tiny_runs[0]
    runner = CliRunner()
    r = runner.invoke(app, ["eval", "pose", "--ckpt", str(pose), "--biwi", str(layouts[0]), "--split", "all",
                            "--out", str(tmp_path / "e1")])
    assert r.exit_code == 0, r.output
    assert "automatic head localisation" in r.output and "MAE" in r.output
    m = json.loads((tmp_path / "e1" / "metrics.json").read_text())
    assert m["evaluated"] == 5 and m["frames"] + m["frames_no_head"] + m["frames_unreadable"] == 5
    assert (tmp_path / "e1" / "error_vs_angle.png").exists()
    r = runner.invoke(app, ["eval", "pose", "--ckpt", str(pose), "--ict3dhp", str(layouts[1]), "--gt-crop",
                            "--limit", "2", "--out", str(tmp_path / "e2")])
    assert r.exit_code == 0, r.output
    assert "ground truth" in r.output and json.loads((tmp_path / "e2" / "metrics.json").read_text())["evaluated"] == 2
    r = runner.invoke(app, ["data", "import", "--biwi", str(layouts[0]), "--split", "all", "--part", "test", "--gt-crop",
                            "--out", str(tmp_path / "imp")])
    assert r.exit_code == 0 and "5 of 5 frames cropped" in r.output, r.output
    syn = str(layouts[0].parent / "syn")
    r = runner.invoke(app, ["eval", "pose", "--ckpt", str(pose), "--data", syn, "--split", "all",
                            "--out", str(tmp_path / "e3")])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "e3" / "metrics.json").read_text())["frames"] == 6
    # one-line errors: the exported identities are not Biwi subjects 11/12; two inputs at once; a wrong split
    for args in (["--biwi", str(layouts[0])], ["--biwi", str(layouts[0]), "--ict3dhp", str(layouts[1])],
                 ["--ict3dhp", str(layouts[1]), "--split", "group1"], ["--data", syn, "--gt-crop"]):
        r = runner.invoke(app, ["eval", "pose", "--ckpt", str(pose), *args])
        # `depthface` (cli.main.main) prints a DepthfaceError as one "error: ..." line with exit status 2
        assert isinstance(r.exception, DepthfaceError) and "\n" not in str(r.exception), r.output


def test_import_gt_crop_matches_the_reader_and_the_direct_evaluation(layouts, model, tmp_path):
    """`data import --gt-crop`: crops, labels and a constant network's errors equal the per-frame path's."""
    from depthface.synth.real_import import import_real
    from depthface.data.preprocess import preprocess
    from depthface.evaluation.pose import pose_errors, predict_pose_dataset
    from depthface.synth.datasets import SourceDataset, TargetDataset
    from depthface.synth.storage import verify

    counts = import_real("biwi", layouts[0], tmp_path / "imp", "all", "test", gt_crop=True, chunk_size=2, progress=False)
    assert counts == {"frames": 5, "cropped": 5, "no_head": 0, "unreadable": 0}
    assert verify(tmp_path / "imp") == []
    frames, idx = open_real_split("biwi", layouts[0], "all")
    ds = SourceDataset(tmp_path / "imp", "test")
    assert len(ds) == 5 and "identity" not in ds[0] and len(TargetDataset(tmp_path / "imp", "train")) == 5
    for j, i in enumerate(idx):
        f, item = frames[int(i)], ds[j]
        crop = preprocess(f.depth, f.intrinsics, f.translation).crop
        np.testing.assert_array_equal(ds.arrays.get(j, "depth"), np.rint(crop).astype(np.uint16))
        np.testing.assert_allclose(item["translation"].numpy(), f.translation, atol=1e-3)
        np.testing.assert_allclose(item["ypr"].numpy(), f.ypr, atol=1e-3)
    pred = predict_pose_dataset(ConstantPose(), ds, progress=False)
    via_import = pose_errors(pred["R_pred"], pred["t_pred"], pred["R_true"], pred["t_true"])
    direct = evaluate_real_pose(Reconstructor(ConstantPose(), None, model, refine="none"), frames, idx, gt_crop=True,
                                progress=False).errors()
    for k in ("yaw_err", "pitch_err", "roll_err"):
        np.testing.assert_allclose(via_import[k], direct[k], atol=1e-3)
    np.testing.assert_allclose(via_import["translation_err_mm"], 0.0, atol=1e-3)


def test_import_resumes_and_skips_frames_without_a_crop(layouts, model, tmp_path):
    import shutil

    from depthface.synth.real_import import import_real
    from depthface.errors import InputError
    from depthface.synth.datasets import TargetDataset
    from depthface.train.pose import PoseTrainConfig, train_pose

    biwi = tmp_path / "biwi"
    shutil.copytree(layouts[0], biwi)
    ds = BiwiDataset(biwi)
    write_biwi_frame(biwi / "hpdb" / ds.keys[0].sequence, 900, np.full((480, 640), 2400, np.uint16), np.eye(3),
                     np.array([0.0, 0.0, 1000.0]))
    broken = ds.paths(1)[0]
    broken.write_bytes(broken.read_bytes()[:100])
    full = import_real("biwi", biwi, tmp_path / "full", "all", chunk_size=2, progress=False)
    assert full == {"frames": 6, "cropped": 4, "no_head": 1, "unreadable": 1}
    part = import_real("biwi", biwi, tmp_path / "part", "all", chunk_size=2, progress=False, stop_after=1)
    assert part["frames"] == 2
    import_real("biwi", biwi, tmp_path / "part", "all", chunk_size=2, progress=False)
    a = {p.relative_to(tmp_path / "full"): p.read_bytes() for p in sorted((tmp_path / "full").rglob("*")) if p.is_file()}
    b = {p.relative_to(tmp_path / "part"): p.read_bytes() for p in sorted((tmp_path / "part").rglob("*")) if p.is_file()}
    assert a.keys() == b.keys() and a == b
    with pytest.raises(InputError, match="different dataset"):
        import_real("biwi", biwi, tmp_path / "full", "all", gt_crop=True, chunk_size=2, progress=False)
    target = TargetDataset(tmp_path / "full", "train")
    assert len(target) == 4 and set(target[0]) == {"position", "index", "crop_centre", "crop_window", "crop_intrinsics"}
    cfg = PoseTrainConfig(preset="tiny", epochs1=0, epochs2=1, batch_size=2, target_repeat=1, max_cloud_points=500)
    run = train_pose(None, tmp_path / "full", tmp_path / "run", cfg, model, stage="2", progress=False)
    assert (run / "checkpoint.pt").exists()
