"""Scenes: one synthetic sample = identity + expression + head pose + camera, and its exact labels.

Every sample is a pure function of ``(seed, index)``: its random stream is
``numpy.random.default_rng(SeedSequence([seed, STREAM_SAMPLE, index]))`` and identity ``k``'s
coefficients come from ``SeedSequence([seed, STREAM_IDENTITY, k])``. So any process can make any
sample, which is what makes sharded, resumable generation byte-identical to a single run.

Sample ``index`` shows identity ``(index // n_expr) % n_id`` with expression ``index % n_expr``, so
consecutive samples cycle through identities and expressions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from numba import njit

from depthface.facemodel import MorphableModel
from depthface.geometry.camera import Intrinsics
from depthface.geometry.conventions import CROP_PIXELS, CROP_SIZE_MM
from depthface.geometry.crop import metric_crop
from depthface.geometry.rotations import euler_to_matrix, matrix_to_quaternion
from depthface.synth.exact import rigid_row, rows_combination
from depthface.synth.profiles import EXPRESSIONS, SynthProfile
from depthface.synth.render import render_depth
from depthface.synth.skull import SkullBound, skull_bound, skull_scale

STREAM_SAMPLE = 0
STREAM_IDENTITY = 1

#: Label fields stored per sample: name -> (shape without the sample axis, dtype).
def label_fields(identity_dim: int, expression_dim: int) -> dict[str, tuple[tuple[int, ...], str]]:
    return {
        "identity_id": ((), "int32"),
        "expression_id": ((), "int32"),
        "identity": ((identity_dim,), "float32"),
        "expression": ((expression_dim,), "float32"),
        "quaternion": ((4,), "float32"),
        "translation": ((3,), "float32"),
        "ypr": ((3,), "float32"),
        "centre_2d": ((2,), "float32"),
        "landmarks3d": ((68, 3), "float32"),
        "crop_centre": ((3,), "float32"),
        "crop_window": ((4,), "float64"),
        "crop_intrinsics": ((4,), "float64"),
    }


#: fields that are inputs (known without labels at test time), kept by target-domain loaders
INPUT_FIELDS = ("crop_centre", "crop_window", "crop_intrinsics")


@dataclass(frozen=True)
class Scene:
    """One sample's scene. Angles in degrees, lengths in mm, pose maps head to camera frame."""

    index: int
    identity_id: int
    expression_id: int
    identity: np.ndarray  # (Ki,)
    expression: np.ndarray  # (Ke,)
    ypr: np.ndarray  # (3,) yaw, pitch, roll
    rotation: np.ndarray  # (3, 3)
    translation: np.ndarray  # (3,) head centre in the camera frame
    crop_centre: np.ndarray  # (3,)


def boundary_loops(triangles: np.ndarray, n_vertices: int) -> list[np.ndarray]:
    """Vertex ids of each boundary loop of a triangle mesh (edges used by one triangle), unordered."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    e = np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [2, 0]]])
    u, cnt = np.unique(np.sort(e, 1), axis=0, return_counts=True)
    b = u[cnt == 1]
    if len(b) == 0:
        return []
    adj = coo_matrix((np.ones(len(b)), (b[:, 0], b[:, 1])), shape=(n_vertices, n_vertices))
    _, label = connected_components(adj, directed=False)
    verts = np.unique(b)
    return [verts[label[verts] == c] for c in np.unique(label[verts])]


#: how far the filled surface of a hole sits behind the centroid of its rim (mm, along head +z)
HOLE_DEPTH_MM = {"eye": 2.0, "mouth": 12.0}


def hole_fills(mean: np.ndarray, triangles: np.ndarray, landmarks: np.ndarray) -> list[tuple[np.ndarray, float]]:
    """The eye and mouth openings of a face mesh, to be closed by fans when rendering.

    Models without eyeballs and teeth (the default ICT mesh) have holes there, through which a depth
    camera would see the inside of the head; a real sensor sees eyes and a recessed mouth cavity.
    Returns, per hole, its rim vertices ordered counter-clockwise as seen from the front and the
    depth of the fan's centre behind the rim (:data:`HOLE_DEPTH_MM`).
    """
    targets = {"eye": [landmarks[36:42].mean(0), landmarks[42:48].mean(0)], "mouth": [landmarks[60:68].mean(0)]}
    fills = []
    for loop in boundary_loops(triangles, len(mean)):
        c = mean[loop].mean(0)
        for kind, points in targets.items():
            if any(np.linalg.norm(c - p) < 25.0 for p in points):
                ang = np.arctan2(mean[loop, 1] - c[1], mean[loop, 0] - c[0])
                fills.append((loop[np.argsort(-ang)], HOLE_DEPTH_MM[kind]))
    return fills


def close_holes(vertices: np.ndarray, triangles: np.ndarray, fills: list[tuple[np.ndarray, float]],
                closed_triangles: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Close a mesh's eye and mouth openings by fans (see :func:`hole_fills`).

    Args:
        vertices: ``(V, 3)`` head-frame vertices (mm).
        triangles: ``(T, 3)``.
        fills: from :func:`hole_fills` of the same topology.
        closed_triangles: the triangles this function returned before for the same ``triangles`` and
            ``fills`` (they depend on the topology only): reused instead of rebuilt.

    Returns:
        ``(V + n_holes, 3)`` vertices (one centre per hole) and ``(T + rim vertices, 3)`` int32 triangles.
    """
    v = len(vertices)
    centres = [vertices[loop].mean(0) + np.array([0.0, 0.0, depth]) for loop, depth in fills]
    if closed_triangles is None:
        fans = [np.stack([np.full(len(loop), v + k), loop, np.roll(loop, -1)], 1) for k, (loop, _) in enumerate(fills)]
        closed_triangles = np.concatenate([triangles, *fans]).astype(np.int32)
    return np.concatenate([vertices, np.array(centres).reshape(-1, 3)]), closed_triangles


