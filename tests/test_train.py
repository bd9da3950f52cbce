"""Training infrastructure: resume after interruption, DDP with gloo, shape trainer step semantics."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from depthface.synth.profiles import get_profile
from depthface.synth.sensor import SensorProfile
from depthface.synth.storage import generate
from depthface.train.common import load_checkpoint
from depthface.train.pose import PoseTrainConfig, train_pose
from depthface.train.shape import ShapeTrainConfig, train_shape

N = 40


@pytest.fixture(scope="module")
def domains(tmp_path_factory, model):
    root = tmp_path_factory.mktemp("domains")
    prof = get_profile("syndata2").scaled(count=N)
    src = generate(root / "src", prof, 0, model, None, chunk_size=16, progress=False)
    tgt = generate(root / "tgt", prof, 1, model, SensorProfile.preset("kinect_v1"), chunk_size=16, progress=False)
    return src, tgt


def same_weights(a: Path, b: Path) -> bool:
    ka, kb = load_checkpoint(a)["model"], load_checkpoint(b)["model"]
    return ka.keys() == kb.keys() and all(torch.equal(ka[k], kb[k]) for k in ka)


POSE = PoseTrainConfig(preset="tiny", epochs1=2, epochs2=1, batch_size=8, target_repeat=1, max_cloud_points=2000)


def test_pose_resume_equals_uninterrupted(tmp_path, domains, model):
    src, tgt = domains
    full = train_pose(src, tgt, tmp_path / "full", POSE, model, progress=False)
    part = train_pose(src, tgt, tmp_path / "part", POSE, model, progress=False, stop_after_epochs=1)
    assert load_checkpoint(part)["epoch"] == 1
    train_pose(src, tgt, tmp_path / "part", POSE, model, progress=False, stop_after_epochs=1)
    train_pose(src, tgt, tmp_path / "part", POSE, model, progress=False)
    assert load_checkpoint(part)["epoch"] == 3
    assert same_weights(full / "checkpoint.pt", part / "checkpoint.pt")
    assert (full / "stage1.pt").exists() and load_checkpoint(full / "stage1.pt")["epoch"] == 2
    assert not same_weights(full / "stage1.pt", full / "checkpoint.pt")
    hist = load_checkpoint(full)["history"]
    assert [h["stage"] for h in hist] == [1, 1, 2] and 0 < hist[-1]["valid_landmarks"] <= 1


def test_pose_stage1_anchor_resumes_exactly_and_needs_stage1(tmp_path, domains, model):
    """The stage-2 anchor's teacher is the in-memory stage-1 copy in one run and stage1.pt after a resume
    mid stage 2: both give the same weights; the anchor changes training; without stage 1 it is refused."""
    from dataclasses import replace

    from depthface.errors import DepthfaceError

    src, tgt = domains
    cfg = replace(POSE, epochs2=2, stage2_anchor_weight=10.0)
    full = train_pose(src, tgt, tmp_path / "full", cfg, model, progress=False)
    part = train_pose(src, tgt, tmp_path / "part", cfg, model, progress=False, stop_after_epochs=3)
    assert load_checkpoint(part)["epoch"] == 3
    train_pose(src, tgt, tmp_path / "part", cfg, model, progress=False)
    assert same_weights(full / "checkpoint.pt", part / "checkpoint.pt")
    plain = train_pose(src, tgt, tmp_path / "plain", replace(cfg, stage2_anchor_weight=0.0), model, progress=False)
    assert same_weights(full / "stage1.pt", plain / "stage1.pt")
    assert not same_weights(full / "checkpoint.pt", plain / "checkpoint.pt")
    with pytest.raises(DepthfaceError, match="stage both"):
        train_pose(None, tgt, tmp_path / "m2", cfg, model, stage="2", progress=False)


def test_pose_refuses_other_settings_in_a_run(tmp_path, domains, model):
    from depthface.errors import DepthfaceError

    src, tgt = domains
    train_pose(src, tgt, tmp_path / "run", POSE, model, progress=False, stop_after_epochs=1)
    with pytest.raises(DepthfaceError, match="other settings"):
        train_pose(src, tgt, tmp_path / "run", PoseTrainConfig(preset="tiny", epochs1=3), model, progress=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_pose_ddp_two_cpu_processes(tmp_path, domains):
    src, tgt = domains
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port", env["MASTER_PORT"],
           "-m", "depthface.cli.main", "train", "pose", "--out", str(tmp_path / "ddp"), "--source", str(src),
           "--target", str(tgt), "--preset", "tiny", "--epochs1", "1", "--epochs2", "1", "--batch-size", "8",
           "--device", "cpu"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    ck = load_checkpoint(tmp_path / "ddp")
    assert ck["epoch"] == 2 and not any(k.startswith("module.") for k in ck["model"])


SHAPE = ShapeTrainConfig(preset="tiny", epochs=2, lr_step_epochs=1, batch_size=8, target_repeat=1)


def test_shape_resume_equals_uninterrupted(tmp_path, domains, model):
    src, tgt = domains
    full = train_shape(src, tgt, tmp_path / "full", SHAPE, model, progress=False)
    part = train_shape(src, tgt, tmp_path / "part", SHAPE, model, progress=False, stop_after_epochs=1)
    train_shape(src, tgt, tmp_path / "part", SHAPE, model, progress=False)
    assert same_weights(full / "checkpoint.pt", part / "checkpoint.pt")
    hist = load_checkpoint(full)["history"]
    assert hist[0]["lr"] == 5e-4 and hist[1]["lr"] == 1e-4
    assert {"L_D", "L_G", "L_R", "L_F_source", "L_D_target", "L_Dadv_t"} <= set(hist[0])


def test_pose_stage2_with_source_mixing_runs(tmp_path, domains, model):
    from dataclasses import replace

    src, tgt = domains
    cfg = replace(POSE, epochs1=1, epochs2=1, stage2_source_weight=1.0, target_repeat=3)
    run = train_pose(src, tgt, tmp_path / "mix", cfg, model, progress=False)
    hist = load_checkpoint(run)["history"]
    assert [h["stage"] for h in hist] == [1, 2] and all(h["loss"] > 0 for h in hist)


def test_pose_beyond_paper_options_resume_exactly_and_keep_epochs(tmp_path, domains, model):
    """6D rotations, geodesic loss, cosine schedule, augmentation, two sources: resumable bit for bit."""
    src, tgt = domains
    cfg = PoseTrainConfig(preset="tiny", epochs1=2, epochs2=0, batch_size=8, rotation="6d", rotation_loss="geodesic",
                          lr_schedule="cosine", lr=1e-3, augment=True, keep_epochs=True, source_limit=24)
    full = train_pose([src, tgt], None, tmp_path / "full", cfg, model, stage="1", progress=False)
    train_pose([src, tgt], None, tmp_path / "part", cfg, model, stage="1", progress=False, stop_after_epochs=1)
    train_pose([src, tgt], None, tmp_path / "part", cfg, model, stage="1", progress=False)
    assert same_weights(full / "checkpoint.pt", tmp_path / "part" / "checkpoint.pt")
    assert sorted(p.name for p in (full / "epochs").iterdir()) == ["epoch_001.pt", "epoch_002.pt"]
    ck = load_checkpoint(full)
    assert ck["net_config"]["rotation"] == "6d" and ck["model"]["head.net.2.weight"].shape[0] == 9
    assert all(h["loss"] == h["loss"] for h in ck["history"])  # finite
    # 2 sources cut to 24 frames each, batch 8: 6 iterations per epoch
    assert ck["history"][0]["images_per_s"] > 0
    # the learning curve evaluates each kept epoch like `eval pose` does
    from depthface.evaluation.curves import learning_curve
    from depthface.evaluation.pose import pose_errors, predict_pose_dataset, summarize
    from depthface.synth.datasets import SourceDataset
    from depthface.train.pose import load_pose_net

    rows = learning_curve(full, {"target": tgt}, "pose")
    assert [(r["epoch"], r["dataset"]) for r in rows] == [(1, "target"), (2, "target")]
    assert 0 < rows[0]["images_seen"] < rows[1]["images_seen"]
    assert abs(rows[0]["images_seen"] - 48) <= 1  # 6 iterations of 8 images
    p = predict_pose_dataset(load_pose_net(full / "epochs" / "epoch_002.pt")[0], SourceDataset(tgt, None), progress=False)
    assert rows[1]["mae"] == pytest.approx(summarize(pose_errors(p["R_pred"], p["t_pred"], p["R_true"], p["t_true"]))["mae"])
    # the ablation table: each run's final weights; runs sharing a label are seeds of one row
    from depthface.evaluation.curves import ablation_table, write_ablation

    table = ablation_table([("options", full), ("options", tmp_path / "part")], {"target": tgt}, "pose")
    assert [r["label"] for r in table] == ["options"] and table[0]["seeds"] == [0, 0]
    assert table[0]["target"] == pytest.approx(rows[1]["mae"]) and table[0]["target_runs"] == pytest.approx([rows[1]["mae"]] * 2)
    assert table[0]["images_seen"] == rows[1]["images_seen"]
    md = write_ablation(tmp_path / "abl", table, ["target"], "pose")[1].read_text()
    assert md.splitlines()[2].startswith("| options | 2 | ") and f"{rows[1]['mae']:.2f} [" in md


def test_pose_options_are_validated():
    from depthface.errors import DepthfaceError

    for bad in ({"rotation": "euler"}, {"rotation_loss": "l2"}, {"lr_schedule": "step"}):
        with pytest.raises(DepthfaceError, match=next(iter(bad))):
            PoseTrainConfig(**bad)


def test_shape_coefficient_head_outputs_model_faces_and_resumes(tmp_path, domains, model):
    """R's coefficient head: its output is basis @ coefficients, a face of the model; training resumes exactly."""
    from depthface.train.shape import load_shape_net

    src, tgt = domains
    cfg = ShapeTrainConfig(preset="tiny", epochs=2, batch_size=8, lambda1=0.0, lambda2=0.0, shape_output="coefficients")
    full = train_shape([src, tgt], None, tmp_path / "full", cfg, model, progress=False)
    train_shape([src, tgt], None, tmp_path / "part", cfg, model, progress=False, stop_after_epochs=1)
    train_shape([src, tgt], None, tmp_path / "part", cfg, model, progress=False)
    assert same_weights(full / "checkpoint.pt", tmp_path / "part" / "checkpoint.pt")
    net, ck = load_shape_net(full)
    k = model.identity_dim + model.expression_dim
    assert ck["net_config"]["shape_output"] == "coefficients" and net.R.net[-1].out_features == k
    h = torch.randn(3, net.R.net[0].in_features)
    c = net.R.coefficients(h)
    expected = model.displacements(c[:, :model.identity_dim], c[:, model.identity_dim:])
    assert torch.allclose(net.R(h), expected, atol=1e-3)


