"""Biwi Kinect Head Pose database: reader, writer, and the sequence -> subject map.

Layout (``root`` is the folder holding ``hpdb/``, or ``hpdb/`` itself)::

    hpdb/NN/depth.cal                       per-sequence calibration (NN = 01..24)
    hpdb/NN/frame_XXXXX_depth.bin           run-length-encoded depth (frame numbers have gaps)
    hpdb/NN/frame_XXXXX_pose.txt            ground truth: rotation (3 rows), blank line, head centre
    head_pose_masks/NN/frame_XXXXX_depth_mask.png   optional head masks (8-bit, non-zero = head)

``frame_XXXXX_depth.bin``: run-length-encoded depth, read and written by :mod:`depthface.data.biwi_depth`.

``frame_XXXXX_pose.txt``: the 3x3 matrix written row by row is depthface's head-to-camera rotation
``R`` (``p_cam = R p_head + t``), and the last row is the head centre ``t`` in mm, in the depth
camera's frame (:mod:`depthface.geometry.conventions`); Euler angles come from
:func:`depthface.geometry.rotations.matrix_to_euler` (the community extraction applied to ``R.T``).

Subjects: 24 sequences of 20 people (6 women F01-F06, 14 men M01-M14); four people were recorded
twice. :data:`BIWI_SEQUENCE_TO_SUBJECT` is the mapping published with the Hugging Face ``datasets``
loader of the database (``huggingface/datasets``, ``datasets/biwi_kinect_head_pose/
biwi_kinect_head_pose.py``, ``_sequence_to_subject_map``; the card cites the database README:
"20 people (some were recorded twice - 6 women and 14 men)"): sequences 15, 18, 21 and 22 repeat
F03, F05, F02 and M01. It is consistent with the README's counts (20 distinct ids, 6 F + 14 M).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from depthface.data.biwi_depth import read_biwi_depth, write_biwi_depth
from depthface.data.frames import (
    Frame,
    FrameKey,
    KeyedFrames,
    check_depth_shape,
    check_rotation,
    check_translation,
    normalize_index,
)
from depthface.files import file_problem
from depthface.errors import InputError
from depthface.geometry.camera import (
    BiwiCalibration,
    Intrinsics,
    read_biwi_calibration,
    write_biwi_calibration,
)

__all__ = [
    "BIWI_SEQUENCE_TO_SUBJECT", "BIWI_SUBJECTS", "biwi_subject", "read_biwi_pose", "write_biwi_pose",
    "read_biwi_mask", "write_biwi_mask", "write_biwi_frame", "write_biwi_depth_calibration", "BiwiDataset",
]

#: Sequence folder -> subject id. Source: the Hugging Face ``datasets`` loader of the Biwi Kinect Head
#: Pose database (``datasets/biwi_kinect_head_pose/biwi_kinect_head_pose.py``, ``_sequence_to_subject_map``).
BIWI_SEQUENCE_TO_SUBJECT: dict[str, str] = {
    "01": "F01", "02": "F02", "03": "F03", "04": "F04", "05": "F05", "06": "F06",
    "07": "M01", "08": "M02", "09": "M03", "10": "M04", "11": "M05", "12": "M06",
    "13": "M07", "14": "M08", "15": "F03", "16": "M09", "17": "M10", "18": "F05",
    "19": "M11", "20": "M12", "21": "F02", "22": "M01", "23": "M13", "24": "M14",
}

#: The 20 subjects, women first (so "subject k" (1-based) is ``BIWI_SUBJECTS[k - 1]``; subjects 11 and
#: 12 are M05 and M06, who are also the people of sequences 11 and 12).
BIWI_SUBJECTS: tuple[str, ...] = tuple(f"F{i:02d}" for i in range(1, 7)) + tuple(f"M{i:02d}" for i in range(1, 15))

_DEPTH_RE = re.compile(r"^frame_(\d+)_depth\.bin$")
_SEQ_RE = re.compile(r"^\d{2}$")


def biwi_subject(sequence: str) -> str:
    """Subject id (``"F01"`` ... ``"M14"``) of a Biwi sequence folder name (``"01"`` ... ``"24"``)."""
    try:
        return BIWI_SEQUENCE_TO_SUBJECT[sequence]
    except KeyError:
        raise InputError(f"unknown Biwi sequence {sequence!r}: expected one of 01..24") from None


# ----------------------------------------------------------------------------------------------
# pose .txt, masks, calibration


def read_biwi_pose(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a Biwi ``frame_XXXXX_pose.txt``: 3 rows of ``R``, (a blank line), the head centre.

    Returns:
        ``(R, t)``: ``(3, 3)`` float64 head-to-camera rotation and ``(3,)`` float64 head centre (mm).
    """
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise InputError("pose file not found", path) from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read pose file: {getattr(e, 'strerror', None) or e}", path) from None
    rows = [ln.split() for ln in text.splitlines() if ln.strip()]
    if len(rows) < 4:
        raise InputError(f"pose file has {len(rows)} non-empty lines, expected 4 (3 rotation rows, the centre)", path)
    values = []
    for i, row in enumerate(rows[:4]):
        try:
            vals = [float(v) for v in row]
        except ValueError:
            raise InputError(f"pose line {i + 1} is not numeric: {' '.join(row)!r}", path) from None
        if len(vals) != 3:
            raise InputError(f"pose line {i + 1} should hold 3 numbers, got {len(vals)}", path)
        values.append(vals)
    return check_rotation(np.array(values[:3]), path), check_translation(np.array(values[3]), path)


