"""Conventions used by every module of depthface (see also ``docs/conventions.md``).

Units
    Millimetres for every length (depth maps, points, translations, meshes). Depth maps are
    ``(B, 1, H, W)`` float tensors (or uint16 arrays on disk) in mm along the optical axis; **0 means
    no measurement** (NaN and negative values are invalid input, never silently kept).

Camera frame (OpenCV)
    x to the right of the image, y down, z forward along the optical axis. Pixel ``(u, v)`` has its
    centre at integer coordinates: pixel column ``u`` spans ``[u - 0.5, u + 0.5)``. A point ``(X, Y, Z)``
    projects to ``u = fx X / Z + cx``, ``v = fy Y / Z + cy``.

Head frame
    A right-handed frame attached to the head. At the identity rotation the head looks straight into
    the camera: x toward the subject's left (the image's right), y down (toward the chin), z from the
    face into the skull (away from the camera). Its origin is the **head centre**, a fixed point of the
    face model's mean shape: the centroid of the four eye corners (landmarks 36, 39, 42, 45) moved
    :data:`HEAD_CENTRE_BEHIND_EYES_MM` back into the skull. Pose ``(R, t)`` maps head to camera:
    ``p_cam = R @ p_head + t``; so ``t`` is the head centre in camera coordinates (mm).

Quaternions
    ``(w, x, y, z)``, w first, unit norm, sign fixed to ``w >= 0`` where a canonical form is needed.

Euler angles (yaw, pitch, roll), degrees — the Biwi convention
    ``R = Rx(-pitch) @ Ry(yaw) @ Rz(roll)`` with the elementary right-handed rotations of the camera
    axes. Equivalently ``R.T = Rz(-roll) Ry(-yaw) Rx(pitch)``, which is exactly how the Biwi community
    code (Hopenet, FSA-Net, POANet) extracts angles from the matrix in ``frame_XXXXX_pose.txt``:
    ``pitch = atan2(M[2,1], M[2,2])``, ``yaw = -atan2(-M[2,0], hypot(M[2,1], M[2,2]))``,
    ``roll = -atan2(M[1,0], M[0,0])`` with ``M = R.T``. So our numbers compare with published MAEs.
    Meaning: positive yaw turns the nose toward the image's left (the subject's right); positive
    pitch raises the nose (looks up); positive roll tilts the head about the viewing axis, clockwise
    as seen in the image.
"""

from __future__ import annotations

#: The head centre lies this far behind the centroid of the four eye corners (mm, along head +z).
HEAD_CENTRE_BEHIND_EYES_MM: float = 90.0

#: Eye-corner landmarks (iBUG 68 indices) that define the head centre.
EYE_CORNER_LANDMARKS: tuple[int, int, int, int] = (36, 39, 42, 45)

#: Side of the metric crop window around the head centre, mm (the networks' field of view).
CROP_SIZE_MM: float = 250.0

#: Network input resolution (the paper: 160 x 160).
CROP_PIXELS: int = 160
