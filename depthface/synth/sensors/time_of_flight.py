"""The time-of-flight family (Kinect v2 / Azure Kinect NFOV-like): :class:`TimeOfFlightProfile`.

A continuous-wave ToF camera measures the phase of modulated IR light that it emits from beside its lens,
so -- unlike structured light -- there is no projector shadow, no disparity quantisation and no correlation
window. Its measurement process (:meth:`TimeOfFlightProfile.measure`), per pixel:

* **returned amplitude** ``a = rho cos(theta) / (z / 1 m)^2``: reflectivity ``rho`` (1 for skin, body and
  background; hair draws one per frame from ``hair_reflectivity``), incidence angle ``theta`` (from the
  depth map, as for structured light) and the inverse-square fall-off. Pixels with ``a`` below
  ``min_amplitude`` read nothing (the driver's confidence threshold);
* **grazing-angle dropout**: ``logistic((theta - grazing_dropout_deg) / grazing_dropout_width_deg)``;
* **depth noise** grows as the amplitude falls (photon shot noise): ``sigma = noise_mm_at_1m / sqrt(a)``,
  i.e. linear in distance on a frontal white surface, larger at grazing angles and on dark hair;
* **mixed ("flying") pixels** at silhouettes: a pixel on a depth discontinuity integrates light from the
  foreground and the background and, with probability ``mixed_pixel_probability``, reads a depth
  ``z_near + alpha (z_far - z_near)``, ``alpha ~ U(0, 1)``, between the two sides (the multipath of the
  silhouette); pixels at Chebyshev distance ``d`` from a discontinuity drop out with ``edge_dropout[d]``
  (the driver's flying-pixel filter removes some);
* **range** ``[min_range_mm, max_range_mm]``, output uint16 mm rounded to 1 mm; **holes** as for
  structured light.

What it does not model: multipath inside concave regions (a positive bias in corners), the systematic
"wiggling" depth error of the modulation, phase wrapping beyond the unambiguous range, motion artefacts of
the multi-frequency capture, IR saturation, and reflectance other than hair's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from numba import njit

from depthface.geometry.camera import Intrinsics
from depthface.synth.render import Window
from depthface.synth.sensors.base import SensorProfile
from depthface.synth.sensors.kernels import (NORMAL, cos2_incidence, edge_distance, farthest_neighbour,
                                             incidence_angle, mix64, mixed_depth, pixel_bits)


@dataclass(frozen=True)
class TimeOfFlightProfile(SensorProfile):
    """Every parameter of a time-of-flight measurement (lengths in mm, angles in degrees). The defaults
    describe a Kinect v2 / Azure Kinect NFOV-like camera: nominal values, not fitted to a real device."""

    family: ClassVar[str] = "time_of_flight"

    camera: str | None = "kinect_v2"
    #: axial noise (mm) on a frontal, fully reflective surface at 1 m; it scales with ``1 / sqrt(amplitude)``.
    noise_mm_at_1m: float = 1.5
    #: amplitude below which a pixel reads nothing (1 = a frontal white surface at 1 m).
    min_amplitude: float = 0.02
    #: per-frame reflectivity of hair relative to skin (dark hair returns less IR: more noise).
    hair_reflectivity: tuple[float, float] = (0.3, 0.9)
    #: incidence angle at which half of the pixels drop out, and the logistic width (degrees; width 0 = off).
    grazing_dropout_deg: float = 80.0
    grazing_dropout_width_deg: float = 2.5
    #: a 4-neighbour depth jump larger than this fraction of the nearer depth is a discontinuity.
    edge_jump_fraction: float = 0.025
    #: dropout probability at Chebyshev distance 0, 1, ... from a discontinuity.
    edge_dropout: tuple[float, ...] = (0.25,)
    #: probability that a kept pixel on a discontinuity reads a depth between the two sides.
    mixed_pixel_probability: float = 0.8
    #: measurement range (mm); outside it the pixel reads 0.
    min_range_mm: float = 500.0
    max_range_mm: float = 4500.0
    #: mean number of random elliptic holes per 640x480 frame (Poisson), and their semi-axes (px).
    holes_per_frame: float = 2.0
    hole_radius_px: tuple[float, float] = (1.5, 5.0)

    def _check_args(self) -> dict:
        return {"free_length": ("edge_dropout",)}

    def __post_init__(self) -> None:
        super().__post_init__()
        bad = self._error
        if not 0 < self.min_range_mm < self.max_range_mm:
            raise bad("need 0 < min_range_mm < max_range_mm")
        if not all(0 <= x <= 1 for x in (*self.edge_dropout, self.mixed_pixel_probability)):
            raise bad("probabilities must lie in [0, 1]")
        if self.hair_reflectivity[0] <= 0:
            raise bad(f"hair_reflectivity must be positive, got {self.hair_reflectivity}")

    def _frame_draw(self, rng: np.random.Generator) -> float:
        """The frame's hair reflectivity."""
        return float(rng.uniform(*self.hair_reflectivity))

    def _kernel(self, depth: np.ndarray, origin: tuple[int, int], labels: np.ndarray, use_labels: bool,
                out: np.ndarray, out_origin: tuple[int, int], intrinsics: Intrinsics, region: Window, window: Window,
                seed: np.uint64, frame_value: float) -> int:
        """See :meth:`SensorProfile._kernel` and the module docstring (``frame_value``: the hair reflectivity)."""
        p, k = self, intrinsics
        (c0, r0, c1, r1), (u0, v0, u1, v1) = region, window
        return _tof_kernel(depth, origin[0], origin[1], labels, use_labels, out, out_origin[0], out_origin[1], k.width,
                           u0, v0, u1, v1, r0, c0, r1, c1, float(k.fx), float(k.fy), float(k.cx), float(k.cy), seed,
                           NORMAL, float(p.edge_jump_fraction), np.asarray(p.edge_dropout, dtype=np.float64).reshape(-1),
                           float(p.mixed_pixel_probability), math.radians(p.grazing_dropout_deg),
                           math.radians(p.grazing_dropout_width_deg), frame_value, float(p.noise_mm_at_1m),
                           float(p.min_amplitude), float(p.min_range_mm), float(p.max_range_mm))


