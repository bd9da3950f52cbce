"""The face verdict: is there a face where the networks placed one? A geometric check of the depth.

The pose network always answers with a pose, also for a ball, an ellipsoid or a noise blob. The verdict
fits the mean face's face region to the measured depth and asks two questions:

1. **Does the face template fit?** Starting from the predicted pose (and from frontal and +-35 deg yaw
   poses at the predicted head centre), a robust projective point-to-plane ICP moves the posed template
   onto the measured surface (correspondence: the measured pixel each visible template point projects
   to; normals from the depth image; Tukey weights). ``inliers`` is the share of the visible template
   points whose measured depth lies within :data:`INLIER_MM` of the template.
2. **Does the measured surface have the face's relief, in shape and in size?** A featureless surface
   (sphere, ellipsoid, torso, wall) is explained by a smooth surface as well as by a face. The
   template's and the measured depth along the same rays are each detrended by a cubic polynomial in
   the image coordinates; what is left is the relief (nose, eye sockets, mouth, chin). ``relief`` is
   the regression slope of the measured relief on the template's (about 1 for a face, about 0 for any
   smooth object, whatever its shape and size) and ``relief_correlation`` their correlation (low for
   noise, which may have a large relief but not a face's).

A frame is a face when ``relief >= MIN_RELIEF``, ``relief_correlation >= MIN_CORRELATION`` and
``inliers >= MIN_INLIERS`` (thresholds chosen on frames of seeds apart from the benchmark's; measured by
``benchmarks/bench_face_verdict.py``, see docs/robustness.md).

Limits: the ICP's basin is about 20-30 deg around the start, so the verdict needs a pose network that
is roughly right on faces (a trained one); with an untrained network real faces are judged "no face"
(never the reverse: a network cannot give a sphere a face's relief).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from depthface.geometry.camera import Intrinsics
from depthface.geometry.normals import vertex_normals
from depthface.geometry.rotations import rotvec_to_matrix_np

#: a template point "fits" when the measured depth on its ray is this close (mm)
INLIER_MM = 10.0
#: Tukey's biweight scale of the robust ICP (mm): residuals beyond it get no weight
TUKEY_MM = 25.0
#: relief is compared where the template and the measured surface face the camera at least this much
#: (cosine): silhouettes, where any rounded object departs from a smooth trend, are left out
RELIEF_FACING = 0.5
#: the verdict's thresholds (measured on the labelled set of benchmarks/bench_face_verdict.py)
MIN_RELIEF = 0.2
MIN_CORRELATION = 0.3
MIN_INLIERS = 0.35
#: at least this many visible template points must meet a measurement for any verdict but "no face"
MIN_POINTS = 150


@dataclass(frozen=True)
class FaceTemplate:
    """The face region of a face model's mean face in the head frame: points ``(M, 3)`` mm and their
    unit normals ``(M, 3)`` (outward, toward the camera at the identity pose)."""

    points: np.ndarray
    normals: np.ndarray

    @classmethod
    def from_face_model(cls, model, max_points: int = 700) -> "FaceTemplate":
        """The vertices of ``model.narrow_face`` between brows and chin (from its 68 landmarks), thinned
        to about ``max_points``."""
        mean64 = model.mean.detach().double().cpu()
        normals = vertex_normals(mean64, model.triangles.cpu()).numpy()
        mean = mean64.numpy()
        ids = model.narrow_face.cpu().numpy()
        lm = mean[model.landmarks68.cpu().numpy()]
        p = mean[ids]
        keep = ((p[:, 1] >= lm[:, 1].min() - 15) & (p[:, 1] <= lm[:, 1].max() + 5)
                & (np.abs(p[:, 0]) <= np.abs(lm[:, 0]).max() + 5))
        ids = ids[keep]
        ids = ids[:: max(1, len(ids) // max_points)]
        n = normals[ids]
        if np.median(n[:, 2]) > 0:  # the head frame's z points into the skull: the face's normals have z < 0
            n = -n
        return cls(mean[ids], n)


@dataclass(frozen=True)
class FaceVerdict:
    """The verdict on one frame, with the evidence it rests on and the refined pose it was judged at."""

    face: bool
    relief: float  # share of the face template's relief (mm) the measurement shows (slope)
    relief_correlation: float
    inliers: float
    residual_mm: float
    n_points: int
    rotation: np.ndarray  # (3, 3) the template's refined pose (head -> camera)
    translation: np.ndarray  # (3,)
    reason: str


def _rot(yaw_deg: float, pitch_deg: float) -> np.ndarray:
    a, b = np.radians(yaw_deg), np.radians(pitch_deg)
    ry = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    return rx @ ry


#: network-independent starting orientations (yaw x pitch grid, degrees) beside the predicted pose
START_GRID = tuple(_rot(y, 0.0) for y in (-35, 0, 35))
#: ICP iterations of the first pass over all starts, and how many starts are then refined fully
COARSE_ITERATIONS = 3
REFINED_STARTS = 2


def _correspond(depth: np.ndarray, k: Intrinsics, tpl: FaceTemplate, R: np.ndarray, t: np.ndarray):
    """Visible posed template points meeting a measurement: posed points ``(N, 3)``, measured depth on
    their rays ``(N,)``, pixel coordinates ``(N, 2)``, the cosine between normal and view ray ``(N,)``
    and the number of visible points."""
    P = tpl.points @ R.T + t
    N = tpl.normals @ R.T
    z = P[:, 2]
    front = z > 1.0
    view = P / np.maximum(np.linalg.norm(P, axis=1, keepdims=True), 1e-9)
    facing = -(N * view).sum(1)
    vis = front & (facing > 0.15)
    P, facing = P[vis], facing[vis]
    u = np.rint(k.fx * P[:, 0] / P[:, 2] + k.cx).astype(np.int64)
    v = np.rint(k.fy * P[:, 1] / P[:, 2] + k.cy).astype(np.int64)
    inside = (u >= 0) & (u < depth.shape[1]) & (v >= 0) & (v < depth.shape[0])
    D = np.zeros(len(P))
    D[inside] = depth[v[inside], u[inside]]
    ok = D > 0
    return P[ok], D[ok], np.stack([u[ok], v[ok]], 1).astype(np.float64), facing[ok], int(vis.sum())


def _measured(depth: np.ndarray, k: Intrinsics, uv: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Measured points ``(N, 3)`` at integer pixels ``uv`` ``(N, 2)``, their unit normals from central
    differences ``(N, 3)`` (facing the camera), and which have all four neighbours measured ``(N,)``."""
    h, w = depth.shape
    u = np.clip(uv[:, 0], 1, w - 2)
    v = np.clip(uv[:, 1], 1, h - 2)

    def point(uu, vv):
        z = depth[vv, uu].astype(np.float64)
        return np.stack([(uu - k.cx) / k.fx * z, (vv - k.cy) / k.fy * z, z], 1)

    q = point(u, v)
    du = point(u + 1, v) - point(u - 1, v)
    dv = point(u, v + 1) - point(u, v - 1)
    n = np.cross(du, dv)
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-9)
    n *= -np.sign(n[:, 2:3] + 1e-12)  # toward the camera
    ok = ((depth[v, u + 1] > 0) & (depth[v, u - 1] > 0) & (depth[v + 1, u] > 0) & (depth[v - 1, u] > 0)
          & (np.abs(du[:, 2]) < 30) & (np.abs(dv[:, 2]) < 30))
    return q, n, ok


