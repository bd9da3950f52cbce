"""Simulated sensor frames: a scene (:class:`SceneProfile`) seen by a sensor (:class:`SensorProfile`).

A :class:`SimulationProfile` names the pair (``--sensor`` picks one of :data:`SIMULATION_PRESETS`), and
:func:`simulate_frame` runs the two stages on a clean rendered subject, each a pure function of its inputs
and an explicit ``numpy.random.Generator`` (the same generator state gives a byte-identical frame):

1. :func:`~depthface.synth.context.add_scene_context` (:mod:`depthface.synth.context`): hair, neck and torso,
   a background wall and boxes, composited into the clean depth, with per-pixel labels;
2. ``profile.sensor.measure`` (:mod:`depthface.synth.sensors`, one module per sensor family): what the
   sensor makes of that scene, e.g. Kinect v1's projector shadow, disparity noise and quantisation, or a
   time-of-flight camera's amplitude-dependent noise and mixed pixels.

Presets: ``kinect_v1`` (structured light, the paper's target domain), ``ideal`` (the same scene, no sensor
effects), ``tof_kinect_v2`` (a held-out time-of-flight domain that no training command uses by default)
and ``kinect_v1_random`` (domain randomisation, beyond the paper: every scene and sensor parameter drawn
per sample from wide ranges, see :data:`RANDOMIZED`). docs/synthetic.md describes them.

The simulation works in a **window**: by default a square of ``window_mm`` = 340 mm around the head centre
at the head's depth (the downstream metric crop is 250 mm, its centre jittered by up to 15 mm per axis);
pixels outside it are 0. ``window_mm=None`` simulates the full frame (about 4x slower). Every random
decision is keyed to the pixel, so a window is exactly the full-frame simulation restricted to it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from depthface.errors import InputError
from depthface.geometry.camera import Intrinsics
from depthface.geometry.conventions import CROP_SIZE_MM
from depthface.synth.params import manifest_fields
from depthface.synth.render import Window, check_depth_frame, clip_window
from depthface.synth.context import (DEFAULT_SCENE, LABEL_BODY, LABEL_HAIR, LABEL_NONE, LABEL_OBJECT,  # noqa: F401
                                   LABEL_SUBJECT, LABEL_WALL, SKULL_AXES_MM, SKULL_CENTRE_MM, SKULL_EXPONENT,
                                   SceneProfile, _context_local, _rotation, add_scene_context, body_mesh, box_meshes,
                                   hair_mesh, sample_wall, skull_scale)
from depthface.synth.sensors import FAMILIES, SensorProfile, StructuredLightProfile, TimeOfFlightProfile

_SCENE_FIELDS = frozenset(f.name for f in fields(SceneProfile))


@dataclass(frozen=True, init=False)
class SimulationProfile:
    """What a simulated frame is made of: a named scene and sensor, optionally randomised per sample.

    Args:
        name: the preset's name (written to the dataset manifest).
        scene: the scene parameters (default :data:`~depthface.synth.context.DEFAULT_SCENE`).
        sensor: the measurement model (default: Kinect v1 structured light).
        randomize: ``((field, low, high), ...)``: scalar scene or sensor fields drawn uniformly per sample
            (integers rounded) before anything else -- domain randomisation, beyond the paper.
        **changes: any scene or sensor field by name (routed to ``scene`` or ``sensor``), so that
            ``dataclasses.replace(profile, hair_probability=0.0)`` and ``SimulationProfile(**manifest_spec)``
            work as they did before the scene / sensor split. Reading ``profile.<field>`` forwards too.
    """

    name: str
    scene: SceneProfile
    sensor: SensorProfile
    randomize: tuple[tuple[str, float, float], ...]

    def __init__(self, name: str = "kinect_v1", scene: SceneProfile | None = None,
                 sensor: SensorProfile | None = None, randomize: Any = (), sensor_family: str | None = None,
                 **changes: Any) -> None:
        scene = DEFAULT_SCENE if scene is None else scene
        if sensor is None:
            if sensor_family is not None and sensor_family not in FAMILIES:
                raise InputError(f"unknown sensor family {sensor_family!r}; choose one of {sorted(FAMILIES)}")
            sensor = FAMILIES[sensor_family or "structured_light"]()
        tup = lambda v: tuple(v) if isinstance(v, list) else v  # noqa: E731  (JSON lists back to tuples)
        sensor_fields = {f.name for f in fields(sensor)}
        unknown = sorted(set(changes) - _SCENE_FIELDS - sensor_fields)
        if unknown:
            raise TypeError(f"SimulationProfile got unexpected field(s) {unknown} for a {sensor.family} sensor")
        scene_changes = {k: tup(v) for k, v in changes.items() if k in _SCENE_FIELDS}
        sensor_changes = {k: tup(v) for k, v in changes.items() if k not in _SCENE_FIELDS}
        scene = replace(scene, **scene_changes) if scene_changes else scene
        sensor = replace(sensor, **sensor_changes) if sensor_changes else sensor
        rand = tuple((str(n), float(lo), float(hi)) for n, lo, hi in randomize)
        for n, lo, hi in rand:
            target = scene if n in _SCENE_FIELDS else sensor
            if not hasattr(target, n) or isinstance(getattr(target, n), (tuple, str, type(None))):
                raise InputError(f"simulation {name!r}: randomize names {n!r}, not a scalar scene or sensor field")
            if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
                raise InputError(f"simulation {name!r}: randomize range of {n} must be finite low <= high")
        object.__setattr__(self, "name", str(name))
        object.__setattr__(self, "scene", scene)
        object.__setattr__(self, "sensor", sensor)
        object.__setattr__(self, "randomize", rand)

    def __getattr__(self, item: str) -> Any:  # only called when normal lookup fails
        if item.startswith("__") or item in ("name", "scene", "sensor", "randomize"):
            raise AttributeError(item)
        for part in (self.scene, self.sensor):
            if hasattr(part, item):
                return getattr(part, item)
        raise AttributeError(f"SimulationProfile has no scene or sensor field {item!r}")

    @classmethod
    def preset(cls, name: str) -> "SimulationProfile":
        """A named simulation: one of :data:`SIMULATION_PRESETS`."""
        try:
            return SIMULATION_PRESETS[name.lower()]
        except KeyError:
            raise InputError(f"unknown sensor profile {name!r}; choose one of {sorted(SIMULATION_PRESETS)}") from None

    @classmethod
    def from_manifest(cls, spec: dict) -> "SimulationProfile":
        """The profile a manifest's ``sensor`` entry describes (see :meth:`manifest_dict`).

        Raises:
            TypeError: a field this version does not know.
        """
        spec = dict(spec)
        return cls(spec.pop("name", "custom"), randomize=spec.pop("randomize", ()), **spec)

    def manifest_dict(self) -> dict[str, Any]:
        """The manifest's ``sensor`` entry: the name, every sensor and scene field (fields added after
        generator version 1 only when not at their default), the family unless structured light, and the
        randomised fields if any. Kinect v1 datasets made before the split get the same entry."""
        out: dict[str, Any] = {"name": self.name, **manifest_fields(self.sensor), **manifest_fields(self.scene)}
        if self.sensor.family != StructuredLightProfile.family:
            out["sensor_family"] = self.sensor.family
        if self.randomize:
            out["randomize"] = [list(r) for r in self.randomize]
        return out

    @property
    def camera(self) -> Intrinsics | None:
        """The sensor's own camera (a dataset is rendered with it), or ``None``: the dataset profile's."""
        return None if self.sensor.camera is None else Intrinsics.preset(self.sensor.camera)

    def draw(self, rng: np.random.Generator) -> "SimulationProfile":
        """This profile with every randomised field drawn from ``rng`` (itself when nothing is randomised;
        ``len(randomize)`` uniform draws otherwise)."""
        if not self.randomize:
            return self
        drawn = {}
        for n, lo, hi in self.randomize:
            x = float(rng.uniform(lo, hi))
            current = getattr(self.scene if n in _SCENE_FIELDS else self.sensor, n)
            drawn[n] = int(round(x)) if isinstance(current, int) else x
        return SimulationProfile(self.name, self.scene, self.sensor, (), **drawn)


def as_simulation(profile: SimulationProfile | SensorProfile) -> SimulationProfile:
    """A simulation profile; a bare sensor gets the default scene."""
    if isinstance(profile, SimulationProfile):
        return profile
    if isinstance(profile, SensorProfile):
        return SimulationProfile(f"custom_{profile.family}", DEFAULT_SCENE, profile)
    raise InputError(f"expected a SimulationProfile or SensorProfile, got {type(profile).__name__}")


# ---------------------------------------------------------------------------------------------------------------------
# Presets

KINECT_V1 = SimulationProfile("kinect_v1", DEFAULT_SCENE, StructuredLightProfile())

IDEAL = SimulationProfile("ideal", DEFAULT_SCENE, replace(
    StructuredLightProfile(), disparity_subpixel=0, depth_noise_coeff=0.0, angle_noise_coeff_m=0.0,
    lateral_noise_px=0.0, lateral_noise_angle_px=0.0, projector_offset_mm=0.0, edge_dropout=(),
    flying_pixel_probability=0.0, grazing_dropout_width_deg=0.0, holes_per_frame=0.0, hair_dropout=(0.0, 0.0),
    hair_noise_mm=0.0))

#: The held-out time-of-flight domain: a Kinect v2-like camera (512x424) and a scene unlike kinect_v1's
#: (solid hair with a ragged outline, shoulders closer to the jaw, other background distances and clutter).
TOF_KINECT_V2 = SimulationProfile("tof_kinect_v2", replace(
    DEFAULT_SCENE, hair_thickness_mm=(5.0, 25.0), long_hair_probability=0.4, hair_ragged_mm=(2.0, 6.0),
    neck_length_mm=(20.0, 70.0), neck_radius_mm=(52.0, 66.0), torso_roundness=(0.45, 0.8),
    wall_distance_mm=(1200.0, 4200.0), wall_yaw_deg=45.0, wall_pitch_deg=20.0, box_count=(1, 4),
    box_size_mm=(100.0, 1000.0)), TimeOfFlightProfile())

#: Domain randomisation around Kinect v1 (beyond the paper): the scene's ranges widened, the realism options
#: of issue 11 on, and these scalar fields drawn per sample (docs/synthetic.md: where each range comes from).
RANDOMIZED: tuple[tuple[str, float, float], ...] = (
    # scene
    ("hair_probability", 0.6, 1.0), ("long_hair_probability", 0.0, 0.6), ("torso_yaw_deg", 0.0, 25.0),
    ("wall_probability", 0.6, 1.0), ("wall_min_gap_mm", 250.0, 800.0), ("wall_yaw_deg", 0.0, 50.0),
    ("wall_pitch_deg", 0.0, 25.0),
    # sensor
    ("depth_noise_coeff", 0.7e-3, 3.0e-3), ("angle_noise_coeff_m", 0.5e-4, 3.0e-4), ("lateral_noise_px", 0.3, 1.5),
    ("projector_offset_mm", 50.0, 100.0), ("edge_jump_fraction", 0.015, 0.04),
    ("flying_pixel_probability", 0.0, 0.5), ("grazing_dropout_deg", 65.0, 85.0),
    ("grazing_dropout_width_deg", 1.0, 6.0), ("holes_per_frame", 0.0, 20.0), ("hair_noise_mm", 0.0, 3.0),
    ("correlation_radius_px", 0.0, 6.0),
)

KINECT_V1_RANDOM = SimulationProfile("kinect_v1_random", replace(
    DEFAULT_SCENE, hair_thickness_mm=(0.0, 30.0), hair_top_volume_mm=(0.0, 30.0), hair_ragged_mm=(0.0, 8.0),
    hairline_front_mm=(-85.0, -45.0), hairline_side_mm=(-35.0, 20.0), hairline_back_mm=(20.0, 100.0),
    torso_follow=(0.0, 0.6), shoulder_half_width_mm=(150.0, 250.0), torso_half_depth_mm=(85.0, 150.0),
    neck_length_mm=(0.0, 110.0), neck_radius_mm=(45.0, 70.0), torso_roundness=(0.3, 1.0),
    wall_distance_mm=(1000.0, 4000.0), box_count=(0, 5), box_size_mm=(100.0, 1000.0)),
    replace(StructuredLightProfile(), hair_dropout=(0.0, 0.7)), RANDOMIZED)

SIMULATION_PRESETS: dict[str, SimulationProfile] = {p.name: p for p in (KINECT_V1, IDEAL, TOF_KINECT_V2,
                                                                        KINECT_V1_RANDOM)}
#: the name before the split
SENSOR_PRESETS = SIMULATION_PRESETS


# ---------------------------------------------------------------------------------------------------------------------
# Windows


#: Side (mm) of :func:`simulate_frame`'s default window: the 250 mm metric crop plus the scene sampler's
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


def sensor_input_window(window: Window | None, intrinsics: Intrinsics,
                        profile: SimulationProfile | SensorProfile = KINECT_V1) -> Window:
    """The pixels the sensor reads to make ``window``: the window and the sensor's
    :meth:`~depthface.synth.sensors.SensorProfile.input_margin` (e.g. Kinect v1's projector shadow reach).
    Render the clean scene at least over this box."""
    sensor = as_simulation(profile).sensor
    u0, v0, u1, v1 = clip_window(window, intrinsics.width, intrinsics.height)
    left, top, right, bottom = sensor.input_margin(intrinsics)
    return clip_window((u0 - left, v0 - top, u1 + right, v1 + bottom), intrinsics.width, intrinsics.height)


# ---------------------------------------------------------------------------------------------------------------------
# Running the stages


def apply_sensor(depth: np.ndarray, intrinsics: Intrinsics, rng: np.random.Generator,
                 profile: SimulationProfile | SensorProfile = KINECT_V1, *, labels: np.ndarray | None = None,
                 window: Window | None = None) -> np.ndarray:
    """The sensor's measurement of a (scene) depth frame (``profile.sensor.measure``; randomised fields keep
    their base values here: :func:`simulate_frame` draws them).

    Args:
        depth: ``(H, W)`` depth in mm (any numeric dtype), 0 = nothing there.
        intrinsics: its camera.
        rng: the random source: it is advanced by a fixed number of draws (independent of the window and the
            content), per-pixel randomness comes from a counter-based hash of one drawn seed.
        profile: the simulation (its sensor is used) or a bare sensor.
        labels: optional ``(H, W)`` uint8 labels from :func:`add_scene_context` (hair reflects differently).
        window: ``(u0, v0, u1, v1)``: simulate only these pixels (0 elsewhere). The simulation reads the scene
            depth over :func:`sensor_input_window` of it.

    Returns:
        ``(H, W)`` uint16 depth in mm, 0 = no measurement.

    Raises:
        InputError: wrong shape or dtype, or NaN / inf / negative depth in the pixels read.
    """
    arr = check_depth_frame(depth, intrinsics)
    lab = None
    if labels is not None:
        lab = np.asarray(labels)
        if lab.shape != arr.shape:
            raise InputError(f"labels have shape {lab.shape}, the depth has {arr.shape}")
        lab = np.ascontiguousarray(lab, dtype=np.uint8)
    sensor = as_simulation(profile).sensor
    return sensor.measure(arr, (0, 0), lab, intrinsics, rng, clip_window(window, arr.shape[1], arr.shape[0]))


def simulate_frame(clean_depth: np.ndarray, head_R: np.ndarray, head_t: np.ndarray, intrinsics: Intrinsics,
                   rng: np.random.Generator, profile: SimulationProfile | SensorProfile = KINECT_V1, *,
                   window_mm: float | None = DEFAULT_WINDOW_MM, head_vertices: np.ndarray | None = None) -> np.ndarray:
    """A simulated sensor frame of a clean rendered subject: the randomised fields drawn (if any), then
    :func:`add_scene_context` and the sensor's measurement, both restricted to :func:`head_window`
    (``window_mm`` around the head centre; ``None`` = the full frame).

    Args:
        clean_depth: ``(H, W)`` depth of the subject (mm, 0 = nothing), rendered at least over the window (plus
            :func:`sensor_input_window`'s margin for shadows of the subject itself).
        head_R, head_t: the head pose (head -> camera, mm).
        intrinsics: the camera.
        rng: the random source (same state -> identical frame).
        profile: the simulation (:data:`KINECT_V1` by default).
        window_mm: side of the simulated square around the head (mm; default :data:`DEFAULT_WINDOW_MM` = 340),
            or ``None`` for the full frame. Pixels outside it are 0.
        head_vertices: optional ``(V, 3)`` head-frame vertices of the subject (fits the hair to its skull).

    Returns:
        ``(H, W)`` uint16 depth in mm, 0 = no measurement (and 0 outside the window).
    """
    sim = as_simulation(profile).draw(rng)
    src = check_depth_frame(clean_depth, intrinsics)
    window = clip_window(None if window_mm is None else head_window(head_t, intrinsics, window_mm),
                         intrinsics.width, intrinsics.height)
    scene_window = sensor_input_window(window, intrinsics, sim)
    local, labels = _context_local(src, head_R, head_t, intrinsics, rng, sim.scene, scene_window, head_vertices)
    return sim.sensor.measure(local, scene_window[:2], labels, intrinsics, rng, window)


#: the name before other sensor families existed
simulate_kinect = simulate_frame