@njit(cache=True, nogil=True)
def _pose_head(neutral, weights, rows, nz, loops, loop_starts, hole_depths, R, t, head, posed):  # pragma: no cover
    """:meth:`SceneSampler.head_vertices` (``head`` ``(V, 3)``: ``neutral + weights @ rows[nz]``, reshaped),
    :func:`close_holes` (a centre per hole: the mean of its rim plus ``hole_depths`` along z) and the pose
    (``posed`` ``(V + holes, 3)``: ``@ R.T + t``) in one call, rounding as the numpy originals do."""
    n = neutral.shape[0]
    flat_neutral = neutral.reshape(-1)
    flat = head.reshape(-1)
    rows_combination(weights, rows, nz, flat)
    for j in range(flat.shape[0]):
        flat[j] = flat_neutral[j] + flat[j]
    for v in range(n):
        rigid_row(head[v, 0], head[v, 1], head[v, 2], R, t, posed, v)
    for h in range(hole_depths.shape[0]):
        a, b = loop_starts[h], loop_starts[h + 1]
        centre = np.empty(3)
        for c in range(3):
            acc = head[loops[a], c]
            for i in range(a + 1, b):
                acc += head[loops[i], c]
            centre[c] = acc / (b - a)
        rigid_row(centre[0] + 0.0, centre[1] + 0.0, centre[2] + hole_depths[h], R, t, posed, n + h)


