"""Reports: what an evaluation run wrote (:class:`EvalReport`), dataset pictures, and the demo's HTML report:
tables with bootstrap confidence intervals, a guide to reading the numbers (units, definitions, what is
good), the mean-face reference."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from depthface.evaluation.plots import save_contact_sheet
from depthface.synth.storage import ChunkedArrays


@dataclass
class EvalReport:
    """What an evaluation run (``depthface eval pose``, ``eval shape``) wrote.

    Attributes:
        summary: the metrics and the run's settings, as written to ``metrics.json``.
        out: the folder written.
        lines: what the run says about itself (crops, frames, errors, the folder), one line each.
    """

    summary: dict
    out: Path
    lines: list[str]


def dataset_contact_sheet(root: str | Path, out: str | Path, n: int = 16, split: str | None = None, seed: int = 0,
                          title: str | None = None) -> Path:
    """Contact sheet of ``n`` random crops of a stored dataset, landmarks projected with the crop camera."""
    arrays = ChunkedArrays(root)
    idx = arrays.indices(split)
    pick = np.sort(np.random.default_rng(seed).choice(idx, size=min(n, len(idx)), replace=False))
    crops, titles, lms = [], [], []
    for i in pick:
        crops.append(arrays.get(int(i), "depth"))
        fx, fy, cx, cy = arrays.get(int(i), "crop_intrinsics")
        lm = arrays.get(int(i), "landmarks3d").astype(np.float64)
        lms.append(np.stack((fx * lm[:, 0] / lm[:, 2] + cx, fy * lm[:, 1] / lm[:, 2] + cy), -1))
        y, p, r = arrays.get(int(i), "ypr")
        titles.append(f"#{i} y{y:+.0f} p{p:+.0f} r{r:+.0f}")
    m = arrays.manifest
    sensor = m["sensor"]["name"] if m.get("sensor") else "clean"
    return save_contact_sheet(out, crops, titles, landmarks_2d=lms,
                              suptitle=title or f"{m['profile']} ({sensor}), {m['n_frames']} frames")


def plot_loss_curves(path: str | Path, histories: dict[str, list[dict]], keys: dict[str, list[str]]) -> Path:
    """Training curves: one panel per run, the chosen loss keys against the epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(histories), figsize=(4.2 * len(histories), 3.2), squeeze=False)
    for ax, (name, hist) in zip(axes[0], histories.items()):
        for key in keys[name]:
            xs = [h["epoch"] for h in hist if key in h]
            ys = [h[key] for h in hist if key in h]
            if xs:
                ax.plot(xs, ys, marker="o", ms=3, label=key)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("epoch")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return Path(path)


