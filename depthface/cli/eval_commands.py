"""``depthface eval ...``: evaluate trained networks and baselines (:mod:`depthface.evaluation`)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from depthface.errors import DepthfaceError

eval_app = typer.Typer(no_args_is_help=True, help="Evaluate trained networks and baselines.")


@eval_app.command("pose")
def eval_pose_cmd(
    ckpt: Optional[Path] = typer.Option(None, "--ckpt", "--pose", help="pose run directory or checkpoint file "
                                        "(--pose: the same, named as in predict; default: the release model)"),
    data: Optional[Path] = typer.Option(None, help="a depthface dataset with labels (e.g. a simulated-Kinect target set)"),
    biwi: Optional[Path] = typer.Option(None, help="a Biwi Kinect Head Pose copy (folder holding hpdb/)"),
    ict3dhp: Optional[Path] = typer.Option(None, help="an ICT-3DHP copy (one folder per sequence)"),
    split: Optional[str] = typer.Option(None, help="--data: train, val, test (default) or all; "
                                                   "--biwi: group1 (default), group2 or all; --ict3dhp: all"),
    gt_crop: bool = typer.Option(False, help="real data: crop around the ground-truth head centre instead of the "
                                             "automatic head localisation (POSEidon's protocol)"),
    first_frame: bool = typer.Option(False, "--first-frame", help="real data: ICT-3DHP's tracking protocol: ground "
                                     "truth crop on each sequence's first frame, then the previous prediction"),
    limit: Optional[int] = typer.Option(None, help="real data: evaluate this many frames spread over the split"),
    out: Optional[Path] = typer.Option(None, help="where to write metrics.json, frames.csv and plots"),
    refine: str = typer.Option("none", help="test-time model fit after the network (beyond the paper): none "
                                            "(the paper), pose (robust ICP of the face region) or pose+shape"),
    batch_size: int = 64,
    workers: int = 0,
    device: str = "auto",
    face_model: Optional[Path] = typer.Option(None, help="face model the network was trained with"),
) -> None:
    """MAE of yaw, pitch, roll (and translation error) of a pose network on labelled frames."""
    from depthface.evaluation.pose import evaluate_pose_on_dataset, pose_checkpoint
    from depthface.evaluation.real_pose import evaluate_pose_on_real_dataset
    from depthface.train.common import pick_device

    chosen = [name for name, v in (("--data", data), ("--biwi", biwi), ("--ict3dhp", ict3dhp)) if v is not None]
    if len(chosen) != 1:
        raise DepthfaceError("give exactly one of --data, --biwi, --ict3dhp")
    dev = pick_device(device)
    ckpt, run_dir = pose_checkpoint(ckpt)
    if data is None:
        kind, root = ("biwi", biwi) if biwi is not None else ("ict3dhp", ict3dhp)
        report = evaluate_pose_on_real_dataset(ckpt, kind, root, split, gt_crop, first_frame, limit, out, run_dir,
                                               refine, dev, face_model)
    else:
        if gt_crop or first_frame or limit is not None:
            raise DepthfaceError("--gt-crop, --first-frame and --limit apply to --biwi/--ict3dhp; a depthface "
                                 "dataset has stored crops")
        report = evaluate_pose_on_dataset(ckpt, data, split or "test", out, run_dir, refine, batch_size, workers, dev,
                                          face_model)
    for line in report.lines:
        typer.echo(line)


@eval_app.command("shape")
def eval_shape_cmd(
    ckpt: Optional[Path] = typer.Option(None, help="shape run directory or checkpoint (none: the 3DMM fit alone)"),
    data: Optional[Path] = typer.Option(None, help="a depthface dataset with labels (identity, expression)"),
    facewarehouse: Optional[Path] = typer.Option(None, help="a FaceWarehouse copy (Tester_k/TrainingPose/pose_M.obj): "
                                                            "the paper's protocol"),
    pose: Optional[Path] = typer.Option(None, help="pose run: --data: the refinement's start pose; --facewarehouse: "
                                                   "required (the product path)"),
    split: Optional[str] = typer.Option(None, help="--data: train, val, test (default) or all; --facewarehouse: "
                                                   "test (default, the paper's 30 samples) or all"),
    limit: Optional[int] = typer.Option(None, help="evaluate this many samples spread over the split"),
    refine: str = typer.Option("none", help="none (the network alone) or pose+shape (also the network refined by "
                                            "the model fit; beyond the paper)"),
    out: Optional[Path] = typer.Option(None, help="where to write metrics.json, samples.csv and the pictures"),
    fw_landmarks: Optional[Path] = typer.Option(None, help="--facewarehouse: the nine landmark vertex indices "
                                                           "(default PATH/landmarks9.txt)"),
    mm_per_unit: Optional[float] = typer.Option(None, help="--facewarehouse: OBJ unit in mm (default 100, an estimate)"),
    similarity: bool = typer.Option(False, help="--facewarehouse: estimate a scale in the nine-landmark alignment "
                                                "(paper: rigid)"),
    sensor: Optional[str] = typer.Option(None, help="--facewarehouse without depth files: render through this sensor "
                                                    "(kinect_v1; default clean)"),
    device: str = "auto",
    face_model: Optional[Path] = typer.Option(None, help="face model the network was trained with"),
) -> None:
    """Shape error (per-vertex RMS and eq. 8 in the narrow face after nine-landmark alignment) of DASHapeNet,
    the network refined by the model fit, or the 3DMM fit alone."""
    from depthface.evaluation.facewarehouse_eval import evaluate_shape_on_facewarehouse
    from depthface.evaluation.shape_eval import evaluate_shape_on_dataset
    from depthface.train.common import pick_device

    if (data is None) == (facewarehouse is None):
        raise DepthfaceError("give exactly one of --data, --facewarehouse")
    dev = pick_device(device)
    if facewarehouse is not None:
        report = evaluate_shape_on_facewarehouse(ckpt, pose, facewarehouse, split or "test", limit, refine, out,
                                                 fw_landmarks, mm_per_unit, similarity, sensor, dev, face_model)
    else:
        report = evaluate_shape_on_dataset(ckpt, data, pose, split or "test", limit, refine, out, dev, face_model)
    for line in report.lines:
        typer.echo(line)