class SceneSampler:
    """Draws scenes of a profile from a face model, deterministically per ``(seed, index)``.

    Caches each identity's neutral shape, so a sample costs one sparse expression update.
    """

    def __init__(self, model: MorphableModel, profile: SynthProfile, seed: int) -> None:
        self.model = model
        self.profile = profile
        self.seed = int(seed)
        self.mean = model.mean.detach().cpu().numpy().astype(np.float64)
        v = model.mean.shape[0]
        # modes as contiguous rows (K, 3V): a sample's shape is a short sum of rows
        self.id_rows = np.ascontiguousarray(model.identity_basis.detach().cpu().numpy().astype(np.float64)
                                            .reshape(3 * v, -1).T)
        self.expr_rows = np.ascontiguousarray(model.expression_basis.detach().cpu().numpy().astype(np.float64)
                                              .reshape(3 * v, -1).T)
        self.triangles = model.triangles.detach().cpu().numpy().astype(np.int32)
        self.landmark_ids = model.landmarks68.detach().cpu().numpy()
        names = list(model.expression_names)
        self.expression_weights = np.zeros((len(profile.expressions), len(names)))
        for e, expr in enumerate(profile.expressions):
            for bs, w in EXPRESSIONS[expr].items():
                if bs in names:
                    self.expression_weights[e, names.index(bs)] = w
        self._identity_cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._skull_bounds: dict[tuple[int, int], SkullBound | None] = {}
        self._expression_reach: dict[int, np.ndarray] = {}
        self._skull_seen: set[tuple[int, int]] = set()
        lm = self.mean[self.landmark_ids]
        self.fills = hole_fills(self.mean, self.triangles, lm)
        self.closed_triangles = close_holes(self.mean, self.triangles, self.fills)[1]
        self.closed_triangles.flags.writeable = False
        self._loops = np.concatenate([loop for loop, _ in self.fills] + [np.zeros(0, np.int64)]).astype(np.int64)
        self._loop_starts = np.cumsum([0] + [len(loop) for loop, _ in self.fills]).astype(np.int64)
        self._hole_depths = np.array([depth for _, depth in self.fills], dtype=np.float64)

    def identity(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Identity ``k``'s coefficients ``(Ki,)`` and neutral shape ``(V, 3)`` in the head frame (mm)."""
        if k not in self._identity_cache:
            rng = np.random.default_rng(np.random.SeedSequence([self.seed, STREAM_IDENTITY, k]))
            alpha = rng.standard_normal(self.id_rows.shape[0]) * self.profile.identity_scale
            self._identity_cache[k] = (alpha, self.mean + (alpha @ self.id_rows).reshape(-1, 3))
        return self._identity_cache[k]

    def scene(self, index: int) -> Scene:
        """Sample ``index``'s scene."""
        return self.scenes([index])[0]

    def scenes(self, indices) -> list[Scene]:
        """The scenes of several samples, each drawn from its own stream; their rotation matrices in one
        batched call (the same bits as one call per sample)."""
        p = self.profile
        n_expr = len(p.expressions)
        draws = []
        for index in indices:
            index = int(index)
            rng = np.random.default_rng(np.random.SeedSequence([self.seed, STREAM_SAMPLE, index]))
            identity_id = (index // n_expr) % p.n_identities
            expression_id = index % n_expr
            alpha, _ = self.identity(identity_id)
            beta = self.expression_weights[expression_id] * rng.uniform(0.6, 1.0)
            if p.poses is not None:
                ypr = p.poses[rng.integers(len(p.poses))] + rng.normal(0.0, 1.0, 3)
            else:
                ypr = np.array([rng.uniform(*p.pose.yaw), rng.uniform(*p.pose.pitch), rng.uniform(*p.pose.roll)])
            z = rng.uniform(*p.pose.distance)
            k = p.intrinsics
            u = k.cx + rng.uniform(-1, 1) * p.pose.image_spread * k.width / 2
            v = k.cy + rng.uniform(-1, 1) * p.pose.image_spread * k.height / 2
            t = np.array([(u - k.cx) * z / k.fx, (v - k.cy) * z / k.fy, z])
            crop_centre = t + rng.uniform(-p.crop_jitter_mm, p.crop_jitter_mm, 3)
            draws.append((index, identity_id, expression_id, alpha, beta, ypr, t, crop_centre))
        if not draws:
            return []
        R = euler_to_matrix(torch.as_tensor(np.stack([d[5] for d in draws]), dtype=torch.float64)).numpy()
        return [Scene(i, ii, ei, a, b, ypr, R[n], t, cc) for n, (i, ii, ei, a, b, ypr, t, cc) in enumerate(draws)]

    def head_vertices(self, scene: Scene) -> np.ndarray:
        """``(V, 3)`` vertices of the scene's face in the head frame (mm)."""
        return self.posed(scene)[0]

    def posed(self, scene: Scene) -> tuple[np.ndarray, np.ndarray]:
        """The scene's face: head-frame vertices ``(V, 3)`` (:meth:`head_vertices`) and camera-frame vertices
        ``(V + holes, 3)`` with the eyes and mouth closed (:meth:`render_mesh`), in one compiled pass that
        rounds as ``neutral + (w[nz] @ rows[nz]).reshape(-1, 3)``, :func:`close_holes` and ``@ R.T + t`` do."""
        _, neutral = self.identity(scene.identity_id)
        nz = np.flatnonzero(scene.expression)
        head = np.empty_like(neutral)
        posed = np.empty((len(neutral) + len(self._hole_depths), 3))
        _pose_head(neutral, np.ascontiguousarray(scene.expression[nz]), self.expr_rows, nz, self._loops,
                   self._loop_starts, self._hole_depths, np.ascontiguousarray(scene.rotation),
                   np.ascontiguousarray(scene.translation, dtype=np.float64), head, posed)
        return head, posed

    def skull_scale(self, scene: Scene, head: np.ndarray) -> float:
        """:func:`~depthface.synth.skull.skull_scale` of the scene's ``head`` (its :meth:`head_vertices`), ranking
        only the vertices its identity and expression allow to matter (:meth:`skull_bound`): the same value.

        The bound assumes the sampler's expressions, ``|expression| <= |expression_weights[expression_id]|``
        coefficient by coefficient; a scene outside it is ranked in full, and so is the first head of each
        identity and expression (a bound costs about two full rankings: it pays from the third use on)."""
        key = (scene.identity_id, scene.expression_id)
        if key not in self._skull_bounds and key not in self._skull_seen:
            self._skull_seen.add(key)
            return skull_scale(head)
        if not np.all(np.abs(scene.expression) <= np.abs(self.expression_weights[scene.expression_id])):
            return skull_scale(head)
        return skull_scale(head, bound=self.skull_bound(*key))

    def skull_bound(self, identity_id: int, expression_id: int) -> SkullBound | None:
        """The :func:`~depthface.synth.skull.skull_bound` of an identity's heads with an expression at any
        intensity up to its weights (cached; the expression's displacement bound is cached per expression)."""
        key = (identity_id, expression_id)
        if key not in self._skull_bounds:
            if expression_id not in self._expression_reach:
                w = np.abs(self.expression_weights[expression_id])
                nz = np.flatnonzero(w)
                reach = w[nz] @ np.abs(self.expr_rows[nz]) if len(nz) else np.zeros(self.expr_rows.shape[1])
                self._expression_reach[expression_id] = reach.reshape(-1, 3)
            self._skull_bounds[key] = skull_bound(self.identity(identity_id)[1], self._expression_reach[expression_id])
        return self._skull_bounds[key]

    def render_mesh(self, scene: Scene, head_vertices: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Camera-frame vertices ``(V + holes, 3)`` and triangles (read-only, shared) of the face with eyes and
        mouth closed; ``head_vertices``: the scene's :meth:`head_vertices` if already computed."""
        if head_vertices is None:
            return self.posed(scene)[1], self.closed_triangles
        verts, triangles = close_holes(head_vertices, self.triangles, self.fills, self.closed_triangles)
        return verts @ scene.rotation.T + scene.translation, triangles

    def render(self, scene: Scene) -> np.ndarray:
        """The clean full depth frame ``(H, W)`` float32 mm of the scene's face (0 = background)."""
        return render_depth(*self.render_mesh(scene), self.profile.intrinsics)

    def labels(self, scene: Scene, vertices_cam: np.ndarray, quaternion: np.ndarray | None = None
               ) -> dict[str, np.ndarray]:
        """The stored labels of a scene (see :func:`label_fields`) except the crop fields; ``quaternion``:
        :func:`quaternions` of the scene if already computed."""
        k = self.profile.intrinsics
        q = quaternions([scene])[0] if quaternion is None else quaternion
        t = scene.translation
        return {
            "identity_id": np.int32(scene.identity_id),
            "expression_id": np.int32(scene.expression_id),
            "identity": scene.identity.astype(np.float32),
            "expression": scene.expression.astype(np.float32),
            "quaternion": q.astype(np.float32),
            "translation": t.astype(np.float32),
            "ypr": scene.ypr.astype(np.float32),
            "centre_2d": np.array([k.fx * t[0] / t[2] + k.cx, k.fy * t[1] / t[2] + k.cy], dtype=np.float32),
            "landmarks3d": vertices_cam[self.landmark_ids].astype(np.float32),
            "crop_centre": scene.crop_centre.astype(np.float32),
        }


def quaternions(scenes: list[Scene]) -> np.ndarray:
    """``(N, 4)`` float64 unit quaternions of the scenes' rotations, in one batched call (the same bits as
    one call per scene)."""
    return matrix_to_quaternion(torch.as_tensor(np.stack([s.rotation for s in scenes]))).numpy()


def crop_sample(depth: np.ndarray, intrinsics: Intrinsics, centre: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Metric-crop a full frame to the stored ``(160, 160)`` uint16 crop and its crop labels."""
    crop, k_crop, window = metric_crop(depth, intrinsics, centre, CROP_SIZE_MM, CROP_PIXELS)
    crop16 = np.clip(np.rint(crop), 0, 65535).astype(np.uint16)
    return crop16, {"crop_window": window.as_array(),
                    "crop_intrinsics": np.array([k_crop.fx, k_crop.fy, k_crop.cx, k_crop.cy])}
