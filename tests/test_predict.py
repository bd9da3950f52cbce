"""The user's product: Reconstructor and `depthface predict` on good and bad inputs, torch and ONNX."""

from __future__ import annotations

import csv
import subprocess
import sys

import numpy as np
import pytest

from depthface.errors import InputError
from depthface.geometry.camera import Intrinsics
from depthface.inference import Reconstructor

K = Intrinsics.preset("kinect_v1")


def test_reconstructor_result_fields(tiny_runs, model, kinect_face):
    rec = Reconstructor.from_checkpoints(*tiny_runs, face_check=False)  # untrained networks: no face check
    depth, scene = kinect_face
    res = rec.predict(depth, K, centre=scene.translation)
    assert res.rotation.shape == (3, 3) and np.allclose(res.rotation @ res.rotation.T, np.eye(3), atol=1e-6)
    assert res.vertices_camera.shape == (model.num_vertices, 3) and res.landmarks2d.shape == (68, 2)
    np.testing.assert_allclose(res.vertices_camera, res.vertices_head @ res.rotation.T + res.translation, atol=1e-6)
    assert 0.0 <= res.confidence <= 1.0 and res.centre_source == "ground_truth"
    with pytest.raises(InputError):
        rec.predict(np.full((480, 640), np.nan, np.float32), K)
    empty = rec.predict(np.full((480, 640), 2500.0, np.float32), K)  # a wall: no head
    assert not empty.found and "no head" in empty.reason


def test_onnx_backend_matches_torch(tmp_path, tiny_runs, kinect_face):
    from depthface.models.export import export_onnx
    from depthface.train.pose import load_pose_net
    from depthface.train.shape import load_shape_net

    pose_onnx = export_onnx(load_pose_net(tiny_runs[0])[0], tmp_path / "pose.onnx", "pose")
    shape_onnx = export_onnx(load_shape_net(tiny_runs[1])[0], tmp_path / "shape.onnx", "shape")
    depth, scene = kinect_face
    a = Reconstructor.from_checkpoints(*tiny_runs, face_check=False).predict(depth, K, centre=scene.translation)
    b = Reconstructor.from_checkpoints(pose_onnx, shape_onnx, backend="onnx", face_check=False).predict(
        depth, K, centre=scene.translation)
    np.testing.assert_allclose(a.rotation, b.rotation, atol=1e-4)
    np.testing.assert_allclose(a.vertices_camera, b.vertices_camera, atol=1e-2)


def test_predict_cli_good_and_bad_inputs(tmp_path, tiny_runs, kinect_face):
    from depthface.data.frames import write_depth_png16

    depth, _ = kinect_face
    inp = tmp_path / "in"
    inp.mkdir()
    write_depth_png16(inp / "a_good.png", depth)
    np.save(inp / "b_good.npy", depth.astype(np.float32))
    (inp / "c_corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    np.save(inp / "d_wrong_dims.npy", np.zeros((2, 480, 640), np.float32))
    np.save(inp / "e_all_zero.npy", np.zeros((480, 640), np.uint16))
    np.save(inp / "f_wall.npy", np.full((480, 640), 2500, np.uint16))
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "depthface.cli.main", "predict", str(inp), "--pose", str(tiny_runs[0]),
                           "--shape", str(tiny_runs[1]), "--out", str(out), "--no-face-check"], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "6 frame(s)" in proc.stdout and "3 unreadable" in proc.stdout
    rows = {r["frame"]: r for r in csv.DictReader((out / "poses.csv").open())}
    assert set(rows) == {"a_good.png", "b_good.npy", "c_corrupt.png", "d_wrong_dims.npy", "e_all_zero.npy", "f_wall.npy"}
    for bad in ("c_corrupt.png", "d_wrong_dims.npy", "e_all_zero.npy"):
        assert rows[bad]["found"] == "False" and rows[bad]["reason"].startswith("bad input")
        assert bad in rows[bad]["reason"]
    assert rows["f_wall.npy"]["found"] == "False" and "no head" in rows["f_wall.npy"]["reason"]
    assert rows["a_good.png"]["yaw_deg"] == rows["b_good.npy"]["yaw_deg"] != ""
    for name in ("a_good.png", "b_good.npy"):
        d = out / "frames" / name
        assert (d / "mesh_camera.ply").exists() and (d / "mesh_head.ply").exists() and (d / "overlay.png").exists()
    assert (out / "poses.json").exists()


def test_predict_cli_missing_checkpoint_is_one_line(tmp_path, kinect_face):
    np.save(tmp_path / "f.npy", kinect_face[0])
    proc = subprocess.run([sys.executable, "-m", "depthface.cli.main", "predict", str(tmp_path / "f.npy"), "--pose",
                           str(tmp_path / "nope")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "checkpoint not found" in proc.stderr
