"""Nearest neighbours and thresholded Chamfer distances (paper eq. 7 and eq. 8).

Pattern: the nearest-neighbour *indices* are found without gradient (a k-d tree on CPU, chunked
``torch.cdist`` on CUDA), then the distances are recomputed from the gathered points,
``d2 = ((query - reference[idx]) ** 2).sum(-1)``, so they are differentiable with respect to both
point sets. Points in mm (:mod:`depthface.geometry.conventions`).

Thresholds: ``eps_mm`` is compared with the **Euclidean distance** in mm (a pair is kept when
``|p - q| <= eps_mm``, i.e. ``|p - q|^2 <= eps_mm^2``). The paper writes the test on the squared
distance (``min ||.||^2 > eps``) but states eps as "30 mm", a length; we read it as a length.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from scipy.spatial import cKDTree
from torch import Tensor

__all__ = ["nearest_neighbors", "landmark_chamfer", "FittingError", "fitting_error", "fitting_errors"]

#: Elements of one distance block of the CUDA nearest-neighbour search (64 MiB in float32).
_CDIST_BLOCK_ELEMENTS = 1 << 24

#: Below this many query points the k-d tree is queried on one thread (thread start-up dominates).
_KDTREE_PARALLEL_MIN = 4096


def _nn_kdtree(query: Tensor, reference: Tensor) -> Tensor:
    """Nearest ``reference`` row for each ``query`` row with scipy's cKDTree. ``(N,3), (M,3) -> (N,)``."""
    ref = reference.detach().cpu().double().numpy()
    q = query.detach().cpu().double().numpy()
    workers = -1 if len(q) >= _KDTREE_PARALLEL_MIN else 1
    # Unbalanced, non-compact trees build ~2x faster; total time is the same for large queries and
    # the build dominates for small ones (68 landmarks against a 20k-point cloud).
    tree = cKDTree(ref, balanced_tree=False, compact_nodes=False)
    _, idx = tree.query(q, k=1, workers=workers)
    return torch.from_numpy(np.asarray(idx, dtype=np.int64)).to(query.device)


