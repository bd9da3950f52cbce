"""`depthface eval shape`: the stored-dataset path (network, network + fit, 3DMM fit) and the paper's
FaceWarehouse protocol on a tiny folder written in the FaceWarehouse layout."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from depthface.data.facewarehouse import FACEWAREHOUSE_TO_HEAD_FRAME, write_facewarehouse_sample
from depthface.errors import InputError
from depthface.evaluation.facewarehouse_eval import evaluate_facewarehouse, gt_face_region, read_landmarks9
from depthface.evaluation.shape_eval import evaluate_shape
from depthface.synth.datasets import SourceDataset
from depthface.synth.profiles import get_profile
from depthface.synth.storage import generate


@pytest.fixture(scope="module")
def runs(tmp_path_factory, model, tiny_checkpoints):
    """Untrained tiny networks whose shape network answers the mean face exactly (an untrained network's output
    is noise), and a tiny clean SynData1 set."""
    root = tmp_path_factory.mktemp("eval_shape")
    tiny_checkpoints(root, model, mean_shape=True)
    data = generate(root / "data", get_profile("syndata1").scaled(count=4), 11, model, None, progress=False)
    return root, data


def _run(*args):
    """The CLI in this process (its imports are already loaded); errors come back as main() prints them."""
    from types import SimpleNamespace

    from typer.testing import CliRunner

    from depthface.cli.main import app
    from depthface.errors import DepthfaceError

    res = CliRunner().invoke(app, [str(a) for a in args])
    if isinstance(res.exception, DepthfaceError):
        return SimpleNamespace(returncode=2, stdout=res.stdout, stderr=f"error: {res.exception}\n")
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    return SimpleNamespace(returncode=res.exit_code, stdout=res.stdout, stderr="")


def test_eval_shape_cli_on_a_dataset_with_refinement(runs):
    root, data = runs
    out = root / "out"
    proc = _run("eval", "shape", "--ckpt", root / "shape", "--data", data, "--split", "all", "--limit", "2",
                "--refine", "pose+shape", "--out", out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    m = json.loads((out / "metrics.json").read_text())
    assert m["primary"] == "network + fit" and set(m["methods"]) == {"mean face", "network", "network + fit"}
    assert m["samples"] == 2
    # the zeroed network is the mean face; the fit recovers much of the true face
    assert m["methods"]["network"]["rms_mm"] == pytest.approx(m["methods"]["mean face"]["rms_mm"], abs=1e-4)
    assert m["methods"]["network + fit"]["rms_mm"] < 0.7 * m["methods"]["mean face"]["rms_mm"]
    rows = list(csv.DictReader((out / "samples.csv").open()))
    assert len(rows) == 2 and "network_+_fit:mean_squared_mm2" in rows[0]
    for name in ("per_sample_eq8.png", "meshes_best.png", "meshes_median.png", "meshes_worst.png"):
        assert (out / name).stat().st_size > 1000


def test_eval_shape_of_the_fit_alone_and_bad_options(runs, model):
    root, data = runs
    ds = SourceDataset(data, None)
    ev = evaluate_shape(ds, model, limit=2, progress=False)
    s = ev.summary()
    assert ev.primary == "3DMM fit" and s["samples"] == 2
    assert s["methods"]["3DMM fit"]["rms_mm"] < 0.7 * s["methods"]["mean face"]["rms_mm"]
    with pytest.raises(InputError, match="refine"):
        evaluate_shape(ds, model, refine="pose")
    proc = _run("eval", "shape", "--data", data, "--facewarehouse", data)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "exactly one" in proc.stderr


# ---------------------------------------------------------------------------------------------- FaceWarehouse


def _write_facewarehouse(root, model, seed: int, subdivide: bool):
    """One tester whose ground truth is a model face in another topology: the vertices shuffled, and with
    ``subdivide`` every triangle split in four (edge midpoints), in FaceWarehouse axes and units with an
    arbitrary origin; the nine landmark vertex indices in ``root/landmarks9.txt``.

    Returns:
        ``(the face in model topology (V, 3), ground-truth vertices in head axes, their nine landmarks)``.
    """
    import trimesh

    g = torch.Generator().manual_seed(seed)
    face = model.vertices(model.sample_identity(1, g), model.sample_expression(1, g, 1, 0.5))[0].double().numpy()
    v, tri, lm = face, model.triangles.numpy(), model.rigid_landmarks9.numpy()
    if subdivide:
        v, tri = trimesh.remesh.subdivide(v, tri)  # original vertices first, then the midpoints
    perm = np.random.default_rng(seed).permutation(len(v))
    inv = np.argsort(perm)
    v, tri, lm = v[perm], inv[tri], inv[lm]
    fw = v @ FACEWAREHOUSE_TO_HEAD_FRAME.T + np.array([3.0, -40.0, 25.0])  # FaceWarehouse axes, own origin
    write_facewarehouse_sample(root, 1, 0, fw, tri)
    (root / "landmarks9.txt").write_text("\n".join(map(str, lm)) + "\n")
    return face.astype(np.float32), v, lm


@pytest.mark.parametrize("subdivide", [False, True])
def test_facewarehouse_protocol_on_the_same_surface(tmp_path, model, subdivide):
    face, gt, lm = _write_facewarehouse(tmp_path, model, 2, subdivide)
    ev = evaluate_facewarehouse(tmp_path, model, lambda depth, k, centre: face, split="all", progress=False)
    e = ev.errors["network"][0]
    e_mean = ev.errors["mean face"][0]
    assert e["n_flying_pred"] + e["n_flying_gt"] < 0.01 * e["n_valid"]
    if subdivide:  # eq. 8 pairs vertices: a midpoint is up to half an edge from the nearest vertex
        assert e["mean_squared_mm2"] < 2.5 and e["mean_squared_mm2"] < 0.5 * e_mean["mean_squared_mm2"]
    else:  # the same vertices: only the crops' borders differ, by about a vertex spacing
        assert e["mean_squared_mm2"] < 0.6 and e["mean_distance_mm"] < 0.4
        assert e_mean["mean_squared_mm2"] > 4 * e["mean_squared_mm2"]  # the mean face is not the person
    # the cropped region: the model's narrow face carried over (about 4x the vertices when subdivided)
    n = len(gt_face_region(gt, lm, model)) / (4.0 if subdivide else 1.0)
    assert 0.8 * model.narrow_face.numel() < n < 1.25 * model.narrow_face.numel()


def test_facewarehouse_cli_renders_missing_depth_and_needs_landmarks(tmp_path, runs, model):
    root, _ = runs
    fw = tmp_path / "fw"
    fw.mkdir()
    _, _, lm = _write_facewarehouse(fw, model, 3, subdivide=False)
    (fw / "landmarks9.txt").unlink()
    proc = _run("eval", "shape", "--facewarehouse", fw, "--ckpt", root / "shape", "--pose", root / "pose",
                "--out", tmp_path / "o")
    assert proc.returncode == 2 and "landmarks9.txt" in proc.stderr and proc.stderr.count("\n") == 1
    (fw / "landmarks9.txt").write_text(" ".join(map(str, lm)))
    proc = _run("eval", "shape", "--facewarehouse", fw, "--ckpt", root / "shape", "--pose", root / "pose",
                "--split", "all", "--limit", "1", "--out", tmp_path / "o")
    assert proc.returncode == 0, proc.stderr[-2000:]
    m = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert m["protocol"] == "FaceWarehouse" and m["samples"] == 1 and np.isfinite(m["eq8_mean_mm2"])
    assert (tmp_path / "o" / "per_sample_eq8.png").exists()
    with pytest.raises(InputError, match="nine vertex indices"):
        (tmp_path / "bad.txt").write_text("1 2 3")
        read_landmarks9(tmp_path / "bad.txt", 100)
