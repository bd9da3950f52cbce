"""The structured-light family (Kinect v1): :class:`StructuredLightProfile` and its measurement kernels.

The measurement process of a structured-light sensor, in this order (:meth:`StructuredLightProfile.measure`):

* **IR-projector shadow**: the emitter sits ``projector_offset_mm`` (75 mm) along camera +x. A pixel is
  unlit when, along its image row (the epipolar line), a pixel on the projector's side maps to the same
  or a later projector column ``u - fx b / z``: background just beside a foreground silhouette, on the
  side *away from the projector* (with b > 0: the image's LEFT of objects, as in unmirrored Kinect v1
  frames), gets no measurement; the shadow is ``fx b (1/z_fg - 1/z_bg)`` pixels wide (about 21 px for a
  head at 1 m in front of a wall at 2 m). Surfaces facing away from the projector are unlit too.
* **depth edges**: a 4-neighbour jump larger than ``edge_jump_fraction * z`` (or to no measurement) is
  a discontinuity. Pixels within 1 px of one are displaced laterally by ``round(sigma_L * N(0, 1))``
  pixels per axis, with Nguyen, Izadi & Lovell (2012)'s ``sigma_L = 0.8 + 0.035 theta / (pi/2 - theta)``
  px (ragged silhouettes); pixels at Chebyshev distance ``d`` from a discontinuity drop out with
  probability ``edge_dropout[d]``; kept pixels on a discontinuity become **flying pixels** with
  probability ``flying_pixel_probability`` (depth interpolated between the two sides).
* **grazing-angle dropout**: the incidence angle ``theta`` between the viewing ray and the surface
  normal (estimated from the depth map by finite differences) makes a pixel drop out with probability
  ``logistic((theta - grazing_dropout_deg) / grazing_dropout_width_deg)``.
* **hair**: dark hair absorbs IR; hair pixels drop out with a per-frame probability drawn from
  ``hair_dropout`` and get ``hair_noise_mm`` extra axial noise.
* **disparity noise and quantisation**: Kinect v1 measures disparity ``delta = f b / z`` with 1/8-pixel
  resolution (``disparity_subpixel``). Gaussian noise is added in disparity with a standard deviation
  chosen so that noise *plus* quantisation reproduce Khoshelham & Elberink (2012)'s
  ``sigma_Z = 1.425e-3 Z^2`` (m) on a frontal plane, plus Nguyen et al.'s incidence-angle term
  ``1e-4 / sqrt(z) * theta^2 / (pi/2 - theta)^2`` m (converted to disparity; theta capped at
  ``max_noise_angle_deg``); then delta is rounded to 1/8 px and ``z = f b / delta_q`` -- so depth comes
  in the sensor's steps of about ``z^2 / (8 f b)`` (2.9 mm at 1 m, 11.5 mm at 2 m).
* **range**: depth below ``min_range_mm`` or above ``max_range_mm`` is no measurement; the output is
  uint16 mm (0 = no measurement), as a Kinect driver delivers it.
* **holes**: ``holes_per_frame`` (Poisson mean, per 640x480 frame) random elliptic blobs of no data.
* **correlation window** (``correlation_radius_px``, off by default): the sensor matches the speckle
  pattern over a window, so the depth it reports is an average over ``2 r + 1`` pixels across each
  axis of the surface (a box filter restricted to the same surface: neighbours within
  ``edge_jump_fraction`` of the pixel's depth) -- the nose becomes a soft bump, eye sockets fill in. It
  runs on the lit depth before edges, normals and noise.

Every random decision is keyed to the pixel (a counter-based hash of one seed drawn from the generator), so
a window is exactly the full-frame simulation restricted to it.

What it does not model: the spatially correlated (block-matching) structure of real disparity noise and its
vertical banding, depth-dependent lens distortion and the sensor's systematic depth bias, IR interference,
motion blur, temporal effects and material reflectance beyond hair; the face's skin, eyes and beard reflect
like any other surface.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import ClassVar

import numpy as np
from numba import njit

from depthface.geometry.camera import Intrinsics
from depthface.synth.params import ADDED
from depthface.synth.render import Window
from depthface.synth.sensors.base import BASE_MARGIN_PX, SensorProfile
from depthface.synth.sensors.kernels import (NORMAL, cos2_incidence, edge_distance, farthest_neighbour,
                                             incidence_angle, mix64, mixed_depth, pixel_bits)


@dataclass(frozen=True)
class StructuredLightProfile(SensorProfile):
    """Every parameter of a structured-light measurement (lengths in mm, angles in degrees).

    Ranges ``(low, high)`` are sampled uniformly per frame. See the module docstring for the physics.
    """

    family: ClassVar[str] = "structured_light"

    # --- disparity, noise, quantisation (Khoshelham & Elberink 2012; Nguyen, Izadi & Lovell 2012) -------------
    #: focal length (px) of the IR camera that measures disparity (Kinect v1: about 580 px).
    focal_px: float = 580.0
    #: projector-camera baseline (mm) for the disparity-depth relation ``delta = f b / z``.
    baseline_mm: float = 75.0
    #: disparity resolution: 1 / disparity_subpixel pixel (Kinect v1: 1/8); 0 = no quantisation.
    disparity_subpixel: int = 8
    #: total axial noise on a frontal plane, noise + quantisation: ``sigma_Z = c Z^2`` with Z and sigma in metres.
    depth_noise_coeff: float = 1.425e-3
    #: Nguyen's incidence-angle term ``k / sqrt(z) * theta^2 / (pi/2 - theta)^2`` (k in metres, z in metres).
    angle_noise_coeff_m: float = 1.0e-4
    #: theta is capped at this angle in the noise terms (the terms diverge at 90 deg).
    max_noise_angle_deg: float = 80.0
    #: Nguyen's lateral noise at depth edges: ``sigma_L = a + b theta / (pi/2 - theta)`` pixels.
    lateral_noise_px: float = 0.8
    lateral_noise_angle_px: float = 0.035
    #: measurement range (mm); outside it the pixel reads 0.
    min_range_mm: float = 400.0
    max_range_mm: float = 4000.0

    # --- where measurements are lost ------------------------------------------------------------------------
    #: IR emitter position along camera x (mm): the shadow falls on the far side (b > 0: image left); 0 = off.
    projector_offset_mm: float = 75.0
    #: a 4-neighbour depth jump larger than this fraction of the nearer depth is a discontinuity.
    edge_jump_fraction: float = 0.025
    #: dropout probability at Chebyshev distance 0, 1, ... pixels from a discontinuity.
    edge_dropout: tuple[float, ...] = (0.35, 0.12)
    #: probability that a kept pixel on a discontinuity reads a depth between the two sides.
    flying_pixel_probability: float = 0.15
    #: incidence angle at which half of the pixels drop out, and the logistic width (degrees; 0 = off).
    grazing_dropout_deg: float = 76.0
    grazing_dropout_width_deg: float = 3.0
    #: mean number of random elliptic holes per 640x480 frame (Poisson), and their semi-axes (px).
    holes_per_frame: float = 6.0
    hole_radius_px: tuple[float, float] = (1.5, 8.0)
    #: per-frame dropout probability of hair pixels, and extra axial noise on hair (mm).
    hair_dropout: tuple[float, float] = (0.0, 0.6)
    hair_noise_mm: float = 2.0

    # --- scene context ---------------------------------------------------------------------------------------
    #: probability that the subject has hair, and that it is long (beside the face, down the neck).

    # --- realism option (issue 11; the default reproduces generator version 1) -------------------------------
    #: half-width (px) of the correlation window that averages depth over the surface (0 = off; Kinect v1
    #: matches over about 9x9 px, radius 4).
    correlation_radius_px: int = field(default=0, metadata=ADDED)

    def _check_args(self) -> dict:
        return {"signed": ("projector",), "free_length": ("edge_dropout",)}

    def __post_init__(self) -> None:
        super().__post_init__()
        bad = self._error
        if not 0 < self.min_range_mm < self.max_range_mm:
            raise bad("need 0 < min_range_mm < max_range_mm")
        if self.focal_px <= 0 or self.baseline_mm <= 0:
            raise bad("focal_px and baseline_mm must be positive")
        probs = (*self.edge_dropout, *self.hair_dropout, self.flying_pixel_probability)
        if not all(0 <= x <= 1 for x in probs):
            raise bad("probabilities must lie in [0, 1]")
        if not 0 < self.max_noise_angle_deg < 90:
            raise bad("max_noise_angle_deg must lie in (0, 90)")
        if not (isinstance(self.correlation_radius_px, int) and 0 <= self.correlation_radius_px <= 32):
            raise bad(f"correlation_radius_px must be an integer in [0, 32], got {self.correlation_radius_px}")

    def disparity_noise_px(self) -> float:
        """Standard deviation (px) of the Gaussian disparity noise added before quantisation.

        Khoshelham's total ``sigma_Z = c Z^2`` is ``c f b`` pixels in disparity (Z in m, b in m, f in px);
        quantisation to 1/s px contributes ``1 / (s sqrt(12))``; the remainder is the noise.
        """
        total = self.depth_noise_coeff * self.focal_px * self.baseline_mm * 1e-3
        q = 1.0 / self.disparity_subpixel if self.disparity_subpixel > 0 else 0.0
        return math.sqrt(max(total * total - q * q / 12.0, 0.0))

    def input_margin(self, intrinsics: Intrinsics) -> tuple[int, int, int, int]:
        """The window's margin plus the correlation window and, on the projector's side, the widest possible
        shadow ``fx |b| (1/min_range - 1/max_range)`` (objects there can shadow the window)."""
        reach = 1 / self.min_range_mm - 1 / self.max_range_mm
        shadow = math.ceil(abs(intrinsics.fx * self.projector_offset_mm) * reach)
        m = BASE_MARGIN_PX + self.correlation_radius_px
        return (m + (shadow if self.projector_offset_mm < 0 else 0), m,
                m + (shadow if self.projector_offset_mm > 0 else 0), m)

    def _kernel_margin(self) -> int:
        return BASE_MARGIN_PX + self.correlation_radius_px

    def _frame_draw(self, rng: np.random.Generator) -> float:
        """The frame's hair dropout probability."""
        return float(rng.uniform(*self.hair_dropout))

    def _kernel(self, depth: np.ndarray, origin: tuple[int, int], labels: np.ndarray, use_labels: bool,
                out: np.ndarray, out_origin: tuple[int, int], intrinsics: Intrinsics, region: Window, window: Window,
                seed: np.uint64, frame_value: float) -> int:
        """See :meth:`SensorProfile._kernel` and the module docstring (``frame_value``: the hair dropout)."""
        p, k = self, intrinsics
        fb = p.focal_px * p.baseline_mm
        sub = float(p.disparity_subpixel)
        scan_margin = math.ceil(abs(k.fx * p.projector_offset_mm) / p.min_range_mm) + 1
        (c0, r0, c1, r1), (u0, v0, u1, v1) = region, window
        return _sensor_kernel(
            depth, origin[0], origin[1], labels, use_labels, out, out_origin[0], out_origin[1], k.width, u0, v0, u1,
            v1, r0, c0, r1, c1, float(k.fx), float(k.fy), float(k.cx), float(k.cy), seed, NORMAL,
            float(k.fx * p.projector_offset_mm), scan_margin, int(p.correlation_radius_px), float(p.edge_jump_fraction),
            np.asarray(p.edge_dropout, dtype=np.float64).reshape(-1), float(p.lateral_noise_px),
            float(p.lateral_noise_angle_px), float(p.flying_pixel_probability), math.radians(p.grazing_dropout_deg),
            math.radians(p.grazing_dropout_width_deg), frame_value, float(p.hair_noise_mm), float(fb), sub,
            _depth_levels(fb, sub, p.min_range_mm), p.disparity_noise_px(), float(p.angle_noise_coeff_m * 1e3),
            math.radians(p.max_noise_angle_deg), float(p.min_range_mm), float(p.max_range_mm))


