"""The refinement in the product path: Reconstructor(refine=...) after the networks, and the dataset helper."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from depthface.errors import DepthfaceError, InputError
from depthface.evaluation.refine import refine_dataset_predictions
from depthface.facemodel.fit import refine_prediction
from depthface.geometry.rotations import euler_to_matrix, geodesic_angle_deg, matrix_to_quaternion
from depthface.inference import Reconstructor
from depthface.synth.datasets import SourceDataset
from depthface.synth.profiles import get_profile
from depthface.synth.scenes import SceneSampler
from depthface.synth.storage import generate, render_frame


class _FixedPose(torch.nn.Module):
    """A stand-in pose network: always answers the same rotation and head centre (camera frame)."""

    def __init__(self, R: np.ndarray, t: np.ndarray) -> None:
        super().__init__()
        self.q = matrix_to_quaternion(torch.from_numpy(R)).float()
        self.t = torch.from_numpy(np.asarray(t, np.float32))
        self.centre = None

    def forward(self, x):  # the crop centre is added by the Reconstructor: answer relative to it
        return self.q[None], (self.t - self.centre)[None]


@pytest.fixture(scope="module")
def scene_frame(model):
    sampler = SceneSampler(model, get_profile("syndata1"), 3)
    frame, scene, _ = render_frame(sampler, None, 3, 0, full=True)
    return frame, scene, sampler.profile.intrinsics


def _predict(model, scene_frame, refine):
    frame, scene, k = scene_frame
    R0 = euler_to_matrix(torch.tensor([8.0, -4.0, 2.0], dtype=torch.float64)).numpy() @ scene.rotation
    t0 = scene.translation + np.array([6.0, -4.0, 10.0])
    net = _FixedPose(R0, t0)
    net.centre = torch.from_numpy(scene.translation.astype(np.float32))
    rec = Reconstructor(net, None, model, refine=refine, refine_steps=0)
    return rec.predict(frame, k, centre=scene.translation), scene


@pytest.mark.parametrize("refine,max_deg,max_mm", [("none", 20.0, 100.0), ("pose", 2.5, 5.0), ("pose+shape", 1.0, 2.0)])
def test_reconstructor_refinement_corrects_an_off_pose(model, scene_frame, refine, max_deg, max_mm):
    res, scene = _predict(model, scene_frame, refine)
    err = geodesic_angle_deg(torch.from_numpy(res.rotation), torch.from_numpy(scene.rotation)).item()
    assert err < max_deg and np.linalg.norm(res.translation - scene.translation) < max_mm
    if refine == "none":
        assert err > 8.0 and "refine" not in res.extras
    else:
        assert res.extras["refined"] and res.extras["fit_rms_mm"] < 2.0
        # the outputs stay consistent with each other
        np.testing.assert_allclose(res.vertices_camera, res.vertices_head @ res.rotation.T + res.translation, atol=1e-4)
        q = matrix_to_quaternion(torch.from_numpy(res.rotation)).numpy()
        np.testing.assert_allclose(q, res.quaternion, atol=1e-9)
    if refine == "pose":  # the face is the network's (here the mean face): unchanged
        np.testing.assert_allclose(res.vertices_head, model.mean.double().numpy(), atol=1e-4)


def test_the_product_fits_pose_and_shape_by_default(model, scene_frame):
    """The product's default (issue 12: on by default because it wins): the networks' answer refined by
    the pose + shape fit; ``refine="none"`` is the paper's networks alone."""
    frame, scene, k = scene_frame
    net = _FixedPose(scene.rotation, scene.translation)
    net.centre = torch.from_numpy(scene.translation.astype(np.float32))
    res = Reconstructor(net, None, model, refine_steps=0).predict(frame, k, centre=scene.translation)
    assert res.extras["refine"] == "pose+shape" and res.extras["refined"]
    assert not np.allclose(res.vertices_head, model.mean.double().numpy(), atol=0.1)  # the face moved off the mean


