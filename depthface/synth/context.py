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
in :mod:`depthface.synth.sensors`; :mod:`depthface.synth.sensor` runs both.

(A little over 500 lines: one idea -- the scene's profile, its four mesh builders and their compositing.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from numba import njit

from depthface.errors import InputError
from depthface.geometry.camera import Intrinsics
from depthface.geometry.rotations import rotvec_to_matrix_np
from depthface.synth.params import ADDED, check_params
from depthface.synth.render import Window, check_depth_frame, clip_window, render_into_window

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
# Scene context: meshes


def _rotation(yaw_deg: float, pitch_deg: float, roll_deg: float = 0.0) -> np.ndarray:
    """``Rx(-pitch) Ry(yaw) Rz(roll)`` (the project's Euler convention), (3, 3)."""
    y, p, r = np.radians([yaw_deg, -pitch_deg, roll_deg])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return rx @ ry @ rz


def _scaled_rotation(R: np.ndarray, f: float) -> np.ndarray:
    """``exp(f log R)``: the rotation about R's axis by ``f`` times its angle, (3, 3)."""
    c = np.clip((np.trace(R) - 1) / 2, -1.0, 1.0)
    angle = math.acos(c)
    if angle < 1e-9:
        return np.eye(3)
    w = np.array([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]])
    n = np.linalg.norm(w)
    if n < 1e-9:  # angle ~ pi: axis from the symmetric part
        axis = np.sqrt(np.maximum((np.diag(R) + 1) / 2, 0))
    else:
        axis = w / n
    return rotvec_to_matrix_np(f * angle * axis)


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
def _surface_triangles(rows: int, cols: int) -> np.ndarray:
    """Outward CCW triangles of a closed-around grid whose rows run from the top (-y) down and whose columns
    run around y with ``(x, z) ~ (sin phi, cos phi)``: the layout of the hair, torso and neck grids.
    Read-only (cached)."""
    phi = np.linspace(0, 2 * np.pi, cols, endpoint=False)[None, :]
    pol = np.linspace(0.05, np.pi - 0.05, rows)[:, None]
    verts = np.stack(np.broadcast_arrays(np.sin(pol) * np.sin(phi), -np.cos(pol), np.sin(pol) * np.cos(phi)), -1)
    tris = np.ascontiguousarray(_orient_outward(verts.reshape(-1, 3), _grid_triangles(rows, cols, True), np.zeros(3)))
    tris.flags.writeable = False
    return tris


def _spow(x: np.ndarray, e: float) -> np.ndarray:
    return np.sign(x) * np.abs(x) ** e


#: The ICT skull as a super-ellipsoid in the head frame (mm): centre, semi-axes, vertical exponent. Over the
#: mean head's scalp vertices the super-ellipsoid "radius" has median 0.99 and 95th percentile 1.05 (1.11-1.13
#: for random identities); ears and the widest skulls stick out up to 1.16.
SKULL_CENTRE_MM = (0.0, -15.0, -12.0)
SKULL_AXES_MM = (80.0, 97.0, 97.0)
SKULL_EXPONENT = 2.5


def skull_scale(head_vertices: np.ndarray, quantile: float = 0.98) -> float:
    """How much the skull super-ellipsoid must grow to enclose ``quantile`` of a head's scalp vertices.

    Args:
        head_vertices: ``(V, 3)`` head-frame vertices (mm) of the subject's head mesh; those with
            ``y < 20`` (above the ears' centre) are used.
    """
    P = np.ascontiguousarray(np.asarray(head_vertices, dtype=np.float64).reshape(-1, 3))
    f = np.empty(len(P))
    n = _skull_radius(P, *SKULL_CENTRE_MM, *SKULL_AXES_MM, float(SKULL_EXPONENT), f)
    if n == 0:
        return 1.0
    return quantile_linear(f[:n], quantile)


@njit(cache=True, nogil=True)
def _skull_radius(P, c0, c1, c2, a0, a1, a2, e, out):  # pragma: no cover
    """Super-ellipsoid "radius" ``(hypot(dx, dz)^e + |dy|^e)^(1/e)`` of the vertices with ``y < 20`` (scaled
    offsets from the centre), written to ``out[:n]``; returns n. The same IEEE operations as the numpy
    expression (libm ``pow`` and ``hypot``), so the same bits."""
    n = 0
    for i in range(P.shape[0]):
        if P[i, 1] < 20.0:
            d0 = (P[i, 0] - c0) / a0
            d1 = (P[i, 1] - c1) / a1
            d2 = (P[i, 2] - c2) / a2
            out[n] = (math.hypot(d0, d2) ** e + abs(d1) ** e) ** (1 / e)
            n += 1
    return n


