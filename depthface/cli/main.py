"""The ``depthface`` command. Every command turns :class:`DepthfaceError` into one line on stderr
(``error: ...``) and exit status 2; no tracebacks for bad input.

This module holds the top-level commands (``synth``, ``predict``, ``track``, ``export``, ``pack-release``,
``demo``); the groups live in ``data_commands``, ``train_commands``, ``eval_commands`` and
``experiment_commands``. Commands parse options, call one library function and print what it returns."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from depthface.cli.data_commands import data_app
from depthface.cli.eval_commands import eval_app
from depthface.cli.experiment_commands import experiment_app
from depthface.cli.train_commands import train_app
from depthface.errors import DepthfaceError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="3D face shape and head pose from a single depth image.")
app.add_typer(data_app, name="data")
app.add_typer(train_app, name="train")
app.add_typer(eval_app, name="eval")
app.add_typer(experiment_app, name="experiment")

_REFINE_HELP = ("test-time model fit after the networks (beyond the paper): pose+shape (default: pose, identity and "
                "expression, about 30 ms a frame; docs/models.md), none (the paper: the networks alone) or pose "
                "(robust ICP of the network's face)")


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
    refine: str = typer.Option("pose+shape", help=_REFINE_HELP),
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
    refine: str = typer.Option("pose+shape", help=_REFINE_HELP),
    face_model: Optional[Path] = None,
) -> None:
    """Follow a head through a depth sequence: the previous pose sets the next crop; track.csv over time."""
    from depthface.inference import Reconstructor
    from depthface.inference.reconstructor import set_inference_threads
    from depthface.inference.tracking import TrackerConfig, open_sequence, track_sequence

    try:
        set_inference_threads(threads)
    except ValueError:
        raise DepthfaceError(f"--threads must be a number or auto, got {threads!r}") from None

    cfg = TrackerConfig(filter=filter, min_cutoff=min_cutoff, beta=beta, alpha=alpha, cv_beta=cv_beta,
                        track=not no_tracking)
    frames = open_sequence(inputs, intrinsics, depth_scale, fps, camera, max_frames)
    rec = Reconstructor.from_checkpoints(pose, shape, face_model, device=device, backend=backend, refine=refine)
    typer.echo(track_sequence(rec, frames, cfg, out, video, video_every=video_every).line())


@app.command()
def demo(out: Path = typer.Option(Path("runs/demo"), help="output directory"),
         face_model: Optional[Path] = typer.Option(None, help="face model file")) -> None:
    """The main job on the built-in default: the whole pipeline on small synthetic data."""
    from depthface.evaluation.demo import run_demo

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