def _refine(depth, k, tpl, R, t, iterations: int):
    """Robust projective point-to-plane ICP of the posed template onto the measured surface."""
    for _ in range(iterations):
        P, D, uv, _, _ = _correspond(depth, k, tpl, R, t)
        if len(P) < 20:
            break
        Q, Nq, ok = _measured(depth, k, uv.astype(np.int64))
        P, Q, Nq = P[ok], Q[ok], Nq[ok]
        r = ((Q - P) * Nq).sum(1)
        w = np.clip(1 - (r / TUKEY_MM) ** 2, 0, None) ** 2
        if len(P) < 20 or w.sum() < 10:
            break
        J = np.concatenate([np.cross(P, Nq), Nq], 1)  # d r / d(omega, tau) for p -> p + omega x p + tau
        A = (J * w[:, None]).T @ J + 1e-3 * np.eye(6)
        x = np.linalg.solve(A, (J * w[:, None]).T @ r)
        dR = rotvec_to_matrix_np(x[:3])
        R, t = dR @ R, dR @ t + x[3:]
    return R, t


def _design(uv: np.ndarray, degree: int = 3) -> np.ndarray:
    """Polynomial basis ``(N, (d + 1)(d + 2) / 2)`` of normalised image coordinates up to ``degree``
    (the smooth trend removed before comparing reliefs: cubic)."""
    c = uv - uv.mean(0)
    s = max(float(np.abs(c).max()), 1.0)
    x, y = c[:, 0] / s, c[:, 1] / s
    return np.stack([x ** i * y ** (d - i) for d in range(degree + 1) for i in range(d + 1)], 1)


