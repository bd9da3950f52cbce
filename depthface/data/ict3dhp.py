"""ICT-3DHP (ICT 3D Head Pose database): reader and writer.

Layout (``root`` holds one folder per sequence, e.g. ``01`` ... ``10``)::

    <seq>/depthAligned/depth00001.png    16-bit PNG depth in mm, numbered from 1 (``depth%05d.png``)
    <seq>/polhemusNorm.csv               ground truth, one row per frame (row 1 = depth00001.png)

Camera: the ``ict3dhp`` preset (fx 535, fy 536, cx 327, cy 241, 640x480; the values the authors'
``run_ict_experiment.m`` passes to their tracker). Their tracker reads frame ``i`` (0-based) of a
sequence from ``depthAligned/depth%05d.png`` with number ``i + 1``, as a 16-bit image in mm.

``polhemusNorm.csv`` (Polhemus FASTRAK magnetic tracker, "normalised" into the camera frame): no header,
six comma-separated numbers per row ``tx, ty, tz, rx, ry, rz``, rotations in **radians**. Source: the
ICT-3DHP evaluation by the dataset's authors (``TadasBaltrusaitis/CLM-framework``, and the same file in
its successor OpenFace: ``matlab_runners/Head Pose Experiments/calcIctError.m``), which reads it with
``textread(..., '%f,%f,%f,%f,%f,%f')`` into ``[txg tyg tzg rxg ryg rzg]`` and compares
``[rxg ryg rzg]`` (converted to degrees) with OpenFace's own ``pose_Rx, pose_Ry, pose_Rz`` after
turning both into matrices with ``Euler2Rot``: ``R = Rx(rx) @ Ry(ry) @ Rz(rz)`` (elementary
right-handed rotations). OpenFace's ``R`` maps its head model (x right in the image, y down, z away
from the camera: the face looks into -z) into the OpenCV camera frame, which is depthface's head
frame and camera frame; so the reader sets ``R = Rx(rx) Ry(ry) Rz(rz)`` directly
(:func:`ict_euler_to_matrix`; its inverse :func:`matrix_to_ict_euler` is what the writer stores).
Note that OpenFace re-references both ground truth and estimates to the first frame of each sequence
before scoring; that is evaluation protocol, not file format, and is left to the evaluation code.

Translations: the evaluation code never reads ``tx, ty, tz``, and no public source states their unit.
The reader **assumes millimetres** (``translation_scale = 1``; pass e.g. 10 for centimetres, 25.4 for
inches, the Polhemus default); treat ICT-3DHP translations as unverified.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from depthface.data.frames import (
    Frame,
    FrameKey,
    KeyedFrames,
    check_depth_shape,
    check_rotation,
    normalize_index,
    read_depth_png16,
    write_depth_png16,
)
from depthface.files import file_problem
from depthface.errors import InputError
from depthface.geometry.camera import Intrinsics

__all__ = [
    "ICT3DHP_INTRINSICS", "ict_euler_to_matrix", "matrix_to_ict_euler", "read_polhemus_csv", "write_polhemus_csv",
    "ict3dhp_depth_path", "write_ict3dhp_sequence", "ICT3DHPDataset",
]

#: The ICT-3DHP depth camera (fx 535, fy 536, cx 327, cy 241, 640x480).
ICT3DHP_INTRINSICS: Intrinsics = Intrinsics.preset("ict3dhp")

CSV_NAME = "polhemusNorm.csv"
DEPTH_DIR = "depthAligned"
_DEPTH_RE = re.compile(r"^depth(\d+)\.png$")
_HEADER = ("tx", "ty", "tz", "rx", "ry", "rz")


def ict_euler_to_matrix(rxyz: np.ndarray) -> np.ndarray:
    """OpenFace/ICT-3DHP Euler angles to rotation matrices: ``R = Rx(rx) @ Ry(ry) @ Rz(rz)``.

    Args:
        rxyz: ``(..., 3)`` ``[rx, ry, rz]`` in radians.

    Returns:
        ``(..., 3, 3)`` float64 head-to-camera rotations.
    """
    a = np.asarray(rxyz, dtype=np.float64)
    ca, cb, cc = np.cos(a[..., 0]), np.cos(a[..., 1]), np.cos(a[..., 2])
    sa, sb, sc = np.sin(a[..., 0]), np.sin(a[..., 1]), np.sin(a[..., 2])
    R = np.stack([
        cb * cc, -cb * sc, sb,
        ca * sc + sa * sb * cc, ca * cc - sa * sb * sc, -sa * cb,
        sa * sc - ca * sb * cc, sa * cc + ca * sb * sc, ca * cb,
    ], axis=-1)
    return R.reshape(*a.shape[:-1], 3, 3)


def matrix_to_ict_euler(R: np.ndarray) -> np.ndarray:
    """Inverse of :func:`ict_euler_to_matrix`: ``(..., 3, 3)`` rotations to ``(..., 3)`` ``[rx, ry, rz]``
    radians, with ``ry`` in ``[-pi/2, pi/2]`` (not unique at ``|ry| = pi/2``)."""
    R = np.asarray(R, dtype=np.float64)
    rx = np.arctan2(-R[..., 1, 2], R[..., 2, 2])
    ry = np.arctan2(R[..., 0, 2], np.hypot(R[..., 1, 2], R[..., 2, 2]))
    rz = np.arctan2(-R[..., 0, 1], R[..., 0, 0])
    return np.stack([rx, ry, rz], axis=-1)


def read_polhemus_csv(path: str | Path) -> np.ndarray:
    """Read ``polhemusNorm.csv``.

    Returns:
        ``(N, 6)`` float64 rows ``[tx, ty, tz, rx, ry, rz]`` exactly as stored (rotations in radians).
        A first line naming the columns (``tx,ty,tz,rx,ry,rz``) is skipped; blank lines are ignored.

    Raises:
        InputError: missing file, a non-numeric value, a row without 6 values, NaN/inf.
    """
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        raise InputError("ground-truth CSV not found", path) from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read ground-truth CSV: {getattr(e, 'strerror', None) or e}", path) from None
    rows: list[list[float]] = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.replace(";", ",").split(",")]
        if parts and parts[-1] == "":
            parts = parts[:-1]
        if not rows and tuple(p.lower() for p in parts) == _HEADER:
            continue
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise InputError(f"line {i + 1} is not numeric: {line.strip()!r}", path) from None
        if len(values) != 6:
            raise InputError(f"line {i + 1} has {len(values)} values, expected 6 (tx,ty,tz,rx,ry,rz)", path)
        rows.append(values)
    arr = np.array(rows, dtype=np.float64).reshape(-1, 6)
    if not np.isfinite(arr).all():
        bad = int(np.argwhere(~np.isfinite(arr))[0, 0])
        raise InputError(f"NaN/inf value in data row {bad + 1}", path)
    return arr


def write_polhemus_csv(path: str | Path, rotations: np.ndarray, translations: np.ndarray,
                       translation_scale: float = 1.0) -> Path:
    """Write ``polhemusNorm.csv`` from depthface poses (the inverse of the reader's conversion).

    Args:
        path: output file.
        rotations: ``(N, 3, 3)`` head-to-camera rotations.
        translations: ``(N, 3)`` head centres in mm (stored divided by ``translation_scale``).

    Returns:
        The path written (no header; 17 significant digits, so a read-back is exact to ~1e-15).
    """
    R = np.asarray(rotations, dtype=np.float64).reshape(-1, 3, 3)
    t = np.asarray(translations, dtype=np.float64).reshape(-1, 3)
    if len(R) != len(t):
        raise InputError(f"{len(R)} rotations but {len(t)} translations")
    for r in R:
        check_rotation(r)
    rows = np.concatenate([t / translation_scale, matrix_to_ict_euler(R)], axis=1)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(",".join(f"{v:.17g}" for v in row) + "\n" for row in rows))
    return path


def ict3dhp_depth_path(sequence_dir: str | Path, number: int) -> Path:
    """``<seq>/depthAligned/depth%05d.png`` of frame ``number`` (1-based)."""
    return Path(sequence_dir) / DEPTH_DIR / f"depth{number:05d}.png"


def write_ict3dhp_sequence(sequence_dir: str | Path, depths: list[np.ndarray] | np.ndarray,
                           rotations: np.ndarray, translations: np.ndarray,
                           translation_scale: float = 1.0) -> list[Path]:
    """Write an ICT-3DHP sequence: ``depthAligned/depth00001.png`` ... and ``polhemusNorm.csv``.

    Args:
        sequence_dir: the sequence folder (created).
        depths: ``N`` depth maps ``(H, W)`` in mm (integers or floats rounded to the mm).
        rotations: ``(N, 3, 3)`` head-to-camera rotations.
        translations: ``(N, 3)`` head centres in mm.

    Returns:
        The depth paths, frame 1 first.
    """
    if len(depths) != len(np.asarray(rotations).reshape(-1, 3, 3)):
        raise InputError(f"{len(depths)} depth maps but {len(np.asarray(rotations).reshape(-1, 3, 3))} poses")
    seq = Path(sequence_dir)
    paths = [write_depth_png16(ict3dhp_depth_path(seq, i + 1), d) for i, d in enumerate(depths)]
    write_polhemus_csv(seq / CSV_NAME, rotations, translations, translation_scale)
    return paths


def _scan_depth(sequence_dir: Path) -> list[int]:
    d = sequence_dir / DEPTH_DIR
    if not d.is_dir():
        return []
    return sorted(int(m.group(1)) for e in d.iterdir() if (m := _DEPTH_RE.match(e.name)))


class ICT3DHPDataset(KeyedFrames):
    """Lazy reader of ICT-3DHP: ``ds[i]`` reads one :class:`Frame` (pose converted to depthface's ``R, t``).

    Args:
        root: folder with one sub-folder per sequence.
        sequences: sequence folder names to include; default every sub-folder holding ``depthAligned/``.
        translation_scale: multiplies the CSV's ``tx, ty, tz`` to give mm (default 1: assumed mm).
        intrinsics: camera (default :data:`ICT3DHP_INTRINSICS`).

    Frame ``n`` (``depth%05d.png``, 1-based) takes CSV data row ``n``. The CSVs are read (and checked)
    at construction; depth frames without a CSV row are left out (``skipped`` counts them). Each
    sequence is one person, so the subject id is the sequence name.
    """

    def __init__(self, root: str | Path, sequences: list[str] | None = None, translation_scale: float = 1.0,
                 intrinsics: Intrinsics = ICT3DHP_INTRINSICS) -> None:
        root = Path(root)
        if not root.is_dir():
            raise InputError("ICT-3DHP root folder not found", root)
        if sequences is None:
            sequences = sorted(p.name for p in root.iterdir() if (p / DEPTH_DIR).is_dir())
        self.root = root
        self.intrinsics = intrinsics
        self.translation_scale = float(translation_scale)
        self.poses: dict[str, np.ndarray] = {}
        self.skipped = 0
        keys: list[FrameKey] = []
        for name in sequences:
            seq_dir = root / str(name)
            if not seq_dir.is_dir():
                raise InputError(f"ICT-3DHP sequence {name} not found", seq_dir)
            numbers = _scan_depth(seq_dir)
            if not numbers:
                continue
            rows = read_polhemus_csv(seq_dir / CSV_NAME)
            self.poses[str(name)] = rows
            kept = [n for n in numbers if 1 <= n <= len(rows)]
            self.skipped += len(numbers) - len(kept)
            keys.extend(FrameKey(str(name), str(name), n) for n in kept)
        if not keys:
            raise InputError("no ICT-3DHP frames found (expected <seq>/depthAligned/depth%05d.png "
                             "with rows in <seq>/polhemusNorm.csv)", root)
        self.keys = keys

    def pose(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """``(R (3, 3), t (3,) mm)`` of frame ``index`` without reading its depth."""
        key = self.frame_key(index)
        row = self.poses[key.sequence][key.frame_index - 1]
        R = check_rotation(ict_euler_to_matrix(row[3:6]), self.root / key.sequence / CSV_NAME)
        return R, row[:3] * self.translation_scale

    def __getitem__(self, index: int) -> Frame:
        index = normalize_index(index, len(self))
        key = self.keys[index]
        path = ict3dhp_depth_path(self.root / key.sequence, key.frame_index)
        problem = file_problem(path)
        if problem is not None:  # never open a FIFO or a device named like a frame
            raise InputError(problem, path)
        depth = read_depth_png16(path)
        check_depth_shape(depth, self.intrinsics, path)
        R, t = self.pose(index)
        return Frame(depth=depth, intrinsics=self.intrinsics, rotation=R, translation=t, subject=key.subject,
                     sequence=key.sequence, frame_index=key.frame_index, source=path)

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]