def quantile_linear(values: np.ndarray, q: float) -> float:
    """``np.quantile(values, q)`` (the default "linear" method) of a 1-D float64 array, bit for bit, with one
    partial sort and none of numpy's generic machinery (it dominated :func:`skull_scale`)."""
    n = len(values)
    virtual = (n - 1) * np.float64(q)
    lo = int(np.floor(virtual))
    hi = min(lo + 1, n - 1)
    lo = min(max(lo, 0), n - 1)
    part = np.partition(values, np.unique([lo, hi]))
    a, b = part[lo], part[hi]
    t = virtual - lo
    diff = b - a
    return float(b - diff * (1 - t) if t >= 0.5 else a + diff * t)


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
    p = scene_of(profile)
    u = rng.uniform
    t = u(*p.hair_thickness_mm)
    top = u(*p.hair_top_volume_mm)
    back = u(0.0, 15.0)
    expo = u(2.2, 2.8)
    sc = max(float(scale), 0.5)
    cx = SKULL_CENTRE_MM[0] + u(-2, 2)
    cy = SKULL_CENTRE_MM[1] + u(-3, 3)
    cz = SKULL_CENTRE_MM[2] + back / 2
    ax = SKULL_AXES_MM[0] * sc
    ay = SKULL_AXES_MM[1] * sc + 0.5 * t + top
    az = SKULL_AXES_MM[2] * sc + back / 2
    cy = cy - top / 2  # extra volume grows upward, not down into the face
    front = u(*p.hairline_front_mm)
    long_hair = rng.random() < p.long_hair_probability
    if long_hair:
        side, nape = u(*p.long_hair_side_mm), u(*p.long_hair_back_mm)
    else:
        side, nape = u(*p.hairline_side_mm), u(*p.hairline_back_mm)
    asym = u(-8, 8, size=2)
    bumps = u(-1, 1, size=(3, 2)) * np.array([[0.03], [0.02], [0.015]])
    phases = u(0, 2 * np.pi, size=(3, 2))

    phi = np.linspace(0, 2 * np.pi, cols, endpoint=False)  # 0 = back (+z), pi = front (-z)
    # Hairline around the head (piecewise linear in the azimuth from the back, mirrored): the nape, the
    # sides down to ~112 deg (the face's side edge is at ~120 deg), then up to the forehead by 140 deg.
    knots = np.radians([0.0, 90.0, 112.0, 140.0, 180.0])
    heights = [nape, side, side, front + 0.1 * (side - front), front]
    from_back = np.minimum(phi, 2 * np.pi - phi)
    hairline = np.interp(from_back, knots, heights) + asym[0] * np.sin(phi) + asym[1] * np.sin(2 * phi)
    y_top = cy - ay
    y_low = cy + 0.97 * ay  # short hair ends before the super-ellipsoid closes
    hairline = np.clip(hairline, y_top + 20.0, np.inf if long_hair else y_low)
    s = np.linspace(0, 1, rows)[:, None]
    y = y_top + (hairline[None, :] - y_top) * s**2  # (rows, cols); s^2 spacing: even steps along the dome
    q = np.clip(np.abs(y - cy) / ay, 0.0, 1.0)
    dome = (1 - q**expo) ** (1 / expo)
    if long_hair:
        rho = np.where(y < cy, dome, 1.0 - 0.15 * np.clip((y - cy) / 300.0, 0, 1))
    else:
        rho = dome
    bump = np.ones_like(rho)
    for k in range(3):
        bump += bumps[k, 0] * np.sin((k + 1) * phi[None, :] + phases[k, 0]) * np.sin((k + 1) * np.pi * s + phases[k, 1])
    rho = rho * bump
    thick = t * (0.6 + 0.4 * np.cos(phi))[None, :]  # full thickness at the back, 0.2 t at the forehead
    x = cx + (ax + thick) * rho * np.sin(phi)[None, :]
    z = cz + (az + thick) * rho * np.cos(phi)[None, :]
    if p.hair_ragged_mm[1] > 0:  # drawn only when on, so that the default draws what version 1 drew
        amp = u(*p.hair_ragged_mm)
        jitter = np.clip(rng.standard_normal((rows + 1, cols)), -2.5, 2.5) * amp
        # smoothed around the head ([1, 2, 1] / 4, wrapping): tufts a few vertices wide, not a spiky surface
        jitter = 0.25 * (np.roll(jitter, 1, 1) + 2.0 * jitter + np.roll(jitter, -1, 1))
        radial = jitter[:rows] * np.minimum(1.0, 4.0 * s)  # none at the crown's pole, full from a quarter down
        x = x + radial * np.sin(phi)[None, :]
        z = z + radial * np.cos(phi)[None, :]
        y = y.copy()
        y[-1] += jitter[rows]  # a ragged hairline
    verts = np.stack([x, y, z], -1).reshape(-1, 3)
    return verts, _surface_triangles(rows, cols)