@lru_cache(maxsize=64)
def _depth_levels(fb: float, sub: float, min_range_mm: float) -> np.ndarray:
    """Depth of each quantised disparity level ``k / sub``, up to a little below ``min_range_mm`` (read-only,
    cached)."""
    if sub <= 0:
        return np.zeros(1)
    n_levels = int(fb * sub / (0.5 * min_range_mm)) + 2
    levels = fb * sub / np.maximum(np.arange(n_levels, dtype=np.float64), 1e-300)
    levels.flags.writeable = False
    return levels


@njit(cache=True, nogil=True, error_model="numpy")
def _measurable(depth, ou, ov, r0, c0, r1, c1, proj_b, scan_margin):  # pragma: no cover
    """The clean depth of region ``[c0,c1) x [r0,r1)`` where the projector lights it, ``(rh, rw)``
    float32 (0 = nothing or shadow), and the number of invalid (NaN, inf, negative) input pixels.

    Scanning a row away from the projector (``proj_b = fx b``; b > 0: right to left), a pixel is lit iff its
    projector column ``u - proj_b / z`` lies beyond every one seen so far; pixels up to ``scan_margin``
    columns outside the region on the projector's side are scanned as potential occluders. Pixel (u, v) is
    ``depth[v - ov, u - ou]``. Per row, the projector columns first (branch-free: it vectorises; +inf where
    nothing is measured), then the scan.
    """
    H, W = depth.shape
    rh = r1 - r0
    rw = c1 - c0
    bad = 0
    meas = np.zeros((rh, rw), np.float32)
    if proj_b > 0.0:
        start, stop, step = min(ou + W - 1, c1 - 1 + scan_margin), c0 - 1, -1
        ua, ub = c0, start + 1
    else:
        start, stop, step = max(ou, c0 - scan_margin), c1, 1
        ua, ub = start, c1
    n = max(ub - ua, 0)
    ues = np.empty(n)
    for v in range(r0, r1):
        i = v - r0
        row = depth[v - ov]
        for k in range(n):
            u = ua + k
            z = row[u - ou]
            valid = (z >= 0.0) & (z < np.inf)
            bad += (1 - np.int64(valid)) * np.int64((c0 <= u) & (u < c1))
            ue = -step * (u - proj_b / z)  # decreases along the scan while lit
            ues[k] = ue if valid & (z != 0.0) else np.inf
        run = np.inf
        out = meas[i]
        for u in range(start, stop, step):
            ue = ues[u - ua]
            lit = ue < run
            run = ue if lit else run
            if c0 <= u < c1:
                out[u - c0] = row[u - ou] if lit else np.float32(0.0)
    return meas, bad



