"""Kinect v1 simulator: turn a clean rendered face into a frame that looks like a real Kinect's.

Two composable stages, each a pure function of its inputs and an explicit ``numpy.random.Generator``
(no global random state; the same generator state gives a byte-identical frame):

1. :func:`add_scene_context` -- the geometry the face model lacks, as triangle meshes rendered with
   :mod:`depthface.synth.render` (or an analytic plane), composited by z-buffer min into the clean depth:

   * **hair**: a super-ellipsoid cap attached to the head frame, slightly larger than the ICT skull, with
     random thickness, volume, a random hairline (forehead / temples / nape) and, with some probability,
     long hair hanging beside the face and behind the neck; bald with probability ``1 - hair_probability``;
   * **neck and torso**: a tube from the head's neck to a super-ellipsoid torso (boxy shoulders) that
     follows only a random fraction of the head rotation (the torso does not turn with the head);
   * **background**: a wall plane 1.5-3.5 m away (at least ``wall_min_gap_mm`` behind the head), tilted at
     random, and a few random boxes between the head and the wall (never in front of the head).

2. :func:`apply_sensor` -- the measurement process of a structured-light Kinect v1, in this order:

   * **IR-projector shadow**: the emitter sits ``projector_offset_mm`` (75 mm) along camera +x. A pixel is
     unlit when, along its image row (the epipolar line), a pixel on the projector's side maps to the same
     or a later projector column ``u - fx b / z``: background just beside a foreground silhouette, on the
     side *away from the projector* (with b > 0: the image's LEFT of objects, as in unmirrored Kinect v1
     frames), gets no measurement; the shadow is ``fx b (1/z_fg - 1/z_bg)`` pixels wide (about 21 px for a
     head at 1 m in front of a wall at 2 m). Surfaces facing away from the projector are unlit too.
   * **depth edges**: a 4-neighbour jump larger than ``edge_jump_fraction * z`` (or to no measurement) is
     a discontinuity. Pixels within 1 px of one are displaced laterally by ``round(sigma_L * N(0, 1))``
     pixels per axis, with Nguyen, Izadi & Lovell (2012)'s ``sigma_L = 0.8 + 0.035 theta / (pi/2 - theta)``
     px (ragged silhouettes); pixels at Chebyshev distance ``d`` from a discontinuity drop out with
     probability ``edge_dropout[d]``; kept pixels on a discontinuity become **flying pixels** with
     probability ``flying_pixel_probability`` (depth interpolated between the two sides).
   * **grazing-angle dropout**: the incidence angle ``theta`` between the viewing ray and the surface
     normal (estimated from the depth map by finite differences) makes a pixel drop out with probability
     ``logistic((theta - grazing_dropout_deg) / grazing_dropout_width_deg)``.
   * **hair**: dark hair absorbs IR; hair pixels drop out with a per-frame probability drawn from
     ``hair_dropout`` and get ``hair_noise_mm`` extra axial noise.
   * **disparity noise and quantisation**: Kinect v1 measures disparity ``delta = f b / z`` with 1/8-pixel
     resolution (``disparity_subpixel``). Gaussian noise is added in disparity with a standard deviation
     chosen so that noise *plus* quantisation reproduce Khoshelham & Elberink (2012)'s
     ``sigma_Z = 1.425e-3 Z^2`` (m) on a frontal plane, plus Nguyen et al.'s incidence-angle term
     ``1e-4 / sqrt(z) * theta^2 / (pi/2 - theta)^2`` m (converted to disparity; theta capped at
     ``max_noise_angle_deg``); then delta is rounded to 1/8 px and ``z = f b / delta_q`` -- so depth comes
     in the sensor's steps of about ``z^2 / (8 f b)`` (2.9 mm at 1 m, 11.5 mm at 2 m).
   * **range**: depth below ``min_range_mm`` or above ``max_range_mm`` is no measurement; the output is
     uint16 mm (0 = no measurement), as a Kinect driver delivers it.
   * **holes**: ``holes_per_frame`` (Poisson mean, per 640x480 frame) random elliptic blobs of no data.

:func:`simulate_kinect` runs both stages. It works in a **window**: by default a square of ``window_mm``
= 340 mm around the head centre at the head's depth (the downstream metric crop is 250 mm, its centre
jittered by up to 15 mm per axis); pixels outside the window are 0 in its output. Pass ``window_mm=None``
for a full frame (about 4x slower). Every random decision is keyed to the pixel, so a window is exactly
the full-frame simulation restricted to it.

What it does not model: the spatially correlated (9x9 block-matching) structure of real disparity noise
and its vertical banding, depth-dependent lens distortion and the sensor's systematic depth bias, IR
interference, motion blur, temporal effects and material reflectance beyond hair; the face's skin, eyes
and beard reflect like any other surface.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from functools import lru_cache
from statistics import NormalDist

import numpy as np
from numba import njit

from depthface.errors import InputError
from depthface.geometry.camera import Intrinsics
from depthface.geometry.conventions import CROP_SIZE_MM
from depthface.synth.render import Window, clip_window, render_into_window

# ---------------------------------------------------------------------------------------------------------------------
# Labels of :func:`add_scene_context` (uint8, per pixel)

LABEL_NONE = 0  #: nothing rendered
LABEL_SUBJECT = 1  #: the input (clean) depth: the face / head mesh
LABEL_HAIR = 2
LABEL_BODY = 3  #: neck and torso
LABEL_OBJECT = 4  #: background boxes
LABEL_WALL = 5


@dataclass(frozen=True)
class SensorProfile:
    """Every parameter of the scene context and the sensor model (lengths in mm, angles in degrees).

    Ranges ``(low, high)`` are sampled uniformly per frame. See the module docstring for the physics.
    """

    name: str = "kinect_v1"

    # --- disparity, noise, quantisation (Khoshelham & Elberink 2012; Nguyen, Izadi & Lovell 2012) -------------
    #: focal length (px) of the IR camera that measures disparity (Kinect v1: about 580 px).
    focal_px: float = 580.0
    #: projector-camera baseline (mm) for the disparity-depth relation ``delta = f b / z``.
    baseline_mm: float = 75.0
    #: disparity resolution: 1 / disparity_subpixel pixel (Kinect v1: 1/8); 0 = no quantisation.
    disparity_subpixel: int = 8
    #: total axial noise on a frontal plane, noise + quantisation: ``sigma_Z = c Z^2`` with Z and sigma in metres.
    depth_noise_coeff: float = 1.425e-3
    #: Nguyen's incidence-angle term ``k / sqrt(z) * theta^2 / (pi/2 - theta)^2`` (k in metres, z in metres).
    angle_noise_coeff_m: float = 1.0e-4
    #: theta is capped at this angle in the noise terms (the terms diverge at 90 deg).
    max_noise_angle_deg: float = 80.0
    #: Nguyen's lateral noise at depth edges: ``sigma_L = a + b theta / (pi/2 - theta)`` pixels.
    lateral_noise_px: float = 0.8
    lateral_noise_angle_px: float = 0.035
    #: measurement range (mm); outside it the pixel reads 0.
    min_range_mm: float = 400.0
    max_range_mm: float = 4000.0

    # --- where measurements are lost ------------------------------------------------------------------------
    #: IR emitter position along camera x (mm): the shadow falls on the far side (b > 0: image left); 0 = off.
    projector_offset_mm: float = 75.0
    #: a 4-neighbour depth jump larger than this fraction of the nearer depth is a discontinuity.
    edge_jump_fraction: float = 0.025
    #: dropout probability at Chebyshev distance 0, 1, ... pixels from a discontinuity.
    edge_dropout: tuple[float, ...] = (0.35, 0.12)
    #: probability that a kept pixel on a discontinuity reads a depth between the two sides.
    flying_pixel_probability: float = 0.15
    #: incidence angle at which half of the pixels drop out, and the logistic width (degrees; 0 = off).
    grazing_dropout_deg: float = 76.0
    grazing_dropout_width_deg: float = 3.0
    #: mean number of random elliptic holes per 640x480 frame (Poisson), and their semi-axes (px).
    holes_per_frame: float = 6.0
    hole_radius_px: tuple[float, float] = (1.5, 8.0)
    #: per-frame dropout probability of hair pixels, and extra axial noise on hair (mm).
    hair_dropout: tuple[float, float] = (0.0, 0.6)
    hair_noise_mm: float = 2.0

    # --- scene context ---------------------------------------------------------------------------------------
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

    def __post_init__(self) -> None:
        bad = lambda msg: InputError(f"sensor profile {self.name!r}: {msg}")  # noqa: E731
        for f in fields(self):
            v = getattr(self, f.name)
            values = v if isinstance(v, tuple) else (v,) if isinstance(v, (int, float)) else ()
            if not all(math.isfinite(x) for x in values):
                raise bad(f"{f.name} must be finite, got {v}")
            if isinstance(v, tuple) and f.name != "edge_dropout" and (len(v) != 2 or v[0] > v[1]):
                raise bad(f"{f.name} must be a (low, high) range, got {v}")
            if not f.name.startswith(("hairline", "projector")) and any(x < 0 for x in values):
                raise bad(f"{f.name} must be >= 0, got {v}")
        if not 0 < self.min_range_mm < self.max_range_mm:
            raise bad("need 0 < min_range_mm < max_range_mm")
        if self.focal_px <= 0 or self.baseline_mm <= 0:
            raise bad("focal_px and baseline_mm must be positive")
        probs = (*self.edge_dropout, *self.hair_dropout, self.flying_pixel_probability, self.hair_probability,
                 self.long_hair_probability, self.wall_probability)
        if not all(0 <= x <= 1 for x in probs):
            raise bad("probabilities must lie in [0, 1]")
        if not 0 < self.max_noise_angle_deg < 90:
            raise bad("max_noise_angle_deg must lie in (0, 90)")

    @classmethod
    def preset(cls, name: str) -> "SensorProfile":
        """A named profile: ``kinect_v1`` (the default) or ``ideal`` (no sensor effects, same scene context)."""
        try:
            return SENSOR_PRESETS[name.lower()]
        except KeyError:
            raise InputError(f"unknown sensor profile {name!r}; choose one of {sorted(SENSOR_PRESETS)}") from None

    def disparity_noise_px(self) -> float:
        """Standard deviation (px) of the Gaussian disparity noise added before quantisation.

        Khoshelham's total ``sigma_Z = c Z^2`` is ``c f b`` pixels in disparity (Z in m, b in m, f in px);
        quantisation to 1/s px contributes ``1 / (s sqrt(12))``; the remainder is the noise.
        """
        total = self.depth_noise_coeff * self.focal_px * self.baseline_mm * 1e-3
        q = 1.0 / self.disparity_subpixel if self.disparity_subpixel > 0 else 0.0
        return math.sqrt(max(total * total - q * q / 12.0, 0.0))


KINECT_V1 = SensorProfile()

SENSOR_PRESETS: dict[str, SensorProfile] = {
    "kinect_v1": KINECT_V1,
    "ideal": replace(KINECT_V1, name="ideal", disparity_subpixel=0, depth_noise_coeff=0.0, angle_noise_coeff_m=0.0,
                     lateral_noise_px=0.0, lateral_noise_angle_px=0.0, projector_offset_mm=0.0, edge_dropout=(),
                     flying_pixel_probability=0.0, grazing_dropout_width_deg=0.0,
                     holes_per_frame=0.0, hair_dropout=(0.0, 0.0), hair_noise_mm=0.0),
}


# ---------------------------------------------------------------------------------------------------------------------
# Windows


#: Side (mm) of :func:`simulate_kinect`'s default window: the 250 mm metric crop plus the scene sampler's
#: crop-centre jitter (up to 15 mm per axis) and perspective fit inside with a margin of >= 11 px (checked for
#: heads at x +-300, y +-200 mm, z 0.7-1.3 m). Widen it if the crop jitter grows.
DEFAULT_WINDOW_MM: float = CROP_SIZE_MM + 90.0


def head_window(head_t: np.ndarray, intrinsics: Intrinsics, size_mm: float = DEFAULT_WINDOW_MM) -> Window:
    """Pixel box ``(u0, v0, u1, v1)`` of a ``size_mm`` square around the head centre at its depth (clipped)."""
    x, y, z = (float(c) for c in np.asarray(head_t, dtype=np.float64).reshape(3))
    if not z > 0:
        raise InputError(f"head centre must be in front of the camera, got z = {z}")
    uc = intrinsics.fx * x / z + intrinsics.cx
    vc = intrinsics.fy * y / z + intrinsics.cy
    hu = 0.5 * intrinsics.fx * size_mm / z
    hv = 0.5 * intrinsics.fy * size_mm / z
    return clip_window((math.floor(uc - hu), math.floor(vc - hv), math.ceil(uc + hu) + 1, math.ceil(vc + hv) + 1),
                       intrinsics.width, intrinsics.height)


#: pixels around the window whose clean depth the sensor stage reads (lateral jitter reaches 4 px, normals 1)
_MARGIN = 5


def sensor_input_window(window: Window | None, intrinsics: Intrinsics, profile: SensorProfile = KINECT_V1) -> Window:
    """The pixels :func:`apply_sensor` reads to make ``window``: the window, a 5 px margin and, on the
    projector's side, the widest possible shadow ``fx |b| (1/min_range - 1/max_range)`` (objects there can
    shadow the window). Render the clean scene at least over this box."""
    u0, v0, u1, v1 = clip_window(window, intrinsics.width, intrinsics.height)
    reach = 1 / profile.min_range_mm - 1 / profile.max_range_mm
    shadow = math.ceil(abs(intrinsics.fx * profile.projector_offset_mm) * reach)
    left = shadow if profile.projector_offset_mm < 0 else 0
    right = shadow if profile.projector_offset_mm > 0 else 0
    return clip_window((u0 - _MARGIN - left, v0 - _MARGIN, u1 + _MARGIN + right, v1 + _MARGIN),
                       intrinsics.width, intrinsics.height)


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
    a = f * angle
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + math.sin(a) * k + (1 - math.cos(a)) * (k @ k)


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
    P = np.asarray(head_vertices, dtype=np.float64).reshape(-1, 3)
    P = P[P[:, 1] < 20.0]
    if len(P) == 0:
        return 1.0
    c, a = np.array(SKULL_CENTRE_MM), np.array(SKULL_AXES_MM)
    d = (P - c) / a
    f = (np.hypot(d[:, 0], d[:, 2]) ** SKULL_EXPONENT + np.abs(d[:, 1]) ** SKULL_EXPONENT) ** (1 / SKULL_EXPONENT)
    return float(np.quantile(f, quantile))


def hair_mesh(rng: np.random.Generator, profile: SensorProfile = KINECT_V1, *, scale: float = 1.05, rows: int = 20,
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
    Every grid column ends exactly on the hairline.

    Returns:
        ``vertices`` ``(rows * cols, 3)`` float64 and ``triangles`` ``(T, 3)`` int32, outward CCW.
    """
    p = profile
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


