"""Head-pose evaluation: MAE of yaw, pitch, roll (the paper's Table 3/4/5 columns), translation error.

Networks run in eval mode (batch norm uses its running statistics), so every frame's prediction is
independent of the batch it is in: results do not depend on batch size or loader workers.
:func:`evaluate_pose_on_dataset` is ``depthface eval pose --data``: a pose network on the stored crops of a
labelled depthface dataset, written as ``metrics.json``, ``frames.csv`` and ``error_vs_angle.png``
(real datasets: :mod:`depthface.evaluation.real_pose`).
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from depthface.geometry.rotations import geodesic_angle_deg, matrix_to_euler, quaternion_to_matrix
from depthface.models.networks import DAPoseNet
from depthface.synth.datasets import SourceDataset
from depthface.evaluation.report import EvalReport
from depthface.models.normalize import network_input

__all__ = ["angle_diff", "pose_errors", "summarize", "predict_pose_dataset", "write_pose_csv", "plot_pose_errors",
           "pose_checkpoint", "write_pose_report", "evaluate_pose_on_dataset"]


def angle_diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Absolute angle difference in degrees, wrapped to [0, 180]."""
    return np.abs((a - b + 180.0) % 360.0 - 180.0)


def pose_errors(R_pred: np.ndarray, t_pred: np.ndarray, R_true: np.ndarray, t_true: np.ndarray) -> dict[str, np.ndarray]:
    """Per-frame errors: ``(N, 3, 3)`` rotations and ``(N, 3)`` translations (mm) -> arrays of ``(N,)``."""
    e_pred = matrix_to_euler(torch.as_tensor(R_pred, dtype=torch.float64)).numpy()
    e_true = matrix_to_euler(torch.as_tensor(R_true, dtype=torch.float64)).numpy()
    err = angle_diff(e_pred, e_true)
    return {
        "yaw_true": e_true[:, 0], "pitch_true": e_true[:, 1], "roll_true": e_true[:, 2],
        "yaw_pred": e_pred[:, 0], "pitch_pred": e_pred[:, 1], "roll_pred": e_pred[:, 2],
        "yaw_err": err[:, 0], "pitch_err": err[:, 1], "roll_err": err[:, 2],
        "geodesic_err": geodesic_angle_deg(torch.as_tensor(R_pred, dtype=torch.float64),
                                           torch.as_tensor(R_true, dtype=torch.float64)).numpy(),
        "translation_err_mm": np.linalg.norm(np.asarray(t_pred) - np.asarray(t_true), axis=-1),
    }


def summarize(errors: dict[str, np.ndarray]) -> dict[str, float]:
    """MAE per angle and their mean, translation error, geodesic error (mean and median)."""
    s = {k: float(np.mean(errors[f"{k}_err"])) for k in ("yaw", "pitch", "roll")}
    s["mae"] = float(np.mean([s["yaw"], s["pitch"], s["roll"]]))
    s["translation_mm"] = float(np.mean(errors["translation_err_mm"]))
    s["geodesic_mean"] = float(np.mean(errors["geodesic_err"]))
    s["geodesic_median"] = float(np.median(errors["geodesic_err"]))
    s["frames"] = int(len(errors["yaw_err"]))
    return s


@torch.no_grad()
def predict_pose_dataset(net: DAPoseNet, ds: SourceDataset, batch_size: int = 64, workers: int = 0, device: str = "cpu",
                         progress: bool = True) -> dict[str, np.ndarray]:
    """Run DAPoseNet over a labelled dataset; returns per-frame predictions and truths."""
    net.eval().to(device)
    loader = DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=workers)
    out: dict[str, list] = {"index": [], "R_pred": [], "t_pred": [], "R_true": [], "t_true": []}
    t0 = time.perf_counter()
    for batch in tqdm(loader, desc="eval pose", disable=not progress, leave=False):
        q, t = net(network_input(batch, device))
        out["index"].append(batch["index"].numpy())
        out["R_pred"].append(quaternion_to_matrix(q.double()).cpu().numpy())
        out["t_pred"].append((t.double().cpu() + batch["crop_centre"].double()).numpy())
        out["R_true"].append(quaternion_to_matrix(batch["quaternion"].double()).numpy())
        out["t_true"].append(batch["translation"].double().numpy())
    res = {k: np.concatenate(v) for k, v in out.items()}
    res["seconds_per_frame"] = np.array((time.perf_counter() - t0) / max(len(res["index"]), 1))
    return res


def write_pose_csv(path: str | Path, index: np.ndarray, errors: dict[str, np.ndarray]) -> Path:
    """Per-frame CSV: index, true and predicted angles, errors."""
    keys = [k for k in errors]
    with Path(path).open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["index", *keys])
        for i in range(len(index)):
            w.writerow([int(index[i]), *(f"{float(errors[k][i]):.4f}" for k in keys)])
    return Path(path)


