"""The common record of every real depth dataset: :class:`Frame`, and the :class:`FrameDataset` protocol.

A dataset reader (Biwi, ICT-3DHP, ...) is an indexable, lazy collection: ``len(ds)`` is cheap and
``ds[i]`` reads exactly one frame from disk and returns a :class:`Frame` in depthface's conventions
(:mod:`depthface.geometry.conventions`): depth in mm as float32 ``(H, W)`` with 0 = no measurement,
the OpenCV camera frame, and the head pose ``(R, t)`` mapping head to camera
(``p_cam = R @ p_head + t``, ``t`` in mm). Readers also expose ``keys``, the per-frame metadata
(:class:`FrameKey`) available without reading any depth, which the split functions of
:mod:`depthface.data.splits` work on.

This module also holds the 16-bit PNG depth I/O shared by the PNG-based datasets.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from depthface.errors import InputError
from depthface.geometry.camera import Intrinsics, validate_depth
from depthface.geometry.rotations import matrix_to_euler, matrix_to_quaternion

__all__ = [
    "Frame", "FrameKey", "FrameDataset", "KeyedFrames", "check_rotation", "check_translation", "read_depth_png16",
    "write_depth_png16", "depth_to_uint16", "check_depth_shape",
]

#: Largest deviation of ``R.T @ R`` from the identity (max-abs) accepted for a ground-truth rotation.
#: Annotation files print 6 significant digits, so genuine rotations are orthonormal to ~1e-6.
ROTATION_TOLERANCE: float = 1e-3


@dataclass(frozen=True)
class FrameKey:
    """What identifies a frame, known without reading it: subject, sequence and frame number."""

    subject: str
    sequence: str
    frame_index: int


@dataclass(frozen=True, eq=False)
class Frame:
    """One real depth frame with its ground truth.

    Attributes:
        depth: ``(H, W)`` float32 depth in mm, 0 = no measurement.
        intrinsics: the depth camera of this frame (its ``width``/``height`` equal ``W``/``H``).
        rotation: ``(3, 3)`` float64 head-to-camera rotation ``R``, or ``None`` without ground truth.
        translation: ``(3,)`` float64 head centre in camera coordinates (mm), or ``None``.
        subject: subject id (e.g. Biwi ``"F01"``); frames of one person share it across sequences.
        sequence: sequence / recording name (e.g. Biwi ``"01"``).
        frame_index: the frame number of the dataset's file names (Biwi numbers have gaps).
        source: path of the depth file.
        mask: ``(H, W)`` bool head mask, or ``None`` when not requested / not available.
    """

    depth: np.ndarray
    intrinsics: Intrinsics
    rotation: np.ndarray | None
    translation: np.ndarray | None
    subject: str
    sequence: str
    frame_index: int
    source: Path
    mask: np.ndarray | None = None

    @property
    def key(self) -> FrameKey:
        return FrameKey(self.subject, self.sequence, self.frame_index)

    @property
    def has_pose(self) -> bool:
        return self.rotation is not None and self.translation is not None

    @property
    def ypr(self) -> np.ndarray | None:
        """``(3,)`` ``[yaw, pitch, roll]`` in degrees (Biwi convention), or ``None`` without pose."""
        if self.rotation is None:
            return None
        return matrix_to_euler(torch.from_numpy(np.asarray(self.rotation, dtype=np.float64))).numpy()

    @property
    def quaternion(self) -> np.ndarray | None:
        """``(4,)`` unit quaternion ``(w, x, y, z)`` of the rotation (``w >= 0``), or ``None``."""
        if self.rotation is None:
            return None
        return matrix_to_quaternion(torch.from_numpy(np.asarray(self.rotation, dtype=np.float64))).numpy()


@runtime_checkable
class FrameDataset(Protocol):
    """A lazy, indexable collection of :class:`Frame` (what every real-dataset reader provides)."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Frame: ...


class KeyedFrames:
    """What the real-dataset readers indexed by :class:`FrameKey` share (subclasses set ``self.keys``, one key per
    frame in dataset order): ``len``, the subjects, and a frame's key without reading the frame."""

    keys: list[FrameKey]

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def subjects(self) -> list[str]:
        """Subject id of every frame (``len(self)`` entries)."""
        return [k.subject for k in self.keys]

    def frame_key(self, index: int) -> FrameKey:
        """The key of frame ``index`` (negative indices count from the end; out of range: ``IndexError``)."""
        return self.keys[normalize_index(index, len(self))]