def test_compact_checkpoint_loads_and_predicts_like_the_full_one(tmp_path, domains, model):
    """A release checkpoint (F and R only, float16) loads into the full network and predicts within fp16 error."""
    from depthface.train.common import compact_checkpoint, load_network
    from depthface.models.networks import DASHapeNet

    src, _ = domains
    cfg = ShapeTrainConfig(preset="tiny", epochs=1, batch_size=8, lambda1=0.0, lambda2=0.0)
    run = train_shape(src, None, tmp_path / "run", cfg, model, progress=False)
    ck = load_checkpoint(run)
    small = compact_checkpoint(ck, ("F.", "R."))
    assert not any(k.startswith(("G.", "D.")) for k in small["model"]) and "optimizers" not in small
    assert all(v.dtype == torch.float16 for v in small["model"].values() if v.is_floating_point())
    torch.save(small, tmp_path / "shape.pt")
    full, _ = load_network(run, "shape", DASHapeNet)
    compact, _ = load_network(tmp_path / "shape.pt", "shape", DASHapeNet)
    x = torch.rand(2, 3, 160, 160) * 2 - 1
    with torch.no_grad():
        a, b = full(x), compact(x)
    assert (a - b).abs().max() < 0.05 * a.abs().max() + 1e-3
    broken = {**small, "model": {k: v for k, v in small["model"].items() if not k.startswith("R.")}}
    torch.save(broken, tmp_path / "broken.pt")
    from depthface.errors import InputError

    with pytest.raises(InputError, match="missing R."):
        load_network(tmp_path / "broken.pt", "shape", DASHapeNet)


