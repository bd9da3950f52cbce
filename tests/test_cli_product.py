"""Rough edges of the command line outside predict: --version, the training preset on a CPU, where
`data inspect` writes its PNG, and `eval pose --pose` (predict's name for the same option)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from depthface import __version__
from depthface.cli.main import app
from depthface.data.biwi import write_biwi_depth_calibration, write_biwi_pose
from depthface.data.biwi_depth import write_biwi_depth
from depthface.train.common import choose_preset, save_checkpoint


def test_version():
    r = CliRunner().invoke(app, ["--version"])
    assert r.exit_code == 0 and r.output.strip() == f"depthface {__version__}"


def test_training_preset_defaults_to_small_on_a_cpu(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    preset, note = choose_preset(None, "auto")
    assert preset == "small" and "no CUDA" in note and "--preset paper" in note and "\n" not in note
    assert choose_preset("paper", "cpu") == ("paper", "")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert choose_preset(None, "auto")[0] == "paper"
    assert choose_preset(None, "cpu")[0] == "small"
    # a resumed run keeps its own preset
    save_checkpoint(tmp_path, {"kind": "pose", "train_config": {"preset": "tiny"}})
    preset, note = choose_preset(None, "cpu", tmp_path)
    assert preset == "tiny" and "resumed" in note


def test_train_pose_cli_says_which_preset(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    seen = {}

    def fake_train(source, target, out, cfg, model, stage, device):
        seen["preset"] = cfg.preset
        return out

    monkeypatch.setattr("depthface.train.pose.train_pose", fake_train)
    r = CliRunner().invoke(app, ["train", "pose", "--out", str(tmp_path / "run"), "--stage", "1",
                                                 "--source", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert seen["preset"] == "small" and "--preset small" in r.stderr


def _biwi(root):
    seq = root / "hpdb" / "01"
    write_biwi_depth_calibration(seq)
    for i in range(3):
        write_biwi_depth(seq / f"frame_{i:05d}_depth.bin", np.full((480, 640), 1000 + i, np.uint16))
        write_biwi_pose(seq / f"frame_{i:05d}_pose.txt", np.eye(3), np.array([0.0, 0.0, 1000.0]))
    return root


def test_data_inspect_writes_next_to_the_input_not_the_working_folder(tmp_path, monkeypatch):
    root = _biwi(tmp_path / "data" / "mybiwi")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    r = CliRunner().invoke(app, ["data", "inspect", str(root)])
    assert r.exit_code == 0, r.output
    assert list(cwd.iterdir()) == []
    assert (root.parent / "mybiwi_poses.png").exists()
    r = CliRunner().invoke(app, ["data", "inspect", str(root), "--out", str(tmp_path / "o")])
    assert r.exit_code == 0 and (tmp_path / "o" / "mybiwi_poses.png").exists(), r.output


def test_eval_pose_accepts_pose_like_predict(tmp_path, tiny_runs):
    root = _biwi(tmp_path / "biwi")
    r = CliRunner().invoke(app, ["eval", "pose", "--pose", str(tiny_runs[0]), "--biwi", str(root), "--split",
                                 "all", "--gt-crop", "--out", str(tmp_path / "e")])
    assert r.exit_code == 0, r.output
    assert "MAE" in r.output
