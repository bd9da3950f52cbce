"""Face model: the linear 3D morphable model of face shape, in mm in the canonical head frame.

Owns reading face-model files (the default ICT-FaceKit ``.npz``, a raw ICT-FaceKit folder, Basel Face
Model 2009 ``.mat`` and 2017/2019 ``.h5``), their conversion to millimetres in the head frame of
:mod:`depthface.geometry.conventions` (origin at the head centre), and the model's evaluation: vertices,
displacements on the regressed face area, landmarks, posing into the camera frame, seeded sampling of
coefficients and mesh export; and the one OBJ mesh reader (:mod:`depthface.facemodel.obj`, also
FaceWarehouse's). Imports only :mod:`depthface.geometry` and :mod:`depthface.errors`.
"""

from depthface.facemodel.loaders import (
    DEFAULT_MODEL_NAME,
    ENV_VAR,
    default_model_candidates,
    load_face_model,
    resolve_face_model_path,
)
from depthface.facemodel.model import (
    EXPRESSION_KINDS,
    MODEL_TO_HEAD_AXES,
    RIGID_LANDMARK_IDS,
    MorphableModel,
)

__all__ = [
    "MorphableModel", "load_face_model", "resolve_face_model_path", "default_model_candidates",
    "ENV_VAR", "DEFAULT_MODEL_NAME", "MODEL_TO_HEAD_AXES", "RIGID_LANDMARK_IDS", "EXPRESSION_KINDS",
]
