"""Numba kernels shared by the sensor families: counter-based per-pixel randomness, depth discontinuities,
incidence angles from a depth map, elliptic holes."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
from numba import njit


def normal_table(bits: int = 12) -> np.ndarray:
    """Inverse normal CDF at the ``2^bits`` quantile midpoints, rescaled to unit variance: indexed by random
    bits it gives N(0, 1) samples truncated at about 3.7 sigma."""
    n = 1 << bits
    nd = NormalDist()
    tab = np.array([nd.inv_cdf((k + 0.5) / n) for k in range(n)])
    return tab / np.sqrt(np.mean(tab**2))


NORMAL = normal_table()
NORMAL.flags.writeable = False


@njit(cache=True, nogil=True, inline="always")
def mix64(x):  # pragma: no cover
    """splitmix64's finaliser: a bijective 64-bit hash (uint64 -> uint64)."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))



@njit(cache=True, nogil=True)
def edge_distance(meas, jump, band):  # pragma: no cover
    """Chebyshev distance (int8, capped: 127 = farther than ``band``) of each pixel to a depth
    discontinuity: a 4-neighbour jump larger than ``jump`` times the nearer depth, or measured next to
    unmeasured. Both pixels of a discontinuity are at distance 0.

    Branch-free passes that vectorise: the discontinuities of horizontal and vertical pixel pairs, then (for
    ``band == 1``, every preset) a 3x3 dilation; wider bands stamp each discontinuity's neighbourhood."""
    rh, rw = meas.shape
    edge = np.zeros((rh, rw), np.uint8)
    for i in range(rh):
        row = meas[i]
        e = edge[i]
        for j in range(rw - 1):
            jmp = _jump(row[j], row[j + 1], jump)
            e[j] |= jmp
            e[j + 1] |= jmp
    for i in range(rh - 1):
        top = meas[i]
        bottom = meas[i + 1]
        e0 = edge[i]
        e1 = edge[i + 1]
        for j in range(rw):
            jmp = _jump(top[j], bottom[j], jump)
            e0[j] |= jmp
            e1[j] |= jmp
    if band == 1:
        return _near_edge(edge)
    dist = np.full((rh, rw), 127, np.int8)
    for i in range(rh):
        for j in range(rw):
            if edge[i, j]:
                for ii in range(max(i - band, 0), min(i + band + 1, rh)):
                    for jj in range(max(j - band, 0), min(j + band + 1, rw)):
                        dd = max(abs(ii - i), abs(jj - j))
                        if dist[ii, jj] > dd:
                            dist[ii, jj] = dd
    return dist


@njit(cache=True, nogil=True)
def _near_edge(edge):  # pragma: no cover
    """:func:`edge_distance` with ``band == 1`` from the discontinuity mask: 0 on it, 1 beside it (8-neighbours),
    127 elsewhere."""
    rh, rw = edge.shape
    row_any = np.zeros((rh, rw), np.uint8)  # the pixel or a left / right neighbour is on a discontinuity
    for i in range(rh):
        e = edge[i]
        o = row_any[i]
        o[0] = e[0] | (e[1] if rw > 1 else np.uint8(0))
        for j in range(1, rw - 1):
            o[j] = e[j - 1] | e[j] | e[j + 1]
        if rw > 1:
            o[rw - 1] = e[rw - 2] | e[rw - 1]
    dist = np.empty((rh, rw), np.int8)
    for i in range(rh):
        e = edge[i]
        a = row_any[i]
        b = row_any[max(i - 1, 0)]
        c = row_any[min(i + 1, rh - 1)]
        o = dist[i]
        for j in range(rw):
            near = a[j] | b[j] | c[j]
            o[j] = np.int8(127) - np.int8(126) * np.int8(near) - np.int8(e[j])
    return dist


@njit(cache=True, nogil=True, inline="always")
def _jump(z, z2, jump):  # pragma: no cover
    """1 (uint8) where two neighbouring depths form a discontinuity: one measured and one not, or both measured
    with ``|z2 - z| > jump * min(z, z2)`` (``z2 - z`` in the depths' own float32)."""
    a = z > 0.0
    b = z2 > 0.0
    return np.uint8((a != b) | (a & (abs(z2 - z) > jump * min(z, z2))))


@njit(cache=True, nogil=True, inline="always")
def farthest_neighbour(meas, i, j, z):  # pragma: no cover
    """The measured 4-neighbour of pixel ``(i, j)`` whose depth differs most from ``z`` (order: below, above,
    right, left; the first of equals): ``(|difference|, its depth)``, ``(0, 0)`` when none is measured."""
    rh, rw = meas.shape
    best = 0.0
    zn = 0.0
    for k in range(4):
        ii = i + (1 if k == 0 else -1 if k == 1 else 0)
        jj = j + (1 if k == 2 else -1 if k == 3 else 0)
        if ii < 0 or ii >= rh or jj < 0 or jj >= rw:
            continue
        z2 = np.float64(meas[ii, jj])
        if z2 > 0.0 and abs(z2 - z) > best:
            best = abs(z2 - z)
            zn = z2
    return best, zn


