"""FaceWarehouse: ground-truth face meshes (and, where available, depth) for shape evaluation.

Layout (``root`` holds ``Tester_1`` ... ``Tester_150``)::

    Tester_k/TrainingPose/pose_M.obj        mesh: 11,510 vertices, quad faces (``f a/ta b/tb c/tc d/td``)
    Tester_k/TrainingPose/pose_M.land       74 image landmarks of ``pose_M.png``
    Tester_k/TrainingPose/pose_M_depth.png  depth (16-bit PNG, mm)  -- or pose_M_depth.npy; optional

Meshes: :func:`depthface.facemodel.obj.read_obj_mesh` (vertex order kept exactly; ``vt``/``vn``
ignored; 1-based and negative OBJ indices), which keeps the polygons and splits each into a triangle fan
(a quad ``a b c d`` -> ``a b c``, ``a c d``) for trimesh.

Units and axes: FaceWarehouse does not document a metric unit for its OBJ coordinates, and they are
not millimetres. The public vertex dump of Tester_1's neutral blendshape landmarks
(``johnmawoods/Facial-Tracking``, ``test.obj``) puts the outer eye corners ~0.84 units apart and the
mouth corners ~0.44 units apart, against adult means of ~90 mm and ~50 mm: about 100-115 mm per unit.
The reader therefore scales by :data:`FACEWAREHOUSE_MM_PER_UNIT` = 100 (decimetres) -- an
**estimate**: shape metrics on FaceWarehouse should align with a similarity (scale-estimating)
transform, or pass ``mm_per_unit`` explicitly. The meshes use the graphics convention y up and z
toward the viewer (the face looks along +z); :data:`FACEWAREHOUSE_TO_HEAD_FRAME` (a 180 degree
rotation about x) turns them to depthface's head-frame axes (x right in the image, y down, z into
the skull); the origin is left where the file has it.

``.land`` landmarks: first line the number of points (74), then one ``x y`` line per point, in the
normalised coordinates of the colour image ``pose_M.png`` with the origin at the **bottom-left**:
pixel ``u = x * width``, ``v = height - y * height`` (as read by ``readLandmarksFromFile_2`` in
``johnmawoods/Facial-Tracking``, ``src/tensor.cpp``). The reader returns the raw numbers
(``landmarks``, ``(74, 2)``) and :func:`land_to_pixels` converts them. Lines with 3 numbers are
accepted (returned as ``(N, 3)``).

Depth: the FaceWarehouse release of the raw Kinect depth is not publicly documented. This reader
accepts ``pose_M_depth.png`` (16-bit, mm) or ``pose_M_depth.npy`` (2-D, mm) next to the mesh;
``FaceWarehouseSample.depth`` is ``None`` when neither exists. Its camera defaults to the Kinect v1
preset (FaceWarehouse was captured with a Kinect).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from depthface.data.frames import normalize_index, read_depth_png16, write_depth_png16
from depthface.files import file_problem
from depthface.errors import InputError
from depthface.facemodel.obj import ObjMesh, read_obj_mesh, triangulate, write_obj_mesh  # noqa: F401  (re-exported)
from depthface.geometry.camera import Intrinsics, validate_depth

__all__ = [
    "FACEWAREHOUSE_MM_PER_UNIT", "FACEWAREHOUSE_TO_HEAD_FRAME", "FACEWAREHOUSE_NUM_VERTICES",
    "FACEWAREHOUSE_NUM_LANDMARKS", "ObjMesh", "read_obj_mesh", "write_obj_mesh", "triangulate",
    "read_land", "write_land", "land_to_pixels", "facewarehouse_paths", "FaceWarehouseSample",
    "FaceWarehouseDataset", "read_facewarehouse_depth", "write_facewarehouse_sample",
]

#: Millimetres per FaceWarehouse OBJ unit: an estimate (see the module docstring), not a documented value.
FACEWAREHOUSE_MM_PER_UNIT: float = 100.0

#: Rotation from FaceWarehouse mesh axes (y up, z toward the viewer) to depthface head-frame axes.
FACEWAREHOUSE_TO_HEAD_FRAME: np.ndarray = np.diag([1.0, -1.0, -1.0])

FACEWAREHOUSE_NUM_VERTICES: int = 11510
FACEWAREHOUSE_NUM_LANDMARKS: int = 74

_TESTER_RE = re.compile(r"^Tester_(\d+)$")
_POSE_RE = re.compile(r"^pose_(\d+)\.obj$")


def read_land(path: str | Path) -> np.ndarray:
    """Read a FaceWarehouse ``.land`` landmark file: a count, then one point per line.

    Returns:
        ``(N, D)`` float64 raw values (``D`` = 2: normalised image ``x, y`` with the origin at the
        bottom-left; see :func:`land_to_pixels`).

    Raises:
        InputError: missing file, non-numeric values, a count that does not match the lines.
    """
    path = Path(path)
    try:
        lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    except FileNotFoundError:
        raise InputError("landmark file not found", path) from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read landmarks: {getattr(e, 'strerror', None) or e}", path) from None
    if not lines:
        raise InputError("landmark file is empty", path)
    try:
        count = int(float(lines[0].split()[0]))
    except ValueError:
        raise InputError(f"first line should be the number of landmarks, got {lines[0].strip()!r}", path) from None
    if count <= 0 or len(lines) - 1 < count:
        raise InputError(f"header announces {count} landmarks but {len(lines) - 1} lines follow", path)
    rows = []
    for i, line in enumerate(lines[1:count + 1], 2):
        try:
            rows.append([float(v) for v in line.replace(",", " ").split()])
        except ValueError:
            raise InputError(f"landmark line {i} is not numeric: {line.strip()!r}", path) from None
    dims = {len(r) for r in rows}
    if len(dims) != 1 or dims.pop() not in (2, 3):
        raise InputError(f"landmark lines must all hold 2 (or 3) numbers, got {sorted({len(r) for r in rows})}", path)
    arr = np.asarray(rows, dtype=np.float64)
    if not np.isfinite(arr).all():
        raise InputError("landmarks have NaN/inf values", path)
    return arr


def write_land(path: str | Path, landmarks: np.ndarray) -> Path:
    """Write a ``.land`` file: the count, then one landmark per line (17 significant digits)."""
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.ndim != 2 or lm.shape[1] not in (2, 3):
        raise InputError(f"landmarks must be (N, 2) or (N, 3), got {lm.shape}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{len(lm)}\n" + "".join(" ".join(f"{v:.17g}" for v in row) + "\n" for row in lm))
    return path


def land_to_pixels(landmarks: np.ndarray, width: int = 640, height: int = 480) -> np.ndarray:
    """``.land`` normalised bottom-left coordinates to pixels: ``u = x W``, ``v = H - y H``.

    Args:
        landmarks: ``(N, 2)`` (or ``(N, 3)``; the extra column is dropped) raw ``.land`` values.
        width, height: size of the colour image the landmarks belong to.

    Returns:
        ``(N, 2)`` float64 pixel coordinates ``(u, v)``.
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    return np.stack([lm[:, 0] * width, height - lm[:, 1] * height], axis=1)