def _superellipsoid(axes: np.ndarray, e_vert: float, e_horiz: float, rows: int,
                    cols: int) -> tuple[np.ndarray, np.ndarray]:
    """A closed super-ellipsoid around the origin (y down), outward CCW; ``(V, 3)``, ``(T, 3)``."""
    eta = np.linspace(-np.pi / 2, np.pi / 2, rows)[:, None]  # -pi/2 = top (y = -ay)
    om = np.linspace(0, 2 * np.pi, cols, endpoint=False)[None, :]
    ce, se = _spow(np.cos(eta), e_vert), _spow(np.sin(eta), e_vert)
    x = axes[0] * ce * _spow(np.sin(om), e_horiz)
    y = axes[1] * se * np.ones_like(om)
    z = axes[2] * ce * _spow(np.cos(om), e_horiz)
    return np.stack([x, y, z], -1).reshape(-1, 3), _surface_triangles(rows, cols)


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
    p = scene_of(profile)
    u = rng.uniform
    R = np.asarray(head_R, dtype=np.float64)
    t = np.asarray(head_t, dtype=np.float64).reshape(3)
    follow = u(*p.torso_follow)
    R_torso = _scaled_rotation(R, follow) @ _rotation(u(-p.torso_yaw_deg, p.torso_yaw_deg), u(-5, 5), u(-4, 4))
    joint = R @ np.array([0.0, 110.0, 15.0]) + t
    origin = joint + R_torso @ np.array([0.0, u(*p.neck_length_mm), u(0.0, 25.0)])
    # Neck tube: ring at the head (head frame), ring at the torso top (torso frame), linear in between.
    n_ring, n_rows = 24, 5
    rx, rz = u(*p.neck_radius_mm), u(*p.neck_radius_mm)
    ang = np.linspace(0, 2 * np.pi, n_ring, endpoint=False)
    ring = np.stack([rx * np.sin(ang), np.zeros(n_ring), rz * np.cos(ang)], 1)
    top = (ring + [0.0, 90.0, 12.0]) @ R.T + t
    bottom = (ring * 1.1 + [0.0, 30.0, 0.0]) @ R_torso.T + origin
    w = np.linspace(0, 1, n_rows)[:, None, None]
    neck_v = ((1 - w) * top[None] + w * bottom[None]).reshape(-1, 3)
    neck_t = _surface_triangles(n_rows, n_ring)  # rows from the head down, ring (sin, cos): outward
    # Torso.
    half_h = 700.0
    axes = np.array([u(*p.shoulder_half_width_mm), half_h, u(*p.torso_half_depth_mm)])
    tv, tt = _superellipsoid(axes, u(*p.torso_roundness), u(0.7, 1.0), 18, 36)
    tv = (tv + [0.0, 30.0 + half_h, u(10.0, 40.0)]) @ R_torso.T + origin
    verts = np.concatenate([neck_v, tv])
    tris = np.concatenate([neck_t, tt + len(neck_v)]).astype(np.int32)
    return verts, tris, len(neck_t)


_BOX_TRIS = np.array([[0, 2, 1], [0, 3, 2], [4, 5, 6], [4, 6, 7], [0, 1, 5], [0, 5, 4],
                      [2, 3, 7], [2, 7, 6], [1, 2, 6], [1, 6, 5], [0, 4, 7], [0, 7, 3]], dtype=np.int32)