def _relief(P: np.ndarray, D: np.ndarray, uv: np.ndarray, facing: np.ndarray) -> tuple[float, float]:
    """The face's relief in the measurement: both depths along the same rays are detrended by one smooth
    (cubic) surface each, over points where they agree within the ICP's Tukey scale; returns the
    correlation of the two reliefs and the slope ``cov(r_t, r_m) / var(r_t)`` (the share of the
    template's relief, in mm, that the measurement shows: about 1 for a face, about 0 for a
    featureless surface whatever its shape)."""
    keep = (np.abs(D - P[:, 2]) < TUKEY_MM) & (facing > RELIEF_FACING)
    if keep.sum() < 30:
        return 0.0, 0.0
    A = _design(uv[keep])
    zt, zm = P[keep, 2], D[keep]
    rt = zt - A @ np.linalg.lstsq(A, zt, rcond=None)[0]
    rm = zm - A @ np.linalg.lstsq(A, zm, rcond=None)[0]
    vt, vm = float(np.mean(rt * rt)), float(np.mean(rm * rm))
    if vt < 1e-6 or vm < 1e-6:
        return 0.0, 0.0
    cov = float(np.mean(rt * rm))
    return cov / np.sqrt(vt * vm), cov / vt


def _judge(depth, k, tpl, R, t):
    """``(relief slope, relief correlation, inliers, median |residual| mm, points)`` at pose ``R, t``."""
    P, D, uv, facing, n_vis = _correspond(depth, k, tpl, R, t)
    if len(P) < MIN_POINTS:
        return 0.0, 0.0, 0.0, float("inf"), len(P)
    r = np.abs(D - P[:, 2])
    inliers = float(np.sum(r < INLIER_MM) / max(n_vis, 1))
    # the measured surface must face the camera too: silhouettes of any rounded object are left out
    Q, Nq, ok = _measured(depth, k, uv.astype(np.int64))
    facing_m = -(Nq * Q).sum(1) / np.maximum(np.linalg.norm(Q, axis=1), 1e-9)
    corr, slope = _relief(P, D, uv, np.where(ok & (facing_m > RELIEF_FACING), facing, 0.0))
    return slope, corr, inliers, float(np.median(r)), len(P)