@njit(cache=True, nogil=True)
def _correlation_blur(meas, radius, jump):  # pragma: no cover
    """Box average over ``2 radius + 1`` pixels along rows, then along columns, of the neighbours on the same
    surface as the centre pixel (depth within ``jump`` times its depth); unmeasured pixels stay 0."""
    return _blur_columns(_blur_columns(meas, radius, jump, True), radius, jump, False)


@njit(cache=True, nogil=True)
def _blur_columns(meas, radius, jump, along_rows):  # pragma: no cover
    """One pass of :func:`_correlation_blur`: along rows (over columns) or along columns (over rows)."""
    rh, rw = meas.shape
    out = np.zeros_like(meas)
    n_along = rw if along_rows else rh
    for i in range(rh):
        for j in range(rw):
            z = meas[i, j]
            if z <= 0.0:
                continue
            c = j if along_rows else i
            s = 0.0
            n = 0
            for k in range(max(c - radius, 0), min(c + radius + 1, n_along)):
                z2 = meas[i, k] if along_rows else meas[k, j]
                if z2 > 0.0 and abs(z2 - z) <= jump * z:
                    s += z2
                    n += 1
            out[i, j] = s / n
    return out


@njit(cache=True, nogil=True, inline="always")
def _edge_depth(meas, dist, cos2, i, j, d, hsh, table, jump, edge_drop, lateral, lat0, lat1, fly_p,
                max_angle):  # pragma: no cover
    """The depth pixel ``(i, j)`` reads within the band around depth discontinuities (0 = dropped): lateral
    noise (a displaced read), edge dropout and flying pixels (a depth between the two sides)."""
    rh, rw = meas.shape
    nd = edge_drop.shape[0]
    m12 = np.uint64(0xFFF)
    si = i
    sj = j
    if d <= 1 and lateral:  # Nguyen's lateral noise: read a pixel displaced by round(sigma_L N(0, 1))
        th = min(incidence_angle(cos2[i, j]), max_angle)
        sl = lat0 + lat1 * th / (0.5 * math.pi - th)
        si = min(max(i + int(np.rint(sl * table[np.int64((hsh >> np.uint64(24)) & m12)])), 0), rh - 1)
        sj = min(max(j + int(np.rint(sl * table[np.int64((hsh >> np.uint64(12)) & m12)])), 0), rw - 1)
    z = np.float64(meas[si, sj])
    uni = (np.float64((hsh >> np.uint64(36)) & np.uint64(0xFFFF)) + 0.5) * (1.0 / 65536.0)
    keep = 1.0 - edge_drop[d] if d < nd else 1.0
    if z <= 0.0 or uni >= keep:
        return 0.0
    if fly_p > 0.0 and dist[si, sj] == 0 and uni < keep * fly_p:
        best, zn = farthest_neighbour(meas, si, sj, z)
        if best > jump * min(z, zn):
            z = mixed_depth(z, zn, hsh)
    return z


