"""Rigid / similarity alignment of corresponding point sets (weighted Umeyama).

``dst ≈ s R src + t`` in the least-squares sense, with ``R`` a proper rotation (``det R = +1``).
Points in mm, rotations acting on column vectors, as everywhere in depthface
(:mod:`depthface.geometry.conventions`).
"""

from __future__ import annotations

import roma
import torch
from torch import Tensor

__all__ = ["umeyama", "apply_similarity"]


def umeyama(src: Tensor, dst: Tensor, weights: Tensor | None = None,
            scale: bool = False) -> tuple[Tensor, Tensor, Tensor]:
    """Weighted least-squares similarity (or rigid) transform from ``src`` to ``dst`` (Umeyama 1991).

    Minimises ``sum_n w_n |dst_n - (s R src_n + t)|^2`` over rotations ``R`` (reflections are
    corrected), translations ``t`` and, if ``scale``, the scale ``s > 0`` (otherwise ``s = 1``):
    ``roma.rigid_points_registration`` (Horn's closed form for the rotation), in float64, the results
    cast back to the input dtype. Differentiable (not at degenerate, e.g. collinear, configurations).

    Args:
        src: ``(B, N, 3)`` source points.
        dst: ``(B, N, 3)`` corresponding target points.
        weights: ``(B, N)`` non-negative weights, or ``None`` for all ones. Zero weights drop points.
        scale: estimate a uniform scale too.

    Returns:
        ``R`` ``(B, 3, 3)``, ``t`` ``(B, 3)``, ``s`` ``(B,)`` with ``dst ≈ s * (R @ src) + t``.
    """
    if src.shape != dst.shape or src.ndim != 3 or src.shape[-1] != 3:
        raise ValueError(f"src and dst must both be (B, N, 3), got {tuple(src.shape)} and {tuple(dst.shape)}")
    dtype = src.dtype
    w = None
    if weights is not None:
        if weights.shape != src.shape[:2]:
            raise ValueError(f"weights must be (B, N) = {tuple(src.shape[:2])}, got {tuple(weights.shape)}")
        w = weights.double()
        w = w / w.sum(dim=1, keepdim=True).clamp_min(1e-12)  # (B, N), sums to 1
    fit = roma.rigid_points_registration(src.double(), dst.double(), weights=w, compute_scaling=scale)
    R, t = fit[0], fit[1]
    s = fit[2] if scale else torch.ones_like(t[:, 0])
    return R.to(dtype), t.to(dtype), s.to(dtype)


def apply_similarity(points: Tensor, R: Tensor, t: Tensor, s: Tensor | None = None) -> Tensor:
    """``s R p + t`` for each point.

    Args:
        points: ``(B, N, 3)`` points.
        R: ``(B, 3, 3)`` rotations.
        t: ``(B, 3)`` translations.
        s: ``(B,)`` scales or ``None`` (rigid).

    Returns:
        ``(B, N, 3)`` transformed points.
    """
    out = points @ R.transpose(-1, -2)
    if s is not None:
        out = out * s[:, None, None]
    return out + t[:, None, :]
