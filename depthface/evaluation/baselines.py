"""Classic baselines on the same frames as the networks, both calls to :mod:`depthface.facemodel.fit`.

* :func:`icp_pose`: robust rigid point-to-plane ICP of the model's mean face region to a frame's point
  cloud, initialised at the crop centre with the frontal rotation (the pose baseline).
* :func:`fit_3dmm`: that ICP, then the robust fit of pose, identity and expression coefficients (the shape
  baseline).
"""

from __future__ import annotations

import numpy as np
import torch

from depthface.facemodel.fit import FitRegion, FitResult, fit_frame
from depthface.geometry.camera import position_points

__all__ = ["icp_pose", "fit_3dmm"]


def _points(position: np.ndarray) -> np.ndarray:
    """``(3, H, W)`` position image -> ``(N, 3)`` float64 measured points."""
    return position_points(torch.as_tensor(np.asarray(position))[None])[0].double().numpy()


def icp_pose(position: np.ndarray, region: FitRegion, init_t: np.ndarray, init_R: np.ndarray | None = None,
             iterations: int = 30, reject_mm: tuple[float, float] = (60.0, 15.0)) -> tuple[np.ndarray, np.ndarray, float]:
    """Rigid robust point-to-plane ICP of the mean face region to a frame (the pose baseline).

    Args:
        position: ``(3, H, W)`` position image (mm), invalid pixels zero.
        region: the model's fitted region (:func:`depthface.facemodel.fit.prepare_fit_region`).
        init_t: ``(3,)`` initial head centre (the crop centre).
        init_R: ``(3, 3)`` initial rotation (default: identity, a frontal face).
        iterations: ICP iterations; the rejection distance shrinks linearly between ``reject_mm``.

    Returns:
        ``(R (3, 3), t (3,), rms_mm)``: the pose and the RMS of the last iteration's weighted residuals.
    """
    R0 = np.eye(3) if init_R is None else init_R
    res = fit_frame(_points(position), region, R0, init_t, mode="pose", rigid_iterations=iterations,
                    reject_mm=reject_mm)
    return res.R, res.t, res.rms_mm


def fit_3dmm(position: np.ndarray, region: FitRegion, init_R: np.ndarray | None = None,
             init_t: np.ndarray | None = None, **kwargs) -> FitResult:
    """The shape baseline: pose, identity and expression fitted to a frame's points.

    Args:
        position: ``(3, H, W)`` position image (mm).
        region: the model's fitted region.
        init_R, init_t: the start pose (e.g. from :func:`icp_pose`; ``init_t`` is required).
        kwargs: further options of :func:`depthface.facemodel.fit.fit_frame`.
    """
    if init_t is None:
        raise ValueError("fit_3dmm needs a start head centre init_t (e.g. the crop centre or icp_pose's)")
    return fit_frame(_points(position), region, np.eye(3) if init_R is None else init_R, init_t,
                     mode="pose+shape", **kwargs)
