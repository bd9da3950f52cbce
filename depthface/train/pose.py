"""DAPoseNet training: stage 1 supervised on synthetic source frames (eq. 6), stage 2 self-supervised
on unlabelled target frames with the landmark Chamfer loss (eq. 7). Paper schedule: 100 + 50 epochs,
Adam at lr 1e-4, alpha = 350, eps = 30 mm, target frames reused 3 times per epoch."""

from __future__ import annotations

import copy
import math
from functools import partial
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from depthface.errors import DepthfaceError
from depthface.facemodel import MorphableModel
from depthface.geometry.camera import position_points
from depthface.geometry.normals import vertex_normals
from depthface.geometry.rotations import quaternion_to_matrix
from depthface.models.config import NetConfig
from depthface.models.losses import loss_pose_geodesic, loss_pose_landmark_chamfer, loss_pose_supervised
from depthface.models.networks import DAPoseNet
from depthface.synth.datasets import SourceDataset, TargetDataset
from depthface.train.augment import augment_batch
from depthface.train.common import (EpochSampler, keep_epoch, labelled_sources, load_checkpoint, load_network, make_loader, network_input, pick_device,
                                    save_checkpoint, seed_epoch, setup_distributed, state_dict_of,
                                    write_json)


@dataclass(frozen=True)
class PoseTrainConfig:
    """Hyper-parameters of DAPoseNet training (defaults: the paper's, section 1.3)."""

    preset: str = "paper"
    epochs1: int = 100
    epochs2: int = 50
    batch_size: int = 16
    lr: float = 1e-4
    alpha: float = 350.0
    eps_mm: float = 30.0
    target_repeat: int = 3
    #: weight of eq. 6 on source batches during stage 2 (0 = the paper: eq. 7 only)
    stage2_source_weight: float = 0.0
    max_cloud_points: int = 8192
    #: use in eq. 7 only the landmarks whose surface faces the camera under the predicted pose (the paper
    #: uses all 68; at large yaw the occluded side's landmarks match cheek and hair points within eps)
    visible_landmarks_only: bool = False
    #: weight of the stage-1 anchor in stage 2 (0 = the paper): eq. 6 between the network's prediction and
    #: its frozen stage-1 copy's on the same target frame (Learning without Forgetting). Eq. 7 constrains
    #: yaw weakly (a head is near a sphere about its centre), the anchor keeps what stage 1 learnt there.
    stage2_anchor_weight: float = 0.0
    #: options beyond the paper (the paper's values are the defaults):
    #: the pose MLP's rotation output, ``"quaternion"`` (paper) or ``"6d"`` (Zhou et al. 2019)
    rotation: str = "quaternion"
    #: the supervised loss: ``"eq6"`` (paper) or ``"geodesic"`` (angle in degrees + eq. 6's translation term)
    rotation_loss: str = "eq6"
    #: ``"constant"`` (paper) or ``"cosine"`` (annealed per iteration to 0 over stage 1; stage 2 at lr / 10)
    lr_schedule: str = "constant"
    #: on-the-fly augmentation of stage-1 crops (depthface.train.augment): noise, dropout, occluders, jitter
    augment: bool = False
    #: use only this many frames of each source dataset (0 = all; for learning curves and ablations)
    source_limit: int = 0
    #: keep the weights of every epoch as ``epochs/epoch_XXX.pt`` (learning curves)
    keep_epochs: bool = False
    seed: int = 0
    workers: int = 0

    def __post_init__(self) -> None:
        for name, value, allowed in (("rotation", self.rotation, ("quaternion", "6d")),
                                     ("rotation_loss", self.rotation_loss, ("eq6", "geodesic")),
                                     ("lr_schedule", self.lr_schedule, ("constant", "cosine"))):
            if value not in allowed:
                raise DepthfaceError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")


