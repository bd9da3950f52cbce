"""Scene / sensor split: simulation profiles, the time-of-flight family, realism options, randomisation."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from depthface.errors import InputError
from depthface.geometry.camera import Intrinsics
from depthface.synth.context import DEFAULT_SCENE, LABEL_HAIR, SceneProfile, body_mesh, hair_mesh
from depthface.synth.sensor import (KINECT_V1, KINECT_V1_RANDOM, TOF_KINECT_V2, SimulationProfile, apply_sensor,
                                    sensor_input_window, simulate_frame)
from depthface.synth.sensors import StructuredLightProfile, TimeOfFlightProfile

K2 = Intrinsics.preset("kinect_v2")
K1 = Intrinsics.preset("kinect_v1")


def plate(K: Intrinsics, z_fg: float = 1000.0, z_bg: float = 2000.0) -> np.ndarray:
    d = np.full((K.height, K.width), z_bg, np.float32)
    cu, cv = int(K.cx), int(K.cy)
    d[cv - 50:cv + 50, cu - 50:cu + 50] = z_fg
    return d


def test_kinect_v2_intrinsics_preset():
    k = Intrinsics.preset("kinect_v2")
    assert (k.width, k.height, k.fx, k.fy, k.cx, k.cy) == (512, 424, 365.0, 365.0, 256.0, 212.0)


def test_profile_is_a_scene_and_a_sensor():
    assert SimulationProfile.preset("tof_kinect_v2") is TOF_KINECT_V2
    assert isinstance(KINECT_V1.scene, SceneProfile) and isinstance(KINECT_V1.sensor, StructuredLightProfile)
    assert isinstance(TOF_KINECT_V2.sensor, TimeOfFlightProfile) and TOF_KINECT_V2.camera == K2
    # flat changes are routed to the scene or the sensor (compatibility with the profile before the split)
    p = replace(KINECT_V1, hair_probability=0.0, holes_per_frame=1.0)
    assert p.scene == replace(DEFAULT_SCENE, hair_probability=0.0) and p.sensor.holes_per_frame == 1.0
    assert p.hair_probability == 0.0 and p.depth_noise_coeff == KINECT_V1.sensor.depth_noise_coeff
    with pytest.raises(TypeError):
        replace(KINECT_V1, noise_mm_at_1m=2.0)  # a time-of-flight field on a structured-light sensor
    with pytest.raises(InputError):
        SimulationProfile.preset("kinect_v7")
    with pytest.raises(InputError):
        replace(TOF_KINECT_V2, mixed_pixel_probability=1.5)
    with pytest.raises(InputError):
        replace(KINECT_V1, torso_roundness=(0.8, 0.3))
    # the manifest entry of kinect_v1 lists exactly the 43 fields of generator version 1
    spec = KINECT_V1.manifest_dict()
    assert len(spec) == 43 and "correlation_radius_px" not in spec and "camera" not in spec
    for prof in (KINECT_V1, TOF_KINECT_V2, KINECT_V1_RANDOM):
        assert SimulationProfile.from_manifest(json.loads(json.dumps(prof.manifest_dict()))) == prof


def test_tof_wall_noise_grows_with_distance_and_has_no_projector_shadow():
    p = replace(TOF_KINECT_V2, holes_per_frame=0.0)
    stds = []
    for z in (1000.0, 2000.0):
        out = apply_sensor(np.full((424, 512), z, np.float32), K2, np.random.default_rng(0), p).astype(float)
        c = out[152:272, 196:316]
        assert (c > 0).all() and abs(c.mean() - z) < 0.5
        stds.append(c.std())
    # sigma = noise_1m / sqrt(a), a = cos / z^2 (z in m): 1.5 mm at 1 m, 3 mm at 2 m on the axis
    assert abs(stds[0] / 1.5 - 1) < 0.15 and abs(stds[1] / 3.0 - 1) < 0.15
    out = apply_sensor(plate(K2), K2, np.random.default_rng(0), replace(p, mixed_pixel_probability=0.0,
                                                                       edge_dropout=()))
    assert (out[180:240, 190:205] > 0).all() and (out[180:240, 308:322] > 0).all()  # both sides lit
    assert sensor_input_window((100, 100, 200, 200), K2, p) == (95, 95, 205, 205)


def test_tof_mixed_pixels_at_silhouettes_and_range():
    p = replace(TOF_KINECT_V2, holes_per_frame=0.0, edge_dropout=(), mixed_pixel_probability=1.0)
    out = apply_sensor(plate(K2), K2, np.random.default_rng(1), p).astype(float)
    between = (out > 1030) & (out < 1970)
    assert between.sum() > 200  # the plate's outline reads between plate and wall
    assert not between[170:254, 214:298].any()  # never inside the plate
    none = replace(p, mixed_pixel_probability=0.0)
    out = apply_sensor(plate(K2), K2, np.random.default_rng(1), none).astype(float)
    assert not ((out > 1030) & (out < 1970)).any()
    for z, any_valid in ((450.0, False), (600.0, True), (4400.0, True), (4700.0, False)):
        o = apply_sensor(np.full((424, 512), z, np.float32), K2, np.random.default_rng(0), p)
        assert (o > 0).any() == any_valid, z


def test_tof_dark_hair_is_noisier_not_missing():
    p = replace(TOF_KINECT_V2, holes_per_frame=0.0, hair_reflectivity=(0.25, 0.25))
    depth = np.full((424, 512), 1000.0, np.float32)
    labels = np.ones((424, 512), np.uint8)
    labels[:, 256:] = LABEL_HAIR
    out = apply_sensor(depth, K2, np.random.default_rng(0), p, labels=labels).astype(float)
    skin, hair = out[150:270, 150:250], out[150:270, 262:362]
    assert (hair > 0).all()
    assert abs(hair.std() / skin.std() - 2.0) < 0.3  # 1 / sqrt(0.25)


def test_correlation_window_blurs_small_dips():
    # a 4 px wide, 15 mm deep groove in a wall at 1 m (an eye socket's scale): the window fills it in
    depth = np.full((480, 640), 1000.0, np.float32)
    depth[:, 318:322] = 1015.0
    ideal = SimulationProfile.preset("ideal")
    sharp = apply_sensor(depth, K1, np.random.default_rng(0), ideal).astype(float)
    soft = apply_sensor(depth, K1, np.random.default_rng(0), replace(ideal, correlation_radius_px=4)).astype(float)
    assert sharp[240, 320] - sharp[240, 300] > 12
    assert 0 < soft[240, 320] - soft[240, 300] < 8
    assert soft[240, 300] == sharp[240, 300]  # flat parts unchanged
    # the window rule still holds: a window is the full frame restricted to it
    prof = replace(KINECT_V1, correlation_radius_px=4)
    full = apply_sensor(depth, K1, np.random.default_rng(5), prof)
    part = apply_sensor(depth, K1, np.random.default_rng(5), prof, window=(300, 200, 340, 260))
    np.testing.assert_array_equal(part[200:260, 300:340], full[200:260, 300:340])


def test_realism_scene_options():
    a, _ = hair_mesh(np.random.default_rng(4), DEFAULT_SCENE)
    b, _ = hair_mesh(np.random.default_rng(4), replace(DEFAULT_SCENE, hair_ragged_mm=(5.0, 5.0)))
    moved = np.linalg.norm(a - b, axis=1)
    assert 1.0 < np.median(moved) < 10.0 and moved.max() < 5.0 * 2.5 * 1.5
    assert moved[:48].max() == 0  # the crown's pole row stays
    # the torso's roundness is the same draw as version 1's fixed U(0.3, 0.5): identical meshes
    t = np.array([0.0, 0.0, 1000.0])
    v1 = body_mesh(np.eye(3), t, np.random.default_rng(1), DEFAULT_SCENE)[0]
    v2 = body_mesh(np.eye(3), t, np.random.default_rng(1), replace(DEFAULT_SCENE, torso_roundness=(0.3, 0.5)))[0]
    np.testing.assert_array_equal(v1, v2)


def test_randomised_profile_draws_per_sample():
    a = KINECT_V1_RANDOM.draw(np.random.default_rng(0))
    b = KINECT_V1_RANDOM.draw(np.random.default_rng(1))
    assert a != b and not a.randomize
    for name, lo, hi in KINECT_V1_RANDOM.randomize:
        assert lo <= getattr(a, name) <= hi
    assert isinstance(a.sensor.correlation_radius_px, int)
    assert KINECT_V1.draw(np.random.default_rng(0)) is KINECT_V1
    clean = np.zeros((480, 640), np.float32)
    clean[200:280, 280:360] = 1000.0
    t = np.array([0.0, 0.0, 1000.0])
    f1 = simulate_frame(clean, np.eye(3), t, K1, np.random.default_rng(3), KINECT_V1_RANDOM)
    f2 = simulate_frame(clean, np.eye(3), t, K1, np.random.default_rng(3), KINECT_V1_RANDOM)
    np.testing.assert_array_equal(f1, f2)
    assert (f1 > 0).mean() > 0.05


def test_tof_dataset_reads_like_the_others(tmp_path):
    from depthface.facemodel import load_face_model
    from depthface.synth.datasets import SourceDataset
    from depthface.synth.profiles import get_profile
    from depthface.synth.storage import generate, read_manifest, verify

    root = generate(tmp_path / "tof", get_profile("syndata2").scaled(count=6), 2, load_face_model(), TOF_KINECT_V2,
                    chunk_size=6, n_full_frames=1, progress=False)
    m = read_manifest(root)
    assert Intrinsics(**m["intrinsics"]) == K2 and m["sensor"]["sensor_family"] == "time_of_flight"
    assert np.load(root / "frames" / "000000.npy").shape == (424, 512)
    assert verify(root) == []
    item = SourceDataset(root, split=None)[0]
    assert item["position"].shape == (3, 160, 160) and item["quaternion"].shape == (4,)
    assert (item["position"][2] > 0).float().mean() > 0.2


def test_cli_synth_offers_the_new_presets(tmp_path):
    from typer.testing import CliRunner

    from depthface.cli.main import app
    from depthface.synth.storage import read_manifest

    runner = CliRunner()
    out = tmp_path / "rand"
    r = runner.invoke(app, ["synth", "--profile", "syndata1", "--sensor", "kinect_v1_random", "--out", str(out),
                            "--count", "3", "--chunk-size", "3"])
    assert r.exit_code == 0, r.output
    m = read_manifest(out)
    assert m["sensor"]["name"] == "kinect_v1_random" and len(m["sensor"]["randomize"]) == 18
    r = runner.invoke(app, ["synth", "--sensor", "kinect_v9", "--out", str(tmp_path / "x"), "--count", "3"])
    msg = r.output + str(r.exception)  # the console entry point prints InputError as one line
    assert r.exit_code != 0 and "kinect_v9" in msg and "tof_kinect_v2" in msg
