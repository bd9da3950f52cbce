"""One focused test per failure of issue 14 (and the predict-path rough edges of issue 13).

The CLI runs in-process (typer's CliRunner) with untrained tiny networks; ``--no-face-check`` where a
test needs frames with outputs (the face check rightly refuses untrained networks' faces).
"""

from __future__ import annotations

import csv
import io
import os
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from depthface.cli.main import app
from depthface.errors import DepthfaceError, InputError
from depthface.geometry.camera import Intrinsics
from depthface.inference import Reconstructor
from depthface.models.networks import DAPoseNet
from depthface.synth.profiles import get_profile
from depthface.train.common import save_checkpoint

K = Intrinsics.preset("kinect_v1")


def predict_cli(tiny_runs, args: list[str]):
    return CliRunner().invoke(app, ["predict", *args, "--pose", str(tiny_runs[0]), "--shape", str(tiny_runs[1]),
                                    "--no-overlays", "--no-meshes"])


def one_line_error(result) -> str:
    assert isinstance(result.exception, DepthfaceError), (result.exception, result.output)
    text = str(result.exception)
    assert "\n" not in text
    return text


def _npy(arr) -> bytes:
    b = io.BytesIO()
    np.save(b, arr, allow_pickle=True)
    return b.getvalue()


def _npz(members: dict[str, bytes]) -> bytes:
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as z:
        for n, d in members.items():
            z.writestr(n, d)
    return b.getvalue()


@pytest.fixture(scope="module")
def bad_folder_run(tmp_path_factory, tiny_runs, kinect_face):
    """One folder with every bad file of the issue beside good frames, through ``predict``."""
    root = tmp_path_factory.mktemp("bad_folder")
    inp = root / "in"
    inp.mkdir()
    depth = kinect_face[0]
    np.save(inp / "good.npy", depth)
    crc = bytearray(_npz({"depth.npy": _npy(depth)}))
    crc[200] ^= 0xFF
    (inp / "bad_crc.npz").write_bytes(bytes(crc))
    (inp / "truncated.npz").write_bytes(_npz({"depth.npy": _npy(depth)})[:300])
    (inp / "object_member.npz").write_bytes(_npz({"depth.npy": _npy(np.array([None, {}], dtype=object))}))
    (inp / "npy_bytes.npz").write_bytes(_npy(depth))
    header = repr({"descr": "<u2", "fortran_order": False, "shape": (200000, 200000)}).encode()
    header += b" " * (117 - len(header)) + b"\n"
    (inp / "huge_header.npy").write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header)
    with open(os.path.join(os.fsencode(inp), b"caf\xe9_latin1.npy"), "wb") as f:
        f.write(_npy(depth))
    for name in ("a b.npy", "a?b.npy", "a_b.npy"):
        np.save(inp / name, depth)
    np.save(inp / "metres.npy", depth.astype(np.float32) / 1000)
    out = root / "out"
    result = CliRunner().invoke(app, ["predict", str(inp), "--pose", str(tiny_runs[0]), "--shape", str(tiny_runs[1]),
                                      "--out", str(out), "--no-face-check", "--no-meshes"])
    rows = {r["frame"]: r for r in csv.DictReader((out / "poses.csv").open(encoding="utf-8"))} \
        if (out / "poses.csv").exists() else {}
    return result, rows, out


def _unreadable(rows, name, *words):
    r = rows[name]
    assert r["status"] == "unreadable" and r["yaw_deg"] == "" and name in r["reason"], r
    for w in words:
        assert w in r["reason"], r["reason"]


def test_folder_run_survives_and_writes_good_frames(bad_folder_run):
    result, rows, out = bad_folder_run
    assert result.exit_code == 0, result.output
    assert rows["good.npy"]["status"] == "face" and rows["good.npy"]["yaw_deg"] != ""


def test_npz_with_a_bad_crc(bad_folder_run):
    _unreadable(bad_folder_run[1], "bad_crc.npz")


