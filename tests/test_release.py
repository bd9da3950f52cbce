"""The release models that ship in the package: they load by default and give a sane pose on rendered frames."""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from depthface.facemodel import load_face_model
from depthface.geometry.rotations import euler_to_matrix, geodesic_angle_deg
from depthface.inference import Reconstructor
from depthface.inference.confidence import ConfidenceCalibration
from depthface.models.release import RELEASE_FILES, WEIGHTS_DIR, release_checkpoint
from depthface.synth.profiles import get_profile
from depthface.synth.scenes import SceneSampler
from depthface.synth.storage import render_frame

DOCS = Path(__file__).resolve().parents[1] / "docs" / "models.md"


def test_release_weights_ship_small_and_match_the_model_card():
    paths = [release_checkpoint(kind) for kind in RELEASE_FILES]
    assert sum(p.stat().st_size for p in paths) < 50e6
    card = DOCS.read_text()
    for p in paths:
        digest = hashlib.sha256(p.read_bytes()).hexdigest()
        assert digest in card, f"docs/models.md does not give the sha256 of {p.name}"
    cal = ConfidenceCalibration.load(release_checkpoint("confidence"))  # the pose network's calibration
    assert cal.error_deg == 10.0 and 0.0 < cal.threshold < 1.0 and cal.provenance["pose"] == "release"
    for p in (release_checkpoint("pose"), release_checkpoint("shape")):
        ck = torch.load(p, map_location="cpu", weights_only=True)
        assert ck["half"] and all(v.dtype == torch.float16 for v in ck["model"].values() if v.is_floating_point())
        assert ck["face_model"]["sha256"] == load_face_model().sha256


@pytest.fixture(scope="module")
def release() -> Reconstructor:
    return Reconstructor()


@pytest.mark.parametrize("ypr", [(0.0, 0.0, 0.0), (30.0, -10.0, 5.0), (-45.0, 15.0, -10.0)])
def test_release_models_pose_a_rendered_head_of_known_pose(release, ypr):
    """The product path (automatic localisation, re-crop, networks) on a clean frame of an identity no
    training saw (dataset seed 777): within 10 deg and 20 mm of the truth, and a face that is not the mean.
    The geometric face verdict (issue 14) is asserted on the frontal frame only: on turned heads its relief
    test is not reliable yet (docs/models.md, docs/robustness.md); the pose is posed either way."""
    sampler = SceneSampler(load_face_model(), get_profile("syndata2"), seed=777)
    base = sampler.scene(3)
    R = euler_to_matrix(torch.tensor(ypr, dtype=torch.float64)).numpy()
    scene = replace(base, ypr=np.array(ypr), rotation=R, translation=np.array([30.0, -20.0, 950.0]))
    frame, _, _ = render_frame(sampler, None, 777, 3, full=True, scene=scene)
    res = release.predict(frame.astype(np.float32), sampler.profile.intrinsics)
    assert res.rotation is not None, res.reason
    if ypr == (0.0, 0.0, 0.0):
        assert res.found, res.reason
        assert res.confidence > release.confidence.threshold and not res.flagged  # a clean frontal frame: trusted
    err = float(geodesic_angle_deg(torch.from_numpy(res.rotation), torch.from_numpy(R)))
    assert err < 10.0, f"{err:.1f} deg off at {ypr}"
    assert np.linalg.norm(res.translation - scene.translation) < 20.0
    assert np.abs(res.vertices_head - release.face_model.mean.numpy()).max() > 1.0  # the shape network answered