@njit(cache=True, nogil=True)
def _region(depth, ou, ov, r0, c0, r1, c1):  # pragma: no cover
    """The scene depth of region ``[c0,c1) x [r0,r1)`` (float32) and the number of invalid pixels in it."""
    meas = np.zeros((r1 - r0, c1 - c0), np.float32)
    bad = 0
    for v in range(r0, r1):
        for u in range(c0, c1):
            z = depth[v - ov, u - ou]
            if not (z >= 0.0 and z < np.inf):
                bad += 1
            else:
                meas[v - r0, u - c0] = z
    return meas, bad


@njit(cache=True, nogil=True)
def _tof_kernel(depth, ou, ov, labels, use_labels, out, ox, oy, W, u0, v0, u1, v1, r0, c0, r1, c1, fx, fy, cx, cy, seed,
                table, jump, edge_drop, mix_p, graz50, grazw, hair_refl, noise_1m, min_amp, zmin,
                zmax):  # pragma: no cover
    """Every time-of-flight effect on the window ``[u0,u1) x [v0,v1)``; pixel ``(u, v)`` goes to
    ``out[v - oy, u - ox]`` (``W``: the image width, which keys the per-pixel randomness)."""
    s64 = np.uint64(seed)
    meas, bad = _region(depth, ou, ov, r0, c0, r1, c1)
    nd = edge_drop.shape[0]
    dist = edge_distance(meas, jump, max(nd - 1, 1))
    cos2 = cos2_incidence(meas, c0, r0, fx, fy, cx, cy, jump)
    m12 = np.uint64(0xFFF)
    m16 = np.uint64(0xFFFF)
    for v in range(v0, v1):
        i = v - r0
        for u in range(u0, u1):
            j = u - c0
            z = np.float64(meas[i, j])
            if z <= 0.0:
                continue
            hsh = pixel_bits(s64, v, u, W)
            h2 = mix64(hsh)
            d = dist[i, j]
            uni = (np.float64((hsh >> np.uint64(36)) & m16) + 0.5) * (1.0 / 65536.0)
            if d < nd and uni >= 1.0 - edge_drop[d]:
                continue
            if d == 0 and mix_p > 0.0:
                best, zn = farthest_neighbour(meas, i, j, z)
                u2 = (np.float64((h2 >> np.uint64(32)) & m16) + 0.5) * (1.0 / 65536.0)
                if best > jump * min(z, zn) and u2 < mix_p:
                    z = mixed_depth(z, zn, hsh)
            c2 = np.float64(cos2[i, j])
            refl = hair_refl if (use_labels and labels[v - ov, u - ou] == 2) else 1.0
            zm = z * 1e-3
            amp = refl * math.sqrt(max(c2, 0.0)) / (zm * zm)
            if amp < min_amp:
                continue
            if grazw > 0.0:
                th = incidence_angle(c2)
                keep = 1.0 - 1.0 / (1.0 + math.exp(-(th - graz50) / grazw))
                if (np.float64(h2 & m16) + 0.5) * (1.0 / 65536.0) >= keep:
                    continue
            zq = z + noise_1m / math.sqrt(amp) * table[np.int64(hsh & m12)]
            if zq < zmin or zq > zmax:
                continue
            out[v - oy, u - ox] = np.uint16(min(zq + 0.5, 65535.0))
    return bad
