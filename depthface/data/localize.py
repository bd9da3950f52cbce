"""Automatic head localisation from one depth frame: the head centre, with no ground truth.

Why one file (about 500 lines): the localiser is one algorithm. Its five steps below are private functions
that share :class:`LocalizerConfig`, the metric sample grid (``_Grid``) and the reasons they give for
rejecting a region; :func:`localize_head` is the entry point (:func:`subsample_depth` and
:func:`segment_depth` are public for tests and benchmarks). Splitting the steps into modules would turn
those internals into an API between files without making any step reusable elsewhere.

POSEidon cropped real frames around the ground-truth head; depthface must not need to. This module
finds the head centre (mm, camera frame, :mod:`depthface.geometry.conventions`) from depth alone, in a
few milliseconds per 640x480 frame, for the metric crop of :mod:`depthface.data.preprocess`.

Method (:func:`localize_head`)
    1. **Subsample** by blocks (default 4 x 4: 640x480 -> 160x120), each block taking its *nearest*
       depth in ``[min_depth_mm, max_depth_mm]``. This fills the sensor's dropouts (dark hair, grazing
       surfaces, edge pixels) so the head does not fall apart, and never invents a depth.
    2. **Segment by depth continuity**: 8-connected components in which neighbouring samples join
       when their depths differ by at most ``jump_mm`` (scaled by ``z / 1 m``, like the sample spacing).
       A person is split from the wall and the objects behind by the depth gap between them. Components
       whose metric area (samples times ``(stride z / f)^2``) is below ``min_area_mm2`` are ignored.
    3. **Climb to the top of the person**: from each remaining component (nearest mean depth first,
       at most ``max_candidates``), take its crown (a robust highest sample; "up" is the camera's
       ``-y``) and, while another component has samples just above the crown (``climb_mm`` up,
       ``slab_halfwidth_mm`` sideways) at a depth within ``climb_depth_mm`` of the crown's, add it and
       repeat. This joins a head to the torso below it (the chin hides the neck, so they are separate
       components) and hair fragments to the head, but never the wall (at least a head's depth behind).
    4. **Head test**: the band ``top_band_mm`` below the crown must be head-sized across (lateral
       extent in ``[min_top_width_mm, max_top_width_mm]``): a wall or a torso-like box, flat and wide at
       the top, fails; so does a thin pole. The **head slab** is the samples within ``slab_mm`` below the
       crown and ``slab_halfwidth_mm`` sideways of it. It must hold at least ``min_slab_area_mm2`` of
       surface, be convex like a head (a quadric fitted to it has a radius of curvature across in
       ``[min_radius_x_mm, max_radius_x_mm]`` and a positive one vertically) and not be made of planes
       (two RANSAC planes explain at most ``max_plane_cover`` of it; boxes, furniture and wall corners
       are planar, a head is curved everywhere). Of the people that pass, the nearest head wins.
       If none passes and a region was too wide at its top (a tilted wall that the person touches in
       depth joins their component), the dominant plane of that region (RANSAC) is removed when it is
       large (``min_plane_area_mm2``) and the search runs once more. When nothing passes, the frame has
       **no head**: the result has ``centre = None`` and a ``reason`` naming the regions examined and
       why each was rejected.
    5. **Centre**: the visible surface is the front of the head, so the centroid ``c`` of the slab's
       samples is moved back along its viewing ray by ``behind_surface_mm`` and down (camera ``+y``) by
       ``below_centroid_mm``: ``centre = c + a c / |c| + b (0, 1, 0)``. ``a`` and ``b`` are calibrated by
       least squares on simulated Kinect frames (syndata2 scenes, :func:`depthface.synth.sensor.simulate_kinect`
       over the full frame, a different seed from the benchmark's): ``python benchmarks/bench_localize.py
       --calibrate``. The centre is the face model's head centre (90 mm behind the eye corners), the
       same point as the ground truth ``t``.

The estimate ignores the head's rotation: its error grows with yaw (the visible surface moves sideways);
the pose network's predicted centre offset and :func:`depthface.data.preprocess.refine` correct it.

``score`` in ``[0, 1]`` says how head-like the slab was (top width against a typical head width, enough
surface, the crown not cut by the image's top border); it is informative, not a probability.
Accuracy on simulated Kinect frames and on the same frames exported in the Biwi layout:
``benchmarks/bench_localize.py`` (the docs quote its table).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numba import njit

from depthface.errors import InputError
from depthface.geometry.camera import Intrinsics

__all__ = ["LocalizerConfig", "Localization", "HeadNotFoundError", "localize_head", "segment_depth", "subsample_depth"]


class HeadNotFoundError(InputError):
    """No head was found in a depth frame (the message says why)."""


@dataclass(frozen=True)
class LocalizerConfig:
    """Parameters of :func:`localize_head` (mm unless stated; see the module docstring for their roles).

    Attributes:
        stride: block size of the subsampling (pixels).
        min_depth_mm, max_depth_mm: depths outside this range are ignored.
        jump_mm: largest depth step between neighbouring samples of one component at 1 m.
        min_area_mm2: smallest metric area of a component worth examining.
        max_candidates: at most this many components (nearest first) are examined.
        climb_mm, climb_depth_mm, max_climb_steps: the climb to the top of a person.
        top_band_mm: height of the band below the crown whose width must be head-like.
        min_top_width_mm, max_top_width_mm: accepted lateral extent of that band.
        slab_mm, slab_halfwidth_mm: the head slab below the crown.
        min_slab_area_mm2: smallest visible head surface.
        min_radius_x_mm, max_radius_x_mm: a head's surface is convex both ways: the radius of curvature
            across (x) of a quadric fitted to the slab lies in this range, and along (y) it is positive.
        max_plane_cover: at most this share of the slab's samples lie on two planes (RANSAC; a box or a
            wall corner is all planes, a head is curved everywhere: about 0.5-0.85 on simulated heads).
        plane_iterations, min_plane_area_mm2: when no head is found and a region is too wide at its top
            (e.g. a wall the person touches in depth), its dominant plane (RANSAC, this many hypotheses)
            is removed if it covers at least this area and half the region, and the rest is examined
            again (once).
        behind_surface_mm: ``a``: the centre lies this far behind the slab centroid along its ray.
        below_centroid_mm: ``b``: and this far below it (camera +y).
        typical_width_mm: head width used for the score.
    """

    stride: int = 4
    min_depth_mm: float = 300.0
    max_depth_mm: float = 4000.0
    jump_mm: float = 50.0
    min_area_mm2: float = 8000.0
    max_candidates: int = 6
    climb_mm: float = 80.0
    climb_depth_mm: float = 200.0
    max_climb_steps: int = 8
    top_band_mm: float = 100.0
    min_top_width_mm: float = 90.0
    max_top_width_mm: float = 280.0
    slab_mm: float = 220.0
    slab_halfwidth_mm: float = 110.0
    min_slab_area_mm2: float = 8000.0
    behind_surface_mm: float = 88.0
    below_centroid_mm: float = 18.0
    min_radius_x_mm: float = 20.0
    max_radius_x_mm: float = 400.0
    max_plane_cover: float = 0.9
    plane_iterations: int = 40
    min_plane_area_mm2: float = 250_000.0
    typical_width_mm: float = 175.0


@dataclass(frozen=True, eq=False)
class Localization:
    """What the localiser found.

    Attributes:
        centre: ``(3,)`` float64 head centre in mm (camera frame), or ``None`` when no head was found.
        score: head-likeness in ``[0, 1]`` (0 when not found).
        reason: one line: where the head was found, or why none was.
        surface_centroid: ``(3,)`` centroid of the head slab's samples (``None`` if not found).
        n_samples: number of subsampled depth samples in the head slab.
        extras: diagnostics (crown height and depth, top width, slab area, whether the crown touches
            the image's top border).
    """

    centre: np.ndarray | None
    score: float
    reason: str
    surface_centroid: np.ndarray | None = None
    n_samples: int = 0
    extras: dict = field(default_factory=dict)

    @property
    def found(self) -> bool:
        return self.centre is not None


# ------------------------------------------------------------------------------------------------
# subsampling and segmentation


@njit(cache=True, nogil=True)
def _block_min(depth, s, zmin, zmax, out):  # pragma: no cover - compiled
    """``out[i, j]`` = the smallest depth in ``[zmin, zmax]`` of the ``s x s`` block ``(i, j)`` of
    ``depth`` (0 if it has none). Taking the nearest valid depth fills sensor dropouts (dark hair,
    grazing surfaces) and never creates a depth that is not measured."""
    h, w = out.shape
    for i in range(h):
        for j in range(w):
            best = np.float32(np.inf)
            for a in range(i * s, i * s + s):
                for b in range(j * s, j * s + s):
                    z = np.float32(depth[a, b])
                    if z >= zmin and z <= zmax:
                        best = min(best, z)
            out[i, j] = best if best < np.inf else np.float32(0.0)


@njit(cache=True, nogil=True)
def _label(depth, jump_per_mm, labels):  # pragma: no cover - compiled
    """8-connected components of ``depth`` (float32, 0 = invalid) joining neighbours whose depths differ
    by at most ``jump_per_mm * max(z1, z2)``. Fills ``labels`` (int32, -1 = invalid) and returns the
    number of components."""
    h, w = depth.shape
    stack = np.empty(h * w, dtype=np.int64)
    n = 0
    for i in range(h):
        for j in range(w):
            labels[i, j] = -1
    for i0 in range(h):
        for j0 in range(w):
            if depth[i0, j0] <= 0 or labels[i0, j0] >= 0:
                continue
            labels[i0, j0] = n
            top = 0
            stack[top] = i0 * w + j0
            top += 1
            while top > 0:
                top -= 1
                p = stack[top]
                i = p // w
                j = p - i * w
                z = depth[i, j]
                for di in range(-1, 2):
                    ii = i + di
                    if ii < 0 or ii >= h:
                        continue
                    for dj in range(-1, 2):
                        jj = j + dj
                        if jj < 0 or jj >= w or labels[ii, jj] >= 0:
                            continue
                        zn = depth[ii, jj]
                        if zn <= 0:
                            continue
                        if abs(zn - z) <= jump_per_mm * max(zn, z):
                            labels[ii, jj] = n
                            stack[top] = ii * w + jj
                            top += 1
            n += 1
    return n


def subsample_depth(depth: np.ndarray, stride: int = 4, min_depth_mm: float = 0.0,
                    max_depth_mm: float = np.inf) -> np.ndarray:
    """Block-minimum subsampling: ``(H // stride, W // stride)`` float32, each the nearest depth in
    ``[min_depth_mm, max_depth_mm]`` of its ``stride x stride`` block (0 if none). Block ``(i, j)``
    stands for the source pixel ``(stride j + (stride - 1) / 2, stride i + (stride - 1) / 2)``."""
    d = np.asarray(depth)
    if d.dtype not in (np.uint16, np.float32):
        d = d.astype(np.float32)
    d = np.ascontiguousarray(d)
    out = np.empty((d.shape[0] // stride, d.shape[1] // stride), dtype=np.float32)
    _block_min(d, int(stride), np.float32(min_depth_mm), np.float32(max_depth_mm), out)
    return out


def segment_depth(depth: np.ndarray, jump_mm: float = 50.0) -> tuple[np.ndarray, int]:
    """Depth-continuous components of a depth map.

    Args:
        depth: ``(h, w)`` depth in mm (0 = no measurement).
        jump_mm: largest depth step between 8-neighbours of one component at 1 m (scaled by ``z / 1000``).

    Returns:
        ``(h, w)`` int32 labels (-1 where depth is 0) and the number of components.
    """
    d = np.ascontiguousarray(depth, dtype=np.float32)
    labels = np.empty(d.shape, dtype=np.int32)
    n = _label(d, np.float32(jump_mm / 1000.0), labels)
    return labels, int(n)


# ------------------------------------------------------------------------------------------------
# the person's top, the head test and the centre


@dataclass
class _Grid:
    """The subsampled frame: depth ``d (h, w)``, labels ``(h, w)``, and per-sample back-projection."""

    d: np.ndarray
    labels: np.ndarray
    X: np.ndarray
    Y: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    area: np.ndarray  # metric area of each sample, mm^2
    intrinsics: Intrinsics
    stride: int


def _grid(depth: np.ndarray, intrinsics: Intrinsics, cfg: LocalizerConfig) -> _Grid:
    s = cfg.stride
    d = subsample_depth(depth, s, cfg.min_depth_mm, cfg.max_depth_mm)
    labels, _ = segment_depth(d, cfg.jump_mm)
    h, w = d.shape
    u = s * np.arange(w) + (s - 1) / 2
    v = s * np.arange(h) + (s - 1) / 2
    z = d.astype(np.float64)
    X = (u[None, :] - intrinsics.cx) / intrinsics.fx * z
    Y = (v[:, None] - intrinsics.cy) / intrinsics.fy * z
    rows = np.broadcast_to(np.arange(h)[:, None], (h, w))
    cols = np.broadcast_to(np.arange(w)[None, :], (h, w))
    area = z * z * (s * s) / (intrinsics.fx * intrinsics.fy)
    return _Grid(d, labels, X, Y, rows, cols, area, intrinsics, s)


def _crown(g: _Grid, mask: np.ndarray) -> tuple[float, int, int, float, float]:
    """Robust top of the samples in ``mask``: ``(crown Y, row, col, crown depth, crown X)``."""
    Y = g.Y[mask]
    k = min(max(2, len(Y) // 200), len(Y) - 1)
    idx = np.argpartition(Y, k)[k]
    cy = float(Y[idx])
    near = Y <= cy + 30.0
    return (cy, int(g.rows[mask][idx]), int(g.cols[mask][idx]), float(np.median(g.d[mask][near])),
            float(np.median(g.X[mask][near])))


def _climb(g: _Grid, label: int, cfg: LocalizerConfig) -> np.ndarray:
    """The samples of component ``label`` plus every component met by climbing from its top: while a
    sample of another component lies just above the crown (within ``climb_mm`` up and
    ``slab_halfwidth_mm`` sideways) at a depth within ``climb_depth_mm`` of the crown's, add that
    component. Joins a head to the torso below it (the chin occludes the neck, so they are separate
    components) and hair fragments to the head, never the wall behind. Returns an ``(h, w)`` mask."""
    members = {label}
    mask = g.labels == label
    fx, fy = g.intrinsics.fx, g.intrinsics.fy
    h, w = g.d.shape
    for _ in range(cfg.max_climb_steps):
        _, row, col, z, _ = _crown(g, mask)
        up = int(np.ceil(cfg.climb_mm * fy / (g.stride * z)))
        side = int(np.ceil(cfg.slab_halfwidth_mm * fx / (g.stride * z)))
        r0, r1, c0, c1 = max(row - up, 0), row + 1, max(col - side, 0), min(col + side + 1, w)
        lab = g.labels[r0:r1, c0:c1]
        dz = np.abs(g.d[r0:r1, c0:c1] - z)
        hit = (lab >= 0) & (dz <= cfg.climb_depth_mm * z / 1000.0)
        new = set(np.unique(lab[hit]).tolist()) - members
        if not new:
            break
        members |= new
        mask = np.isin(g.labels, list(members))
    return mask


def _curvature_radii(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> tuple[float, float]:
    """Radii of curvature (mm) across (x) and along (y) of the surface ``z(x, y)`` from a least-squares
    quadric ``z = a + b x + c y + qxx x^2 + qyy y^2 + qxy x y``: ``1 / (2 q)``; ``inf`` when flat and
    negative when concave (toward the camera)."""
    A = np.stack([np.ones_like(x), x, y, x * x, y * y, x * y], axis=1)
    coef, *_ = np.linalg.lstsq(A, z, rcond=None)
    return tuple(float(np.inf) if q == 0 else float(1.0 / (2.0 * q)) for q in coef[3:5])  # type: ignore[return-value]


def _plane_fit(P: np.ndarray, tol: np.ndarray, iterations: int, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """RANSAC plane ``n . p = d`` (unit ``n``) with the most points of ``P (n, 3)`` within ``tol (n,)`` mm,
    from ``iterations`` random 3-point hypotheses. Returns ``(n (3,), d)`` (``n = 0`` if all are degenerate)."""
    tri = P[rng.integers(0, len(P), (iterations, 3))]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    norm = np.linalg.norm(n, axis=1)
    ok = norm > 1e-6
    if not ok.any():
        return np.zeros(3), 0.0
    n = n[ok] / norm[ok, None]
    d = np.einsum("kj,kj->k", n, tri[ok, 0])
    k = int(np.argmax((np.abs(P @ n.T - d) <= tol[:, None]).sum(axis=0)))
    return n[k], float(d[k])


def _two_plane_cover(P: np.ndarray, iterations: int = 40) -> float:
    """Share of the points ``P (n, 3)`` (mm) that two planes explain (within ``8 mm + 3e-6 z^2``): about 1
    for a box (its faces), well below for a head (curved everywhere). Deterministic (fixed seed)."""
    if len(P) < 10:
        return 1.0
    rng = np.random.default_rng(0)
    tol = 8.0 + 3e-6 * P[:, 2] ** 2
    n, d = _plane_fit(P, tol, iterations, rng)
    first = (np.abs(P @ n - d) <= tol) & n.any()
    rest = ~first
    if rest.sum() < 3:
        return float(first.mean())
    n, d = _plane_fit(P[rest], tol[rest], iterations, rng)
    second = (np.abs(P[rest] @ n - d) <= tol[rest]) & n.any()
    return float((first.sum() + second.sum()) / len(P))


def _fmt_radius(r: float) -> str:
    return "inf (flat)" if not np.isfinite(r) else f"{r:.0f} mm" + (" (concave)" if r < 0 else "")


def _head_in(g: _Grid, mask: np.ndarray, cfg: LocalizerConfig) -> tuple[np.ndarray | None, float, str, dict]:
    """Test the top of a person mask for a head and estimate its centre.

    Returns:
        ``(centre or None, score, reason, extras)``.
    """
    crown_y, crown_row, _, crown_z, crown_x = _crown(g, mask)
    X, Y, Z, A = g.X[mask], g.Y[mask], g.d[mask].astype(np.float64), g.area[mask]
    band = Y <= crown_y + cfg.top_band_mm
    extras: dict = {"crown_y_mm": crown_y, "crown_depth_mm": crown_z, "touches_top": crown_row == 0}
    if band.sum() < 4:
        return None, 0.0, "too few samples at the top of the region", extras
    lo, hi = np.percentile(X[band], [2, 98])
    top_width = float(hi - lo)
    extras["top_width_mm"] = top_width
    if top_width > cfg.max_top_width_mm:
        return None, 0.0, f"{top_width:.0f} mm wide at its top (> {cfg.max_top_width_mm:.0f} mm): not a head", extras
    if top_width < cfg.min_top_width_mm:
        return None, 0.0, f"{top_width:.0f} mm wide at its top (< {cfg.min_top_width_mm:.0f} mm): not a head", extras
    slab = (Y <= crown_y + cfg.slab_mm) & (np.abs(X - crown_x) <= cfg.slab_halfwidth_mm)
    slab_area = float(A[slab].sum())
    if slab_area < cfg.min_slab_area_mm2:
        return None, 0.0, f"head-sized top with only {slab_area / 100:.0f} cm^2 of surface", extras
    c = np.array([X[slab].mean(), Y[slab].mean(), Z[slab].mean()])
    rx, ry = _curvature_radii(X[slab] - c[0], Y[slab] - c[1], Z[slab])
    extras.update(radius_x_mm=rx, radius_y_mm=ry)
    if not cfg.min_radius_x_mm <= rx <= cfg.max_radius_x_mm:
        return None, 0.0, (f"surface curved across with radius {_fmt_radius(rx)} (a head: {cfg.min_radius_x_mm:.0f}-"
                           f"{cfg.max_radius_x_mm:.0f} mm): not a head"), extras
    if not ry > 0:
        why = f"surface curved vertically with radius {_fmt_radius(ry)} (a head is convex): not a head"
        return None, 0.0, why, extras
    P = np.stack([X[slab], Y[slab], Z[slab]], axis=1)
    cover = _two_plane_cover(P, cfg.plane_iterations)
    extras["planes_cover"] = cover
    if cover > cfg.max_plane_cover:
        return None, 0.0, (f"two planes explain {100 * cover:.0f}% of its surface (a head: <= "
                           f"{100 * cfg.max_plane_cover:.0f}%): not a head"), extras
    ray = c / np.linalg.norm(c)
    centre = c + cfg.behind_surface_mm * ray + np.array([0.0, cfg.below_centroid_mm, 0.0])
    width_score = float(np.exp(-0.5 * ((top_width - cfg.typical_width_mm) / 60.0) ** 2))
    area_score = float(min(1.0, slab_area / (4 * cfg.min_slab_area_mm2)))
    score = width_score * area_score * (0.5 if extras["touches_top"] else 1.0)
    extras.update(surface_centroid=c, n_samples=int(slab.sum()), slab_area_mm2=slab_area)
    return centre, score, "", extras


def _peel_plane(g: _Grid, label: int, cfg: LocalizerConfig) -> bool:
    """Remove the dominant plane (a wall, a floor) from component ``label`` if it is large, and split the
    rest into new components (in place in ``g.labels``). RANSAC with a fixed seed (deterministic):
    ``plane_iterations`` 3-point hypotheses scored on at most 1500 samples, inliers within
    ``15 mm + 4e-6 z^2`` of the plane.

    Returns:
        Whether a plane of at least ``min_plane_area_mm2`` (and half the component's area) was removed.
    """
    flat = g.labels.reshape(-1)
    idx = np.flatnonzero(flat == label)
    if len(idx) < 50:
        return False
    P = np.stack([g.X.reshape(-1)[idx], g.Y.reshape(-1)[idx], g.d.reshape(-1)[idx].astype(np.float64)], axis=1)
    tol = 15.0 + 4e-6 * P[:, 2] ** 2
    rng = np.random.default_rng(0)
    sub = rng.choice(len(P), min(len(P), 1500), replace=False)
    n, d = _plane_fit(P[sub], tol[sub], cfg.plane_iterations, rng)
    if not n.any():
        return False
    inl = np.abs(P @ n - d) <= tol
    area = g.area.reshape(-1)[idx]
    if area[inl].sum() < max(cfg.min_plane_area_mm2, 0.5 * area.sum()):
        return False
    flat[idx[inl]] = -1
    rest = np.where(g.labels == label, g.d, np.float32(0))
    sub_labels, _ = segment_depth(rest, cfg.jump_mm)
    new = sub_labels >= 0
    g.labels[new] = sub_labels[new] + int(g.labels.max()) + 1
    return True


def _search(g: _Grid, cfg: LocalizerConfig) -> tuple[Localization | None, list[str], list[int]]:
    """Examine the components of ``g`` (nearest first). Returns the nearest head found (or ``None``), the
    reasons of the rejections, and the components rejected for being too wide at the top."""
    valid = g.labels >= 0
    lab = g.labels[valid]
    n = int(lab.max()) + 1 if lab.size else 0
    area = np.bincount(lab, weights=g.area[valid], minlength=n)
    mean_z = np.bincount(lab, weights=g.d[valid], minlength=n) / np.maximum(np.bincount(lab, minlength=n), 1)
    cands = np.flatnonzero(area >= cfg.min_area_mm2)
    if len(cands) == 0:
        return None, [f"no surface larger than {cfg.min_area_mm2 / 100:.0f} cm^2"
                      + (f" ({n} smaller depth-continuous regions)" if n else "")], []
    cands = cands[np.argsort(mean_z[cands])][: cfg.max_candidates]
    best: Localization | None = None
    reasons: list[str] = []
    wide: list[int] = []
    examined = np.zeros(g.labels.shape, dtype=bool)
    for c in cands:
        if best is not None and mean_z[c] - cfg.slab_mm > best.surface_centroid[2]:
            break  # this region (and the later, farther ones) lies well behind the head found
        if (examined & (g.labels == c)).any():
            continue  # already part of a person examined
        mask = _climb(g, int(c), cfg)
        examined |= mask
        centre, score, why, extras = _head_in(g, mask, cfg)
        if centre is None:
            reasons.append(f"region at {mean_z[c]:.0f} mm: {why}")
            if extras.get("top_width_mm", 0.0) > cfg.max_top_width_mm:
                wide.append(int(c))
        elif best is None or extras["surface_centroid"][2] < best.surface_centroid[2]:
            best = Localization(centre, score, f"head at the top of the region at {mean_z[c]:.0f} mm",
                                extras.pop("surface_centroid"), extras.pop("n_samples"), extras)
    return best, reasons, wide


def localize_head(depth: np.ndarray, intrinsics: Intrinsics, config: LocalizerConfig | None = None) -> Localization:
    """Find the head centre in one depth frame (see the module docstring for the method).

    Args:
        depth: ``(H, W)`` depth in mm (any numeric dtype; 0 = no measurement), already validated.
        intrinsics: of ``depth``.
        config: parameters (default :class:`LocalizerConfig`).

    Returns:
        A :class:`Localization`: ``centre`` ``(3,)`` mm, or ``None`` with the ``reason`` no head was found.
    """
    cfg = config or LocalizerConfig()
    depth = np.asarray(depth)
    if depth.ndim != 2:
        raise InputError(f"depth must be a 2-D (H, W) array, got shape {depth.shape}")
    g = _grid(depth, intrinsics, cfg)
    if not (g.labels >= 0).any():
        return Localization(None, 0.0, f"no depth between {cfg.min_depth_mm:.0f} and {cfg.max_depth_mm:.0f} mm")
    best, reasons, wide = _search(g, cfg)
    if best is not None:
        return best
    if wide and any([_peel_plane(g, c, cfg) for c in wide]):
        # a region too wide to be a head held a large plane (a wall the person touches in depth): look again
        best, again, _ = _search(g, cfg)
        if best is not None:
            return Localization(best.centre, best.score, best.reason + " (after removing a wall plane)",
                                best.surface_centroid, best.n_samples, best.extras)
        reasons = reasons[:2] + ["after removing its plane: " + "; ".join(again[:2])]
    more = f" (+{len(reasons) - 3} more)" if len(reasons) > 3 else ""
    return Localization(None, 0.0, "; ".join(reasons[:3]) + more)
