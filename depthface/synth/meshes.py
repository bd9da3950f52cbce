"""The scene context's meshes: hair, neck and torso, background boxes and the wall plane.

Each builder draws its random numbers from the generator in one call where the numpy original drew them one
by one (a uniform draw is ``low + (high - low) * u`` either way, so the stream and the values are the same),
then computes the vertices in one numba kernel that repeats the original numpy expressions operation by
operation (:mod:`depthface.synth.exact`): the meshes are bit-identical to those of generator version 1, at a
fraction of the Python overhead. :mod:`depthface.synth.context` describes what they model and composites them.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from numba import njit

from depthface.geometry.camera import Intrinsics
from depthface.synth.exact import euler_rotation, mat3, mat3_vec, npy_pow, rigid_row, scaled_rotation, spow

#: The ICT skull as a super-ellipsoid in the head frame (mm): centre, semi-axes, vertical exponent. Over the
#: mean head's scalp vertices the super-ellipsoid "radius" has median 0.99 and 95th percentile 1.05 (1.11-1.13
#: for random identities); ears and the widest skulls stick out up to 1.16.
SKULL_CENTRE_MM = (0.0, -15.0, -12.0)
SKULL_AXES_MM = (80.0, 97.0, 97.0)
SKULL_EXPONENT = 2.5

HAIR_ROWS, HAIR_COLS = 20, 48
NECK_ROWS, NECK_RING = 5, 24
TORSO_ROWS, TORSO_COLS = 18, 36
#: uniform draws of one hair mesh (without ``hair_ragged_mm``), of the neck and torso, of the wall, of a box
HAIR_DRAWS, BODY_DRAWS, WALL_DRAWS, BOX_DRAWS = 24, 13, 4, 8


def _grid_triangles(rows: int, cols: int, wrap: bool) -> np.ndarray:
    """Triangles of a ``rows x cols`` vertex grid (index ``r * cols + c``), columns wrapping if ``wrap``."""
    c_end = cols if wrap else cols - 1
    r, c = np.meshgrid(np.arange(rows - 1), np.arange(c_end), indexing="ij")
    r, c = r.ravel(), c.ravel()
    c1 = (c + 1) % cols
    a, b, d, e = r * cols + c, r * cols + c1, (r + 1) * cols + c, (r + 1) * cols + c1
    return np.concatenate([np.stack([a, d, b], 1), np.stack([b, d, e], 1)]).astype(np.int32)


def _orient_outward(vertices: np.ndarray, triangles: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Flip every triangle if most of them wind inward (normal toward ``centre``)."""
    a, b, c = vertices[triangles[:, 0]], vertices[triangles[:, 1]], vertices[triangles[:, 2]]
    n = np.cross(b - a, c - a)
    if np.sum(np.einsum("ij,ij->i", n, (a + b + c) / 3 - centre)) < 0:
        return triangles[:, [0, 2, 1]]
    return triangles


@lru_cache(maxsize=16)
def surface_triangles(rows: int, cols: int) -> np.ndarray:
    """Outward CCW triangles of a closed-around grid whose rows run from the top (-y) down and whose columns
    run around y with ``(x, z) ~ (sin phi, cos phi)``: the layout of the hair, torso and neck grids.
    Read-only (cached)."""
    phi = np.linspace(0, 2 * np.pi, cols, endpoint=False)[None, :]
    pol = np.linspace(0.05, np.pi - 0.05, rows)[:, None]
    verts = np.stack(np.broadcast_arrays(np.sin(pol) * np.sin(phi), -np.cos(pol), np.sin(pol) * np.cos(phi)), -1)
    tris = np.ascontiguousarray(_orient_outward(verts.reshape(-1, 3), _grid_triangles(rows, cols, True), np.zeros(3)))
    tris.flags.writeable = False
    return tris