def plot_histograms(path: str | Path, values: dict[str, np.ndarray], xlabel: str, bins: int = 30) -> Path:
    """Overlaid histograms of per-frame errors."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    hi = max(float(np.percentile(v, 99)) for v in values.values() if len(v))
    for name, v in values.items():
        ax.hist(np.clip(v, 0, hi), bins=bins, range=(0, hi), alpha=0.5, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("frames")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return Path(path)


def write_html_report(path: str | Path, title: str, sections: list[tuple[str, str, list[str]]]) -> Path:
    """A self-contained page: each section is ``(heading, html text, [image paths relative to the page])``."""
    import html

    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
             "img{max-width:100%;border:1px solid #ddd;margin:4px 0}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f4f4f4}"
             "code{background:#f4f4f4;padding:1px 4px}</style></head><body>", f"<h1>{html.escape(title)}</h1>"]
    for heading, text, images in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>{text}")
        parts += [f"<div><img src='{html.escape(img)}' alt='{html.escape(img)}'></div>" for img in images]
    parts.append("</body></html>")
    Path(path).write_text("\n".join(parts) + "\n")
    return Path(path)


def html_table(rows: list[dict], columns: list[str], fmt: str = "{:.2f}") -> str:
    """A small HTML table of dict rows."""
    import html

    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for r in rows:
        cells = []
        for c in columns:
            v = r.get(c, "")
            cells.append(f"<td>{fmt.format(v) if isinstance(v, float) else html.escape(str(v))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


# ------------------------------------------------------------------------------------------------
# numbers with confidence intervals, and how to read them


def bootstrap_ci(values: np.ndarray, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the **mean** of ``values`` ``(N,)``.

    ``n_boot`` resamples of ``N`` values with replacement (a fixed seed: the same interval every run); the
    interval is their means' ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles. NaNs are dropped.
    With few frames (a demo's test set) the interval says how much the mean could move with other frames.
    """
    v = np.asarray(values, np.float64).reshape(-1)
    v = v[np.isfinite(v)]
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if len(v) == 0:
        return float("nan"), float("nan")
    means = v[np.random.default_rng(seed).integers(0, len(v), (n_boot, len(v)))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def pose_metrics(errors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per-frame pose metrics of :func:`depthface.evaluation.pose.pose_errors`: ``yaw``, ``pitch``, ``roll``
    (absolute error, deg), ``mae`` (their mean), ``geodesic`` (deg) and ``translation_mm``."""
    yaw, pitch, roll = (np.asarray(errors[f"{k}_err"], np.float64) for k in ("yaw", "pitch", "roll"))
    return {"yaw": yaw, "pitch": pitch, "roll": roll, "mae": (yaw + pitch + roll) / 3,
            "geodesic": np.asarray(errors["geodesic_err"], np.float64),
            "translation_mm": np.asarray(errors["translation_err_mm"], np.float64)}


def shape_metrics(errors: list[dict[str, float]]) -> dict[str, np.ndarray]:
    """Per-sample shape metrics of :func:`depthface.evaluation.shape.evaluate_shape_dataset`: ``rms_mm``,
    ``eq8_mean_mm2`` (eq. 8) and ``mean_distance_mm``."""
    return {"rms_mm": np.array([e["rms_mm"] for e in errors]),
            "eq8_mean_mm2": np.array([e["mean_squared_mm2"] for e in errors]),
            "mean_distance_mm": np.array([e["mean_distance_mm"] for e in errors])}


def ci_rows(models: dict[str, dict[str, np.ndarray]], columns: list[str], level: float = 0.95,
            digits: int = 2) -> list[dict]:
    """Table rows ``{"model", column: "mean [lo, hi]", "frames"}`` of per-frame metrics with bootstrap CIs."""
    rows = []
    for name, metrics in models.items():
        row: dict = {"model": name}
        for c in columns:
            v = np.asarray(metrics[c], np.float64)
            lo, hi = bootstrap_ci(v, level=level)
            row[c] = f"{np.nanmean(v):.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"
        row["frames"] = len(next(iter(metrics.values())))
        rows.append(row)
    return rows


#: How to read the pose table (HTML).
POSE_GUIDE = (
    "<p><b>How to read it.</b> Each cell is the mean over the test frames with its 95% bootstrap confidence "
    "interval in brackets (2000 resamples of the frames): with a few hundred frames, differences inside the "
    "intervals are not meaningful. <b>yaw, pitch, roll</b>: mean absolute difference of each Euler angle from "
    "the truth, in degrees (the Biwi convention, docs/conventions.md); <b>mae</b>: their mean (the paper's "
    "MAE column); <b>geodesic</b>: the single angle of the rotation between prediction and truth, degrees; "
    "<b>translation_mm</b>: distance between the predicted and the true head centre, millimetres. Lower is "
    "better everywhere. <b>What is good</b>: the paper reports an MAE of 2.2-2.6 deg on real Biwi frames and "
    "6.4 deg on ICT-3DHP after its full schedule (150 epochs, paper-size networks); the <i>frontal</i> row "
    "(always facing the camera, head at the crop centre) is what a network that learned nothing scores here. "
    "The demo trains tiny networks for a few epochs, so expect it far above the paper and below the frontal row.</p>")

#: How to read the shape table (HTML).
SHAPE_GUIDE = (
    "<p><b>How to read it.</b> Means over the test frames with 95% bootstrap intervals. <b>rms_mm</b>: root "
    "mean square distance between corresponding vertices of the predicted and the true face after a rigid "
    "alignment on 9 stable landmarks, millimetres (face region); <b>eq8_mean_mm2</b>: the paper's eq. 8 "
    "fitting error (mean squared nearest-surface distance, mm^2); <b>mean_distance_mm</b>: the mean of those "
    "distances. Lower is better. <b>What is good</b>: the <i>mean face</i> row places the model's mean face "
    "for every frame: a network is only useful where it is below that row. Identities differ from the mean "
    "by a few millimetres RMS, so the margins are small at the demo's scale.</p>")


class MeanFaceNet:
    """A stand-in for DASHapeNet that predicts no displacement: the mean face for every frame (the
    reference row of shape tables). Called like the network on ``(B, 3, H, W)``; returns ``(B, Vr, 3)``."""

    def __init__(self, n_regressed: int) -> None:
        self.n = int(n_regressed)

    def eval(self) -> "MeanFaceNet":
        return self

    def to(self, device) -> "MeanFaceNet":
        return self

    def __call__(self, x):
        import torch

        return torch.zeros(x.shape[0], self.n, 3, dtype=x.dtype, device=x.device)


def frontal_pose_errors(crop_centres: np.ndarray, R_true: np.ndarray, t_true: np.ndarray) -> dict[str, np.ndarray]:
    """Errors of the "frontal" reference: identity rotation, head at the crop centre ``(N, 3)``."""
    from depthface.evaluation.pose import pose_errors

    n = len(R_true)
    return pose_errors(np.broadcast_to(np.eye(3), (n, 3, 3)).copy(), np.asarray(crop_centres, np.float64), R_true,
                       t_true)
