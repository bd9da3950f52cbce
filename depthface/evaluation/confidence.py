"""Calibrating and judging the pose confidence (``depthface experiment confidence``).

Frames with ground-truth poses (real-dataset layouts: Biwi or ICT-3DHP folders, e.g. synthetic sets
exported with ``depthface data export --format biwi``) go through the product path (localiser, crop,
re-crop; :meth:`Reconstructor.predict_batch`); each frame gives the confidence's cues and its true
geodesic error. :func:`depthface.inference.confidence.fit_confidence_calibration` is fitted on one set
(the calibration sensor) and judged on the others (a sensor no training and no calibration used):
a reliability table (predicted probability against the observed share within the error), the error
against the confidence, and the flag's precision and recall.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from tqdm import tqdm  # noqa: E402

from depthface.data.frames import FrameDataset  # noqa: E402
from depthface.errors import DepthfaceError, InputError  # noqa: E402
from depthface.geometry.rotations import geodesic_angle_deg  # noqa: E402
from depthface.inference.confidence import ConfidenceCalibration, flag_scores  # noqa: E402
from depthface.inference.reconstructor import Reconstructor  # noqa: E402


def collect_confidence_frames(rec: Reconstructor, frames: FrameDataset, indices: np.ndarray, batch: int = 32,
                              progress: bool = True) -> tuple[list[dict[str, float]], np.ndarray]:
    """The confidence's cues and the true geodesic error (degrees) of every frame with a head.

    Frames go through ``rec.predict_batch`` (automatic localisation, ``rec.refine_steps`` re-crops) in
    groups of ``batch``; unreadable frames and frames whose head is not localised are left out. ``rec``
    needs a calibration (any: the cues do not depend on it) so that it measures the cues.

    Returns:
        ``(features, errors)``: ``N`` dicts of :func:`depthface.inference.confidence.pose_features` and ``(N,)``.
    """
    feats: list[dict[str, float]] = []
    errors: list[float] = []
    idx = [int(i) for i in indices]
    for start in tqdm(range(0, len(idx), batch), desc="confidence", disable=not progress, leave=False):
        group = []
        for i in idx[start:start + batch]:
            try:
                f = frames[i]
            except InputError:
                continue
            if f.has_pose:
                group.append(f)
        if not group:
            continue
        results = rec.predict_batch([f.depth for f in group], [f.intrinsics for f in group],
                                    sources=[str(f.source) for f in group], on_error="result")
        for f, res in zip(group, results):
            if res.rotation is None or "confidence_features" not in res.extras:
                continue
            feats.append(res.extras["confidence_features"])
            errors.append(float(geodesic_angle_deg(torch.from_numpy(res.rotation), torch.from_numpy(f.rotation))))
    if not feats:
        raise DepthfaceError("no frame with a localised head to calibrate the confidence on")
    return feats, np.asarray(errors)


def reliability_table(confidence: np.ndarray, errors_deg: np.ndarray, error_deg: float = 10.0,
                      bins: int = 5) -> list[dict]:
    """Per confidence bin (equal width in [0, 1]): frames, mean confidence and the observed share of
    frames within ``error_deg`` (a calibrated confidence has the two close), with the bin's MAE."""
    c, e = np.asarray(confidence), np.asarray(errors_deg)
    edges = np.linspace(0.0, 1.0, bins + 1)
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (c >= lo) & ((c < hi) if hi < 1.0 else (c <= hi))
        if m.any():
            rows.append({"bin": f"{lo:.1f}-{hi:.1f}", "frames": int(m.sum()), "mean_confidence": float(c[m].mean()),
                         "observed_within": float(np.mean(e[m] <= error_deg)), "mean_error_deg": float(e[m].mean())})
    return rows


def ranking_auc(confidence: np.ndarray, errors_deg: np.ndarray, error_deg: float = 10.0) -> float:
    """Probability that a frame within ``error_deg`` has a higher confidence than a frame beyond it."""
    c, e = np.asarray(confidence), np.asarray(errors_deg)
    good, bad = c[e <= error_deg], c[e > error_deg]
    if len(good) == 0 or len(bad) == 0:
        return float("nan")
    return float(np.mean(good[:, None] > bad[None]) + 0.5 * np.mean(good[:, None] == bad[None]))


def judge_confidence(calibration: ConfidenceCalibration, features: list[dict[str, float]], errors_deg: np.ndarray,
                     face_scores: bool = True) -> dict:
    """The calibration on frames with known errors: AUC, Brier score, reliability, flag precision/recall
    (and, with ``face_scores``, the AUC of the uncalibrated face score, for comparison)."""
    c = np.array([calibration.confidence(f) for f in features])
    e = np.asarray(errors_deg)
    within = (e <= calibration.error_deg).astype(np.float64)
    out = {"frames": int(len(e)), "error_deg": calibration.error_deg, "auc": ranking_auc(c, e, calibration.error_deg),
           "brier": float(np.mean((c - within) ** 2)), "mean_confidence": float(c.mean()),
           "observed_within": float(within.mean()), "flag": flag_scores(c, e, calibration.threshold, calibration.error_deg),
           "reliability": reliability_table(c, e, calibration.error_deg), "confidence": c.tolist(),
           "errors_deg": e.tolist()}
    if face_scores:
        out["landmark_match_auc"] = ranking_auc(np.array([f["landmark_match"] for f in features]), e,
                                                calibration.error_deg)
    return out