@njit(cache=True, nogil=True, error_model="numpy")
def _noise_row(src, cos2, labels, cos2_small, sigma_pre, angle_k_mm, max_angle, hair_sigma_mm, fb, delta0, sigma,
               theta):  # pragma: no cover
    """Per pixel of a window row (branch-free, so that it vectorises): ``fb / z``, the disparity noise's standard
    deviation (Nguyen's angle term where the incidence angle exceeds ``acos(sqrt(cos2_small))``, hair noise on
    hair; the rest get ``sigma_pre``) and the incidence angle. Unmeasured pixels get values nobody reads."""
    half_pi = 0.5 * math.pi
    hair_var = hair_sigma_mm * hair_sigma_mm
    for k in range(src.shape[0]):
        z = np.float64(src[k])
        c2 = cos2[k]
        steep = c2 < cos2_small
        hair = labels[k] == 2
        th = incidence_angle(c2)
        thc = min(th, max_angle)
        ratio = thc / (half_pi - thc)
        sz = angle_k_mm / math.sqrt(z * 1e-3) * ratio * ratio  # Nguyen's angle term, mm
        sz2 = sz * sz if steep else 0.0  # extra axial variance, mm^2
        sz2 = sz2 + hair_var if hair else sz2
        sd = fb / (z * z)  # d(disparity) / dz
        full = math.sqrt(sigma_pre * sigma_pre + sz2 * sd * sd)
        delta0[k] = fb / z
        sigma[k] = full if (steep | hair) else sigma_pre
        theta[k] = th


