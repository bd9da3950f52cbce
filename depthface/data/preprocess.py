"""The one preprocessing path of every depth frame, real or synthetic: centre -> metric crop -> position image.

:func:`preprocess` takes a full depth frame (mm, 0 = no measurement) and its camera, and

1. validates the depth (:func:`depthface.geometry.camera.validate_depth`: one-line :class:`InputError`
   for NaN/inf, negative values, wrong dimensions, no measurement at all);
2. takes the crop centre from the **ground truth** when the caller passes one (evaluation protocols that
   allow it, and training on synthetic frames) or else from the **automatic localiser**
   (:func:`depthface.data.localize.localize_head`, depth only); a frame where the localiser finds no head
   raises :class:`depthface.data.localize.HeadNotFoundError` (an :class:`InputError`) with its reason;
3. cuts the metric crop (:func:`depthface.geometry.crop.metric_crop`: a 250 mm window around the centre,
   nearest-neighbour to 160 x 160) and its crop intrinsics;
4. computes the network input, the position image (:func:`depthface.geometry.camera.position_image`).

:func:`refine` re-crops around a better centre: the pose network predicts the head centre relative to
the crop centre, and prediction calls ``refine(prep, depth, intrinsics, prep.crop_centre + offset)``
once, then runs the network again on the new crop.

Crops of synthetic datasets (:func:`depthface.synth.scenes.crop_sample`) are the same function of the
same inputs: ``preprocess(frame, K, crop_centre).crop`` equals the stored uint16 crop exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from depthface.data.localize import HeadNotFoundError, Localization, localize_head
from depthface.errors import InputError
from depthface.geometry.camera import Intrinsics, position_image, validate_depth
from depthface.geometry.conventions import CROP_PIXELS, CROP_SIZE_MM
from depthface.geometry.crop import CropWindow, metric_crop

__all__ = ["Preprocessed", "Localizer", "preprocess", "refine", "crop_around", "check_frame", "CENTRE_SOURCES"]

#: A localiser: ``(depth (H, W) float32 mm, intrinsics) -> Localization``.
Localizer = Callable[[np.ndarray, Intrinsics], Localization]

#: Where a crop centre came from.
CENTRE_SOURCES = ("ground_truth", "localizer", "refined")


@dataclass(frozen=True, eq=False)
class Preprocessed:
    """A frame ready for the networks.

    Attributes:
        crop: ``(160, 160)`` float32 depth in mm (0 = no measurement or outside the frame).
        crop_intrinsics: the crop's own camera (see :mod:`depthface.geometry.crop`).
        crop_centre: ``(3,)`` float64 crop centre in mm, camera frame of the full frame.
        window: where the crop samples the full frame.
        position: ``(3, 160, 160)`` float32 position image (X, Y, Z in mm; 0 where no measurement).
        centre_source: ``"ground_truth"``, ``"localizer"`` or ``"refined"``.
        localization: the localiser's result (``None`` when the centre came from the ground truth).
        source_intrinsics: the camera of the full frame.
    """

    crop: np.ndarray
    crop_intrinsics: Intrinsics
    crop_centre: np.ndarray
    window: CropWindow
    position: torch.Tensor
    centre_source: str
    localization: Localization | None
    source_intrinsics: Intrinsics

    @property
    def crop_intrinsics_array(self) -> np.ndarray:
        """``(4,)`` float64 ``[fx, fy, cx, cy]`` of the crop (the synthetic datasets' label layout)."""
        k = self.crop_intrinsics
        return np.array([k.fx, k.fy, k.cx, k.cy])


def _check_centre(centre: np.ndarray, what: str) -> np.ndarray:
    c = np.asarray(centre, dtype=np.float64).reshape(-1)
    if c.shape != (3,) or not np.isfinite(c).all() or not c[2] > 0:
        raise InputError(f"{what} must be 3 finite numbers (mm) with z > 0, got {np.asarray(centre).tolist()}")
    return c


def check_frame(depth: np.ndarray, intrinsics: Intrinsics, source: str | None = None) -> np.ndarray:
    """Validate a full frame once: ``(H, W)`` float32 mm, its size the camera's; one-line
    :class:`InputError` otherwise. Pass the result with ``checked=True`` to :func:`preprocess` and
    :func:`refine` to skip validating the same frame again."""
    d = validate_depth(depth, source)
    if d.shape != (intrinsics.height, intrinsics.width):
        raise InputError(f"depth is {d.shape[1]}x{d.shape[0]} but the intrinsics are for "
                         f"{intrinsics.width}x{intrinsics.height}", source)
    return d


def crop_around(depth: np.ndarray, intrinsics: Intrinsics, centre: np.ndarray, centre_source: str,
                localization: Localization | None = None) -> Preprocessed:
    """Metric crop and position image around ``centre`` of an already validated ``(H, W)`` float32 depth."""
    crop, k_crop, window = metric_crop(depth, intrinsics, centre, CROP_SIZE_MM, CROP_PIXELS)
    crop = np.ascontiguousarray(crop, dtype=np.float32)
    pos = position_image(torch.from_numpy(crop)[None, None], k_crop)[0]
    return Preprocessed(crop, k_crop, np.asarray(centre, dtype=np.float64), window, pos, centre_source,
                        localization, intrinsics)


def preprocess(depth: np.ndarray, intrinsics: Intrinsics, centre: np.ndarray | None = None,
               localizer: Localizer | None = None, source: str | None = None, checked: bool = False) -> Preprocessed:
    """Preprocess one full depth frame (see the module docstring).

    Args:
        depth: ``(H, W)`` depth in mm (uint16 or float), 0 = no measurement.
        intrinsics: the frame's camera (its size must match ``depth``).
        centre: ``(3,)`` crop centre in mm (e.g. the ground-truth head centre), or ``None`` to localise
            the head automatically.
        localizer: the localiser used when ``centre`` is ``None`` (default :func:`localize_head`).
        source: file name for error messages.
        checked: ``depth`` is already the output of :func:`check_frame` (skip validating it again).

    Returns:
        A :class:`Preprocessed` frame.

    Raises:
        InputError: bad depth (NaN/inf, negative, not 2-D, all zero, size not the camera's) or a bad centre.
        HeadNotFoundError: ``centre`` is ``None`` and the localiser found no head (the message says why).
    """
    d = depth if checked else check_frame(depth, intrinsics, source)
    if centre is not None:
        return crop_around(d, intrinsics, _check_centre(centre, "crop centre"), "ground_truth")
    loc = (localizer or localize_head)(d, intrinsics)
    if loc.centre is None:
        raise HeadNotFoundError(f"no head found: {loc.reason}", source)
    return crop_around(d, intrinsics, _check_centre(loc.centre, "localised head centre"), "localizer", loc)


def refine(prep: Preprocessed, depth: np.ndarray, intrinsics: Intrinsics, new_centre: np.ndarray,
           checked: bool = False) -> Preprocessed:
    """Re-crop the same frame around a new centre (e.g. ``prep.crop_centre`` plus the offset the pose
    network predicted). The localisation result of ``prep`` is kept for the record.

    Args:
        prep: the first preprocessing of the frame.
        depth: the same ``(H, W)`` depth in mm.
        intrinsics: its camera.
        new_centre: ``(3,)`` new crop centre in mm (camera frame of the full frame).
        checked: ``depth`` is already the output of :func:`check_frame`.

    Returns:
        A :class:`Preprocessed` with ``centre_source == "refined"``.
    """
    d = depth if checked else check_frame(depth, intrinsics, None)
    return crop_around(d, intrinsics, _check_centre(new_centre, "refined centre"), "refined", prep.localization)
