"""The generator's fast path (``depthface.synth.sample.make_sample``: the head rendered, the scene composited and
the sensor simulated only in the crop's box) stores exactly what the full-frame path (``render_frame`` +
``crop_sample``) stores, for every preset, also for heads at and beyond the image border."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from depthface.facemodel import load_face_model
from depthface.synth.profiles import get_profile
from depthface.synth.sample import make_sample
from depthface.synth.scenes import SceneSampler, crop_sample, quaternions
from depthface.synth.sensor import SensorProfile
from depthface.synth.storage import render_frame, with_sensor_camera


@pytest.fixture(scope="module")
def model():
    return load_face_model()


def reference(sampler, sensor, seed, scene, q):
    frame, scene, vertices = render_frame(sampler, sensor, seed, scene.index, scene=scene)
    labels = sampler.labels(scene, vertices, q)
    crop, crop_labels = crop_sample(frame, sampler.profile.intrinsics, labels["crop_centre"].astype(np.float64))
    return crop, {**labels, **crop_labels}


def shifted(scene, k):
    """The scene's head moved in the image plane: near or across the border for some ``k``."""
    shift = np.array([[0, 0, 0], [-380, 0, 0], [420, 0, 0], [0, -300, 0], [0, 330, 0], [900, 0, 0]][k % 6], float)
    return replace(scene, translation=scene.translation + shift, crop_centre=scene.crop_centre + shift)


@pytest.mark.parametrize("preset", [None, "kinect_v1", "tof_kinect_v2", "kinect_v1_random", "ideal"])
def test_fast_path_equals_full_frames(model, preset):
    sensor = None if preset is None else SensorProfile.preset(preset)
    profile, sim = with_sensor_camera(get_profile("syndata2").scaled(count=64), sensor)
    sampler = SceneSampler(model, profile, 5)
    scenes = [shifted(sc, k) for k, sc in enumerate(sampler.scenes(range(8, 26)))]
    for scene, q in zip(scenes, quaternions(scenes)):
        crop, labels = make_sample(sampler, sim, 5, scene, q)
        crop_ref, labels_ref = reference(sampler, sim, 5, scene, q)
        np.testing.assert_array_equal(crop, crop_ref)
        assert crop.dtype == crop_ref.dtype == np.uint16
        assert labels.keys() == labels_ref.keys()
        for name in labels:
            np.testing.assert_array_equal(np.asarray(labels[name]), np.asarray(labels_ref[name]), err_msg=name)