def facewarehouse_paths(root: str | Path, tester: int, pose: int) -> dict[str, Path]:
    """Paths of one sample: keys ``obj``, ``land``, ``depth_png``, ``depth_npy``."""
    d = Path(root) / f"Tester_{tester}" / "TrainingPose"
    return {"obj": d / f"pose_{pose}.obj", "land": d / f"pose_{pose}.land",
            "depth_png": d / f"pose_{pose}_depth.png", "depth_npy": d / f"pose_{pose}_depth.npy"}


@dataclass(frozen=True, eq=False)
class FaceWarehouseSample:
    """One FaceWarehouse training pose.

    Attributes:
        vertices: ``(N, 3)`` float32 mesh vertices in mm (file coordinates times ``mm_per_unit``),
            FaceWarehouse axes (y up, z toward the viewer).
        faces: ``(T, 3)`` int64 triangles (quads split in two).
        polygons: ``(Q, 4)`` int64 quads as stored (0-based).
        landmarks: ``(74, 2)`` float64 raw ``.land`` values, or ``None`` without a ``.land`` file.
        depth: ``(H, W)`` float32 depth in mm, or ``None`` without a depth file.
        intrinsics: the depth camera (meaningful only with ``depth``).
        subject: ``"Tester_k"``.
        tester, pose: the numbers ``k`` and ``M``.
        source: path of the ``.obj``.
    """

    vertices: np.ndarray
    faces: np.ndarray
    polygons: np.ndarray | list[np.ndarray]
    landmarks: np.ndarray | None
    depth: np.ndarray | None
    intrinsics: Intrinsics
    subject: str
    tester: int
    pose: int
    source: Path

    def vertices_head_axes(self) -> np.ndarray:
        """``(N, 3)`` vertices (mm) rotated to depthface head-frame axes (:data:`FACEWAREHOUSE_TO_HEAD_FRAME`)."""
        return (self.vertices.astype(np.float64) @ FACEWAREHOUSE_TO_HEAD_FRAME.T).astype(np.float32)

    def trimesh(self):
        """The mesh as a ``trimesh.Trimesh`` (mm, vertex order kept, no processing)."""
        import trimesh

        return trimesh.Trimesh(vertices=self.vertices, faces=self.faces, process=False)


def read_facewarehouse_depth(paths: dict[str, Path]) -> np.ndarray | None:
    """The optional depth of a sample: ``pose_M_depth.png`` (16-bit mm) first, then ``pose_M_depth.npy``."""
    if paths["depth_png"].exists():
        return read_depth_png16(paths["depth_png"])
    if paths["depth_npy"].exists():
        try:
            arr = np.load(paths["depth_npy"], allow_pickle=False)
        except Exception as e:  # corrupt .npy raise ValueError/OSError/...
            raise InputError(f"cannot read depth array: {type(e).__name__}: {e}", paths["depth_npy"]) from None
        return validate_depth(arr, paths["depth_npy"], min_valid=0)
    return None


