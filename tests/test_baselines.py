"""Classic baselines: rigid ICP recovers a known pose; the 3DMM fit improves on the mean face (clean frame)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from depthface.evaluation.baselines import fit_3dmm, icp_pose
from depthface.evaluation.shape import shape_errors
from depthface.facemodel import load_face_model
from depthface.geometry.rotations import euler_to_matrix, geodesic_angle_deg
from depthface.synth.profiles import get_profile
from depthface.synth.scenes import SceneSampler
from depthface.synth.storage import render_frame
from depthface.data.preprocess import preprocess


@pytest.fixture(scope="module")
def sample():
    model = load_face_model()
    sampler = SceneSampler(model, get_profile("syndata1"), 2)
    frame, scene, _ = render_frame(sampler, None, 2, 5)
    prep = preprocess(frame, sampler.profile.intrinsics, scene.crop_centre)
    return model, scene, prep.position.double().numpy()


def test_icp_recovers_a_near_frontal_pose(sample):
    model, scene, pos = sample
    pts = model.mean[model.region_indices("narrow")].double().numpy()[::4]
    R, t, rms = icp_pose(pos, pts, scene.crop_centre)
    err = geodesic_angle_deg(torch.from_numpy(R), torch.from_numpy(scene.rotation)).item()
    assert err < 6.0 and np.linalg.norm(t - scene.translation) < 15.0 and rms < 5.0
    # started 10 degrees off it still converges
    R0 = euler_to_matrix(torch.tensor([10.0, 0.0, 0.0], dtype=torch.float64)).numpy()
    R2, _, _ = icp_pose(pos, pts, scene.crop_centre, R0)
    assert geodesic_angle_deg(torch.from_numpy(R2), torch.from_numpy(scene.rotation)).item() < 6.0


def test_3dmm_fit_beats_the_mean_face_on_a_clean_frame(sample):
    model, scene, pos = sample
    mean = model.mean.double().numpy()
    basis = torch.cat((model.identity_basis, model.expression_basis), -1).double().numpy()
    pts = model.region_indices("face").numpy()[::4]
    c, R, t = fit_3dmm(pos, mean[pts], basis[pts], scene.rotation, scene.translation, 3, n_identity=model.identity_dim)
    assert (c[model.identity_dim:] >= 0).all() and (c[model.identity_dim:] <= 1).all()
    m64 = model.to(dtype=torch.float64)
    true = m64.vertices(torch.from_numpy(scene.identity)[None], torch.from_numpy(scene.expression)[None])
    fitted = torch.from_numpy(mean + (basis.reshape(-1, basis.shape[-1]) @ c).reshape(-1, 3))[None]
    e_fit = shape_errors(m64, fitted, true)[0]["rms_mm"]
    e_mean = shape_errors(m64, m64.mean[None], true)[0]["rms_mm"]
    assert e_fit < e_mean
