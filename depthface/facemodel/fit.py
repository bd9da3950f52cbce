"""Robust fitting of the morphable model to a depth frame's points: rigid pose, identity and expression.

Why one file (about 640 lines): the fit is one solver. The fitted region (:class:`FitRegion`, built by
:func:`prepare_fit_region` for the solver alone), the robust Gauss-Newton iterations with their
box-constrained and damped solves, and the BLAS thread guard serve only its entry points
(:func:`fit_frame`, :func:`refine_prediction`, :func:`coefficients_from_vertices`) and change together
when the objective below changes; the helpers at the top only turn a frame into the fit's points.

One idea, two uses: the classical 3DMM-fit baseline (``mode="pose+shape"``) and the test-time refinement
of the networks' output (``mode="pose"``: robust point-to-plane ICP of the face region, started from the
network's pose; ``"pose+shape"`` also refines the coefficients).

Model (:mod:`depthface.facemodel.model`): a face is ``s(c) = mean + B c`` in the head frame, ``c = (alpha,
beta)``; posed, ``p = R s + t`` (docs/conventions.md). The fit minimises over ``(R, t, alpha, beta)``::

    sum_i w_i (n_i . (R s_i(c) + t - q_i))^2 / sigma^2  +  |alpha|^2  +  lambda_beta |beta|^2

* ``i`` runs over a spatially even subsample of a facial region whose vertices face the camera under the
  current pose: by default the face area (forehead and jaw line included, no ears or neck), of which only
  the narrow face (no hair line, jaw line or ears) drives the first, rigid-only iterations;
* ``q_i`` is the measured point paired with vertex ``i``: by default the closest among the frame's points
  whose rays pass next to the vertex's (the points binned by ray, :func:`ray_grid`, the 3 x 3 cells around
  the vertex: the depth image's own neighbourhood, O(1) a vertex); ``search="kdtree"``: the nearest point
  (scipy ``cKDTree``). ``n_i`` is the model's unit normal at vertex ``i`` rotated into the camera frame
  (point-to-plane along the smooth model's normal, not the noisy frame's);
* ``w_i``: pairs farther apart than a threshold that shrinks from ``reject_mm[0]`` to ``reject_mm[1]`` are
  dropped; the rest get Huber weights (``k = 1.345 sigma_hat``, ``sigma_hat`` = 1.4826 x the median absolute
  residual) and residuals beyond ``trim_sigmas x sigma_hat`` are dropped (trimmed; in the joint iterations
  only where the measured point lies in front of the face: ``free_space``), so hair, neck and background
  points that happen to be nearest do not pull the face;
* ``|alpha|^2`` is the N(0, 1) prior of the identity coefficients (``sigma`` = ``noise_mm``, by default the
  robust residual scale, sets its weight against the data), ``lambda_beta |beta|^2`` a ridge prior on the
  expression, whose blendshape weights are also kept inside ``[0, 1]`` (box constraint, an active-set
  solve of each step).

Each iteration fixes the correspondences and takes one Gauss-Newton step, with a small Levenberg-Marquardt
damping on the rigid block: up to ``rigid_iterations`` on the pose alone (about 400 narrow-face
vertices; they stop once the pose has settled), then ``iterations`` on pose and coefficients jointly (the
head centre and identity modes are coupled, so solving them together converges in fewer steps than
alternating block updates). Numpy on one frame with one BLAS thread, two small compiled kernels for the
pairing; a joint iteration costs one ``(6 + K)^2`` normal-matrix build and one box-constrained solve, and
the coefficients' Jacobian is fixed (it runs along the mean face's normals), so it is built once per region
(benchmarks/bench_fit.py has the time per frame; docs/method.md the details and the measured accuracy).
"""

from __future__ import annotations

import ctypes
import functools
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from numba import njit
from scipy.linalg.lapack import dposv
from scipy.spatial import cKDTree

from depthface.errors import InputError
from depthface.facemodel.model import MorphableModel
from depthface.geometry.normals import vertex_normals
from depthface.geometry.rotations import rotvec_to_matrix_np

__all__ = ["FitRegion", "FitResult", "FIT_MODES", "SEARCHES", "RayGrid", "ray_grid", "ray_grid_query", "REFINE_MODES", "prepare_fit_region", "fit_frame", "refine_prediction",
           "coefficients_from_vertices"]

#: ``"pose"``: rigid only (coefficients kept at their start); ``"pose+shape"``: rigid + identity + expression.
FIT_MODES: tuple[str, ...] = ("pose", "pose+shape")


