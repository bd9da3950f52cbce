"""Geometry core: camera model, depth <-> points, normals, metric crop, rotations, alignment, Chamfer.

Small pure functions over batched tensors; shapes are in each docstring. Owns the project's
conventions (:mod:`depthface.geometry.conventions`).
"""

from depthface.geometry.camera import (
    Intrinsics,
    PRESETS,
    backproject,
    depth_to_points,
    position_image,
    position_points,
    project,
    read_biwi_calibration,
    validate_depth,
)
from depthface.geometry.crop import CropWindow, crop_window, metric_crop, metric_crop_batch
from depthface.geometry.rotations import (
    euler_to_matrix,
    euler_to_quaternion,
    geodesic_angle_deg,
    matrix_to_euler,
    matrix_to_quaternion,
    normalize_quaternion,
    quaternion_conjugate,
    quaternion_multiply,
    quaternion_to_euler,
    quaternion_to_matrix,
    random_quaternion,
    random_rotation,
    rotvec_to_matrix_np,
)
from depthface.geometry.alignment import apply_similarity, umeyama
from depthface.geometry.normals import position_normals, vertex_normals
from depthface.geometry.chamfer import FittingError, fitting_error, fitting_errors, landmark_chamfer, nearest_neighbors

__all__ = [
    "Intrinsics", "PRESETS", "backproject", "depth_to_points", "position_image", "position_points", "project",
    "read_biwi_calibration", "validate_depth", "CropWindow", "crop_window", "metric_crop", "metric_crop_batch",
    "euler_to_matrix", "euler_to_quaternion", "geodesic_angle_deg", "matrix_to_euler", "matrix_to_quaternion",
    "normalize_quaternion", "quaternion_conjugate", "quaternion_multiply", "quaternion_to_euler",
    "quaternion_to_matrix", "random_quaternion", "random_rotation", "rotvec_to_matrix_np",
    "apply_similarity", "umeyama", "position_normals", "vertex_normals",
    "FittingError", "fitting_error", "fitting_errors", "landmark_chamfer", "nearest_neighbors",
]