def posed_landmarks(q: torch.Tensor, t: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """``Phi(l)``: reference landmarks ``(L, 3)`` (head frame) moved by ``(q (B,4), t (B,3))`` -> ``(B, L, 3)``."""
    R = quaternion_to_matrix(q)
    return torch.einsum("bij,lj->bli", R, reference) + t[:, None, :]


def landmark_normals(model: MorphableModel) -> torch.Tensor:
    """Outward unit normals ``(68, 3)`` of the mean face at its landmarks (head frame)."""
    return vertex_normals(model.mean.double(), model.triangles)[model.landmarks68.long()].float()


def visible_landmarks(q: torch.Tensor, t: torch.Tensor, reference: torch.Tensor, normals: torch.Tensor) -> torch.Tensor:
    """``(B, L)`` True where a posed landmark's surface faces the camera: ``(R n) . (R l + t) < 0``."""
    R = quaternion_to_matrix(q.detach())
    n = torch.einsum("bij,lj->bli", R, normals)
    p = torch.einsum("bij,lj->bli", R, reference) + t.detach()[:, None, :]
    return (n * p).sum(-1) < 0


def pose_targets(batch: dict[str, torch.Tensor], device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """True ``q (B, 4)`` and ``t_rel = t - crop_centre (B, 3)`` in mm."""
    q = batch["quaternion"].to(device).float()
    t = (batch["translation"] - batch["crop_centre"]).to(device).float()
    return q, t


def train_pose(source: str | Path | None, target: str | Path | None, out: str | Path, cfg: PoseTrainConfig,
               model: MorphableModel, stage: str = "both", device: str | None = None, progress: bool = True,
               stop_after_epochs: int | None = None) -> Path:
    """Train (or resume) DAPoseNet; returns the run directory.

    Args:
        source: labelled synthetic dataset, or a list of them (stage 1; stage 2 with ``stage2_source_weight``).
        target: unlabelled target dataset (stage 2).
        stage: ``"1"`` (source only: Model-1), ``"2"`` (target only from scratch: Model-2) or ``"both"`` (Model-3).
        stop_after_epochs: stop after this many epochs of this call (tests of interruption).
    """
    run = Path(out)
    device = pick_device(device)
    dd = setup_distributed(device)
    if dd.world > 1 and device.startswith("cuda"):
        device = f"cuda:{dd.local_rank}"
    e1 = cfg.epochs1 if stage in ("1", "both") else 0
    e2 = cfg.epochs2 if stage in ("2", "both") else 0
    if e1 and source is None:
        raise DepthfaceError("stage 1 needs --source (a labelled synthetic dataset)")
    if e2 and target is None:
        raise DepthfaceError("stage 2 needs --target (an unlabelled target dataset)")
    if cfg.stage2_anchor_weight and not (e1 and e2):
        raise DepthfaceError("--stage2-anchor-weight anchors stage 2 to the stage-1 network: use --stage both")
    src = labelled_sources(source, cfg.source_limit) if e1 or cfg.stage2_source_weight else None
    tgt = TargetDataset(target, "train", repeat=cfg.target_repeat) if target is not None and e2 else None

    net_cfg = NetConfig.preset(cfg.preset, rotation=cfg.rotation)
    torch.manual_seed(cfg.seed)  # the initial weights depend on the seed only
    net = DAPoseNet(net_cfg).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    supervised = loss_pose_geodesic if cfg.rotation_loss == "geodesic" else partial(loss_pose_supervised, alpha=cfg.alpha)
    reference = model.landmarks(model.mean[None])[0].to(device).float()
    normals = landmark_normals(model).to(device)
    state = {"epoch": 0, "history": []}
    ckpt_path = run / "checkpoint.pt"
    if ckpt_path.exists():
        ck = load_checkpoint(ckpt_path)
        if ck.get("kind") != "pose" or ck.get("train_config") != asdict(cfg) or ck.get("stage") != stage:
            raise DepthfaceError(f"{ckpt_path}: an existing run with other settings; use another --out")
        net.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        state = {"epoch": ck["epoch"], "history": ck["history"]}
    ddp = DistributedDataParallel(net) if dd.world > 1 else net
    writer = SummaryWriter(str(run / "tb")) if dd.main else None
    total = e1 + e2
    done_now = 0
    teacher = None
    for epoch in range(state["epoch"], total):
        if stop_after_epochs is not None and done_now >= stop_after_epochs:
            break
        seed_epoch(cfg.seed, epoch)
        stage_now = 1 if epoch < e1 else 2
        ds = src if stage_now == 1 else tgt
        sampler = EpochSampler(len(ds), cfg.seed * 7919 + epoch, dd.rank, dd.world)
        loader = make_loader(ds, cfg.batch_size, sampler, cfg.workers)
        if stage_now == 2 and cfg.stage2_anchor_weight and teacher is None:
            teacher = _frozen_stage1(net, run, epoch == e1, device)
        src_iter = None
        if stage_now == 2 and cfg.stage2_source_weight > 0 and src is not None:
            src_iter = iter(make_loader(src, cfg.batch_size, EpochSampler(len(src), cfg.seed * 31 + epoch, dd.rank, dd.world)))
        net.train()
        gen = torch.Generator().manual_seed(cfg.seed * 1000003 + epoch)
        steps = len(loader)
        sums = {"loss": 0.0, "valid": 0.0}
        n = 0
        t0 = time.perf_counter()
        bar = tqdm(loader, desc=f"pose e{epoch + 1}/{total} s{stage_now}", disable=not (progress and dd.main), leave=False)
        for step, batch in enumerate(bar):
            _set_lr(opt, cfg, epoch, step, steps, e1)
            if stage_now == 1 and cfg.augment:
                batch = augment_batch(batch, gen)
            x = network_input(batch, device)
            q, t = ddp(x)
            if stage_now == 1:
                q_true, t_true = pose_targets(batch, device)
                loss = supervised(q, t, q_true, t_true)
                valid = torch.ones(())
            else:
                clouds = position_points(batch["position"].to(device), cfg.max_cloud_points)
                t_abs = t + batch["crop_centre"].to(device).float()
                lm = posed_landmarks(q, t_abs, reference)
                mask = visible_landmarks(q, t_abs, reference, normals) if cfg.visible_landmarks_only else None
                loss, v = loss_pose_landmark_chamfer(lm, clouds, cfg.eps_mm, mask)
                valid = v.float().mean()
                if teacher is not None:
                    with torch.no_grad():
                        q_teacher, t_teacher = teacher(x)
                    loss = loss + cfg.stage2_anchor_weight * loss_pose_supervised(q, t, q_teacher, t_teacher, cfg.alpha)
                if src_iter is not None:
                    sb = next(src_iter, None)
                    if sb is None:  # the source set is smaller than 3x the target: start it again
                        src_iter = iter(make_loader(src, cfg.batch_size, EpochSampler(len(src), cfg.seed * 37 + epoch,
                                                                                      dd.rank, dd.world)))
                        sb = next(src_iter, None)
                    if sb is not None:
                        qs, ts = ddp(network_input(sb, device))
                        loss = loss + cfg.stage2_source_weight * supervised(qs, ts, *pose_targets(sb, device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sums["loss"] += float(loss.detach())
            sums["valid"] += float(valid)
            n += 1
            bar.set_postfix(loss=f"{sums['loss'] / n:.3f}")
        record = {"epoch": epoch + 1, "stage": stage_now, "loss": sums["loss"] / max(n, 1),
                  "valid_landmarks": sums["valid"] / max(n, 1), "seconds": time.perf_counter() - t0,
                  "images_per_s": n * cfg.batch_size * dd.world / max(time.perf_counter() - t0, 1e-9)}
        state["history"].append(record)
        state["epoch"] = epoch + 1
        done_now += 1
        if writer is not None:
            writer.add_scalar(f"pose/loss_stage{stage_now}", record["loss"], epoch + 1)
            if stage_now == 2:
                writer.add_scalar("pose/valid_landmarks", record["valid_landmarks"], epoch + 1)
        if dd.main:
            save_checkpoint(run, {"kind": "pose", "stage": stage, "net_config": net_cfg.to_dict(),
                                  "train_config": asdict(cfg), "model": state_dict_of(ddp),
                                  "optimizer": opt.state_dict(), "epoch": state["epoch"], "history": state["history"],
                                  "reference_landmarks": reference.cpu(),
                                  "face_model": {"name": model.name, "sha256": model.sha256}})
            write_json(run / "history.json", state["history"])
            if state["epoch"] == e1 and e2 > 0:  # the stage-1 model (Model-1 of Table 5) is kept too
                shutil.copyfile(run / "checkpoint.pt", run / "stage1.pt")
            if cfg.keep_epochs:
                keep_epoch(run, state["epoch"])
    if writer is not None:
        writer.close()
    return run


def _set_lr(opt: torch.optim.Optimizer, cfg: PoseTrainConfig, epoch: int, step: int, steps: int, e1: int) -> None:
    """The learning rate of this iteration: constant (the paper), or cosine-annealed over stage 1 (stage 2 at
    a tenth of the base rate)."""
    lr = cfg.lr
    if cfg.lr_schedule == "cosine":
        if epoch < e1:
            progress = (epoch + step / max(steps, 1)) / max(e1, 1)
            lr = 0.5 * cfg.lr * (1 + math.cos(math.pi * progress))
        else:
            lr = cfg.lr / 10
    for group in opt.param_groups:
        group["lr"] = lr


def _frozen_stage1(net: DAPoseNet, run: Path, at_transition: bool, device: str) -> DAPoseNet:
    """The stage-1 network, frozen in eval mode: a copy of ``net`` when stage 2 starts now, else (a resumed
    run) ``run/stage1.pt``."""
    teacher = copy.deepcopy(net) if at_transition else load_pose_net(run / "stage1.pt", device)[0]
    return teacher.eval().requires_grad_(False)


def load_pose_net(ckpt: str | Path, device: str = "cpu") -> tuple[DAPoseNet, dict]:
    """A trained DAPoseNet in eval mode and its checkpoint dict."""
    return load_network(ckpt, "pose", DAPoseNet, device)  # type: ignore[return-value]
