"""``depthface train ...``: train DAPoseNet and DASHapeNet (:mod:`depthface.train`)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from depthface.errors import DepthfaceError

train_app = typer.Typer(no_args_is_help=True, help="Train DAPoseNet and DASHapeNet.")


@train_app.command("pose")
def train_pose_cmd(
    out: Path = typer.Option(..., help="run directory (resumed if it holds a checkpoint)"),
    source: Optional[list[Path]] = typer.Option(None, help="labelled synthetic dataset (stage 1); repeat the "
                                                            "option to train on several (e.g. clean + simulated sensor)"),
    target: Optional[Path] = typer.Option(None, help="unlabelled target dataset (stage 2)"),
    stage: str = typer.Option("both", help="1 (supervised), 2 (self-supervised only) or both"),
    preset: Optional[str] = typer.Option(None, help="network size: paper, small or tiny (default: paper with "
                                                    "CUDA, small on a CPU, a resumed run's own)"),
    epochs1: int = typer.Option(100, help="stage-1 epochs (paper: 100)"),
    epochs2: int = typer.Option(50, help="stage-2 epochs (paper: 50)"),
    batch_size: int = 16,
    lr: float = 1e-4,
    stage2_source_weight: float = typer.Option(0.0, help="eq. 6 weight on source batches in stage 2 (paper: 0)"),
    visible_landmarks_only: bool = typer.Option(False, help="eq. 7 on landmarks facing the camera only (paper: all)"),
    stage2_anchor_weight: float = typer.Option(0.0, help="stage 2: eq. 6 toward the frozen stage-1 network's "
                                                         "prediction on the same target frame (paper: 0)"),
    rotation: str = typer.Option("quaternion", help="rotation output: quaternion (paper) or 6d (Zhou et al. 2019)"),
    rotation_loss: str = typer.Option("eq6", help="supervised loss: eq6 (paper) or geodesic (angle + translation)"),
    lr_schedule: str = typer.Option("constant", help="constant (paper) or cosine (annealed over stage 1)"),
    augment: bool = typer.Option(False, help="augment stage-1 crops on the fly: noise, dropout, occluders, "
                                             "crop jitter (paper: off)"),
    source_limit: int = typer.Option(0, help="use only this many frames of each source dataset (0 = all)"),
    keep_epochs: bool = typer.Option(False, help="keep every epoch's weights in RUN/epochs/ (learning curves)"),
    seed: int = 0,
    workers: int = 0,
    device: str = typer.Option("auto", help="cpu, cuda or auto"),
    face_model: Optional[Path] = None,
) -> None:
    """Train DAPoseNet: eq. 6 on synthetic frames, then eq. 7 on unlabelled target frames."""
    from depthface.facemodel import load_face_model
    from depthface.train.common import choose_preset
    from depthface.train.pose import PoseTrainConfig, train_pose

    if stage not in ("1", "2", "both"):
        raise DepthfaceError(f"--stage must be 1, 2 or both, got {stage!r}")
    preset, note = choose_preset(preset, device, out)
    if note:
        typer.echo(note, err=True)
    cfg = PoseTrainConfig(preset=preset, epochs1=epochs1, epochs2=epochs2, batch_size=batch_size, lr=lr,
                          stage2_source_weight=stage2_source_weight, visible_landmarks_only=visible_landmarks_only,
                          stage2_anchor_weight=stage2_anchor_weight, rotation=rotation, rotation_loss=rotation_loss,
                          lr_schedule=lr_schedule, augment=augment, source_limit=source_limit, keep_epochs=keep_epochs,
                          seed=seed, workers=workers)
    sources = None if not source else (source[0] if len(source) == 1 else list(source))
    run = train_pose(sources, target, out, cfg, load_face_model(face_model), stage=stage, device=device)
    typer.echo(f"trained pose network: {run / 'checkpoint.pt'}")


@train_app.command("shape")
def train_shape_cmd(
    out: Path = typer.Option(..., help="run directory (resumed if it holds a checkpoint)"),
    source: list[Path] = typer.Option(..., help="labelled synthetic dataset; repeat the option for several"),
    target: Optional[Path] = typer.Option(None, help="unlabelled target dataset"),
    preset: Optional[str] = typer.Option(None, help="network size: paper, small or tiny (default: paper with "
                                                    "CUDA, small on a CPU, a resumed run's own)"),
    epochs: int = 30,
    lr_step_epochs: int = 10,
    batch_size: int = 16,
    lambda1: float = 0.03,
    lambda2: float = 0.1,
    source_limit: int = typer.Option(0, help="use only this many source frames (0 = all)"),
    target_limit: int = typer.Option(0, help="use only this many target frames (0 = all; before the paper's 3x "
                                             "reuse)"),
    shape_output: str = typer.Option("vertices", help="R's output: vertices (paper: 3V displacements) or "
                                                      "coefficients (the face model's, through its basis)"),
    keep_epochs: bool = typer.Option(False, help="keep every epoch's weights in RUN/epochs/ (learning curves)"),
    bn_updates: str = typer.Option("paper", help="F's batch-norm statistics: paper (every pass of F, target "
                                                 "batches too) or source (once per iteration from the source "
                                                 "batch, as source-only training: the fair ablation)"),
    r_input: str = typer.Option("paper", help="R's input: paper ([F(x), z, one-hot]) or feature (F(x) alone)"),
    init: Optional[Path] = typer.Option(None, help="warm start: a shape checkpoint of the same network whose "
                                                   "weights start the run (fresh optimisers and schedule)"),
    seed: int = 0,
    workers: int = 0,
    device: str = typer.Option("auto", help="cpu, cuda or auto"),
    face_model: Optional[Path] = None,
) -> None:
    """Train DASHapeNet with AR-GAN (eq. 1-5); lambda1 = lambda2 = 0 is the source-only ablation."""
    from depthface.facemodel import load_face_model
    from depthface.train.common import choose_preset
    from depthface.train.shape import ShapeTrainConfig, train_shape

    preset, note = choose_preset(preset, device, out)
    if note:
        typer.echo(note, err=True)
    cfg = ShapeTrainConfig(preset=preset, epochs=epochs, lr_step_epochs=lr_step_epochs, batch_size=batch_size,
                           lambda1=lambda1, lambda2=lambda2, source_limit=source_limit, target_limit=target_limit,
                           shape_output=shape_output, keep_epochs=keep_epochs, bn_updates=bn_updates, r_input=r_input,
                           seed=seed, workers=workers, init=str(init or ""))
    run = train_shape(source[0] if len(source) == 1 else list(source), target, out, cfg, load_face_model(face_model), device=device)
    typer.echo(f"trained shape network: {run / 'checkpoint.pt'}")