@dataclass(frozen=True, eq=False)
class FitRegion:
    """What :func:`fit_frame` needs of a face model, prepared once per model and region.

    Attributes:
        indices: ``(M,)`` fitted vertices (an even subsample of the region).
        mean: ``(M, 3)`` their mean shape (mm, head frame).
        basis: ``(M, 3, K)`` their identity then expression modes (mm per unit), K = Ki + Ke.
        normals: ``(M, 3)`` unit outward normals of the mean shape at them (head frame).
        spacing_mm: the median distance between neighbouring fitted vertices (mm).
        n_identity: Ki. ``expression_bounded``: whether the expression coefficients lie in [0, 1] (blendshapes).
        full_mean: ``(V, 3)`` and ``full_basis``: ``(K, 3V)`` float32, for the fitted face's full vertices
            (mode-major: ``c @ full_basis`` reads memory in order, about 3x faster than a ``(3V, K)`` product).
        normal_basis: ``(M, K)`` float32, ``normals_i^T basis_i``: the residuals' derivatives by the coefficients
            (the residual runs along the mean shape's normal, rotated with the face, so they never change).
        basis_rows: ``(K, 3M)`` float32, the same mode-major (``c @ basis_rows``: x of every vertex, then y, z).
        core: ``(M,)`` bool, the fitted vertices of the core region (all of them unless a core was given).
        rigid: ``(M,)`` bool, the even subsample of the core that the rigid iterations use.
        gram: ``(K, K)`` ``B^T B`` of ``basis`` flattened to ``(3M, K)``.
    """

    indices: np.ndarray
    mean: np.ndarray
    basis: np.ndarray
    normals: np.ndarray
    spacing_mm: float
    n_identity: int
    expression_bounded: bool
    full_mean: np.ndarray
    full_basis: np.ndarray
    normal_basis: np.ndarray
    basis_rows: np.ndarray
    core: np.ndarray
    rigid: np.ndarray
    gram: np.ndarray

    @property
    def n_coefficients(self) -> int:
        return self.basis.shape[-1]


