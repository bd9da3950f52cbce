"""The pose confidence: a calibrated probability that a predicted head pose is within 10 deg of the truth.

The network's answer is compared with the measured depth at the predicted pose, with cues that need
no ground truth (:func:`pose_features`):

* ``landmark_match``: the share of the 68 posed landmarks within 15 mm of a measured point;
* ``relief``, ``relief_correlation``, ``inliers``, ``median_residual_mm``: how well the mean face's face
  region, posed as predicted, explains the depth along its rays (the face verdict's measures,
  :func:`depthface.inference.verdict.template_agreement`, taken at the network's pose, before any fit);
* ``refine_change_deg``: how far the pose moved between the first crop and the crop re-centred on the
  predicted head (a stable answer is a likelier right one; absent when the frame had no re-crop, e.g.
  when tracking).

A logistic model (:class:`LogisticModel`, one with and one without ``refine_change_deg``) maps them to
``P(geodesic error <= error_deg)``; it is fitted on frames of one sensor (:func:`fit_confidence_calibration`,
run by ``depthface experiment confidence``) and judged on another. :attr:`ConfidenceCalibration.threshold`
flags a frame whose pose is likely off by more than ``error_deg``. The release calibration
(``depthface/models/weights/confidence.json``) belongs to the release pose network: docs/models.md has
its data, its reliability and its flag's precision and recall on the held-out sensor.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from depthface.errors import DepthfaceError
from depthface.geometry.camera import Intrinsics
from depthface.inference.verdict import FaceTemplate, template_agreement

#: cues measured at the network's pose, in model order (the refined model appends ``refine_change_deg``)
BASE_FEATURES: tuple[str, ...] = ("landmark_match", "relief", "relief_correlation", "inliers", "median_residual_mm")
REFINED_FEATURES: tuple[str, ...] = BASE_FEATURES + ("refine_change_deg",)
#: the median residual is clipped here (a pose far off, or too few points on the face: no finite median)
MAX_RESIDUAL_MM = 50.0


def pose_features(depth: np.ndarray, intrinsics: Intrinsics, template: FaceTemplate, rotation: np.ndarray,
                  translation: np.ndarray, landmark_match: float,
                  refine_change_deg: float | None = None) -> dict[str, float]:
    """The confidence's cues of one predicted pose (see the module docstring).

    Args:
        depth: ``(H, W)`` depth in mm (0 = no measurement), validated.
        intrinsics: its camera.
        template: the face region of the mean face.
        rotation, translation: ``(3, 3)``, ``(3,)`` the predicted head-to-camera pose (mm).
        landmark_match: share of the posed landmarks that meet the depth, in [0, 1].
        refine_change_deg: angle between the first and the re-cropped pass's rotation, or ``None``.

    Returns:
        ``{name: value}`` with :data:`BASE_FEATURES` (and ``refine_change_deg`` when given).
    """
    a = template_agreement(depth, intrinsics, template, rotation, translation)
    f = {"landmark_match": float(landmark_match), "relief": a["relief"], "relief_correlation": a["relief_correlation"],
         "inliers": a["inliers"], "median_residual_mm": min(a["median_residual_mm"], MAX_RESIDUAL_MM)}
    if refine_change_deg is not None:
        f["refine_change_deg"] = float(refine_change_deg)
    return f


@dataclass(frozen=True)
class LogisticModel:
    """``P = sigmoid(w . (x - mean) / scale + b)`` over named features."""

    features: tuple[str, ...]
    mean: np.ndarray  # (F,)
    scale: np.ndarray  # (F,)
    weights: np.ndarray  # (F,)
    bias: float

    def probability(self, x: np.ndarray) -> np.ndarray:
        """``(N,)`` probabilities of feature rows ``x`` ``(N, F)`` in :attr:`features` order."""
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        if x.shape[1] != len(self.features):
            raise DepthfaceError(f"the confidence model takes {len(self.features)} features, got {x.shape[1]}")
        z = ((x - self.mean) / self.scale) @ self.weights + self.bias
        return 1.0 / (1.0 + np.exp(-np.clip(z, -50.0, 50.0)))

    def to_dict(self) -> dict:
        return {"features": list(self.features), "mean": self.mean.tolist(), "scale": self.scale.tolist(),
                "weights": self.weights.tolist(), "bias": self.bias}

    @classmethod
    def from_dict(cls, d: dict) -> "LogisticModel":
        arrays = [np.asarray(d[k], dtype=np.float64) for k in ("mean", "scale", "weights")]
        if not all(a.shape == (len(d["features"]),) for a in arrays):
            raise DepthfaceError("a confidence model's mean, scale and weights must have one value per feature")
        return cls(tuple(d["features"]), *arrays, float(d["bias"]))


def fit_logistic(x: np.ndarray, y: np.ndarray, features: tuple[str, ...], l2: float = 1e-3) -> LogisticModel:
    """Maximum-likelihood logistic regression (L2 penalty ``l2`` on the standardised weights).

    Args:
        x: ``(N, F)`` feature rows; y: ``(N,)`` 0/1 outcomes; features: the ``F`` names.
    """
    from scipy.optimize import minimize

    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or x.shape != (len(y), len(features)):
        raise DepthfaceError(f"fit_logistic: x must be (N, {len(features)}) for N outcomes, got {x.shape}")
    if not 0 < y.sum() < len(y):
        raise DepthfaceError("fit_logistic needs both outcomes among the frames (some within, some beyond the error)")
    mean, scale = x.mean(0), x.std(0) + 1e-9
    z = (x - mean) / scale

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        s = z @ w[:-1] + w[-1]
        p = 1.0 / (1.0 + np.exp(-np.clip(s, -50.0, 50.0)))
        nll = np.mean(np.logaddexp(0.0, s) - y * s) + l2 * float(w[:-1] @ w[:-1])
        g = np.append(z.T @ (p - y) / len(y) + 2 * l2 * w[:-1], np.mean(p - y))
        return float(nll), g

    w = minimize(loss, np.zeros(x.shape[1] + 1), jac=True, method="L-BFGS-B").x
    return LogisticModel(tuple(features), mean, scale, w[:-1], float(w[-1]))


def flag_scores(confidence: np.ndarray, errors_deg: np.ndarray, threshold: float, error_deg: float = 10.0) -> dict:
    """Precision and recall of flagging ``confidence < threshold`` as "off by more than ``error_deg``".

    Args:
        confidence: ``(N,)`` probabilities; errors_deg: ``(N,)`` true geodesic errors.
    """
    c, e = np.asarray(confidence), np.asarray(errors_deg)
    flagged, bad = c < threshold, e > error_deg
    tp = int(np.sum(flagged & bad))
    return {"threshold": float(threshold), "frames": int(len(e)), "off": int(bad.sum()), "flagged": int(flagged.sum()),
            "precision": tp / max(int(flagged.sum()), 1), "recall": tp / max(int(bad.sum()), 1),
            "mae_kept_geodesic": float(np.mean(e[~flagged])) if (~flagged).any() else float("nan")}


def choose_threshold(confidence: np.ndarray, errors_deg: np.ndarray, error_deg: float = 10.0) -> float:
    """The flag threshold with the best F1 (precision and recall of flagging frames off by > ``error_deg``):
    the candidates lie midway between consecutive distinct confidences."""
    u = np.unique(np.asarray(confidence, dtype=np.float64))
    candidates = np.append((u[:-1] + u[1:]) / 2, u[-1] + 1e-9) if len(u) else np.array([0.5])
    best, best_f1 = 0.5, -1.0
    for th in candidates:
        s = flag_scores(confidence, errors_deg, float(th), error_deg)
        f1 = 2 * s["precision"] * s["recall"] / max(s["precision"] + s["recall"], 1e-12)
        if f1 > best_f1:
            best, best_f1 = float(th), f1
    return best


@dataclass(frozen=True)
class ConfidenceCalibration:
    """The two logistic models (with and without the re-crop cue), the error they predict and the flag."""

    refined: LogisticModel
    single: LogisticModel
    error_deg: float = 10.0
    threshold: float = 0.5
    provenance: dict = field(default_factory=dict)

    def confidence(self, features: dict[str, float]) -> float:
        """``P(geodesic error <= error_deg)`` of one frame's :func:`pose_features`."""
        model = self.refined if "refine_change_deg" in features else self.single
        return float(model.probability(np.array([[features[k] for k in model.features]]))[0])

    def to_dict(self) -> dict:
        return {"format": "depthface-confidence", "version": 1, "error_deg": self.error_deg,
                "threshold": self.threshold, "refined": self.refined.to_dict(), "single": self.single.to_dict(),
                "provenance": self.provenance}

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> "ConfidenceCalibration":
        try:
            d = json.loads(Path(path).read_text())
            if d.get("format") != "depthface-confidence":
                raise ValueError("not a depthface confidence calibration")
            return cls(LogisticModel.from_dict(d["refined"]), LogisticModel.from_dict(d["single"]),
                       float(d["error_deg"]), float(d["threshold"]), d.get("provenance", {}))
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise DepthfaceError(f"cannot read the confidence calibration: {e}", path) from None