def test_shape_keep_epochs(tmp_path, domains, model):
    src, _ = domains
    cfg = ShapeTrainConfig(preset="tiny", epochs=2, batch_size=8, lambda1=0.0, lambda2=0.0, keep_epochs=True,
                           source_limit=16)
    run = train_shape(src, None, tmp_path / "run", cfg, model, progress=False)
    assert sorted(p.name for p in (run / "epochs").iterdir()) == ["epoch_001.pt", "epoch_002.pt"]
    assert same_weights(run / "epochs" / "epoch_002.pt", run / "checkpoint.pt")
    assert load_checkpoint(run / "epochs" / "epoch_001.pt")["epoch"] == 1


@pytest.mark.parametrize("bn_updates", ["source", "paper"])
def test_shape_fair_ablation_updates_f_statistics_once_from_the_source_batch(domains, model, bn_updates):
    """``bn_updates="source"``: one AR-GAN iteration leaves F's batch-norm statistics exactly where one
    train-mode pass over the source batch puts them (as in source-only training); ``"paper"`` moves them
    further (several passes, target batches included). ``r_input="feature"``: R takes F(x) alone."""
    import copy

    from torch.utils.data import DataLoader

    from depthface.synth.datasets import SourceDataset, TargetDataset
    from depthface.train.common import network_input
    from depthface.train.shape import ShapeTrainer

    src, tgt = domains
    cfg = ShapeTrainConfig(preset="tiny", batch_size=4, bn_updates=bn_updates, r_input="feature")
    tr = ShapeTrainer(cfg, model, "cpu")
    tr.net.train()
    assert tr.net.R.net[0].in_features == tr.net_cfg.feature_dim
    sb = next(iter(DataLoader(SourceDataset(src, None), batch_size=4)))
    tb = next(iter(DataLoader(TargetDataset(tgt, None), batch_size=4)))
    once = copy.deepcopy(tr.net.F).train()
    with torch.no_grad():
        once(network_input(sb, "cpu"))
    tr.step(sb, tb)
    expected = {k: v for k, v in once.state_dict().items() if "running" in k}
    got = {k: v for k, v in tr.net.F.state_dict().items() if "running" in k}
    same = all(torch.equal(expected[k], got[k]) for k in expected)
    assert same == (bn_updates == "source")
    with pytest.raises(Exception, match="bn_updates"):
        ShapeTrainConfig(bn_updates="target")


