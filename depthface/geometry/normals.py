"""Surface normals: of a position image (by central differences) and of a triangle mesh's vertices.

Conventions (:mod:`depthface.geometry.conventions`): OpenCV camera frame (the camera at the origin looking
along +z), millimetres; mesh triangles wind counter-clockwise seen from outside, so ``(b - a) x (c - a)``
points outward.
"""

from __future__ import annotations

import torch
from torch import Tensor

from depthface.errors import DepthfaceError

__all__ = ["position_normals", "vertex_normals"]


def position_normals(position: Tensor) -> Tensor:
    """Unit normals of position images by central differences, oriented toward the camera.

    At pixel ``(u, v)`` the normal is ``(p[u+1] - p[u-1]) x (p[v+1] - p[v-1])``, normalised and flipped to
    face the camera (``n . p < 0``). It is zero where the pixel or one of its four neighbours has no
    measurement (``z = 0``), on the image border, and where the cross product vanishes.

    Args:
        position: ``(B, 3, H, W)`` position images (mm), ``z = 0`` where nothing was measured.

    Returns:
        ``(B, 3, H, W)`` unit normals (zero where undefined), in the dtype of ``position``.

    Raises:
        DepthfaceError: ``position`` is not ``(B, 3, H, W)``.
    """
    if position.ndim != 4 or position.shape[1] != 3:
        raise DepthfaceError(f"position must be (B, 3, H, W) position images, got shape {tuple(position.shape)}")
    p = position
    out = torch.zeros_like(p)
    if p.shape[-2] < 3 or p.shape[-1] < 3:
        return out
    valid = p[:, 2] > 0  # (B, H, W)
    du = p[:, :, 1:-1, 2:] - p[:, :, 1:-1, :-2]  # (B, 3, H-2, W-2)
    dv = p[:, :, 2:, 1:-1] - p[:, :, :-2, 1:-1]
    ok = (valid[:, 1:-1, 1:-1] & valid[:, 1:-1, 2:] & valid[:, 1:-1, :-2] & valid[:, 2:, 1:-1]
          & valid[:, :-2, 1:-1])[:, None]
    n = torch.linalg.cross(du, dv, dim=1)
    norm = torch.linalg.vector_norm(n, dim=1, keepdim=True)
    n = torch.where(ok & (norm > 0), n / norm.clamp_min(1e-12), torch.zeros_like(n))
    away = (n * p[:, :, 1:-1, 1:-1]).sum(1, keepdim=True) > 0
    out[:, :, 1:-1, 1:-1] = torch.where(away, -n, n)
    return out


def vertex_normals(vertices: Tensor, triangles: Tensor) -> Tensor:
    """Area-weighted unit vertex normals of a triangle mesh.

    Each triangle adds its unnormalised normal ``(b - a) x (c - a)`` (twice its area times the unit
    normal) to its three vertices; the sums are normalised. Outward for triangles wound counter-clockwise
    seen from outside.

    Args:
        vertices: ``(..., V, 3)`` vertices (any leading batch dims).
        triangles: ``(T, 3)`` vertex indices.

    Returns:
        ``(..., V, 3)`` unit normals, zero for vertices no triangle uses.

    Raises:
        DepthfaceError: wrong shapes.
    """
    if vertices.ndim < 2 or vertices.shape[-1] != 3 or triangles.ndim != 2 or triangles.shape[-1] != 3:
        raise DepthfaceError(f"vertex_normals needs (..., V, 3) vertices and (T, 3) triangles, got shapes "
                             f"{tuple(vertices.shape)} and {tuple(triangles.shape)}")
    tri = triangles.to(device=vertices.device, dtype=torch.long)
    a, b, c = (vertices[..., tri[:, k], :] for k in range(3))  # (..., T, 3)
    face = torch.linalg.cross(b - a, c - a, dim=-1)
    n = torch.zeros_like(vertices)
    for k in range(3):
        n = n.index_add(-2, tri[:, k], face)
    return torch.nn.functional.normalize(n, dim=-1, eps=1e-12)