@lru_cache(maxsize=16)
def _linspaces(rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """``linspace(0, 1, rows)`` and ``linspace(0, 2 pi, cols, endpoint=False)`` (numpy's values), read-only."""
    s = np.linspace(0, 1, rows)
    phi = np.linspace(0, 2 * np.pi, cols, endpoint=False)
    s.flags.writeable = phi.flags.writeable = False
    return s, phi


#: azimuths (from the back) of the hairline's knots: np.radians([0, 90, 112, 140, 180])
_HAIRLINE_KNOTS = np.radians([0.0, 90.0, 112.0, 140.0, 180.0])
_HAIRLINE_KNOTS.flags.writeable = False


def in_ranges(ranges: np.ndarray, units: np.ndarray) -> np.ndarray:
    """``low + (high - low) * u`` for ``(n, 2)`` rows ``(low, high)`` and ``(n,)`` unit draws ``u``
    (``rng.random``): exactly what ``rng.uniform(low, high)`` returns for the same draw."""
    lo = ranges[:, 0]
    return lo + (ranges[:, 1] - lo) * units


# ---------------------------------------------------------------------------------------------------------------------
# Hair


@njit(cache=True, nogil=True)
def _interp(x, xp, fp):  # pragma: no cover
    """``np.interp(x, xp, fp)`` for a scalar inside ``[xp[0], xp[-1]]`` (numpy's formula and slopes)."""
    n = xp.shape[0]
    if x >= xp[n - 1]:
        return fp[n - 1]
    j = 0
    while j + 1 < n and xp[j + 1] <= x:
        j += 1
    if xp[j] == x:
        return fp[j]
    slope = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j])
    r = slope * (x - xp[j]) + fp[j]
    if r != r:
        r = slope * (x - xp[j + 1]) + fp[j + 1]
        if r != r and fp[j] == fp[j + 1]:
            r = fp[j]
    return r


@njit(cache=True, nogil=True, error_model="numpy")
def _hair_kernel(d, long_hair, scale, s, phi, knots, ragged, jitter, out):  # pragma: no cover
    """Hair vertices ``out`` ``(rows * cols, 3)`` from the uniform draws ``d`` (already in their ranges, the order
    of :func:`hair_mesh`); ``jitter`` ``(rows + 1, cols)``: the clipped, scaled normal draws when ``ragged``."""
    rows = s.shape[0]
    cols = phi.shape[0]
    t, top, back, expo = d[0], d[1], d[2], d[3]
    sc = max(scale, 0.5)
    cx = 0.0 + d[4]
    cy = -15.0 + d[5]
    cz = -12.0 + back / 2
    ax = 80.0 * sc
    ay = 97.0 * sc + 0.5 * t + top
    az = 97.0 * sc + back / 2
    cy = cy - top / 2
    front = d[6]
    side = d[7]
    nape = d[8]
    heights = np.empty(5)
    heights[0] = nape
    heights[1] = side
    heights[2] = side
    heights[3] = front + 0.1 * (side - front)
    heights[4] = front
    y_top = cy - ay
    y_low = cy + 0.97 * ay
    lo = y_top + 20.0
    hi = np.inf if long_hair else y_low
    smooth = np.empty((rows + 1, cols))
    if ragged:
        for i in range(rows + 1):
            for c in range(cols):
                smooth[i, c] = 0.25 * ((jitter[i, (c - 1) % cols] + 2.0 * jitter[i, c]) + jitter[i, (c + 1) % cols])
    for c in range(cols):
        ph = phi[c]
        sp = math.sin(ph)
        cp = math.cos(ph)
        hl = (_interp(min(ph, 2 * np.pi - ph), knots, heights) + d[9] * sp) + d[10] * math.sin(2.0 * ph)
        hl = min(max(hl, lo), hi)
        thick = t * (0.6 + 0.4 * cp)
        sa0 = d[11] * math.sin(1.0 * ph + d[17])
        sa1 = d[13] * math.sin(2.0 * ph + d[19])
        sa2 = d[15] * math.sin(3.0 * ph + d[21])
        for r in range(rows):
            sr = s[r]
            y = y_top + (hl - y_top) * (sr * sr)
            q = min(max(abs(y - cy) / ay, 0.0), 1.0)
            rho = npy_pow(1.0 - npy_pow(q, expo), 1.0 / expo)
            if long_hair and not (y < cy):
                rho = 1.0 - 0.15 * min(max((y - cy) / 300.0, 0.0), 1.0)
            bump = 1.0
            bump += sa0 * math.sin((1 * np.pi) * sr + d[18])
            bump += sa1 * math.sin((2 * np.pi) * sr + d[20])
            bump += sa2 * math.sin((3 * np.pi) * sr + d[22])
            rho = rho * bump
            x = cx + (ax + thick) * rho * sp
            z = cz + (az + thick) * rho * cp
            if ragged:
                radial = smooth[r, c] * min(1.0, 4.0 * sr)
                x = x + radial * sp
                z = z + radial * cp
                if r == rows - 1:
                    y += smooth[rows, c]
            k = r * cols + c
            out[k, 0] = x
            out[k, 1] = y
            out[k, 2] = z


