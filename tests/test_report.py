"""The demo report's numbers: bootstrap confidence intervals, rows with intervals, the references."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from depthface.evaluation.report import (POSE_GUIDE, SHAPE_GUIDE, MeanFaceNet, bootstrap_ci, ci_rows,
                                         frontal_pose_errors, pose_metrics)


def test_bootstrap_ci_analytic_cases():
    assert bootstrap_ci(np.full(50, 3.5)) == (3.5, 3.5)  # no spread: the interval is the value
    v = np.random.default_rng(0).normal(10.0, 2.0, 400)
    lo, hi = bootstrap_ci(v)
    half = 1.96 * v.std() / np.sqrt(len(v))  # the normal approximation of the mean's 95% interval
    assert lo < v.mean() < hi
    assert hi - lo == pytest.approx(2 * half, rel=0.1)
    assert bootstrap_ci(v) == (lo, hi)  # fixed seed
    assert bootstrap_ci(v, level=0.5)[1] - bootstrap_ci(v, level=0.5)[0] < hi - lo
    assert np.isnan(bootstrap_ci(np.array([np.nan]))[0])


def test_ci_rows_and_references():
    rows = ci_rows({"a": {"x": np.array([1.0, 1.0, 1.0])}}, ["x"])
    assert rows == [{"model": "a", "x": "1.00 [1.00, 1.00]", "frames": 3}]
    R = np.stack([np.eye(3)] * 4)
    t = np.array([[0.0, 0.0, 1000.0]] * 4)
    e = frontal_pose_errors(t + [3.0, 4.0, 0.0], R, t)
    m = pose_metrics(e)
    np.testing.assert_allclose(m["mae"], 0.0, atol=1e-9)
    np.testing.assert_allclose(m["translation_mm"], 5.0)
    out = MeanFaceNet(7)(torch.zeros(2, 3, 4, 4))
    assert out.shape == (2, 7, 3) and not out.any()
    assert "degrees" in POSE_GUIDE and "mean face" in SHAPE_GUIDE


@pytest.mark.slow
def test_demo_report_at_a_tiny_scale(tmp_path):
    from depthface.evaluation.demo import run_demo

    report = run_demo(tmp_path, sizes={"source_frames": 96, "target_frames": 48, "pose_epochs": (1, 1),
                                       "shape_epochs": 1})
    text = report.read_text()
    assert "frontal (reference)" in text and "mean face (reference)" in text and "How to read it" in text
    assert (tmp_path / "overlay_biwi_export.png").exists() or "Biwi export" in text
    assert "Release models (no training needed)" in text and "release pose model" in text
    assert any(tmp_path.glob("release_meshes_*.png"))  # truth, mean face and the release prediction
