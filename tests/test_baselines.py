"""Classic baselines (calls to depthface.facemodel.fit): rigid ICP recovers a known pose; the 3DMM fit nearly
recovers the face of a clean frame."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from depthface.evaluation.baselines import fit_3dmm, icp_pose
from depthface.evaluation.shape import shape_errors
from depthface.facemodel.fit import prepare_fit_region
from depthface.geometry.rotations import euler_to_matrix, geodesic_angle_deg
from depthface.synth.profiles import get_profile
from depthface.synth.scenes import SceneSampler
from depthface.synth.storage import render_frame
from depthface.data.preprocess import preprocess


@pytest.fixture(scope="module")
def sample(model):
    sampler = SceneSampler(model, get_profile("syndata1"), 2)
    frame, scene, _ = render_frame(sampler, None, 2, 5)
    prep = preprocess(frame, sampler.profile.intrinsics, scene.crop_centre)
    return model, scene, prep.position.double().numpy(), prepare_fit_region(model)


def test_icp_recovers_a_near_frontal_pose(sample):
    model, scene, pos, region = sample
    R, t, rms = icp_pose(pos, region, scene.crop_centre)
    err = geodesic_angle_deg(torch.from_numpy(R), torch.from_numpy(scene.rotation)).item()
    assert err < 6.0 and np.linalg.norm(t - scene.translation) < 15.0 and rms < 5.0
    # started 10 degrees off it still converges
    R0 = euler_to_matrix(torch.tensor([10.0, 0.0, 0.0], dtype=torch.float64)).numpy()
    R2, _, _ = icp_pose(pos, region, scene.crop_centre, R0)
    assert geodesic_angle_deg(torch.from_numpy(R2), torch.from_numpy(scene.rotation)).item() < 6.0


def test_3dmm_fit_nearly_recovers_the_face_of_a_clean_frame(sample):
    model, scene, pos, region = sample
    R0, t0, _ = icp_pose(pos, region, scene.crop_centre)
    fit = fit_3dmm(pos, region, R0, t0)
    assert (fit.expression >= 0).all() and (fit.expression <= 1).all()
    m64 = model.to(dtype=torch.float64)
    true = m64.vertices(torch.from_numpy(scene.identity)[None], torch.from_numpy(scene.expression)[None])
    e_fit = shape_errors(m64, torch.from_numpy(fit.vertices).double()[None], true)[0]["rms_mm"]
    e_mean = shape_errors(m64, m64.mean[None], true)[0]["rms_mm"]
    assert e_fit < 2.5 and e_fit < 0.6 * e_mean  # a stored crop (mm-quantised, resampled), a jaw shifted right
    assert geodesic_angle_deg(torch.from_numpy(fit.R), torch.from_numpy(scene.rotation)).item() < 2.5