def _even_subsample(points: np.ndarray, n: int) -> np.ndarray:
    """Indices of about ``n`` spatially even points (one per cell of a voxel grid, the cell size found by
    bisection), deterministic."""
    if n >= len(points):
        return np.arange(len(points))
    lo, hi = 1e-3, float(np.ptp(points, axis=0).max())
    best = np.arange(len(points))
    for _ in range(30):
        cell = 0.5 * (lo + hi)
        keys = np.floor((points - points.min(0)) / cell).astype(np.int64)
        _, first = np.unique(keys, axis=0, return_index=True)
        if len(first) > n:
            lo = cell
        else:
            hi = cell
            best = np.sort(first)
        if abs(len(first) - n) <= max(1, n // 50):
            best = np.sort(first)
            break
    return best


def prepare_fit_region(model: MorphableModel, region: str | np.ndarray = "face", n_points: int = 1000,
                       core: str | np.ndarray | None = "narrow", n_rigid: int = 400) -> FitRegion:
    """Subsample a region of ``model`` for :func:`fit_frame`.

    Args:
        model: the face model.
        region: ``"face"`` (default: the face area, with forehead and jaw line, no ears or neck), ``"narrow"``
            (the tight face crop) or vertex indices.
        n_points: about how many vertices to fit (an even subsample; speed grows with it).
        core: a sub-region that alone drives the rigid iterations (e.g. ``"narrow"`` inside ``"face"``:
            the pose settles on the face proper before the forehead and jaw line, where hair and neck
            are, join with the coefficients; the default), or ``None`` (the whole region).
        n_rigid: about how many of the core's vertices (an even subsample) the rigid iterations use: six
            unknowns need far fewer pairs than the coefficients, and a pair costs a k-d tree query.
    """
    if n_points < 20:
        raise InputError(f"n_points must be at least 20, got {n_points}")
    idx = model.region_indices(region).cpu().numpy()
    mean_full = model.mean.detach().cpu().double().numpy()
    sub = idx[_even_subsample(mean_full[idx], n_points)]
    normals = vertex_normals(torch.from_numpy(mean_full), model.triangles.cpu()).numpy()[sub]
    basis = np.concatenate((model.identity_basis.detach().cpu().double().numpy()[sub],
                            model.expression_basis.detach().cpu().double().numpy()[sub]), axis=-1)
    V = model.num_vertices
    full_basis = np.concatenate((model.identity_basis.detach().cpu().numpy().reshape(3 * V, -1),
                                 model.expression_basis.detach().cpu().numpy().reshape(3 * V, -1)), axis=-1)
    spacing = float(np.median(cKDTree(mean_full[sub]).query(mean_full[sub], k=2)[0][:, 1]))
    core_mask = (np.ones(len(sub), bool) if core is None
                 else np.isin(sub, model.region_indices(core).cpu().numpy()))
    core_ids = np.flatnonzero(core_mask)
    rigid_mask = np.zeros(len(sub), bool)
    rigid_mask[core_ids[_even_subsample(mean_full[sub[core_ids]], n_rigid)]] = True
    axes = np.ascontiguousarray(np.moveaxis(basis, 1, 0), dtype=np.float32)  # (3, M, K)
    return FitRegion(sub, mean_full[sub], basis, normals, spacing, model.identity_dim, model.expression_kind == "blendshapes",
                     mean_full.astype(np.float32), np.ascontiguousarray(full_basis.T, dtype=np.float32),
                     np.einsum("mc,mck->mk", normals, basis).astype(np.float32),
                     np.ascontiguousarray(axes.reshape(-1, axes.shape[-1]).T), core_mask, rigid_mask,
                     basis.reshape(-1, basis.shape[-1]).T @ basis.reshape(-1, basis.shape[-1]))


@dataclass(frozen=True, eq=False)
class FitResult:
    """A fitted face. Pose maps head to camera (``p_cam = R p_head + t``), mm.

    Attributes:
        R: ``(3, 3)``. t: ``(3,)`` the head centre in the camera frame (mm).
        identity: ``(Ki,)`` alpha. expression: ``(Ke,)`` beta.
        vertices: ``(V, 3)`` float32 full-topology vertices in the head frame (mm).
        rms_mm: RMS of the weighted point-to-plane residuals of the last iteration's kept pairs (mm).
        median_abs_mm: the median absolute residual of the last iteration's pairs before trimming (mm).
        inlier_fraction: share of the fitted (camera-facing) vertices kept in the last iteration.
        n_pairs: number of kept pairs in the last iteration.
        iterations: iterations run.
    """

    R: np.ndarray
    t: np.ndarray
    identity: np.ndarray
    expression: np.ndarray
    vertices: np.ndarray
    rms_mm: float
    median_abs_mm: float
    inlier_fraction: float
    n_pairs: int
    iterations: int

    @property
    def coefficients(self) -> np.ndarray:
        """``(Ki + Ke,)`` alpha then beta."""
        return np.concatenate((self.identity, self.expression))


def _solve_box(H: np.ndarray, g: np.ndarray, lo: np.ndarray, hi: np.ndarray, iterations: int = 30,
               start: np.ndarray | None = None) -> np.ndarray:
    """Minimise ``x^T H x / 2 - g^T x`` subject to ``lo <= x <= hi`` (``H`` positive definite; infinite bounds
    for free variables) by an active-set loop: variables that leave their bounds are fixed there and the rest
    re-solved; fixed ones whose gradient points back inside are released. Exact once the set settles.

    ``start``: ``(k,)`` the bound each variable starts fixed at (NaN: free), e.g. the previous step's active set
    (a solver's steps keep the same blendshapes at 0): one solve instead of two when the set has not changed.
    """
    k = len(g)
    at = np.full(k, np.nan) if start is None else np.where(np.isnan(start), np.nan, np.clip(start, lo, hi))
    fixed = ~np.isnan(at)
    if fixed.any():
        x = at.copy()
        free = ~fixed
        x[free] = _spd_solve(H[np.ix_(free, free)], g[free] - H[np.ix_(free, fixed)] @ at[fixed])
    else:
        x = _spd_solve(H, g)
        if not ((x < lo) | (x > hi)).any():
            return x
    for _ in range(iterations):
        low, high = x < lo - 1e-12, x > hi + 1e-12
        if not (low.any() or high.any()):
            grad = H @ x - g
            fixed = ~np.isnan(at)
            release = fixed & (((at == lo) & (grad < 0)) | ((at == hi) & (grad > 0)))
            if not release.any():
                break
            at[release] = np.nan
        at[low], at[high] = lo[low], hi[high]
        fixed = ~np.isnan(at)
        free = ~fixed
        x = at.copy()
        if free.any():
            x[free] = _spd_solve(H[np.ix_(free, free)], g[free] - H[np.ix_(free, fixed)] @ at[fixed])
    return np.clip(x, lo, hi)


def _spd_solve(H: np.ndarray, g: np.ndarray) -> np.ndarray:
    """``H^{-1} g`` for a symmetric positive definite ``H`` (one LAPACK ``posv`` call; LU if it is not
    numerically SPD)."""
    _, x, info = dposv(H, g, lower=False, overwrite_a=False, overwrite_b=False)
    return x if info == 0 else np.linalg.solve(H, g)


_DIAG6 = np.arange(6)
#: a rigid step below this rotation (rad) and translation (mm) means the pose has settled
_SETTLED = (2e-4, 2e-2)


def _rigid_jacobian(a: np.ndarray, n: np.ndarray) -> np.ndarray:
    """``(M, 6)`` derivatives of point-to-plane residuals ``n . (a + t - q)`` by a small rotation ``omega``
    (left, ``a -> a + omega x a``) and translation: ``(a x n, n)``; ``a``, ``n``: ``(M, 3)``."""
    J = np.empty((len(a), 6))
    J[:, 0] = a[:, 1] * n[:, 2] - a[:, 2] * n[:, 1]
    J[:, 1] = a[:, 2] * n[:, 0] - a[:, 0] * n[:, 2]
    J[:, 2] = a[:, 0] * n[:, 1] - a[:, 1] * n[:, 0]
    J[:, 3:] = n
    return J


_OPENBLAS_THREAD_FUNCTIONS = (("openblas_set_num_threads", "openblas_get_num_threads"),
                              ("scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads"),
                              ("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
                              ("openblas_set_num_threads64_", "openblas_get_num_threads64_"))


@functools.lru_cache(maxsize=1)
def _openblas_thread_controls() -> tuple:
    """(set, get) thread-count functions of the OpenBLAS copies numpy and scipy loaded (Linux; else none)."""
    maps = Path("/proc/self/maps")
    if not maps.exists():
        return ()
    paths = sorted({line.split()[-1] for line in maps.read_text().splitlines()
                    if "openblas" in line.lower() and ".so" in line})
    controls = []
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for set_name, get_name in _OPENBLAS_THREAD_FUNCTIONS:
            if hasattr(lib, set_name) and hasattr(lib, get_name):
                controls.append((getattr(lib, set_name), getattr(lib, get_name)))
                break
    return tuple(controls)


@contextmanager
def _one_blas_thread():
    """Run numpy/scipy's OpenBLAS on one thread inside the block, and restore its setting after.

    The fit's matrices are small (about 1000 x 160): threaded BLAS only adds synchronisation, which on a
    busy machine made a frame's fit 30 times slower (measured: 2.5 s instead of 80 ms of CPU time).
    """
    controls = _openblas_thread_controls()
    before = [get() for _, get in controls]
    for set_, _ in controls:
        set_(1)
    try:
        yield
    finally:
        for (set_, _), n in zip(controls, before):
            set_(n)


#: how :func:`fit_frame` pairs model vertices with measured points
SEARCHES: tuple[str, ...] = ("rays", "kdtree")


@dataclass(frozen=True, eq=False)
class RayGrid:
    """The measured points binned by their ray from the camera centre: a virtual pinhole image whose cells
    (``cell_mm`` wide at the depth it was built for) each keep their nearest point. A depth camera's points
    are all seen from the camera centre, so this is the frame's own range image, resampled.

    Attributes:
        points: ``(N, 3)`` the points (camera frame, mm).
        focal: the virtual focal length (cells per unit of ``x / z``).
        u0, v0: the image coordinates of cell ``(1, 1)`` (the grid has a border of empty cells).
        cells: ``(H + 2, W + 2)`` int64, the index of each cell's nearest point, ``-1`` where none.
    """

    points: np.ndarray
    focal: float
    u0: float
    v0: float
    cells: np.ndarray


def ray_grid(points: np.ndarray, depth_mm: float, cell_mm: float = 2.0) -> RayGrid:
    """Bin ``(N, 3)`` camera-frame points (mm, ``z > 0``) into a :class:`RayGrid` whose cells are ``cell_mm``
    wide at ``depth_mm``; each cell keeps its nearest point (the smallest ``z``: a face before the wall)."""
    pts = points[points[:, 2] > 1.0]
    focal = depth_mm / cell_mm
    if len(pts) == 0:  # nothing in front of the camera: a grid whose every query finds nothing
        return RayGrid(np.zeros((0, 3)), focal, 0.0, 0.0, np.full((3, 3), -1, np.int64))
    u = focal * pts[:, 0] / pts[:, 2]
    v = focal * pts[:, 1] / pts[:, 2]
    u0, v0 = float(np.floor(u.min())) - 1.0, float(np.floor(v.min())) - 1.0
    iu, iv = (u - u0).astype(np.int64), (v - v0).astype(np.int64)
    w, h = int(iu.max()) + 2, int(iv.max()) + 2
    cells = np.full((h, w), -1, np.int64)
    _nearest_per_cell(iv, iu, pts[:, 2], cells)
    return RayGrid(np.ascontiguousarray(pts), focal, u0, v0, cells)


@njit(cache=True, nogil=True)
def _nearest_per_cell(iv, iu, z, cells):  # pragma: no cover - compiled
    for k in range(z.shape[0]):
        c = cells[iv[k], iu[k]]
        if c < 0 or z[k] < z[c]:  # the nearest; the first of equals
            cells[iv[k], iu[k]] = k


@njit(cache=True, nogil=True)
def _ray_grid_query_kernel(cells, points, focal, u0, v0, p, upper, d, j):  # pragma: no cover - compiled
    h, w = cells.shape
    for i in range(p.shape[0]):
        z = max(p[i, 2], 1.0)
        cu = min(max(int(focal * p[i, 0] / z - u0), 1), w - 2)
        cv = min(max(int(focal * p[i, 1] / z - v0), 1), h - 2)
        best, arg = upper * upper, -1
        for dv in range(-1, 2):
            for du in range(-1, 2):
                k = cells[cv + dv, cu + du]
                if k >= 0:
                    e = ((points[k, 0] - p[i, 0]) ** 2 + (points[k, 1] - p[i, 1]) ** 2
                         + (points[k, 2] - p[i, 2]) ** 2)
                    if e <= best:
                        best, arg = e, k
        if arg >= 0:
            d[i], j[i] = np.sqrt(best), arg
        else:
            d[i], j[i] = np.inf, points.shape[0]


def ray_grid_query(grid: RayGrid, p: np.ndarray, distance_upper_bound: float) -> tuple[np.ndarray, np.ndarray]:
    """For each of ``(M, 3)`` points, the closest grid point among the 3 x 3 cells around its ray (``cKDTree.query``'s
    contract): distances ``(M,)`` (``inf`` where none within ``distance_upper_bound``) and indices into
    ``grid.points`` (``len(grid.points)`` there). One compiled pass."""
    p = np.ascontiguousarray(p, dtype=np.float64)
    d = np.empty(len(p))
    j = np.empty(len(p), np.int64)
    _ray_grid_query_kernel(grid.cells, grid.points, grid.focal, grid.u0, grid.v0, p, float(distance_upper_bound), d, j)
    return d, j


def _check_pose(R: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    R = np.asarray(R, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64).reshape(-1)
    if R.shape != (3, 3) or not np.isfinite(R).all() or abs(np.linalg.det(R) - 1.0) > 1e-3:
        raise InputError(f"start rotation must be a (3, 3) rotation matrix, got shape {R.shape}")
    if t.shape != (3,) or not np.isfinite(t).all():
        raise InputError(f"start translation must be 3 finite numbers (mm), got {np.asarray(t).tolist()}")
    return R, t


def fit_frame(
    points: np.ndarray,
    region: FitRegion,
    R0: np.ndarray,
    t0: np.ndarray,
    *,
    identity0: np.ndarray | None = None,
    expression0: np.ndarray | None = None,
    shape0: np.ndarray | None = None,
    mode: str = "pose+shape",
    rigid_iterations: int = 15,
    iterations: int = 10,
    reject_mm: tuple[float, float] = (30.0, 8.0),
    noise_mm: float | None = None,
    expression_ridge: float = 10.0,
    anneal: float = 1.0,
    trim_sigmas: float | None = 3.0,
    damping: float = 1e-3,
    crop_radius_mm: float = 170.0,
    max_points: int = 8000,
    box_iterations: int = 1,
    free_space: bool = True,
    search: str = "rays",
    cell_mm: float = 2.0,
) -> FitResult:
    """Fit the model's pose (and coefficients) to one frame's measured points (see the module docstring).

    Args:
        points: ``(N, 3)`` measured points in the camera frame (mm), e.g. of a crop
            (:func:`depthface.geometry.camera.position_points`).
        region: from :func:`prepare_fit_region`.
        R0: ``(3, 3)`` start rotation; t0: ``(3,)`` start head centre (mm), e.g. the network's pose.
        identity0: ``(Ki,)`` start identity (default zeros: the mean face); expression0: ``(Ke,)`` likewise.
        shape0: ``(V, 3)`` head-frame vertices that replace the model's mean as the base surface (e.g. a
            network's per-vertex shape for ``mode="pose"``); the coefficients are then offsets from it.
        mode: ``"pose"`` (rigid only: ICP of the face region) or ``"pose+shape"``.
        rigid_iterations: Gauss-Newton iterations on the pose alone, first (one correspondence search each;
            yaw slides slowly on a face, so they are many and cheap); they stop early once a step is tiny.
        iterations: joint pose + coefficient iterations after them (``mode="pose+shape"`` only).
        reject_mm: the pair-distance threshold, shrinking linearly from the first to the second value over
            the rigid iterations, then kept.
        noise_mm: sigma of the residuals, weighing the identity prior N(0, 1) against the data; ``None``
            (default): the robust scale of the current residuals (1.4826 x their median absolute value, at
            least 0.2 mm), so clean frames trust the data and noisy ones the prior.
        expression_ridge: ``lambda_beta``, the ridge prior on the expression coefficients.
        anneal: the coefficient priors start this many times stronger at the first joint iteration and relax
            geometrically to their final weight by the last (coarse to fine: the large modes settle first,
            which keeps an open mouth or a frown from being explained by a spread of small blendshapes).
        trim_sigmas: drop residuals beyond this many robust sigmas (``None``: Huber weights only).
        damping: Levenberg-Marquardt damping of the rigid block (relative to its diagonal).
        crop_radius_mm: only points this close to the start head centre are searched (without ``tree``).
        max_points: at most about this many of them, every k-th (without ``tree``): residuals run along the
            model's normals, so a sparser cloud costs little accuracy (a 2 mm spacing moves a point on a
            surface curved with a 50 mm radius by 0.01 mm) and makes the k-d tree cheaper.
        free_space: trim only residuals whose measured point lies in front of the face (an occluder: hair,
            a hand); a face in front of its measured point is free-space evidence a depth camera gives (it
            would have seen that surface), such as an open mouth's cavity behind closed model lips, and
            keeps its Huber weight. Applied in the joint iterations only (a rigid fit of a wrong face, such as
            the mean, is better off trimming both sides). ``False``: trim both sides.
        box_iterations: active-set passes of each step's box-constrained solve (each step is approximate
            anyway; the next iteration continues from the clipped result).
        search: how vertices find their measured point: ``"rays"`` (default) the closest point among the 3 x 3
            cells around the vertex's ray in the frame's points binned by ray (:func:`ray_grid`, cells
            ``cell_mm`` wide at the start head's depth: a depth frame's own range image, O(1) a vertex), or
            ``"kdtree"`` the nearest point (scipy ``cKDTree`` of at most ``max_points``, a query per vertex costs
            about 6x more; points need not come from one camera).
        cell_mm: the ray grid's cell size at the start head's depth.

    Returns:
        A :class:`FitResult`. With fewer than 12 usable pairs the start is returned unchanged (``n_pairs`` says).

    Raises:
        InputError: bad points, start pose or coefficients, or an unknown mode.
    """
    if mode not in FIT_MODES:
        raise InputError(f"fit mode must be one of {', '.join(FIT_MODES)}, got {mode!r}")
    if search not in SEARCHES:
        raise InputError(f"search must be one of {', '.join(SEARCHES)}, got {search!r}")
    with _one_blas_thread():
        return _fit(points, region, R0, t0, identity0, expression0, shape0, mode, rigid_iterations, iterations,
                    reject_mm, noise_mm, expression_ridge, anneal, trim_sigmas, damping, crop_radius_mm, max_points,
                    box_iterations, free_space, search, cell_mm)


def _fit(points, region, R0, t0, identity0, expression0, shape0, mode, rigid_iterations, iterations, reject_mm,
         noise_mm, expression_ridge, anneal, trim_sigmas, damping, crop_radius_mm, max_points, box_iterations,
         free_space, search, cell_mm) -> FitResult:
    """:func:`fit_frame` after its mode check, with one BLAS thread."""
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3 or not np.isfinite(pts).all():
        raise InputError(f"points must be a finite (N, 3) array (mm), got shape {pts.shape}")
    R, t = _check_pose(R0, t0)
    Ki, K = region.n_identity, region.n_coefficients
    c = np.zeros(K)
    for start, sl, what in ((identity0, slice(0, Ki), "identity0"), (expression0, slice(Ki, K), "expression0")):
        if start is not None:
            v = np.asarray(start, dtype=np.float64).reshape(-1)
            if v.shape != (sl.stop - sl.start,) or not np.isfinite(v).all():
                raise InputError(f"{what} must be {sl.stop - sl.start} finite coefficients, got shape {v.shape}")
            c[sl] = v
    if region.expression_bounded:
        c[Ki:] = np.clip(c[Ki:], 0.0, 1.0)
    shape_on = mode == "pose+shape"
    base_full = region.full_mean
    base = region.mean
    if shape0 is not None:
        base_full = np.asarray(shape0, dtype=np.float32)
        if base_full.shape != region.full_mean.shape or not np.isfinite(base_full).all():
            raise InputError(f"shape0 must be finite {region.full_mean.shape} vertices, got shape {base_full.shape}")
        base = base_full[region.indices].astype(np.float64)
    n_used, rms, med, inl, it_done = 0, float("nan"), float("nan"), 0.0, 0
    if len(pts) >= 12:
        # the face lies within about 150 mm of the head centre: fewer points, and no shoulders or walls
        slab = pts[np.abs(pts[:, 2] - t[2]) < crop_radius_mm]  # one column first: a frame is mostly far
        near = slab[np.sum((slab - t) ** 2, axis=1) < crop_radius_mm**2]
        pts = near if len(near) >= 12 else pts
        if search == "kdtree":
            pts = pts[:: max(1, -(-len(pts) // max_points))]  # point-to-plane tolerates a sparser cloud
            tree = cKDTree(pts, balanced_tree=False, compact_nodes=False)
            query = functools.partial(tree.query, k=1)
        else:
            grid = ray_grid(pts, max(float(t[2]), 100.0), cell_mm)
            pts = grid.points
            query = functools.partial(ray_grid_query, grid)
        rigid_ids = np.flatnonzero(region.rigid)
        lo = np.full(K, -np.inf)
        hi = np.full(K, np.inf)
        prior = np.r_[np.ones(Ki), np.full(K - Ki, expression_ridge)]
        total = rigid_iterations + (iterations if shape_on else 0)
        it = 0
        s = s_rigid = active = None
        normals_rigid = region.normals[rigid_ids]
        while it < total:
            joint = it >= rigid_iterations
            frac = min(it / max(rigid_iterations - 1, 1), 1.0)
            thr = reject_mm[0] + (reject_mm[1] - reject_mm[0]) * frac
            if s is None or joint:  # the face changes only in the joint iterations
                s = base + (c.astype(np.float32) @ region.basis_rows).reshape(3, -1).T  # (M, 3) head frame
                s_rigid = s[rigid_ids]
            # the rigid iterations use the rigid subsample only; the joint ones every fitted vertex
            a = (s if joint else s_rigid) @ R.T  # rotated, relative to the head centre
            p = a + t
            n = (region.normals if joint else normals_rigid) @ R.T
            facing = (n * p).sum(-1) < -0.05 * np.sqrt((p * p).sum(-1))  # normal toward the camera
            d, j = query(p[facing], distance_upper_bound=thr)
            sel = np.flatnonzero(facing)[np.isfinite(d)]
            q = pts[j[np.isfinite(d)]]
            if len(sel) < 12:
                break
            nn = n[sel]
            r = ((p[sel] - q) * nn).sum(-1)  # point-to-plane residuals (mm)
            ar = np.abs(r)
            sig = max(1.4826 * float(np.partition(ar, len(ar) // 2)[len(ar) // 2]), 0.1)  # median
            w = np.minimum(1.0, 1.345 * sig / np.maximum(ar, 1e-12))
            if trim_sigmas is not None:
                far = ar > trim_sigmas * sig
                if free_space and joint:  # only measured points in front of the face can be occluders (hair, a hand)
                    far &= r < 0
                w[far] = 0.0
            keep = w > 0
            sel, r, w, nn = sel[keep], r[keep], w[keep], nn[keep]
            n_used, it_done = len(sel), it_done + 1
            rms = float(np.sqrt(np.sum(w * r * r) / max(np.sum(w), 1e-12)))
            med = sig / 1.4826  # of the residuals before trimming
            inl = min(1.0, n_used / max(int(facing.sum()), 1))
            if n_used < 12:
                break
            J_rigid = _rigid_jacobian(a[sel], nn)  # d r / d (omega, dt)
            if joint:
                J = np.empty((len(sel), 6 + K), np.float32)
                J[:, :6] = J_rigid
                J[:, 6:] = region.normal_basis[sel]  # d r / d c = (R^T n_i)^T B_i = normal_i^T B_i (head frame)
            else:
                J = J_rigid
            noise = max(sig, 0.2) if noise_mm is None else noise_mm
            Jw = J * (w / noise**2).astype(J.dtype)[:, None]
            H = (Jw.T @ J).astype(np.float64)
            g = -(Jw.T @ r.astype(J.dtype)).astype(np.float64)
            H[_DIAG6, _DIAG6] += damping * H[_DIAG6, _DIAG6] + 1e-9
            if joint:
                joint_frac = (it - rigid_iterations) / max(iterations - 1, 1)
                pw = prior * anneal ** (1.0 - min(joint_frac, 1.0))
                H[6:, 6:] += np.diag(pw)
                g[6:] -= pw * c
                lo_x = np.r_[np.full(6, -np.inf), lo]
                hi_x = np.r_[np.full(6, np.inf), hi]
                if region.expression_bounded:
                    lo_x[6 + Ki:] = -c[Ki:]
                    hi_x[6 + Ki:] = 1.0 - c[Ki:]
                x = _solve_box(H, g, lo_x, hi_x, iterations=box_iterations, start=active)
                c = c + x[6:]
                if region.expression_bounded:
                    c[Ki:] = np.clip(c[Ki:], 0.0, 1.0)
                    active = np.full(6 + K, np.nan)  # blendshapes left at a bound start the next solve fixed there
                    active[6 + Ki:][c[Ki:] == 0.0] = 0.0
                    active[6 + Ki:][c[Ki:] == 1.0] = 0.0
            else:
                x = np.linalg.solve(H, g)
            R = rotvec_to_matrix_np(x[:3]) @ R
            t = t + x[3:6]
            it += 1
            if not joint and np.linalg.norm(x[:3]) < _SETTLED[0] and np.linalg.norm(x[3:6]) < _SETTLED[1] and frac >= 0.5:
                it = rigid_iterations  # the pose has settled: on to the joint iterations (or done)
    verts = base_full.copy() if not c.any() else base_full + (c.astype(np.float32) @ region.full_basis).reshape(-1, 3)
    return FitResult(R, t, c[:Ki].copy(), c[Ki:].copy(), verts, rms, med, inl, n_used, it_done)


def coefficients_from_vertices(region: FitRegion, vertices: np.ndarray, noise_mm: float = 1.0,
                               expression_ridge: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """The model coefficients closest to a given face (e.g. a network's per-vertex output), to warm-start
    :func:`fit_frame`: ``min |B c - (v - mean)|^2 / sigma^2 + |alpha|^2 + lambda_beta |beta|^2`` over the
    region's vertices, blendshape weights kept in ``[0, 1]``.

    Args:
        region: from :func:`prepare_fit_region`.
        vertices: ``(V, 3)`` full-topology head-frame vertices (mm).

    Returns:
        ``(identity (Ki,), expression (Ke,))``.
    """
    v = np.asarray(vertices, dtype=np.float64)
    if v.shape != region.full_mean.shape:
        raise InputError(f"vertices must be {region.full_mean.shape}, got shape {v.shape}")
    K, Ki = region.n_coefficients, region.n_identity
    B = region.basis.reshape(-1, K)
    d = (v[region.indices] - region.mean).reshape(-1)
    H = region.gram / noise_mm**2 + np.diag(np.r_[np.ones(Ki), np.full(K - Ki, expression_ridge)])
    lo, hi = np.full(K, -np.inf), np.full(K, np.inf)
    if region.expression_bounded:
        lo[Ki:], hi[Ki:] = 0.0, 1.0
    with _one_blas_thread():
        c = _solve_box(H, B.T @ d / noise_mm**2, lo, hi)
    return c[:Ki], c[Ki:]


#: test-time refinement of a network's prediction: none, the pose only, or pose and shape.
REFINE_MODES: tuple[str, ...] = ("none", "pose", "pose+shape")
#: joint iterations of ``"pose+shape"`` after a network: its face is a close start, so 5 are as accurate as the
#: cold fit's 10 there and cost 30 % less (measured on the release networks' starts: docs/models.md)
REFINE_JOINT_ITERATIONS = 5


def refine_prediction(points: np.ndarray, region: FitRegion, R: np.ndarray, t: np.ndarray, vertices: np.ndarray,
                      refine: str, **kwargs) -> FitResult | None:
    """Refine a network's pose and face by :func:`fit_frame` (docs/method.md, "Fit and refinement").

    * ``"pose"``: robust point-to-plane ICP of the face region of the network's own face ``vertices``,
      started at the network's pose; the face is kept.
    * ``"pose+shape"``: the network's face projected on the model's modes
      (:func:`coefficients_from_vertices`) is the start; pose, identity and expression are fitted, with
      :data:`REFINE_JOINT_ITERATIONS` joint iterations unless ``iterations`` is given.
    * ``"none"``: returns ``None``.

    Args:
        points: ``(N, 3)`` measured points (camera frame, mm).
        region: from :func:`prepare_fit_region`.
        R: ``(3, 3)``, t: ``(3,)`` the network's pose. vertices: ``(V, 3)`` its face (head frame, mm).
        refine: one of :data:`REFINE_MODES`.
        kwargs: further options of :func:`fit_frame`.
    """
    if refine not in REFINE_MODES:
        raise InputError(f"refine must be one of {', '.join(REFINE_MODES)}, got {refine!r}")
    if refine == "none":
        return None
    if refine == "pose":
        return fit_frame(points, region, R, t, shape0=vertices, mode="pose", **kwargs)
    alpha, beta = coefficients_from_vertices(region, vertices)
    kwargs.setdefault("iterations", REFINE_JOINT_ITERATIONS)
    return fit_frame(points, region, R, t, identity0=alpha, expression0=beta, mode="pose+shape", **kwargs)