def body_mesh(head_R: np.ndarray, head_t: np.ndarray, rng: np.random.Generator, profile: SensorProfile = KINECT_V1
              ) -> tuple[np.ndarray, np.ndarray, int]:
    """Neck and torso in the camera frame (mm).

    The torso turns by a random fraction ``torso_follow`` of the head rotation (plus a random yaw) and hangs
    ``neck_length_mm`` below the upper-neck joint (head point (0, 110, 15)); the neck is a tube from a ring
    inside the head's neck (head frame y = 90) to a ring inside the torso top, so it bends when the head
    turns. The torso is a super-ellipsoid (boxy shoulders) 1.4 m tall.

    Returns:
        ``vertices`` ``(V, 3)``, ``triangles`` ``(T, 3)`` int32 (outward CCW) and the number of neck triangles
        (they come first).
    """
    p = profile
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
    tv, tt = _superellipsoid(axes, u(0.3, 0.5), u(0.7, 1.0), 18, 36)
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


def sample_wall(head_t: np.ndarray, rng: np.random.Generator, profile: SensorProfile = KINECT_V1) -> np.ndarray | None:
    """A background plane ``(4,)`` ``[nx, ny, nz, d]`` (``n . p = d``, unit ``n`` facing the camera), or None.

    It crosses the optical axis at ``wall_distance_mm`` (at least ``wall_min_gap_mm`` behind the head) and is
    tilted by up to ``wall_yaw_deg`` / ``wall_pitch_deg``.
    """
    p = profile
    lo = max(p.wall_distance_mm[0], float(head_t[2]) + p.wall_min_gap_mm)
    dist = rng.uniform(lo, max(lo, p.wall_distance_mm[1]))
    R = _rotation(rng.uniform(-p.wall_yaw_deg, p.wall_yaw_deg), rng.uniform(-p.wall_pitch_deg, p.wall_pitch_deg))
    present = rng.random() < p.wall_probability
    if not present:
        return None
    n = R @ np.array([0.0, 0.0, -1.0])
    return np.array([*n, n[2] * dist])


