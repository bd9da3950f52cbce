"""Pinned bytes of the presets added with the scene / sensor split (``tof_kinect_v2``, ``kinect_v1_random``), so that
the speed-ups of issue 15 provably keep them too. Computed with the code at commit 4c60574 (before those speed-ups)
in this project's environment, like the digests of ``tests/test_synth_pin.py`` (same datasets: 16 samples in chunks
of 8, seed 11, the packaged model)."""

from __future__ import annotations

import pytest
from test_synth_pin import make, tree_digest

from depthface.facemodel import load_face_model

PINNED: dict[tuple[str, str], str] = {
    ("syndata2", "tof_kinect_v2"): "fc4bccfac9e24d2f1e19e093fb8b87de7fa715aa281e6d804811c00073ab58a9",
    ("syndata2", "kinect_v1_random"): "6e53eb10c4e48d18120278054e209e99bafe1d9a79407287c1bf774b51ca1156",
    ("syndata3", "kinect_v1_random"): "bdb7dbf2b5209d9ff986bdf6fa30f12a60741322280fbef7220f496ab184a2e7",
    ("syndata1", "tof_kinect_v2"): "b6d8184e4ebf828cbcd8ec715bd4f4bfda9fab610d74c63ba5d2123eb2ae5cf6",
}


@pytest.fixture(scope="module")
def model():
    return load_face_model()


@pytest.mark.parametrize("profile,sensor", list(PINNED))
def test_preset_bytes_are_pinned(tmp_path, model, profile, sensor):
    assert tree_digest(make(tmp_path, model, profile, sensor)) == PINNED[(profile, sensor)]
