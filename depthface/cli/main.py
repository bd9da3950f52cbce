"""The ``depthface`` command. Every command turns :class:`DepthfaceError` into one line on stderr
(``error: ...``) and exit status 2; no tracebacks for bad input."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from depthface.errors import DepthfaceError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="3D face shape and head pose from a single depth image.")
data_app = typer.Typer(no_args_is_help=True, help="Inspect, verify, merge and export datasets.")
app.add_typer(data_app, name="data")
train_app = typer.Typer(no_args_is_help=True, help="Train DAPoseNet and DASHapeNet.")
app.add_typer(train_app, name="train")
eval_app = typer.Typer(no_args_is_help=True, help="Evaluate trained networks and baselines.")
app.add_typer(eval_app, name="eval")


def _print_version(value: bool) -> None:
    if value:
        from depthface import __version__

        typer.echo(f"depthface {__version__}")
        raise typer.Exit()


@app.callback()
def _main_options(version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                               help="print the version and exit")) -> None:
    """3D face shape and head pose from a single depth image."""


@app.command()
def synth(
    profile: str = typer.Option("syndata2", help="syndata1 (FaceWarehouse-like), syndata2 (Biwi), syndata3 (ICT-3DHP)"),
    out: Path = typer.Option(..., help="dataset directory (resumed if it exists)"),
    sensor: Optional[str] = typer.Option(None, help="simulate a sensor (target domain): kinect_v1, ideal, "
                                         "tof_kinect_v2 (held-out ToF domain, Kinect v2 camera), kinect_v1_random "
                                         "(domain randomisation, beyond the paper)"),
    count: Optional[int] = typer.Option(None, help="number of frames (a small version)"),
    scale: Optional[float] = typer.Option(None, help="scale identities and frames of the profile"),
    seed: int = typer.Option(0, help="dataset seed"),
    workers: int = typer.Option(1, help="processes"),
    shard: str = typer.Option("0/1", help="make shard i of N (i/N); merge with `depthface data merge`"),
    poses_from: Optional[Path] = typer.Option(None, help="CSV of real poses (yaw,pitch,roll deg) to sample from"),
    face_model: Optional[Path] = typer.Option(None, help="face model file (default: see docs)"),
    chunk_size: int = typer.Option(256, help="samples per chunk"),
) -> None:
    """Synthesise a labelled depth dataset (clean source, or simulated-sensor target)."""
    from dataclasses import replace

    from depthface.facemodel import load_face_model
    from depthface.synth.profiles import get_profile, read_pose_list
    from depthface.synth.sensor import SimulationProfile
    from depthface.synth.storage import generate, parse_shard

    prof = get_profile(profile).scaled(scale, count)
    if poses_from is not None:
        prof = replace(prof, poses=read_pose_list(poses_from))
    model = load_face_model(face_model)
    sens = SimulationProfile.preset(sensor) if sensor else None
    root = generate(out, prof, seed, model, sens, shard=parse_shard(shard), workers=workers, chunk_size=chunk_size,
                    model_path=None if face_model is None else str(face_model))
    typer.echo(f"wrote {root} ({prof.n_frames} frames, {prof.n_identities} identities)")


@data_app.command("verify")
def data_verify(root: Path, no_checksums: bool = typer.Option(False, help="skip sha256 checks (faster)")) -> None:
    """Check a dataset's integrity (depthface, Biwi, ICT-3DHP or FaceWarehouse: every file decoded);
    exit 1 and list problems when it is not intact."""
    from depthface.data.inspect import detect_layout, verify_real
    from depthface.synth.storage import read_manifest, verify

    try:
        kind = detect_layout(root)
    except DepthfaceError:
        kind = "synthetic"  # not a recognised layout: verify says what a depthface dataset lacks
    problems = verify(root, checksums=not no_checksums) if kind == "synthetic" else verify_real(root)
    if problems:
        for p in problems:
            typer.echo(p)
        typer.echo(f"{len(problems)} problem(s) in {root}")
        raise typer.Exit(1)
    if kind == "synthetic":
        m = read_manifest(root)
        typer.echo(f"ok: {root} ({m['n_frames']} frames in {m['n_chunks']} chunks)")
    else:
        typer.echo(f"ok: {root} ({kind}: every file decoded)")


@data_app.command("merge")
def data_merge(out: Path, shards: list[Path]) -> None:
    """Merge shard directories of one dataset into OUT."""
    from depthface.synth.storage import merge

    merge(out, [str(s) for s in shards])
    typer.echo(f"merged {len(shards)} shard(s) into {out}")


@data_app.command("show")
def data_show(root: Path, n: int = typer.Option(16, help="samples to show"), out: Optional[Path] = None,
              split: Optional[str] = None, seed: int = 0) -> None:
    """Write a PNG contact sheet of a dataset's crops with projected landmarks."""
    from depthface.evaluation.report import dataset_contact_sheet

    path = dataset_contact_sheet(root, out or Path(root) / "contact_sheet.png", n=n, split=split, seed=seed)
    typer.echo(f"wrote {path}")


