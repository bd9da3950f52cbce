"""``depthface data ...``: inspect, verify, merge, export and import datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from depthface.errors import DepthfaceError

data_app = typer.Typer(no_args_is_help=True, help="Inspect, verify, merge and export datasets.")


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
    from depthface.synth.export import export_synthetic

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
    from depthface.synth.real_import import import_real
    from depthface.data.splits import REAL_SPLITS

    if (biwi is None) == (ict3dhp is None):
        raise DepthfaceError("give exactly one of --biwi, --ict3dhp")
    kind, root = ("biwi", biwi) if biwi is not None else ("ict3dhp", ict3dhp)
    counts = import_real(kind, root, out, split or REAL_SPLITS[kind][0], part, gt_crop, chunk_size)
    typer.echo(f"wrote {out}: {counts['cropped']} of {counts['frames']} frames cropped "
               f"({counts['no_head']} without a head found, {counts['unreadable']} unreadable)")