def fit_confidence_calibration(features: list[dict[str, float]], errors_deg: np.ndarray, error_deg: float = 10.0,
                               provenance: dict | None = None) -> ConfidenceCalibration:
    """Fit both models on frames with known errors and choose the flag threshold (best F1 there).

    Args:
        features: per frame, :func:`pose_features` with ``refine_change_deg`` (the single-pass model
            uses the others).
        errors_deg: ``(N,)`` true geodesic errors of the same frames.
    """
    e = np.asarray(errors_deg, dtype=np.float64)
    if len(features) != len(e):
        raise DepthfaceError(f"{len(features)} feature rows but {len(e)} errors")
    if not all("refine_change_deg" in f for f in features):
        raise DepthfaceError("calibrate on frames with a re-crop (refine_change_deg), which both models can use")
    y = (e <= error_deg).astype(np.float64)
    refined = fit_logistic(np.array([[f[k] for k in REFINED_FEATURES] for f in features]), y, REFINED_FEATURES)
    single = fit_logistic(np.array([[f[k] for k in BASE_FEATURES] for f in features]), y, BASE_FEATURES)
    conf = refined.probability(np.array([[f[k] for k in REFINED_FEATURES] for f in features]))
    return ConfidenceCalibration(refined, single, float(error_deg), choose_threshold(conf, e, error_deg),
                                 provenance or {})


def release_calibration() -> ConfidenceCalibration:
    """The calibration shipped with the release pose network (``depthface/models/weights/confidence.json``)."""
    from depthface.models.release import release_checkpoint

    return ConfidenceCalibration.load(release_checkpoint("confidence"))
