"""The skull super-ellipsoid a subject's hair is fitted to: :func:`skull_scale`, bit for bit numpy's quantile.

:func:`skull_scale` ranks every scalp vertex of a head. A synthetic head is an identity's neutral shape plus a
short, bounded expression update, so :func:`skull_bound` (once per identity and expression) keeps the few
vertices that can reach the quantile whatever the expression's intensity, and ``skull_scale(head, bound)``
ranks only those -- the same value, checked at run time (it falls back to ranking every vertex when a check
fails).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from depthface.synth.meshes import SKULL_AXES_MM, SKULL_CENTRE_MM, SKULL_EXPONENT

#: only vertices above this head-frame height (y down, mm: above the ears' centre) count as scalp
SCALP_BELOW_Y_MM = 20.0


def skull_scale(head_vertices: np.ndarray, quantile: float = 0.98, bound: SkullBound | None = None) -> float:
    """How much the skull super-ellipsoid must grow to enclose ``quantile`` of a head's scalp vertices.

    Args:
        head_vertices: ``(V, 3)`` head-frame vertices (mm) of the subject's head mesh; those with
            ``y < 20`` (above the ears' centre) are used.
        bound: a :func:`skull_bound` that holds for this head (it is one of the heads the bound was made
            for): only its candidate vertices are ranked. The value is the same.

    The value is ``np.quantile`` of the super-ellipsoid "radius" ``(hypot(dx, dz)^e + |dy|^e)^(1/e)`` of those
    vertices (scaled offsets from the centre; numpy's libm ``hypot`` and ``pow``), bit for bit. The radius is
    monotone in ``g = hypot(dx, dz)^e + |dy|^e``; a cheap ``g`` (:func:`_skull_rank_keys`, a few ulps from the
    libm powers) ranks the vertices, and the exact radius is computed only for those whose cheap ``g`` lies
    within a relative 1e-9 of the two order statistics the quantile needs (:func:`_skull_candidates`): every
    other vertex lies on the same side of them either way.
    """
    P = np.ascontiguousarray(np.asarray(head_vertices, dtype=np.float64).reshape(-1, 3))
    args = (*SKULL_CENTRE_MM, *SKULL_AXES_MM, float(SKULL_EXPONENT))
    if bound is not None and bound.quantile == quantile and len(P) == bound.n_vertices:
        a, b, t = _bounded_order_statistics(P, bound.candidates, bound.threshold, float(quantile), *args)
        if t == t:  # NaN: a check failed, rank every vertex
            return _interpolate(a, b, t)
    keys = np.empty(len(P))
    excluded = _skull_rank_keys(P, *args, keys)  # y >= 20: ranked first
    n = len(P) - excluded
    if n == 0:
        return 1.0
    virtual, lo, hi = _quantile_ranks(n, quantile)
    part = np.partition(keys, [lo + excluded, hi + excluded] if hi > lo else lo + excluded)
    a, b = _skull_candidates(P, *args, keys, part[lo + excluded], part[hi + excluded], lo + excluded,
                             hi + excluded)
    return _interpolate(a, b, virtual - lo)


@njit(cache=True, nogil=True, error_model="numpy")
def _skull_rank_keys(P, c0, c1, c2, a0, a1, a2, e, keys):  # pragma: no cover
    """``keys[i]``: vertex ``i``'s ``g`` (see :func:`skull_scale`; for ``e = 2.5`` by square roots, otherwise the
    radius itself), or ``-1 - i`` where ``y >= 20`` (below every ``g >= 0``, and distinct, which keeps the
    partition fast); returns the number of those. Branch-free for ``e = 2.5`` (it vectorises)."""
    n = P.shape[0]
    if e == 2.5:
        for i in range(n):
            g = _skull_key(P[i, 0], P[i, 1], P[i, 2], c0, c1, c2, a0, a1, a2)
            keys[i] = g if P[i, 1] < SCALP_BELOW_Y_MM else -1.0 - i
    else:
        for i in range(n):
            g = _skull_radius((P[i, 0] - c0) / a0, (P[i, 1] - c1) / a1, (P[i, 2] - c2) / a2, e)
            keys[i] = g if P[i, 1] < SCALP_BELOW_Y_MM else -1.0 - i
    excluded = 0
    for i in range(n):
        excluded += keys[i] < 0.0
    return excluded


@njit(cache=True, nogil=True, inline="always")
def _skull_key(x, y, z, c0, c1, c2, a0, a1, a2):  # pragma: no cover
    """The rank key ``g = hypot(dx, dz)^2.5 + |dy|^2.5`` of a point's scaled offsets, by square roots."""
    return _abs_key(abs((x - c0) / a0), abs((y - c1) / a1), abs((z - c2) / a2))


@njit(cache=True, nogil=True, inline="always")
def _skull_radius(d0, d1, d2, e):  # pragma: no cover
    """``(hypot(dx, dz)^e + |dy|^e)^(1/e)`` with libm's ``hypot`` and ``pow``: the numpy expression's bits."""
    return (math.hypot(d0, d2) ** e + abs(d1) ** e) ** (1 / e)


@njit(cache=True, nogil=True, error_model="numpy")
def _skull_candidates(P, c0, c1, c2, a0, a1, a2, e, keys, t_lo, t_hi, lo, hi):  # pragma: no cover
    """The exact radii of rank ``lo`` and ``hi`` in the order of ``keys`` (whose values there are ``t_lo``,
    ``t_hi``): those of the keys within a relative 1e-9 of them, sorted, offset by the count below."""
    if e != 2.5:
        return t_lo, t_hi
    lo_b = t_lo - 1e-9 * t_lo
    hi_b = t_hi + 1e-9 * t_hi
    below = 0
    exact = np.empty(keys.shape[0])
    m = 0
    for i in range(keys.shape[0]):
        k = keys[i]
        if k < lo_b:
            below += 1
        elif k <= hi_b:
            exact[m] = _skull_radius((P[i, 0] - c0) / a0, (P[i, 1] - c1) / a1, (P[i, 2] - c2) / a2, e)
            m += 1
    cand = np.sort(exact[:m])
    return cand[lo - below], cand[hi - below]


def _quantile_ranks(n: int, q: float) -> tuple[float, int, int]:
    """numpy's "linear" quantile of ``n`` values: the virtual index and the two ranks it lies between."""
    virtual = (n - 1) * np.float64(q)
    lo = int(np.floor(virtual))
    hi = min(lo + 1, n - 1)
    return virtual, min(max(lo, 0), n - 1), hi


def _interpolate(a: float, b: float, t: float) -> float:
    """numpy's linear interpolation between two order statistics (``t`` in [0, 1])."""
    diff = b - a
    return float(b - diff * (1 - t) if t >= 0.5 else a + diff * t)


def quantile_linear(values: np.ndarray, q: float) -> float:
    """``np.quantile(values, q)`` (the default "linear" method) of a 1-D float64 array, bit for bit, with one
    partial sort and none of numpy's generic machinery."""
    virtual, lo, hi = _quantile_ranks(len(values), q)
    part = np.partition(values, [lo, hi] if hi > lo else lo)
    return _interpolate(part[lo], part[hi], virtual - lo)


@dataclass(frozen=True)
class SkullBound:
    """The vertices that can hold :func:`skull_scale`'s order statistics for a family of heads (see
    :func:`skull_bound`): ``candidates`` ``(C,)`` int64 vertex indices; every other scalp vertex's rank key lies
    below ``threshold``, and at least as many keys as the quantile needs lie above it."""

    candidates: np.ndarray
    threshold: float
    quantile: float
    n_vertices: int


def skull_bound(neutral: np.ndarray, displacement: np.ndarray, quantile: float = 0.98) -> SkullBound | None:
    """A :class:`SkullBound` for every head ``neutral + delta`` with ``|delta| <= displacement`` per coordinate.

    Args:
        neutral: ``(V, 3)`` head-frame vertices (mm), e.g. an identity's neutral shape.
        displacement: ``(V, 3)`` bound on each coordinate's change (mm), e.g. ``sum_k |w_k| |B_k|`` for an
            expression ``sum_k beta_k B_k`` with ``|beta_k| <= |w_k|``.

    Returns:
        ``None`` when no bound helps (a head with too few scalp vertices, or a different skull exponent).

    Every bound is widened (relative 1e-8, absolute 1e-9 mm) so that rounding cannot break it; whether a head
    really lies inside is checked again when it is used.
    """
    N = np.ascontiguousarray(np.asarray(neutral, dtype=np.float64).reshape(-1, 3))
    D = np.ascontiguousarray(np.asarray(displacement, dtype=np.float64).reshape(-1, 3))
    if SKULL_EXPONENT != 2.5 or N.shape != D.shape:
        return None
    g_lo, g_hi = np.empty(len(N)), np.empty(len(N))
    surely, maybe = np.empty(len(N), np.bool_), np.empty(len(N), np.bool_)
    _key_bounds(N, D, *SKULL_CENTRE_MM, *SKULL_AXES_MM, g_lo, g_hi, surely, maybe)
    n_max = int(maybe.sum())
    if n_max < 2:
        return None
    _, lo, _ = _quantile_ranks(n_max, quantile)
    need = n_max - lo + 2  # keys at or above the lower order statistic, for the most scalp vertices possible
    lows = g_lo[surely]
    if len(lows) <= need:
        return None
    threshold = float(np.partition(lows, len(lows) - need)[len(lows) - need])
    candidates = np.flatnonzero(maybe & (g_hi >= threshold)).astype(np.int64)
    return SkullBound(candidates, threshold, float(quantile), len(N))


@njit(cache=True, nogil=True, error_model="numpy")
def _key_bounds(N, D, c0, c1, c2, a0, a1, a2, g_lo, g_hi, surely, maybe):  # pragma: no cover
    """Per vertex of ``neutral + delta``, ``|delta| <= D`` (widened by a relative 1e-8 and 1e-9 mm): the lowest
    and highest rank key (widened by a relative 1e-8), and whether it is surely / maybe scalp (``y < 20``)."""
    for i in range(N.shape[0]):
        d0 = D[i, 0] * (1 + 1e-8) + 1e-9
        d1 = D[i, 1] * (1 + 1e-8) + 1e-9
        d2 = D[i, 2] * (1 + 1e-8) + 1e-9
        o0 = abs(N[i, 0] - c0)
        o1 = abs(N[i, 1] - c1)
        o2 = abs(N[i, 2] - c2)
        g_lo[i] = _abs_key(max(o0 - d0, 0.0) / a0, max(o1 - d1, 0.0) / a1, max(o2 - d2, 0.0) / a2) * (1 - 1e-8)
        g_hi[i] = _abs_key((o0 + d0) / a0, (o1 + d1) / a1, (o2 + d2) / a2) * (1 + 1e-8)
        surely[i] = N[i, 1] + d1 < SCALP_BELOW_Y_MM
        maybe[i] = N[i, 1] - d1 < SCALP_BELOW_Y_MM


@njit(cache=True, nogil=True, inline="always")
def _abs_key(d0, d1, d2):  # pragma: no cover
    """The rank key of non-negative scaled offsets."""
    sq = d0 * d0 + d2 * d2
    return sq * math.sqrt(math.sqrt(sq)) + d1 * d1 * math.sqrt(d1)


@njit(cache=True, nogil=True, error_model="numpy")
def _bounded_order_statistics(P, cand, threshold, q, c0, c1, c2, a0, a1, a2, e):  # pragma: no cover
    """:func:`skull_scale`'s two order statistics and the interpolation weight from the candidate vertices only:
    ``(a, b, t)``, or ``t = NaN`` when a check fails (the quantile's keys not all above ``threshold``).

    The keys below the threshold are only counted: the ``n`` scalp vertices' sorted keys end with the
    candidates' keys that are at least ``threshold``, so ranks there are ``n - (candidates ranked) + j``, and
    :func:`_skull_candidates` runs on the candidates with ranks shifted by the keys left out."""
    n = 0
    for i in range(P.shape[0]):
        n += P[i, 1] < SCALP_BELOW_Y_MM
    if n == 0:
        return 0.0, 0.0, np.nan
    virtual = (n - 1) * q
    lo = min(max(int(math.floor(virtual)), 0), n - 1)
    hi = min(lo + 1, n - 1)
    keys = np.empty(cand.shape[0])
    idx = np.empty(cand.shape[0], np.int64)
    m = 0
    for k in range(cand.shape[0]):
        i = cand[k]
        if P[i, 1] < SCALP_BELOW_Y_MM:
            keys[m] = _skull_key(P[i, 0], P[i, 1], P[i, 2], c0, c1, c2, a0, a1, a2)
            idx[m] = i
            m += 1
    order = np.argsort(keys[:m], kind="mergesort")
    first = n - m  # the full rank of the smallest candidate key, were every other key below it
    if lo < first or keys[order[lo - first]] < threshold:
        return 0.0, 0.0, np.nan
    t_lo = keys[order[lo - first]]
    t_hi = keys[order[hi - first]]
    if t_lo - 1e-9 * t_lo < threshold:  # _skull_candidates' band must lie above every key left out
        return 0.0, 0.0, np.nan
    sel = idx[:m]
    a, b = _skull_candidates(P[sel], c0, c1, c2, a0, a1, a2, e, keys[:m], t_lo, t_hi, lo - first, hi - first)
    return a, b, virtual - lo