def test_truncated_npz(bad_folder_run):
    _unreadable(bad_folder_run[1], "truncated.npz")


def test_npz_object_array_member(bad_folder_run):
    _unreadable(bad_folder_run[1], "object_member.npz", "objects")


def test_npy_bytes_named_npz(bad_folder_run):
    _unreadable(bad_folder_run[1], "npy_bytes.npz", "not a .npz")


def test_npy_header_claiming_149_gib_is_refused_before_allocation(bad_folder_run):
    _unreadable(bad_folder_run[1], "huge_header.npy", "pixels")


def test_non_utf8_file_name(bad_folder_run):
    rows = bad_folder_run[1]
    assert rows["caf\\xe9_latin1.npy"]["status"] == "face"  # escaped, written, and its outputs too
    assert (bad_folder_run[2] / rows["caf\\xe9_latin1.npy"]["output"] / "overlay.png").exists()


def test_names_that_escape_alike_do_not_collide(bad_folder_run):
    rows, out = bad_folder_run[1], bad_folder_run[2]
    dirs = {rows[n]["output"] for n in ("a b.npy", "a?b.npy", "a_b.npy")}
    assert len(dirs) == 3 and all((out / d / "landmarks.json").exists() for d in dirs)


def test_depth_in_metres_is_named(bad_folder_run):
    result, rows, _ = bad_folder_run
    _unreadable(rows, "metres.npy", "metres")
    assert "metres.npy" in result.output and "--depth-scale 1000" in result.output


def _biwi_folder(root: Path, depth: np.ndarray, cal: bytes | None) -> Path:
    from depthface.data.biwi import write_biwi_depth_calibration
    from depthface.data.biwi_depth import write_biwi_depth

    seq = root / "hpdb"
    for name, c in (("01", None), ("02", cal)):
        write_biwi_depth(seq / name / "frame_00001_depth.bin", depth)
        if c is None:
            write_biwi_depth_calibration(seq / name)
        else:
            (seq / name / "depth.cal").write_bytes(c)
    return seq


