"""On-the-fly augmentation of training crops: rays kept, rates and ranges respected, reproducible."""

from __future__ import annotations

import torch

from depthface.geometry.camera import position_image
from depthface.train.augment import augment_batch, depth_noise, jitter_crop_centre, occluders, pixel_dropout

K = torch.tensor([[300.0, 300.0, 80.0, 80.0]])


def plane(z: float = 800.0, b: int = 2) -> torch.Tensor:
    """``(b, 3, 160, 160)`` position images of a fronto-parallel plane at depth z."""
    d = torch.full((b, 1, 160, 160), z)
    return position_image(d, K.expand(b, 4))


def g(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_depth_noise_keeps_every_point_on_its_ray():
    p = plane()
    n = depth_noise(p, 4.0, g())
    assert not torch.equal(n, p)
    assert torch.allclose(n[:, :2] / n[:, 2:], p[:, :2] / p[:, 2:], atol=1e-5)  # x/z and y/z unchanged
    assert (n[:, 2] - p[:, 2]).abs().max() < 4.0 * 6  # within 6 sigma of the largest sigma
    assert torch.equal(depth_noise(p, 0.0, g()), p)


def test_dropout_rate_zero_is_identity_and_dropped_pixels_are_invalid():
    p = plane()
    assert torch.equal(pixel_dropout(p, 0.0, g()), p)
    d = pixel_dropout(p, 0.5, g(1))
    dropped = d[:, 2] == 0
    assert 0 < dropped.float().mean() < 0.5 and (d[:, :, :][dropped[:, None].expand(-1, 3, -1, -1)] == 0).all()


def test_occluders_are_holes_or_nearer_patches_on_their_rays():
    p = plane(b=32)
    o = occluders(p, K.expand(32, 4), g(2), p=1.0)
    changed = (o != p).any(1)
    assert changed.any(dim=(1, 2)).all()  # p = 1: every sample has at least one occluder
    z = o[:, 2][changed]
    assert ((z == 0) | ((z <= 780.0) & (z >= 650.0 - 1e-3))).all()  # holes, or 20-150 mm in front of the plane
    valid = o[:, 2] > 0
    assert torch.allclose((o[:, :2] / o[:, 2:].clamp_min(1e-6))[valid[:, None].expand(-1, 2, -1, -1)],
                          (p[:, :2] / p[:, 2:])[valid[:, None].expand(-1, 2, -1, -1)], atol=1e-5)


def test_jitter_range_and_batch_reproducible():
    c = torch.zeros(1000, 3)
    j = jitter_crop_centre(c, 15.0, g())
    assert j.abs().max() <= 15.0 and j.abs().max() > 14.0
    batch = {"position": plane(), "crop_centre": torch.tensor([[0.0, 0, 800]] * 2),
             "crop_intrinsics": K.expand(2, 4), "translation": torch.tensor([[1.0, 2, 850]] * 2)}
    a, b = augment_batch(batch, g(5)), augment_batch(batch, g(5))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert torch.equal(a["translation"], batch["translation"]) and not torch.equal(a["crop_centre"], batch["crop_centre"])