@njit(cache=True, nogil=True)
def _measure(src, cos2, labels, use_labels, ou, ov, out, ox, oy, W, u0, v0, u1, v1, r0, c0, s64, table, graz50, grazw,
             hair_drop, hair_sigma_mm, fb, subpix, ztab, sigma_pre, angle_k_mm, max_angle, zmin,
             zmax):  # pragma: no cover
    """Per window pixel: grazing-angle and hair dropout, disparity noise, quantisation, range.
    ``labels`` pixel (u, v) is at ``[v - ov, u - ou]``, ``out`` pixel at ``[v - oy, u - ox]``. The noise's
    standard deviation comes from :func:`_noise_row`, a row at a time."""
    half_pi = 0.5 * math.pi
    # Below 45 deg Nguyen's angle term is < 0.1 mm (< 0.3 % of the total in quadrature), so it is skipped there
    # unless the grazing-angle dropout starts earlier.
    graz_lo = graz50 - 8.0 * grazw if grazw > 0.0 else half_pi
    cos2_small = np.float32(math.cos(min(math.radians(45.0), graz_lo)) ** 2)
    nz = ztab.shape[0]
    m12 = np.uint64(0xFFF)
    m16 = np.uint64(0xFFFF)
    n = u1 - u0
    delta0 = np.empty(n)
    sigma = np.empty(n)
    theta = np.empty(n)
    no_labels = np.zeros(n, np.uint8)
    for v in range(v0, v1):
        i = v - r0
        lab = labels[v - ov, u0 - ou:u1 - ou] if use_labels else no_labels
        _noise_row(src[i, u0 - c0:u1 - c0], cos2[i, u0 - c0:u1 - c0], lab, cos2_small, sigma_pre, angle_k_mm,
                   max_angle, hair_sigma_mm, fb, delta0, sigma, theta)
        for k in range(n):
            j = u0 - c0 + k
            z = np.float64(src[i, j])
            if z <= 0.0:
                continue
            hsh = pixel_bits(s64, v, u0 + k, W)
            steep = cos2[i, j] < cos2_small
            hair = lab[k] == 2
            if steep or hair:
                keep = 1.0
                if steep:
                    th = theta[k]
                    if grazw > 0.0 and th > graz_lo:
                        keep = 1.0 - 1.0 / (1.0 + math.exp(-(th - graz50) / grazw))
                if hair:
                    keep *= 1.0 - hair_drop
                # fresh bits for this decision (the edge stage used bits 36-51 of hsh)
                uni = (np.float64(mix64(hsh) & m16) + 0.5) * (1.0 / 65536.0)
                if uni >= keep:
                    continue
            delta = delta0[k] + sigma[k] * table[np.int64(hsh & m12)]
            if subpix > 0.0:
                q = int(math.floor(delta * subpix + 0.5))
                if q <= 0:
                    continue
                zq = ztab[q] if q < nz else fb * subpix / q
            else:
                if delta <= 0.0:
                    continue
                zq = fb / delta
            if zq < zmin or zq > zmax:
                continue
            out[v - oy, u0 + k - ox] = np.uint16(min(zq + 0.5, 65535.0))