@data_app.command("inspect")
def data_inspect(path: Path, png: Optional[Path] = typer.Option(
        None, help="pose histogram PNG (default: <folder name>_poses.png in --out)"),
        out: Optional[Path] = typer.Option(None, help="folder for the PNG (default: next to the dataset folder)")
        ) -> None:
    """Counts, cameras and pose ranges of a dataset (Biwi, ICT-3DHP, FaceWarehouse or synthetic)."""
    from depthface.data.inspect import format_summary, inspect_dataset, plot_pose_histogram

    summary = inspect_dataset(path)
    typer.echo(format_summary(summary))
    root = Path(path).resolve()
    written = plot_pose_histogram(summary, png or Path(out or root.parent) / f"{root.name}_poses.png")
    if written is not None:
        typer.echo(f"wrote {written}")


@data_app.command("export")
def data_export(
    src: Path = typer.Argument(..., help="synthetic dataset directory (manifest.json)"),
    fmt: str = typer.Option(..., "--format", help="biwi or ict3dhp"),
    out: Path = typer.Option(..., help="output folder (must not exist or be empty)"),
    n: Optional[int] = typer.Option(None, help="number of samples, spread over the dataset (default all)"),
    split: Optional[str] = typer.Option(None, help="only identities of this split: train, val or test"),
    sensor_window: bool = typer.Option(False, help="simulate the sensor only in the 400 mm window around the "
                                                   "head that the stored crops were cut from (default: full frame)"),
    face_model: Optional[Path] = typer.Option(None, help="face model the dataset was made with"),
) -> None:
    """Re-render samples of a synthetic dataset as full frames in the Biwi or ICT-3DHP layout."""
    from depthface.cli.export_data import export_synthetic

    summary = export_synthetic(src, fmt, out, n=n, split=split, sensor_window=sensor_window,
                               face_model=face_model)
    typer.echo(f"wrote {summary.n_frames} frames in {len(summary.sequences)} sequence(s) as {summary.format} "
               f"to {summary.root}")