def test_shape_init_warm_starts_from_a_checkpoint_or_a_release_file(tmp_path, domains, model):
    """``init``: the new run starts from the given weights (full run or compact F + R release file), with
    fresh optimisers; a checkpoint of another network is refused; the option is recorded and resumes."""
    from depthface.errors import InputError
    from depthface.train.common import write_release_checkpoint
    from depthface.train.shape import ShapeTrainer, warm_start

    src, _ = domains
    cfg = ShapeTrainConfig(preset="tiny", epochs=1, batch_size=8, lambda1=0.0, lambda2=0.0, source_limit=16)
    first = train_shape(src, None, tmp_path / "first", cfg, model, progress=False)
    trained = load_checkpoint(first)["model"]
    release = write_release_checkpoint(first, "shape", tmp_path / "shape.pt", half=False)
    for ckpt, modules in ((first, ("F.", "R.", "G.", "D.")), (release, ("F.", "R."))):
        tr = ShapeTrainer(ShapeTrainConfig(preset="tiny", seed=5), model, "cpu")
        fresh = {k: v.clone() for k, v in tr.net.state_dict().items()}
        warm_start(tr.net, ckpt)
        now = tr.net.state_dict()
        for k, v in now.items():
            assert torch.equal(v, trained[k] if k.startswith(modules) else fresh[k]), k
    with pytest.raises(InputError, match="another network"):
        warm_start(ShapeTrainer(ShapeTrainConfig(preset="tiny", shape_output="coefficients"), model, "cpu").net, first)
    cont = ShapeTrainConfig(**{**cfg.__dict__, "epochs": 2, "init": str(release)})
    run = train_shape(src, None, tmp_path / "cont", cont, model, progress=False, stop_after_epochs=1)
    assert load_checkpoint(run)["train_config"]["init"] == str(release)
    train_shape(src, None, tmp_path / "cont", cont, model, progress=False)  # resumes: init is not applied again
    assert load_checkpoint(run)["epoch"] == 2


def test_datasets_limit_keeps_the_first_frames_before_repeating(domains):
    """``limit`` (the synthetic-amount ablation's 1x / 2x / 3x is counted against a fixed target): the split's
    first ``limit`` samples, then ``repeat`` copies of them."""
    from depthface.synth.datasets import SourceDataset, TargetDataset

    src, tgt = domains
    every = TargetDataset(tgt, "train").index
    cut = TargetDataset(tgt, "train", repeat=3, limit=5).index
    assert cut.tolist() == every[:5].tolist() * 3
    assert len(SourceDataset(src, "train", limit=10**6)) == len(SourceDataset(src, "train"))
