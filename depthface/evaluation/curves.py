"""Learning curves and ablation tables: accuracy of trained weights on labelled sets.

* a learning curve: a run's per-epoch weights (``train ... --keep-epochs``) against images seen;
* an ablation table: several runs trained at an equal budget, one row per option set (runs that share
  a label are seeds of one row: the row gives their mean and spread).

Every checkpoint is evaluated the way ``depthface eval pose|shape --data`` evaluates a run (the stored
crops, eval mode), so a row here and an ``eval`` of the same weights give the same numbers.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import matplotlib
import numpy as np

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
    from depthface.train.common import load_checkpoint

    if kind == "shape" and model is None:
        raise DepthfaceError("a shape learning curve needs the face model")
    sets = {label: SourceDataset(root, split) for label, root in datasets.items()}
    rows: list[dict] = []
    for epoch, path in epoch_checkpoints(run):
        seen = images_seen(load_checkpoint(path)["history"][:epoch])
        for label, s in evaluate_checkpoint(path, sets, kind, model, device, batch_size).items():
            rows.append({"epoch": epoch, "images_seen": seen, "dataset": label, **s})
    return rows


def images_seen(history: list[dict]) -> int:
    """Training images seen over the epochs of a run's ``history`` (one record per epoch)."""
    return int(round(sum(h["images_per_s"] * h["seconds"] for h in history)))


def evaluate_checkpoint(path: str | Path, sets: dict[str, SourceDataset], kind: str = "pose",
                        model: MorphableModel | None = None, device: str = "cpu",
                        batch_size: int = 64) -> dict[str, dict]:
    """``{label: eval summary}`` of one checkpoint on labelled sets (as ``depthface eval ... --data``)."""
    from depthface.evaluation.pose import pose_errors, predict_pose_dataset, summarize
    from depthface.evaluation.shape import evaluate_shape_dataset, summarize_shape
    from depthface.train.pose import load_pose_net
    from depthface.train.shape import load_shape_net

    out: dict[str, dict] = {}
    if kind == "pose":
        net, _ = load_pose_net(path, device)
    else:
        if model is None:
            raise DepthfaceError("a shape evaluation needs the face model")
        net, _ = load_shape_net(path, device)
    for label, ds in sets.items():
        if kind == "pose":
            p = predict_pose_dataset(net, ds, batch_size, 0, device, progress=False)
            out[label] = summarize(pose_errors(p["R_pred"], p["t_pred"], p["R_true"], p["t_true"]))
        else:
            errors, _ = evaluate_shape_dataset(net, model, ds, batch_size, device, progress=False)
            out[label] = summarize_shape(errors)
    return out


def ablation_table(runs: list[tuple[str, str | Path]], datasets: dict[str, str | Path], kind: str = "pose",
                   model: MorphableModel | None = None, split: str | None = None, device: str = "cpu",
                   batch_size: int = 64) -> list[dict]:
    """One row per label of ``runs``: the mean (and, over seeds, min and max) metric on every set.

    Args:
        runs: ``[(label, run directory), ...]`` in table order; runs sharing a label are seeds of one row.
            Each run's final ``checkpoint.pt`` is evaluated; its ``history`` gives images seen and time.
        datasets: ``{name: dataset directory}`` of labelled sets of identities no run saw.
        kind: ``"pose"`` (metric ``mae``, degrees) or ``"shape"`` (metric ``rms_mm``).

    Returns:
        Rows ``{"label", "runs", "seeds", "images_seen", "train_hours", "<set>": mean,
        "<set>_min", "<set>_max", "<set>_runs": [per-run values]}``.
    """
    from depthface.train.common import load_checkpoint

    if kind not in ("pose", "shape"):
        raise DepthfaceError(f"kind must be pose or shape, got {kind!r}")
    if not runs:
        raise DepthfaceError("an ablation table needs at least one run")
    metric = "mae" if kind == "pose" else "rms_mm"
    sets = {name: SourceDataset(root, split) for name, root in datasets.items()}
    per_label: dict[str, list[dict]] = {}
    for label, run in runs:
        path = Path(run) / "checkpoint.pt"
        if not path.is_file():
            raise DepthfaceError("no checkpoint.pt (is the run finished?)", run)
        ck = load_checkpoint(path)
        history = ck.get("history", [])
        result = {"run": str(run), "seed": ck.get("train_config", {}).get("seed"), "images_seen": images_seen(history),
                  "train_hours": sum(h["seconds"] for h in history) / 3600.0,
                  **{name: s[metric] for name, s in evaluate_checkpoint(path, sets, kind, model, device,
                                                                        batch_size).items()}}
        per_label.setdefault(label, []).append(result)
    rows = []
    for label, results in per_label.items():
        row = {"label": label, "runs": [r["run"] for r in results], "seeds": [r["seed"] for r in results],
               "images_seen": int(np.mean([r["images_seen"] for r in results])),
               "train_hours": float(np.mean([r["train_hours"] for r in results]))}
        for name in sets:
            values = [float(r[name]) for r in results]
            row.update({name: float(np.mean(values)), f"{name}_min": min(values), f"{name}_max": max(values),
                        f"{name}_runs": values})
        rows.append(row)
    return rows


def ablation_markdown(rows: list[dict], sets: list[str], unit: str) -> str:
    """A Markdown table of :func:`ablation_table` rows: mean per set, with ``[min-max]`` over seeds."""
    head = "| option set | seeds | images | " + " | ".join(f"{s} ({unit})" for s in sets) + " |"
    lines = [head, "|" + "---|" * (3 + len(sets))]
    for r in rows:
        cells = []
        for s in sets:
            cell = f"{r[s]:.2f}"
            if len(r[f"{s}_runs"]) > 1:
                cell += f" [{r[f'{s}_min']:.2f}-{r[f'{s}_max']:.2f}]"
            cells.append(cell)
        lines.append(f"| {r['label']} | {len(r['runs'])} | {r['images_seen']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_ablation(out: str | Path, rows: list[dict], sets: list[str], kind: str) -> list[Path]:
    """``ablation.json`` and ``ablation.md`` in ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "ablation.json").write_text(json.dumps(rows, indent=1) + "\n")
    (out / "ablation.md").write_text(ablation_markdown(rows, sets, "deg" if kind == "pose" else "mm"))
    return [out / "ablation.json", out / "ablation.md"]


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