@data_app.command("import")
def data_import(
    out: Path = typer.Option(..., help="depthface dataset to write (resumed if it exists)"),
    biwi: Optional[Path] = typer.Option(None, help="a Biwi Kinect Head Pose copy (folder holding hpdb/)"),
    ict3dhp: Optional[Path] = typer.Option(None, help="an ICT-3DHP copy (one folder per sequence)"),
    split: Optional[str] = typer.Option(None, help="--biwi: group1 (default), group2 or all; --ict3dhp: all"),
    part: str = typer.Option("train", help="train or test part of the split"),
    gt_crop: bool = typer.Option(False, help="crop around the ground-truth head centre (default: localise)"),
    chunk_size: int = typer.Option(256, help="frames per chunk"),
) -> None:
    """Preprocess a real dataset's frames once (localise, crop) into a depthface dataset for train --target."""
    from depthface.cli.import_data import import_real
    from depthface.inference.evaluate import REAL_SPLITS

    if (biwi is None) == (ict3dhp is None):
        raise DepthfaceError("give exactly one of --biwi, --ict3dhp")
    kind, root = ("biwi", biwi) if biwi is not None else ("ict3dhp", ict3dhp)
    counts = import_real(kind, root, out, split or REAL_SPLITS[kind][0], part, gt_crop, chunk_size)
    typer.echo(f"wrote {out}: {counts['cropped']} of {counts['frames']} frames cropped "
               f"({counts['no_head']} without a head found, {counts['unreadable']} unreadable)")


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
    shape_output: str = typer.Option("vertices", help="R's output: vertices (paper: 3V displacements) or "
                                                      "coefficients (the face model's, through its basis)"),
    keep_epochs: bool = typer.Option(False, help="keep every epoch's weights in RUN/epochs/ (learning curves)"),
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
                           lambda1=lambda1, lambda2=lambda2, source_limit=source_limit, shape_output=shape_output,
                           keep_epochs=keep_epochs, seed=seed, workers=workers)
    run = train_shape(source[0] if len(source) == 1 else list(source), target, out, cfg, load_face_model(face_model), device=device)
    typer.echo(f"trained shape network: {run / 'checkpoint.pt'}")


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
    import json

    from depthface.evaluation.pose import plot_pose_errors, pose_errors, predict_pose_dataset, summarize, write_pose_csv
    from depthface.train.common import pick_device
    from depthface.train.pose import load_pose_net

    chosen = [name for name, v in (("--data", data), ("--biwi", biwi), ("--ict3dhp", ict3dhp)) if v is not None]
    if len(chosen) != 1:
        raise DepthfaceError("give exactly one of --data, --biwi, --ict3dhp")
    dev = pick_device(device)
    if ckpt is None:
        from depthface.models.release import release_checkpoint

        ckpt = release_checkpoint("pose")
        run_dir = Path("runs") / "release"
    else:
        run_dir = Path(ckpt if Path(ckpt).is_dir() else Path(ckpt).parent)
    if data is None:
        import numpy as np

        from depthface.inference import Reconstructor
        from depthface.inference.evaluate import REAL_SPLITS, evaluate_real_pose, open_real_split, write_real_pose_csv

        kind, root = ("biwi", biwi) if biwi is not None else ("ict3dhp", ict3dhp)
        split = split or REAL_SPLITS[kind][0]
        frames, indices = open_real_split(kind, root, split)
        if limit is not None:
            if limit < 1:
                raise DepthfaceError(f"--limit must be at least 1, got {limit}")
            indices = indices[np.unique(np.linspace(0, len(indices) - 1, min(limit, len(indices))).astype(int))]
        rec = Reconstructor.from_checkpoints(ckpt, None, face_model, dev, refine=refine)
        ev = evaluate_real_pose(rec, frames, indices, gt_crop=gt_crop, first_frame=first_frame)
        s = ev.summary()
        out = out or run_dir / (f"eval_{kind}_{split}{'_gtcrop' if gt_crop else '_firstframe' if first_frame else ''}"
                                f"{_refine_suffix(refine)}")
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps(s, indent=1) + "\n")
        write_real_pose_csv(out / "frames.csv", ev)
        plot_pose_errors(out / "error_vs_angle.png", {"network": ev.errors()})
        left_out = len(ev.status) - s["frames"]
        typer.echo(f"crops: {ev.crop}; {s['frames']} of {len(ev.status)} frames of {kind} {split} evaluated"
                   + (f" ({ev.counts['no head']} without a head found, {ev.counts['unreadable']} unreadable: "
                      f"see frames.csv)" if left_out else ""))
        typer.echo(f"MAE {s['mae']:.2f} deg (yaw {s['yaw']:.2f}, pitch {s['pitch']:.2f}, roll {s['roll']:.2f}); "
                   f"translation {s['translation_mm']:.1f} mm (to the dataset's own head centre); "
                   f"{1000 * s['seconds_per_frame']:.1f} ms/frame; wrote {out}")
        return
    from depthface.synth.datasets import SourceDataset

    split = split or "test"
    if gt_crop or first_frame or limit is not None:
        raise DepthfaceError("--gt-crop, --first-frame and --limit apply to --biwi/--ict3dhp; a depthface dataset "
                             "has stored crops")
    net, _ = load_pose_net(ckpt, dev)
    ds = SourceDataset(data, None if split == "all" else split)
    pred = predict_pose_dataset(net, ds, batch_size, workers, dev)
    if refine != "none":
        import numpy as np

        from depthface.evaluation.refine import refine_dataset_predictions
        from depthface.facemodel import load_face_model

        pred["R_pred"], pred["t_pred"], _, fit_s = refine_dataset_predictions(
            ds, np.arange(len(ds)), pred["R_pred"], pred["t_pred"], load_face_model(face_model), refine)
    e = pose_errors(pred["R_pred"], pred["t_pred"], pred["R_true"], pred["t_true"])
    s = summarize(e)
    s["refine"] = refine
    s["network_ms_per_frame"] = 1e3 * float(pred["seconds_per_frame"])
    if refine != "none":
        s["refine_ms_per_frame"] = 1e3 * fit_s
    out = out or run_dir / f"eval_{Path(data).name}_{split}{_refine_suffix(refine)}"
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(s, indent=1) + "\n")
    write_pose_csv(out / "frames.csv", pred["index"], e)
    plot_pose_errors(out / "error_vs_angle.png", {"network": e})
    typer.echo(f"crops: the dataset's stored crop centres (ground truth + jitter); {s['frames']} frames"
               + (f"; refinement {refine}: {s['refine_ms_per_frame']:.1f} ms/frame" if refine != "none" else ""))
    typer.echo(f"MAE {s['mae']:.2f} deg (yaw {s['yaw']:.2f}, pitch {s['pitch']:.2f}, roll {s['roll']:.2f}); "
               f"translation {s['translation_mm']:.1f} mm; wrote {out}")