@njit(cache=True, nogil=True)
def _sensor_kernel(depth, ou, ov, labels, use_labels, out, ox, oy, W, u0, v0, u1, v1, r0, c0, r1, c1, fx, fy, cx, cy,
                   seed, table, proj_b, scan_margin, blur_radius, jump, edge_drop, lat0, lat1, fly_p, graz50, grazw,
                   hair_drop, hair_sigma_mm, fb, subpix, ztab, sigma_pre, angle_k_mm, max_angle, zmin,
                   zmax):  # pragma: no cover
    """All sensor effects on the window ``[u0,u1) x [v0,v1)``; pixel ``(u, v)`` goes to ``out[v - oy, u - ox]``
    (uint16, zero on entry; ``W`` is the image width, which keys the per-pixel randomness). ``depth`` and
    ``labels`` cover a box from pixel ``(ou, ov)`` that contains the working region ``[c0,c1) x [r0,r1)``
    (window plus margin). Returns the number of invalid input pixels (NaN, inf, negative) met; they are treated
    as no measurement.

    Per window pixel, in one pass: the edge effects (:func:`_edge_depth`, where the pixel is near a
    discontinuity; their depth is stored as float32 first, as the region is), then grazing-angle and hair
    dropout, disparity noise, quantisation and range."""
    s64 = np.uint64(seed)
    meas, bad = _measurable(depth, ou, ov, r0, c0, r1, c1, proj_b, scan_margin)
    if blur_radius > 0:
        meas = _correlation_blur(meas, blur_radius, jump)
    nd = edge_drop.shape[0]
    dist = edge_distance(meas, jump, max(nd - 1, 1))
    cos2 = cos2_incidence(meas, c0, r0, fx, fy, cx, cy, jump)
    lateral = lat0 > 0.0 or lat1 > 0.0
    src = meas.copy()
    for v in range(v0, v1):
        i = v - r0
        for u in range(u0, u1):
            j = u - c0
            d = dist[i, j]
            if d > 1 and d >= nd:
                continue
            src[i, j] = _edge_depth(meas, dist, cos2, i, j, d, pixel_bits(s64, v, u, W), table, jump, edge_drop,
                                    lateral, lat0, lat1, fly_p, max_angle)
    _measure(src, cos2, labels, use_labels, ou, ov, out, ox, oy, W, u0, v0, u1, v1, r0, c0, s64, table, graz50,
             grazw, hair_drop, hair_sigma_mm, fb, subpix, ztab, sigma_pre, angle_k_mm, max_angle, zmin, zmax)
    return bad