def _nn_cdist(query: Tensor, reference: Tensor, block_elements: int = _CDIST_BLOCK_ELEMENTS) -> Tensor:
    """Nearest ``reference`` row for each ``query`` row by chunked ``torch.cdist``. ``(N,3), (M,3) -> (N,)``.

    Memory stays at about ``max(block_elements, M)`` distances. Both sets are centred on the
    reference mean first so the matrix-product form of cdist keeps its precision in float32.
    """
    with torch.no_grad():
        ref = reference.detach()
        centre = ref.mean(dim=0, keepdim=True)
        ref = ref - centre
        q = query.detach().to(ref.dtype) - centre
        rows = max(1, block_elements // max(1, ref.shape[0]))
        out = [torch.cdist(q[i:i + rows], ref).argmin(dim=1) for i in range(0, q.shape[0], rows)]
        return torch.cat(out) if out else torch.zeros(0, dtype=torch.long, device=query.device)


def _nn_single(query: Tensor, reference: Tensor) -> Tensor:
    if reference.ndim != 2 or reference.shape[-1] != 3 or query.ndim != 2 or query.shape[-1] != 3:
        raise ValueError(f"expected (N, 3) query and (M, 3) reference, got {tuple(query.shape)} and "
                         f"{tuple(reference.shape)}")
    if reference.shape[0] == 0:
        raise ValueError("reference point cloud is empty: no nearest neighbour exists")
    if query.is_cuda or reference.is_cuda:
        return _nn_cdist(query, reference.to(query.device))
    return _nn_kdtree(query, reference)


def nearest_neighbors(query: Tensor, reference: Tensor | Sequence[Tensor]) -> Tensor:
    """Index of the nearest reference point (Euclidean) for every query point; no gradient.

    Uses scipy's ``cKDTree`` for CPU tensors and chunked ``torch.cdist`` (bounded memory) for CUDA
    tensors. Differentiable distances follow by gathering, e.g.
    ``d2 = ((query - reference[idx]) ** 2).sum(-1)``.

    Args:
        query: ``(N, 3)`` or ``(B, N, 3)`` points.
        reference: ``(M, 3)`` for an unbatched query; for a batched query either ``(B, M, 3)`` or a
            sequence of ``B`` tensors ``(M_b, 3)`` of different sizes. Must not be empty.

    Returns:
        ``(N,)`` or ``(B, N)`` int64 indices into ``reference`` (into ``reference[b]`` when batched),
        on the query's device.
    """
    if query.ndim == 2:
        if not isinstance(reference, Tensor):
            raise ValueError("an unbatched (N, 3) query takes one (M, 3) reference tensor")
        return _nn_single(query, reference)
    if query.ndim != 3:
        raise ValueError(f"query must be (N, 3) or (B, N, 3), got {tuple(query.shape)}")
    refs = list(reference.unbind(0)) if isinstance(reference, Tensor) and reference.ndim == 3 else list(reference)
    if len(refs) != query.shape[0]:
        raise ValueError(f"batched query of {query.shape[0]} needs as many reference clouds, got {len(refs)}")
    return torch.stack([_nn_single(query[b], refs[b]) for b in range(query.shape[0])])


def _as_clouds(clouds: Tensor | Sequence[Tensor], batch: int) -> list[Tensor]:
    if isinstance(clouds, Tensor):
        if clouds.ndim != 3:
            raise ValueError(f"clouds must be (B, M, 3) or a list of (M_b, 3), got {tuple(clouds.shape)}")
        clouds = list(clouds.unbind(0))
    clouds = list(clouds)
    if len(clouds) != batch:
        raise ValueError(f"{batch} landmark sets need {batch} point clouds, got {len(clouds)}")
    return clouds


def landmark_chamfer(landmarks: Tensor, clouds: Tensor | Sequence[Tensor], eps_mm: float | None = 30.0,
                     reduction: str = "sum", mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """One-sided landmark-to-cloud Chamfer loss with outlier rejection (paper eq. 7).

    Each landmark is matched to its nearest cloud point; its loss term is the squared distance
    (mm^2). Pairs farther apart than ``eps_mm`` (Euclidean distance, mm — the paper's 30 mm) are
    treated as noise and excluded. An empty cloud, or a sample with no valid pair, gives loss 0
    (never NaN) and still a connected graph, so ``backward`` works on any batch.

    Args:
        landmarks: ``(B, L, 3)`` transformed model landmarks ``Φ(v̄_i)`` in mm (differentiable).
        clouds: ``B`` point clouds ``(M_b, 3)`` (sizes may differ, may be empty) or a ``(B, M, 3)`` tensor.
        eps_mm: distance threshold in mm; ``None`` keeps every pair.
        reduction: ``"sum"`` (eq. 7: sum over valid landmarks) or ``"mean"`` (mean over valid landmarks).
        mask: optional ``(B, L)`` bool; landmarks where it is False are excluded (e.g. not visible).

    Returns:
        ``loss`` ``(B,)`` and ``valid`` ``(B, L)`` bool (which pairs were used).
    """
    if landmarks.ndim != 3 or landmarks.shape[-1] != 3:
        raise ValueError(f"landmarks must be (B, L, 3), got {tuple(landmarks.shape)}")
    if reduction not in ("sum", "mean"):
        raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")
    batch = landmarks.shape[0]
    clouds = _as_clouds(clouds, batch)
    matched, nonempty = [], []
    for b in range(batch):
        cloud = clouds[b].to(device=landmarks.device, dtype=landmarks.dtype)
        if cloud.shape[0] == 0:
            matched.append(landmarks[b].detach())  # zero distance and zero gradient; marked invalid below
            nonempty.append(False)
        else:
            matched.append(cloud[_nn_single(landmarks[b], cloud)])
            nonempty.append(True)
    d2 = ((landmarks - torch.stack(matched)) ** 2).sum(-1)  # (B, L)
    valid = torch.tensor(nonempty, device=landmarks.device)[:, None].expand_as(d2)
    if eps_mm is not None:
        valid = valid & (d2.detach() <= float(eps_mm) ** 2)
    if mask is not None:
        valid = valid & mask.to(device=valid.device, dtype=torch.bool)
    loss = torch.where(valid, d2, torch.zeros_like(d2)).sum(-1)
    if reduction == "mean":
        loss = loss / valid.sum(-1).clamp_min(1).to(loss.dtype)
    return loss, valid


@dataclass(frozen=True)
class FittingError:
    """Two-sided thresholded Chamfer error between a predicted and a ground-truth point set (eq. 8).

    Attributes:
        mean_squared_mm2: eq. 8 — sum of the valid squared nearest-neighbour distances of both
            directions divided by the number of valid pairs ``n_valid`` (mm^2). NaN if ``n_valid == 0``.
        mean_distance_mm: mean Euclidean distance of the same valid pairs (mm). NaN if ``n_valid == 0``.
        n_valid: number of valid pairs, ``n_valid_pred + n_valid_gt`` (the paper's ``N^vt``).
        n_valid_pred / n_valid_gt: valid pairs starting from a predicted / ground-truth point.
        n_flying_pred: predicted points whose nearest ground-truth point is beyond ``eps_mm``.
        n_flying_gt: ground-truth points whose nearest predicted point is beyond ``eps_mm``.
    """

    mean_squared_mm2: float
    mean_distance_mm: float
    n_valid: int
    n_valid_pred: int
    n_valid_gt: int
    n_flying_pred: int
    n_flying_gt: int


def _nn_d2(query: Tensor, reference: Tensor) -> Tensor:
    return ((query - reference[_nn_single(query, reference)]) ** 2).sum(-1)


def fitting_error(pred: Tensor | np.ndarray, gt: Tensor | np.ndarray, eps_mm: float | None) -> FittingError:
    """Mesh fitting error of paper eq. 8 (an evaluation metric: no gradient, float64).

    For every predicted point, the squared distance to its nearest ground-truth point, and for every
    ground-truth point, the squared distance to its nearest predicted point. A pair whose Euclidean
    distance exceeds ``eps_mm`` is a "flying" pair: excluded and counted. The error is the sum of the
    valid squared distances over the number of valid pairs.

    Args:
        pred: ``(N, 3)`` predicted points (mm), e.g. reconstructed mesh vertices after alignment.
        gt: ``(M, 3)`` ground-truth points (mm).
        eps_mm: distance threshold in mm, or ``None`` for no threshold.

    Returns:
        A :class:`FittingError`.
    """
    p = torch.as_tensor(pred).detach().to(torch.float64)
    g = torch.as_tensor(gt).detach().to(device=p.device, dtype=torch.float64)
    if p.ndim != 2 or p.shape[-1] != 3 or g.ndim != 2 or g.shape[-1] != 3:
        raise ValueError(f"pred and gt must be (N, 3) and (M, 3), got {tuple(p.shape)} and {tuple(g.shape)}")
    if p.shape[0] == 0 or g.shape[0] == 0:
        raise ValueError(f"fitting error needs non-empty point sets, got {p.shape[0]} and {g.shape[0]} points")
    d2_pred, d2_gt = _nn_d2(p, g), _nn_d2(g, p)
    limit = float("inf") if eps_mm is None else float(eps_mm) ** 2
    ok_pred, ok_gt = d2_pred <= limit, d2_gt <= limit
    valid = torch.cat((d2_pred[ok_pred], d2_gt[ok_gt]))
    n = int(valid.numel())
    return FittingError(
        mean_squared_mm2=float(valid.sum() / n) if n else float("nan"),
        mean_distance_mm=float(valid.sqrt().sum() / n) if n else float("nan"),
        n_valid=n,
        n_valid_pred=int(ok_pred.sum()),
        n_valid_gt=int(ok_gt.sum()),
        n_flying_pred=int((~ok_pred).sum()),
        n_flying_gt=int((~ok_gt).sum()),
    )


def fitting_errors(preds: Sequence[Tensor | np.ndarray], gts: Sequence[Tensor | np.ndarray],
                   eps_mm: float | None) -> list[FittingError]:
    """:func:`fitting_error` for each pair ``(preds[i], gts[i])``."""
    if len(preds) != len(gts):
        raise ValueError(f"{len(preds)} predictions but {len(gts)} ground truths")
    return [fitting_error(p, g, eps_mm) for p, g in zip(preds, gts)]
