"""Shared fixtures: the packaged face model, untrained tiny checkpoints and a simulated Kinect face frame.

Session-scoped, built once per test run. Tests must not write into what these return (each test writes
into its own ``tmp_path``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch


def write_tiny_checkpoints(root: Path, model, mean_shape: bool = False) -> tuple[Path, Path]:
    """Untrained ``tiny`` pose and shape networks saved as ``root/pose`` and ``root/shape`` checkpoints
    (the plumbing does not need trained weights): seed 0, the pose network first, with ``model``'s
    record. ``mean_shape``: the shape network's parameters are zero, so it answers the mean face exactly.
    The global torch RNG is left as it was."""
    from depthface.models.config import NetConfig
    from depthface.models.networks import DAPoseNet, DASHapeNet
    from depthface.train.common import save_checkpoint

    cfg = NetConfig.preset("tiny")
    scfg = cfg.with_vertices(int(model.regressed_vertices.numel()))
    fm = {"name": model.name, "sha256": model.sha256}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        pose, shape = DAPoseNet(cfg), DASHapeNet(scfg)
    if mean_shape:
        with torch.no_grad():
            for p in shape.parameters():
                p.zero_()
    save_checkpoint(root / "pose", {"kind": "pose", "net_config": cfg.to_dict(), "model": pose.state_dict(),
                                    "face_model": fm})
    save_checkpoint(root / "shape", {"kind": "shape", "net_config": scfg.to_dict(), "model": shape.state_dict(),
                                     "face_model": fm})
    return root / "pose", root / "shape"


@pytest.fixture(scope="session")
def model():
    """The packaged face model."""
    from depthface.facemodel import load_face_model

    return load_face_model()


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory, model) -> tuple[Path, Path]:
    """``(pose, shape)`` checkpoints of untrained tiny networks (:func:`write_tiny_checkpoints`)."""
    return write_tiny_checkpoints(tmp_path_factory.mktemp("tiny_runs"), model)


@pytest.fixture(scope="session")
def kinect_face(model):
    """``(depth (480, 640) uint16 mm, scene)``: a full simulated Kinect v1 frame of a SynData2 face."""
    from depthface.synth.profiles import get_profile
    from depthface.synth.scenes import SceneSampler
    from depthface.synth.sensor import SensorProfile
    from depthface.synth.storage import render_frame

    sampler = SceneSampler(model, get_profile("syndata2"), 5)
    depth, scene, _ = render_frame(sampler, SensorProfile.preset("kinect_v1"), 5, 3, full=True)
    return depth, scene


@pytest.fixture(scope="session")
def tiny_checkpoints():
    """:func:`write_tiny_checkpoints`, for a module that needs its own variant (e.g. ``mean_shape=True``)."""
    return write_tiny_checkpoints