def template_agreement(depth: np.ndarray, intrinsics: Intrinsics, template: FaceTemplate, rotation: np.ndarray,
                       translation: np.ndarray) -> dict[str, float]:
    """How well the face template posed at ``rotation, translation`` explains the depth, without any fit.

    Returns:
        ``{"relief", "relief_correlation", "inliers", "median_residual_mm", "points"}`` (see the module
        docstring; ``median_residual_mm`` is ``inf`` when fewer than :data:`MIN_POINTS` points meet the depth).
    """
    slope, corr, inliers, med, n = _judge(np.asarray(depth, dtype=np.float32), intrinsics, template,
                                          np.asarray(rotation, dtype=np.float64).reshape(3, 3),
                                          np.asarray(translation, dtype=np.float64).reshape(3))
    return {"relief": float(slope), "relief_correlation": float(corr), "inliers": float(inliers),
            "median_residual_mm": float(med), "points": float(n)}


def _score(slope: float, corr: float, inliers: float) -> float:
    return min(max(slope, 0.0), 1.0) * max(corr, 0.0) * inliers


def face_verdict(depth: np.ndarray, intrinsics: Intrinsics, template: FaceTemplate, rotation: np.ndarray,
                 translation: np.ndarray, iterations: int = 10, extra_starts: bool = False,
                 min_relief: float = MIN_RELIEF, min_correlation: float = MIN_CORRELATION,
                 min_inliers: float = MIN_INLIERS) -> FaceVerdict:
    """Judge whether the frame shows a face near the predicted pose (see the module docstring).

    Args:
        depth: ``(H, W)`` float depth in mm (0 = no measurement), already validated.
        intrinsics: its camera.
        template: the face region of the mean face (:meth:`FaceTemplate.from_face_model`).
        rotation: ``(3, 3)`` predicted head-to-camera rotation.
        translation: ``(3,)`` predicted head centre (mm).
        iterations: robust ICP iterations per start.
        extra_starts: also start frontal and at +-35 deg yaw at the predicted centre (so a confused
            network cannot hide a face); the most face-like two starts are refined fully.
        min_relief, min_correlation, min_inliers: the thresholds of a face.

    Returns:
        A :class:`FaceVerdict` (the best of the starts by ``relief * correlation * inliers``).
    """
    depth = np.asarray(depth, dtype=np.float32)
    R0 = np.asarray(rotation, dtype=np.float64).reshape(3, 3)
    t0 = np.asarray(translation, dtype=np.float64).reshape(3)
    starts = [(R0, t0)] + ([(Rs, t0) for Rs in START_GRID] if extra_starts else [])
    scored = []
    for Rs, ts in starts:  # a short robust fit from every start, then the most face-like ones refined further
        R, t = _refine(depth, intrinsics, template, Rs, ts, COARSE_ITERATIONS)
        slope, corr, inliers, _, _ = _judge(depth, intrinsics, template, R, t)
        scored.append((_score(slope, corr, inliers), R, t))
    scored.sort(key=lambda s: -s[0])
    best = None
    for _, Rs, ts in scored[:REFINED_STARTS]:
        R, t = _refine(depth, intrinsics, template, Rs, ts, iterations)
        slope, corr, inliers, resid, n = _judge(depth, intrinsics, template, R, t)
        if best is None or _score(slope, corr, inliers) > best[0]:
            best = (_score(slope, corr, inliers), slope, corr, inliers, resid, n, R, t)
    _, slope, corr, inliers, resid, n, R, t = best
    face = n >= MIN_POINTS and slope >= min_relief and corr >= min_correlation and inliers >= min_inliers
    if n < MIN_POINTS:
        why = f"no face: only {n} points of the face region meet a measurement"
    elif face:
        why = (f"face relief found ({slope:.0%} of the face's relief, correlation {corr:.2f}; {inliers:.0%} of the "
               f"face region within {INLIER_MM:g} mm)")
    elif slope < min_relief or corr < min_correlation:
        why = (f"no face: the surface lacks a face's relief ({slope:.0%} of it, correlation {corr:.2f}; "
               "a featureless or noisy object)")
    else:
        why = f"no face: the face region does not fit the depth ({inliers:.0%} within {INLIER_MM:g} mm)"
    return FaceVerdict(bool(face), slope, corr, inliers, resid, n, R, t, why)