def _refine_suffix(refine: str) -> str:
    return "" if refine == "none" else "_refine_" + refine.replace("+", "_")


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
    from depthface.evaluation.shape_eval import evaluate_shape, write_shape_report
    from depthface.facemodel import load_face_model
    from depthface.train.common import pick_device
    from depthface.train.pose import load_pose_net
    from depthface.train.shape import load_shape_net

    if (data is None) == (facewarehouse is None):
        raise DepthfaceError("give exactly one of --data, --facewarehouse")
    dev = pick_device(device)
    model = load_face_model(face_model)
    base = Path(ckpt if ckpt is None or Path(ckpt).is_dir() else Path(ckpt).parent) if ckpt is not None else None
    if facewarehouse is not None:
        from depthface.evaluation.facewarehouse_eval import evaluate_facewarehouse
        from depthface.inference import Reconstructor
        from depthface.synth.sensor import SensorProfile

        if ckpt is None or pose is None:
            raise DepthfaceError("--facewarehouse runs the product path: give --ckpt (shape) and --pose")
        rec = Reconstructor.from_checkpoints(pose, ckpt, face_model, dev, refine=refine)

        def predict_face(depth, k, centre):
            res = rec.predict(depth, k, centre=centre)
            return res.vertices_head if res.rotation is not None else None

        split = split or "test"
        ev = evaluate_facewarehouse(facewarehouse, model, predict_face, fw_landmarks, split, limit, mm_per_unit,
                                    similarity, SensorProfile.preset(sensor) if sensor else None)
        out = out or base / f"eval_shape_facewarehouse_{split}{_refine_suffix(refine)}"
        s = write_shape_report(out, ev, model, extra={"protocol": "FaceWarehouse", "refine": refine,
                                                      "alignment": "similarity" if similarity else "rigid",
                                                      "frames_without_face": ev.seconds_per_frame["no face"]})
        typer.echo(f"{len(ev.index)} FaceWarehouse samples: eq. 8 {s['eq8_mean_mm2']:.3f} mm² (var {s['eq8_var']:.4f}), "
                   f"mean distance {s['mean_distance_mm']:.2f} mm; mean face {s['methods']['mean face']['eq8_mean_mm2']:.3f} "
                   f"mm²; wrote {out}")
        return
    from depthface.synth.datasets import SourceDataset

    split = split or "test"
    ds = SourceDataset(data, None if split == "all" else split)
    net = load_shape_net(ckpt, dev)[0] if ckpt is not None else None
    pose_net = load_pose_net(pose, dev)[0] if pose is not None else None
    ev = evaluate_shape(ds, model, net, pose_net, refine if net is not None else "none", limit, dev)
    out = out or (base or Path("runs")) / f"eval_shape_{Path(data).name}_{split}{_refine_suffix(refine)}"
    s = write_shape_report(out, ev, model, extra={"refine": refine, "data": str(data), "split": split})
    lines = [f"{name}: RMS {m['rms_mm']:.2f} mm, eq. 8 {m['eq8_mean_mm2']:.3f} mm², {m['ms_per_frame']:.1f} ms/frame"
             for name, m in s["methods"].items()]
    typer.echo(f"{len(ev.index)} samples of {data} ({split}); narrow face after nine-landmark alignment")
    for line in lines:
        typer.echo("  " + line)
    typer.echo(f"wrote {out}")


experiment_app = typer.Typer(no_args_is_help=True, help="Reproduce the paper's tables on our domains.")
app.add_typer(experiment_app, name="experiment")


