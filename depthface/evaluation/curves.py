"""Learning curves: accuracy of a run's per-epoch weights (``train ... --keep-epochs``) on labelled sets.

Each epoch's weights are evaluated the way ``depthface eval pose|shape --data`` evaluates a run (the
stored crops, eval mode), so a row of the curve and an ``eval`` of the same weights give the same numbers.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from depthface.errors import DepthfaceError  # noqa: E402
from depthface.facemodel import MorphableModel  # noqa: E402
from depthface.synth.datasets import SourceDataset  # noqa: E402


def epoch_checkpoints(run: str | Path) -> list[tuple[int, Path]]:
    """``[(epoch, path), ...]`` of ``run/epochs/epoch_XXX.pt``, in epoch order."""
    folder = Path(run) / "epochs"
    found = sorted((int(m.group(1)), p) for p in folder.glob("epoch_*.pt") if (m := re.fullmatch(r"epoch_(\d+)\.pt", p.name)))
    if not found:
        raise DepthfaceError("no per-epoch weights (train with --keep-epochs)", folder)
    return found


def learning_curve(run: str | Path, datasets: dict[str, str | Path], kind: str = "pose",
                   model: MorphableModel | None = None, split: str | None = None, device: str = "cpu",
                   batch_size: int = 64) -> list[dict]:
    """One row per (epoch, dataset): images seen so far and the ``eval`` summary of that epoch's weights.

    Args:
        run: a run directory trained with ``--keep-epochs``.
        datasets: ``{label: dataset directory}`` of labelled sets (e.g. clean, simulated Kinect, held-out sensor).
        kind: ``"pose"`` (MAE, degrees) or ``"shape"`` (eq. 8 / RMS, mm; needs ``model``).
        split: ``None`` for every frame of each set (use sets of identities the run never saw), or a split name.
    """
    from depthface.evaluation.pose import pose_errors, predict_pose_dataset, summarize
    from depthface.evaluation.shape import evaluate_shape_dataset, summarize_shape
    from depthface.train.common import load_checkpoint
    from depthface.train.pose import load_pose_net
    from depthface.train.shape import load_shape_net

    if kind == "shape" and model is None:
        raise DepthfaceError("a shape learning curve needs the face model")
    sets = {label: SourceDataset(root, split) for label, root in datasets.items()}
    rows: list[dict] = []
    for epoch, path in epoch_checkpoints(run):
        history = load_checkpoint(path)["history"]
        seen = int(sum(h["images_per_s"] * h["seconds"] for h in history[:epoch]))
        for label, ds in sets.items():
            if kind == "pose":
                net, _ = load_pose_net(path, device)
                p = predict_pose_dataset(net, ds, batch_size, 0, device, progress=False)
                s = summarize(pose_errors(p["R_pred"], p["t_pred"], p["R_true"], p["t_true"]))
            else:
                net, _ = load_shape_net(path, device)
                errors, _ = evaluate_shape_dataset(net, model, ds, batch_size, device, progress=False)
                s = summarize_shape(errors)
            rows.append({"epoch": epoch, "images_seen": seen, "dataset": label, **s})
    return rows


def plot_learning_curve(path: str | Path, rows: list[dict], metric: str, ylabel: str) -> Path:
    """``metric`` against images seen, one line per dataset label, log-x."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for label in dict.fromkeys(r["dataset"] for r in rows):
        pts = [(r["images_seen"], r[metric]) for r in rows if r["dataset"] == label]
        ax.plot(*zip(*pts), marker="o", label=label)
    ax.set_xscale("log")
    ax.set_xlabel("training images seen")
    ax.set_ylabel(ylabel)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def write_learning_curve(out: str | Path, rows: list[dict], kind: str) -> list[Path]:
    """``curve.json`` and ``curve.png`` in ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "curve.json").write_text(json.dumps(rows, indent=1) + "\n")
    metric, label = ("mae", "pose MAE (deg)") if kind == "pose" else ("rms_mm", "per-vertex RMS (mm)")
    return [out / "curve.json", plot_learning_curve(out / "curve.png", rows, metric, label)]