def hair_draws(rng: np.random.Generator, profile, rows: int = HAIR_ROWS,
               cols: int = HAIR_COLS) -> tuple[np.ndarray, bool, np.ndarray | None]:
    """The random numbers of one hair mesh, in the order version 1 drew them: the 24 uniform values (in their
    ranges, laid out as :func:`_hair_kernel` reads them), whether the hair is long, and the ragged outline's
    clipped and scaled normal draws ``(rows + 1, cols)`` (``None`` when ``hair_ragged_mm`` is off)."""
    p = profile
    r = rng.random(HAIR_DRAWS + (1 if p.hair_ragged_mm[1] > 0 else 0))
    long_hair = bool(r[7] < p.long_hair_probability)
    side, nape = (p.long_hair_side_mm, p.long_hair_back_mm) if long_hair else (p.hairline_side_mm, p.hairline_back_mm)
    ranges = np.array([p.hair_thickness_mm, p.hair_top_volume_mm, (0.0, 15.0), (2.2, 2.8), (-2.0, 2.0), (-3.0, 3.0),
                       p.hairline_front_mm, side, nape, (-8.0, 8.0), (-8.0, 8.0)] + [(-1.0, 1.0)] * 6
                      + [(0.0, 2 * np.pi)] * 6, dtype=np.float64)
    u = np.concatenate([r[:7], r[8:HAIR_DRAWS]])
    d = ranges[:, 0] + (ranges[:, 1] - ranges[:, 0]) * u
    d[11:17] *= np.array([0.03, 0.03, 0.02, 0.02, 0.015, 0.015])  # bump amplitudes
    jitter = None
    if p.hair_ragged_mm[1] > 0:  # drawn only when on, so that the default draws what version 1 drew
        lo, hi = p.hair_ragged_mm
        amp = lo + (hi - lo) * r[HAIR_DRAWS]
        jitter = np.clip(rng.standard_normal((rows + 1, cols)), -2.5, 2.5) * amp
    return d, long_hair, jitter


def hair_vertices(draws: tuple[np.ndarray, bool, np.ndarray | None], scale: float, out: np.ndarray,
                  rows: int = HAIR_ROWS, cols: int = HAIR_COLS) -> None:
    """Write the hair's ``(rows * cols, 3)`` head-frame vertices of :func:`hair_draws` into ``out``."""
    d, long_hair, jitter = draws
    s, phi = _linspaces(rows, cols)
    _hair_kernel(d, long_hair, float(scale), s, phi, _HAIRLINE_KNOTS, jitter is not None,
                 _NO_JITTER if jitter is None else jitter, out)


_NO_JITTER = np.zeros((1, 1))


# ---------------------------------------------------------------------------------------------------------------------
# Neck and torso