def normalize_index(index: int, length: int) -> int:
    """Python sequence indexing: negative indices count from the end; out of range -> IndexError."""
    index = int(index)
    if index < 0:
        index += length
    if not 0 <= index < length:
        raise IndexError(f"frame index out of range (dataset has {length} frames)")
    return index


def check_rotation(R: np.ndarray, source: str | Path | None = None) -> np.ndarray:
    """Return ``R`` as a float64 ``(3, 3)`` rotation, or raise :class:`InputError`.

    A rotation must be finite, orthonormal to :data:`ROTATION_TOLERANCE` and have ``det = +1``.
    """
    R = np.asarray(R, dtype=np.float64)
    if R.shape != (3, 3):
        raise InputError(f"rotation must be 3x3, got shape {R.shape}", source)
    if not np.isfinite(R).all():
        raise InputError("rotation has NaN/inf entries", source)
    err = float(np.abs(R.T @ R - np.eye(3)).max())
    if err > ROTATION_TOLERANCE or np.linalg.det(R) <= 0:
        raise InputError(f"matrix is not a rotation (|R^T R - I| = {err:.2g}, det = {np.linalg.det(R):.3g})",
                         source)
    return R


def check_translation(t: np.ndarray, source: str | Path | None = None) -> np.ndarray:
    """Return ``t`` as a finite float64 ``(3,)`` vector (mm), or raise :class:`InputError`."""
    t = np.asarray(t, dtype=np.float64).reshape(-1)
    if t.shape != (3,):
        raise InputError(f"translation must have 3 values, got {t.size}", source)
    if not np.isfinite(t).all():
        raise InputError("translation has NaN/inf entries", source)
    return t


def check_depth_shape(depth: np.ndarray, intrinsics: Intrinsics, source: str | Path | None = None) -> None:
    """Raise :class:`InputError` unless the ``(H, W)`` depth has the intrinsics' image size."""
    h, w = depth.shape
    if (w, h) != (intrinsics.width, intrinsics.height):
        raise InputError(f"depth is {w}x{h} but the camera calibration is for "
                         f"{intrinsics.width}x{intrinsics.height}", source)


def depth_to_uint16(depth: np.ndarray, max_value: int = 65535, what: str = "depth") -> np.ndarray:
    """Depth in mm (integer or float array) as the ``(H, W)`` integers a depth file stores.

    Floats are rounded to the nearest mm. Raises :class:`InputError` for NaN/inf, negative values,
    values above ``max_value`` or a non-2-D array.

    Returns:
        ``(H, W)`` uint16 (values ``<= max_value``).
    """
    arr = np.asarray(depth)
    if arr.ndim != 2:
        raise InputError(f"{what} must be a 2-D (H, W) array, got shape {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise InputError(f"{what} must be numeric, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise InputError(f"{what} has NaN/inf values (use 0 for no measurement)")
        arr = np.rint(arr)
    if arr.size and (arr.min() < 0 or arr.max() > max_value):
        raise InputError(f"{what} values must lie in [0, {max_value}] mm, got [{arr.min()}, {arr.max()}]")
    return arr.astype(np.uint16)


def read_depth_png16(path: str | Path) -> np.ndarray:
    """Read a 16-bit single-channel PNG depth map (values in mm).

    Returns:
        ``(H, W)`` float32 depth in mm, 0 = no measurement.

    Raises:
        InputError: unreadable file, or a PNG that is not 16-bit single-channel.
    """
    import imageio.v3 as iio

    path = Path(path)
    try:
        img = iio.imread(path)
    except FileNotFoundError:
        raise InputError("depth image not found", path) from None
    except Exception as e:  # imageio/pillow raise many types for corrupt files
        raise InputError(f"cannot decode PNG: {type(e).__name__}: {e}", path) from None
    if img.dtype != np.uint16 or img.ndim != 2:
        raise InputError(f"expected a 16-bit single-channel depth PNG (mm), got dtype {img.dtype} "
                         f"with shape {img.shape}", path)
    return validate_depth(img, path, min_valid=0)


def write_depth_png16(path: str | Path, depth: np.ndarray) -> Path:
    """Write depth in mm as a 16-bit single-channel PNG (floats rounded to the nearest mm).

    Args:
        path: output file (parent folders are created).
        depth: ``(H, W)`` depth in mm, integers or floats in ``[0, 65535]``.

    Returns:
        The path written.
    """
    import imageio.v3 as iio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, depth_to_uint16(depth), extension=".png")
    return path
