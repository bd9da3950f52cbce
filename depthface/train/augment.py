"""On-the-fly augmentation of labelled training crops (beyond the paper: ``train pose --augment``).

Every function takes a batch of position images ``(B, 3, H, W)`` in camera-frame mm (invalid pixels
``(0, 0, 0)``) and returns a new one; randomness comes from an explicit ``torch.Generator`` so a run is
reproducible from its seed. What each one imitates:

* :func:`depth_noise`: axial noise of a few mm (the sensor), points stay on their pixel's ray;
* :func:`pixel_dropout`: isolated missing measurements;
* :func:`occluders`: rectangular holes (missing hair / dark regions) and nearer flat patches (a hand, a
  cup, a microphone) over part of the face;
* :func:`jitter_crop_centre`: a worse head localisation than the stored crop centres' (the label moves
  with it, so ``t_rel`` stays correct).
"""

from __future__ import annotations

import torch
from torch import Tensor


def _uniform(b: int, lo: float, hi: float, g: torch.Generator, device) -> Tensor:
    return lo + (hi - lo) * torch.rand(b, generator=g).to(device)


def depth_noise(position: Tensor, max_sigma_mm: float, g: torch.Generator) -> Tensor:
    """Gaussian axial noise, sigma drawn per sample from ``U(0, max_sigma_mm)``; x and y scale with z
    (the point stays on its pixel's ray). ``(B, 3, H, W)`` -> ``(B, 3, H, W)``."""
    b = position.shape[0]
    sigma = _uniform(b, 0.0, max_sigma_mm, g, position.device).view(b, 1, 1, 1)
    z = position[:, 2:3]
    noise = torch.randn(z.shape, generator=g).to(position.device) * sigma
    scale = torch.where(z > 0, (z + noise).clamp_min(1.0) / z.clamp_min(1e-6), torch.zeros_like(z))
    return position * scale


def pixel_dropout(position: Tensor, max_rate: float, g: torch.Generator) -> Tensor:
    """Drop each pixel with a probability drawn per sample from ``U(0, max_rate)``."""
    b, _, h, w = position.shape
    rate = _uniform(b, 0.0, max_rate, g, position.device).view(b, 1, 1, 1)
    keep = torch.rand((b, 1, h, w), generator=g).to(position.device) >= rate
    return position * keep


def occluders(position: Tensor, crop_intrinsics: Tensor, g: torch.Generator, p: float = 0.5,
              max_count: int = 3, size_px: tuple[int, int] = (10, 50)) -> Tensor:
    """With probability ``p`` per sample, 1..max_count rectangles of ``size_px`` sides: half of them holes,
    half flat patches 20-150 mm in front of the nearest measured point (on their pixels' rays, using
    ``crop_intrinsics (B, 4)`` ``[fx, fy, cx, cy]``)."""
    b, _, h, w = position.shape
    out = position.clone()
    u = torch.arange(w, dtype=position.dtype, device=position.device).view(1, w)
    v = torch.arange(h, dtype=position.dtype, device=position.device).view(h, 1)
    r = torch.rand((b, max_count, 7), generator=g).tolist()
    for i in range(b):
        if r[i][0][0] >= p:
            continue
        z = position[i, 2]
        near = float(z[z > 0].min()) if bool((z > 0).any()) else 0.0
        fx, fy, cx, cy = (float(c) for c in crop_intrinsics[i])
        for k in range(1 + int(r[i][0][1] * max_count) % max_count):
            _, _, a, bb, c, d, e = r[i][k]
            sw = int(size_px[0] + a * (size_px[1] - size_px[0]))
            sh = int(size_px[0] + bb * (size_px[1] - size_px[0]))
            x0, y0 = int(c * (w - sw)), int(d * (h - sh))
            if e < 0.5 or near <= 0:
                out[i, :, y0:y0 + sh, x0:x0 + sw] = 0.0
            else:
                zp = max(near - 20.0 - 130.0 * (e - 0.5) * 2, 100.0)
                out[i, 0, y0:y0 + sh, x0:x0 + sw] = (u[:, x0:x0 + sw] - cx) / fx * zp
                out[i, 1, y0:y0 + sh, x0:x0 + sw] = (v[y0:y0 + sh] - cy) / fy * zp
                out[i, 2, y0:y0 + sh, x0:x0 + sw] = zp
    return out


def jitter_crop_centre(crop_centre: Tensor, max_mm: float, g: torch.Generator) -> Tensor:
    """A uniform shift in ``[-max_mm, max_mm]`` per axis: ``(B, 3)`` -> ``(B, 3)`` (move ``t_rel`` by minus it)."""
    shift = (torch.rand(crop_centre.shape, generator=g) * 2 - 1).to(crop_centre) * max_mm
    return crop_centre + shift


def augment_batch(batch: dict[str, Tensor], g: torch.Generator, noise_mm: float = 4.0, dropout: float = 0.25,
                  occluder_p: float = 0.5, jitter_mm: float = 15.0) -> dict[str, Tensor]:
    """All of the above on a labelled dataset batch (keys ``position``, ``crop_centre``, ``crop_intrinsics``,
    ``translation``): a new dict whose ``crop_centre`` is jittered (``translation`` is untouched, so the
    relative target ``translation - crop_centre`` follows the new centre)."""
    pos = batch["position"].float()
    pos = depth_noise(pos, noise_mm, g)
    pos = pixel_dropout(pos, dropout, g)
    pos = occluders(pos, batch["crop_intrinsics"].float(), g, p=occluder_p)
    out = dict(batch)
    out["position"] = pos
    out["crop_centre"] = jitter_crop_centre(batch["crop_centre"].float(), jitter_mm, g)
    return out