@njit(cache=True, nogil=True, error_model="numpy")
def _body_kernel(R, t, d, ang, w, eta, om, out):  # pragma: no cover
    """Neck (``5 x 24``) then torso (``18 x 36``) vertices in the camera frame into ``out`` from the body's
    uniform draws ``d`` (in their ranges, the order of :func:`body_draws`)."""
    R_torso = mat3(scaled_rotation(R, d[0]), euler_rotation(d[1], d[2], d[3]))
    joint = mat3_vec(R, 0.0, 110.0, 15.0)
    for k in range(3):
        joint[k] = joint[k] + t[k]
    off = mat3_vec(R_torso, 0.0, d[4], d[5])
    origin = np.empty(3)
    for k in range(3):
        origin[k] = joint[k] + off[k]
    rx, rz = d[6], d[7]
    n_ring = ang.shape[0]
    top = np.empty((n_ring, 3))
    bottom = np.empty((n_ring, 3))
    for c in range(n_ring):
        x = rx * math.sin(ang[c])
        z = rz * math.cos(ang[c])
        rigid_row(x + 0.0, 0.0 + 90.0, z + 12.0, R, t, top, c)
        rigid_row(x * 1.1 + 0.0, 0.0 * 1.1 + 30.0, z * 1.1 + 0.0, R_torso, origin, bottom, c)
    for r in range(w.shape[0]):
        for c in range(n_ring):
            for k in range(3):
                out[r * n_ring + c, k] = (1 - w[r]) * top[c, k] + w[r] * bottom[c, k]
    base = w.shape[0] * n_ring
    a0, a2 = d[8], d[9]
    e_vert, e_horiz, zoff = d[10], d[11], d[12]
    cols = om.shape[0]
    for r in range(eta.shape[0]):
        ce = spow(math.cos(eta[r]), e_vert)
        se = spow(math.sin(eta[r]), e_vert)
        for c in range(cols):
            x = a0 * ce * spow(math.sin(om[c]), e_horiz)
            y = 700.0 * se * 1.0
            z = a2 * ce * spow(math.cos(om[c]), e_horiz)
            rigid_row(x + 0.0, y + (30.0 + 700.0), z + zoff, R_torso, origin, out, base + r * cols + c)


@lru_cache(maxsize=1)
def _body_constants() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """numpy's ``linspace`` values of the neck ring and rows and of the torso's super-ellipsoid grid."""
    ang = np.linspace(0, 2 * np.pi, NECK_RING, endpoint=False)
    w = np.linspace(0, 1, NECK_ROWS)
    eta = np.linspace(-np.pi / 2, np.pi / 2, TORSO_ROWS)
    om = np.linspace(0, 2 * np.pi, TORSO_COLS, endpoint=False)
    tris = np.concatenate([surface_triangles(NECK_ROWS, NECK_RING),
                           surface_triangles(TORSO_ROWS, TORSO_COLS) + NECK_ROWS * NECK_RING]).astype(np.int32)
    for a in (ang, w, eta, om, tris):
        a.flags.writeable = False
    return ang, w, eta, om, tris


def body_ranges(profile) -> np.ndarray:
    """``(13, 2)`` ranges of the neck and torso's uniform draws, in version 1's order."""
    p = profile
    y = p.torso_yaw_deg
    return np.array([p.torso_follow, (-y, y), (-5.0, 5.0), (-4.0, 4.0), p.neck_length_mm, (0.0, 25.0),
                     p.neck_radius_mm, p.neck_radius_mm, p.shoulder_half_width_mm, p.torso_half_depth_mm,
                     p.torso_roundness, (0.7, 1.0), (10.0, 40.0)], dtype=np.float64)


def body_draws(rng: np.random.Generator, profile) -> np.ndarray:
    """The 13 uniform values of the neck and torso (:func:`body_ranges`)."""
    return in_ranges(body_ranges(profile), rng.random(BODY_DRAWS))


BODY_VERTICES = NECK_ROWS * NECK_RING + TORSO_ROWS * TORSO_COLS
NECK_TRIANGLES = 2 * (NECK_ROWS - 1) * NECK_RING


def body_vertices(head_R: np.ndarray, head_t: np.ndarray, draws: np.ndarray, out: np.ndarray) -> None:
    """Write the neck and torso's :data:`BODY_VERTICES` camera-frame vertices of :func:`body_draws` to ``out``."""
    ang, w, eta, om, _ = _body_constants()
    _body_kernel(head_R, head_t, draws, ang, w, eta, om, out)


def body_triangles() -> np.ndarray:
    """The neck's then the torso's triangles (indices into :func:`body_vertices`), read-only."""
    return _body_constants()[4]


# ---------------------------------------------------------------------------------------------------------------------
# Wall and boxes


