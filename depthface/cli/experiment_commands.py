"""``depthface experiment ...``: the paper's tables on our domains (:mod:`depthface.evaluation.experiments`)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from depthface.errors import DepthfaceError

experiment_app = typer.Typer(no_args_is_help=True, help="Reproduce the paper's tables on our domains.")


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
    from depthface.evaluation.experiments import pose_table
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
    pairs = [item.partition("=") for item in items]
    bad = [a + s + b for a, s, b in pairs if not (a and s and b)]
    if bad:
        raise DepthfaceError(f"{option} takes {form}, got {bad[0]!r}")
    return [(a, b) for a, _, b in pairs]


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
    from depthface.evaluation.confidence import confidence_experiment

    table, cal = confidence_experiment(calibrate, dict(_labelled(evaluate, "--evaluate", "NAME=DATASET")), out, kind,
                                       pose, error_deg, limit)
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
    from depthface.evaluation.experiments import pose_diagnostics
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
    from depthface.evaluation.experiments import shape_table
    from depthface.facemodel import load_face_model

    parse = lambda text, kind: tuple(kind(v) for v in text.split(",") if v.strip())  # noqa: E731
    shape_table(out, load_face_model(), target_frames, source_multiple, epochs, lr_step_epochs, preset,
                parse(lambda1s, float), parse(amounts, int), seed=seed, workers=workers, device=device)
    typer.echo(f"wrote {out / 'table.md'}")
