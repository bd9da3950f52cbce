"""Geometry core: camera model, depth <-> points, metric crop, rotations, alignment, Chamfer.

Small pure functions over batched tensors; shapes are in each docstring. Owns the project's
conventions (:mod:`depthface.geometry.conventions`).
"""

from depthface.geometry.camera import (
    Intrinsics,
    PRESETS,
    backproject,
    depth_to_points,
    position_image,
    project,
    read_biwi_calibration,
    validate_depth,
)
from depthface.geometry.crop import CropWindow, crop_window, metric_crop, metric_crop_batch

__all__ = [
    "Intrinsics", "PRESETS", "backproject", "depth_to_points", "position_image", "project",
    "read_biwi_calibration", "validate_depth", "CropWindow", "crop_window", "metric_crop", "metric_crop_batch",
]