@experiment_app.command("pose-table")
def experiment_pose_table(
    out: Path = typer.Option(Path("runs/pose_table"), help="output directory (every step resumes)"),
    source_frames: int = 4000,
    target_frames: int = 2000,
    epochs1: int = 10,
    epochs2: int = 5,
    preset: str = "small",
    seed: int = 0,
    workers: int = 1,
    device: str = "auto",
    icp_frames: int = 300,
    stage2_source_weight: float = typer.Option(0.0, help="eq. 6 on source batches during stage 2 (paper: 0)"),
    visible_landmarks_only: bool = typer.Option(False, help="eq. 7 on landmarks facing the camera only (paper: all)"),
    stage2_anchor_weight: float = typer.Option(0.0, help="Model-3's stage 2: eq. 6 toward the frozen stage-1 "
                                                         "network on the same target frame (paper: 0)"),
) -> None:
    """Table 5 on our domains: Model-1/2/3 and the ICP baseline on simulated-Kinect frames of unseen identities."""
    from depthface.cli.experiments import pose_table
    from depthface.facemodel import load_face_model

    pose_table(out, load_face_model(), source_frames, target_frames, epochs1, epochs2, preset, seed=seed,
               workers=workers, device=device, icp_frames=icp_frames, stage2_source_weight=stage2_source_weight,
               visible_landmarks_only=visible_landmarks_only, stage2_anchor_weight=stage2_anchor_weight)
    typer.echo(f"wrote {out / 'table.md'}")


@experiment_app.command("learning-curve")
def experiment_learning_curve(
    run: Path = typer.Option(..., help="a run trained with --keep-epochs"),
    data: list[str] = typer.Option(..., help="LABEL=DATASET, repeatable: labelled sets of unseen identities"),
    kind: str = typer.Option("pose", help="pose or shape"),
    out: Optional[Path] = typer.Option(None, help="where to write curve.json and curve.png (default RUN/curve)"),
    split: str = typer.Option("all", help="split of each set: all (default), train, val or test"),
    face_model: Optional[Path] = None,
) -> None:
    """Accuracy of every epoch's weights on labelled sets: a learning curve (JSON + PNG)."""
    from depthface.evaluation.curves import learning_curve, write_learning_curve
    from depthface.facemodel import load_face_model

    sets = dict(_labelled(data, "--data", "LABEL=DATASET"))
    if kind not in ("pose", "shape"):
        raise DepthfaceError(f"--kind must be pose or shape, got {kind!r}")
    rows = learning_curve(run, sets, kind, load_face_model(face_model) if kind == "shape" else None,
                          None if split == "all" else split)
    paths = write_learning_curve(out or run / "curve", rows, kind)
    metric = "mae" if kind == "pose" else "rms_mm"
    for r in rows:
        typer.echo(f"epoch {r['epoch']:3d}  {r['images_seen']:9d} images  {r['dataset']:>12s}  {metric} {r[metric]:.2f}")
    typer.echo(f"wrote {paths[0].parent}")


def _labelled(items: list[str], option: str, form: str) -> list[tuple[str, str]]:
    """``[(label, value), ...]`` of repeated ``LABEL=VALUE`` options, in the order given."""
    pairs = []
    for item in items:
        label, sep, value = item.partition("=")
        if not sep or not label or not value:
            raise DepthfaceError(f"{option} takes {form}, got {item!r}")
        pairs.append((label, value))
    return pairs


@experiment_app.command("ablation")
def experiment_ablation(
    run: list[str] = typer.Option(..., help="LABEL=RUN, repeatable, in table order; runs sharing a label "
                                            "are seeds of one row"),
    data: list[str] = typer.Option(..., help="NAME=DATASET, repeatable: labelled sets of unseen identities"),
    kind: str = typer.Option("pose", help="pose or shape"),
    out: Path = typer.Option(Path("runs/ablation"), help="where to write ablation.json and ablation.md"),
    split: str = typer.Option("all", help="split of each set: all (default), train, val or test"),
    face_model: Optional[Path] = None,
) -> None:
    """An ablation table: each run's final weights on labelled sets, one row per option set (mean over seeds)."""
    from depthface.evaluation.curves import ablation_table, write_ablation
    from depthface.facemodel import load_face_model

    sets = dict(_labelled(data, "--data", "NAME=DATASET"))
    rows = ablation_table(_labelled(run, "--run", "LABEL=RUN"), sets, kind,
                          load_face_model(face_model) if kind == "shape" else None, None if split == "all" else split)
    paths = write_ablation(out, rows, list(sets), kind)
    typer.echo(paths[1].read_text().rstrip())
    typer.echo(f"wrote {out}")