def plot_confidence(path: str | Path, judged: dict[str, dict], threshold: float, error_deg: float) -> Path:
    """Two panels: geodesic error against confidence per set (with the flag threshold and the error
    line), and the reliability diagram (observed share within the error against mean confidence)."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.3))
    for name, j in judged.items():
        a.scatter(j["confidence"], j["errors_deg"], s=6, alpha=0.5, label=name)
        rel = j["reliability"]
        b.plot([r["mean_confidence"] for r in rel], [r["observed_within"] for r in rel], marker="o", label=name)
    a.axvline(threshold, color="k", ls="--", lw=1, label=f"flag threshold {threshold:.2f}")
    a.axhline(error_deg, color="r", ls=":", lw=1)
    a.set_yscale("log")
    a.set_xlabel("confidence")
    a.set_ylabel("geodesic pose error (deg)")
    a.legend(fontsize=8)
    b.plot([0, 1], [0, 1], color="grey", lw=1, ls="--")
    b.set_xlabel("mean confidence in bin")
    b.set_ylabel(f"share of frames within {error_deg:g} deg")
    b.set_xlim(0, 1)
    b.set_ylim(0, 1)
    b.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def confidence_markdown(judged: dict[str, dict]) -> str:
    """A Markdown table: per set, frames, share off, AUC (calibrated vs landmark match), Brier, flag P/R."""
    lines = ["| set | frames | off > err | AUC | AUC landmark match | Brier | flagged | precision | recall | "
             "geodesic mean kept |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name, j in judged.items():
        f = j["flag"]
        lines.append(f"| {name} | {j['frames']} | {f['off']} | {j['auc']:.3f} | {j.get('landmark_match_auc', float('nan')):.3f} "
                     f"| {j['brier']:.3f} | {f['flagged']} | {f['precision']:.2f} | {f['recall']:.2f} | "
                     f"{f['mae_kept_geodesic']:.2f} |")
    return "\n".join(lines) + "\n"


def confidence_experiment(calibrate: str | Path, evaluate: dict[str, str | Path], out: str | Path, kind: str = "biwi",
                          pose: str | Path | None = None, error_deg: float = 10.0,
                          limit: int = 0) -> tuple[str, ConfidenceCalibration]:
    """``depthface experiment confidence``: fit on ``calibrate``, judge on it (in-sample) and on ``evaluate``.

    Writes ``confidence.json`` (the calibration, loadable by ``Reconstructor(confidence=...)``),
    ``metrics.json``, ``report.md``, ``frames.csv`` (per frame: cues, error, confidence) and
    ``confidence.png`` in ``out``.

    Args:
        calibrate: a real-layout folder (``kind``: ``biwi`` or ``ict3dhp``) of frames with true poses.
        evaluate: ``{name: folder}`` of other sets to judge the calibration on.
        pose: a pose checkpoint (default: the release network).
        limit: at most this many frames of each set (0: all).

    Returns:
        ``(report table in Markdown, calibration)``.
    """
    from depthface.data.splits import open_real_split
    from depthface.facemodel import load_face_model
    from depthface.inference.confidence import fit_confidence_calibration
    from depthface.models.release import release_checkpoint
    from depthface.train.pose import load_pose_net

    rec = Reconstructor(load_pose_net(pose or release_checkpoint("pose"))[0], None, load_face_model(),
                        face_check=False)  # any calibration makes it measure the cues; they do not depend on it
    sets = {"calibration (in-sample)": calibrate, **evaluate}
    collected = {}
    for name, root in sets.items():
        frames, idx = open_real_split(kind, root, "all")
        collected[name] = collect_confidence_frames(rec, frames, idx[:limit] if limit else idx)
    feats, errors = collected["calibration (in-sample)"]
    cal = fit_confidence_calibration(feats, errors, error_deg, provenance={
        "pose": str(pose) if pose else "release", "calibrated_on": str(calibrate), "frames": int(len(errors))})
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cal.save(out / "confidence.json")
    judged = {name: judge_confidence(cal, f, e) for name, (f, e) in collected.items()}
    with (out / "frames.csv").open("w") as fh:  # every frame's cues, error and confidence: refit without rerunning
        names = list(collected["calibration (in-sample)"][0][0])
        fh.write(",".join(["set", *names, "geodesic_error_deg", "confidence"]) + "\n")
        for name, (f, e) in collected.items():
            for row, err, c in zip(f, e, judged[name]["confidence"]):
                fh.write(",".join([name, *(f"{row.get(k, float('nan')):.5g}" for k in names), f"{err:.4f}",
                                   f"{c:.5f}"]) + "\n")
    (out / "metrics.json").write_text(json.dumps(
        {n: {k: v for k, v in j.items() if k not in ("confidence", "errors_deg")} for n, j in judged.items()},
        indent=1) + "\n")
    plot_confidence(out / "confidence.png", judged, cal.threshold, error_deg)
    table = confidence_markdown(judged)
    (out / "report.md").write_text(table)
    return table, cal