class FaceWarehouseDataset:
    """Lazy reader of FaceWarehouse training poses: ``ds[i]`` reads one :class:`FaceWarehouseSample`.

    Args:
        root: folder holding ``Tester_k/TrainingPose/``.
        testers: tester numbers to include (default all found).
        poses: pose numbers to include (default all found, e.g. 0..19).
        mm_per_unit: scale from OBJ units to mm (default :data:`FACEWAREHOUSE_MM_PER_UNIT`, an estimate).
        intrinsics: depth camera for the optional depth (default the Kinect v1 preset).
        require_landmarks: raise when a ``.land`` file is missing (default: ``landmarks = None``).

    Samples are ordered by tester then pose number; ``keys[i]`` is ``(tester, pose)``.
    """

    def __init__(self, root: str | Path, testers: list[int] | None = None, poses: list[int] | None = None,
                 mm_per_unit: float = FACEWAREHOUSE_MM_PER_UNIT, intrinsics: Intrinsics | None = None,
                 require_landmarks: bool = False) -> None:
        root = Path(root)
        if not root.is_dir():
            raise InputError("FaceWarehouse root folder not found", root)
        if not (np.isfinite(mm_per_unit) and mm_per_unit > 0):
            raise InputError(f"mm_per_unit must be positive, got {mm_per_unit}")
        self.root = root
        self.mm_per_unit = float(mm_per_unit)
        self.intrinsics = intrinsics or Intrinsics.preset("kinect_v1")
        self.require_landmarks = require_landmarks
        found: list[tuple[int, int]] = []
        for tdir in root.iterdir():
            m = _TESTER_RE.match(tdir.name)
            if not m or not (tdir / "TrainingPose").is_dir():
                continue
            k = int(m.group(1))
            if testers is not None and k not in testers:
                continue
            for f in (tdir / "TrainingPose").iterdir():
                pm = _POSE_RE.match(f.name)
                if pm and (poses is None or int(pm.group(1)) in poses):
                    found.append((k, int(pm.group(1))))
        if not found:
            raise InputError("no FaceWarehouse meshes found (expected Tester_k/TrainingPose/pose_M.obj)", root)
        self.keys: list[tuple[int, int]] = sorted(found)

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def subjects(self) -> list[str]:
        return [f"Tester_{k}" for k, _ in self.keys]

    def __getitem__(self, index: int) -> FaceWarehouseSample:
        tester, pose = self.keys[normalize_index(index, len(self))]
        paths = facewarehouse_paths(self.root, tester, pose)
        for key in ("obj", "land", "depth_png", "depth_npy"):
            problem = file_problem(paths[key])
            if problem is not None and (key == "obj" or os.path.lexists(paths[key])):
                raise InputError(problem, paths[key])  # never open a FIFO or a device named like a file
        mesh = read_obj_mesh(paths["obj"])
        landmarks = None
        if paths["land"].exists() or self.require_landmarks:
            landmarks = read_land(paths["land"])
        depth = read_facewarehouse_depth(paths)
        return FaceWarehouseSample(
            vertices=(mesh.vertices * self.mm_per_unit).astype(np.float32), faces=mesh.faces,
            polygons=mesh.polygons, landmarks=landmarks, depth=depth, intrinsics=self.intrinsics,
            subject=f"Tester_{tester}", tester=tester, pose=pose, source=paths["obj"])

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]


def write_facewarehouse_sample(root: str | Path, tester: int, pose: int, vertices_mm: np.ndarray,
                               polygons: np.ndarray | list, landmarks: np.ndarray | None = None,
                               depth: np.ndarray | None = None,
                               mm_per_unit: float = FACEWAREHOUSE_MM_PER_UNIT) -> dict[str, Path]:
    """Write one sample in the FaceWarehouse layout (mesh in file units = mm / ``mm_per_unit``).

    Args:
        root: dataset root.
        tester, pose: ``Tester_{tester}/TrainingPose/pose_{pose}.*``.
        vertices_mm: ``(N, 3)`` vertices in mm.
        polygons: 0-based faces (``(F, k)`` array or list of index lists).
        landmarks: optional ``(N, 2)`` raw ``.land`` values.
        depth: optional ``(H, W)`` depth in mm, written as ``pose_M_depth.png``.

    Returns:
        The paths (keys as in :func:`facewarehouse_paths`).
    """
    paths = facewarehouse_paths(root, tester, pose)
    write_obj_mesh(paths["obj"], np.asarray(vertices_mm, dtype=np.float64) / mm_per_unit, polygons)
    if landmarks is not None:
        write_land(paths["land"], landmarks)
    if depth is not None:
        write_depth_png16(paths["depth_png"], depth)
    return paths