@experiment_app.command("confidence")
def experiment_confidence(
    calibrate: Path = typer.Option(..., help="frames with true poses to fit the calibration on (Biwi or "
                                             "ICT-3DHP layout, e.g. `data export --format biwi`)"),
    evaluate: list[str] = typer.Option([], help="NAME=DATASET, repeatable: sets to judge it on (another sensor)"),
    kind: str = typer.Option("biwi", help="layout of the sets: biwi or ict3dhp"),
    pose: Optional[Path] = typer.Option(None, help="pose checkpoint (default: the release network)"),
    out: Path = typer.Option(Path("runs/confidence"), help="confidence.json, report.md, metrics.json, confidence.png"),
    error_deg: float = typer.Option(10.0, help="the error the confidence predicts (geodesic, degrees)"),
    limit: int = typer.Option(0, help="use at most this many frames of each set (0 = all)"),
) -> None:
    """Fit the pose confidence's calibration on one set and judge it on others (reliability, flag precision/recall)."""
    import json

    from depthface.evaluation.confidence import (collect_confidence_frames, confidence_markdown, judge_confidence,
                                                 plot_confidence)
    from depthface.inference.confidence import fit_confidence_calibration
    from depthface.inference.evaluate import open_real_split
    from depthface.inference.reconstructor import Reconstructor

    from depthface.facemodel import load_face_model
    from depthface.models.release import release_checkpoint
    from depthface.train.pose import load_pose_net

    rec = Reconstructor(load_pose_net(pose or release_checkpoint("pose"))[0], None, load_face_model(),
                        face_check=False, confidence=None)
    sets = {"calibration (in-sample)": str(calibrate), **dict(_labelled(evaluate, "--evaluate", "NAME=DATASET"))}
    collected = {}
    for name, root in sets.items():
        frames, idx = open_real_split(kind, root, "all")
        collected[name] = collect_confidence_frames(rec, frames, idx[:limit] if limit else idx)
    feats, errors = collected["calibration (in-sample)"]
    cal = fit_confidence_calibration(feats, errors, error_deg, provenance={
        "pose": str(pose) if pose else "release", "calibrated_on": str(calibrate), "frames": len(errors)})
    out.mkdir(parents=True, exist_ok=True)
    cal.save(out / "confidence.json")
    judged = {name: judge_confidence(cal, f, e) for name, (f, e) in collected.items()}
    (out / "metrics.json").write_text(json.dumps(
        {n: {k: v for k, v in j.items() if k not in ("confidence", "errors_deg")} for n, j in judged.items()},
        indent=1) + "\n")
    plot_confidence(out / "confidence.png", judged, cal.threshold, error_deg)
    table = confidence_markdown(judged)
    (out / "report.md").write_text(table)
    typer.echo(table.rstrip())
    typer.echo(f"flag threshold {cal.threshold:.3f}; wrote {out}")


@experiment_app.command("pose-diagnostics")
def experiment_pose_diagnostics(
    run: Path = typer.Option(..., help="a finished pose-table output directory"),
    frames: int = typer.Option(300, help="new target scenes per simulator variant"),
    basin_frames: int = typer.Option(120, help="frames for the direct eq. 7 minimisation"),
    workers: int = 1,
) -> None:
    """Domain gap by simulator component (hair, background, noise) and eq. 7 minimised per frame directly."""
    from depthface.cli.experiments import pose_diagnostics
    from depthface.facemodel import load_face_model

    pose_diagnostics(run, load_face_model(), frames, workers=workers, basin_frames=basin_frames)
    typer.echo(f"wrote {run / 'diagnostics.md'}")


@experiment_app.command("shape-table")
def experiment_shape_table(
    out: Path = typer.Option(Path("runs/shape_table"), help="output directory (every step resumes)"),
    target_frames: int = 1500,
    source_multiple: int = typer.Option(3, help="synthetic training frames as a multiple of the target's"),
    epochs: int = 6,
    lr_step_epochs: int = 2,
    preset: str = "small",
    lambda1s: str = typer.Option("0.003,0.3", help="extra lambda1 values of the sweep (0.03 is the main run)"),
    amounts: str = typer.Option("1,2", help="extra synthetic amounts (multiples of the target's)"),
    seed: int = 0,
    workers: int = 1,
    device: str = "auto",
) -> None:
    """DASHapeNet: source-only vs AR-GAN, synthetic amount (Fig. 7), lambda1 sweep (Fig. 9), 3DMM-fit baseline."""
    from depthface.cli.experiments import shape_table
    from depthface.facemodel import load_face_model

    parse = lambda text, kind: tuple(kind(v) for v in text.split(",") if v.strip())  # noqa: E731
    shape_table(out, load_face_model(), target_frames, source_multiple, epochs, lr_step_epochs, preset,
                parse(lambda1s, float), parse(amounts, int), seed=seed, workers=workers, device=device)
    typer.echo(f"wrote {out / 'table.md'}")