@pytest.mark.parametrize("cal", [b"\x00\xff\xfe\x80binary" * 10, b"575 0 320\nnot numbers\n"], ids=["binary", "text"])
def test_bad_depth_cal_costs_only_its_sequence(tmp_path, tiny_runs, kinect_face, cal):
    seq = _biwi_folder(tmp_path, kinect_face[0], cal)
    result = predict_cli(tiny_runs, [str(seq), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    rows = {r["frame"]: r for r in csv.DictReader((tmp_path / "out" / "poses.csv").open())}
    assert rows["01/frame_00001_depth.bin"]["status"] in ("face", "no face")
    bad = rows["02/frame_00001_depth.bin"]
    assert bad["status"] == "unreadable" and "depth.cal" in bad["reason"]


def test_binary_depth_cal_in_data_inspect_and_verify(tmp_path, kinect_face):
    from depthface.data.inspect import inspect_dataset, verify_real

    _biwi_folder(tmp_path, kinect_face[0], b"\x00\xff\xfe\x80binary" * 10)
    from depthface.data.biwi import write_biwi_pose

    for s in ("01", "02"):
        write_biwi_pose(tmp_path / "hpdb" / s / "frame_00001_pose.txt", np.eye(3), np.array([0, 0, 900.0]))
    assert inspect_dataset(tmp_path).n_frames == 2
    problems = verify_real(tmp_path)
    assert len(problems) == 1 and "depth.cal" in problems[0] and "not a text file" in problems[0]


def test_faceless_scenes_get_no_face_and_no_pose(tmp_path, tiny_runs):
    """Head-sized sphere and ellipsoid (also on a torso) and a noise patch at 2 m: no face, no pose."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from test_fuzz_corpus import K_SMALL, ellipsoid_scene, noise_blob

    rng = np.random.default_rng(11)
    inp = tmp_path / "in"
    inp.mkdir()
    for i in range(3):
        np.save(inp / f"sphere_{i}.npy", ellipsoid_scene(rng, axes=[90.0] * 3))
        np.save(inp / f"ellipsoid_{i}.npy", ellipsoid_scene(rng))
        np.save(inp / f"torso_{i}.npy", ellipsoid_scene(rng, torso=True, background=None))
        np.save(inp / f"noise_{i}.npy", noise_blob(rng))
    k = K_SMALL
    result = predict_cli(tiny_runs, [str(inp), "--out", str(tmp_path / "out"), "--intrinsics", f"{k.fx},{k.fy},{k.cx},{k.cy}"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader((tmp_path / "out" / "poses.csv").open()))
    assert len(rows) == 12
    assert all(r["status"] == "no face" and r["yaw_deg"] == "" and r["qw"] == "" for r in rows), rows


def test_face_verdict_on_known_inputs(model, kinect_face):
    """The geometric check itself: a rendered face at its true pose is a face; a sphere is not."""
    from depthface.inference.verdict import FaceTemplate, face_verdict

    tpl = FaceTemplate.from_face_model(model)
    depth, scene = kinect_face
    v = face_verdict(depth.astype(np.float32), K, tpl, scene.rotation, scene.translation)
    assert v.face and v.relief > 0.4, v
    u, w = np.meshgrid(np.arange(640), np.arange(480))
    d = np.stack([(u - K.cx) / K.fx, (w - K.cy) / K.fy, np.ones(u.shape)], -1)
    c = scene.translation + [0, 0, -60]
    b, a = d @ c, (d * d).sum(-1)
    disc = b * b - a * (c @ c - 95.0 ** 2)
    sphere = np.where(disc > 0, (b - np.sqrt(np.clip(disc, 0, None))) / a, 1800.0).astype(np.float32)
    v = face_verdict(sphere, K, tpl, scene.rotation, scene.translation)
    assert not v.face and v.relief < 0.2, v


@pytest.mark.parametrize("obj", [[1, 2, 3], {"kind": "pose", "model": {}}])
def test_checkpoint_without_net_config_or_a_list(tmp_path, obj):
    from depthface.train.common import load_network

    torch.save(obj, tmp_path / "c.pt")
    with pytest.raises(InputError, match="checkpoint"):
        load_network(tmp_path / "c.pt", "pose", DAPoseNet)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only message")
@pytest.mark.parametrize("device", ["cuda", "cuda:7"])
def test_predict_device_cuda_without_cuda(tmp_path, tiny_runs, kinect_face, device):
    np.save(tmp_path / "f.npy", kinect_face[0])
    result = predict_cli(tiny_runs, [str(tmp_path / "f.npy"), "--out", str(tmp_path / "o"), "--device", device])
    assert "CUDA is not available" in one_line_error(result)


def test_out_naming_an_existing_file(tmp_path, tiny_runs, kinect_face):
    np.save(tmp_path / "f.npy", kinect_face[0])
    (tmp_path / "o").write_text("x")
    assert "not a folder" in one_line_error(predict_cli(tiny_runs, [str(tmp_path / "f.npy"), "--out", str(tmp_path / "o")]))


def test_onnx_model_without_backend_onnx(tmp_path, kinect_face):
    np.save(tmp_path / "f.npy", kinect_face[0])
    (tmp_path / "pose.onnx").write_bytes(b"\x08\x07\x12\x07pytorch\x1a\x032.0")
    result = CliRunner().invoke(app, ["predict", str(tmp_path / "f.npy"), "--pose", str(tmp_path / "pose.onnx"),
                                      "--out", str(tmp_path / "o")])
    assert "ONNX model, use --backend onnx" in one_line_error(result)


def test_link_to_dev_zero_named_bin_is_not_read(tmp_path):
    from depthface.inference.io import read_depth_file

    os.symlink("/dev/zero", tmp_path / "zero.bin")
    with pytest.raises(InputError, match="character device"):
        read_depth_file(tmp_path / "zero.bin")


def test_fifo_named_png_given_explicitly_does_not_hang(tmp_path):
    from depthface.inference.io import read_depth_file

    os.mkfifo(tmp_path / "f.png")
    outcome = []

    def read():
        try:
            read_depth_file(tmp_path / "f.png")
        except InputError as e:
            outcome.append(str(e))

    t = threading.Thread(target=read, daemon=True)
    t.start()
    t.join(10)
    assert not t.is_alive() and "FIFO" in outcome[0]


def test_special_entries_are_reported_not_skipped_silently(tmp_path, tiny_runs, kinect_face):
    inp = tmp_path / "in"
    inp.mkdir()
    np.save(inp / "good.npy", kinect_face[0])
    os.symlink(inp / "loop.npy", inp / "loop.npy")
    os.symlink(inp / "nowhere.npy", inp / "dangling.npy")
    os.mkfifo(inp / "fifo.png")
    (inp / "folder.png").mkdir()
    result = predict_cli(tiny_runs, [str(inp), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    rows = {r["frame"]: r for r in csv.DictReader((tmp_path / "out" / "poses.csv").open())}
    assert "link loop" in rows["loop.npy"]["reason"] and "dangling" in rows["dangling.npy"]["reason"]
    assert "FIFO" in rows["fifo.png"]["reason"] and "folder.png" in result.output


@pytest.mark.parametrize("call", ["ragged", "grad", "fy0", "cy_nan", "dict_k", "string"])
def test_api_raises_input_error_naming_the_argument(tiny_runs, kinect_face, call):
    rec = Reconstructor.from_checkpoints(*tiny_runs)
    depth = kinect_face[0].astype(np.float32)
    with pytest.raises(InputError) as e:
        if call == "ragged":
            rec.predict([[1.0, 2.0], [3.0]], K)
        elif call == "grad":  # a tensor with grad is accepted (detached), then its NaN named
            rec.predict(torch.from_numpy(np.full((480, 640), np.nan, np.float32)).requires_grad_(), K)
        elif call == "fy0":
            rec.predict(depth, Intrinsics(575.0, 0.0, 320.0, 240.0, 640, 480))
        elif call == "cy_nan":
            rec.predict(depth, Intrinsics(575.0, 575.0, 320.0, float("nan"), 640, 480))
        elif call == "dict_k":
            rec.predict(depth, {"fx": 575.0})
        else:
            rec.predict("depth.npy", K)
    assert ("depth" in str(e.value) or "intrinsics" in str(e.value)) and "\n" not in str(e.value)


def test_api_accepts_a_tensor_with_grad(tiny_runs, kinect_face):
    rec = Reconstructor.from_checkpoints(*tiny_runs, face_check=False)
    res = rec.predict(torch.from_numpy(kinect_face[0].astype(np.float32)).requires_grad_(), K, centre=kinect_face[1].translation)
    assert res.rotation is not None


def test_intrinsics_inf_on_the_command_line(tmp_path, tiny_runs, kinect_face):
    np.save(tmp_path / "f.npy", kinect_face[0])
    result = predict_cli(tiny_runs, [str(tmp_path / "f.npy"), "--out", str(tmp_path / "o"), "--intrinsics", "inf,inf,320,240"])
    assert "finite" in one_line_error(result)


def test_synthetic_verify_decodes_full_frames(tmp_path, model):
    from depthface.synth.storage import generate, verify

    root = generate(tmp_path / "ds", get_profile("syndata2").scaled(count=2), 1, model, None, chunk_size=2,
                    n_full_frames=2, progress=False)
    assert verify(root) == []
    f = root / "frames" / "000001.npy"
    f.write_bytes(f.read_bytes()[:1000])
    problems = verify(root)
    assert len(problems) == 1 and "000001.npy" in problems[0] and "unreadable" in problems[0]


def test_verify_decodes_a_truncated_biwi_bin(tmp_path, kinect_face):
    from depthface.data.biwi import write_biwi_pose
    from depthface.data.inspect import verify_real

    seq = _biwi_folder(tmp_path, kinect_face[0], None)
    for s in ("01", "02"):
        write_biwi_pose(seq / s / "frame_00001_pose.txt", np.eye(3), np.array([0, 0, 900.0]))
    assert verify_real(tmp_path) == []
    b = seq / "02" / "frame_00001_depth.bin"
    b.write_bytes(b.read_bytes()[:5000])
    problems = verify_real(tmp_path)
    assert len(problems) == 1 and "frame_00001_depth.bin" in problems[0]
    result = CliRunner().invoke(app, ["data", "verify", str(tmp_path)])
    assert result.exit_code == 1 and "1 problem" in result.output


def test_loss_form_strings_are_validated():
    from depthface.models.losses import loss_d_adv_t

    logit = torch.zeros(3)
    assert torch.isclose(loss_d_adv_t(logit, "text"), loss_d_adv_t(logit, "printed"))  # equal only at logit 0
    with pytest.raises(DepthfaceError, match="form"):
        loss_d_adv_t(logit + 1, "Text")


def test_shape_checkpoint_face_model_hash_is_checked(tmp_path, tiny_runs, model):
    ck = torch.load(tiny_runs[1] / "checkpoint.pt", weights_only=True)
    ck["face_model"] = {"name": "other", "sha256": "0" * 64}
    save_checkpoint(tmp_path / "shape", ck)
    with pytest.raises(DepthfaceError, match="another face model"):
        Reconstructor.from_checkpoints(tiny_runs[0], tmp_path / "shape")


def test_preset_of_another_size_is_scaled_or_refused():
    from depthface.inference.run import frame_intrinsics

    k = frame_intrinsics(K, True, 320, 240)
    assert (k.fx, k.fy, k.cx, k.cy, k.width, k.height) == (K.fx / 2, K.fy / 2, 159.75, 119.75, 320, 240)
    assert frame_intrinsics(K, False, 320, 240).cx == K.cx  # fx,fy,cx,cy given: they describe this frame
    with pytest.raises(InputError, match="aspect"):
        frame_intrinsics(K, True, 300, 300)


def test_every_frame_unreadable_exits_non_zero(tmp_path, tiny_runs):
    (tmp_path / "in").mkdir()
    for i in range(3):
        (tmp_path / "in" / f"b{i}.png").write_bytes(b"nope")
    result = predict_cli(tiny_runs, [str(tmp_path / "in"), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1 and (tmp_path / "out" / "poses.csv").exists()


def test_ctrl_c_keeps_rows_and_says_so(tmp_path, tiny_runs, kinect_face, monkeypatch):
    np.save(tmp_path / "a.npy", kinect_face[0])
    np.save(tmp_path / "b.npy", kinect_face[0])

    def interrupt(self, depth, intrinsics, centre=None, source=None):
        if source == "b.npy":
            raise KeyboardInterrupt
        return original(self, depth, intrinsics, centre, source)

    original = Reconstructor.predict
    monkeypatch.setattr(Reconstructor, "predict", interrupt)
    result = predict_cli(tiny_runs, [str(tmp_path / "a.npy"), str(tmp_path / "b.npy"), "--out", str(tmp_path / "out")])
    assert result.exit_code == 130 and "interrupted" in result.output
    rows = list(csv.DictReader((tmp_path / "out" / "poses.csv").open()))
    assert [r["frame"] for r in rows] == ["a.npy"]


def test_predict_on_a_depthface_dataset_skips_label_arrays(tmp_path, tiny_runs, model):
    from depthface.synth.storage import generate

    root = generate(tmp_path / "ds", get_profile("syndata2").scaled(count=2), 1, model, None, chunk_size=2,
                    n_full_frames=1, progress=False)
    result = predict_cli(tiny_runs, [str(root), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader((tmp_path / "out" / "poses.csv").open()))
    assert [r["frame"] for r in rows] == ["frames/000000.npy"] and rows[0]["status"] != "unreadable"
    assert "depthface dataset" in result.output and "quaternion" not in result.output