def wall_plane(head_t: np.ndarray, draws: np.ndarray, profile) -> np.ndarray | None:
    """The wall plane ``[nx, ny, nz, d]`` from the 4 unit draws ``draws`` (distance, yaw, pitch, presence), or
    ``None`` (no wall): :func:`depthface.synth.context.sample_wall`."""
    p = profile
    lo = max(p.wall_distance_mm[0], float(head_t[2]) + p.wall_min_gap_mm)
    hi = max(lo, p.wall_distance_mm[1])
    dist = lo + (hi - lo) * draws[0]
    yaw = -p.wall_yaw_deg + (p.wall_yaw_deg - -p.wall_yaw_deg) * draws[1]
    pitch = -p.wall_pitch_deg + (p.wall_pitch_deg - -p.wall_pitch_deg) * draws[2]
    if not draws[3] < p.wall_probability:
        return None
    n = mat3_vec(euler_rotation(float(yaw), float(pitch), 0.0), 0.0, 0.0, -1.0)
    return np.array([*n, n[2] * dist])


_BOX_TRIS = np.array([[0, 2, 1], [0, 3, 2], [4, 5, 6], [4, 6, 7], [0, 1, 5], [0, 5, 4],
                      [2, 3, 7], [2, 7, 6], [1, 2, 6], [1, 6, 5], [0, 4, 7], [0, 7, 3]], dtype=np.int32)
_BOX_SIGNS = np.array([[-1, -1, -1], [1, -1, -1], [1, 1, -1], [-1, 1, -1], [-1, -1, 1], [1, -1, 1], [1, 1, 1],
                       [-1, 1, 1]], dtype=np.float64)


@njit(cache=True, nogil=True)
def _boxes_kernel(d, box_lo, box_hi, hz, far_mm, width, height, fx, fy, cx, cy, signs, out):  # pragma: no cover
    """Corners of the boxes kept (``8 k`` rows of ``out``) from ``(n, 8)`` unit draws; returns ``k``."""
    k = 0
    corner = np.empty((8, 3))
    for b in range(d.shape[0]):
        s0 = box_lo + (box_hi - box_lo) * d[b, 0]
        s1 = box_lo + (box_hi - box_lo) * d[b, 1]
        s2 = box_lo + (box_hi - box_lo) * d[b, 2]
        R = euler_rotation(-45.0 + 90.0 * d[b, 3], -10.0 + 20.0 * d[b, 4], 0.0)
        zlo = hz + 350.0
        zhi = max(hz + 350.0, far_mm - 100.0)
        z = zlo + (zhi - zlo) * d[b, 5]
        px = 0.0 + width * d[b, 6]
        py = 0.0 + height * d[b, 7]
        centre = np.array([(px - cx) / fx * z, (py - cy) / fy * z, z])
        zmin = np.inf
        for i in range(8):
            rigid_row(signs[i, 0] * s0 / 2, signs[i, 1] * s1 / 2, signs[i, 2] * s2 / 2, R, centre, corner, i)
            zmin = min(zmin, corner[i, 2])
        if zmin < hz + 250.0:
            continue
        out[8 * k:8 * k + 8] = corner
        k += 1
    return k


def box_corners(head_t: np.ndarray, intrinsics: Intrinsics, draws: np.ndarray, far_mm: float, profile,
                out: np.ndarray) -> int:
    """Write the corners ``(8 k, 3)`` of the boxes kept to ``out`` from ``(n, 8)`` unit draws; returns ``k``
    (:func:`depthface.synth.context.box_meshes`; triangles: :func:`box_triangles`)."""
    lo, hi = (float(x) for x in profile.box_size_mm)
    k = intrinsics
    return _boxes_kernel(draws, lo, hi, float(head_t[2]), float(far_mm), float(k.width), float(k.height),
                         float(k.fx), float(k.fy), float(k.cx), float(k.cy), _BOX_SIGNS, out)


@lru_cache(maxsize=16)
def box_triangles(k: int) -> np.ndarray:
    """Triangles ``(12 k, 3)`` of ``k`` boxes of :func:`box_corners`, read-only."""
    tris = (_BOX_TRIS[None] + 8 * np.arange(k, dtype=np.int32)[:, None, None]).reshape(-1, 3)
    tris.flags.writeable = False
    return tris
