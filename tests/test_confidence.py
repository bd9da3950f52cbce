"""The calibrated pose confidence: the logistic fit, the flag's scores, the file format, the cues on a
rendered frame and what the Reconstructor reports."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from depthface.errors import DepthfaceError
from depthface.evaluation.confidence import ranking_auc, reliability_table
from depthface.facemodel import load_face_model
from depthface.geometry.rotations import euler_to_matrix
from depthface.inference import Reconstructor
from depthface.inference.confidence import (BASE_FEATURES, REFINED_FEATURES, ConfidenceCalibration, LogisticModel,
                                            choose_threshold, fit_confidence_calibration, fit_logistic, flag_scores,
                                            pose_features)
from depthface.inference.verdict import FaceTemplate
from depthface.models.config import NetConfig
from depthface.models.networks import DAPoseNet
from depthface.synth.profiles import get_profile
from depthface.synth.scenes import SceneSampler
from depthface.synth.storage import render_frame


@pytest.fixture(scope="module")
def model():
    return load_face_model()


def test_logistic_fit_recovers_a_known_model():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((60000, 2))
    p = 1 / (1 + np.exp(-(1.5 * x[:, 0] - 0.8 * x[:, 1] + 0.3)))
    y = (rng.random(len(p)) < p).astype(float)
    m = fit_logistic(x, y, ("a", "b"), l2=0.0)
    w = m.weights / m.scale  # back to raw units
    b = m.bias - float(w @ m.mean)
    np.testing.assert_allclose(w, [1.5, -0.8], atol=0.05)
    assert b == pytest.approx(0.3, abs=0.05)
    np.testing.assert_allclose(m.probability(np.zeros((1, 2))), 1 / (1 + np.exp(-b)), atol=1e-12)
    with pytest.raises(DepthfaceError, match="both outcomes"):
        fit_logistic(x[:10], np.ones(10), ("a", "b"))
    with pytest.raises(DepthfaceError, match="takes 2 features"):
        m.probability(np.zeros((1, 3)))


def test_flag_scores_threshold_auc_and_reliability_on_a_known_case():
    conf = np.array([0.9, 0.8, 0.2, 0.1, 0.6])
    err = np.array([2.0, 3.0, 15.0, 20.0, 12.0])  # three frames off by more than 10 deg
    s = flag_scores(conf, err, 0.5)
    assert (s["flagged"], s["off"], s["precision"], s["recall"]) == (2, 3, 1.0, pytest.approx(2 / 3))
    assert s["mae_kept_geodesic"] == pytest.approx((2 + 3 + 12) / 3)
    th = choose_threshold(conf, err)  # the best F1 flags exactly the three frames off
    assert flag_scores(conf, err, th)["precision"] == 1.0 and flag_scores(conf, err, th)["recall"] == 1.0
    assert ranking_auc(conf, err) == 1.0  # every good frame above every bad one
    # good {0.9, 0.8} vs bad {0.2, 0.1, 0.85}: 5 of the 6 pairs in order
    assert ranking_auc(np.array([0.9, 0.8, 0.2, 0.1, 0.85]), err) == pytest.approx(5 / 6)
    rel = reliability_table(conf, err, bins=2)
    assert [(r["frames"], r["observed_within"]) for r in rel] == [(2, 0.0), (3, 2 / 3)]


def test_calibration_file_round_trip_and_a_bad_file(tmp_path):
    m = LogisticModel(BASE_FEATURES, np.arange(5.0), np.ones(5), np.linspace(-1, 1, 5), 0.25)
    mr = LogisticModel(REFINED_FEATURES, np.arange(6.0), np.ones(6) * 2, np.linspace(-1, 1, 6), -0.5)
    cal = ConfidenceCalibration(mr, m, 10.0, 0.4, {"calibrated_on": "x"})
    back = ConfidenceCalibration.load(cal.save(tmp_path / "c.json"))
    f = dict(zip(REFINED_FEATURES, [0.9, 1.0, 0.8, 0.7, 3.0, 1.5]))
    assert back.confidence(f) == pytest.approx(cal.confidence(f), abs=1e-15)
    f.pop("refine_change_deg")  # without the re-crop cue the single-pass model answers
    assert back.confidence(f) == pytest.approx(float(m.probability(np.array([[f[k] for k in BASE_FEATURES]]))[0]))
    (tmp_path / "bad.json").write_text('{"format": "something else"}')
    with pytest.raises(DepthfaceError, match="bad.json"):
        ConfidenceCalibration.load(tmp_path / "bad.json")


def test_fit_confidence_calibration_separates_good_from_bad_frames():
    rng = np.random.default_rng(1)
    n = 400
    err = np.where(rng.random(n) < 0.3, rng.uniform(12, 40, n), rng.uniform(0, 8, n))
    bad = err > 10
    feats = [{"landmark_match": 0.9 - 0.3 * b + 0.05 * rng.standard_normal(), "relief": 0.8 - 0.5 * b,
              "relief_correlation": 0.7 - 0.3 * b + 0.1 * rng.standard_normal(), "inliers": 0.8 - 0.3 * b,
              "median_residual_mm": 3 + 10 * b + rng.random(), "refine_change_deg": 1 + 6 * b * rng.random()}
             for b in bad]
    cal = fit_confidence_calibration(feats, err)
    conf = np.array([cal.confidence(f) for f in feats])
    assert ranking_auc(conf, err) > 0.99
    s = flag_scores(conf, err, cal.threshold)
    assert s["precision"] > 0.95 and s["recall"] > 0.95
    with pytest.raises(DepthfaceError, match="re-crop"):
        fit_confidence_calibration([{k: v for k, v in f.items() if k != "refine_change_deg"} for f in feats], err)


def _rendered(model, ypr=(20.0, -5.0, 0.0)):
    sampler = SceneSampler(model, get_profile("syndata2"), seed=5)
    base = sampler.scene(1)
    R = euler_to_matrix(torch.tensor(ypr, dtype=torch.float64)).numpy()
    scene = replace(base, ypr=np.array(ypr), rotation=R, translation=np.array([10.0, -15.0, 900.0]))
    frame, _, _ = render_frame(sampler, None, 5, 1, full=True, scene=scene)
    return frame.astype(np.float32), sampler.profile.intrinsics, R, scene.translation


def test_cues_on_a_rendered_frame_drop_when_the_pose_is_off(model):
    depth, k, R, t = _rendered(model)
    tpl = FaceTemplate.from_face_model(model)
    right = pose_features(depth, k, tpl, R, t, 1.0, 0.5)
    off = pose_features(depth, k, tpl, euler_to_matrix(torch.tensor([50.0, -5.0, 0.0], dtype=torch.float64)).numpy(),
                        t, 1.0, 0.5)
    assert set(right) == set(REFINED_FEATURES)
    assert right["inliers"] > 0.6 and right["median_residual_mm"] < 6.0 and right["relief_correlation"] > 0.5
    assert off["inliers"] < right["inliers"] and off["median_residual_mm"] > right["median_residual_mm"]
    assert "refine_change_deg" not in pose_features(depth, k, tpl, R, t, 1.0)


def test_reconstructor_reports_the_calibrated_confidence_and_its_flag(model):
    torch.manual_seed(0)
    net = DAPoseNet(NetConfig.preset("tiny")).eval()
    depth, k, _, _ = _rendered(model)
    cal = ConfidenceCalibration(LogisticModel(REFINED_FEATURES, np.zeros(6), np.ones(6), np.ones(6), -3.0),
                                LogisticModel(BASE_FEATURES, np.zeros(5), np.ones(5), np.ones(5), -30.0), 10.0, 0.5)
    res = Reconstructor(net, None, model, min_face_score=0.0, face_check=False, confidence=cal).predict(depth, k)
    cues = res.extras["confidence_features"]
    assert set(cues) == set(REFINED_FEATURES) and res.face_score == pytest.approx(res.extras["face_score"])
    assert res.confidence == pytest.approx(cal.confidence(cues)) and res.flagged == (res.confidence < 0.5)
    single = Reconstructor(net, None, model, min_face_score=0.0, face_check=False, confidence=cal, refine_steps=0)
    r0 = single.predict(depth, k)  # no re-crop: the single-pass model (bias -30) answers
    assert set(r0.extras["confidence_features"]) == set(BASE_FEATURES) and r0.confidence < 1e-6 and r0.flagged
    plain = Reconstructor(net, None, model, min_face_score=0.0, face_check=False, confidence=None).predict(depth, k)
    assert plain.confidence == plain.face_score and not plain.flagged and "confidence_features" not in plain.extras


def test_confidence_experiment_writes_a_calibration_the_reconstructor_loads(tmp_path, model):
    """``depthface experiment confidence`` end to end on a Biwi-layout export: the release pose network's
    cues on 8 simulated-Kinect frames, the error line at their median (so both outcomes occur)."""
    from depthface.data.splits import open_real_split
    from depthface.evaluation.confidence import collect_confidence_frames, confidence_experiment
    from depthface.models.release import release_checkpoint
    from depthface.synth.export import export_synthetic
    from depthface.synth.sensor import SensorProfile
    from depthface.synth.storage import generate
    from depthface.train.pose import load_pose_net

    syn = generate(tmp_path / "syn", get_profile("syndata2").scaled(count=8), 11, model,
                   SensorProfile.preset("kinect_v1"), chunk_size=4, n_full_frames=0, progress=False)
    export_synthetic(syn, "biwi", tmp_path / "biwi", n=8)
    frames, idx = open_real_split("biwi", tmp_path / "biwi", "all")
    rec = Reconstructor(load_pose_net(release_checkpoint("pose"))[0], None, model, face_check=False)
    feats, err = collect_confidence_frames(rec, frames, idx, batch=3, progress=False)
    assert len(feats) == len(err) == 8 and all(set(f) == set(REFINED_FEATURES) for f in feats)
    line = float(np.sort(err)[3] + np.sort(err)[4]) / 2
    table, cal = confidence_experiment(tmp_path / "biwi", {"again": tmp_path / "biwi"}, tmp_path / "out",
                                       error_deg=line)
    assert cal.error_deg == pytest.approx(line) and "| again | 8 | 4 |" in table
    back = Reconstructor(rec.pose_net, None, model, face_check=False, confidence=tmp_path / "out" / "confidence.json")
    assert back.confidence.threshold == pytest.approx(cal.threshold)
    rows = (tmp_path / "out" / "frames.csv").read_text().splitlines()
    assert len(rows) == 1 + 16 and rows[0].startswith("set,landmark_match")
    assert {p.name for p in (tmp_path / "out").iterdir()} >= {"confidence.json", "metrics.json", "report.md",
                                                            "confidence.png", "frames.csv"}