@app.command("export")
def export_cmd(
    pose: Optional[Path] = typer.Option(None, help="pose run directory / checkpoint"),
    shape: Optional[Path] = typer.Option(None, help="shape run directory / checkpoint"),
    out: Path = typer.Option(Path("runs/onnx"), help="output directory (pose.onnx, shape.onnx)"),
    format: str = typer.Option("onnx", help="onnx"),
) -> None:
    """Export trained networks for ONNX Runtime (outputs verified equal to PyTorch within 1e-4 relative)."""
    from depthface.models.export import export_onnx
    from depthface.train.pose import load_pose_net
    from depthface.train.shape import load_shape_net

    if format != "onnx":
        raise DepthfaceError(f"unknown export format {format!r}; only onnx")
    if pose is None and shape is None:
        raise DepthfaceError("nothing to export: pass --pose and/or --shape")
    out.mkdir(parents=True, exist_ok=True)
    if pose is not None:
        typer.echo(f"wrote {export_onnx(load_pose_net(pose)[0], out / 'pose.onnx', 'pose')}")
    if shape is not None:
        typer.echo(f"wrote {export_onnx(load_shape_net(shape)[0], out / 'shape.onnx', 'shape')}")


@app.command("pack-release")
def pack_release(
    pose: Optional[Path] = typer.Option(None, help="trained pose run / checkpoint"),
    shape: Optional[Path] = typer.Option(None, help="trained shape run / checkpoint"),
    out: Optional[Path] = typer.Option(None, help="folder for pose.pt / shape.pt (default: the package's weights "
                                                  "folder, i.e. replace the release models)"),
    full_precision: bool = typer.Option(False, help="keep float32 (default: float16)"),
) -> None:
    """Write compact release checkpoints (inference modules only, float16) of trained networks."""
    from depthface.models.release import RELEASE_FILES, WEIGHTS_DIR
    from depthface.train.common import write_release_checkpoint

    if pose is None and shape is None:
        raise DepthfaceError("give --pose and/or --shape")
    folder = out or WEIGHTS_DIR
    for kind, ckpt in (("pose", pose), ("shape", shape)):
        if ckpt is not None:
            path = write_release_checkpoint(ckpt, kind, folder / RELEASE_FILES[kind], half=not full_precision)
            typer.echo(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")


@app.command()
def predict(
    inputs: list[Path] = typer.Argument(..., help="depth files (.png 16-bit mm, .npy, .npz, Biwi .bin) or folders"),
    pose: Optional[Path] = typer.Option(None, help="pose run directory / checkpoint (or .onnx with --backend onnx); "
                                                  "default: the release models that ship with depthface (pose and "
                                                  "shape, docs/models.md)"),
    shape: Optional[Path] = typer.Option(None, help="shape run directory / checkpoint (or .onnx)"),
    out: Path = typer.Option(Path("runs/predict"), help="output directory"),
    intrinsics: str = typer.Option("kinect_v1", help="a preset (kinect_v1, biwi, ict3dhp), 'fx,fy,cx,cy', or a "
                                   "Biwi depth.cal file; files in a Biwi/ICT-3DHP/depthface layout use their own; a "
                                   "preset or depth.cal is rescaled to frames of another size and the same aspect "
                                   "ratio (another aspect ratio: the frame is refused)"),
    depth_scale: float = typer.Option(1.0, help="multiply depth by this to get mm (0.1 for 100 um units)"),
    backend: str = typer.Option("torch", help="torch or onnx"),
    face_model: Optional[Path] = None,
    device: str = "cpu",
    meshes: bool = typer.Option(True, help="write .ply meshes (camera and head frame)"),
    overlays: bool = typer.Option(True, help="write overlay PNGs"),
    face_check: bool = typer.Option(True, help="geometric face check: spheres, ellipsoids and blobs get 'no face' "
                                               "(not in the paper; --no-face-check: confidence threshold only)"),
    refine: str = typer.Option("none", help="test-time model fit after the networks (beyond the paper): none "
                                            "(the paper), pose (robust ICP of the face region) or pose+shape"),
) -> None:
    """Head pose and face mesh for each depth frame: poses.csv/json, meshes, landmarks, overlays.

    Unreadable files are named, counted and skipped; the exit status is 1 when no frame could be read."""
    from tqdm import tqdm

    from depthface.inference import Reconstructor
    from depthface.inference.run import check_output_folder, parse_camera, run_predict

    camera = parse_camera(intrinsics)
    check_output_folder(out)
    rec = Reconstructor.from_checkpoints(pose, shape, face_model, device=device, backend=backend,
                                         face_check=face_check, refine=refine)
    summary = run_predict(rec, inputs, out, camera, depth_scale, meshes, overlays,
                          progress=lambda rows, n: tqdm(rows, total=n, desc="predict", unit="frame"),
                          echo=tqdm.write)
    typer.echo(summary.line())
    if summary.interrupted:
        typer.echo("interrupted: poses.csv holds the frames done so far; run the same command again to redo the "
                   "rest", err=True)
        raise typer.Exit(130)
    if summary.n_frames and summary.count("unreadable") == summary.n_frames:
        typer.echo(f"error: none of the {summary.n_frames} frame(s) could be read (see {out / 'poses.csv'})", err=True)
        raise typer.Exit(1)


@app.command()
def track(
    inputs: Optional[list[Path]] = typer.Argument(None, help="depth files or folders (one sequence, in name order), "
                                                            "or a RealSense recording (.bag/.db3)"),
    pose: Optional[Path] = typer.Option(None, help="pose run directory / checkpoint (or .onnx with --backend onnx); "
                                                  "default: the release models that ship with depthface (pose and "
                                                  "shape, docs/models.md)"),
    shape: Optional[Path] = typer.Option(None, help="shape run directory / checkpoint (or .onnx)"),
    out: Path = typer.Option(Path("runs/track"), help="output directory (track.csv)"),
    intrinsics: str = typer.Option("kinect_v1", help="files: a preset (docs/tracking.md), 'fx,fy,cx,cy' or a Biwi "
                                                     "depth.cal; recordings and cameras carry their own"),
    depth_scale: float = typer.Option(1.0, help="files: multiply depth by this to get mm"),
    fps: float = typer.Option(30.0, help="files: frame rate (sets the time stamps the filters use)"),
    filter: str = typer.Option("none", "--filter", help="none (raw per-frame poses, as the paper), one-euro or "
                                                        "constant-velocity"),
    min_cutoff: float = typer.Option(1.0, help="one-euro: cut-off (Hz) at rest (lower: smoother)"),
    beta: float = typer.Option(0.05, help="one-euro: cut-off increase with speed"),
    alpha: float = typer.Option(0.5, help="constant-velocity: position gain"),
    cv_beta: float = typer.Option(0.1, help="constant-velocity: velocity gain"),
    no_tracking: bool = typer.Option(False, "--no-tracking", help="localise every frame (as predict does)"),
    video: Optional[Path] = typer.Option(None, help="write the overlays as a .gif (or .mp4 with imageio-ffmpeg)"),
    video_every: int = typer.Option(1, help="every n-th frame into the video"),
    camera: Optional[str] = typer.Option(None, help="realsense: live frames from an attached camera"),
    max_frames: Optional[int] = typer.Option(None, help="stop after this many frames (live camera: 300)"),
    backend: str = typer.Option("torch", help="torch or onnx"),
    device: str = "cpu",
    threads: str = typer.Option("auto", help="torch threads: a number, or auto (all cores; one on a busy machine)"),
    face_model: Optional[Path] = None,
) -> None:
    """Follow a head through a depth sequence: the previous pose sets the next crop; track.csv over time."""
    import torch

    from depthface.inference import Reconstructor
    from depthface.inference.reconstructor import inference_threads
    from depthface.inference.tracking import TrackerConfig, open_sequence, track_sequence

    try:
        torch.set_num_threads(inference_threads(threads))
    except ValueError:
        raise DepthfaceError(f"--threads must be a number or auto, got {threads!r}") from None

    cfg = TrackerConfig(filter=filter, min_cutoff=min_cutoff, beta=beta, alpha=alpha, cv_beta=cv_beta,
                        track=not no_tracking)
    frames = open_sequence(inputs, intrinsics, depth_scale, fps, camera, max_frames)
    rec = Reconstructor.from_checkpoints(pose, shape, face_model, device=device, backend=backend)
    s = track_sequence(rec, frames, cfg, out, video, video_every=video_every)
    n = sum(s.counts.values())
    typer.echo(f"{n} frame(s) in {s.seconds:.1f} s ({n / max(s.seconds, 1e-9):.1f} frames/s): "
               + ", ".join(f"{v} {k}" for k, v in s.counts.items() if v) + f"; wrote {s.csv}"
               + (f" and {s.video}" if s.video else ""))


@app.command()
def demo(out: Path = typer.Option(Path("runs/demo"), help="output directory"),
         face_model: Optional[Path] = typer.Option(None, help="face model file")) -> None:
    """The main job on the built-in default: the whole pipeline on small synthetic data."""
    from depthface.cli.demo import run_demo

    run_demo(out, face_model)


def main() -> None:
    try:
        app()
    except DepthfaceError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted: completed work is kept; run the same command again to resume", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