@njit(cache=True, nogil=True, inline="always")
def mixed_depth(z, zn, hsh):  # pragma: no cover
    """A depth between ``z`` and its neighbour's ``zn``, ``z + alpha (zn - z)`` with ``alpha`` from bits 52-63 of
    the pixel's hash (a mixed, "flying" pixel)."""
    alpha = (np.float64((hsh >> np.uint64(52)) & np.uint64(0xFFF)) + 0.5) * (1.0 / 4096.0)
    return z + alpha * (zn - z)


@njit(cache=True, nogil=True, error_model="numpy")
def cos2_incidence(meas, c0, r0, fx, fy, cx, cy, jump):  # pragma: no cover
    """Squared cosine of the incidence angle per region pixel (float32; 1 on the region border and
    where nothing is measured), from depth differences (a branch-free loop that vectorises).

    For a depth map z(u, v) with gradients gu, gv (per pixel) the normal is
    ``n ~ (-fx gu, -fy gv, fx gu rx + fy gv ry + z)`` and ``n . r = z`` for the ray ``r = (rx, ry, 1)``, so
    ``cos^2 = z^2 / (|n|^2 |r|^2)``. Gradients are central differences over the neighbours on the same
    surface (jump at most ``jump`` times the depth), one-sided when only one is, 0 when none is.
    """
    rh, rw = meas.shape
    out = np.ones((rh, rw), np.float32)
    ifx = np.float32(1.0 / fx)
    ify = np.float32(1.0 / fy)
    fx32 = np.float32(fx)
    fy32 = np.float32(fy)
    j32 = np.float32(jump)
    cx32 = np.float32(cx)
    one = np.float32(1.0)
    zero = np.float32(0.0)
    for i in range(1, rh - 1):
        ry = np.float32((r0 + i - cy) * ify)
        ry2 = ry * ry + one
        rowc = meas[i]
        rowt = meas[i - 1]
        rowb = meas[i + 1]
        o = out[i]
        for j in range(1, rw - 1):
            z = rowc[j]
            zl = rowc[j - 1]
            zr = rowc[j + 1]
            zt = rowt[j]
            zb = rowb[j]
            dl = z - zl
            dr = zr - z
            dt = z - zt
            db = zb - z
            wl = np.float32((abs(dl) <= j32 * zl) & (abs(dl) <= j32 * z) & (zl > zero))
            wr = np.float32((abs(dr) <= j32 * zr) & (abs(dr) <= j32 * z) & (zr > zero))
            wt = np.float32((abs(dt) <= j32 * zt) & (abs(dt) <= j32 * z) & (zt > zero))
            wb = np.float32((abs(db) <= j32 * zb) & (abs(db) <= j32 * z) & (zb > zero))
            su = wl + wr
            sv = wt + wb
            gu = (wl * dl + wr * dr) / (su + np.float32(su == zero))
            gv = (wt * dt + wb * db) / (sv + np.float32(sv == zero))
            rx = (np.float32(c0 + j) - cx32) * ifx
            ax = fx32 * gu
            ay = fy32 * gv
            az = ax * rx + ay * ry + z
            den = (ax * ax + ay * ay + az * az) * (rx * rx + ry2)
            c2 = z * z / (den + np.float32(den == zero))
            o[j] = c2 if z > zero else one
    return out


@njit(cache=True, nogil=True, inline="always")
def incidence_angle(c2):  # pragma: no cover
    """acos(sqrt(c2)) for c2 in [0, 1], |error| < 7e-5 rad (Abramowitz & Stegun 4.4.45)."""
    c = math.sqrt(min(max(c2, 0.0), 1.0))
    return math.sqrt(1.0 - c) * (1.5707288 + c * (-0.2121144 + c * (0.0742610 - 0.0187293 * c)))


@njit(cache=True, nogil=True, inline="always")
def pixel_bits(s64, v, u, W):  # pragma: no cover
    """64 random bits of pixel (u, v): splitmix64 of the seed and the pixel index (counter based, so
    independent of the window and of the order of evaluation)."""
    return mix64(s64 + np.uint64(v * W + u) * np.uint64(0x9E3779B97F4A7C15))



@njit(cache=True, nogil=True)
def stamp_holes(out, draws, width, height, r_lo, r_hi, u0, v0, u1, v1, ox, oy):  # pragma: no cover
    """Zero random ellipses inside the window; pixel ``(u, v)`` is ``out[v - oy, u - ox]``. Each row of the
    ``(N, 5)`` uniform ``draws`` gives one: centre anywhere in the ``width x height`` frame, semi-axes in
    ``[r_lo, r_hi]``, any orientation."""
    for k in range(draws.shape[0]):
        cu = draws[k, 0] * width - 0.5
        cv = draws[k, 1] * height - 0.5
        a = r_lo + draws[k, 2] * (r_hi - r_lo)
        b = r_lo + draws[k, 3] * (r_hi - r_lo)
        ang = draws[k, 4] * np.pi
        r = max(a, b)
        ca = math.cos(ang)
        sa = math.sin(ang)
        for v in range(max(v0, int(cv - r)), min(v1, int(cv + r) + 2)):
            for u in range(max(u0, int(cu - r)), min(u1, int(cu + r) + 2)):
                x = (u - cu) * ca + (v - cv) * sa
                y = -(u - cu) * sa + (v - cv) * ca
                if (x / a) ** 2 + (y / b) ** 2 <= 1.0:
                    out[v - oy, u - ox] = 0