def plot_pose_errors(path: str | Path, errors_by_model: dict[str, dict[str, np.ndarray]]) -> Path:
    """Mean absolute error against true yaw and against true pitch (10-degree bins), one line per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, angle in zip(axes, ("yaw", "pitch")):
        for name, e in errors_by_model.items():
            truth = e[f"{angle}_true"]
            mae = np.mean([e["yaw_err"], e["pitch_err"], e["roll_err"]], axis=0)
            edges = np.arange(-90, 91, 10)
            centres, means = [], []
            for lo, hi in zip(edges[:-1], edges[1:]):
                m = (truth >= lo) & (truth < hi)
                if m.sum() >= 3:
                    centres.append((lo + hi) / 2)
                    means.append(mae[m].mean())
            ax.plot(centres, means, marker="o", ms=3, label=name)
        ax.set_xlabel(f"true {angle} (deg)")
        ax.set_ylabel("mean of yaw/pitch/roll abs. error (deg)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def pose_checkpoint(ckpt: str | Path | None) -> tuple[Path, Path]:
    """The pose checkpoint to evaluate and the run folder its evaluations go into by default.

    Returns:
        ``(checkpoint, run_dir)``: ``ckpt`` and its run directory (``ckpt`` itself when it is a folder), or
        for ``None`` the release model (:func:`depthface.models.release.release_checkpoint`) and ``runs/release``.
    """
    if ckpt is None:
        from depthface.models.release import release_checkpoint

        return Path(release_checkpoint("pose")), Path("runs") / "release"
    return Path(ckpt), Path(ckpt if Path(ckpt).is_dir() else Path(ckpt).parent)


def write_pose_report(out: str | Path, summary: dict, errors: dict[str, np.ndarray]) -> Path:
    """Write ``metrics.json`` (``summary``) and ``error_vs_angle.png`` (:func:`plot_pose_errors` of ``errors``)
    into ``out`` (created); the per-frame CSV is the caller's (its columns depend on the data)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(summary, indent=1) + "\n")
    plot_pose_errors(out / "error_vs_angle.png", {"network": errors})
    return out


def evaluate_pose_on_dataset(ckpt: str | Path, data: str | Path, split: str = "test", out: str | Path | None = None,
                             run_dir: str | Path = "runs", refine: str = "none", batch_size: int = 64,
                             workers: int = 0, device: str = "cpu", face_model: str | Path | None = None
                             ) -> EvalReport:
    """A pose network on the stored crops of a labelled depthface dataset (``depthface eval pose --data``).

    Args:
        ckpt: pose run directory or checkpoint file.
        data: the dataset directory (labels: ``quaternion``, ``translation``).
        split: ``train``, ``val``, ``test`` or ``all``.
        out: the folder to write (default ``run_dir/eval_<dataset>_<split>[_refine_...]``).
        run_dir: the run folder of ``ckpt`` (:func:`pose_checkpoint`).
        refine: ``"none"``, ``"pose"`` or ``"pose+shape"``: the network's poses refined by the model fit
            (:func:`depthface.evaluation.refine.refine_dataset_predictions`).
        batch_size, workers: the data loader's.
        device: a torch device.
        face_model: the face model of the refinement.

    Returns:
        The :class:`~depthface.evaluation.report.EvalReport`; writes ``metrics.json``, ``frames.csv`` and
        ``error_vs_angle.png``.
    """
    from depthface.evaluation.refine import refine_dataset_predictions, refine_suffix
    from depthface.train.pose import load_pose_net

    net, _ = load_pose_net(ckpt, device)
    ds = SourceDataset(data, None if split == "all" else split)
    pred = predict_pose_dataset(net, ds, batch_size, workers, device)
    if refine != "none":
        from depthface.facemodel import load_face_model

        pred["R_pred"], pred["t_pred"], _, fit_s = refine_dataset_predictions(
            ds, np.arange(len(ds)), pred["R_pred"], pred["t_pred"], load_face_model(face_model), refine)
    e = pose_errors(pred["R_pred"], pred["t_pred"], pred["R_true"], pred["t_true"])
    s = summarize(e)
    s["refine"] = refine
    s["network_ms_per_frame"] = 1e3 * float(pred["seconds_per_frame"])
    if refine != "none":
        s["refine_ms_per_frame"] = 1e3 * fit_s
    out = Path(out) if out is not None else Path(run_dir) / f"eval_{Path(data).name}_{split}{refine_suffix(refine)}"
    write_pose_report(out, s, e)
    write_pose_csv(out / "frames.csv", pred["index"], e)
    lines = [f"crops: the dataset's stored crop centres (ground truth + jitter); {s['frames']} frames"
             + (f"; refinement {refine}: {s['refine_ms_per_frame']:.1f} ms/frame" if refine != "none" else ""),
             f"MAE {s['mae']:.2f} deg (yaw {s['yaw']:.2f}, pitch {s['pitch']:.2f}, roll {s['roll']:.2f}); "
             f"translation {s['translation_mm']:.1f} mm; wrote {out}"]
    return EvalReport(s, out, lines)
