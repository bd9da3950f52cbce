"""Pinhole camera: intrinsics, projection, back-projection, depth map -> points / position image.

Conventions (see :mod:`depthface.geometry.conventions`): OpenCV camera frame (x right, y down,
z forward), millimetres, pixel centres at integer coordinates, depth 0 = no measurement.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from depthface.errors import InputError


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics of a depth camera (no distortion).

    Attributes:
        fx, fy: focal lengths in pixels.
        cx, cy: principal point in pixels (pixel centres at integer coordinates).
        width, height: image size in pixels.

    Validated at construction (:class:`InputError` naming the field): finite positive focal lengths,
    finite principal point, positive integer sizes. The principal point of a *camera* lies inside its
    image (:meth:`check_principal_point`, applied to every frame given to the reconstructor); crops
    (:mod:`depthface.geometry.crop`) legitimately have theirs outside, so construction does not require it.
    """

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def __post_init__(self) -> None:
        for name in ("fx", "fy", "cx", "cy"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
                raise InputError(f"intrinsics {name} must be a finite number, got {v!r}")
            if name in ("fx", "fy") and not v > 0:
                raise InputError(f"intrinsics {name} (focal length) must be positive, got {v!r}")
        for name in ("width", "height"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or not v > 0:
                raise InputError(f"intrinsics {name} must be a positive integer, got {v!r}")

    def check_principal_point(self, source: str | Path | None = None) -> "Intrinsics":
        """Return ``self`` when the principal point lies inside the image (``0 <= cx < width``,
        ``0 <= cy < height``); raise :class:`InputError` otherwise."""
        if not (0 <= self.cx < self.width and 0 <= self.cy < self.height):
            raise InputError(f"intrinsics principal point ({self.cx:g}, {self.cy:g}) lies outside the "
                             f"{self.width}x{self.height} image", source)
        return self

    @classmethod
    def preset(cls, name: str) -> "Intrinsics":
        """A named preset (:data:`PRESETS`: datasets' calibrations and nominal values of common depth cameras)."""
        try:
            return PRESETS[name.lower()]
        except KeyError:
            raise InputError(f"unknown intrinsics preset {name!r}; choose one of {sorted(PRESETS)}") from None

    @classmethod
    def parse(cls, text: str, width: int = 640, height: int = 480) -> "Intrinsics":
        """A preset name, or ``fx,fy,cx,cy`` (image size from ``width``/``height``)."""
        if text.lower() in PRESETS:
            return cls.preset(text)
        parts = text.split(",")
        try:
            fx, fy, cx, cy = (float(p) for p in parts)
        except ValueError:
            raise InputError(f"intrinsics {text!r} is neither a preset ({sorted(PRESETS)}) nor 'fx,fy,cx,cy'") from None
        if not (all(math.isfinite(v) for v in (fx, fy, cx, cy)) and fx > 0 and fy > 0):
            raise InputError(f"intrinsics {text!r}: focal lengths must be positive and all values finite")
        return cls(fx, fy, cx, cy, width, height)

    @property
    def matrix(self) -> np.ndarray:
        """The 3x3 camera matrix K (float64)."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def as_tensor(self, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> Tensor:
        """``(4,)`` tensor ``[fx, fy, cx, cy]``, the batched functions' form (stack to ``(B, 4)``)."""
        return torch.tensor([self.fx, self.fy, self.cx, self.cy], device=device, dtype=dtype)

    def scaled(self, sx: float, sy: float, dx: float = 0.0, dy: float = 0.0, width: int | None = None,
               height: int | None = None) -> "Intrinsics":
        """Intrinsics of the image resampled by ``u' = sx * (u - dx)``, ``v' = sy * (v - dy)``."""
        return replace(self, fx=self.fx * sx, fy=self.fy * sy, cx=(self.cx - dx) * sx, cy=(self.cy - dy) * sy,
                       width=self.width if width is None else width, height=self.height if height is None else height)

    def to_dict(self) -> dict:
        return {"fx": self.fx, "fy": self.fy, "cx": self.cx, "cy": self.cy, "width": self.width, "height": self.height}


def _from_fov(width: int, height: int, hfov_deg: float, vfov_deg: float) -> Intrinsics:
    """Nominal pinhole intrinsics of a camera from its datasheet field of view:
    ``f = (size / 2) / tan(fov / 2)`` per axis, principal point at ``(width / 2, height / 2)``."""
    return Intrinsics(round(width / 2 / math.tan(math.radians(hfov_deg) / 2), 3),
                      round(height / 2 / math.tan(math.radians(vfov_deg) / 2), 3), width / 2, height / 2, width, height)


#: Named cameras. ``biwi``, ``kinect_v1`` and ``ict3dhp`` are the datasets' published calibrations; the
#: others are **nominal** (a real unit differs by a few percent; a RealSense recording or camera brings
#: its own calibration, see docs/datasets.md). ``kinect_v2``: the commonly used nominal values. Azure
#: Kinect: the depth camera's focal length of one unit's factory calibration (fx, fy = 0.4920, 0.4919 of
#: the 1024-pixel sensor, printed in microsoft/Azure-Kinect-Sensor-SDK issue 1617), principal point at the
#: image centre, for the NFOV unbinned (640x576) and WFOV unbinned (1024x1024) modes; the WFOV lens is a
#: fisheye, so its pinhole preset only holds near the centre (its datasheet's 75 x 65 and 120 x 120 deg
#: describe the non-rectangular fields). The rest from the vendors' datasheet fields of view (horizontal x
#: vertical, depth stream, in the mode named; :func:`_from_fov`): RealSense D415 65 x 40 deg at 1280x720,
#: D435 and D455 87 x 58 deg at 848x480, L515 70 x 55 deg at 1024x768, Orbbec Astra 60 x 49.5 deg at 640x480.
PRESETS: dict[str, Intrinsics] = {
    "biwi": Intrinsics(575.816, 575.816, 320.0, 240.0, 640, 480),
    "kinect_v1": Intrinsics(575.816, 575.816, 320.0, 240.0, 640, 480),
    "ict3dhp": Intrinsics(535.0, 536.0, 327.0, 241.0, 640, 480),
    "kinect_v2": Intrinsics(365.0, 365.0, 256.0, 212.0, 512, 424),
    "azure_kinect_nfov": Intrinsics(503.847, 503.738, 320.0, 288.0, 640, 576),
    "azure_kinect_wfov": Intrinsics(503.847, 503.738, 512.0, 512.0, 1024, 1024),
    "realsense_d415": _from_fov(1280, 720, 65.0, 40.0),
    "realsense_d435": _from_fov(848, 480, 87.0, 58.0),
    "realsense_d455": _from_fov(848, 480, 87.0, 58.0),
    "realsense_l515": _from_fov(1024, 768, 70.0, 55.0),
    "orbbec_astra": _from_fov(640, 480, 60.0, 49.5),
}


@dataclass(frozen=True)
class BiwiCalibration:
    """Biwi ``depth.cal``: intrinsics, distortion, and the extrinsics R, t (to the RGB camera)."""

    intrinsics: Intrinsics
    distortion: np.ndarray
    rotation: np.ndarray
    translation: np.ndarray


def read_biwi_calibration(path: str | Path) -> BiwiCalibration:
    """Read Biwi's ``depth.cal``: K on lines 0-2, distortion on line 4, R on lines 6-8, t on line 10,
    and ``width height`` on the last non-empty line."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except OSError as e:
        raise InputError(f"cannot read calibration: {e.strerror}", path) from None
    except UnicodeDecodeError:
        raise InputError("calibration is not a text file (binary content)", path) from None

    def row(i: int, n: int) -> list[float]:
        if i >= len(lines):
            raise InputError(f"calibration has {len(lines)} lines, expected line {i} ({n} numbers)", path)
        parts = lines[i].split()
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise InputError(f"line {i} is not numeric: {lines[i].strip()!r}", path) from None
        if len(values) < n or not all(math.isfinite(v) for v in values):
            raise InputError(f"line {i} should hold {n} finite numbers: {lines[i].strip()!r}", path)
        return values[:n]

    K = np.array([row(i, 3) for i in range(3)])
    dist = np.array(row(4, 4))
    R = np.array([row(i, 3) for i in range(6, 9)])
    t = np.array(row(10, 3))
    last = max((i for i, ln in enumerate(lines) if ln.strip()), default=-1)
    w, h = (int(v) for v in row(last, 2))
    if K[0, 0] <= 0 or K[1, 1] <= 0 or w <= 0 or h <= 0:
        raise InputError("focal lengths and image size must be positive", path)
    try:
        k = Intrinsics(float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2]), w, h).check_principal_point()
    except InputError as e:
        raise InputError(str(e), path) from None
    return BiwiCalibration(k, dist, R, t)


def write_biwi_calibration(path: str | Path, calib: BiwiCalibration) -> None:
    """Write ``depth.cal`` in Biwi's layout (the inverse of :func:`read_biwi_calibration`)."""
    K = calib.intrinsics.matrix
    fmt = lambda v: " ".join(f"{x:.6f}" for x in v)  # noqa: E731
    lines = [fmt(K[0]), fmt(K[1]), fmt(K[2]), "", fmt(calib.distortion), "", fmt(calib.rotation[0]),
             fmt(calib.rotation[1]), fmt(calib.rotation[2]), "", fmt(calib.translation), "",
             f"{calib.intrinsics.width} {calib.intrinsics.height}"]
    Path(path).write_text("\n".join(lines) + "\n")


def _k(intrinsics: Tensor | Intrinsics, like: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Split intrinsics into fx, fy, cx, cy tensors of shape ``(B, 1)`` (or broadcastable)."""
    if isinstance(intrinsics, Intrinsics):
        intrinsics = intrinsics.as_tensor(like.device, like.dtype)
    k = intrinsics.to(device=like.device, dtype=like.dtype).reshape(-1, 4)
    return k[:, 0:1], k[:, 1:2], k[:, 2:3], k[:, 3:4]


def project(points: Tensor, intrinsics: Tensor | Intrinsics) -> Tensor:
    """Project camera-frame points to pixel coordinates.

    Args:
        points: ``(B, N, 3)`` points in mm, camera frame (z > 0 in front of the camera).
        intrinsics: ``(B, 4)`` / ``(4,)`` ``[fx, fy, cx, cy]`` or an :class:`Intrinsics`.

    Returns:
        ``(B, N, 2)`` pixel coordinates ``(u, v)``, pixel centres at integers.
    """
    fx, fy, cx, cy = _k(intrinsics, points)
    z = points[..., 2]
    return torch.stack((fx * points[..., 0] / z + cx, fy * points[..., 1] / z + cy), dim=-1)


def backproject(uv: Tensor, depth: Tensor, intrinsics: Tensor | Intrinsics) -> Tensor:
    """Lift pixels with known depth to camera-frame points.

    Args:
        uv: ``(B, N, 2)`` pixel coordinates.
        depth: ``(B, N)`` depth (z) in mm.
        intrinsics: ``(B, 4)`` / ``(4,)`` ``[fx, fy, cx, cy]`` or an :class:`Intrinsics`.

    Returns:
        ``(B, N, 3)`` points in mm.
    """
    fx, fy, cx, cy = _k(intrinsics, depth)
    x = (uv[..., 0] - cx) / fx * depth
    y = (uv[..., 1] - cy) / fy * depth
    return torch.stack((x, y, depth), dim=-1)


def position_image(depth: Tensor, intrinsics: Tensor | Intrinsics) -> Tensor:
    """The paper's depth-to-position transform: per pixel (X, Y, Z) in mm.

    Pixel ``(u, v)`` (centre at integer coordinates) with depth ``Z > 0`` maps to
    ``X = (u - cx) Z / fx``, ``Y = (v - cy) Z / fy``. Invalid pixels (``Z == 0``) map to ``(0, 0, 0)``.

    Args:
        depth: ``(B, 1, H, W)`` depth in mm, 0 = no measurement.
        intrinsics: ``(B, 4)`` / ``(4,)`` ``[fx, fy, cx, cy]`` of this image, or an :class:`Intrinsics`.

    Returns:
        ``(B, 3, H, W)`` position image in mm.
    """
    b, _, h, w = depth.shape
    fx, fy, cx, cy = _k(intrinsics, depth)
    u = torch.arange(w, device=depth.device, dtype=depth.dtype).view(1, 1, 1, w)
    v = torch.arange(h, device=depth.device, dtype=depth.dtype).view(1, 1, h, 1)
    z = depth
    x = (u - cx.view(-1, 1, 1, 1)) / fx.view(-1, 1, 1, 1) * z
    y = (v - cy.view(-1, 1, 1, 1)) / fy.view(-1, 1, 1, 1) * z
    return torch.cat((x.expand(b, 1, h, w), y.expand(b, 1, h, w), z), dim=1)


def position_points(position: Tensor, max_points: int | None = None) -> list[Tensor]:
    """The measured points of position images, one cloud per image.

    Args:
        position: ``(B, 3, H, W)`` position images (mm), ``z = 0`` where nothing was measured.
        max_points: keep at most this many points per image: every ``k``-th in pixel order,
            ``k = ceil(N / max_points)`` (``None``: all).

    Returns:
        ``B`` tensors ``(N_b, 3)``: the pixels with ``z > 0``, in row-major pixel order (then thinned).

    Raises:
        InputError: ``position`` is not ``(B, 3, H, W)``.
    """
    if position.ndim != 4 or position.shape[1] != 3:
        raise InputError(f"position must be (B, 3, H, W) position images, got shape {tuple(position.shape)}")
    if max_points is not None and max_points < 1:
        raise InputError(f"max_points must be at least 1, got {max_points}")
    out = []
    for p in position.permute(0, 2, 3, 1).reshape(position.shape[0], -1, 3):
        p = p[p[:, 2] > 0]
        if max_points is not None and len(p) > max_points:
            p = p[:: -(-len(p) // max_points)]
        out.append(p)
    return out


def depth_to_points(depth: Tensor, intrinsics: Intrinsics | Tensor) -> Tensor:
    """The measured points of one depth map: :func:`position_points` of its :func:`position_image`.

    Args:
        depth: ``(H, W)`` or ``(1, H, W)`` depth in mm, 0 = no measurement.
        intrinsics: of this image (a crop's: :meth:`Intrinsics.scaled` with the crop's offset).

    Returns:
        ``(N, 3)`` camera-frame points of the pixels with depth > 0, in row-major pixel order.
    """
    return position_points(position_image(depth.reshape(1, 1, *depth.shape[-2:]), intrinsics))[0]


def validate_depth(depth: np.ndarray, source: str | Path | None = None, min_valid: int = 1) -> np.ndarray:
    """Check a depth frame and return it as float32 mm ``(H, W)``; raise :class:`InputError` otherwise.

    Rejects wrong dimensionality, non-numeric dtypes, NaN/inf, negative values and frames with fewer
    than ``min_valid`` measured pixels (e.g. all zero).
    """
    arr = np.asarray(depth)
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim != 2:
        raise InputError(f"depth must be a 2-D (H, W) array, got shape {tuple(np.shape(depth))}", source)
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise InputError(f"depth must be numeric, got dtype {arr.dtype}", source)
    arr = arr.astype(np.float32)
    if not np.isfinite(arr).all():
        raise InputError(f"depth has {int((~np.isfinite(arr)).sum())} NaN/inf pixels (use 0 for no measurement)", source)
    if (arr < 0).any():
        raise InputError("depth has negative values (use 0 for no measurement)", source)
    n = int((arr > 0).sum())
    if n < min_valid:
        raise InputError(f"depth has {n} measured pixels (all zero?)", source)
    return arr