def _fmt(values: np.ndarray) -> str:
    return " ".join(f"{float(v):.17g}" for v in values)


def write_biwi_pose(path: str | Path, R: np.ndarray, t: np.ndarray) -> Path:
    """Write ``frame_XXXXX_pose.txt`` in Biwi's layout (values with 17 significant digits: exact)."""
    R = check_rotation(R)
    t = check_translation(t)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([_fmt(R[0]), _fmt(R[1]), _fmt(R[2]), "", _fmt(t)]) + "\n")
    return path


def read_biwi_mask(path: str | Path) -> np.ndarray:
    """Read a Biwi head mask PNG (``frame_XXXXX_depth_mask.png``). Returns ``(H, W)`` bool, True = head."""
    import imageio.v3 as iio

    path = Path(path)
    try:
        img = iio.imread(path)
    except FileNotFoundError:
        raise InputError("head mask not found", path) from None
    except Exception as e:  # corrupt images raise many exception types
        raise InputError(f"cannot decode mask PNG: {type(e).__name__}: {e}", path) from None
    if img.ndim == 3:
        img = img[..., 0]
    if img.ndim != 2:
        raise InputError(f"mask must be a single-channel image, got shape {img.shape}", path)
    return img > 0


def write_biwi_mask(path: str | Path, mask: np.ndarray) -> Path:
    """Write an ``(H, W)`` bool mask as an 8-bit PNG (255 = head, 0 = background)."""
    import imageio.v3 as iio

    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise InputError(f"mask must be 2-D (H, W), got shape {mask.shape}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, np.where(mask, 255, 0).astype(np.uint8), extension=".png")
    return path


def write_biwi_depth_calibration(sequence_dir: str | Path, intrinsics: Intrinsics | None = None) -> Path:
    """Write ``depth.cal`` of a sequence (no distortion, identity extrinsics) with
    :func:`depthface.geometry.camera.write_biwi_calibration`. Default intrinsics: the ``biwi`` preset."""
    intrinsics = intrinsics or Intrinsics.preset("biwi")
    path = Path(sequence_dir) / "depth.cal"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_biwi_calibration(path, BiwiCalibration(intrinsics, np.zeros(4), np.eye(3), np.zeros(3)))
    return path


def biwi_frame_paths(sequence_dir: str | Path, index: int) -> tuple[Path, Path]:
    """``(depth .bin, pose .txt)`` paths of frame number ``index`` in a sequence folder."""
    d = Path(sequence_dir)
    return d / f"frame_{index:05d}_depth.bin", d / f"frame_{index:05d}_pose.txt"


def write_biwi_frame(sequence_dir: str | Path, index: int, depth: np.ndarray, R: np.ndarray | None,
                     t: np.ndarray | None, mask: np.ndarray | None = None,
                     masks_dir: str | Path | None = None) -> tuple[Path, Path | None]:
    """Write one Biwi frame: ``frame_{index:05d}_depth.bin`` and ``frame_{index:05d}_pose.txt``.

    Args:
        sequence_dir: ``hpdb/NN`` (created if needed).
        index: frame number.
        depth: ``(H, W)`` depth in mm (uint16/int or float, rounded), 0 = no measurement.
        R, t: head-to-camera rotation ``(3, 3)`` and head centre ``(3,)`` in mm; both ``None`` writes no pose.
        mask: optional ``(H, W)`` head mask, written to ``masks_dir/frame_{index:05d}_depth_mask.png``
            (``masks_dir`` defaults to ``<root>/head_pose_masks/NN`` next to ``hpdb``).

    Returns:
        ``(depth path, pose path or None)``.
    """
    if index < 0:
        raise InputError(f"frame number must be non-negative, got {index}")
    depth_path, pose_path = biwi_frame_paths(sequence_dir, index)
    write_biwi_depth(depth_path, depth)
    if (R is None) != (t is None):
        raise InputError("give both R and t, or neither")
    written_pose = write_biwi_pose(pose_path, R, t) if R is not None else None
    if mask is not None:
        seq = Path(sequence_dir)
        mdir = Path(masks_dir) if masks_dir is not None else seq.parent.parent / "head_pose_masks" / seq.name
        write_biwi_mask(mdir / f"frame_{index:05d}_depth_mask.png", mask)
    return depth_path, written_pose


# ----------------------------------------------------------------------------------------------
# dataset


def _resolve_root(root: Path) -> tuple[Path, Path]:
    """``(hpdb folder, head_pose_masks folder)`` from a root that is ``hpdb`` or its parent."""
    if (root / "hpdb").is_dir():
        return root / "hpdb", root / "head_pose_masks"
    return root, root.parent / "head_pose_masks"


def _scan_sequence(seq_dir: Path) -> list[int]:
    """Sorted frame numbers of the ``frame_XXXXX_depth.bin`` files of a sequence."""
    frames = []
    for entry in seq_dir.iterdir():
        m = _DEPTH_RE.match(entry.name)
        if m:
            frames.append(int(m.group(1)))
    return sorted(frames)


class BiwiDataset(KeyedFrames):
    """Lazy reader of the Biwi Kinect Head Pose database: ``ds[i]`` reads one :class:`Frame`.

    Args:
        root: folder holding ``hpdb/`` (and optionally ``head_pose_masks/``), or ``hpdb/`` itself.
        sequences: sequence names to include (``"01"`` ... ``"24"``, or ints); default all present.
        with_masks: also read ``head_pose_masks/NN/frame_XXXXX_depth_mask.png`` into ``Frame.mask``
            (a missing mask is then an :class:`InputError`).
        masks_root: the ``head_pose_masks`` folder, if not next to ``hpdb``.
        strict: reject ``.bin`` files with bytes after the last block.

    Frames are ordered by sequence then frame number; ``keys[i]`` gives subject, sequence and frame
    number of frame ``i`` without reading it. Calibrations (``depth.cal``) are read at construction.
    A missing or corrupt pose file raises :class:`InputError` when that frame is read.
    """

    def __init__(self, root: str | Path, sequences: list[str | int] | None = None, with_masks: bool = False,
                 masks_root: str | Path | None = None, strict: bool = True) -> None:
        root = Path(root)
        if not root.is_dir():
            raise InputError("Biwi root folder not found", root)
        self.hpdb, default_masks = _resolve_root(root)
        self.masks_root = Path(masks_root) if masks_root is not None else default_masks
        self.with_masks = with_masks
        self.strict = strict
        if sequences is None:
            names = sorted(p.name for p in self.hpdb.iterdir() if p.is_dir() and _SEQ_RE.match(p.name))
        else:
            names = [f"{int(s):02d}" if isinstance(s, int) or str(s).isdigit() else str(s) for s in sequences]
        self.calibrations: dict[str, Intrinsics] = {}
        self.calibration_errors: dict[str, str] = {}
        keys: list[FrameKey] = []
        for name in names:
            subject = biwi_subject(name)
            seq_dir = self.hpdb / name
            if not seq_dir.is_dir():
                raise InputError(f"Biwi sequence {name} not found", seq_dir)
            frames = _scan_sequence(seq_dir)
            if not frames:
                continue
            cal = seq_dir / "depth.cal"
            try:
                problem = file_problem(cal, max_bytes=1 << 20)
                if problem is not None:
                    raise InputError(problem, cal)
                self.calibrations[name] = read_biwi_calibration(cal).intrinsics
            except InputError as e:  # a bad calibration costs its sequence's frames only
                self.calibration_errors[name] = str(e)
            keys.extend(FrameKey(subject, name, f) for f in frames)
        if not keys:
            raise InputError("no Biwi frames found (expected hpdb/NN/frame_XXXXX_depth.bin)", root)
        self.keys = keys

    def paths(self, index: int) -> tuple[Path, Path]:
        """``(depth .bin, pose .txt)`` of frame ``index``."""
        key = self.frame_key(index)
        return biwi_frame_paths(self.hpdb / key.sequence, key.frame_index)

    def mask_path(self, index: int) -> Path:
        key = self.frame_key(index)
        return self.masks_root / key.sequence / f"frame_{key.frame_index:05d}_depth_mask.png"

    def __getitem__(self, index: int) -> Frame:
        index = normalize_index(index, len(self))
        key = self.keys[index]
        depth_path, pose_path = self.paths(index)
        if key.sequence in self.calibration_errors:
            raise InputError(f"sequence calibration unreadable ({self.calibration_errors[key.sequence]})", depth_path)
        depth = read_biwi_depth(depth_path, self.strict)
        intrinsics = self.calibrations[key.sequence]
        check_depth_shape(depth, intrinsics, depth_path)
        R, t = read_biwi_pose(pose_path)
        mask = None
        if self.with_masks:
            mpath = self.mask_path(index)
            mask = read_biwi_mask(mpath)
            if mask.shape != depth.shape:
                raise InputError(f"mask is {mask.shape[1]}x{mask.shape[0]}, depth is "
                                 f"{depth.shape[1]}x{depth.shape[0]}", mpath)
        return Frame(depth=depth, intrinsics=intrinsics, rotation=R, translation=t, subject=key.subject,
                     sequence=key.sequence, frame_index=key.frame_index, source=depth_path, mask=mask)

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]
