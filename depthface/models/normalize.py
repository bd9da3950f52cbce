"""How position images are normalised for the networks, and why.

A position image holds camera-frame millimetres: absolute values depend on where the head is in the
frame (hundreds of mm laterally, ~1 m in depth), which the networks should not have to learn. We
express every point relative to the **crop centre** ``c`` (the 3D point the crop was cut around) in
units of the crop's half-size (125 mm) and clip to ``[-1, 1]``, the range of G's tanh output:

    n = clip((p - c) / 125 mm, -1, 1)

Pixels without a measurement get ``z = +1`` (as far as the clip allows, like background) and the
lateral position their ray has in the crop-centre plane, so the x/y channels stay a smooth grid.
The pose network predicts the head centre *relative to the crop centre*; ``t = c + t_rel``.

Speed: on CPU tensors that need no gradient the same formula runs as one compiled pass (numba) over the
batch instead of a chain of tensor operations (each a pass over the batch, and with several threads a
barrier each; its cost now: the ``norm`` column of ``benchmarks/bench_end_to_end.py``); CUDA and autograd
keep the tensor operations; ``tests/test_end_to_end.py`` pins the two equal.
"""

from __future__ import annotations

import numpy as np
import torch
from numba import njit
from torch import Tensor

from depthface.geometry.conventions import CROP_SIZE_MM

HALF_SIZE_MM = CROP_SIZE_MM / 2


def normalize_position(position: Tensor, crop_centre: Tensor, crop_intrinsics: Tensor) -> Tensor:
    """Normalise position images for the networks.

    Args:
        position: ``(B, 3, H, W)`` camera-frame mm, invalid pixels ``(0, 0, 0)``.
        crop_centre: ``(B, 3)`` mm.
        crop_intrinsics: ``(B, 4)`` ``[fx, fy, cx, cy]`` of the crop.

    Returns:
        ``(B, 3, H, W)`` in ``[-1, 1]``.
    """
    if position.device.type == "cpu" and position.dtype == torch.float32 and not position.requires_grad:
        return _normalize_cpu(position, crop_centre, crop_intrinsics)
    return _normalize_torch(position, crop_centre, crop_intrinsics)


def _normalize_torch(position: Tensor, crop_centre: Tensor, crop_intrinsics: Tensor) -> Tensor:
    """:func:`normalize_position` as tensor operations (any device, differentiable)."""
    b, _, h, w = position.shape
    c = crop_centre.to(position.dtype).view(b, 3, 1, 1)
    k = crop_intrinsics.to(position.dtype).view(b, 4, 1, 1)
    n = ((position - c) / HALF_SIZE_MM).clamp(-1.0, 1.0)
    valid = position[:, 2:3] > 0
    u = torch.arange(w, device=position.device, dtype=position.dtype).view(1, 1, 1, w)
    v = torch.arange(h, device=position.device, dtype=position.dtype).view(1, 1, h, 1)
    gx = ((u - k[:, 2:3]) / k[:, 0:1] * c[:, 2:3] - c[:, 0:1]) / HALF_SIZE_MM
    gy = ((v - k[:, 3:4]) / k[:, 1:2] * c[:, 2:3] - c[:, 1:2]) / HALF_SIZE_MM
    fill = torch.cat((gx.expand(b, 1, h, w), gy.expand(b, 1, h, w), torch.ones_like(gx).expand(b, 1, h, w)), 1)
    return torch.where(valid, n, fill.clamp(-1.0, 1.0))


@njit(cache=True, nogil=True)
def _normalize_kernel(pos, c, k, half, out):  # pragma: no cover - compiled
    """``out (B, 3, H, W)`` float32 = :func:`normalize_position` of ``pos`` (float32), ``c (B, 3)`` and
    ``k (B, 4)`` float64, in one pass."""
    nb, _, h, w = pos.shape
    for b in range(nb):
        cx, cy, cz = c[b, 0], c[b, 1], c[b, 2]
        fx, fy, px, py = k[b, 0], k[b, 1], k[b, 2], k[b, 3]
        for i in range(h):
            gy = min(max(((i - py) / fy * cz - cy) / half, -1.0), 1.0)
            for j in range(w):
                z = pos[b, 2, i, j]
                if z > 0:
                    out[b, 0, i, j] = min(max((pos[b, 0, i, j] - cx) / half, -1.0), 1.0)
                    out[b, 1, i, j] = min(max((pos[b, 1, i, j] - cy) / half, -1.0), 1.0)
                    out[b, 2, i, j] = min(max((z - cz) / half, -1.0), 1.0)
                else:
                    out[b, 0, i, j] = min(max(((j - px) / fx * cz - cx) / half, -1.0), 1.0)
                    out[b, 1, i, j] = gy
                    out[b, 2, i, j] = 1.0


def _normalize_cpu(position: Tensor, crop_centre: Tensor, crop_intrinsics: Tensor) -> Tensor:
    """:func:`normalize_position` of a float32 CPU batch through the compiled kernel."""
    pos = np.ascontiguousarray(position.detach().numpy())
    b = pos.shape[0]
    c = np.ascontiguousarray(crop_centre.detach().cpu().to(torch.float32).numpy(), dtype=np.float64).reshape(b, 3)
    k = np.ascontiguousarray(crop_intrinsics.detach().cpu().to(torch.float32).numpy(), dtype=np.float64).reshape(b, 4)
    out = np.empty_like(pos)
    _normalize_kernel(pos, c, k, float(HALF_SIZE_MM), out)
    return torch.from_numpy(out)


def network_input(batch: dict[str, Tensor], device: str | torch.device) -> Tensor:
    """The normalised ``(B, 3, 160, 160)`` network input of a dataset batch (keys ``position``,
    ``crop_centre``, ``crop_intrinsics``)."""
    return normalize_position(batch["position"].to(device), batch["crop_centre"].to(device).float(),
                              batch["crop_intrinsics"].to(device).float())
