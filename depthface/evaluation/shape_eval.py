"""``depthface eval shape`` on a labelled depthface dataset: per-sample errors of the shape network (and/or
the 3DMM fit), metrics.json, a per-sample CSV, the paper's Fig. 5-style curve and mesh pictures.

Every method is scored by :func:`depthface.evaluation.shape.shape_errors` (nine-landmark rigid alignment,
then per-vertex RMS and eq. 8 inside the narrow face). Methods:

* ``"mean face"``: the model's mean, the reference every method must beat;
* ``"network"``: DASHapeNet's displacements on the mean face (with ``net``);
* ``"network + fit"``: the network's face refined by :func:`depthface.facemodel.fit.refine_prediction`
  (``refine="pose+shape"``), started at the pose network's pose when one is given, else at a rigid ICP
  of the network's face from the crop centre;
* ``"3DMM fit"``: without a network, the fit alone from the mean face (rigid ICP from the crop centre,
  then pose + identity + expression): the classical baseline.

:func:`evaluate_shape_on_dataset` is ``depthface eval shape --data``: it loads the networks, scores the
methods and writes the report (FaceWarehouse: :mod:`depthface.evaluation.facewarehouse_eval`).
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from depthface.errors import InputError
from depthface.evaluation.refine import refine_suffix
from depthface.evaluation.report import EvalReport
from depthface.evaluation.shape import face_vertices, shape_errors, summarize_shape
from depthface.facemodel import MorphableModel
from depthface.facemodel.fit import fit_frame, prepare_fit_region, refine_prediction
from depthface.geometry.camera import position_points
from depthface.geometry.rotations import quaternion_to_matrix
from depthface.models.normalize import network_input

__all__ = ["ShapeEvaluation", "evaluate_shape", "write_shape_report", "plot_per_sample_errors", "pick_samples",
           "shape_run_dir", "evaluate_shape_on_dataset"]

#: the Fig. 5-style curve shows this many samples (the paper's 30 FaceWarehouse samples)
CURVE_SAMPLES = 30


@dataclass
class ShapeEvaluation:
    """Per-sample results, aligned over ``index``.

    Attributes:
        index: ``(N,)`` the samples' dataset indices. ds_positions: ``(N,)`` their positions in the dataset.
        errors: method -> list of N error dicts (``rms_mm``, ``mean_squared_mm2`` = eq. 8, flying counts...).
        seconds_per_frame: method -> seconds per frame (network forward pass; fits per frame).
        primary: the method the summary is about (the last one added).
        meshes: method -> ``(N, V, 3)`` float16 head-frame faces for the pictures (truth under ``"truth"``;
            empty when the ground truth has another topology).
    """

    index: np.ndarray
    ds_positions: np.ndarray
    errors: dict[str, list[dict]] = field(default_factory=dict)
    seconds_per_frame: dict[str, float] = field(default_factory=dict)
    primary: str = ""
    meshes: dict[str, np.ndarray] = field(default_factory=dict)

    def summary(self) -> dict:
        out = {name: {**summarize_shape(e), "ms_per_frame": 1e3 * self.seconds_per_frame.get(name, 0.0)}
               for name, e in self.errors.items()}
        return {"primary": self.primary, **out[self.primary], "methods": out}


def pick_samples(n: int, limit: int | None, seed: int = 0) -> np.ndarray:
    """``limit`` positions spread evenly over ``n`` samples (all when ``limit`` is None)."""
    if limit is not None and limit < 1:
        raise InputError(f"--limit must be at least 1, got {limit}")
    if limit is None or limit >= n:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, limit).astype(int))


@torch.no_grad()
def evaluate_shape(ds, model: MorphableModel, net=None, pose_net=None, refine: str = "none",
                   limit: int | None = None, device: str = "cpu", progress: bool = True) -> ShapeEvaluation:
    """Score shape methods on a labelled dataset (see the module docstring).

    Args:
        ds: a :class:`depthface.synth.datasets.SourceDataset` (labels: ``identity``, ``expression``).
        model: the face model.
        net: a DASHapeNet in eval mode, or ``None`` (then the 3DMM fit alone is scored).
        pose_net: a DAPoseNet giving the fit's start pose, or ``None`` (a rigid ICP from the crop centre).
        refine: ``"none"`` or ``"pose+shape"`` (with a network: also score the refined face). ``"pose"``
            leaves the face as it is, so it does not change a shape score and is refused.
        limit: score this many samples spread over the dataset.
    """
    if refine not in ("none", "pose+shape"):
        raise InputError(f"eval shape --refine must be none or pose+shape (a pose-only refinement leaves the "
                         f"face unchanged), got {refine!r}")
    if len(ds) == 0:
        raise InputError("the dataset split has no samples")
    pos = pick_samples(len(ds), limit)
    m64 = model.to(dtype=torch.float64)
    mean = model.mean.detach().cpu().numpy()
    region = prepare_fit_region(model) if (net is None or refine != "none") else None
    names = ["mean face"] + (["network"] if net is not None else []) + (
        ["network + fit"] if net is not None and refine != "none" else []) + (["3DMM fit"] if net is None else [])
    ev = ShapeEvaluation(np.zeros(len(pos), np.int64), pos, {n: [] for n in names}, {n: 0.0 for n in names},
                         names[-1], {n: np.empty((len(pos), *mean.shape), np.float16) for n in ["truth", *names]})
    for k, i in enumerate(tqdm(pos, desc="eval shape", disable=not progress, leave=False)):
        item = ds[int(i)]
        ev.index[k] = int(item["index"])
        true = m64.vertices(item["identity"][None].double(), item["expression"][None].double())
        ev.meshes["truth"][k] = true[0].numpy()
        faces = {"mean face": mean}
        batch = {key: v[None] for key, v in item.items() if isinstance(v, torch.Tensor)}
        x = network_input(batch, device) if (net is not None or pose_net is not None) else None
        if net is not None:
            t0 = time.perf_counter()
            disp = net(x)
            ev.seconds_per_frame["network"] += time.perf_counter() - t0
            faces["network"] = face_vertices(model, disp.cpu().float())[0].numpy()
        if len(names) > len(faces):  # a fit: network + fit, or the 3DMM fit alone
            start = faces.get("network", mean)
            t0 = time.perf_counter()
            points = position_points(item["position"][None])[0].double().numpy()
            if pose_net is not None:
                q, tc = pose_net(x)
                R0 = quaternion_to_matrix(q.double().cpu())[0].numpy()
                t_start = tc[0].double().cpu().numpy() + item["crop_centre"].double().numpy()
            else:
                ic = fit_frame(points, region, np.eye(3), item["crop_centre"].double().numpy(), mode="pose",
                               shape0=start, rigid_iterations=30, reject_mm=(60.0, 15.0))
                R0, t_start = ic.R, ic.t
            fit = refine_prediction(points, region, R0, t_start, start, "pose+shape")
            ev.seconds_per_frame[names[-1]] += time.perf_counter() - t0
            faces[names[-1]] = fit.vertices
        for name in names:
            e = shape_errors(m64, torch.from_numpy(np.asarray(faces[name], np.float64))[None], true)[0]
            ev.errors[name].append(e)
            ev.meshes[name][k] = faces[name]
    for name in names:
        ev.seconds_per_frame[name] /= max(len(pos), 1)
    return ev


def plot_per_sample_errors(path: str | Path, per_sample: dict[str, list[float]],
                           ylabel: str = "eq. 8 fitting error (mm²)") -> Path:
    """The paper's Fig. 5: one line per method over the same samples."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 3.6))
    for name, vals in per_sample.items():
        ax.plot(range(1, len(vals) + 1), vals, marker="o", ms=3, label=name)
    ax.set_xlabel("test sample")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def write_shape_report(out: str | Path, ev: ShapeEvaluation, model: MorphableModel, seed: int = 0,
                       extra: dict | None = None) -> dict:
    """metrics.json, samples.csv, per_sample_eq8.png (30 samples, seeded), meshes_{best,median,worst}.png
    (by the primary method's RMS: truth, mean face and each method side by side; only with ``ev.meshes``).

    Returns:
        The summary written to metrics.json.
    """
    from depthface.evaluation.plots import save_mesh_sheet
    from depthface.synth.scenes import hole_fills

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary = {**ev.summary(), **(extra or {})}
    (out / "metrics.json").write_text(json.dumps(summary, indent=1) + "\n")
    names = list(ev.errors)
    cols = ["rms_mm", "mean_squared_mm2", "mean_distance_mm", "n_flying_pred", "n_flying_gt"]
    with (out / "samples.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["index", *[f"{n.replace(' ', '_')}:{c}" for n in names for c in cols]])
        for k, i in enumerate(ev.index):
            w.writerow([int(i), *[f"{float(ev.errors[n][k][c]):.5g}" for n in names for c in cols]])
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(ev.index), size=min(CURVE_SAMPLES, len(ev.index)), replace=False))
    plot_per_sample_errors(out / "per_sample_eq8.png",
                           {n: [ev.errors[n][k]["mean_squared_mm2"] for k in pick] for n in names})
    if not ev.meshes:
        return summary
    rms = np.array([e["rms_mm"] for e in ev.errors[ev.primary]])
    order = np.argsort(rms)
    mean = model.mean.detach().cpu().double().numpy()
    tri = model.triangles.cpu().numpy()
    fills = hole_fills(mean, tri, mean[model.landmarks68.cpu().numpy()]) if model.has_landmarks else None
    for label, k in (("best", order[0]), ("median", order[len(order) // 2]), ("worst", order[-1])):
        shown = ["truth", "mean face", *[n for n in names if n != "mean face"]]
        titles = [f"{n} (sample {int(ev.index[k])})" if n == "truth" else
                  f"{n}: RMS {ev.errors[n][k]['rms_mm']:.2f} mm, eq. 8 {ev.errors[n][k]['mean_squared_mm2']:.2f} mm²"
                  for n in shown]
        save_mesh_sheet(out / f"meshes_{label}.png", [ev.meshes[n][k].astype(np.float64) for n in shown], tri,
                        titles, fills)
    return summary


def shape_run_dir(ckpt: str | Path | None) -> Path | None:
    """The run folder a shape checkpoint's evaluations go into by default: ``ckpt`` when it is a folder, else
    its parent; ``None`` without a checkpoint."""
    if ckpt is None:
        return None
    return Path(ckpt if Path(ckpt).is_dir() else Path(ckpt).parent)


def evaluate_shape_on_dataset(ckpt: str | Path | None, data: str | Path, pose: str | Path | None = None,
                              split: str = "test", limit: int | None = None, refine: str = "none",
                              out: str | Path | None = None, device: str = "cpu",
                              face_model: str | Path | None = None) -> EvalReport:
    """Shape methods on a labelled depthface dataset (``depthface eval shape --data``; see the module docstring).

    Args:
        ckpt: shape run directory or checkpoint, or ``None`` for the 3DMM fit alone.
        data: the dataset directory (labels ``identity``, ``expression``).
        pose: a pose run whose prediction starts the refinement (default: a rigid ICP from the crop centre).
        split: ``train``, ``val``, ``test`` or ``all``.
        limit: score this many samples spread over the split.
        refine: ``"none"`` or ``"pose+shape"`` (with a network: also the network refined by the model fit).
        out: the folder to write (default ``<run>/eval_shape_<dataset>_<split>[_refine_...]``, ``runs/``
            without a checkpoint).
        device: a torch device.
        face_model: the face model the network was trained with.

    Returns:
        The :class:`~depthface.evaluation.report.EvalReport` of :func:`write_shape_report`.
    """
    from depthface.facemodel import load_face_model
    from depthface.synth.datasets import SourceDataset
    from depthface.train.pose import load_pose_net
    from depthface.train.shape import load_shape_net

    model = load_face_model(face_model)
    ds = SourceDataset(data, None if split == "all" else split)
    net = load_shape_net(ckpt, device)[0] if ckpt is not None else None
    pose_net = load_pose_net(pose, device)[0] if pose is not None else None
    ev = evaluate_shape(ds, model, net, pose_net, refine if net is not None else "none", limit, device)
    out = Path(out) if out is not None else (
        (shape_run_dir(ckpt) or Path("runs")) / f"eval_shape_{Path(data).name}_{split}{refine_suffix(refine)}")
    s = write_shape_report(out, ev, model, extra={"refine": refine, "data": str(data), "split": split})
    lines = [f"{len(ev.index)} samples of {data} ({split}); narrow face after nine-landmark alignment",
             *(f"  {name}: RMS {m['rms_mm']:.2f} mm, eq. 8 {m['eq8_mean_mm2']:.3f} mm², {m['ms_per_frame']:.1f} "
               f"ms/frame" for name, m in s["methods"].items()),
             f"wrote {out}"]
    return EvalReport(s, out, lines)