def box_meshes(head_t: np.ndarray, intrinsics: Intrinsics, rng: np.random.Generator, far_mm: float,
               profile: SensorProfile = KINECT_V1) -> tuple[np.ndarray, np.ndarray]:
    """Random boxes between the head and ``far_mm`` (camera frame), each at least 250 mm behind the head
    centre at its nearest corner and centred inside the field of view. ``(8 k, 3)``, ``(12 k, 3)``."""
    p = profile
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
                      rng: np.random.Generator, profile: SensorProfile = KINECT_V1, *, window: Window | None = None,
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
    src = _check_depth(depth, intrinsics)
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
                   rng: np.random.Generator, profile: SensorProfile, window: Window,
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


def _check_depth(depth: np.ndarray, intrinsics: Intrinsics) -> np.ndarray:
    arr = np.asarray(depth)
    shape = (intrinsics.height, intrinsics.width)
    if arr.shape != shape:
        raise InputError(f"depth has shape {arr.shape}, the intrinsics say {shape}")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise InputError(f"depth must be numeric, got dtype {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=np.float32)


# ---------------------------------------------------------------------------------------------------------------------
# Sensor effects


def _normal_table(bits: int = 12) -> np.ndarray:
    """Inverse normal CDF at the ``2^bits`` quantile midpoints, rescaled to unit variance: indexed by random
    bits it gives N(0, 1) samples truncated at about 3.7 sigma."""
    n = 1 << bits
    nd = NormalDist()
    tab = np.array([nd.inv_cdf((k + 0.5) / n) for k in range(n)])
    return tab / np.sqrt(np.mean(tab**2))


_NORMAL = _normal_table()
_NORMAL.flags.writeable = False


@njit(cache=True, nogil=True, inline="always")
def _mix64(x):  # pragma: no cover
    """splitmix64's finaliser: a bijective 64-bit hash (uint64 -> uint64)."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


@njit(cache=True, nogil=True)
def _measurable(depth, ou, ov, r0, c0, r1, c1, proj_b, scan_margin):  # pragma: no cover
    """Pass 1: the clean depth of region ``[c0,c1) x [r0,r1)`` where the projector lights it, ``(rh, rw)``
    float32 (0 = nothing or shadow), and the number of invalid (NaN, inf, negative) input pixels.

    Scanning a row away from the projector (``proj_b = fx b``; b > 0: right to left), a pixel is lit iff its
    projector column ``u - proj_b / z`` lies beyond every one seen so far; pixels up to ``scan_margin``
    columns outside the region on the projector's side are scanned as potential occluders. Pixel (u, v) is
    ``depth[v - ov, u - ou]``.
    """
    H, W = depth.shape
    rh = r1 - r0
    rw = c1 - c0
    bad = 0
    meas = np.zeros((rh, rw), np.float32)
    if proj_b > 0.0:
        start, stop, step = min(ou + W - 1, c1 - 1 + scan_margin), c0 - 1, -1
    else:
        start, stop, step = max(ou, c0 - scan_margin), c1, 1
    for v in range(r0, r1):
        i = v - r0
        run = np.inf
        for u in range(start, stop, step):
            z = depth[v - ov, u - ou]
            if not (z >= 0.0 and z < np.inf):
                if c0 <= u < c1:
                    bad += 1
                continue
            if z == 0.0:
                continue
            if proj_b != 0.0:
                ue = -step * (u - proj_b / z)  # decreases along the scan while lit
                if ue >= run:
                    continue
                run = ue
            if c0 <= u < c1:
                meas[i, u - c0] = z
    return meas, bad


@njit(cache=True, nogil=True)
def _edge_distance(meas, jump, band):  # pragma: no cover
    """Pass 2: Chebyshev distance (int8, capped: 127 = farther than ``band``) of each pixel to a depth
    discontinuity: a 4-neighbour jump larger than ``jump`` times the nearer depth, or measured next to
    unmeasured. Both pixels of a discontinuity are at distance 0."""
    rh, rw = meas.shape
    dist = np.full((rh, rw), 127, np.int8)
    for i in range(rh):
        for j in range(rw):
            z = meas[i, j]
            e = False
            if j + 1 < rw:
                z2 = meas[i, j + 1]
                if (z > 0.0) != (z2 > 0.0) or (z > 0.0 and abs(z2 - z) > jump * min(z, z2)):
                    e = True
                    dist[i, j + 1] = 0
            if i + 1 < rh:
                z2 = meas[i + 1, j]
                if (z > 0.0) != (z2 > 0.0) or (z > 0.0 and abs(z2 - z) > jump * min(z, z2)):
                    e = True
                    dist[i + 1, j] = 0
            if e:
                dist[i, j] = 0
    for i in range(rh):
        for j in range(rw):
            if dist[i, j] == 0:
                for ii in range(max(i - band, 0), min(i + band + 1, rh)):
                    for jj in range(max(j - band, 0), min(j + band + 1, rw)):
                        dd = max(abs(ii - i), abs(jj - j))
                        if dist[ii, jj] > dd:
                            dist[ii, jj] = dd
    return dist


@njit(cache=True, nogil=True, error_model="numpy")
def _cos2_incidence(meas, c0, r0, fx, fy, cx, cy, jump):  # pragma: no cover
    """Pass 3: squared cosine of the incidence angle per region pixel (float32; 1 on the region border and
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
def _angle(c2):  # pragma: no cover
    """acos(sqrt(c2)) for c2 in [0, 1], |error| < 7e-5 rad (Abramowitz & Stegun 4.4.45)."""
    c = math.sqrt(min(max(c2, 0.0), 1.0))
    return math.sqrt(1.0 - c) * (1.5707288 + c * (-0.2121144 + c * (0.0742610 - 0.0187293 * c)))


@njit(cache=True, nogil=True, inline="always")
def _pixel_bits(s64, v, u, W):  # pragma: no cover
    """64 random bits of pixel (u, v): splitmix64 of the seed and the pixel index (counter based, so
    independent of the window and of the order of evaluation)."""
    return _mix64(s64 + np.uint64(v * W + u) * np.uint64(0x9E3779B97F4A7C15))


@njit(cache=True, nogil=True)
def _edge_effects(meas, dist, cos2, u0, v0, u1, v1, r0, c0, W, s64, table, jump, edge_drop, lat0, lat1, fly_p,
                  max_angle):  # pragma: no cover
    """Pass 4: what happens within the band around depth discontinuities, as a new region array: lateral
    noise (a displaced read), edge dropout (0) and flying pixels (a depth between the two sides)."""
    rh, rw = meas.shape
    src = meas.copy()
    nd = edge_drop.shape[0]
    half_pi = 0.5 * math.pi
    m12 = np.uint64(0xFFF)
    m16 = np.uint64(0xFFFF)
    lateral = lat0 > 0.0 or lat1 > 0.0
    for i in range(v0 - r0, v1 - r0):
        for j in range(u0 - c0, u1 - c0):
            d = dist[i, j]
            if d > 1 and d >= nd:
                continue
            hsh = _pixel_bits(s64, i + r0, j + c0, W)
            si = i
            sj = j
            if d <= 1 and lateral:  # Nguyen's lateral noise: read a pixel displaced by round(sigma_L N(0, 1))
                th = min(_angle(cos2[i, j]), max_angle)
                sl = lat0 + lat1 * th / (half_pi - th)
                si = min(max(i + int(round(sl * table[np.int64((hsh >> np.uint64(24)) & m12)])), 0), rh - 1)
                sj = min(max(j + int(round(sl * table[np.int64((hsh >> np.uint64(12)) & m12)])), 0), rw - 1)
            z = np.float64(meas[si, sj])
            uni = (np.float64((hsh >> np.uint64(36)) & m16) + 0.5) * (1.0 / 65536.0)
            keep = 1.0 - edge_drop[d] if d < nd else 1.0
            if z <= 0.0 or uni >= keep:
                src[i, j] = 0.0
                continue
            if fly_p > 0.0 and dist[si, sj] == 0 and uni < keep * fly_p:
                best = 0.0
                zn = 0.0
                for k in range(4):
                    ii = si + (1 if k == 0 else -1 if k == 1 else 0)
                    jj = sj + (1 if k == 2 else -1 if k == 3 else 0)
                    if ii < 0 or ii >= rh or jj < 0 or jj >= rw:
                        continue
                    z2 = np.float64(meas[ii, jj])
                    if z2 > 0.0 and abs(z2 - z) > best:
                        best = abs(z2 - z)
                        zn = z2
                if best > jump * min(z, zn):
                    alpha = (np.float64((hsh >> np.uint64(52)) & m12) + 0.5) * (1.0 / 4096.0)
                    z = z + alpha * (zn - z)
            src[i, j] = z
    return src


@njit(cache=True, nogil=True)
def _measure(src, cos2, labels, use_labels, ou, ov, out, u0, v0, u1, v1, r0, c0, W, s64, table, graz50, grazw,
             hair_drop, hair_sigma_mm, fb, subpix, ztab, sigma_pre, angle_k_mm, max_angle, zmin,
             zmax):  # pragma: no cover
    """Pass 5, per window pixel: grazing-angle and hair dropout, disparity noise, quantisation, range.
    ``labels`` pixel (u, v) is at ``[v - ov, u - ou]``; ``out`` is the full frame, ``W`` its width."""
    half_pi = 0.5 * math.pi
    # Below 45 deg Nguyen's angle term is < 0.1 mm (< 0.3 % of the total in quadrature), so it is skipped there
    # unless the grazing-angle dropout starts earlier.
    graz_lo = graz50 - 8.0 * grazw if grazw > 0.0 else half_pi
    cos2_small = np.float32(math.cos(min(math.radians(45.0), graz_lo)) ** 2)
    nz = ztab.shape[0]
    m12 = np.uint64(0xFFF)
    m16 = np.uint64(0xFFFF)
    for v in range(v0, v1):
        i = v - r0
        for u in range(u0, u1):
            j = u - c0
            z = np.float64(src[i, j])
            if z <= 0.0:
                continue
            hsh = _pixel_bits(s64, v, u, W)
            c2 = cos2[i, j]
            hair = use_labels and labels[v - ov, u - ou] == 2
            sigma = sigma_pre
            steep = c2 < cos2_small
            if steep or hair:
                keep = 1.0
                sz2 = 0.0  # extra axial variance, mm^2
                if steep:
                    th = _angle(c2)
                    if grazw > 0.0 and th > graz_lo:
                        keep = 1.0 - 1.0 / (1.0 + math.exp(-(th - graz50) / grazw))
                    thc = min(th, max_angle)
                    ratio = thc / (half_pi - thc)
                    sz = angle_k_mm / math.sqrt(z * 1e-3) * ratio * ratio  # Nguyen's angle term, mm
                    sz2 = sz * sz
                if hair:
                    keep *= 1.0 - hair_drop
                    sz2 += hair_sigma_mm * hair_sigma_mm
                # fresh bits for this decision (the edge stage used bits 36-51 of hsh)
                uni = (np.float64(_mix64(hsh) & m16) + 0.5) * (1.0 / 65536.0)
                if uni >= keep:
                    continue
                sd = fb / (z * z)  # d(disparity) / dz
                sigma = math.sqrt(sigma_pre * sigma_pre + sz2 * sd * sd)
            delta = fb / z + sigma * table[np.int64(hsh & m12)]
            if subpix > 0.0:
                k = int(math.floor(delta * subpix + 0.5))
                if k <= 0:
                    continue
                zq = ztab[k] if k < nz else fb * subpix / k
            else:
                if delta <= 0.0:
                    continue
                zq = fb / delta
            if zq < zmin or zq > zmax:
                continue
            out[v, u] = np.uint16(min(zq + 0.5, 65535.0))


@njit(cache=True, nogil=True)
def _sensor_kernel(depth, ou, ov, labels, use_labels, out, u0, v0, u1, v1, r0, c0, r1, c1, fx, fy, cx, cy, seed, table,
                   proj_b, scan_margin, jump, edge_drop, lat0, lat1, fly_p, graz50, grazw, hair_drop, hair_sigma_mm,
                   fb, subpix, ztab, sigma_pre, angle_k_mm, max_angle, zmin, zmax):  # pragma: no cover
    """All sensor effects on the window ``[u0,u1) x [v0,v1)``, written into the full frame ``out`` (uint16,
    zero on entry). ``depth`` and ``labels`` cover a box from pixel ``(ou, ov)`` that contains the working
    region ``[c0,c1) x [r0,r1)`` (window plus margin). Returns the number of invalid input pixels (NaN, inf,
    negative) met; they are treated as no measurement."""
    W = out.shape[1]
    s64 = np.uint64(seed)
    meas, bad = _measurable(depth, ou, ov, r0, c0, r1, c1, proj_b, scan_margin)
    dist = _edge_distance(meas, jump, max(edge_drop.shape[0] - 1, 1))
    cos2 = _cos2_incidence(meas, c0, r0, fx, fy, cx, cy, jump)
    src = _edge_effects(meas, dist, cos2, u0, v0, u1, v1, r0, c0, W, s64, table, jump, edge_drop, lat0, lat1, fly_p,
                        max_angle)
    _measure(src, cos2, labels, use_labels, ou, ov, out, u0, v0, u1, v1, r0, c0, W, s64, table, graz50, grazw,
             hair_drop, hair_sigma_mm, fb, subpix, ztab, sigma_pre, angle_k_mm, max_angle, zmin, zmax)
    return bad


@njit(cache=True, nogil=True)
def _stamp_holes(out, holes, u0, v0, u1, v1):  # pragma: no cover
    """Zero the ellipses ``holes`` (N, 5) ``[cu, cv, a, b, angle]`` inside the window."""
    for k in range(holes.shape[0]):
        cu, cv, a, b, ang = holes[k, 0], holes[k, 1], holes[k, 2], holes[k, 3], holes[k, 4]
        r = max(a, b)
        ca = math.cos(ang)
        sa = math.sin(ang)
        for v in range(max(v0, int(cv - r)), min(v1, int(cv + r) + 2)):
            for u in range(max(u0, int(cu - r)), min(u1, int(cu + r) + 2)):
                x = (u - cu) * ca + (v - cv) * sa
                y = -(u - cu) * sa + (v - cv) * ca
                if (x / a) ** 2 + (y / b) ** 2 <= 1.0:
                    out[v, u] = 0


def apply_sensor(depth: np.ndarray, intrinsics: Intrinsics, rng: np.random.Generator,
                 profile: SensorProfile = KINECT_V1, *, labels: np.ndarray | None = None,
                 window: Window | None = None) -> np.ndarray:
    """Kinect v1 measurement effects on a (scene) depth frame; see the module docstring.

    Args:
        depth: ``(H, W)`` depth in mm (any numeric dtype), 0 = nothing there.
        intrinsics: its camera (``fx`` sets the shadow width in pixels; disparity uses ``profile.focal_px``).
        rng: the random source: it is advanced by a fixed number of draws (independent of the window and the
            content), per-pixel randomness comes from a counter-based hash of one drawn seed.
        profile: sensor parameters.
        labels: optional ``(H, W)`` uint8 labels from :func:`add_scene_context` (hair dropout and noise).
        window: ``(u0, v0, u1, v1)``: simulate only these pixels (0 elsewhere). The simulation reads the clean
            depth over :func:`sensor_input_window` of it.

    Returns:
        ``(H, W)`` uint16 depth in mm, 0 = no measurement.

    Raises:
        InputError: wrong shape or dtype, or NaN / inf / negative depth in the pixels read.
    """
    arr = _check_depth(depth, intrinsics)
    lab = None
    if labels is not None:
        lab = np.asarray(labels)
        if lab.shape != arr.shape:
            raise InputError(f"labels have shape {lab.shape}, the depth has {arr.shape}")
        lab = np.ascontiguousarray(lab, dtype=np.uint8)
    return _sensor_local(arr, (0, 0), lab, intrinsics, rng, profile, clip_window(window, arr.shape[1], arr.shape[0]))


def _sensor_local(depth: np.ndarray, origin: tuple[int, int], labels: np.ndarray | None, intrinsics: Intrinsics,
                  rng: np.random.Generator, profile: SensorProfile, window: Window) -> np.ndarray:
    """:func:`apply_sensor` on a box of the scene: ``depth`` / ``labels`` hold pixels from ``origin`` = (u, v)
    on and must contain :func:`sensor_input_window` of ``window`` (clipped to the box otherwise)."""
    p = profile
    H, W = intrinsics.height, intrinsics.width
    ou, ov = origin
    u0, v0, u1, v1 = window
    box = (ou, ov, ou + depth.shape[1], ov + depth.shape[0])
    c0, r0, c1, r1 = clip_window((u0 - _MARGIN, v0 - _MARGIN, u1 + _MARGIN, v1 + _MARGIN), W, H)
    c0, r0, c1, r1 = max(c0, box[0]), max(r0, box[1]), min(c1, box[2]), min(r1, box[3])
    u0, v0, u1, v1 = max(u0, c0), max(v0, r0), min(u1, c1), min(v1, r1)
    # A fixed number of draws in a fixed order (holes are drawn over the whole frame), so a window of the
    # frame is simulated exactly as the full frame is there.
    seed = int(rng.integers(0, 2**63, dtype=np.int64))
    hair_drop = float(rng.uniform(*p.hair_dropout))
    n_holes = int(rng.poisson(p.holes_per_frame * W * H / (640 * 480)))
    hole_draws = rng.random((n_holes, 5))
    out = np.zeros((H, W), np.uint16)
    if u1 <= u0 or v1 <= v0:
        return out
    use_labels = labels is not None
    lab = labels if use_labels else np.zeros((1, 1), np.uint8)
    fb = p.focal_px * p.baseline_mm
    sub = float(p.disparity_subpixel)
    if sub > 0:  # depth of each quantised disparity level k / sub, up to a little below min_range
        n_levels = int(fb * sub / (0.5 * p.min_range_mm)) + 2
        ztab = fb * sub / np.maximum(np.arange(n_levels, dtype=np.float64), 1e-300)
    else:
        ztab = np.zeros(1)
    scan_margin = math.ceil(abs(intrinsics.fx * p.projector_offset_mm) / p.min_range_mm) + 1
    bad = _sensor_kernel(
        depth, ou, ov, lab, use_labels, out, u0, v0, u1, v1, r0, c0, r1, c1, float(intrinsics.fx),
        float(intrinsics.fy), float(intrinsics.cx), float(intrinsics.cy), np.uint64(seed), _NORMAL,
        float(intrinsics.fx * p.projector_offset_mm), scan_margin, float(p.edge_jump_fraction),
        np.asarray(p.edge_dropout, dtype=np.float64).reshape(-1), float(p.lateral_noise_px),
        float(p.lateral_noise_angle_px), float(p.flying_pixel_probability), math.radians(p.grazing_dropout_deg),
        math.radians(p.grazing_dropout_width_deg), hair_drop, float(p.hair_noise_mm), float(fb), sub, ztab,
        p.disparity_noise_px(), float(p.angle_noise_coeff_m * 1e3), math.radians(p.max_noise_angle_deg),
        float(p.min_range_mm), float(p.max_range_mm))
    if bad:
        raise InputError(f"depth has {bad} NaN/inf/negative pixels (use 0 for no measurement)")
    if n_holes:
        lo, hi = p.hole_radius_px
        holes = np.empty((n_holes, 5))
        holes[:, 0] = hole_draws[:, 0] * W - 0.5
        holes[:, 1] = hole_draws[:, 1] * H - 0.5
        holes[:, 2] = lo + hole_draws[:, 2] * (hi - lo)
        holes[:, 3] = lo + hole_draws[:, 3] * (hi - lo)
        holes[:, 4] = hole_draws[:, 4] * np.pi
        _stamp_holes(out, holes, u0, v0, u1, v1)
    return out


def simulate_kinect(clean_depth: np.ndarray, head_R: np.ndarray, head_t: np.ndarray, intrinsics: Intrinsics,
                    rng: np.random.Generator, profile: SensorProfile = KINECT_V1, *,
                    window_mm: float | None = DEFAULT_WINDOW_MM, head_vertices: np.ndarray | None = None) -> np.ndarray:
    """A simulated Kinect v1 frame of a clean rendered subject: :func:`add_scene_context` then
    :func:`apply_sensor`, both restricted to :func:`head_window` (``window_mm`` around the head centre;
    ``None`` = the full frame).

    Args:
        clean_depth: ``(H, W)`` depth of the subject (mm, 0 = nothing), rendered at least over the window (plus
            :func:`sensor_input_window`'s margin for shadows of the subject itself).
        head_R, head_t: the head pose (head -> camera, mm).
        intrinsics: the camera.
        rng: the random source (same state -> identical frame).
        profile: the sensor and scene parameters (:data:`KINECT_V1` by default).
        window_mm: side of the simulated square around the head (mm; default :data:`DEFAULT_WINDOW_MM` = 340),
            or ``None`` for the full frame. Pixels outside it are 0.
        head_vertices: optional ``(V, 3)`` head-frame vertices of the subject (fits the hair to its skull).

    Returns:
        ``(H, W)`` uint16 depth in mm, 0 = no measurement (and 0 outside the window).
    """
    src = _check_depth(clean_depth, intrinsics)
    window = clip_window(None if window_mm is None else head_window(head_t, intrinsics, window_mm),
                         intrinsics.width, intrinsics.height)
    scene_window = sensor_input_window(window, intrinsics, profile)
    local, labels = _context_local(src, head_R, head_t, intrinsics, rng, profile, scene_window, head_vertices)
    return _sensor_local(local, scene_window[:2], labels, intrinsics, rng, profile, window)
