"""Synthetic dataset profiles after Table 2 of the paper: SynData1/2/3 mimic FaceWarehouse/Biwi/ICT-3DHP.

Each profile fixes the camera (the real dataset's intrinsics), the number of identities, the named
expressions, the frame count and the head-pose distribution. Pose ranges are our estimates of each
real dataset's (Biwi: about +-75 deg yaw, +-45 deg pitch at 0.7-1.3 m); ``--poses-from`` replaces
them by real pose labels, as the paper did.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from depthface.errors import InputError
from depthface.geometry.camera import Intrinsics

#: Named expressions as combinations of the model's ARKit-style blendshapes (weights in [0, 1]).
#: The first 20 follow FaceWarehouse's 20 captured expressions.
EXPRESSIONS: dict[str, dict[str, float]] = {
    "neutral": {},
    "mouth_stretch": {"jawOpen": 0.7, "mouthStretch_L": 0.5, "mouthStretch_R": 0.5},
    "mouth_left": {"mouthLeft": 0.8},
    "mouth_right": {"mouthRight": 0.8},
    "jaw_left": {"jawLeft": 0.7, "jawOpen": 0.1},
    "jaw_right": {"jawRight": 0.7, "jawOpen": 0.1},
    "jaw_forward": {"jawForward": 0.8},
    "lip_pucker": {"mouthPucker": 0.9},
    "lip_funnel": {"mouthFunnel": 0.9, "jawOpen": 0.15},
    "dimpler": {"mouthDimple_L": 0.8, "mouthDimple_R": 0.8},
    "chin_raiser": {"mouthShrugLower": 0.8, "mouthShrugUpper": 0.4},
    "lip_roll": {"mouthRollLower": 0.8, "mouthRollUpper": 0.8},
    "grin": {"mouthSmile_L": 0.9, "mouthSmile_R": 0.9, "mouthUpperUp_L": 0.5, "mouthUpperUp_R": 0.5,
             "jawOpen": 0.15},
    "cheek_blow": {"cheekPuff_L": 1.0, "cheekPuff_R": 1.0, "mouthClose": 0.3},
    "eyes_closed": {"eyeBlink_L": 1.0, "eyeBlink_R": 1.0},
    "brow_lower": {"browDown_L": 0.9, "browDown_R": 0.9},
    "brow_raise": {"browInnerUp_L": 0.9, "browInnerUp_R": 0.9, "browOuterUp_L": 0.8, "browOuterUp_R": 0.8},
    "sadness": {"mouthFrown_L": 0.8, "mouthFrown_R": 0.8, "browInnerUp_L": 0.6, "browInnerUp_R": 0.6},
    "smile": {"mouthSmile_L": 0.8, "mouthSmile_R": 0.8, "cheekSquint_L": 0.4, "cheekSquint_R": 0.4},
    "anger": {"browDown_L": 0.8, "browDown_R": 0.8, "noseSneer_L": 0.6, "noseSneer_R": 0.6,
              "mouthPress_L": 0.5, "mouthPress_R": 0.5},
    "mouth_open": {"jawOpen": 0.6, "mouthLowerDown_L": 0.3, "mouthLowerDown_R": 0.3},
}

FACEWAREHOUSE_EXPRESSIONS: tuple[str, ...] = tuple(list(EXPRESSIONS)[:20])
THREE_EXPRESSIONS: tuple[str, ...] = ("neutral", "smile", "mouth_open")


@dataclass(frozen=True)
class PoseRange:
    """Uniform ranges of the head pose: angles in degrees, distance of the head centre in mm."""

    yaw: tuple[float, float]
    pitch: tuple[float, float]
    roll: tuple[float, float]
    distance: tuple[float, float]
    #: the head centre's projection stays within this fraction of the half image from the centre
    image_spread: float = 0.5


@dataclass(frozen=True)
class SynthProfile:
    """What a synthetic dataset looks like (see the module docstring)."""

    name: str
    mimics: str
    n_identities: int
    expressions: tuple[str, ...]
    n_frames: int
    intrinsics: Intrinsics
    pose: PoseRange
    #: identity coefficients ~ N(0, identity_scale^2)
    identity_scale: float = 1.0
    #: the crop centre is the true head centre plus a uniform jitter in [-j, j] mm per axis,
    #: so that networks learn to cope with an imperfect head localisation
    crop_jitter_mm: float = 15.0
    #: identity split fractions (train, val, test), by identity
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)
    #: real pose labels to sample from instead of the ranges: (N, 3) yaw, pitch, roll (deg)
    poses: np.ndarray | None = field(default=None, compare=False, repr=False)

    def scaled(self, scale: float | None = None, count: int | None = None) -> "SynthProfile":
        """A smaller (or larger) version: ``scale`` multiplies identities and frames; ``count`` sets frames."""
        n_id, n_fr = self.n_identities, self.n_frames
        if scale is not None:
            if not scale > 0:
                raise InputError(f"--scale must be positive, got {scale}")
            n_id = max(3, round(n_id * scale))
            n_fr = max(1, round(n_fr * scale))
        if count is not None:
            if count < 1:
                raise InputError(f"--count must be at least 1, got {count}")
            n_fr = count
            if scale is None:
                n_id = min(n_id, max(3, math.ceil(count / len(self.expressions))))
        return replace(self, n_identities=n_id, n_frames=n_fr)


PROFILES: dict[str, SynthProfile] = {
    "syndata1": SynthProfile("syndata1", "FaceWarehouse", 450, FACEWAREHOUSE_EXPRESSIONS, 9000,
                             Intrinsics.preset("kinect_v1"), PoseRange((-15, 15), (-10, 10), (-5, 5), (600, 1000))),
    "syndata2": SynthProfile("syndata2", "Biwi", 165, THREE_EXPRESSIONS, 47034, Intrinsics.preset("biwi"),
                             PoseRange((-75, 75), (-45, 45), (-30, 30), (700, 1300))),
    "syndata3": SynthProfile("syndata3", "ICT-3DHP", 143, THREE_EXPRESSIONS, 42606, Intrinsics.preset("ict3dhp"),
                             PoseRange((-75, 75), (-45, 45), (-30, 30), (600, 1400))),
}


def get_profile(name: str) -> SynthProfile:
    try:
        return PROFILES[name.lower()]
    except KeyError:
        raise InputError(f"unknown synthetic profile {name!r}; choose one of {sorted(PROFILES)}") from None


def read_pose_list(path: str | Path) -> np.ndarray:
    """Read real pose labels to sample from: a CSV with a header naming ``yaw``, ``pitch``, ``roll`` (deg).

    Returns:
        ``(N, 3)`` float64 yaw, pitch, roll in degrees.
    """
    path = Path(path)
    try:
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise InputError(f"cannot read pose list: {e}", path) from None
    if not rows or not {"yaw", "pitch", "roll"} <= set(rows[0]):
        raise InputError("pose list must be a CSV with columns yaw, pitch, roll (degrees)", path)
    try:
        poses = np.array([[float(r["yaw"]), float(r["pitch"]), float(r["roll"])] for r in rows])
    except (TypeError, ValueError):
        raise InputError("pose list has a non-numeric yaw/pitch/roll value", path) from None
    if not np.isfinite(poses).all():
        raise InputError("pose list has non-finite values", path)
    return poses
