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


@app.command()
def synth(
    profile: str = typer.Option("syndata2", help="syndata1 (FaceWarehouse-like), syndata2 (Biwi), syndata3 (ICT-3DHP)"),
    out: Path = typer.Option(..., help="dataset directory (resumed if it exists)"),
    sensor: Optional[str] = typer.Option(None, help="simulate a sensor (target domain): kinect_v1"),
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
    from depthface.synth.sensor import SensorProfile
    from depthface.synth.storage import generate, parse_shard

    prof = get_profile(profile).scaled(scale, count)
    if poses_from is not None:
        prof = replace(prof, poses=read_pose_list(poses_from))
    model = load_face_model(face_model)
    sens = SensorProfile.preset(sensor) if sensor else None
    root = generate(out, prof, seed, model, sens, shard=parse_shard(shard), workers=workers, chunk_size=chunk_size,
                    model_path=None if face_model is None else str(face_model))
    typer.echo(f"wrote {root} ({prof.n_frames} frames, {prof.n_identities} identities)")


@data_app.command("verify")
def data_verify(root: Path, no_checksums: bool = typer.Option(False, help="skip sha256 checks (faster)")) -> None:
    """Check a dataset's integrity; exit 1 and list problems when it is not intact."""
    from depthface.synth.storage import read_manifest, verify

    problems = verify(root, checksums=not no_checksums)
    if problems:
        for p in problems:
            typer.echo(p)
        typer.echo(f"{len(problems)} problem(s) in {root}")
        raise typer.Exit(1)
    m = read_manifest(root)
    typer.echo(f"ok: {root} ({m['n_frames']} frames in {m['n_chunks']} chunks)")


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


@train_app.command("pose")
def train_pose_cmd(
    out: Path = typer.Option(..., help="run directory (resumed if it holds a checkpoint)"),
    source: Optional[Path] = typer.Option(None, help="labelled synthetic dataset (stage 1)"),
    target: Optional[Path] = typer.Option(None, help="unlabelled target dataset (stage 2)"),
    stage: str = typer.Option("both", help="1 (supervised), 2 (self-supervised only) or both"),
    preset: str = typer.Option("paper", help="network size: paper, small or tiny"),
    epochs1: int = typer.Option(100, help="stage-1 epochs (paper: 100)"),
    epochs2: int = typer.Option(50, help="stage-2 epochs (paper: 50)"),
    batch_size: int = 16,
    lr: float = 1e-4,
    stage2_source_weight: float = typer.Option(0.0, help="eq. 6 weight on source batches in stage 2 (paper: 0)"),
    seed: int = 0,
    workers: int = 0,
    device: str = typer.Option("auto", help="cpu, cuda or auto"),
    face_model: Optional[Path] = None,
) -> None:
    """Train DAPoseNet: eq. 6 on synthetic frames, then eq. 7 on unlabelled target frames."""
    from depthface.facemodel import load_face_model
    from depthface.train.pose import PoseTrainConfig, train_pose

    if stage not in ("1", "2", "both"):
        raise DepthfaceError(f"--stage must be 1, 2 or both, got {stage!r}")
    cfg = PoseTrainConfig(preset=preset, epochs1=epochs1, epochs2=epochs2, batch_size=batch_size, lr=lr,
                          stage2_source_weight=stage2_source_weight, seed=seed, workers=workers)
    run = train_pose(source, target, out, cfg, load_face_model(face_model), stage=stage, device=device)
    typer.echo(f"trained pose network: {run / 'checkpoint.pt'}")


@train_app.command("shape")
def train_shape_cmd(
    out: Path = typer.Option(..., help="run directory (resumed if it holds a checkpoint)"),
    source: Path = typer.Option(..., help="labelled synthetic dataset"),
    target: Optional[Path] = typer.Option(None, help="unlabelled target dataset"),
    preset: str = typer.Option("paper", help="network size: paper, small or tiny"),
    epochs: int = 30,
    lr_step_epochs: int = 10,
    batch_size: int = 16,
    lambda1: float = 0.03,
    lambda2: float = 0.1,
    source_limit: int = typer.Option(0, help="use only this many source frames (0 = all)"),
    seed: int = 0,
    workers: int = 0,
    device: str = typer.Option("auto", help="cpu, cuda or auto"),
    face_model: Optional[Path] = None,
) -> None:
    """Train DASHapeNet with AR-GAN (eq. 1-5); lambda1 = lambda2 = 0 is the source-only ablation."""
    from depthface.facemodel import load_face_model
    from depthface.train.shape import ShapeTrainConfig, train_shape

    cfg = ShapeTrainConfig(preset=preset, epochs=epochs, lr_step_epochs=lr_step_epochs, batch_size=batch_size,
                           lambda1=lambda1, lambda2=lambda2, source_limit=source_limit, seed=seed, workers=workers)
    run = train_shape(source, target, out, cfg, load_face_model(face_model), device=device)
    typer.echo(f"trained shape network: {run / 'checkpoint.pt'}")


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
