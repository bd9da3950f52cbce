"""Scene context, the part of a scene a face model lacks: hair, neck and torso, a background wall and boxes.

:func:`add_scene_context` renders them as triangle meshes with :mod:`depthface.synth.render` (or an
analytic plane) and composites them by z-buffer min into a clean depth frame of the subject, with a
per-pixel label image (``LABEL_*``) that sensor models read (hair reflects differently):

* **hair**: a super-ellipsoid cap attached to the head frame, slightly larger than the ICT skull, with
  random thickness, volume, a random hairline (forehead / temples / nape) and, with some probability,
  long hair hanging beside the face and behind the neck; bald with probability ``1 - hair_probability``.
  ``hair_ragged_mm`` (off by default) roughens its outline (a ragged silhouette and hairline);
* **neck and torso**: a tube from the head's neck to a super-ellipsoid torso (boxy shoulders, rounder with
  ``torso_roundness``) that follows only a random fraction of the head rotation (the torso does not turn
  with the head);
* **background**: a wall plane 1.5-3.5 m away (at least ``wall_min_gap_mm`` behind the head), tilted at
  random, and a few random boxes between the head and the wall (never in front of the head).

Everything is a pure function of its inputs and an explicit ``numpy.random.Generator`` whose number of
draws does not depend on the window. The measurement process (what a sensor makes of this scene) lives
in :mod:`depthface.synth.sensors`; :mod:`depthface.synth.sensor` runs both. The meshes are built by the
compiled kernels of :mod:`depthface.synth.meshes` (bit-identical to generator version 1's numpy code).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from numba import njit

from depthface.errors import InputError
from depthface.geometry.camera import Intrinsics
from depthface.synth.exact import euler_rotation, rigid_rows
from depthface.synth.meshes import (BODY_DRAWS, BODY_VERTICES, BOX_DRAWS, HAIR_COLS, HAIR_ROWS,  # noqa: F401
                                    NECK_TRIANGLES, SKULL_AXES_MM, SKULL_CENTRE_MM, SKULL_EXPONENT, WALL_DRAWS,
                                    body_draws, body_ranges, body_triangles, body_vertices, box_corners,
                                    box_triangles, hair_draws, hair_vertices, in_ranges, surface_triangles,
                                    wall_plane)
from depthface.synth.params import ADDED, check_params
from depthface.synth.render import Window, check_depth_frame, clip_window, render_into_window
from depthface.synth.skull import skull_scale

# ---------------------------------------------------------------------------------------------------------------------
# Labels of :func:`add_scene_context` (uint8, per pixel)

LABEL_NONE = 0  #: nothing rendered
LABEL_SUBJECT = 1  #: the input (clean) depth: the face / head mesh
LABEL_HAIR = 2
LABEL_BODY = 3  #: neck and torso
LABEL_OBJECT = 4  #: background boxes
LABEL_WALL = 5

@dataclass(frozen=True)
class SceneProfile:
    """Every parameter of the scene context (lengths in mm, angles in degrees).

    Ranges ``(low, high)`` are sampled uniformly per frame. See the module docstring.
    """

    #: probability that the subject has hair, and that it is long (beside the face, down the neck).
    hair_probability: float = 0.9
    long_hair_probability: float = 0.3
    #: hair thickness over the skull at the sides / back (mm) and extra volume on top (mm).
    hair_thickness_mm: tuple[float, float] = (3.0, 20.0)
    hair_top_volume_mm: tuple[float, float] = (0.0, 20.0)
    #: hairline heights in the head frame (y down, mm): forehead, temples (short hair), nape (short hair).
    hairline_front_mm: tuple[float, float] = (-78.0, -55.0)
    hairline_side_mm: tuple[float, float] = (-25.0, 10.0)
    hairline_back_mm: tuple[float, float] = (30.0, 90.0)
    #: long hair: how far down it hangs beside the face and at the back (head frame y, mm).
    long_hair_side_mm: tuple[float, float] = (60.0, 200.0)
    long_hair_back_mm: tuple[float, float] = (150.0, 320.0)
    #: fraction of the head rotation (axis-angle) the torso follows, plus a random torso yaw (deg).
    torso_follow: tuple[float, float] = (0.1, 0.4)
    torso_yaw_deg: float = 10.0
    #: half shoulder width, half torso depth (mm), neck length from the upper-neck joint (mm).
    shoulder_half_width_mm: tuple[float, float] = (170.0, 225.0)
    torso_half_depth_mm: tuple[float, float] = (95.0, 135.0)
    neck_length_mm: tuple[float, float] = (60.0, 100.0)
    neck_radius_mm: tuple[float, float] = (50.0, 60.0)
    #: probability of a background wall, its distance along the optical axis (mm) and the maximum tilts (deg).
    wall_probability: float = 0.95
    wall_distance_mm: tuple[float, float] = (1500.0, 3500.0)
    wall_min_gap_mm: float = 400.0
    wall_yaw_deg: float = 35.0
    wall_pitch_deg: float = 15.0
    #: number of background boxes (inclusive range) and their edge lengths (mm).
    box_count: tuple[int, int] = (0, 3)
    box_size_mm: tuple[float, float] = (150.0, 800.0)

    # --- realism options (issue 11; defaults reproduce generator version 1) ---------------------------------
    #: amplitude (mm) of a per-vertex radial roughness of the hair's lower half and of its hairline: a ragged
    #: outline around a solid hair surface, as real short hair looks to a Kinect v1. (0, 0) = smooth (v1).
    hair_ragged_mm: tuple[float, float] = field(default=(0.0, 0.0), metadata=ADDED)
    #: vertical super-ellipsoid exponent of the torso: 0.3 = a box with a flat top and square shoulders (a
    #: "floating collar edge" below a long neck), 1 = an ellipsoid whose top slopes from the neck to the
    #: shoulders; with a short ``neck_length_mm`` the shoulders meet the jaw line.
    torso_roundness: tuple[float, float] = field(default=(0.3, 0.5), metadata=ADDED)

    def __post_init__(self) -> None:
        bad = lambda msg: InputError(f"scene profile: {msg}")  # noqa: E731
        check_params(self, bad, signed=("hairline",))
        if not all(0 <= x <= 1 for x in (self.hair_probability, self.long_hair_probability, self.wall_probability)):
            raise bad("probabilities must lie in [0, 1]")
        if not 0 < self.torso_roundness[0]:
            raise bad(f"torso_roundness must be positive, got {self.torso_roundness}")


DEFAULT_SCENE = SceneProfile()


def scene_of(profile) -> SceneProfile:
    """The scene of a simulation profile (``profile.scene``), or ``profile`` itself when it is a scene."""
    scene = getattr(profile, "scene", profile)
    if not isinstance(scene, SceneProfile):
        raise InputError(f"expected a SceneProfile or a simulation profile, got {type(profile).__name__}")
    return scene


# ---------------------------------------------------------------------------------------------------------------------
# Scene context: meshes (built in :mod:`depthface.synth.meshes`)


def _rotation(yaw_deg: float, pitch_deg: float, roll_deg: float = 0.0) -> np.ndarray:
    """``Rx(-pitch) Ry(yaw) Rz(roll)`` (the project's Euler convention, degrees), (3, 3)."""
    return euler_rotation(float(yaw_deg), float(pitch_deg), float(roll_deg))


def hair_mesh(rng: np.random.Generator, profile: SceneProfile = DEFAULT_SCENE, *, scale: float = 1.05, rows: int = 20,
              cols: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """A random hair volume in the head frame (mm; y down, z into the skull).

    The skull super-ellipsoid (:data:`SKULL_CENTRE_MM`, :data:`SKULL_AXES_MM`, exponent 2.2-2.8) scaled by
    ``scale`` (default 1.05: encloses the scalp of most identities, a few mm of skin may show through on the
    largest skulls; :func:`skull_scale` fits one head) and grown by the hair thickness (full at the back,
    a fifth of it at the forehead, plus extra volume on top), cut at a random hairline ``y < h(phi)`` that
    interpolates nape, side (down to ~112 deg from the back) and forehead heights around the head, plus small
    asymmetric harmonics.
    Short hair follows the skull's lower half toward the nape; long hair continues below the equator as a
    slightly tapering tube, beside the face and down the back. Low-frequency bumps make it uneven.
    Every grid column ends exactly on the hairline (unless ``hair_ragged_mm`` roughens it: then each vertex
    moves radially, and each hairline vertex vertically, by a clipped N(0, amp^2), amp drawn from the range,
    smoothed over neighbouring columns).

    Returns:
        ``vertices`` ``(rows * cols, 3)`` float64 and ``triangles`` ``(T, 3)`` int32, outward CCW.
    """
    verts = np.empty((rows * cols, 3))
    hair_vertices(hair_draws(rng, scene_of(profile), rows, cols), scale, verts, rows, cols)
    return verts, surface_triangles(rows, cols)


def body_mesh(head_R: np.ndarray, head_t: np.ndarray, rng: np.random.Generator, profile: SceneProfile = DEFAULT_SCENE
              ) -> tuple[np.ndarray, np.ndarray, int]:
    """Neck and torso in the camera frame (mm).

    The torso turns by a random fraction ``torso_follow`` of the head rotation (plus a random yaw) and hangs
    ``neck_length_mm`` below the upper-neck joint (head point (0, 110, 15)); the neck is a tube from a ring
    inside the head's neck (head frame y = 90) to a ring inside the torso top, so it bends when the head
    turns. The torso is a super-ellipsoid (boxy shoulders; vertical exponent ``torso_roundness``) 1.4 m tall.

    Returns:
        ``vertices`` ``(V, 3)``, ``triangles`` ``(T, 3)`` int32 (outward CCW) and the number of neck triangles
        (they come first).
    """
    verts = np.empty((BODY_VERTICES, 3))
    body_vertices(*_pose(head_R, head_t), body_draws(rng, scene_of(profile)), verts)
    return verts, body_triangles(), NECK_TRIANGLES


def sample_wall(head_t: np.ndarray, rng: np.random.Generator,
                profile: SceneProfile = DEFAULT_SCENE) -> np.ndarray | None:
    """A background plane ``(4,)`` ``[nx, ny, nz, d]`` (``n . p = d``, unit ``n`` facing the camera), or None.

    It crosses the optical axis at ``wall_distance_mm`` (at least ``wall_min_gap_mm`` behind the head) and is
    tilted by up to ``wall_yaw_deg`` / ``wall_pitch_deg``.
    """
    return wall_plane(head_t, rng.random(WALL_DRAWS), scene_of(profile))


def box_meshes(head_t: np.ndarray, intrinsics: Intrinsics, rng: np.random.Generator, far_mm: float,
               profile: SceneProfile = DEFAULT_SCENE) -> tuple[np.ndarray, np.ndarray]:
    """Random boxes between the head and ``far_mm`` (camera frame), each at least 250 mm behind the head
    centre at its nearest corner and centred inside the field of view. ``(8 k, 3)``, ``(12 k, 3)``."""
    p = scene_of(profile)
    n = int(rng.integers(p.box_count[0], p.box_count[1] + 1))
    corners = np.empty((8 * n, 3))
    k = box_corners(head_t, intrinsics, rng.random((n, BOX_DRAWS)), far_mm, p, corners)
    return corners[:8 * k], box_triangles(k)


def _pose(head_R: np.ndarray, head_t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(3, 3)`` and ``(3,)`` contiguous float64 copies of a head pose."""
    R = np.ascontiguousarray(np.asarray(head_R, dtype=np.float64).reshape(3, 3))
    return R, np.ascontiguousarray(np.asarray(head_t, dtype=np.float64).reshape(3))


@njit(cache=True, nogil=True)
def _composite_labels(ids, tri_label, labels):  # pragma: no cover
    """``labels[p] = tri_label[ids[p]]`` where ``ids[p] >= 0`` (window-local buffers)."""
    h, w = ids.shape
    for i in range(h):
        for j in range(w):
            k = ids[i, j]
            if k >= 0:
                labels[i, j] = tri_label[k]


@njit(cache=True, nogil=True, error_model="numpy")
def _render_plane(depth, labels, label, nx, ny, nz, d, fx, fy, cx, cy, u0, v0):  # pragma: no cover
    """z-min composite of the plane ``n . p = d`` (exact ray-plane depth) into window-local ``depth``
    (pixel ``(u, v)`` at ``[v - v0, u - u0]``). Pixels already nearer than the plane's nearest point in
    the window keep their depth (even if the plane's own rounding would make it a tie)."""
    h, w = depth.shape
    a = nx / fx
    b = ny / fy
    c = nz - a * cx - b * cy
    # 1/z = (a u + b v + c) / d is affine: its maximum over the window is at a corner.
    inv_max = -np.inf
    for v in (v0, v0 + h - 1):
        for u in (u0, u0 + w - 1):
            inv_max = max(inv_max, (a * u + b * v + c) / d)
    if not inv_max > 0.0:
        return
    z_near = 1.0 / inv_max
    lab = np.uint8(label)
    for i in range(h):
        row = b * (v0 + i) + c
        drow = depth[i]
        lrow = labels[i]
        for j in range(w):  # branch-free (it vectorises): the plane wins where it is nearer, or alone
            old = drow[j]
            den = a * (u0 + j) + row
            z = d / den
            win = ((old == 0.0) | (old > z_near)) & (den * d > 0.0) & ((old == 0.0) | (z < old))
            drow[j] = np.float32(z) if win else old
            lrow[j] = lab if win else lrow[j]


def add_scene_context(depth: np.ndarray, head_R: np.ndarray, head_t: np.ndarray, intrinsics: Intrinsics,
                      rng: np.random.Generator, profile: SceneProfile = DEFAULT_SCENE, *, window: Window | None = None,
                      head_vertices: np.ndarray | None = None,
                      return_labels: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Add hair, neck, torso, background boxes and a wall to a clean depth frame (z-buffer min).

    Args:
        depth: ``(H, W)`` clean depth of the subject in mm (0 = nothing), e.g. the rendered face model.
        head_R, head_t: head pose, ``p_cam = head_R @ p_head + head_t`` (mm; ``head_t`` = head centre).
        intrinsics: the camera of ``depth``.
        rng: the random source (the number of draws does not depend on the window).
        profile: the scene parameters.
        window: ``(u0, v0, u1, v1)``: composite only there (elsewhere the input is copied unchanged).
        head_vertices: optional ``(V, 3)`` head-frame vertices of the subject: the hair is then fitted to its
            skull (:func:`skull_scale`); otherwise it encloses most identities of the ICT model.
        return_labels: also return the per-pixel labels.

    Returns:
        ``(H, W)`` float32 depth in mm (a new array), and with ``return_labels`` ``(H, W)`` uint8 labels
        (``LABEL_*``; the input's non-zero pixels are :data:`LABEL_SUBJECT`).
    """
    src = check_depth_frame(depth, intrinsics)
    profile = scene_of(profile)
    win = clip_window(window, intrinsics.width, intrinsics.height)
    local, local_labels = _context_local(src, head_R, head_t, intrinsics, rng, profile, win, head_vertices)
    u0, v0, u1, v1 = win
    out = src.copy()
    out[v0:v1, u0:u1] = local
    if not return_labels:
        return out
    labels = (src > 0).view(np.uint8)  # LABEL_SUBJECT == 1
    labels[v0:v1, u0:u1] = local_labels
    return out, labels


def _context_local(src: np.ndarray, head_R: np.ndarray, head_t: np.ndarray, intrinsics: Intrinsics,
                   rng: np.random.Generator, profile: SceneProfile, window: Window,
                   head_vertices: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """The scene context composited over ``src[window]``: local ``(v1 - v0, u1 - u0)`` float32 depth and
    uint8 labels. Draws the same random numbers whatever the window."""
    u0, v0, u1, v1 = window
    local = src[v0:v1, u0:u1].copy()  # never a view: the input is not modified
    local_labels = (local > 0).view(np.uint8)  # LABEL_SUBJECT == 1
    composite_context(local, local_labels, window, head_R, head_t, intrinsics, rng, profile, head_vertices)
    return local, local_labels


def composite_context(depth: np.ndarray, labels: np.ndarray, window: Window, head_R: np.ndarray, head_t: np.ndarray,
                      intrinsics: Intrinsics, rng: np.random.Generator, profile: SceneProfile,
                      head_vertices: np.ndarray | None = None, skull: float | None = None) -> None:
    """Draw the scene context and composite it by z-buffer min into window-sized buffers, in place.

    Args:
        depth: ``(v1 - v0, u1 - u0)`` float32 C-contiguous depth (mm, 0 = nothing) of the window's pixels.
        labels: ``(v1 - v0, u1 - u0)`` uint8 labels, overwritten where the context is nearer.
        window: ``(u0, v0, u1, v1)`` inside the image.
        head_vertices: the subject's ``(V, 3)`` head-frame vertices (the hair fits its skull) or ``None``.
        skull: their :func:`skull_scale` when the caller has it already (it is computed otherwise).

    The random draws (their number independent of the window): the hair's presence, the hair, the neck and
    torso with the wall (one call), the box count, the boxes.
    """
    R, t = _pose(head_R, head_t)
    hair = rng.random() < profile.hair_probability
    if hair:
        if skull is None and head_vertices is not None:
            skull = skull_scale(head_vertices)
        scale = 1.05 if skull is None else skull + 0.01
        hd = hair_draws(rng, profile)
    body_wall = rng.random(BODY_DRAWS + WALL_DRAWS)
    p = profile
    n_boxes = int(rng.integers(p.box_count[0], p.box_count[1] + 1))
    box_units = rng.random((n_boxes, BOX_DRAWS))

    n_hair = HAIR_ROWS * HAIR_COLS if hair else 0
    verts = np.empty((n_hair + BODY_VERTICES + 8 * n_boxes, 3))
    if hair:
        head_frame = np.empty((n_hair, 3))
        hair_vertices(hd, scale, head_frame)
        rigid_rows(head_frame, R, t, verts)
    body_vertices(R, t, in_ranges(body_ranges(p), body_wall[:BODY_DRAWS]), verts[n_hair:n_hair + BODY_VERTICES])
    wall = wall_plane(t, body_wall[BODY_DRAWS:], p)
    far = p.wall_distance_mm[1] if wall is None else float(wall[3] / wall[2])
    k = box_corners(t, intrinsics, box_units, far, p, verts[n_hair + BODY_VERTICES:])
    if depth.size == 0:
        return
    tris, tri_label = _context_topology(hair, k)
    ids = np.full(depth.shape, -1, np.int32)
    render_into_window(verts[:n_hair + BODY_VERTICES + 8 * k], tris, intrinsics, window, depth, ids)
    _composite_labels(ids, tri_label, labels)
    if wall is not None:
        _render_plane(depth, labels, LABEL_WALL, *(float(x) for x in wall), float(intrinsics.fx),
                      float(intrinsics.fy), float(intrinsics.cx), float(intrinsics.cy), window[0], window[1])


@lru_cache(maxsize=64)
def _context_topology(hair: bool, boxes: int) -> tuple[np.ndarray, np.ndarray]:
    """Triangles of the context's meshes (hair if any, neck and torso, ``boxes`` boxes; vertices in that order)
    and each triangle's label, read-only."""
    parts = ([(surface_triangles(HAIR_ROWS, HAIR_COLS), LABEL_HAIR)] if hair else []) + [
        (body_triangles(), LABEL_BODY), (box_triangles(boxes), LABEL_OBJECT)]
    n_hair = HAIR_ROWS * HAIR_COLS if hair else 0
    offsets = ([0] if hair else []) + [n_hair, n_hair + BODY_VERTICES]
    tris = np.concatenate([tr + o for (tr, _), o in zip(parts, offsets)]).astype(np.int32)
    labels = np.concatenate([np.full(len(tr), lab, np.uint8) for tr, lab in parts])
    tris.flags.writeable = labels.flags.writeable = False
    return tris, labels