def test_a_fit_that_turns_the_head_far_is_kept_only_where_the_confidence_flags_the_network(model, scene_frame):
    """The network 20 deg off: the fit turns it back by about 20 deg, more than the 10 deg bound, so it is
    refused (the networks' answer stays) unless the calibrated confidence flags the networks' pose."""
    from dataclasses import replace

    from depthface.inference.confidence import release_calibration

    frame, scene, k = scene_frame
    R0 = euler_to_matrix(torch.tensor([16.0, -10.0, 5.0], dtype=torch.float64)).numpy() @ scene.rotation
    net = _FixedPose(R0, scene.translation)
    net.centre = torch.from_numpy(scene.translation.astype(np.float32))
    cal = release_calibration()
    outcomes = {}
    for name, confidence in (("none", None), ("never flags", replace(cal, threshold=0.0)),
                             ("always flags", replace(cal, threshold=1.01))):
        res = Reconstructor(net, None, model, refine_steps=0, confidence=confidence).predict(frame, k, centre=scene.translation)
        err = geodesic_angle_deg(torch.from_numpy(res.rotation), torch.from_numpy(scene.rotation)).item()
        outcomes[name] = (res.extras["refined"], err, res.extras["fit_turn_deg"])
    assert outcomes["none"][0] is False and outcomes["never flags"][0] is False
    assert outcomes["none"][1] > 15.0 and outcomes["none"][2] > 10.0  # the network's pose stayed
    assert outcomes["always flags"][0] is True and outcomes["always flags"][1] < 2.0  # the fit corrected it


def test_refine_argument_is_checked(model):
    with pytest.raises(DepthfaceError, match="refine"):
        Reconstructor(None, None, model, refine="shape")
    with pytest.raises(InputError, match="refine"):
        refine_prediction(np.zeros((20, 3)), None, np.eye(3), np.zeros(3), np.zeros((3, 3)), "both")


def test_refine_dataset_predictions_on_stored_crops(tmp_path, model):
    root = generate(tmp_path / "d", get_profile("syndata1").scaled(count=2), 5, model, None, progress=False)
    ds = SourceDataset(root, None)
    from depthface.geometry.rotations import quaternion_to_matrix

    R_true = np.stack([quaternion_to_matrix(ds[i]["quaternion"].double()).numpy() for i in range(2)])
    t_true = np.stack([ds[i]["translation"].double().numpy() for i in range(2)])
    dR = euler_to_matrix(torch.tensor([6.0, 3.0, 0.0], dtype=torch.float64)).numpy()
    R0, t0 = dR @ R_true, t_true + 8.0
    R, t, v, secs = refine_dataset_predictions(ds, np.arange(2), R0, t0, model, "pose", progress=False)
    assert v is None and secs > 0
    before = geodesic_angle_deg(torch.from_numpy(R0), torch.from_numpy(R_true)).numpy()
    after = geodesic_angle_deg(torch.from_numpy(R), torch.from_numpy(R_true)).numpy()
    assert np.all(after < 0.6 * before)  # the mean face's own bias remains (a few degrees)
    R3, _, v3, _ = refine_dataset_predictions(ds, np.arange(2), R0, t0, model, "pose+shape", progress=False)
    assert v3.shape == (2, model.num_vertices, 3)
    assert np.all(geodesic_angle_deg(torch.from_numpy(R3), torch.from_numpy(R_true)).numpy() < 0.35 * before)
    R2, t2, v2, _ = refine_dataset_predictions(ds, np.arange(2), R0, t0, model, "none")
    assert R2 is R0 and v2 is None


def test_cli_refine_options(tmp_path, model, tiny_runs):
    """`eval pose --data ... --refine pose` and `predict --refine pose+shape` run and say what they did."""
    import json

    from typer.testing import CliRunner

    from depthface.cli.main import app

    pose = tiny_runs[0]
    data = generate(tmp_path / "d", get_profile("syndata1").scaled(count=2), 7, model, None, progress=False)
    res = CliRunner().invoke(app, ["eval", "pose", "--ckpt", str(pose), "--data", str(data), "--split",
                                   "all", "--refine", "pose", "--out", str(tmp_path / "e")])
    assert res.exit_code == 0, res.output
    m = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert m["refine"] == "pose" and m["refine_ms_per_frame"] > 0 and m["frames"] == 2
    frame, scene, _ = render_frame(SceneSampler(model, get_profile("syndata1"), 3), None, 3, 0, full=True)
    np.save(tmp_path / "f.npy", frame)
    res = CliRunner().invoke(app, ["predict", str(tmp_path / "f.npy"), "--pose", str(pose), "--out",
                                   str(tmp_path / "p"), "--refine", "pose+shape", "--no-overlays", "--no-meshes"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "p" / "poses.csv").exists()
