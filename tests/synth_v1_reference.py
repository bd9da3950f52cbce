"""The scene-context meshes as generator version 1 computed them, in plain numpy: the reference that the
compiled builders of :mod:`depthface.synth.meshes` and :mod:`depthface.synth.exact` must reproduce bit for bit
(``tests/test_synth_exact.py``). Copied from ``depthface/synth/context.py`` at commit 4c60574."""

from __future__ import annotations

import math

import numpy as np

from depthface.geometry.camera import Intrinsics
from depthface.synth.context import DEFAULT_SCENE, SceneProfile, scene_of
from depthface.synth.meshes import SKULL_AXES_MM, SKULL_CENTRE_MM, surface_triangles


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
    a = f * angle
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + math.sin(a) * k + (1 - math.cos(a)) * (k @ k)


def _spow(x: np.ndarray, e: float) -> np.ndarray:
    return np.sign(x) * np.abs(x) ** e


def hair_mesh(rng: np.random.Generator, profile: SceneProfile = DEFAULT_SCENE, *, scale: float = 1.05, rows: int = 20,
              cols: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """A random hair volume in the head frame (mm; y down, z into the skull) (version 1)."""
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
    return verts, surface_triangles(rows, cols)


def _superellipsoid(axes: np.ndarray, e_vert: float, e_horiz: float, rows: int,
                    cols: int) -> tuple[np.ndarray, np.ndarray]:
    """A closed super-ellipsoid around the origin (y down), outward CCW; ``(V, 3)``, ``(T, 3)``."""
    eta = np.linspace(-np.pi / 2, np.pi / 2, rows)[:, None]  # -pi/2 = top (y = -ay)
    om = np.linspace(0, 2 * np.pi, cols, endpoint=False)[None, :]
    ce, se = _spow(np.cos(eta), e_vert), _spow(np.sin(eta), e_vert)
    x = axes[0] * ce * _spow(np.sin(om), e_horiz)
    y = axes[1] * se * np.ones_like(om)
    z = axes[2] * ce * _spow(np.cos(om), e_horiz)
    return np.stack([x, y, z], -1).reshape(-1, 3), surface_triangles(rows, cols)


def body_mesh(head_R: np.ndarray, head_t: np.ndarray, rng: np.random.Generator, profile: SceneProfile = DEFAULT_SCENE
              ) -> tuple[np.ndarray, np.ndarray, int]:
    """Neck and torso in the camera frame (mm) (version 1)."""
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
    neck_t = surface_triangles(n_rows, n_ring)  # rows from the head down, ring (sin, cos): outward
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
    """A background plane ``(4,)`` ``[nx, ny, nz, d]`` (``n . p = d``, unit ``n`` facing the camera), or None (version 1)."""
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
    """Random boxes between the head and ``far_mm`` (camera frame), each at least 250 mm behind the head (version 1)."""
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
