"""Test-time refinement of a network's predictions on a stored dataset (the evaluation's counterpart of
``Reconstructor(refine=...)``): each frame's pose (and face) refined by :func:`depthface.facemodel.fit.refine_prediction`
on the frame's stored crop (its position image: the only points a stored dataset keeps).
"""

from __future__ import annotations

import time

import numpy as np
from tqdm import tqdm

from depthface.facemodel import MorphableModel
from depthface.facemodel.fit import FitRegion, prepare_fit_region, refine_prediction
from depthface.geometry.camera import position_points

__all__ = ["refine_dataset_predictions", "refine_suffix"]


def refine_dataset_predictions(ds, indices: np.ndarray, R: np.ndarray, t: np.ndarray, model: MorphableModel,
                               refine: str, vertices: np.ndarray | None = None, region: FitRegion | None = None,
                               progress: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, float]:
    """Refine per-frame predictions of a dataset.

    Args:
        ds: a labelled or unlabelled dataset (items with ``position`` ``(3, 160, 160)`` and ``index``).
        indices: ``(N,)`` positions in ``ds`` of the predictions.
        R: ``(N, 3, 3)`` and t: ``(N, 3)`` the network's poses (mm).
        model: the face model.
        refine: ``"pose"`` or ``"pose+shape"`` (``"none"`` returns the input).
        vertices: ``(N, V, 3)`` the network's faces (head frame), or ``None`` for the mean face.
        region: the fitted region (default :func:`prepare_fit_region` of ``model``).

    Returns:
        ``(R (N, 3, 3), t (N, 3), vertices (N, V, 3) or None, seconds per frame of the fits)``; vertices are
        returned for ``"pose+shape"`` (or when given).
    """
    if refine == "none":
        return R, t, vertices, 0.0
    region = region or prepare_fit_region(model)
    mean = model.mean.detach().cpu().double().numpy()
    R_out, t_out = np.array(R, dtype=np.float64), np.array(t, dtype=np.float64)
    v_out = None if vertices is None and refine == "pose" else np.empty((len(indices), *mean.shape), np.float32)
    secs = 0.0
    for k, i in enumerate(tqdm(indices, desc=f"refine ({refine})", disable=not progress, leave=False)):
        item = ds[int(i)]
        v0 = mean if vertices is None else vertices[k]
        t0 = time.perf_counter()
        fit = refine_prediction(position_points(item["position"][None])[0].double().numpy(), region, R_out[k], t_out[k], v0, refine)
        secs += time.perf_counter() - t0
        if fit.n_pairs >= 50:  # too little face to fit: keep the network's answer
            R_out[k], t_out[k] = fit.R, fit.t
        if v_out is not None:
            v_out[k] = fit.vertices if fit.n_pairs >= 50 else v0
    return R_out, t_out, v_out, secs / max(len(indices), 1)


def refine_suffix(refine: str) -> str:
    """The suffix an evaluation's default output folder takes for a refinement: ``""`` for ``"none"``,
    ``"_refine_pose_shape"`` for ``"pose+shape"``."""
    return "" if refine == "none" else "_refine_" + refine.replace("+", "_")
