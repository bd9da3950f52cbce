"""Classic baselines on the same frames as the networks.

* :func:`icp_pose`: rigid point-to-plane ICP of the mean face to a frame's point cloud, initialised
  at the crop centre with the frontal rotation (the pose baseline).
* :func:`fit_3dmm`: identity + expression coefficients and a rigid pose fitted to the point cloud by
  alternating nearest-neighbour correspondences and (Gauss-Newton / linear least-squares) updates
  (the shape baseline).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation

from depthface.geometry.alignment import umeyama


def position_normals(position: np.ndarray) -> np.ndarray:
    """Unit normals of a position image ``(3, H, W)`` (mm) by central differences -> ``(H, W, 3)``;
    oriented toward the camera; zero where a neighbour is invalid."""
    p = np.moveaxis(position, 0, -1).astype(np.float64)
    valid = p[..., 2] > 0
    dx = np.zeros_like(p)
    dy = np.zeros_like(p)
    dx[:, 1:-1] = p[:, 2:] - p[:, :-2]
    dy[1:-1] = p[2:] - p[:-2]
    ok = valid.copy()
    ok[:, 1:-1] &= valid[:, 2:] & valid[:, :-2]
    ok[1:-1] &= valid[2:] & valid[:-2]
    ok[[0, -1], :] = False
    ok[:, [0, -1]] = False
    n = np.cross(dx, dy)
    norm = np.linalg.norm(n, axis=-1, keepdims=True)
    n = np.where((norm > 0) & ok[..., None], n / np.maximum(norm, 1e-12), 0.0)
    flip = (n * p).sum(-1) > 0  # make normals face the camera at the origin
    n[flip] *= -1
    return n


def _small_rotation(w: np.ndarray) -> np.ndarray:
    return Rotation.from_rotvec(w).as_matrix()


def icp_pose(position: np.ndarray, model_points: np.ndarray, init_t: np.ndarray, init_R: np.ndarray | None = None,
             iterations: int = 30, reject_mm: tuple[float, float] = (60.0, 15.0)) -> tuple[np.ndarray, np.ndarray, float]:
    """Rigid point-to-plane ICP of head-frame model points to a frame.

    Args:
        position: ``(3, H, W)`` position image (mm), invalid pixels zero.
        model_points: ``(N, 3)`` head-frame points of the reference face (mm).
        init_t: ``(3,)`` initial head centre (the crop centre).
        init_R: ``(3, 3)`` initial rotation (default: identity, a frontal face).
        iterations: ICP iterations; the rejection distance shrinks linearly between ``reject_mm``.

    Returns:
        ``(R (3, 3), t (3,), rms_mm)`` of the last iteration's inlier pairs.
    """
    normals = position_normals(position)
    valid = (position[2] > 0) & (np.abs(normals).sum(-1) > 0)
    cloud = np.moveaxis(position, 0, -1)[valid].astype(np.float64)
    cn = normals[valid]
    if len(cloud) < 10:
        return (np.eye(3) if init_R is None else init_R), np.asarray(init_t, np.float64), float("nan")
    tree = cKDTree(cloud)
    R = np.eye(3) if init_R is None else np.asarray(init_R, np.float64)
    t = np.asarray(init_t, np.float64).copy()
    rms = float("nan")
    for it in range(iterations):
        thr = reject_mm[0] + (reject_mm[1] - reject_mm[0]) * it / max(iterations - 1, 1)
        p = model_points @ R.T + t
        d, j = tree.query(p, distance_upper_bound=thr)
        keep = np.isfinite(d)
        if keep.sum() < 6:
            break
        p, q, n = p[keep], cloud[j[keep]], cn[j[keep]]
        # linearised point-to-plane: minimise sum ((p + w x (p - c) + dt - q) . n)^2 about the centre c = t
        r = p - t
        A = np.concatenate((np.cross(r, n), n), axis=1)
        b = ((q - p) * n).sum(-1)
        x, *_ = np.linalg.lstsq(A, b, rcond=None)
        dR = _small_rotation(x[:3])
        R = dR @ R
        t = t + x[3:]
        rms = float(np.sqrt(np.mean(b**2)))
        if np.linalg.norm(x) < 1e-6:
            break
    return R, t, rms


def _bounded_ridge(H: np.ndarray, g: np.ndarray, n_free: int, iterations: int = 20) -> np.ndarray:
    """Minimise ``c^T H c / 2 - g^T c`` with ``c[n_free:]`` in [0, 1] by an active-set loop: coefficients
    that leave their bounds are fixed there and the rest re-solved (exact once the active set settles)."""
    k = len(g)
    at = np.full(k, np.nan)  # fixed value, NaN = free
    c = np.linalg.solve(H, g)
    for _ in range(iterations):
        bounded = np.arange(k) >= n_free
        low, high = bounded & (c < 0), bounded & (c > 1)
        if not (low.any() or high.any()):
            break
        at[low], at[high] = 0.0, 1.0
        fixed = ~np.isnan(at)
        free = ~fixed
        c = at.copy()
        c[free] = np.linalg.solve(H[np.ix_(free, free)], g[free] - H[np.ix_(free, fixed)] @ at[fixed])
        # release fixed coefficients whose gradient pulls them back inside
        grad = H @ c - g
        release = fixed & (((at == 0.0) & (grad < 0)) | ((at == 1.0) & (grad > 0)))
        at[release] = np.nan
    return np.clip(c, np.r_[np.full(n_free, -np.inf), np.zeros(k - n_free)], np.r_[np.full(n_free, np.inf), np.ones(k - n_free)])


def fit_3dmm(position: np.ndarray, mean: np.ndarray, basis: np.ndarray, init_R: np.ndarray, init_t: np.ndarray,
             iterations: int = 10, reject_mm: tuple[float, float] = (30.0, 10.0), ridge: float = 25.0,
             n_identity: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit morphable-model coefficients and a rigid pose to a frame's point cloud (the shape baseline).

    Alternates (1) nearest-neighbour correspondences from the posed model points to the cloud, rejecting
    pairs beyond a shrinking distance, (2) a point-to-plane (along the cloud's normals), bounded ridge least-squares solve for the coefficients in the
    head frame (``ridge`` = sigma^2, the squared correspondence noise in mm^2, weighs the N(0, 1) prior of
    the coefficients; expression weights are bounded to [0, 1]) and (3) a rigid Umeyama update of the pose.

    Args:
        position: ``(3, H, W)`` position image (mm).
        mean: ``(N, 3)`` head-frame mean of the fitted points.
        basis: ``(N, 3, K)`` identity then expression modes of the same points (mm per unit).
        init_R, init_t: the initial pose (e.g. from :func:`icp_pose`).
        n_identity: how many of the K modes are identity (the rest are clipped to [0, 1]).

    Returns:
        ``(coefficients (K,), R (3, 3), t (3,))``.
    """
    normals = position_normals(position)
    valid = (position[2] > 0) & (np.abs(normals).sum(-1) > 0)
    cloud = np.moveaxis(position, 0, -1)[valid].astype(np.float64)
    cloud_n = normals[valid]
    k = basis.shape[-1]
    coeffs = np.zeros(k)
    R, t = np.asarray(init_R, np.float64), np.asarray(init_t, np.float64)
    if len(cloud) < 10:
        return coeffs, R, t
    tree = cKDTree(cloud)
    n_id = k if n_identity is None else n_identity
    for it in range(iterations):
        thr = reject_mm[0] + (reject_mm[1] - reject_mm[0]) * it / max(iterations - 1, 1)
        shape = mean + np.einsum("nck,k->nc", basis, coeffs)
        d, j = tree.query(shape @ R.T + t, distance_upper_bound=thr)
        keep = np.isfinite(d)
        if keep.sum() < 20:
            break
        q_head = (cloud[j[keep]] - t) @ R  # matched cloud points and normals in the head frame
        n_head = cloud_n[j[keep]] @ R
        # point-to-plane residuals n . (m + B c - q), linear in c
        A = np.einsum("nc,nck->nk", n_head, basis[keep])
        b = (n_head * (q_head - mean[keep])).sum(-1)
        coeffs = _bounded_ridge(A.T @ A + ridge * np.eye(k), A.T @ b, n_id)
        shape = mean + np.einsum("nck,k->nc", basis, coeffs)
        Rt, tt, _ = umeyama(torch.from_numpy(shape[keep][None]), torch.from_numpy(cloud[j[keep]][None]))
        R, t = Rt[0].numpy(), tt[0].numpy()
    return coeffs, R, t
    tree = cKDTree(cloud)
    B = basis.reshape(-1, k)
    n_id = k if n_identity is None else n_identity
    for it in range(iterations):
        thr = reject_mm[0] + (reject_mm[1] - reject_mm[0]) * it / max(iterations - 1, 1)
        shape = mean + (B @ coeffs).reshape(-1, 3)
        d, j = tree.query(shape @ R.T + t, distance_upper_bound=thr)
        keep = np.isfinite(d)
        if keep.sum() < 20:
            break
        q_head = (cloud[j[keep]] - t) @ R  # matched cloud points in the head frame
        rows = np.repeat(keep, 3)
        A = B[rows]
        b = (q_head - mean[keep]).reshape(-1)
        # bounded ridge least squares: identity free (Gaussian prior), expression weights in [0, 1]
        coeffs = _bounded_ridge(A.T @ A + ridge * np.eye(k), A.T @ b, n_id)
        shape = mean + (B @ coeffs).reshape(-1, 3)
        Rt, tt, _ = umeyama(torch.from_numpy(shape[keep][None]), torch.from_numpy(cloud[j[keep]][None]))
        R, t = Rt[0].numpy(), tt[0].numpy()
    return coeffs, R, t