def _box(size: np.ndarray, R: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """The 8 corners ``(8, 3)`` of a box (outward CCW with :data:`_BOX_TRIS`)."""
    s = np.array([[-1, -1, -1], [1, -1, -1], [1, 1, -1], [-1, 1, -1], [-1, -1, 1], [1, -1, 1], [1, 1, 1], [-1, 1, 1]])
    return (s * size / 2) @ R.T + centre


def sample_wall(head_t: np.ndarray, rng: np.random.Generator,
                profile: SceneProfile = DEFAULT_SCENE) -> np.ndarray | None:
    """A background plane ``(4,)`` ``[nx, ny, nz, d]`` (``n . p = d``, unit ``n`` facing the camera), or None.

    It crosses the optical axis at ``wall_distance_mm`` (at least ``wall_min_gap_mm`` behind the head) and is
    tilted by up to ``wall_yaw_deg`` / ``wall_pitch_deg``.
    """
    p = scene_of(profile)
    lo = max(p.wall_distance_mm[0], float(head_t[2]) + p.wall_min_gap_mm)
    dist = rng.uniform(lo, max(lo, p.wall_distance_mm[1]))
    R = _rotation(rng.uniform(-p.wall_yaw_deg, p.wall_yaw_deg), rng.uniform(-p.wall_pitch_deg, p.wall_pitch_deg))
    present = rng.random() < p.wall_probability
    if not present:
        return None
    n = R @ np.array([0.0, 0.0, -1.0])
    return np.array([*n, n[2] * dist])


def box_meshes(head_t: np.ndarray, intrinsics: Intrinsics, rng: np.random.Generator, far_mm: float,
               profile: SceneProfile = DEFAULT_SCENE) -> tuple[np.ndarray, np.ndarray]:
    """Random boxes between the head and ``far_mm`` (camera frame), each at least 250 mm behind the head
    centre at its nearest corner and centred inside the field of view. ``(8 k, 3)``, ``(12 k, 3)``."""
    p = scene_of(profile)
    k = int(rng.integers(p.box_count[0], p.box_count[1] + 1))
    verts, tris = [], []
    hz = float(head_t[2])
    for i in range(k):
        size = rng.uniform(*p.box_size_mm, size=3)
        R = _rotation(rng.uniform(-45, 45), rng.uniform(-10, 10))
        z = rng.uniform(hz + 350.0, max(hz + 350.0, far_mm - 100.0))
        px = rng.uniform(0, intrinsics.width)
        py = rng.uniform(0, intrinsics.height)
        centre = np.array([(px - intrinsics.cx) / intrinsics.fx * z, (py - intrinsics.cy) / intrinsics.fy * z, z])
        corners = _box(size, R, centre)
        if corners[:, 2].min() < hz + 250.0:
            continue
        tris.append(_BOX_TRIS + 8 * len(verts))
        verts.append(corners)
    if not verts:
        return np.zeros((0, 3)), np.zeros((0, 3), np.int32)
    return np.concatenate(verts), np.concatenate(tris)


@njit(cache=True, nogil=True)
def _composite_labels(ids, tri_label, labels):  # pragma: no cover
    """``labels[p] = tri_label[ids[p]]`` where ``ids[p] >= 0`` (window-local buffers)."""
    h, w = ids.shape
    for i in range(h):
        for j in range(w):
            k = ids[i, j]
            if k >= 0:
                labels[i, j] = tri_label[k]


@njit(cache=True, nogil=True)
def _render_plane(depth, labels, label, nx, ny, nz, d, fx, fy, cx, cy, u0, v0):  # pragma: no cover
    """z-min composite of the plane ``n . p = d`` (exact ray-plane depth) into window-local ``depth``
    (pixel ``(u, v)`` at ``[v - v0, u - u0]``). Pixels already nearer than the plane's nearest point in
    the window are skipped without a division."""
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
    for i in range(h):
        row = b * (v0 + i) + c
        for j in range(w):
            old = depth[i, j]
            if old != 0.0 and old <= z_near:
                continue
            den = a * (u0 + j) + row
            if den * d <= 0.0:
                continue
            z = d / den
            if old == 0.0 or z < old:
                depth[i, j] = z
                labels[i, j] = label


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
    R = np.asarray(head_R, dtype=np.float64).reshape(3, 3)
    t = np.asarray(head_t, dtype=np.float64).reshape(3)
    u0, v0, u1, v1 = window
    meshes: list[tuple[np.ndarray, np.ndarray, int]] = []
    if rng.random() < profile.hair_probability:
        scale = 1.05 if head_vertices is None else skull_scale(head_vertices) + 0.01
        hv, ht = hair_mesh(rng, profile, scale=scale)
        meshes.append((hv @ R.T + t, ht, LABEL_HAIR))
    bv, bt, _ = body_mesh(R, t, rng, profile)
    meshes.append((bv, bt, LABEL_BODY))
    wall = sample_wall(t, rng, profile)
    far = profile.wall_distance_mm[1] if wall is None else float(wall[3] / wall[2])
    xv, xt = box_meshes(t, intrinsics, rng, far, profile)
    if len(xt):
        meshes.append((xv, xt, LABEL_OBJECT))

    local = src[v0:v1, u0:u1].copy()  # never a view: the input is not modified
    local_labels = (local > 0).view(np.uint8)  # LABEL_SUBJECT == 1
    if local.size == 0:
        return local, local_labels
    ids = np.full(local.shape, -1, np.int32)
    offsets = np.cumsum([0] + [len(v) for v, _, _ in meshes])
    verts = np.concatenate([v for v, _, _ in meshes])
    tris = np.concatenate([tr + o for (_, tr, _), o in zip(meshes, offsets)])
    tri_label = np.concatenate([np.full(len(tr), lab, np.uint8) for _, tr, lab in meshes])
    render_into_window(verts, tris, intrinsics, window, local, ids)
    _composite_labels(ids, tri_label, local_labels)
    if wall is not None:
        _render_plane(local, local_labels, LABEL_WALL, *(float(x) for x in wall), float(intrinsics.fx),
                      float(intrinsics.fy), float(intrinsics.cx), float(intrinsics.cy), u0, v0)
    return local, local_labels


